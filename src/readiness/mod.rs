//! Readiness: is a deployed object Ready, and if not, why.
//!
//! Everything here is a pure function of API objects the caller already
//! holds (typed `k8s-openapi` objects, or `serde_json::Value` for kinds the
//! harness does not know), plus an explicit `now` wherever time matters, so
//! that every decision is testable on objects captured from a real cluster.
//! The design splits two questions that peer tools conflate. [`rules`]
//! answers "is this object Ready?" per kind, at least as strictly as kstatus
//! (generation, replicas, revisions, conditions), for every kind: the kinds
//! the harness knows are one table ([`kinds`]), a kind without a rule or
//! conditions is Ready once it exists (kstatus's "Current"), and the lane
//! file can say what Ready means for the project's own kinds
//! ([`overrides`]). [`classify`] answers "is this pod
//! doomed, and why?": it recognises the failure modes that will not fix
//! themselves (image not loaded, OOMKilled, a missing Secret key,
//! Unschedulable, ...) so the waiter can fail fast instead of running into
//! its deadline, while a per-component [`classify::Tolerance`] keeps it from
//! failing controllers that legitimately restart while their database comes
//! up. [`evidence`] picks the facts a verdict is shown with (Warning events,
//! terminations, which logs to fetch), [`table`] turns a resource into the
//! row of the "what is unready and why" table that every timeout prints, and
//! [`timeline`] derives a pod's Scheduled → Initialized → Ready times.
//! Fetching objects, events and logs is I/O and lives elsewhere.

pub mod brief;
pub mod classify;
pub mod evidence;
pub mod kinds;
pub mod overrides;
pub mod rules;
pub mod settle;
mod standing;
pub mod table;
pub mod timeline;
pub mod waiting;

mod conditions;

pub use classify::{Tolerance, Verdict, VerdictKind, classify_pod};
pub use rules::{State, Status};
pub use standing::{LiveState, Stand, Standing};

/// The instant type used throughout: the one `k8s-openapi` stores in
/// `meta::v1::Time`, re-exported so callers need no direct `jiff` dependency.
pub use k8s_openapi::jiff::Timestamp;

/// A duration as a person writes it: `1m`, `1m30s`, `15s`, `2.5s`, `350ms`.
/// Whole seconds from ten seconds up (a deadline of `1m` that ran out after
/// 1 m 2 ms is reported as `1m`), one decimal below, milliseconds below a
/// second.
pub fn human(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return if ms == 0 {
            "0s".to_owned()
        } else {
            format!("{ms}ms")
        };
    }
    if ms < 10_000 {
        let tenths = (ms + 50) / 100;
        return if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        };
    }
    let secs = (ms + 500) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_read_as_people_write_them() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(350), "350ms"),
            (Duration::from_millis(2_540), "2.5s"),
            (Duration::from_millis(3_000), "3s"),
            (Duration::from_millis(15_200), "15s"),
            (Duration::from_nanos(60_002_646_201), "1m"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3_600 + 5 * 60), "1h5m"),
        ];
        for (d, want) in cases {
            assert_eq!(super::human(d), want, "{d:?}");
        }
    }
}
