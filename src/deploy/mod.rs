//! Deploying a lane: server-side apply, wave by wave, each component waited
//! Ready (and its readiness held) before the next wave starts — and when it
//! is not, why.
//!
//! The stages are small modules around one pure judge. [`manifests`] turns
//! a component's files into objects (placeholders filled, CRDs first);
//! [`apply`] resolves each kind through discovery and applies it with the
//! one field manager `harness`; [`wait`] watches what was applied and its
//! pods and asks [`judge`] after every change whether the component is
//! Ready, failed, doomed, or still on its way, and counts it Ready only
//! when that held for its settle window; [`health`] then asks the
//! component's health URL. A Ready component stays watched until the lane
//! is deployed: one that goes down while later waves deploy fails the
//! deploy with its verdict. When a component fails (exit 6 for a verdict,
//! 7 for a deadline), the other components of its wave get a short window
//! ([`VERDICT_WINDOW`]) to reach their own verdicts, and every component of
//! the wave is reported with where it stands ([`DeployEvent::Verdict`]):
//! Ready, doomed, timed out or still in progress, each with a
//! [`report::Diagnosis`] (the unready table, and each verdict with its
//! Warning events, terminations and current and previous logs). Progress
//! is a stream of [`DeployEvent`]s; nothing here prints. [`live`] runs the
//! same judge once on the current cluster for `diagnose` and `status`.

pub mod apply;
pub mod defaults;
pub mod health;
pub mod judge;
pub mod live;
pub mod manifests;
pub mod progress;
pub mod recover;
pub mod report;
pub mod stage;
pub mod wait;

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use indexmap::IndexMap;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::config::{Component, Lane, Project};
use crate::exit::Exit;
use crate::failure::Failure;
use crate::k8s::evidence::{LogText, fetch_pod_evidence};
use crate::readiness::classify::Tolerance;
use crate::readiness::timeline::{PodTimeline, pod_timeline};
use crate::readiness::{human, rules};

pub use apply::{AppliedObject, Applier, ApplyError, FIELD_MANAGER};
pub use judge::{Judgement, Outcome, Snapshot};
pub use report::{Diagnosis, Finding, Standing};
use wait::{
    Clock, CutOff, CutOffHandle, Ended, EndpointSource, WaitEnd, WaitProgress, WaitSpec, Waiter,
};

/// Evidence is fetched for at most this many verdicts (and, when there are
/// none, this many unready pods): enough to explain, short enough to read.
pub const MAX_FINDINGS: usize = 6;

/// How long a fresh namespace may take to accept pods.
const NAMESPACE_WAIT: Duration = Duration::from_secs(30);

