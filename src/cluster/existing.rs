//! The `existing` provider: any cluster, reached through a kubeconfig and
//! context as given. The harness neither creates nor deletes it. Images go
//! in through the user's `load_command` (`k3d image import -c ci -`,
//! `minikube image load -`, an ssh to a node's `ctr images import -`), which
//! receives each image archive (docker save format) on stdin, streamed from
//! the engine; without one, the cluster is expected to pull from a registry.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use bollard::Docker;
use futures_util::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{
    ClusterError, Ensured, ImageRef, LoadOutcome, LoadProgress, LoadReport, NodeContainer,
    NodeLoad, Progress, Provider, nodes,
};
use crate::config::{EngineKind, ExistingSpec};

/// A cluster the harness did not make.
#[derive(Clone, Debug)]
pub struct ExistingProvider {
    name: String,
    kubeconfig: PathBuf,
    context: Option<String>,
    load_command: Option<Vec<String>>,
}

/// `$KUBECONFIG`'s first file, else `~/.kube/config`, as kubectl reads it.
pub fn default_kubeconfig(kubeconfig_var: Option<&str>, home: Option<&Path>) -> PathBuf {
    if let Some(first) =
        kubeconfig_var.and_then(|v| std::env::split_paths(v).find(|p| !p.as_os_str().is_empty()))
    {
        return first;
    }
    home.unwrap_or(Path::new("/")).join(".kube").join("config")
}

impl ExistingProvider {
    pub fn new(name: &str, spec: &ExistingSpec) -> ExistingProvider {
        let kubeconfig = spec.kubeconfig.clone().unwrap_or_else(|| {
            default_kubeconfig(
                std::env::var("KUBECONFIG").ok().as_deref(),
                std::env::var_os("HOME").map(PathBuf::from).as_deref(),
            )
        });
        ExistingProvider {
            name: name.to_owned(),
            kubeconfig,
            context: spec.context.clone(),
            load_command: spec.load_command.clone(),
        }
    }

