//! The suites runner against real child processes: small shell scripts
//! stand in for E2E suites.
//!
//! Timing assertions watch for conditions with deadlines; the only sleeps
//! are inside the scripts, to hold a slot while they wait for something.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::suites::namespace::NamespaceError;
use harness::suites::{
    CancelToken, Exit, NamespaceProvisioner, NoNamespaces, OsRandom, Outcome, RandomSource,
    RunConfig, RunError, RunSummary, StartError, StopReason, Stream, SuiteCommand, SuiteEvent,
    SuiteSpec, cancellation, run_suite, run_suites,
};
use tokio::sync::mpsc;

/// A random source that always yields 0xdeadbeef, so namespace names are
/// known in advance.
struct DeadBeef;

impl RandomSource for DeadBeef {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), NamespaceError> {
        for (b, v) in buf.iter_mut().zip([0xde, 0xad, 0xbe, 0xef].iter().cycle()) {
            *b = *v;
        }
        Ok(())
    }
}

/// Writes a shell script and returns the command running it.
fn script(dir: &Path, name: &str, body: &str) -> Vec<OsString> {
    let path = dir.join(format!("{name}.sh"));
    std::fs::write(&path, format!("set -u\n{body}\n")).unwrap();
    vec!["sh".into(), path.into()]
}

fn spec(name: &str, command: Vec<OsString>, cwd: &Path) -> SuiteSpec {
    SuiteSpec {
        name: name.to_owned(),
        command,
        cwd: cwd.to_owned(),
        timeout: Duration::from_secs(30),
        serial: false,
        namespace_prefix: name.to_owned(),
        env: BTreeMap::new(),
    }
}

fn config(root: &Path, jobs: usize) -> RunConfig {
    RunConfig {
        run_id: "run-0001".into(),
        kubeconfig: root.join("kubeconfig"),
        artifacts_root: root.join("artifacts"),
        endpoints: BTreeMap::from([
            ("datastorage".into(), "http://localhost:28090".into()),
            ("data-storage.v2".into(), "http://localhost:28091".into()),
        ]),
        jobs: NonZeroUsize::new(jobs).unwrap(),
        grace: Duration::from_secs(2),
    }
}

/// Runs `suites` to the end and returns the summary and every event.
async fn run(suites: &[SuiteSpec], config: &RunConfig) -> (RunSummary, Vec<SuiteEvent>) {
    let (tx, rx) = mpsc::channel(1024);
    let collector = tokio::spawn(collect(rx));
    let summary = run_suites(
        suites,
        config,
        Arc::new(NoNamespaces),
        &mut OsRandom,
        tx,
        CancelToken::never(),
    )
    .await
    .unwrap();
    (summary, collector.await.unwrap())
}

async fn collect(mut rx: mpsc::Receiver<SuiteEvent>) -> Vec<SuiteEvent> {
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        events.push(event);
    }
    events
}

/// Reads a `start NAME` / `end NAME` journal and returns the largest number
/// of suites between their start and end lines at once.
fn max_overlap(journal: &str) -> usize {
    let mut running = 0usize;
    let mut max = 0;
    for line in journal.lines() {
        if line.starts_with("start ") {
            running += 1;
            max = max.max(running);
        } else if line.starts_with("end ") {
            running -= 1;
        }
    }
    max
}

