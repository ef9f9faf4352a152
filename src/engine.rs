//! The container engine (Docker, or Podman's Docker-compatible API).
//!
//! Which socket to talk to is a pure function of the configured engine and
//! the environment (`DOCKER_HOST`, `CONTAINER_HOST`, `XDG_RUNTIME_DIR`), so it
//! is tested without an engine; [`connect`] is the thin shell that dials it
//! and negotiates the API version.

use std::time::Duration;

use bollard::Docker;
use serde::Serialize;

use crate::config::EngineKind;

/// Where the engine's API is, and why we think so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub engine: EngineKind,
    /// `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub host: String,
    /// The variable it came from, or `default`.
    pub source: &'static str,
}

/// Resolves the engine's API endpoint from the environment (`env` reads a
/// variable). Docker: `DOCKER_HOST`, else the standard socket. Podman:
/// `CONTAINER_HOST`, else `DOCKER_HOST`, else its rootless socket under
/// `XDG_RUNTIME_DIR` (or the rootful one for root).
pub fn endpoint(
    engine: EngineKind,
    env: impl Fn(&str) -> Option<String>,
    is_root: bool,
) -> Endpoint {
    let var = |name: &'static str| env(name).filter(|v| !v.is_empty()).map(|v| (v, name));
    let found = match engine {
        EngineKind::Docker => var("DOCKER_HOST"),
        EngineKind::Podman => var("CONTAINER_HOST").or_else(|| var("DOCKER_HOST")),
    };
    let (host, source) = found.unwrap_or_else(|| {
        let host = match engine {
            EngineKind::Docker => "unix:///var/run/docker.sock".to_owned(),
            EngineKind::Podman => {
                match env("XDG_RUNTIME_DIR").filter(|d| !d.is_empty() && !is_root) {
                    Some(dir) => format!("unix://{dir}/podman/podman.sock"),
                    None => "unix:///run/podman/podman.sock".to_owned(),
                }
            }
        };
        (host, "default")
    });
    Endpoint {
        engine,
        host,
        source,
    }
}

/// The endpoint for this process's real environment.
pub fn endpoint_from_env(engine: EngineKind) -> Endpoint {
    endpoint(
        engine,
        |name| std::env::var(name).ok(),
        nix::unistd::Uid::effective().is_root(),
    )
}

/// Why the engine could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{engine} API at {host} ({source_var}) uses an unsupported scheme")]
    Scheme {
        engine: &'static str,
        host: String,
        source_var: &'static str,
    },
    #[error("cannot reach the {engine} API at {host} ({source_var})")]
    Unreachable {
        engine: &'static str,
        host: String,
        source_var: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the {engine} API at {host} did not answer within {}s", .timeout.as_secs())]
    Timeout {
        engine: &'static str,
        host: String,
        timeout: Duration,
    },
}

impl EngineError {
    /// The engine that could not be reached.
    pub fn engine_kind(&self) -> EngineKind {
        let (EngineError::Scheme { engine, .. }
        | EngineError::Unreachable { engine, .. }
        | EngineError::Timeout { engine, .. }) = self;
        if *engine == EngineKind::Podman.as_str() {
            EngineKind::Podman
        } else {
            EngineKind::Docker
        }
    }

    /// What to do about it.
    pub fn help(&self, engine: EngineKind) -> String {
        match (self, engine) {
            (EngineError::Scheme { .. }, _) => {
                "use a unix://, tcp:// or http:// address (for ssh://, forward the socket locally: ssh -L)".into()
            }
            (_, EngineKind::Docker) => {
                "start the Docker daemon (e.g. `sudo systemctl start docker`, or `dockerd &`), or point DOCKER_HOST at a running one".into()
            }
            (_, EngineKind::Podman) => {
                "start Podman's API service (`systemctl --user start podman.socket`, or `podman system service --time=0 &`), or point CONTAINER_HOST at it".into()
            }
        }
    }
}

/// An engine that cannot be reached fails the run before anything is
/// built: a preflight failure (3).
impl crate::failure::Failure for EngineError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            EngineError::Scheme { .. }
            | EngineError::Unreachable { .. }
            | EngineError::Timeout { .. } => crate::exit::Exit::Preflight,
        }
    }

    fn fix(&self) -> Option<String> {
        Some(self.help(self.engine_kind()))
    }
}

/// Facts about a reachable engine.
#[derive(Clone, Debug, Serialize)]
pub struct EngineInfo {
    pub server_version: Option<String>,
    pub api_version: String,
    pub root_dir: Option<String>,
}