/// When a component of a wave fails, how long the others may still take to
/// reach their own verdict before they are reported as they stand: long
/// enough for the usual verdicts (an image pull, a crash), far shorter than
/// a component's timeout.
pub const VERDICT_WINDOW: Duration = Duration::from_secs(10);

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
    /// An object of a kind in `exclude_unserved:` was left out: the cluster
    /// does not serve its apiVersion.
    LeftOut {
        /// The component.
        component: String,
        /// `Kind (apiVersion)`.
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
    /// Where the component stands while it is waited on, when that
    /// changed (for the live display; at most a few a second).
    Live {
        /// The component.
        component: String,
        /// Its state.
        state: progress::LiveState,
    },
    /// The component's readiness did not hold: its settle window starts
    /// again when it is Ready again, or its tolerance decides.
    Unsettled {
        /// The component.
        component: String,
        /// What happened, e.g. `Ready for 2.3s, then container app restarted ...`.
        what: String,
    },
    /// Something worth knowing about an object of a Ready component that
    /// did not block it (a disruption budget that refuses every eviction,
    /// an autoscaler that cannot read metrics).
    Noted {
        /// The component.
        component: String,
        /// `Kind/namespace/name`.
        object: String,
        /// What is worth knowing.
        note: String,
    },
    /// A watch keeps failing (it is retried; this says so, with the error).
    WatchFailing {
        /// The component.
        component: String,
        /// The watch, how often it failed, the error.
        message: String,
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
    /// The deploy failed: where one component of the failed wave (or a
    /// component that went down after Ready) stands, with its evidence.
    /// Sent for every component of that wave.
    Verdict {
        /// The component.
        component: String,
        /// Where it stands.
        standing: Standing,
        /// One line: its verdict, deadline or error, or how long it took to be Ready.
        summary: String,
        /// The table and the verdicts with evidence (none for a Ready one).
        diagnosis: Option<Box<Diagnosis>>,
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
        /// What went wrong (boxed: it is large, and errors travel by value).
        #[source]
        source: Box<ApplyError>,
    },
    /// An object failed or a pod is doomed: waiting will not help.
    #[error("component `{component}` will not become Ready: {}", .diagnosis.summary())]
    Failed {
        /// The component.
        component: String,
        /// The table and the verdicts with evidence.
        diagnosis: Box<Diagnosis>,
    },
    /// The component was Ready, then became doomed before the suites started.
    #[error("component `{component}` was Ready, then went down: {}", .diagnosis.summary())]
    AfterReady {
        /// The component.
        component: String,
        /// The table and the verdicts with evidence.
        diagnosis: Box<Diagnosis>,
    },
    /// The component's (or the lane's) deadline ran out.
    #[error("component `{component}` was not Ready within {}: {}", human(*.after), .diagnosis.summary())]
    Deadline {
        /// The component.
        component: String,
        /// The time it had.
        after: Duration,
        /// The table and the verdicts with evidence.
        diagnosis: Box<Diagnosis>,
    },
    /// Another component of the wave failed while this one was on its way.
    #[error("component `{component}` was still in progress: {}", .diagnosis.summary())]
    Stopped {
        /// The component.
        component: String,
        /// The table, and what its pods wait on.
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
    /// More than one component of a wave failed (each one's verdict and
    /// evidence were reported as [`DeployEvent::Verdict`]).
    #[error("{}", wave_summary(*.wave, .failures, .ready))]
    Wave {
        /// 1-based wave number.
        wave: usize,
        /// The components that failed, in the wave's order.
        failures: Vec<DeployError>,
        /// The components of the wave that were Ready.
        ready: Vec<String>,
    },
}

fn wave_summary(wave: usize, failures: &[DeployError], ready: &[String]) -> String {
    let mut text = format!(
        "wave {wave}: {} component{} failed",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    if !ready.is_empty() {
        text.push_str(&format!(" ({} Ready)", ready.len()));
    }
    let names: Vec<String> = failures
        .iter()
        .map(|f| match (f.component(), f.diagnosis()) {
            (Some(c), Some(d)) => match d.rows.first() {
                Some(r) => format!("{c} ({})", r.reason),
                None => c.to_owned(),
            },
            (Some(c), None) => c.to_owned(),
            (None, _) => "?".to_owned(),
        })
        .collect();
    format!("{text}: {}; first: {}", names.join(", "), failures[0])
}

impl DeployError {
    /// The diagnosis to print below the error, if there is one (the first
    /// failed component's, for a wave).
    pub fn diagnosis(&self) -> Option<&Diagnosis> {
        match self {
            DeployError::Failed { diagnosis, .. }
            | DeployError::AfterReady { diagnosis, .. }
            | DeployError::Deadline { diagnosis, .. }
            | DeployError::Stopped { diagnosis, .. } => Some(diagnosis),
            DeployError::Wave { failures, .. } => failures.iter().find_map(Self::diagnosis),
            _ => None,
        }
    }

    /// Every diagnosis it carries: one per failed component.
    pub fn diagnoses(&self) -> Vec<&Diagnosis> {
        match self {
            DeployError::Wave { failures, .. } => {
                failures.iter().flat_map(Self::diagnoses).collect()
            }
            other => other.diagnosis().into_iter().collect(),
        }
    }

    /// The component it is about (`None` for a manifest error or a wave).
    pub fn component(&self) -> Option<&str> {
        match self {
            DeployError::Apply { component, .. }
            | DeployError::Failed { component, .. }
            | DeployError::AfterReady { component, .. }
            | DeployError::Deadline { component, .. }
            | DeployError::Stopped { component, .. }
            | DeployError::Health { component, .. } => Some(component),
            DeployError::Manifest(_) | DeployError::Wave { .. } => None,
        }
    }

    /// Where the failed component stands.
    pub fn standing(&self) -> Standing {
        match self {
            DeployError::Failed { .. } => Standing::Doomed,
            DeployError::AfterReady { .. } => Standing::DoomedAfterReady,
            DeployError::Deadline { .. } => Standing::TimedOut,
            DeployError::Stopped { .. } => Standing::InProgress,
            _ => Standing::Failed,
        }
    }

    /// Whether a deadline ran out (exit 7) rather than a failure (exit 6):
    /// for a wave, when no component failed for any other reason.
    pub fn is_timeout(&self) -> bool {
        match self {
            DeployError::Deadline { .. } | DeployError::Health { .. } => true,
            DeployError::Wave { failures, .. } => failures
                .iter()
                .all(|f| f.is_timeout() || matches!(f, DeployError::Stopped { .. })),
            _ => false,
        }
    }
}

/// A deadline that ran out is a timeout (7), anything else a failed deploy
/// (6). The fix of a refused apply is the refusal's own (a field or a kind
/// newer than the cluster says which node image to use); a verdict's fix
/// is in its evidence, which the failure shows below its line.
impl Failure for DeployError {
    fn exit(&self) -> Exit {
        match self {
            DeployError::Deadline { .. } | DeployError::Health { .. } => Exit::Timeout,
            DeployError::Wave { .. } if self.is_timeout() => Exit::Timeout,
            DeployError::Wave { .. }
            | DeployError::Manifest(_)
            | DeployError::Apply { .. }
            | DeployError::Failed { .. }
            | DeployError::AfterReady { .. }
            | DeployError::Stopped { .. } => Exit::Deploy,
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            DeployError::Apply { source, .. } => source.help(),
            DeployError::Manifest(e) => e.help(),
            DeployError::Wave { failures, .. } => failures.iter().find_map(Failure::fix),
            DeployError::Health { component, .. } => Some(format!(
                "check what the component logs (`harness diagnose` shows its pods), or fix its `health.url`; `{component}`'s objects are Ready"
            )),
            DeployError::Failed { .. }
            | DeployError::AfterReady { .. }
            | DeployError::Deadline { .. }
            | DeployError::Stopped { .. } => None,
        }
    }

    /// A failure or a deadline is never shown without its table and
    /// evidence: every failed component's.
    fn evidence(&self) -> Option<String> {
        let diagnoses = self.diagnoses();
        (!diagnoses.is_empty()).then(|| {
            diagnoses
                .iter()
                .map(|d| d.render())
                .collect::<Vec<_>>()
                .join("\n\n")
        })
    }
}

/// How `component`'s objects are read in `lane`: the lane file's
/// `readiness:` entries for it, and what the lane's cluster provides (a
/// kind cluster gives LoadBalancer Services no address).
pub fn rules_for(project: &Project, lane: &Lane, component: &Component) -> judge::Rules {
    let kind = matches!(
        lane.cluster.provider,
        crate::config::ClusterProvider::Kind(_)
    );
    judge::Rules {
        overrides: project.readiness_for(lane, component),
        cluster: rules::ClusterTraits {
            load_balancer_addresses: !kind,
        },
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

/// What every component of a lane's deploy shares.
struct Ctx<'a> {
    client: &'a Client,
    project: &'a Project,
    applier: Applier,
    lane: &'a Lane,
    images: &'a IndexMap<String, String>,
    events: &'a UnboundedSender<DeployEvent>,
    deadline: Instant,
    endpoints: EndpointSource,
    clock: Clock,
}

/// A component that is Ready and still watched.
struct Guard {
    component: String,
    waiter: Waiter,
}

/// A component that deployed: its report, and the waiters that keep
/// watching it.
struct Deployed {
    report: ComponentReport,
    waiters: Vec<Waiter>,
}

/// Deploys `lane`: its components and their dependencies, wave by wave. A
/// wave starts when every component of the earlier waves is Ready; the
/// components of one wave are applied and waited in parallel. `images` maps
/// image names to the references loaded into the cluster. `deadline` bounds
/// the whole lane; each component also has its own `timeout`. Components
/// stay watched after Ready until every wave is deployed.
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
    deploy_lane_with(
        client,
        project,
        lane,
        images,
        events,
        deadline,
        Clock::system(),
        ready,
    )
    .await
}

/// [`deploy_lane`], judging by `clock` (a replay of captured watch streams
/// is judged at the time it was captured).
pub async fn deploy_lane_at(
    client: &Client,
    project: &Project,
    lane: &Lane,
    images: &IndexMap<String, String>,
    events: UnboundedSender<DeployEvent>,
    deadline: Instant,
    clock: Clock,
) -> Result<DeployReport, DeployError> {
    let now = |_: &Component| std::future::ready(());
    deploy_lane_with(client, project, lane, images, events, deadline, clock, now).await
}

#[allow(clippy::too_many_arguments)]
async fn deploy_lane_with<F: Future<Output = ()>>(
    client: &Client,
    project: &Project,
    lane: &Lane,
    images: &IndexMap<String, String>,
    events: UnboundedSender<DeployEvent>,
    deadline: Instant,
    clock: Clock,
    ready: impl Fn(&Component) -> F,
) -> Result<DeployReport, DeployError> {
    // Readiness that already held is credited only on the server's clock.
    let clock = clock.with_server(crate::k8s::server_time::ServerTime::ask(client).await);
    let ctx = Ctx {
        clock,
        client,
        project,
        applier: Applier::new(client.clone()),
        lane,
        images,
        events: &events,
        deadline,
        endpoints: EndpointSource::discover(client).await,
    };
    let started = Instant::now();
    let components = crate::plan::closure(project, &lane.components);
    let waves = crate::plan::waves(project, &components);
    let mut report = DeployReport::default();
    let mut guards: Vec<Guard> = Vec::new();
    for (i, wave) in waves.iter().enumerate() {
        send(
            &events,
            DeployEvent::WaveStarted {
                wave: i + 1,
                components: wave.clone(),
            },
        );
        let (cut, cutoff) = CutOff::pair();
        let run = run_wave(&ctx, project, wave, &cut, &cutoff, &ready);
        tokio::pin!(run);
        // The earlier waves' components are watched while this one deploys.
        let mut went_down = None;
        let results = loop {
            tokio::select! {
                results = &mut run => break results,
                down = watch_guards(&mut guards, &events), if went_down.is_none() => {
                    // Its dependents wait on it in vain: stop them now.
                    cut.cut_at(Instant::now());
                    went_down = Some(down);
                }
            }
        };
        let mut failures = Vec::new();
        if let Some((component, end)) = went_down {
            let error = after_ready(client, &component, &end).await;
            report_verdict(&events, &component, &Err(&error));
            failures.push(error);
        }
        let mut ready = Vec::new();
        let mut deployed = Vec::new();
        let any_failed = !failures.is_empty() || results.iter().any(|(_, r)| r.is_err());
        for (name, result) in results {
            if any_failed {
                report_verdict(&events, &name, &result.as_ref().map(|d| d.report.elapsed));
            }
            match result {
                Ok(d) => {
                    ready.push(name);
                    deployed.push(d);
                }
                Err(e) => failures.push(e),
            }
        }
        if !failures.is_empty() {
            return Err(if failures.len() == 1 {
                failures.remove(0)
            } else {
                DeployError::Wave {
                    wave: i + 1,
                    failures,
                    ready,
                }
            });
        }
        for d in deployed {
            guards.extend(d.waiters.into_iter().map(|waiter| Guard {
                component: d.report.name.clone(),
                waiter,
            }));
            report.components.push(d.report);
        }
    }
    // Until the suites start, every component must still be Ready: one that
    // lost readiness (without a verdict yet) is waited for once more.
    for guard in &mut guards {
        if guard.waiter.is_ready() {
            continue;
        }
        guard.waiter.restart_settle();
        let name = guard.component.clone();
        let end = guard
            .waiter
            .until_ready(deadline, &mut CutOff::never(), |p| {
                forward_progress(&events, &name, &p)
            })
            .await;
        if end.ended != Ended::Ready {
            let error = match end.ended {
                Ended::Failed => after_ready(client, &name, &end).await,
                _ => DeployError::Deadline {
                    component: name.clone(),
                    after: started.elapsed(),
                    diagnosis: Box::new(
                        diagnose_end(client, &name, &end, Standing::TimedOut).await,
                    ),
                },
            };
            report_verdict(&events, &name, &Err(&error));
            return Err(error);
        }
    }
    Ok(report)
}

/// Reports where one component stands, for the failed wave's list.
fn report_verdict(
    events: &UnboundedSender<DeployEvent>,
    component: &str,
    result: &Result<Duration, &DeployError>,
) {
    let (standing, summary, diagnosis) = match result {
        Ok(elapsed) => (
            Standing::Ready,
            format!("Ready after {}", human(*elapsed)),
            None,
        ),
        Err(e) => (
            e.standing(),
            crate::failure::chain_text(*e),
            e.diagnosis().map(|d| Box::new(d.clone())),
        ),
    };
    send(
        events,
        DeployEvent::Verdict {
            component: component.to_owned(),
            standing,
            summary,
            diagnosis,
        },
    );
}

/// Waits until one of the guarded components is doomed; pending forever
/// when there are none.
async fn watch_guards(
    guards: &mut [Guard],
    events: &UnboundedSender<DeployEvent>,
) -> (String, WaitEnd) {
    if guards.is_empty() {
        return std::future::pending().await;
    }
    let watches = guards.iter_mut().map(|g| {
        let name = g.component.clone();
        Box::pin(async move {
            let end = g
                .waiter
                .until_doomed(|p| forward_progress(events, &name, &p))
                .await;
            (name, end)
        })
    });
    futures_util::future::select_all(watches).await.0
}

async fn after_ready(client: &Client, component: &str, end: &WaitEnd) -> DeployError {
    DeployError::AfterReady {
        component: component.to_owned(),
        diagnosis: Box::new(diagnose_end(client, component, end, Standing::DoomedAfterReady).await),
    }
}

/// Runs the components of one wave in parallel. When one fails the others
/// get [`VERDICT_WINDOW`] to reach theirs (`cut`); every result is returned,
/// in the wave's order.
async fn run_wave<F: Future<Output = ()>>(
    ctx: &Ctx<'_>,
    project: &Project,
    wave: &[String],
    cut: &CutOffHandle,
    cutoff: &CutOff,
    ready: &impl Fn(&Component) -> F,
) -> Vec<(String, Result<Deployed, DeployError>)> {
    let mut running: FuturesUnordered<_> = wave
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let cutoff = cutoff.clone();
            let component = &project.components[name.as_str()];
            async move { (i, deploy_component(ctx, component, cutoff, ready).await) }
        })
        .collect();
    let mut results: Vec<Option<Result<Deployed, DeployError>>> =
        wave.iter().map(|_| None).collect();
    while let Some((i, result)) = running.next().await {
        if result.is_err() {
            cut.cut_at(Instant::now() + VERDICT_WINDOW);
        }
        results[i] = Some(result);
    }
    wave.iter()
        .cloned()
        .zip(
            results
                .into_iter()
                .map(|r| r.expect("every component ends")),
        )
        .collect()
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
            source: Box::new(source),
        })
}

