//! `harness affected` and `harness test --affected` against scratch git
//! repositories: a project of four lanes is committed, the work tree is
//! changed the way a pull request changes it, and the real binary (with
//! the real `git`) says which lanes that affects.

use std::path::Path;
use std::process::{Command, Output};

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=harness",
            "-c",
            "user.email=harness@example.com",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn harness(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.current_dir(dir).args(args).env("CI", "true");
    for var in ["HARNESS_CONFIG", "HARNESS_LANE", "KUBECONFIG"] {
        cmd.env_remove(var);
    }
    cmd.output().expect("run harness")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const LANE_FILE: &str = "\
images:
  api: { dockerfile: services/api/Dockerfile, context: services/api }
  worker: { dockerfile: services/worker/Dockerfile, context: services/worker }
components:
  db: { manifests: [deploy/db.yaml] }
  api: { manifests: [deploy/api.yaml], images: [api], depends_on: [db] }
  worker: { manifests: [deploy/worker.yaml], images: [worker], depends_on: [db] }
  site: { manifests: [deploy/site.yaml] }
lanes:
  api:
    components: [api]
    suites:
      api: { command: [sh, suites/api.sh] }
  worker:
    components: [worker]
  full:
    components: [api, worker]
  site:
    components: [site]
";

/// A committed project of four lanes: `api` and `full` load the api image,
/// `worker` and `full` the worker image; all but `site` deploy `db`.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (file, text) in [
        ("harness.yaml", LANE_FILE),
        ("README.md", "# the project\n"),
        ("services/api/Dockerfile", "FROM scratch\nCOPY . /\n"),
        ("services/api/.dockerignore", "*.md\n"),
        ("services/api/main.go", "package main\n"),
        ("services/worker/Dockerfile", "FROM scratch\nCOPY . /\n"),
        ("services/worker/main.go", "package main\n"),
        ("suites/api.sh", "true\n"),
    ] {
        write(d, file, text);
    }
    for name in ["db", "api", "worker", "site"] {
        write(
            d,
            &format!("deploy/{name}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n"),
        );
    }
    git(d, &["init", "-q"]);
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "the project"]);
    dir
}

