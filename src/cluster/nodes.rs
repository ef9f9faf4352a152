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
//! engine uses the containerd image store (kind #3795). The inventory also
//! lists the blobs of the node's content store (`ctr content ls`), and the
//! export is rewritten on its way into each node ([`super::layout`]) so
//! that the node is sent only the blobs it lacks: a base layer its own
//! images share costs a read of the engine's stream, not a second import
//! (a node whose blobs are not known gets the whole export, its tar
//! headers counted as they pass by [`super::archive`]). Either way the
//! bytes are reported per image, as sent. Skips and tags of content the
//! node holds are reported before the import starts, so the deploy can go
//! ahead with them. Nodes load in parallel, and nodes that lack the same
//! images share one export, each chunk going to every node's import
//! ([`import_into`]): the engine builds the archive once, as `kind load`
//! does with its temp file. An import of a layout that fails is followed by
//! the whole export; the names a failed import leaves are removed. The
//! inventory is a trait so a Kubernetes `node.status.images` source can be
//! plugged in (without blobs: whole exports).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::ListContainersOptionsBuilder;
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;

use super::archive::Tally;
use super::layout::{ExportedImage, Layout, Sent};
use super::{
    ClusterError, ImageRef, LoadOutcome, LoadProgress, LoadReport, NodeLoad, Progress, Sending,
    SentWhole,
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
    /// The blobs of its content store, when the source can tell: with them
    /// a load sends only the blobs the node lacks; without, whole images.
    pub blobs: Option<HeldBlobs>,
}

/// The blobs a node's content store holds: digest (`sha256:<hex>`) →
/// about how many bytes (`ctr` prints sizes rounded to four digits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldBlobs(pub HashMap<String, u64>);

impl HeldBlobs {
    pub fn contains(&self, digest: &str) -> bool {
        self.0.contains_key(digest)
    }

    /// The digests, for a [`Layout`].
    pub fn digests(&self) -> HashSet<String> {
        self.0.keys().cloned().collect()
    }
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
        blobs: None,
    }
}

fn is_image_id(reference: &str) -> bool {
    reference
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Parses `ctr content ls` (`DIGEST SIZE AGE LABELS`, the size as go-units
/// prints it: `142.3MB`). Lines that do not start with a digest are
/// skipped; a size that cannot be read counts as 0 (it only feeds the
/// estimate of what a load sends).
pub fn parse_ctr_content(stdout: &str) -> HeldBlobs {
    let mut blobs = HashMap::new();
    for line in stdout.lines() {
        let mut cols = line.split_whitespace();
        let Some(digest) = cols.next() else { continue };
        let Some((alg, hex)) = digest.split_once(':') else {
            continue;
        };
        let len = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => continue,
        };
        if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            continue;
        }
        let size = cols.next().and_then(human_size).unwrap_or(0);
        blobs.insert(digest.to_owned(), size);
    }
    HeldBlobs(blobs)
}

/// A size as go-units' `HumanSize` writes it (`1.984MB`, `512B`, decimal
/// units), in bytes.
fn human_size(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "B" | "" => 1e0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "PB" => 1e15,
        _ => return None,
    };
    Some((number * scale).round() as u64)
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

/// Asks the node's containerd: `ctr --namespace=k8s.io images ls`, and
/// `content ls` for the blobs (when that fails, loads send whole images).
#[derive(Clone, Copy, Debug, Default)]
pub struct CtrInventory;

impl InventorySource for CtrInventory {
    async fn inventory(
        &self,
        docker: &Docker,
        node: &NodeContainer,
    ) -> Result<ImageInventory, ClusterError> {
        let (images, content) = tokio::join!(
            exec(
                docker,
                &node.name,
                &["ctr", "--namespace=k8s.io", "images", "ls"],
            ),
            exec(
                docker,
                &node.name,
                &["ctr", "--namespace=k8s.io", "content", "ls"],
            )
        );
        let out = images?;
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
        let blobs = match content {
            Ok(content) if content.exit_code == 0 => Some(parse_ctr_content(&content.stdout)),
            _ => None,
        };
        Ok(ImageInventory {
            blobs,
            ..parse_ctr_images(&out.stdout)
        })
    }
}

