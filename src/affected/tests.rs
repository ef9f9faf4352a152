use std::path::{Path, PathBuf};

use super::inputs::{named_paths, normalize, sourced_paths};
use super::*;

/// A project of three lanes in a scratch directory: `one` loads image `a`,
/// `two` image `b`, `both` deploys both; `a` has a `.dockerignore` that
/// leaves out `*.md`; `both` runs a suite script and a host build without
/// inputs only when `with_bare_build`.
fn project(dir: &Path, with_bare_build: bool) -> Project {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("a/Dockerfile", "FROM scratch\nCOPY . /\n");
    write("a/.dockerignore", "*.md\n");
    write("a/src.txt", "a\n");
    write("b/Dockerfile", "FROM scratch\n");
    write("b/src.txt", "b\n");
    write(
        "m/a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    );
    write(
        "m/b.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
    );
    write(
        "m/common.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    write(
        "suites/e2e.sh",
        "#!/bin/sh\n. \"$(dirname \"$0\")/lib.sh\"\ntrue\n",
    );
    write("suites/lib.sh", "PREFIX=e2e\n");
    let bare = if with_bare_build {
        "host_builds:\n  gen: { command: [make] }\n"
    } else {
        ""
    };
    let both_builds = if with_bare_build {
        "    host_builds: [gen]\n"
    } else {
        ""
    };
    let text = format!(
        "{bare}images:\n  a: {{ dockerfile: a/Dockerfile, context: a }}\n  b: {{ dockerfile: b/Dockerfile, context: b }}\n\
components:\n  common: {{ manifests: [m/common.yaml] }}\n  ca: {{ manifests: [m/a.yaml], images: [a], depends_on: [common] }}\n  cb: {{ manifests: [m/b.yaml], images: [b] }}\n\
lanes:\n  one: {{ components: [ca] }}\n  two: {{ components: [cb] }}\n  both:\n    components: [ca, cb]\n{both_builds}    suites:\n      e2e: {{ command: [sh, suites/e2e.sh] }}\n"
    );
    write("harness.yaml", &text);
    crate::config::load(&dir.join("harness.yaml")).unwrap()
}

fn lanes_for(project: &Project, changed: &[&str]) -> Affected {
    let changes = Changes {
        paths: changed.iter().map(|p| project.root.join(p)).collect(),
        base_lane_file: None,
    };
    affected(project, "main", &changes)
}

#[test]
fn a_path_picks_the_lanes_whose_inputs_hold_it() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), false);
    let table: &[(&[&str], &[&str])] = &[
        (&["a/src.txt"], &["one", "both"]),
        (&["b/src.txt"], &["two", "both"]),
        (&["a/Dockerfile"], &["one", "both"]),
        // Left out of a's context by its .dockerignore: no image changes.
        (&["a/NOTES.md"], &[]),
        // ... unless .dockerignore itself changes.
        (&["a/.dockerignore"], &["one", "both"]),
        // A component every lane with `ca` pulls in as a dependency.
        (&["m/common.yaml"], &["one", "both"]),
        (&["m/b.yaml"], &["two", "both"]),
        (&["suites/e2e.sh"], &["both"]),
        (&["README.md"], &[]),
        (&[], &[]),
        // A deleted file that was in a context still counts.
        (&["b/gone.txt", "README.md"], &["two", "both"]),
    ];
    for (changed, want) in table {
        let got = lanes_for(&project, changed);
        assert_eq!(got.lanes, *want, "{changed:?}: {got:#?}");
        let mut all: Vec<&str> = got.lanes.iter().map(String::as_str).collect();
        all.extend(got.unaffected.iter().map(String::as_str));
        all.sort();
        assert_eq!(all, ["both", "one", "two"], "{changed:?}");
    }
}

#[test]
fn reasons_name_the_input_and_the_paths() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), false);
    let got = lanes_for(&project, &["a/src.txt", "a/Dockerfile", "suites/e2e.sh"]);
    let both = got.affected.iter().find(|a| a.lane == "both").unwrap();
    assert_eq!(
        both.reasons,
        vec![
            Reason::Image {
                image: "a".into(),
                paths: vec!["a/src.txt".into(), "a/Dockerfile".into()]
            },
            Reason::Suite {
                suite: "e2e".into(),
                paths: vec!["suites/e2e.sh".into()]
            },
        ]
    );
    assert_eq!(
        both.reasons[0].to_string(),
        "image a: a/src.txt and a/Dockerfile changed"
    );
}