fn affected_lanes(dir: &Path) -> Vec<String> {
    let out = harness(dir, &["affected", "--base", "main", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_change_to_one_images_context_picks_exactly_the_lanes_that_use_it() {
    let repo = repository();
    let d = repo.path();
    write(
        d,
        "services/api/main.go",
        "package main\n\nfunc main() {}\n",
    );
    assert_eq!(affected_lanes(d), ["api", "full"]);
    let out = harness(d, &["affected", "--base", "main"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("affected_image_context", stdout(&out));

    // An untracked file in the other image's context counts too.
    write(d, "services/worker/util.go", "package main\n");
    assert_eq!(affected_lanes(d), ["api", "worker", "full"]);
}

#[test]
fn a_readme_change_picks_no_lane() {
    let repo = repository();
    let d = repo.path();
    write(d, "README.md", "# the project, explained\n");
    // Left out of the api image's context by its .dockerignore.
    write(d, "services/api/NOTES.md", "notes\n");
    assert!(affected_lanes(d).is_empty());
    let out = harness(d, &["affected", "--base", "main"]);
    assert_eq!(
        stdout(&out),
        "no lane is affected by the 2 changed files since main\n"
    );
    // And `test --affected` runs nothing, successfully.
    let out = harness(d, &["test", "--affected", "--base", "main"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "no lane is affected by the 2 changed files since main\n"
    );
}

#[test]
fn a_lane_file_change_to_a_shared_component_picks_the_lanes_that_use_it() {
    let repo = repository();
    let d = repo.path();
    write(
        d,
        "harness.yaml",
        &LANE_FILE.replace(
            "db: { manifests: [deploy/db.yaml] }",
            "db: { manifests: [deploy/db.yaml], settle: 10s }",
        ),
    );
    assert_eq!(affected_lanes(d), ["api", "worker", "full"]);
    let out = harness(d, &["affected", "--base", "main", "--output", "json"]);
    insta::assert_snapshot!("affected_shared_component_json", stdout(&out));

    // A part every lane shares: every lane.
    write(d, "harness.yaml", &format!("namespace: e2e\n{LANE_FILE}"));
    assert_eq!(affected_lanes(d), ["api", "worker", "full", "site"]);
    // One lane's own entry: that lane.
    write(
        d,
        "harness.yaml",
        &LANE_FILE.replace("components: [site]", "components: [site]\n    namespace: s"),
    );
    assert_eq!(affected_lanes(d), ["site"]);
}

#[test]
fn manifests_and_suite_files_pick_their_lanes() {
    let repo = repository();
    let d = repo.path();
    write(
        d,
        "deploy/site.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s2}\n",
    );
    assert_eq!(affected_lanes(d), ["site"]);
    git(d, &["checkout", "--", "deploy/site.yaml"]);
    write(d, "suites/api.sh", "exit 0\n");
    assert_eq!(affected_lanes(d), ["api"]);
    // A change committed on a branch counts as well as one in the work tree.
    git(d, &["checkout", "-q", "-b", "change"]);
    git(d, &["commit", "-q", "-am", "suite"]);
    assert_eq!(affected_lanes(d), ["api"]);
    let out = harness(d, &["affected", "--base", "HEAD"]);
    assert_eq!(
        stdout(&out),
        "no lane is affected by the 0 changed files since HEAD\n"
    );
}

#[test]
fn a_kustomize_base_reached_through_an_overlay_is_an_input() {
    let Some(_) = harness::render::tool::which("kustomize")
        .or_else(|| harness::render::tool::which("kubectl"))
    else {
        assert_ne!(
            std::env::var("HARNESS_REQUIRE_TOOLS").as_deref(),
            Ok("1"),
            "kustomize is not on PATH (HARNESS_REQUIRE_TOOLS=1): run scripts/install-deps"
        );
        eprintln!("skipped: kustomize is not on PATH (scripts/install-deps installs it)");
        return;
    };
    let repo = repository();
    let d = repo.path();
    write(d, "k/base/kustomization.yaml", "resources: [cm.yaml]\n");
    write(
        d,
        "k/base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: k}\n",
    );
    write(
        d,
        "k/overlays/kind/kustomization.yaml",
        "resources: [../../base]\nnamePrefix: kind-\n",
    );
    write(
        d,
        "harness.yaml",
        &LANE_FILE.replace(
            "site: { manifests: [deploy/site.yaml] }",
            "site: { manifests: [deploy/site.yaml], kustomize: k/overlays/kind }",
        ),
    );
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "kustomize"]);
    write(
        d,
        "k/base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: k2}\n",
    );
    let out = harness(d, &["affected", "--base", "main"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "site\n  component site (kustomize k/overlays/kind): k/base/cm.yaml changed\n\
         1 of 4 lanes affected by the 1 changed file since main\nunaffected: api, worker, full\n"
    );
}

#[test]
fn a_base_git_does_not_know_is_a_usage_error_that_says_how_to_fetch_it() {
    let repo = repository();
    let out = harness(repo.path(), &["affected", "--base", "origin/nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: git does not know the base `origin/nope`\n  = help: fetch it first (a shallow CI clone lacks it: \
         `git fetch origin nope`), or check its spelling\n"
    );
    // Outside a repository.
    std::fs::remove_dir_all(repo.path().join(".git")).unwrap();
    let out = harness(repo.path(), &["affected", "--base", "main"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("= help: run harness in the git checkout that holds the lane file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn test_affected_refuses_a_lane() {
    let repo = repository();
    let out = harness(
        repo.path(),
        &["test", "--affected", "--base", "main", "--lane", "api"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error: `--lane api` and `--affected` both choose the lanes to test"),
        "{}",
        stderr(&out)
    );
}
