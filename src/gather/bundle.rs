//! Writing a bundle so that it is either complete or absent.
//!
//! Everything is written under `<out>/.<name>.partial/`. [`BundleWriter::finish`]
//! applies the size cap, writes the README and `SHA256SUMS`, renames the
//! directory to `<out>/<name>/` and archives it to `<out>/<name>.tar.gz`
//! (through a `.partial` file renamed last). A gather that never finishes
//! (cancelled by an interrupt or its budget) removes its partial directory
//! when the writer is dropped; only a process killed outright leaves one,
//! hidden, and the next gather of that name removes it. Nothing under the
//! final name is ever half-written.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use super::layout;
use super::redact::{Redactor, sanitize};

/// Why a bundle could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error("cannot create the bundle directory {}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {} in the bundle", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("a bundle named {} already exists; remove it or choose another --out", .path.display())]
    Exists { path: PathBuf },
    #[error("cannot archive the bundle to {}", .path.display())]
    Archive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A bundle that cannot be written is a gather failure (8).
impl crate::failure::Failure for GatherError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            GatherError::Create { .. }
            | GatherError::Write { .. }
            | GatherError::Exists { .. }
            | GatherError::Archive { .. } => crate::exit::Exit::Gather,
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            // The message says what to do.
            GatherError::Exists { .. } => None,
            GatherError::Create { path, .. }
            | GatherError::Write { path, .. }
            | GatherError::Archive { path, .. } => Some(format!(
                "check that {} is writable and has free space (or choose another --out)",
                path.parent().unwrap_or(path).display()
            )),
        }
    }
}

/// A collector that failed; recorded in the bundle, never fatal.
#[derive(Clone, Debug, Serialize)]
pub struct CollectorFailure {
    pub collector: String,
    pub error: String,
}

/// A finished bundle.
#[derive(Clone, Debug, Serialize)]
pub struct Bundle {
    pub dir: PathBuf,
    pub archive: PathBuf,
    /// Bytes of all files after trimming.
    pub bytes: u64,
    pub files: usize,
    /// Logs cut to fit the size cap, with the bytes removed from each.
    pub trimmed: Vec<(PathBuf, u64)>,
    pub failures: Vec<CollectorFailure>,
}

#[derive(Clone, Copy, Debug)]
struct LogInfo {
    /// Logs of healthy pods are trimmed first.
    healthy: bool,
}

/// A log being written into the bundle.
pub struct LogFile {
    rel: PathBuf,
    writer: super::redact::ScrubWriter<BufWriter<File>>,
}

impl LogFile {
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), GatherError> {
        self.writer
            .write_all(chunk)
            .map_err(|source| GatherError::Write {
                path: self.rel.clone(),
                source,
            })
    }

    pub fn finish(self) -> Result<(), GatherError> {
        let rel = self.rel;
        self.writer
            .finish()
            .map(drop)
            .map_err(|source| GatherError::Write { path: rel, source })
    }
}

/// Collects files into a staging directory; see the module doc.
pub struct BundleWriter {
    out: PathBuf,
    name: String,
    staging: PathBuf,
    redactor: Redactor,
    logs: Mutex<BTreeMap<PathBuf, LogInfo>>,
    failures: Mutex<Vec<CollectorFailure>>,
    /// Lines for the README's header (lane, run id, when).
    about: Vec<String>,
    /// Markdown that opens the README: how the run went.
    summary: Option<String>,
}