/// What a cluster's nodes held, asked before the load needed it: a second
/// `up` asks while its preflight, images and cluster phases run, so its
/// load only compares. Each node's inventory is used once; a node it lacks
/// (or could not be asked) is asked when the load comes to it.
#[derive(Debug, Default)]
pub struct LookedAhead {
    pub nodes: Vec<NodeContainer>,
    inventories: std::sync::Mutex<HashMap<String, ImageInventory>>,
}

impl LookedAhead {
    /// Nothing looked at: the load asks each of `nodes` itself.
    pub fn nothing(nodes: Vec<NodeContainer>) -> LookedAhead {
        LookedAhead {
            nodes,
            ..LookedAhead::default()
        }
    }

    /// Asks every node of kind cluster `cluster` what it holds, all at once.
    pub async fn look(docker: &Docker, cluster: &str) -> Result<LookedAhead, ClusterError> {
        let nodes = kind_nodes(docker, cluster).await?;
        let asked = futures_util::future::join_all(
            nodes
                .iter()
                .map(|node| CtrInventory.inventory(docker, node)),
        )
        .await;
        let inventories = nodes
            .iter()
            .zip(asked)
            .filter_map(|(node, inventory)| Some((node.name.clone(), inventory.ok()?)))
            .collect();
        Ok(LookedAhead {
            nodes,
            inventories: std::sync::Mutex::new(inventories),
        })
    }
}

impl InventorySource for LookedAhead {
    async fn inventory(
        &self,
        docker: &Docker,
        node: &NodeContainer,
    ) -> Result<ImageInventory, ClusterError> {
        let held = self
            .inventories
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&node.name);
        match held {
            Some(inventory) => Ok(inventory),
            None => CtrInventory.inventory(docker, node).await,
        }
    }
}