/// A suite that logs `start`/`end` to a shared journal and holds its slot
/// until another suite has started after it (or every suite has started),
/// so that parallelism, if allowed, is observed rather than hoped for.
fn journaled(name: &str, journal: &Path, total: usize) -> String {
    let j = journal.display();
    format!(
        r#"
echo "start {name} $HARNESS_PROCESS" >> {j}
i=0
while :; do
  after=$(sed -n '/^start {name} /,$p' {j} | grep -c '^start')
  total=$(grep -c '^start' {j})
  [ "$after" -ge 2 ] || [ "$total" -ge {total} ] && break
  i=$((i+1)); [ $i -lt 500 ] || {{ echo "nobody started after {name}" >&2; exit 9; }}
  sleep 0.02
done
echo "end {name}" >> {j}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_jobs_suites_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let names = ["s1", "s2", "s3", "s4", "s5", "s6"];
    let suites: Vec<SuiteSpec> = names
        .iter()
        .map(|n| {
            spec(
                n,
                script(dir.path(), n, &journaled(n, &journal, 6)),
                dir.path(),
            )
        })
        .collect();
    let (summary, _) = run(&suites, &config(dir.path(), 2)).await;

    assert!(summary.passed(), "{:#?}", summary.results);
    let journal = std::fs::read_to_string(&journal).unwrap();
    // Exactly 2: never more than the bound, and the bound is actually used.
    assert_eq!(max_overlap(&journal), 2, "journal:\n{journal}");
    // Suites run in slots 1 and 2 only.
    for line in journal.lines().filter(|l| l.starts_with("start")) {
        let slot = line.rsplit(' ').next().unwrap();
        assert!(slot == "1" || slot == "2", "slot {slot} in {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_suites_run_alone_after_every_parallel_one() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let j = journal.display();
    // Serial suites come first in the input: a scheduler ignoring the flag
    // would start them first.
    let mut suites = Vec::new();
    for name in ["load", "chaos"] {
        let body =
            format!("echo \"start {name} $HARNESS_PROCESS\" >> {j}\necho \"end {name}\" >> {j}");
        let mut s = spec(name, script(dir.path(), name, &body), dir.path());
        s.serial = true;
        suites.push(s);
    }
    for name in ["a", "b", "c"] {
        let body = journaled(name, &journal, 3);
        suites.push(spec(name, script(dir.path(), name, &body), dir.path()));
    }
    let (summary, events) = run(&suites, &config(dir.path(), 3)).await;
    assert!(summary.passed(), "{:#?}", summary.results);

    let journal = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = journal.lines().collect();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in journal:\n{journal}"))
    };
    let last_parallel_end = ["end a", "end b", "end c"]
        .map(pos)
        .into_iter()
        .max()
        .unwrap();
    assert!(pos("start load") > last_parallel_end, "journal:\n{journal}");
    // One at a time, in input order, in slot 1.
    assert!(pos("end load") < pos("start chaos"), "journal:\n{journal}");
    assert!(journal.contains("start load 1") && journal.contains("start chaos 1"));
    // The parallel phase really was parallel.
    assert_eq!(max_overlap(&journal), 3, "journal:\n{journal}");

    // The event stream agrees: no serial suite starts before every parallel
    // suite has finished.
    let index = |pred: &dyn Fn(&SuiteEvent) -> bool| events.iter().position(pred).unwrap();
    let started = |n: &'static str| {
        index(&move |e| matches!(e, SuiteEvent::Started { suite, .. } if suite == n))
    };
    let finished =
        |n: &'static str| index(&move |e| matches!(e, SuiteEvent::Finished(r) if r.name == n));
    let last = ["a", "b", "c"].map(finished).into_iter().max().unwrap();
    assert!(started("load") > last && finished("load") < started("chaos"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suites_get_the_environment_contract() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("project");
    std::fs::create_dir(&cwd).unwrap();
    let body = r#"
out="$HARNESS_ARTIFACTS/env.txt"
env > "$out"
echo "CWD=$(pwd)" >> "$out"
echo "STDIN=$(readlink /proc/$$/fd/0)" >> "$out"
echo "PGRP=$(cut -d' ' -f5 /proc/$$/stat)" >> "$out"
echo "PID=$$" >> "$out"
"#;
    let mut suite = spec("env-check", script(dir.path(), "env", body), &cwd);
    // The lane file's own variables reach the suite; the contract wins.
    suite.env = BTreeMap::from([
        ("GINKGO_LABEL_FILTER".to_owned(), OsString::from("audit")),
        ("HARNESS_RUN_ID".to_owned(), OsString::from("overridden")),
    ]);
    let suites = vec![suite];
    let config = config(dir.path(), 4);
    let (tx, rx) = mpsc::channel(1024);
    let collector = tokio::spawn(collect(rx));
    let summary = run_suites(
        &suites,
        &config,
        Arc::new(NoNamespaces),
        &mut DeadBeef,
        tx,
        CancelToken::never(),
    )
    .await
    .unwrap();
    collector.await.unwrap();
    assert!(summary.passed(), "{:#?}", summary.results);

    let artifacts = config.artifacts_dir("env-check");
    let text = std::fs::read_to_string(artifacts.join("env.txt")).unwrap();
    let vars: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let expected = [
        (
            "KUBECONFIG",
            dir.path().join("kubeconfig").display().to_string(),
        ),
        ("HARNESS_NAMESPACE", "env-check-p1-deadbeef".to_owned()),
        ("HARNESS_RUN_ID", "run-0001".to_owned()),
        ("HARNESS_PROCESS", "1".to_owned()),
        ("HARNESS_ARTIFACTS", artifacts.display().to_string()),
        (
            "HARNESS_ENDPOINT_DATASTORAGE",
            "http://localhost:28090".to_owned(),
        ),
        (
            "HARNESS_ENDPOINT_DATA_STORAGE_V2",
            "http://localhost:28091".to_owned(),
        ),
        ("CWD", cwd.display().to_string()),
        ("STDIN", "/dev/null".to_owned()),
        ("GINKGO_LABEL_FILTER", "audit".to_owned()),
    ];
    for (var, value) in expected {
        assert_eq!(
            vars.get(var).copied(),
            Some(value.as_str()),
            "{var} in:\n{text}"
        );
    }
    // Its own process group: the script's shell leads it.
    assert_eq!(vars["PGRP"], vars["PID"], "not in its own process group");
    // The inherited environment is kept (PATH is how `sh` was found).
    assert!(vars.contains_key("PATH"));
    assert_eq!(
        summary.results[0].namespace.as_deref(),
        Some("env-check-p1-deadbeef")
    );
}

/// Whether `pid` is a live process (a zombie is not: it is dead, merely not
/// reaped, and in containers PID 1 may never reap it).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !(state.starts_with('Z') || state.starts_with('X'))
        }
    }
}

