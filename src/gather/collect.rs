//! What goes into a bundle, read from a [`Source`].
//!
//! The collection is written against a small trait so that its rules —
//! Secrets first (their values become the redactor), every container's
//! current and previous log (init containers included), healthy pods
//! marked so the size cap trims them first, one failing collector recorded
//! and never fatal, a bounded number at once — are tested on captured
//! objects; the Kubernetes adapter only lists and streams.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::bundle::BundleWriter;
use super::layout;
use super::redact::{Redactor, sanitize};
use crate::readiness::evidence::log_requests;

/// A log as it arrives.
pub type LogStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// The objects a listing read, and what it could not read: one kind that
/// fails (forbidden, an aggregated API that is down) is recorded in the
/// bundle, never the end of the listing.
#[derive(Clone, Debug, Default)]
pub struct Listed {
    pub objects: Vec<Value>,
    /// (what, why): `configmaps in fx`, `discovery of metrics.k8s.io/v1beta1`.
    pub failed: Vec<(String, String)>,
}

impl From<Vec<Value>> for Listed {
    fn from(objects: Vec<Value>) -> Self {
        Listed {
            objects,
            failed: Vec::new(),
        }
    }
}

/// Where gather reads the cluster from. Errors are messages: a failed read
/// becomes a line in the bundle's README, not a failed gather.
pub trait Source: Sync {
    /// Every object of the namespace of every listable kind, except Secrets
    /// and Events (they have their own calls), as JSON with apiVersion/kind.
    /// `Err` when nothing could be listed at all.
    fn objects(&self, namespace: &str) -> impl Future<Output = Result<Listed, String>> + Send;
    fn secrets(&self, namespace: &str) -> impl Future<Output = Result<Vec<Value>, String>> + Send;
    /// The namespace's events, as an EventList-shaped JSON value.
    fn events(&self, namespace: &str) -> impl Future<Output = Result<Value, String>> + Send;
    fn pods(&self, namespace: &str) -> impl Future<Output = Result<Vec<Pod>, String>> + Send;
    /// Cluster-scoped objects worth keeping: nodes, CRDs, what the lane applied.
    fn cluster_objects(&self) -> impl Future<Output = Result<Listed, String>> + Send;
    /// A container's log; `Ok(None)` when there is none to collect and
    /// that is no failure: the kubelet no longer keeps the previous
    /// instance of a container that restarted (it removes dead containers
    /// of a pod that completed, and then answers that it has none).
    fn log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        since: Option<Duration>,
    ) -> impl Future<Output = Result<Option<LogStream>, String>> + Send;
}

/// What to collect.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub namespaces: Vec<String>,
    /// Only logs newer than this.
    pub since: Option<Duration>,
    /// Collectors at once.
    pub concurrency: usize,
    /// The harness's own records: file name under `harness/` → content.
    pub harness_files: Vec<(String, String)>,
    /// How long one collector (a list, a log) may take. One that takes
    /// longer is recorded and what it wrote is kept, so a request that never
    /// answers (a log proxied to the kubelet of a dead node) cannot keep the
    /// bundle from being published within the gather's budget. `None`: no limit.
    pub collector_timeout: Option<Duration>,
    /// Told the collectors done of their total as they finish (at most
    /// every [`crate::throttle::PROGRESS_INTERVAL`], and the last one).
    pub progress: Option<Told>,
}

/// Hears `(done, total)` of the collectors.
#[derive(Clone)]
pub struct Told(pub std::sync::Arc<dyn Fn(usize, usize) + Send + Sync>);

impl std::fmt::Debug for Told {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Told(..)")
    }
}

/// Counts collectors done and tells, throttled.
struct Count<'a> {
    told: Option<&'a Told>,
    total: usize,
    state: std::sync::Mutex<(usize, crate::throttle::Throttle)>,
}

impl<'a> Count<'a> {
    fn new(told: Option<&'a Told>, total: usize) -> Self {
        let count = Self {
            told,
            total,
            state: std::sync::Mutex::new((
                0,
                crate::throttle::Throttle::new(crate::throttle::PROGRESS_INTERVAL),
            )),
        };
        count.tell(0);
        count
    }

    fn tell(&self, done: usize) {
        if let Some(told) = self.told {
            (told.0)(done, self.total);
        }
    }

    /// Tells the count a [`Count::one_done`] held back, if any: without
    /// it, collectors that finish within one interval of each other while
    /// another runs long (a log on its way) would show as not done until
    /// that one ends.
    fn flush(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if !state.1.flush() {
            return;
        }
        let done = state.0;
        drop(state);
        self.tell(done);
    }

