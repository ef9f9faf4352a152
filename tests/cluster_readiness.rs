//! Readiness on a real cluster: containers that look Ready and are not,
//! through the real deploy stage (`deploy_lane`: apply, the settle window,
//! the verdict and its evidence). Needs `$HARNESS_TEST_KUBECONFIG` pointing
//! at a cluster with `fixtures/app:v1` loaded; without it each test is
//! skipped with a message, or fails under `HARNESS_REQUIRE_CLUSTER=1`.
//!
//! The containers are those of the Kubernetes 1.28 captures in
//! `tests/fixtures/k8s-1.28/` (crash or OOM kill 3 s after start, no
//! readiness probe), on the busybox of `fixtures/app:v1`.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use cluster::{CRASH_AFTER_3S, HEALTHY, OOM_AFTER_3S, deployment};
use harness::deploy::{DeployError, DeployEvent, Standing};
use harness::readiness::VerdictKind;

fn verdict_kinds(e: &DeployError) -> Vec<VerdictKind> {
    e.diagnoses()
        .iter()
        .flat_map(|d| &d.findings)
        .filter_map(|f| f.verdict.as_ref().map(|v| v.kind.clone()))
        .collect()
}

fn standings(events: &[DeployEvent]) -> Vec<Standing> {
    events
        .iter()
        .filter_map(|e| match e {
            DeployEvent::Verdict { standing, .. } => Some(*standing),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_container_that_crashes_3s_after_start_is_a_crash_loop() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let d = cluster::deploy(&kubeconfig, &deployment("crash", "", CRASH_AFTER_3S), "").await;
    let error = d
        .result
        .expect_err("a container that keeps crashing is not Ready");
    assert!(matches!(error, DeployError::Failed { .. }), "{error}");
    assert!(!error.is_timeout(), "exit 6, not a deadline: {error}");
    let kinds = verdict_kinds(&error);
    assert!(
        kinds.iter().any(|k| matches!(
            k,
            VerdictKind::CrashLoop {
                exit_code: Some(3),
                ..
            }
        )),
        "{kinds:?}\n{}",
        error.diagnosis().unwrap().render()
    );
    assert_eq!(standings(&d.events), [Standing::Doomed]);
    let text = error.diagnosis().unwrap().render();
    assert!(
        text.contains("| fatal: cannot read /etc/app/config.yaml"),
        "{text}"
    );
    eprintln!("crash after 3s: verdict after {:?} ({error})", d.took);
}

#[tokio::test]
async fn a_container_oomkilled_3s_after_start_is_oomkilled_with_its_limit() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    // It has no readiness probe: Ready at start, and only the settle window
    // stands between it and a Ready verdict. "3 s after start" is on an idle
    // machine: the 24 MiB it fills through a pipe take seconds more of CPU
    // while both cores compile or run other tests (once, in CI, past the
    // default 5 s window). This test is about naming the OOM kill and its
    // limit, so its window covers the crash with room to spare.
    let d = cluster::deploy(
        &kubeconfig,
        &deployment("oom", "", OOM_AFTER_3S),
        ", settle: 15s",
    )
    .await;
    let error = d
        .result
        .expect_err("a container that keeps being OOMKilled is not Ready");
    assert!(!error.is_timeout(), "{error}");
    let kinds = verdict_kinds(&error);
    assert!(
        kinds.contains(&VerdictKind::OomKilled {
            memory_limit: Some("24Mi".into())
        }),
        "{kinds:?}\n{}",
        error.diagnosis().unwrap().render()
    );
    eprintln!("oom after 3s: verdict after {:?} ({error})", d.took);
}

#[tokio::test]
async fn an_init_container_still_running_at_the_deadline_is_named() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let init = "      - name: wait-for-db\n        image: fixtures/app:v1\n        command: [sh, -c, \"echo waiting for db:5432; sleep 3600\"]\n";
    let d = cluster::deploy(
        &kubeconfig,
        &deployment("blocked", init, HEALTHY),
        ", timeout: 20s",
    )
    .await;
    let error = d.result.expect_err("the init container never ends");
    assert!(error.is_timeout(), "a deadline is exit 7: {error}");
    let message = error.to_string();
    assert!(
        message.starts_with("component `c` was not Ready within 20s: "),
        "{message}"
    );
    assert!(
        message.contains("init container wait-for-db still running after ")
            && message.contains("(log: waiting for db:5432)"),
        "{message}"
    );
    assert_eq!(standings(&d.events), [Standing::TimedOut]);
    eprintln!("{message}\n{}", error.diagnosis().unwrap().render());
}

#[tokio::test]
async fn a_healthy_deployment_and_its_service_are_ready_after_the_settle_window() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    // The Service's endpoints are read from whatever EndpointSlice version
    // the server serves (1.20: v1beta1 only).
    let manifest = format!(
        "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80, targetPort: 8080, protocol: TCP}}]\n",
        deployment("web", "", HEALTHY)
    );
    let d = cluster::deploy(&kubeconfig, &manifest, ", settle: 3s").await;
    let report = d.result.unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            e.diagnoses().iter().map(|d| d.render()).collect::<String>()
        )
    });
    assert_eq!(report.components.len(), 1);
    assert!(
        report.components[0].elapsed >= Duration::from_secs(3),
        "Ready only after its readiness held for 3 s: {:?}",
        report.components[0].elapsed
    );
    assert!(
        !d.events
            .iter()
            .any(|e| matches!(e, DeployEvent::WatchFailing { .. })),
        "no watch failed"
    );
    eprintln!("healthy: Ready after {:?}", report.components[0].elapsed);
}