/// Polls `cond` until it holds or `within` has passed.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

fn command(name: &str, argv: Vec<OsString>, dir: &Path, timeout: Duration) -> SuiteCommand {
    SuiteCommand {
        name: name.to_owned(),
        program: argv[0].clone(),
        args: argv[1..].to_vec(),
        env: BTreeMap::new(),
        cwd: dir.to_owned(),
        timeout,
        grace: Duration::from_secs(1),
        log_path: dir.join(name).join("output.log"),
        artifacts_dir: dir.join(name).join("artifacts"),
        process: 1,
        namespace: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_terms_then_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let child_pid = dir.path().join("child.pid");
    let body = format!(
        r#"
trap 'echo "got TERM, ignoring it"' TERM
sh -c 'trap "" TERM; exec sleep 1000' &
echo $! > {}
echo "started child"
while :; do sleep 0.1; done
"#,
        child_pid.display()
    );
    let timeout = Duration::from_millis(1500);
    let cmd = command(
        "stubborn",
        script(dir.path(), "stubborn", &body),
        dir.path(),
        timeout,
    );
    let (tx, rx) = mpsc::channel(1024);
    let collector = tokio::spawn(collect(rx));
    let result = run_suite(&cmd, &tx, &CancelToken::never()).await;
    drop(tx);
    let events = collector.await.unwrap();

    assert!(
        matches!(result.outcome, Outcome::TimedOut { timeout: t } if t == timeout),
        "{:?}",
        result.outcome
    );
    // TERM was ignored, so the harness waited out the grace period.
    assert!(
        result.duration >= timeout + cmd.grace,
        "{:?}",
        result.duration
    );
    assert!(events.iter().any(|e| matches!(
        e,
        SuiteEvent::Stopping { suite, reason: StopReason::Timeout } if suite == "stubborn"
    )));
    let log = std::fs::read_to_string(&result.log_path).unwrap();
    assert!(log.contains("started child"), "log:\n{log}");
    assert!(
        log.contains("got TERM, ignoring it"),
        "TERM never reached the script:\n{log}"
    );
    // The grandchild ignored TERM too; SIGKILL to the group got it.
    let pid: u32 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)).await,
        "child {pid} of the timed-out suite is still running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_that_honours_term_is_not_made_to_wait_for_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let body = "trap 'echo bye; exit 0' TERM\nwhile :; do sleep 0.05; done";
    let mut cmd = command(
        "polite",
        script(dir.path(), "polite", body),
        dir.path(),
        Duration::from_millis(300),
    );
    cmd.grace = Duration::from_secs(20);
    let (tx, rx) = mpsc::channel(1024);
    let collector = tokio::spawn(collect(rx));
    let result = run_suite(&cmd, &tx, &CancelToken::never()).await;
    drop(tx);
    collector.await.unwrap();
    // Exit status 0 after the timeout is still a timeout.
    assert!(
        matches!(result.outcome, Outcome::TimedOut { .. }),
        "{:?}",
        result.outcome
    );
    assert!(
        result.duration < Duration::from_secs(10),
        "{:?}",
        result.duration
    );
    let log = std::fs::read_to_string(&result.log_path).unwrap();
    assert!(log.contains("bye"), "log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_are_logged_and_streamed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
for i in 1 2 3 4 5; do echo "out $i"; echo "err $i" >&2; done
printf 'crlf line\r\n'
printf 'no newline at the end' >&2
"#;
    let cmd = command(
        "chatty",
        script(dir.path(), "chatty", body),
        dir.path(),
        Duration::from_secs(30),
    );
    let (tx, rx) = mpsc::channel(1024);
    let collector = tokio::spawn(collect(rx));
    let result = run_suite(&cmd, &tx, &CancelToken::never()).await;
    drop(tx);
    let events = collector.await.unwrap();
    assert!(
        matches!(result.outcome, Outcome::Passed),
        "{:?}",
        result.outcome
    );

    let lines = |want: Stream| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                SuiteEvent::Output {
                    suite,
                    stream,
                    line,
                } if *stream == want => {
                    assert_eq!(suite, "chatty");
                    Some(line.clone())
                }
                _ => None,
            })
            .collect()
    };
    let mut expected_out: Vec<String> = (1..=5).map(|i| format!("out {i}")).collect();
    expected_out.push("crlf line".into());
    let mut expected_err: Vec<String> = (1..=5).map(|i| format!("err {i}")).collect();
    expected_err.push("no newline at the end".into());
    assert_eq!(lines(Stream::Stdout), expected_out);
    assert_eq!(lines(Stream::Stderr), expected_err);

    // Started first, Finished last, outputs between.
    assert!(matches!(events.first(), Some(SuiteEvent::Started { .. })));
    assert!(matches!(events.last(), Some(SuiteEvent::Finished(r)) if r.name == "chatty"));

    // The log holds every line of both streams, each stream in its order.
    let log = std::fs::read_to_string(&result.log_path).unwrap();
    let log_lines: Vec<&str> = log.lines().collect();
    assert_eq!(log_lines.len(), 12, "log:\n{log}");
    for expected in [&expected_out, &expected_err] {
        let in_log: Vec<&str> = log_lines
            .iter()
            .copied()
            .filter(|l| expected.iter().any(|e| e == l))
            .collect();
        assert_eq!(in_log, *expected, "log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_signals_and_missing_programs_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let suites = vec![
        spec("ok", script(dir.path(), "ok", "exit 0"), dir.path()),
        spec("three", script(dir.path(), "three", "exit 3"), dir.path()),
        spec(
            "killed",
            script(dir.path(), "killed", "kill -KILL $$"),
            dir.path(),
        ),
        spec("missing", vec!["/nonexistent/ginkgo".into()], dir.path()),
    ];
    let (summary, _) = run(&suites, &config(dir.path(), 2)).await;
    let outcome = |name: &str| {
        &summary
            .results
            .iter()
            .find(|r| r.name == name)
            .unwrap()
            .outcome
    };
    assert!(matches!(outcome("ok"), Outcome::Passed));
    assert!(matches!(outcome("three"), Outcome::Failed(Exit::Code(3))));
    assert!(matches!(
        outcome("killed"),
        Outcome::Failed(Exit::Signal(9))
    ));
    assert_eq!(outcome("killed").describe(), "killed by SIGKILL");
    match outcome("missing") {
        Outcome::Errored(err) => {
            assert!(matches!(**err, StartError::Spawn { .. }), "{err:?}");
            assert!(outcome("missing").describe().contains("on PATH"));
        }
        other => panic!("expected a spawn error, got {other:?}"),
    }
    assert!(!summary.passed());
    let failed: Vec<&str> = summary.failures().map(|r| r.name.as_str()).collect();
    assert_eq!(failed, ["three", "killed", "missing"]);
    // Results come back in input order.
    let names: Vec<&str> = summary.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["ok", "three", "killed", "missing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_passing_suites_pass_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let suites: Vec<SuiteSpec> = ["a", "b", "c"]
        .iter()
        .map(|n| spec(n, script(dir.path(), n, "echo fine"), dir.path()))
        .collect();
    let (summary, events) = run(&suites, &config(dir.path(), 2)).await;
    assert!(summary.passed(), "{:#?}", summary.results);
    let finished = events
        .iter()
        .filter(|e| matches!(e, SuiteEvent::Finished(_)))
        .count();
    assert_eq!(finished, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_running_suites_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let child_pid = dir.path().join("child.pid");
    let sleeper = format!(
        "sh -c 'trap \"\" TERM; exec sleep 1000' &\necho $! >> {}\necho ready\nwhile :; do sleep 0.1; done",
        child_pid.display()
    );
    let suites: Vec<SuiteSpec> = ["one", "two", "three"]
        .iter()
        .map(|n| spec(n, script(dir.path(), n, &sleeper), dir.path()))
        .collect();
    let mut config = config(dir.path(), 2);
    config.grace = Duration::from_millis(500);
    let (handle, token) = cancellation();
    let (tx, mut rx) = mpsc::channel(1024);
    let started = Instant::now();
    let run = tokio::spawn(async move {
        run_suites(
            &suites,
            &config,
            Arc::new(NoNamespaces),
            &mut OsRandom,
            tx,
            token,
        )
        .await
    });

    // Cancel once both slots are busy and their children are recorded.
    let mut events = Vec::new();
    let mut ready = 0;
    while ready < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("suites did not get ready")
            .expect("events ended before two suites were ready");
        if matches!(&event, SuiteEvent::Output { line, .. } if line == "ready") {
            ready += 1;
        }
        events.push(event);
    }
    handle.cancel();
    events.extend(collect(rx).await);
    let summary = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run did not stop after cancellation")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));

    let outcomes: Vec<String> = summary
        .results
        .iter()
        .map(|r| r.outcome.describe())
        .collect();
    assert!(
        matches!(summary.results[0].outcome, Outcome::Interrupted),
        "{outcomes:?}"
    );
    assert!(
        matches!(summary.results[1].outcome, Outcome::Interrupted),
        "{outcomes:?}"
    );
    assert!(
        matches!(summary.results[2].outcome, Outcome::Skipped),
        "{outcomes:?}"
    );
    assert!(!summary.passed());
    let stopping = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SuiteEvent::Stopping {
                    reason: StopReason::Cancelled,
                    ..
                }
            )
        })
        .count();
    assert_eq!(stopping, 2);
    // Every suite has exactly one Finished event, skipped ones included.
    for name in ["one", "two", "three"] {
        let n = events
            .iter()
            .filter(|e| matches!(e, SuiteEvent::Finished(r) if r.name == name))
            .count();
        assert_eq!(n, 1, "{name}");
    }
    // The TERM-immune children of both suites were killed.
    let pids = std::fs::read_to_string(&child_pid).unwrap();
    let pids: Vec<u32> = pids.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(
            eventually(Duration::from_secs(5), || !alive(pid)).await,
            "child {pid} survived the cancellation"
        );
    }
}

