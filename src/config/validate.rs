//! Turns the lane file as written into a [`Project`], or into every problem
//! found in it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use super::diag::{Diagnostic, SourceLoc, Sources, did_you_mean};
use super::model::*;
use super::{ConfigError, kind, manifests, parse_message, raw};
use crate::suites::namespace::is_dns1123_label;

pub(super) fn validate(file: &Path, text: &str) -> Result<Project, ConfigError> {
    let mut sources = Sources::default();
    sources.add(file, text);
    let mut v = Validator {
        file: file.to_path_buf(),
        root: file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        problems: Vec::new(),
        sources,
        replaced: HashMap::new(),
    };
    let project = match serde_saphyr::from_str::<raw::LaneFile>(text) {
        Ok(raw) => Some(v.project(raw)),
        Err(e) => {
            v.problems.push(yaml_error(file, &e));
            None
        }
    };
    match project {
        Some(project) if v.problems.is_empty() => Ok(project),
        _ => Err(ConfigError::Invalid {
            file: file.to_path_buf(),
            diagnostics: v.problems,
            sources: v.sources,
        }),
    }
}

/// A YAML or shape error from serde, with a "did you mean" for misspelt keys
/// and values.
fn yaml_error(file: &Path, e: &serde_saphyr::Error) -> Diagnostic {
    let at = e
        .location()
        .map_or_else(|| SourceLoc::new(file, 1, 1), |l| SourceLoc::of(file, &l));
    let message = parse_message(e);
    let help = unknown_name_help(&message);
    let d = Diagnostic::new(at, message);
    match help {
        Some(h) => d.help(h),
        None => d,
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and the same
/// for enum variants), the closest expected name.
fn unknown_name_help(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (word, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected ")?.1;
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    let candidates: Vec<&str> = expected
        .split(", ")
        .map(|c| c.trim_matches('`'))
        .filter(|c| !c.is_empty())
        .collect();
    if candidates.is_empty() {
        return Some("this key is not part of the lane file; remove it".into());
    }
    Some(match did_you_mean(word, candidates.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("expected one of: {}", candidates.join(", ")),
    })
}

/// An image reference without its tag and digest, as written.
fn repository_part(reference: &str) -> &str {
    let name = reference.trim().split('@').next().unwrap_or_default();
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

/// Whether a URL template is an http(s) URL once its placeholders are filled.
fn is_http_template(template: &str) -> bool {
    origin(&manifests::fill(template, |_| Some("1".into()))).is_some()
}

/// `scheme://authority` of an http(s) URL, or `None` when it is not one.
fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return None;
    }
    Some(&url[..url.len() - rest.len() + authority.len()])
}

struct Validator {
    file: PathBuf,
    root: PathBuf,
    problems: Vec<Diagnostic>,
    sources: Sources,
    /// Repositories named by `replaces:` (normalized) → the image and where.
    replaced: HashMap<String, (String, Location)>,
}

impl Validator {
    fn at(&self, location: &Location) -> SourceLoc {
        SourceLoc::of(&self.file, location)
    }

    fn problem(
        &mut self,
        location: &Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let d = Diagnostic::new(self.at(location), message).help(help);
        self.problems.push(d);
    }

    fn path(&self, value: &str) -> PathBuf {
        let p = Path::new(value);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    /// A path that must exist; `what` names it in the error.
    fn existing_path(&mut self, value: &Spanned<String>, what: &str, dir: Option<bool>) -> PathBuf {
        let path = self.path(&value.value);
        let ok = match dir {
            Some(true) => path.is_dir(),
            Some(false) => path.is_file(),
            None => path.exists(),
        };
        if !ok {
            let kind = match dir {
                Some(true) => "directory",
                Some(false) => "file",
                None => "path",
            };
            let exists_as_other = path.exists();
            self.problem(
                &value.referenced,
                format!("{what} `{}` does not exist", value.value),
                if exists_as_other {
                    format!("`{}` exists but is not a {kind}", path.display())
                } else {
                    "create it, or fix the path (relative paths are relative to the lane file's directory)".to_owned()
                },
            );
        }
        path
    }

    fn duration(&mut self, value: Option<&Spanned<String>>, default: Duration) -> Duration {
        let Some(value) = value else { return default };
        match humantime::parse_duration(value.value.trim()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.problem(
                    &value.referenced,
                    "a duration of zero is not allowed",
                    "write e.g. 30s, 5m or 1h30m",
                );
                default
            }
            Err(e) => {
                self.problem(
                    &value.referenced,
                    format!("invalid duration `{}`: {e}", value.value),
                    "write a duration like 30s, 5m or 1h30m",
                );
                default
            }
        }
    }

    /// A component's `settle:`: zero is allowed (Ready counts at once), but
    /// not a window as long as the component's timeout, which could never end
    /// in Ready.
    fn settle(&mut self, value: Option<&Spanned<String>>, timeout: Duration) -> Duration {
        let Some(value) = value else {
            return defaults::SETTLE.min(timeout / 2);
        };
        let settle = match humantime::parse_duration(value.value.trim()) {
            Ok(d) => d,
            Err(e) => {
                self.problem(
                    &value.referenced,
                    format!("invalid duration `{}`: {e}", value.value),
                    "write a duration like 5s or 30s (0s: Ready counts at once)",
                );
                return defaults::SETTLE.min(timeout / 2);
            }
        };
        if settle >= timeout {
            self.problem(
                &value.referenced,
                format!(
                    "settle `{}` is not shorter than the component's timeout ({})",
                    value.value,
                    humantime::format_duration(timeout)
                ),
                "readiness must hold for the settle window before the timeout: shorten `settle:` or lengthen `timeout:`",
            );
        }
        settle
    }

    fn dns_label(&mut self, name: &Spanned<String>, what: &str) {
        if !is_dns1123_label(&name.value) {
            self.problem(
                &name.referenced,
                format!("{what} name `{}` is not a valid name", name.value),
                "use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
            );
        }
    }

    /// A reference to one of `names`; reports it when undefined.
    fn reference(
        &mut self,
        name: &Spanned<String>,
        names: &[&str],
        what: &str,
        section: &str,
    ) -> bool {
        if names.contains(&name.value.as_str()) {
            return true;
        }
        let help = match did_you_mean(&name.value, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if names.is_empty() => format!("define it under `{section}:`"),
            None => format!(
                "define it under `{section}:` (defined: {})",
                names.join(", ")
            ),
        };
        self.problem(
            &name.referenced,
            format!("{what} `{}` is not defined", name.value),
            help,
        );
        false
    }

    fn project(&mut self, raw: raw::LaneFile) -> Project {
        let namespace = match &raw.namespace {
            Some(ns) => {
                self.dns_label(ns, "namespace");
                ns.value.clone()
            }
            None => defaults::NAMESPACE.to_owned(),
        };
        let preflight = self.preflight(raw.preflight.as_ref());
        let readiness = self.readiness(&raw.readiness);
        let host_builds = self.host_builds(&raw.host_builds);
        let images = self.images(&raw.images, &raw.host_builds);
        let file_exclude = self.kinds(&raw.exclude);
        let mut components = self.components(&raw.components, &raw.images, &images, &file_exclude);
        self.cycles(&raw.components);
        let cluster_defaults = raw.cluster.clone().unwrap_or_default();
        let mut lanes = self.lanes(&raw, &cluster_defaults, &namespace);
        // Rendering needs every lane (a chart's release namespace is the
        // component's in each lane that deploys it) and a graph without
        // cycles (a lane renders its components' closure).
        if self.problems.is_empty() {
            self.render(&mut components, &mut lanes, &images, &namespace);
        }
        self.port_collisions(&lanes);
        let shared_ports = super::ports::shared(lanes.values());
        self.url_ports(&raw, &components, &lanes);
        if raw.lanes.is_empty() {
            self.problems.push(
                Diagnostic::new(SourceLoc::new(&self.file, 1, 1), "no lanes are defined").help(
                    "add a `lanes:` section; a lane names a cluster, its components and its suites",
                ),
            );
        }
        Project {
            file: self.file.clone(),
            root: self.root.clone(),
            preflight,
            host_builds,
            images,
            components,
            lanes,
            shared_ports,
            readiness,
        }
    }

    /// A `readiness:` map (see [`super::readiness`]).
    fn readiness(&mut self, raw: &raw::Readiness) -> Overrides {
        let (overrides, problems) = super::readiness::overrides(&self.file, raw);
        self.problems.extend(problems);
        overrides
    }

    fn preflight(&mut self, raw: Option<&raw::Preflight>) -> PreflightSettings {
        PreflightSettings {
            min_free_disk: self.size(
                raw.and_then(|p| p.min_free_disk.as_ref()),
                defaults::MIN_FREE_DISK,
            ),
            memory_per_lane: self.size(
                raw.and_then(|p| p.memory_per_lane.as_ref()),
                defaults::MEMORY_PER_LANE,
            ),
        }
    }

    /// A size like `10GiB`, or `default` when not given.
    fn size(&mut self, value: Option<&Spanned<String>>, default: u64) -> u64 {
        let Some(value) = value else {
            return default;
        };
        match value.value.trim().parse::<bytesize::ByteSize>() {
            Ok(size) => size.as_u64(),
            Err(e) => {
                self.problem(
                    &value.referenced,
                    format!("invalid size `{}`: {e}", value.value),
                    "write a size like 10GiB or 500MB",
                );
                default
            }
        }
    }

    /// `host_builds:`: commands not empty, inputs and workdirs that exist.
    /// Outputs need not exist yet: the command makes them.
    fn host_builds(
        &mut self,
        raw: &IndexMap<raw::Name, raw::HostBuild>,
    ) -> IndexMap<String, HostBuild> {
        let mut builds = IndexMap::new();
        for (name, b) in raw {
            self.dns_label(name, "host build");
            if b.command.value.is_empty() || b.command.value[0].trim().is_empty() {
                self.problem(
                    &b.command.referenced,
                    format!("host build `{}` has an empty command", name.value),
                    "write the command as a list, e.g. [cargo, build, --release]",
                );
            }
            let inputs = b
                .inputs
                .iter()
                .map(|i| self.existing_path(i, "host build input", None))
                .collect();
            let outputs = b.outputs.iter().map(|o| self.path(&o.value)).collect();
            builds.insert(
                name.value.clone(),
                HostBuild {
                    name: name.value.clone(),
                    command: b.command.value.clone(),
                    inputs,
                    outputs,
                    timeout: self.duration(b.timeout.as_ref(), defaults::IMAGE_BUILD_TIMEOUT),
                    env: b.env.clone(),
                    workdir: match &b.workdir {
                        Some(w) => self.existing_path(w, "host build workdir", Some(true)),
                        None => self.root.clone(),
                    },
                },
            );
        }
        builds
    }

    fn images(
        &mut self,
        raw: &IndexMap<raw::Name, raw::Image>,
        raw_builds: &IndexMap<raw::Name, raw::HostBuild>,
    ) -> IndexMap<String, Image> {
        let build_names: Vec<&str> = raw_builds.keys().map(|k| k.value.as_str()).collect();
        let mut images = IndexMap::new();
        for (name, image) in raw {
            for b in &image.host_builds {
                self.reference(b, &build_names, "host build", "host_builds");
            }
            let source = match (&image.pull, &image.dockerfile) {
                (Some(_), Some(dockerfile)) => {
                    self.problem(
                        &dockerfile.referenced,
                        format!("image `{}` has both `pull` and `dockerfile`", name.value),
                        "an image is either pulled (third-party) or built: keep one",
                    );
                    continue;
                }
                (Some(reference), None) => {
                    if image.context.is_some()
                        || image.target.is_some()
                        || !image.build_args.is_empty()
                    {
                        self.problem(
                            &reference.referenced,
                            format!("image `{}` is pulled but has build settings", name.value),
                            "`context`, `target` and `build_args` only apply to built images: remove them",
                        );
                    }
                    if reference.value.trim().is_empty()
                        || reference.value.contains(char::is_whitespace)
                    {
                        self.problem(
                            &reference.referenced,
                            format!("`{}` is not an image reference", reference.value),
                            "write a reference like docker.io/library/postgres:16-alpine",
                        );
                    }
                    ImageSource::Pull {
                        reference: reference.value.clone(),
                    }
                }
                (None, Some(dockerfile)) => {
                    let context = match &image.context {
                        Some(c) => self.existing_path(c, "build context", Some(true)),
                        None => self.root.clone(),
                    };
                    ImageSource::Build {
                        dockerfile: self.existing_path(dockerfile, "Dockerfile", Some(false)),
                        context,
                        build_args: image.build_args.clone(),
                        target: image.target.clone(),
                        timeout: self
                            .duration(image.timeout.as_ref(), defaults::IMAGE_BUILD_TIMEOUT),
                    }
                }
                (None, None) => {
                    self.problem(
                        &name.referenced,
                        format!("image `{}` has neither `dockerfile` nor `pull`", name.value),
                        "add `dockerfile: path/to/Dockerfile` to build it, or `pull: registry/name:tag` for a third-party image",
                    );
                    continue;
                }
            };
            let replaces = self.replaces(&name.value, &image.replaces);
            images.insert(
                name.value.clone(),
                Image {
                    name: name.value.clone(),
                    source,
                    host_builds: image.host_builds.iter().map(|b| b.value.clone()).collect(),
                    replaces,
                },
            );
        }
        images
    }

    fn components(
        &mut self,
        raw: &IndexMap<raw::Name, raw::Component>,
        raw_images: &IndexMap<raw::Name, raw::Image>,
        images: &IndexMap<String, Image>,
        file_exclude: &[crate::render::KindPattern],
    ) -> IndexMap<String, Component> {
        let rewrites: Vec<crate::render::images::Rule> = images
            .values()
            .flat_map(|i| {
                i.replaces.iter().map(|r| crate::render::images::Rule {
                    replaces: r.clone(),
                    image: i.name.clone(),
                })
            })
            .collect();
        let image_names: Vec<&str> = raw_images.keys().map(|k| k.value.as_str()).collect();
        let component_names: Vec<&str> = raw.keys().map(|k| k.value.as_str()).collect();
        let mut components = IndexMap::new();
        for (name, c) in raw {
            self.dns_label(name, "component");
            if c.manifests.is_empty() && c.kustomize.is_none() && c.helm.is_none() {
                self.problem(
                    &name.referenced,
                    format!("component `{}` has no manifests", name.value),
                    "list its Kubernetes manifests (files, directories or kustomize directories) under `manifests:`, or give `kustomize:` or `helm:`",
                );
            }
            for image in &c.images {
                self.reference(image, &image_names, "image", "images");
            }
            let own_images: Vec<&str> = c
                .images
                .iter()
                .map(|i| i.value.as_str())
                .filter(|i| image_names.contains(i))
                .collect();
            let mut sources = Vec::new();
            let mut seen = HashSet::new();
            for m in &c.manifests {
                let path = self.existing_path(m, "manifest", None);
                if path.is_dir() && crate::render::kustomize::kustomization(&path).is_some() {
                    sources.push(ManifestSource::Kustomize {
                        dir: path,
                        output: String::new(),
                        at: self.at(&m.referenced),
                    });
                    continue;
                }
                let files = match manifests::expand(&path) {
                    Ok(found) if found.is_empty() && path.is_dir() => {
                        self.problem(
                            &m.referenced,
                            format!(
                                "manifest directory `{}` has no .yaml, .yml or .json files",
                                m.value
                            ),
                            "put the component's manifests in it, or point at the files themselves",
                        );
                        Vec::new()
                    }
                    Ok(found) => found,
                    Err(_) if !path.exists() => Vec::new(), // reported above
                    Err(e) => {
                        self.problem(
                            &m.referenced,
                            format!("cannot read `{}`: {e}", m.value),
                            "check its permissions",
                        );
                        Vec::new()
                    }
                };
                for file in &files {
                    if file.is_file() && seen.insert(file.clone()) {
                        self.manifest(file, &own_images);
                    }
                }
                sources.push(ManifestSource::Files { path, files });
            }
            if let Some(k) = &c.kustomize {
                let dir = self.existing_path(k, "kustomize directory", Some(true));
                if dir.is_dir() && crate::render::kustomize::kustomization(&dir).is_none() {
                    self.problem(
                        &k.referenced,
                        format!("`{}` is not a kustomize directory", k.value),
                        format!(
                            "it has none of {}: point `kustomize:` at the directory that has one (an overlay, or the base), or list plain manifests under `manifests:`",
                            crate::render::kustomize::FILES.join(", ")
                        ),
                    );
                }
                sources.push(ManifestSource::Kustomize {
                    dir,
                    output: String::new(),
                    at: self.at(&k.referenced),
                });
            }
            if let Some(h) = &c.helm {
                sources.push(self.helm(&name.value, h));
            }
            let mut exclude = file_exclude.to_vec();
            exclude.extend(self.kinds(&c.exclude));
            let exclude_unserved = self.kinds(&c.exclude_unserved);
            for dep in &c.depends_on {
                self.reference(dep, &component_names, "component", "components");
            }
            let health = c.health.as_ref().map(|h| {
                if !is_http_template(&h.url.value) {
                    self.problem(
                        &h.url.referenced,
                        format!("health url `{}` is not an http(s) URL", h.url.value),
                        "write e.g. http://localhost:28090/health",
                    );
                }
                Health {
                    url: h.url.value.clone(),
                    timeout: self.duration(h.timeout.as_ref(), defaults::HEALTH_TIMEOUT),
                }
            });
            let endpoint = match &c.endpoint {
                Some(e) if !is_http_template(&e.value) => {
                    self.problem(
                        &e.referenced,
                        format!("endpoint `{}` is not an http(s) URL", e.value),
                        "write the URL suites use to reach the component from the host, e.g. http://localhost:28090",
                    );
                    None
                }
                Some(e) => Some(e.value.trim_end_matches('/').to_owned()),
                None => health
                    .as_ref()
                    .filter(|h| is_http_template(&h.url))
                    .and_then(|h| origin(&h.url))
                    .map(str::to_owned),
            };
            let tolerate = Tolerance {
                restarts: c
                    .tolerate
                    .as_ref()
                    .and_then(|t| t.restarts)
                    .unwrap_or(defaults::TOLERATE_RESTARTS),
                grace: self.duration(
                    c.tolerate.as_ref().and_then(|t| t.grace.as_ref()),
                    defaults::TOLERATE_GRACE,
                ),
            };
            if let Some(ns) = &c.namespace {
                self.dns_label(ns, "namespace");
            }
            let timeout = self.duration(c.timeout.as_ref(), defaults::COMPONENT_TIMEOUT);
            let settle = self.settle(c.settle.as_ref(), timeout);
            components.insert(
                name.value.clone(),
                Component {
                    name: name.value.clone(),
                    sources,
                    images: c.images.iter().map(|i| i.value.clone()).collect(),
                    depends_on: c.depends_on.iter().map(|d| d.value.clone()).collect(),
                    namespace: c.namespace.as_ref().map(|n| n.value.clone()),
                    exclude,
                    exclude_unserved,
                    rewrites: rewrites.clone(),
                    endpoint,
                    health,
                    tolerate,
                    settle,
                    timeout,
                    readiness: self.readiness(&c.readiness),
                    at: self.at(&name.referenced),
                },
            );
        }
        components
    }

    /// Reports every dependency cycle once, as `a → b → c → a`, at the
    /// `depends_on` entry that closes it.
    fn cycles(&mut self, raw: &IndexMap<raw::Name, raw::Component>) {
        let index: HashMap<&str, usize> = raw
            .keys()
            .enumerate()
            .map(|(i, k)| (k.value.as_str(), i))
            .collect();
        let edges: Vec<Vec<(usize, &Spanned<String>)>> = raw
            .values()
            .map(|c| {
                c.depends_on
                    .iter()
                    .filter_map(|d| index.get(d.value.as_str()).map(|&i| (i, d)))
                    .collect()
            })
            .collect();
        let names: Vec<&str> = raw.keys().map(|k| k.value.as_str()).collect();
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; names.len()];
        let mut reported: HashSet<Vec<usize>> = HashSet::new();
        for start in 0..names.len() {
            let mut path: Vec<usize> = Vec::new();
            self.visit(start, &edges, &names, &mut state, &mut path, &mut reported);
        }
    }

    fn visit(
        &mut self,
        node: usize,
        edges: &[Vec<(usize, &Spanned<String>)>],
        names: &[&str],
        state: &mut [u8],
        path: &mut Vec<usize>,
        reported: &mut HashSet<Vec<usize>>,
    ) {
        if state[node] == 2 {
            return;
        }
        state[node] = 1;
        path.push(node);
        for &(next, entry) in &edges[node] {
            if state[next] == 1 {
                let from = path.iter().position(|&n| n == next).unwrap_or(0);
                let mut cycle: Vec<usize> = path[from..].to_vec();
                // The same cycle found from another start is reported once.
                let mut key = cycle.clone();
                key.sort_unstable();
                if reported.insert(key) {
                    cycle.push(next);
                    let text = cycle
                        .iter()
                        .map(|&i| names[i])
                        .collect::<Vec<_>>()
                        .join(" → ");
                    self.problem(
                        &entry.referenced,
                        format!("dependency cycle: {text}"),
                        "remove one of these `depends_on` entries; components deploy in dependency order, so a cycle can never start",
                    );
                }
            } else {
                self.visit(next, edges, names, state, path, reported);
            }
        }
        path.pop();
        state[node] = 2;
    }

    fn lanes(
        &mut self,
        raw: &raw::LaneFile,
        defaults_cluster: &raw::Cluster,
        namespace: &str,
    ) -> IndexMap<String, Lane> {
        let component_names: Vec<&str> = raw.components.keys().map(|k| k.value.as_str()).collect();
        let build_names: Vec<&str> = raw.host_builds.keys().map(|k| k.value.as_str()).collect();
        let mut lanes = IndexMap::new();
        for (name, lane) in &raw.lanes {
            self.dns_label(name, "lane");
            for b in &lane.host_builds {
                self.reference(b, &build_names, "host build", "host_builds");
            }
            for c in &lane.components {
                self.reference(c, &component_names, "component", "components");
            }
            if lane.components.is_empty() && lane.suites.is_empty() {
                self.problem(
                    &name.referenced,
                    format!("lane `{}` has no components and no suites", name.value),
                    "list the components it deploys under `components:` and its suites under `suites:`",
                );
            }
            let cluster = self.cluster(&name.value, defaults_cluster, lane.cluster.as_ref());
            let host_ports = match &cluster.provider {
                ClusterProvider::Kind(KindSpec {
                    config: Some(path), ..
                }) if path.is_file() => match std::fs::read_to_string(path) {
                    Ok(text) => {
                        self.sources.add(path, &text);
                        kind::host_ports(path, &text).unwrap_or_else(|d| {
                            self.problems.push(d);
                            Vec::new()
                        })
                    }
                    Err(e) => {
                        self.problems.push(Diagnostic::new(
                            SourceLoc::new(path, 1, 1),
                            format!("cannot read kind config: {e}"),
                        ));
                        Vec::new()
                    }
                },
                _ => Vec::new(),
            };
            let lane_namespace = match &lane.namespace {
                Some(ns) => {
                    self.dns_label(ns, "namespace");
                    ns.value.clone()
                }
                None => namespace.to_owned(),
            };
            let suites = lane
                .suites
                .iter()
                .map(|(suite_name, s)| self.suite(suite_name, s))
                .collect();
            let after_suites = self.hooks(&name.value, &lane.after_suites);
            lanes.insert(
                name.value.clone(),
                Lane {
                    name: name.value.clone(),
                    cluster,
                    namespace: lane_namespace,
                    components: lane.components.iter().map(|c| c.value.clone()).collect(),
                    suites,
                    after_suites,
                    host_builds: lane.host_builds.iter().map(|b| b.value.clone()).collect(),
                    host_ports,
                    exclude: self.kinds(&lane.exclude),
                    rendered: IndexMap::new(),
                    readiness: self.readiness(&lane.readiness),
                },
            );
        }
        lanes
    }

    /// The lane's cluster: its own settings over the file's `cluster:` defaults.
    fn cluster(
        &mut self,
        lane: &str,
        defaults_cluster: &raw::Cluster,
        own: Option<&raw::Cluster>,
    ) -> ClusterSpec {
        let pick = |f: fn(&raw::Cluster) -> Option<&Spanned<String>>| {
            own.and_then(f).or_else(|| f(defaults_cluster)).cloned()
        };
        let provider = own
            .and_then(|c| c.provider.as_ref())
            .or(defaults_cluster.provider.as_ref())
            .map_or(raw::Provider::Kind, |p| p.value);
        let name =
            match pick(|c| c.name.as_ref()) {
                Some(n) => {
                    if !n.value.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    }) || n.value.is_empty()
                    {
                        self.problem(
                            &n.referenced,
                            format!("cluster name `{}` is not valid", n.value),
                            "kind accepts lowercase letters, digits, '-' and '.'",
                        );
                    }
                    n.value
                }
                None => format!("harness-{lane}"),
            };
        let provider = match provider {
            raw::Provider::Kind => {
                let kind_of = |c: &raw::Cluster| c.kind.clone().unwrap_or_default();
                let own_kind = own.map(kind_of).unwrap_or_default();
                let default_kind = kind_of(defaults_cluster);
                let config = own_kind
                    .config
                    .as_ref()
                    .or(default_kind.config.as_ref())
                    .map(|c| self.existing_path(c, "kind config", Some(false)));
                let engine = own_kind
                    .engine
                    .as_ref()
                    .or(default_kind.engine.as_ref())
                    .map_or(EngineKind::Docker, |e| match e.value {
                        raw::Engine::Docker => EngineKind::Docker,
                        raw::Engine::Podman => EngineKind::Podman,
                    });
                let min_version = match own_kind
                    .min_version
                    .as_ref()
                    .or(default_kind.min_version.as_ref())
                {
                    None => {
                        semver::Version::parse(defaults::KIND_MIN_VERSION).expect("valid default")
                    }
                    Some(v) => semver::Version::parse(v.value.trim_start_matches('v'))
                        .unwrap_or_else(|e| {
                            self.problem(
                                &v.referenced,
                                format!("invalid kind version `{}`: {e}", v.value),
                                "write a version like 0.27.0",
                            );
                            semver::Version::parse(defaults::KIND_MIN_VERSION)
                                .expect("valid default")
                        }),
                };
                ClusterProvider::Kind(KindSpec {
                    config,
                    node_image: own_kind
                        .node_image
                        .as_ref()
                        .or(default_kind.node_image.as_ref())
                        .map(|n| n.value.clone()),
                    engine,
                    min_version,
                })
            }
            raw::Provider::Existing => {
                let existing_of = |c: &raw::Cluster| c.existing.clone().unwrap_or_default();
                let own_existing = own.map(existing_of).unwrap_or_default();
                let default_existing = existing_of(defaults_cluster);
                let kubeconfig = own_existing
                    .kubeconfig
                    .as_ref()
                    .or(default_existing.kubeconfig.as_ref())
                    .map(|k| self.existing_path(k, "kubeconfig", Some(false)));
                let load_command = own_existing
                    .load_command
                    .as_ref()
                    .or(default_existing.load_command.as_ref())
                    .map(|cmd| {
                        if cmd.value.is_empty() {
                            self.problem(
                                &cmd.referenced,
                                "`load_command` is empty",
                                "give the command that reads an image archive on stdin, e.g. [k3d, image, import, -c, mycluster, -]... or remove it when images come from a registry",
                            );
                        }
                        cmd.value.clone()
                    });
                ClusterProvider::Existing(ExistingSpec {
                    kubeconfig,
                    context: own_existing
                        .context
                        .as_ref()
                        .or(default_existing.context.as_ref())
                        .map(|c| c.value.clone()),
                    load_command,
                })
            }
        };
        ClusterSpec { name, provider }
    }

    fn suite(&mut self, name: &Spanned<String>, s: &raw::Suite) -> Suite {
        self.dns_label(name, "suite");
        if s.command.value.is_empty() || s.command.value[0].trim().is_empty() {
            self.problem(
                &s.command.referenced,
                format!("suite `{}` has an empty command", name.value),
                "write the command as a list, e.g. [go, test, ./test/e2e/...]",
            );
        }
        let procs = match &s.procs {
            Some(p) if p.value == 0 => {
                self.problem(
                    &p.referenced,
                    "`procs` must be at least 1",
                    "use 1 for a suite that does not parallelize",
                );
                1
            }
            Some(p) => p.value,
            None => 1,
        };
        let namespace_prefix = match &s.namespace_prefix {
            Some(p) => {
                self.dns_label(p, "namespace prefix");
                p.value.clone()
            }
            None => name.value.clone(),
        };
        if let Some(rerun) = &s.rerun
            && (rerun.value.is_empty() || rerun.value[0].trim().is_empty())
        {
            self.problem(
                &rerun.referenced,
                format!("suite `{}` has an empty rerun command", name.value),
                "write the command a retry runs, with {{failed}} for the failed test cases, e.g. [ginkgo, --focus, \"{{failed}}\", ./test/e2e]; or remove `rerun:` to run the whole suite again",
            );
        }
        Suite {
            retries: s.retries.as_ref().map_or(0, |r| r.value),
            rerun: s.rerun.as_ref().map(|r| r.value.clone()),
            name: name.value.clone(),
            command: s.command.value.clone(),
            procs,
            timeout: self.duration(s.timeout.as_ref(), defaults::SUITE_TIMEOUT),
            serial: s.serial,
            env: s.env.clone(),
            workdir: match &s.workdir {
                Some(w) => self.existing_path(w, "suite workdir", Some(true)),
                None => self.root.clone(),
            },
            namespace_prefix,
        }
    }

    /// A lane's `after_suites:` hooks: names unique and usable as file names
    /// (each hook's log is `<name>.log`), commands not empty, and no variable
    /// of the harness's own contract overridden by `env:`.
    fn hooks(&mut self, lane: &str, raw: &[raw::Hook]) -> Vec<Hook> {
        let mut seen: HashMap<&str, &Location> = HashMap::new();
        let mut hooks = Vec::new();
        for h in raw {
            self.dns_label(&h.name, "hook");
            if let Some(first) = seen.insert(&h.name.value, &h.name.referenced) {
                let d = Diagnostic::new(
                    self.at(&h.name.referenced),
                    format!(
                        "lane `{lane}` has two hooks named `{}`",
                        h.name.value
                    ),
                )
                .help("give each hook its own name: it names the hook's log file and its line in the report")
                .note(self.at(first), "the first one is here");
                self.problems.push(d);
            }
            if h.command.value.is_empty() || h.command.value[0].trim().is_empty() {
                self.problem(
                    &h.command.referenced,
                    format!("hook `{}` has an empty command", h.name.value),
                    "write the command as a list, e.g. [sh, scripts/collect-coverage.sh]",
                );
            }
            for key in h.env.keys() {
                if super::model::is_reserved_variable(&key.value) {
                    self.problem(
                        &key.referenced,
                        format!(
                            "hook `{}` sets `{}`, which the harness sets for every hook",
                            h.name.value, key.value
                        ),
                        "remove it: KUBECONFIG and HARNESS_* variables always describe this run's cluster and lane",
                    );
                }
            }
            hooks.push(Hook {
                name: h.name.value.clone(),
                command: h.command.value.clone(),
                timeout: self.duration(h.timeout.as_ref(), defaults::HOOK_TIMEOUT),
                env: h
                    .env
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.clone()))
                    .collect(),
                workdir: match &h.workdir {
                    Some(w) => self.existing_path(w, "hook workdir", Some(true)),
                    None => self.root.clone(),
                },
            });
        }
        hooks
    }

    /// Checks one manifest file: placeholders known (an image placeholder
    /// must name one of the component's own images, so that every lane that
    /// deploys it also loads the image) and YAML valid. The namespaces it
    /// names are learnt per lane, when it is rendered ([`Self::render`]).
    fn manifest(&mut self, file: &Path, own_images: &[&str]) {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(Diagnostic::new(
                    SourceLoc::new(file, 1, 1),
                    format!("cannot read manifest: {e}"),
                ));
                return;
            }
        };
        if let Err(found) = manifests::check(file, &text, "harness-deploy-namespace", own_images) {
            self.sources.add(file, &text);
            self.problems.extend(found);
        }
    }

    /// `exclude:` / `exclude_unserved:` entries as kind patterns.
    fn kinds(&mut self, raw: &[Spanned<String>]) -> Vec<crate::render::KindPattern> {
        let mut out = Vec::new();
        for entry in raw {
            match entry.value.parse::<crate::render::KindPattern>() {
                Ok(p) => {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
                Err(e) => {
                    let help = e.help();
                    self.problem(&entry.referenced, e.to_string(), help);
                }
            }
        }
        out
    }

    /// An image's `replaces:`: repositories, each replaced by one image.
    fn replaces(&mut self, image: &str, raw: &[Spanned<String>]) -> Vec<String> {
        let mut out = Vec::new();
        for entry in raw {
            match crate::render::images::parse(&entry.value) {
                None => self.problem(
                    &entry.referenced,
                    format!("`{}` is not an image repository", entry.value),
                    "write the repository the manifests use, e.g. quay.io/org/datastorage",
                ),
                Some(r) if r.tag.is_some() || r.digest.is_some() => self.problem(
                    &entry.referenced,
                    format!(
                        "`{}` names one image, not a repository",
                        entry.value
                    ),
                    format!(
                        "drop the tag or digest: `replaces: [{}]` replaces every tag and digest of it",
                        repository_part(&entry.value)
                    ),
                ),
                Some(r) => {
                    let taken = self.replaced.insert(r.repository.clone(), (image.to_owned(), entry.referenced));
                    match taken {
                        Some((other, _)) if other != image => self.problem(
                            &entry.referenced,
                            format!(
                                "repository `{}` is replaced by images `{other}` and `{image}`",
                                entry.value
                            ),
                            "a repository can stand for one image only: keep it under one of them",
                        ),
                        _ => out.push(entry.value.trim().to_owned()),
                    }
                }
            }
        }
        out
    }

    /// A component's `helm:`: the chart and values files exist.
    fn helm(&mut self, component: &str, h: &raw::Helm) -> ManifestSource {
        let chart = self.existing_path(&h.chart, "Helm chart", None);
        if chart.is_dir() && !chart.join("Chart.yaml").is_file() {
            self.problem(
                &h.chart.referenced,
                format!("`{}` is not a Helm chart: it has no Chart.yaml", h.chart.value),
                "point `chart:` at the chart's directory (the one with Chart.yaml) or at a packaged chart (.tgz)",
            );
        }
        let release = match &h.release {
            Some(r) => {
                self.dns_label(r, "release");
                r.value.clone()
            }
            None => component.to_owned(),
        };
        if let Some(ns) = &h.namespace {
            self.dns_label(ns, "namespace");
        }
        let values = h
            .values
            .iter()
            .map(|v| self.existing_path(v, "values file", Some(false)))
            .collect();
        let set = h
            .set
            .iter()
            .map(|(k, v)| (k.clone(), v.value.text()))
            .collect();
        ManifestSource::Helm {
            chart,
            release,
            namespace: h.namespace.as_ref().map(|n| n.value.clone()),
            values,
            set,
            outputs: std::collections::BTreeMap::new(),
            at: self.at(&h.chart.referenced),
        }
    }

    /// Renders every component's kustomize directories and Helm charts
    /// (each chart once per release namespace a lane needs), then each
    /// lane's components as deploy will — placeholders filled with the
    /// lane's values and stand-in image references — to learn what the
    /// plan shows: objects per source, exclusions, rewritten images, the
    /// namespaces named, and the images reached only through `replaces:`
    /// (added to the component's images, so every lane loads them).
    fn render(
        &mut self,
        components: &mut IndexMap<String, Component>,
        lanes: &mut IndexMap<String, Lane>,
        images: &IndexMap<String, Image>,
        file_namespace: &str,
    ) {
        // Release namespaces each component's charts are rendered for.
        let mut helm_namespaces: HashMap<String, BTreeSet<String>> = HashMap::new();
        for lane in lanes.values() {
            for name in super::model::closure_of(components, &lane.components) {
                let component = &components[name.as_str()];
                helm_namespaces
                    .entry(name.clone())
                    .or_default()
                    .insert(lane.namespace_of(component).to_owned());
            }
        }
        // Every render the lanes need, run a few at a time: each is a
        // process (kustomize, helm) of tens of milliseconds, and a lane
        // file is loaded by every command.
        let mut jobs: Vec<RenderJob> = Vec::new();
        for (c, (name, component)) in components.iter().enumerate() {
            let lane_namespaces = helm_namespaces.get(name).cloned().unwrap_or_else(|| {
                BTreeSet::from([component
                    .namespace
                    .clone()
                    .unwrap_or_else(|| file_namespace.to_owned())])
            });
            for (s, source) in component.sources.iter().enumerate() {
                match source {
                    ManifestSource::Files { .. } => {}
                    ManifestSource::Kustomize { dir, .. } => {
                        if dir.is_dir() {
                            jobs.push(RenderJob::Kustomize {
                                c,
                                s,
                                dir: dir.clone(),
                            });
                        } // else reported already
                    }
                    ManifestSource::Helm {
                        chart,
                        release,
                        namespace,
                        values,
                        set,
                        ..
                    } => {
                        if !chart.exists() {
                            continue; // reported already
                        }
                        let wanted = match namespace {
                            Some(ns) => BTreeSet::from([ns.clone()]),
                            None => lane_namespaces.clone(),
                        };
                        for ns in wanted {
                            jobs.push(RenderJob::Helm {
                                c,
                                s,
                                spec: crate::render::helm::Chart {
                                    chart: chart.clone(),
                                    release: release.clone(),
                                    namespace: ns,
                                    values: values.clone(),
                                    set: set.clone(),
                                },
                            });
                        }
                    }
                }
            }
        }
        let rendered = run_renders(&jobs, &self.root);
        // Applied in the order of the lane file; a chart's first failing
        // namespace is its one problem.
        let mut failed: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (job, result) in jobs.into_iter().zip(rendered) {
            let (c, s) = job.at();
            let (name, component) = components
                .get_index_mut(c)
                .expect("a job of a listed component");
            let source = &mut component.sources[s];
            match (source, job, result) {
                (ManifestSource::Kustomize { output, .. }, _, Ok(text)) => *output = text,
                (ManifestSource::Helm { outputs, .. }, RenderJob::Helm { spec, .. }, Ok(text))
                    if !failed.contains(&(c, s)) =>
                {
                    outputs.insert(spec.namespace, text);
                }
                (
                    ManifestSource::Kustomize { at, .. } | ManifestSource::Helm { at, .. },
                    _,
                    Err(e),
                ) if failed.insert((c, s)) => {
                    self.problems.push(
                        Diagnostic::new(at.clone(), format!("component `{name}`: {e}"))
                            .help(e.help()),
                    );
                }
                _ => {}
            }
        }
        if !self.problems.is_empty() {
            return;
        }
        let replacing: Vec<String> = images
            .values()
            .filter(|i| !i.replaces.is_empty())
            .map(|i| i.name.clone())
            .collect();
        let mut reached: HashMap<String, Vec<String>> = HashMap::new();
        for lane in lanes.values_mut() {
            for name in super::model::closure_of(components, &lane.components) {
                let component = &components[name.as_str()];
                // Every image that replaces something may be reached: give
                // each a stand-in reference to learn which ones are.
                let mut probe = component.clone();
                for image in &replacing {
                    if !probe.images.contains(image) {
                        probe.images.push(image.clone());
                    }
                }
                let stand_ins: IndexMap<String, String> = probe
                    .images
                    .iter()
                    .map(|i| (i.clone(), format!("image-{i}")))
                    .collect();
                let rendered = match manifests::render_component(&probe, lane, &stand_ins) {
                    Ok(r) => r,
                    Err(e) => {
                        self.problems.push(
                            Diagnostic::new(component.at.clone(), format!("{e}")).help(
                                "run `harness plan` after fixing the manifest: it renders every source of every lane",
                            ),
                        );
                        continue;
                    }
                };
                let fired = reached.entry(name.clone()).or_default();
                for r in &rendered.rewrites {
                    if !fired.contains(&r.image) {
                        fired.push(r.image.clone());
                    }
                }
                let mut namespaces = BTreeSet::from([lane.namespace_of(component).to_owned()]);
                for o in &rendered.objects {
                    let kind = o.types.as_ref().map(|t| t.kind.as_str());
                    match (kind, &o.metadata.namespace, &o.metadata.name) {
                        (Some("Namespace"), _, Some(n)) => {
                            namespaces.insert(n.clone());
                        }
                        (_, Some(ns), _) => {
                            namespaces.insert(ns.clone());
                        }
                        _ => {}
                    }
                }
                let unserved = rendered
                    .objects
                    .iter()
                    .filter(|o| {
                        o.types.as_ref().is_some_and(|t| {
                            crate::render::exclude::any_matches(
                                &component.exclude_unserved,
                                &t.api_version,
                                &t.kind,
                            )
                        })
                    })
                    // The version too: such manifests carry one object per
                    // Kubernetes generation, alike but for it.
                    .map(|o| {
                        let version = o.types.as_ref().map_or("?", |t| t.api_version.as_str());
                        format!("{} ({version})", crate::render::object_ref(o))
                    })
                    .collect();
                let summary = RenderedComponent {
                    sources: component
                        .sources
                        .iter()
                        .zip(&rendered.per_source)
                        .map(|(s, n)| RenderedSource {
                            source: s.label(&self.root),
                            objects: *n,
                        })
                        .collect(),
                    excluded: rendered
                        .excluded
                        .iter()
                        .map(crate::render::object_ref)
                        .collect(),
                    excluded_if_unserved: unserved,
                    rewritten: rendered
                        .rewrites
                        .iter()
                        .map(|r| RewrittenImage {
                            object: r.object.clone(),
                            container: r.container.clone(),
                            from: r.from.clone(),
                            image: r.image.clone(),
                        })
                        .collect(),
                    namespaces,
                };
                lane.rendered.insert(name.clone(), summary);
            }
        }
        for (name, fired) in reached {
            let component = components
                .get_mut(&name)
                .expect("rendered components exist");
            for image in fired {
                if !component.images.contains(&image) {
                    component.images.push(image);
                }
            }
        }
    }

    /// Every lane that deploys a component must map the container ports its
    /// endpoint and health URLs name with `{{host_port.N}}`.
    fn url_ports(
        &mut self,
        raw: &raw::LaneFile,
        components: &IndexMap<String, Component>,
        lanes: &IndexMap<String, Lane>,
    ) {
        for lane in lanes.values() {
            for name in super::model::closure_of(components, &lane.components) {
                let Some((_, rc)) = raw.components.iter().find(|(k, _)| k.value == name) else {
                    continue;
                };
                let urls = rc.endpoint.iter().chain(rc.health.as_ref().map(|h| &h.url));
                for url in urls {
                    if let Err(missing) = lane.resolve_url(&url.value) {
                        let ports = missing
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", ");
                        self.problem(
                            &url.referenced,
                            format!(
                                "lane `{}` maps no host port to container port {ports}, which component `{name}` needs for `{}`",
                                lane.name, url.value
                            ),
                            "add an extraPortMappings entry with that containerPort to the lane's kind config",
                        );
                    }
                }
            }
        }
    }

    /// A lane whose kind config maps one host port twice can never start:
    /// an error, naming each mapping. Ports shared *between* lanes are not
    /// checked here — lanes that run as separate jobs may share them (see
    /// [`super::ports`]); the plan reports them and preflight checks that
    /// nothing holds a port when a lane is about to run.
    fn port_collisions(&mut self, lanes: &IndexMap<String, Lane>) {
        for lane in lanes.values() {
            for clash in super::ports::clashes([lane]) {
                let (first, rest) = clash.claims.split_first().expect("a clash has two claims");
                let mut d = Diagnostic::new(
                    first.at.clone(),
                    format!(
                        "host port {}/{} is mapped twice in lane `{}`",
                        clash.port, clash.protocol, lane.name
                    ),
                )
                .help("map each host port once in the lane's kind config (or use hostPort: 0 for a random one)");
                for claim in rest {
                    d = d.note(
                        claim.at.clone(),
                        format!("mapped again here, {}", claim.node),
                    );
                }
                self.problems.push(d);
            }
        }
    }
}

