//! Post-suite hooks as real processes: the environment they get, a failing
//! hook, a hook past its timeout whose whole process group is killed (it
//! ignores SIGTERM, so only the SIGKILL after the grace ends it), and the
//! pipeline's order around them — gather → hooks → teardown, nothing of the
//! sort on a preserved cluster — with the real hooks runner inside.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::config::Project;
use harness::exit::Exit;
use harness::hooks::{HookContext, SuitesOutcome};
use harness::report::{Event, RunReport, Stamped, bus, sink::Sink};
use harness::run::GatherWhen;
use harness::run::{RunOptions, StageFailure, Stages, UpFailure};
use harness::suites::CancelToken;

/// A project in `dir` whose lane `main` has these `after_suites:` entries.
fn project(dir: &Path, hooks_yaml: &str) -> Project {
    std::fs::write(
        dir.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
    )
    .unwrap();
    std::fs::write(dir.join("kind.yaml"), "nodes:\n- role: control-plane\n  extraPortMappings:\n  - {containerPort: 30090, hostPort: 28090}\n").unwrap();
    std::fs::write(
        dir.join("harness.yaml"),
        format!(
            "components:\n  datastorage: {{ manifests: [app.yaml], health: {{ url: \"http://localhost:{{{{host_port.30090}}}}/health\" }} }}\nlanes:\n  main:\n    cluster: {{ kind: {{ config: kind.yaml }} }}\n    components: [datastorage]\n    after_suites:\n{hooks_yaml}"
        ),
    )
    .unwrap();
    harness::config::load(&dir.join("harness.yaml"))
        .unwrap_or_else(|e| panic!("{}", e.rendered().unwrap_or_default()))
}

struct Collect(Arc<Mutex<Vec<Event>>>);
impl Sink for Collect {
    fn emit(&mut self, e: &Stamped) {
        self.0.lock().unwrap().push(e.event.clone());
    }
    fn progress(
        &mut self,
        _: &harness::report::progress::Progress,
        _: harness::readiness::Timestamp,
    ) {
    }
}

/// The stage context of the lane `main` in the run `r-0badc0de`.
fn stage<'a>(project: &'a Project, bus: &bus::Bus) -> harness::stage::Ctx<'a> {
    harness::stage::Ctx::new(project, &project.lanes["main"], "r-0badc0de", bus.clone())
}

fn context(project: &Project, run_dir: &Path, grace: Duration) -> HookContext {
    let stage = stage(project, &bus::Bus::discard());
    assert_eq!(
        stage.run_dir(),
        run_dir,
        "the hooks' files go to the run's directory"
    );
    let mut ctx = harness::hooks::hook_context(
        &stage,
        "/home/ci/.kube/main-config".into(),
        SuitesOutcome::Failed,
    );
    ctx.grace = grace;
    ctx
}

/// Whether a process is gone (a zombie waiting for its reaper counts).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits for `condition` with a deadline instead of sleeping a fixed time.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within 20s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn hooks_run_in_order_with_the_contract_and_every_failure_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(
        dir.path(),
        r#"      - name: coverage
        command: [sh, -c, 'env | grep -E "^(KUBECONFIG|HARNESS_(ARTIFACTS|CONFIG|ENDPOINT_[A-Z_]+|LANE|RUN_ID|SUITES)|GOCOVERDIR)=" | sort > "$HARNESS_ARTIFACTS/env.txt"; echo collected; echo coverage >> order.txt']
        env: { GOCOVERDIR: /tmp/cov }
      - name: failing
        command: [sh, -c, 'echo failing >> order.txt; echo "no coverage data" >&2; exit 3']
      - name: stuck
        command: [sh, -c, 'trap "" TERM; sleep 300 & echo $! > stuck.pid; echo stuck >> order.txt; wait']
        timeout: 1s
      - name: after
        command: [sh, -c, 'echo after >> order.txt']