impl BundleWriter {
    /// Starts a bundle `<out>/<name>`. A stale partial of the same name
    /// (from an interrupted gather) is removed first.
    pub fn create(out: &Path, name: &str, about: Vec<String>) -> Result<Self, GatherError> {
        let final_dir = out.join(name);
        if final_dir.exists() {
            return Err(GatherError::Exists { path: final_dir });
        }
        let staging = out.join(format!(".{name}.partial"));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(|source| GatherError::Create {
                path: staging.clone(),
                source,
            })?;
        }
        fs::create_dir_all(&staging).map_err(|source| GatherError::Create {
            path: staging.clone(),
            source,
        })?;
        Ok(Self {
            out: out.to_path_buf(),
            name: name.to_owned(),
            staging,
            redactor: Redactor::new(Vec::new()),
            logs: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(Vec::new()),
            about,
            summary: None,
        })
    }

    /// The summary that opens the README (scrubbed like every file).
    pub fn set_summary(&mut self, markdown: String) {
        self.summary = Some(markdown);
    }

    /// Secret values to scrub from everything written after this call.
    /// Collect Secrets first (see [`sanitize`]), then set the redactor.
    pub fn set_redactor(&mut self, redactor: Redactor) {
        self.redactor = redactor;
    }

    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    fn open(&self, rel: &Path) -> Result<(PathBuf, File), GatherError> {
        let path = self.staging.join(rel);
        let err = |source| GatherError::Write {
            path: rel.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(err)?;
        }
        let file = File::create(&path).map_err(err)?;
        Ok((path, file))
    }

    /// Writes text (scrubbed) at `rel`.
    pub fn write_text(&self, rel: &Path, text: &str) -> Result<(), GatherError> {
        let (_, mut file) = self.open(rel)?;
        file.write_all(self.redactor.text(text).as_bytes())
            .map_err(|source| GatherError::Write {
                path: rel.to_path_buf(),
                source,
            })
    }

    /// Writes one object as YAML at its layout path, sanitized and scrubbed.
    /// Returns the path it went to.
    pub fn write_object(&self, mut object: Value) -> Result<PathBuf, GatherError> {
        sanitize(&mut object);
        let field = |p: &str| {
            object
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let rel = layout::object(
            &field("/apiVersion"),
            &field("/kind"),
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
            &field("/metadata/name"),
        );
        let yaml = serde_saphyr::to_string(&object).map_err(|e| GatherError::Write {
            path: rel.clone(),
            source: io::Error::other(e.to_string()),
        })?;
        self.write_text(&rel, &yaml)?;
        Ok(rel)
    }

    /// Streams `reader` into the bundle at `rel`, scrubbing as it goes; not
    /// a log, so the size cap never cuts it.
    pub fn write_stream(&self, rel: &Path, reader: impl Read) -> Result<u64, GatherError> {
        let err = |source| GatherError::Write {
            path: rel.to_path_buf(),
            source,
        };
        let (_, file) = self.open(rel)?;
        let mut writer = self.redactor.writer(BufWriter::new(file));
        let mut reader = reader;
        let bytes = io::copy(&mut reader, &mut writer).map_err(err)?;
        writer.finish().map_err(err)?;
        Ok(bytes)
    }

    /// Streams a log into the bundle, scrubbing as it goes.
    pub fn write_log(
        &self,
        rel: &Path,
        reader: impl Read,
        healthy: bool,
    ) -> Result<u64, GatherError> {
        let mut log = self.open_log(rel, healthy)?;
        let mut reader = reader;
        let bytes =
            io::copy(&mut reader, &mut log.writer).map_err(|source| GatherError::Write {
                path: rel.to_path_buf(),
                source,
            })?;
        log.finish()?;
        Ok(bytes)
    }

    /// A log to be written chunk by chunk (from an async stream); scrubbed
    /// as it goes. Call [`LogFile::finish`].
    pub fn open_log(&self, rel: &Path, healthy: bool) -> Result<LogFile, GatherError> {
        let (_, file) = self.open(rel)?;
        self.logs
            .lock()
            .expect("log index lock")
            .insert(rel.to_path_buf(), LogInfo { healthy });
        Ok(LogFile {
            rel: rel.to_path_buf(),
            writer: self.redactor.writer(BufWriter::new(file)),
        })
    }

    /// Rewrites every file below `rel` (written by another tool, e.g. kind)
    /// through the redactor, so nothing in the bundle escapes scrubbing.
    pub fn scrub_tree(&self, rel: &Path) -> Result<(), GatherError> {
        let root = self.staging.join(rel);
        if !root.exists() || self.redactor.is_empty() {
            return Ok(());
        }
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| GatherError::Write { path, source }
        };
        for (file, _) in file_sizes(&root).map_err(err(rel))? {
            let path = root.join(&file);
            let tmp = path.with_extension("scrub.partial");
            let reader = File::open(&path).map_err(err(&file))?;
            let mut writer = self
                .redactor
                .writer(BufWriter::new(File::create(&tmp).map_err(err(&file))?));
            io::copy(&mut io::BufReader::new(reader), &mut writer).map_err(err(&file))?;
            writer.finish().map_err(err(&file))?;
            fs::rename(&tmp, &path).map_err(err(&file))?;
        }
        Ok(())
    }

    /// Records a collector that failed; the bundle says so.
    pub fn record_failure(&self, collector: impl Into<String>, error: impl std::fmt::Display) {
        self.failures
            .lock()
            .expect("failure list lock")
            .push(CollectorFailure {
                collector: collector.into(),
                error: error.to_string(),
            });
    }

    /// Caps, indexes, checksums, publishes and archives the bundle.
    pub fn finish(self, cap: Option<u64>) -> Result<Bundle, GatherError> {
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| GatherError::Write { path, source }
        };
        let logs = std::mem::take(&mut *self.logs.lock().expect("log index lock"));
        let failures = std::mem::take(&mut *self.failures.lock().expect("failure list lock"));
        // The collector errors first: the cap covers them too.
        if !failures.is_empty() {
            let text: String = failures
                .iter()
                .map(|f| format!("{}: {}\n", f.collector, f.error))
                .collect();
            let text = self.redactor.text(&text);
            let rel = Path::new(layout::HARNESS_DIR).join("collector-errors.txt");
            fs::create_dir_all(self.staging.join(layout::HARNESS_DIR)).map_err(write_err(&rel))?;
            fs::write(self.staging.join(&rel), text).map_err(write_err(&rel))?;
        }
        // The cap covers the whole bundle, README.md and SHA256SUMS
        // included. The README lists what was cut, so it grows as logs are
        // cut: measure, cut, and measure again until the bundle fits or
        // nothing more may be cut.
        let mut trimmed: Vec<(PathBuf, u64)> = Vec::new();
        if let Some(cap) = cap {
            for _ in 0..4 {
                let sizes = file_sizes(&self.staging).map_err(write_err(&self.staging))?;
                let readme = readme(&self.head(), &self.staging, &trimmed, &failures, Some(cap))
                    .map_err(write_err(Path::new("README.md")))?;
                let total = sizes.values().sum::<u64>()
                    + readme.len() as u64
                    + checksums_len(
                        sizes
                            .keys()
                            .map(PathBuf::as_path)
                            .chain([Path::new("README.md")]),
                    );
                let plan = trim_plan(&sizes, &logs, total.saturating_sub(cap));
                if plan.is_empty() {
                    break;
                }
                for (rel, cut) in plan {
                    trim_head(&self.staging.join(&rel), cut).map_err(write_err(&rel))?;
                    match trimmed.iter_mut().find(|(r, _)| *r == rel) {
                        Some((_, total_cut)) => *total_cut += cut,
                        None => trimmed.push((rel, cut)),
                    }
                }
            }
        }
        let readme = readme(&self.head(), &self.staging, &trimmed, &failures, cap)
            .map_err(write_err(Path::new("README.md")))?;
        fs::write(self.staging.join("README.md"), readme)
            .map_err(write_err(Path::new("README.md")))?;
        let sums = checksums(&self.staging).map_err(write_err(Path::new("SHA256SUMS")))?;
        fs::write(self.staging.join("SHA256SUMS"), &sums)
            .map_err(write_err(Path::new("SHA256SUMS")))?;
        let sizes = file_sizes(&self.staging).map_err(write_err(&self.staging))?;
        let final_dir = self.out.join(&self.name);
        if final_dir.exists() {
            return Err(GatherError::Exists { path: final_dir });
        }
        fs::rename(&self.staging, &final_dir).map_err(|source| GatherError::Write {
            path: final_dir.clone(),
            source,
        })?;
        let archive = self.out.join(format!("{}.tar.gz", self.name));
        archive_dir(&final_dir, &self.name, &archive).map_err(|source| GatherError::Archive {
            path: archive.clone(),
            source,
        })?;
        Ok(Bundle {
            dir: final_dir,
            archive,
            bytes: sizes.values().sum(),
            files: sizes.len(),
            trimmed,
            failures,
        })
    }
}

