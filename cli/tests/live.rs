//! `harness diagnose` and `harness status` as a user runs them, against the
//! fake API server over HTTP serving the captured crash-looping pod: the
//! verdict and its evidence in text and in `--output json`, and the exit
//! code of a doomed component.

#[path = "../../tests/fake_api/mod.rs"]
mod fake_api;

use std::process::Command;

use fake_api::serve::serve;
use fake_api::{Reply, fixture, list, not_found, resources};
use serde_json::Value;

const LOG: &str = "app starting at 10:00:00\nfatal: config file /etc/app/config.yaml not found\n";

/// A project whose one component is the captured crash-looping pod, and a
/// kubeconfig that points at a fake API server serving it.
fn project() -> tempfile::TempDir {
    let server = serve(|req| match req.path.as_str() {
        "/api/v1" => Reply::Json(
            200,
            resources("v1", &[("pods", "Pod", true), ("events", "Event", true)]),
        ),
        "/api/v1/namespaces/fx/pods/crashloop" => {
            Reply::Json(200, fixture("pod-crashloop/pod.crashloop.json"))
        }
        "/api/v1/namespaces/fx/pods" => {
            let pod: Value =
                serde_json::from_str(&fixture("pod-crashloop/pod.crashloop.json")).unwrap();
            Reply::Json(200, list("PodList", &[pod]))
        }
        "/api/v1/namespaces/fx/events" => {
            Reply::Json(200, fixture("pod-crashloop/events.pod.crashloop.json"))
        }
        "/api/v1/namespaces/fx/pods/crashloop/log" => Reply::Text(200, LOG.into()),
        _ => not_found(&req.path),
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/k8s/pod-crashloop/manifest.yaml"
        ),
        dir.path().join("pod.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kubeconfig.yaml"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
            server.url
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("harness.yaml"),
        "namespace: fx\ncluster:\n  provider: existing\n  existing: { kubeconfig: kubeconfig.yaml }\ncomponents:\n  app: { manifests: [pod.yaml] }\nlanes:\n  main:\n    components: [app]\n",
    )
    .unwrap();
    // The server thread lives as long as the test process.
    std::mem::forget(server);
    dir
}

fn harness(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(dir)
        .args(args)
        .args(["--kubeconfig", "kubeconfig.yaml"])
        .env_remove("HARNESS_CONFIG")
        .env_remove("HARNESS_LANE")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn diagnose_names_the_verdict_with_evidence_in_text_and_json() {
    let dir = project();
    let (code, text, stderr) = harness(dir.path(), &["diagnose"]);
    assert_eq!(code, Some(6), "{stderr}");
    assert!(text.contains("CrashLoopBackOff"), "{text}");
    assert!(text.contains("| fatal: config file"), "{text}");

    let (code, out, stderr) = harness(dir.path(), &["diagnose", "--output", "json"]);
    assert_eq!(code, Some(6), "{stderr}");
    // One JSON document per line: the diagnosis, then the error it ends with.
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[1]["error"]["exit_code"], 6);
    let json = &lines[0];
    assert_eq!(json["lane"], "main");
    let app = &json["components"][0];
    assert_eq!(app["component"], "app");
    assert_eq!(app["ready"], false);
    assert_eq!(
        app["findings"][0]["verdict"]["name"], "CrashLoopBackOff",
        "{json:#}"
    );
    assert!(
        app["findings"][0]["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"]
                .as_str()
                .is_some_and(|t| t.contains("fatal: config file"))),
        "{json:#}"
    );
}

#[test]
fn status_shows_state_and_restarts_in_text_and_json() {
    let dir = project();
    let (code, text, stderr) = harness(dir.path(), &["status"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(text.starts_with("lane main\nCOMPONENT"), "{text}");
    let (code, out, stderr) = harness(dir.path(), &["status", "--output", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let app = &json["components"][0];
    assert_eq!(app["component"], "app");
    assert_eq!(app["pods"], 1);
    assert_eq!(app["ready"], 0);
    let pod: Value = serde_json::from_str(&fixture("pod-crashloop/pod.crashloop.json")).unwrap();
    assert_eq!(
        app["restarts"], pod["status"]["containerStatuses"][0]["restartCount"],
        "{json:#}"
    );
    // The text row says the same.
    let row = text.lines().find(|l| l.starts_with("app")).unwrap();
    assert!(
        row.contains(&format!("{} ", app["state"].as_str().unwrap())),
        "{text}"
    );
}
