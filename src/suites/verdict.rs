//! Every failed test case gets a verdict: `infrastructure`, `flaky` or
//! `real` (SPEC §5), decided here by a pure function of plain data.
//!
//! The inputs are each case's attempts — when each started and ended on the
//! run's clock, and whether it passed — and the incidents the pod watch
//! recorded while the suites ran, each turned into a *window*: from when it
//! began (the kubelet's own time of the container's exit, or of the lost
//! Ready, when known) until its component was seen Ready again, or until
//! the harness confirmed that every component was Ready and settled before
//! a retry. A window that never closed stays open to the end of the run.
//! Cluster-wide incidents (a node condition, the API server unreachable)
//! concern every component.
//!
//! A failed attempt is *blamed* on an incident when the two overlap: the
//! case was running when the component went down, or ran while it was
//! down. (A case that started before an incident is blamed too, unlike the
//! timeline's "started after it": a request in flight when DataStorage was
//! OOMKilled fails because of it.) Then, per case:
//!
//! | the case finally … | its failed attempts | verdict |
//! |---|---|---|
//! | passed on a retry | all blamed | `infrastructure` (it passed once the component was back) |
//! | passed on a retry | one or more not blamed | `flaky` |
//! | failed on its last attempt | the last one blamed | `infrastructure` |
//! | failed on its last attempt | the last one not blamed | `real` |
//!
//! A case that failed on its only attempt (no retries) with no incident is
//! `real`: nothing suggests otherwise. Whether the run fails is decided by
//! [`suites_passed`]: a case that never passed fails it whatever its
//! verdict; a flaky one fails it only with `--flaky-result fail`.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What a failed test case's failure was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Failed on every attempt with no incident to blame: read it first.
    Real,
    /// Failed during or after an incident on a component (or the cluster),
    /// before it recovered.
    Infrastructure,
    /// Failed, then passed on a retry, with no incident in its window.
    Flaky,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Real => "real",
            Verdict::Infrastructure => "infrastructure",
            Verdict::Flaky => "flaky",
        }
    }

    /// What the verdict means, in a few words.
    pub fn meaning(self) -> &'static str {
        match self {
            Verdict::Real => "failed on every attempt, no incident",
            Verdict::Infrastructure => {
                "failed during or after an incident, before the component recovered"
            }
            Verdict::Flaky => "failed, then passed on a retry, no incident",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--flaky-result`: whether a run whose only failures are flaky passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlakyResult {
    /// A test that passed on a retry passes the run (nextest's and Ginkgo's
    /// `--flake-attempts` default): retries exist so that CI is not red for
    /// a flake, and the verdict still says which tests are flaky.
    #[default]
    Pass,
    /// A flaky test fails the run (exit 1): a strict gate.
    Fail,
}

/// One attempt of a test case (or of a suite that reported no test cases).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first run, 2 for the first retry…
    pub attempt: u32,
    pub passed: bool,
    pub started: Timestamp,
    /// When it ended: its start plus its `time`, or its start when unknown.
    pub ended: Timestamp,
    /// The first line of its failure message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every attempt of one test case, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// The harness suite.
    pub suite: String,
    /// The test case's name; the suite's own name for a suite that reported
    /// no test cases.
    pub case: String,
    pub classname: Option<String>,
    pub attempts: Vec<Attempt>,
}

/// What the infrastructure did, as far as verdicts are concerned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The lane's component (`None`: the whole cluster — a node condition,
    /// the API server unreachable).
    pub component: Option<String>,
    /// The pod (or node) it happened to.
    pub pod: String,
    /// `OOMKilled`, `Crashed`, `Exited`, `Evicted`, `NotReady`, `Deleted`,
    /// `NodeCondition`, `Unreachable`.
    pub what: String,
    /// When it began.
    pub since: Timestamp,
    /// When the component (or cluster) was back; `None`: not within the run.
    pub until: Option<Timestamp>,
    /// The one-line detail the timeline shows.
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The container's memory limit (OOMKilled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<i32>,
    /// The last lines the container logged before it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

impl Incident {
    /// Whether `[started, ended]` overlaps the incident's window.
    fn overlaps(&self, started: Timestamp, ended: Timestamp) -> bool {
        self.since <= ended && self.until.is_none_or(|until| started <= until)
    }

    /// How telling it is, lowest first: a case overlapping several is
    /// blamed on the one that explains most.
    fn rank(&self) -> u8 {
        match self.what.as_str() {
            "OOMKilled" => 0,
            "Crashed" => 1,
            "Evicted" => 2,
            "Deleted" => 3,
            "NodeCondition" => 4,
            "Unreachable" => 5,
            "Exited" => 6,
            _ => 7,
        }
    }
}

/// A failed test case's verdict, with its attempts and, for an
/// infrastructure verdict, the incident it is blamed on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseVerdict {
    pub suite: String,
    pub case: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classname: Option<String>,
    pub verdict: Verdict,
    pub attempts: Vec<Attempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
}

impl CaseVerdict {
    /// The attempt it passed on, if it did.
    pub fn passed_on(&self) -> Option<u32> {
        self.attempts.last().filter(|a| a.passed).map(|a| a.attempt)
    }

    /// Its attempts in a few words: `failed on attempt 1, passed on attempt
    /// 2`, `failed on attempts 1 and 2`, `failed on its only attempt`.
    pub fn attempts_text(&self) -> String {
        let failed: Vec<String> = self
            .attempts
            .iter()
            .filter(|a| !a.passed)
            .map(|a| a.attempt.to_string())
            .collect();
        let failed_text = match failed.as_slice() {
            [_] if self.attempts.len() == 1 => return "failed on its only attempt".to_owned(),
            [one] => format!("failed on attempt {one}"),
            [init @ .., last] => format!("failed on attempts {} and {last}", init.join(", ")),
            [] => String::new(),
        };
        match self.passed_on() {
            Some(n) => format!("{failed_text}, passed on attempt {n}"),
            None => failed_text,
        }
    }

    /// The first line of its last failure.
    pub fn message(&self) -> Option<&str> {
        self.attempts
            .iter()
            .rev()
            .find(|a| !a.passed)
            .and_then(|a| a.message.as_deref())
    }
}