    /// Runs the load command once, with `archive` streamed to its stdin.
    async fn run_load_command<S, B, E>(
        command: &[String],
        reference: &str,
        archive: S,
    ) -> Result<LoadOutcome, ClusterError>
    where
        S: futures_util::Stream<Item = Result<B, E>>,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let shown = command.join(" ");
        let started = Instant::now();
        let (program, args) =
            command
                .split_first()
                .ok_or_else(|| ClusterError::LoadCommandSpawn {
                    command: shown.clone(),
                    source: std::io::Error::other("the load command is empty"),
                })?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ClusterError::LoadCommandSpawn {
                command: shown.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let pump = async {
            let mut written = 0u64;
            let mut failure = None;
            let mut archive = std::pin::pin!(archive);
            while let Some(chunk) = archive.next().await {
                match chunk {
                    Ok(chunk) => {
                        if let Err(e) = stdin.write_all(chunk.as_ref()).await {
                            failure = Some(format!("writing to its stdin: {e}"));
                            break;
                        }
                        written += chunk.as_ref().len() as u64;
                    }
                    Err(e) => {
                        failure = Some(format!("reading the image export: {e}"));
                        break;
                    }
                }
            }
            drop(stdin);
            (written, failure)
        };
        let drain = async {
            let mut buf = Vec::new();
            let _ = stderr_pipe.read_to_end(&mut buf).await;
            buf
        };
        let ((written, failure), stderr) = tokio::join!(pump, drain);
        let status = child
            .wait()
            .await
            .map_err(|source| ClusterError::LoadCommandSpawn {
                command: shown.clone(),
                source,
            })?;
        let mut stderr = String::from_utf8_lossy(&stderr).into_owned();
        if let Some(f) = &failure {
            stderr.push_str(&format!("\nharness: {f}"));
        }
        if !status.success() || failure.is_some() {
            return Err(ClusterError::LoadCommand {
                command: shown,
                reference: reference.to_owned(),
                status: match status.code() {
                    Some(c) => format!("exit {c}"),
                    None => "killed by a signal".into(),
                },
                stderr,
            });
        }
        Ok(LoadOutcome::Loaded {
            bytes: written,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

impl Provider for ExistingProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind_name(&self) -> &'static str {
        "existing"
    }

    fn engine(&self) -> Option<EngineKind> {
        None
    }

    fn creates_clusters(&self) -> bool {
        false
    }

    /// A cluster harness did not make: its nodes are not harness's to read.
    async fn export_node_logs(&self, _dir: &Path) -> Result<bool, ClusterError> {
        Ok(false)
    }

    fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    async fn ensure_known(&self, reuse: bool, _exists: bool) -> Result<Ensured, ClusterError> {
        self.ensure(reuse).await
    }

    async fn ensure(&self, _reuse: bool) -> Result<Ensured, ClusterError> {
        // Nothing to create: the cluster is the user's. Reaching it is the
        // deploy stage's first call, which reports an unreachable API server.
        if !self.kubeconfig.is_file() {
            return Err(ClusterError::KubeconfigMissing {
                cluster: self.name.clone(),
                path: self.kubeconfig.clone(),
            });
        }
        Ok(Ensured {
            created: false,
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        })
    }

    async fn exists(&self) -> Result<bool, ClusterError> {
        Ok(self.kubeconfig.is_file())
    }

    async fn delete(&self) -> Result<(), ClusterError> {
        // Never delete a cluster the harness did not create.
        Ok(())
    }

    async fn nodes(&self, _docker: &Docker) -> Result<Vec<NodeContainer>, ClusterError> {
        Ok(Vec::new())
    }

    async fn deliver(
        &self,
        docker: &Docker,
        images: &[ImageRef],
        progress: Progress<'_>,
    ) -> Result<LoadReport, ClusterError> {
        let mut report = LoadReport::default();
        for image in images {
            let outcome = match &self.load_command {
                None => LoadOutcome::NotDelivered,
                Some(command) => {
                    nodes::engine_image_id(docker, &image.reference).await?;
                    let archive = docker.export_image(&image.reference);
                    Self::run_load_command(command, &image.reference, archive).await?
                }
            };
            let load = NodeLoad {
                image: image.name.clone(),
                reference: image.reference.clone(),
                node: self
                    .load_command
                    .as_ref()
                    .and_then(|c| c.first().cloned())
                    .unwrap_or_else(|| "registry".into()),
                outcome,
            };
            progress(LoadProgress::Line(&load));
            report.loads.push(load);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&[u8]],
    ) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + use<> {
        let owned: Vec<Result<Vec<u8>, std::io::Error>> =
            parts.iter().map(|p| Ok(p.to_vec())).collect();
        futures_util::stream::iter(owned)
    }

    #[test]
    fn kubeconfig_defaults_like_kubectl() {
        let home = Path::new("/home/me");
        assert_eq!(
            default_kubeconfig(None, Some(home)),
            Path::new("/home/me/.kube/config")
        );
        assert_eq!(
            default_kubeconfig(Some("/a/one:/b/two"), Some(home)),
            Path::new("/a/one")
        );
        assert_eq!(
            default_kubeconfig(Some(""), Some(home)),
            Path::new("/home/me/.kube/config")
        );
    }

    #[tokio::test]
    async fn load_command_receives_the_archive_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let command = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("cat > {}", out.display()),
        ];
        let outcome =
            ExistingProvider::run_load_command(&command, "app:1", chunks(&[b"hello ", b"archive"]))
                .await
                .unwrap();
        assert!(
            matches!(outcome, LoadOutcome::Loaded { bytes: 13, .. }),
            "{outcome:?}"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello archive");
    }

    #[tokio::test]
    async fn a_failing_load_command_is_reported_with_its_stderr() {
        let command = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "cat >/dev/null; echo 'no such cluster ci' >&2; exit 3".to_owned(),
        ];
        let err = ExistingProvider::run_load_command(&command, "app:1", chunks(&[b"x"]))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("exit 3") && msg.contains("no such cluster ci"),
            "{msg}"
        );
        assert!(err.help().contains("load_command"));
    }

    #[tokio::test]
    async fn a_missing_load_command_is_a_spawn_error() {
        let command = vec!["/nonexistent/loader".to_owned()];
        let err = ExistingProvider::run_load_command(&command, "app:1", chunks(&[b"x"]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClusterError::LoadCommandSpawn { .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn existing_cluster_is_never_deleted_and_needs_its_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("kc");
        let spec = ExistingSpec {
            kubeconfig: Some(kc.clone()),
            context: Some("ci".into()),
            load_command: None,
        };
        let p = ExistingProvider::new("ci", &spec);
        let missing = p.ensure(false).await.unwrap_err();
        assert!(
            matches!(missing, ClusterError::KubeconfigMissing { .. }),
            "{missing:?}"
        );
        assert!(
            missing
                .to_string()
                .ends_with(&format!("does not exist: {}", kc.display()))
        );
        std::fs::write(&kc, "apiVersion: v1\n").unwrap();
        let ensured = p.ensure(false).await.unwrap();
        assert!(!ensured.created);
        assert_eq!(ensured.context.as_deref(), Some("ci"));
        p.delete().await.unwrap();
        assert!(kc.exists());
    }
}
