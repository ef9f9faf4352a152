//! The deploy plan: for each lane, the components it needs (its own and
//! their dependencies, transitively) in waves, and the dependency matrix of
//! lanes × images × components × host ports × namespaces.
//!
//! Everything here is a pure function of the validated [`Project`]; the
//! matrix is generated from the lane file every time, never hand-kept.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

use comfy_table::{Table, presets};
use serde::Serialize;

use crate::config::{ClusterProvider, HostPort, Project};
use crate::failure::Failure;

/// The plan of one lane.
#[derive(Clone, Debug, Serialize)]
pub struct LanePlan {
    pub lane: String,
    pub cluster: String,
    pub provider: String,
    /// Components in deploy order: wave 1 first; a wave starts when every
    /// component of the previous waves is Ready.
    pub waves: Vec<Vec<String>>,
    /// Images to build or pull and load, in the order components need them.
    pub images: Vec<String>,
    pub host_ports: Vec<HostPort>,
    /// Namespaces the lane's components deploy into or create.
    pub namespaces: Vec<String>,
    /// Component endpoints as suites see them: `HARNESS_ENDPOINT_<NAME>` → URL.
    pub endpoints: std::collections::BTreeMap<String, String>,
    /// Suites: parallel ones first, then serial ones.
    pub suites: Vec<SuitePlan>,
    /// Post-suite hooks in the order they run (after gather, before
    /// teardown, never on a preserved cluster).
    pub hooks: Vec<HookPlan>,
    /// Host builds in the order they run, before the images.
    pub host_builds: Vec<HostBuildPlan>,
    /// What each component's sources render in this lane: objects per
    /// source, exclusions, rewritten images (deploy order).
    pub rendered: Vec<ComponentRender>,
}

/// What one component renders in a lane.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentRender {
    pub component: String,
    #[serde(flatten)]
    pub rendered: crate::config::RenderedComponent,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostBuildPlan {
    pub name: String,
    pub command: Vec<String>,
    /// Whether it can be skipped (it declares inputs).
    pub skippable: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct HookPlan {
    pub name: String,
    pub command: Vec<String>,
    /// As written in the lane file's style, e.g. `5m`.
    pub timeout: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SuitePlan {
    pub name: String,
    pub serial: bool,
    pub procs: u32,
    /// Suite namespaces are `{prefix}-p{process}-{8 random hex}`.
    pub namespace_pattern: String,
    /// Runs again when it failed, up to this many times (`retries:`).
    pub retries: u32,
    /// A retry runs only the failed test cases, with this command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun: Option<Vec<String>>,
}

/// The plan of every selected lane.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub lanes: Vec<LanePlan>,
    /// Host ports that a selected lane shares with other lanes (every
    /// sharer listed): run together by one `harness test`, the later
    /// lane's port is moved ([`crate::lanes`]); separate runs on one
    /// machine cannot share it.
    pub shared_host_ports: Vec<crate::config::SharedPort>,
}

/// The lane named on the command line does not exist.
#[derive(Debug, thiserror::Error)]
#[error("no lane named `{name}` in the lane file{}", suggestion_text(.suggestion))]
pub struct UnknownLane {
    pub name: String,
    pub suggestion: Option<String>,
    pub lanes: Vec<String>,
}

fn suggestion_text(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

impl UnknownLane {
    pub fn help(&self) -> String {
        format!("lanes defined: {}", self.lanes.join(", "))
    }
}

/// The lanes to act on: the one named, or all of them.
pub fn select<'p>(
    project: &'p Project,
    lane: Option<&str>,
) -> Result<Vec<&'p crate::config::Lane>, UnknownLane> {
    match lane {
        None => Ok(project.lanes.values().collect()),
        Some(name) => project
            .lanes
            .get(name)
            .map(|l| vec![l])
            .ok_or_else(|| UnknownLane {
                name: name.to_owned(),
                suggestion: crate::config::diag::did_you_mean(
                    name,
                    project.lanes.keys().map(String::as_str),
                )
                .map(str::to_owned),
                lanes: project.lanes.keys().cloned().collect(),
            }),
    }
}

/// A naming of lanes that names none: a usage error (2), with the lanes
/// there are.
impl Failure for UnknownLane {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Usage
    }

    fn fix(&self) -> Option<String> {
        Some(self.help())
    }
}

/// A command that acts on one lane was not told which.
#[derive(Debug, thiserror::Error)]
#[error("the lane file defines {} lanes; say which with --lane", .lanes.len())]
pub struct LaneRequired {
    pub lanes: Vec<String>,
}

impl Failure for LaneRequired {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Usage
    }

    fn fix(&self) -> Option<String> {
        Some(format!("lanes defined: {}", self.lanes.join(", ")))
    }
}

