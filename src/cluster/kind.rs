//! The kind provider, driven through the kind CLI.
//!
//! Every call goes through [`KindCli::run`], which pins the engine with
//! `KIND_EXPERIMENTAL_PROVIDER` (so a cluster created on Podman is never
//! looked for on Docker), closes stdin, captures stdout and stderr, and
//! retries only errors known to be transient (see [`is_transient`]) with a
//! bounded backoff. The decisions — exact-name matching of `kind get
//! clusters`, stripping a provider's banner from `kind get kubeconfig`, the
//! fix to suggest for a failure — are pure functions below.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bollard::Docker;

use super::{
    ClusterError, DEFAULT_CONTROL_PLANE_WAIT, Ensured, ImageRef, LoadReport, NodeContainer,
    Progress, Provider, nodes,
};
use crate::config::{EngineKind, KindSpec};

/// How long the API server may take to answer through a kubeconfig kept
/// from an earlier `up` before it is written again.
const KUBECONFIG_CHECK: Duration = Duration::from_secs(1);

/// The kubeconfig `up` writes for a kind cluster: `~/.kube/<cluster>-config`,
/// so lanes never fight over `~/.kube/config`.
pub fn kubeconfig_path(home: &Path, cluster: &str) -> PathBuf {
    crate::layout::kind_kubeconfig(home, cluster)
}

/// Whether `kind get clusters` output lists exactly `name` (one name per
/// line; `audit-e2e-old` is not `audit-e2e`).
pub fn lists_cluster(stdout: &str, name: &str) -> bool {
    stdout.lines().any(|line| line.trim() == name)
}

/// The kubeconfig in `kind get kubeconfig` output: anything a provider
/// prints before the first `apiVersion:` line (e.g. "enabling experimental
/// podman provider") is dropped. `None` when there is no kubeconfig at all.
pub fn strip_banner(stdout: &str) -> Option<&str> {
    let mut offset = 0;
    for line in stdout.split_inclusive('\n') {
        if line.starts_with("apiVersion:") {
            return Some(&stdout[offset..]);
        }
        offset += line.len();
    }
    None
}

/// Errors of the container runtime that go away when the same command is
/// run again (a race in the runtime, not a problem with the request).
const TRANSIENT: &[&str] = &[
    // crun under Podman, seen when several containers start at once.
    "crun: unknown version specified",
];

/// Whether a failed kind call is worth retrying.
pub fn is_transient(stderr: &str) -> bool {
    TRANSIENT.iter().any(|t| stderr.contains(t))
}

/// The fix to suggest for a failed kind call, from what kind said.
pub fn fix_for(args: &[String], stderr: &str, engine: EngineKind, cluster: &str) -> String {
    let engine = engine.as_str();
    if stderr.contains("already exist for a cluster with the name") {
        format!("reuse it (harness up --reuse) or delete it: kind delete cluster --name {cluster}")
    } else if stderr.contains("could not locate any control plane nodes")
        || stderr.contains("no nodes found for cluster")
    {
        format!("cluster `{cluster}` does not exist on {engine}: run harness up")
    } else if stderr.contains("Cannot connect to the Docker daemon")
        || stderr.contains("Cannot connect to Podman")
        || stderr.contains("failed to connect to the docker API")
    {
        format!("start {engine} (harness preflight checks it)")
    } else if stderr.contains("failed to pull image") || stderr.contains("pull access denied") {
        let image = pulled_image(stderr).unwrap_or("the node image");
        format!(
            "{image} cannot be pulled here: load it into the {engine} engine (docker load -i on an archive of it), or set cluster.kind.node_image / {} to a node image the engine has",
            super::NODE_IMAGE_ENV
        )
    } else if stderr.contains("no space left on device") {
        "free disk space (docker system prune), then run harness up again".into()
    } else if stderr.contains("address already in use")
        || stderr.contains("port is already allocated")
    {
        "a host port of the kind config is taken: free it (harness preflight shows which)".into()
    } else if args.first().map(String::as_str) == Some("create") {
        format!(
            "run `kind create cluster --retain --name {cluster}` by hand to keep the nodes, then `kind export logs --name {cluster}` shows why they failed"
        )
    } else {
        "run the same kind command by hand with `-v 3` to see more".into()
    }
}

/// The image in kind's `failed to pull image "X"`.
fn pulled_image(stderr: &str) -> Option<&str> {
    let rest = stderr.split_once("failed to pull image \"")?.1;
    rest.split_once('"').map(|(image, _)| image)
}