    fn one_done(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.0 += 1;
        let done = state.0;
        let due = state.1.ready(std::time::Instant::now()) || done == self.total;
        drop(state);
        if due {
            self.tell(done);
        }
    }
}

/// `future`, bounded by `limit`; the error says how long it was given.
async fn bounded<T>(
    limit: Option<Duration>,
    future: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match limit {
        None => future.await,
        Some(limit) => tokio::time::timeout(limit, future)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "not finished within {}; what arrived is kept",
                    humantime::format_duration(limit)
                ))
            }),
    }
}

/// A pod whose containers are all ready and never restarted: its logs are
/// the first to be trimmed by the size cap.
fn healthy(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ready
        && status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten())
            .all(|c| c.restart_count == 0)
}

enum Job {
    Objects(String),
    Events(String),
    Log {
        namespace: String,
        pod: String,
        container: String,
        previous: bool,
        healthy: bool,
    },
    Cluster,
}

impl Job {
    /// The collector's name in the bundle's list of failures.
    fn what(&self) -> String {
        match self {
            Job::Cluster => "cluster-scoped objects".into(),
            Job::Objects(ns) => format!("objects in {ns}"),
            Job::Events(ns) => format!("events in {ns}"),
            Job::Log {
                namespace,
                pod,
                container,
                previous,
                ..
            } => format!(
                "{} log of {namespace}/{pod}/{container}",
                if *previous { "previous" } else { "current" }
            ),
        }
    }
}

/// Collects everything into `writer`. Never fails: what could not be read
/// is recorded in the bundle.
pub async fn collect<S: Source>(source: &S, request: &Request, writer: &mut BundleWriter) {
    // Secrets first: their values scrub everything written after.
    let mut values = Vec::new();
    let mut secrets = Vec::new();
    for ns in &request.namespaces {
        match bounded(request.collector_timeout, source.secrets(ns)).await {
            Ok(list) => {
                for mut secret in list {
                    values.extend(sanitize(&mut secret));
                    secrets.push(secret);
                }
            }
            Err(e) => writer.record_failure(format!("secrets in {ns}"), e),
        }
    }
    writer.set_redactor(Redactor::new(values));
    let writer: &BundleWriter = writer;
    for secret in secrets {
        if let Err(e) = writer.write_object(secret) {
            writer.record_failure("secrets", e);
        }
    }
    for (name, content) in &request.harness_files {
        if let Err(e) = writer.write_text(&Path::new(layout::HARNESS_DIR).join(name), content) {
            writer.record_failure(format!("harness/{name}"), e);
        }
    }

    let mut jobs = vec![Job::Cluster];
    for ns in &request.namespaces {
        jobs.push(Job::Objects(ns.clone()));
        jobs.push(Job::Events(ns.clone()));
        match bounded(request.collector_timeout, source.pods(ns)).await {
            Ok(pods) => {
                for pod in pods {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let healthy = healthy(&pod);
                    for req in log_requests(&pod) {
                        jobs.push(Job::Log {
                            namespace: ns.clone(),
                            pod: name.clone(),
                            container: req.container.name,
                            previous: req.previous,
                            healthy,
                        });
                    }
                }
            }
            Err(e) => writer.record_failure(format!("pods in {ns}"), e),
        }
    }
    let count = Count::new(request.progress.as_ref(), jobs.len());
    let count = &count;
    let work =
        stream::iter(jobs).for_each_concurrent(request.concurrency.max(1), |job| async move {
            let what = job.what();
            let job = async { run(source, request, writer, job).await.map_err(|(_, e)| e) };
            if let Err(e) = bounded(request.collector_timeout, job).await {
                writer.record_failure(what, e);
            }
            count.one_done();
        });
    // What the throttle held back is told once its interval has passed.
    let flush = async {
        if request.progress.is_none() {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(crate::throttle::PROGRESS_INTERVAL).await;
            count.flush();
        }
    };
    tokio::select! {
        () = work => {}
        () = flush => {}
    }
}