/// `Namespace` objects first (others may be in them), each keeping its
/// order; and the namespaces to make before applying: the component's own
/// and every one an object names, except those the component creates.
fn namespaces_first(
    objects: Vec<kube::api::DynamicObject>,
    namespace: &str,
) -> (Vec<kube::api::DynamicObject>, Vec<String>) {
    let is_namespace = |o: &kube::api::DynamicObject| {
        o.types
            .as_ref()
            .is_some_and(|t| t.kind == "Namespace" && t.api_version == "v1")
    };
    let (mut ordered, rest): (Vec<_>, Vec<_>) = objects.into_iter().partition(is_namespace);
    let created: Vec<String> = ordered
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    let mut needed = vec![namespace.to_owned()];
    for ns in rest.iter().filter_map(|o| o.metadata.namespace.as_ref()) {
        if !needed.contains(ns) {
            needed.push(ns.clone());
        }
    }
    needed.retain(|ns| !created.contains(ns));
    ordered.extend(rest);
    (ordered, needed)
}

fn forward_progress(events: &UnboundedSender<DeployEvent>, component: &str, p: &WaitProgress<'_>) {
    match p {
        WaitProgress::Judged(_) | WaitProgress::Live(_) => {}
        WaitProgress::Flapped(flap) => send(
            events,
            DeployEvent::Unsettled {
                component: component.to_owned(),
                what: flap.describe(),
            },
        ),
        WaitProgress::WatchFailing(failure) => send(
            events,
            DeployEvent::WatchFailing {
                component: component.to_owned(),
                message: failure.describe(),
            },
        ),
    }
}