#[test]
fn a_host_build_without_inputs_is_affected_by_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), true);
    let got = lanes_for(&project, &["README.md"]);
    assert_eq!(got.lanes, ["both"]);
    assert_eq!(
        got.affected[0].reasons,
        vec![Reason::HostBuildWithoutInputs {
            host_build: "gen".into()
        }]
    );
    // No change at all: nothing to doubt.
    assert!(lanes_for(&project, &[]).lanes.is_empty());
}

fn with_base(project: &Project, base: Option<BaseLaneFile>) -> Affected {
    let changes = Changes {
        paths: vec![project.file.clone()],
        base_lane_file: base,
    };
    affected(project, "main", &changes)
}

#[test]
fn lane_file_entries_pick_the_lanes_that_use_them() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), false);
    let now = std::fs::read_to_string(&project.file).unwrap();
    let table: &[(&str, &str, &[&str])] = &[
        // A shared component: the lanes that deploy it (as a dependency too).
        (
            "m/common.yaml]",
            "m/common.yaml], namespace: x",
            &["one", "both"],
        ),
        (
            "context: b }",
            "context: b, build_args: { V: '2' } }",
            &["two", "both"],
        ),
        (
            "  two: { components: [cb] }",
            "  two: { components: [cb, common] }",
            &["two"],
        ),
        // Outside the four maps: every lane.
        (
            "images:\n",
            "namespace: other\nimages:\n",
            &["one", "two", "both"],
        ),
        // Only a comment: the entries are equal.
        ("images:\n", "# a comment\nimages:\n", &[]),
        // `replaces:` rewrites what any lane renders.
        (
            "context: b }",
            "context: b, replaces: [example.com/b] }",
            &["one", "two", "both"],
        ),
    ];
    for (from, to, want) in table {
        assert!(now.contains(from), "{from}");
        let base = now.replacen(from, to, 1);
        let got = with_base(&project, Some(BaseLaneFile::Text(base)));
        assert_eq!(got.lanes, *want, "{from} -> {to}: {got:#?}");
    }
    let got = with_base(
        &project,
        Some(BaseLaneFile::Text(now.replacen("  one", "  uno", 1))),
    );
    assert_eq!(got.lanes, ["one"], "a renamed lane is a new entry");
    assert_eq!(
        got.affected[0].reasons,
        vec![Reason::LaneFileEntry {
            entry: "lanes.one".into()
        }]
    );
}

#[test]
fn a_lane_file_that_cannot_be_compared_affects_every_lane() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), false);
    for base in [
        BaseLaneFile::Missing,
        BaseLaneFile::Text("lanes: [unclosed\n".into()),
    ] {
        let got = with_base(&project, Some(base.clone()));
        assert_eq!(got.lanes, ["one", "two", "both"], "{base:?}");
        assert!(
            matches!(&got.affected[0].reasons[0], Reason::LaneFileUnknown { .. }),
            "{got:#?}"
        );
    }
}

#[test]
fn kustomizations_reach_the_bases_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (rel, text) in [
        ("base/kustomization.yaml", "resources: [deploy.yaml]\n"),
        ("base/deploy.yaml", ""),
        (
            "overlay/kustomization.yaml",
            "resources: [../base]\nconfigMapGenerator:\n  - name: c\n    files: [app.conf=../conf/app.conf]\n",
        ),
        ("conf/app.conf", ""),
        ("elsewhere/x.yaml", ""),
    ] {
        std::fs::create_dir_all(d.join(rel).parent().unwrap()).unwrap();
        std::fs::write(d.join(rel), text).unwrap();
    }
    let source = crate::config::ManifestSource::Kustomize {
        dir: d.join("overlay"),
        output: String::new(),
        at: crate::config::SourceLoc::new("harness.yaml", 1, 1),
    };
    let input = |p: PathBuf| Input {
        path: p,
        kind: InputKind::KindConfig,
        ignore: None,
    };
    let paths = super::inputs::source_paths(&source);
    let covers = |rel: &str| paths.iter().any(|p| input(p.clone()).covers(&d.join(rel)));
    assert!(covers("overlay/kustomization.yaml"));
    assert!(covers("base/deploy.yaml"));
    assert!(covers("conf/app.conf"));
    assert!(!covers("elsewhere/x.yaml"));
}

