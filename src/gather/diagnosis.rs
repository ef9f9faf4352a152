//! The diagnosis of a lane's components, as `harness diagnose` prints it.
//!
//! `harness diagnose` and the bundle's `harness/diagnosis.{txt,json}` are
//! the same: one component at a time, read once and judged as the deploy
//! waiter judges it, with the evidence of each verdict. The bundle's
//! diagnosis is taken at gather time, so it shows the cluster as the
//! suites left it.

use serde_json::{Value, json};

use crate::config::{Lane, Project};
use crate::deploy::live::{LiveError, component_state};
use crate::deploy::{Applier, Outcome};

/// One component, diagnosed.
#[derive(Clone, Debug)]
pub struct ComponentDiagnosis {
    pub name: String,
    /// `Ready`, `InProgress`, `Failed` or `NotDeployed` (as `harness status`).
    pub state: &'static str,
    /// The most likely verdict, when it is not Ready.
    pub verdict: Option<String>,
    /// It will not become Ready.
    pub doomed: bool,
    /// What `harness diagnose` prints for it.
    pub text: String,
    /// Its entry in `harness diagnose --output json`'s `components`.
    pub json: Value,
}

/// Reads, judges and (when it is not Ready) diagnoses one component.
pub async fn component(
    client: &kube::Client,
    applier: &Applier,
    project: &Project,
    lane: &Lane,
    name: &str,
) -> Result<ComponentDiagnosis, LiveError> {
    let state = component_state(client, applier, project, lane, &project.components[name]).await?;
    if state.judgement.outcome == Outcome::Ready {
        let notes = state.notes();
        let text: String = notes.iter().map(|n| format!("  note: {n}\n")).collect();
        let mut json = json!({"component": name, "ready": true});
        if !notes.is_empty() {
            json["notes"] = json!(notes);
        }
        return Ok(ComponentDiagnosis {
            name: name.to_owned(),
            state: state.state(),
            verdict: None,
            doomed: false,
            text: format!("component {name}: Ready\n{text}"),
            json,
        });
    }
    let diagnosis = state.diagnosis(client).await;
    Ok(ComponentDiagnosis {
        name: name.to_owned(),
        state: state.state(),
        verdict: diagnosis
            .findings
            .iter()
            .find_map(|f| f.verdict.as_ref())
            .map(|v| v.kind.name().to_string()),
        doomed: state.judgement.outcome == Outcome::Failed,
        text: format!("{}\n", diagnosis.render()),
        json: diagnosis.to_json(),
    })
}

/// Every component of the lane, in deploy order. A component that cannot
/// be read is said so in its place; the others are still diagnosed.
pub async fn lane(
    client: &kube::Client,
    project: &Project,
    lane: &Lane,
) -> Vec<Result<ComponentDiagnosis, (String, LiveError)>> {
    let applier = Applier::new(client.clone());
    let mut out = Vec::new();
    for name in crate::plan::closure(project, &lane.components) {
        let diagnosed = component(client, &applier, project, lane, &name).await;
        out.push(diagnosed.map_err(|e| (name, e)));
    }
    out
}

/// The text of `harness diagnose`; a component that could not be read gets
/// the error in its place.
pub fn text(components: &[Result<ComponentDiagnosis, (String, LiveError)>]) -> String {
    components
        .iter()
        .map(|c| match c {
            Ok(d) => d.text.clone(),
            Err((name, e)) => format!("component {name}: cannot be read: {}\n", chain(e)),
        })
        .collect()
}

/// The document of `harness diagnose --output json`; a component that could
/// not be read carries its `error`.
pub fn json(lane: &str, components: &[Result<ComponentDiagnosis, (String, LiveError)>]) -> Value {
    let components: Vec<Value> = components
        .iter()
        .map(|c| match c {
            Ok(d) => d.json.clone(),
            Err((name, e)) => json!({"component": name, "error": chain(e)}),
        })
        .collect();
    json!({"lane": lane, "components": components})
}

/// An error and its causes, as one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
