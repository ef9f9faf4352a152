//! Table tests of the readiness core over the real API objects captured
//! from a kind cluster in `tests/fixtures/k8s` (see its README).

use std::path::PathBuf;
use std::time::Duration;

use harness::readiness::classify::{PullCause, RefKind, SchedulingCause};
use harness::readiness::evidence::{self, Involved, Which};
use harness::readiness::rules::{self, Related, RuleError};
use harness::readiness::table::{ResourceRef, render, unready_row};
use harness::readiness::timeline::pod_timeline;
use harness::readiness::{State, Timestamp, Tolerance, Verdict, VerdictKind, classify_pod};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, Event, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

// ---------------------------------------------------------------- helpers

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/k8s")
        .join(rel)
}

fn json_of(rel: &str) -> Value {
    let text = std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn typed<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("fixture decodes")
}

fn load<T: DeserializeOwned>(rel: &str) -> T {
    typed(json_of(rel))
}

/// A fixture with a JSON-pointer-addressed field replaced: the small
/// variations no live capture has (generation bumps, conditions).
fn patched<T: DeserializeOwned>(rel: &str, edits: &[(&str, Value)]) -> T {
    let mut v = json_of(rel);
    for (pointer, new) in edits {
        set(&mut v, pointer, new.clone());
    }
    typed(v)
}

fn set(v: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let parent = if parent.is_empty() {
        &mut *v
    } else {
        v.pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"))
    };
    match parent {
        Value::Object(map) => {
            map.insert(key.to_owned(), new);
        }
        Value::Array(items) => {
            let i = key.parse::<usize>().expect("index");
            if i == items.len() {
                items.push(new);
            } else {
                items[i] = new;
            }
        }
        other => panic!("cannot set {key} in {other}"),
    }
}

fn events(rels: &[&str]) -> Vec<Event> {
    rels.iter()
        .flat_map(|rel| {
            let list = json_of(rel);
            let items = list["items"].as_array().expect("EventList").clone();
            items.into_iter().map(typed::<Event>)
        })
        .collect()
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// Just after the last state change captured (the captures end ~14:19:45).
const NOW: &str = "2026-11-22T14:20:00Z";

fn strict() -> Tolerance {
    Tolerance::default()
}

fn classify(pod_file: &str, event_files: &[&str], now: &str, tol: Tolerance) -> Vec<Verdict> {
    let pod: Pod = load(pod_file);
    classify_pod(&pod, &events(event_files), at(now), &tol)
}

/// The single verdict a doomed fixture pod must get.
fn only(verdicts: Vec<Verdict>, case: &str) -> Verdict {
    assert_eq!(verdicts.len(), 1, "{case}: {verdicts:#?}");
    verdicts.into_iter().next().unwrap()
}

fn assert_mentions(v: &Verdict, needles: &[&str], case: &str) {
    for needle in needles {
        assert!(
            v.message.contains(needle),
            "{case}: message {:?} lacks {needle:?}",
            v.message
        );
    }
    assert!(!v.hint.is_empty() && !v.hint.contains('\n'), "{case}: hint");
}

// ------------------------------------------------------- doomed pods

struct Case {
    name: &'static str,
    pod: &'static str,
    events: &'static [&'static str],
    now: &'static str,
    kind: &'static str,
    container: Option<(&'static str, bool)>,
    mentions: &'static [&'static str],
}

const DOOMED: &[Case] = &[
    Case {
        name: "image not loaded (ImagePullBackOff)",
        pod: "pod-image-pull-backoff/pod.pull-missing.json",
        events: &["pod-image-pull-backoff/events.pod.pull-missing.json"],
        now: NOW,
        kind: "ImagePull",
        container: Some(("app", false)),
        // The pod only says "Back-off pulling image"; the event has the why.
        mentions: &[
            "fixtures/never-loaded:v1",
            "not on the node",
            "ImagePullBackOff",
            "no such host",
        ],
    },
    Case {
        name: "image not loaded (ErrImagePull snapshot)",
        pod: "pod-image-pull-backoff/pod.pull-missing.state-Pending_waiting-ErrImagePull.json",
        events: &[],
        now: NOW,
        kind: "ImagePull",
        container: Some(("app", false)),
        mentions: &["fixtures/never-loaded:v1", "ErrImagePull", "no such host"],
    },
    Case {
        name: ":latest pulls always",
        pod: "pod-latest-pull-always/pod.latest-always.json",
        events: &["pod-latest-pull-always/events.pod.latest-always.json"],
        now: NOW,
        kind: "ImagePull",
        container: Some(("app", false)),
        mentions: &["fixtures/app:latest", ":latest tag", "Always"],
    },
    Case {
        name: "ErrImageNeverPull",
        pod: "pod-err-image-never-pull/pod.never-pull.json",
        events: &["pod-err-image-never-pull/events.pod.never-pull.json"],
        now: NOW,
        kind: "ErrImageNeverPull",
        container: Some(("app", false)),
        mentions: &["fixtures/never-loaded:v1", "Never"],
    },
    Case {
        name: "CrashLoopBackOff",
        pod: "pod-crashloop/pod.crashloop.json",
        events: &["pod-crashloop/events.pod.crashloop.json"],
        now: NOW,
        kind: "CrashLoopBackOff",
        container: Some(("app", false)),
        mentions: &["CrashLoopBackOff", "4 restarts", "exit code 1"],
    },
    Case {
        name: "crash caught while terminated",
        pod: "pod-crashloop/pod.crashloop.state-Running_terminated-Error.json",
        events: &[],
        now: NOW,
        kind: "CrashLoopBackOff",
        container: Some(("app", false)),
        mentions: &["exited with code 1 (Error)", "4 restarts"],
    },
    Case {
        name: "the progress-deadline Deployment's pod",
        pod: "deploy-progress-deadline/pod.stuck-rollout-75cbb85967-xqw7m.json",
        events: &["deploy-progress-deadline/events.pod.stuck-rollout-75cbb85967-xqw7m.json"],
        now: NOW,
        kind: "CrashLoopBackOff",
        container: Some(("app", false)),
        mentions: &["exited with code 1 (Error)"],
    },
    Case {
        name: "OOMKilled in back-off",
        pod: "pod-oomkilled/pod.oom.json",
        events: &["pod-oomkilled/events.pod.oom.json"],
        now: NOW,
        kind: "OOMKilled",
        container: Some(("app", false)),
        mentions: &["32Mi", "exit 137", "4 restarts"],
    },
    Case {
        name: "OOMKilled caught terminated",
        pod: "pod-oomkilled/pod.oom.state-Running_terminated-OOMKilled.json",
        events: &[],
        now: NOW,
        kind: "OOMKilled",
        container: Some(("app", false)),
        mentions: &["32Mi"],
    },
    Case {
        name: "OOMKilled while momentarily Ready",
        pod: "pod-oomkilled/pod.oom.state-Running_running.json",
        events: &[],
        now: "2026-11-22T14:18:13Z",
        kind: "OOMKilled",
        container: Some(("app", false)),
        mentions: &["32Mi"],
    },
    Case {
        name: "missing key in an existing Secret",
        pod: "pod-create-container-config-error/pod.config-error-missing-key.json",
        events: &["pod-create-container-config-error/events.pod.config-error-missing-key.json"],
        now: NOW,
        kind: "CreateContainerConfigError",
        container: Some(("app", false)),
        mentions: &["`missing`", "Secret fx/app-secret"],
    },
    Case {
        name: "missing Secret",
        pod: "pod-create-container-config-error/pod.config-error-missing-secret.json",
        events: &["pod-create-container-config-error/events.pod.config-error-missing-secret.json"],
        now: NOW,
        kind: "CreateContainerConfigError",
        container: Some(("app", false)),
        mentions: &["no-such-secret", "not found", "`token`"],
    },
    Case {
        name: "Unschedulable: resources",
        pod: "pod-unschedulable-resources/pod.too-big.json",
        events: &[],
        now: NOW,
        kind: "Unschedulable",
        container: None,
        mentions: &["insufficient memory"],
    },
    Case {
        name: "Unschedulable: node selector",
        pod: "pod-unschedulable-node-selector/pod.no-matching-node.json",
        events: &[],
        now: NOW,
        kind: "Unschedulable",
        container: None,
        mentions: &["node selector/affinity"],
    },
    Case {
        name: "Unschedulable: unbound PVC",
        pod: "pvc-pending/pod.pvc-user.json",
        events: &["pvc-pending/events.pod.pvc-user.json"],
        now: NOW,
        kind: "Unschedulable",
        container: None,
        mentions: &["unbound PersistentVolumeClaim"],
    },
    Case {
        name: "readiness probe (http)",
        pod: "pod-readiness-failing/pod.readiness-http.json",
        events: &["pod-readiness-failing/events.pod.readiness-http.json"],
        now: NOW,
        kind: "ReadinessProbeFailing",
        container: Some(("app", false)),
        mentions: &[
            "GET http://10.245.1.21:9999/healthz",
            "22 times",
            "connection refused",
        ],
    },
    Case {
        name: "readiness probe (exec)",
        pod: "pod-readiness-failing/pod.readiness-exec.json",
        events: &["pod-readiness-failing/events.pod.readiness-exec.json"],
        now: NOW,
        kind: "ReadinessProbeFailing",
        container: Some(("app", false)),
        mentions: &["exec [\"/bin/false\"]", "22 times", "(no output)"],
    },
    Case {
        name: "init container crash-looping",
        pod: "pod-init-crashloop/pod.init-crash.json",
        events: &["pod-init-crashloop/events.pod.init-crash.json"],
        now: NOW,
        kind: "InitContainerStuck",
        container: Some(("migrate", true)),
        mentions: &["init container migrate", "CrashLoopBackOff", "exit code 1"],
    },
    Case {
        name: "init container running too long",
        pod: "pod-init-stuck/pod.init-stuck.json",
        events: &["pod-init-stuck/events.pod.init-stuck.json"],
        now: NOW,
        kind: "InitContainerStuck",
        container: Some(("wait-for-db", true)),
        mentions: &["init container wait-for-db", "running for 193s"],
    },
    Case {
        name: "sandbox creation failing",
        pod: "pod-sandbox-create-failed/pod.agent-gls79.json",
        events: &["pod-sandbox-create-failed/events.pod.agent-gls79.json"],
        now: NOW,
        kind: "SandboxCreateFailed",
        container: None,
        mentions: &["cni0", "already has an IP address"],
    },
    Case {
        name: "bare pod exited non-zero",
        pod: "pod-failed/pod.run-fail.json",
        events: &["pod-failed/events.pod.run-fail.json"],
        now: NOW,
        kind: "Exited",
        container: Some(("app", false)),
        mentions: &["code 3"],
    },
    Case {
        name: "failed Job pod",
        pod: "job-failed/pod.job-fail-g4ntj.json",
        events: &["job-failed/events.pod.job-fail-g4ntj.json"],
        now: NOW,
        kind: "Exited",
        container: Some(("work", false)),
        mentions: &["code 2"],
    },
];

