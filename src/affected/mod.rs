//! Which lanes a change affects (`harness affected --base <ref>`), and why.
//!
//! Three steps, of which only the first two touch anything. [`inputs`]
//! lists each lane's inputs as paths, reading the work tree where the lane
//! file alone does not say: an image's context (less what its
//! `.dockerignore` leaves out) and Dockerfile, the inputs of its host
//! builds and the lane's, every manifest source of the components the lane
//! deploys (a kustomize directory with every local file and directory its
//! kustomizations name, a chart with its values files and `file://`
//! dependencies), the lane's kind config, and the files the suites' and
//! hooks' commands name. [`git`] asks the `git` binary which paths differ
//! between the base ref and the work tree (untracked files included) and,
//! when the lane file is one of them, for its text at the base. Then
//! [`judge`] decides, as a pure function of those lists and the two lane
//! files: a lane is affected when a changed path is one of its inputs, or
//! when an entry of the lane file it uses changed (its own `lanes:` entry,
//! a component it deploys, an image it loads, a host build it runs), or
//! when a part every lane shares changed (anything outside those four
//! maps). When in doubt a lane is affected, and its reason says why: a
//! host build without `inputs` may read anything, and a lane file that
//! cannot be read at the base could have changed anywhere.

pub mod git;
pub mod inputs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Project;
pub use git::GitError;
pub use inputs::{Input, InputKind};

/// What changed between the base and the work tree.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// Changed, added, deleted and untracked files, as absolute paths (the
    /// lane file's directory joined with git's paths).
    pub paths: Vec<PathBuf>,
    /// The lane file as it was at the base; `None` when it is not among
    /// the changed paths.
    pub base_lane_file: Option<BaseLaneFile>,
}

/// The lane file at the base, when it changed since.
#[derive(Clone, Debug)]
pub enum BaseLaneFile {
    /// Its text at the base.
    Text(String),
    /// It did not exist at the base (the repository is new to harness).
    Missing,
}

/// Why a lane is affected: one input or one lane-file entry, with the
/// changed paths (relative to the lane file's directory) that touched it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Files of an image's build context (after `.dockerignore`) or its
    /// Dockerfile.
    Image { image: String, paths: Vec<String> },
    /// Inputs of a host build the lane runs.
    HostBuild {
        host_build: String,
        paths: Vec<String>,
    },
    /// A host build without `inputs:` may read any file: any change counts.
    HostBuildWithoutInputs { host_build: String },
    /// A manifest source of a component the lane deploys.
    Manifests {
        component: String,
        source: String,
        paths: Vec<String>,
    },
    /// The lane's kind config.
    KindConfig { paths: Vec<String> },
    /// A file a suite's command names.
    Suite { suite: String, paths: Vec<String> },
    /// A file a post-suite hook's command names.
    Hook { hook: String, paths: Vec<String> },
    /// An entry of the lane file the lane uses: `lanes.audit`,
    /// `components.datastorage`, `images.redis`, `host_builds.demo`.
    LaneFileEntry { entry: String },
    /// A part of the lane file every lane shares (`cluster`, `namespace`,
    /// `exclude`, …), or an image's `replaces:`, which rewrites what every
    /// lane renders.
    LaneFileShared { entry: String },
    /// The lane file at the base could not be compared entry by entry.
    LaneFileUnknown { why: String },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Image { image, paths } => {
                write!(f, "image {image}: {}", changed(paths))
            }
            Reason::HostBuild { host_build, paths } => {
                write!(f, "host build {host_build}: {}", changed(paths))
            }
            Reason::HostBuildWithoutInputs { host_build } => write!(
                f,
                "host build {host_build} declares no inputs, so any change may affect it"
            ),
            Reason::Manifests {
                component,
                source,
                paths,
            } => write!(f, "component {component} ({source}): {}", changed(paths)),
            Reason::KindConfig { paths } => write!(f, "kind config: {}", changed(paths)),
            Reason::Suite { suite, paths } => write!(f, "suite {suite}: {}", changed(paths)),
            Reason::Hook { hook, paths } => write!(f, "hook {hook}: {}", changed(paths)),
            Reason::LaneFileEntry { entry } => write!(f, "lane file: `{entry}` changed"),
            Reason::LaneFileShared { entry } => {
                write!(f, "lane file: `{entry}` changed, which every lane uses")
            }
            Reason::LaneFileUnknown { why } => write!(f, "lane file: {why}"),
        }
    }
}

/// `a changed`, `a and b changed`, `a, b, c and 4 more changed`.
fn changed(paths: &[String]) -> String {
    const SHOWN: usize = 3;
    let list = match paths {
        [] => String::new(),
        [one] => one.clone(),
        _ if paths.len() <= SHOWN => format!(
            "{} and {}",
            paths[..paths.len() - 1].join(", "),
            paths[paths.len() - 1]
        ),
        _ => format!(
            "{} and {} more",
            paths[..SHOWN].join(", "),
            paths.len() - SHOWN
        ),
    };
    format!("{list} changed")
}

