//! Loading images into kind nodes without `kind load`'s waste.
//!
//! `kind load docker-image` saves every requested image into one temp tar and
//! re-imports it into every node whose `crictl inspecti` fails — and node
//! images without `crictl` (like the offline test cluster's) re-import every
//! time. Here, per node: an [`InventorySource`] says which images the node
//! already holds, by content (the image ID, i.e. the config digest, which
//! containerd's CRI plugin records as a `sha256:<id>` reference);
//! [`plan_node`] picks skip / tag / load for each wanted image; everything
//! the node lacks is streamed from **one** engine export
//! (`GET /images/get?names=a&names=b`, which writes each layer once however
//! many images share it) straight into **one**
//! `ctr --namespace=k8s.io images import --digests --snapshotter=<s> -`
//! over an exec with stdin attached — no temp file, and no
//! `--all-platforms`, which fails with "content digest not found" when the
//! engine uses the containerd image store (kind #3795). The tar headers are
//! counted as they pass ([`super::archive`]) to report bytes per image.
//! Skips and tags of content the node holds are reported before the import
//! starts, so the deploy can go ahead with them. Nodes load in parallel, and
//! nodes that lack the same images share one export, each chunk going to
//! every node's import ([`import_into`]): the engine builds the archive
//! once, as `kind load` does with its temp file.
//! The inventory is a trait so a Kubernetes `node.status.images` source can
//! be plugged in.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::ListContainersOptionsBuilder;
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;

use super::archive::Tally;
use super::{
    ClusterError, ImageRef, LoadOutcome, LoadProgress, LoadReport, NodeLoad, Progress, Sending,
};

/// The label kind puts on its node containers.
pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
const ROLE_LABEL: &str = "io.x-k8s.kind.role";

/// A node container of a kind cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeContainer {
    /// The container name (`audit-e2e-control-plane`).
    pub name: String,
    pub id: String,
    /// `control-plane` or `worker`, from kind's label.
    pub role: Option<String>,
}

/// One image a node holds: its names and, when known, its content ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeImage {
    /// Fully qualified references (`docker.io/library/busybox:1`).
    pub names: Vec<String>,
    /// The image ID (`sha256:` + config digest), when the source knows it.
    pub id: Option<String>,
}

/// Everything a node holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInventory {
    pub images: Vec<NodeImage>,
}

/// What to do with one wanted image on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The node holds this content under this name.
    Present,
    /// The node holds this content, but not under this name: tag `source`.
    Tag { source: String },
    /// The node lacks the content.
    Load,
    /// The node lacks the content, and an earlier image of the same load
    /// brings it: tag `source` (that image's name) once it is in.
    TagLoaded { source: String },
}

/// Decides by content: only an entry whose ID equals the engine's image ID
/// counts, so a stale image under the same tag is replaced, and an entry
/// without an ID (a source that knows only names) never proves anything.
pub fn decide(reference: &str, id: &str, inventory: &ImageInventory) -> Decision {
    let name = normalize_reference(reference);
    let mut same_content = inventory
        .images
        .iter()
        .filter(|i| i.id.as_deref() == Some(id));
    match same_content.clone().find(|i| i.names.contains(&name)) {
        Some(_) => Decision::Present,
        None => match same_content.next() {
            Some(_) => Decision::Tag {
                source: id.to_owned(),
            },
            None => Decision::Load,
        },
    }
}

/// The fully qualified form of an image reference, as containerd names
/// images: `busybox` → `docker.io/library/busybox:latest`,
/// `harness/app:1` → `docker.io/harness/app:1`, `localhost:5000/x` kept.
pub fn normalize_reference(reference: &str) -> String {
    let (first, rest) = match reference.split_once('/') {
        Some((first, rest)) => (Some(first), rest),
        None => (None, reference),
    };
    // Docker's rule: the first component is a registry when it has a dot
    // or a port, or is `localhost`.
    let mut out = match first {
        Some(d) if d.contains('.') || d.contains(':') || d == "localhost" => {
            format!("{d}/{rest}")
        }
        Some(org) => format!("docker.io/{org}/{rest}"),
        None => format!("docker.io/library/{rest}"),
    };
    let last = out.rsplit('/').next().unwrap_or_default();
    if !last.contains(':') && !last.contains('@') {
        out.push_str(":latest");
    }
    out
}

