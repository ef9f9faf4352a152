//! The cluster stage: create (or reuse, or adopt) the lane's cluster and put
//! the lane's images into its nodes.
//!
//! A small [`Provider`] interface — ensure, exists, delete, kubeconfig,
//! nodes, deliver images — has two implementations, chosen by the lane file:
//! [`kind::KindProvider`] drives the kind CLI (never kind's Go API, so any
//! kind the user has works), pinning the engine with
//! `KIND_EXPERIMENTAL_PROVIDER` on every call so that create, load and delete
//! can never disagree about where the nodes are; [`existing::ExistingProvider`]
//! takes a kubeconfig and context as given and hands image archives to a
//! user command (k3d, minikube, a node's containerd) or to nobody (registry
//! images). Loading into kind nodes bypasses `kind load`: [`nodes`] finds the
//! node containers by label, asks each node's containerd what it already
//! holds (by content: the image ID, and the blobs of its content store),
//! and streams one export of everything the node lacks straight into one
//! `ctr images import` in the node, rewritten on the way into an OCI
//! layout that carries only the blobs the node lacks ([`layout`]; the
//! engine writes each shared layer once, and [`archive`] reads its tar as
//! it passes), nodes in parallel, with no temp file. What decides — cluster-name matching, banner
//! stripping, which errors are transient, present/retag/load per image per
//! node — is pure and tested with tables; the process and engine calls are
//! thin shells around it. [`state`] records what `up` made so that `down`,
//! `status`, `gather` and `diagnose` find it. Nothing here prints: every
//! operation returns data (a [`LoadReport`]) or a typed [`ClusterError`]
//! carrying kind's stderr and a fix.

pub mod archive;
pub mod created;
pub mod existing;
pub mod kind;
pub mod layout;
pub mod nodes;
pub mod stage;
pub mod state;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use serde::Serialize;

use crate::config::{ClusterProvider, ClusterSpec, EngineKind};
use crate::exit::Exit;
use crate::failure::Failure;

pub use existing::ExistingProvider;
pub use kind::{KindCli, KindProvider, RetryPolicy};
pub use nodes::{ImageInventory, NodeContainer};
pub use state::{LaneState, StateError};

/// An image the lane needs in the cluster, as the images stage hands it over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    /// The lane file's name for it (`datastorage`).
    pub name: String,
    /// The reference the engine knows it by (`harness/datastorage:3f2a…`).
    pub reference: String,
}

/// What [`Provider::ensure`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ensured {
    /// `false` when an existing cluster of exactly that name was reused.
    pub created: bool,
    pub kubeconfig: PathBuf,
    pub context: Option<String>,
}

/// What happened to one image on one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum LoadOutcome {
    /// The node already held this content under this name.
    Skipped,
    /// The node held the content under another name: only a tag was added.
    Tagged,
    /// The archive was streamed into the node. Images a node lacks arrive
    /// together, in one archive and one import, which carries only the
    /// blobs the node lacked ([`layout`]): `bytes` are this image's share
    /// of what was sent — a layer shared by several of them counts once,
    /// with the first image (in the lane's order) that has it, one the node
    /// held not at all, and the archive's own metadata with the first
    /// image, so a node's lines add up to the bytes streamed into it — and
    /// `seconds` is that whole import's time, the same for each image in it
    /// (none can be used before it ends).
    Loaded { bytes: u64, seconds: f64 },
    /// Nothing to do: the cluster pulls this image from a registry.
    NotDelivered,
}

/// One line of a [`LoadReport`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeLoad {
    pub image: String,
    pub reference: String,
    /// The node container, or the load command for `existing` clusters.
    pub node: String,
    #[serde(flatten)]
    pub outcome: LoadOutcome,
}

