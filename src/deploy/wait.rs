//! Waiting for a component: watches, a settle window, a deadline.
//!
//! Every applied object that is not Ready in the apply response is watched
//! (`metadata.name=` field selector), and so is every object whose status
//! its controller writes after the apply (autoscalers, disruption budgets,
//! quotas: a verdict or a note may come); so are the pods of every workload
//! (by the workload's label selector), the endpoints of Services (the
//! EndpointSlice version the server serves, found through discovery, or the
//! core Endpoints where it serves none: 1.20 serves only `v1beta1`), the
//! Services that webhook configurations call and their endpoints (in
//! whatever namespace they are), and the pod events of the component's
//! namespaces. What to watch for a kind is [`crate::readiness::kinds`]'
//! table. Each change re-judges the snapshot ([`super::judge`]), so Ready,
//! Failed and doomed are noticed as soon as the API server says so: a
//! webhook's Service getting a ready endpoint is an event, not a poll.
//!
//! Ready must hold. When the objects are first Ready and every pod is, the
//! waiter takes a [`Baseline`] of the pods and arms a timer for the
//! component's settle window; the component is Ready when the timer fires
//! and nothing changed since the baseline (no restart, no new termination,
//! no pod that lost Ready). A change ends the window: a restart feeds the
//! doomed classification under the component's tolerance (a crash loop or
//! an OOM kill, with the exit code and the logs), anything else waits for
//! Ready again. After Ready the same [`Waiter`] keeps watching
//! ([`Waiter::until_doomed`]) until the suites start, so a component that
//! goes down while later waves deploy fails the deploy with its verdict.
//!
//! Some verdicts are a matter of time alone (a pod Unschedulable for longer
//! than the schedule window, a crash within the tolerance's grace that is no
//! longer forgiven once it ends): a one-second clock re-judges the *cached*
//! objects for those. Neither it nor the settle timer asks the API server
//! anything. A watch that keeps failing is reported as it happens and in the
//! diagnosis, never retried in silence. The deadline is explicit; when it
//! runs out the caller gets the last judgement, never a bare "timed out".

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, SelectAll};
use k8s_openapi::api::core::v1::{Endpoints, Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Config};
use kube::{Api, Client, Resource};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use super::apply::AppliedObject;
use super::judge::{Judgement, Outcome, Restarted, Rules, Snapshot, Tracked, judge_restarted};
use super::progress::{LiveState, live_state};
use crate::k8s::server_time::ServerTime;
use crate::readiness::classify::Tolerance;
use crate::readiness::kinds::{self, Pods, Watch};
use crate::readiness::rules::called_services;
use crate::readiness::settle::{self, Baseline};
use crate::readiness::{Timestamp, human};

/// How often cached objects are re-judged for time-only verdicts.
pub const CLOCK: Duration = Duration::from_secs(1);

/// Consecutive failures of one watch before they are reported: a single
/// reconnect (an expired resourceVersion, a closed connection) is routine.
pub const WATCH_FAILURES_REPORTED: u32 = 3;

/// The time judgements are made at: the wall clock when the wait started
/// plus the (tokio) time since, so that replayed captures can be judged at
/// the time they were captured, under tokio's paused clock.
///
/// It may also carry a reading of the API server's clock
/// ([`Clock::with_server`]): only then is readiness that already held by
/// the pods' own record credited to the settle window.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Timestamp,
    at: Instant,
    server: Option<ServerTime>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Self::starting_at(Timestamp::now())
    }

    /// A clock that reads `origin` now and advances with tokio's time.
    pub fn starting_at(origin: Timestamp) -> Self {
        Self {
            origin,
            at: Instant::now(),
            server: None,
        }
    }

    /// The same clock, with a reading of the API server's.
    pub fn with_server(self, server: Option<ServerTime>) -> Self {
        Self { server, ..self }
    }

    /// The reading of the API server's clock, if there is one.
    pub fn server(&self) -> Option<ServerTime> {
        self.server
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        let elapsed = k8s_openapi::jiff::SignedDuration::try_from(self.at.elapsed())
            .unwrap_or(k8s_openapi::jiff::SignedDuration::ZERO);
        self.origin.saturating_add(elapsed).unwrap_or(self.origin)
    }
}

/// Where a Service's endpoints are read from: the EndpointSlice version the
/// server serves, or the core Endpoints where it serves none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointSource {
    /// `discovery.k8s.io/v1` (1.21 and later).
    SlicesV1,
    /// `discovery.k8s.io/v1beta1` (1.17 to 1.24): read as v1 (the fields
    /// readiness looks at are the same).
    SlicesV1beta1,
    /// Core `v1` Endpoints.
    Endpoints,
}

impl EndpointSource {
    /// Asks discovery which EndpointSlice version the server serves. A
    /// server that cannot say (or serves neither) is read through the core
    /// Endpoints, which every version serves.
    pub async fn discover(client: &Client) -> Self {
        for (api_version, source) in [
            ("discovery.k8s.io/v1", EndpointSource::SlicesV1),
            ("discovery.k8s.io/v1beta1", EndpointSource::SlicesV1beta1),
        ] {
            if let Ok(list) = client.list_api_group_resources(api_version).await
                && list.resources.iter().any(|r| r.name == "endpointslices")
            {
                return source;
            }
        }
        EndpointSource::Endpoints
    }

    fn describe(self) -> &'static str {
        match self {
            EndpointSource::SlicesV1 => "EndpointSlices (discovery.k8s.io/v1)",
            EndpointSource::SlicesV1beta1 => "EndpointSlices (discovery.k8s.io/v1beta1)",
            EndpointSource::Endpoints => "Endpoints",
        }
    }
}

