//! Waiting for a component: watches, a clock, a deadline.
//!
//! Every applied object that is not Ready in the apply response is watched
//! (`metadata.name=` field selector), and so are the pods of every workload
//! (by the workload's label selector), the EndpointSlices of Services, and
//! the pod events of the component's namespaces. Each change re-judges the
//! snapshot ([`super::judge`]), so Ready, Failed and doomed are noticed as
//! soon as the API server says so. Some verdicts are a matter of time alone
//! (a pod Unschedulable for longer than the schedule window, a crash within
//! the tolerance's grace that is no longer forgiven once it ends): a
//! one-second clock re-judges the *cached* objects for those. It never asks
//! the API server anything, so it is not polling. The deadline is explicit;
//! when it runs out the caller gets the last judgement, never a bare
//! "timed out".

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, SelectAll};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::DynamicObject;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Config};
use kube::{Api, Client, Resource};
use serde_json::Value;
use tokio::time::Instant;

use super::apply::AppliedObject;
use super::judge::{Judgement, Outcome, Snapshot, Tracked, judge};
use crate::readiness::Timestamp;
use crate::readiness::classify::Tolerance;

/// How often cached objects are re-judged for time-only verdicts.
pub const CLOCK: Duration = Duration::from_secs(1);

/// How a wait ended.
#[derive(Debug)]
pub struct WaitEnd {
    /// The last judgement.
    pub judgement: Judgement,
    /// The snapshot it was made on (for evidence and timelines).
    pub snapshot: Snapshot,
    /// Whether the deadline ran out before Ready or Failed.
    pub deadline: bool,
    /// The last watch error, if watches were failing.
    pub watch_error: Option<String>,
}

// Boxed where large: the stream moves every update.
#[allow(clippy::large_enum_variant)]
enum Update {
    Object(usize, Result<watcher::Event<DynamicObject>, watcher::Error>),
    Pods(usize, Box<Result<watcher::Event<Pod>, watcher::Error>>),
    Slices(Result<watcher::Event<EndpointSlice>, watcher::Error>),
    Events(Result<watcher::Event<Event>, watcher::Error>),
}

/// A watch cache that swaps in a relisted set only when the relist is
/// complete, so a reconnect never shows an empty world in between.
struct Cache<K> {
    items: BTreeMap<String, K>,
    relist: Option<BTreeMap<String, K>>,
}

