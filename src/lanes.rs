//! Several lanes in one run on one machine (`harness test --lane a --lane b`,
//! `--all`): which host ports move, the kind config copies that move them,
//! which lane may start next, and what the run as a whole says.
//!
//! Lanes of a project often claim the same host ports on purpose (each ran
//! on its own CI runner). Run together, every port a lane claims that an
//! earlier lane of the run also claims is moved to a free one ([`remap`]):
//! the lane gets a copy of its kind config with only those `hostPort`
//! values changed ([`rewrite`]), and a [`Lane`] whose `host_ports` say the
//! real ports, so that `{{host_port.N}}` in health URLs and endpoints, the
//! suites' environment and the report all use them. Lanes on one cluster
//! name never run at the same time ([`next_to_start`]).

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{ClusterProvider, HostPort, Lane, Protocol, SourceLoc};
use crate::exit::Exit;

/// A host port of a lane moved for this run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub lane: String,
    pub protocol: Protocol,
    /// The NodePort behind it, when the mapping names one.
    pub container_port: Option<u16>,
    /// What the lane's kind config says.
    pub from: u16,
    /// What this run uses.
    pub to: u16,
    /// Where the kind config says it.
    pub at: SourceLoc,
    /// The earlier lane of the run that claims `from`.
    pub held_by: String,
}

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lane {}: host port {}/{} ({}) moved to {}: lane {} claims it too",
            self.lane, self.from, self.protocol, self.at, self.to, self.held_by
        )
    }
}

