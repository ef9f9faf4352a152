//! Must-gather: everything needed to debug a run offline, collected before
//! anything disturbs the cluster.
//!
//! Three layers. [`layout`] decides where each object and log goes (a
//! layout compatible with `oc adm inspect` and crust-gather). [`redact`]
//! makes what is written safe to share: `managedFields` stripped, Secret
//! values replaced, and every known secret value scrubbed from every file,
//! logs included. [`bundle`] writes the files into a staging directory and
//! publishes the bundle only when it is complete — README, size cap,
//! `SHA256SUMS`, then an atomic rename and a `.tar.gz` — so a bundle under
//! its final name is always whole. Collectors that read the cluster feed
//! these; one failing collector is recorded in the bundle and never stops
//! the others. [`story`] adds what the run knew about itself (its event
//! stream, report, timelines, suites) and [`diagnosis`] the state of every
//! component at gather time, under `harness/`.

pub mod bundle;
pub mod collect;
pub mod diagnosis;
pub mod kube;
pub mod layout;
pub mod redact;
pub mod stage;
pub mod story;

pub use bundle::{Bundle, BundleWriter, GatherError};
pub use redact::Redactor;
