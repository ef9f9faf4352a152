//! Whole runs of the harness binary on real kind clusters made from the test
//! cluster's node image (`scripts/test-cluster`, Kubernetes 1.20): the demo
//! stack's lane as a user runs it, and an interrupted run. Each test's
//! harness creates its own cluster, so these need `HARNESS_KIND_NODE_IMAGE`
//! and the `docker` wrapper of test-cluster/bin first on PATH (scripts/test
//! sets both); they run one at a time (.config/nextest.toml), because the
//! demo lane publishes fixed host ports.

#[path = "../../tests/support/bundle.rs"]
mod bundle;
#[path = "../../tests/support/cluster.rs"]
mod cluster;
#[path = "../../tests/support/junit.rs"]
mod junit;
#[path = "../../tests/support/shown.rs"]
mod shown;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The harness binary in `dir`, with the node image the caller checked.
fn harness(dir: &Path, image: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.current_dir(dir)
        .env("HARNESS_KIND_NODE_IMAGE", image)
        .env_remove("HARNESS_CONFIG")
        .env_remove("HARNESS_LANE")
        .env_remove("KUBECONFIG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "true")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!(
        "--- {what}: exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn kind_clusters() -> Vec<String> {
    let out = Command::new("kind")
        .args(["get", "clusters"])
        .output()
        .expect("kind runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Takes the demo lane down if a test ends with it still up (a failed
/// assertion on the way): the next demo-lane test needs its cluster name
/// and its host ports. A test that passes has taken it down itself.
struct TakeDownAfter<'a> {
    repo: &'a Path,
    image: &'a str,
}

impl Drop for TakeDownAfter<'_> {
    fn drop(&mut self) {
        for (lane, cluster) in [("audit", "audit-e2e"), ("controller", "controller-e2e")] {
            if kind_clusters().iter().any(|c| c == cluster) {
                run(
                    harness(self.repo, self.image).args(["down", "--lane", lane]),
                    "harness down (the test ended with a demo lane up)",
                );
            }
        }
    }
}

/// The bundles (`*.tar.gz`) directly under `dir`.
fn bundles_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect()
}

