//! Deploying a lane: server-side apply, wave by wave, each component waited
//! Ready before the next wave starts — and when it is not, why.
//!
//! The stages are small modules around one pure judge. [`manifests`] turns
//! a component's files into objects (placeholders filled, CRDs first);
//! [`apply`] resolves each kind through discovery and applies it with the
//! one field manager `harness`; [`wait`] watches what was applied and its
//! pods and asks [`judge`] after every change whether the component is
//! Ready, failed, doomed, or still on its way; [`health`] then asks the
//! component's health URL. A component fails fast on a verdict (exit 6) and
//! at its deadline (exit 7), and either way the error carries a
//! [`report::Diagnosis`]: the unready table and each verdict with its
//! Warning events, terminations and current and previous logs. Progress is
//! a stream of [`DeployEvent`]s; nothing here prints. [`live`] runs the
//! same judge once on the current cluster for `diagnose` and `status`.

pub mod apply;
pub mod defaults;
pub mod health;
pub mod judge;
pub mod live;
pub mod manifests;
pub mod report;
pub mod wait;

use std::future::Future;
use std::time::Duration;

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::config::{Component, Lane, Project};
use crate::k8s::evidence::fetch_pod_evidence;
use crate::readiness::classify::Tolerance;
use crate::readiness::rules;
use crate::readiness::timeline::{PodTimeline, pod_timeline};

pub use apply::{AppliedObject, Applier, ApplyError, FIELD_MANAGER};
pub use judge::{Judgement, Outcome, Snapshot};
pub use report::{Diagnosis, Finding};

/// Evidence is fetched for at most this many verdicts (and, when there are
/// none, this many unready pods): enough to explain, short enough to read.
pub const MAX_FINDINGS: usize = 6;

/// What the deploy stage reports while it works.
#[derive(Clone, Debug)]
pub enum DeployEvent {
    /// A wave starts: its components are applied in parallel.
    WaveStarted {
        /// 1-based wave number.
        wave: usize,
        /// Its components.
        components: Vec<String>,
    },
    /// An object was server-side applied.
    Applied {
        /// The component.
        component: String,
        /// `Kind/namespace/name`.
        object: String,
    },
    /// The component's objects are not all Ready yet (sent when the set of
    /// unready objects changes).
    Waiting {
        /// The component.
        component: String,
        /// `Kind/namespace/name` of each unready object.
        unready: Vec<String>,
    },
    /// A pod of the component reached Ready: its Scheduled → Initialized → Ready times.
    PodTimeline {
        /// The component.
        component: String,
        /// `namespace/name`.
        pod: String,
        /// The times.
        timeline: PodTimeline,
    },
    /// The component's health URL answered 2xx.
    Healthy {
        /// The component.
        component: String,
        /// The URL.
        url: String,
    },
    /// The component is Ready.
    ComponentReady {
        /// The component.
        component: String,
        /// From its first apply to Ready (health included).
        elapsed: Duration,
    },
}

/// What was deployed.
#[derive(Clone, Debug, Default)]
pub struct DeployReport {
    /// Per component, in the order they became Ready.
    pub components: Vec<ComponentReport>,
}

/// One deployed component.
#[derive(Clone, Debug)]
pub struct ComponentReport {
    /// The component.
    pub name: String,
    /// Every object applied for it, in apply order.
    pub applied: Vec<AppliedObject>,
    /// From first apply to Ready.
    pub elapsed: Duration,
    /// Its pods' way to Ready.
    pub pods: Vec<(String, PodTimeline)>,
}

/// Why a lane could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A manifest could not be read or parsed.
    #[error(transparent)]
    Manifest(#[from] manifests::ManifestError),
    /// The API server refused an object, or its kind is not served.
    #[error("component `{component}`: cannot apply its manifests")]
    Apply {
        /// The component.
        component: String,
        /// What went wrong.
        #[source]
        source: ApplyError,
    },
    /// An object failed or a pod is doomed: waiting will not help.
    #[error("component `{component}` will not become Ready: {}", summary(.diagnosis))]
    Failed {
        /// The component.
        component: String,
        /// The table and the verdicts with evidence.
        diagnosis: Box<Diagnosis>,
    },
    /// The component's (or the lane's) deadline ran out.
    #[error("component `{component}` was not Ready within {}: {}", humantime::format_duration(*.after), summary(.diagnosis))]
    Deadline {
        /// The component.
        component: String,
        /// The time it had.
        after: Duration,
        /// The table and the verdicts with evidence.
        diagnosis: Box<Diagnosis>,
    },
    /// The objects are Ready but the health URL never answered 2xx.
    #[error("component `{component}` is Ready but not healthy")]
    Health {
        /// The component.
        component: String,
        /// The last answer.
        #[source]
        source: health::HealthTimeout,
    },
}