impl BundleWriter {
    /// The README's opening: the about lines and the summary, scrubbed.
    fn head(&self) -> Head {
        Head {
            about: self.about.iter().map(|l| self.redactor.text(l)).collect(),
            summary: self.summary.as_deref().map(|s| self.redactor.text(s)),
        }
    }
}

/// What opens the README.
struct Head {
    about: Vec<String>,
    summary: Option<String>,
}

/// A bundle that was never finished — its gather cancelled by an interrupt
/// or its budget, or failed — leaves nothing behind: the staging directory
/// goes with the writer. (After `finish`, it has been renamed away.)
impl Drop for BundleWriter {
    fn drop(&mut self) {
        if self.staging.exists() {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Every file below `root`, by relative path, with its size.
fn file_sizes(root: &Path) -> io::Result<BTreeMap<PathBuf, u64>> {
    let mut sizes = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                sizes.insert(rel, meta.len());
            }
        }
    }
    Ok(sizes)
}

/// The marker left at the top of a trimmed log.
pub const TRIM_MARKER: &str = "[harness: earlier lines trimmed to fit the bundle size cap]\n";

/// Which logs to cut, and by how many bytes from their start, to remove
/// `excess` bytes: healthy pods' logs first, then the others, largest first
/// within each group. A log keeps at least its last 4 KiB, where the
/// interesting end of a crash usually is. Pure, so the policy is tested alone.
fn trim_plan(
    sizes: &BTreeMap<PathBuf, u64>,
    logs: &BTreeMap<PathBuf, LogInfo>,
    excess: u64,
) -> Vec<(PathBuf, u64)> {
    const KEEP: u64 = 4096;
    let mut candidates: Vec<(&PathBuf, bool, u64)> = logs
        .iter()
        .filter_map(|(rel, info)| sizes.get(rel).map(|&size| (rel, info.healthy, size)))
        .filter(|(_, _, size)| *size > KEEP)
        .collect();
    // Healthy first, then by size descending; the path breaks ties stably.
    candidates.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)));
    let mut left = excess;
    let mut plan = Vec::new();
    for (rel, _, size) in candidates {
        if left == 0 {
            break;
        }
        // The marker adds bytes back; cut enough to pay for it too.
        let want = left + TRIM_MARKER.len() as u64;
        let cut = want.min(size - KEEP);
        if cut <= TRIM_MARKER.len() as u64 {
            continue;
        }
        plan.push((rel.clone(), cut));
        left = left.saturating_sub(cut - TRIM_MARKER.len() as u64);
    }
    plan
}

