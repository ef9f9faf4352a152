//! The demo stack's services (SPEC §8): an audit-event DataStorage over
//! PostgreSQL and a controller for `RemediationRequest` objects that
//! writes an audit event to it at each phase transition.
//!
//! Pure cores ([`event`], [`config`], [`phase`]) decide; thin adapters
//! ([`store`], [`writer`], [`api`], [`controller`], [`webhook`]) do the I/O.

pub mod api;
pub mod config;
pub mod controller;
pub mod event;
pub mod phase;
pub mod store;
pub mod webhook;
pub mod writer;