/// One render of a kustomize directory or a chart (in one namespace):
/// component `c`'s source `s`.
enum RenderJob {
    Kustomize {
        c: usize,
        s: usize,
        dir: PathBuf,
    },
    Helm {
        c: usize,
        s: usize,
        spec: crate::render::helm::Chart,
    },
}

impl RenderJob {
    fn at(&self) -> (usize, usize) {
        match self {
            RenderJob::Kustomize { c, s, .. } | RenderJob::Helm { c, s, .. } => (*c, *s),
        }
    }
}

/// Runs `jobs`, as many at once as the machine has cores (at least two:
/// each mostly waits on its process), and returns their results in order.
fn run_renders(
    jobs: &[RenderJob],
    root: &Path,
) -> Vec<Result<String, crate::render::tool::RenderError>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
        .min(jobs.len());
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Result<String, crate::render::tool::RenderError>>> =
        std::iter::repeat_with(|| None).take(jobs.len()).collect();
    let done = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let result = match job {
                        RenderJob::Kustomize { dir, .. } => {
                            crate::render::kustomize::build(dir, root)
                        }
                        RenderJob::Helm { spec, .. } => crate::render::helm::template(spec, root),
                    };
                    done.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_origins() {
        assert_eq!(
            origin("http://localhost:28090/health"),
            Some("http://localhost:28090")
        );
        assert_eq!(origin("https://a.example/x?y"), Some("https://a.example"));
        assert_eq!(origin("http://h:1"), Some("http://h:1"));
        assert_eq!(origin("ftp://h"), None);
        assert_eq!(origin("http:///health"), None);
        assert_eq!(origin("localhost:28090"), None);
    }

    #[test]
    fn unknown_name_help_suggests_or_lists() {
        assert_eq!(
            unknown_name_help("unknown field `depnds_on`, expected one of manifests, depends_on")
                .as_deref(),
            Some("did you mean `depends_on`?")
        );
        assert_eq!(
            unknown_name_help("unknown variant `knd`, expected one of kind, existing").as_deref(),
            Some("did you mean `kind`?")
        );
        assert_eq!(
            unknown_name_help("unknown field `zzz`, expected `a`").as_deref(),
            Some("expected one of: a")
        );
        assert_eq!(unknown_name_help("invalid type: integer"), None);
    }
}