#[test]
fn doomed_fixture_pods_get_their_named_verdict() {
    for case in DOOMED {
        let v = only(
            classify(case.pod, case.events, case.now, strict()),
            case.name,
        );
        assert_eq!(v.kind.name(), case.kind, "{}", case.name);
        let container = v.container.as_ref().map(|c| (c.name.as_str(), c.init));
        assert_eq!(container, case.container, "{}", case.name);
        assert_mentions(&v, case.mentions, case.name);
    }
}

#[test]
fn image_pull_cause_is_read_from_the_spec() {
    let cause = |pod, events| match only(classify(pod, events, NOW, strict()), pod).kind {
        VerdictKind::ImagePull { cause, .. } => cause,
        other => panic!("{pod}: {other:?}"),
    };
    assert_eq!(
        cause(
            "pod-image-pull-backoff/pod.pull-missing.json",
            &["pod-image-pull-backoff/events.pod.pull-missing.json"]
        ),
        PullCause::NotLoaded
    );
    assert_eq!(
        cause("pod-latest-pull-always/pod.latest-always.json", &[]),
        PullCause::LatestTag
    );
    // The same failure with an explicit Always on a pinned tag.
    let pod: Pod = patched(
        "pod-image-pull-backoff/pod.pull-missing.json",
        &[("/spec/containers/0/imagePullPolicy", json!("Always"))],
    );
    let v = only(
        classify_pod(&pod, &[], at(NOW), &strict()),
        "explicit Always",
    );
    assert!(matches!(
        v.kind,
        VerdictKind::ImagePull {
            cause: PullCause::PullAlways,
            ..
        }
    ));
    // The status names every pod's image `docker.io/fixtures/app:latest`
    // (README): the verdict must quote the spec's image instead.
    let never: Verdict = only(
        classify(
            "pod-err-image-never-pull/pod.never-pull.json",
            &[],
            NOW,
            strict(),
        ),
        "never",
    );
    assert_eq!(
        never.kind,
        VerdictKind::ImageNeverPull {
            image: "fixtures/never-loaded:v1".to_owned()
        }
    );
}

#[test]
fn transient_looking_pull_errors_get_the_grace_period() {
    let pod: Pod = patched(
        "pod-image-pull-backoff/pod.pull-missing.state-Pending_waiting-ErrImagePull.json",
        &[(
            "/status/containerStatuses/0/state/waiting/message",
            json!(
                "rpc error: code = Unknown desc = failed to pull: read tcp 10.0.0.1:443: i/o timeout"
            ),
        )],
    );
    let patient = Tolerance {
        grace: Duration::from_secs(600),
        restarts: 0,
    };
    assert!(classify_pod(&pod, &[], at(NOW), &patient).is_empty());
    assert_eq!(classify_pod(&pod, &[], at(NOW), &strict()).len(), 1);
    // The captured "no such host" is definitive even within grace.
    let v = classify(
        "pod-image-pull-backoff/pod.pull-missing.state-Pending_waiting-ErrImagePull.json",
        &[],
        NOW,
        patient,
    );
    assert_eq!(v.len(), 1);
}