/// Every file of an unpacked bundle, with its bytes.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    bundle::files_under(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The demo stack as a developer and a CI job use it: `test --preserve`
/// (images, cluster, load, deploy, the audit and load suites), `up` again on
/// the kept cluster, `status`, `diagnose`, `gather` with a planted Secret,
/// `down`, and `down` once more with nothing up.
#[test]
fn demo_lane_test_reup_status_diagnose_gather_down() {
    let Some(image) = cluster::node_image() else {
        return;
    };
    let repo = repo();
    assert!(
        !kind_clusters().iter().any(|c| c == "audit-e2e"),
        "a kind cluster audit-e2e exists already: this test runs the demo lane, which makes it; delete it first"
    );
    assert!(
        !repo.join(".harness/state/audit.json").exists(),
        "the demo lane is up already (.harness/state/audit.json): `harness down --lane audit` first"
    );
    let _down = TakeDownAfter {
        repo: &repo,
        image: &image,
    };
    let started = Instant::now();
    let out = run(
        harness(&repo, &image).args(["test", "--lane", "audit", "--preserve"]),
        "harness test --lane audit --preserve",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(kind_clusters().iter().any(|c| c == "audit-e2e"));
    eprintln!("test --preserve took {:?}", started.elapsed());

    let out = run(
        harness(&repo, &image).args(["up", "--lane", "audit"]),
        "harness up (again)",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = run(
        harness(&repo, &image).args(["status", "--lane", "audit", "--output", "json"]),
        "harness status",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = String::from_utf8_lossy(&out.stdout);
    for component in ["postgresql", "redis", "migrations", "datastorage"] {
        assert!(
            status.contains(component),
            "status names {component}: {status}"
        );
    }

    let out = run(
        harness(&repo, &image).args(["diagnose", "--lane", "audit"]),
        "harness diagnose",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A Secret the gather must redact: its value, and its base64, must be
    // in no file of the bundle.
    let planted = format!(
        "planted-{}-{}",
        std::process::id(),
        started.elapsed().as_nanos()
    );
    let kubeconfig = std::env::var("HOME")
        .map(PathBuf::from)
        .unwrap()
        .join(".kube/audit-e2e-config");
    plant_secret(&kubeconfig, "harness-demo", &planted);
    let out_dir = tempfile::tempdir().unwrap();
    let out = run(
        harness(&repo, &image)
            .args(["gather", "--lane", "audit", "--out"])
            .arg(out_dir.path()),
        "harness gather",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let published = bundles_in(out_dir.path());
    assert_eq!(published.len(), 1, "{published:?}");
    let unpacked = bundle::assert_complete(&published[0]);
    let files = contents(unpacked.path());
    let encoded = base64_of(&planted);
    for (name, bytes) in &files {
        assert!(
            !contains(bytes, &planted),
            "{name} holds the planted Secret value"
        );
        assert!(
            !contains(bytes, &encoded),
            "{name} holds the planted Secret value in base64"
        );
        assert!(
            !contains(bytes, "audit-e2e-only"),
            "{name} holds the demo's database password"
        );
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "/pods/",
        "current.log",
        "/v1/node/",
        "events.yaml",
        "kubelet.log",
    ] {
        assert!(
            names.iter().any(|n| n.contains(want)),
            "the bundle has {want}: {names:?}"
        );
    }

    let out = run(
        harness(&repo, &image).args(["down", "--lane", "audit"]),
        "harness down",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !kind_clusters().iter().any(|c| c == "audit-e2e"),
        "down deletes the cluster that test and up made"
    );
    let out = run(
        harness(&repo, &image).args(["down", "--lane", "audit"]),
        "harness down (nothing up)",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "down is idempotent: {}",
        text(&out)
    );
}

/// The section of a report from the line starting with `title` to the next
/// blank line.
fn section(report: &str, title: &str) -> String {
    let start = report
        .find(&format!("\n{title}"))
        .unwrap_or_else(|| panic!("no section {title:?} in:\n{report}"));
    let rest = &report[start + 1..];
    let end = rest.find("\n\n").map_or(rest.len(), |e| e + 1);
    rest[..end].to_owned()
}

/// The one bundle a run of `dir`'s demo lane published under `run`.
fn run_bundle(run: &Path) -> PathBuf {
    let bundles = bundles_in(&run.join("gather"));
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    bundles[0].clone()
}

/// The run directory of the newest run of the demo lane.
fn newest_run(repo: &Path, before: &[PathBuf]) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(repo.join(".harness/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(runs.len(), 1, "one new run: {runs:?}");
    runs[0].clone()
}

fn runs_now(repo: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(repo.join(".harness/runs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Both demo lanes in one run, at once. Their kind configs publish
/// DataStorage at the same host port, 28090 (deploy/kind/*.yaml): the
/// controller lane's is moved to a free port, its kind config copy says so
/// (the lane file's does not change), and its suite reaches its own
/// DataStorage there — the audit lane's, at 28090, does not know the
/// controller's objects, so a suite sent there would fail.
#[test]
fn demo_lanes_both_at_once_move_the_shared_port_and_pass() {
    let Some(image) = cluster::node_image() else {
        return;
    };
    let repo = repo();
    for cluster in ["audit-e2e", "controller-e2e"] {
        assert!(
            !kind_clusters().iter().any(|c| c == cluster),
            "a kind cluster {cluster} exists already: this test runs both demo lanes; delete it first"
        );
    }
    let _down = TakeDownAfter {
        repo: &repo,
        image: &image,
    };
    let kind_config = std::fs::read_to_string(repo.join("deploy/kind/controller.yaml")).unwrap();
    assert!(
        kind_config.contains("hostPort: 28090"),
        "the lanes share 28090"
    );
    let args = [
        "test",
        "--lane",
        "audit",
        "--lane",
        "controller",
        "--lanes-at-once",
        "2",
    ];
    let out = run(
        harness(&repo, &image).args(args),
        "harness test --lane audit --lane controller",
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let prefix =
        "lane controller: host port 28090/TCP (deploy/kind/controller.yaml:12:15) moved to ";
    let moved = all
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no moved port in:\n{all}"));
    let port: u16 = moved.split(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 28090);
    // They ran at the same time: the controller lane's cluster was being
    // made while the audit lane's was.
    let at = |needle: &str| {
        all.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{all}"))
    };
    assert!(at("controller | ") > 0);
    let first_done = at("cluster   done").min(all.len());
    assert!(at("audit | ") < first_done && all[..first_done].contains("controller | "));
    // One summary, every lane's result in it, with its run.
    let summary = section(&all, "lanes: 2 run, 0 failed");
    // docs/commands.md, "Several lanes at once": what comes before the
    // lanes' own lines, and the summary after their reports.
    let head: Vec<&str> = all.lines().take_while(|l| !l.contains(" | ")).collect();
    insta::assert_snapshot!(
        "lanes_at_once",
        shown::taken(&shown::session(
            &args,
            &format!(
                "{}\n[… each lane's lines and report …]\n\n{summary}",
                head.join("\n")
            )
        ))
    );
    let run_of = |lane: &str| -> PathBuf {
        let line = summary
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(lane))
            .unwrap_or_else(|| panic!("no {lane} in {summary}"));
        let id = line
            .split_whitespace()
            .find(|w| w.starts_with("r-"))
            .unwrap();
        repo.join(".harness/runs").join(id)
    };
    // The copy kind was handed moves only that port; the lane file's config is as it was.
    let copy = std::fs::read_to_string(repo.join(".harness/kind/controller.yaml")).unwrap();
    assert_eq!(
        copy,
        kind_config.replace("hostPort: 28090", &format!("hostPort: {port}"))
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("deploy/kind/controller.yaml")).unwrap(),
        kind_config
    );
    // Each lane's suites used its own port, and each lane has its own JUnit.
    let trail =
        std::fs::read_to_string(run_of("controller").join("suites/trail/output.log")).unwrap();
    assert!(
        trail.contains(&format!("DataStorage at http://localhost:{port}")),
        "{trail}"
    );
    let audit = std::fs::read_to_string(run_of("audit").join("suites/audit/output.log")).unwrap();
    assert!(
        audit.contains("DataStorage at http://localhost:28090"),
        "{audit}"
    );
    for lane in ["audit", "controller"] {
        assert!(
            run_of(lane).join("junit.xml").is_file(),
            "{lane} has its JUnit"
        );
    }
    assert!(
        !kind_clusters()
            .iter()
            .any(|c| c == "audit-e2e" || c == "controller-e2e"),
        "both clusters torn down"
    );
}

/// The demo shows all three verdicts (docs/demo.md). With `DEMO_CRASH=1`
/// the load suite's burst gets DataStorage OOMKilled for real (its 64Mi
/// limit), and the audit suite, running next, fails against it: each of
/// its failed cases is `infrastructure`, citing that OOM kill with its exit
/// code and limit, and passes on the retry that `--retries 1` runs once
/// every component is Ready again. With `DEMO_RACE=1` the types suite's
/// race is lost on the first attempt and won on the retry: `flaky`.
/// Nothing is `real`, so the run passes (`--flaky-result pass`, the
/// default). Then, on the environment kept, `DEMO_WRONG=1` adds a case that
/// fails on every attempt: `real`, and the run fails.
#[test]
fn demo_lane_crash_and_race_get_infrastructure_and_flaky_verdicts() {
    let Some(image) = cluster::node_image() else {
        return;
    };
    let repo = repo();
    assert!(
        !kind_clusters().iter().any(|c| c == "audit-e2e"),
        "a kind cluster audit-e2e exists already: this test runs the demo lane, which makes it; delete it first"
    );
    let _down = TakeDownAfter {
        repo: &repo,
        image: &image,
    };
    let before = runs_now(&repo);
    let out = run(
        harness(&repo, &image)
            .args([
                "test",
                "--lane",
                "audit",
                "--retries",
                "1",
                "--preserve",
                "--gather",
                "always",
            ])
            .env("DEMO_CRASH", "1")
            .env("DEMO_RACE", "1"),
        "harness test --lane audit --retries 1 (DEMO_CRASH, DEMO_RACE)",
    );
    let text = text(&out);
    let run_dir = newest_run(&repo, &before);
    let bundle = run_bundle(&run_dir);
    let unpacked = bundle::assert_complete(&bundle);
    let root = bundle::top(&unpacked);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("harness/summary.json")).unwrap())
            .unwrap();
    let verdicts = summary["test_verdicts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    eprintln!(
        "test verdicts: {}",
        serde_json::to_string_pretty(&verdicts).unwrap()
    );
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        verdicts.iter().filter(|v| v["verdict"] == kind).collect()
    };
    assert!(of("real").is_empty(), "nothing is real: {text}");
    let flaky = of("flaky");
    assert_eq!(flaky.len(), 1, "{text}");
    assert_eq!(flaky[0]["suite"], "types");
    assert_eq!(
        flaky[0]["case"],
        "a new event type is listed right after it is posted"
    );
    let infrastructure = of("infrastructure");
    assert!(!infrastructure.is_empty(), "the cascade: {text}");
    for v in &infrastructure {
        assert_eq!(v["suite"], "audit", "{v}");
        let incident = &v["incident"];
        assert_eq!(incident["component"], "datastorage", "{v}");
        assert_eq!(incident["what"], "OOMKilled", "{v}");
        assert_eq!(incident["limit"], "64Mi", "{v}");
        assert_eq!(incident["exit_code"], 137, "{v}");
        let attempts = v["attempts"].as_array().unwrap();
        assert_eq!(
            attempts.len(),
            2,
            "failed, then passed once it was back: {v}"
        );
        assert_eq!(
            (&attempts[0]["passed"], &attempts[1]["passed"]),
            (&false.into(), &true.into()),
            "{v}"
        );
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "flaky passes by default: {text}"
    );
    assert!(
        text.contains("every component Ready and settled again after"),
        "{text}"
    );
    // The merged JUnit's re-run elements are Surefire's.
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    let checked = junit::validate_reruns(&junit);
    assert!(
        checked == usize::MAX || checked > infrastructure.len(),
        "{checked}"
    );
    // `harness report` prints the verdicts again from the bundle.
    let replayed = run(
        harness(&repo, &image).arg("report").arg(&bundle),
        "harness report",
    );
    assert_eq!(replayed.status.code(), Some(0));
    let again = String::from_utf8_lossy(&replayed.stdout).into_owned();
    assert_eq!(
        section(&again, "test verdicts:"),
        section(&text, "test verdicts:")
    );
    assert!(again.contains("datastorage OOMKilled at "), "{again}");

    // The environment is kept: a deliberately wrong expectation is `real`.
    let before = runs_now(&repo);
    let out = run(
        harness(&repo, &image)
            .args(["test", "--lane", "audit", "--retries", "1"])
            .env("DEMO_WRONG", "1"),
        "harness test --lane audit --retries 1 (DEMO_WRONG)",
    );
    let text = crate::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let verdicts = section(&text, "test verdicts:");
    assert!(
        verdicts.starts_with("test verdicts: 1 real, 0 infrastructure, 0 flaky"),
        "{verdicts}"
    );
    assert!(
        verdicts.contains("audit: a batch of 150 accepts 151 (wrong on purpose) — failed on attempts 1 and 2: accepted 150, expected 151"),
        "{verdicts}"
    );
    let _ = newest_run(&repo, &before);

    let out = run(
        harness(&repo, &image).args(["down", "--lane", "audit"]),
        "harness down",
    );
    assert_eq!(out.status.code(), Some(0), "{}", crate::text(&out));
    assert!(!kind_clusters().iter().any(|c| c == "audit-e2e"));
}

/// Creates the Secret `planted` holding `value` in `namespace`.
fn plant_secret(kubeconfig: &Path, namespace: &str, value: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = cluster::client(kubeconfig).await;
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client, namespace);
        let secret = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "planted"},
            "stringData": {"token": value},
        }))
        .unwrap();
        secrets
            .create(&kube::api::PostParams::default(), &secret)
            .await
            .expect("the planted Secret is created");
    });
}

