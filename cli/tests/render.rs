//! A project's deploy tree as it is: kustomize directories and a Helm chart
//! rendered by the real `kustomize`, `kubectl kustomize` and `helm` when the
//! lane file is loaded, their exclusions and image rewrites, and the errors
//! a broken source or a missing tool gives. scripts/install-deps installs
//! the tools; without them these tests say so and are skipped, unless
//! `HARNESS_REQUIRE_TOOLS=1` (set by scripts/test) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::config::{self, ConfigError};
use indexmap::IndexMap;

fn which(name: &str) -> Option<PathBuf> {
    harness::render::tool::which(name)
}

/// The tool's path, or `None` (skip) when it is missing and not required.
fn tool(name: &str) -> Option<PathBuf> {
    match which(name) {
        Some(p) => Some(p),
        None if std::env::var("HARNESS_REQUIRE_TOOLS").as_deref() == Ok("1") => {
            panic!("{name} is not on PATH (HARNESS_REQUIRE_TOOLS=1): run scripts/install-deps")
        }
        None => {
            eprintln!("skipped: {name} is not on PATH (scripts/install-deps installs it)");
            None
        }
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn harness(dir: &Path, args: &[&str], path: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.current_dir(dir).args(args);
    for var in ["HARNESS_CONFIG", "HARNESS_LANE", "KUBECONFIG"] {
        cmd.env_remove(var);
    }
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd.output().expect("run harness")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A service kept as real projects keep it: a base with its own namespace,
/// its registry image and a ServiceMonitor, and a kind overlay.
fn kustomize_project(dir: &Path) {
    write(dir, "Dockerfile", "FROM scratch\n");
    write(
        dir,
        "deploy/app/base/kustomization.yaml",
        "namespace: app-system\nresources: [deployment.yaml, config.yaml, monitor.yaml]\nimages:\n- {name: quay.io/example/app, newTag: v1.2}\n",
    );
    write(
        dir,
        "deploy/app/base/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  selector: {matchLabels: {app: app}}\n  template:\n    metadata: {labels: {app: app}}\n    spec:\n      containers:\n      - {name: app, image: 'quay.io/example/app:latest', imagePullPolicy: Always}\n      - {name: proxy, image: 'quay.io/example/proxy:1'}\n",
    );
    write(
        dir,
        "deploy/app/base/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {db: 'postgresql.{{namespace}}.svc', alert: '{{ .Labels.alertname }}'}\n",
    );
    write(
        dir,
        "deploy/app/base/monitor.yaml",
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: app}\nspec: {endpoints: [{port: http}]}\n",
    );
    write(
        dir,
        "deploy/app/overlays/kind/kustomization.yaml",
        "resources: [../../base]\n",
    );
}

const KUSTOMIZE_LANES: &str = "\
namespace: lane-ns
images:
  app: { dockerfile: Dockerfile, replaces: [quay.io/example/app] }
components:
  app: { manifests: [deploy/app/overlays/kind] }
lanes:
  kind: { components: [app], exclude: [ServiceMonitor] }
";

#[test]
fn a_kustomize_overlay_keeps_its_namespace_and_loses_what_is_excluded_and_its_registry_image() {
    if tool("kustomize").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    kustomize_project(dir.path());
    let project = config::load_text(&dir.path().join("harness.yaml"), KUSTOMIZE_LANES)
        .unwrap_or_else(|e| panic!("{e}: {:?}", e.rendered()));
    let component = &project.components["app"];
    // Reached only through `replaces:`: the lane loads it all the same.
    assert_eq!(component.images, ["app"]);
    let lane = &project.lanes["kind"];
    let summary = &lane.rendered["app"];
    assert_eq!(
        summary.sources[0].source,
        "kustomize deploy/app/overlays/kind"
    );
    assert_eq!(summary.sources[0].objects, 3);
    assert_eq!(summary.excluded, ["ServiceMonitor/app-system/app"]);
    assert_eq!(summary.rewritten.len(), 1);
    assert_eq!(summary.rewritten[0].from, "quay.io/example/app:v1.2");
    assert_eq!(summary.rewritten[0].image, "app");
    assert_eq!(
        summary.namespaces.iter().collect::<Vec<_>>(),
        ["app-system", "lane-ns"]
    );
    let plan = harness::plan::plan(&project, Some("kind")).unwrap();
    assert_eq!(plan.lanes[0].images, ["app"]);
    assert_eq!(plan.lanes[0].namespaces, ["app-system", "lane-ns"]);

    // Deploy's rendering, with the reference the image was built as.
    let images = IndexMap::from([("app".to_owned(), "harness/app:0123abcd".to_owned())]);
    let rendered = config::manifests::render_component(component, lane, &images).unwrap();
    let kinds: Vec<String> = rendered
        .objects
        .iter()
        .map(harness::render::object_ref)
        .collect();
    assert_eq!(
        kinds,
        ["ConfigMap/app-system/app", "Deployment/app-system/app"]
    );
    let deployment = &rendered.objects[1].data["spec"]["template"]["spec"]["containers"];
    assert_eq!(deployment[0]["image"], "harness/app:0123abcd");
    assert_eq!(deployment[0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        deployment[1]["image"], "quay.io/example/proxy:1",
        "not replaced"
    );
    // Placeholders are filled in what kustomize renders; the project's own
    // `{{ ... }}` (an Alertmanager template) is left as it is.
    let data = &rendered.objects[0].data["data"];
    assert_eq!(data["db"], "postgresql.lane-ns.svc");
    assert_eq!(data["alert"], "{{ .Labels.alertname }}");
}

#[test]
fn the_plan_shows_sources_exclusions_and_rewritten_images() {
    if tool("kustomize").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    kustomize_project(dir.path());
    write(dir.path(), "harness.yaml", KUSTOMIZE_LANES);
    let out = harness(dir.path(), &["plan"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains(
            "  component app  kustomize deploy/app/overlays/kind (3 objects)\n    excluded: ServiceMonitor/app-system/app\n    image quay.io/example/app:v1.2 → app  (Deployment/app-system/app app)\n"
        ),
        "{plan}"
    );
}

#[test]
fn kubectl_kustomize_renders_where_kustomize_is_not_installed() {
    let Some(kubectl) = which("kubectl") else {
        eprintln!("skipped: kubectl is not on PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    kustomize_project(dir.path());
    write(dir.path(), "harness.yaml", KUSTOMIZE_LANES);
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(&kubectl, bin.join("kubectl")).unwrap();
    let out = harness(dir.path(), &["plan", "--output", "json"], Some(&bin));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["lanes"][0]["rendered"][0]["excluded"],
        serde_json::json!(["ServiceMonitor/app-system/app"])
    );
}

#[test]
fn a_kustomization_that_does_not_render_is_a_lane_file_error_with_its_file_and_fix() {
    if tool("kustomize").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    kustomize_project(dir.path());
    write(
        dir.path(),
        "deploy/app/base/kustomization.yaml",
        "namespace: app-system\nresources: [deployment.yaml, gone.yaml]\n",
    );
    write(dir.path(), "harness.yaml", KUSTOMIZE_LANES);
    let out = harness(dir.path(), &["plan"], None);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // At the manifests entry in the lane file, in kustomize's own words.
    assert!(
        err.contains("error: harness.yaml:5:22: component `app`: `kustomize build deploy/app/overlays/kind` failed: Error: "),
        "{err}"
    );
    assert!(err.contains("gone.yaml"), "{err}");
    assert!(
        err.contains("help: fix deploy/app/overlays/kind/kustomization.yaml or what it refers to (run `kustomize build deploy/app/overlays/kind` to see the same error)"),
        "{err}"
    );
}

/// Several kustomize directories are rendered at once when the lane file is
/// loaded: each component gets its own directory's objects, and broken
/// ones are reported in the lane file's order.
#[test]
fn kustomize_directories_render_at_once_each_into_its_own_component() {
    if tool("kustomize").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let names = ["one", "two", "three", "four", "five"];
    let mut lanes = String::from("namespace: ns\ncomponents:\n");
    for name in names {
        write(
            dir.path(),
            &format!("deploy/{name}/kustomization.yaml"),
            "resources: [config.yaml]\n",
        );
        write(
            dir.path(),
            &format!("deploy/{name}/config.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{name}}}\n"),
        );
        lanes.push_str(&format!("  {name}: {{ manifests: [deploy/{name}] }}\n"));
    }
    lanes.push_str(&format!(
        "lanes:\n  all: {{ components: [{}] }}\n",
        names.join(", ")
    ));
    let project = config::load_text(&dir.path().join("harness.yaml"), &lanes)
        .unwrap_or_else(|e| panic!("{e}: {:?}", e.rendered()));
    let lane = &project.lanes["all"];
    for name in names {
        let rendered =
            config::manifests::render_component(&project.components[name], lane, &IndexMap::new())
                .unwrap();
        let refs: Vec<String> = rendered
            .objects
            .iter()
            .map(harness::render::object_ref)
            .collect();
        assert_eq!(refs, [format!("ConfigMap/cm-{name}")], "{name}");
    }

    // Two of them broken: both said, in the lane file's order.
    for name in ["four", "two"] {
        write(
            dir.path(),
            &format!("deploy/{name}/kustomization.yaml"),
            &format!("resources: [gone-{name}.yaml]\n"),
        );
    }
    write(dir.path(), "harness.yaml", &lanes);
    let out = harness(dir.path(), &["plan"], None);
    let err = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let two = err.find("component `two`").expect(&err);
    let four = err.find("component `four`").expect(&err);
    assert!(two < four, "{err}");
    for name in ["one", "three", "five"] {
        assert!(!err.contains(&format!("component `{name}`")), "{err}");
    }
}

const CHART_LANES: &str = "\
images:
  webapp: { dockerfile: Dockerfile, replaces: [quay.io/example/webapp] }
  migrate: { pull: quay.io/example/webapp-migrate:1.0.0, replaces: [quay.io/example/webapp-migrate] }
components:
  web:
    helm:
      chart: CHART
      release: web
      namespace: apps
      values: [CHART/values-kind.yaml]
      set: { image.tag: v2, monitoring.enabled: true }
    exclude: [ServiceMonitor.monitoring.coreos.com]
lanes:
  kind: { components: [web] }
";

fn chart() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/fixtures/charts/webapp")
}

#[test]
fn a_helm_chart_renders_as_helm_install_would_and_its_images_are_rewritten() {
    if tool("helm").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    let lanes = CHART_LANES.replace("CHART", &chart().display().to_string());
    let project = config::load_text(&dir.path().join("harness.yaml"), &lanes)
        .unwrap_or_else(|e| panic!("{e}: {:?}", e.rendered()));
    let component = &project.components["web"];
    assert_eq!(
        component.images,
        ["migrate", "webapp"],
        "in the order they are reached"
    );
    let lane = &project.lanes["kind"];
    let summary = &lane.rendered["web"];
    // The chart's CRD (crds/, as install applies it), the Deployment, the
    // CronJob and the ServiceMonitor; the test hook is not rendered.
    assert_eq!(summary.sources[0].objects, 4);
    assert!(
        summary.sources[0].source.starts_with("helm "),
        "{:?}",
        summary.sources
    );
    assert_eq!(summary.excluded, ["ServiceMonitor/apps/web-webapp"]);
    let images = IndexMap::from([
        ("webapp".to_owned(), "harness/webapp:feedbeef".to_owned()),
        (
            "migrate".to_owned(),
            "quay.io/example/webapp-migrate:1.0.0".to_owned(),
        ),
    ]);
    let rendered = config::manifests::render_component(component, lane, &images).unwrap();
    let refs: Vec<String> = rendered
        .objects
        .iter()
        .map(harness::render::object_ref)
        .collect();
    assert_eq!(
        refs,
        [
            // Cluster-scoped: it loses the namespace again at apply.
            "CustomResourceDefinition/apps/widgets.example.com",
            "Deployment/apps/web-webapp",
            "CronJob/apps/web-cleanup",
        ]
    );
    let rewritten: Vec<(String, String, String)> = rendered
        .rewrites
        .iter()
        .map(|r| (r.object.clone(), r.container.clone(), r.to.clone()))
        .collect();
    assert_eq!(
        rewritten,
        [
            (
                "Deployment/apps/web-webapp".to_owned(),
                "init:migrate".to_owned(),
                "quay.io/example/webapp-migrate:1.0.0".to_owned()
            ),
            (
                "Deployment/apps/web-webapp".to_owned(),
                "webapp".to_owned(),
                "harness/webapp:feedbeef".to_owned()
            ),
            (
                "CronJob/apps/web-cleanup".to_owned(),
                "cleanup".to_owned(),
                "harness/webapp:feedbeef".to_owned()
            ),
        ]
    );
    // values-kind.yaml and `set:` reached the chart.
    assert_eq!(rendered.objects[1].data["spec"]["replicas"], 1);
    assert_eq!(rendered.rewrites[1].from, "quay.io/example/webapp:v2");
    assert_eq!(
        rendered.objects[1].data["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
}

#[test]
fn without_helm_a_chart_is_a_lane_file_error_that_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    let lanes = CHART_LANES.replace("CHART", &chart().display().to_string());
    write(dir.path(), "harness.yaml", &lanes);
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let out = harness(dir.path(), &["plan"], Some(&empty));
    let err = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: harness.yaml:7:14: component `web`: cannot render Helm chart"),
        "{err}"
    );
    assert!(err.contains("helm is not on PATH"), "{err}");
    assert!(err.contains("help: install helm 3 or 4"), "{err}");
}

#[test]
fn replaces_names_repositories_and_exclude_names_kinds() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    write(
        dir.path(),
        "app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    );
    let lanes = "\
images:
  a: { dockerfile: Dockerfile, replaces: [quay.io/x/app:v1, quay.io/x/other] }
  b: { dockerfile: Dockerfile, replaces: [quay.io/x/other] }
components:
  c: { manifests: [app.yaml], exclude: [servicemonitors] }
lanes:
  l: { components: [c], exclude: [BuildConfig.Build.OpenShift.io] }
";
    let err = config::load_text(&dir.path().join("harness.yaml"), lanes).unwrap_err();
    let ConfigError::Invalid { diagnostics, .. } = &err else {
        panic!("{err}");
    };
    let found: Vec<(u64, u64, &str, &str)> = diagnostics
        .iter()
        .map(|d| {
            (
                d.at.line,
                d.at.column,
                d.message.as_str(),
                d.help.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        found[0],
        (
            2,
            43,
            "`quay.io/x/app:v1` names one image, not a repository",
            "drop the tag or digest: `replaces: [quay.io/x/app]` replaces every tag and digest of it"
        )
    );
    assert_eq!(
        (found[1].0, found[1].2),
        (
            3,
            "repository `quay.io/x/other` is replaced by images `a` and `b`"
        )
    );
    assert_eq!(found[2].0, 5);
    assert!(
        found[2].2.starts_with("`servicemonitors` is not a kind"),
        "{:?}",
        found[2]
    );
    assert!(found[2].3.contains("ServiceMonitor"));
    assert_eq!(found[3].0, 7);
    assert!(
        found[3].2.contains("an API group is lowercase"),
        "{:?}",
        found[3]
    );
}