/// How often and how patiently transient failures are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all, the first included.
    pub attempts: u32,
    /// Wait before the second call; doubled before each further one.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait before call number `attempt` (1-based; the first has none).
    pub fn delay_before(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            Duration::ZERO
        } else {
            self.backoff * 2u32.saturating_pow(attempt - 2)
        }
    }
}

/// What a kind call printed.
#[derive(Clone, Debug)]
pub struct KindOutput {
    pub stdout: String,
    pub stderr: String,
}

/// The kind executable, with the engine pinned for every call.
#[derive(Clone, Debug)]
pub struct KindCli {
    binary: PathBuf,
    engine: EngineKind,
    retry: RetryPolicy,
}

impl KindCli {
    /// `kind` from PATH.
    pub fn new(engine: EngineKind) -> KindCli {
        KindCli {
            binary: PathBuf::from("kind"),
            engine,
            retry: RetryPolicy::default(),
        }
    }

    /// Another kind executable (tests use a stand-in).
    pub fn with_binary(mut self, binary: impl Into<PathBuf>) -> KindCli {
        self.binary = binary.into();
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> KindCli {
        self.retry = retry;
        self
    }

    pub fn engine(&self) -> EngineKind {
        self.engine
    }

    /// Runs `kind <args>`; `cluster` names the cluster in suggested fixes.
    /// Transient failures are retried; any other non-zero exit is a
    /// [`ClusterError::Kind`] carrying kind's stderr and a fix. There is no
    /// deadline here: callers put one around it, and dropping the future
    /// kills kind (`kill_on_drop`).
    pub async fn run(&self, args: &[String], cluster: &str) -> Result<KindOutput, ClusterError> {
        let mut attempt = 1;
        loop {
            let out = tokio::process::Command::new(&self.binary)
                .args(args)
                .env("KIND_EXPERIMENTAL_PROVIDER", self.engine.as_str())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|source| ClusterError::KindMissing {
                    binary: self.binary.clone(),
                    source,
                })?;
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.status.success() {
                return Ok(KindOutput { stdout, stderr });
            }
            if attempt < self.retry.attempts && is_transient(&stderr) {
                attempt += 1;
                tokio::time::sleep(self.retry.delay_before(attempt)).await;
                continue;
            }
            let status = match out.status.code() {
                Some(code) => format!("exit {code}"),
                None => "killed by a signal".into(),
            };
            return Err(ClusterError::Kind {
                command: format!("kind {}", args.join(" ")),
                status,
                fix: fix_for(args, &stderr, self.engine, cluster),
                stderr,
            });
        }
    }
}

fn strings<const N: usize>(args: [&str; N]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A kind cluster.
#[derive(Clone, Debug)]
pub struct KindProvider {
    cli: KindCli,
    name: String,
    config: Option<PathBuf>,
    node_image: Option<String>,
    kubeconfig: PathBuf,
    wait: Duration,
    /// The nodes' inventories, being asked ahead of the load
    /// ([`KindProvider::look_ahead`]); shared by the provider's clones.
    ahead: Slot<Result<nodes::LookedAhead, ClusterError>>,
    /// Whether the kubeconfig written before still reaches the cluster,
    /// being asked ahead of the cluster phase.
    answers_ahead: Slot<bool>,
}

type Slot<T> = std::sync::Arc<std::sync::Mutex<Option<super::Asked<T>>>>;

/// Whether the kubeconfig at `path` reaches a cluster that answers.
async fn answers(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    let access = crate::k8s::ClusterAccess {
        kubeconfig: path.to_path_buf(),
        context: None,
    };
    let asked = async {
        let client = crate::k8s::connect(&access).await.ok()?;
        client.apiserver_version().await.ok()
    };
    matches!(
        tokio::time::timeout(KUBECONFIG_CHECK, asked).await,
        Ok(Some(_))
    )
}

/// The answer in `slot`, once: `None` when no look was started (or it was
/// stopped).
async fn take<T: Send + 'static>(slot: &Slot<T>) -> Option<T> {
    let mut asked = slot.lock().unwrap_or_else(|e| e.into_inner()).take()?;
    asked.answer().await
}

impl KindProvider {
    pub fn new(cli: KindCli, name: &str, spec: &KindSpec, kubeconfig: PathBuf) -> KindProvider {
        KindProvider {
            cli,
            name: name.to_owned(),
            config: spec.config.clone(),
            node_image: spec.node_image.clone(),
            kubeconfig,
            wait: DEFAULT_CONTROL_PLANE_WAIT,
            ahead: Default::default(),
            answers_ahead: Default::default(),
        }
    }

