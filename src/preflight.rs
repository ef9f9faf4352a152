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
use crate::failure::StageFailure;

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
    /// The check as the run tells it.
    pub fn notice(&self) -> crate::report::Notice {
        let status = match self.status {
            Status::Pass => "ok",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        crate::report::Notice::PreflightCheck {
            check: self.name.to_owned(),
            status: status.to_owned(),
            summary: self.summary.clone(),
            fix: self.fix.clone(),
        }
    }

    /// The check in one line, as the run tells it.
    pub fn line(&self) -> String {
        self.notice().to_string()
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

/// Each failed check was told with its own fix; this names them (3).
impl crate::failure::Failure for PreflightFailed {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Preflight
    }

    fn fix(&self) -> Option<String> {
        None
    }
}

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

// ---------------------------------------------------------------- memory

/// `MemAvailable` of `/proc/meminfo`, in bytes (Linux).
pub fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What the machine has of one thing several lanes at once each take.
#[derive(Clone, Debug)]
pub struct Capacity {
    /// `memory` or `disk`.
    pub name: &'static str,
    /// `None` when it cannot be read here.
    pub available: Option<u64>,
    pub per_lane: u64,
    /// The lane-file key that says `per_lane`.
    pub setting: &'static str,
    /// What frees some, for the fix.
    pub free_some: &'static str,
}

impl Capacity {
    /// `MemAvailable` against `preflight.memory_per_lane`.
    pub fn memory(per_lane: u64) -> Self {
        Capacity {
            name: "memory",
            available: memory_available(),
            per_lane,
            setting: "preflight.memory_per_lane",
            free_some: "free memory",
        }
    }

    /// The least free space of `paths` against `preflight.min_free_disk`.
    pub fn disk(paths: &[PathBuf], per_lane: u64) -> Self {
        Capacity {
            name: "disk",
            available: paths.iter().filter_map(|p| free_bytes(p).ok()).min(),
            per_lane,
            setting: "preflight.min_free_disk",
            free_some: "free space (e.g. `docker system prune`)",
        }
    }

    /// How many lanes it holds; all of them when unknown or free.
    fn holds(&self, lanes: usize) -> usize {
        match self.available {
            None => lanes,
            Some(a) => a.checked_div(self.per_lane).map_or(lanes, |h| h as usize),
        }
    }
}

/// The engine's data root, when the engine answers and the directory is on
/// this machine (where the images and the kind nodes' disks are).
pub async fn engine_root(kind: EngineKind) -> Option<PathBuf> {
    let endpoint = engine::endpoint_from_env(kind);
    let (_, info) = engine::connect(&endpoint, Duration::from_secs(10))
        .await
        .ok()?;
    info.root_dir.map(PathBuf::from).filter(|r| r.is_dir())
}

/// How many of `lanes` lanes run at once, and a check per capacity:
/// `asked` (`--lanes-at-once`, at most `lanes`) when every capacity holds
/// that many, else a failed check that says how many fit; when not asked,
/// as many as the tightest capacity holds (at least one).
pub fn lanes_at_once(
    capacities: &[Capacity],
    lanes: usize,
    asked: Option<u32>,
) -> (usize, Vec<Check>) {
    let size = |b: u64| bytesize::ByteSize::b(b).display().iec().to_string();
    let asked = asked.map(|n| (n as usize).min(lanes));
    let holds = capacities
        .iter()
        .map(|c| c.holds(lanes))
        .min()
        .unwrap_or(lanes);
    let n = asked.unwrap_or_else(|| holds.clamp(1, lanes.max(1)));
    let checks = capacities
        .iter()
        .map(|c| {
            let each = size(c.per_lane);
            let Some(available) = c.available else {
                return Check::skip(
                    c.name,
                    format!("cannot be read here; {n} lane(s) at once"),
                );
            };
            let have = size(available);
            let fits = c.holds(lanes);
            if n > fits.max(1) {
                Check::fail(
                    c.name,
                    format!(
                        "{have} available holds {fits} lane(s) at {each} each; {n} asked to run at once"
                    ),
                    format!(
                        "run fewer at once (`--lanes-at-once {}`), {}, or lower `{}`",
                        holds.max(1),
                        c.free_some,
                        c.setting
                    ),
                )
            } else {
                Check::pass(
                    c.name,
                    format!("{have} available, {n} lane(s) at once at {each} each (`{}`)", c.setting),
                )
            }
        })
        .collect();
    (n, checks)
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

/// What holds a host port, as far as this machine can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A container of the engine publishes it; `cluster` when it is a kind
    /// node (its `io.x-k8s.kind.cluster` label).
    Container {
        name: String,
        cluster: Option<String>,
    },
    /// A process listens on it.
    Process { pid: u32, command: String },
}

/// A port an engine container publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub container: String,
    pub cluster: Option<String>,
    /// The host address it is published on; `None` or empty for every address.
    pub ip: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

/// The container publishing `port`, if any (same port and protocol,
/// overlapping addresses).
pub fn publisher<'a>(port: &HostPort, published: &'a [Published]) -> Option<&'a Published> {
    published.iter().find(|p| {
        p.port == port.port
            && p.protocol == port.protocol
            && match p.ip.as_deref() {
                None | Some("") | Some("0.0.0.0") | Some("::") => true,
                Some(ip) => {
                    matches!(port.listen_address.as_str(), "" | "0.0.0.0" | "::" | "[::]")
                        || port.listen_address.trim_matches(['[', ']']) == ip
                }
            }
    })
}

