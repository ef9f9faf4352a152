//! The demo images on the real Docker daemon: they build (PostgreSQL from
//! Debian's packages, DataStorage from the host-built binary), and a
//! DataStorage container talks to a PostgreSQL container over a
//! user-defined network: it refuses to start without the schema, and
//! answers `/health` once the migrations ran.
//!
//! The PostgreSQL image is cached by a tag made of a hash of its Dockerfile
//! and entrypoint, so only the first run pays for `apt-get install`.
//! Without a daemon these tests fail when HARNESS_REQUIRE_ENGINE=1 (CI) and
//! are skipped with a notice otherwise.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn engine_available() -> bool {
    let up = Command::new("docker")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        assert!(
            std::env::var("HARNESS_REQUIRE_ENGINE").as_deref() != Ok("1"),
            "a Docker daemon is required (HARNESS_REQUIRE_ENGINE=1): run scripts/install-deps"
        );
        eprintln!("skipped: no Docker daemon here (scripts/install-deps starts one)");
    }
    up
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A build context shaped like the repository's (demo/ files and the
/// binaries at target/release/), holding the binaries of this test build.
fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("demo")).unwrap();
    std::fs::create_dir_all(dir.path().join("target/release")).unwrap();
    for f in [
        "datastorage.Dockerfile",
        "controller.Dockerfile",
        "postgresql.Dockerfile",
        "postgresql-entrypoint.sh",
    ] {
        std::fs::copy(repo().join("demo").join(f), dir.path().join("demo").join(f)).unwrap();
    }
    std::fs::copy(
        env!("CARGO_BIN_EXE_datastorage"),
        dir.path().join("target/release/datastorage"),
    )
    .unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_controller"),
        dir.path().join("target/release/controller"),
    )
    .unwrap();
    dir
}

fn build(ctx: &Path, dockerfile: &str, tag: &str) {
    let file = ctx.join("demo").join(dockerfile);
    let (file, ctx) = (file.to_string_lossy(), ctx.to_string_lossy());
    docker_ok(&["build", "-q", "-f", &file, "-t", tag, &ctx]);
}

/// Removes what a test made, even when it fails.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in self.0.iter().rev() {
            let _ = Command::new("docker").args(args).output();
        }
    }
}

/// Polls `check` until it holds or `limit` passes.
fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn datastorage_image_answers_health_next_to_a_postgresql_container() {
    if !engine_available() {
        return;
    }
    let ctx = context();
    let mut h = DefaultHasher::new();
    for f in ["postgresql.Dockerfile", "postgresql-entrypoint.sh"] {
        std::fs::read(repo().join("demo").join(f))
            .unwrap()
            .hash(&mut h);
    }
    let pg_image = format!("harness-demo-test/postgresql:{:016x}", h.finish());
    if !docker(&["image", "inspect", &pg_image]).status.success() {
        build(ctx.path(), "postgresql.Dockerfile", &pg_image);
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let ds_image = format!("harness-demo-test/datastorage:{id}");
    let ctl_image = format!("harness-demo-test/controller:{id}");
    let (net, pg, ds) = (
        format!("hd-{id}"),
        format!("hd-pg-{id}"),
        format!("hd-ds-{id}"),
    );
    let mut cleanup = Cleanup(vec![
        vec![
            "image".into(),
            "rm".into(),
            ds_image.clone(),
            ctl_image.clone(),
        ],
        vec!["network".into(), "rm".into(), net.clone()],
        vec!["rm".into(), "-f".into(), pg.clone()],
    ]);
    build(ctx.path(), "datastorage.Dockerfile", &ds_image);
    build(ctx.path(), "controller.Dockerfile", &ctl_image);

    // The controller image starts its binary, which names what it misses.
    let out = docker(&["run", "--rm", &ctl_image]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATASTORAGE_URL is not set"));

    docker_ok(&["network", "create", &net]);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &pg,
        "--network",
        &net,
        "-e",
        "POSTGRES_USER=audit",
        "-e",
        "POSTGRES_PASSWORD=audit-e2e-only",
        "-e",
        "POSTGRES_DB=audit",
        "-e",
        "PGDATA=/var/lib/postgresql/data/pgdata",
        &pg_image,
    ]);
    // The same probe as manifests/postgresql.yaml.
    wait_for("PostgreSQL readiness", Duration::from_secs(60), || {
        docker(&[
            "exec",
            &pg,
            "pg_isready",
            "-U",
            "audit",
            "-d",
            "audit",
            "-h",
            "127.0.0.1",
        ])
        .status
        .success()
    });

    let run_ds = |cleanup: &mut Cleanup| {
        cleanup.0.push(vec!["rm".into(), "-f".into(), ds.clone()]);
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &ds,
            "--network",
            &net,
            "-p",
            "127.0.0.1::8080",
            "-e",
            &format!("DATASTORAGE_DB_HOST={pg}"),
            "-e",
            "DATASTORAGE_DB_USER=audit",
            "-e",
            "DATASTORAGE_DB_PASSWORD=audit-e2e-only",
            "-e",
            "DATASTORAGE_DB_NAME=audit",
            &ds_image,
        ])
    };
    // No migrations yet: the container stops with the reason.
    run_ds(&mut cleanup);
    assert_eq!(docker_ok(&["wait", &ds]), "1");
    let logs = docker(&["logs", &ds]);
    let logs = String::from_utf8_lossy(&logs.stderr);
    assert!(
        logs.contains("table audit_events does not exist in database \"audit\""),
        "{logs}"
    );
    docker_ok(&["rm", &ds]);

    // The migrations, as the Job runs them (psql over the network, with the
    // ConfigMap's SQL).
    let manifest = std::fs::read_to_string(repo().join("manifests/migrations-job.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&manifest).unwrap();
    let sql = docs[0]["data"]["001-audit-events.sql"]
        .as_str()
        .unwrap()
        .to_owned();
    docker_ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "-e",
        "PGPASSWORD=audit-e2e-only",
        "--entrypoint",
        "psql",
        &pg_image,
        "-h",
        &pg,
        "-U",
        "audit",
        "-d",
        "audit",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        &sql,
    ]);

    run_ds(&mut cleanup);
    let port = docker_ok(&["port", &ds, "8080/tcp"]);
    let url = format!("http://{}/health", port.lines().next().unwrap());
    let mut last = String::new();
    wait_for(
        "DataStorage /health 200",
        Duration::from_secs(60),
        || match Command::new("curl")
            .args(["-s", "-w", " %{http_code}", &url])
            .output()
        {
            Ok(o) => {
                last = String::from_utf8_lossy(&o.stdout).into_owned();
                last.ends_with(" 200")
            }
            Err(_) => false,
        },
    );
    assert_eq!(last, "{\"status\":\"ok\"} 200");
}