/// The containers carrying kind's label for `cluster`: running ones, or
/// every one (`all`, as `kind get clusters` counts them).
pub async fn labelled(
    docker: &Docker,
    cluster: &str,
    all: bool,
) -> Result<Vec<bollard::models::ContainerSummary>, bollard::errors::Error> {
    let filters = HashMap::from([("label", vec![format!("{CLUSTER_LABEL}={cluster}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(all)
        .filters(&filters)
        .build();
    docker.list_containers(Some(options)).await
}

/// The running node containers of kind cluster `cluster`, by label.
pub async fn kind_nodes(
    docker: &Docker,
    cluster: &str,
) -> Result<Vec<NodeContainer>, ClusterError> {
    let containers =
        labelled(docker, cluster, false)
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
    engine_image(docker, reference).await.map(|image| image.id)
}

/// What the engine says of an image before it exports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineImage {
    /// The image ID (`sha256:` + config digest).
    pub id: String,
    /// Its size there (`Size`: its layers unpacked, about what an export
    /// of it streams).
    pub size: Option<u64>,
    /// Its layers' diff IDs, bottom first (`RootFS.Layers`).
    pub diff_ids: Vec<String>,
}

/// The engine's ID of an image, its size and its layers.
pub async fn engine_image(docker: &Docker, reference: &str) -> Result<EngineImage, ClusterError> {
    match docker.inspect_image(reference).await {
        Ok(image) => {
            let size = image.size.and_then(|s| u64::try_from(s).ok());
            let diff_ids = image.root_fs.and_then(|r| r.layers).unwrap_or_default();
            image
                .id
                .map(|id| EngineImage { id, size, diff_ids })
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
    /// Per image, in the order given, the bytes of it the node was sent
    /// (see [`super::archive::attribute`] and [`super::layout`]); they sum
    /// to `total`.
    pub bytes: Vec<u64>,
    /// Bytes streamed into the node's `ctr import` (both tries, when there
    /// were two).
    pub total: u64,
    /// From the export's first request to the import's exit.
    pub seconds: f64,
    /// The images' blobs the node held and was not sent (digests).
    pub held: Vec<String>,
    /// Their bytes.
    pub held_bytes: u64,
    /// Why the node was sent the whole export after all: what went wrong
    /// with an archive of only what it lacked (`None` when nothing did).
    pub whole_after: Option<String>,
}

/// An image of an export.
#[derive(Clone, Copy, Debug)]
pub struct Export<'a> {
    pub reference: &'a str,
    /// The engine's image ID.
    pub id: &'a str,
    /// The engine's diff IDs of its layers (may be empty: the node is then
    /// sent whole layers it holds where the export does not name them).
    pub diff_ids: &'a [String],
}

/// One node an export goes to.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub node: &'a NodeContainer,
    pub snapshotter: &'a str,
    /// The blobs the node holds: with them it is sent an OCI layout of only
    /// what it lacks ([`super::layout`]); without, the whole export.
    pub held: Option<&'a HeldBlobs>,
    /// About how many bytes it will be sent ([`Sending::total`]).
    pub total: Option<u64>,
}

/// Streams one export of all `images` (reference, engine image ID) from
/// the engine into `node`'s containerd, whole, in one `ctr import`: the
/// engine sends each layer once, however many of the images share it.
pub async fn import_images(
    docker: &Docker,
    node: &NodeContainer,
    images: &[(&str, &str)],
    snapshotter: &str,
) -> Result<Imported, ClusterError> {
    let told = Told {
        names: Vec::new(),
        whole: None,
        progress: &super::no_progress,
    };
    let images: Vec<Export<'_>> = images
        .iter()
        .map(|&(reference, id)| Export {
            reference,
            id,
            diff_ids: &[],
        })
        .collect();
    let target = Target {
        node,
        snapshotter,
        held: None,
        total: None,
    };
    import_into(docker, &[target], &images, &told)
        .await
        .remove(0)
}

/// Whom an import tells how far it has come, and what it says.
pub struct Told<'a> {
    /// The images' lane file names, for [`Sending::images`].
    pub names: Vec<String>,
    /// About how many bytes the whole export has ([`Sending::total`] of a
    /// node sent it whole after its layout failed).
    pub whole: Option<u64>,
    pub progress: Progress<'a>,
}

/// [`import_images`] into several nodes from one export: the engine makes
/// the archive once — Docker writes all of it out before it sends the
/// first byte — and every chunk goes to each node's import, at the pace of
/// the slowest: whole, or (a node whose blobs are known) as a layout of
/// only what that node lacks. A node whose layout import fails is sent the
/// whole export once more (a second export, for all such nodes together;
/// [`LoadProgress::SentWhole`] says so, with the importer's words), so an
/// importer that refuses such archives, or a blob collected between
/// the look and the import, costs time, not the load. A node whose import
/// still fails loses every name of these images (they are images it did
/// not hold). One result per node.
pub async fn import_into(
    docker: &Docker,
    targets: &[Target<'_>],
    images: &[Export<'_>],
    told: &Told<'_>,
) -> Vec<Result<Imported, ClusterError>> {
    let started = Instant::now();
    let none = vec![0; targets.len()];
    let first = attempt(docker, targets, images, told, &none, started).await;
    let again: Vec<usize> = (0..targets.len()).filter(|&i| first[i].retry).collect();
    let mut results: Vec<Result<Imported, ClusterError>> = Vec::with_capacity(targets.len());
    let mut firsts = Vec::with_capacity(targets.len());
    for a in first {
        firsts.push(a.sent);
        results.push(a.result);
    }
    if !again.is_empty() {
        let whole: Vec<Target<'_>> = again
            .iter()
            .map(|&i| Target {
                held: None,
                total: told.whole,
                ..targets[i]
            })
            .collect();
        let before: Vec<u64> = again.iter().map(|&i| firsts[i]).collect();
        // Said before the second export starts: it is the slow road.
        let whys: Vec<String> = again
            .iter()
            .map(|&i| match &results[i] {
                Err(ClusterError::NodeLoad { detail, .. }) => detail.clone(),
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            })
            .collect();
        for (&i, why) in again.iter().zip(&whys) {
            (told.progress)(LoadProgress::SentWhole(&SentWhole {
                node: targets[i].node.name.clone(),
                images: told.names.clone(),
                why: why.clone(),
            }));
        }
        let second = attempt(docker, &whole, images, told, &before, started).await;
        for ((&i, a), why) in again.iter().zip(second).zip(whys) {
            results[i] = a.result.map(|mut imported| {
                imported.total += firsts[i];
                // The first try's bytes were sent too: with the first image.
                if let Some(first) = imported.bytes.first_mut() {
                    *first += firsts[i];
                }
                imported.whole_after = Some(why);
                imported
            });
        }
    }
    // containerd names an image before it unpacks it: a failed import can
    // leave names of content it never finished, which the next load would
    // take for present. They go (best effort; the error says what failed).
    let ids: Vec<&str> = images.iter().map(|i| i.id).collect();
    for (target, result) in targets.iter().zip(&results) {
        if result.is_err() {
            forget(docker, target.node, &ids).await;
        }
    }
    results
}

/// One try of [`import_into`], for one node.
struct Attempt {
    result: Result<Imported, ClusterError>,
    /// Bytes the node's import was given.
    sent: u64,
    /// Whether sending the whole export could still work: the node was
    /// sent a layout, and its import (or the layout) failed.
    retry: bool,
}

async fn attempt(
    docker: &Docker,
    targets: &[Target<'_>],
    images: &[Export<'_>],
    told: &Told<'_>,
    before: &[u64],
    started: Instant,
) -> Vec<Attempt> {
    let references: Vec<&str> = images.iter().map(|i| i.reference).collect();
    let exported: Vec<ExportedImage> = images
        .iter()
        .map(|i| ExportedImage {
            id: i.id.to_owned(),
            diff_ids: i.diff_ids.to_vec(),
        })
        .collect();
    let mut tally = Tally::new();
    let mut layouts: Vec<Option<Layout>> = targets
        .iter()
        .map(|t| {
            t.held
                .map(|held| Layout::new(exported.clone(), held.digests()))
        })
        .collect();
    let (senders, receivers): (Vec<_>, Vec<_>) = targets
        .iter()
        .map(|_| tokio::sync::mpsc::channel::<Result<bytes::Bytes, String>>(16))
        .unzip();
    // Bytes each node's import was given; told at most every interval.
    let mut sent = vec![0u64; targets.len()];
    let mut throttle = crate::throttle::Throttle::new(crate::throttle::PROGRESS_INTERVAL);
    let tell = |sent: &[u64]| {
        for ((target, &sent), &before) in targets.iter().zip(sent).zip(before) {
            (told.progress)(LoadProgress::Sending(&Sending {
                node: target.node.name.clone(),
                images: told.names.clone(),
                sent: before + sent,
                total: target.total,
            }));
        }
    };
    let pump = async {
        let mut senders: Vec<Option<_>> = senders.into_iter().map(Some).collect();
        let mut finished: Vec<Option<Result<Sent, super::layout::LayoutError>>> =
            targets.iter().map(|_| None).collect();
        // Docker writes the whole archive before it sends its first byte:
        // say at once that the export is on its way.
        throttle.ready(Instant::now());
        tell(&sent);
        let mut export = std::pin::pin!(docker.export_images(&references));
        let mut pieces = Vec::new();
        let mut failed = None;
        while let Some(chunk) = export.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            };
            tally.feed(&chunk);
            for k in 0..targets.len() {
                // An import that stopped reading is left out; its own
                // result says why.
                let Some(tx) = &senders[k] else { continue };
                pieces.clear();
                match &mut layouts[k] {
                    Some(layout) => layout.feed(&chunk, &mut pieces),
                    None => pieces.push(chunk.clone()),
                }
                for piece in pieces.drain(..) {
                    let len = piece.len() as u64;
                    if tx.send(Ok(piece)).await.is_err() {
                        senders[k] = None;
                        break;
                    }
                    sent[k] += len;
                }
            }
            if throttle.ready(Instant::now()) {
                tell(&sent);
            }
            if senders.iter().all(Option::is_none) {
                break;
            }
        }
        if failed.is_none() {
            // The layouts' own files, at the end.
            for k in 0..targets.len() {
                let Some(layout) = layouts[k].take() else {
                    continue;
                };
                pieces.clear();
                let done = layout.finish(&mut pieces);
                let Some(tx) = &senders[k] else {
                    finished[k] = Some(done);
                    continue;
                };
                match &done {
                    Ok(_) => {
                        for piece in pieces.drain(..) {
                            let len = piece.len() as u64;
                            if tx.send(Ok(piece)).await.is_err() {
                                break;
                            }
                            sent[k] += len;
                        }
                    }
                    // The import must not take a torn archive for a whole one.
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string())).await;
                    }
                }
                finished[k] = Some(done);
            }
        }
        if throttle.flush() {
            tell(&sent);
        }
        // The senders go here: each import sees the end of its input.
        drop(senders);
        (failed, finished)
    };
    let imports = targets
        .iter()
        .zip(receivers)
        .map(|(target, rx)| async move {
            let cmd = import_command(target.snapshotter);
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let stdin = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|chunk| (chunk, rx))
            });
            let out = exec_with_stdin(docker, &target.node.name, &cmd, Some(stdin)).await;
            (out, cmd.join(" "), started.elapsed().as_secs_f64())
        });
    let ((failed, finished), outs) = tokio::join!(pump, futures_util::future::join_all(imports));
    let total = tally.total();
    let (entries, loose, manifest) = tally.finish();
    let ids: Vec<&str> = images.iter().map(|i| i.id).collect();
    let whole = super::archive::attribute(&entries, loose, manifest.as_deref(), &ids);
    targets
        .iter()
        .zip(outs)
        .zip(finished)
        .zip(sent)
        .map(|(((target, (out, cmd, seconds)), layout), sent)| {
            let node = &target.node.name;
            let fail = |detail: String, retry: bool| Attempt {
                result: Err(ClusterError::NodeLoad {
                    reference: references.join(", "),
                    node: node.clone(),
                    detail,
                }),
                sent,
                retry,
            };
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    return Attempt {
                        result: Err(e),
                        sent,
                        retry: false,
                    };
                }
            };
            let said = || super::last_lines(&out.stderr, 6);
            if let Some(export) = &failed {
                return fail(
                    format!(
                        "the engine's export failed: {export} (`{cmd}` exited {}: {})",
                        out.exit_code,
                        said()
                    ),
                    false,
                );
            }
            let layout_mode = target.held.is_some();
            match (layout, out.exit_code) {
                (Some(Err(e)), code) => {
                    fail(format!("{e} (`{cmd}` exited {code}: {})", said()), true)
                }
                (_, code) if code != 0 => {
                    fail(format!("`{cmd}` exited {code}: {}", said()), layout_mode)
                }
                (Some(Ok(layout)), _) => Attempt {
                    result: Ok(Imported {
                        bytes: layout.per_image,
                        total: layout.total,
                        seconds,
                        held: layout.held,
                        held_bytes: layout.held_bytes,
                        whole_after: None,
                    }),
                    sent,
                    retry: false,
                },
                (None, _) => Attempt {
                    result: Ok(Imported {
                        bytes: whole.clone(),
                        total,
                        seconds,
                        held: Vec::new(),
                        held_bytes: 0,
                        whole_after: None,
                    }),
                    sent,
                    retry: false,
                },
            }
        })
        .collect()
}

