//! Preflight: fail fast, before anything is built or created, with the fix
//! in the message.
//!
//! Four checks: the container engine answers; kind is installed and new
//! enough; there is free disk where images and clusters go; the lane's host
//! ports are free. Each probe is a thin shell (a socket, a subprocess, a
//! `statvfs`, a `bind`) whose result is judged by a pure function, so every
//! verdict and message is tested without the real thing.

use std::fmt::Write as _;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::config::{ClusterProvider, EngineKind, HostPort, Lane, Project, Protocol};
use crate::engine;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `engine`, `kind`, `disk` or `ports`.
    pub name: &'static str,
    pub status: Status,
    pub summary: String,
    /// What to do when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// One line: `preflight ports: FAIL: 28090/TCP is in use; fix: ...`.
    pub fn line(&self) -> String {
        let status = match self.status {
            Status::Pass => "ok",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        match &self.fix {
            Some(fix) => format!(
                "preflight {}: {status}: {}; fix: {fix}",
                self.name, self.summary
            ),
            None => format!("preflight {}: {status}: {}", self.name, self.summary),
        }
    }

    fn pass(name: &'static str, summary: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Pass,
            summary: summary.into(),
            fix: None,
        }
    }
    fn fail(name: &'static str, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Fail,
            summary: summary.into(),
            fix: Some(fix.into()),
        }
    }
    fn skip(name: &'static str, summary: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Skip,
            summary: summary.into(),
            fix: None,
        }
    }
}

/// Every check for one lane.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub lane: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    /// One line per check, with the fix under each failure.
    pub fn render(&self) -> String {
        let mut out = format!("preflight for lane {}\n", self.lane);
        for c in &self.checks {
            let mark = match c.status {
                Status::Pass => "ok  ",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            let _ = writeln!(out, "  {mark}  {:<7} {}", c.name, c.summary);
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "        {:<7} fix: {fix}", "");
            }
        }
        out
    }
}

/// Preflight failed: the report says which checks and how to fix them.
#[derive(Debug, thiserror::Error)]
#[error("preflight failed for lane {}: {}", .0.lane, .0.failures().map(|c| c.name).collect::<Vec<_>>().join(", "))]
pub struct PreflightFailed(pub Report);

// ---------------------------------------------------------------- kind

/// Reads the version out of `kind version` output, e.g.
/// `kind v0.27.0 go1.24.2 linux/amd64` (older releases print `v0.x.y` alone).
pub fn parse_kind_version(output: &str) -> Option<semver::Version> {
    output
        .split_whitespace()
        .find_map(|word| semver::Version::parse(word.strip_prefix('v')?).ok())
}

const KIND_INSTALL: &str = "install kind (Debian trixie: `apt-get install kind`; Go: `go install sigs.k8s.io/kind@latest`; or a release binary from kind.sigs.k8s.io)";

/// Judges the result of running `kind version`.
pub fn judge_kind(result: &io::Result<std::process::Output>, min: &semver::Version) -> Check {
    let output = match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Check::fail(
                "kind",
                "kind is not installed (not found on PATH)",
                format!("{KIND_INSTALL}, version {min} or newer"),
            );
        }
        Err(e) => {
            return Check::fail(
                "kind",
                format!("cannot run `kind version`: {e}"),
                "check that `kind` on PATH is an executable kind binary",
            );
        }
        Ok(o) => o,
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Check::fail(
            "kind",
            format!(
                "`kind version` failed ({}): {}",
                output.status,
                stderr.trim()
            ),
            "reinstall kind",
        );
    }
    match parse_kind_version(&stdout) {
        None => Check::fail(
            "kind",
            format!(
                "cannot read a version from `kind version`: {:?}",
                stdout.trim()
            ),
            "reinstall kind",
        ),
        Some(v) if cmp_release(&v, min) == std::cmp::Ordering::Less => Check::fail(
            "kind",
            format!("kind {v} is older than the required {min}"),
            format!(
                "upgrade kind to {min} or newer ({KIND_INSTALL}), or lower `cluster.kind.min_version`"
            ),
        ),
        Some(v) => Check::pass("kind", format!("kind {v} (need {min} or newer)")),
    }
}

