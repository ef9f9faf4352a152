//! Loading images into a node's real containerd, streamed from the real
//! Docker engine: a containerd-in-a-container stands in for a kind node
//! (tests/support/node.rs), found by kind's label like a real one.

#[path = "support/node.rs"]
mod node;

use std::time::Duration;

use futures_util::{FutureExt as _, StreamExt as _};

use harness::cluster::nodes::{self, CtrInventory};
use harness::cluster::{
    ClusterError, ImageRef, KindCli, KindProvider, LoadOutcome, LoadProgress, NodeLoad, Provider,
    no_progress,
};
use harness::config::{EngineKind, KindSpec};
use harness::engine;

const BUSYBOX: &str = "harness/busybox:1";

async fn docker() -> bollard::Docker {
    let ep = engine::endpoint_from_env(EngineKind::Docker);
    engine::connect(&ep, Duration::from_secs(10))
        .await
        .unwrap()
        .0
}

fn provider(cluster: &str) -> KindProvider {
    let spec = KindSpec {
        config: None,
        node_image: None,
        engine: EngineKind::Docker,
        min_version: semver::Version::new(0, 20, 0),
    };
    KindProvider::new(
        KindCli::new(EngineKind::Docker),
        cluster,
        &spec,
        "/nonexistent/kubeconfig".into(),
    )
}

fn image(name: &str, reference: &str) -> ImageRef {
    ImageRef {
        name: name.into(),
        reference: reference.into(),
    }
}

#[tokio::test]
async fn streams_into_the_node_once_then_skips() {
    if !node::engine_available() {
        return;
    }
    let node = node::Node::start();
    let docker = docker().await;
    let kind = provider(&node.cluster);

    let found = kind.nodes(&docker).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, node.name);
    assert_eq!(found[0].role.as_deref(), Some("worker"));

    let images = [image("busybox", BUSYBOX)];
    let first = kind.deliver(&docker, &images, &no_progress).await.unwrap();
    assert_eq!(first.loads.len(), 1);
    assert_eq!(first.loads[0].node, node.name);
    let LoadOutcome::Loaded { bytes, .. } = first.loads[0].outcome else {
        panic!("first load: {:?}", first.loads[0]);
    };
    assert!(
        bytes > 1_000_000,
        "busybox archive is ~2 MB, streamed {bytes}"
    );
    let refs = node.image_refs();
    assert!(
        refs.contains(&"docker.io/harness/busybox:1".to_owned()),
        "{refs:?}"
    );

    // The node's containerd now holds the same content: nothing is sent.
    let second = kind.deliver(&docker, &images, &no_progress).await.unwrap();
    assert_eq!(second.loads[0].outcome, LoadOutcome::Skipped);
    assert_eq!(second.bytes_loaded(), 0);
}

#[tokio::test]
async fn same_content_under_a_new_name_is_tagged_not_loaded() {
    if !node::engine_available() {
        return;
    }
    let node = node::Node::start();
    let alias = node::Alias::of(BUSYBOX);
    let docker = docker().await;
    let nodes = nodes::kind_nodes(&docker, &node.cluster).await.unwrap();
    let heard = std::sync::Mutex::new(Vec::<NodeLoad>::new());
    let report = nodes::load_into_nodes(
        &docker,
        &nodes,
        &[image("busybox", BUSYBOX), image("alias", &alias.0)],
        &CtrInventory,
        &|p: LoadProgress<'_>| heard.lock().unwrap().extend(p.line().cloned()),
    )
    .await
    .unwrap();
    // Progress hears every line of the report, as it happens.
    assert_eq!(*heard.lock().unwrap(), report.loads);
    let outcomes: Vec<_> = report.loads.iter().map(|l| &l.outcome).collect();
    assert!(
        matches!(outcomes[0], LoadOutcome::Loaded { .. }),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], &LoadOutcome::Tagged);
    let want = nodes::normalize_reference(&alias.0);
    assert!(node.image_refs().contains(&want), "{want} not in the node");
}