fn v1beta1_slices() -> ApiResource {
    ApiResource {
        group: "discovery.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "discovery.k8s.io/v1beta1".into(),
        kind: "EndpointSlice".into(),
        plural: "endpointslices".into(),
    }
}

/// A `discovery.k8s.io/v1beta1` EndpointSlice read as v1: the same
/// `endpoints[].conditions.ready` and labels; the fields v1 dropped
/// (`topology`) are ignored.
pub fn slice_from_v1beta1(object: &DynamicObject) -> Option<EndpointSlice> {
    let mut value = serde_json::to_value(object).ok()?;
    let map = value.as_object_mut()?;
    map.insert("apiVersion".into(), "discovery.k8s.io/v1".into());
    map.insert("kind".into(), "EndpointSlice".into());
    // `addressType` is required in v1 and always set by the controller.
    map.entry("addressType").or_insert_with(|| "IPv4".into());
    serde_json::from_value(value).ok()
}

/// What a component's wait needs besides its objects.
#[derive(Clone, Debug)]
pub struct WaitSpec {
    /// The component's tolerance.
    pub tolerance: Tolerance,
    /// What the lane file says Ready means for some objects, and what the
    /// cluster provides.
    pub rules: Rules,
    /// How long readiness must hold.
    pub settle: Duration,
    /// Where Services' endpoints are read from.
    pub endpoints: EndpointSource,
    /// The time judgements are made at.
    pub clock: Clock,
}

impl WaitSpec {
    /// A spec with `tolerance`, the default settle window, EndpointSlices
    /// v1 and the system clock.
    pub fn new(tolerance: Tolerance) -> Self {
        Self {
            tolerance,
            rules: Rules::default(),
            settle: crate::config::defaults::SETTLE,
            endpoints: EndpointSource::SlicesV1,
            clock: Clock::system(),
        }
    }

    /// The same with a settle window.
    pub fn settle(self, settle: Duration) -> Self {
        Self { settle, ..self }
    }
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Ready, and it held for the settle window.
    Ready,
    /// An object failed or a pod is doomed.
    Failed,
    /// The deadline ran out first.
    Deadline,
    /// The caller's cut-off came first (another component of the wave failed).
    Stopped,
}

/// A time readiness did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flap {
    /// When it was seen.
    pub at: Timestamp,
    /// How long readiness had held by then.
    pub after: Duration,
    /// What happened, e.g. `container app restarted (restarts 0 → 1; last exit 3, Error)`.
    pub what: String,
}

impl Flap {
    /// One line: `Ready for 2.3s, then container app restarted (...)`.
    pub fn describe(&self) -> String {
        format!("Ready for {}, then {}", human(self.after), self.what)
    }
}

/// A watch that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchFailure {
    /// What it watches, e.g. `EndpointSlices (discovery.k8s.io/v1) of Service ns/db`.
    pub watch: String,
    /// How many times it failed.
    pub failures: u32,
    /// The last error.
    pub error: String,
}

impl WatchFailure {
    /// One line for the output and the diagnosis.
    pub fn describe(&self) -> String {
        format!(
            "watch of {} failed {} time{} (retrying): {}",
            self.watch,
            self.failures,
            if self.failures == 1 { "" } else { "s" },
            self.error
        )
    }
}

/// How a wait ended, with what it saw.
#[derive(Clone, Debug)]
pub struct WaitEnd {
    /// The last judgement.
    pub judgement: Judgement,
    /// The snapshot it was made on (for evidence and timelines).
    pub snapshot: Snapshot,
    /// How it ended.
    pub ended: Ended,
    /// Times readiness did not hold, oldest first.
    pub flaps: Vec<Flap>,
    /// How long readiness had held when the wait ended short of Ready.
    pub holding: Option<Duration>,
    /// Watches that failed while waiting.
    pub watch_failures: Vec<WatchFailure>,
    /// When it ended, by the wait's clock.
    pub at: Timestamp,
}

impl WaitEnd {
    /// Whether the deadline ran out.
    pub fn deadline(&self) -> bool {
        self.ended == Ended::Deadline
    }
}