/// What a load says while it runs.
#[derive(Clone, Copy, Debug)]
pub enum LoadProgress<'a> {
    /// A [`NodeLoad`] as it completes (the same lines come back in the
    /// [`LoadReport`]).
    Line(&'a NodeLoad),
    /// An export streaming into a node, at most every
    /// [`crate::throttle::PROGRESS_INTERVAL`] per node, and once at its end.
    Sending(&'a Sending),
    /// A node's import of an archive of only the blobs it lacked failed,
    /// and it is being sent the whole export instead (once per node).
    SentWhole(&'a SentWhole),
}

/// A node sent the whole export after its layout failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentWhole {
    /// The node container.
    pub node: String,
    /// The images in the export (lane file names).
    pub images: Vec<String>,
    /// What went wrong with the layout: the importer's (or the layout's) words.
    pub why: String,
}

/// How far one export into one node has come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sending {
    /// The node container.
    pub node: String,
    /// The images in the export (lane file names).
    pub images: Vec<String>,
    /// Bytes the node's import has been given.
    pub sent: u64,
    /// About how many there will be ([`nodes::estimate`]): the images'
    /// sizes in the engine less the layers the node holds (layers shared
    /// by the images go once), when the engine said.
    pub total: Option<u64>,
}

impl<'a> LoadProgress<'a> {
    /// The completed line, if this is one.
    pub fn line(self) -> Option<&'a NodeLoad> {
        match self {
            LoadProgress::Line(line) => Some(line),
            LoadProgress::Sending(_) | LoadProgress::SentWhole(_) => None,
        }
    }
}

/// Told how a load goes (for progress lines).
pub type Progress<'a> = &'a (dyn Fn(LoadProgress<'_>) + Sync);

/// A [`Progress`] that ignores everything.
pub fn no_progress(_: LoadProgress<'_>) {}

/// Per image per node, what delivering images did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadReport {
    pub loads: Vec<NodeLoad>,
}

impl LoadReport {
    /// Lines with the given outcome kind (for summaries and tests).
    pub fn count(&self, pred: impl Fn(&LoadOutcome) -> bool) -> usize {
        self.loads.iter().filter(|l| pred(&l.outcome)).count()
    }

    /// Bytes streamed into nodes, all images and nodes together.
    pub fn bytes_loaded(&self) -> u64 {
        self.loads
            .iter()
            .map(|l| match l.outcome {
                LoadOutcome::Loaded { bytes, .. } => bytes,
                _ => 0,
            })
            .sum()
    }
}

/// Which images are in the cluster yet, from a load's progress lines: an
/// image is in once every node has reported it (skipped, tagged or loaded),
/// and everything is in once the load has finished. So what a deploy may
/// start early is exactly what the nodes already held — with no known
/// nodes (a provider that loads through a command, or none), nothing is in
/// before the end.
#[derive(Clone, Debug, Default)]
pub struct Arrivals {
    nodes: std::collections::BTreeSet<String>,
    heard: std::collections::HashMap<String, std::collections::BTreeSet<String>>,
    finished: bool,
}

impl Arrivals {
    /// A load into these nodes (the node names the progress lines carry).
    pub fn new(nodes: impl IntoIterator<Item = String>) -> Arrivals {
        Arrivals {
            nodes: nodes.into_iter().collect(),
            ..Arrivals::default()
        }
    }

    /// One progress line.
    pub fn heard(&mut self, line: &NodeLoad) {
        if line.outcome != LoadOutcome::NotDelivered {
            self.heard
                .entry(line.image.clone())
                .or_default()
                .insert(line.node.clone());
        }
    }

    /// The load finished without error.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Whether every one of `images` (lane file names) is in the cluster
    /// (none at all always is).
    pub fn has_all<'a>(&self, images: impl Iterator<Item = &'a String>) -> bool {
        let mut images = images.peekable();
        images.peek().is_none()
            || self.finished
            || (!self.nodes.is_empty()
                && images.all(|i| {
                    self.heard
                        .get(i)
                        .is_some_and(|nodes| self.nodes.is_subset(nodes))
                }))
    }
}

/// What went wrong in the cluster stage, in the user's terms.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot run kind ({binary})")]
    KindMissing {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {}", kind_words(.stderr))]
    Kind {
        command: String,
        status: String,
        stderr: String,
        fix: String,
    },
    #[error("a kind cluster named `{name}` already exists")]
    AlreadyExists { name: String },
    #[error("cannot write the kubeconfig {}", .path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot tell where to write the kubeconfig: $HOME is not set")]
    NoHome,
    #[error("the kubeconfig of existing cluster `{cluster}` does not exist: {}", .path.display())]
    KubeconfigMissing { cluster: String, path: PathBuf },
    #[error(
        "no node containers of kind cluster `{cluster}` (label io.x-k8s.kind.cluster={cluster})"
    )]
    NoNodes { cluster: String },
    #[error("the container engine failed to {what}")]
    Engine {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("image `{reference}` is not in the engine")]
    ImageMissing { reference: String },
    #[error("failed to load image `{reference}` into node `{node}`: {detail}")]
    NodeLoad {
        reference: String,
        node: String,
        detail: String,
    },
    #[error("load command `{command}` failed for image `{reference}` ({status}): {}", last_lines(.stderr, 8))]
    LoadCommand {
        command: String,
        reference: String,
        status: String,
        stderr: String,
    },
    #[error("cannot run the load command `{command}`")]
    LoadCommandSpawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