"#,
    );
    let run_dir = dir.path().join(".harness/runs/r-0badc0de");
    let ctx = context(&p, &run_dir, Duration::from_millis(500));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (bus, task) = bus::start(
        Box::new(Collect(events.clone())),
        RunReport::new("main", "r-0badc0de"),
    );
    let started = Instant::now();
    let failure = harness::hooks::run_hooks(&stage(&p, &bus), &ctx)
        .await
        .unwrap_err();
    drop(bus);
    let report = task.await.unwrap();

    // In order, each to its end: a failing hook does not stop the next.
    let order = std::fs::read_to_string(dir.path().join("order.txt")).unwrap();
    assert_eq!(order, "coverage\nfailing\nstuck\nafter\n");

    // The contract, in the hook's artifacts directory.
    let env = std::fs::read_to_string(run_dir.join("hooks/coverage/env.txt")).unwrap();
    let artifacts = run_dir.join("hooks/coverage");
    let expected = [
        "GOCOVERDIR=/tmp/cov".to_string(),
        format!("HARNESS_ARTIFACTS={}", artifacts.display()),
        format!(
            "HARNESS_CONFIG={}",
            dir.path().join("harness.yaml").display()
        ),
        "HARNESS_ENDPOINT_DATASTORAGE=http://localhost:28090".to_string(),
        "HARNESS_LANE=main".to_string(),
        "HARNESS_RUN_ID=r-0badc0de".to_string(),
        "HARNESS_SUITES=failed".to_string(),
        "KUBECONFIG=/home/ci/.kube/main-config".to_string(),
    ];
    assert_eq!(env.lines().collect::<Vec<_>>(), expected, "{env}");

    // Output to <run>/hooks/<name>.log, and live.
    assert_eq!(
        std::fs::read_to_string(run_dir.join("hooks/coverage.log")).unwrap(),
        "collected\n"
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join("hooks/failing.log")).unwrap(),
        "no coverage data\n"
    );
    let events = events.lock().unwrap();
    assert!(
        events.iter().any(|e| matches!(e, Event::HookOutput { hook, line } if hook == "failing" && line == "no coverage data")),
        "{events:#?}"
    );
    let started_hooks: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::HookStarted { hook, .. } => Some(hook.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(started_hooks, ["coverage", "failing", "stuck", "after"]);

    // The stuck hook ignored SIGTERM: its whole group was SIGKILLed after the grace.
    let pid: i32 = std::fs::read_to_string(dir.path().join("stuck.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually("the stuck hook's background sleep is killed", || gone(pid));
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "timeout 1s + grace 0.5s"
    );

    // The report and the failure name both failed hooks, with their logs.
    let outcomes: Vec<(&str, bool, &str)> = report
        .hooks
        .iter()
        .map(|h| (h.hook.as_str(), h.ok, h.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("coverage", true, "passed"),
            ("failing", false, "exited with status 3"),
            ("stuck", false, "timed out after 1s"),
            ("after", true, "passed"),
        ]
    );
    assert_eq!(report.hooks[1].log, run_dir.join("hooks/failing.log"));
    let hooks_phase = report
        .phases
        .iter()
        .find(|ph| ph.phase == harness::report::Phase::Hooks)
        .expect("a hooks phase");
    assert!(!hooks_phase.ok);
    assert_eq!(failure.exit(), Exit::SuitesFailed);
    let text = failure.to_string();
    assert!(
        text.starts_with("post-suite hooks failed: `failing` exited with status 3 (log: ")
            && text.contains("`stuck` timed out after 1s"),
        "{text}"
    );
}

/// A deploy that failed, as the stand-in `up` fails.
#[derive(Debug, thiserror::Error)]
#[error("doomed")]
struct Doomed;

impl harness::failure::Failure for Doomed {
    fn exit(&self) -> Exit {
        Exit::Deploy
    }
    fn fix(&self) -> Option<String> {
        None
    }
}

/// Stages whose gather and teardown write to the same file the real hooks
/// append to, so the file is the order things happened in.
struct Recording {
    project: Project,
    run_dir: PathBuf,
    order: PathBuf,
    up_fails: bool,
    bus: bus::Bus,
}

impl Recording {
    fn append(&self, what: &str) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.order)
            .unwrap();
        writeln!(f, "{what}").unwrap();
    }
}

impl Stages for Recording {
    async fn up(&mut self, _cancel: CancelToken) -> Result<(), UpFailure> {
        if self.up_fails {
            return Err(UpFailure {
                failure: Doomed.into(),
                cluster_exists: true,
            });
        }
        Ok(())
    }
    async fn suites(&mut self, _cancel: CancelToken) -> Result<bool, StageFailure> {
        self.append("suites");
        Ok(true)
    }
    async fn gather(&mut self, _so_far: Exit) -> Result<PathBuf, StageFailure> {
        self.append("gather");
        Ok(self.run_dir.join("bundle.tar.gz"))
    }
    async fn hooks(&mut self) -> Result<(), StageFailure> {
        let ctx = context(&self.project, &self.run_dir, Duration::from_secs(1));
        harness::hooks::run_hooks(&stage(&self.project, &self.bus), &ctx).await
    }
    async fn teardown(&mut self) -> Result<(), StageFailure> {
        self.append("teardown");
        Ok(())
    }
}

