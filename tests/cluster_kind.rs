//! The kind provider against a stand-in `kind`: a shell script that records
//! each call's arguments and `KIND_EXPERIMENTAL_PROVIDER`, and answers with
//! the REAL output captured from kind v0.27 (tests/fixtures/k8s/kind-cli).
//! The last test runs the real CLI on a real cluster from the test
//! cluster's node image (`HARNESS_KIND_NODE_IMAGE`, set by scripts/test).

use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "support/cluster.rs"]
mod cluster;
mod fake_api;
#[path = "support/kind.rs"]
mod kind_support;
#[path = "support/node.rs"]
mod node;

use harness::cluster::{ClusterError, KindCli, KindProvider, Provider, RetryPolicy};
use harness::config::{EngineKind, KindSpec};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/k8s/kind-cli");

/// A scratch directory with a stand-in kind whose behaviour per command is
/// given as shell `case` branches on "$1 $2".
struct StandIn {
    dir: tempfile::TempDir,
}

impl StandIn {
    fn new(branches: &str) -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            r#"#!/bin/sh
FX='{FIXTURES}'
DIR='{dir}'
printf '%s|%s\n' "${{KIND_EXPERIMENTAL_PROVIDER-unset}}" "$*" >> "$DIR/calls"
replay() {{ cat "$FX/$1.stdout.txt"; cat "$FX/$1.stderr.txt" >&2; exit "$(cat "$FX/$1.exitcode.txt")"; }}
# How many times this command was called, this call included.
nth() {{ n=$(grep -c "|$1" "$DIR/calls"); echo "$n"; }}
case "$1 $2" in
{branches}
*) echo "stand-in kind: unexpected call: $*" >&2; exit 99 ;;
esac
"#,
            dir = dir.path().display()
        );
        let path = dir.path().join("kind");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        StandIn { dir }
    }

    fn binary(&self) -> PathBuf {
        self.dir.path().join("kind")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("home/.kube/audit-e2e-config")
    }

    fn provider(&self, engine: EngineKind) -> KindProvider {
        let spec = KindSpec {
            config: Some(Path::new(FIXTURES).join("kind-config.yaml")),
            node_image: Some("kindest/node:v1.33.1".into()),
            engine,
            min_version: semver::Version::new(0, 20, 0),
        };
        let cli = KindCli::new(engine)
            .with_binary(self.binary())
            .with_retry(RetryPolicy {
                attempts: 3,
                backoff: Duration::from_millis(10),
            });
        KindProvider::new(cli, "audit-e2e", &spec, self.kubeconfig())
    }

    /// Each call as (KIND_EXPERIMENTAL_PROVIDER, arguments).
    fn calls(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let (env, args) = l.split_once('|').unwrap();
                (env.to_owned(), args.to_owned())
            })
            .collect()
    }

    fn args(&self) -> Vec<String> {
        self.calls().into_iter().map(|(_, a)| a).collect()
    }
}

/// A cluster an earlier `up` recorded is found by the Docker engine's
/// containers carrying kind's label for it, without asking kind (which
/// here knows no cluster at all); with no such container, kind is asked.
#[tokio::test]
async fn a_recorded_cluster_is_found_by_its_labelled_container_before_kind_is_asked() {
    if !node::engine_available() {
        return;
    }
    let kind = StandIn::new(r#""get clusters") echo "No kind clusters found." >&2 ;;"#);
    let name = format!("recorded-{}", std::process::id());
    let provider = plain_provider(kind.binary(), &name, kind.kubeconfig());
    assert!(!provider.recorded_exists().await.unwrap());
    assert_eq!(kind.args(), ["get clusters"], "no container: kind is asked");

    // A stopped container is enough: `kind get clusters` lists it too.
    let container = format!("{name}-control-plane");
    let created = std::process::Command::new("docker")
        .args(["create", "--name", &container, "--label"])
        .arg(format!("io.x-k8s.kind.cluster={name}"))
        .args(["harness/busybox:1", "true"])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let found = provider.recorded_exists().await;
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &container])
        .output();
    assert!(found.unwrap());
    assert_eq!(kind.args(), ["get clusters"], "kind was not asked again");
    // `exists` is kind's answer alone.
    assert!(!provider.exists().await.unwrap());
}