#[test]
fn oom_verdict_reports_the_memory_limit() {
    let v = only(
        classify("pod-oomkilled/pod.oom.json", &[], NOW, strict()),
        "oom",
    );
    assert_eq!(
        v.kind,
        VerdictKind::OomKilled {
            memory_limit: Some("32Mi".to_owned())
        }
    );
    // Exit 137 without an OOMKilled reason still counts when a limit is set...
    let sigkill: Pod = patched(
        "pod-oomkilled/pod.oom.json",
        &[(
            "/status/containerStatuses/0/lastState/terminated/reason",
            json!("Error"),
        )],
    );
    let v = only(classify_pod(&sigkill, &[], at(NOW), &strict()), "137");
    assert_eq!(v.kind.name(), "OOMKilled");
    // ...but not without one: then it is a plain crash loop.
    let no_limit: Pod = patched(
        "pod-oomkilled/pod.oom.json",
        &[
            (
                "/status/containerStatuses/0/lastState/terminated/reason",
                json!("Error"),
            ),
            ("/spec/containers/0/resources", json!({})),
        ],
    );
    let v = only(classify_pod(&no_limit, &[], at(NOW), &strict()), "no limit");
    assert_eq!(v.kind.name(), "CrashLoopBackOff");
}

#[test]
fn a_container_that_survived_its_last_oom_kill_long_enough_is_trusted_again() {
    let v = classify(
        "pod-oomkilled/pod.oom.state-Running_running.json",
        &[],
        "2026-11-22T14:40:00Z",
        strict(),
    );
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn config_errors_name_the_missing_reference() {
    let missing = |pod| match only(classify(pod, &[], NOW, strict()), pod).kind {
        VerdictKind::ConfigError { missing } => missing.expect("parsed"),
        other => panic!("{other:?}"),
    };
    let key = missing("pod-create-container-config-error/pod.config-error-missing-key.json");
    assert_eq!(
        (
            key.kind,
            key.name.as_str(),
            key.key.as_deref(),
            key.object_exists
        ),
        (RefKind::Secret, "fx/app-secret", Some("missing"), true)
    );
    let secret = missing("pod-create-container-config-error/pod.config-error-missing-secret.json");
    assert_eq!(
        (
            secret.kind,
            secret.name.as_str(),
            secret.key.as_deref(),
            secret.object_exists
        ),
        (RefKind::Secret, "no-such-secret", Some("token"), false)
    );
}

#[test]
fn an_unsynced_kubelet_cache_is_not_a_config_error() {
    let pod: Pod = patched(
        "pod-create-container-config-error/pod.config-error-missing-key.json",
        &[(
            "/status/containerStatuses/0/state/waiting/message",
            json!("failed to sync secret cache: timed out waiting for the condition"),
        )],
    );
    assert!(classify_pod(&pod, &[], at(NOW), &strict()).is_empty());
}

#[test]
fn unschedulable_sub_reasons_differ_by_cause() {
    let causes = |pod| match only(classify(pod, &[], NOW, strict()), pod).kind {
        VerdictKind::Unschedulable { causes } => causes,
        other => panic!("{other:?}"),
    };
    let taint = SchedulingCause::UntoleratedTaint {
        taint: "{node-role.kubernetes.io/master: }".to_owned(),
        nodes: 1,
    };
    assert_eq!(
        causes("pod-unschedulable-resources/pod.too-big.json"),
        vec![SchedulingCause::InsufficientMemory(1), taint.clone()]
    );
    assert_eq!(
        causes("pod-unschedulable-node-selector/pod.no-matching-node.json"),
        vec![SchedulingCause::NodeSelectorOrAffinity(1), taint]
    );
    assert_eq!(
        causes("pvc-pending/pod.pvc-user.json"),
        vec![SchedulingCause::UnboundPvc]
    );
}

#[test]
fn unschedulable_waits_for_the_schedule_window() {
    // PodScheduled went False at 14:16:37 (resources) and 14:16:38 (pvc).
    for (pod, ltt) in [
        (
            "pod-unschedulable-resources/pod.too-big.json",
            "2026-11-22T14:16:37Z",
        ),
        ("pvc-pending/pod.pvc-user.json", "2026-11-22T14:16:38Z"),
    ] {
        let early = at(ltt) + Duration::from_secs(10);
        let late = at(ltt) + Duration::from_secs(15);
        let p: Pod = load(pod);
        assert!(classify_pod(&p, &[], early, &strict()).is_empty(), "{pod}");
        assert_eq!(classify_pod(&p, &[], late, &strict()).len(), 1, "{pod}");
    }
}

#[test]
fn init_container_running_within_its_window_is_not_stuck() {
    // wait-for-db started at 14:16:47.
    let v = classify(
        "pod-init-stuck/pod.init-stuck.json",
        &[],
        "2026-11-22T14:17:30Z",
        strict(),
    );
    assert!(v.is_empty(), "{v:#?}");
    // A component's longer grace extends the window.
    let patient = Tolerance {
        grace: Duration::from_secs(600),
        restarts: 0,
    };
    assert!(classify("pod-init-stuck/pod.init-stuck.json", &[], NOW, patient).is_empty());
}

#[test]
fn a_running_native_sidecar_is_not_a_stuck_init_container() {
    let pod: Pod = patched(
        "pod-init-stuck/pod.init-stuck.json",
        &[("/spec/initContainers/0/restartPolicy", json!("Always"))],
    );
    assert!(classify_pod(&pod, &[], at(NOW), &strict()).is_empty());
}

#[test]
fn sandbox_failures_of_a_pod_that_recovered_are_history() {
    // agent-gls79 in daemonset-ready carries the same FailedCreatePodSandBox
    // events but runs now.
    let v = classify(
        "daemonset-ready/pod.agent-gls79.json",
        &["daemonset-ready/events.pod.agent-gls79.json"],
        NOW,
        strict(),
    );
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn readiness_probe_uses_only_this_pods_events() {
    // Both pods' events together, as a by-name query on a shared prefix or a
    // namespace-wide list would return them: each pod keeps its own target
    // and count.
    let both = [
        "pod-readiness-failing/events.pod.readiness-http.json",
        "pod-readiness-failing/events.pod.readiness-exec.json",
    ];
    let exec = only(
        classify(
            "pod-readiness-failing/pod.readiness-exec.json",
            &both,
            NOW,
            strict(),
        ),
        "exec",
    );
    assert!(
        matches!(&exec.kind, VerdictKind::ReadinessProbeFailing { target } if target.starts_with("exec"))
    );
    assert!(exec.message.contains("22 times"), "{}", exec.message);
    // The same events relabelled as another kind's (same name and uid, as
    // an artificial worst case) are not this pod's.
    let mut foreign = events(&["pod-readiness-failing/events.pod.readiness-exec.json"]);
    for e in &mut foreign {
        e.involved_object.kind = Some("Endpoints".to_owned());
    }
    let pod: Pod = load("pod-readiness-failing/pod.readiness-exec.json");
    assert!(classify_pod(&pod, &foreign, at(NOW), &strict()).is_empty());
    // No events, no evidence of a probe failing: not (yet) a verdict.
    assert!(
        classify(
            "pod-readiness-failing/pod.readiness-exec.json",
            &[],
            NOW,
            strict()
        )
        .is_empty()
    );
    // Within grace, failing probes are a warm-up.
    let patient = Tolerance {
        grace: Duration::from_secs(600),
        restarts: 0,
    };
    assert!(
        classify(
            "pod-readiness-failing/pod.readiness-exec.json",
            &both,
            NOW,
            patient
        )
        .is_empty()
    );
}

#[test]
fn healthy_and_finished_pods_get_no_verdict() {
    for (pod, events) in [
        (
            "deploy-healthy/pod.web-57f64b4f4d-5bqnc.json",
            "deploy-healthy/events.pod.web-57f64b4f4d-5bqnc.json",
        ),
        (
            "deploy-healthy/pod.web-57f64b4f4d-l64xc.json",
            "deploy-healthy/events.pod.web-57f64b4f4d-l64xc.json",
        ),
        (
            "job-complete/pod.job-ok-sf7rk.json",
            "job-complete/events.pod.job-ok-sf7rk.json",
        ),
        (
            "statefulset-ready/pod.db-0.json",
            "statefulset-ready/events.pod.db-0.json",
        ),
        (
            "daemonset-ready/pod.agent-72ch5.json",
            "daemonset-ready/events.pod.agent-72ch5.json",
        ),
        (
            "pod-succeeded/pod.run-ok.json",
            "pod-succeeded/events.pod.run-ok.json",
        ),
    ] {
        let v = classify(pod, &[events], NOW, strict());
        assert!(v.is_empty(), "{pod}: {v:#?}");
    }
}

#[test]
fn evicted_and_terminating_pods_are_transient() {
    let evicted: Pod = patched(
        "pod-failed/pod.run-fail.json",
        &[
            ("/status/reason", json!("Evicted")),
            (
                "/status/message",
                json!("The node was low on resource: memory."),
            ),
        ],
    );
    assert!(classify_pod(&evicted, &[], at(NOW), &strict()).is_empty());
    assert_eq!(rules::pod(&evicted).state, State::InProgress);
    let deleting: Pod = patched(
        "pod-crashloop/pod.crashloop.json",
        &[("/metadata/deletionTimestamp", json!(NOW))],
    );
    assert!(classify_pod(&deleting, &[], at(NOW), &strict()).is_empty());
    assert_eq!(rules::pod(&deleting).state, State::Terminating);
}

#[test]
fn tolerance_forgives_restarts_within_grace_only() {
    // pod-crashloop: restartCount 4, started 14:16:37.
    let pod = "pod-crashloop/pod.crashloop.json";
    let now = "2026-11-22T14:18:30Z"; // 113 s after start
    let tol = |grace, restarts| Tolerance {
        grace: Duration::from_secs(grace),
        restarts,
    };
    for (grace, restarts, doomed) in [
        (300, 5, false), // more restarts allowed than happened, within grace
        (300, 4, false), // exactly as many as allowed
        (300, 3, true),  // one restart too many
        (60, 5, true),   // grace is over
        (0, 0, true),    // the strict default
    ] {
        let v = classify(pod, &[], now, tol(grace, restarts));
        assert_eq!(
            !v.is_empty(),
            doomed,
            "grace {grace}s restarts {restarts}: {v:#?}"
        );
    }
    // Phase Failed pods are never forgiven: nothing will restart them.
    let v = classify("pod-failed/pod.run-fail.json", &[], NOW, tol(3600, 100));
    assert_eq!(v.len(), 1);
    // Tolerance covers OOM restarts and init crash loops alike.
    assert!(classify("pod-oomkilled/pod.oom.json", &[], now, tol(300, 5)).is_empty());
    assert!(
        classify(
            "pod-init-crashloop/pod.init-crash.json",
            &[],
            now,
            tol(300, 5)
        )
        .is_empty()
    );
}

#[test]
fn a_crash_loop_caused_by_a_liveness_probe_says_so() {
    let pod: Pod = load("pod-crashloop/pod.crashloop.json");
    let mut evs = events(&["pod-crashloop/events.pod.crashloop.json"]);
    let mut liveness =
        json_of("pod-readiness-failing/events.pod.readiness-http.json")["items"][4].clone();
    liveness["involvedObject"]["uid"] = json!(pod.metadata.uid);
    liveness["message"] = json!("Liveness probe failed: Get \"http://10.245.1.11:8080/live\": EOF");
    evs.push(typed(liveness));
    let v = only(classify_pod(&pod, &evs, at(NOW), &strict()), "liveness");
    assert_eq!(v.kind.name(), "CrashLoopBackOff");
    assert!(
        v.message
            .contains("killed by its failing probe: Liveness probe failed"),
        "{}",
        v.message
    );
    // Without the event, no such claim.
    let plain = only(
        classify_pod(
            &pod,
            &events(&["pod-crashloop/events.pod.crashloop.json"]),
            at(NOW),
            &strict(),
        ),
        "plain",
    );
    assert!(!plain.message.contains("probe"), "{}", plain.message);
}

#[test]
fn verdicts_are_ranked_most_likely_cause_first() {
    // A pod whose sidecar lacks its image while the app crash-loops: the
    // image is the root cause, listed first.
    let mut pod = json_of("pod-crashloop/pod.crashloop.json");
    let mut sidecar = pod["status"]["containerStatuses"][0].clone();
    sidecar["name"] = json!("sidecar");
    sidecar["state"] =
        json!({"waiting": {"reason": "ErrImageNeverPull", "message": "not present"}});
    pod["status"]["containerStatuses"]
        .as_array_mut()
        .unwrap()
        .push(sidecar);
    let mut spec = pod["spec"]["containers"][0].clone();
    spec["name"] = json!("sidecar");
    spec["image"] = json!("fixtures/sidecar:v1");
    pod["spec"]["containers"].as_array_mut().unwrap().push(spec);
    let v = classify_pod(&typed(pod), &[], at(NOW), &strict());
    let kinds: Vec<&str> = v.iter().map(|v| v.kind.name()).collect();
    assert_eq!(kinds, ["ErrImageNeverPull", "CrashLoopBackOff"]);
    assert!(v.windows(2).all(|w| w[0].rank() <= w[1].rank()));
}

// ------------------------------------------------------------- rules

#[test]
fn deployment_rules() {
    let healthy = "deploy-healthy/deployment.web.json";
    let cases: Vec<(&str, Deployment, State, &str)> = vec![
        ("healthy", load(healthy), State::Ready, "Available"),
        (
            "progress deadline",
            load("deploy-progress-deadline/deployment.stuck-rollout.json"),
            State::Failed,
            "ProgressDeadlineExceeded",
        ),
        (
            "generation not observed",
            patched(healthy, &[("/metadata/generation", json!(2))]),
            State::InProgress,
            "ObservedGenerationMismatch",
        ),
        (
            "being deleted",
            patched(healthy, &[("/metadata/deletionTimestamp", json!(NOW))]),
            State::Terminating,
            "Terminating",
        ),
        (
            "scaled up, not rolled out",
            patched(healthy, &[("/spec/replicas", json!(3))]),
            State::InProgress,
            "RollingOut",
        ),
        (
            "a pod not ready",
            patched(healthy, &[("/status/readyReplicas", json!(1))]),
            State::InProgress,
            "ReplicasNotReady",
        ),
        (
            "old replicas left",
            patched(healthy, &[("/status/replicas", json!(3))]),
            State::InProgress,
            "OldReplicasPending",
        ),
        (
            "counts fine but Available=False",
            patched(healthy, &[("/status/conditions/0/status", json!("False"))]),
            State::InProgress,
            "NotAvailable",
        ),
        (
            "Progressing=False without a deadline reason",
            patched(
                healthy,
                &[
                    ("/status/conditions/1/status", json!("False")),
                    (
                        "/status/conditions/1/reason",
                        json!("ReplicaSetCreateError"),
                    ),
                ],
            ),
            State::Failed,
            "ReplicaSetCreateError",
        ),
        (
            "ReplicaFailure surfaced on the Deployment",
            patched(
                healthy,
                &[(
                    "/status/conditions/2",
                    json!({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                           "message": "pods \"web-x\" is forbidden: exceeded quota: q"}),
                )],
            ),
            State::Failed,
            "FailedCreate",
        ),
    ];
    for (name, d, state, reason) in cases {
        let s = rules::deployment(&d);
        assert_eq!(
            (s.state, s.reason.as_str()),
            (state, reason),
            "{name}: {s:?}"
        );
    }
    let s = rules::deployment(&load(
        "deploy-progress-deadline/deployment.stuck-rollout.json",
    ));
    assert!(s.message.contains("stuck-rollout-75cbb85967"), "{s:?}");
}

#[test]
fn replica_set_failure_carries_its_message() {
    let rs = "deploy-healthy/replicaset.web-57f64b4f4d.json";
    assert_eq!(rules::replica_set(&load(rs)).state, State::Ready);
    let failing: ReplicaSet = patched(
        rs,
        &[(
            "/status/conditions",
            json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                    "message": "pods \"web-1\" is forbidden: exceeded quota: compute"}]),
        )],
    );
    let s = rules::replica_set(&failing);
    assert_eq!(s.state, State::Failed);
    assert!(s.message.contains("exceeded quota"), "{s:?}");
    // The stuck rollout's ReplicaSet has no ready pod.
    let stuck = rules::replica_set(&load(
        "deploy-progress-deadline/replicaset.stuck-rollout-75cbb85967.json",
    ));
    assert_eq!(stuck.state, State::InProgress);
}