fn summary(d: &Diagnosis) -> String {
    match d.rows.first() {
        Some(r) if d.rows.len() > 1 => format!(
            "{} is {} ({}), and {} more unready",
            r.resource,
            r.state,
            r.reason,
            d.rows.len() - 1
        ),
        Some(r) => format!("{} is {} ({})", r.resource, r.state, r.reason),
        None => "no unready object recorded".to_owned(),
    }
}

impl DeployError {
    /// The diagnosis to print below the error, if there is one.
    pub fn diagnosis(&self) -> Option<&Diagnosis> {
        match self {
            DeployError::Failed { diagnosis, .. } | DeployError::Deadline { diagnosis, .. } => {
                Some(diagnosis)
            }
            _ => None,
        }
    }

    /// Whether a deadline ran out (exit 7) rather than a failure (exit 6).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            DeployError::Deadline { .. } | DeployError::Health { .. }
        )
    }
}

/// The readiness tolerance of a component.
pub fn tolerance(component: &Component) -> Tolerance {
    Tolerance {
        grace: component.tolerate.grace,
        restarts: component.tolerate.restarts,
    }
}

fn send(events: &UnboundedSender<DeployEvent>, event: DeployEvent) {
    // A dropped receiver means nobody is listening; deploying goes on.
    let _ = events.send(event);
}

/// Deploys `lane`: its components and their dependencies, wave by wave. A
/// wave starts when every component of the earlier waves is Ready; the
/// components of one wave are applied and waited in parallel. `images` maps
/// image names to the references loaded into the cluster. `deadline` bounds
/// the whole lane; each component also has its own `timeout`.
pub async fn deploy_lane(
    client: &Client,
    project: &Project,
    lane: &Lane,
    images: &IndexMap<String, String>,
    events: UnboundedSender<DeployEvent>,
    deadline: Instant,
) -> Result<DeployReport, DeployError> {
    let now = |_: &Component| std::future::ready(());
    deploy_lane_when(client, project, lane, images, events, deadline, now).await
}

/// [`deploy_lane`], where each component also waits for `ready(component)`
/// before its first apply (its images being in the cluster, say): the wave
/// order holds as before, and the component's own `timeout` starts after
/// the wait.
pub async fn deploy_lane_when<F: Future<Output = ()>>(
    client: &Client,
    project: &Project,
    lane: &Lane,
    images: &IndexMap<String, String>,
    events: UnboundedSender<DeployEvent>,
    deadline: Instant,
    ready: impl Fn(&Component) -> F,
) -> Result<DeployReport, DeployError> {
    let applier = Applier::new(client.clone());
    let components = crate::plan::closure(project, &lane.components);
    let waves = crate::plan::waves(project, &components);
    let mut report = DeployReport::default();
    for (i, wave) in waves.iter().enumerate() {
        send(
            &events,
            DeployEvent::WaveStarted {
                wave: i + 1,
                components: wave.clone(),
            },
        );
        let runs = wave.iter().map(|name| {
            let component = &project.components[name.as_str()];
            let (applier, events, ready) = (&applier, &events, &ready);
            async move {
                ready(component).await;
                deploy_component(client, applier, lane, component, images, events, deadline).await
            }
        });
        report
            .components
            .extend(futures_util::future::try_join_all(runs).await?);
    }
    Ok(report)
}

/// Ensures the namespace exists (applied like any object, so it is the
/// harness's): components' objects are defaulted into it.
async fn ensure_namespace(
    applier: &Applier,
    component: &str,
    namespace: &str,
) -> Result<AppliedObject, DeployError> {
    let object: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}
    }))
    .expect("a literal Namespace is a valid object");
    applier
        .apply(object, namespace)
        .await
        .map_err(|source| DeployError::Apply {
            component: component.to_owned(),
            source,
        })
}