/// Parses `ctr images ls` (the table form). Rows sharing a manifest digest
/// are one image; the CRI plugin names each image also `sha256:<config
/// digest>`, which is the image ID the engine reports.
pub fn parse_ctr_images(stdout: &str) -> ImageInventory {
    let mut by_digest: Vec<(String, NodeImage)> = Vec::new();
    for line in stdout.lines().skip_while(|l| !l.starts_with("REF")).skip(1) {
        let mut cols = line.split_whitespace();
        let (Some(reference), Some(_media_type), Some(digest)) =
            (cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        let idx = match by_digest.iter().position(|(d, _)| d == digest) {
            Some(i) => i,
            None => {
                by_digest.push((digest.to_owned(), NodeImage::default()));
                by_digest.len() - 1
            }
        };
        let image = &mut by_digest[idx].1;
        if is_image_id(reference) {
            image.id = Some(reference.to_owned());
        } else {
            image.names.push(reference.to_owned());
        }
    }
    ImageInventory {
        images: by_digest.into_iter().map(|(_, i)| i).collect(),
    }
}

fn is_image_id(reference: &str) -> bool {
    reference
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The snapshotter the node's CRI plugin uses, from `containerd config
/// dump` (containerd 1.x: `[plugins."io.containerd.grpc.v1.cri".containerd]`;
/// 2.x: `[plugins."io.containerd.cri.v1.images"]`). Images imported with
/// another snapshotter would be unpacked where the kubelet never looks.
pub fn snapshotter_from_config(dump: &str) -> Option<String> {
    let mut in_section = false;
    for line in dump.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == r#"[plugins."io.containerd.grpc.v1.cri".containerd]"#
                || line == r#"[plugins."io.containerd.cri.v1.images"]"#;
            continue;
        }
        if in_section && let Some(value) = line.strip_prefix("snapshotter") {
            let value = value
                .trim_start()
                .strip_prefix('=')?
                .trim()
                .trim_matches('"');
            if !value.is_empty() {
                return Some(value.to_owned());
            }
        }
    }
    None
}