/// Why no one lane could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum LaneChoice {
    #[error(transparent)]
    Unknown(#[from] UnknownLane),
    #[error(transparent)]
    Required(#[from] LaneRequired),
}

impl Failure for LaneChoice {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            LaneChoice::Unknown(e) => e.exit(),
            LaneChoice::Required(e) => e.exit(),
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            LaneChoice::Unknown(e) => e.fix(),
            LaneChoice::Required(e) => e.fix(),
        }
    }
}

/// The one lane a command acts on: the one named, or the only one there is.
pub fn one_lane<'p>(
    project: &'p Project,
    lane: Option<&str>,
) -> Result<&'p crate::config::Lane, LaneChoice> {
    match lane {
        Some(_) => Ok(select(project, lane)?.remove(0)),
        None if project.lanes.len() == 1 => Ok(&project.lanes[0]),
        None => Err(LaneRequired {
            lanes: project.lanes.keys().cloned().collect(),
        }
        .into()),
    }
}

/// Plans the selected lanes (all when `lane` is `None`).
pub fn plan(project: &Project, lane: Option<&str>) -> Result<Plan, UnknownLane> {
    let lanes: Vec<LanePlan> = select(project, lane)?
        .into_iter()
        .map(|l| plan_lane(project, l))
        .collect();
    let shared_host_ports = project
        .shared_ports
        .iter()
        .filter(|s| {
            s.claims
                .iter()
                .any(|c| lanes.iter().any(|l| l.lane == c.lane))
        })
        .cloned()
        .collect();
    Ok(Plan {
        lanes,
        shared_host_ports,
    })
}

/// The components a lane needs: the ones it names plus their dependencies,
/// transitively. Validation guarantees every name exists and there is no cycle.
pub fn closure(project: &Project, roots: &[String]) -> Vec<String> {
    crate::config::closure_of(&project.components, roots)
}

/// Splits `components` into waves: a component goes in the first wave after
/// all of its dependencies. Within a wave, lane-file order.
pub fn waves(project: &Project, components: &[String]) -> Vec<Vec<String>> {
    let mut placed: HashSet<&str> = HashSet::new();
    let mut waves = Vec::new();
    let mut left: Vec<&String> = components.iter().collect();
    while !left.is_empty() {
        let (ready, blocked): (Vec<&String>, Vec<&String>) = left.into_iter().partition(|name| {
            project.components[name.as_str()]
                .depends_on
                .iter()
                .all(|d| placed.contains(d.as_str()))
        });
        if ready.is_empty() {
            // Unreachable for a validated project (cycles are rejected);
            // never loop forever on one that was not.
            waves.push(blocked.into_iter().cloned().collect());
            break;
        }
        placed.extend(ready.iter().map(|s| s.as_str()));
        waves.push(ready.into_iter().cloned().collect());
        left = blocked;
    }
    waves
}

/// The components among `components` that depend on `component`, directly
/// or through others, in `components`' order.
pub fn dependents(project: &Project, components: &[String], component: &str) -> Vec<String> {
    let mut below: HashSet<&str> = HashSet::from([component]);
    let mut found = true;
    while found {
        found = false;
        for name in components {
            let depends = project.components[name.as_str()]
                .depends_on
                .iter()
                .any(|d| below.contains(d.as_str()));
            if depends && below.insert(name.as_str()) {
                found = true;
            }
        }
    }
    components
        .iter()
        .filter(|c| c.as_str() != component && below.contains(c.as_str()))
        .cloned()
        .collect()
}