/// Whether `pid` runs (a zombie counts as gone).
fn alive(pid: Pid) -> bool {
    kill(pid, None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

const SIG_LANE: &str = r#"namespace: sig
preflight: { min_free_disk: 1GiB }
cluster:
  provider: kind
  kind: { engine: docker }
images:
  app: { dockerfile: app.Dockerfile, context: . }
components:
  web:
    manifests: [web.yaml]
    images: [app]
lanes:
  sig:
    cluster: { name: CLUSTER }
    components: [web]
    suites:
      block: { command: [sh, -c, 'echo $$ > "$MARK.tmp" && mv "$MARK.tmp" "$MARK"; exec sleep 3600'], timeout: 30m }
"#;

const SIG_APP: &str = "FROM harness/busybox:1\nRUN mkdir -p /www && echo ok > /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

const SIG_WEB: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: "{{image.app}}"
        imagePullPolicy: IfNotPresent
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
"#;

/// SIGTERM while a suite runs: the suite's process group is stopped, the
/// bundle is gathered complete, the cluster the run made is deleted, and the
/// run exits 130.
#[test]
fn sigterm_during_the_suites_gathers_then_deletes_the_cluster() {
    let Some(image) = cluster::node_image() else {
        return;
    };
    let project = tempfile::tempdir().unwrap();
    let name = format!("harness-test-sig-{}", std::process::id());
    std::fs::write(
        project.path().join("harness.yaml"),
        SIG_LANE.replace("CLUSTER", &name),
    )
    .unwrap();
    std::fs::write(project.path().join("app.Dockerfile"), SIG_APP).unwrap();
    std::fs::write(project.path().join("web.yaml"), SIG_WEB).unwrap();
    let mark = project.path().join("suite-started");
    let mut child = harness(project.path(), &image)
        .args(["test", "--lane", "sig"])
        .env("MARK", &mark)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The whole set-up (cluster, load, deploy) happens before the suite
    // writes its mark.
    let deadline = Instant::now() + Duration::from_secs(600);
    let suite_pid = loop {
        if let Ok(pid) = std::fs::read_to_string(&mark) {
            break Pid::from_raw(pid.trim().parse().unwrap());
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "harness ended before the suite started ({status}):\n{}",
                text(&out)
            );
        }
        assert!(
            Instant::now() < deadline,
            "the suite did not start within 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(kind_clusters().contains(&name));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    eprintln!("{}", text(&out));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        !alive(suite_pid),
        "the suite's process is gone after the run"
    );
    assert!(
        !kind_clusters().contains(&name),
        "the cluster the run made is deleted"
    );
    let runs = project.path().join(".harness/runs");
    let published: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .flat_map(|run| bundles_in(&run.path().join("gather")))
        .collect();
    assert_eq!(published.len(), 1, "one bundle: {published:?}");
    let unpacked = bundle::assert_complete(&published[0]);
    let names = bundle::files_under(unpacked.path());
    assert!(
        names
            .iter()
            .any(|n| n.contains("web") && n.ends_with("current.log")),
        "the bundle has the component's log: {names:?}"
    );
    // And the run's story: its events up to the gather, the diagnosis of
    // the lane as the suite left it, and a README that says how it went.
    let root = bundle::top(&unpacked);
    let events = std::fs::read_to_string(root.join("harness/events.jsonl")).unwrap();
    assert!(
        events.starts_with("{\"at\":") && events.contains("\"event\":\"run_started\""),
        "{events}"
    );
    let diagnosis = std::fs::read_to_string(root.join("harness/diagnosis.txt")).unwrap();
    assert!(diagnosis.contains("component web: Ready"), "{diagnosis}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(
            "- **result**: interrupted by SIGINT/SIGTERM (exit code 130, as of the gather)"
        ),
        "{readme}"
    );
    if let Ok(errors) = std::fs::read_to_string(root.join("harness/collector-errors.txt")) {
        eprintln!("collectors that failed:\n{errors}");
    }
}