/// A Docker kind provider of cluster `name` through the kind at `binary`.
fn plain_provider(binary: PathBuf, name: &str, kubeconfig: PathBuf) -> KindProvider {
    kind_support::provider(
        KindCli::new(EngineKind::Docker).with_binary(binary),
        name,
        kubeconfig,
    )
}

/// `world`'s kubeconfig, pointing where nothing listens any more.
fn pointing_nowhere(world: &fake_api::world::World) -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    world.kubeconfig().replace(
        &world.url,
        &format!("http://{}", closed.local_addr().unwrap()),
    )
}

const CREATE_OK: &str = r#""create cluster") replay create-cluster ;;"#;
/// Other clusters on the host, one whose name starts with ours.
const OTHERS: &str = r#""get clusters") printf 'audit-e2e-old\nresearch\n' ;;"#;
const OURS: &str = r#""get clusters") printf 'audit-e2e-old\naudit-e2e\nresearch\n' ;;"#;

#[tokio::test]
async fn creates_with_every_flag_and_the_engine_pinned_on_every_call() {
    let kind = StandIn::new(&format!(
        "{OTHERS}\n{CREATE_OK}\n\"delete cluster\") replay delete-cluster ;;"
    ));
    let p = kind.provider(EngineKind::Podman);
    let ensured = p.ensure(false).await.unwrap();
    assert!(ensured.created);
    assert_eq!(ensured.kubeconfig, kind.kubeconfig());
    // kind writes into --kubeconfig; its directory must exist first.
    assert!(kind.kubeconfig().parent().unwrap().is_dir());
    p.delete().await.unwrap();
    let kc = kind.kubeconfig().display().to_string();
    assert_eq!(
        kind.args(),
        [
            "get clusters".to_owned(),
            format!(
                "create cluster --name audit-e2e --config {FIXTURES}/kind-config.yaml --image kindest/node:v1.33.1 --kubeconfig {kc} --wait 120s"
            ),
            format!("delete cluster --name audit-e2e --kubeconfig {kc}"),
        ]
    );
    let engines: Vec<String> = kind.calls().into_iter().map(|(e, _)| e).collect();
    assert_eq!(engines, ["podman", "podman", "podman"]);
}

#[tokio::test]
async fn a_cluster_whose_name_only_starts_with_ours_is_not_reused() {
    let kind = StandIn::new(&format!("{OTHERS}\n{CREATE_OK}"));
    let p = kind.provider(EngineKind::Docker);
    assert!(!p.exists().await.unwrap());
    let ensured = p.ensure(true).await.unwrap();
    assert!(ensured.created, "audit-e2e-old must not count as audit-e2e");
    assert!(
        kind.args()
            .iter()
            .any(|a| a.starts_with("create cluster --name audit-e2e "))
    );
    assert!(kind.calls().iter().all(|(e, _)| e == "docker"));
}

#[tokio::test]
async fn the_real_cluster_list_is_matched_exactly() {
    // The captured `kind get clusters`: fixtures, research, research2.
    let kind = StandIn::new(r#""get clusters") replay get-clusters ;;"#);
    let p = kind.provider(EngineKind::Docker);
    assert!(!p.exists().await.unwrap());
}

#[tokio::test]
async fn reuse_writes_the_kubeconfig_without_the_banner() {
    let kind = StandIn::new(&format!(
        r#"{OURS}
"get kubeconfig") echo 'enabling experimental podman provider'; replay get-kubeconfig ;;"#
    ));
    let p = kind.provider(EngineKind::Podman);
    let ensured = p.ensure(true).await.unwrap();
    assert!(!ensured.created);
    let written = std::fs::read_to_string(kind.kubeconfig()).unwrap();
    let fixture =
        std::fs::read_to_string(Path::new(FIXTURES).join("get-kubeconfig.stdout.txt")).unwrap();
    assert_eq!(written, fixture);
    assert!(written.starts_with("apiVersion: v1\n"));
    assert_eq!(
        kind.args(),
        ["get clusters", "get kubeconfig --name audit-e2e"]
    );
    assert!(kind.calls().iter().all(|(e, _)| e == "podman"));
}