/// A second deploy of pods that have been Ready longer than the settle
/// window (a second `up` of a lane that is up) does not wait the window
/// again: readiness that held by the pods' own record, on the API server's
/// clock (its `Date`), is credited. The first deploy waits it out.
#[tokio::test]
async fn a_second_deploy_of_pods_ready_longer_than_the_window_does_not_wait_it_again() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let settle = Duration::from_secs(4);
    let client = cluster::client(&kubeconfig).await;
    let ns = cluster::namespace("held");
    let (_dir, project) = cluster::one_component(
        &kubeconfig,
        &ns,
        &deployment("web", "", HEALTHY),
        &format!(", settle: {}s", settle.as_secs()),
    );
    let deploy = || async {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let start = tokio::time::Instant::now();
        harness::deploy::deploy_lane(
            &client,
            &project,
            &project.lanes["l"],
            &indexmap::IndexMap::new(),
            tx,
            start + Duration::from_secs(120),
        )
        .await
        .map(|report| report.components[0].elapsed)
    };
    let first = deploy().await;
    // Until the pods have certainly been Ready a whole window, by the
    // server's clock.
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let held = loop {
        let listed = pods.list(&Default::default()).await.unwrap().items;
        let server = harness::k8s::server_time::ServerTime::ask(&client)
            .await
            .expect("the API server sends its Date");
        let held = harness::readiness::settle::held_since(&listed)
            .map(|since| server.certainly_since(since));
        if held.is_some_and(|h| h >= settle) || tokio::time::Instant::now() > deadline {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let second = deploy().await;
    cluster::delete_namespace(&client, &ns).await;
    let first = first.unwrap_or_else(|e| panic!("the first deploy: {e}"));
    assert!(
        first >= settle,
        "the first deploy waits the window: {first:?}"
    );
    assert!(held.is_some_and(|h| h >= settle), "held {held:?}");
    let second = second.unwrap_or_else(|e| panic!("the second deploy: {e}"));
    assert!(
        second < settle,
        "the second deploy credits readiness that held: Ready after {second:?}"
    );
    eprintln!("first deploy Ready after {first:?}, second after {second:?}");
}

/// A dependency that is Ready at once and crashes inside its settle window,
/// while the component that depends on it has already started on it (the
/// wave after it starts on Ready, not on settled): the run fails with the
/// dependency's own verdict, and names what was started on top of it.
#[tokio::test]
async fn a_dependency_that_crashes_in_its_window_fails_the_run_with_its_verdict_while_its_dependent_starts()
 {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    // 15 s of window: the crash 3 s after start lands inside it, however
    // busy the machine (see the OOM test above).
    let lane_file = "namespace: {ns}\ncluster:\n  provider: existing\n  existing: {kubeconfig: {kubeconfig}}\n\
        components:\n  db: {manifests: [db.yaml], settle: 15s}\n  app: {manifests: [app.yaml], depends_on: [db]}\n\
        lanes:\n  l: {components: [app]}\n";
    let d = cluster::deploy_files(
        &kubeconfig,
        &[
            ("harness.yaml", lane_file),
            ("db.yaml", &deployment("db", "", CRASH_AFTER_3S)),
            ("app.yaml", &deployment("app", "", HEALTHY)),
        ],
    )
    .await;
    let error = d.result.expect_err("db crashes 3 s after start");
    let DeployError::Unsettled { verdict, started } = &error else {
        panic!("not the dependency's verdict naming what started on it: {error}");
    };
    assert_eq!(started, &["app"], "{error}");
    assert_eq!(error.component(), Some("db"), "{error}");
    assert!(!error.is_timeout(), "exit 6, not a deadline: {error}");
    assert!(matches!(**verdict, DeployError::Failed { .. }), "{error}");
    let kinds = verdict_kinds(&error);
    assert!(
        kinds.iter().any(|k| matches!(
            k,
            VerdictKind::CrashLoop {
                exit_code: Some(3),
                ..
            }
        )),
        "{kinds:?}\n{error}"
    );
    assert!(
        error
            .to_string()
            .ends_with("; started on top of it: app; no more were started"),
        "{error}"
    );
    // The second wave started before db's verdict: on Ready, not settled.
    let position = |wanted: &dyn Fn(&DeployEvent) -> bool| d.events.iter().position(wanted);
    let wave_2 = position(&|e| matches!(e, DeployEvent::WaveStarted { wave: 2, .. }))
        .expect("the wave of app started");
    let applied_app =
        position(&|e| matches!(e, DeployEvent::Applied { component, .. } if component == "app"))
            .expect("app was applied");
    let verdict_db = position(&|e| {
        matches!(e, DeployEvent::Verdict { component, standing: Standing::Doomed, .. } if component == "db")
    })
    .expect("db's verdict was reported");
    assert!(
        wave_2 < applied_app && applied_app < verdict_db,
        "{:#?}",
        d.events
    );
    // db was never said Ready (app may have settled before db's verdict).
    assert!(
        !d.events.iter().any(
            |e| matches!(e, DeployEvent::ComponentReady { component, .. } if component == "db")
        ),
        "{:#?}",
        d.events
    );
    eprintln!(
        "dependency crashed in its window: verdict after {:?} ({error})",
        d.took
    );
}
