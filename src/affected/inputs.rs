//! Each lane's inputs as paths: what a change must touch to affect it.
//!
//! The lane file names most of them; the work tree says the rest: which
//! files an image's `.dockerignore` leaves out of its context, and which
//! files and directories a kustomization or a chart reaches beyond its own
//! directory. Those are over-approximated on purpose (every string in a
//! kustomization that names an existing local path counts), because a lane
//! run for nothing costs minutes and a lane skipped wrongly costs a broken
//! main branch.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::config::{ClusterProvider, ImageSource, ManifestSource, Project};
use crate::images::ignore::Ignore;

/// One input of a lane: a file or a directory (everything below it).
#[derive(Clone, Debug)]
pub struct Input {
    /// Absolute, without `.` or `..`.
    pub path: PathBuf,
    pub kind: InputKind,
    /// For a build context: what its `.dockerignore` leaves out.
    pub ignore: Option<Ignore>,
}

/// What an input belongs to, which names the reason a change to it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputKind {
    Image {
        image: String,
    },
    HostBuild {
        host_build: String,
    },
    /// A host build that declares no inputs: any change may affect it.
    HostBuildWithoutInputs {
        host_build: String,
    },
    Manifests {
        component: String,
        source: String,
    },
    KindConfig,
    Suite {
        suite: String,
    },
    Hook {
        hook: String,
    },
}

impl InputKind {
    pub(super) fn reason(&self, paths: Vec<String>) -> super::Reason {
        use super::Reason;
        match self.clone() {
            InputKind::Image { image } => Reason::Image { image, paths },
            InputKind::HostBuild { host_build } => Reason::HostBuild { host_build, paths },
            InputKind::HostBuildWithoutInputs { host_build } => {
                Reason::HostBuildWithoutInputs { host_build }
            }
            InputKind::Manifests { component, source } => Reason::Manifests {
                component,
                source,
                paths,
            },
            InputKind::KindConfig => Reason::KindConfig { paths },
            InputKind::Suite { suite } => Reason::Suite { suite, paths },
            InputKind::Hook { hook } => Reason::Hook { hook, paths },
        }
    }
}

impl Input {
    fn new(path: &Path, kind: InputKind) -> Input {
        Input {
            path: normalize(path),
            kind,
            ignore: None,
        }
    }

    /// Whether a change to `path` (absolute, normalized) touches this input.
    pub fn covers(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.path) else {
            return false;
        };
        match &self.ignore {
            None => true,
            Some(ignore) => {
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                // `.dockerignore` itself is always sent (Docker's CLI does).
                rel == ".dockerignore" || !ignore.excludes(&rel)
            }
        }
    }
}

/// `path` without `.` and with each `..` taking off the component before
/// it, without touching the file system (the path may no longer exist).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Every lane's inputs, by lane name.
pub fn collect(project: &Project) -> BTreeMap<String, Vec<Input>> {
    project
        .lanes
        .values()
        .map(|lane| (lane.name.clone(), lane_inputs(project, lane)))
        .collect()
}

fn lane_inputs(project: &Project, lane: &crate::config::Lane) -> Vec<Input> {
    let mut out = Vec::new();
    for name in crate::images::lane_images(project, lane) {
        let Some(image) = project.images.get(&name) else {
            continue;
        };
        if let ImageSource::Build {
            dockerfile,
            context,
            ..
        } = &image.source
        {
            let kind = InputKind::Image {
                image: name.clone(),
            };
            // A .dockerignore that cannot be read or parsed leaves nothing
            // out: the build would fail, and a change to it must be seen.
            let ignore = std::fs::read_to_string(context.join(".dockerignore"))
                .ok()
                .and_then(|text| Ignore::parse(&text).ok())
                .unwrap_or_default();
            out.push(Input {
                ignore: Some(ignore),
                ..Input::new(context, kind.clone())
            });
            // The Dockerfile is sent even when ignored, or from outside.
            out.push(Input::new(dockerfile, kind));
        }
    }
    for name in crate::images::host::lane_builds(project, lane) {
        let Some(build) = project.host_builds.get(&name) else {
            continue;
        };
        if build.inputs.is_empty() {
            out.push(Input::new(
                &build.workdir,
                InputKind::HostBuildWithoutInputs { host_build: name },
            ));
            continue;
        }
        for path in &build.inputs {
            out.push(Input::new(
                path,
                InputKind::HostBuild {
                    host_build: name.clone(),
                },
            ));
        }
    }
    for name in crate::plan::closure(project, &lane.components) {
        let Some(component) = project.components.get(&name) else {
            continue;
        };
        for source in &component.sources {
            let kind = InputKind::Manifests {
                component: name.clone(),
                source: source.label(&project.root),
            };
            for path in source_paths(source) {
                out.push(Input::new(&path, kind.clone()));
            }
        }
    }
    if let ClusterProvider::Kind(kind) = &lane.cluster.provider
        && let Some(config) = &kind.config
    {
        out.push(Input::new(config, InputKind::KindConfig));
    }
    for suite in &lane.suites {
        for path in named_paths(&suite.command, &suite.workdir) {
            out.push(Input::new(
                &path,
                InputKind::Suite {
                    suite: suite.name.clone(),
                },
            ));
        }
    }
    for hook in &lane.after_suites {
        for path in named_paths(&hook.command, &hook.workdir) {
            out.push(Input::new(
                &path,
                InputKind::Hook {
                    hook: hook.name.clone(),
                },
            ));
        }
    }
    out
}