/// A second `up`: the kubeconfig the first one wrote is kept while the API
/// server answers through it (`kind get kubeconfig` costs 0.4 s), and
/// written again when it does not answer (a cluster made again).
#[tokio::test]
async fn reuse_keeps_a_kubeconfig_that_answers_and_rewrites_one_that_does_not() {
    let kind = StandIn::new(&format!(
        r#"{OURS}
"get kubeconfig") replay get-kubeconfig ;;"#
    ));
    let world = fake_api::world::World::new();
    std::fs::create_dir_all(kind.kubeconfig().parent().unwrap()).unwrap();
    std::fs::write(kind.kubeconfig(), world.kubeconfig()).unwrap();
    let p = kind.provider(EngineKind::Docker);
    p.ensure(true).await.unwrap();
    assert_eq!(kind.args(), ["get clusters"]);
    assert_eq!(
        std::fs::read_to_string(kind.kubeconfig()).unwrap(),
        world.kubeconfig()
    );

    // Nothing listens where it points now.
    std::fs::write(kind.kubeconfig(), pointing_nowhere(&world)).unwrap();
    p.ensure(true).await.unwrap();
    assert_eq!(
        kind.args(),
        [
            "get clusters",
            "get clusters",
            "get kubeconfig --name audit-e2e"
        ]
    );
    let fixture =
        std::fs::read_to_string(Path::new(FIXTURES).join("get-kubeconfig.stdout.txt")).unwrap();
    assert_eq!(std::fs::read_to_string(kind.kubeconfig()).unwrap(), fixture);
}

/// A second `up` looks ahead while its other phases run: a cluster known to
/// exist is reused on that look's answer without asking kind anything; the
/// answer is used once, and a kubeconfig that no longer answers is
/// fetched again.
#[tokio::test]
async fn a_look_ahead_answers_the_reuse_of_a_cluster_known_to_exist_once() {
    let kind = StandIn::new(r#""get kubeconfig") replay get-kubeconfig ;;"#);
    let world = fake_api::world::World::new();
    std::fs::create_dir_all(kind.kubeconfig().parent().unwrap()).unwrap();
    std::fs::write(kind.kubeconfig(), world.kubeconfig()).unwrap();
    let p = kind.provider(EngineKind::Docker);
    // No engine where it looks for the nodes: that look fails, unused.
    p.look_ahead(bollard::Docker::connect_with_host("tcp://127.0.0.1:1").unwrap());
    let ensured = p.ensure_known(true, true).await.unwrap();
    assert!(!ensured.created);
    assert!(kind.args().is_empty(), "{:?}", kind.args());

    std::fs::write(kind.kubeconfig(), pointing_nowhere(&world)).unwrap();
    p.ensure_known(true, true).await.unwrap();
    assert_eq!(kind.args(), ["get kubeconfig --name audit-e2e"]);
}

#[tokio::test]
async fn an_existing_cluster_is_not_recreated_unless_reused() {
    let kind = StandIn::new(&format!("{OURS}\n{CREATE_OK}"));
    let err = kind
        .provider(EngineKind::Docker)
        .ensure(false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClusterError::AlreadyExists { name } if name == "audit-e2e"),
        "{err:?}"
    );
    assert!(err.help().contains("--reuse"));
    assert_eq!(kind.args(), ["get clusters"]);
}