/// Removes the first `cut` bytes of a file, leaving the marker in their place.
fn trim_head(path: &Path, cut: u64) -> io::Result<()> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(cut))?;
    let tmp = path.with_extension("log.trim");
    {
        let mut out = BufWriter::new(File::create(&tmp)?);
        out.write_all(TRIM_MARKER.as_bytes())?;
        io::copy(&mut file, &mut out)?;
        out.flush()?;
    }
    fs::rename(tmp, path)
}

/// The length of the SHA256SUMS that lists `files`: a 64-digit digest, two
/// spaces, the path and a newline per file.
fn checksums_len<'a>(files: impl Iterator<Item = &'a Path>) -> u64 {
    files
        .map(|rel| 64 + 2 + rel.display().to_string().len() as u64 + 1)
        .sum()
}

/// `sha256sum`-compatible lines for every file, sorted by path.
fn checksums(root: &Path) -> io::Result<String> {
    let mut out = String::new();
    for rel in file_sizes(root)?.keys() {
        let digest = crate::digest::sha256_hex(File::open(root.join(rel))?)?;
        out.push_str(&format!("{digest}  {}\n", rel.display()));
    }
    Ok(out)
}

fn readme(
    head: &Head,
    root: &Path,
    trimmed: &[(PathBuf, u64)],
    failures: &[CollectorFailure],
    cap: Option<u64>,
) -> io::Result<String> {
    let sizes = file_sizes(root)?;
    let mut sections: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for (rel, size) in &sizes {
        let mut parts = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        let first = parts.next().unwrap_or_default();
        let key = match first.as_str() {
            "namespaces" => format!("namespaces/{}/", parts.next().unwrap_or_default()),
            other
                if sizes
                    .keys()
                    .any(|k| k.starts_with(other) && k.as_path() != Path::new(other)) =>
            {
                format!("{other}/")
            }
            other => other.to_owned(),
        };
        let entry = sections.entry(key).or_default();
        entry.0 += 1;
        entry.1 += size;
    }
    let mut text = String::from("# harness must-gather bundle\n\n");
    if let Some(summary) = &head.summary {
        text.push_str(summary);
        text.push_str("\n## Collected\n\n");
    }
    for line in &head.about {
        text.push_str(&format!("- {line}\n"));
    }
    text.push_str(
        "\n## Layout\n\n\
         - `namespaces/<ns>/<apiVersion>/<kind>/<name>.yaml`: every object of the namespace (crust-gather layout)\n\
         - `namespaces/<ns>/events.yaml`: the namespace's events\n\
         - `namespaces/<ns>/pods/<pod>/<container>/<container>/logs/{current,previous}.log`: container logs, init containers included (oc adm inspect layout)\n\
         - `cluster/<apiVersion>/<kind>/<name>.yaml`: cluster-scoped objects (nodes, CRDs, what the lane applied)\n\
         - `harness/`: the run's story: its event stream (`events.jsonl`, the JSON lines of `--output json`, up to the gather), \
         the report as it stood then (`report.txt`, `summary.json`; `harness report <bundle>` prints it again), \
         the infrastructure and deploy timelines, the suites' results and merged JUnit, the diagnosis of every component \
         at gather time (`diagnosis.txt`, `diagnosis.json`) and the collectors that failed\n\
         - `kind/`: the kind node logs (journal, kubelet, containerd), as `kind export logs` collects them\n\
         - `SHA256SUMS`: checksums of every other file (`sha256sum -c SHA256SUMS`)\n\n\
         Secret values are replaced by `<redacted>`, and known secret values are scrubbed from every file, logs included.\n\
         `managedFields` are stripped.\n\n## Contents\n\n| path | files | bytes |\n|---|---:|---:|\n",
    );
    for (section, (files, bytes)) in &sections {
        text.push_str(&format!("| `{section}` | {files} | {bytes} |\n"));
    }
    if let Some(cap) = cap {
        text.push_str(&format!("\n## Size cap\n\nCapped at {cap} bytes; "));
        if trimmed.is_empty() {
            text.push_str("nothing was trimmed.\n");
        } else {
            text.push_str("these logs lost their first lines (healthy pods' logs first):\n\n");
            for (rel, cut) in trimmed {
                text.push_str(&format!("- `{}`: {cut} bytes\n", rel.display()));
            }
        }
        let collected: u64 = sizes.values().sum();
        if collected > cap {
            text.push_str(&format!(
                "\nThe bundle is still over the cap ({collected} bytes collected): only logs \
                 are cut, and each keeps its last 4 KiB. Raise `--max-size` to keep it whole.\n"
            ));
        }
    }
    if !failures.is_empty() {
        text.push_str("\n## Collectors that failed\n\nThe rest of the bundle is complete; these parts are missing:\n\n");
        for f in failures {
            text.push_str(&format!("- {}: {}\n", f.collector, f.error));
        }
    }
    Ok(text)
}