async fn run(
    hooks_yaml: &str,
    preserve: bool,
    up_fails: bool,
) -> (harness::run::RunResult, String) {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), hooks_yaml);
    let lane = &project.lanes["main"];
    let options = RunOptions {
        preserve,
        gather: GatherWhen::Always,
        has_hooks: !lane.after_suites.is_empty(),
        hooks_budget: harness::hooks::budget(&lane.after_suites, Duration::from_secs(1)),
        deadline: None,
        gather_budget: Duration::from_secs(60),
        teardown_budget: Duration::from_secs(60),
        panicked: || false,
    };
    let mut stages = Recording {
        run_dir: dir.path().join(".harness/runs/r-0badc0de"),
        order: dir.path().join("order.txt"),
        project: project.clone(),
        up_fails,
        bus: bus::Bus::discard(),
    };
    let (_tx, rx) = tokio::sync::watch::channel(0u32);
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        harness::run::sequence(&mut stages, &options, rx),
    )
    .await
    .expect("the run finishes");
    let order = std::fs::read_to_string(dir.path().join("order.txt")).unwrap_or_default();
    (result, order)
}

const TWO_HOOKS: &str = "      - { name: coverage, command: [sh, -c, 'echo hook:coverage >> order.txt'] }\n      - { name: export, command: [sh, -c, 'echo hook:export >> order.txt'] }\n";

#[tokio::test]
async fn hooks_run_after_gather_and_before_teardown() {
    let (result, order) = run(TWO_HOOKS, false, false).await;
    assert_eq!(
        order,
        "suites\ngather\nhook:coverage\nhook:export\nteardown\n"
    );
    assert_eq!(result.ran, ["up", "suites", "gather", "hooks", "teardown"]);
    assert_eq!(result.exit, Exit::Ok);
}

#[tokio::test]
async fn a_preserved_cluster_is_gathered_and_its_hooks_never_run() {
    let (result, order) = run(TWO_HOOKS, true, false).await;
    assert_eq!(order, "suites\ngather\n");
    assert_eq!(result.ran, ["up", "suites", "gather"]);
    assert_eq!(result.exit, Exit::Ok);
}

#[tokio::test]
async fn a_failing_hook_fails_a_green_run_and_teardown_still_runs() {
    let hooks = "      - { name: coverage, command: [sh, -c, 'echo hook:coverage >> order.txt; exit 2'] }\n";
    let (result, order) = run(hooks, false, false).await;
    assert_eq!(order, "suites\ngather\nhook:coverage\nteardown\n");
    assert_eq!(result.exit, Exit::SuitesFailed);
    assert!(
        result.errors.iter().any(|(step, e)| *step == "hooks"
            && e.to_string().contains("`coverage` exited with status 2")),
        "{:?}",
        result.errors
    );
}

#[tokio::test]
async fn a_failing_hook_keeps_an_earlier_failures_exit_code() {
    let hooks = "      - { name: coverage, command: [sh, -c, 'echo hook:coverage >> order.txt; exit 2'] }\n";
    let (result, order) = run(hooks, false, true).await;
    assert_eq!(order, "gather\nhook:coverage\nteardown\n");
    assert_eq!(
        result.exit,
        Exit::Deploy,
        "the deploy failure is the headline"
    );
}

#[test]
fn lane_file_hooks_keep_their_order_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    let p = project(
        dir.path(),
        "      - { name: coverage, command: [sh, collect.sh], timeout: 90s, env: { GOCOVERDIR: /tmp/cov }, workdir: scripts }\n      - { name: export, command: [make, export] }\n",
    );
    let hooks = &p.lanes["main"].after_suites;
    let names: Vec<&str> = hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["coverage", "export"]);
    assert_eq!(hooks[0].timeout, Duration::from_secs(90));
    assert_eq!(hooks[0].env["GOCOVERDIR"], "/tmp/cov");
    assert_eq!(hooks[0].workdir, dir.path().join("scripts"));
    assert_eq!(hooks[1].timeout, Duration::from_secs(5 * 60), "the default");
    assert_eq!(hooks[1].workdir, dir.path(), "the lane file's directory");
    assert!(hooks[1].env.is_empty());
}