/// A failure to put an image into the cluster is an image failure (4),
/// anything else a cluster failure (5).
impl Failure for ClusterError {
    fn exit(&self) -> Exit {
        match self {
            ClusterError::ImageMissing { .. }
            | ClusterError::NodeLoad { .. }
            | ClusterError::LoadCommand { .. }
            | ClusterError::LoadCommandSpawn { .. } => Exit::ImageBuild,
            ClusterError::KindMissing { .. }
            | ClusterError::Kind { .. }
            | ClusterError::AlreadyExists { .. }
            | ClusterError::Kubeconfig { .. }
            | ClusterError::NoHome
            | ClusterError::KubeconfigMissing { .. }
            | ClusterError::NoNodes { .. }
            | ClusterError::Engine { .. } => Exit::Cluster,
        }
    }

    fn fix(&self) -> Option<String> {
        Some(self.help())
    }
}

impl ClusterError {
    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            ClusterError::KindMissing { .. } => {
                "install kind (https://kind.sigs.k8s.io) and put it on PATH".into()
            }
            ClusterError::Kind { fix, .. } => fix.clone(),
            ClusterError::AlreadyExists { name } => format!(
                "reuse it (harness up --reuse) or delete it first: kind delete cluster --name {name}"
            ),
            ClusterError::Kubeconfig { path, .. } => format!(
                "make {} writable (or set HOME to a writable directory)",
                path.parent().unwrap_or(Path::new("/")).display()
            ),
            ClusterError::NoHome => "set HOME".into(),
            ClusterError::KubeconfigMissing { .. } => {
                "point cluster.existing.kubeconfig in the lane file (or $KUBECONFIG) at the cluster's kubeconfig".into()
            }
            ClusterError::NoNodes { cluster } => format!(
                "the cluster is gone or was made with another engine: check `kind get nodes --name {cluster}`, or run harness up again"
            ),
            ClusterError::Engine { .. } => {
                "check that the container engine is running (harness preflight)".into()
            }
            ClusterError::ImageMissing { .. } => {
                "build or pull the image first (the images stage does this in harness up)".into()
            }
            ClusterError::NodeLoad { node, .. } => format!(
                "check the node's containerd: docker exec {node} ctr --namespace=k8s.io images ls"
            ),
            ClusterError::LoadCommand { .. } | ClusterError::LoadCommandSpawn { .. } => {
                "fix cluster.existing.load_command in the lane file: it must read one image archive (docker save format) on stdin and exit 0".into()
            }
        }
    }
}