/// Removes every name of these images (by content) from the node's
/// containerd; what cannot be asked or removed is left.
async fn forget(docker: &Docker, node: &NodeContainer, ids: &[&str]) {
    let Ok(out) = exec(
        docker,
        &node.name,
        &["ctr", "--namespace=k8s.io", "images", "ls"],
    )
    .await
    else {
        return;
    };
    let inventory = parse_ctr_images(&out.stdout);
    let mut cmd = vec!["ctr", "--namespace=k8s.io", "images", "rm"];
    for image in &inventory.images {
        if image.id.as_deref().is_some_and(|id| ids.contains(&id)) {
            cmd.extend(image.names.iter().map(String::as_str));
            cmd.extend(image.id.as_deref());
        }
    }
    if cmd.len() > 4 {
        let _ = exec(docker, &node.name, &cmd).await;
    }
}

/// About how many bytes a node is sent for these images (size in the
/// engine, layer diff IDs): their sizes, less each layer the node holds
/// (at the size `ctr` gave for it) as often as an image has it; their
/// whole sizes when what it holds is not known. `None` when the engine
/// gave no size for one of them.
pub fn estimate(images: &[(Option<u64>, &[String])], held: Option<&HeldBlobs>) -> Option<u64> {
    let mut total = 0u64;
    for (size, diff_ids) in images {
        let mut size = (*size)?;
        if let Some(held) = held {
            for d in *diff_ids {
                if let Some(s) = held.0.get(d) {
                    size = size.saturating_sub(*s);
                }
            }
        }
        total += size;
    }
    Some(total)
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
    for image in images {
        wanted.push((image, engine_image(docker, &image.reference).await?));
    }
    let pairs: Vec<(&str, &str)> = wanted
        .iter()
        .map(|(image, engine)| (image.reference.as_str(), engine.id.as_str()))
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
        // The snapshotter is asked at the same time, and waited for only
        // when something is imported: one round trip less before the
        // import, and none when the node holds everything.
        let snapshotter = super::Asked::start({
            let (docker, node) = (docker.clone(), node.clone());
            async move { node_snapshotter(&docker, &node).await }
        });
        let inventory = source.inventory(docker, node).await?;
        let decisions = plan_node(&pairs, &inventory);
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
        Ok::<_, ClusterError>((decisions, lines, snapshotter, inventory.blobs))
    }))
    .await;
    let mut states = Vec::with_capacity(nodes.len());
    for state in planned {
        states.push(state?);
    }

    // What they lack: one export per set of missing images.
    let needs: Vec<Vec<usize>> = states
        .iter()
        .map(|(decisions, _, _, _)| {
            (0..wanted.len())
                .filter(|&i| decisions[i] == Decision::Load)
                .collect()
        })
        .collect();
    let mut snapshotters = Vec::with_capacity(nodes.len());
    let mut held = Vec::with_capacity(nodes.len());
    for (n, (_, _, snapshotter, blobs)) in states.iter_mut().enumerate() {
        held.push(blobs.take());
        let s = match needs[n].is_empty() {
            true => String::new(),
            false => snapshotter.answer().await.unwrap_or_else(|| {
                Err(ClusterError::NodeLoad {
                    reference: "(asking the snapshotter)".into(),
                    node: nodes[n].name.clone(),
                    detail: "the question was stopped".into(),
                })
            })?,
        };
        snapshotters.push(s);
    }
    let groups = group_by_load(&needs);
    let imports = groups.iter().map(|(load, members)| {
        let sizes: Vec<(Option<u64>, &[String])> = load
            .iter()
            .map(|&i| (wanted[i].1.size, wanted[i].1.diff_ids.as_slice()))
            .collect();
        let targets: Vec<Target<'_>> = members
            .iter()
            .map(|&n| Target {
                node: &nodes[n],
                snapshotter: snapshotters[n].as_str(),
                held: held[n].as_ref(),
                total: estimate(&sizes, held[n].as_ref()),
            })
            .collect();
        let images: Vec<Export<'_>> = load
            .iter()
            .map(|&i| Export {
                reference: pairs[i].0,
                id: pairs[i].1,
                diff_ids: &wanted[i].1.diff_ids,
            })
            .collect();
        let told = Told {
            names: load.iter().map(|&i| wanted[i].0.name.clone()).collect(),
            whole: estimate(&sizes, None),
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
        |(node, (decisions, _, _, _))| async move {
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
    for ((node, (_, mut lines, _, _)), done) in nodes.iter().zip(states).zip(tagged) {
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

    /// What was looked at ahead is each node's answer once; a node it
    /// lacks, and the same node again, are asked anew (here of an engine
    /// that is not there, so asking fails).
    #[tokio::test]
    async fn a_look_ahead_answers_each_node_once_and_the_rest_are_asked() {
        let node = |name: &str| NodeContainer {
            name: name.into(),
            id: format!("id-{name}"),
            role: None,
        };
        let held = parse_ctr_images(CTR_LS);
        let looked = LookedAhead {
            nodes: vec![node("a"), node("b")],
            inventories: std::sync::Mutex::new(HashMap::from([("a".to_owned(), held.clone())])),
        };
        let nowhere = Docker::connect_with_host("tcp://127.0.0.1:1").unwrap();
        assert_eq!(looked.inventory(&nowhere, &node("a")).await.unwrap(), held);
        for asked in ["a", "b"] {
            let err = looked.inventory(&nowhere, &node(asked)).await.unwrap_err();
            assert!(matches!(err, ClusterError::Engine { .. }), "{asked}: {err}");
        }
        assert_eq!(LookedAhead::nothing(vec![node("c")]).nodes, [node("c")]);
    }

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
            blobs: None,
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

    /// `ctr -n k8s.io content ls` of a containerd 1.6.20 node holding one
    /// image of two layers (tests/fixtures/node/README.md): the age column
    /// has spaces, sizes are go-units' (`2.048kB`).
    #[test]
    fn the_content_listing_gives_each_blob_and_about_its_size() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node");
        let listing = std::fs::read_to_string(dir.join("ctr-content-ls.txt")).unwrap();
        let held = parse_ctr_content(&listing);
        let mut got: Vec<(&str, u64)> = held.0.iter().map(|(d, s)| (&d[7..19], *s)).collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("0753099069ec", 2048),
                ("513df8d7a8ae", 576),
                ("6531bfd96fff", 2048),
                ("8d1800e8e2d2", 1704)
            ]
        );
        assert!(
            held.contains(
                "sha256:6531bfd96fffb947b95847ef3d536e8a26d12ff3673b090103e49c7921ec6e02"
            )
        );
        // The header alone: an empty store; junk lines are no blobs.
        assert_eq!(
            parse_ctr_content(listing.lines().next().unwrap()),
            HeldBlobs::default()
        );
        let junk = "sha256:abc 1kB\nmd5:00000000000000000000000000000000 1B\n\nsha256:\n";
        assert_eq!(parse_ctr_content(junk), HeldBlobs::default());
        let odd = format!("sha256:{} lots", "0".repeat(64));
        assert_eq!(
            parse_ctr_content(&odd)
                .0
                .values()
                .copied()
                .collect::<Vec<_>>(),
            [0]
        );
    }

    /// A fresh node of the 1.20 test cluster: its own images' blobs,
    /// among them the one layer of the `debian:bookworm-slim` that etcd
    /// and kube-proxy are built FROM.
    #[test]
    fn a_real_kind_node_holds_the_base_its_images_are_built_from() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node");
        let listing = std::fs::read_to_string(dir.join("ctr-content-ls-kind-node.txt")).unwrap();
        let held = parse_ctr_content(&listing);
        assert_eq!(held.0.len(), listing.lines().count() - 1, "one per line");
        let base = "sha256:367774d780659e5a13543852f3aadae698af83be8999369157c597ea2b6b8596";
        assert_eq!(held.0.get(base), Some(&141_800_000));
        // An image FROM it with a 24 MiB layer of its own: about that goes.
        let layers = [base.to_owned(), "sha256:top".to_owned()];
        let estimate = estimate(&[(Some(163_100_000), &layers[..])], Some(&held));
        assert_eq!(estimate, Some(21_300_000));
    }

    #[test]
    fn sizes_read_as_go_units_writes_them() {
        for (text, want) in [
            ("576B", Some(576)),
            ("2.048kB", Some(2048)),
            ("142.3MB", Some(142_300_000)),
            ("1.5GB", Some(1_500_000_000)),
            ("7", Some(7)),
            ("2.0 MiB", None),
            ("MB", None),
            ("1KiB", None),
        ] {
            assert_eq!(human_size(text), want, "{text}");
        }
    }

    #[test]
    fn a_nodes_estimate_leaves_out_the_layers_it_holds() {
        let (base, top) = ("sha256:b".to_owned(), "sha256:t".to_owned());
        let layers = [base.clone(), top.clone()];
        let held = HeldBlobs([(base.clone(), 142_000_000)].into_iter().collect());
        let three = [(Some(160_000_000), &layers[..]); 3];
        // Whole images when what the node holds is not known (as before).
        assert_eq!(estimate(&three, None), Some(480_000_000));
        // Each image's share of the base comes off.
        assert_eq!(estimate(&three, Some(&held)), Some(54_000_000));
        // Never below nothing, and no size from the engine is no estimate.
        assert_eq!(estimate(&[(Some(1), &layers[..])], Some(&held)), Some(0));
        assert_eq!(estimate(&[(None, &layers[..])], Some(&held)), None);
        assert_eq!(estimate(&[], Some(&held)), Some(0));
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