#[test]
fn stateful_set_rules() {
    let ready = "statefulset-ready/statefulset.db.json";
    let cases: Vec<(&str, StatefulSet, State)> = vec![
        ("ready", load(ready), State::Ready),
        (
            "pod not ready",
            patched(ready, &[("/status/readyReplicas", json!(0))]),
            State::InProgress,
        ),
        (
            "revision rolling out",
            patched(ready, &[("/status/updateRevision", json!("db-new"))]),
            State::InProgress,
        ),
        (
            "OnDelete does not roll out by itself",
            patched(
                ready,
                &[
                    ("/status/updateRevision", json!("db-new")),
                    ("/spec/updateStrategy", json!({"type": "OnDelete"})),
                ],
            ),
            State::Ready,
        ),
        (
            "partition above every pod: nothing to update",
            patched(
                ready,
                &[
                    ("/status/updateRevision", json!("db-new")),
                    ("/status/updatedReplicas", json!(0)),
                    (
                        "/spec/updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}),
                    ),
                ],
            ),
            State::Ready,
        ),
        (
            "partition below the pods: they must be updated",
            patched(
                ready,
                &[
                    ("/spec/replicas", json!(3)),
                    ("/status/replicas", json!(3)),
                    ("/status/readyReplicas", json!(3)),
                    ("/status/availableReplicas", json!(3)),
                    ("/status/updateRevision", json!("db-new")),
                    ("/status/updatedReplicas", json!(1)),
                    (
                        "/spec/updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}),
                    ),
                ],
            ),
            State::InProgress,
        ),
        (
            "generation not observed",
            patched(ready, &[("/status/observedGeneration", json!(0))]),
            State::InProgress,
        ),
    ];
    for (name, s, state) in cases {
        assert_eq!(rules::stateful_set(&s).state, state, "{name}");
    }
}