/// The engine's `save` events for image `id` since `since` (Unix seconds).
fn saves_of(id: &str, since: u64) -> usize {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = std::process::Command::new("docker")
        .args([
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &now.to_string(),
        ])
        .args(["--filter", "type=image", "--filter", "event=save"])
        .args(["--format", "{{.ID}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim() == id)
        .count()
}

#[tokio::test]
async fn every_node_of_the_cluster_is_loaded_from_one_export() {
    if !node::engine_available() {
        return;
    }
    let a = node::Node::start();
    let b = node::Node::start_in(&a.cluster);
    a.record_ctr_calls();
    b.record_ctr_calls();
    let derived = node::Derived::build(BUSYBOX, 100_000);
    let docker = docker().await;
    let id = nodes::engine_image_id(&docker, &derived.0).await.unwrap();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let report = provider(&a.cluster)
        .deliver(&docker, &[image("derived", &derived.0)], &no_progress)
        .await
        .unwrap();
    let mut loaded: Vec<&str> = report
        .loads
        .iter()
        .filter(|l| matches!(l.outcome, LoadOutcome::Loaded { .. }))
        .map(|l| l.node.as_str())
        .collect();
    loaded.sort();
    let mut want = vec![a.name.as_str(), b.name.as_str()];
    want.sort();
    assert_eq!(loaded, want);
    let name = nodes::normalize_reference(&derived.0);
    for n in [&a, &b] {
        assert!(
            n.image_complete(&name),
            "{name} is not complete in {}",
            n.name
        );
        let imports = n
            .ctr_calls()
            .iter()
            .filter(|c| c.contains("images import"))
            .count();
        assert_eq!(imports, 1, "{}", n.name);
    }
    // Both nodes lacked the same image: the engine exported it once.
    assert_eq!(saves_of(&id, since), 1, "exports of {id}");
}

#[tokio::test]
async fn a_missing_image_fails_before_any_node_is_touched() {
    if !node::engine_available() {
        return;
    }
    let node = node::Node::start();
    let docker = docker().await;
    let err = provider(&node.cluster)
        .deliver(
            &docker,
            &[
                image("busybox", BUSYBOX),
                image("ghost", "harness-test/does-not-exist:1"),
            ],
            &no_progress,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClusterError::ImageMissing { reference } if reference == "harness-test/does-not-exist:1"),
        "{err:?}"
    );
    assert!(
        !node.image_refs().iter().any(|r| r.contains("busybox")),
        "busybox was loaded although the set was invalid"
    );
}

#[tokio::test]
async fn a_cluster_without_nodes_is_a_clear_error() {
    if !node::engine_available() {
        return;
    }
    let docker = docker().await;
    let err = nodes::kind_nodes(&docker, "harness-test-no-such-cluster")
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::NoNodes { .. }), "{err:?}");
    assert!(
        err.help()
            .contains("kind get nodes --name harness-test-no-such-cluster")
    );
}

#[tokio::test]
async fn a_failing_import_carries_ctr_stderr() {
    if !node::engine_available() {
        return;
    }
    let node = node::Node::start();
    let docker = docker().await;
    let nodes = nodes::kind_nodes(&docker, &node.cluster).await.unwrap();
    let id = nodes::engine_image_id(&docker, BUSYBOX).await.unwrap();
    // A snapshotter containerd does not have makes the real ctr fail.
    let err = nodes::import_images(
        &docker,
        &nodes[0],
        &[(BUSYBOX, id.as_str())],
        "no-such-snapshotter",
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ClusterError::NodeLoad { .. }), "{err:?}");
    assert!(
        msg.contains(&node.name) && msg.contains("exited") && msg.contains(BUSYBOX),
        "{msg}"
    );
}

/// Bytes of the engine's export of `references`, together in one archive.
async fn export_len(docker: &bollard::Docker, references: &[&str]) -> u64 {
    let mut stream = std::pin::pin!(docker.export_images(references));
    let mut n = 0;
    while let Some(chunk) = stream.next().await {
        n += chunk.unwrap().len() as u64;
    }
    n
}

fn loaded_bytes(line: &NodeLoad) -> u64 {
    match line.outcome {
        LoadOutcome::Loaded { bytes, .. } => bytes,
        ref other => panic!("{} was not loaded: {other:?}", line.reference),
    }
}

