//! Black-box tests of the `harness` binary: exit codes, messages that point
//! at file:line:col, the plan of the repository's own lane file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn lanefile(case: &str) -> PathBuf {
    repo().join("tests/fixtures/lanefiles").join(case)
}

/// Runs `harness` in `dir` with a clean environment for the variables it reads.
fn harness(dir: &Path, args: &[&str]) -> Output {
    harness_env(dir, args, &[])
}

fn harness_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.current_dir(dir).args(args);
    for var in [
        "HARNESS_CONFIG",
        "HARNESS_LANE",
        "DOCKER_HOST",
        "CONTAINER_HOST",
        "KUBECONFIG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run harness")
}

/// A project in `dir`: one ConfigMap manifest (`app.yaml`) and this lane file.
fn project(dir: &Path, harness_yaml: &str) {
    std::fs::write(
        dir.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
    )
    .unwrap();
    std::fs::write(dir.join("harness.yaml"), harness_yaml).unwrap();
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A broken lane file: exit 2, and each expected `file:line:col: message`
/// (and help) appears in the output.
fn assert_invalid(case: &str, expected: &[(&str, &str)]) -> String {
    let out = harness(&lanefile(case), &["plan"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{case}: {err}");
    for (located_message, help) in expected {
        assert!(
            err.contains(&format!("error: {located_message}")),
            "{case}: missing `{located_message}` in\n{err}"
        );
        assert!(
            err.contains(help),
            "{case}: missing help `{help}` in\n{err}"
        );
    }
    assert!(err.contains("nothing was started"), "{err}");
    assert!(stdout(&out).is_empty(), "a failed plan prints no plan");
    err
}

#[test]
fn unknown_key_is_located_with_a_suggestion() {
    assert_invalid(
        "unknown-key",
        &[(
            "harness.yaml:4:5: unknown field `depnds_on`, expected one of manifests",
            "help: did you mean `depends_on`?",
        )],
    );
}

#[test]
fn unknown_enum_value_is_located_with_a_suggestion() {
    assert_invalid(
        "unknown-variant",
        &[(
            "harness.yaml:2:13: unknown variant `knd`",
            "did you mean `kind`?",
        )],
    );
}

#[test]
fn yaml_syntax_error_is_located() {
    assert_invalid(
        "yaml-syntax",
        &[("harness.yaml:2:21: mismatched bracket", "")],
    );
}

#[test]
fn missing_manifest_and_dockerfile_are_located() {
    assert_invalid(
        "missing-manifest",
        &[(
            "harness.yaml:5:9: manifest `manifests/nope.yaml` does not exist",
            "create it, or fix the path",
        )],
    );
    assert_invalid(
        "missing-dockerfile",
        &[(
            "harness.yaml:2:22: Dockerfile `docker/api.Dockerfile` does not exist",
            "create it",
        )],
    );
}

#[test]
fn undefined_references_are_located_with_suggestions() {
    assert_invalid(
        "undefined-image",
        &[(
            "harness.yaml:4:52: image `datastorag` is not defined",
            "did you mean `datastorage`?",
        )],
    );
    assert_invalid(
        "undefined-component",
        &[
            (
                "harness.yaml:2:56: component `databse` is not defined",
                "did you mean `database`?",
            ),
            (
                "harness.yaml:5:29: component `cache` is not defined",
                "(defined: app, database)",
            ),
        ],
    );
}

#[test]
fn dependency_cycle_is_printed_once() {
    let err = assert_invalid(
        "cycle",
        &[(
            "harness.yaml:5:58: dependency cycle: api → worker → queue → api",
            "remove one of these `depends_on` entries",
        )],
    );
    assert_eq!(err.matches("dependency cycle").count(), 1, "{err}");
}

#[test]
fn unknown_placeholder_in_a_manifest_is_located_in_the_manifest() {
    assert_invalid(
        "unknown-placeholder",
        &[(
            "manifests/deploy.yaml:13:17: unknown placeholder `{{image.apii}}`",
            "did you mean `{{image.api}}`?",
        )],
    );
}

#[test]
fn a_lane_must_map_the_ports_its_urls_name() {
    let err = assert_invalid(
        "unmapped-port",
        &[(
            "harness.yaml:7:15: lane `partial` maps no host port to container port 30081, which component `web` needs",
            "add an extraPortMappings entry with that containerPort",
        )],
    );
    assert!(
        err.contains("1 problem"),
        "the fully mapped lane is fine: {err}"
    );
}

#[test]
fn bad_durations_are_all_reported() {
    let err = assert_invalid(
        "bad-duration",
        &[
            (
                "harness.yaml:2:52: invalid duration `5 minutes please`",
                "write a duration like 30s, 5m or 1h30m",
            ),
            ("harness.yaml:7:40: a duration of zero is not allowed", ""),
        ],
    );
    assert!(err.contains("2 problems"), "{err}");
}

#[test]
fn a_port_mapped_twice_in_one_lane_is_an_error() {
    let err = assert_invalid(
        "port-mapped-twice",
        &[(
            "kind.yaml:7:15: host port 8080/TCP is mapped twice in lane `gateway`",
            "map each host port once",
        )],
    );
    assert!(
        err.contains("note: kind.yaml:11:15: mapped again here, node 1 (worker)"),
        "{err}"
    );
}

#[test]
fn ports_shared_between_lanes_are_reported_not_refused() {
    let out = harness(&lanefile("port-collision"), &["plan"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let text = stdout(&out);
    assert!(
        text.contains(
            "8080/TCP   gateway (kind/gateway.yaml:7:15), notification (kind/notification.yaml:7:15)"
        ),
        "{text}"
    );
    assert!(
        text.contains("18090/TCP  gateway (kind/gateway.yaml:9:15), audit (kind/audit.yaml:7:15)"),
        "{text}"
    );
    // 8080/UDP and 8081 on 127.0.0.1 in the audit lane share nothing.
    assert!(
        !text.contains("8080/UDP ") && !text.contains("8081/TCP "),
        "{text}"
    );
    assert!(
        err.contains("note: 2 host ports are shared between lanes (8080/TCP, 18090/TCP"),
        "{err}"
    );
    // One lane's plan lists the ports it shares, with every sharer.
    let out = harness(
        &lanefile("port-collision"),
        &["plan", "--lane", "notification"],
    );
    let text = stdout(&out);
    assert!(
        text.contains("8080/TCP  gateway (kind/gateway.yaml:7:15), notification"),
        "{text}"
    );
    assert!(!text.contains("18090/TCP"), "{text}");
}

#[test]
fn shared_ports_in_json_carry_every_location() {
    let out = harness(&lanefile("port-collision"), &["plan", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan json");
    let shared = json["shared_host_ports"].as_array().unwrap();
    assert_eq!(shared.len(), 2, "{shared:#?}");
    assert_eq!(shared[0]["port"], 8080);
    assert_eq!(shared[0]["protocol"], "TCP");
    let claims = shared[0]["claims"].as_array().unwrap();
    assert_eq!(claims[0]["lane"], "gateway");
    assert_eq!(claims[0]["at"]["line"], 7);
    assert_eq!(claims[0]["at"]["column"], 15);
    assert!(
        claims[1]["at"]["file"]
            .as_str()
            .unwrap()
            .ends_with("kind/notification.yaml")
    );
    assert!(
        shared[1]["claims"][1]["at"]["file"]
            .as_str()
            .unwrap()
            .ends_with("kind/audit.yaml")
    );
}

/// A lane file like a real project's: nine lanes over six kind configs,
/// most of them mapping the same host ports on purpose.
#[test]
fn a_project_whose_lanes_share_ports_plans_every_lane_and_each_alone() {
    let dir = lanefile("shared-ports");
    let out = harness(&dir, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "38090/TCP  gateway (test/infrastructure/kind-gateway-config.yaml:9:15), notification (test/infrastructure/kind-notification-config.yaml:9:15), datastorage (test/infrastructure/kind-datastorage-config.yaml:7:15), aianalysis (test/infrastructure/kind-aianalysis-config.yaml:9:15), holmesgpt-api (test/infrastructure/kind-aianalysis-config.yaml:9:15), workflowexecution (test/infrastructure/kind-e2e-config.yaml:9:15), remediationorchestrator (test/infrastructure/kind-e2e-config.yaml:9:15), signalprocessing (test/infrastructure/kind-e2e-config.yaml:9:15)"
        ),
        "{text}"
    );
    // Lanes reusing one kind config share all of its ports.
    assert!(
        text.contains("38084/TCP  aianalysis (test/infrastructure/kind-aianalysis-config.yaml:7:15), holmesgpt-api"),
        "{text}"
    );
    assert!(
        !text.contains("39443/TCP  "),
        "authwebhook shares nothing: {text}"
    );
    for lane in [
        "gateway",
        "notification",
        "datastorage",
        "aianalysis",
        "holmesgpt-api",
        "authwebhook",
        "workflowexecution",
        "remediationorchestrator",
        "signalprocessing",
    ] {
        let out = harness(&dir, &["plan", "--lane", lane, "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{lane}: {}", stderr(&out));
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let shares = plan["shared_host_ports"].as_array().unwrap().len();
        assert_eq!(shares == 0, lane == "authwebhook", "{lane}: {shares}");
    }
}

/// Preflight of one lane of that project: the ports it shares with lanes
/// that are not running are free, so the check passes.
#[test]
fn preflight_passes_the_ports_a_lane_shares_with_lanes_not_running() {
    for lane in ["authwebhook", "gateway"] {
        let out = harness(
            &lanefile("shared-ports"),
            &["preflight", "--lane", lane, "--output", "json"],
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{lane}: {e}: {}", stderr(&out)));
        let ports = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "ports")
            .unwrap()
            .clone();
        assert_eq!(ports["status"], "pass", "{lane}: {ports}");
    }
}

#[test]
fn example_lane_file_plan_text() {
    let out = harness(&repo(), &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("example_plan", stdout(&out));
}

#[test]
fn example_lane_file_plan_json_for_one_lane() {
    let out = harness(&repo(), &["plan", "--lane", "audit", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lanes = plan["lanes"].as_array().unwrap();
    assert_eq!(lanes.len(), 1);
    let audit = &lanes[0];
    assert_eq!(audit["lane"], "audit");
    assert_eq!(audit["cluster"], "audit-e2e");
    assert_eq!(
        audit["waves"],
        serde_json::json!([
            ["crds", "postgresql", "redis", "webhook-certs"],
            ["migrations"],
            ["datastorage"],
            ["controller", "policies"],
            ["samples"]
        ])
    );
    // The controller image is reached only through `replaces:` (the
    // webhook-certs Job runs it first).
    assert_eq!(
        audit["images"],
        serde_json::json!(["postgres", "redis", "controller", "datastorage"])
    );
    let ports: Vec<u64> = audit["host_ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, vec![28090, 25432]);
    // DataStorage's kustomize base carries its own namespace.
    assert_eq!(
        audit["namespaces"],
        serde_json::json!(["harness-demo", "harness-demo-system"])
    );
    // What DataStorage's kustomize overlay renders, what the lane leaves
    // out, and the registry image its own replaces.
    let ds = audit["rendered"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "datastorage")
        .unwrap();
    assert_eq!(
        ds["sources"],
        serde_json::json!([{"source": "kustomize deploy/datastorage/overlays/kind", "objects": 7}])
    );
    assert_eq!(
        ds["excluded"],
        serde_json::json!(["ServiceMonitor/harness-demo-system/datastorage"])
    );
    assert_eq!(
        ds["rewritten"],
        serde_json::json!([{
            "object": "Deployment/harness-demo-system/datastorage",
            "container": "datastorage",
            "from": "quay.io/harness-demo/datastorage:v0.1",
            "image": "datastorage"
        }])
    );
    // The health URL's {{host_port.30090}} resolves through this lane's kind config.
    assert_eq!(
        audit["endpoints"]["HARNESS_ENDPOINT_DATASTORAGE"],
        "http://localhost:28090"
    );
    // Serial suites come last.
    assert_eq!(audit["suites"][2]["name"], "load");
    assert_eq!(audit["suites"][2]["serial"], true);
}

#[test]
fn config_is_discovered_from_a_subdirectory_and_can_be_given() {
    let out = harness(
        &repo().join("manifests/crds"),
        &["plan", "--lane", "controller"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("wave 4  controller"));
    let dir = tempfile::tempdir().unwrap();
    let given = repo().join("harness.yaml");
    let out = harness(dir.path(), &["plan", "--config", given.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn no_lane_file_is_a_usage_error_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(dir.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("error: no harness.yaml in"), "{err}");
    assert!(err.contains("help: run harness from your project"), "{err}");
}

#[test]
fn unknown_lane_is_a_usage_error_with_a_suggestion() {
    let out = harness(&repo(), &["plan", "--lane", "audi"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no lane named `audi` in the lane file (did you mean `audit`?)"),
        "{err}"
    );
    assert!(err.contains("lanes defined: audit, controller"), "{err}");
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = harness(&repo(), &["test", "--shard", "5/4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid shard \"5/4\""),
        "{}",
        stderr(&out)
    );
    let out = harness(&repo(), &["plan", "--output", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = harness(&repo(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn gather_without_an_environment_says_so_with_its_own_exit_code() {
    let out = harness(&repo(), &["gather", "--lane", "audit"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(
        err.contains("error: no environment is up for lane audit (no state file "),
        "{err}"
    );
    assert!(
        err.contains("= help: bring it up with `harness up --lane audit`"),
        "{err}"
    );
    assert_eq!(err.matches("harness up --lane audit").count(), 1, "{err}");
}

#[test]
fn down_with_nothing_up_succeeds_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "components:\n  app: { manifests: [app.yaml] }\nlanes:\n  main: { components: [app] }\n",
    );
    // No kind on PATH: nothing to ask about a cluster of the lane's name.
    let empty_path = tempfile::tempdir().unwrap();
    for args in [&["down"][..], &["down", "--gather"]] {
        let out = harness_env(
            dir.path(),
            args,
            &[
                ("PATH", empty_path.path().to_str().unwrap()),
                ("CI", "true"),
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            err.contains("notice    nothing is up for lane main (no state file): nothing to"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("error"), "{err}");
    }
}

#[test]
fn cluster_commands_without_a_cluster_say_nothing_is_up() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap();
    for args in [
        &["diagnose", "--lane", "audit", "datastorage"][..],
        &["status", "--lane", "audit"],
        &[
            "namespace",
            "create",
            "--prefix",
            "audit",
            "--lane",
            "audit",
        ],
    ] {
        let out = harness_env(&repo(), args, &[("HOME", home)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(9), "{args:?}: {err}");
        assert!(
            err.contains("no environment is up for lane audit: no kubeconfig found"),
            "{args:?}: {err}"
        );
        assert!(err.contains(".harness/state/audit.json"), "{err}");
        assert!(
            err.contains("help: bring it up with `harness up --lane audit`"),
            "{err}"
        );
    }
    // A kubeconfig named on the command line that cannot be read is not
    // "nothing up": the user said which cluster.
    let out = harness_env(
        &repo(),
        &[
            "diagnose",
            "--lane",
            "audit",
            "nope",
            "--kubeconfig",
            "/nonexistent",
        ],
        &[("HOME", home)],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent"), "{}", stderr(&out));
}

/// A kubeconfig left behind by a cluster that is gone (kind's, with no
/// state file) is not an environment that is up.
#[test]
fn a_leftover_kubeconfig_of_a_cluster_that_is_gone_is_not_up() {
    let home = tempfile::tempdir().unwrap();
    let kube = home.path().join(".kube");
    std::fs::create_dir_all(&kube).unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        kube.join("audit-e2e-config"),
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"),
    )
    .unwrap();
    let out = harness_env(
        &repo(),
        &["status", "--lane", "audit"],
        &[("HOME", home.path().to_str().unwrap())],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(
        err.contains("no environment is up for lane audit: harness up recorded none, and the cluster in the kind kubeconfig"),
        "{err}"
    );
    assert!(err.contains("does not answer"), "{err}");
    assert!(!err.contains("cannot apply"), "{err}");
}

#[test]
fn commands_validate_the_lane_file_first() {
    let out = harness(&lanefile("cycle"), &["gather"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a broken lane file is reported first"
    );
    assert!(
        stderr(&out).contains("dependency cycle"),
        "{}",
        stderr(&out)
    );
    let out = harness(&repo(), &["status", "--lane", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let out = harness(&repo(), &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for command in [
        "up",
        "test",
        "down",
        "gather",
        "diagnose",
        "status",
        "plan",
        "preflight",
        "namespace",
    ] {
        assert!(
            text.contains(&format!("\n  {command} ")),
            "`{command}` missing from --help:\n{text}"
        );
    }
    assert!(
        text.contains("Exit codes:") && text.contains("130  interrupted"),
        "{text}"
    );
    let out = harness(&repo(), &["test", "--help"]);
    assert!(stdout(&out).contains("harness test --lane gateway --shard 2/4"));
}

#[test]
fn preflight_reports_every_failure_with_its_fix() {
    // A lane whose host port is held by us, an engine socket that does not
    // exist and no kind on PATH: three failures, one exit code.
    let dir = tempfile::tempdir().unwrap();
    let holder = std::net::TcpListener::bind(("0.0.0.0", 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("kind.yaml"),
        format!("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 30080\n    hostPort: {port}\n"),
    )
    .unwrap();
    // Disk is not one of the failures: the machine running this may have
    // little of it.
    project(
        dir.path(),
        "preflight: { min_free_disk: 1MiB }\ncomponents:\n  app: { manifests: [app.yaml] }\nlanes:\n  main:\n    cluster: { kind: { config: kind.yaml } }\n    components: [app]\n",
    );
    let empty_path = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}/docker.sock", dir.path().display());
    let out = harness_env(
        dir.path(),
        &["preflight"],
        &[
            ("DOCKER_HOST", &socket),
            ("PATH", empty_path.path().to_str().unwrap()),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("FAIL  engine  cannot reach the docker API at"),
        "{err}"
    );
    assert!(err.contains("(DOCKER_HOST)"), "{err}");
    assert!(err.contains("fix: start the Docker daemon"), "{err}");
    assert!(err.contains("FAIL  kind    kind is not installed"), "{err}");
    assert!(
        // The holder is this test process, found through /proc.
        err.contains(&format!(
            "{port}/TCP (kind.yaml:7:15) is held by process {}",
            std::process::id()
        )),
        "{err}"
    );
    assert!(
        err.contains("error: preflight failed for lane main: engine, kind, ports"),
        "{err}"
    );
    // `up` runs the same preflight and stops there.
    let out = harness_env(
        dir.path(),
        &["up", "--output", "json"],
        &[
            ("DOCKER_HOST", &socket),
            ("PATH", empty_path.path().to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // `up --output json` is an event stream: the preflight phase fails, and
    // nothing after it starts.
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "phase_finished")
        .collect();
    assert_eq!(finished.len(), 1, "{events:#?}");
    assert_eq!(finished[0]["phase"], "preflight");
    assert_eq!(finished[0]["ok"], false);
    assert!(
        finished[0]["error"]
            .as_str()
            .unwrap()
            .contains("engine, kind, ports"),
        "{events:#?}"
    );
    drop(holder);
}

#[test]
fn preflight_needs_a_lane_when_there_are_several() {
    let out = harness(&repo(), &["preflight"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the lane file defines 2 lanes; say which with --lane"));
}

/// `harness down` for a cluster `up` created: runs `kind delete cluster`
/// (through a stand-in kind on PATH that records its call and answers with
/// the real captured output), then removes the state file.
#[test]
fn down_deletes_the_cluster_up_created_and_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "cluster: { kind: { engine: podman } }\ncomponents:\n  app: { manifests: [app.yaml] }\nlanes:\n  main: { cluster: { name: main-e2e }, components: [app] }\n",
    );
    let fixtures = repo().join("tests/fixtures/k8s/kind-cli");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = dir.path().join("calls");
    std::fs::write(
        bin.join("kind"),
        format!(
            "#!/bin/sh\nprintf '%s|%s\\n' \"$KIND_EXPERIMENTAL_PROVIDER\" \"$*\" >> {calls}\ncat {fx}/delete-cluster.stderr.txt >&2\nexit 0\n",
            calls = calls.display(),
            fx = fixtures.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(bin.join("kind"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = dir.path().join("home");
    let state_dir = dir.path().join(".harness/state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let state = serde_json::json!({
        "lane": "main", "cluster": "main-e2e", "provider": "kind", "engine": "podman",
        "kubeconfig": home.join(".kube/main-e2e-config"), "created": true, "images": {},
        "run_id": "r-1", "created_at": "2026-11-22T14:00:00Z"
    });
    std::fs::write(state_dir.join("main.json"), state.to_string()).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let home_str = home.to_str().unwrap().to_owned();
    let out = harness_env(
        dir.path(),
        &["down"],
        &[("PATH", &path), ("HOME", &home_str), ("CI", "true")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        calls.trim(),
        format!(
            "podman|delete cluster --name main-e2e --kubeconfig {}",
            home.join(".kube/main-e2e-config").display()
        )
    );
    assert!(
        !state_dir.join("main.json").exists(),
        "the state is forgotten"
    );
    assert!(stderr(&out).contains("teardown  done"), "{}", stderr(&out));
    // Again: nothing is up any more, which a cleanup step may ask twice.
    let out = harness_env(
        dir.path(),
        &["down"],
        &[("PATH", &path), ("HOME", &home_str)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing is up for lane main"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn test_rejects_unknown_suites_before_starting_anything() {
    let out = harness(&repo(), &["test", "--lane", "audit", "audti"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lane `audit` has no suite `audti` (did you mean `audit`?)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn test_stops_at_a_failed_preflight_without_gathering_or_tearing_down() {
    // No engine answers at this socket and kind is not on PATH: up fails in
    // preflight, so there is no cluster to gather from or delete. Only the
    // tool that renders the demo's kustomize directories is (the lane file
    // is rendered when it is loaded).
    let dir = tempfile::tempdir().unwrap();
    let empty_path = tempfile::tempdir().unwrap();
    for tool in ["kustomize", "kubectl"] {
        if let Some(found) = harness::render::tool::which(tool) {
            std::os::unix::fs::symlink(found, empty_path.path().join(tool)).unwrap();
            break;
        }
    }
    let socket = format!("unix://{}/docker.sock", dir.path().display());
    let out = harness_env(
        &repo(),
        &["test", "--lane", "audit", "--output", "json"],
        &[
            ("DOCKER_HOST", &socket),
            ("PATH", empty_path.path().to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let phases: Vec<String> = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "phase_started")
        .map(|e| e["phase"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(phases, ["preflight"]);
}

#[test]
fn broken_post_suite_hooks_are_located() {
    assert_invalid(
        "hook-empty-command",
        &[(
            "harness.yaml:7:36: hook `coverage` has an empty command",
            "write the command as a list",
        )],
    );
    let err = assert_invalid(
        "hook-duplicate-name",
        &[(
            "harness.yaml:9:15: lane `main` has two hooks named `coverage`",
            "give each hook its own name",
        )],
    );
    assert!(
        err.contains("note: harness.yaml:7:15: the first one is here"),
        "{err}"
    );
    let err = assert_invalid(
        "hook-reserved-env",
        &[(
            "harness.yaml:9:38: hook `coverage` sets `KUBECONFIG`, which the harness sets for every hook",
            "remove it",
        )],
    );
    assert!(err.contains("1 problem"), "GOCOVERDIR is fine: {err}");
    assert_invalid(
        "hook-invalid-name",
        &[(
            "harness.yaml:7:17: hook name `Coverage_Report` is not a valid name",
            "lowercase letters, digits and '-'",
        )],
    );
    assert_invalid(
        "hook-unknown-key",
        &[(
            "harness.yaml:8:9: unknown field `comand`",
            "did you mean `command`?",
        )],
    );
}

#[test]
fn plan_shows_each_lanes_hooks_in_order() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "components:\n  app: { manifests: [app.yaml] }\nlanes:\n  main:\n    components: [app]\n    suites:\n      e2e: { command: [\"true\"] }\n    after_suites:\n      - { name: coverage, command: [sh, scripts/coverage.sh, \"--out=cover profile\"], timeout: 10m }\n      - { name: export, command: [make, export-state] }\n",
    );
    let out = harness(dir.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("plan_with_hooks", stdout(&out));
    let out = harness(dir.path(), &["plan", "--output", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["lanes"][0]["hooks"],
        serde_json::json!([
            {"name": "coverage", "command": ["sh", "scripts/coverage.sh", "--out=cover profile"], "timeout": "10m"},
            {"name": "export", "command": ["make", "export-state"], "timeout": "5m"},
        ])
    );
}

/// A panic that no stage catches (here in `plan`, made on purpose in this
/// debug build) still ends with what it was, what it means, and exit 71.
#[test]
fn a_panic_outside_the_stages_says_what_and_exits_71() {
    let env = [("HARNESS_TEST_PANIC", "plan")];
    let out = harness_env(&repo(), &["plan"], &env);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(71), "{err}");
    assert!(
        err.contains("error: harness panicked at cli/src/app/mod.rs:")
            && err.contains("injected panic at `plan`")
            && err.contains("= note: it happened outside the run's stages"),
        "{err}"
    );
    let out = harness_env(&repo(), &["--output", "json", "plan"], &env);
    assert_eq!(out.status.code(), Some(71));
    let last: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().last().expect("a JSON line")).unwrap();
    assert_eq!(last["error"]["exit_code"], 71);
    assert_eq!(last["error"]["kind"], "panicked");
}

#[test]
fn report_is_listed_with_examples_and_refuses_what_is_not_a_bundle() {
    let out = harness(&repo(), &["--help"]);
    assert!(stdout(&out).contains("\n  report "), "{}", stdout(&out));
    let out = harness(&repo(), &["report", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    assert!(help.contains("harness report .harness/runs/"), "{help}");
    assert!(help.contains("--output json"), "{help}");
    // Neither a lane file nor a cluster is needed; a directory that holds
    // no bundle is a usage error that says what to give instead.
    let dir = tempfile::tempdir().unwrap();
    let out = harness(dir.path(), &["report", "."]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a harness bundle: it has no harness/events.jsonl (give the bundle's directory or its .tar.gz"),
        "{}",
        stderr(&out)
    );
    let out = harness(dir.path(), &["report", "missing.tar.gz"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: cannot read missing.tar.gz: No such file or directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn settle_windows_must_be_durations_shorter_than_the_timeout() {
    // `0s` is allowed: readiness counts at once.
    let err = assert_invalid(
        "bad-settle",
        &[
            (
                "harness.yaml:2:64: settle `1m` is not shorter than the component's timeout (1m)",
                "shorten `settle:` or lengthen `timeout:`",
            ),
            (
                "harness.yaml:3:51: invalid duration `soon`",
                "0s: Ready counts at once",
            ),
        ],
    );
    assert!(err.contains("2 problems"), "{err}");
}

// ------------------------------------------------------------------ several lanes

/// Two lanes on clusters that refuse every connection (`provider:
/// existing`, a kubeconfig for 127.0.0.1:1): each fails at its first apply,
/// in a moment, exactly as `harness test --lane` fails.
fn two_unreachable_lanes(dir: &Path, preflight: &str) {
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n";
    std::fs::write(dir.join("kubeconfig.yaml"), kubeconfig).unwrap();
    project(
        dir,
        &format!(
            "preflight: {{ {preflight} }}\ncomponents:\n  app: {{ manifests: [app.yaml] }}\nlanes:\n  a:\n    cluster: {{ name: a, provider: existing, existing: {{ kubeconfig: kubeconfig.yaml }} }}\n    components: [app]\n    suites: {{ s: {{ command: [\"true\"] }} }}\n  b:\n    cluster: {{ name: b, provider: existing, existing: {{ kubeconfig: kubeconfig.yaml }} }}\n    components: [app]\n    suites: {{ s: {{ command: [\"true\"] }} }}\n"
        ),
    );
}

#[test]
fn several_lanes_each_run_and_one_summary_gives_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    two_unreachable_lanes(dir.path(), "memory_per_lane: 1MiB, min_free_disk: 1MiB");
    let out = harness_env(
        dir.path(),
        &["test", "--lane", "a", "--lane", "b"],
        &[("CI", "true")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    // Every live line says its lane; each lane's report comes whole under its name.
    assert!(err.contains("\na | ") && err.contains("\nb | "), "{err}");
    assert!(
        err.contains("\n== lane a ==\n") && err.contains("\n== lane b ==\n"),
        "{err}"
    );
    let summary = &err[err.find("lanes: 2 run, 2 failed").expect(&err)..];
    for lane in ["a", "b"] {
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with(&format!("  FAIL {lane} "))
                    && l.ends_with(
                        "a component failed to deploy or is doomed (readiness verdict) (exit 6)"
                    )),
            "{summary}"
        );
    }
}

#[test]
fn fail_fast_starts_no_lane_after_one_failed() {
    let dir = tempfile::tempdir().unwrap();
    two_unreachable_lanes(dir.path(), "memory_per_lane: 1MiB, min_free_disk: 1MiB");
    let out = harness_env(
        dir.path(),
        &[
            "test",
            "--all",
            "--lanes-at-once",
            "1",
            "--fail-fast",
            "--output",
            "json",
        ],
        &[("CI", "true")],
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    // Every event names its lane; b never started, so none is b's.
    assert!(
        lines[..lines.len() - 1].iter().all(|e| e["lane"] == "a"),
        "{lines:?}"
    );
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "lanes_finished");
    assert_eq!(last["lanes"][0]["exit_code"], 6);
    assert_eq!(last["lanes"][1]["run_id"], serde_json::Value::Null);
    assert_eq!(
        last["lanes"][1]["result"],
        "not started: an earlier lane failed (--fail-fast)"
    );
}

#[test]
fn more_lanes_at_once_than_memory_or_disk_holds_fails_preflight() {
    let dir = tempfile::tempdir().unwrap();
    two_unreachable_lanes(dir.path(), "memory_per_lane: 1000TiB, min_free_disk: 1MiB");
    let out = harness(dir.path(), &["test", "--all", "--lanes-at-once", "2"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("preflight memory: FAIL: ")
            && err.contains("holds 0 lane(s) at 1000.0 TiB each; 2 asked to run at once"),
        "{err}"
    );
    assert!(
        err.contains("run fewer at once (`--lanes-at-once 1`), free memory, or lower `preflight.memory_per_lane`"),
        "{err}"
    );
    assert!(err.contains("preflight disk: ok: "), "{err}");
    assert!(!err.contains("a | "), "no lane started: {err}");
    // The same for the disk: each lane at once needs `min_free_disk`.
    two_unreachable_lanes(dir.path(), "memory_per_lane: 1MiB, min_free_disk: 1000TiB");
    let out = harness(dir.path(), &["test", "--all", "--lanes-at-once", "2"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("preflight disk: FAIL: ")
            && err.contains("holds 0 lane(s) at 1000.0 TiB each; 2 asked to run at once"),
        "{err}"
    );
    assert!(err.contains("lower `preflight.min_free_disk`"), "{err}");
}

#[test]
fn only_test_takes_several_lanes_and_lanes_are_chosen_one_way() {
    let dir = tempfile::tempdir().unwrap();
    two_unreachable_lanes(dir.path(), "memory_per_lane: 1GiB");
    let out = harness(dir.path(), &["up", "--lane", "a", "--lane", "b"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: `--lane` names 2 lanes; only `harness test` runs several"),
        "{err}"
    );
    assert!(err.contains("= help: give one `--lane`"), "{err}");
    let out = harness(dir.path(), &["test", "--all", "--lane", "a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("error: `--lane a` and `--all` both choose the lanes to test"),
        "{}",
        stderr(&out)
    );
    // A suite one of the lanes lacks: nothing starts.
    let out = harness(dir.path(), &["test", "--all", "e2e"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error: lane `a` has no suite `e2e`"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("a | "), "{}", stderr(&out));
    let out = harness(dir.path(), &["test", "--lane", "a", "--lane", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}