/// A client of the engine at `endpoint`, not dialled yet (bollard connects
/// lazily): for a lane that may never need the engine.
pub fn client(endpoint: &Endpoint) -> Result<Docker, EngineError> {
    Docker::connect_with_host(&endpoint.host).map_err(|e| match e {
        bollard::errors::Error::UnsupportedURISchemeError { .. } => EngineError::Scheme {
            engine: endpoint.engine.as_str(),
            host: endpoint.host.clone(),
            source_var: endpoint.source,
        },
        source => EngineError::Unreachable {
            engine: endpoint.engine.as_str(),
            host: endpoint.host.clone(),
            source_var: endpoint.source,
            source,
        },
    })
}

/// Dials the engine, negotiates the API version and reads its facts.
pub async fn connect(
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<(Docker, EngineInfo), EngineError> {
    let engine = endpoint.engine.as_str();
    let unreachable = |source| EngineError::Unreachable {
        engine,
        host: endpoint.host.clone(),
        source_var: endpoint.source,
        source,
    };
    let docker = client(endpoint)?;
    let dial = async {
        let docker = docker.negotiate_version().await?;
        let info = docker.info().await?;
        Ok::<_, bollard::errors::Error>((docker, info))
    };
    let (docker, info) = tokio::time::timeout(timeout, dial)
        .await
        .map_err(|_| EngineError::Timeout {
            engine,
            host: endpoint.host.clone(),
            timeout,
        })?
        .map_err(unreachable)?;
    let api_version = docker.client_version().to_string();
    Ok((
        docker,
        EngineInfo {
            server_version: info.server_version,
            api_version,
            root_dir: info.docker_root_dir,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn endpoint_resolution_table() {
        use EngineKind::*;
        type Case<'a> = (EngineKind, &'a [(&'a str, &'a str)], bool, &'a str, &'a str);
        let cases: &[Case] = &[
            (Docker, &[], false, "unix:///var/run/docker.sock", "default"),
            (
                Docker,
                &[("DOCKER_HOST", "tcp://10.0.0.1:2375")],
                false,
                "tcp://10.0.0.1:2375",
                "DOCKER_HOST",
            ),
            // Docker ignores Podman's variable.
            (
                Docker,
                &[("CONTAINER_HOST", "unix:///p.sock")],
                false,
                "unix:///var/run/docker.sock",
                "default",
            ),
            (
                Podman,
                &[
                    ("CONTAINER_HOST", "unix:///p.sock"),
                    ("DOCKER_HOST", "unix:///d.sock"),
                ],
                false,
                "unix:///p.sock",
                "CONTAINER_HOST",
            ),
            (
                Podman,
                &[("DOCKER_HOST", "unix:///d.sock")],
                false,
                "unix:///d.sock",
                "DOCKER_HOST",
            ),
            (
                Podman,
                &[("XDG_RUNTIME_DIR", "/run/user/1000")],
                false,
                "unix:///run/user/1000/podman/podman.sock",
                "default",
            ),
            (
                Podman,
                &[("XDG_RUNTIME_DIR", "/run/user/0")],
                true,
                "unix:///run/podman/podman.sock",
                "default",
            ),
            // An empty variable counts as unset, as the docker CLI treats it.
            (
                Docker,
                &[("DOCKER_HOST", "")],
                false,
                "unix:///var/run/docker.sock",
                "default",
            ),
        ];
        for (engine, vars, root, host, source) in cases {
            let got = endpoint(*engine, env(vars), *root);
            assert_eq!(
                (got.host.as_str(), got.source),
                (*host, *source),
                "{engine:?} {vars:?}"
            );
        }
    }

    #[tokio::test]
    async fn unreachable_socket_is_reported_with_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}/nothing.sock", dir.path().display());
        let ep = Endpoint {
            engine: EngineKind::Docker,
            host: host.clone(),
            source: "DOCKER_HOST",
        };
        let err = connect(&ep, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains(&host));
        assert!(err.to_string().contains("DOCKER_HOST"));
        assert!(
            err.help(EngineKind::Docker)
                .contains("start the Docker daemon")
        );
    }

    #[tokio::test]
    async fn ssh_scheme_is_refused_with_a_hint() {
        let ep = Endpoint {
            engine: EngineKind::Docker,
            host: "ssh://me@box".into(),
            source: "DOCKER_HOST",
        };
        let err = connect(&ep, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, EngineError::Scheme { .. }), "{err:?}");
        assert!(err.help(EngineKind::Docker).contains("ssh -L"));
    }
}