/// The ports the engine's running containers publish.
async fn published_ports(docker: &bollard::Docker) -> Vec<Published> {
    use bollard::models::PortSummaryTypeEnum as Type;
    let Ok(containers) = docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in containers {
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_else(|| c.id.clone().unwrap_or_default());
        let cluster = c
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::cluster::nodes::CLUSTER_LABEL).cloned());
        for p in c.ports.iter().flatten() {
            let Some(port) = p.public_port else { continue };
            let protocol = match p.typ {
                Some(Type::UDP) => Protocol::Udp,
                Some(Type::SCTP) => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            out.push(Published {
                container: name.clone(),
                cluster: cluster.clone(),
                ip: p.ip.clone(),
                port,
                protocol,
            });
        }
    }
    out
}

/// The socket inodes listening on each port in a `/proc/net/{tcp,udp}[6]`
/// table: `(port, inode)`. TCP counts in state LISTEN (`0A`), UDP in any
/// state (a bound UDP socket is `07`).
pub fn parse_proc_net(text: &str, protocol: Protocol) -> Vec<(u16, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode: u64 = fields.get(9)?.parse().ok()?;
            if protocol == Protocol::Tcp && *state != "0A" {
                return None;
            }
            let port = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
            (inode != 0).then_some((port, inode))
        })
        .collect()
}

/// The inode in a `/proc/<pid>/fd/<n>` link to a socket (`socket:[1234]`).
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The process listening on `port`, from `/proc`: the socket's inode in
/// `/proc/net`, then the process with a descriptor on it. `None` when no
/// table lists the port or the process cannot be seen (another user's,
/// without root).
fn listening_process(port: &HostPort) -> Option<Holder> {
    let tables: &[&str] = match port.protocol {
        Protocol::Tcp => &["/proc/net/tcp", "/proc/net/tcp6"],
        Protocol::Udp => &["/proc/net/udp", "/proc/net/udp6"],
        Protocol::Sctp => return None,
    };
    let inodes: Vec<u64> = tables
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .flat_map(|text| parse_proc_net(&text, port.protocol))
        .filter(|(p, _)| *p == port.port)
        .map(|(_, inode)| inode)
        .collect();
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|l| socket_inode(&l.to_string_lossy()))
                .is_some_and(|i| inodes.contains(&i))
        });
        if holds {
            let command = std::fs::read(entry.path().join("cmdline"))
                .map(|raw| {
                    raw.split(|b| *b == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            return Some(Holder::Process { pid, command });
        }
    }
    None
}

/// One host port's preflight facts: whether it could be bound, and what
/// holds it.
pub struct PortProbe<'a> {
    pub port: &'a HostPort,
    pub bind: io::Result<()>,
    pub holder: Option<Holder>,
}