/// A lane a change affects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AffectedLane {
    pub lane: String,
    pub reasons: Vec<Reason>,
}

/// The answer of `harness affected`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Affected {
    /// The ref compared with the work tree.
    pub base: String,
    /// The affected lanes' names, in the lane file's order: a CI matrix.
    pub lanes: Vec<String>,
    /// Each affected lane with its reasons.
    pub affected: Vec<AffectedLane>,
    /// The lanes nothing touched.
    pub unaffected: Vec<String>,
    /// Every changed path, relative to the lane file's directory.
    pub changed: Vec<String>,
}

impl Affected {
    /// The text `harness affected` prints.
    pub fn render_text(&self) -> String {
        let files = match self.changed.len() {
            1 => "1 changed file".to_owned(),
            n => format!("{n} changed files"),
        };
        let mut text = String::new();
        for lane in &self.affected {
            text.push_str(&format!("{}\n", lane.lane));
            for reason in &lane.reasons {
                text.push_str(&format!("  {reason}\n"));
            }
        }
        let total = self.affected.len() + self.unaffected.len();
        match self.affected.len() {
            0 => text.push_str(&format!(
                "no lane is affected by the {files} since {}\n",
                self.base
            )),
            n => text.push_str(&format!(
                "{n} of {total} lanes affected by the {files} since {}\n",
                self.base
            )),
        }
        if !self.unaffected.is_empty() && !self.affected.is_empty() {
            text.push_str(&format!("unaffected: {}\n", self.unaffected.join(", ")));
        }
        text
    }
}

/// Which of the project's lanes `changes` affect, and why: [`inputs::collect`],
/// then [`judge`].
pub fn affected(project: &Project, base: &str, changes: &Changes) -> Affected {
    let inputs = inputs::collect(project);
    judge(project, base, &inputs, changes)
}

/// The pure decision: each lane's inputs and the lane-file entries it uses,
/// held against the changed paths and the lane file at the base.
pub fn judge(
    project: &Project,
    base: &str,
    inputs: &BTreeMap<String, Vec<Input>>,
    changes: &Changes,
) -> Affected {
    let root = &project.root;
    let rel = |p: &Path| -> String {
        p.strip_prefix(inputs::normalize(root))
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let changed: Vec<PathBuf> = changes.paths.iter().map(|p| inputs::normalize(p)).collect();
    let entries = lane_file_changes(project, changes);
    let mut affected = Vec::new();
    let mut unaffected = Vec::new();
    for lane in project.lanes.values() {
        let mut reasons = Vec::new();
        // Lane-file entries first: they are what a reader changed on purpose.
        match &entries {
            EntryChanges::Unknown(why) => {
                reasons.push(Reason::LaneFileUnknown { why: why.clone() })
            }
            EntryChanges::Entries(changed_entries) => {
                let uses = uses(project, lane);
                for entry in changed_entries {
                    match entry {
                        Entry::Shared(key) => {
                            reasons.push(Reason::LaneFileShared { entry: key.clone() })
                        }
                        Entry::Named(section, name)
                            if uses.contains(&(*section, name.as_str())) =>
                        {
                            reasons.push(Reason::LaneFileEntry {
                                entry: format!("{}.{name}", section.key()),
                            })
                        }
                        Entry::Named(..) => {}
                    }
                }
            }
        }
        // Then the paths, grouped by the input they touched, in input order.
        let mut by_input: Vec<(&Input, Vec<String>)> = Vec::new();
        for input in inputs.get(&lane.name).into_iter().flatten() {
            if let InputKind::HostBuildWithoutInputs { host_build } = &input.kind {
                if !changed.is_empty() {
                    reasons.push(Reason::HostBuildWithoutInputs {
                        host_build: host_build.clone(),
                    });
                }
                continue;
            }
            let hits: Vec<String> = changed
                .iter()
                .filter(|p| input.covers(p))
                .map(|p| rel(p))
                .collect();
            if hits.is_empty() {
                continue;
            }
            // Two inputs of one kind and owner (a kustomize overlay and its
            // base) make one reason.
            match by_input.iter_mut().find(|(i, _)| i.kind == input.kind) {
                Some((_, paths)) => {
                    for hit in hits {
                        if !paths.contains(&hit) {
                            paths.push(hit);
                        }
                    }
                }
                None => by_input.push((input, hits)),
            }
        }
        for (input, paths) in by_input {
            reasons.push(input.kind.reason(paths));
        }
        dedup(&mut reasons);
        if reasons.is_empty() {
            unaffected.push(lane.name.clone());
        } else {
            affected.push(AffectedLane {
                lane: lane.name.clone(),
                reasons,
            });
        }
    }
    Affected {
        base: base.to_owned(),
        lanes: affected.iter().map(|a| a.lane.clone()).collect(),
        affected,
        unaffected,
        changed: changed.iter().map(|p| rel(p)).collect(),
    }
}

fn dedup(reasons: &mut Vec<Reason>) {
    let mut seen = Vec::new();
    reasons.retain(|r| {
        if seen.contains(r) {
            false
        } else {
            seen.push(r.clone());
            true
        }
    });
}

/// The four maps of the lane file whose entries lanes use one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    HostBuilds,
    Images,
    Components,
    Lanes,
}