/// Why lanes cannot run together as asked.
#[derive(Debug, thiserror::Error)]
pub enum LanesError {
    #[error("no free host port for lane {lane}'s {port}/{protocol}")]
    NoFreePort {
        lane: String,
        port: u16,
        protocol: Protocol,
        #[source]
        source: io::Error,
    },
    #[error("cannot move the host ports of lane {lane}: {what}")]
    Rewrite { lane: String, what: String },
    #[error("cannot write lane {lane}'s kind config copy {}", .path.display())]
    Write {
        lane: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl crate::failure::Failure for LanesError {
    fn exit(&self) -> Exit {
        match self {
            LanesError::NoFreePort { .. } => Exit::Preflight,
            LanesError::Rewrite { .. } => Exit::Usage,
            LanesError::Write { .. } => Exit::Internal,
        }
    }

    fn fix(&self) -> Option<String> {
        Some(match self {
            LanesError::NoFreePort { .. } => {
                "free some host ports, or run the lanes one after the other (`--lanes-at-once 1`)"
                    .into()
            }
            LanesError::Rewrite { .. } => {
                "write each `hostPort:` of the kind config as a plain number, or run the lanes one after the other (`--lanes-at-once 1`)".into()
            }
            LanesError::Write { .. } => "check that the harness's state directory (.harness) is writable".into(),
        })
    }
}

/// The host ports to move so that `lanes` can run together: each port a
/// lane claims that a lane before it claims too (same port and protocol,
/// overlapping addresses) moves to the port `free` picks for it; `free`
/// is told the ports this run already uses, so it never picks one twice.
pub fn remap(
    lanes: &[&Lane],
    mut free: impl FnMut(&HostPort, &[u16]) -> io::Result<u16>,
) -> Result<Vec<Moved>, LanesError> {
    let mut claimed: Vec<(String, HostPort)> = Vec::new();
    let mut used: Vec<u16> = lanes
        .iter()
        .flat_map(|l| l.host_ports.iter().map(|p| p.port))
        .collect();
    let mut moved = Vec::new();
    for lane in lanes {
        let mut mine = Vec::new();
        for port in &lane.host_ports {
            let holder = claimed
                .iter()
                .find(|(other, p)| *other != lane.name && p.clashes_with(port));
            match holder {
                None => mine.push(port.clone()),
                Some((holder, _)) => {
                    let to = free(port, &used).map_err(|source| LanesError::NoFreePort {
                        lane: lane.name.clone(),
                        port: port.port,
                        protocol: port.protocol,
                        source,
                    })?;
                    used.push(to);
                    moved.push(Moved {
                        lane: lane.name.clone(),
                        protocol: port.protocol,
                        container_port: port.container_port,
                        from: port.port,
                        to,
                        at: port.at.clone(),
                        held_by: holder.clone(),
                    });
                    mine.push(HostPort {
                        port: to,
                        ..port.clone()
                    });
                }
            }
        }
        claimed.extend(mine.into_iter().map(|p| (lane.name.clone(), p)));
    }
    Ok(moved)
}

/// A port the system has free now at `port`'s address and protocol, not
/// one of `used`: what the kernel hands out for port 0.
pub fn free_port(port: &HostPort, used: &[u16]) -> io::Result<u16> {
    let address = match port.listen_address.as_str() {
        "" | "::" | "[::]" => "0.0.0.0",
        a => a,
    };
    for _ in 0..32 {
        let got = match port.protocol {
            Protocol::Udp => std::net::UdpSocket::bind((address, 0))?
                .local_addr()?
                .port(),
            Protocol::Tcp | Protocol::Sctp => std::net::TcpListener::bind((address, 0))?
                .local_addr()?
                .port(),
        };
        if !used.contains(&got) {
            return Ok(got);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "the system kept handing out ports this run already uses",
    ))
}

/// `text` (a kind config) with the `hostPort` values `moved` names changed,
/// and nothing else: each is found at its line and column and must read
/// the old port there.
pub fn rewrite(text: &str, moved: &[&Moved]) -> Result<String, String> {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    for m in moved {
        let line = usize::try_from(m.at.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .and_then(|l| lines.get_mut(l))
            .ok_or_else(|| format!("{} is past the end of the file", m.at))?;
        let column = usize::try_from(m.at.column).unwrap_or(0).saturating_sub(1);
        let start = line
            .char_indices()
            .nth(column)
            .map(|(i, _)| i)
            .ok_or_else(|| format!("{} is past the end of its line", m.at))?;
        let digits = line[start..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(line.len() - start);
        if line[start..start + digits] != m.from.to_string() {
            return Err(format!(
                "{} does not read {} (a quoted or anchored value?)",
                m.at, m.from
            ));
        }
        line.replace_range(start..start + digits, &m.to.to_string());
    }
    Ok(lines.join("\n"))
}

/// `lane` as it runs beside the others: when ports of it moved, its kind
/// config is a copy at `copy` with them moved, and its `host_ports` say
/// the ports it really has. A lane with nothing moved is itself.
pub fn moved_lane(lane: &Lane, moved: &[Moved], copy: &Path) -> Result<Lane, LanesError> {
    let mine: Vec<&Moved> = moved.iter().filter(|m| m.lane == lane.name).collect();
    if mine.is_empty() {
        return Ok(lane.clone());
    }
    let mut out = lane.clone();
    let ClusterProvider::Kind(spec) = &mut out.cluster.provider else {
        // Only kind configs claim host ports.
        return Ok(out);
    };
    let Some(config) = spec.config.clone() else {
        return Ok(out);
    };
    let rewrite_error = |what: String| LanesError::Rewrite {
        lane: lane.name.clone(),
        what,
    };
    let text = std::fs::read_to_string(&config)
        .map_err(|e| rewrite_error(format!("cannot read {}: {e}", config.display())))?;
    let text = rewrite(&text, &mine).map_err(rewrite_error)?;
    let write = |source| LanesError::Write {
        lane: lane.name.clone(),
        path: copy.to_path_buf(),
        source,
    };
    if let Some(dir) = copy.parent() {
        std::fs::create_dir_all(dir).map_err(write)?;
    }
    std::fs::write(copy, text).map_err(write)?;
    spec.config = Some(copy.to_path_buf());
    // Every port is now read from the copy, the moved ones at their new number.
    for port in &mut out.host_ports {
        if let Some(m) = mine.iter().find(|m| m.at == port.at) {
            port.port = m.to;
        }
        port.at = SourceLoc::new(copy, port.at.line, port.at.column);
    }
    Ok(out)
}

/// `lane` as its cluster was made: when the state file says the cluster
/// was made from a kind config copy with moved ports (it ran beside other
/// lanes, and was kept), the lane reads its host ports from that copy, so
/// that every later command on it reaches the ports it really has.
pub fn as_made(lane: &Lane, state: Option<&crate::cluster::state::LaneState>) -> Lane {
    let mut out = lane.clone();
    let (Some(copy), ClusterProvider::Kind(spec)) = (
        state.and_then(|s| s.kind_config.as_ref()),
        &mut out.cluster.provider,
    ) else {
        return out;
    };
    if spec.config.as_ref() == Some(copy) {
        return out;
    }
    let ports = std::fs::read_to_string(copy)
        .ok()
        .and_then(|text| crate::config::kind::host_ports(copy, &text).ok());
    if let Some(ports) = ports {
        spec.config = Some(copy.clone());
        out.host_ports = ports;
    }
    out
}

/// Which waiting lane starts next, if any may: the first whose cluster no
/// running lane uses, while fewer than `at_once` run.
pub fn next_to_start(
    waiting: &[&Lane],
    running_clusters: &[&str],
    at_once: usize,
) -> Option<usize> {
    if running_clusters.len() >= at_once.max(1) {
        return None;
    }
    waiting
        .iter()
        .position(|l| !running_clusters.contains(&l.cluster.name.as_str()))
}

/// How one lane of the run ended.
#[derive(Clone, Debug, Serialize)]
pub struct LaneResult {
    pub lane: String,
    /// `None` for a lane that never started (`--fail-fast`, an interrupt).
    pub run_id: Option<String>,
    pub exit_code: u8,
    pub result: String,
    pub seconds: f64,
}

impl LaneResult {
    pub fn ran(lane: &str, run_id: &str, exit: Exit, seconds: f64) -> Self {
        LaneResult {
            lane: lane.to_owned(),
            run_id: Some(run_id.to_owned()),
            exit_code: exit.code(),
            result: if exit == Exit::Ok {
                "passed".into()
            } else {
                exit.meaning().into()
            },
            seconds,
        }
    }

    /// How the lane's run exited; `None` when it never started.
    pub fn exit(&self) -> Option<Exit> {
        self.run_id.as_ref()?;
        Exit::ALL.into_iter().find(|e| e.code() == self.exit_code)
    }

    pub fn not_started(lane: &str, why: &str) -> Self {
        LaneResult {
            lane: lane.to_owned(),
            run_id: None,
            exit_code: Exit::Ok.code(),
            result: format!("not started: {why}"),
            seconds: 0.0,
        }
    }
}

/// The exit of a run of several lanes: an interrupt or a panic wins (the
/// run stopped, or cannot be trusted), else the first lane's failure, else
/// success (also when there was no lane to run).
pub fn combined_exit(exits: impl IntoIterator<Item = Exit>) -> Exit {
    let exits: Vec<Exit> = exits.into_iter().collect();
    [Exit::Panicked, Exit::Interrupted]
        .into_iter()
        .find(|e| exits.contains(e))
        .or_else(|| exits.iter().copied().find(|e| *e != Exit::Ok))
        .unwrap_or(Exit::Ok)
}

/// The lanes' results as the run's last lines: one per lane, then the
/// ports that moved.
pub fn summary(results: &[LaneResult], moved: &[Moved], seconds: f64) -> String {
    let width = results.iter().map(|r| r.lane.len()).max().unwrap_or(0);
    let failed = results
        .iter()
        .filter(|r| r.run_id.is_some() && r.exit_code != 0)
        .count();
    let mut text = format!(
        "lanes: {} run, {} failed, in {seconds:.1}s\n",
        results.iter().filter(|r| r.run_id.is_some()).count(),
        failed
    );
    for r in results {
        let mark = match (&r.run_id, r.exit_code) {
            (None, _) => "--  ",
            (Some(_), 0) => "ok  ",
            (Some(_), _) => "FAIL",
        };
        match &r.run_id {
            Some(run) => text.push_str(&format!(
                "  {mark} {:width$}  {:>6.1}s  {run}  {} (exit {})\n",
                r.lane, r.seconds, r.result, r.exit_code
            )),
            None => text.push_str(&format!("  {mark} {:width$}  {}\n", r.lane, r.result)),
        }
    }
    for m in moved {
        text.push_str(&format!("  {m}\n"));
    }
    text
}

#[cfg(test)]
mod tests;