/// What kind said went wrong, once: from its first `ERROR:` line to the end
/// (kind's own words, `Command Output:` included), without the progress
/// lines before it; the last 8 lines when it printed no `ERROR:`.
pub(crate) fn kind_words(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.iter().position(|l| l.starts_with("ERROR:")) {
        Some(first) => lines[first..].join("\n"),
        None => last_lines(stderr, 8),
    }
}

/// The last `n` non-empty lines of a command's stderr, for error messages
/// (kind prints progress lines before the one that matters).
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The cluster interface every provider implements. Futures are `Send` so
/// callers can run providers on any runtime thread. What differs between
/// providers is said here, as methods without defaults, so a new provider
/// cannot compile without deciding each.
pub trait Provider {
    /// The cluster's name.
    fn name(&self) -> &str;
    /// `kind` or `existing`, for the state file and messages.
    fn kind_name(&self) -> &'static str;
    /// The engine the cluster's nodes run in, when the provider drives one
    /// (kind's `KIND_EXPERIMENTAL_PROVIDER`).
    fn engine(&self) -> Option<EngineKind>;
    /// Whether it creates clusters (and so `up` may have made one that
    /// teardown deletes); a provider of existing clusters never does.
    fn creates_clusters(&self) -> bool;
    /// Writes the nodes' own logs (journal, kubelet, container runtime)
    /// into `dir`, when the provider can reach them; `Ok(false)` when it
    /// has none to give.
    fn export_node_logs(
        &self,
        dir: &Path,
    ) -> impl Future<Output = Result<bool, ClusterError>> + Send;
    /// The kubeconfig file `up` writes (kind) or was given (existing).
    fn kubeconfig(&self) -> &Path;
    /// The context in it to use, when not its current one.
    fn context(&self) -> Option<&str>;
    /// Creates the cluster, or reuses one of exactly this name when `reuse`.
    fn ensure(&self, reuse: bool) -> impl Future<Output = Result<Ensured, ClusterError>> + Send;
    /// [`Provider::ensure`] when [`Provider::exists`] has just answered
    /// `exists`: asking kind again costs a `docker ps` (about 50 ms).
    fn ensure_known(
        &self,
        reuse: bool,
        exists: bool,
    ) -> impl Future<Output = Result<Ensured, ClusterError>> + Send;
    /// Whether a cluster of exactly this name exists.
    fn exists(&self) -> impl Future<Output = Result<bool, ClusterError>> + Send;
    /// Deletes the cluster (a missing cluster is not an error).
    fn delete(&self) -> impl Future<Output = Result<(), ClusterError>> + Send;
    /// The node containers, when the provider has any the engine can reach.
    fn nodes(
        &self,
        docker: &Docker,
    ) -> impl Future<Output = Result<Vec<NodeContainer>, ClusterError>> + Send;
    /// Puts `images` (already in the engine) into the cluster; `progress`
    /// hears each image on each node as soon as it is done.
    fn deliver(
        &self,
        docker: &Docker,
        images: &[ImageRef],
        progress: Progress<'_>,
    ) -> impl Future<Output = Result<LoadReport, ClusterError>> + Send;
}

/// Work started before its answer is needed (a node's snapshotter, a look
/// ahead of the load); dropped unasked, it stops.
#[derive(Debug)]
pub(crate) struct Asked<T>(tokio::task::JoinHandle<T>);

impl<T: Send + 'static> Asked<T> {
    pub(crate) fn start(work: impl Future<Output = T> + Send + 'static) -> Asked<T> {
        Asked(tokio::spawn(work))
    }

    /// Its answer, once; `None` when it was stopped. Work that panicked
    /// panics here.
    pub(crate) async fn answer(&mut self) -> Option<T> {
        match (&mut self.0).await {
            Ok(answer) => Some(answer),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }
}

impl<T> Drop for Asked<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The variable that overrides the node image of every kind lane: a CI
/// matrix over Kubernetes versions, or a node image built locally
/// (`scripts/test-cluster`) where none can be pulled.
pub const NODE_IMAGE_ENV: &str = "HARNESS_KIND_NODE_IMAGE";