impl Section {
    const ALL: [Section; 4] = [
        Section::HostBuilds,
        Section::Images,
        Section::Components,
        Section::Lanes,
    ];

    fn key(self) -> &'static str {
        match self {
            Section::HostBuilds => "host_builds",
            Section::Images => "images",
            Section::Components => "components",
            Section::Lanes => "lanes",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    /// `images.redis`: an entry of one of the four maps.
    Named(Section, String),
    /// Anything else: every lane uses it.
    Shared(String),
}

enum EntryChanges {
    Entries(Vec<Entry>),
    Unknown(String),
}

/// The lane-file entries a lane uses: its own, the components it deploys
/// (dependencies included), the images they load and the host builds it runs.
fn uses<'p>(project: &'p Project, lane: &'p crate::config::Lane) -> Vec<(Section, &'p str)> {
    let mut uses = vec![(Section::Lanes, lane.name.as_str())];
    for component in crate::plan::closure(project, &lane.components) {
        if let Some((name, _)) = project.components.get_key_value(component.as_str()) {
            uses.push((Section::Components, name.as_str()));
        }
    }
    for image in crate::images::lane_images(project, lane) {
        if let Some((name, _)) = project.images.get_key_value(image.as_str()) {
            uses.push((Section::Images, name.as_str()));
        }
    }
    for build in crate::images::host::lane_builds(project, lane) {
        if let Some((name, _)) = project.host_builds.get_key_value(build.as_str()) {
            uses.push((Section::HostBuilds, name.as_str()));
        }
    }
    uses
}

fn lane_file_changes(project: &Project, changes: &Changes) -> EntryChanges {
    let Some(base) = &changes.base_lane_file else {
        return EntryChanges::Entries(Vec::new());
    };
    let BaseLaneFile::Text(base) = base else {
        return EntryChanges::Unknown("it did not exist at the base".into());
    };
    let now = match std::fs::read_to_string(&project.file) {
        Ok(text) => text,
        Err(e) => return EntryChanges::Unknown(format!("cannot read it now ({e})")),
    };
    match changed_entries(base, &now) {
        Ok(entries) => EntryChanges::Entries(entries),
        Err(why) => EntryChanges::Unknown(why),
    }
}

/// The entries that differ between two lane files: an entry of
/// `host_builds`, `images`, `components` or `lanes` by its name, any other
/// top-level key whole. An image whose `replaces:` changed is also shared:
/// it rewrites the rendered manifests of components that need not list it.
fn changed_entries(base: &str, now: &str) -> Result<Vec<Entry>, String> {
    use serde_json::Value;
    let parse = |text: &str, which: &str| {
        serde_saphyr::from_str::<Value>(text).map_err(|e| {
            format!("it cannot be read at the base ({which}: {e}), so it may have changed anywhere")
        })
    };
    let base = parse(base, "base")?;
    let now = parse(now, "now")?;
    let empty = serde_json::Map::new();
    let as_map = |v: &Value| v.as_object().cloned().unwrap_or_else(|| empty.clone());
    let (base, now) = (as_map(&base), as_map(&now));
    let mut keys: Vec<&String> = now.keys().collect();
    keys.extend(base.keys().filter(|k| !now.contains_key(*k)));
    let mut out = Vec::new();
    for key in keys {
        let (b, n) = (base.get(key), now.get(key));
        if b == n {
            continue;
        }
        let Some(section) = Section::ALL.into_iter().find(|s| s.key() == key) else {
            out.push(Entry::Shared(key.clone()));
            continue;
        };
        let (b, n) = (
            b.map(as_map).unwrap_or_default(),
            n.map(as_map).unwrap_or_default(),
        );
        let mut names: Vec<&String> = n.keys().collect();
        names.extend(b.keys().filter(|k| !n.contains_key(*k)));
        for name in names {
            let (be, ne) = (b.get(name), n.get(name));
            if be == ne {
                continue;
            }
            out.push(Entry::Named(section, name.clone()));
            let replaces = |e: Option<&Value>| e.and_then(|e| e.get("replaces")).cloned();
            if section == Section::Images && replaces(be) != replaces(ne) {
                out.push(Entry::Shared(format!("images.{name}.replaces")));
            }
        }
    }
    Ok(out)
}

/// Finds the changed paths with `git` and says which lanes they affect.
pub fn find(project: &Project, base: &str) -> Result<Affected, GitError> {
    let changes = git::changes(&project.root, &project.file, base)?;
    Ok(affected(project, base, &changes))
}

#[cfg(test)]
mod tests;