    /// Starts asking the cluster's nodes what images they hold, through
    /// `docker`, while the run does other things: the next
    /// [`Provider::deliver`] compares with that answer instead of asking
    /// (0.1–0.2 s of `docker exec` on a second `up`). A look that fails is
    /// forgotten, and the load asks as always. Whether the kubeconfig
    /// written before still reaches the cluster is asked at the same time,
    /// for the next [`Provider::ensure_known`] of a cluster that exists.
    pub fn look_ahead(&self, docker: Docker) {
        let answers = super::Asked::start({
            let kubeconfig = self.kubeconfig.clone();
            async move { answers(&kubeconfig).await }
        });
        *self.answers_ahead.lock().unwrap_or_else(|e| e.into_inner()) = Some(answers);
        let name = self.name.clone();
        let looked = super::Asked::start(async move {
            let docker =
                docker
                    .negotiate_version()
                    .await
                    .map_err(|source| ClusterError::Engine {
                        what: "negotiate the API version".into(),
                        source,
                    })?;
            nodes::LookedAhead::look(&docker, &name).await
        });
        *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) = Some(looked);
    }

    /// [`Provider::exists`] for a cluster an earlier `up` recorded: the
    /// Docker engine is asked first whether it holds a container (running
    /// or not) carrying kind's label for this cluster, which is exactly
    /// what makes `kind get clusters` list it, in milliseconds instead of
    /// kind's 50 (a `docker ps` of its own). Only a yes is trusted; anything
    /// else (another engine, one that does not answer within a second) is
    /// asked of kind.
    pub async fn recorded_exists(&self) -> Result<bool, ClusterError> {
        if self.labelled_containers().await {
            return Ok(true);
        }
        self.exists().await
    }

    async fn labelled_containers(&self) -> bool {
        if self.cli.engine != EngineKind::Docker {
            return false;
        }
        let endpoint = crate::engine::endpoint_from_env(EngineKind::Docker);
        let Ok(docker) = crate::engine::client(&endpoint) else {
            return false;
        };
        let asked = async {
            let docker = docker.negotiate_version().await.ok()?;
            nodes::labelled(&docker, &self.name, true).await.ok()
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), asked).await,
            Ok(Some(containers)) if !containers.is_empty()
        )
    }

    /// What [`KindProvider::look_ahead`] found, once; `None` without one,
    /// or when it failed.
    async fn looked(&self) -> Option<nodes::LookedAhead> {
        take(&self.ahead).await?.ok()
    }

    /// How long `kind create cluster --wait` waits for the control plane
    /// (only the control plane: the harness's readiness stage waits on the rest).
    pub fn with_wait(mut self, wait: Duration) -> KindProvider {
        self.wait = wait;
        self
    }

    pub fn cli(&self) -> &KindCli {
        &self.cli
    }

    /// The arguments of `kind create cluster`.
    pub fn create_args(&self) -> Vec<String> {
        let mut args = strings(["create", "cluster", "--name"]);
        args.push(self.name.clone());
        if let Some(config) = &self.config {
            args.push("--config".into());
            args.push(config.display().to_string());
        }
        if let Some(image) = &self.node_image {
            args.push("--image".into());
            args.push(image.clone());
        }
        args.push("--kubeconfig".into());
        args.push(self.kubeconfig.display().to_string());
        args.push("--wait".into());
        // Go's time.ParseDuration form, which kind's flag parses.
        args.push(format!("{}s", self.wait.as_secs()));
        args
    }

    /// Whether the kubeconfig written before (by `up`, for this cluster)
    /// exists and the API server answers through it, within a second. A
    /// cluster made again under the same name has new certificates, and
    /// likely a new port: its old kubeconfig does not answer.
    pub async fn kubeconfig_answers(&self) -> bool {
        answers(&self.kubeconfig).await
    }

    /// Writes the cluster's kubeconfig from `kind get kubeconfig` (used when
    /// reusing a cluster, whose kubeconfig file may be gone).
    pub async fn write_kubeconfig(&self) -> Result<(), ClusterError> {
        let mut args = strings(["get", "kubeconfig", "--name"]);
        args.push(self.name.clone());
        let out = self.cli.run(&args, &self.name).await?;
        let Some(config) = strip_banner(&out.stdout) else {
            return Err(ClusterError::Kind {
                command: format!("kind {}", args.join(" ")),
                status: "exit 0 without a kubeconfig".into(),
                stderr: format!("{}{}", out.stderr, out.stdout),
                fix: format!("check `kind get kubeconfig --name {}` by hand", self.name),
            });
        };
        write_private(&self.kubeconfig, config.as_bytes()).map_err(|source| {
            ClusterError::Kubeconfig {
                path: self.kubeconfig.clone(),
                source,
            }
        })
    }
}