/// Judges every host port of `lane`: a port is taken when it cannot be
/// bound or a container publishes it (kind's ports may be published by
/// the engine's firewall rules alone, with nothing to bind). The holder
/// is named where it can be found — a kind cluster and the lane it
/// belongs to, another container, a process — with the fix for each.
/// `lanes_of` gives the lanes of this lane file whose cluster has a name;
/// `shared` the ports this lane shares with others.
pub fn judge_ports(
    lane: &str,
    probes: &[PortProbe<'_>],
    lanes_of: &dyn Fn(&str) -> Vec<String>,
    shared: &[crate::config::SharedPort],
) -> Check {
    if probes.is_empty() {
        return Check::skip("ports", "the lane maps no fixed host ports");
    }
    let mut busy = Vec::new();
    let mut fixes = Vec::new();
    for probe in probes {
        let port = probe.port;
        let what = format!("{}/{} ({})", port.port, port.protocol, port.at);
        let sharers: Vec<String> = shared
            .iter()
            .filter(|s| s.port == port.port && s.protocol == port.protocol)
            .flat_map(|s| s.lanes().into_iter().map(str::to_owned))
            .filter(|l| l != lane)
            .collect();
        match (&probe.holder, &probe.bind) {
            (
                Some(Holder::Container {
                    name,
                    cluster: Some(cluster),
                }),
                _,
            ) => {
                let owners = lanes_of(cluster);
                let of_lane = match owners.as_slice() {
                    [] => String::new(),
                    [one] if one == lane => " (this lane's own cluster: it is up)".to_owned(),
                    many => format!(" of lane {}", many.join(", ")),
                };
                busy.push(format!(
                    "{what} is held by kind cluster {cluster}{of_lane} (container {name})"
                ));
                fixes.push(match owners.as_slice() {
                    [one] if one == lane => format!(
                        "it is up already: `harness up --lane {lane}` reuses it, `harness down --lane {lane}` frees the port"
                    ),
                    [] => format!("delete that cluster (`kind delete cluster --name {cluster}`) or run this lane on another machine"),
                    many => format!(
                        "tear that lane down first (`harness down --lane {}`): lanes that share a host port run one after the other, or on separate machines",
                        many[0]
                    ),
                });
            }
            (
                Some(Holder::Container {
                    name,
                    cluster: None,
                }),
                _,
            ) => {
                busy.push(format!("{what} is published by container {name}"));
                fixes.push(format!(
                    "stop it (`docker stop {name}`) or give the lane another hostPort at {}",
                    port.at
                ));
            }
            (Some(Holder::Process { pid, command }), _) => {
                let command = if command.is_empty() { "?" } else { command };
                busy.push(format!("{what} is held by process {pid} ({command})"));
                fixes.push(format!(
                    "stop process {pid}, or give the lane another hostPort at {}",
                    port.at
                ));
            }
            (None, Ok(())) => continue,
            (None, Err(e)) => match e.kind() {
                io::ErrorKind::AddrInUse => {
                    busy.push(format!("{what} is in use"));
                    fixes.push(format!(
                        "free port {0} (`ss -lntup 'sport = :{0}'` as root shows who holds it)",
                        port.port
                    ));
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
            },
        }
        if !sharers.is_empty() {
            let last = busy.last_mut().expect("pushed above");
            last.push_str(&match sharers.as_slice() {
                [one] => format!("; lane {one} shares this port"),
                many => format!("; lanes {} share this port", many.join(", ")),
            });
        }
    }
    if busy.is_empty() {
        let list = probes
            .iter()
            .map(|p| format!("{}/{}", p.port.port, p.port.protocol))
            .collect::<Vec<_>>()
            .join(", ");
        Check::pass("ports", format!("{list} free"))
    } else {
        fixes.dedup();
        Check::fail("ports", busy.join("; "), fixes.join("; "))
    }
}

/// Probes every host port of `lane`: binds it, and looks for what holds
/// it among the engine's containers (when there is an engine) and this
/// machine's processes.
pub async fn probe_ports<'a>(
    lane: &'a Lane,
    docker: Option<&bollard::Docker>,
) -> Vec<PortProbe<'a>> {
    let published = match docker {
        Some(d) if !lane.host_ports.is_empty() => published_ports(d).await,
        _ => Vec::new(),
    };
    lane.host_ports
        .iter()
        .map(|port| {
            let bind = try_bind(port);
            let holder = match publisher(port, &published) {
                Some(p) => Some(Holder::Container {
                    name: p.container.clone(),
                    cluster: p.cluster.clone(),
                }),
                None if bind.is_err() => listening_process(port),
                None => None,
            };
            PortProbe { port, bind, holder }
        })
        .collect()
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
    run_connected(project, lane, state_dir).await.0
}

