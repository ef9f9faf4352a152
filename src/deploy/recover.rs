//! Before failed suites are retried: is every component of the lane Ready
//! and settled again?
//!
//! The same waiter as the deploy ([`super::wait::Waiter`]), the same judge
//! and settle window, and the same health URLs, over the objects the
//! component's manifests name (found as `diagnose` finds them, without
//! applying anything). What differs is only where its tolerance starts: the
//! incident the suites ran into (an OOM kill, a crash) already spent the
//! pod's restarts and grace, so each component gets its own tolerance again
//! counted from now — a component that recovers is Ready, one that keeps
//! failing is doomed with its verdict and evidence, one that does not come
//! back within its own `timeout` has timed out. Either way, no recovery is
//! reported as such and the failed tests are not retried.

use std::time::Duration;

use indexmap::IndexMap;
use kube::Client;
use tokio::time::Instant;

use super::wait::{CutOff, Ended, EndpointSource, WaitSpec, Waiter, snapshot_once};
use super::{Applier, Standing, diagnose_end, health, manifests, tolerance};
use crate::config::{Component, Lane, Project};
use crate::readiness::classify::Tolerance;
use crate::readiness::human;

/// The tolerance of a component whose pods already restarted
/// `restarts` times and whose oldest pod started `age` ago: its own
/// tolerance again, counted from now. Pure.
pub fn tolerance_from_now(own: Tolerance, restarts: u32, age: Duration) -> Tolerance {
    Tolerance {
        grace: age.saturating_add(own.grace),
        restarts: restarts.saturating_add(own.restarts),
    }
}

/// Waits until every component of `lane` is Ready, its readiness held for
/// its settle window, and its health URL (if any) answers — each within its
/// own `timeout`. `Err` says which component did not, and why.
pub async fn wait_recovered(
    client: &Client,
    project: &Project,
    lane: &Lane,
) -> Result<Duration, String> {
    let started = Instant::now();
    let applier = Applier::new(client.clone());
    let endpoints = EndpointSource::discover(client).await;
    let components = crate::plan::closure(project, &lane.components);
    let waits = components.iter().map(|name| {
        let component = &project.components[name.as_str()];
        recover_one(client, &applier, project, lane, component, endpoints)
    });
    let results = futures_util::future::join_all(waits).await;
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if failures.is_empty() {
        Ok(started.elapsed())
    } else {
        Err(failures.join("; "))
    }
}

async fn recover_one(
    client: &Client,
    applier: &Applier,
    project: &Project,
    lane: &Lane,
    component: &Component,
    endpoints: EndpointSource,
) -> Result<(), String> {
    let name = &component.name;
    let deadline = Instant::now() + component.timeout;
    // Image references do not change where objects are.
    let images: IndexMap<String, String> = component
        .images
        .iter()
        .map(|i| (i.clone(), format!("image-{i}")))
        .collect();
    let objects =
        manifests::render(component, lane, &images).map_err(|e| format!("{name}: {e}"))?;
    let namespace = lane.namespace_of(component);
    let mut located = Vec::new();
    for object in objects {
        let types = object.types.clone().unwrap_or_default();
        match applier.locate(object, namespace).await {
            Ok(object) => located.push(object),
            // What the deploy left out (`exclude_unserved:`) is not there
            // to be Ready again.
            Err(super::ApplyError::UnknownKind { .. })
                if crate::render::exclude::any_matches(
                    &component.exclude_unserved,
                    &types.api_version,
                    &types.kind,
                ) => {}
            Err(e) => return Err(format!("{name}: {}", crate::failure::chain_text(&e))),
        }
    }
    let now = snapshot_once(client, &located, endpoints)
        .await
        .map_err(|e| format!("{name}: cannot read it: {}", crate::failure::chain_text(&e)))?;
    let pods: Vec<_> = now.workload_pods().collect();
    let restarts = pods
        .iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
        .max()
        .unwrap_or(0);
    let age = pods
        .iter()
        .filter_map(|p| p.status.as_ref()?.start_time.as_ref().map(|t| t.0))
        .min()
        .map(|t| crate::readiness::classify::elapsed(t, jiff::Timestamp::now()))
        .unwrap_or_default();
    let spec = WaitSpec {
        tolerance: tolerance_from_now(tolerance(component), restarts, age),
        settle: component.settle,
        endpoints,
        clock: super::wait::Clock::system(),
        rules: super::rules_for(project, lane, component),
    };
    let mut waiter = Waiter::start(client, &located, spec);
    let end = waiter
        .until_ready(deadline, &mut CutOff::never(), |_| {})
        .await;
    match end.ended {
        Ended::Ready => {}
        ended => {
            let standing = if ended == Ended::Failed {
                Standing::Doomed
            } else {
                Standing::TimedOut
            };
            let diagnosis = diagnose_end(client, name, &end, standing).await;
            let how = match ended {
                Ended::Failed => "will not become Ready".to_owned(),
                _ => format!("not Ready again within {}", human(component.timeout)),
            };
            return Err(format!("{name} {how}: {}", diagnosis.summary()));
        }
    }
    if let Some(h) = &component.health {
        let url = lane.resolve_url(&h.url).unwrap_or_else(|_| h.url.clone());
        health::wait_healthy(&url, h.timeout, deadline)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_starts_again_from_now() {
        let own = Tolerance {
            grace: Duration::from_secs(30),
            restarts: 3,
        };
        // An OOM kill during the suites: 1 restart, the pod up for 10 minutes.
        let t = tolerance_from_now(own, 1, Duration::from_secs(600));
        assert_eq!(t.restarts, 4);
        assert_eq!(t.grace, Duration::from_secs(630));
        // Kubernetes' clock never overflows ours.
        let t = tolerance_from_now(own, u32::MAX, Duration::MAX);
        assert_eq!((t.restarts, t.grace), (u32::MAX, Duration::MAX));
    }
}