/// Applies one component and waits until it is Ready (then healthy).
pub async fn deploy_component(
    client: &Client,
    applier: &Applier,
    lane: &Lane,
    component: &Component,
    images: &IndexMap<String, String>,
    events: &UnboundedSender<DeployEvent>,
    lane_deadline: Instant,
) -> Result<ComponentReport, DeployError> {
    let start = Instant::now();
    let deadline = lane_deadline.min(start + component.timeout);
    let name = component.name.clone();
    let namespace = lane.namespace_of(component).to_owned();
    let objects = manifests::render(component, lane, images)?;
    let (crds, rest) = manifests::crds_first(objects);
    let tolerance = tolerance(component);
    let mut applied = Vec::new();
    if !rest.is_empty() {
        ensure_namespace(applier, &name, &namespace).await?;
    }
    let mut pods = Vec::new();
    for batch in [crds, rest] {
        if batch.is_empty() {
            continue;
        }
        let mut wave = Vec::new();
        for object in batch {
            let a =
                applier
                    .apply(object, &namespace)
                    .await
                    .map_err(|source| DeployError::Apply {
                        component: name.clone(),
                        source,
                    })?;
            send(
                events,
                DeployEvent::Applied {
                    component: name.clone(),
                    object: a.resource_ref().to_string(),
                },
            );
            wave.push(a);
        }
        let mut last_unready: Vec<String> = Vec::new();
        let end = wait::wait_ready(client, &wave, &tolerance, deadline, |j| {
            let unready: Vec<String> = j.rows.iter().map(|r| r.resource.clone()).collect();
            if unready != last_unready && j.outcome == Outcome::Pending {
                send(
                    events,
                    DeployEvent::Waiting {
                        component: name.clone(),
                        unready: unready.clone(),
                    },
                );
            }
            last_unready = unready;
        })
        .await;
        conclude(
            client,
            &name,
            end.deadline,
            start.elapsed(),
            &end,
            &mut pods,
        )
        .await?;
        applied.extend(wave);
    }
    if let Some(h) = &component.health {
        // `{{host_port.N}}` resolves through this lane's kind config;
        // validation made sure the lane maps every port the URL names.
        let url = lane.resolve_url(&h.url).unwrap_or_else(|_| h.url.clone());
        wait_healthy_or_fail(&name, &url, h.timeout, deadline, events).await?;
    }
    for (pod, timeline) in &pods {
        send(
            events,
            DeployEvent::PodTimeline {
                component: name.clone(),
                pod: pod.clone(),
                timeline: timeline.clone(),
            },
        );
    }
    let elapsed = start.elapsed();
    send(
        events,
        DeployEvent::ComponentReady {
            component: name.clone(),
            elapsed,
        },
    );
    Ok(ComponentReport {
        name,
        applied,
        elapsed,
        pods,
    })
}

async fn wait_healthy_or_fail(
    name: &str,
    url: &str,
    timeout: Duration,
    deadline: Instant,
    events: &UnboundedSender<DeployEvent>,
) -> Result<(), DeployError> {
    health::wait_healthy(url, timeout, deadline)
        .await
        .map_err(|source| DeployError::Health {
            component: name.to_owned(),
            source,
        })?;
    send(
        events,
        DeployEvent::Healthy {
            component: name.to_owned(),
            url: url.to_owned(),
        },
    );
    Ok(())
}

/// Turns the end of a wait into Ok (recording pod timelines) or the error
/// with its diagnosis.
async fn conclude(
    client: &Client,
    component: &str,
    deadline: bool,
    elapsed: Duration,
    end: &wait::WaitEnd,
    pods: &mut Vec<(String, PodTimeline)>,
) -> Result<(), DeployError> {
    if end.judgement.outcome == Outcome::Ready && !deadline {
        for tracked in &end.snapshot.objects {
            for pod in &tracked.pods {
                pods.push((pod_name(pod), pod_timeline(pod)));
            }
        }
        return Ok(());
    }
    let diagnosis = Box::new(
        diagnose(
            client,
            component,
            &end.judgement,
            &end.snapshot,
            end.watch_error.clone(),
        )
        .await,
    );
    if deadline {
        Err(DeployError::Deadline {
            component: component.to_owned(),
            after: elapsed,
            diagnosis,
        })
    } else {
        Err(DeployError::Failed {
            component: component.to_owned(),
            diagnosis,
        })
    }
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Fetches the evidence for a judgement: each verdict with its container's
/// events and logs, or, when there is no verdict, the unready pods'.
pub async fn diagnose(
    client: &Client,
    component: &str,
    judgement: &Judgement,
    snapshot: &Snapshot,
    watch_error: Option<String>,
) -> Diagnosis {
    let mut findings = Vec::new();
    for v in judgement.verdicts.iter().take(MAX_FINDINGS) {
        let evidence = fetch_pod_evidence(client, &v.pod, Some(&v.verdict)).await;
        findings.push(Finding {
            pod: pod_name(&v.pod),
            verdict: Some(v.verdict.clone()),
            evidence,
        });
    }
    if findings.is_empty() {
        let unready = snapshot
            .objects
            .iter()
            .zip(&judgement.statuses)
            .filter(|(_, s)| !s.is_ready())
            .flat_map(|(t, _)| &t.pods)
            .filter(|p| !rules::pod(p).is_ready() && !rules::is_job_pod(p));
        for pod in unready.take(MAX_FINDINGS) {
            let evidence = fetch_pod_evidence(client, pod, None).await;
            findings.push(Finding {
                pod: pod_name(pod),
                verdict: None,
                evidence,
            });
        }
    }
    Diagnosis {
        component: component.to_owned(),
        rows: judgement.rows.clone(),
        findings,
        watch_error,
    }
}
