use super::*;

use crate::config::Project;

const AUDIT_KIND: &str = "\
# the audit lane
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  extraPortMappings:
  - containerPort: 30090   # datastorage
    hostPort: 28090
  - {containerPort: 30432, hostPort: 25432}
";

const OTHER_KIND: &str = "\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  extraPortMappings:
  - containerPort: 30090
    hostPort: 28090   # the same as the audit lane
  - containerPort: 30091
    hostPort: 28091
    listenAddress: 127.0.0.1
";

/// Three lanes: `a` and `b` on their own clusters with the same host port
/// 28090, `c` on `a`'s cluster (and its kind config).
fn project(dir: &Path) -> Project {
    std::fs::write(
        dir.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
    )
    .unwrap();
    std::fs::write(dir.join("a.yaml"), AUDIT_KIND).unwrap();
    std::fs::write(dir.join("b.yaml"), OTHER_KIND).unwrap();
    std::fs::write(
        dir.join("harness.yaml"),
        "\
components:
  datastorage:
    manifests: [app.yaml]
    health: { url: \"http://localhost:{{host_port.30090}}/health\" }
lanes:
  a: { cluster: { name: a-e2e, kind: { config: a.yaml } }, components: [datastorage] }
  b: { cluster: { name: b-e2e, kind: { config: b.yaml } }, components: [datastorage] }
  c: { cluster: { name: a-e2e, kind: { config: a.yaml } }, components: [datastorage] }
",
    )
    .unwrap();
    crate::config::load(&dir.join("harness.yaml"))
        .unwrap_or_else(|e| panic!("{}", e.rendered().unwrap_or_default()))
}

/// Hands out 40000, 40001, … and records what it was told was in use.
fn counting(seen: &mut Vec<Vec<u16>>) -> impl FnMut(&HostPort, &[u16]) -> io::Result<u16> + '_ {
    let mut next = 40000;
    move |_, used| {
        seen.push(used.to_vec());
        next += 1;
        Ok(next - 1)
    }
}

#[test]
fn only_the_ports_an_earlier_lane_claims_move() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let (a, b) = (&p.lanes["a"], &p.lanes["b"]);
    let mut seen = Vec::new();
    let moved = remap(&[a, b], counting(&mut seen)).unwrap();
    // b's 28090 clashes with a's; b's 28091 (127.0.0.1) and a's 25432 do not.
    assert_eq!(moved.len(), 1, "{moved:?}");
    let m = &moved[0];
    assert_eq!((m.lane.as_str(), m.from, m.to), ("b", 28090, 40000));
    assert_eq!((m.held_by.as_str(), m.container_port), ("a", Some(30090)));
    assert_eq!((m.at.line, m.at.column), (7, 15));
    // The picker is told every port the run claims, so it never hands one out twice.
    assert_eq!(seen, vec![vec![28090, 25432, 28090, 28091]]);
    assert_eq!(
        m.to_string(),
        format!(
            "lane b: host port 28090/TCP ({}:7:15) moved to 40000: lane a claims it too",
            crate::config::diag::display_path(&dir.path().join("b.yaml"))
        )
    );
    // In the other order, a's port moves instead.
    let moved = remap(&[b, a], counting(&mut Vec::new())).unwrap();
    assert_eq!(
        moved
            .iter()
            .map(|m| (m.lane.as_str(), m.from))
            .collect::<Vec<_>>(),
        [("a", 28090)]
    );
    // A lane alone moves nothing.
    assert!(remap(&[a], counting(&mut Vec::new())).unwrap().is_empty());
}

#[test]
fn a_picker_that_finds_no_port_is_an_error_naming_the_lane() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let err = remap(&[&p.lanes["a"], &p.lanes["b"]], |_, _| {
        Err(io::Error::new(io::ErrorKind::AddrInUse, "none"))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "no free host port for lane b's 28090/TCP");
    assert_eq!(crate::failure::Failure::exit(&err), Exit::Preflight);
}

#[test]
fn the_copy_differs_only_in_the_moved_port_and_the_lane_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let (a, b) = (&p.lanes["a"], &p.lanes["b"]);
    let moved = remap(&[a, b], counting(&mut Vec::new())).unwrap();
    let copy = dir.path().join(".harness/kind/b.yaml");
    let lane = moved_lane(b, &moved, &copy).unwrap();
    let written = std::fs::read_to_string(&copy).unwrap();
    assert_eq!(written, OTHER_KIND.replace("28090", "40000"));
    // kind is handed the copy; the lane file's own config is untouched.
    match &lane.cluster.provider {
        ClusterProvider::Kind(spec) => assert_eq!(spec.config.as_deref(), Some(copy.as_path())),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b.yaml")).unwrap(),
        OTHER_KIND
    );
    // What the copy says is what the lane says: read back, the same ports.
    let reread = crate::config::kind::host_ports(&copy, &written).unwrap();
    assert_eq!(reread, lane.host_ports);
    // `{{host_port.30090}}` (health URLs, endpoints, the suites' env) resolves to the moved port.
    assert_eq!(
        lane.resolve_url("http://localhost:{{host_port.30090}}/health"),
        Ok("http://localhost:40000/health".to_owned())
    );
    // A lane with nothing moved is itself, with no copy written.
    let same = moved_lane(a, &moved, &dir.path().join(".harness/kind/a.yaml")).unwrap();
    assert_eq!(same.host_ports, a.host_ports);
    assert!(!dir.path().join(".harness/kind/a.yaml").exists());
}