#[tokio::test]
async fn deleting_a_missing_cluster_succeeds() {
    let kind = StandIn::new(r#""delete cluster") replay delete-cluster-missing ;;"#);
    kind.provider(EngineKind::Docker).delete().await.unwrap();
    assert_eq!(kind.args().len(), 1);
}

#[tokio::test]
async fn a_missing_cluster_kubeconfig_error_carries_kinds_stderr_and_a_fix() {
    let kind = StandIn::new(r#""get kubeconfig") replay get-kubeconfig-missing-cluster ;;"#);
    let err = kind
        .provider(EngineKind::Docker)
        .write_kubeconfig()
        .await
        .unwrap_err();
    let ClusterError::Kind {
        command,
        status,
        stderr,
        fix,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(command, "kind get kubeconfig --name audit-e2e");
    assert_eq!(status, "exit 1");
    assert!(stderr.contains("could not locate any control plane nodes"));
    assert_eq!(
        fix,
        "cluster `audit-e2e` does not exist on docker: run harness up"
    );
    assert!(
        err.to_string()
            .contains("could not locate any control plane nodes")
    );
    assert!(!kind.kubeconfig().exists());
    // Not transient: asked once.
    assert_eq!(kind.args().len(), 1);
}

#[tokio::test]
async fn a_transient_runtime_error_is_retried() {
    let kind = StandIn::new(&format!(
        r#"{OTHERS}
"create cluster") if [ "$(nth 'create cluster')" = 1 ]; then
    echo 'ERROR: failed to create cluster: command "podman run --name audit-e2e-control-plane ..." failed with error: exit status 126' >&2
    echo 'Command Output: Error: crun: unknown version specified: OCI runtime error' >&2
    exit 1
  fi
  replay create-cluster ;;"#
    ));
    let ensured = kind
        .provider(EngineKind::Podman)
        .ensure(false)
        .await
        .unwrap();
    assert!(ensured.created);
    let creates = kind
        .args()
        .iter()
        .filter(|a| a.starts_with("create cluster"))
        .count();
    assert_eq!(creates, 2);
}

#[tokio::test]
async fn retries_are_bounded() {
    let kind = StandIn::new(&format!(
        r#"{OTHERS}
"create cluster") echo 'Error: crun: unknown version specified: OCI runtime error' >&2; exit 1 ;;"#
    ));
    let err = kind
        .provider(EngineKind::Podman)
        .ensure(false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("crun: unknown version specified"),
        "{err}"
    );
    let creates = kind
        .args()
        .iter()
        .filter(|a| a.starts_with("create cluster"))
        .count();
    assert_eq!(creates, 3, "RetryPolicy.attempts is 3");
}

#[tokio::test]
async fn a_real_error_is_not_retried() {
    let kind = StandIn::new(&format!(
        r#"{OTHERS}
"create cluster") echo 'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "audit-e2e"' >&2; exit 1 ;;"#
    ));
    let err = kind
        .provider(EngineKind::Docker)
        .ensure(false)
        .await
        .unwrap_err();
    let ClusterError::Kind { fix, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        fix.contains("kind delete cluster --name audit-e2e"),
        "{fix}"
    );
    let creates = kind
        .args()
        .iter()
        .filter(|a| a.starts_with("create cluster"))
        .count();
    assert_eq!(creates, 1);
}

#[tokio::test]
async fn a_missing_kind_binary_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = plain_provider(dir.path().join("no-kind"), "x", dir.path().join("kc"));
    let err = p.exists().await.unwrap_err();
    assert!(matches!(err, ClusterError::KindMissing { .. }), "{err:?}");
    assert!(err.help().contains("install kind"));
}

// ---- the real kind CLI, as far as this machine allows without a cluster ----