#[test]
fn daemon_set_rules() {
    let ready: DaemonSet = load("daemonset-ready/daemonset.agent.json");
    assert_eq!(rules::daemon_set(&ready).state, State::Ready);
    let s = rules::daemon_set(&load("pod-sandbox-create-failed/daemonset.agent.json"));
    assert_eq!(
        (s.state, s.reason.as_str()),
        (State::InProgress, "PodsUnavailable")
    );
    assert!(s.message.contains("1 of 2"), "{s:?}");
    let rolling: DaemonSet = patched(
        "daemonset-ready/daemonset.agent.json",
        &[("/status/updatedNumberScheduled", json!(1))],
    );
    assert_eq!(rules::daemon_set(&rolling).reason, "RollingOut");
}

#[test]
fn job_rules() {
    let s = rules::job(&load("job-complete/job.job-ok.json"));
    assert_eq!(s.state, State::Ready);
    let s = rules::job(&load("job-failed/job.job-fail.json"));
    assert_eq!(
        (s.state, s.reason.as_str()),
        (State::Failed, "BackoffLimitExceeded")
    );
    assert!(s.message.contains("backoff limit"), "{s:?}");
    // A running Job is not done (kstatus says it is; we do not).
    let running: Job = patched(
        "job-complete/job.job-ok.json",
        &[
            ("/status/conditions", json!([])),
            ("/status/active", json!(1)),
            ("/status/succeeded", json!(0)),
        ],
    );
    let s = rules::job(&running);
    assert_eq!((s.state, s.reason.as_str()), (State::InProgress, "Running"));
    // Newer servers: SuccessCriteriaMet precedes Complete; still wait.
    let criteria: Job = patched(
        "job-complete/job.job-ok.json",
        &[("/status/conditions/0/type", json!("SuccessCriteriaMet"))],
    );
    assert_eq!(rules::job(&criteria).state, State::InProgress);
}

#[test]
fn crd_rules() {
    let s = rules::crd(&load("crd/crd.widgets.example.com.json"));
    assert_eq!(s.state, State::Ready);
    let s = rules::crd(&load("crd/crd.gizmos.example.com.json"));
    assert_eq!(
        (s.state, s.reason.as_str()),
        (State::Failed, "ListKindConflict")
    );
    assert!(s.message.contains("WidgetList"), "{s:?}");
    let s = rules::crd(&load("crd/crd.doohickeys.example.com.json"));
    assert_eq!(
        (s.state, s.reason.as_str()),
        (State::Failed, "ShortNamesConflict")
    );
    let fresh: CustomResourceDefinition = patched(
        "crd/crd.widgets.example.com.json",
        &[("/status/conditions", json!([]))],
    );
    assert_eq!(rules::crd(&fresh).state, State::InProgress);
    let not_established: CustomResourceDefinition = patched(
        "crd/crd.widgets.example.com.json",
        &[("/status/conditions/1/status", json!("False"))],
    );
    assert_eq!(rules::crd(&not_established).reason, "NotEstablished");
}

