//! The validated project: what the rest of the program works from.
//!
//! Paths are absolute, durations parsed, defaults applied, every reference
//! known to exist. Maps keep the order of the lane file.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

use super::diag::SourceLoc;
use super::kind::HostPort;
pub use crate::readiness::overrides::Overrides;

pub use super::raw::{Engine, Provider};

/// Defaults applied where the lane file is silent (documented in docs/lane-file.md).
pub mod defaults {
    use std::time::Duration;

    pub const NAMESPACE: &str = "harness-system";
    pub const KIND_MIN_VERSION: &str = "0.20.0";
    pub const MIN_FREE_DISK: u64 = 10 * 1024 * 1024 * 1024;
    /// A kind node with a control plane and a small stack; a lane whose
    /// components need more says so (`preflight.memory_per_lane`).
    pub const MEMORY_PER_LANE: u64 = 3 * 1024 * 1024 * 1024;
    pub const IMAGE_BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);
    pub const COMPONENT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
    pub const TOLERATE_RESTARTS: u32 = 1;
    pub const TOLERATE_GRACE: Duration = Duration::from_secs(15);
    /// How long a component's readiness must hold before it counts: longer
    /// than the few seconds in which a container that crashes at start-up
    /// (after its first Ready) usually goes down.
    pub const SETTLE: Duration = Duration::from_secs(5);
    pub const SUITE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    pub const HOOK_TIMEOUT: Duration = Duration::from_secs(5 * 60);
}

/// A loaded, valid lane file.
#[derive(Clone, Debug, Serialize)]
pub struct Project {
    /// The lane file.
    pub file: PathBuf,
    /// Its directory: relative paths in it are relative to this.
    pub root: PathBuf,
    pub preflight: PreflightSettings,
    /// Commands run on the host before images are built (`host_builds:`).
    pub host_builds: IndexMap<String, HostBuild>,
    pub images: IndexMap<String, Image>,
    pub components: IndexMap<String, Component>,
    pub lanes: IndexMap<String, Lane>,
    /// Host ports several lanes claim: fine for lanes that never run on
    /// one machine at once (the plan reports them, preflight checks them).
    pub shared_ports: Vec<super::kind::SharedPort>,
    /// What Ready means for some kinds or objects, in every lane (`readiness:`).
    pub readiness: Overrides,
}