#[test]
fn a_port_not_written_where_it_was_read_is_refused() {
    let moved = Moved {
        lane: "b".into(),
        protocol: Protocol::Tcp,
        container_port: Some(30090),
        from: 28090,
        to: 40000,
        at: SourceLoc::new("b.yaml", 7, 15),
        held_by: "a".into(),
    };
    assert_eq!(
        rewrite(OTHER_KIND, &[&moved]).unwrap(),
        OTHER_KIND.replace("28090", "40000")
    );
    let elsewhere = OTHER_KIND.replace("    hostPort: 28090", "    hostPort: 28099");
    let err = rewrite(&elsewhere, &[&moved]).unwrap_err();
    assert!(err.contains("does not read 28090"), "{err}");
    let short = rewrite("kind: Cluster\n", &[&moved]).unwrap_err();
    assert!(short.contains("past the end of the file"), "{short}");
}

#[test]
fn lanes_start_while_slots_are_free_and_never_two_on_one_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let (a, b, c) = (&p.lanes["a"], &p.lanes["b"], &p.lanes["c"]);
    assert_eq!(next_to_start(&[a, b, c], &[], 2), Some(0));
    // a runs: c (a's cluster) waits, b goes first.
    assert_eq!(next_to_start(&[c, b], &["a-e2e"], 2), Some(1));
    assert_eq!(next_to_start(&[c], &["a-e2e"], 3), None);
    // Both slots taken.
    assert_eq!(next_to_start(&[c], &["a-e2e", "b-e2e"], 2), None);
    // `--lanes-at-once 0` is one at a time.
    assert_eq!(next_to_start(&[b], &[], 0), Some(0));
    assert_eq!(next_to_start(&[b], &["a-e2e"], 0), None);
}

#[test]
fn a_free_port_is_bindable_and_not_one_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let port = &p.lanes["a"].host_ports[0];
    let got = free_port(port, &[28090]).unwrap();
    assert_ne!(got, 28090);
    std::net::TcpListener::bind(("0.0.0.0", got)).expect("the port handed out is free");
}

#[test]
fn the_summary_has_every_lane_and_every_moved_port() {
    let results = [
        LaneResult::ran("audit", "r-1", Exit::Ok, 91.25),
        LaneResult::ran("controller", "r-2", Exit::Deploy, 40.0),
        LaneResult::not_started("gateway", "an earlier lane failed (--fail-fast)"),
    ];
    assert_eq!(
        results.iter().map(LaneResult::exit).collect::<Vec<_>>(),
        [Some(Exit::Ok), Some(Exit::Deploy), None]
    );
    let moved = Moved {
        lane: "controller".into(),
        protocol: Protocol::Tcp,
        container_port: Some(30090),
        from: 28090,
        to: 40000,
        at: SourceLoc::new("deploy/kind/controller.yaml", 9, 15),
        held_by: "audit".into(),
    };
    assert_eq!(
        summary(&results, &[moved], 95.0),
        "\
lanes: 2 run, 1 failed, in 95.0s
  ok   audit         91.2s  r-1  passed (exit 0)
  FAIL controller    40.0s  r-2  a component failed to deploy or is doomed (readiness verdict) (exit 6)
  --   gateway     not started: an earlier lane failed (--fail-fast)
  lane controller: host port 28090/TCP (deploy/kind/controller.yaml:9:15) moved to 40000: lane audit claims it too
"
    );
}

#[test]
fn a_kept_lane_reads_its_ports_from_the_copy_it_was_made_with() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let b = &p.lanes["b"];
    let moved = remap(&[&p.lanes["a"], b], counting(&mut Vec::new())).unwrap();
    let copy = dir.path().join(".harness/kind/b.yaml");
    moved_lane(b, &moved, &copy).unwrap();
    let mut state = crate::cluster::state::LaneState {
        lane: "b".into(),
        cluster: "b-e2e".into(),
        provider: "kind".into(),
        engine: None,
        kubeconfig: dir.path().join("kubeconfig"),
        context: None,
        kind_config: Some(copy.clone()),
        created: true,
        images: Default::default(),
        created_objects: Vec::new(),
        run_id: "r-1".into(),
        created_at: crate::cluster::state::LaneState::now(),
    };
    let kept = as_made(b, Some(&state));
    assert_eq!(
        kept.resolve_url("{{host_port.30090}}"),
        Ok("40000".to_owned())
    );
    // Made from the lane file's own config, or with no state: as written.
    state.kind_config = Some(dir.path().join("b.yaml"));
    assert_eq!(as_made(b, Some(&state)).host_ports, b.host_ports);
    assert_eq!(as_made(b, None).host_ports, b.host_ports);
    // A copy that is gone: as written, not an error.
    state.kind_config = Some(dir.path().join("gone.yaml"));
    assert_eq!(as_made(b, Some(&state)).host_ports, b.host_ports);
}

#[test]
fn the_combined_exit_is_the_first_failure_unless_a_run_was_cut_short() {
    let table: &[(&[Exit], Exit)] = &[
        (&[], Exit::Ok),
        (&[Exit::Ok, Exit::Ok], Exit::Ok),
        (&[Exit::Ok, Exit::Deploy, Exit::SuitesFailed], Exit::Deploy),
        (&[Exit::SuitesFailed, Exit::Interrupted], Exit::Interrupted),
        (&[Exit::Interrupted, Exit::Panicked], Exit::Panicked),
    ];
    for (exits, want) in table {
        assert_eq!(combined_exit(exits.iter().copied()), *want, "{exits:?}");
    }
}