/// The command that imports an image archive from stdin into a node.
pub fn import_command(snapshotter: &str) -> Vec<String> {
    [
        "ctr",
        "--namespace=k8s.io",
        "images",
        "import",
        "--digests",
        &format!("--snapshotter={snapshotter}"),
        "-",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Where a node's image inventory comes from.
pub trait InventorySource: Sync {
    fn inventory(
        &self,
        docker: &Docker,
        node: &NodeContainer,
    ) -> impl Future<Output = Result<ImageInventory, ClusterError>> + Send;
}

/// Asks the node's containerd: `ctr --namespace=k8s.io images ls`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CtrInventory;

impl InventorySource for CtrInventory {
    async fn inventory(
        &self,
        docker: &Docker,
        node: &NodeContainer,
    ) -> Result<ImageInventory, ClusterError> {
        let out = exec(
            docker,
            &node.name,
            &["ctr", "--namespace=k8s.io", "images", "ls"],
        )
        .await?;
        if out.exit_code != 0 {
            return Err(ClusterError::NodeLoad {
                reference: "(listing images)".into(),
                node: node.name.clone(),
                detail: format!(
                    "ctr images ls exited {}: {}",
                    out.exit_code,
                    out.stderr.trim()
                ),
            });
        }
        Ok(parse_ctr_images(&out.stdout))
    }
}

/// The running node containers of kind cluster `cluster`, by label.
pub async fn kind_nodes(
    docker: &Docker,
    cluster: &str,
) -> Result<Vec<NodeContainer>, ClusterError> {
    let filters = HashMap::from([("label", vec![format!("{CLUSTER_LABEL}={cluster}")])]);
    let options = ListContainersOptionsBuilder::new()
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|source| ClusterError::Engine {
            what: format!("list the node containers of cluster `{cluster}`"),
            source,
        })?;
    let mut nodes: Vec<NodeContainer> = containers
        .into_iter()
        .filter_map(|c| {
            let name = c.names?.first()?.trim_start_matches('/').to_owned();
            Some(NodeContainer {
                name,
                id: c.id.unwrap_or_default(),
                role: c.labels.and_then(|mut l| l.remove(ROLE_LABEL)),
            })
        })
        .collect();
    if nodes.is_empty() {
        return Err(ClusterError::NoNodes {
            cluster: cluster.to_owned(),
        });
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// What an exec printed, and how it ended.
#[derive(Clone, Debug, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
    /// Bytes written to its stdin.
    pub stdin_bytes: u64,
}

/// Runs `cmd` in a container and collects its output.
pub async fn exec(
    docker: &Docker,
    container: &str,
    cmd: &[&str],
) -> Result<ExecOutput, ClusterError> {
    exec_with_stdin(
        docker,
        container,
        cmd,
        None::<futures_util::stream::Empty<Result<Vec<u8>, std::convert::Infallible>>>,
    )
    .await
}

/// Runs `cmd` in a container, streaming `stdin` (when given) into it and
/// closing it at the end; reads the output concurrently so neither side can
/// block the other.
pub async fn exec_with_stdin<S, B, E>(
    docker: &Docker,
    container: &str,
    cmd: &[&str],
    stdin: Option<S>,
) -> Result<ExecOutput, ClusterError>
where
    S: Stream<Item = Result<B, E>> + Send,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let engine = |what: &str, source| ClusterError::Engine {
        what: format!("{what} `{}` in container `{container}`", cmd.join(" ")),
        source,
    };
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdin: Some(stdin.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| engine("create exec", e))?;
    let started = docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| engine("start", e))?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        unreachable!("start_exec without detach is attached");
    };
    let pump = async {
        let mut written = 0u64;
        let mut failure = None;
        let attached = stdin.is_some();
        if let Some(stdin) = stdin {
            let mut stdin = std::pin::pin!(stdin);
            while let Some(chunk) = stdin.next().await {
                match chunk {
                    Ok(chunk) => {
                        let chunk = chunk.as_ref();
                        if let Err(e) = input.write_all(chunk).await {
                            failure = Some(format!("writing to the command's stdin: {e}"));
                            break;
                        }
                        written += chunk.len() as u64;
                    }
                    Err(e) => {
                        failure = Some(format!("reading the image export: {e}"));
                        break;
                    }
                }
            }
        }
        // Half-closes the connection: the command sees end of input. Without
        // stdin there is nothing to end, and the connection is left as is.
        if attached {
            let _ = input.shutdown().await;
        }
        (written, failure)
    };
    let drain = async {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(item) = output.next().await {
            match item.map_err(|e| engine("read the output of", e))? {
                bollard::container::LogOutput::StdOut { message } => {
                    stdout.extend_from_slice(&message)
                }
                bollard::container::LogOutput::StdErr { message } => {
                    stderr.extend_from_slice(&message)
                }
                _ => {}
            }
        }
        Ok::<_, ClusterError>((stdout, stderr))
    };
    let ((written, failure), drained) = tokio::join!(pump, drain);
    let (stdout, mut stderr) = drained?;
    if let Some(failure) = failure {
        stderr.extend_from_slice(format!("\nharness: {failure}").as_bytes());
    }
    // The output ends when the process does; the engine records the exit
    // code a moment later, so wait for it with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit_code = loop {
        let inspected = docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| engine("inspect", e))?;
        match (inspected.running, inspected.exit_code) {
            (Some(false), Some(code)) => break code,
            _ if Instant::now() >= deadline => break -1,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    Ok(ExecOutput {
        exit_code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        stdin_bytes: written,
    })
}

/// The image ID the engine has for `reference`.
pub async fn engine_image_id(docker: &Docker, reference: &str) -> Result<String, ClusterError> {
    engine_image(docker, reference).await.map(|(id, _)| id)
}