#[test]
fn commands_name_files_and_go_packages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("test/e2e")).unwrap();
    std::fs::write(d.join("run.sh"), "").unwrap();
    std::fs::write(d.join("conf.yaml"), "").unwrap();
    let command: Vec<String> = ["sh", "run.sh", "--config=conf.yaml", "./test/e2e/...", "-v"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        named_paths(&command, d),
        vec![d.join("run.sh"), d.join("conf.yaml"), d.join("test/e2e")]
    );
}

#[test]
fn a_file_a_suite_script_sources_picks_the_lanes_that_run_it() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), false);
    let found = lanes_for(&project, &["suites/lib.sh"]);
    assert_eq!(found.lanes, ["both"]);
    assert_eq!(
        found.affected[0].reasons[0].to_string(),
        "suite e2e: suites/lib.sh changed"
    );
}

#[test]
fn what_a_shell_script_sources_is_found_as_the_shell_would() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("s/lib")).unwrap();
    for f in ["s/a.sh", "s/b.sh", "s/c.sh", "common.sh", "s/lib/x.sh"] {
        std::fs::write(d.join(f), "").unwrap();
    }
    let script = d.join("s/run");
    std::fs::write(
        &script,
        "#!/usr/bin/env bash\n\
         . \"$(dirname \"$0\")/a.sh\"\n\
         source $(dirname $0)/b.sh\n\
         . \"${0%/*}/c.sh\" --quiet\n\
         . ./common.sh\n\
         . \"$(dirname -- \"$0\")/lib/x.sh\"\n\
         . \"$(dirname \"$0\")/missing.sh\"\n\
         echo . not-a-source.sh\n",
    )
    .unwrap();
    assert_eq!(
        sourced_paths(&script, d),
        ["s/a.sh", "s/b.sh", "s/c.sh", "common.sh", "s/lib/x.sh"].map(|f| d.join(f))
    );
    // A path that names another variable cannot be told: the script's
    // whole directory counts.
    std::fs::write(&script, "#!/bin/sh\n. \"$LIBDIR/x.sh\"\n").unwrap();
    assert_eq!(sourced_paths(&script, d), [d.join("s")]);
    // Not a shell script: nothing is read from it.
    std::fs::write(d.join("s/conf.yaml"), ". s/a.sh\n").unwrap();
    assert!(sourced_paths(&d.join("s/conf.yaml"), d).is_empty());
    // Through the command, recursively: lib/x.sh sources a third file.
    std::fs::write(d.join("s/lib/x.sh"), ". ./s/c.sh\n. ./common.sh\n").unwrap();
    std::fs::write(&script, "#!/bin/sh\n. \"$(dirname \"$0\")/lib/x.sh\"\n").unwrap();
    let command: Vec<String> = ["sh", "s/run"].map(String::from).to_vec();
    assert_eq!(
        named_paths(&command, d),
        ["s/run", "s/lib/x.sh", "s/c.sh", "common.sh"].map(|f| d.join(f))
    );
}

#[test]
fn normalize_takes_out_dots() {
    assert_eq!(normalize(Path::new("/r/./a/../b")), PathBuf::from("/r/b"));
    assert_eq!(normalize(Path::new("/r/.")), PathBuf::from("/r"));
}

#[test]
fn text_lists_lanes_reasons_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), false);
    let got = lanes_for(&project, &["b/1", "b/2", "b/3", "b/4", "b/5"]);
    assert_eq!(
        got.render_text(),
        "two\n  image b: b/1, b/2, b/3 and 2 more changed\n\
         both\n  image b: b/1, b/2, b/3 and 2 more changed\n\
         2 of 3 lanes affected by the 5 changed files since main\nunaffected: one\n"
    );
    assert_eq!(
        lanes_for(&project, &["README.md"]).render_text(),
        "no lane is affected by the 1 changed file since main\n"
    );
}