/// `spec` with its kind node image replaced by `image`, when one is given
/// (an empty value counts as none).
pub fn with_node_image(spec: &ClusterSpec, image: Option<&str>) -> ClusterSpec {
    let mut spec = spec.clone();
    if let (ClusterProvider::Kind(kind), Some(image)) = (&mut spec.provider, image)
        && !image.is_empty()
    {
        kind.node_image = Some(image.to_owned());
    }
    spec
}

/// The provider a lane's `cluster:` asks for.
#[derive(Clone, Debug)]
pub enum AnyProvider {
    Kind(KindProvider),
    Existing(ExistingProvider),
}

impl AnyProvider {
    /// Whether the cluster an earlier `up` recorded still exists: for kind
    /// on Docker, the engine's answer first ([`KindProvider::recorded_exists`]).
    pub async fn recorded_exists(&self) -> Result<bool, ClusterError> {
        match self {
            AnyProvider::Kind(kind) => kind.recorded_exists().await,
            AnyProvider::Existing(existing) => existing.exists().await,
        }
    }

    /// Builds the provider for `spec` from this process's environment: kind's
    /// kubeconfig goes to `$HOME/.kube/<cluster>-config`, and
    /// `$HARNESS_KIND_NODE_IMAGE` (when set) is the node image of every kind
    /// lane, whatever the lane file says.
    pub fn from_env(spec: &ClusterSpec) -> Result<AnyProvider, ClusterError> {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
        let image = std::env::var(NODE_IMAGE_ENV).ok();
        AnyProvider::from_spec(
            &with_node_image(spec, image.as_deref()),
            home.as_deref().map(Path::new),
        )
    }

    /// Builds the provider for `spec`; kind's kubeconfig goes to
    /// `<home>/.kube/<cluster>-config`.
    pub fn from_spec(spec: &ClusterSpec, home: Option<&Path>) -> Result<AnyProvider, ClusterError> {
        Ok(match &spec.provider {
            ClusterProvider::Kind(kind) => {
                let home = home.ok_or(ClusterError::NoHome)?;
                let kubeconfig = crate::layout::kind_kubeconfig(home, &spec.name);
                AnyProvider::Kind(KindProvider::new(
                    KindCli::new(kind.engine),
                    &spec.name,
                    kind,
                    kubeconfig,
                ))
            }
            ClusterProvider::Existing(existing) => {
                AnyProvider::Existing(ExistingProvider::new(&spec.name, existing))
            }
        })
    }
}

impl AnyProvider {
    /// Starts asking a kind cluster's nodes what images they hold while the
    /// run does other things ([`KindProvider::look_ahead`]); nothing for a
    /// cluster whose nodes the harness does not load.
    pub fn look_ahead(&self, docker: Docker) {
        if let AnyProvider::Kind(kind) = self {
            kind.look_ahead(docker);
        }
    }
}

macro_rules! delegate {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            AnyProvider::Kind($p) => $e,
            AnyProvider::Existing($p) => $e,
        }
    };
}

