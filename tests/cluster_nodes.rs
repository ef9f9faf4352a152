//! Loading images into a node's real containerd, streamed from the real
//! Docker engine: a containerd-in-a-container stands in for a kind node
//! (tests/support/node.rs), found by kind's label like a real one.

#[path = "support/kind.rs"]
mod kind_support;
#[path = "support/node.rs"]
mod node;

use std::time::Duration;

use futures_util::{FutureExt as _, StreamExt as _};

use harness::cluster::nodes::{self, CtrInventory, Export, HeldBlobs, Target, Told};
use harness::cluster::{
    ClusterError, ImageRef, KindCli, KindProvider, LoadOutcome, LoadProgress, NodeLoad, Provider,
    Sending, SentWhole, no_progress,
};
use harness::config::EngineKind;
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
    kind_support::provider(
        KindCli::new(EngineKind::Docker),
        cluster,
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
    // containerd named the image before it failed to unpack it; a name left
    // behind would make the next load skip an image that is not there.
    let left = node.image_refs();
    assert!(
        !left
            .iter()
            .any(|r| r.contains("busybox") || r.contains(&id[7..])),
        "{left:?}"
    );
}

#[tokio::test]
async fn a_layout_the_node_cannot_complete_is_followed_by_the_whole_export() {
    if !node::engine_available() {
        return;
    }
    let node = node::Node::start();
    let docker = docker().await;
    let nodes = nodes::kind_nodes(&docker, &node.cluster).await.unwrap();
    let engine = nodes::engine_image(&docker, BUSYBOX).await.unwrap();
    // Said to hold busybox's bottom layer, the node holds nothing: the
    // layout leaves out a layer containerd then cannot find anywhere.
    let lie = HeldBlobs([(engine.diff_ids[0].clone(), 0)].into_iter().collect());
    let images = [Export {
        reference: BUSYBOX,
        id: &engine.id,
        diff_ids: &engine.diff_ids,
    }];
    let target = Target {
        node: &nodes[0],
        snapshotter: "overlayfs",
        held: Some(&lie),
        total: None,
    };
    let sending = std::sync::Mutex::new(Vec::<Sending>::new());
    let said = std::sync::Mutex::new(Vec::<SentWhole>::new());
    let told = Told {
        names: vec!["busybox".into()],
        whole: None,
        progress: &|p: LoadProgress<'_>| match p {
            LoadProgress::Sending(s) => sending.lock().unwrap().push(s.clone()),
            LoadProgress::SentWhole(w) => said.lock().unwrap().push(w.clone()),
            LoadProgress::Line(_) => {}
        },
    };
    let imported = nodes::import_into(&docker, &[target], &images, &told)
        .await
        .remove(0)
        .unwrap();
    let why = imported
        .whole_after
        .clone()
        .expect("the layout failed first");
    // containerd 1.6.20's words for a layer in neither the archive nor its store.
    let words = format!(
        "failed to extract layer {0}: failed to get reader from content store: content digest {0}: not found",
        engine.diff_ids[0]
    );
    assert!(why.contains(&words), "{why}");
    // The fallback is said once, before the whole export goes, in those words.
    assert_eq!(
        said.into_inner().unwrap(),
        [SentWhole {
            node: nodes[0].name.clone(),
            images: vec!["busybox".into()],
            why: why.clone(),
        }]
    );
    assert!(node.image_complete("docker.io/harness/busybox:1"));
    // Both tries were sent: the layout, then the whole export.
    let whole = export_len(&docker, &[BUSYBOX]).await;
    assert!(
        imported.total > whole && imported.total < 2 * whole,
        "{imported:?} vs {whole}"
    );
    assert_eq!(imported.bytes.iter().sum::<u64>(), imported.total);
    let last = sending.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.sent, imported.total, "progress counts both tries");
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
    let sent = std::sync::Mutex::new(0u64);
    let report = provider(&node.cluster)
        .deliver(&docker, &images, &|p: LoadProgress<'_>| {
            if let LoadProgress::Sending(s) = p {
                *sent.lock().unwrap() = s.sent;
            }
        })
        .await
        .unwrap();
    let sent = sent.into_inner().unwrap();

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
    assert_eq!(
        bytes.iter().sum::<u64>(),
        sent,
        "the lines add up to the bytes sent"
    );
    // The node held nothing: each layer went once, the engine's legacy
    // metadata traded for the layout's manifests and index.
    let alone = export_len(&docker, &[BUSYBOX]).await;
    assert!(
        bytes[0] >= alone - 8192 && bytes[0] <= alone + 8192,
        "{bytes:?} vs busybox alone {alone}"
    );
    for own in &bytes[1..] {
        assert!(
            (300_000..310_000).contains(own),
            "a top layer's share: {bytes:?}"
        );
    }
    let together = export_len(&docker, &[BUSYBOX, &a.0, &b.0]).await;
    assert!(sent <= together + 8192, "{sent} vs {together}");
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
    // The engine's export of the derived image carries busybox's layers
    // too, but the node holds them: only the derived image's own layer
    // went, with its config, manifest and index.
    let bytes = loaded_bytes(&report.loads[0]);
    assert!(
        (100_000..100_000 + 16_384).contains(&bytes),
        "{bytes} vs an export of {}",
        export_len(&docker, &[&derived.0]).await
    );
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