/// The engine's ID of an image and its size there (`Size`: its layers
/// unpacked, about what an export of it streams).
async fn engine_image(
    docker: &Docker,
    reference: &str,
) -> Result<(String, Option<u64>), ClusterError> {
    match docker.inspect_image(reference).await {
        Ok(image) => {
            let size = image.size.and_then(|s| u64::try_from(s).ok());
            image
                .id
                .map(|id| (id, size))
                .ok_or_else(|| ClusterError::ImageMissing {
                    reference: reference.to_owned(),
                })
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(ClusterError::ImageMissing {
            reference: reference.to_owned(),
        }),
        Err(source) => Err(ClusterError::Engine {
            what: format!("inspect image `{reference}`"),
            source,
        }),
    }
}

/// The snapshotter of a node's CRI plugin (`overlayfs` when its config does
/// not say, containerd's own default).
pub async fn node_snapshotter(
    docker: &Docker,
    node: &NodeContainer,
) -> Result<String, ClusterError> {
    let out = exec(docker, &node.name, &["containerd", "config", "dump"]).await?;
    Ok(snapshotter_from_config(&out.stdout).unwrap_or_else(|| "overlayfs".into()))
}

/// What one import into a node moved.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// Per image, in the order given, the bytes attributed to it (see
    /// [`super::archive::attribute`]); they sum to `total`.
    pub bytes: Vec<u64>,
    /// Bytes streamed into the node's `ctr import`.
    pub total: u64,
    /// From the export's first request to the import's exit.
    pub seconds: f64,
}

/// Streams one export of all `images` (reference, engine image ID) from
/// the engine into `node`'s containerd, in one `ctr import`: the engine
/// sends each layer once, however many of the images share it.
pub async fn import_images(
    docker: &Docker,
    node: &NodeContainer,
    images: &[(&str, &str)],
    snapshotter: &str,
) -> Result<Imported, ClusterError> {
    let told = Told {
        names: Vec::new(),
        total: None,
        progress: &super::no_progress,
    };
    import_into(docker, &[(node, snapshotter)], images, &told)
        .await
        .remove(0)
}

/// Whom an import tells how far it has come, and what it says.
pub struct Told<'a> {
    /// The images' lane file names, for [`Sending::images`].
    pub names: Vec<String>,
    /// About how many bytes the export has ([`Sending::total`]).
    pub total: Option<u64>,
    pub progress: Progress<'a>,
}

/// [`import_images`] into several nodes (each with its snapshotter) from
/// one export: the engine makes the archive once — Docker writes all of it
/// out before it sends the first byte — and every chunk goes to each
/// node's import, at the pace of the slowest. One result per node.
pub async fn import_into(
    docker: &Docker,
    targets: &[(&NodeContainer, &str)],
    images: &[(&str, &str)],
    told: &Told<'_>,
) -> Vec<Result<Imported, ClusterError>> {
    let started = Instant::now();
    let references: Vec<&str> = images.iter().map(|(r, _)| *r).collect();
    let mut tally = Tally::new();
    let (senders, receivers): (Vec<_>, Vec<_>) = targets
        .iter()
        .map(|_| tokio::sync::mpsc::channel::<bytes::Bytes>(16))
        .unzip();
    // Bytes each node's import was given; told at most every interval.
    let mut sent = vec![0u64; targets.len()];
    let mut throttle = crate::throttle::Throttle::new(crate::throttle::PROGRESS_INTERVAL);
    let tell = |sent: &[u64]| {
        for (&(node, _), &sent) in targets.iter().zip(sent) {
            (told.progress)(LoadProgress::Sending(&Sending {
                node: node.name.clone(),
                images: told.names.clone(),
                sent,
                total: told.total,
            }));
        }
    };
    let pump = async {
        let mut senders: Vec<Option<_>> = senders.into_iter().map(Some).collect();
        // Docker writes the whole archive before it sends its first byte:
        // say at once that the export is on its way.
        throttle.ready(Instant::now());
        tell(&sent);
        let mut export = std::pin::pin!(docker.export_images(&references));
        while let Some(chunk) = export.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            tally.feed(&chunk);
            for (slot, sent) in senders.iter_mut().zip(sent.iter_mut()) {
                // An import that stopped reading is left out; its own
                // result says why.
                if let Some(tx) = slot {
                    match tx.send(chunk.clone()).await {
                        Ok(()) => *sent += chunk.len() as u64,
                        Err(_) => *slot = None,
                    }
                }
            }
            if throttle.ready(Instant::now()) {
                tell(&sent);
            }
            if senders.iter().all(Option::is_none) {
                break;
            }
        }
        if throttle.flush() {
            tell(&sent);
        }
        // The senders go here: each import sees the end of its input.
        Ok::<_, String>(())
    };
    let imports = targets
        .iter()
        .zip(receivers)
        .map(|(&(node, snapshotter), rx)| async move {
            let cmd = import_command(snapshotter);
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let stdin = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
            });
            let out = exec_with_stdin(docker, &node.name, &cmd, Some(stdin)).await;
            (out, cmd.join(" "), started.elapsed().as_secs_f64())
        });
    let (pumped, outs) = tokio::join!(pump, futures_util::future::join_all(imports));
    let total = tally.total();
    let (entries, loose, manifest) = tally.finish();
    let ids: Vec<&str> = images.iter().map(|(_, id)| *id).collect();
    let bytes = super::archive::attribute(&entries, loose, manifest.as_deref(), &ids);
    targets
        .iter()
        .zip(outs)
        .map(|(&(node, _), (out, cmd, seconds))| {
            let out = out?;
            let failure = match (&pumped, out.exit_code) {
                (Ok(()), 0) => None,
                (Ok(()), code) => Some(format!(
                    "`{cmd}` exited {code}: {}",
                    super::last_lines(&out.stderr, 6)
                )),
                (Err(export), code) => Some(format!(
                    "the engine's export failed: {export} (`{cmd}` exited {code}: {})",
                    super::last_lines(&out.stderr, 6)
                )),
            };
            if let Some(detail) = failure {
                return Err(ClusterError::NodeLoad {
                    reference: references.join(", "),
                    node: node.name.clone(),
                    detail,
                });
            }
            Ok(Imported {
                bytes: bytes.clone(),
                total,
                seconds,
            })
        })
        .collect()
}

