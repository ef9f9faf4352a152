//! Which lanes share which host ports.
//!
//! A project's lanes often map the same host port on purpose: each lane
//! runs as its own CI job on its own runner, and several lanes reuse one
//! kind config. Sharing is reported (the plan's matrix), never an error by
//! itself. It bites only where the claims meet on one machine at one time:
//! one lane mapping a port twice (always, so the lane file is rejected),
//! the lanes one invocation runs together (one lane per `up`/`test`
//! today), or a port a running cluster or process already holds — which
//! preflight finds out when a lane is about to run.

use super::kind::{HostPort, Protocol};
use super::model::Lane;

pub use super::kind::{PortClaim, SharedPort};

/// Every host port that clashes among the claims of `lanes` (same port and
/// protocol on overlapping listen addresses), each with the claims that
/// clash, in port order. Lanes that run together on one machine cannot
/// have any; lanes that never do may.
pub fn clashes<'a>(lanes: impl IntoIterator<Item = &'a Lane>) -> Vec<SharedPort> {
    let mut claims: Vec<(&'a str, &'a HostPort)> = Vec::new();
    for lane in lanes {
        for port in &lane.host_ports {
            claims.push((&lane.name, port));
        }
    }
    let mut keys: Vec<(u16, Protocol)> = claims.iter().map(|(_, p)| (p.port, p.protocol)).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for (port, protocol) in keys {
        let same: Vec<&(&str, &HostPort)> = claims
            .iter()
            .filter(|(_, p)| p.port == port && p.protocol == protocol)
            .collect();
        let clashing: Vec<PortClaim> = same
            .iter()
            .filter(|(_, p)| {
                same.iter()
                    .any(|(_, q)| !std::ptr::eq(*p, *q) && p.clashes_with(q))
            })
            .map(|(lane, p)| PortClaim {
                lane: (*lane).to_owned(),
                at: p.at.clone(),
                node: p.node.clone(),
            })
            .collect();
        if clashing.len() >= 2 {
            out.push(SharedPort {
                port,
                protocol,
                claims: clashing,
            });
        }
    }
    out
}

/// The host ports several lanes share (a port mapped twice by one lane
/// alone is not sharing: validation rejects it).
pub fn shared<'a>(lanes: impl IntoIterator<Item = &'a Lane>) -> Vec<SharedPort> {
    clashes(lanes)
        .into_iter()
        .filter(|s| s.lanes().len() > 1)
        .collect()
}
