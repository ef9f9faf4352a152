//! The lane file exactly as written: serde structures with source spans.
//!
//! Nothing here is validated beyond its YAML shape; `validate` turns it into
//! the [`crate::config::Project`] the rest of the program uses. Every field a
//! later check may complain about is `Spanned`, so the complaint can name the
//! line and column. Unknown keys are rejected by serde itself.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub type Name = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneFile {
    #[serde(default)]
    pub namespace: Option<Spanned<String>>,
    #[serde(default)]
    pub cluster: Option<Cluster>,
    #[serde(default)]
    pub preflight: Option<Preflight>,
    /// Commands run on the host before images are built (named, so that
    /// images and lanes can share one).
    #[serde(default)]
    pub host_builds: IndexMap<Name, HostBuild>,
    #[serde(default)]
    pub images: IndexMap<Name, Image>,
    #[serde(default)]
    pub components: IndexMap<Name, Component>,
    #[serde(default)]
    pub lanes: IndexMap<Name, Lane>,
    /// Kinds left out of every component's rendered objects.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// What Ready means for some kinds or objects, in every lane.
    #[serde(default)]
    pub readiness: Readiness,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Kind,
    Existing,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Docker,
    Podman,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub provider: Option<Spanned<Provider>>,
    pub name: Option<Spanned<String>>,
    pub kind: Option<Kind>,
    pub existing: Option<Existing>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Kind {
    pub config: Option<Spanned<String>>,
    pub node_image: Option<Spanned<String>>,
    pub engine: Option<Spanned<Engine>>,
    pub min_version: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Existing {
    pub kubeconfig: Option<Spanned<String>>,
    pub context: Option<Spanned<String>>,
    pub load_command: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preflight {
    pub min_free_disk: Option<Spanned<String>>,
    pub memory_per_lane: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub dockerfile: Option<Spanned<String>>,
    pub context: Option<Spanned<String>>,
    #[serde(default)]
    pub build_args: IndexMap<String, String>,
    pub target: Option<String>,
    pub pull: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    /// Host builds this image's context needs (binaries it copies).
    #[serde(default)]
    pub host_builds: Vec<Name>,
    /// Repositories whose images in rendered manifests this image replaces.
    #[serde(default)]
    pub replaces: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostBuild {
    pub command: Spanned<Vec<String>>,
    /// Files and directories whose content decides whether to run again.
    #[serde(default)]
    pub inputs: Vec<Spanned<String>>,
    /// Files it makes; a missing one means running again.
    #[serde(default)]
    pub outputs: Vec<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    pub workdir: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    #[serde(default)]
    pub manifests: Vec<Spanned<String>>,
    /// A kustomize directory, rendered after `manifests:`.
    pub kustomize: Option<Spanned<String>>,
    /// A Helm chart, rendered after `kustomize:`.
    pub helm: Option<Helm>,
    /// Kinds left out of what the sources render.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// Kinds left out when the cluster does not serve their apiVersion.
    #[serde(default)]
    pub exclude_unserved: Vec<Spanned<String>>,
    #[serde(default)]
    pub images: Vec<Name>,
    #[serde(default)]
    pub depends_on: Vec<Name>,
    pub namespace: Option<Spanned<String>>,
    pub endpoint: Option<Spanned<String>>,
    pub health: Option<Health>,
    pub tolerate: Option<Tolerate>,
    pub settle: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    /// What Ready means for some of its objects (over its lanes' and the file's).
    #[serde(default)]
    pub readiness: Readiness,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Helm {
    pub chart: Spanned<String>,
    pub release: Option<Spanned<String>>,
    pub namespace: Option<Spanned<String>>,
    #[serde(default)]
    pub values: Vec<Spanned<String>>,
    /// `--set key=value`: scalars, as Helm reads them.
    #[serde(default)]
    pub set: IndexMap<String, Spanned<Scalar>>,
}

/// A value of `helm.set`: written as YAML scalars, passed as text.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(t) => t.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub url: Spanned<String>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerate {
    pub restarts: Option<u32>,
    pub grace: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lane {
    pub cluster: Option<Cluster>,
    pub namespace: Option<Spanned<String>>,
    #[serde(default)]
    pub components: Vec<Name>,
    #[serde(default)]
    pub suites: IndexMap<Name, Suite>,
    /// Post-suite hooks, in the order they run. A list, not a map: the order
    /// is part of the meaning, and YAML tools may reorder a map's keys.
    #[serde(default)]
    pub after_suites: Vec<Hook>,
    /// Host builds the lane needs besides its images' (a test binary...).
    #[serde(default)]
    pub host_builds: Vec<Name>,
    /// Kinds left out of the rendered objects of every component the lane deploys.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// What Ready means for some kinds or objects in this lane (over the file's).
    #[serde(default)]
    pub readiness: Readiness,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    pub name: Spanned<String>,
    pub command: Spanned<Vec<String>>,
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub env: IndexMap<Spanned<String>, String>,
    pub workdir: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub command: Spanned<Vec<String>>,
    pub procs: Option<Spanned<u32>>,
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub serial: bool,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    pub workdir: Option<Spanned<String>>,
    pub namespace_prefix: Option<Spanned<String>>,
    /// How many times a failed run of the suite is run again.
    pub retries: Option<Spanned<u32>>,
    /// The command of a retry, running only the failed test cases (`{{failed}}`).
    pub rerun: Option<Spanned<Vec<String>>>,
}

// ------------------------------------------------------------ readiness

/// `readiness:`: a key that selects objects (`Kind`, `Kind.group`,
/// `Kind[.group]/name`, `Kind[.group]/namespace/name`) → when they are
/// Ready. Checked by `super::readiness`.
pub type Readiness = IndexMap<Spanned<String>, Spanned<ReadyWhen>>;

/// When selected objects are Ready, as written: a word (`exists`) or a map
/// (`{condition: Synced}`).
#[derive(Debug)]
pub enum ReadyWhen {
    Word(String),
    Map(ReadyWhenMap),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyWhenMap {
    pub condition: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for ReadyWhen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ReadyWhen;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`exists` or a map like `{condition: Ready}`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ReadyWhen, E> {
                Ok(ReadyWhen::Word(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ReadyWhen, A::Error> {
                // Through the struct, so an unknown key is told as serde tells
                // every other one (and gets its "did you mean").
                ReadyWhenMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ReadyWhen::Map)
            }
        }
        d.deserialize_any(Visitor)
    }
}