async fn run<S: Source>(
    source: &S,
    request: &Request,
    writer: &BundleWriter,
    job: Job,
) -> Result<(), (String, String)> {
    match job {
        Job::Cluster => {
            let listed = source
                .cluster_objects()
                .await
                .map_err(|e| ("cluster-scoped objects".to_string(), e))?;
            for (what, e) in listed.failed {
                writer.record_failure(what, e);
            }
            for object in listed.objects {
                writer
                    .write_object(object)
                    .map_err(|e| ("cluster-scoped objects".into(), e.to_string()))?;
            }
        }
        Job::Objects(ns) => {
            let what = format!("objects in {ns}");
            let listed = source.objects(&ns).await.map_err(|e| (what.clone(), e))?;
            for (what, e) in listed.failed {
                writer.record_failure(what, e);
            }
            for object in listed.objects {
                writer
                    .write_object(object)
                    .map_err(|e| (what.clone(), e.to_string()))?;
            }
        }
        Job::Events(ns) => {
            let what = format!("events in {ns}");
            let mut events = source.events(&ns).await.map_err(|e| (what.clone(), e))?;
            if let Some(items) = events.get_mut("items").and_then(Value::as_array_mut) {
                for item in items {
                    sanitize(item);
                }
            }
            let yaml =
                serde_saphyr::to_string(&events).map_err(|e| (what.clone(), e.to_string()))?;
            writer
                .write_text(&layout::events(&ns), &yaml)
                .map_err(|e| (what, e.to_string()))?;
        }
        Job::Log {
            namespace,
            pod,
            container,
            previous,
            healthy,
        } => {
            let what = format!(
                "{} log of {namespace}/{pod}/{container}",
                if previous { "previous" } else { "current" }
            );
            let Some(mut stream) = source
                .log(&namespace, &pod, &container, previous, request.since)
                .await
                .map_err(|e| (what.clone(), e))?
            else {
                return Ok(());
            };
            let mut file = writer
                .open_log(
                    &layout::log(&namespace, &pod, &container, previous),
                    healthy,
                )
                .map_err(|e| (what.clone(), e.to_string()))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| (what.clone(), e.to_string()))?;
                file.write(&chunk)
                    .map_err(|e| (what.clone(), e.to_string()))?;
            }
            file.finish().map_err(|e| (what, e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/k8s")
                .join(path),
        )
        .unwrap()
    }

    fn json(path: &str) -> Value {
        serde_json::from_str(&fixture(path)).unwrap()
    }

    /// Captured objects, served as a cluster would.
    struct Captured {
        pods: Vec<Pod>,
        secrets: Vec<Value>,
        objects: Vec<Value>,
        logs: HashMap<(String, String, bool), String>,
        fail_objects: bool,
        log_calls: Mutex<Vec<String>>,
        /// A pod whose logs wait for a permit.
        held: Option<(String, std::sync::Arc<tokio::sync::Semaphore>)>,
    }

    impl Captured {
        fn new() -> Self {
            let pods: Vec<Pod> = [
                "pod-crashloop/pod.crashloop.json",
                "pod-init-crashloop/pod.init-crash.json",
                "deploy-healthy/pod.web-57f64b4f4d-5bqnc.json",
                "pod-create-container-config-error/pod.config-error-missing-key.json",
            ]
            .iter()
            .map(|p| serde_json::from_value(json(p)).unwrap())
            .collect();
            let mut logs = HashMap::new();
            logs.insert(
                ("crashloop".into(), "app".into(), false),
                fixture("pod-crashloop/logs.current.txt"),
            );
            logs.insert(
                ("crashloop".into(), "app".into(), true),
                fixture("pod-crashloop/logs.previous.txt")
                    + "db password is value-of-a-secret-1234\n",
            );
            logs.insert(
                ("init-crash".into(), "migrate".into(), false),
                fixture("pod-init-crashloop/logs.init-migrate.current.txt"),
            );
            logs.insert(
                ("init-crash".into(), "migrate".into(), true),
                fixture("pod-init-crashloop/logs.init-migrate.previous.txt"),
            );
            let mut secret = json("pod-create-container-config-error/secret.app-secret.json");
            secret["stringData"] = serde_json::json!({"password": "value-of-a-secret-1234"});
            Captured {
                pods,
                secrets: vec![secret],
                objects: vec![
                    json("deploy-healthy/deployment.web.json"),
                    json("job-failed/job.job-fail.json"),
                ],
                logs,
                fail_objects: false,
                log_calls: Mutex::default(),
                held: None,
            }
        }
    }

    impl Source for Captured {
        async fn objects(&self, _: &str) -> Result<Listed, String> {
            if self.fail_objects {
                return Err("the server is currently unable to handle the request".into());
            }
            let mut all = self.objects.clone();
            all.extend(self.pods.iter().map(|p| {
                let mut v = serde_json::to_value(p).unwrap();
                v["apiVersion"] = "v1".into();
                v["kind"] = "Pod".into();
                v
            }));
            Ok(all.into())
        }
        async fn secrets(&self, _: &str) -> Result<Vec<Value>, String> {
            Ok(self.secrets.clone())
        }
        async fn events(&self, _: &str) -> Result<Value, String> {
            Ok(json("pod-crashloop/events.pod.crashloop.json"))
        }
        async fn pods(&self, _: &str) -> Result<Vec<Pod>, String> {
            Ok(self.pods.clone())
        }
        async fn cluster_objects(&self) -> Result<Listed, String> {
            let nodes = json("cluster/nodes.json");
            Ok(Listed::from(
                nodes["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| {
                        let mut n = n.clone();
                        n["apiVersion"] = "v1".into();
                        n["kind"] = "Node".into();
                        n
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        async fn log(
            &self,
            _: &str,
            pod: &str,
            container: &str,
            previous: bool,
            _: Option<Duration>,
        ) -> Result<Option<LogStream>, String> {
            self.log_calls
                .lock()
                .unwrap()
                .push(format!("{pod}/{container}/{previous}"));
            if let Some((held, gate)) = &self.held
                && held == pod
            {
                let _ = gate.acquire().await.unwrap();
            }
            let text = self
                .logs
                .get(&(pod.to_string(), container.to_string(), previous))
                .cloned()
                .unwrap_or_default();
            // Two chunks, to exercise the streaming path.
            let (a, b) = text.split_at(text.len() / 2);
            let chunks = vec![Ok(Bytes::from(a.to_owned())), Ok(Bytes::from(b.to_owned()))];
            Ok(Some(Box::pin(stream::iter(chunks))))
        }
    }

    fn request() -> Request {
        Request {
            namespaces: vec!["fx".into()],
            since: None,
            concurrency: 4,
            harness_files: vec![(
                "diagnosis.txt".into(),
                "datastorage: CrashLoopBackOff".into(),
            )],
            collector_timeout: None,
            progress: None,
        }
    }

    #[tokio::test]
    async fn collectors_done_are_told_up_to_their_total() {
        let out = tempfile::tempdir().unwrap();
        let source = Captured::new();
        let mut writer = BundleWriter::create(out.path(), "b", vec![]).unwrap();
        let heard = std::sync::Arc::new(Mutex::new(Vec::new()));
        let request = Request {
            progress: Some(Told({
                let heard = heard.clone();
                std::sync::Arc::new(move |done, total| heard.lock().unwrap().push((done, total)))
            })),
            ..request()
        };
        collect(&source, &request, &mut writer).await;
        let heard = heard.lock().unwrap();
        let total = heard[0].1;
        // The cluster, objects and events of fx, and every log of its pods.
        assert!(total > 3, "{heard:?}");
        assert_eq!(heard.first(), Some(&(0, total)), "told before any runs");
        assert_eq!(heard.last(), Some(&(total, total)), "and when all are done");
        assert!(heard.windows(2).all(|w| w[0].0 < w[1].0), "{heard:?}");
    }

    /// The gather frame's count while one log is on its way: every other
    /// collector is told done, though they all finished within one
    /// throttle interval of each other.
    #[tokio::test]
    async fn collectors_done_while_one_runs_long_are_told_within_an_interval() {
        let out = tempfile::tempdir().unwrap();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let source = Captured {
            held: Some(("web-57f64b4f4d-5bqnc".into(), gate.clone())),
            ..Captured::new()
        };
        let mut writer = BundleWriter::create(out.path(), "b", vec![]).unwrap();
        let heard = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (tell, mut told) = tokio::sync::watch::channel((0, 0));
        let request = Request {
            progress: Some(Told({
                let heard = heard.clone();
                std::sync::Arc::new(move |done, total| {
                    heard.lock().unwrap().push((done, total));
                    tell.send_replace((done, total));
                })
            })),
            concurrency: 64,
            ..request()
        };
        let (seen, ()) = tokio::join!(
            async {
                let all_but_one = told.wait_for(|(done, total)| done + 1 == *total);
                let seen = tokio::time::timeout(Duration::from_secs(10), all_but_one)
                    .await
                    .is_ok();
                gate.add_permits(1);
                seen
            },
            collect(&source, &request, &mut writer)
        );
        let heard = heard.lock().unwrap();
        assert!(seen, "never told all but the held log done: {heard:?}");
        let total = heard[0].1;
        assert_eq!(heard.last(), Some(&(total, total)), "{heard:?}");
    }

    #[tokio::test]
    async fn bundle_from_captured_objects() {
        let out = tempfile::tempdir().unwrap();
        let source = Captured::new();
        let mut writer = BundleWriter::create(out.path(), "b", vec![]).unwrap();
        collect(&source, &request(), &mut writer).await;
        let bundle = writer.finish(None).unwrap();
        let read = |p: &str| {
            std::fs::read_to_string(bundle.dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
        };
        // Layout.
        assert!(read("namespaces/fx/apps/v1/deployment/web.yaml").contains("name: web"));
        assert!(
            bundle
                .dir
                .join("namespaces/fx/v1/pod/crashloop.yaml")
                .is_file()
        );
        assert!(
            bundle
                .dir
                .join("cluster/v1/node/fixtures-worker.yaml")
                .is_file()
        );
        assert!(read("namespaces/fx/events.yaml").contains("BackOff"));
        assert_eq!(
            read("harness/diagnosis.txt"),
            "datastorage: CrashLoopBackOff"
        );
        // Current and previous logs, init containers included.
        assert_eq!(
            read("namespaces/fx/pods/crashloop/app/app/logs/current.log"),
            fixture("pod-crashloop/logs.current.txt")
        );
        assert!(
            read("namespaces/fx/pods/crashloop/app/app/logs/previous.log")
                .starts_with(&fixture("pod-crashloop/logs.previous.txt"))
        );
        assert_eq!(
            read("namespaces/fx/pods/init-crash/migrate/migrate/logs/previous.log"),
            fixture("pod-init-crashloop/logs.init-migrate.previous.txt")
        );
        // Redaction: the secret's value appears nowhere, not in the Secret, not in a log.
        let mut everything = String::new();
        for entry in walk(&bundle.dir) {
            everything.push_str(&std::fs::read_to_string(entry).unwrap_or_default());
        }
        assert!(
            !everything.contains("value-of-a-secret-1234"),
            "a secret value leaked"
        );
        assert!(
            !everything.contains("dmFsdWU="),
            "a base64 secret value leaked"
        );
        assert!(read("namespaces/fx/v1/secret/app-secret.yaml").contains("<redacted>"));
        assert!(
            read("namespaces/fx/pods/crashloop/app/app/logs/previous.log")
                .contains("db password is <redacted>")
        );
        assert!(bundle.failures.is_empty(), "{:?}", bundle.failures);
    }

    #[tokio::test]
    async fn a_failing_collector_is_recorded_and_the_rest_still_collected() {
        let out = tempfile::tempdir().unwrap();
        let mut source = Captured::new();
        source.fail_objects = true;
        let mut writer = BundleWriter::create(out.path(), "b", vec![]).unwrap();
        collect(&source, &request(), &mut writer).await;
        let bundle = writer.finish(None).unwrap();
        assert_eq!(bundle.failures.len(), 1);
        assert_eq!(bundle.failures[0].collector, "objects in fx");
        assert!(
            bundle
                .dir
                .join("namespaces/fx/pods/crashloop/app/app/logs/current.log")
                .is_file()
        );
        let readme = std::fs::read_to_string(bundle.dir.join("README.md")).unwrap();
        assert!(
            readme.contains("objects in fx: the server is currently unable to handle the request"),
            "{readme}"
        );
    }

    #[tokio::test]
    async fn previous_logs_are_asked_only_where_there_was_a_previous_run() {
        let out = tempfile::tempdir().unwrap();
        let source = Captured::new();
        let mut writer = BundleWriter::create(out.path(), "b", vec![]).unwrap();
        collect(&source, &request(), &mut writer).await;
        let mut calls = source.log_calls.lock().unwrap().clone();
        calls.sort();
        assert!(calls.contains(&"crashloop/app/true".to_string()));
        assert!(calls.contains(&"init-crash/migrate/true".to_string()));
        assert!(
            !calls
                .iter()
                .any(|c| c.starts_with("web-57f64b4f4d-5bqnc") && c.ends_with("true")),
            "{calls:?}"
        );
        // The healthy web pod's logs are marked for trimming first.
        let healthy_pod: Pod =
            serde_json::from_value(json("deploy-healthy/pod.web-57f64b4f4d-5bqnc.json")).unwrap();
        assert!(healthy(&healthy_pod));
        assert!(!healthy(&source.pods[0]));
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p))
            } else {
                out.push(p)
            }
        }
        out
    }
}