/// `RealStages::hooks` as `harness test` calls it, on an environment
/// `harness up` left: the kubeconfig is the one `up` recorded, the suites
/// never ran, and the files go under `.harness/runs/<run>/hooks/`.
#[tokio::test]
async fn real_stages_run_the_lanes_hooks_against_the_recorded_environment() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(
        dir.path(),
        "      - { name: coverage, command: [sh, -c, 'echo \"$KUBECONFIG $HARNESS_SUITES $HARNESS_LANE\"'] }\n",
    );
    let lane = &p.lanes["main"];
    let state = harness::cluster::state::LaneState {
        lane: "main".into(),
        cluster: "harness-main".into(),
        provider: "kind".into(),
        engine: Some("docker".into()),
        kubeconfig: dir.path().join("recorded-kubeconfig"),
        context: None,
        kind_config: None,
        created: true,
        images: Default::default(),
        created_objects: Vec::new(),
        run_id: "r-up".into(),
        created_at: harness::cluster::state::LaneState::now(),
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let (bus, task) = bus::start(
        Box::new(Collect(events.clone())),
        RunReport::new("main", "r-0badc0de"),
    );
    let mut stages = harness::run::real::RealStages::new(
        harness::stage::Ctx::new(&p, lane, "r-0badc0de", bus.clone()),
        harness::run::up::UpOptions::default(),
        harness::suites::stage::SuiteSelection::default(),
        Some(state),
        tokio::time::Instant::now() + Duration::from_secs(60),
    );
    stages.hooks().await.unwrap();
    drop(stages);
    drop(bus);
    let report = task.await.unwrap();
    let log = dir
        .path()
        .join(".harness/runs/r-0badc0de/hooks/coverage.log");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!(
            "{} not-run main\n",
            dir.path().join("recorded-kubeconfig").display()
        )
    );
    assert_eq!(report.hooks.len(), 1);
    assert!(report.hooks[0].ok);
    assert_eq!(report.hooks[0].log, log);
    assert!(
        report
            .phases
            .iter()
            .any(|ph| ph.phase == harness::report::Phase::Hooks && ph.ok)
    );
}

#[tokio::test]
async fn an_interrupt_during_a_hook_kills_its_group_and_goes_to_teardown() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(
        dir.path(),
        "      - { name: stuck, command: [sh, -c, 'trap \"\" TERM; sleep 300 & echo $! > stuck.pid; wait'], timeout: 10m }\n      - { name: never, command: [sh, -c, 'echo hook:never >> order.txt'] }\n",
    );
    let lane = &project.lanes["main"];
    let options = RunOptions {
        preserve: false,
        gather: GatherWhen::Always,
        has_hooks: true,
        hooks_budget: harness::hooks::budget(&lane.after_suites, Duration::from_secs(1)),
        deadline: None,
        gather_budget: Duration::from_secs(60),
        teardown_budget: Duration::from_secs(60),
        panicked: || false,
    };
    let mut stages = Recording {
        run_dir: dir.path().join(".harness/runs/r-0badc0de"),
        order: dir.path().join("order.txt"),
        project: project.clone(),
        up_fails: false,
        bus: bus::Bus::discard(),
    };
    let (tx, rx) = tokio::sync::watch::channel(0u32);
    let pid_file = dir.path().join("stuck.pid");
    let interrupt_once_the_hook_runs = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(&pid_file).map_or(true, |s| !s.ends_with('\n')) {
            assert!(Instant::now() < deadline, "the hook never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tx.send_modify(|n| *n += 1);
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(
            harness::run::sequence(&mut stages, &options, rx),
            interrupt_once_the_hook_runs
        )
    })
    .await
    .expect("the run finishes long before the hook's 10m timeout");
    let order = std::fs::read_to_string(dir.path().join("order.txt")).unwrap();
    assert_eq!(
        order, "suites\ngather\nteardown\n",
        "the next hook never ran"
    );
    assert_eq!(result.exit, Exit::Interrupted);
    assert!(
        result
            .errors
            .iter()
            .any(|(step, e)| *step == "hooks" && e.to_string().contains("interrupt")),
        "{:?}",
        result.errors
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually("the interrupted hook's process group is killed", || {
        gone(pid)
    });
}