/// Applies one component once `ready(component)` is, and waits until it is
/// Ready and that held (then healthy). The waiters are returned to keep
/// watching it.
async fn deploy_component<F: Future<Output = ()>>(
    ctx: &Ctx<'_>,
    component: &Component,
    mut cutoff: CutOff,
    ready: &impl Fn(&Component) -> F,
) -> Result<Deployed, DeployError> {
    tokio::select! {
        () = ready(component) => {}
        () = cutoff.reached() => {
            return Err(DeployError::Stopped {
                component: component.name.clone(),
                diagnosis: Box::new(Diagnosis {
                    component: component.name.clone(),
                    standing: Standing::InProgress,
                    rows: vec![crate::readiness::table::UnreadyRow {
                        resource: format!("component {}", component.name),
                        state: crate::readiness::State::InProgress,
                        reason: "NotApplied".into(),
                        evidence: "not applied yet: its images were still being loaded".into(),
                        waiting: None,
                    }],
                    ..Diagnosis::default()
                }),
            });
        }
    }
    let start = Instant::now();
    let deadline = ctx.deadline.min(start + component.timeout);
    let name = component.name.clone();
    let lane = ctx.lane;
    let events = ctx.events;
    let namespace = lane.namespace_of(component).to_owned();
    let objects = manifests::render(component, lane, ctx.images)?;
    let (crds, rest) = manifests::crds_first(objects);
    let (rest, namespaces) = namespaces_first(rest, &namespace);
    let spec = WaitSpec {
        tolerance: tolerance(component),
        rules: rules_for(ctx.project, lane, component),
        settle: component.settle,
        endpoints: ctx.endpoints,
        clock: ctx.clock,
    };
    let mut applied = Vec::new();
    if !rest.is_empty() {
        // Objects that carry their own namespace (kustomize's `namespace:`)
        // keep it; each namespace they name is made unless the component
        // brings its Namespace object itself (applied first, below), whose
        // labels a bare apply would strip.
        for ns in &namespaces {
            ensure_namespace(&ctx.applier, &name, ns).await?;
        }
        // A bare Pod is refused until the namespace's `default` account (and,
        // before 1.24, its token) exists; controllers retry by themselves.
        // Should it not come, the apply says why.
        let bare_pods = rest
            .iter()
            .any(|o| o.types.as_ref().is_some_and(|t| t.kind == "Pod"));
        if bare_pods {
            let _ =
                crate::k8s::namespaces::wait_usable(ctx.client, &namespace, NAMESPACE_WAIT).await;
        }
    }
    let mut pods = Vec::new();
    let mut waiters = Vec::new();
    // What the live display is told: changes, a few a second at most.
    let mut live = crate::throttle::Changes::new(crate::throttle::PROGRESS_INTERVAL);
    for batch in [crds, rest] {
        if batch.is_empty() {
            continue;
        }
        let mut wave = Vec::new();
        for object in batch {
            let types = object.types.clone().unwrap_or_default();
            let a = match ctx.applier.apply(object, &namespace).await {
                Ok(a) => a,
                // `exclude_unserved:` — one of the API versions a manifest
                // carries for several Kubernetes generations.
                Err(ApplyError::UnknownKind { .. })
                    if crate::render::exclude::any_matches(
                        &component.exclude_unserved,
                        &types.api_version,
                        &types.kind,
                    ) =>
                {
                    send(
                        events,
                        DeployEvent::LeftOut {
                            component: name.clone(),
                            object: format!("{} ({})", types.kind, types.api_version),
                        },
                    );
                    continue;
                }
                Err(source) => {
                    return Err(DeployError::Apply {
                        component: name.clone(),
                        source: Box::new(source),
                    });
                }
            };
            send(
                events,
                DeployEvent::Applied {
                    component: name.clone(),
                    object: a.resource_ref().to_string(),
                },
            );
            wave.push(a);
        }
        let mut waiter = Waiter::start(ctx.client, &wave, spec.clone());
        let mut last_unready: Vec<String> = Vec::new();
        let end = waiter
            .until_ready(deadline, &mut cutoff, |p| {
                if let WaitProgress::Live(state) = &p
                    && let Some(state) =
                        live.offer((*state).clone(), state.urgent(), std::time::Instant::now())
                {
                    send(
                        events,
                        DeployEvent::Live {
                            component: name.clone(),
                            state,
                        },
                    );
                }
                if let WaitProgress::Judged(j) = &p {
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
                }
                forward_progress(events, &name, &p);
            })
            .await;
        conclude(ctx.client, &name, deadline - start, &end, &mut pods).await?;
        for (index, note) in &end.judgement.notes {
            send(
                events,
                DeployEvent::Noted {
                    component: name.clone(),
                    object: end.snapshot.objects[*index].resource.to_string(),
                    note: note.clone(),
                },
            );
        }
        applied.extend(wave);
        if waiter.has_pods() {
            waiters.push(waiter);
        }
    }
    if let Some(h) = &component.health {
        // `{{host_port.N}}` resolves through this lane's kind config;
        // validation made sure the lane maps every port the URL names.
        let url = lane.resolve_url(&h.url).unwrap_or_else(|_| h.url.clone());
        send(
            events,
            DeployEvent::Live {
                component: name.clone(),
                state: progress::LiveState::waiting(
                    None,
                    format!("Ready; health URL {url} not answering 2xx yet"),
                    ctx.clock.now(),
                ),
            },
        );
        // The component stays watched while its URL is asked: a crash now
        // is its verdict, not a health timeout.
        let healthy = wait_healthy_or_fail(&name, &url, h.timeout, deadline, events);
        tokio::pin!(healthy);
        let down = async {
            match waiters.last_mut() {
                Some(w) => {
                    w.until_doomed(|p| forward_progress(events, &name, &p))
                        .await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = &mut healthy => result?,
            end = down => return Err(after_ready(ctx.client, &name, &end).await),
            () = cutoff.reached() => {
                return Err(DeployError::Stopped {
                    component: name.clone(),
                    diagnosis: Box::new(Diagnosis {
                        component: name.clone(),
                        standing: Standing::InProgress,
                        rows: vec![crate::readiness::table::UnreadyRow {
                            resource: url.clone(),
                            state: crate::readiness::State::InProgress,
                            reason: "NotHealthy".into(),
                            evidence: "its objects are Ready; the health URL had not answered 2xx yet".into(),
                            waiting: None,
                        }],
                        ..Diagnosis::default()
                    }),
                });
            }
        }
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
    Ok(Deployed {
        report: ComponentReport {
            name,
            applied,
            elapsed,
            pods,
        },
        waiters,
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
/// with its diagnosis. `budget` is the time the component had.
async fn conclude(
    client: &Client,
    component: &str,
    budget: Duration,
    end: &WaitEnd,
    pods: &mut Vec<(String, PodTimeline)>,
) -> Result<(), DeployError> {
    let standing = match end.ended {
        Ended::Ready => {
            for tracked in &end.snapshot.objects {
                for pod in &tracked.pods {
                    pods.push((pod_name(pod), pod_timeline(pod)));
                }
            }
            return Ok(());
        }
        Ended::Failed => Standing::Doomed,
        Ended::Deadline => Standing::TimedOut,
        Ended::Stopped => Standing::InProgress,
    };
    let diagnosis = Box::new(diagnose_end(client, component, end, standing).await);
    let component = component.to_owned();
    Err(match end.ended {
        Ended::Deadline => DeployError::Deadline {
            component,
            after: budget,
            diagnosis,
        },
        Ended::Stopped => DeployError::Stopped {
            component,
            diagnosis,
        },
        _ => DeployError::Failed {
            component,
            diagnosis,
        },
    })
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The diagnosis of a wait's end: its judgement's evidence, plus what the
/// wait saw (flaps, how long readiness held, failing watches).
pub async fn diagnose_end(
    client: &Client,
    component: &str,
    end: &WaitEnd,
    standing: Standing,
) -> Diagnosis {
    let mut d = diagnose_at(client, component, &end.judgement, &end.snapshot, end.at).await;
    d.standing = standing;
    d.flaps = end.flaps.iter().map(|f| f.describe()).collect();
    d.holding = end.holding.map(human);
    d.watch_failures = end.watch_failures.iter().map(|w| w.describe()).collect();
    d
}

/// Fetches the evidence for a judgement: each verdict with its container's
/// events and logs, or, when there is no verdict, the unready pods' (with
/// the step each waits on and its container's last log line).
pub async fn diagnose(
    client: &Client,
    component: &str,
    judgement: &Judgement,
    snapshot: &Snapshot,
) -> Diagnosis {
    diagnose_at(
        client,
        component,
        judgement,
        snapshot,
        crate::readiness::Timestamp::now(),
    )
    .await
}

/// [`diagnose`], with the time the judgement was made at.
pub async fn diagnose_at(
    client: &Client,
    component: &str,
    judgement: &Judgement,
    snapshot: &Snapshot,
    now: crate::readiness::Timestamp,
) -> Diagnosis {
    let mut findings = Vec::new();
    for v in judgement.verdicts.iter().take(MAX_FINDINGS) {
        let evidence = fetch_pod_evidence(client, &v.pod, Some(&v.verdict)).await;
        findings.push(Finding {
            pod: pod_name(&v.pod),
            verdict: Some(v.verdict.clone()),
            waiting: None,
            evidence,
        });
    }
    let mut rows = judgement.rows.clone();
    if findings.is_empty() {
        let unready = snapshot
            .objects
            .iter()
            .zip(&judgement.statuses)
            .filter(|(_, s)| !s.is_ready())
            .flat_map(|(t, _)| t.pods.iter().map(move |p| (t, p)))
            .filter(|(_, p)| !rules::pod(p).is_ready() && !rules::is_job_pod(p));
        for (tracked, pod) in unready.take(MAX_FINDINGS) {
            let evidence = fetch_pod_evidence(client, pod, None).await;
            let wait = crate::readiness::waiting::waiting_on(pod, now);
            let waiting = wait.as_ref().map(|w| {
                let line = w
                    .container
                    .as_ref()
                    .and_then(|c| last_log_line(&evidence, c));
                match line {
                    Some(line) => format!("{} (log: {line})", w.what),
                    None => w.what.clone(),
                }
            });
            // The row names the same step: give it the log line too.
            if let (Some(w), Some(with_log)) = (&wait, &waiting) {
                let prefix = if tracked.resource.kind == "Pod" {
                    String::new()
                } else {
                    format!("pod {}: ", pod.metadata.name.as_deref().unwrap_or_default())
                };
                let resource = tracked.resource.to_string();
                let plain = format!("{prefix}{}", w.what);
                for row in rows.iter_mut().filter(|r| r.resource == resource) {
                    if row.waiting.as_deref() == Some(plain.as_str()) {
                        row.evidence = row.evidence.replace(&plain, &format!("{prefix}{with_log}"));
                        row.waiting = Some(format!("{prefix}{with_log}"));
                    }
                }
            }
            findings.push(Finding {
                pod: pod_name(pod),
                verdict: None,
                waiting,
                evidence,
            });
        }
    }
    Diagnosis {
        component: component.to_owned(),
        rows,
        findings,
        notes: judge::notes(judgement, snapshot),
        ..Diagnosis::default()
    }
}

/// The last non-empty line of a container's current log, shortened.
fn last_log_line(
    evidence: &crate::k8s::evidence::PodEvidence,
    container: &crate::readiness::classify::ContainerRef,
) -> Option<String> {
    let log = evidence
        .logs
        .iter()
        .find(|l| !l.previous && l.container == container.name && l.init == container.init)?;
    let LogText::Text(text) = &log.text else {
        return None;
    };
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    Some(if line.chars().count() > 120 {
        format!("{}…", line.chars().take(120).collect::<String>())
    } else {
        line.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, namespace: Option<&str>) -> kube::api::DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
        }))
        .unwrap()
    }

    #[test]
    fn namespaces_go_first_and_only_those_the_component_does_not_bring_are_made() {
        let objects = vec![
            object("ConfigMap", "a", Some("system")),
            object("ConfigMap", "b", None),
            object("Namespace", "system", None),
            object("Secret", "c", Some("other")),
        ];
        let (ordered, needed) = namespaces_first(objects, "lane");
        let names: Vec<_> = ordered
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["system", "a", "b", "c"]);
        // `system` comes with its Namespace object (labels and all).
        assert_eq!(needed, ["lane", "other"]);
        let (_, needed) = namespaces_first(vec![object("Namespace", "lane", None)], "lane");
        assert!(needed.is_empty());
    }
}
