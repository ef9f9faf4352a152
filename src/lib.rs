//! `harness`: stands up the end-to-end test environment of a multi-service
//! Kubernetes operator project, runs its suites, and says exactly why when
//! something is not ready.
//!
//! The crate is a pure core with thin I/O shells: everything that decides
//! (the deploy plan, readiness verdicts, scheduling of suites) is a function
//! of plain data; the modules that talk to the engine, the cluster or child
//! processes stay small around it. The command line is not here: the
//! `harness` binary (package `harness-cli`) parses it, calls this library
//! with plain values and prints what comes back. Every failure carries its
//! exit code and its fix by type ([`failure`]); every stage is entered with
//! one context ([`stage`]); every path harness writes is said once
//! ([`layout`]).

pub mod affected;
pub mod cluster;
pub mod config;
pub mod deploy;
pub mod digest;
pub mod engine;
pub mod exit;
pub mod failure;
pub mod gate;
pub mod gather;
pub mod hooks;
pub mod images;
pub mod k8s;
pub mod lanes;
pub mod layout;
pub mod panics;
pub mod plan;
pub mod preflight;
pub mod readiness;
pub mod render;
pub mod report;
pub mod run;
pub mod stage;
pub mod suites;
pub mod throttle;
pub mod timeline;