/// Records every namespace it is asked to create; fails for names starting
/// with `bad`.
#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl NamespaceProvisioner for Recording {
    async fn create(&self, namespace: &str) -> Result<(), NamespaceError> {
        self.0.lock().unwrap().push(namespace.to_owned());
        if namespace.starts_with("bad") {
            return Err(NamespaceError::Create {
                namespace: namespace.to_owned(),
                reason: "admission webhook denied the request".into(),
            });
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_suite_runs_in_its_own_created_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let body = "echo \"$HARNESS_NAMESPACE\" > \"$HARNESS_ARTIFACTS/ns\"";
    let suites: Vec<SuiteSpec> = ["api", "audit", "bad-suite"]
        .iter()
        .map(|n| spec(n, script(dir.path(), n, body), dir.path()))
        .collect();
    let config = config(dir.path(), 2);
    let provisioner = Arc::new(Recording::default());
    let (tx, rx) = mpsc::channel(1024);
    let collector = tokio::spawn(collect(rx));
    let summary = run_suites(
        &suites,
        &config,
        Arc::clone(&provisioner),
        &mut OsRandom,
        tx,
        CancelToken::never(),
    )
    .await
    .unwrap();
    collector.await.unwrap();

    let created = provisioner.0.lock().unwrap().clone();
    assert_eq!(created.len(), 3);
    for name in ["api", "audit"] {
        let seen = std::fs::read_to_string(config.artifacts_dir(name).join("ns")).unwrap();
        let seen = seen.trim();
        assert!(
            created.iter().any(|c| c == seen),
            "{seen} was never created"
        );
        assert!(seen.starts_with(&format!("{name}-p")), "{seen}");
    }
    // Distinct namespaces for distinct suites.
    let mut unique = created.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3);
    // A namespace that cannot be created fails its suite without running it.
    let bad = &summary.results[2];
    assert!(
        matches!(&bad.outcome, Outcome::Errored(e) if matches!(**e, StartError::Namespace(_))),
        "{:?}",
        bad.outcome
    );
    assert!(
        bad.outcome.describe().contains("admission webhook"),
        "{}",
        bad.outcome.describe()
    );
    assert!(!config.artifacts_dir("bad-suite").join("ns").exists());
    assert!(!summary.passed());
}