/// Writes a file readable by its owner only, atomically (temp + rename), so
/// a reader never sees half a kubeconfig.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Provider for KindProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind_name(&self) -> &'static str {
        "kind"
    }

    fn engine(&self) -> Option<EngineKind> {
        Some(self.cli.engine())
    }

    fn creates_clusters(&self) -> bool {
        true
    }

    /// `kind export logs`: per node the journal, kubelet and containerd
    /// logs and the pods' logs. kind exits 1 when one of its own
    /// collectors fails although it wrote the rest (no `crictl` in some
    /// node images): the error says so, and what it wrote stays.
    async fn export_node_logs(&self, dir: &Path) -> Result<bool, ClusterError> {
        let args = vec![
            "export".to_string(),
            "logs".into(),
            dir.display().to_string(),
            "--name".into(),
            self.name.clone(),
        ];
        self.cli.run(&args, &self.name).await.map(|_| true)
    }

    fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    fn context(&self) -> Option<&str> {
        // kind sets the current context of the file it writes.
        None
    }

    async fn ensure(&self, reuse: bool) -> Result<Ensured, ClusterError> {
        self.ensure_known(reuse, self.exists().await?).await
    }

    async fn ensure_known(&self, reuse: bool, exists: bool) -> Result<Ensured, ClusterError> {
        if exists {
            if !reuse {
                return Err(ClusterError::AlreadyExists {
                    name: self.name.clone(),
                });
            }
            // `kind get kubeconfig` reads it out of the node (0.4 s of a
            // second `up`): the one written before is kept while it works.
            let answers = match take(&self.answers_ahead).await {
                Some(answers) => answers,
                None => self.kubeconfig_answers().await,
            };
            if !answers {
                self.write_kubeconfig().await?;
            }
            return Ok(Ensured {
                created: false,
                kubeconfig: self.kubeconfig.clone(),
                context: None,
            });
        }
        if let Some(dir) = self.kubeconfig.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ClusterError::Kubeconfig {
                path: self.kubeconfig.clone(),
                source,
            })?;
        }
        self.cli.run(&self.create_args(), &self.name).await?;
        Ok(Ensured {
            created: true,
            kubeconfig: self.kubeconfig.clone(),
            context: None,
        })
    }

    async fn exists(&self) -> Result<bool, ClusterError> {
        let out = self
            .cli
            .run(&strings(["get", "clusters"]), &self.name)
            .await?;
        Ok(lists_cluster(&out.stdout, &self.name))
    }

    async fn delete(&self) -> Result<(), ClusterError> {
        let mut args = strings(["delete", "cluster", "--name"]);
        args.push(self.name.clone());
        // Only our kubeconfig loses the context; ~/.kube/config is left alone.
        args.push("--kubeconfig".into());
        args.push(self.kubeconfig.display().to_string());
        self.cli.run(&args, &self.name).await?;
        match std::fs::remove_file(&self.kubeconfig) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ClusterError::Kubeconfig {
                path: self.kubeconfig.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    async fn nodes(&self, docker: &Docker) -> Result<Vec<NodeContainer>, ClusterError> {
        nodes::kind_nodes(docker, &self.name).await
    }

    async fn deliver(
        &self,
        docker: &Docker,
        images: &[ImageRef],
        progress: Progress<'_>,
    ) -> Result<LoadReport, ClusterError> {
        // Nothing to load: no reason to ask the engine for the nodes.
        if images.is_empty() {
            return Ok(LoadReport::default());
        }
        let looked = match self.looked().await {
            Some(looked) => looked,
            None => nodes::LookedAhead::nothing(self.nodes(docker).await?),
        };
        nodes::load_into_nodes(docker, &looked.nodes, images, &looked, progress).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_CLUSTERS: &str =
        include_str!("../../tests/fixtures/k8s/kind-cli/get-clusters.stdout.txt");
    const KUBECONFIG: &str =
        include_str!("../../tests/fixtures/k8s/kind-cli/get-kubeconfig.stdout.txt");

    #[test]
    fn cluster_names_match_exactly() {
        let listed = "audit-e2e-old\nmy-audit-e2e\naudit\n";
        for (name, want) in [
            ("audit-e2e", false),
            ("audit-e2e-old", true),
            ("audit", true),
            ("audit-e", false),
        ] {
            assert_eq!(lists_cluster(listed, name), want, "{name}");
        }
        // The real capture: three clusters on one host.
        assert!(lists_cluster(GET_CLUSTERS, "research"));
        assert!(lists_cluster(GET_CLUSTERS, "research2"));
        assert!(!lists_cluster(GET_CLUSTERS, "research3"));
        assert!(!lists_cluster(GET_CLUSTERS, "fixture"));
        // kind prints "No kind clusters found." on stderr, nothing on stdout.
        assert!(!lists_cluster("", "kind"));
    }

    #[test]
    fn banner_is_stripped_before_api_version() {
        assert_eq!(strip_banner(KUBECONFIG), Some(KUBECONFIG));
        let with_banner = format!("enabling experimental podman provider\n{KUBECONFIG}");
        assert_eq!(strip_banner(&with_banner), Some(KUBECONFIG));
        assert_eq!(strip_banner("ERROR: nothing\n"), None);
        assert_eq!(strip_banner(""), None);
        // `apiVersion:` must start a line: a banner that mentions it is no kubeconfig.
        assert_eq!(strip_banner("note: apiVersion: v1\n"), None);
    }

    #[test]
    fn only_known_runtime_races_are_transient() {
        assert!(is_transient(
            "ERROR: failed to create cluster: command \"podman run ...\" failed with error: exit status 126\nError: crun: unknown version specified: OCI runtime error\n"
        ));
        for stderr in [
            include_str!(
                "../../tests/fixtures/k8s/kind-cli/get-kubeconfig-missing-cluster.stderr.txt"
            ),
            "ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"x\"",
            "",
        ] {
            assert!(!is_transient(stderr), "{stderr}");
        }
    }

    #[test]
    fn retry_backoff_doubles() {
        let p = RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(100),
        };
        let delays: Vec<u64> = (1..=4)
            .map(|a| p.delay_before(a).as_millis() as u64)
            .collect();
        assert_eq!(delays, [0, 100, 200, 400]);
    }

    #[test]
    fn fixes_name_the_cause() {
        let e = EngineKind::Podman;
        let create = strings(["create", "cluster"]);
        let get = strings(["get", "kubeconfig"]);
        let missing = include_str!(
            "../../tests/fixtures/k8s/kind-cli/get-kubeconfig-missing-cluster.stderr.txt"
        );
        assert_eq!(
            fix_for(&get, missing, e, "x"),
            "cluster `x` does not exist on podman: run harness up"
        );
        assert!(
            fix_for(
                &create,
                "node(s) already exist for a cluster with the name \"x\"",
                e,
                "x"
            )
            .contains("kind delete cluster --name x")
        );
        assert!(fix_for(&create, "weird", e, "x").contains("--retain"));
        let pulled =
            include_str!("../../tests/fixtures/k8s/kind-cli/create-cluster-pull-failed.stderr.txt");
        assert_eq!(
            fix_for(&create, pulled, EngineKind::Docker, "x"),
            "kindest/node:v1.33.1 cannot be pulled here: load it into the docker engine (docker load -i on an archive of it), or set cluster.kind.node_image / HARNESS_KIND_NODE_IMAGE to a node image the engine has"
        );
        assert!(fix_for(&get, "weird", e, "x").contains("-v 3"));
    }

    #[test]
    fn create_args_carry_every_setting() {
        let spec = KindSpec {
            config: Some("/p/kind.yaml".into()),
            node_image: Some("kindest/node:v1.33.1".into()),
            engine: EngineKind::Docker,
            min_version: semver::Version::new(0, 20, 0),
        };
        let p = KindProvider::new(
            KindCli::new(EngineKind::Docker),
            "audit-e2e",
            &spec,
            "/h/.kube/audit-e2e-config".into(),
        )
        .with_wait(Duration::from_secs(90));
        assert_eq!(
            p.create_args().join(" "),
            "create cluster --name audit-e2e --config /p/kind.yaml --image kindest/node:v1.33.1 --kubeconfig /h/.kube/audit-e2e-config --wait 90s"
        );
        let bare = KindSpec {
            config: None,
            node_image: None,
            ..spec
        };
        let p = KindProvider::new(KindCli::new(EngineKind::Docker), "a", &bare, "/k".into());
        assert_eq!(
            p.create_args().join(" "),
            "create cluster --name a --kubeconfig /k --wait 120s"
        );
    }

    #[test]
    fn kubeconfig_goes_under_dot_kube() {
        assert_eq!(
            kubeconfig_path(Path::new("/home/me"), "audit-e2e"),
            Path::new("/home/me/.kube/audit-e2e-config")
        );
    }

    #[test]
    fn private_write_is_atomic_and_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/k-config");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k-config")]);
    }
}