/// Archives `dir` as `<name>/...` into `archive`, atomically.
fn archive_dir(dir: &Path, name: &str, archive: &Path) -> io::Result<()> {
    let partial = archive.with_extension("gz.partial");
    {
        let file = File::create(&partial)?;
        let gz =
            flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        tar.append_dir_all(name, dir)?;
        let gz = tar.into_inner()?;
        let mut out = gz.finish()?;
        out.flush()?;
        out.get_ref().sync_all()?;
    }
    fs::rename(partial, archive)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(entries: &[(&str, u64)]) -> BTreeMap<PathBuf, u64> {
        entries
            .iter()
            .map(|(p, s)| (PathBuf::from(p), *s))
            .collect()
    }

    fn logs(entries: &[(&str, bool)]) -> BTreeMap<PathBuf, LogInfo> {
        entries
            .iter()
            .map(|(p, h)| (PathBuf::from(p), LogInfo { healthy: *h }))
            .collect()
    }

    #[test]
    fn trim_plan_cuts_healthy_logs_first_and_largest_first() {
        let s = sizes(&[
            ("a.yaml", 1000),
            ("healthy-big.log", 100_000),
            ("healthy-small.log", 20_000),
            ("sick.log", 200_000),
        ]);
        let l = logs(&[
            ("healthy-big.log", true),
            ("healthy-small.log", true),
            ("sick.log", false),
        ]);
        // Fits in the biggest healthy log.
        let plan = trim_plan(&s, &l, 50_000);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].0, PathBuf::from("healthy-big.log"));
        assert_eq!(plan[0].1, 50_000 + TRIM_MARKER.len() as u64);
        // Needs both healthy logs, then the sick one; each keeps 4 KiB.
        let plan = trim_plan(&s, &l, 150_000);
        let order: Vec<&str> = plan.iter().map(|(p, _)| p.to_str().unwrap()).collect();
        assert_eq!(
            order,
            vec!["healthy-big.log", "healthy-small.log", "sick.log"]
        );
        assert_eq!(plan[0].1, 100_000 - 4096);
        assert_eq!(plan[1].1, 20_000 - 4096);
        let removed: u64 = plan.iter().map(|(_, c)| c - TRIM_MARKER.len() as u64).sum();
        assert!(removed >= 150_000, "{removed}");
        // Nothing to do.
        assert!(trim_plan(&s, &l, 0).is_empty());
    }

    #[test]
    fn finish_publishes_only_complete_bundles() {
        let out = tempfile::tempdir().unwrap();
        let mut w = BundleWriter::create(out.path(), "run-1", vec!["lane: audit".into()]).unwrap();
        w.set_redactor(Redactor::new(["topsecret-value".to_string()]));
        w.write_object(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "fx", "managedFields": [{}]}, "data": {"k": "uses topsecret-value"}})).unwrap();
        w.write_log(
            &layout::log("fx", "p", "app", false),
            &b"line 1\npassword=topsecret-value\n"[..],
            false,
        )
        .unwrap();
        w.record_failure("kind logs", "kind export logs exited 1");
        // Before finish, nothing exists under the final name.
        assert!(!out.path().join("run-1").exists());
        assert!(out.path().join(".run-1.partial").is_dir());
        let bundle = w.finish(None).unwrap();
        assert!(!out.path().join(".run-1.partial").exists());
        assert!(bundle.dir.join("README.md").is_file());
        assert!(bundle.archive.is_file());
        let all = fs::read_to_string(bundle.dir.join("namespaces/fx/v1/configmap/c.yaml")).unwrap();
        assert!(
            all.contains("uses <redacted>") && !all.contains("managedFields"),
            "{all}"
        );
        let log = fs::read_to_string(
            bundle
                .dir
                .join("namespaces/fx/pods/p/app/app/logs/current.log"),
        )
        .unwrap();
        assert_eq!(log, "line 1\npassword=<redacted>\n");
        let readme = fs::read_to_string(bundle.dir.join("README.md")).unwrap();
        assert!(
            readme.contains("kind logs: kind export logs exited 1"),
            "{readme}"
        );
        assert!(readme.contains("| `namespaces/fx/` | 2 |"), "{readme}");
        // SHA256SUMS verifies with the standard tool and covers every other file.
        let sums = fs::read_to_string(bundle.dir.join("SHA256SUMS")).unwrap();
        assert_eq!(sums.lines().count(), bundle.files - 1, "{sums}");
        let check = std::process::Command::new("sha256sum")
            .args(["-c", "--quiet", "SHA256SUMS"])
            .current_dir(&bundle.dir)
            .status()
            .unwrap();
        assert!(check.success());
        // The archive holds the same tree under the bundle's name.
        let list = std::process::Command::new("tar")
            .arg("tzf")
            .arg(&bundle.archive)
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&list.stdout);
        assert!(
            list.contains("run-1/SHA256SUMS")
                && list.contains("run-1/harness/collector-errors.txt"),
            "{list}"
        );
        // A second bundle of the same name is refused, not merged.
        assert!(matches!(
            BundleWriter::create(out.path(), "run-1", vec![]),
            Err(GatherError::Exists { .. })
        ));
    }

    #[test]
    fn files_written_by_other_tools_are_scrubbed_too() {
        let out = tempfile::tempdir().unwrap();
        let mut w = BundleWriter::create(out.path(), "k", vec![]).unwrap();
        w.set_redactor(Redactor::new(["hunter2hunter2".to_string()]));
        let kind = w.staging_dir().join("kind/node-1");
        fs::create_dir_all(&kind).unwrap();
        fs::write(
            kind.join("kubelet.log"),
            "env PASSWORD=hunter2hunter2 set\n",
        )
        .unwrap();
        w.scrub_tree(Path::new("kind")).unwrap();
        let bundle = w.finish(None).unwrap();
        let text = fs::read_to_string(bundle.dir.join("kind/node-1/kubelet.log")).unwrap();
        assert_eq!(text, "env PASSWORD=<redacted> set\n");
    }

    #[test]
    fn an_abandoned_gather_leaves_no_bundle_and_is_cleaned_by_the_next() {
        let out = tempfile::tempdir().unwrap();
        let w = BundleWriter::create(out.path(), "run-2", vec![]).unwrap();
        w.write_text(Path::new("namespaces/fx/events.yaml"), "half")
            .unwrap();
        drop(w); // interrupted: finish never ran
        assert!(!out.path().join("run-2").exists());
        assert!(!out.path().join("run-2.tar.gz").exists());
        assert!(
            !out.path().join(".run-2.partial").exists(),
            "an abandoned gather cleans up after itself"
        );
        // A process killed outright (SIGKILL) runs no destructor: its
        // staging directory stays, and the next gather of that name starts over.
        let w = BundleWriter::create(out.path(), "run-2", vec![]).unwrap();
        w.write_text(Path::new("namespaces/fx/events.yaml"), "half")
            .unwrap();
        std::mem::forget(w);
        assert!(out.path().join(".run-2.partial").is_dir());
        let w = BundleWriter::create(out.path(), "run-2", vec![]).unwrap();
        assert!(
            !w.staging_dir().join("namespaces").exists(),
            "stale partial content was reused"
        );
        let bundle = w.finish(None).unwrap();
        assert!(bundle.dir.is_dir());
    }

    #[test]
    fn a_cap_below_what_cannot_be_cut_is_said_not_hidden() {
        let out = tempfile::tempdir().unwrap();
        let w = BundleWriter::create(out.path(), "tiny", vec![]).unwrap();
        let healthy: String = (0..4000).map(|i| format!("healthy line {i}\n")).collect();
        w.write_log(
            &layout::log("fx", "ok", "app", false),
            healthy.as_bytes(),
            true,
        )
        .unwrap();
        let bundle = w.finish(Some(1024)).unwrap();
        // Cut down to its last 4 KiB (and the marker), no further.
        let kept = fs::read_to_string(
            bundle
                .dir
                .join("namespaces/fx/pods/ok/app/app/logs/current.log"),
        )
        .unwrap();
        assert_eq!(kept.len(), TRIM_MARKER.len() + 4096);
        let readme = fs::read_to_string(bundle.dir.join("README.md")).unwrap();
        assert!(
            readme.contains("The bundle is still over the cap"),
            "{readme}"
        );
    }

    #[test]
    fn size_cap_trims_healthy_logs_and_keeps_their_tails() {
        let out = tempfile::tempdir().unwrap();
        let w = BundleWriter::create(out.path(), "capped", vec![]).unwrap();
        let healthy: String = (0..4000).map(|i| format!("healthy line {i}\n")).collect();
        let sick: String = (0..2000).map(|i| format!("sick line {i}\n")).collect();
        w.write_log(
            &layout::log("fx", "ok", "app", false),
            healthy.as_bytes(),
            true,
        )
        .unwrap();
        w.write_log(
            &layout::log("fx", "bad", "app", true),
            sick.as_bytes(),
            false,
        )
        .unwrap();
        let cap = (sick.len() + healthy.len() / 2) as u64;
        let bundle = w.finish(Some(cap)).unwrap();
        assert_eq!(bundle.trimmed.len(), 1);
        let kept = fs::read_to_string(
            bundle
                .dir
                .join("namespaces/fx/pods/ok/app/app/logs/current.log"),
        )
        .unwrap();
        assert!(kept.starts_with(TRIM_MARKER) && kept.ends_with("healthy line 3999\n"));
        let sick_kept = fs::read_to_string(
            bundle
                .dir
                .join("namespaces/fx/pods/bad/app/app/logs/previous.log"),
        )
        .unwrap();
        assert_eq!(sick_kept, sick, "the failing pod's log is untouched");
        let logs_total = kept.len() + sick_kept.len();
        assert!(logs_total as u64 <= cap, "{logs_total} > {cap}");
        // The whole bundle fits, its README and SHA256SUMS included.
        let on_disk: u64 = file_sizes(&bundle.dir).unwrap().values().sum();
        assert_eq!(on_disk, bundle.bytes);
        assert!(bundle.bytes <= cap, "{} > {cap}", bundle.bytes);
        let sums = fs::read_to_string(bundle.dir.join("SHA256SUMS")).unwrap();
        assert_eq!(
            sums.len() as u64,
            checksums_len(
                file_sizes(&bundle.dir)
                    .unwrap()
                    .keys()
                    .map(PathBuf::as_path)
                    .filter(|p| *p != Path::new("SHA256SUMS"))
            )
        );
    }
}