#[tokio::test]
async fn unrunnable_suite_sets_are_rejected_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let ok = |n: &str| spec(n, vec!["true".into()], dir.path());
    let mut empty = ok("empty");
    empty.command.clear();
    let cases: Vec<(Vec<SuiteSpec>, RunError)> = vec![
        (vec![ok("a"), ok("a")], RunError::DuplicateName("a".into())),
        (
            vec![ok("../escape")],
            RunError::InvalidName("../escape".into()),
        ),
        (vec![ok(".hidden")], RunError::InvalidName(".hidden".into())),
        (vec![ok("")], RunError::InvalidName(String::new())),
        (vec![empty], RunError::EmptyCommand("empty".into())),
    ];
    for (suites, expected) in cases {
        let (tx, _rx) = mpsc::channel(16);
        let err = run_suites(
            &suites,
            &config(dir.path(), 1),
            Arc::new(NoNamespaces),
            &mut OsRandom,
            tx,
            CancelToken::never(),
        )
        .await
        .unwrap_err();
        assert_eq!(err, expected);
    }
    let mut colliding = config(dir.path(), 1);
    colliding
        .endpoints
        .insert("data_storage.v2".into(), "x".into());
    let (tx, _rx) = mpsc::channel(16);
    let err = run_suites(
        &[ok("a")],
        &colliding,
        Arc::new(NoNamespaces),
        &mut OsRandom,
        tx,
        CancelToken::never(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RunError::Endpoints(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_report_merges_own_reports_and_covers_every_suite() {
    use harness::suites::junit::{build_report, write_report};
    use quick_junit::{Report, TestCaseStatus};

    let dir = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit/ginkgo-report.xml");
    let gateway = format!(
        "echo 'Ran 3 of 4 Specs'\ncp {} \"$HARNESS_ARTIFACTS/junit_gateway.xml\"\nexit 1",
        fixture.display()
    );
    let suites = vec![
        spec(
            "gateway",
            script(dir.path(), "gateway", &gateway),
            dir.path(),
        ),
        spec(
            "plain",
            script(dir.path(), "plain", "echo plain output"),
            dir.path(),
        ),
        spec(
            "crash",
            script(
                dir.path(),
                "crash",
                "echo about to fail\necho boom >&2\nexit 2",
            ),
            dir.path(),
        ),
    ];
    let (summary, _) = run(&suites, &config(dir.path(), 3)).await;
    let path = dir.path().join("reports/junit.xml");
    write_report(&build_report("gateway-lane", &summary), &path).unwrap();

    let xml = std::fs::read_to_string(&path).unwrap();
    let report = Report::deserialize_from_str(&xml).unwrap();
    let names: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Gateway E2E Suite", "plain", "crash"], "{xml}");
    // Ginkgo's failed spec plus the crashed suite.
    assert_eq!(report.failures, 2, "{xml}");
    assert_eq!(report.test_suites[0].test_cases.len(), 4);

    let plain = &report.test_suites[1].test_cases[0];
    assert!(matches!(plain.status, TestCaseStatus::Success { .. }));
    assert_eq!(plain.system_out.as_ref().unwrap().as_str(), "plain output");

    let crash = &report.test_suites[2].test_cases[0];
    match &crash.status {
        TestCaseStatus::NonSuccess { message, .. } => {
            assert_eq!(message.as_ref().unwrap().as_str(), "exited with status 2")
        }
        other => panic!("crash is not a failure: {other:?}"),
    }
    let out = crash.system_out.as_ref().unwrap().as_str();
    assert!(
        out.contains("about to fail") && out.contains("boom"),
        "{out}"
    );
    // Written atomically: no temporary file left behind.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_left_the_group_does_not_hang_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("escaped.pid");
    // setsid puts the sleeper in a new session (out of reach of killpg),
    // still holding the suite's stdout open.
    let body = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 1000' &\nwhile [ ! -s {} ]; do sleep 0.01; done\necho done",
        pid_file.display(),
        pid_file.display()
    );
    let mut cmd = command(
        "escape",
        script(dir.path(), "escape", &body),
        dir.path(),
        Duration::from_secs(30),
    );
    cmd.grace = Duration::from_millis(300);
    let (tx, rx) = mpsc::channel(1024);
    let collector = tokio::spawn(collect(rx));
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        run_suite(&cmd, &tx, &CancelToken::never()),
    )
    .await;
    drop(tx);
    collector.await.unwrap();
    let escaped: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Clean up the process this test started before asserting anything.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(escaped),
        nix::sys::signal::Signal::SIGKILL,
    );
    let result = result.expect("the runner waited forever on a pipe held by an escaped process");
    assert!(
        matches!(result.outcome, Outcome::Passed),
        "{:?}",
        result.outcome
    );
    let log = std::fs::read_to_string(&result.log_path).unwrap();
    assert!(log.contains("done"), "log:\n{log}");
    assert!(result.duration >= cmd.grace, "{:?}", result.duration);
}