#[test]
fn pod_rules() {
    let cases: &[(&str, State, &str)] = &[
        (
            "deploy-healthy/pod.web-57f64b4f4d-5bqnc.json",
            State::Ready,
            "Ready",
        ),
        ("statefulset-ready/pod.db-0.json", State::Ready, "Ready"),
        (
            "job-complete/pod.job-ok-sf7rk.json",
            State::Ready,
            "Completed",
        ),
        // A pod outside a Job that ran to completion serves nothing.
        ("pod-succeeded/pod.run-ok.json", State::Failed, "Completed"),
        ("pod-failed/pod.run-fail.json", State::Failed, "PodFailed"),
        (
            "job-failed/pod.job-fail-k6z6x.json",
            State::Failed,
            "PodFailed",
        ),
        (
            "pod-readiness-failing/pod.readiness-http.json",
            State::InProgress,
            "ContainersNotReady",
        ),
        (
            "pod-unschedulable-resources/pod.too-big.json",
            State::InProgress,
            "Unschedulable",
        ),
        (
            "pod-init-stuck/pod.init-stuck.json",
            State::InProgress,
            "ContainersNotInitialized",
        ),
        // Momentarily Ready between OOM kills: the rule says Ready, the
        // classifier says OOMKilled (see doomed_fixture_pods...).
        (
            "pod-oomkilled/pod.oom.state-Running_running.json",
            State::Ready,
            "Ready",
        ),
    ];
    for (file, state, reason) in cases {
        let s = rules::pod(&load(file));
        assert_eq!(
            (s.state, s.reason.as_str()),
            (*state, *reason),
            "{file}: {s:?}"
        );
    }
}

#[test]
fn pvc_rules() {
    let pending: PersistentVolumeClaim = load("pvc-pending/persistentvolumeclaim.data.json");
    assert_eq!(rules::pvc(&pending).state, State::InProgress);
    for (phase, state) in [("Bound", State::Ready), ("Lost", State::Failed)] {
        let p: PersistentVolumeClaim = patched(
            "pvc-pending/persistentvolumeclaim.data.json",
            &[("/status/phase", json!(phase))],
        );
        assert_eq!(rules::pvc(&p).state, state, "{phase}");
    }
}

#[test]
fn service_rules() {
    let web: Service = load("deploy-healthy/service.web.json");
    let not_ready: Service = load("pod-readiness-failing/service.not-ready.json");
    let db: Service = load("statefulset-ready/service.db.json");
    let web_ep: Endpoints = load("endpoints/endpoints.web.json");
    let not_ready_ep: Endpoints = load("endpoints/endpoints.not-ready.json");
    let slices: Vec<EndpointSlice> = json_of("endpoints/endpointslices.fx.json")["items"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(typed)
        .collect();
    fn with_ep(e: &Endpoints) -> Related<'_> {
        Related {
            endpoints: std::slice::from_ref(e),
            ..Related::default()
        }
    }
    let with_slices = Related {
        endpoint_slices: &slices,
        ..Related::default()
    };
    let none = Related::default();
    let cases: Vec<(&str, &Service, Related<'_>, State, &str)> = vec![
        (
            "web via Endpoints",
            &web,
            with_ep(&web_ep),
            State::Ready,
            "EndpointsReady",
        ),
        (
            "web via slices",
            &web,
            with_slices,
            State::Ready,
            "EndpointsReady",
        ),
        (
            "not-ready via Endpoints",
            &not_ready,
            with_ep(&not_ready_ep),
            State::InProgress,
            "EndpointsNotReady",
        ),
        (
            "not-ready via slices",
            &not_ready,
            with_slices,
            State::InProgress,
            "EndpointsNotReady",
        ),
        (
            "headless db via slices",
            &db,
            with_slices,
            State::Ready,
            "EndpointsReady",
        ),
        (
            "web, nothing fetched",
            &web,
            none,
            State::InProgress,
            "NoEndpoints",
        ),
        // Another Service's EndpointSlices or Endpoints must not count.
        (
            "web given not-ready's Endpoints",
            &web,
            with_ep(&not_ready_ep),
            State::InProgress,
            "NoEndpoints",
        ),
        (
            "web given not-ready's slices only",
            &web,
            Related {
                endpoint_slices: &slices[1..2],
                ..Related::default()
            },
            State::InProgress,
            "NoEndpoints",
        ),
    ];
    for (name, svc, related, state, reason) in cases {
        let s = rules::service(svc, &related);
        assert_eq!(
            (s.state, s.reason.as_str()),
            (state, reason),
            "{name}: {s:?}"
        );
    }

    let external: Service = patched(
        "deploy-healthy/service.web.json",
        &[
            ("/spec/type", json!("ExternalName")),
            ("/spec/externalName", json!("example.com")),
        ],
    );
    assert_eq!(rules::service(&external, &none).state, State::Ready);
    let publish: Service = patched(
        "pod-readiness-failing/service.not-ready.json",
        &[("/spec/publishNotReadyAddresses", json!(true))],
    );
    assert_eq!(
        rules::service(&publish, &with_ep(&not_ready_ep)).state,
        State::Ready
    );
    let lb: Service = patched(
        "deploy-healthy/service.web.json",
        &[("/spec/type", json!("LoadBalancer"))],
    );
    assert_eq!(
        rules::service(&lb, &with_ep(&web_ep)).reason,
        "NoLoadBalancerAddress"
    );
    let lb_up: Service = patched(
        "deploy-healthy/service.web.json",
        &[
            ("/spec/type", json!("LoadBalancer")),
            (
                "/status/loadBalancer",
                json!({"ingress": [{"ip": "172.18.0.100"}]}),
            ),
        ],
    );
    assert_eq!(
        rules::service(&lb_up, &with_ep(&web_ep)).state,
        State::Ready
    );
}

#[test]
fn evaluate_dispatches_to_the_typed_rules() {
    let none = Related::default();
    for (file, state) in [
        ("deploy-healthy/deployment.web.json", State::Ready),
        (
            "deploy-progress-deadline/deployment.stuck-rollout.json",
            State::Failed,
        ),
        ("statefulset-ready/statefulset.db.json", State::Ready),
        (
            "pod-sandbox-create-failed/daemonset.agent.json",
            State::InProgress,
        ),
        ("job-failed/job.job-fail.json", State::Failed),
        ("crd/crd.gizmos.example.com.json", State::Failed),
        ("pod-crashloop/pod.crashloop.json", State::InProgress),
        (
            "pvc-pending/persistentvolumeclaim.data.json",
            State::InProgress,
        ),
        (
            "pod-create-container-config-error/secret.app-secret.json",
            State::Ready,
        ),
        ("cluster/namespace.fx.json", State::Ready),
        ("deploy-healthy/service.web.json", State::InProgress),
    ] {
        let s = rules::evaluate(&json_of(file), &none).expect(file);
        assert_eq!(s.state, state, "{file}: {s:?}");
    }
    assert!(matches!(
        rules::evaluate(&json!({"metadata": {}}), &none),
        Err(RuleError::MissingKind)
    ));
    let broken =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "two"}});
    assert!(matches!(
        rules::evaluate(&broken, &none),
        Err(RuleError::Decode { .. })
    ));
    // A ConfigMap being deleted is not Ready.
    let deleting = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "deletionTimestamp": NOW}});
    assert_eq!(
        rules::evaluate(&deleting, &none).unwrap().state,
        State::Terminating
    );
}