/// What the waiter reports while it works.
#[derive(Debug)]
pub enum WaitProgress<'a> {
    /// A judgement of the current snapshot.
    Judged(&'a Judgement),
    /// Readiness did not hold.
    Flapped(&'a Flap),
    /// A watch keeps failing (reported after [`WATCH_FAILURES_REPORTED`]
    /// consecutive failures, and again when its error changes).
    WatchFailing(&'a WatchFailure),
    /// Where the component stands, for the live display: after each
    /// judgement (callers pass on the changes).
    Live(&'a LiveState),
}

/// A cut-off for a wait: once its handle sets an instant, the wait ends
/// there with [`Ended::Stopped`]. The components of a wave share one, so
/// that when one fails the others get a short window to reach a verdict.
#[derive(Clone, Debug, Default)]
pub struct CutOff(Option<watch::Receiver<Option<Instant>>>);

/// Sets the cut-off of the waits holding its [`CutOff`]s.
#[derive(Debug)]
pub struct CutOffHandle(watch::Sender<Option<Instant>>);

impl CutOffHandle {
    /// Ends the waits at `at` (an earlier cut-off already set stays).
    pub fn cut_at(&self, at: Instant) {
        self.0.send_if_modified(|current| match current {
            Some(earlier) if *earlier <= at => false,
            _ => {
                *current = Some(at);
                true
            }
        });
    }
}

impl CutOff {
    /// A cut-off that never comes.
    pub fn never() -> Self {
        Self(None)
    }

    /// A cut-off and its handle.
    pub fn pair() -> (CutOffHandle, CutOff) {
        let (tx, rx) = watch::channel(None);
        (CutOffHandle(tx), CutOff(Some(rx)))
    }

    /// Completes at the cut-off, once one is set.
    pub async fn reached(&mut self) {
        let Some(rx) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            let at = *rx.borrow_and_update();
            if let Some(at) = at {
                return tokio::time::sleep_until(at).await;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

// Boxed where large: the stream moves every update.
#[allow(clippy::large_enum_variant)]
enum Change {
    Object(usize, watcher::Event<DynamicObject>),
    Pods(usize, Box<watcher::Event<Pod>>),
    // Each related watch has a cache of its own (the index): one watch's
    // relist must not drop another's objects.
    Slices(usize, watcher::Event<EndpointSlice>),
    Endpoints(usize, watcher::Event<Endpoints>),
    Services(usize, Box<watcher::Event<Service>>),
    Events(watcher::Event<Event>),
}

/// One item of one watch: which watch, and what it said.
struct Update {
    watch: usize,
    /// The watcher's `Init`: it starts every (re)list, so it says nothing
    /// about whether the last attempt worked.
    init: bool,
    change: Result<Change, watcher::Error>,
}

/// A watch cache that swaps in a relisted set only when the relist is
/// complete, so a reconnect never shows an empty world in between.
struct Cache<K> {
    items: BTreeMap<String, K>,
    relist: Option<BTreeMap<String, K>>,
    /// Whether a first complete list has arrived.
    synced: bool,
}

impl<K: Resource> Cache<K> {
    fn new() -> Self {
        Self {
            items: BTreeMap::new(),
            relist: None,
            synced: false,
        }
    }
    fn key(k: &K) -> String {
        let meta = k.meta();
        meta.uid
            .clone()
            .unwrap_or_else(|| format!("{:?}/{:?}", meta.namespace, meta.name))
    }
    fn apply(&mut self, event: watcher::Event<K>) {
        match event {
            watcher::Event::Init => self.relist = Some(BTreeMap::new()),
            watcher::Event::InitApply(k) => {
                let key = Self::key(&k);
                self.relist.get_or_insert_with(BTreeMap::new).insert(key, k);
            }
            watcher::Event::InitDone => {
                if let Some(items) = self.relist.take() {
                    self.items = items;
                }
                self.synced = true;
            }
            watcher::Event::Apply(k) => {
                self.items.insert(Self::key(&k), k);
            }
            watcher::Event::Delete(k) => {
                self.items.remove(&Self::key(&k));
            }
        }
    }
}

/// Every object of several caches.
fn all_items<K: Clone>(caches: &[Cache<K>]) -> Vec<K> {
    caches
        .iter()
        .flat_map(|c| c.items.values().cloned())
        .collect()
}

/// The same watch event about another type.
fn map_event<A, B>(
    event: watcher::Event<A>,
    f: impl Fn(A) -> Option<B>,
) -> Option<watcher::Event<B>> {
    Some(match event {
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
        watcher::Event::InitApply(a) => watcher::Event::InitApply(f(a)?),
        watcher::Event::Apply(a) => watcher::Event::Apply(f(a)?),
        watcher::Event::Delete(a) => watcher::Event::Delete(f(a)?),
    })
}

/// The label selector of a workload, as a query string: its `spec.selector`
/// as [`kinds`]' table says it has one (the server fills a Job's). `None`
/// for kinds without pods.
pub fn pod_selector(object: &Value) -> Option<String> {
    let text = match kinds::of_value(object)?.pods {
        Pods::Selector => {
            let selector: LabelSelector =
                serde_json::from_value(object.pointer("/spec/selector")?.clone()).ok()?;
            kube::core::Selector::try_from(selector).ok()?.to_string()
        }
        Pods::MapSelector => {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(object.pointer("/spec/selector")?.clone()).ok()?;
            kube::core::Selector::from_iter(labels).to_string()
        }
        Pods::None | Pods::Itself => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// How the waiter treats an applied object: its kind's row of [`kinds`]'
/// table (a kind it does not know is watched until Ready, and has no pods).
fn treat(applied: &AppliedObject) -> (Pods, Watch) {
    kinds::of(&applied.api_version, &applied.kind)
        .map_or((Pods::None, Watch::UntilReady), |k| (k.pods, k.watch))
}

/// `object` as JSON with `apiVersion` and `kind` filled from its resource:
/// LIST responses leave them out of the items.
pub fn typed_value(object: &DynamicObject, applied: &AppliedObject) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(applied.api_version.clone()));
        map.entry("kind")
            .or_insert_with(|| Value::String(applied.kind.clone()));
    }
    value
}

fn watch_config() -> Config {
    // Bookmarks keep a reconnect from relisting everything.
    Config::default()
}

/// One watch's failures so far.
struct WatchState {
    what: String,
    failures: u32,
    consecutive: u32,
    last_error: Option<String>,
    reported: Option<String>,
}

/// The watches of one component and what they have shown: a wait that can
/// be continued after Ready.
pub struct Waiter {
    objects: Vec<AppliedObject>,
    spec: WaitSpec,
    snapshot: Snapshot,
    streams: SelectAll<BoxStream<'static, Update>>,
    watches: Vec<WatchState>,
    pods: Vec<Cache<Pod>>,
    /// Which objects' pods are watched by selector (their cache must have
    /// listed once before readiness can start).
    pod_watched: Vec<bool>,
    slices: Vec<Cache<EndpointSlice>>,
    endpoints: Vec<Cache<Endpoints>>,
    services: Vec<Cache<Service>>,
    /// Services (namespace, name) whose endpoints, and whose objects, are
    /// watched already.
    endpoints_of: std::collections::BTreeSet<(String, String)>,
    services_of: std::collections::BTreeSet<(String, String)>,
    events: Cache<Event>,
    flaps: Vec<Flap>,
    /// Since when readiness holds (`None` while it does not).
    holding: Option<Instant>,
    /// The pods when readiness last started: restarts since count as
    /// restarts after Ready, also once the window they broke has ended
    /// (the kubelet reports the exit and the restart in separate updates).
    baseline: Option<Baseline>,
    clock: tokio::time::Interval,
    /// When the wait started, and how late it first saw readiness.
    started: Instant,
    lag: Option<Lag>,
}

/// How long after a component's pods turned Ready the harness saw it: its
/// own detection lag, bounded from both sides because the pods' transition
/// times and the server's `Date` are to the second. When the pods were
/// Ready before the wait began (a second `up`), the lag counts from the
/// wait's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lag {
    /// The lag was at least this.
    pub at_least: Duration,
    /// The lag was at most this.
    pub at_most: Duration,
}

impl Lag {
    /// The lag of seeing pods Ready whose latest `Ready` transition is
    /// stamped `ready`, when the server's clock reads at least `now`, by a
    /// wait that started `watched` ago. Both stamps are to the second; a
    /// transition before the wait began counts from its start.
    pub fn bounds(ready: Timestamp, now: Timestamp, watched: Duration) -> Self {
        let since = Duration::try_from(now.duration_since(ready)).unwrap_or_default();
        let second = Duration::from_secs(1);
        Self {
            at_least: since.saturating_sub(second).min(watched),
            at_most: (since + second).min(watched),
        }
    }
}

impl Waiter {
    /// Starts watching `objects` (as the apply responses show them). Objects
    /// Ready in their apply response are not watched, unless they have pods
    /// (a Deployment re-applied unchanged is Ready at once, and must still
    /// hold) or their controller writes a status later ([`Watch::Status`]).
    pub fn start(client: &Client, objects: &[AppliedObject], spec: WaitSpec) -> Self {
        let snapshot = Snapshot {
            objects: objects
                .iter()
                .map(|o| {
                    let object = typed_value(&o.object, o);
                    // A Pod is its own pod, as the apply response shows it.
                    let pods = if treat(o).0 == Pods::Itself {
                        serde_json::from_value(object.clone()).into_iter().collect()
                    } else {
                        Vec::new()
                    };
                    Tracked {
                        resource: o.resource_ref(),
                        object: Some(object),
                        pods,
                    }
                })
                .collect(),
            ..Snapshot::default()
        };
        let first = judge_restarted(
            &snapshot,
            spec.clock.now(),
            &spec.tolerance,
            &spec.rules,
            &Restarted::new(),
        );
        let mut clock = tokio::time::interval(CLOCK);
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut snapshot = snapshot;
        snapshot.watched_since = Some(spec.clock.now());
        let mut waiter = Self {
            objects: objects.to_vec(),
            spec,
            snapshot,
            streams: SelectAll::new(),
            watches: Vec::new(),
            pods: objects.iter().map(|_| Cache::new()).collect(),
            pod_watched: vec![false; objects.len()],
            slices: Vec::new(),
            endpoints: Vec::new(),
            services: Vec::new(),
            endpoints_of: Default::default(),
            services_of: Default::default(),
            events: Cache::new(),
            flaps: Vec::new(),
            holding: None,
            baseline: None,
            clock,
            started: Instant::now(),
            lag: None,
        };
        let mut namespaces = std::collections::BTreeSet::new();
        for (index, applied) in objects.iter().enumerate() {
            let value = waiter.snapshot.objects[index]
                .object
                .clone()
                .unwrap_or_default();
            let (pods, watch) = treat(applied);
            let selector = pod_selector(&value);
            if first.statuses[index].is_ready() && pods == Pods::None && watch != Watch::Status {
                continue;
            }
            let fields = format!("metadata.name={}", applied.name);
            let what = format!("{}", applied.resource_ref());
            let stream = watcher::watcher(applied.api(client), watch_config().fields(&fields))
                .default_backoff();
            waiter.watch(what, stream, move |e| Change::Object(index, e));
            if watch == Watch::CalledServices {
                for called in called_services(&value) {
                    waiter.watch_service(client, &called.namespace, &called.name);
                    waiter.watch_endpoints(client, &called.namespace, &called.name);
                }
            }
            let Some(ns) = applied.namespace.clone() else {
                continue;
            };
            if let Some(selector) = selector {
                let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
                let stream =
                    watcher::watcher(pods, watch_config().labels(&selector)).default_backoff();
                let what = format!("pods of {} ({selector})", applied.resource_ref());
                waiter.watch(what, stream, move |e| Change::Pods(index, Box::new(e)));
                waiter.pod_watched[index] = true;
                namespaces.insert(ns.clone());
            } else if pods == Pods::Itself {
                namespaces.insert(ns.clone());
            } else if watch == Watch::Endpoints {
                waiter.watch_endpoints(client, &ns, &applied.name);
            }
        }
        for ns in namespaces {
            let events: Api<Event> = Api::namespaced(client.clone(), &ns);
            let stream = watcher::watcher(events, watch_config().fields("involvedObject.kind=Pod"))
                .default_backoff();
            waiter.watch(format!("pod events in {ns}"), stream, Change::Events);
        }
        waiter.snapshot.related_pending = !waiter.related_listed();
        waiter
    }

    /// Whether every watch of Services, Endpoints and EndpointSlices has
    /// listed once.
    fn related_listed(&self) -> bool {
        self.slices.iter().all(|c| c.synced)
            && self.endpoints.iter().all(|c| c.synced)
            && self.services.iter().all(|c| c.synced)
    }

    fn watch<K: Send + 'static>(
        &mut self,
        what: String,
        stream: impl futures_util::Stream<Item = Result<watcher::Event<K>, watcher::Error>>
        + Send
        + 'static,
        change: impl Fn(watcher::Event<K>) -> Change + Send + 'static,
    ) {
        let watch = self.watches.len();
        self.watches.push(WatchState {
            what,
            failures: 0,
            consecutive: 0,
            last_error: None,
            reported: None,
        });
        let stream = stream.map(move |e| Update {
            watch,
            init: matches!(e, Ok(watcher::Event::Init)),
            change: e.map(&change),
        });
        self.streams.push(stream.boxed());
    }

    /// Watches the Service `ns/name` (a webhook's), once.
    fn watch_service(&mut self, client: &Client, ns: &str, service: &str) {
        if !self.services_of.insert((ns.to_owned(), service.to_owned())) {
            return;
        }
        let cache = self.services.len();
        self.services.push(Cache::new());
        let api: Api<Service> = Api::namespaced(client.clone(), ns);
        let fields = format!("metadata.name={service}");
        let stream = watcher::watcher(api, watch_config().fields(&fields)).default_backoff();
        self.watch(format!("Service {ns}/{service}"), stream, move |e| {
            Change::Services(cache, Box::new(e))
        });
    }

    /// Watches the endpoints of the Service `ns/name`, once.
    fn watch_endpoints(&mut self, client: &Client, ns: &str, service: &str) {
        if !self
            .endpoints_of
            .insert((ns.to_owned(), service.to_owned()))
        {
            return;
        }
        let source = self.spec.endpoints;
        let what = format!("{} of Service {ns}/{service}", source.describe());
        let labels = format!("kubernetes.io/service-name={service}");
        match source {
            EndpointSource::SlicesV1 => {
                let cache = self.slices.len();
                self.slices.push(Cache::new());
                let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
                let stream =
                    watcher::watcher(api, watch_config().labels(&labels)).default_backoff();
                self.watch(what, stream, move |e| Change::Slices(cache, e));
            }
            EndpointSource::SlicesV1beta1 => {
                let cache = self.slices.len();
                self.slices.push(Cache::new());
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), ns, &v1beta1_slices());
                let stream = watcher::watcher(api, watch_config().labels(&labels))
                    .default_backoff()
                    .map(|e| {
                        e.map(|e| {
                            map_event(e, |o| slice_from_v1beta1(&o))
                                .unwrap_or(watcher::Event::InitDone)
                        })
                    });
                self.watch(what, stream, move |e| Change::Slices(cache, e));
            }
            EndpointSource::Endpoints => {
                let cache = self.endpoints.len();
                self.endpoints.push(Cache::new());
                let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
                let fields = format!("metadata.name={service}");
                let stream =
                    watcher::watcher(api, watch_config().fields(&fields)).default_backoff();
                self.watch(what, stream, move |e| Change::Endpoints(cache, e));
            }
        }
    }

    /// The snapshot as last seen.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    fn failures(&self) -> Vec<WatchFailure> {
        self.watches
            .iter()
            .filter(|w| w.failures > 0)
            .map(|w| WatchFailure {
                watch: w.what.clone(),
                failures: w.failures,
                error: w.last_error.clone().unwrap_or_default(),
            })
            .collect()
    }

    /// Applies one update to the caches and the snapshot.
    fn apply(&mut self, update: Update, progress: &mut impl FnMut(WaitProgress<'_>)) {
        let state = &mut self.watches[update.watch];
        let change = match update.change {
            Ok(change) => {
                if !update.init {
                    state.consecutive = 0;
                }
                change
            }
            Err(e) => {
                // The watcher retries with backoff; one that keeps failing
                // is said at once, and kept for the diagnosis.
                let error = e.to_string();
                state.failures += 1;
                state.consecutive += 1;
                state.last_error = Some(error.clone());
                if state.consecutive >= WATCH_FAILURES_REPORTED
                    && state.reported.as_deref() != Some(error.as_str())
                {
                    state.reported = Some(error.clone());
                    progress(WaitProgress::WatchFailing(&WatchFailure {
                        watch: state.what.clone(),
                        failures: state.failures,
                        error,
                    }));
                }
                return;
            }
        };
        match change {
            Change::Object(i, event) => {
                let present = match event {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => Some(o),
                    watcher::Event::Delete(_) => None,
                    watcher::Event::Init | watcher::Event::InitDone => return,
                };
                let value = present.map(|o| typed_value(&o, &self.objects[i]));
                if treat(&self.objects[i]).0 == Pods::Itself {
                    self.snapshot.objects[i].pods = value
                        .clone()
                        .and_then(|v| serde_json::from_value(v).ok())
                        .into_iter()
                        .collect();
                }
                self.snapshot.objects[i].object = value;
            }
            Change::Pods(i, event) => {
                self.pods[i].apply(*event);
                self.snapshot.objects[i].pods = self.pods[i].items.values().cloned().collect();
            }
            Change::Slices(c, event) => {
                self.slices[c].apply(event);
                self.snapshot.endpoint_slices = all_items(&self.slices);
            }
            Change::Endpoints(c, event) => {
                self.endpoints[c].apply(event);
                self.snapshot.endpoints = all_items(&self.endpoints);
            }
            Change::Services(c, event) => {
                self.services[c].apply(*event);
                self.snapshot.services = all_items(&self.services);
            }
            Change::Events(event) => {
                self.events.apply(event);
                self.snapshot.events = self.events.items.values().cloned().collect();
            }
        }
        self.snapshot.related_pending = !self.related_listed();
    }

    /// How long the component's readiness has already held by its pods'
    /// own record ([`settle::held_since`]), on the API server's clock, at
    /// most the whole window: a component that has been Ready for minutes
    /// (a second `up`) is not made to wait again. Nothing without a reading
    /// of the server's clock: the host's may be off.
    fn already_held(&self) -> Duration {
        let Some(server) = self.spec.clock.server() else {
            return Duration::ZERO;
        };
        settle::held_since(self.snapshot.workload_pods())
            .map_or(Duration::ZERO, |since| server.certainly_since(since))
            .min(self.spec.settle)
    }

    /// The lag of noticing readiness now: from the later of the pods' last
    /// `Ready` transition and the start of this wait, to now. Nothing
    /// without a reading of the server's clock.
    fn noticed(&self) -> Option<Lag> {
        let server = self.spec.clock.server()?;
        Some(Lag::bounds(
            settle::held_since(self.snapshot.workload_pods())?,
            server.now_at_least(),
            self.started.elapsed(),
        ))
    }

    /// Whether the component needs its readiness to hold: it has pods that
    /// run for good (a Job's finish; a ConfigMap has none).
    fn settles(&self) -> bool {
        !self.spec.settle.is_zero() && self.has_pods()
    }

    /// Whether the component has workloads whose pods run for good.
    pub fn has_pods(&self) -> bool {
        self.objects
            .iter()
            .zip(&self.pod_watched)
            .any(|(o, watched)| {
                let lasting =
                    kinds::of(&o.api_version, &o.kind).is_some_and(|k| k.has_lasting_pods());
                lasting && (*watched || treat(o).0 == Pods::Itself)
            })
    }

    /// Whether every object and pod is Ready (and the pods were listed).
    fn all_ready(&self, judgement: &Judgement) -> bool {
        judgement.outcome == Outcome::Ready
            && self
                .pods
                .iter()
                .zip(&self.pod_watched)
                .all(|(cache, watched)| !watched || cache.synced)
            && settle::all_ready(self.snapshot.workload_pods())
    }

    fn end(&mut self, judgement: Judgement, ended: Ended) -> WaitEnd {
        WaitEnd {
            judgement,
            snapshot: self.snapshot.clone(),
            ended,
            flaps: self.flaps.clone(),
            holding: match ended {
                Ended::Ready => None,
                _ => self.holding.map(|since| since.elapsed()),
            },
            watch_failures: self.failures(),
            at: self.spec.clock.now(),
        }
    }

    fn flapped(&mut self, what: String, progress: &mut impl FnMut(WaitProgress<'_>)) {
        let after = self
            .holding
            .take()
            .map_or(Duration::ZERO, |since| since.elapsed());
        let flap = Flap {
            at: self.spec.clock.now(),
            after,
            what,
        };
        progress(WaitProgress::Flapped(&flap));
        self.flaps.push(flap);
    }

    /// Judges the snapshot now, with the restarts since readiness started.
    fn judge_now(&self) -> (Judgement, Vec<settle::Disturbance>) {
        let changes = self
            .baseline
            .as_ref()
            .map(|b| b.changes(self.snapshot.workload_pods()))
            .unwrap_or_default();
        let judgement = judge_restarted(
            &self.snapshot,
            self.spec.clock.now(),
            &self.spec.tolerance,
            &self.spec.rules,
            &settle::restarted(&changes),
        );
        (judgement, changes)
    }

    /// Waits until every object is Ready and that held for the settle
    /// window, an object is Failed or a pod doomed, `deadline` passes, or
    /// `cutoff` comes. Each judgement (and each flap, and each watch that
    /// keeps failing) is passed to `progress`.
    pub async fn until_ready(
        &mut self,
        deadline: Instant,
        cutoff: &mut CutOff,
        progress: impl FnMut(WaitProgress<'_>),
    ) -> WaitEnd {
        self.until(true, deadline, cutoff, progress).await
    }

    /// [`Waiter::until_ready`], but ends [`Ended::Ready`] as soon as every
    /// object is Ready, when the settle window starts: what depends on the
    /// component may start while it settles. A later `until_ready` goes on
    /// with the same window, and says whether readiness held.
    pub async fn until_holding(
        &mut self,
        deadline: Instant,
        cutoff: &mut CutOff,
        progress: impl FnMut(WaitProgress<'_>),
    ) -> WaitEnd {
        self.until(false, deadline, cutoff, progress).await
    }

    /// How long after its pods' own `Ready` transition the waiter saw the
    /// component Ready, once it has: see [`Lag`].
    pub fn lag(&self) -> Option<Lag> {
        self.lag
    }

    async fn until(
        &mut self,
        settled: bool,
        deadline: Instant,
        cutoff: &mut CutOff,
        mut progress: impl FnMut(WaitProgress<'_>),
    ) -> WaitEnd {
        let deadline_timer = tokio::time::sleep_until(deadline);
        tokio::pin!(deadline_timer);
        loop {
            let (judgement, changes) = self.judge_now();
            progress(WaitProgress::Judged(&judgement));
            if judgement.outcome == Outcome::Failed {
                progress(WaitProgress::Live(&live_state(
                    &self.snapshot,
                    &judgement,
                    None,
                )));
                // Doomed by what ended the window: say so, with how long it held.
                if let (Some(_), Some(change)) = (self.holding, changes.first()) {
                    let what = change.what.clone();
                    self.flapped(what, &mut progress);
                }
                return self.end(judgement, Ended::Failed);
            }
            let ready = self.all_ready(&judgement);
            if self.holding.is_some() {
                if let Some(change) = changes.first() {
                    let more = match changes.len() - 1 {
                        0 => String::new(),
                        n => format!(" (and {n} more)"),
                    };
                    self.flapped(format!("{}{more}", change.what), &mut progress);
                } else if !ready {
                    let why = judgement.rows.first().map_or_else(
                        || "a pod lost Ready".to_owned(),
                        |r| format!("{} is {} ({})", r.resource, r.state, r.reason),
                    );
                    self.flapped(why, &mut progress);
                }
            }
            if ready && self.holding.is_none() {
                if self.lag.is_none() {
                    self.lag = self.noticed();
                }
                if !self.settles() {
                    return self.end(judgement, Ended::Ready);
                }
                self.baseline = Some(Baseline::of(self.snapshot.workload_pods()));
                let now = Instant::now();
                self.holding = Some(now.checked_sub(self.already_held()).unwrap_or(now));
            }
            let settled_at = self.holding.map(|since| since + self.spec.settle);
            if settled_at.is_some_and(|at| Instant::now() >= at)
                || (!settled && self.holding.is_some())
            {
                return self.end(judgement, Ended::Ready);
            }
            // The window's end on the judgements' clock, for the countdown.
            let settling = settled_at.map(|at| {
                let left = at.saturating_duration_since(Instant::now());
                let now = self.spec.clock.now();
                now.checked_add(left).unwrap_or(now)
            });
            progress(WaitProgress::Live(&live_state(
                &self.snapshot,
                &judgement,
                settling,
            )));
            let settle_timer = async {
                match settled_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                update = self.streams.next(), if !self.streams.is_empty() => {
                    if let Some(update) = update {
                        self.apply(update, &mut progress);
                    }
                }
                _ = self.clock.tick() => {}
                () = settle_timer => {}
                () = &mut deadline_timer => {
                    let (judgement, _) = self.judge_now();
                    return self.end(judgement, Ended::Deadline);
                }
                () = cutoff.reached() => {
                    let (judgement, _) = self.judge_now();
                    return self.end(judgement, Ended::Stopped);
                }
            }
        }
    }

    /// After Ready: keeps watching until the component is doomed (returns
    /// [`Ended::Failed`]) or the caller stops asking. Restarts are judged
    /// against the pods as they were when readiness settled; a restart the
    /// tolerance forgives is recorded and becomes the new baseline, so only
    /// a later one counts. Never returns otherwise: drop the future to stop.
    pub async fn until_doomed(&mut self, mut progress: impl FnMut(WaitProgress<'_>)) -> WaitEnd {
        if self.holding.is_none() || self.baseline.is_none() {
            self.holding = Some(Instant::now());
            self.baseline = Some(Baseline::of(self.snapshot.workload_pods()));
        }
        loop {
            tokio::select! {
                update = self.streams.next(), if !self.streams.is_empty() => {
                    if let Some(update) = update {
                        self.apply(update, &mut progress);
                    }
                }
                _ = self.clock.tick() => {}
            }
            let (judgement, changes) = self.judge_now();
            if judgement.outcome == Outcome::Failed {
                return self.end(judgement, Ended::Failed);
            }
            if let Some(change) = changes.first() {
                let what = change.what.clone();
                self.flapped(what, &mut progress);
                self.holding = Some(Instant::now());
                self.baseline = Some(Baseline::of(self.snapshot.workload_pods()));
            }
        }
    }

    /// Whether the component is Ready right now (objects and every pod).
    pub fn is_ready(&self) -> bool {
        let (judgement, changes) = self.judge_now();
        changes.is_empty() && self.all_ready(&judgement)
    }

    /// Forgets the baseline: the next [`Waiter::until_ready`] waits for
    /// readiness to hold anew.
    pub fn restart_settle(&mut self) {
        self.holding = None;
    }
}

/// Waits until every object in `objects` is Ready (and held for the settle
/// window), one is Failed or a pod is doomed, or `deadline` passes. Each
/// judgement is passed to `progress`.
pub async fn wait_ready(
    client: &Client,
    objects: &[AppliedObject],
    spec: WaitSpec,
    deadline: Instant,
    mut progress: impl FnMut(&Judgement),
) -> WaitEnd {
    let mut waiter = Waiter::start(client, objects, spec);
    waiter
        .until_ready(deadline, &mut CutOff::never(), |p| {
            if let WaitProgress::Judged(j) = p {
                progress(j);
            }
        })
        .await
}

/// Lists the current state once: the snapshot `diagnose` and `status` judge.
/// Objects that do not exist are tracked with `object: None`.
pub async fn snapshot_once(
    client: &Client,
    objects: &[AppliedObject],
    endpoints: EndpointSource,
) -> Result<Snapshot, kube::Error> {
    let mut snapshot = Snapshot::default();
    let mut namespaces = std::collections::BTreeSet::new();
    // Services whose endpoints are read, and the Services webhooks call.
    let mut endpoints_of = std::collections::BTreeSet::new();
    let mut called = std::collections::BTreeSet::new();
    for applied in objects {
        let found = applied.api(client).get_opt(&applied.name).await?;
        let value = found.as_ref().map(|o| typed_value(o, applied));
        let (kind_pods, watch) = treat(applied);
        let mut pods = Vec::new();
        if let Some(value) = &value
            && watch == Watch::CalledServices
        {
            for c in called_services(value) {
                endpoints_of.insert((c.namespace.clone(), c.name.clone()));
                called.insert((c.namespace, c.name));
            }
        }
        if let (Some(ns), Some(value)) = (&applied.namespace, &value) {
            if let Some(selector) = pod_selector(value) {
                let api: Api<Pod> = Api::namespaced(client.clone(), ns);
                pods = api
                    .list(&kube::api::ListParams::default().labels(&selector))
                    .await?
                    .items;
                namespaces.insert(ns.clone());
            } else if kind_pods == Pods::Itself {
                pods = serde_json::from_value(value.clone()).into_iter().collect();
                namespaces.insert(ns.clone());
            } else if watch == Watch::Endpoints {
                endpoints_of.insert((ns.clone(), applied.name.clone()));
            }
        }
        snapshot.objects.push(Tracked {
            resource: applied.resource_ref(),
            object: value,
            pods,
        });
    }
    for (ns, name) in called {
        let api: Api<Service> = Api::namespaced(client.clone(), &ns);
        snapshot.services.extend(api.get_opt(&name).await?);
    }
    for (ns, name) in endpoints_of {
        let lp =
            kube::api::ListParams::default().labels(&format!("kubernetes.io/service-name={name}"));
        match endpoints {
            EndpointSource::SlicesV1 => {
                let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
                snapshot.endpoint_slices.extend(api.list(&lp).await?.items);
            }
            EndpointSource::SlicesV1beta1 => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &ns, &v1beta1_slices());
                snapshot.endpoint_slices.extend(
                    api.list(&lp)
                        .await?
                        .items
                        .iter()
                        .filter_map(slice_from_v1beta1),
                );
            }
            EndpointSource::Endpoints => {
                let api: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
                snapshot.endpoints.extend(api.get_opt(&name).await?);
            }
        }
    }
    for ns in namespaces {
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        let lp = kube::api::ListParams::default().fields("involvedObject.kind=Pod");
        snapshot.events.extend(api.list(&lp).await?.items);
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_of_workloads() {
        let deployment = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"selector": {"matchLabels": {"app": "web"}}}
        });
        assert_eq!(pod_selector(&deployment).as_deref(), Some("app=web"));
        let job = serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}}
        });
        assert_eq!(
            pod_selector(&job).as_deref(),
            Some("batch.kubernetes.io/controller-uid=u1")
        );
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(pod_selector(&cm), None);
    }

    #[test]
    fn v1beta1_slices_read_as_v1() {
        // As a 1.20 server returns it (`topology`, no `zone`).
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
            "metadata": {"name": "db-x7k2p", "namespace": "demo",
                         "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.0.7"], "conditions": {"ready": true},
                           "topology": {"kubernetes.io/hostname": "tc1-control-plane"}}],
            "ports": [{"name": "", "port": 5432, "protocol": "TCP"}],
        }))
        .unwrap();
        let slice = slice_from_v1beta1(&object).expect("read as v1");
        assert_eq!(
            slice.endpoints[0].conditions.as_ref().unwrap().ready,
            Some(true)
        );
        assert_eq!(
            slice.metadata.labels.unwrap()["kubernetes.io/service-name"],
            "db"
        );
    }

    #[test]
    fn the_lag_is_bounded_by_the_stamps_seconds_and_by_the_wait() {
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let secs = Duration::from_secs_f64;
        // Ready stamped 12:00:03, the server at least 12:00:03.4: between
        // nothing and 1.4 s, the wait having watched for 9 s.
        let lag = Lag::bounds(
            at("2026-12-07T12:00:03Z"),
            at("2026-12-07T12:00:03.4Z"),
            secs(9.0),
        );
        assert_eq!((lag.at_least, lag.at_most), (Duration::ZERO, secs(1.4)));
        // Seen a minute late: at least 59.4 s.
        let lag = Lag::bounds(
            at("2026-12-07T12:00:03Z"),
            at("2026-12-07T12:01:03.4Z"),
            secs(90.0),
        );
        assert_eq!((lag.at_least, lag.at_most), (secs(59.4), secs(61.4)));
        // Ready long before the wait began (a second `up`): the wait's 50 ms.
        let lag = Lag::bounds(
            at("2026-12-07T11:00:00Z"),
            at("2026-12-07T12:00:00Z"),
            secs(0.05),
        );
        assert_eq!((lag.at_least, lag.at_most), (secs(0.05), secs(0.05)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_off_comes_at_its_instant_and_an_unset_one_never() {
        let (handle, mut cutoff) = CutOff::pair();
        let start = Instant::now();
        handle.cut_at(start + Duration::from_secs(3));
        // A later cut-off does not move an earlier one.
        handle.cut_at(start + Duration::from_secs(9));
        cutoff.reached().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        let mut never = CutOff::never();
        let waited = tokio::time::timeout(Duration::from_secs(3600), never.reached()).await;
        assert!(waited.is_err());
    }
}
