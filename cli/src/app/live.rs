//! `diagnose`, `status` and `namespace create`: the commands that act on
//! the lane's running cluster.

use std::path::Path;

use harness::deploy::{Applier, live::component_state};
use harness::exit::Exit;
use harness::failure::{Failure, StageFailure};
use harness::k8s::{self, access};
use harness::suites::{NamespaceProvisioner, OsRandom, namespace::namespace_name};

use super::{emit, load};
use crate::cli::{Global, OutputFormat};

/// `diagnose` found a component that will not become Ready.
#[derive(Debug, thiserror::Error)]
#[error("{} will not become Ready", .0.join(", "))]
pub struct Doomed(pub Vec<String>);

/// What `diagnose` found is a deploy's verdict (6); the verdicts and their
/// evidence were printed above it.
impl Failure for Doomed {
    fn exit(&self) -> Exit {
        Exit::Deploy
    }

    fn fix(&self) -> Option<String> {
        None
    }
}

/// A component named on the command line is not in the lane.
#[derive(Debug, thiserror::Error)]
#[error("lane `{lane}` has no component `{name}` (it deploys: {})", .known.join(", "))]
pub struct UnknownComponent {
    pub lane: String,
    pub name: String,
    pub known: Vec<String>,
}

/// The message lists the components there are (2).
impl Failure for UnknownComponent {
    fn exit(&self) -> Exit {
        Exit::Usage
    }

    fn fix(&self) -> Option<String> {
        None
    }
}

async fn connect(
    global: &Global,
    cwd: &Path,
) -> Result<(harness::config::Project, String, kube::Client), StageFailure> {
    let project = load(global.config.as_deref(), cwd, global.verbose)?;
    let lane = harness::plan::one_lane(&project, super::lane_flag(global)?)?
        .name
        .clone();
    let env = std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).next());
    let home = std::env::var_os("HOME").map(Into::into);
    let resolved = access::resolve(
        &project.root,
        &project.lanes[lane.as_str()],
        global.kubeconfig.as_deref(),
        env,
        home,
    )?;
    if global.verbose > 0 {
        eprintln!("harness: cluster from {}", resolved.found_in);
    }
    let client = k8s::connect(&resolved.access).await?;
    // Ask the cluster before anything else: a kubeconfig left behind by
    // an old cluster (kind's, $KUBECONFIG) is not an environment that
    // is up, and one `up` recorded that does not answer is a cluster
    // problem, not a manifest one.
    let answer = tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await;
    let silent = match answer {
        Ok(Ok(_)) | Ok(Err(kube::Error::Api(_))) => None,
        Ok(Err(e)) => Some(harness::failure::chain_text(&e)),
        Err(_) => Some(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
    };
    match silent {
        None => Ok((project, lane, client)),
        Some(detail) if resolved.recorded => Err(Unreachable {
            lane,
            found_in: resolved.found_in,
            detail,
        }
        .into()),
        Some(detail) => Err(access::NotUp {
            detail: format!(
                "harness up recorded none, and the cluster in the {} does not answer ({detail})",
                resolved.found_in
            ),
            lane,
        }
        .into()),
    }
}

/// How long the first request may take before the cluster counts as silent.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The cluster `up` recorded (or `--kubeconfig` named) does not answer.
#[derive(Debug, thiserror::Error)]
#[error("the cluster of lane {lane} ({found_in}) does not answer: {detail}")]
pub struct Unreachable {
    pub lane: String,
    /// Where its kubeconfig came from.
    pub found_in: String,
    pub detail: String,
}

/// A cluster that was up and does not answer is a cluster failure (5).
impl Failure for Unreachable {
    fn exit(&self) -> Exit {
        Exit::Cluster
    }

    fn fix(&self) -> Option<String> {
        Some(format!(
            "check that it still runs (`kind get clusters`, `docker ps`); `harness down --lane {0}` removes what is left, `harness up --lane {0}` brings the lane up again",
            self.lane
        ))
    }
}

pub async fn diagnose(global: &Global, cwd: &Path, names: &[String]) -> Result<Exit, StageFailure> {
    let (project, lane_name, client) = connect(global, cwd).await?;
    let lane = &project.lanes[lane_name.as_str()];
    let deployed = harness::plan::closure(&project, &lane.components);
    for name in names {
        if !deployed.contains(name) {
            return Err(UnknownComponent {
                lane: lane_name.clone(),
                name: name.clone(),
                known: deployed.clone(),
            }
            .into());
        }
    }
    let chosen: Vec<&String> = deployed
        .iter()
        .filter(|c| names.is_empty() || names.contains(c))
        .collect();
    let applier = Applier::new(client.clone());
    let mut doomed = Vec::new();
    let mut out = String::new();
    let mut json = Vec::new();
    // The same diagnosis a bundle carries in harness/diagnosis.{txt,json}.
    for name in chosen {
        let diagnosed =
            harness::gather::diagnosis::component(&client, &applier, &project, lane, name).await?;
        if diagnosed.doomed {
            doomed.push(name.clone());
        }
        out.push_str(&diagnosed.text);
        json.push(diagnosed.json);
    }
    match global.output {
        OutputFormat::Text => emit(&out)?,
        OutputFormat::Json => emit(&format!(
            "{}\n",
            serde_json::json!({"lane": lane_name, "components": json})
        ))?,
    }
    if doomed.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(Doomed(doomed).into())
    }
}

pub async fn status(global: &Global, cwd: &Path) -> Result<Exit, StageFailure> {
    let (project, lane_name, client) = connect(global, cwd).await?;
    let lane = &project.lanes[lane_name.as_str()];
    let applier = Applier::new(client.clone());
    let now = harness::readiness::Timestamp::now();
    let mut rows = vec![["COMPONENT", "STATE", "READY", "RESTARTS", "AGE"].map(String::from)];
    let mut json = Vec::new();
    for name in harness::plan::closure(&project, &lane.components) {
        let state = component_state(
            &client,
            &applier,
            &project,
            lane,
            &project.components[name.as_str()],
        )
        .await?;
        let ready = state
            .judgement
            .statuses
            .iter()
            .filter(|s| s.is_ready())
            .count();
        let age = state
            .age(now)
            .map(|d| {
                humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
            })
            .unwrap_or_else(|| "-".into());
        json.push(serde_json::json!({
            "component": name,
            "state": state.state(),
            "ready": ready,
            "pods": state.judgement.statuses.len(),
            "restarts": state.restarts(),
            "age_seconds": state.age(now).map(|d| d.as_secs()),
        }));
        rows.push([
            name.clone(),
            state.state().to_owned(),
            format!("{ready}/{}", state.judgement.statuses.len()),
            state.restarts().to_string(),
            age,
        ]);
    }
    if global.output == OutputFormat::Json {
        emit(&format!(
            "{}\n",
            serde_json::json!({"lane": lane_name, "components": json})
        ))?;
        return Ok(Exit::Ok);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = format!("lane {lane_name}\n");
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    emit(&out)?;
    Ok(Exit::Ok)
}

pub async fn namespace_create(
    global: &Global,
    cwd: &Path,
    prefix: &str,
    process: u32,
) -> Result<Exit, StageFailure> {
    let (_, _, client) = connect(global, cwd).await?;
    let name = namespace_name(prefix, process as usize, &mut OsRandom)?;
    let run_id =
        std::env::var(harness::suites::env::HARNESS_RUN_ID).unwrap_or_else(|_| "manual".to_owned());
    k8s::KubeNamespaces::new(client, run_id)
        .create(&name)
        .await?;
    emit(&format!("{name}\n"))?;
    Ok(Exit::Ok)
}
