//! Deploying a lane: server-side apply, wave by wave, each wave started
//! once the earlier waves' components are Ready, while their readiness is
//! still asked to hold (their settle windows) — and when it is not, why.
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

use futures_util::FutureExt as _;
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
use wait::{Clock, CutOff, Ended, EndpointSource, WaitEnd, WaitProgress, WaitSpec, Waiter};

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
    /// The component is Ready, and that held for its settle window.
    ComponentReady {
        /// The component.
        component: String,
        /// From its first apply to settled (health included).
        elapsed: Duration,
        /// From its first apply to Ready (health included): when what
        /// depends on it could start.
        ready: Duration,
        /// How late the harness saw its pods Ready (none without a reading
        /// of the server's clock, or without pods that turn Ready: CRDs, a
        /// Job).
        lag: Option<wait::Lag>,
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
    /// A component's readiness did not hold for its settle window after
    /// components that depend on it had started.
    #[error("{verdict}; started on top of it: {}; no more were started", .started.join(", "))]
    Unsettled {
        /// The component's own verdict.
        verdict: Box<DeployError>,
        /// The components applied that depend on it.
        started: Vec<String>,
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
            DeployError::Unsettled { verdict, .. } => verdict.diagnosis(),
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
            DeployError::Unsettled { verdict, .. } => verdict.component(),
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
            DeployError::Unsettled { verdict, .. } => verdict.standing(),
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
            DeployError::Unsettled { verdict, .. } => verdict.is_timeout(),
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
            DeployError::Unsettled { verdict, .. } => verdict.exit(),
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
            DeployError::Unsettled { verdict, .. } => verdict.fix(),
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
    /// The namespaces this deploy has applied: the next component in one
    /// does not apply it again.
    namespaces: std::sync::Mutex<std::collections::HashSet<String>>,
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
/// wave starts when every component of the earlier waves is Ready; their
/// settle windows run on alongside it, and the deploy ends when every one
/// has held. A component whose window does not hold fails the deploy with
/// its verdict ([`DeployError::Unsettled`] when anything had started on
/// it). The components of one wave are applied and waited in parallel. `images` maps
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
    let (server, endpoints) = tokio::join!(
        crate::k8s::server_time::ServerTime::ask(client),
        EndpointSource::discover(client)
    );
    let clock = clock.with_server(server);
    let ctx = Ctx {
        clock,
        client,
        project,
        applier: Applier::new(client.clone()),
        lane,
        images,
        events: &events,
        deadline,
        endpoints,
        namespaces: Default::default(),
    };
    let started = Instant::now();
    let components = crate::plan::closure(project, &lane.components);
    let waves = crate::plan::waves(project, &components);
    let mut report = DeployReport::default();
    let mut guards: Vec<Guard> = Vec::new();
    // Every component started, until its settle window has held: a wave
    // starts when the earlier ones are Ready, and their windows run on.
    let mut running: FuturesUnordered<
        futures_util::future::LocalBoxFuture<'_, (String, Result<Deployed, DeployError>)>,
    > = FuturesUnordered::new();
    // What was applied, for naming what stands on a component whose
    // readiness did not hold.
    let mut launched: Vec<String> = Vec::new();
    for (i, wave) in waves.iter().enumerate() {
        send(
            &events,
            DeployEvent::WaveStarted {
                wave: i + 1,
                components: wave.clone(),
            },
        );
        let (cut, cutoff) = CutOff::pair();
        let (tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
        for name in wave {
            let component = &project.components[name.as_str()];
            running.push(
                deploy_component(&ctx, component, cutoff.clone(), &ready, tx.clone()).boxed_local(),
            );
        }
        drop(tx);
        // Where each of the wave's components stands: Ready (for how long
        // it took), or its error.
        let mut stands: IndexMap<&str, Option<Result<Duration, DeployError>>> =
            wave.iter().map(|n| (n.as_str(), None)).collect();
        // An earlier wave's component that went down after its window, or
        // whose readiness did not hold through it.
        let mut went_down = None;
        let mut unsettled = None;
        let calm = |d: &Option<_>, u: &Option<_>| d.is_none() && u.is_none();
        while stands.values().any(Option::is_none) {
            tokio::select! {
                // A component says it is Ready before its window starts, so
                // that word is always read before its end: the wave's list
                // says how long it took to be Ready, not to settle.
                biased;
                Some((name, took)) = ready_rx.recv() => {
                    if let Some(slot) = stands.get_mut(name.as_str()) {
                        slot.get_or_insert(Ok(took));
                    }
                }
                Some((name, result)) = running.next() => match stands.get_mut(name.as_str()) {
                    Some(slot) => match result {
                        Ok(d) => {
                            slot.get_or_insert(Ok(d.report.elapsed));
                            keep_watching(&mut guards, &mut report, d);
                        }
                        Err(e) => {
                            // The others get a short window for their verdicts.
                            cut.cut_at(Instant::now() + VERDICT_WINDOW);
                            *slot = Some(Err(e));
                        }
                    },
                    None => match result {
                        Ok(d) => keep_watching(&mut guards, &mut report, d),
                        Err(e) if calm(&went_down, &unsettled) => {
                            // Its readiness did not hold: start no more on it.
                            cut.cut_at(Instant::now());
                            unsettled = Some((name, e));
                        }
                        Err(_) => {}
                    },
                },
                down = watch_guards(&mut guards, &events), if calm(&went_down, &unsettled) => {
                    // Its dependents wait on it in vain: stop them now.
                    cut.cut_at(Instant::now());
                    went_down = Some(down);
                }
            }
        }
        let results: Vec<(String, Result<Duration, DeployError>)> = stands
            .into_iter()
            .map(|(name, stand)| (name.to_owned(), stand.expect("every component stands")))
            .collect();
        launched.extend(
            results
                .iter()
                .filter(|(_, r)| !not_applied(r))
                .map(|(name, _)| name.clone()),
        );
        if let Some((name, error)) = unsettled {
            report_verdict(&events, &name, &Err(&error));
            for (other, result) in &results {
                report_verdict(&events, other, &result.as_ref().copied());
            }
            return Err(on_top(project, &components, &launched, &name, error));
        }
        let mut failures = Vec::new();
        if let Some((component, end)) = went_down {
            let error = after_ready(client, &component, &end).await;
            report_verdict(&events, &component, &Err(&error));
            failures.push(error);
        }
        let any_failed = !failures.is_empty() || results.iter().any(|(_, r)| r.is_err());
        if any_failed {
            let mut ready = Vec::new();
            for (name, result) in results {
                report_verdict(&events, &name, &result.as_ref().copied());
                match result {
                    Ok(_) => ready.push(name),
                    Err(e) => failures.push(e),
                }
            }
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
    }
    // The suites start only once every window has held.
    while !running.is_empty() {
        tokio::select! {
            Some((name, result)) = running.next() => match result {
                Ok(d) => keep_watching(&mut guards, &mut report, d),
                Err(error) => {
                    report_verdict(&events, &name, &Err(&error));
                    return Err(on_top(project, &components, &launched, &name, error));
                }
            },
            (component, end) = watch_guards(&mut guards, &events) => {
                let error = after_ready(client, &component, &end).await;
                report_verdict(&events, &component, &Err(&error));
                return Err(error);
            }
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

/// A settled component: in the report, and watched until the suites start.
fn keep_watching(guards: &mut Vec<Guard>, report: &mut DeployReport, d: Deployed) {
    guards.extend(d.waiters.into_iter().map(|waiter| Guard {
        component: d.report.name.clone(),
        waiter,
    }));
    report.components.push(d.report);
}

/// The error of `failed`, whose readiness did not hold, naming the
/// components that depend on it and had already been applied.
fn on_top(
    project: &Project,
    components: &[String],
    launched: &[String],
    failed: &str,
    error: DeployError,
) -> DeployError {
    let started: Vec<String> = crate::plan::dependents(project, components, failed)
        .into_iter()
        .filter(|c| launched.contains(c))
        .collect();
    if started.is_empty() {
        return error;
    }
    DeployError::Unsettled {
        verdict: Box::new(error),
        started,
    }
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

/// Deploys one component: applies it once `ready(component)` is, says on
/// `started` when its objects are Ready (what depends on it may start
/// then), and waits out its settle window.
async fn deploy_component<'a, F: Future<Output = ()>>(
    ctx: &Ctx<'a>,
    component: &Component,
    cutoff: CutOff,
    ready: &impl Fn(&Component) -> F,
    started: UnboundedSender<(String, Duration)>,
) -> (String, Result<Deployed, DeployError>) {
    match start_component(ctx, component, cutoff, ready).await {
        Ok(s) => {
            let _ = started.send((component.name.clone(), s.ready));
            settle_component(ctx.client, s).await
        }
        Err(e) => (component.name.clone(), Err(e)),
    }
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

/// What the waits of one component tell the display: what is unready,
/// where it stands (a few times a second at most), flaps and failing
/// watches. Kept from the first wait to the end of its settle window.
struct Reporter<'a> {
    name: String,
    events: &'a UnboundedSender<DeployEvent>,
    live: crate::throttle::Changes<progress::LiveState>,
    last_unready: Vec<String>,
}

impl<'a> Reporter<'a> {
    fn new(name: &str, events: &'a UnboundedSender<DeployEvent>) -> Self {
        Self {
            name: name.to_owned(),
            events,
            live: crate::throttle::Changes::new(crate::throttle::PROGRESS_INTERVAL),
            last_unready: Vec::new(),
        }
    }

    fn progress(&mut self, p: WaitProgress<'_>) {
        let (name, events) = (&self.name, self.events);
        if let WaitProgress::Live(state) = &p
            && let Some(state) =
                self.live
                    .offer((*state).clone(), state.urgent(), std::time::Instant::now())
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
            if unready != self.last_unready && j.outcome == Outcome::Pending {
                send(
                    events,
                    DeployEvent::Waiting {
                        component: name.clone(),
                        unready: unready.clone(),
                    },
                );
            }
            self.last_unready = unready;
        }
        forward_progress(events, name, &p);
    }
}

/// A component whose objects are Ready (and whose health URL answered):
/// what depends on it may start. Its settle window still runs, in
/// [`settle_component`].
struct Started<'a> {
    reporter: Reporter<'a>,
    start: Instant,
    deadline: Instant,
    /// From its first apply to Ready.
    ready: Duration,
    applied: Vec<AppliedObject>,
    pods: Vec<(String, PodTimeline)>,
    /// The waits of its batches with pods; the last one's window may
    /// still run.
    waiters: Vec<Waiter>,
    /// How late the harness saw its last batch Ready.
    lag: Option<wait::Lag>,
}

/// A component's error, stopped before anything of it was applied.
fn not_applied<T>(result: &Result<T, DeployError>) -> bool {
    matches!(result, Err(DeployError::Stopped { diagnosis, .. })
        if diagnosis.rows.first().is_some_and(|r| r.reason == NOT_APPLIED))
}

const NOT_APPLIED: &str = "NotApplied";

/// Applies one component once `ready(component)` is, and waits until its
/// objects are Ready (then healthy). Its settle window has started and is
/// not waited out here: that is [`settle_component`]'s.
async fn start_component<'a, F: Future<Output = ()>>(
    ctx: &Ctx<'a>,
    component: &Component,
    mut cutoff: CutOff,
    ready: &impl Fn(&Component) -> F,
) -> Result<Started<'a>, DeployError> {
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
                        reason: NOT_APPLIED.into(),
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
        let applied = |ns: &String| {
            ctx.namespaces
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(ns)
        };
        for ns in namespaces.iter().filter(|ns| !applied(ns)) {
            ensure_namespace(&ctx.applier, &name, ns).await?;
            ctx.namespaces
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(ns.clone());
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
    let mut lag = None;
    let mut reporter = Reporter::new(&name, events);
    let batches: Vec<_> = [crds, rest].into_iter().filter(|b| !b.is_empty()).collect();
    let last = batches.len().saturating_sub(1);
    for (i, batch) in batches.into_iter().enumerate() {
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
        // The last batch is what dependents wait on: they start once it is
        // Ready, and its window runs on in `settle_component`. An earlier
        // one (the CRDs) is waited out whole: the rest is applied onto it.
        let progress = |p: WaitProgress<'_>| reporter.progress(p);
        let end = if i == last {
            waiter.until_holding(deadline, &mut cutoff, progress).await
        } else {
            waiter.until_ready(deadline, &mut cutoff, progress).await
        };
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
        lag = waiter.lag();
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
    Ok(Started {
        reporter,
        start,
        deadline,
        ready: start.elapsed(),
        applied,
        pods,
        waiters,
        lag,
    })
}

/// Waits out a started component's settle window: Ok when its readiness
/// held (the waiters are returned to keep watching it), its verdict when it
/// did not.
async fn settle_component(
    client: &Client,
    mut started: Started<'_>,
) -> (String, Result<Deployed, DeployError>) {
    let name = started.reporter.name.clone();
    let result = async {
        let budget = started.deadline - started.start;
        for waiter in &mut started.waiters {
            let reporter = &mut started.reporter;
            let end = waiter
                .until_ready(started.deadline, &mut CutOff::never(), |p| {
                    reporter.progress(p)
                })
                .await;
            conclude(client, &name, budget, &end, &mut Vec::new()).await?;
        }
        let events = started.reporter.events;
        for (pod, timeline) in &started.pods {
            send(
                events,
                DeployEvent::PodTimeline {
                    component: name.clone(),
                    pod: pod.clone(),
                    timeline: timeline.clone(),
                },
            );
        }
        let elapsed = started.start.elapsed();
        send(
            events,
            DeployEvent::ComponentReady {
                component: name.clone(),
                elapsed,
                ready: started.ready,
                lag: started.lag,
            },
        );
        Ok(Deployed {
            report: ComponentReport {
                name: name.clone(),
                applied: started.applied,
                elapsed,
                pods: started.pods,
            },
            waiters: started.waiters,
        })
    }
    .await;
    (name, result)
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