#[test]
fn fields_missing_or_from_newer_servers_are_tolerated() {
    // Freshly created objects, before any controller wrote a status: never
    // Ready (an empty DaemonSet status would otherwise read "0 of 0 ready"),
    // never a panic.
    for (api_version, kind) in [
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("batch/v1", "Job"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("v1", "Pod"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "Service"),
    ] {
        let bare = json!({"apiVersion": api_version, "kind": kind,
                          "metadata": {"name": "x", "generation": 1}, "spec": {"selector": {"app": "x"}}});
        let s = rules::evaluate(&bare, &Related::default()).expect(kind);
        assert_ne!(s.state, State::Ready, "{kind}: {s:?}");
    }
    // A 1.33-style pod: extra conditions, unknown fields, new status fields.
    let newer: Pod = patched(
        "deploy-healthy/pod.web-57f64b4f4d-5bqnc.json",
        &[
            (
                "/status/conditions/4",
                json!({"type": "PodReadyToStartContainers", "status": "True"}),
            ),
            ("/status/resize", json!("Proposed")),
            ("/status/someFieldFrom2030", json!({"x": 1})),
            ("/status/containerStatuses/0/stopSignal", json!("SIGTERM")),
        ],
    );
    assert_eq!(rules::pod(&newer).state, State::Ready);
    assert!(classify_pod(&newer, &[], at(NOW), &strict()).is_empty());
    // A Deployment with a condition type this code has never heard of.
    let d: Deployment = patched(
        "deploy-healthy/deployment.web.json",
        &[(
            "/status/conditions/2",
            json!({"type": "FutureCondition", "status": "False", "reason": "Whatever"}),
        )],
    );
    assert_eq!(rules::deployment(&d).state, State::Ready);
}

#[test]
fn generic_rule_for_unknown_kinds() {
    let cr = |status: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "generation": 2}, "status": status})
    };
    let cond = |t: &str, s: &str| json!({"type": t, "status": s, "reason": format!("{t}{s}"), "message": "m"});
    let cases = [
        (
            "Ready=True",
            cr(json!({"observedGeneration": 2, "conditions": [cond("Ready", "True")]})),
            State::Ready,
        ),
        (
            "Ready=False",
            cr(json!({"observedGeneration": 2, "conditions": [cond("Ready", "False")]})),
            State::InProgress,
        ),
        (
            "Ready=Unknown",
            cr(json!({"conditions": [cond("Ready", "Unknown")]})),
            State::InProgress,
        ),
        (
            "stale generation",
            cr(json!({"observedGeneration": 1, "conditions": [cond("Ready", "True")]})),
            State::InProgress,
        ),
        (
            "Stalled",
            cr(json!({"conditions": [cond("Stalled", "True"), cond("Ready", "False")]})),
            State::Failed,
        ),
        (
            "Reconciling",
            cr(json!({"conditions": [cond("Reconciling", "True"), cond("Ready", "True")]})),
            State::InProgress,
        ),
        // kstatus's Current: nothing says it is on its way.
        (
            "no conditions",
            cr(json!({"observedGeneration": 2})),
            State::Ready,
        ),
        (
            "no status at all",
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}}),
            State::Ready,
        ),
        (
            "no conditions, generation not observed yet",
            cr(json!({"observedGeneration": 1})),
            State::InProgress,
        ),
        (
            "other conditions only",
            cr(json!({"conditions": [cond("Synced", "True")]})),
            State::Unknown,
        ),
        (
            "malformed conditions",
            cr(json!({"conditions": "yes"})),
            State::Unknown,
        ),
    ];
    for (name, object, state) in cases {
        assert_eq!(rules::generic(&object).state, state, "{name}");
        let via = rules::evaluate(&object, &Related::default()).unwrap();
        assert_eq!(via.state, state, "{name} via evaluate");
    }
}

// ---------------------------------------------------------- evidence

#[test]
fn warning_events_filter_on_kind_and_uid() {
    let all = events(&["cluster/events.fx.json"]);
    let oom: Pod = load("pod-oomkilled/pod.oom.json");
    let uid = oom.metadata.uid.as_deref().unwrap();
    let got = evidence::warning_events(&all, Involved { kind: "Pod", uid }, 5);
    assert!(!got.is_empty());
    assert!(got.iter().all(|e| e.reason == "BackOff"), "{got:#?}");
    assert!(got.windows(2).all(|w| w[0].last_seen <= w[1].last_seen));
    // The Job's own Warning, asked for as a Pod of the same uid: nothing.
    let job: Job = load("job-failed/job.job-fail.json");
    let job_uid = job.metadata.uid.as_deref().unwrap();
    let job_events = events(&["job-failed/events.job.job-fail.json"]);
    let as_job = evidence::warning_events(
        &job_events,
        Involved {
            kind: "Job",
            uid: job_uid,
        },
        5,
    );
    assert_eq!(
        as_job.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
        ["BackoffLimitExceeded"]
    );
    assert!(
        evidence::warning_events(
            &job_events,
            Involved {
                kind: "Pod",
                uid: job_uid
            },
            5
        )
        .is_empty()
    );
    // The limit keeps the most recent ones.
    let sandbox = events(&["pod-sandbox-create-failed/events.pod.agent-gls79.json"]);
    let pod: Pod = load("pod-sandbox-create-failed/pod.agent-gls79.json");
    let uid = pod.metadata.uid.as_deref().unwrap();
    let all_w = evidence::warning_events(&sandbox, Involved { kind: "Pod", uid }, 100);
    let last2 = evidence::warning_events(&sandbox, Involved { kind: "Pod", uid }, 2);
    assert!(all_w.len() > 2);
    assert_eq!(last2, all_w[all_w.len() - 2..]);
}

#[test]
fn terminations_report_exit_codes_and_times() {
    let t = evidence::terminations(&load(
        "pod-oomkilled/pod.oom.state-Running_terminated-OOMKilled.json",
    ));
    assert_eq!(t.len(), 2, "{t:#?}");
    assert_eq!((t[0].which, t[0].exit_code), (Which::Current, 137));
    assert_eq!(t[0].reason.as_deref(), Some("OOMKilled"));
    assert_eq!(t[0].finished_at, Some(at("2026-11-22T14:18:13Z")));
    assert_eq!(t[1].which, Which::Last);
    let t = evidence::terminations(&load("pod-init-crashloop/pod.init-crash.json"));
    assert_eq!(t.len(), 1);
    assert!(t[0].container.init);
    assert_eq!(
        (t[0].container.name.as_str(), t[0].exit_code),
        ("migrate", 1)
    );
    assert!(
        evidence::terminations(&load("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json")).is_empty()
    );
}

#[test]
fn log_requests_cover_init_containers_and_previous_runs() {
    let req = |file| {
        evidence::log_requests(&load(file))
            .into_iter()
            .map(|r| (r.container.name, r.container.init, r.previous))
            .collect::<Vec<_>>()
    };
    let s = |n: &str| n.to_owned();
    assert_eq!(
        req("pod-crashloop/pod.crashloop.json"),
        [(s("app"), false, false), (s("app"), false, true)]
    );
    // The app container has not started: its log does not exist yet.
    assert_eq!(
        req("pod-init-crashloop/pod.init-crash.json"),
        [(s("migrate"), true, false), (s("migrate"), true, true)]
    );
    assert_eq!(
        req("pod-init-stuck/pod.init-stuck.json"),
        [(s("wait-for-db"), true, false)]
    );
    assert_eq!(
        req("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json"),
        [(s("web"), false, false)]
    );
    assert_eq!(
        req("job-failed/pod.job-fail-g4ntj.json"),
        [(s("work"), false, false)]
    );
    assert!(req("pod-image-pull-backoff/pod.pull-missing.json").is_empty());
}

