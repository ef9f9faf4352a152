//! A bare kind provider for the tests of the harness crate that need one
//! (tests/cluster_kind.rs, tests/cluster_nodes.rs).
#![allow(dead_code)]

use std::path::PathBuf;

use harness::cluster::{KindCli, KindProvider};
use harness::config::{EngineKind, KindSpec};

/// A Docker kind provider of cluster `name` with no config or node image,
/// through `cli`.
pub fn provider(cli: KindCli, name: &str, kubeconfig: PathBuf) -> KindProvider {
    let spec = KindSpec {
        config: None,
        node_image: None,
        engine: EngineKind::Docker,
        min_version: semver::Version::new(0, 20, 0),
    };
    KindProvider::new(cli, name, &spec, kubeconfig)
}
