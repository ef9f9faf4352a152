//! The parts of a user's kind cluster config the harness reads.
//!
//! The file is the user's and is handed to `kind create cluster --config`
//! untouched; here we only read `nodes[].extraPortMappings` so that port
//! collisions between lanes are found before any cluster is created, and so
//! preflight knows which host ports must be free. Every other key is ignored
//! (kind validates its own file).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::diag::{Diagnostic, SourceLoc};

/// The transport protocol of a port mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// One `extraPortMappings` entry with a fixed host port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostPort {
    pub port: u16,
    pub protocol: Protocol,
    /// As written; kind's default is `0.0.0.0`.
    pub listen_address: String,
    pub container_port: Option<u16>,
    /// The node's index in `nodes` and its role: `node 0 (control-plane)`.
    pub node: String,
    #[serde(skip)]
    pub at: SourceLoc,
}

impl HostPort {
    /// Whether binding both would clash: same port and protocol, and
    /// addresses that overlap (a wildcard overlaps every address).
    pub fn clashes_with(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (is_wildcard(&self.listen_address)
                || is_wildcard(&other.listen_address)
                || self.listen_address == other.listen_address)
    }
}

fn is_wildcard(address: &str) -> bool {
    matches!(address, "" | "0.0.0.0" | "::" | "[::]")
}

#[derive(Deserialize)]
struct KindConfig {
    #[serde(default)]
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    #[serde(default)]
    role: Option<String>,
    #[serde(default, rename = "extraPortMappings")]
    extra_port_mappings: Vec<PortMapping>,
}

#[derive(Deserialize)]
struct PortMapping {
    #[serde(default, rename = "containerPort")]
    container_port: Option<u16>,
    #[serde(default, rename = "hostPort")]
    host_port: Option<Spanned<u16>>,
    #[serde(default, rename = "listenAddress")]
    listen_address: Option<String>,
    #[serde(default)]
    protocol: Option<Spanned<String>>,
}

/// Reads the fixed host ports of a kind config. `hostPort: 0` (or none)
/// asks for a random port and can never collide, so it is left out.
pub fn host_ports(file: &Path, text: &str) -> Result<Vec<HostPort>, Diagnostic> {
    let config: KindConfig = serde_saphyr::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map_or_else(|| SourceLoc::new(file, 1, 1), |l| SourceLoc::of(file, &l));
        Diagnostic::new(
            at,
            format!("invalid kind config: {}", super::parse_message(&e)),
        )
        .help("fix the kind cluster config (see https://kind.sigs.k8s.io/docs/user/configuration/)")
    })?;
    let mut ports = Vec::new();
    for (index, node) in config.nodes.iter().enumerate() {
        let role = node.role.as_deref().unwrap_or("control-plane");
        for mapping in &node.extra_port_mappings {
            let Some(host_port) = &mapping.host_port else {
                continue;
            };
            if host_port.value == 0 {
                continue;
            }
            let protocol = match &mapping.protocol {
                None => Protocol::Tcp,
                Some(p) => match p.value.to_ascii_uppercase().as_str() {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    "SCTP" => Protocol::Sctp,
                    _ => {
                        return Err(Diagnostic::new(
                            SourceLoc::of(file, &p.referenced),
                            format!("unknown port mapping protocol `{}`", p.value),
                        )
                        .help("use TCP, UDP or SCTP"));
                    }
                },
            };
            ports.push(HostPort {
                port: host_port.value,
                protocol,
                listen_address: mapping
                    .listen_address
                    .clone()
                    .unwrap_or_else(|| "0.0.0.0".into()),
                container_port: mapping.container_port,
                node: format!("node {index} ({role})"),
                at: SourceLoc::of(file, &host_port.referenced),
            });
        }
    }
    Ok(ports)
}

/// One lane's claim on a host port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortClaim {
    pub lane: String,
    /// Where its kind config maps it.
    pub at: SourceLoc,
    /// `node 0 (control-plane)`.
    pub node: String,
}

/// A host port (and protocol) claimed more than once, with every claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharedPort {
    pub port: u16,
    pub protocol: Protocol,
    pub claims: Vec<PortClaim>,
}

impl SharedPort {
    /// The distinct lanes that claim it, in claim order.
    pub fn lanes(&self) -> Vec<&str> {
        let mut lanes: Vec<&str> = Vec::new();
        for c in &self.claims {
            if !lanes.contains(&c.lane.as_str()) {
                lanes.push(&c.lane);
            }
        }
        lanes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_captured_fixture_config() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/k8s/kind-cli/kind-config.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        // The fixture cluster maps no host ports; it must parse to none,
        // ignoring every other key kind accepts.
        assert_eq!(host_ports(&path, &text).unwrap(), vec![]);
    }

    #[test]
    fn reads_ports_with_their_positions() {
        let text = "\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking: {ipFamily: ipv4}
nodes:
- role: control-plane
  extraPortMappings:
  - containerPort: 30080
    hostPort: 8080
  - containerPort: 30081
    hostPort: 0
  - containerPort: 30053
    hostPort: 5353
    protocol: udp
    listenAddress: 127.0.0.1
- role: worker
";
        let ports = host_ports(Path::new("k.yaml"), text).unwrap();
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].port, 8080);
        assert_eq!(ports[0].protocol, Protocol::Tcp);
        assert_eq!(ports[0].listen_address, "0.0.0.0");
        assert_eq!((ports[0].at.line, ports[0].at.column), (8, 15));
        assert_eq!(ports[1].protocol, Protocol::Udp);
        assert_eq!(ports[1].listen_address, "127.0.0.1");
        assert_eq!(ports[1].node, "node 0 (control-plane)");
    }

    #[test]
    fn clash_rules() {
        let p = |port, protocol, addr: &str| HostPort {
            port,
            protocol,
            listen_address: addr.into(),
            container_port: None,
            node: String::new(),
            at: SourceLoc::new("k", 1, 1),
        };
        assert!(p(80, Protocol::Tcp, "0.0.0.0").clashes_with(&p(80, Protocol::Tcp, "127.0.0.1")));
        assert!(p(80, Protocol::Tcp, "127.0.0.1").clashes_with(&p(80, Protocol::Tcp, "127.0.0.1")));
        assert!(!p(80, Protocol::Tcp, "127.0.0.1").clashes_with(&p(
            80,
            Protocol::Tcp,
            "127.0.0.2"
        )));
        assert!(!p(80, Protocol::Tcp, "0.0.0.0").clashes_with(&p(80, Protocol::Udp, "0.0.0.0")));
        assert!(!p(80, Protocol::Tcp, "0.0.0.0").clashes_with(&p(81, Protocol::Tcp, "0.0.0.0")));
    }

    #[test]
    fn bad_protocol_and_bad_yaml_are_located() {
        let err = host_ports(
            Path::new("k.yaml"),
            "nodes:\n- extraPortMappings:\n  - hostPort: 80\n    protocol: tpc\n",
        )
        .unwrap_err();
        assert_eq!((err.at.line, err.at.column), (4, 15));
        assert!(err.message.contains("`tpc`"));
        let err = host_ports(
            Path::new("k.yaml"),
            "nodes:\n- extraPortMappings:\n  - hostPort: eighty\n",
        )
        .unwrap_err();
        assert_eq!(err.at.line, 3);
    }
}