#[test]
fn pod_evidence_bundles_events_terminations_and_logs() {
    let pod: Pod = load("pod-crashloop/pod.crashloop.json");
    let e = evidence::pod_evidence(
        &pod,
        &events(&["pod-crashloop/events.pod.crashloop.json"]),
        3,
    );
    assert_eq!(e.events.len(), 1, "{:#?}", e.events);
    assert_eq!(e.events[0].reason, "BackOff");
    assert_eq!(e.terminations[0].exit_code, 1);
    assert_eq!(e.logs.len(), 2);
}

#[test]
fn verdict_evidence_narrows_to_the_verdicts_container() {
    // init-crash: the verdict is about init container `migrate`; the app
    // container never ran, so nothing of it is shown.
    let pod: Pod = load("pod-init-crashloop/pod.init-crash.json");
    let evs = events(&["pod-init-crashloop/events.pod.init-crash.json"]);
    let v = only(classify_pod(&pod, &evs, at(NOW), &strict()), "init");
    let e = evidence::verdict_evidence(&pod, &evs, &v, 5);
    assert_eq!(e.events.len(), 1);
    assert_eq!(
        e.events[0].field_path.as_deref(),
        Some("spec.initContainers{migrate}")
    );
    assert!(e.terminations.iter().all(|t| t.container.name == "migrate"));
    assert_eq!(e.logs.len(), 2);
    // The same events asked for the (never started) app container: none of
    // migrate's events, terminations or logs leak in.
    let mut app = v.clone();
    app.container = Some(harness::readiness::classify::ContainerRef {
        name: "app".to_owned(),
        init: false,
    });
    let e = evidence::verdict_evidence(&pod, &evs, &app, 5);
    assert!(
        e.events.is_empty() && e.terminations.is_empty() && e.logs.is_empty(),
        "{e:#?}"
    );
    // A pod-level verdict keeps the pod's Warning events.
    let pod: Pod = load("pvc-pending/pod.pvc-user.json");
    let evs = events(&[
        "pvc-pending/events.pod.pvc-user.json",
        "pvc-pending/events.persistentvolumeclaim.data.json",
    ]);
    let v = only(classify_pod(&pod, &evs, at(NOW), &strict()), "pvc");
    let e = evidence::verdict_evidence(&pod, &evs, &v, 5);
    let reasons: Vec<&str> = e.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["FailedScheduling"],
        "the PVC's own event is not the pod's"
    );
}

#[test]
fn a_pod_being_preempted_for_is_not_unschedulable() {
    let pod: Pod = patched(
        "pod-unschedulable-resources/pod.too-big.json",
        &[("/status/nominatedNodeName", json!("fixtures-worker"))],
    );
    assert!(classify_pod(&pod, &[], at(NOW), &strict()).is_empty());
}

// ------------------------------------------------------------- table

#[test]
fn unready_rows_lead_with_the_top_verdict() {
    let deploy: Deployment = load("deploy-progress-deadline/deployment.stuck-rollout.json");
    let status = rules::deployment(&deploy);
    let resource = ResourceRef {
        kind: "Deployment".to_owned(),
        namespace: Some("fx".to_owned()),
        name: "stuck-rollout".to_owned(),
    };
    let without = unready_row(&resource, &status, &[]);
    assert_eq!(without.resource, "Deployment/fx/stuck-rollout");
    assert_eq!(
        (without.state, without.reason.as_str()),
        (State::Failed, "ProgressDeadlineExceeded")
    );
    assert!(without.evidence.contains("has timed out progressing"));

    let mut verdicts = classify("pod-crashloop/pod.crashloop.json", &[], NOW, strict());
    verdicts.extend(classify("pod-oomkilled/pod.oom.json", &[], NOW, strict()));
    let row = unready_row(&resource, &status, &verdicts);
    assert_eq!(
        (row.state, row.reason.as_str()),
        (State::Failed, "OOMKilled")
    );
    assert!(
        row.evidence.contains("32Mi") && row.evidence.contains("(+1 more)"),
        "{}",
        row.evidence
    );

    // An InProgress resource with a doomed pod is shown as Failed.
    let sandbox_ds = rules::daemon_set(&load("pod-sandbox-create-failed/daemonset.agent.json"));
    let v = classify(
        "pod-sandbox-create-failed/pod.agent-gls79.json",
        &["pod-sandbox-create-failed/events.pod.agent-gls79.json"],
        NOW,
        strict(),
    );
    let row = unready_row(&resource, &sandbox_ds, &v);
    assert_eq!(
        (row.state, row.reason.as_str()),
        (State::Failed, "SandboxCreateFailed")
    );
}

#[test]
fn unready_table_renders_aligned_columns() {
    let ds = ResourceRef {
        kind: "DaemonSet".to_owned(),
        namespace: Some("fx".to_owned()),
        name: "agent".to_owned(),
    };
    let crd = ResourceRef {
        kind: "CustomResourceDefinition".to_owned(),
        namespace: None,
        name: "gizmos.example.com".to_owned(),
    };
    let rows = [
        unready_row(
            &ds,
            &rules::daemon_set(&load("pod-sandbox-create-failed/daemonset.agent.json")),
            &[],
        ),
        unready_row(
            &crd,
            &rules::crd(&load("crd/crd.gizmos.example.com.json")),
            &[],
        ),
    ];
    let expected = "\
RESOURCE                                     STATE       REASON            EVIDENCE
DaemonSet/fx/agent                           InProgress  PodsUnavailable   1 of 2 pods available
CustomResourceDefinition/gizmos.example.com  Failed      ListKindConflict  \"WidgetList\" is already in use
";
    assert_eq!(render(&rows), expected);
    assert_eq!(render(&[]), "");
}

// ---------------------------------------------------------- timeline

#[test]
fn pod_timeline_follows_condition_transitions() {
    for file in [
        "deploy-healthy/pod.web-57f64b4f4d-5bqnc.json",
        "statefulset-ready/pod.db-0.json",
        "pod-init-stuck/pod.init-stuck.json",
        "pod-unschedulable-resources/pod.too-big.json",
    ] {
        let raw = json_of(file);
        let when = |t: &str| {
            raw["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == t && c["status"] == "True")
                .map(|c| at(c["lastTransitionTime"].as_str().unwrap()))
        };
        let tl = pod_timeline(&typed(raw.clone()));
        assert_eq!(tl.scheduled, when("PodScheduled"), "{file}");
        assert_eq!(tl.initialized, when("Initialized"), "{file}");
        assert_eq!(tl.ready, when("Ready"), "{file}");
        assert_eq!(
            tl.scheduled_to_ready(),
            match (when("PodScheduled"), when("Ready")) {
                (Some(s), Some(r)) => Some(r.duration_since(s)),
                _ => None,
            },
            "{file}"
        );
    }
    let tl = pod_timeline(&load("statefulset-ready/pod.db-0.json"));
    assert!(tl.scheduled <= tl.initialized && tl.initialized <= tl.ready);
    assert!(tl.scheduled_to_ready().is_some_and(|d| d.as_secs() > 0));
    let stuck = pod_timeline(&load("pod-init-stuck/pod.init-stuck.json"));
    assert!(stuck.scheduled.is_some() && stuck.initialized.is_none() && stuck.ready.is_none());
}