impl<K: Resource> Cache<K> {
    fn new() -> Self {
        Self {
            items: BTreeMap::new(),
            relist: None,
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

/// The label selector of a workload, as a query string: `spec.selector` of
/// Deployments, ReplicaSets, StatefulSets, DaemonSets and Jobs (the server
/// fills a Job's). `None` for kinds without pods.
pub fn pod_selector(object: &Value) -> Option<String> {
    let kind = object.get("kind")?.as_str()?;
    if !matches!(
        kind,
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job"
    ) {
        return None;
    }
    let selector: LabelSelector =
        serde_json::from_value(object.pointer("/spec/selector")?.clone()).ok()?;
    let selector = kube::core::Selector::try_from(selector).ok()?;
    let text = selector.to_string();
    (!text.is_empty()).then_some(text)
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

/// Waits until every object in `objects` is Ready, one is Failed or a pod
/// is doomed, or `deadline` passes. Each judgement is passed to `progress`.
pub async fn wait_ready(
    client: &Client,
    objects: &[AppliedObject],
    tolerance: &Tolerance,
    deadline: Instant,
    mut progress: impl FnMut(&Judgement),
) -> WaitEnd {
    let mut snapshot = Snapshot {
        objects: objects
            .iter()
            .map(|o| Tracked {
                resource: o.resource_ref(),
                object: Some(typed_value(&o.object, o)),
                pods: Vec::new(),
            })
            .collect(),
        ..Snapshot::default()
    };
    let first = judge(&snapshot, Timestamp::now(), tolerance);
    // Ready or already Failed in the apply response (a CRD whose names
    // conflict): nothing to wait for.
    if first.outcome != Outcome::Pending {
        return WaitEnd {
            judgement: first,
            snapshot,
            deadline: false,
            watch_error: None,
        };
    }

    let mut streams: SelectAll<BoxStream<'static, Update>> = SelectAll::new();
    let mut namespaces = std::collections::BTreeSet::new();
    for (index, applied) in objects.iter().enumerate() {
        if first.statuses[index].is_ready() {
            continue;
        }
        let fields = format!("metadata.name={}", applied.name);
        let stream = watcher::watcher(applied.api(client), watch_config().fields(&fields))
            .default_backoff()
            .map(move |e| Update::Object(index, e));
        streams.push(stream.boxed());
        let Some(ns) = applied.namespace.clone() else {
            continue;
        };
        let value = snapshot.objects[index].object.clone().unwrap_or_default();
        if let Some(selector) = pod_selector(&value) {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let stream = watcher::watcher(pods, watch_config().labels(&selector))
                .default_backoff()
                .map(move |e| Update::Pods(index, Box::new(e)));
            streams.push(stream.boxed());
            namespaces.insert(ns.clone());
        } else if applied.kind == "Pod" {
            namespaces.insert(ns.clone());
        } else if applied.kind == "Service" {
            let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
            let labels = format!("kubernetes.io/service-name={}", applied.name);
            let stream = watcher::watcher(slices, watch_config().labels(&labels))
                .default_backoff()
                .map(Update::Slices);
            streams.push(stream.boxed());
        }
    }
    for ns in namespaces {
        let events: Api<Event> = Api::namespaced(client.clone(), &ns);
        let stream = watcher::watcher(events, watch_config().fields("involvedObject.kind=Pod"))
            .default_backoff()
            .map(Update::Events);
        streams.push(stream.boxed());
    }

    let mut pods: Vec<Cache<Pod>> = objects.iter().map(|_| Cache::new()).collect();
    let mut slices = Cache::<EndpointSlice>::new();
    let mut events = Cache::<Event>::new();
    let mut watch_error = None;
    let mut clock = tokio::time::interval(CLOCK);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    let mut judgement;
    loop {
        tokio::select! {
            update = streams.next(), if !streams.is_empty() => {
                let Some(update) = update else { continue };
                match update {
                    Update::Object(i, Ok(event)) => {
                        let present = match event {
                            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => Some(o),
                            watcher::Event::Delete(_) => None,
                            watcher::Event::Init | watcher::Event::InitDone => continue,
                        };
                        let value = present.map(|o| typed_value(&o, &objects[i]));
                        if objects[i].kind == "Pod" {
                            snapshot.objects[i].pods = value
                                .clone()
                                .and_then(|v| serde_json::from_value(v).ok())
                                .into_iter()
                                .collect();
                        }
                        snapshot.objects[i].object = value;
                    }
                    Update::Pods(i, event) => match *event {
                        Ok(event) => {
                            pods[i].apply(event);
                            snapshot.objects[i].pods = pods[i].items.values().cloned().collect();
                        }
                        Err(e) => {
                            watch_error = Some(e.to_string());
                            continue;
                        }
                    },
                    Update::Slices(Ok(event)) => {
                        slices.apply(event);
                        snapshot.endpoint_slices = slices.items.values().cloned().collect();
                    }
                    Update::Events(Ok(event)) => {
                        events.apply(event);
                        snapshot.events = events.items.values().cloned().collect();
                    }
                    Update::Object(_, Err(e))
                    | Update::Slices(Err(e))
                    | Update::Events(Err(e)) => {
                        // The watcher retries with backoff; keep the error
                        // for the deadline report.
                        watch_error = Some(e.to_string());
                        continue;
                    }
                }
            }
            _ = clock.tick() => {}
            _ = &mut sleep => {
                let judgement = judge(&snapshot, Timestamp::now(), tolerance);
                return WaitEnd { judgement, snapshot, deadline: true, watch_error };
            }
        }
        judgement = judge(&snapshot, Timestamp::now(), tolerance);
        progress(&judgement);
        if judgement.outcome != Outcome::Pending {
            break;
        }
    }
    WaitEnd {
        judgement,
        snapshot,
        deadline: false,
        watch_error,
    }
}

/// Lists the current state once: the snapshot `diagnose` and `status` judge.
/// Objects that do not exist are tracked with `object: None`.
pub async fn snapshot_once(
    client: &Client,
    objects: &[AppliedObject],
) -> Result<Snapshot, kube::Error> {
    let mut snapshot = Snapshot::default();
    let mut namespaces = std::collections::BTreeSet::new();
    for applied in objects {
        let found = applied.api(client).get_opt(&applied.name).await?;
        let value = found.as_ref().map(|o| typed_value(o, applied));
        let mut pods = Vec::new();
        if let (Some(ns), Some(value)) = (&applied.namespace, &value) {
            if let Some(selector) = pod_selector(value) {
                let api: Api<Pod> = Api::namespaced(client.clone(), ns);
                pods = api
                    .list(&kube::api::ListParams::default().labels(&selector))
                    .await?
                    .items;
                namespaces.insert(ns.clone());
            } else if applied.kind == "Pod" {
                pods = serde_json::from_value(value.clone()).into_iter().collect();
                namespaces.insert(ns.clone());
            } else if applied.kind == "Service" {
                let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
                let lp = kube::api::ListParams::default()
                    .labels(&format!("kubernetes.io/service-name={}", applied.name));
                snapshot.endpoint_slices.extend(api.list(&lp).await?.items);
            }
        }
        snapshot.objects.push(Tracked {
            resource: applied.resource_ref(),
            object: value,
            pods,
        });
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
}