/// The verdict of every case that failed at least once, in the order
/// given; cases that never failed get none. Pure.
pub fn classify(histories: &[History], incidents: &[Incident]) -> Vec<CaseVerdict> {
    histories
        .iter()
        .filter(|h| h.attempts.iter().any(|a| !a.passed))
        .map(|h| {
            let blame = |a: &Attempt| {
                incidents
                    .iter()
                    .filter(|i| i.overlaps(a.started, a.ended))
                    .min_by_key(|i| (i.rank(), i.since))
            };
            let failed: Vec<(&Attempt, Option<&Incident>)> = h
                .attempts
                .iter()
                .filter(|a| !a.passed)
                .map(|a| (a, blame(a)))
                .collect();
            let passed_at_last = h.attempts.last().is_some_and(|a| a.passed);
            let (verdict, incident) = if passed_at_last {
                match failed.iter().find(|(_, i)| i.is_none()) {
                    Some(_) => (Verdict::Flaky, None),
                    None => (
                        Verdict::Infrastructure,
                        failed.first().and_then(|(_, i)| *i),
                    ),
                }
            } else {
                match failed.last().and_then(|(_, i)| *i) {
                    Some(i) => (Verdict::Infrastructure, Some(i)),
                    None => (Verdict::Real, None),
                }
            };
            CaseVerdict {
                suite: h.suite.clone(),
                case: h.case.clone(),
                classname: h.classname.clone(),
                verdict,
                attempts: h.attempts.clone(),
                incident: incident.cloned(),
            }
        })
        .collect()
}

/// Whether the suites passed: every suite passed on its last attempt, no
/// case is left failed, and — when some passed only on a retry with a
/// `flaky` verdict — `--flaky-result` says flaky passes. A case that failed
/// because of the infrastructure and passed once it was back counts as
/// passed: its test is sound, and the incident is reported. Pure.
pub fn suites_passed(
    every_suite_passed_at_last: bool,
    verdicts: &[CaseVerdict],
    flaky: FlakyResult,
) -> bool {
    let left_failed = verdicts.iter().any(|v| v.passed_on().is_none());
    let any_flaky = verdicts.iter().any(|v| v.verdict == Verdict::Flaky);
    every_suite_passed_at_last && !left_failed && (!any_flaky || flaky == FlakyResult::Pass)
}

/// How long after a component was seen Ready again a failure may still be
/// its incident's: a Service's endpoints, then every node's proxy rules,
/// follow a pod's Ready by a moment, and a request in that moment still
/// finds no one listening.
pub const RECOVERY_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(2);