impl Project {
    /// What Ready means for `component`'s objects in `lane`: the
    /// component's `readiness:` entries over its lane's over the file's.
    pub fn readiness_for(&self, lane: &Lane, component: &Component) -> Overrides {
        component
            .readiness
            .clone()
            .then(&lane.readiness)
            .then(&self.readiness)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PreflightSettings {
    /// Bytes that must be free where images and clusters are stored.
    pub min_free_disk: u64,
    /// Memory one lane's cluster takes, as an estimate: how many lanes a
    /// run of several starts at once, when not told.
    pub memory_per_lane: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Image {
    pub name: String,
    pub source: ImageSource,
    /// Host builds that must have run before it is built.
    pub host_builds: Vec<String>,
    /// Repositories (as written) whose images in rendered manifests are
    /// rewritten to this one (`replaces:`).
    pub replaces: Vec<String>,
}

/// A command run on the host before images are built (a `cargo build` or
/// `go build` whose output an image copies), skipped when its inputs and
/// command are unchanged and its outputs exist.
#[derive(Clone, Debug, Serialize)]
pub struct HostBuild {
    pub name: String,
    pub command: Vec<String>,
    /// Absolute paths (files or directories) whose content decides whether
    /// it runs again; none: it runs every time.
    pub inputs: Vec<PathBuf>,
    /// Absolute paths it makes; one missing means it runs again.
    pub outputs: Vec<PathBuf>,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    pub env: IndexMap<String, String>,
    pub workdir: PathBuf,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// Built by the harness from a Dockerfile.
    Build {
        dockerfile: PathBuf,
        context: PathBuf,
        build_args: IndexMap<String, String>,
        target: Option<String>,
        #[serde(with = "humantime_serde_compat")]
        timeout: Duration,
    },
    /// A third-party image, preloaded into the nodes so they never pull it.
    Pull { reference: String },
}

/// Where a component's objects come from, in the order they are applied.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ManifestSource {
    /// Plain YAML: a file, or every `.yaml`/`.yml`/`.json` file below a
    /// directory (sorted), placeholders filled.
    Files { path: PathBuf, files: Vec<PathBuf> },
    /// A kustomize directory, rendered when the lane file was loaded
    /// (placeholders in what it renders are filled too).
    Kustomize {
        dir: PathBuf,
        #[serde(skip)]
        output: String,
        #[serde(skip)]
        at: SourceLoc,
    },
    /// A Helm chart, rendered when the lane file was loaded, once per
    /// release namespace the lanes need.
    Helm {
        chart: PathBuf,
        release: String,
        /// The release namespace as written; `None`: the component's
        /// namespace in each lane.
        namespace: Option<String>,
        values: Vec<PathBuf>,
        set: Vec<(String, String)>,
        /// Release namespace → what `helm template` rendered.
        #[serde(skip)]
        outputs: std::collections::BTreeMap<String, String>,
        #[serde(skip)]
        at: SourceLoc,
    },
}

impl ManifestSource {
    /// `kustomize deploy/x`, `helm charts/y`, `deploy/z.yaml`: the source as
    /// the plan names it, its path relative to `root`.
    pub fn label(&self, root: &std::path::Path) -> String {
        let rel = |p: &PathBuf| p.strip_prefix(root).unwrap_or(p).display().to_string();
        match self {
            ManifestSource::Files { path, .. } => rel(path),
            ManifestSource::Kustomize { dir, .. } => format!("kustomize {}", rel(dir)),
            ManifestSource::Helm { chart, release, .. } => {
                format!("helm {} (release {release})", rel(chart))
            }
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Component {
    pub name: String,
    /// Where its objects come from, in apply order: `manifests:` entries,
    /// then `kustomize:`, then `helm:`.
    pub sources: Vec<ManifestSource>,
    /// Images its objects run: `images:` as written, then those reached
    /// only through an image's `replaces:` (loaded for every lane that
    /// deploys it).
    pub images: Vec<String>,
    pub depends_on: Vec<String>,
    /// The namespace this component deploys into, if set on the component
    /// itself; otherwise the lane's.
    pub namespace: Option<String>,
    /// Kinds left out of what its sources render (the file's `exclude:`
    /// and its own).
    pub exclude: Vec<crate::render::KindPattern>,
    /// Kinds left out at deploy when the cluster does not serve their
    /// apiVersion (`exclude_unserved:`).
    pub exclude_unserved: Vec<crate::render::KindPattern>,
    /// Every image's `replaces:`, as rewrite rules.
    #[serde(skip)]
    pub rewrites: Vec<crate::render::images::Rule>,
    /// Where suites reach it from the host (`HARNESS_ENDPOINT_<NAME>`):
    /// `endpoint:` as written, else the origin of the health URL. A template:
    /// resolve it per lane with [`Lane::resolve_url`].
    pub endpoint: Option<String>,
    pub health: Option<Health>,
    pub tolerate: Tolerance,
    /// How long readiness must hold, with no restart and no Ready → NotReady
    /// flip, before the component counts as Ready (zero: at once).
    #[serde(with = "humantime_serde_compat")]
    pub settle: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// What Ready means for some of its objects (`readiness:`).
    pub readiness: Overrides,
    #[serde(skip)]
    pub at: SourceLoc,
}

/// What a component's sources render in one lane, as the plan shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RenderedComponent {
    /// Each source and how many objects it rendered.
    pub sources: Vec<RenderedSource>,
    /// Objects left out by `exclude:` (`Kind/namespace/name`).
    pub excluded: Vec<String>,
    /// Objects left out at deploy when the cluster does not serve their
    /// apiVersion (`exclude_unserved:`).
    pub excluded_if_unserved: Vec<String>,
    /// Containers whose image a lane-file image replaces.
    pub rewritten: Vec<RewrittenImage>,
    /// Namespaces its objects name or create.
    pub namespaces: std::collections::BTreeSet<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RenderedSource {
    /// As [`ManifestSource::label`] names it.
    pub source: String,
    /// Objects it rendered (before exclusions).
    pub objects: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RewrittenImage {
    /// `Deployment/audit/datastorage`.
    pub object: String,
    pub container: String,
    /// As the manifests wrote it.
    pub from: String,
    /// The lane file's image it becomes.
    pub image: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Health {
    pub url: String,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
}

/// How much misbehaviour a component is allowed before it is judged doomed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Tolerance {
    pub restarts: u32,
    #[serde(with = "humantime_serde_compat")]
    pub grace: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct Lane {
    pub name: String,
    pub cluster: ClusterSpec,
    /// Default namespace of the lane's components.
    pub namespace: String,
    /// The components named by the lane, as written (dependencies are added
    /// by the plan).
    pub components: Vec<String>,
    pub suites: Vec<Suite>,
    /// Post-suite hooks (`after_suites:`), in the order they run: after the
    /// suites and gather, before teardown, never on a preserved cluster.
    pub after_suites: Vec<Hook>,
    /// Host builds the lane asks for itself (its images add theirs).
    pub host_builds: Vec<String>,
    /// Fixed host ports claimed by the lane's kind config.
    pub host_ports: Vec<HostPort>,
    /// Kinds left out of every component it deploys (its `exclude:`).
    pub exclude: Vec<crate::render::KindPattern>,
    /// What each of its components renders, in deploy closure order.
    pub rendered: IndexMap<String, RenderedComponent>,
    /// What Ready means for some kinds or objects in this lane (`readiness:`).
    pub readiness: Overrides,
}

impl Lane {
    /// Fills `{{host_port.<containerPort>}}` in a URL template with the host
    /// port this lane's kind config maps to that container port (NodePort),
    /// so one component can be reached at different ports in different
    /// lanes. `Err` lists the container ports the lane does not map.
    pub fn resolve_url(&self, template: &str) -> Result<String, Vec<u16>> {
        let mut missing = Vec::new();
        let filled = super::manifests::fill(template, |name| {
            let port: u16 = name.strip_prefix("host_port.")?.trim().parse().ok()?;
            match self
                .host_ports
                .iter()
                .find(|p| p.container_port == Some(port))
            {
                Some(p) => Some(p.port.to_string()),
                None => {
                    missing.push(port);
                    None
                }
            }
        });
        if missing.is_empty() {
            Ok(filled)
        } else {
            Err(missing)
        }
    }

    /// The namespace `component` deploys into in this lane.
    pub fn namespace_of<'a>(&'a self, component: &'a Component) -> &'a str {
        component.namespace.as_deref().unwrap_or(&self.namespace)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterSpec {
    pub name: String,
    pub provider: ClusterProvider,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterProvider {
    Kind(KindSpec),
    Existing(ExistingSpec),
}

#[derive(Clone, Debug, Serialize)]
pub struct KindSpec {
    /// The user's kind config, passed to kind untouched.
    pub config: Option<PathBuf>,
    pub node_image: Option<String>,
    pub engine: EngineKind,
    pub min_version: semver::Version,
}

/// The container engine kind drives (pinned for every kind call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Docker,
    Podman,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ExistingSpec {
    /// `None`: `$KUBECONFIG` or `~/.kube/config`, as kubectl would.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Receives each image archive on stdin; `None` when images come from a registry.
    pub load_command: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Suite {
    pub name: String,
    pub command: Vec<String>,
    pub procs: u32,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    pub serial: bool,
    pub env: IndexMap<String, String>,
    pub workdir: PathBuf,
    pub namespace_prefix: String,
    /// How many times a failed run is run again, in a fresh namespace, once
    /// every component is Ready again [0]; `--retries` overrides it.
    pub retries: u32,
    /// The command a retry runs instead of `command`, with `{{failed}}`
    /// standing for the failed test cases as one regular expression (e.g.
    /// `[ginkgo, --focus, "{{failed}}", ./test/e2e]`); `None`: the whole
    /// suite runs again (it may still read `HARNESS_FAILED_CASES`).
    pub rerun: Option<Vec<String>>,
}

/// A command run on the host after the suites and gather, before teardown:
/// coverage collection that scales the service under test down, exporting
/// state, anything that disturbs the cluster.
#[derive(Clone, Debug, Serialize)]
pub struct Hook {
    pub name: String,
    pub command: Vec<String>,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Added to the harness's own variables (which it may not override).
    pub env: IndexMap<String, String>,
    pub workdir: PathBuf,
}

/// Durations serialize as humantime strings (`"5m"`) in `--output json`.
mod humantime_serde_compat {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// Whether a hook's `env:` may not set `name`: the harness's own contract
/// (`KUBECONFIG`, `HARNESS_*`, see [`crate::suites::env`]) always describes
/// this run's cluster and lane.
pub fn is_reserved_variable(name: &str) -> bool {
    name == "KUBECONFIG" || name.starts_with("HARNESS_")
}

/// The components `roots` need: themselves plus their dependencies,
/// transitively, in the lane file's order (so waves read as the user wrote
/// them). Unknown names are skipped; cycles cannot loop.
pub fn closure_of(components: &IndexMap<String, Component>, roots: &[String]) -> Vec<String> {
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut stack: Vec<&str> = roots.iter().map(String::as_str).collect();
    while let Some(name) = stack.pop() {
        if !seen.insert(name) {
            continue;
        }
        if let Some(c) = components.get(name) {
            stack.extend(c.depends_on.iter().map(String::as_str));
        }
    }
    components
        .keys()
        .filter(|name| seen.contains(name.as_str()))
        .cloned()
        .collect()
}
