//! A [`kube::Client`] from a kubeconfig file and an optional context.
//!
//! The harness never guesses the cluster from the ambient environment
//! silently: the caller says which kubeconfig (the state file's, the lane's
//! `existing.kubeconfig`, `--kubeconfig` or `$KUBECONFIG`) and the error
//! names the file and context that failed.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Where the cluster is: a kubeconfig file and, optionally, a context in it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClusterAccess {
    /// The kubeconfig file.
    pub kubeconfig: PathBuf,
    /// The context to use; the file's `current-context` when `None`.
    pub context: Option<String>,
}

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig could not be read or parsed.
    #[error("cannot read kubeconfig {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// kube's error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig does not yield a usable configuration (unknown context, bad certificate...).
    #[error("kubeconfig {} has no usable {}", .path.display(), context_text(.context))]
    Config {
        /// The file.
        path: PathBuf,
        /// The context asked for.
        context: Option<String>,
        /// kube's error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The HTTP client could not be built from the configuration.
    #[error("cannot build a Kubernetes client from kubeconfig {}", .path.display())]
    Build {
        /// The file.
        path: PathBuf,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// A kubeconfig that yields no client is a cluster failure (5).
impl crate::failure::Failure for ClientError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            ClientError::Read { .. } | ClientError::Config { .. } | ClientError::Build { .. } => {
                crate::exit::Exit::Cluster
            }
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            ClientError::Read { path, .. } | ClientError::Config { path, .. } => Some(format!(
                "check {} (`kubectl --kubeconfig {} config view`), or pass --kubeconfig PATH",
                path.display(),
                path.display()
            )),
            ClientError::Build { .. } => None,
        }
    }
}

fn context_text(context: &Option<String>) -> String {
    match context {
        Some(c) => format!("context `{c}`"),
        None => "current-context".to_owned(),
    }
}

/// Builds a client for `access`. No request is made: the first call to the
/// API server is where an unreachable cluster shows.
pub async fn connect(access: &ClusterAccess) -> Result<kube::Client, ClientError> {
    let path = access.kubeconfig.clone();
    let kubeconfig = Kubeconfig::read_from(&path).map_err(|source| ClientError::Read {
        path: path.clone(),
        source,
    })?;
    config_client(kubeconfig, &path, access.context.clone()).await
}

async fn config_client(
    kubeconfig: Kubeconfig,
    path: &Path,
    context: Option<String>,
) -> Result<kube::Client, ClientError> {
    let options = KubeConfigOptions {
        context: context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| ClientError::Config {
            path: path.to_path_buf(),
            context,
            source,
        })?;
    client_of(config).map_err(|source| ClientError::Build {
        path: path.to_path_buf(),
        source,
    })
}

/// kube's client for `config`, as `kube::Client::try_from` builds it (TLS,
/// timeouts, retries of 429/503/504, auth, extra headers) but with
/// `TCP_NODELAY` on each connection to the API server. kube 5 leaves it off
/// (kube-rs/kube#2056), and every new connection then stalls about 40 ms on
/// Nagle's algorithm meeting delayed ACKs: a second `up` opens dozens of
/// watches. A kubeconfig with a proxy goes through kube's own builder,
/// which says what it supports.
pub fn client_of(config: kube::Config) -> Result<kube::Client, kube::Error> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use kube::client::ConfigExt;
    use tower::ServiceBuilder;
    if config.proxy_url.is_some() {
        return kube::Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let hyper: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new())
            .build(connector);
    let retry = config
        .default_retry
        .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(|e: hyper_util::client::legacy::Error| {
            Box::new(e) as Box<dyn std::error::Error + Send + Sync>
        })
        .service(hyper);
    Ok(kube::Client::new(service, config.default_namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: kind-a
  cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}
contexts:
- name: kind-a
  context: {cluster: kind-a, user: kind-a}
current-context: kind-a
users:
- name: kind-a
  user: {token: abc}
";

    #[tokio::test]
    async fn builds_a_client_for_the_current_or_named_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let access = ClusterAccess {
            kubeconfig: path.clone(),
            context: None,
        };
        connect(&access).await.unwrap();
        let named = ClusterAccess {
            context: Some("kind-a".into()),
            ..access.clone()
        };
        connect(&named).await.unwrap();
        let missing = ClusterAccess {
            context: Some("nope".into()),
            ..access
        };
        let Err(err) = connect(&missing).await else {
            panic!("unknown context accepted")
        };
        assert!(matches!(err, ClientError::Config { .. }), "{err:?}");
        assert!(err.to_string().contains("context `nope`"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_names_the_file() {
        let access = ClusterAccess {
            kubeconfig: "/nonexistent/kubeconfig".into(),
            context: None,
        };
        let Err(err) = connect(&access).await else {
            panic!("missing kubeconfig accepted")
        };
        assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
    }
}