fn plan_lane(project: &Project, lane: &crate::config::Lane) -> LanePlan {
    let components = closure(project, &lane.components);
    let waves = waves(project, &components);
    let mut images = Vec::new();
    let mut namespaces = BTreeSet::new();
    let mut endpoints = std::collections::BTreeMap::new();
    for name in waves.iter().flatten() {
        let component = &project.components[name.as_str()];
        // Validation made sure every lane maps the ports its URLs name.
        if let Some(Ok(url)) = component.endpoint.as_deref().map(|t| lane.resolve_url(t)) {
            endpoints.insert(crate::suites::endpoint_variable(name), url);
        }
        for image in &component.images {
            if !images.contains(image) {
                images.push(image.clone());
            }
        }
        namespaces.insert(lane.namespace_of(component).to_owned());
        if let Some(r) = lane.rendered.get(name) {
            namespaces.extend(r.namespaces.iter().cloned());
        }
    }
    let rendered = waves
        .iter()
        .flatten()
        .filter_map(|name| {
            lane.rendered.get(name).map(|r| ComponentRender {
                component: name.clone(),
                rendered: r.clone(),
            })
        })
        .collect();
    let mut suites: Vec<SuitePlan> = lane
        .suites
        .iter()
        .map(|s| SuitePlan {
            name: s.name.clone(),
            serial: s.serial,
            procs: s.procs,
            namespace_pattern: format!("{}-p<N>-<hex8>", s.namespace_prefix),
            retries: s.retries,
            rerun: s.rerun.clone(),
        })
        .collect();
    suites.sort_by_key(|s| s.serial); // stable: parallel first, then serial, each in file order
    let hooks = lane
        .after_suites
        .iter()
        .map(|h| HookPlan {
            name: h.name.clone(),
            command: h.command.clone(),
            timeout: humantime::format_duration(h.timeout).to_string(),
        })
        .collect();
    let host_builds = crate::images::host::lane_builds(project, lane)
        .into_iter()
        .filter_map(|name| project.host_builds.get(&name))
        .map(|b| HostBuildPlan {
            name: b.name.clone(),
            command: b.command.clone(),
            skippable: !b.inputs.is_empty(),
        })
        .collect();
    let provider = match &lane.cluster.provider {
        ClusterProvider::Kind(k) => format!("kind ({})", k.engine.as_str()),
        ClusterProvider::Existing(_) => "existing".to_owned(),
    };
    LanePlan {
        lane: lane.name.clone(),
        cluster: lane.cluster.name.clone(),
        provider,
        waves,
        images,
        host_ports: lane.host_ports.clone(),
        namespaces: namespaces.into_iter().collect(),
        endpoints,
        suites,
        hooks,
        host_builds,
        rendered,
    }
}

/// One line about shared host ports, for the plan's stderr; `None` when
/// no selected lane shares one.
pub fn sharing_warning(plan: &Plan) -> Option<String> {
    let n = plan.shared_host_ports.len();
    (n > 0).then(|| {
        let ports = plan
            .shared_host_ports
            .iter()
            .map(|s| format!("{}/{}", s.port, s.protocol))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{n} host port{} shared between lanes ({ports}; see \"shared host ports\" in the matrix): `harness test --lane a --lane b` moves a later lane's to a free port; separate runs on one machine cannot share one",
            if n == 1 { " is" } else { "s are" }
        )
    })
}