/// Docker and kind answer; fails under HARNESS_REQUIRE_ENGINE=1 when not.
fn real_kind_available() -> bool {
    let ok = |cmd: &str| {
        std::process::Command::new(cmd)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let up = ok("docker") && ok("kind");
    if !up {
        assert!(
            std::env::var("HARNESS_REQUIRE_ENGINE").as_deref() != Ok("1"),
            "Docker and kind are required (HARNESS_REQUIRE_ENGINE=1): run scripts/install-deps"
        );
        eprintln!("skipped: no Docker daemon or no kind here");
    }
    up
}

fn unique_name() -> String {
    let mut b = [0u8; 3];
    getrandom::fill(&mut b).unwrap();
    format!(
        "harness-t{}-{:02x}{:02x}{:02x}",
        std::process::id(),
        b[0],
        b[1],
        b[2]
    )
}

#[tokio::test]
async fn real_kind_accepts_every_create_flag_and_reports_an_unpullable_node_image() {
    if !real_kind_available() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let name = unique_name();
    let spec = KindSpec {
        config: Some(Path::new(FIXTURES).join("kind-config.yaml")),
        // Nothing can be pulled here, so creation stops at the node image,
        // after kind has parsed every flag.
        node_image: Some("harness-test/no-such-node:1".into()),
        engine: EngineKind::Docker,
        min_version: semver::Version::new(0, 20, 0),
    };
    let p = KindProvider::new(
        KindCli::new(EngineKind::Docker),
        &name,
        &spec,
        harness::cluster::kind::kubeconfig_path(home.path(), &name),
    );
    assert!(!p.exists().await.unwrap());
    let err = p.ensure(false).await.unwrap_err();
    let ClusterError::Kind { stderr, fix, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(!stderr.contains("unknown flag"), "{stderr}");
    // kind says which engine it was pinned to.
    assert!(
        stderr.contains("using docker due to KIND_EXPERIMENTAL_PROVIDER"),
        "{stderr}"
    );
    assert!(
        stderr.contains("failed to pull image \"harness-test/no-such-node:1\""),
        "{stderr}"
    );
    assert!(
        fix.starts_with(
            "harness-test/no-such-node:1 cannot be pulled here: load it into the docker engine"
        ),
        "{fix}"
    );
    assert!(
        fix.contains("cluster.kind.node_image / HARNESS_KIND_NODE_IMAGE"),
        "{fix}"
    );
    // kind's words once, from its ERROR: line, without its progress lines.
    let text = err.to_string();
    assert!(!text.contains("Ensuring node image"), "{text}");
    assert_eq!(text.matches("failed to pull image").count(), 1, "{text}");
    // kind cleaned up after the failed create; deleting again is fine.
    assert!(!p.exists().await.unwrap());
    p.delete().await.unwrap();
}

// ---- the real kind CLI with a real cluster (the test cluster's node image) ----

fn real_provider(name: &str, home: &Path, node_image: &str) -> KindProvider {
    let spec = KindSpec {
        config: None,
        node_image: Some(node_image.to_owned()),
        engine: EngineKind::Docker,
        min_version: semver::Version::new(0, 20, 0),
    };
    KindProvider::new(
        KindCli::new(EngineKind::Docker),
        name,
        &spec,
        harness::cluster::kind::kubeconfig_path(home, name),
    )
}

#[tokio::test]
async fn real_kind_create_reuse_load_delete() {
    let Some(image) = cluster::node_image() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let p = real_provider(&unique_name(), home.path(), &image);
    let ensured = p.ensure(false).await.unwrap();
    assert!(ensured.created);
    assert!(p.exists().await.unwrap());
    let again = p.ensure(true).await.unwrap();
    assert!(!again.created);
    let kubeconfig = std::fs::read_to_string(p.kubeconfig()).unwrap();
    assert!(kubeconfig.starts_with("apiVersion:"));
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let images = [harness::cluster::ImageRef {
        name: "busybox".into(),
        reference: "harness/busybox:1".into(),
    }];
    let no_progress = harness::cluster::no_progress;
    let first = p.deliver(&docker, &images, &no_progress).await;
    let second = p.deliver(&docker, &images, &no_progress).await;
    p.delete().await.unwrap();
    assert!(!p.exists().await.unwrap());
    assert_eq!(
        first
            .unwrap()
            .count(|o| matches!(o, harness::cluster::LoadOutcome::Loaded { .. })),
        1
    );
    assert_eq!(second.unwrap().bytes_loaded(), 0);
}