impl Provider for AnyProvider {
    fn name(&self) -> &str {
        delegate!(self, p => p.name())
    }
    fn kind_name(&self) -> &'static str {
        delegate!(self, p => p.kind_name())
    }
    fn engine(&self) -> Option<EngineKind> {
        delegate!(self, p => p.engine())
    }
    fn creates_clusters(&self) -> bool {
        delegate!(self, p => p.creates_clusters())
    }
    async fn export_node_logs(&self, dir: &Path) -> Result<bool, ClusterError> {
        delegate!(self, p => p.export_node_logs(dir).await)
    }
    fn kubeconfig(&self) -> &Path {
        delegate!(self, p => p.kubeconfig())
    }
    fn context(&self) -> Option<&str> {
        delegate!(self, p => p.context())
    }
    async fn ensure(&self, reuse: bool) -> Result<Ensured, ClusterError> {
        delegate!(self, p => p.ensure(reuse).await)
    }
    async fn ensure_known(&self, reuse: bool, exists: bool) -> Result<Ensured, ClusterError> {
        delegate!(self, p => p.ensure_known(reuse, exists).await)
    }
    async fn exists(&self) -> Result<bool, ClusterError> {
        delegate!(self, p => p.exists().await)
    }
    async fn delete(&self) -> Result<(), ClusterError> {
        delegate!(self, p => p.delete().await)
    }
    async fn nodes(&self, docker: &Docker) -> Result<Vec<NodeContainer>, ClusterError> {
        delegate!(self, p => p.nodes(docker).await)
    }
    async fn deliver(
        &self,
        docker: &Docker,
        images: &[ImageRef],
        progress: Progress<'_>,
    ) -> Result<LoadReport, ClusterError> {
        delegate!(self, p => p.deliver(docker, images, progress).await)
    }
}