/// Compares release numbers only: a `v0.31.0-alpha` build of kind counts as 0.31.0.
fn cmp_release(a: &semver::Version, b: &semver::Version) -> std::cmp::Ordering {
    (a.major, a.minor, a.patch).cmp(&(b.major, b.minor, b.patch))
}

async fn check_kind(min: &semver::Version) -> Check {
    let run = tokio::process::Command::new("kind")
        .arg("version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let result = match tokio::time::timeout(Duration::from_secs(20), run).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "`kind version` did not finish in 20s",
        )),
    };
    judge_kind(&result, min)
}

// ---------------------------------------------------------------- disk

/// Judges free space on the filesystems that will fill up.
pub fn judge_disk(free: &[(PathBuf, io::Result<u64>)], min: u64) -> Check {
    let need = bytesize::ByteSize::b(min).display().iec().to_string();
    let mut ok = Vec::new();
    for (path, bytes) in free {
        match bytes {
            Err(e) => {
                return Check::fail(
                    "disk",
                    format!("cannot read free space of {}: {e}", path.display()),
                    "check that the directory exists and is readable",
                );
            }
            Ok(b) if *b < min => {
                let have = bytesize::ByteSize::b(*b).display().iec().to_string();
                return Check::fail(
                    "disk",
                    format!("only {have} free on {} (need {need})", path.display()),
                    "free space there (e.g. `docker system prune`, `kind delete clusters --all`), or lower `preflight.min_free_disk`",
                );
            }
            Ok(b) => ok.push(format!(
                "{} free on {}",
                bytesize::ByteSize::b(*b).display().iec(),
                path.display()
            )),
        }
    }
    Check::pass("disk", format!("{} (need {need})", ok.join(", ")))
}

fn free_bytes(path: &Path) -> io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

// ---------------------------------------------------------------- ports

/// Tries to bind a host port the way kind will (its address and protocol).
fn try_bind(port: &HostPort) -> io::Result<()> {
    let address = match port.listen_address.as_str() {
        "" => "0.0.0.0",
        a => a.trim_start_matches('[').trim_end_matches(']'),
    };
    match port.protocol {
        Protocol::Tcp => TcpListener::bind((address, port.port)).map(drop),
        Protocol::Udp => UdpSocket::bind((address, port.port)).map(drop),
        // The standard library cannot open SCTP sockets; kind will say.
        Protocol::Sctp => Ok(()),
    }
}

/// Judges the bind attempts of every host port.
pub fn judge_ports(results: &[(&HostPort, io::Result<()>)]) -> Check {
    if results.is_empty() {
        return Check::skip("ports", "the lane maps no fixed host ports");
    }
    let mut busy = Vec::new();
    let mut fixes = Vec::new();
    for (port, result) in results {
        let Err(e) = result else { continue };
        let what = format!("{}/{} ({})", port.port, port.protocol, port.at);
        match e.kind() {
            io::ErrorKind::AddrInUse => {
                busy.push(format!("{what} is in use"));
                fixes.push(format!("free port {} (`ss -lntup 'sport = :{}'` shows who holds it; an old cluster? `kind get clusters`)", port.port, port.port));
            }
            io::ErrorKind::PermissionDenied => {
                busy.push(format!("{what} needs privileges to bind"));
                fixes.push(format!(
                    "use a hostPort of 1024 or more instead of {} in {}",
                    port.port, port.at
                ));
            }
            _ => {
                busy.push(format!("{what} cannot be bound: {e}"));
                fixes.push(format!(
                    "check listenAddress `{}` at {}",
                    port.listen_address, port.at
                ));
            }
        }
    }
    if busy.is_empty() {
        let list = results
            .iter()
            .map(|(p, _)| format!("{}/{}", p.port, p.protocol))
            .collect::<Vec<_>>()
            .join(", ");
        Check::pass("ports", format!("{list} free"))
    } else {
        fixes.dedup();
        Check::fail("ports", busy.join("; "), fixes.join("; "))
    }
}