/// A client for the test cluster and its nodes (on kind, a node's name is
/// its container's), or `None` when there is none (see [`test_cluster`]).
async fn real_cluster() -> Option<(kube::Client, Vec<nodes::NodeContainer>)> {
    use kube::api::Api;
    if !node::engine_available() {
        return None;
    }
    let kubeconfig = test_cluster()?;
    let client = harness::k8s::connect(&harness::k8s::ClusterAccess {
        kubeconfig,
        context: None,
    })
    .await
    .expect("a client for $HARNESS_TEST_KUBECONFIG");
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
    Some((client, targets))
}

/// Runs a pod of `containers` (`imagePullPolicy: Never`, run once) in a
/// namespace of its own; its phase once it finished (within 90 s), with
/// its status when it did not succeed.
async fn run_pod(client: &kube::Client, containers: serde_json::Value) -> (String, String) {
    use harness::suites::{NamespaceProvisioner as _, OsRandom, namespace::namespace_name};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::Api;
    let namespaces = harness::k8s::KubeNamespaces::new(client.clone(), "load-test");
    let ns = namespace_name("load-test", 1, &mut OsRandom).unwrap();
    namespaces.create(&ns).await.unwrap();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "loaded"},
        "spec": {"restartPolicy": "Never", "containers": containers}
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
    let status = last.and_then(|p| p.status);
    let phase = status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    (phase, format!("{status:?}"))
}

fn never_pulled(name: &str, image: &str, script: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "image": image, "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
    })
}

#[tokio::test]
async fn images_loaded_together_run_in_a_real_cluster() {
    let Some((client, targets)) = real_cluster().await else {
        return;
    };
    let docker = docker().await;
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
        let (phase, status) = run_pod(
            &client,
            serde_json::json!([
                never_pulled("a", &a.0, "test -s /blob"),
                never_pulled("b", &b.0, "test -s /blob")
            ]),
        )
        .await;
        assert_eq!(phase, "Succeeded", "{status}");
    })
    .catch_unwind()
    .await;
    // Pass or fail, the nodes forget the test's images.
    forget(&docker, &targets, &ids).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The bytes the top layer of `reference` takes in the engine's export
/// (its tar header, data and padding).
async fn top_layer_bytes(docker: &bollard::Docker, reference: &str) -> u64 {
    let mut tally = harness::cluster::archive::Tally::new();
    let mut stream = std::pin::pin!(docker.export_images(&[reference]));
    while let Some(chunk) = stream.next().await {
        tally.feed(&chunk.unwrap());
    }
    let (entries, _, manifest) = tally.finish();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.unwrap()).unwrap();
    let top = manifest[0]["Layers"].as_array().unwrap().last().unwrap();
    let top = top.as_str().unwrap();
    entries.iter().find(|e| e.path == top).unwrap().bytes
}

#[tokio::test]
async fn a_second_image_sends_only_the_layer_it_adds_and_runs() {
    let Some((client, targets)) = real_cluster().await else {
        return;
    };
    let docker = docker().await;
    // b is a with one more layer: all of a's layers are b's too.
    let a = node::Derived::build(BUSYBOX, 200_000);
    let b = node::Derived::build(&a.0, 300_000);
    let ids = [
        nodes::engine_image_id(&docker, &a.0).await.unwrap(),
        nodes::engine_image_id(&docker, &b.0).await.unwrap(),
    ];
    let outcome = std::panic::AssertUnwindSafe(async {
        nodes::load_into_nodes(
            &docker,
            &targets,
            &[image("a", &a.0)],
            &CtrInventory,
            &no_progress,
        )
        .await
        .unwrap();
        let top = top_layer_bytes(&docker, &b.0).await;
        assert!(top > 300_000, "{top}");
        let sent = std::sync::Mutex::new(std::collections::HashMap::<String, u64>::new());
        let report = nodes::load_into_nodes(
            &docker,
            &targets,
            &[image("b", &b.0)],
            &CtrInventory,
            &|p: LoadProgress<'_>| {
                if let LoadProgress::Sending(s) = p {
                    sent.lock().unwrap().insert(s.node.clone(), s.sent);
                }
            },
        )
        .await
        .unwrap();
        let sent = sent.into_inner().unwrap();
        for node in &targets {
            let line = report.loads.iter().find(|l| l.node == node.name).unwrap();
            let bytes = loaded_bytes(line);
            assert_eq!(Some(&bytes), sent.get(&node.name), "{sent:?}");
            // b's own layer, then its config, manifest and index (a few
            // kB); none of a's 200 kB layer or busybox's 2 MB.
            assert!(
                bytes >= top && bytes - top < 16_384,
                "{} was sent {bytes} bytes; b's top layer is {top}",
                node.name
            );
        }
        // The kubelet runs b without pulling: its layer and a's are there.
        let (phase, status) = run_pod(
            &client,
            serde_json::json!([never_pulled(
                "b",
                &b.0,
                "test \"$(wc -c < /blob)\" -eq 300000"
            )]),
        )
        .await;
        assert_eq!(phase, "Succeeded", "{status}");
    })
    .catch_unwind()
    .await;
    forget(&docker, &targets, &ids).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