/// [`run`], and the engine client it connected (the images phase goes on
/// with it rather than dial and ask the engine's facts again).
pub async fn run_connected(
    project: &Project,
    lane: &Lane,
    state_dir: &Path,
) -> (Report, Option<bollard::Docker>) {
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
    let mut docker = None;
    // The engine and kind are asked at the same time.
    let endpoint = engine::endpoint_from_env(engine_kind);
    let (connected, kind_check) = tokio::join!(
        async {
            match needs_engine {
                true => Some(engine::connect(&endpoint, Duration::from_secs(10)).await),
                false => None,
            }
        },
        async {
            match kind {
                Some(k) => check_kind(&k.min_version).await,
                None => Check::skip("kind", "the lane uses an existing cluster"),
            }
        }
    );
    match connected {
        Some(result) => {
            let result = result.map(|(d, info)| {
                docker = Some(d);
                info
            });
            if let Ok(info) = &result {
                engine_root = info.root_dir.clone().map(PathBuf::from);
            }
            checks.push(judge_engine(&endpoint, &result));
        }
        None => checks.push(Check::skip("engine", "the lane builds and loads no images")),
    }
    checks.push(kind_check);
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
    let probes = probe_ports(lane, docker.as_ref()).await;
    let lanes_of = |cluster: &str| -> Vec<String> {
        project
            .lanes
            .values()
            .filter(|l| l.cluster.name == cluster)
            .map(|l| l.name.clone())
            .collect()
    };
    checks.push(judge_ports(
        &lane.name,
        &probes,
        &lanes_of,
        &project.shared_ports,
    ));
    (
        Report {
            lane: lane.name.clone(),
            checks,
        },
        docker,
    )
}

