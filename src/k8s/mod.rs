//! Talking to the cluster: the client, the evidence fetcher and the suite
//! namespace provisioner.
//!
//! These are thin adapters over kube-rs. Everything that *decides* lives in
//! [`crate::readiness`] and [`crate::deploy::judge`]; this module only turns
//! a kubeconfig into a [`kube::Client`], fetches the events and logs a
//! verdict is shown with, and creates namespaces. One rustls crypto provider
//! (aws-lc-rs) is compiled in, so kube and reqwest agree on it without any
//! runtime installation step (`cargo tree -i ring` is empty).

pub mod access;
pub mod client;
pub mod evidence;
pub mod namespaces;
pub mod server_time;

pub use client::{ClientError, ClusterAccess, connect};
pub use evidence::{LogTail, PodEvidence, fetch_pod_evidence};
pub use namespaces::{KubeNamespaces, RUN_ID_LABEL};