#[tokio::test]
async fn images_sharing_a_base_arrive_in_one_import_each_layer_once() {
    if !node::engine_available() {
        return;
    }
    let node = node::Node::start();
    node.record_ctr_calls();
    // Two images FROM busybox (~2 MB), each with a 300 kB top layer of its own.
    let a = node::Derived::build(BUSYBOX, 300_000);
    let b = node::Derived::build(BUSYBOX, 300_000);
    let docker = docker().await;
    let images = [
        image("busybox", BUSYBOX),
        image("a", &a.0),
        image("b", &b.0),
    ];
    let report = provider(&node.cluster)
        .deliver(&docker, &images, &no_progress)
        .await
        .unwrap();

    let imports: Vec<String> = node
        .ctr_calls()
        .into_iter()
        .filter(|c| c.contains("images import"))
        .collect();
    assert_eq!(
        imports.len(),
        1,
        "one import for the three images: {imports:?}"
    );
    for reference in [BUSYBOX, &a.0, &b.0] {
        let name = nodes::normalize_reference(reference);
        assert!(
            node.image_complete(&name),
            "{name} is not complete in the node"
        );
    }

    // Shared bytes count once: with busybox, which comes first.
    let bytes: Vec<u64> = report.loads.iter().map(loaded_bytes).collect();
    let together = export_len(&docker, &[BUSYBOX, &a.0, &b.0]).await;
    assert_eq!(
        bytes.iter().sum::<u64>(),
        together,
        "the lines add up to the stream"
    );
    let alone = export_len(&docker, &[BUSYBOX]).await;
    assert!(
        bytes[0] >= alone - 4096 && bytes[0] <= alone + 4096,
        "{bytes:?} vs busybox alone {alone}"
    );
    for own in &bytes[1..] {
        assert!(
            (300_000..330_000).contains(own),
            "a top layer's share: {bytes:?}"
        );
    }
    // Each layer once: far less than three separate exports.
    let separate = alone + export_len(&docker, &[&a.0]).await + export_len(&docker, &[&b.0]).await;
    assert!(
        together < separate - 2 * 1_900_000,
        "{together} vs {separate}"
    );
    // One import: one time for all its images.
    let seconds: Vec<f64> = report
        .loads
        .iter()
        .map(|l| match l.outcome {
            LoadOutcome::Loaded { seconds, .. } => seconds,
            _ => unreachable!(),
        })
        .collect();
    assert!(seconds.iter().all(|s| *s == seconds[0]), "{seconds:?}");

    // Again: everything is there by content; nothing is exported or imported.
    let again = provider(&node.cluster)
        .deliver(&docker, &images, &no_progress)
        .await
        .unwrap();
    assert!(
        again
            .loads
            .iter()
            .all(|l| l.outcome == LoadOutcome::Skipped),
        "{again:?}"
    );
    let imports = node
        .ctr_calls()
        .iter()
        .filter(|c| c.contains("images import"))
        .count();
    assert_eq!(imports, 1);
}

#[tokio::test]
async fn what_the_node_holds_is_reported_before_the_rest_is_imported() {
    if !node::engine_available() {
        return;
    }
    let node = node::Node::start();
    let docker = docker().await;
    let kind = provider(&node.cluster);
    kind.deliver(&docker, &[image("busybox", BUSYBOX)], &no_progress)
        .await
        .unwrap();
    node.record_ctr_calls();
    let derived = node::Derived::build(BUSYBOX, 100_000);
    let alias = node::Alias::of(BUSYBOX);
    // Progress hears each line as it is settled, and what ctr had been asked by then.
    let heard = std::sync::Mutex::new(Vec::<(NodeLoad, usize)>::new());
    let report = kind
        .deliver(
            &docker,
            &[
                image("derived", &derived.0),
                image("busybox", BUSYBOX),
                image("alias", &alias.0),
            ],
            &|p: LoadProgress<'_>| {
                let Some(load) = p.line() else { return };
                let imports = node
                    .ctr_calls()
                    .iter()
                    .filter(|c| c.contains("images import"))
                    .count();
                heard.lock().unwrap().push((load.clone(), imports));
            },
        )
        .await
        .unwrap();
    let heard = heard.into_inner().unwrap();
    let order: Vec<(&str, &LoadOutcome, usize)> = heard
        .iter()
        .map(|(l, imports)| (l.image.as_str(), &l.outcome, *imports))
        .collect();
    // busybox (held) and its alias (a tag of held content) come first,
    // before any import; then the one import brings the derived image.
    assert_eq!(order[0], ("busybox", &LoadOutcome::Skipped, 0), "{order:?}");
    assert_eq!(order[1], ("alias", &LoadOutcome::Tagged, 0), "{order:?}");
    assert_eq!(order[2].0, "derived");
    assert!(
        matches!(order[2].1, LoadOutcome::Loaded { .. }),
        "{order:?}"
    );
    assert_eq!(order[2].2, 1);
    // The report keeps the order the images were asked for.
    let names: Vec<&str> = report.loads.iter().map(|l| l.image.as_str()).collect();
    assert_eq!(names, ["derived", "busybox", "alias"]);
    // The one image imported has the whole archive: the engine's export of
    // an image always carries all its layers, busybox's included.
    let bytes = loaded_bytes(&report.loads[0]);
    assert_eq!(bytes, export_len(&docker, &[&derived.0]).await);
    assert!(node.image_complete(&nodes::normalize_reference(&derived.0)));
}