/// The preflight phase of `up`: every check, each told once (a failure
/// with its fix; the error that ends `up` only names the checks). A
/// cluster being reused (`reusing`) holds its own host ports, so the ports
/// check is skipped. Returns the engine client it connected, if any.
pub async fn stage(
    ctx: &crate::stage::Ctx<'_>,
    reusing: bool,
) -> Result<Option<bollard::Docker>, StageFailure> {
    crate::report::phase::phase(&ctx.bus, crate::report::Phase::Preflight, async {
        let (mut report, docker) =
            run_connected(ctx.project, ctx.lane, ctx.project.root.as_path()).await;
        if reusing {
            for check in report.checks.iter_mut().filter(|c| c.name == "ports") {
                check.status = Status::Skip;
                check.summary = format!(
                    "reusing cluster {}, which holds them",
                    ctx.lane.cluster.name
                );
                check.fix = None;
            }
        }
        for check in &report.checks {
            ctx.bus.notice(check.notice());
        }
        if report.passed() {
            Ok(docker)
        } else {
            Err(PreflightFailed(report))
        }
    })
    .await
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
    fn lanes_at_once_follows_the_tightest_capacity_unless_asked() {
        const GIB: u64 = 1024 * 1024 * 1024;
        let meminfo =
            "MemTotal:       24000000 kB\nMemFree:  1000 kB\nMemAvailable:   10485760 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(10 * GIB));
        let capacity = |name, available: Option<u64>, per_lane| Capacity {
            name,
            available,
            per_lane,
            setting: "preflight.x",
            free_some: "free some",
        };
        let memory = |gib: u64| capacity("memory", Some(gib * GIB), 3 * GIB);
        let disk = |gib: u64| capacity("disk", Some(gib * GIB), 6 * GIB);
        // Not asked: as many as the tightest holds, at most the lanes given.
        let (n, checks) = lanes_at_once(&[memory(10), disk(100)], 5, None);
        assert_eq!(n, 3);
        assert!(
            checks.iter().all(|c| c.status == Status::Pass),
            "{checks:?}"
        );
        assert_eq!(
            checks[0].summary,
            "10.0 GiB available, 3 lane(s) at once at 3.0 GiB each (`preflight.x`)"
        );
        assert_eq!(lanes_at_once(&[memory(10), disk(13)], 5, None).0, 2);
        assert_eq!(lanes_at_once(&[memory(10)], 2, None).0, 2);
        // Less than one lane's worth still runs one (its own preflight judges it).
        assert_eq!(lanes_at_once(&[memory(1)], 2, None).0, 1);
        // Asked for more than one holds: that one fails, saying how many fit.
        let (_, checks) = lanes_at_once(&[memory(10), disk(13)], 5, Some(3));
        assert_eq!(checks[0].status, Status::Pass);
        assert_eq!(checks[1].status, Status::Fail);
        assert_eq!(
            checks[1].summary,
            "13.0 GiB available holds 2 lane(s) at 6.0 GiB each; 3 asked to run at once"
        );
        assert_eq!(
            checks[1].fix.as_deref(),
            Some("run fewer at once (`--lanes-at-once 2`), free some, or lower `preflight.x`")
        );
        // Asked for more than there are lanes: as many as there are.
        let (n, checks) = lanes_at_once(&[memory(10)], 2, Some(8));
        assert_eq!(n, 2);
        assert_eq!(checks[0].status, Status::Pass);
        // Unknown: skipped, as asked, else all.
        let unknown = capacity("memory", None, 3 * GIB);
        let (n, checks) = lanes_at_once(std::slice::from_ref(&unknown), 4, None);
        assert_eq!((n, checks[0].status), (4, Status::Skip));
        assert_eq!(lanes_at_once(&[unknown], 4, Some(2)).0, 2);
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

    fn no_lanes(_: &str) -> Vec<String> {
        Vec::new()
    }

    fn probe<'a>(port: &'a HostPort, holder: Option<Holder>) -> PortProbe<'a> {
        PortProbe {
            port,
            bind: try_bind(port),
            holder,
        }
    }

    #[test]
    fn a_port_held_by_a_process_names_the_process() {
        let holder = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let taken = holder.local_addr().unwrap().port();
        let busy = host_port(taken, "127.0.0.1");
        let free_port = {
            let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let free = host_port(free_port, "127.0.0.1");
        // The real /proc: this test process holds the socket.
        let found = listening_process(&busy);
        assert_eq!(
            found.as_ref().map(|h| match h {
                Holder::Process { pid, .. } => *pid,
                Holder::Container { .. } => 0,
            }),
            Some(std::process::id()),
            "{found:?}"
        );
        let probes = [probe(&busy, found), probe(&free, None)];
        let check = judge_ports("a", &probes, &no_lanes, &[]);
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.summary.contains(&format!(
                "{taken}/TCP (kind-a.yaml:8:15) is held by process {}",
                std::process::id()
            )),
            "{}",
            check.summary
        );
        assert!(
            !check.summary.contains(&free_port.to_string()),
            "{}",
            check.summary
        );
        assert!(
            check
                .fix
                .unwrap()
                .contains(&format!("stop process {}", std::process::id()))
        );
        drop(holder);
        let probes = [probe(&busy, None)];
        assert_eq!(
            judge_ports("a", &probes, &no_lanes, &[]).status,
            Status::Pass
        );
    }

    #[test]
    fn an_unknown_holder_still_fails_with_a_way_to_find_it() {
        let holder = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let busy = host_port(holder.local_addr().unwrap().port(), "127.0.0.1");
        let check = judge_ports("a", &[probe(&busy, None)], &no_lanes, &[]);
        assert_eq!(check.status, Status::Fail);
        assert!(check.summary.ends_with("is in use"), "{}", check.summary);
        assert!(check.fix.unwrap().contains("ss -lntup"));
    }

    #[test]
    fn a_port_a_sibling_lanes_cluster_publishes_names_that_lane() {
        // Published by the engine's firewall rules: nothing to bind, the
        // bind succeeds, and the port is still taken.
        let port = {
            let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let mine = host_port(port, "0.0.0.0");
        let published = vec![Published {
            container: "gateway-e2e-control-plane".into(),
            cluster: Some("gateway-e2e".into()),
            ip: Some("0.0.0.0".into()),
            port,
            protocol: Protocol::Tcp,
        }];
        let holder = publisher(&mine, &published).map(|p| Holder::Container {
            name: p.container.clone(),
            cluster: p.cluster.clone(),
        });
        let lanes_of = |cluster: &str| -> Vec<String> {
            if cluster == "gateway-e2e" {
                vec!["gateway".into()]
            } else {
                Vec::new()
            }
        };
        let shared = vec![crate::config::SharedPort {
            port,
            protocol: Protocol::Tcp,
            claims: ["gateway", "notification"]
                .iter()
                .map(|l| crate::config::PortClaim {
                    lane: (*l).into(),
                    at: SourceLoc::new("kind-a.yaml", 8, 15),
                    node: "node 0 (control-plane)".into(),
                })
                .collect(),
        }];
        let check = judge_ports("notification", &[probe(&mine, holder)], &lanes_of, &shared);
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.summary,
            format!(
                "{port}/TCP (kind-a.yaml:8:15) is held by kind cluster gateway-e2e of lane gateway (container gateway-e2e-control-plane); lane gateway shares this port"
            )
        );
        assert!(
            check
                .fix
                .as_deref()
                .unwrap()
                .starts_with("tear that lane down first (`harness down --lane gateway`)"),
            "{:?}",
            check.fix
        );
        // Another address, another protocol: not the same port.
        let other = HostPort {
            listen_address: "127.0.0.2".into(),
            ..mine.clone()
        };
        let on_one = vec![Published {
            ip: Some("127.0.0.1".into()),
            ..published[0].clone()
        }];
        assert!(publisher(&other, &on_one).is_none());
        let udp = HostPort {
            protocol: Protocol::Udp,
            ..mine.clone()
        };
        assert!(publisher(&udp, &published).is_none());
    }

    #[test]
    fn proc_net_tables_are_read_for_listeners_only() {
        // Captured from /proc/net/tcp on this machine: a listener on
        // 127.0.0.1:42181 (0A), one on 0.0.0.0:2024, and an established
        // connection (06) that must not count.
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:A4C5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 75690 1 000000009a49b05a 100 0 0 10 0\n   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1496 1 000000007d4e53ca 100 0 0 10 0\n   3: 0100007F:9383 0100007F:DCEA 06 00000000:00000000 03:000007C2 00000000     0        0 0 3 00000000582f9bbd\n";
        assert_eq!(
            parse_proc_net(tcp, Protocol::Tcp),
            vec![(42181, 75690), (2024, 1496)]
        );
        assert_eq!(socket_inode("socket:[75690]"), Some(75690));
        assert_eq!(socket_inode("pipe:[384004]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn no_ports_is_a_skip() {
        assert_eq!(judge_ports("a", &[], &no_lanes, &[]).status, Status::Skip);
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