/// What to do for each wanted image (reference, engine image ID) on one
/// node, in order: [`decide`] against what the node holds, and a second
/// name for content this load brings is a tag once it is in
/// ([`Decision::TagLoaded`]), so each content is exported once.
pub fn plan_node(wanted: &[(&str, &str)], inventory: &ImageInventory) -> Vec<Decision> {
    let mut loading: Vec<(&str, &str)> = Vec::new();
    wanted
        .iter()
        .map(|&(reference, id)| match decide(reference, id, inventory) {
            Decision::Load => match loading.iter().find(|(_, i)| *i == id) {
                Some((first, _)) => Decision::TagLoaded {
                    source: normalize_reference(first),
                },
                None => {
                    loading.push((reference, id));
                    Decision::Load
                }
            },
            held => held,
        })
        .collect()
}

/// Nodes lacking the same images, by the indices of those images: one
/// export serves each group.
pub fn group_by_load(needs: &[Vec<usize>]) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (node, load) in needs.iter().enumerate() {
        if load.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(l, _)| l == load) {
            Some((_, nodes)) => nodes.push(node),
            None => groups.push((load.clone(), vec![node])),
        }
    }
    groups
}

/// Puts every image into every node that lacks it. All nodes are asked at
/// once what they hold, and what they hold is reported straight away
/// (skips, and tags of held content: the deploy can go ahead with them);
/// then nodes lacking the same images get them from one export, streamed
/// into each node's one `ctr import` in parallel; then second names of
/// what arrived are tagged. `progress` hears each line as it is settled;
/// the report has them node by node, in the order of `images`.
pub async fn load_into_nodes(
    docker: &Docker,
    nodes: &[NodeContainer],
    images: &[ImageRef],
    source: &impl InventorySource,
    progress: Progress<'_>,
) -> Result<LoadReport, ClusterError> {
    // The engine's IDs first: a missing image fails before any node is touched.
    let mut wanted = Vec::with_capacity(images.len());
    let mut sizes = Vec::with_capacity(images.len());
    for image in images {
        let (id, size) = engine_image(docker, &image.reference).await?;
        wanted.push((image, id));
        sizes.push(size);
    }
    let pairs: Vec<(&str, &str)> = wanted
        .iter()
        .map(|(image, id)| (image.reference.as_str(), id.as_str()))
        .collect();
    let line = |node: &NodeContainer, i: usize, outcome: LoadOutcome| {
        let line = NodeLoad {
            image: wanted[i].0.name.clone(),
            reference: wanted[i].0.reference.clone(),
            node: node.name.clone(),
            outcome,
        };
        progress(LoadProgress::Line(&line));
        line
    };

    // What each node holds, and what it does not.
    let planned = futures_util::future::join_all(nodes.iter().map(|node| async {
        // The snapshotter is asked at the same time: one round trip less
        // before the import, when there is one.
        let (inventory, snapshotter) = tokio::join!(
            source.inventory(docker, node),
            node_snapshotter(docker, node)
        );
        let decisions = plan_node(&pairs, &inventory?);
        let mut lines: Vec<Option<NodeLoad>> = vec![None; wanted.len()];
        for (i, decision) in decisions.iter().enumerate() {
            match decision {
                Decision::Present => lines[i] = Some(line(node, i, LoadOutcome::Skipped)),
                Decision::Tag { source } => {
                    tag(docker, node, &wanted[i].0.reference, source).await?;
                    lines[i] = Some(line(node, i, LoadOutcome::Tagged));
                }
                Decision::Load | Decision::TagLoaded { .. } => {}
            }
        }
        Ok::<_, ClusterError>((decisions, lines, snapshotter))
    }))
    .await;
    let mut states = Vec::with_capacity(nodes.len());
    for state in planned {
        states.push(state?);
    }

    // What they lack: one export per set of missing images.
    let needs: Vec<Vec<usize>> = states
        .iter()
        .map(|(decisions, _, _)| {
            (0..wanted.len())
                .filter(|&i| decisions[i] == Decision::Load)
                .collect()
        })
        .collect();
    let mut snapshotters = Vec::with_capacity(nodes.len());
    for (n, (_, _, snapshotter)) in states.iter_mut().enumerate() {
        let s = match (
            needs[n].is_empty(),
            std::mem::replace(snapshotter, Ok(String::new())),
        ) {
            (true, _) => String::new(),
            (false, s) => s?,
        };
        snapshotters.push(s);
    }
    let groups = group_by_load(&needs);
    let imports = groups.iter().map(|(load, members)| {
        let targets: Vec<(&NodeContainer, &str)> = members
            .iter()
            .map(|&n| (&nodes[n], snapshotters[n].as_str()))
            .collect();
        let images: Vec<(&str, &str)> = load.iter().map(|&i| pairs[i]).collect();
        let told = Told {
            names: load.iter().map(|&i| wanted[i].0.name.clone()).collect(),
            total: load.iter().map(|&i| sizes[i]).sum(),
            progress,
        };
        async move { import_into(docker, &targets, &images, &told).await }
    });
    let imported = futures_util::future::join_all(imports).await;
    for ((load, members), results) in groups.iter().zip(imported) {
        for (&n, result) in members.iter().zip(results) {
            let imported = result?;
            for (k, &i) in load.iter().enumerate() {
                let outcome = LoadOutcome::Loaded {
                    bytes: imported.bytes[k],
                    seconds: imported.seconds,
                };
                states[n].1[i] = Some(line(&nodes[n], i, outcome));
            }
        }
    }

    // Second names of what arrived.
    let wanted = &wanted;
    let tagged = futures_util::future::join_all(nodes.iter().zip(&states).map(
        |(node, (decisions, _, _))| async move {
            let mut done = Vec::new();
            for (i, decision) in decisions.iter().enumerate() {
                if let Decision::TagLoaded { source } = decision {
                    tag(docker, node, &wanted[i].0.reference, source).await?;
                    done.push(i);
                }
            }
            Ok::<_, ClusterError>(done)
        },
    ))
    .await;
    let mut report = LoadReport::default();
    for ((node, (_, mut lines, _)), done) in nodes.iter().zip(states).zip(tagged) {
        for i in done? {
            lines[i] = Some(line(node, i, LoadOutcome::Tagged));
        }
        report.loads.extend(lines.into_iter().flatten());
    }
    Ok(report)
}