/// One record of the timeline, as [`windows`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// When the harness saw it.
    pub at: Timestamp,
    /// The lane's component, `-` for a pod of none.
    pub component: String,
    pub pod: String,
    pub what: String,
    pub detail: String,
    /// When it happened by the kubelet's clock (a container's exit, a
    /// condition's transition), when known.
    pub since: Option<Timestamp>,
    pub container: Option<String>,
    pub exit_code: Option<i32>,
    pub limit: Option<String>,
    pub restarts: Option<i32>,
    pub log_tail: Option<String>,
}

/// What ends an incident: a pod Ready again, a node's condition cleared,
/// the API server answering again.
fn recovery(what: &str) -> bool {
    matches!(what, "Ready" | "NodeRecovered" | "Reachable")
}

fn cluster_wide(what: &str) -> bool {
    matches!(what, "NodeCondition" | "Unreachable")
}

/// The incidents of a timeline, each with its window: from when it began
/// until the first sign of recovery after it (the same pod Ready again; for
/// a pod deleted or evicted, any pod of its component Ready; for a node,
/// its condition cleared; for the API server, an answer), or until
/// `settled` — the times every component was confirmed Ready and settled
/// (before each retry) — whichever comes first; plus [`RECOVERY_MARGIN`].
/// Pods of no component of the lane are left out. Pure.
pub fn windows(timeline: &[Observed], settled: &[Timestamp]) -> Vec<Incident> {
    timeline
        .iter()
        .enumerate()
        .filter(|(_, o)| !recovery(&o.what) && (o.component != "-" || cluster_wide(&o.what)))
        .map(|(index, o)| {
            let since = o.since.map_or(o.at, |s| s.min(o.at));
            let replaced = matches!(o.what.as_str(), "Deleted" | "Evicted");
            let back = timeline[index + 1..]
                .iter()
                .filter(|r| recovery(&r.what) && r.at >= since)
                .find(|r| match o.what.as_str() {
                    "NodeCondition" => r.what == "NodeRecovered" && r.pod == o.pod,
                    "Unreachable" => r.what == "Reachable",
                    _ => {
                        r.what == "Ready"
                            && r.component == o.component
                            && (replaced || r.pod == o.pod)
                    }
                })
                .map(|r| r.at);
            let confirmed = settled.iter().copied().filter(|t| *t >= o.at).min();
            let until = [back, confirmed]
                .into_iter()
                .flatten()
                .min()
                .map(|t| t.checked_add(RECOVERY_MARGIN).unwrap_or(t));
            Incident {
                component: (!cluster_wide(&o.what)).then(|| o.component.clone()),
                pod: o.pod.clone(),
                what: o.what.clone(),
                since,
                until,
                detail: o.detail.clone(),
                container: o.container.clone(),
                exit_code: o.exit_code,
                limit: o.limit.clone(),
                restarts: o.restarts,
                log_tail: o.log_tail.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        format!("2026-11-22T14:{s}Z").parse().unwrap()
    }

    fn attempt(n: u32, passed: bool, from: &str, to: &str) -> Attempt {
        Attempt {
            attempt: n,
            passed,
            started: at(from),
            ended: at(to),
            message: (!passed).then(|| format!("failed on attempt {n}")),
        }
    }

    fn history(case: &str, attempts: Vec<Attempt>) -> History {
        History {
            suite: "audit".into(),
            case: case.into(),
            classname: None,
            attempts,
        }
    }

    fn incident(what: &str, since: &str, until: Option<&str>) -> Incident {
        Incident {
            component: Some("datastorage".into()),
            pod: "datastorage-7d9f-x2".into(),
            what: what.into(),
            since: at(since),
            until: until.map(at),
            detail: String::new(),
            container: Some("datastorage".into()),
            exit_code: Some(137),
            limit: Some("64Mi".into()),
            restarts: Some(1),
            log_tail: None,
        }
    }

    #[test]
    fn verdicts_table() {
        // DataStorage OOMKilled at 22:40, back at 22:50 (its window).
        let oom = incident("OOMKilled", "22:40", Some("22:50"));
        let flap = incident("NotReady", "22:40", Some("22:50"));
        // (case, attempts, incidents, verdict, blamed on)
        type Row = (
            &'static str,
            Vec<Attempt>,
            Vec<Incident>,
            Option<Verdict>,
            Option<&'static str>,
        );
        let table: Vec<Row> = vec![
            (
                "passes",
                vec![attempt(1, true, "22:00", "22:01")],
                vec![oom.clone()],
                None,
                None,
            ),
            (
                "failed once, no retry, no incident",
                vec![attempt(1, false, "22:00", "22:01")],
                vec![oom.clone()],
                Some(Verdict::Real),
                None,
            ),
            (
                "started while it was down",
                vec![
                    attempt(1, false, "22:42", "22:43"),
                    attempt(2, true, "23:10", "23:11"),
                ],
                vec![oom.clone()],
                Some(Verdict::Infrastructure),
                Some("OOMKilled"),
            ),
            (
                "running when it was killed",
                vec![
                    attempt(1, false, "22:30", "22:41"),
                    attempt(2, true, "23:10", "23:11"),
                ],
                vec![oom.clone()],
                Some(Verdict::Infrastructure),
                Some("OOMKilled"),
            ),
            (
                "infrastructure on its only attempt",
                vec![attempt(1, false, "22:45", "22:46")],
                vec![oom.clone()],
                Some(Verdict::Infrastructure),
                Some("OOMKilled"),
            ),
            (
                "after recovery: flaky",
                vec![
                    attempt(1, false, "22:55", "22:56"),
                    attempt(2, true, "23:10", "23:11"),
                ],
                vec![oom.clone()],
                Some(Verdict::Flaky),
                None,
            ),
            (
                "before the incident: flaky",
                vec![
                    attempt(1, false, "22:00", "22:01"),
                    attempt(2, true, "23:10", "23:11"),
                ],
                vec![oom.clone()],
                Some(Verdict::Flaky),
                None,
            ),
            (
                "one failure blamed, one not, then passed: flaky",
                vec![
                    attempt(1, false, "22:00", "22:01"),
                    attempt(2, false, "22:45", "22:46"),
                    attempt(3, true, "23:10", "23:11"),
                ],
                vec![oom.clone()],
                Some(Verdict::Flaky),
                None,
            ),
            (
                "failed again with the infrastructure healthy: real",
                vec![
                    attempt(1, false, "22:45", "22:46"),
                    attempt(2, false, "23:10", "23:11"),
                ],
                vec![oom.clone()],
                Some(Verdict::Real),
                None,
            ),
            (
                "every attempt during an incident",
                vec![
                    attempt(1, false, "22:45", "22:46"),
                    attempt(2, false, "23:10", "23:11"),
                ],
                vec![oom.clone(), incident("Crashed", "23:05", None)],
                Some(Verdict::Infrastructure),
                Some("Crashed"),
            ),
            (
                "a window never closed",
                vec![attempt(1, false, "59:00", "59:01")],
                vec![incident("Evicted", "22:40", None)],
                Some(Verdict::Infrastructure),
                Some("Evicted"),
            ),
            (
                "the most telling incident is cited",
                vec![
                    attempt(1, false, "22:45", "22:46"),
                    attempt(2, true, "23:10", "23:11"),
                ],
                vec![flap.clone(), oom.clone()],
                Some(Verdict::Infrastructure),
                Some("OOMKilled"),
            ),
            (
                "ended the second the incident began",
                vec![
                    attempt(1, false, "22:39", "22:40"),
                    attempt(2, true, "23:10", "23:11"),
                ],
                vec![oom.clone()],
                Some(Verdict::Infrastructure),
                Some("OOMKilled"),
            ),
        ];
        for (case, attempts, incidents, want, blamed) in table {
            let got = classify(&[history(case, attempts)], &incidents);
            assert_eq!(got.first().map(|v| v.verdict), want, "{case}");
            assert_eq!(
                got.first()
                    .and_then(|v| v.incident.as_ref())
                    .map(|i| i.what.as_str()),
                blamed,
                "{case}"
            );
        }
    }

    #[test]
    fn the_run_passes_per_flaky_result() {
        let verdict = |verdict, passed_last| CaseVerdict {
            suite: "s".into(),
            case: "c".into(),
            classname: None,
            verdict,
            attempts: vec![
                attempt(1, false, "22:00", "22:01"),
                attempt(2, passed_last, "23:00", "23:01"),
            ],
            incident: None,
        };
        use FlakyResult::{Fail, Pass};
        use Verdict::{Flaky, Infrastructure, Real};
        // (suites passed at last, verdicts, --flaky-result, passed)
        let table = [
            (true, vec![], Pass, true),
            (true, vec![], Fail, true),
            (true, vec![verdict(Flaky, true)], Pass, true),
            (true, vec![verdict(Flaky, true)], Fail, false),
            (true, vec![verdict(Infrastructure, true)], Fail, true),
            (false, vec![verdict(Infrastructure, false)], Pass, false),
            (true, vec![verdict(Infrastructure, false)], Pass, false),
            (
                false,
                vec![verdict(Real, false), verdict(Flaky, true)],
                Pass,
                false,
            ),
            // A suite whose process failed at last fails the run, cases or not.
            (false, vec![], Pass, false),
        ];
        for (i, (suites, verdicts, flaky, want)) in table.into_iter().enumerate() {
            assert_eq!(suites_passed(suites, &verdicts, flaky), want, "row {i}");
        }
    }

    fn observed(at_: &str, component: &str, pod: &str, what: &str) -> Observed {
        Observed {
            at: at(at_),
            component: component.into(),
            pod: pod.into(),
            what: what.into(),
            detail: String::new(),
            since: None,
            container: None,
            exit_code: None,
            limit: None,
            restarts: None,
            log_tail: None,
        }
    }

    #[test]
    fn windows_close_on_the_first_sign_of_recovery() {
        let mut oom = observed("22:41", "datastorage", "ds-1", "OOMKilled");
        // The kubelet says it died at 22:40, a second before the watch saw it.
        oom.since = Some(at("22:40"));
        let timeline = vec![
            oom,
            observed("22:41", "datastorage", "ds-1", "NotReady"),
            // Another pod's Ready does not close ds-1's window…
            observed("22:43", "redis", "redis-1", "Ready"),
            observed("22:45", "datastorage", "ds-1", "Ready"),
            // …a pod of no component is no incident…
            observed("22:46", "-", "debug", "Crashed"),
            // …a deleted pod's window closes when a pod of its component is Ready…
            observed("22:50", "redis", "redis-1", "Deleted"),
            observed("22:58", "redis", "redis-2", "Ready"),
            // …and one nothing closes, when every component was confirmed settled.
            observed("23:00", "datastorage", "ds-1", "Crashed"),
            observed("23:01", "node", "audit-e2e-worker", "NodeCondition"),
            observed("23:02", "node", "audit-e2e-worker", "NodeRecovered"),
            observed("23:03", "api-server", "api-server", "Unreachable"),
        ];
        let settled = [at("23:30")];
        let got: Vec<(String, Timestamp, Option<Timestamp>, Option<String>)> =
            windows(&timeline, &settled)
                .into_iter()
                .map(|i| (i.what, i.since, i.until, i.component))
                .collect();
        let plus = |s: &str| Some(at(s).checked_add(RECOVERY_MARGIN).unwrap());
        let ds = Some("datastorage".to_owned());
        assert_eq!(
            got,
            [
                ("OOMKilled".into(), at("22:40"), plus("22:45"), ds.clone()),
                ("NotReady".into(), at("22:41"), plus("22:45"), ds.clone()),
                (
                    "Deleted".into(),
                    at("22:50"),
                    plus("22:58"),
                    Some("redis".into())
                ),
                ("Crashed".into(), at("23:00"), plus("23:30"), ds),
                ("NodeCondition".into(), at("23:01"), plus("23:02"), None),
                ("Unreachable".into(), at("23:03"), plus("23:30"), None),
            ]
        );
        // Without a confirmation, the last crash's window never closes.
        let open = windows(&timeline, &[]);
        assert_eq!(open[3].until, None);
    }

    #[test]
    fn attempts_read_as_words() {
        let v = |attempts| CaseVerdict {
            suite: "s".into(),
            case: "c".into(),
            classname: None,
            verdict: Verdict::Real,
            attempts,
            incident: None,
        };
        assert_eq!(
            v(vec![attempt(1, false, "22:00", "22:01")]).attempts_text(),
            "failed on its only attempt"
        );
        assert_eq!(
            v(vec![
                attempt(1, false, "22:00", "22:01"),
                attempt(2, true, "22:02", "22:03")
            ])
            .attempts_text(),
            "failed on attempt 1, passed on attempt 2"
        );
        assert_eq!(
            v(vec![
                attempt(1, false, "22:00", "22:01"),
                attempt(2, false, "22:02", "22:03"),
                attempt(3, false, "22:04", "22:05")
            ])
            .attempts_text(),
            "failed on attempts 1, 2 and 3"
        );
    }
}