/// How long `kind create cluster --wait` waits for the control plane.
pub const DEFAULT_CONTROL_PLANE_WAIT: Duration = Duration::from_secs(120);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_is_quoted_from_its_error_on() {
        let pulled =
            include_str!("../../tests/fixtures/k8s/kind-cli/create-cluster-pull-failed.stderr.txt");
        let words = kind_words(pulled);
        assert!(
            words.starts_with(
                "ERROR: failed to create cluster: failed to pull image \"kindest/node:v1.33.1\""
            ),
            "{words}"
        );
        assert!(words.ends_with("no such host"), "{words}");
        // The progress lines that name the image again are left out.
        assert!(!words.contains("Ensuring node image"), "{words}");
        assert_eq!(kind_words("a\nb\n"), "a\nb");
    }

    #[test]
    fn last_lines_keeps_the_tail_without_blank_lines() {
        assert_eq!(last_lines("a\n\nb\nc\n\n", 2), "b\nc");
        assert_eq!(last_lines("only\n", 5), "only");
        assert_eq!(last_lines("", 3), "");
    }

    #[test]
    fn the_lane_file_picks_the_provider() {
        let kind = ClusterSpec {
            name: "audit-e2e".into(),
            provider: ClusterProvider::Kind(crate::config::KindSpec {
                config: None,
                node_image: None,
                engine: EngineKind::Podman,
                min_version: semver::Version::new(0, 20, 0),
            }),
        };
        let p = AnyProvider::from_spec(&kind, Some(Path::new("/home/me"))).unwrap();
        assert_eq!(p.kind_name(), "kind");
        assert_eq!(p.engine(), Some(EngineKind::Podman));
        assert_eq!(p.name(), "audit-e2e");
        assert_eq!(p.kubeconfig(), Path::new("/home/me/.kube/audit-e2e-config"));
        assert!(matches!(
            AnyProvider::from_spec(&kind, None),
            Err(ClusterError::NoHome)
        ));
        let existing = ClusterSpec {
            name: "ci".into(),
            provider: ClusterProvider::Existing(crate::config::ExistingSpec {
                kubeconfig: Some("/etc/ci.yaml".into()),
                context: Some("ci".into()),
                load_command: None,
            }),
        };
        // An existing cluster needs no home: its kubeconfig is given.
        let p = AnyProvider::from_spec(&existing, None).unwrap();
        assert_eq!(p.kind_name(), "existing");
        assert_eq!(p.engine(), None);
        assert_eq!(p.kubeconfig(), Path::new("/etc/ci.yaml"));
        assert_eq!(p.context(), Some("ci"));
    }

    #[test]
    fn the_node_image_variable_overrides_kind_lanes_only() {
        let kind = ClusterSpec {
            name: "audit-e2e".into(),
            provider: ClusterProvider::Kind(crate::config::KindSpec {
                config: None,
                node_image: Some("kindest/node:v1.33.1".into()),
                engine: EngineKind::Docker,
                min_version: semver::Version::new(0, 20, 0),
            }),
        };
        let image_of = |spec: &ClusterSpec| match &spec.provider {
            ClusterProvider::Kind(k) => k.node_image.clone(),
            ClusterProvider::Existing(_) => None,
        };
        let local = "harness/kind-node:v1.20.2-0123";
        assert_eq!(
            image_of(&with_node_image(&kind, Some(local))).as_deref(),
            Some(local)
        );
        assert_eq!(
            image_of(&with_node_image(&kind, Some(""))).as_deref(),
            Some("kindest/node:v1.33.1"),
            "an empty variable is no override"
        );
        assert_eq!(
            image_of(&with_node_image(&kind, None)).as_deref(),
            Some("kindest/node:v1.33.1")
        );
        let existing = ClusterSpec {
            name: "ci".into(),
            provider: ClusterProvider::Existing(crate::config::ExistingSpec {
                kubeconfig: None,
                context: None,
                load_command: None,
            }),
        };
        assert!(matches!(
            with_node_image(&existing, Some(local)).provider,
            ClusterProvider::Existing(_)
        ));
    }

    #[test]
    fn load_failures_exit_as_image_failures() {
        let load = ClusterError::NodeLoad {
            reference: "a:1".into(),
            node: "n".into(),
            detail: "d".into(),
        };
        assert_eq!(load.exit(), Exit::ImageBuild);
        let kind = ClusterError::AlreadyExists { name: "x".into() };
        assert_eq!(kind.exit(), Exit::Cluster);
    }

    #[test]
    fn an_image_is_in_once_every_node_has_it() {
        let line = |image: &str, node: &str, outcome| NodeLoad {
            image: image.into(),
            reference: format!("{image}:1"),
            node: node.into(),
            outcome,
        };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut a = Arrivals::new(names(&["n1", "n2"]));
        let (pg, redis, none) = (names(&["pg"]), names(&["pg", "redis"]), names(&[]));
        assert!(
            a.has_all(none.iter()),
            "a component without images is in at once"
        );
        assert!(!a.has_all(pg.iter()));
        a.heard(&line("pg", "n1", LoadOutcome::Skipped));
        assert!(!a.has_all(pg.iter()), "n2 has not reported pg");
        a.heard(&line("pg", "n2", LoadOutcome::Tagged));
        assert!(a.has_all(pg.iter()));
        assert!(!a.has_all(redis.iter()));
        a.heard(&line(
            "redis",
            "n1",
            LoadOutcome::Loaded {
                bytes: 1,
                seconds: 0.1,
            },
        ));
        assert!(!a.has_all(redis.iter()));
        a.finish();
        assert!(
            a.has_all(redis.iter()),
            "a finished load has brought everything"
        );

        // Without known nodes (a load command, a registry), only the end counts.
        let mut b = Arrivals::new(Vec::new());
        b.heard(&line("pg", "kubectl", LoadOutcome::Skipped));
        b.heard(&line("redis", "registry", LoadOutcome::NotDelivered));
        assert!(!b.has_all(pg.iter()));
        assert!(
            b.has_all(none.iter()),
            "needing no image, nothing to wait for"
        );
        b.finish();
        assert!(b.has_all(redis.iter()));
    }

    #[test]
    fn report_counts_and_sums() {
        let line = |outcome| NodeLoad {
            image: "a".into(),
            reference: "a:1".into(),
            node: "n".into(),
            outcome,
        };
        let report = LoadReport {
            loads: vec![
                line(LoadOutcome::Skipped),
                line(LoadOutcome::Loaded {
                    bytes: 10,
                    seconds: 0.1,
                }),
                line(LoadOutcome::Loaded {
                    bytes: 5,
                    seconds: 0.1,
                }),
            ],
        };
        assert_eq!(report.bytes_loaded(), 15);
        assert_eq!(report.count(|o| matches!(o, LoadOutcome::Loaded { .. })), 2);
        assert_eq!(report.count(|o| *o == LoadOutcome::Skipped), 1);
    }
}