#[tokio::test]
async fn an_existing_clusters_load_command_gets_the_archive_on_stdin() {
    if !node::engine_available() {
        return;
    }
    // The load command of a cluster whose node runs containerd: the archive
    // arrives on stdin and goes to the node's ctr.
    let node = node::Node::start();
    let docker = docker().await;
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    let spec = harness::config::ExistingSpec {
        kubeconfig: Some(kubeconfig.path().to_owned()),
        context: None,
        load_command: Some(
            [
                "docker", "exec", "-i", &node.name, "ctr", "-n", "k8s.io", "images", "import", "-",
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
    };
    let existing = harness::cluster::ExistingProvider::new("ci", &spec);
    let report = existing
        .deliver(&docker, &[image("busybox", BUSYBOX)], &no_progress)
        .await
        .unwrap();
    assert!(
        matches!(report.loads[0].outcome, LoadOutcome::Loaded { bytes, .. } if bytes > 1_000_000),
        "{report:?}"
    );
    assert!(
        node.image_refs()
            .contains(&"docker.io/harness/busybox:1".to_owned())
    );

    // Without a load command, images are left to the registry.
    let registry = harness::config::ExistingSpec {
        load_command: None,
        ..spec
    };
    let report = harness::cluster::ExistingProvider::new("ci", &registry)
        .deliver(&docker, &[image("busybox", BUSYBOX)], &no_progress)
        .await
        .unwrap();
    assert_eq!(report.loads[0].outcome, LoadOutcome::NotDelivered);
}

// ------------------------------------------------------------------ on a real cluster

/// The test cluster's kubeconfig (`$HARNESS_TEST_KUBECONFIG`), or `None`
/// with a notice; a failure when `HARNESS_REQUIRE_CLUSTER=1`.
fn test_cluster() -> Option<std::path::PathBuf> {
    match std::env::var_os("HARNESS_TEST_KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(path) => Some(path.into()),
        None => {
            assert!(
                std::env::var("HARNESS_REQUIRE_CLUSTER").as_deref() != Ok("1"),
                "a test cluster is required (HARNESS_REQUIRE_CLUSTER=1): set HARNESS_TEST_KUBECONFIG \
                 to the kubeconfig of a kind cluster (scripts/test-cluster makes one)"
            );
            eprintln!("skipped: HARNESS_TEST_KUBECONFIG is not set (no test cluster)");
            None
        }
    }
}

/// Removes the images from the nodes' containerd, by every name they have.
async fn forget(docker: &bollard::Docker, nodes: &[nodes::NodeContainer], ids: &[String]) {
    use harness::cluster::nodes::InventorySource as _;
    for node in nodes {
        let Ok(inventory) = CtrInventory.inventory(docker, node).await else {
            continue;
        };
        let mut cmd = vec!["ctr", "--namespace=k8s.io", "images", "rm"];
        for image in &inventory.images {
            if image.id.as_ref().is_some_and(|id| ids.contains(id)) {
                cmd.extend(image.names.iter().map(String::as_str));
                cmd.extend(image.id.iter().map(String::as_str));
            }
        }
        if cmd.len() > 4 {
            let _ = nodes::exec(docker, &node.name, &cmd).await;
        }
    }
}

/// Creates `pod`, again when the API server says to retry (Kubernetes < 1.24
/// refuses pods until the new namespace's service account has its token,
/// and says when to come back), within a deadline.
async fn create_when_admitted(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    pod: &k8s_openapi::api::core::v1::Pod,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match pods.create(&Default::default(), pod).await {
            Ok(_) => return,
            Err(kube::Error::Api(status))
                if status.reason == "ServerTimeout" && tokio::time::Instant::now() < deadline =>
            {
                let after = status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .unwrap_or(1)
                    .max(1);
                tokio::time::sleep(Duration::from_secs(after.into())).await;
            }
            Err(e) => panic!("creating the pod: {e}"),
        }
    }
}

#[tokio::test]
async fn images_loaded_together_run_in_a_real_cluster() {
    use harness::suites::{NamespaceProvisioner as _, OsRandom, namespace::namespace_name};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::Api;

    if !node::engine_available() {
        return;
    }
    let Some(kubeconfig) = test_cluster() else {
        return;
    };
    let client = harness::k8s::connect(&harness::k8s::ClusterAccess {
        kubeconfig,
        context: None,
    })
    .await
    .expect("a client for $HARNESS_TEST_KUBECONFIG");
    let docker = docker().await;
    // On kind, a node's name is its container's.
    let node_list = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&Default::default())
        .await
        .unwrap();
    let targets: Vec<nodes::NodeContainer> = node_list
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .map(|name| nodes::NodeContainer {
            name,
            id: String::new(),
            role: None,
        })
        .collect();
    assert!(!targets.is_empty());

    let a = node::Derived::build(BUSYBOX, 200_000);
    let b = node::Derived::build(BUSYBOX, 200_000);
    let images = [image("a", &a.0), image("b", &b.0)];
    let ids = [
        nodes::engine_image_id(&docker, &a.0).await.unwrap(),
        nodes::engine_image_id(&docker, &b.0).await.unwrap(),
    ];
    let outcome = std::panic::AssertUnwindSafe(async {
        let report =
            nodes::load_into_nodes(&docker, &targets, &images, &CtrInventory, &no_progress)
                .await
                .unwrap();
        assert_eq!(report.loads.len(), 2 * targets.len());
        for line in &report.loads {
            assert!(
                matches!(line.outcome, LoadOutcome::Loaded { .. }),
                "{line:?}"
            );
        }
        // The node's containerd now holds them by content.
        let again = nodes::load_into_nodes(&docker, &targets, &images, &CtrInventory, &no_progress)
            .await
            .unwrap();
        assert!(
            again
                .loads
                .iter()
                .all(|l| l.outcome == LoadOutcome::Skipped),
            "{again:?}"
        );

        // The kubelet runs them without pulling: both images' top layers are there.
        let namespaces = harness::k8s::KubeNamespaces::new(client.clone(), "load-test");
        let ns = namespace_name("load-test", 1, &mut OsRandom).unwrap();
        namespaces.create(&ns).await.unwrap();
        let container = |name: &str, image: &str| {
            serde_json::json!({
                "name": name, "image": image, "imagePullPolicy": "Never",
                "command": ["sh", "-c", "test -s /blob"],
            })
        };
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "loaded"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [container("a", &a.0), container("b", &b.0)],
            }
        }))
        .unwrap();
        let pods = Api::<Pod>::namespaced(client.clone(), &ns);
        create_when_admitted(&pods, &pod).await;
        let done = tokio::time::timeout(
            Duration::from_secs(90),
            kube::runtime::wait::await_condition(pods.clone(), "loaded", |p: Option<&Pod>| {
                p.and_then(|p| p.status.as_ref()?.phase.as_deref())
                    .is_some_and(|phase| phase == "Succeeded" || phase == "Failed")
            }),
        )
        .await;
        let last = pods.get("loaded").await.ok();
        // Asked to go, not waited on: the test's verdict is the pod's.
        let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
            .delete(&ns, &Default::default())
            .await;
        done.expect("the pod finished within 90 s").unwrap();
        let phase = last.as_ref().and_then(|p| p.status.as_ref()?.phase.clone());
        assert_eq!(
            phase.as_deref(),
            Some("Succeeded"),
            "{:?}",
            last.and_then(|p| p.status)
        );
    })
    .catch_unwind()
    .await;
    // Pass or fail, the nodes forget the test's images.
    forget(&docker, &targets, &ids).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