/// The lines of one component's rendering, shown only where there is
/// something beyond plain files: a kustomize or Helm source, an exclusion,
/// a rewritten image.
fn render_component_text(out: &mut String, c: &ComponentRender) {
    let r = &c.rendered;
    let plain = r
        .sources
        .iter()
        .all(|s| !s.source.starts_with("kustomize ") && !s.source.starts_with("helm "));
    if plain && r.excluded.is_empty() && r.excluded_if_unserved.is_empty() && r.rewritten.is_empty()
    {
        return;
    }
    let sources = r
        .sources
        .iter()
        .map(|s| {
            format!(
                "{} ({} object{})",
                s.source,
                s.objects,
                if s.objects == 1 { "" } else { "s" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(out, "  component {}  {sources}", c.component);
    if !r.excluded.is_empty() {
        let _ = writeln!(out, "    excluded: {}", r.excluded.join(", "));
    }
    if !r.excluded_if_unserved.is_empty() {
        let _ = writeln!(
            out,
            "    left out where the cluster does not serve them: {}",
            r.excluded_if_unserved.join(", ")
        );
    }
    for i in &r.rewritten {
        let _ = writeln!(
            out,
            "    image {} → {}  ({} {})",
            i.from, i.image, i.object, i.container
        );
    }
}

/// A command as one might type it: arguments with spaces or quotes quoted.
fn shell_words(command: &[String]) -> String {
    command
        .iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%{}".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn port_text(p: &HostPort) -> String {
    let proto = if p.protocol == crate::config::Protocol::Tcp {
        String::new()
    } else {
        format!("/{}", p.protocol)
    };
    match p.container_port {
        Some(c) => format!("{}{proto}→{c}", p.port),
        None => format!("{}{proto}", p.port),
    }
}

fn table(header: Vec<String>) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    t.set_header(header);
    t
}

/// The plan as text: per lane its waves and suites, then the matrix.
pub fn render_text(plan: &Plan, project: &Project) -> String {
    let mut out = String::new();
    for lane in &plan.lanes {
        let _ = writeln!(
            out,
            "lane {}  (cluster {}, {})",
            lane.lane, lane.cluster, lane.provider
        );
        for b in &lane.host_builds {
            let when = if b.skippable {
                "before the images; skipped while its inputs are unchanged"
            } else {
                "before the images, every run"
            };
            let _ = writeln!(
                out,
                "  host build {}  ({when}): {}",
                b.name,
                shell_words(&b.command)
            );
        }
        for (i, wave) in lane.waves.iter().enumerate() {
            let _ = writeln!(out, "  wave {}  {}", i + 1, wave.join(", "));
        }
        if lane.waves.is_empty() {
            let _ = writeln!(out, "  (no components)");
        }
        for c in &lane.rendered {
            render_component_text(&mut out, c);
        }
        for (variable, url) in &lane.endpoints {
            let _ = writeln!(out, "  endpoint {variable}={url}");
        }
        for s in &lane.suites {
            let mut mode = if s.serial {
                "serial, after the others".to_string()
            } else {
                format!("procs {}", s.procs)
            };
            match (s.retries, &s.rerun) {
                (0, _) => {}
                (n, None) => mode.push_str(&format!("; retries {n}")),
                (n, Some(rerun)) => mode.push_str(&format!(
                    "; retries {n}, only the failed cases: {}",
                    rerun.join(" ")
                )),
            }
            let _ = writeln!(
                out,
                "  suite {}  ({mode}; namespaces {})",
                s.name, s.namespace_pattern
            );
        }
        for h in &lane.hooks {
            let _ = writeln!(
                out,
                "  hook {}  (after gather, before teardown; timeout {}): {}",
                h.name,
                h.timeout,
                shell_words(&h.command)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "dependency matrix");
    let mut lanes_table = table(
        ["LANE", "CLUSTER", "HOST PORTS", "NAMESPACES"]
            .map(String::from)
            .to_vec(),
    );
    for lane in &plan.lanes {
        let ports = lane
            .host_ports
            .iter()
            .map(port_text)
            .collect::<Vec<_>>()
            .join(" ");
        lanes_table.add_row(vec![
            lane.lane.clone(),
            lane.cluster.clone(),
            if ports.is_empty() { "-".into() } else { ports },
            lane.namespaces.join(" "),
        ]);
    }
    let _ = writeln!(out, "{}\n", indent(&lanes_table.to_string()));
    if !plan.shared_host_ports.is_empty() {
        let _ = writeln!(
            out,
            "  shared host ports: run together (`harness test --lane a --lane b`), a later lane's moves to a free port; separate runs on one machine cannot share one"
        );
        let mut shared = table(["PORT", "LANES"].map(String::from).to_vec());
        for s in &plan.shared_host_ports {
            let claims = s
                .claims
                .iter()
                .map(|c| format!("{} ({})", c.lane, c.at))
                .collect::<Vec<_>>()
                .join(", ");
            shared.add_row(vec![format!("{}/{}", s.port, s.protocol), claims]);
        }
        let _ = writeln!(out, "{}\n", indent(&shared.to_string()));
    }
    // Components and images × lanes: the wave number, or "·" when unused.
    let mut header = vec!["COMPONENT".to_string()];
    header.extend(plan.lanes.iter().map(|l| l.lane.clone()));
    let mut components = table(header.clone());
    for name in project.components.keys() {
        let mut row = vec![name.clone()];
        row.extend(plan.lanes.iter().map(|l| {
            l.waves
                .iter()
                .position(|w| w.contains(name))
                .map_or("·".to_string(), |i| format!("wave {}", i + 1))
        }));
        components.add_row(row);
    }
    let _ = writeln!(out, "{}\n", indent(&components.to_string()));
    header[0] = "IMAGE".into();
    let mut images = table(header);
    for (name, image) in &project.images {
        let source = match &image.source {
            crate::config::ImageSource::Build { .. } => "build",
            crate::config::ImageSource::Pull { .. } => "pull",
        };
        let mut row = vec![format!("{name} ({source})")];
        row.extend(plan.lanes.iter().map(|l| {
            if l.images.contains(name) {
                "✓".to_string()
            } else {
                "·".to_string()
            }
        }));
        images.add_row(row);
    }
    let _ = writeln!(out, "{}", indent(&images.to_string()));
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!(" {}", l.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dependents_of_a_component_are_those_above_it_directly_or_not() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["db.yaml", "cache.yaml", "api.yaml", "ui.yaml", "jobs.yaml"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        std::fs::write(
            dir.path().join("harness.yaml"),
            "components:\n  db: {manifests: [db.yaml]}\n  cache: {manifests: [cache.yaml]}\n  \
             api: {manifests: [api.yaml], depends_on: [db, cache]}\n  \
             ui: {manifests: [ui.yaml], depends_on: [api]}\n  jobs: {manifests: [jobs.yaml], depends_on: [cache]}\n\
             lanes:\n  l: {components: [ui, jobs]}\n",
        )
        .unwrap();
        let project = crate::config::load(&dir.path().join("harness.yaml")).unwrap();
        let components = closure(&project, &project.lanes["l"].components);
        assert_eq!(dependents(&project, &components, "db"), ["api", "ui"]);
        assert_eq!(
            dependents(&project, &components, "cache"),
            ["api", "ui", "jobs"]
        );
        assert!(dependents(&project, &components, "ui").is_empty());
    }
}