// ---------------------------------------------------------------- engine

fn judge_engine(
    endpoint: &engine::Endpoint,
    result: &Result<engine::EngineInfo, engine::EngineError>,
) -> Check {
    match result {
        Ok(info) => Check::pass(
            "engine",
            format!(
                "{} {} at {} ({}), API {}",
                endpoint.engine.as_str(),
                info.server_version
                    .as_deref()
                    .unwrap_or("(version unknown)"),
                endpoint.host,
                endpoint.source,
                info.api_version
            ),
        ),
        Err(e) => {
            let mut summary = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                summary.push_str(&format!(": {s}"));
                source = s.source();
            }
            Check::fail("engine", summary, e.help(endpoint.engine))
        }
    }
}

// ---------------------------------------------------------------- all

/// Runs every check that applies to `lane`. `state_dir` is where the harness
/// writes logs and bundles (checked for free space with the engine's root).
pub async fn run(project: &Project, lane: &Lane, state_dir: &Path) -> Report {
    let mut checks = Vec::new();
    let kind = match &lane.cluster.provider {
        ClusterProvider::Kind(k) => Some(k),
        ClusterProvider::Existing(_) => None,
    };
    let lane_images = crate::plan::closure(project, &lane.components)
        .iter()
        .flat_map(|c| project.components[c.as_str()].images.clone())
        .count();
    let needs_engine = kind.is_some() || lane_images > 0;
    let engine_kind = kind.map_or(EngineKind::Docker, |k| k.engine);
    let mut engine_root = None;
    if needs_engine {
        let endpoint = engine::endpoint_from_env(engine_kind);
        let result = engine::connect(&endpoint, Duration::from_secs(10))
            .await
            .map(|(_, info)| info);
        if let Ok(info) = &result {
            engine_root = info.root_dir.clone().map(PathBuf::from);
        }
        checks.push(judge_engine(&endpoint, &result));
    } else {
        checks.push(Check::skip("engine", "the lane builds and loads no images"));
    }
    match kind {
        Some(k) => checks.push(check_kind(&k.min_version).await),
        None => checks.push(Check::skip("kind", "the lane uses an existing cluster")),
    }
    // The engine's storage may be remote (DOCKER_HOST=tcp://...); only a
    // directory that exists here can be measured here.
    let mut paths = vec![state_dir.to_path_buf()];
    if let Some(root) = engine_root.filter(|r| r.is_dir()) {
        paths.push(root);
    }
    let free: Vec<(PathBuf, io::Result<u64>)> = paths
        .into_iter()
        .map(|p| {
            let bytes = free_bytes(&p);
            (p, bytes)
        })
        .collect();
    checks.push(judge_disk(&free, project.preflight.min_free_disk));
    let binds: Vec<(&HostPort, io::Result<()>)> =
        lane.host_ports.iter().map(|p| (p, try_bind(p))).collect();
    checks.push(judge_ports(&binds));
    Report {
        lane: lane.name.clone(),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceLoc;
    use std::os::unix::process::ExitStatusExt;

    fn output(code: i32, stdout: &str, stderr: &str) -> io::Result<std::process::Output> {
        Ok(std::process::Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        })
    }

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn kind_version_parsing() {
        assert_eq!(
            parse_kind_version("kind v0.27.0 go1.24.2 linux/amd64\n"),
            Some(v("0.27.0"))
        );
        assert_eq!(
            parse_kind_version("kind v0.31.0-alpha.12+abc go1.25 linux/arm64"),
            Some(v("0.31.0-alpha.12+abc"))
        );
        assert_eq!(parse_kind_version("v0.8.1\n"), Some(v("0.8.1")));
        assert_eq!(parse_kind_version("command not found"), None);
    }

    #[test]
    fn kind_judgements() {
        let min = v("0.20.0");
        assert_eq!(
            judge_kind(&output(0, "kind v0.27.0 go1.24.2 linux/amd64\n", ""), &min).status,
            Status::Pass
        );
        // A pre-release of a new enough version is new enough.
        assert_eq!(
            judge_kind(&output(0, "kind v0.20.0-alpha go1 linux/amd64", ""), &min).status,
            Status::Pass
        );
        let old = judge_kind(&output(0, "kind v0.11.1 go1.16 linux/amd64", ""), &min);
        assert_eq!(old.status, Status::Fail);
        assert!(
            old.summary
                .contains("0.11.1 is older than the required 0.20.0"),
            "{}",
            old.summary
        );
        let missing = judge_kind(&Err(io::Error::from(io::ErrorKind::NotFound)), &min);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.fix.unwrap().contains("apt-get install kind"));
        let broken = judge_kind(&output(1, "", "segfault"), &min);
        assert!(broken.summary.contains("segfault"));
        let garbage = judge_kind(&output(0, "hello", ""), &min);
        assert_eq!(garbage.status, Status::Fail);
    }

    #[test]
    fn disk_judgements() {
        let gib = 1024 * 1024 * 1024;
        let ok = judge_disk(
            &[
                (PathBuf::from("/a"), Ok(20 * gib)),
                (PathBuf::from("/b"), Ok(11 * gib)),
            ],
            10 * gib,
        );
        assert_eq!(ok.status, Status::Pass);
        assert!(ok.summary.contains("20.0 GiB free on /a"), "{}", ok.summary);
        let low = judge_disk(
            &[
                (PathBuf::from("/a"), Ok(20 * gib)),
                (PathBuf::from("/var/lib/docker"), Ok(3 * gib)),
            ],
            10 * gib,
        );
        assert_eq!(low.status, Status::Fail);
        assert!(
            low.summary
                .contains("only 3.0 GiB free on /var/lib/docker (need 10.0 GiB)"),
            "{}",
            low.summary
        );
        assert!(low.fix.unwrap().contains("min_free_disk"));
    }

    #[test]
    fn free_bytes_reads_a_real_filesystem() {
        let free = free_bytes(Path::new("/")).unwrap();
        assert!(free > 0);
        assert!(free_bytes(Path::new("/definitely/not/here")).is_err());
    }

    fn host_port(port: u16, address: &str) -> HostPort {
        HostPort {
            port,
            protocol: Protocol::Tcp,
            listen_address: address.into(),
            container_port: Some(30080),
            node: "nodes[0] (control-plane)".into(),
            at: SourceLoc::new("kind-a.yaml", 8, 15),
        }
    }

    #[test]
    fn a_port_held_by_another_process_fails_with_its_location() {
        let holder = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let taken = holder.local_addr().unwrap().port();
        let busy = host_port(taken, "127.0.0.1");
        let free_port = {
            let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let free = host_port(free_port, "127.0.0.1");
        let check = judge_ports(&[(&busy, try_bind(&busy)), (&free, try_bind(&free))]);
        assert_eq!(check.status, Status::Fail);
        assert!(
            check
                .summary
                .contains(&format!("{taken}/TCP (kind-a.yaml:8:15) is in use")),
            "{}",
            check.summary
        );
        assert!(
            !check.summary.contains(&free_port.to_string()),
            "{}",
            check.summary
        );
        assert!(check.fix.unwrap().contains(&format!("free port {taken}")));
        drop(holder);
        assert_eq!(
            judge_ports(&[(&busy, try_bind(&busy))]).status,
            Status::Pass
        );
    }

    #[test]
    fn no_ports_is_a_skip() {
        assert_eq!(judge_ports(&[]).status, Status::Skip);
    }

    #[test]
    fn report_renders_fixes_and_passes_only_without_failures() {
        let report = Report {
            lane: "audit".into(),
            checks: vec![
                Check::pass("disk", "20 GiB free"),
                Check::fail("kind", "kind is not installed", "install kind"),
            ],
        };
        assert!(!report.passed());
        let text = report.render();
        assert!(
            text.contains("FAIL  kind    kind is not installed"),
            "{text}"
        );
        assert!(text.contains("fix: install kind"), "{text}");
        assert_eq!(
            PreflightFailed(report).to_string(),
            "preflight failed for lane audit: kind"
        );
    }
}