/// The files and directories a manifest source reads.
pub(super) fn source_paths(source: &ManifestSource) -> Vec<PathBuf> {
    match source {
        ManifestSource::Files { path, .. } => vec![path.clone()],
        ManifestSource::Kustomize { dir, .. } => {
            let mut seen = Vec::new();
            kustomization_paths(dir, &mut seen);
            seen
        }
        ManifestSource::Helm { chart, values, .. } => {
            let mut paths = vec![chart.clone()];
            paths.extend(values.iter().cloned());
            // `file://../common` dependencies of a chart directory.
            if let Ok(text) = std::fs::read_to_string(chart.join("Chart.yaml")) {
                for s in strings_in(&text) {
                    if let Some(rel) = s.strip_prefix("file://") {
                        paths.push(normalize(&chart.join(rel)));
                    }
                }
            }
            paths
        }
    }
}

/// A kustomize directory, and every local file or directory its
/// kustomization names (resources, bases, components, patches, generator
/// files, …: any string that is an existing path), recursively. Remote
/// resources are left to kustomize: they are not in the repository.
fn kustomization_paths(dir: &Path, seen: &mut Vec<PathBuf>) {
    let dir = normalize(dir);
    if seen.iter().any(|s| dir.starts_with(s)) {
        return;
    }
    seen.push(dir.clone());
    let text = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .find_map(|name| std::fs::read_to_string(dir.join(name)).ok());
    let Some(text) = text else { return };
    for s in strings_in(&text) {
        // `configMapGenerator` files may be `key=path`.
        let candidates = [Some(s.as_str()), s.split_once('=').map(|(_, p)| p)];
        for candidate in candidates.into_iter().flatten() {
            if candidate.is_empty() || candidate.contains("://") {
                continue;
            }
            let path = normalize(&dir.join(candidate));
            if path.is_dir() {
                kustomization_paths(&path, seen);
            } else if path.is_file() && !seen.iter().any(|s| path.starts_with(s)) {
                seen.push(path);
            }
        }
    }
}

/// Every string scalar of a YAML document (nothing when it does not parse:
/// the lane file's load would have failed on it already).
fn strings_in(text: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(text) {
        walk(&value, &mut out);
    }
    out
}

/// The existing files and directories a command's arguments name, relative
/// to its working directory: `suites/audit.sh`, `--config=e2e/conf.yaml`'s
/// path, Go's `./test/e2e/...` (its directory), and what a named shell
/// script sources ([`sourced_paths`]), recursively.
pub fn named_paths(command: &[String], workdir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for arg in command {
        let mut candidates = vec![arg.as_str()];
        if let Some((_, value)) = arg.split_once('=') {
            candidates.push(value);
        }
        for candidate in candidates {
            let candidate = candidate.strip_suffix("/...").unwrap_or(candidate);
            if candidate.is_empty() || candidate.starts_with('-') {
                continue;
            }
            let path = normalize(&workdir.join(candidate));
            if path.exists() && !out.contains(&path) {
                out.push(path);
            }
        }
    }
    let mut at = 0;
    while at < out.len() {
        let script = out[at].clone();
        at += 1;
        if !script.is_file() {
            continue;
        }
        for path in sourced_paths(&script, workdir) {
            if !out.contains(&path) {
                out.push(path);
            }
        }
    }
    out
}

/// What a shell script reads with `.` or `source`: `. "$(dirname "$0")/lib.sh"`,
/// `source ./common.sh`, `. "${0%/*}/env.sh"`, each as an existing path (a
/// relative one from the command's working directory, as the shell finds
/// it). A sourced path that cannot be told without running the script (it
/// names another variable) counts as the script's whole directory: when in
/// doubt, a change there affects the suite. Nothing for a file that is not a
/// shell script (by its `#!` line or its `.sh`/`.bash` name).
pub fn sourced_paths(script: &Path, workdir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(script) else {
        return Vec::new();
    };
    let shebang = text.lines().next().is_some_and(|l| {
        l.starts_with("#!")
            && ["sh", "bash", "dash", "ksh", "zsh"]
                .iter()
                .any(|s| l.split(['/', ' ']).any(|word| word == *s))
    });
    let named = script.extension().is_some_and(|e| e == "sh" || e == "bash");
    if !shebang && !named {
        return Vec::new();
    }
    let dir = script.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let rest = match line.split_once(char::is_whitespace) {
            Some((".", rest)) | Some(("source", rest)) => rest.trim(),
            _ => continue,
        };
        // The first word, quotes taken out: `"$(dirname "$0")/lib.sh"`.
        let word = first_word(rest);
        let spelled = [
            "$(dirname \"$0\")",
            "$(dirname -- \"$0\")",
            "$(dirname $0)",
            "`dirname $0`",
            "`dirname \"$0\"`",
            "${0%/*}",
        ]
        .iter()
        .find_map(|d| word.strip_prefix(d));
        let path = match spelled {
            Some(rest) => normalize(&dir.join(rest.trim_start_matches('/'))),
            None => normalize(&workdir.join(word.trim_matches('"').trim_matches('\''))),
        };
        let path = if word.contains('$') && spelled.is_none_or(|r| r.contains('$')) {
            normalize(dir)
        } else {
            path
        };
        if path.exists() && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// The first shell word of `text`: up to the first whitespace outside
/// double quotes and `$(...)`, with its outer double quotes taken out.
fn first_word(text: &str) -> String {
    let mut word = String::new();
    let (mut quoted, mut depth) = (false, 0usize);
    for c in text.chars() {
        match c {
            '"' if depth == 0 => {
                quoted = !quoted;
                continue;
            }
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if c.is_whitespace() && !quoted && depth == 0 => break,
            _ => {}
        }
        word.push(c);
    }
    word
}