/// Names content the node holds (`source`: an image ID or another name) `reference`.
async fn tag(
    docker: &Docker,
    node: &NodeContainer,
    reference: &str,
    source: &str,
) -> Result<(), ClusterError> {
    let target = normalize_reference(reference);
    let out = exec(
        docker,
        &node.name,
        &[
            "ctr",
            "--namespace=k8s.io",
            "images",
            "tag",
            "--force",
            source,
            &target,
        ],
    )
    .await?;
    if out.exit_code != 0 {
        return Err(ClusterError::NodeLoad {
            reference: reference.to_owned(),
            node: node.name.clone(),
            detail: format!(
                "ctr images tag exited {}: {}",
                out.exit_code,
                out.stderr.trim()
            ),
        });
    }
    Ok(())
}

/// The engine's export of `reference`, as a byte stream (for load commands).
pub fn export(
    docker: &Docker,
    reference: &str,
) -> impl Stream<Item = Result<Vec<u8>, bollard::errors::Error>> + use<> {
    docker.export_image(reference).map_ok(|b| b.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "sha256:012ff3ef348ee3d771d93550bbd84d324315a1f68861c760e96a491f79bbc303";

    /// Captured from `ctr -n k8s.io images ls` in a containerd 1.6.20 node
    /// after one `docker save harness/busybox:1 | ctr images import --digests -`.
    const CTR_LS: &str = "\
REF                                                                                       TYPE                                                 DIGEST                                                                  SIZE    PLATFORMS   LABELS                          
docker.io/harness/busybox:1                                                               application/vnd.docker.distribution.manifest.v2+json sha256:12ce6d42b94d7f6974818cca2fa77a26cb46e865c24e37b73efb8ccd6f04de29 2.0 MiB linux/amd64 io.cri-containerd.image=managed 
import-2026-11-22@sha256:12ce6d42b94d7f6974818cca2fa77a26cb46e865c24e37b73efb8ccd6f04de29 application/vnd.docker.distribution.manifest.v2+json sha256:12ce6d42b94d7f6974818cca2fa77a26cb46e865c24e37b73efb8ccd6f04de29 2.0 MiB linux/amd64 io.cri-containerd.image=managed 
sha256:012ff3ef348ee3d771d93550bbd84d324315a1f68861c760e96a491f79bbc303                   application/vnd.docker.distribution.manifest.v2+json sha256:12ce6d42b94d7f6974818cca2fa77a26cb46e865c24e37b73efb8ccd6f04de29 2.0 MiB linux/amd64 io.cri-containerd.image=managed 
";

    #[test]
    fn ctr_listing_groups_names_by_manifest_and_finds_the_id() {
        let inv = parse_ctr_images(CTR_LS);
        assert_eq!(inv.images.len(), 1);
        assert_eq!(inv.images[0].id.as_deref(), Some(ID));
        assert_eq!(
            inv.images[0].names,
            [
                "docker.io/harness/busybox:1",
                "import-2026-11-22@sha256:12ce6d42b94d7f6974818cca2fa77a26cb46e865c24e37b73efb8ccd6f04de29"
            ]
        );
        // An empty store prints the header only.
        assert_eq!(
            parse_ctr_images(CTR_LS.lines().next().unwrap()),
            ImageInventory::default()
        );
        assert_eq!(parse_ctr_images(""), ImageInventory::default());
    }

    #[test]
    fn decisions_go_by_content() {
        let inv = parse_ctr_images(CTR_LS);
        let other = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let cases: &[(&str, &str, Decision)] = &[
            ("harness/busybox:1", ID, Decision::Present),
            ("docker.io/harness/busybox:1", ID, Decision::Present),
            // Same content, new name: a tag, not a load.
            ("harness/busybox:2", ID, Decision::Tag { source: ID.into() }),
            // Same name, other content (a rebuilt image): load.
            ("harness/busybox:1", other, Decision::Load),
            ("harness/app:1", other, Decision::Load),
        ];
        for (reference, id, want) in cases {
            assert_eq!(&decide(reference, id, &inv), want, "{reference} {id}");
        }
        // A source that knows names only proves nothing.
        let names_only = ImageInventory {
            images: vec![NodeImage {
                names: vec!["docker.io/harness/busybox:1".into()],
                id: None,
            }],
        };
        assert_eq!(decide("harness/busybox:1", ID, &names_only), Decision::Load);
    }

    #[test]
    fn a_load_exports_each_content_once() {
        let inv = parse_ctr_images(CTR_LS);
        let new = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let other = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
        let plan = plan_node(
            &[
                ("harness/app:1", new),
                ("harness/busybox:1", ID),
                ("harness/app:alias", new),
                ("harness/busybox:2", ID),
                ("harness/db:1", other),
            ],
            &inv,
        );
        assert_eq!(
            plan,
            [
                Decision::Load,
                Decision::Present,
                // Same content as the first line: a tag once it is in, by name.
                Decision::TagLoaded {
                    source: "docker.io/harness/app:1".into()
                },
                // Same content as the node holds: a tag now, by ID.
                Decision::Tag { source: ID.into() },
                Decision::Load,
            ]
        );
        assert!(plan_node(&[], &inv).is_empty());
    }

    #[test]
    fn nodes_lacking_the_same_images_share_an_export() {
        let needs = vec![vec![0, 2], vec![], vec![0, 2], vec![1], vec![0, 2]];
        assert_eq!(
            group_by_load(&needs),
            [(vec![0, 2], vec![0, 2, 4]), (vec![1], vec![3])]
        );
        assert!(group_by_load(&[vec![], vec![]]).is_empty());
    }

    #[test]
    fn references_normalize_like_docker() {
        for (input, want) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1", "docker.io/library/busybox:1"),
            ("harness/app:3f2a", "docker.io/harness/app:3f2a"),
            (
                "docker.io/library/postgres:16",
                "docker.io/library/postgres:16",
            ),
            ("quay.io/org/img", "quay.io/org/img:latest"),
            ("localhost:5000/app:1", "localhost:5000/app:1"),
            ("localhost/app", "localhost/app:latest"),
            ("ghcr.io/o/i@sha256:abcd", "ghcr.io/o/i@sha256:abcd"),
        ] {
            assert_eq!(normalize_reference(input), want, "{input}");
        }
    }

    #[test]
    fn snapshotter_is_read_from_the_cri_section() {
        let v1 = "[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"x\"\n    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n      default_runtime_name = \"runc\"\n      snapshotter = \"overlayfs\"\n    [plugins.\"io.containerd.snapshotter.v1.devmapper\"]\n      snapshotter = \"nope\"\n";
        assert_eq!(snapshotter_from_config(v1).as_deref(), Some("overlayfs"));
        let v2 = "version = 3\n[plugins.'x']\n[plugins.\"io.containerd.cri.v1.images\"]\n  snapshotter = \"native\"\n";
        assert_eq!(snapshotter_from_config(v2).as_deref(), Some("native"));
        assert_eq!(
            snapshotter_from_config("[plugins.\"other\"]\nsnapshotter = \"zfs\"\n"),
            None
        );
        assert_eq!(snapshotter_from_config(""), None);
    }

    #[test]
    fn import_never_asks_for_all_platforms() {
        let cmd = import_command("overlayfs").join(" ");
        assert_eq!(
            cmd,
            "ctr --namespace=k8s.io images import --digests --snapshotter=overlayfs -"
        );
        assert!(!cmd.contains("--all-platforms"));
    }

    /// What a real node of the 1.20 test cluster printed (containerd
    /// 1.6.20; tests/fixtures/node/README.md): two names of one image, the
    /// CRI's `sha256:` IDs, `import-` names, and the snapshotter.
    #[test]
    fn a_real_nodes_listing_and_configuration() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node");
        let listing = std::fs::read_to_string(dir.join("ctr-images-ls.txt")).unwrap();
        let inv = parse_ctr_images(&listing);
        assert_eq!(inv.images.len(), 10, "one per manifest digest");
        assert!(
            inv.images.iter().all(|i| i.id.is_some()),
            "the CRI names each by its ID"
        );
        // The engine's ID of fixtures/app:v1 (`docker image inspect`).
        let app = "sha256:8941c64f6aa5802479eb9e78b8b13a5f3c321a59490e602b01bb303d95e09a82";
        let image = inv
            .images
            .iter()
            .find(|i| i.id.as_deref() == Some(app))
            .unwrap();
        assert!(
            image
                .names
                .contains(&"docker.io/fixtures/app:v1".to_owned())
        );
        assert!(
            image
                .names
                .contains(&"docker.io/fixtures/app:latest".to_owned())
        );
        assert_eq!(decide("fixtures/app:v1", app, &inv), Decision::Present);
        assert_eq!(
            decide("fixtures/app:v2", app, &inv),
            Decision::Tag { source: app.into() }
        );
        let dump = std::fs::read_to_string(dir.join("containerd-config-dump.toml")).unwrap();
        assert_eq!(snapshotter_from_config(&dump).as_deref(), Some("overlayfs"));
    }
}
