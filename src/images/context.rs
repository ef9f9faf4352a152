//! The build context: what is sent to the engine, and the hash of it.
//!
//! [`scan`] walks the context directory once (names sorted, symlinks not
//! followed), honouring `.dockerignore` as Docker does, and lists what would
//! be sent. [`InputHasher`] turns that list, the Dockerfile, the build
//! arguments and the target into the content hash the image's tag is made
//! of; it is a pure function of bytes and is tested without files.
//! [`write_tar`] writes the same list as the tar the engine builds from
//! (uid/gid 0, as the Docker CLI sends it). Modification times go into the
//! tar but not into the hash, so touching a file does not rebuild.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use super::ignore::{BadPattern, Ignore};

/// The name the Dockerfile gets in the tar when it lies outside the context.
pub const EXTERNAL_DOCKERFILE: &str = ".harness-external.Dockerfile";

/// One thing sent in the build context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context root, `/`-separated.
    pub path: String,
    pub source: PathBuf,
    pub kind: EntryKind,
    /// Seconds since the epoch (sent, not hashed).
    pub mtime: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir { mode: u32 },
    File { mode: u32, size: u64 },
    Symlink { target: String },
}

/// A scanned build context.
#[derive(Clone, Debug)]
pub struct Context {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    /// The Dockerfile's path in the tar (what the build is pointed at).
    pub dockerfile_in_tar: String,
    pub dockerfile: PathBuf,
    /// Whether the Dockerfile lies outside the context and is added to the
    /// tar under [`EXTERNAL_DOCKERFILE`].
    pub dockerfile_outside: bool,
}

/// Why a build context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("cannot read {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}", .path.display())]
    Ignore {
        path: PathBuf,
        #[source]
        source: BadPattern,
    },
    #[error("file name {} is not UTF-8; rename it or add it to .dockerignore", .path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{} changed while the build context was read; run again", .path.display())]
    Changed { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Lists what `docker build` would send from `root` with this Dockerfile.
/// Paths in `skip` (absolute; e.g. the harness's own state and log
/// directories) are never sent, whatever `.dockerignore` says.
pub fn scan(root: &Path, dockerfile: &Path, skip: &[PathBuf]) -> Result<Context, ContextError> {
    // Canonical paths, so that `..`, `.` and symlinked directories in the
    // lane file do not hide that the Dockerfile or a skipped directory is
    // inside the context.
    let root = &fs::canonicalize(root).map_err(io_err(root))?;
    let dockerfile = &fs::canonicalize(dockerfile).map_err(io_err(dockerfile))?;
    let skip: Vec<PathBuf> = skip
        .iter()
        .map(|p| fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let skip = skip.as_slice();
    let ignore_path = root.join(".dockerignore");
    let mut ignore = match fs::read_to_string(&ignore_path) {
        Ok(text) => Ignore::parse(&text).map_err(|source| ContextError::Ignore {
            path: ignore_path.clone(),
            source,
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ignore::default(),
        Err(e) => return Err(io_err(&ignore_path)(e)),
    };
    // The Docker CLI always sends the Dockerfile and .dockerignore.
    ignore.keep(".dockerignore");
    let inside = dockerfile
        .strip_prefix(root)
        .ok()
        .and_then(|rel| rel_string(rel).ok());
    let (dockerfile_in_tar, dockerfile_outside) = match inside {
        Some(rel) if !rel.is_empty() => {
            ignore.keep(&rel);
            (rel, false)
        }
        _ => (EXTERNAL_DOCKERFILE.to_owned(), true),
    };
    let mut entries = Vec::new();
    walk(root, root, &ignore, skip, &mut entries)?;
    Ok(Context {
        root: root.to_owned(),
        entries,
        dockerfile_in_tar,
        dockerfile: dockerfile.to_owned(),
        dockerfile_outside,
    })
}

fn rel_string(rel: &Path) -> Result<String, ()> {
    let parts: Result<Vec<&str>, ()> = rel
        .components()
        .map(|c| c.as_os_str().to_str().ok_or(()))
        .collect();
    Ok(parts?.join("/"))
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &Ignore,
    skip: &[PathBuf],
    out: &mut Vec<Entry>,
) -> Result<(), ContextError> {
    let mut children: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    children.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    for path in children {
        if skip.iter().any(|s| s == &path) {
            continue;
        }
        let rel = path.strip_prefix(root).expect("walked under the root");
        let rel = rel_string(rel).map_err(|()| ContextError::NotUtf8 { path: path.clone() })?;
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let is_dir = meta.is_dir();
        if ignore.excludes(&rel) {
            if is_dir && ignore.must_descend(&rel) {
                walk(root, &path, ignore, skip, out)?;
            }
            continue;
        }
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o7777;
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        let kind = if is_dir {
            EntryKind::Dir { mode }
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(io_err(&path))?;
            let target = target
                .to_str()
                .ok_or_else(|| ContextError::NotUtf8 { path: path.clone() })?
                .to_owned();
            EntryKind::Symlink { target }
        } else if meta.is_file() {
            EntryKind::File {
                mode,
                size: meta.len(),
            }
        } else {
            // Sockets, fifos and devices cannot be meaningfully sent.
            continue;
        };
        out.push(Entry {
            path: rel,
            source: path.clone(),
            kind,
            mtime,
        });
        if is_dir {
            walk(root, &path, ignore, skip, out)?;
        }
    }
    Ok(())
}

/// The hash of everything that decides what an image contains.
///
/// Every field is length-prefixed so that no two different inputs hash the
/// same byte stream; the leading version string changes whenever the
/// scheme does, so old tags are not mistaken for new ones.
pub struct InputHasher(Sha256);

impl Default for InputHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl InputHasher {
    pub fn new() -> InputHasher {
        let mut h = InputHasher(Sha256::new());
        h.field(b"harness-image-inputs-v1");
        h
    }

    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// The Dockerfile (its path in the tar and its text), the build
    /// arguments (sorted: their order does not change the image) and the
    /// target stage.
    pub fn settings(
        &mut self,
        dockerfile_in_tar: &str,
        dockerfile: &[u8],
        build_args: &IndexMap<String, String>,
        target: Option<&str>,
    ) {
        self.field(b"dockerfile");
        self.field(dockerfile_in_tar.as_bytes());
        self.field(dockerfile);
        let mut args: Vec<(&String, &String)> = build_args.iter().collect();
        args.sort();
        self.field(b"args");
        self.field(&(args.len() as u64).to_le_bytes());
        for (k, v) in args {
            self.field(k.as_bytes());
            self.field(v.as_bytes());
        }
        self.field(b"target");
        self.field(target.unwrap_or("").as_bytes());
    }

    /// A base image (`FROM`) and the engine's ID for it (`None` when the
    /// engine does not have it yet and the build will pull it).
    pub fn base(&mut self, reference: &str, id: Option<&str>) {
        self.field(b"b");
        self.field(reference.as_bytes());
        self.field(id.unwrap_or("").as_bytes());
    }

    pub fn dir(&mut self, path: &str, mode: u32) {
        self.field(b"d");
        self.field(path.as_bytes());
        self.field(&mode.to_le_bytes());
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.field(b"l");
        self.field(path.as_bytes());
        self.field(target.as_bytes());
    }

    /// A regular file of `size` bytes whose content hashes (SHA-256) to
    /// `digest`.
    pub fn file_digest(&mut self, path: &str, mode: u32, size: u64, digest: &[u8; 32]) {
        self.field(b"f");
        self.field(path.as_bytes());
        self.field(&mode.to_le_bytes());
        self.0.update(size.to_le_bytes());
        self.0.update(digest);
    }

    /// The full hash, as lowercase hex.
    pub fn finish(self) -> String {
        crate::digest::hex(self.0)
    }
}

/// Hashes a scanned context with the build's settings: reads every file.
/// `bases` are the Dockerfile's base images with their IDs in the engine.
pub fn hash(
    ctx: &Context,
    build_args: &IndexMap<String, String>,
    target: Option<&str>,
    bases: &[(String, Option<String>)],
) -> Result<String, ContextError> {
    let dockerfile = fs::read(&ctx.dockerfile).map_err(io_err(&ctx.dockerfile))?;
    let mut h = InputHasher::new();
    h.settings(&ctx.dockerfile_in_tar, &dockerfile, build_args, target);
    for (reference, id) in bases {
        h.base(reference, id.as_deref());
    }
    for e in &ctx.entries {
        match &e.kind {
            EntryKind::Dir { mode } => h.dir(&e.path, *mode),
            EntryKind::Symlink { target } => h.symlink(&e.path, target),
            EntryKind::File { mode, size } => {
                let digest = file_digest(&e.source, *size)
                    .map_err(io_err(&e.source))?
                    .ok_or_else(|| ContextError::Changed {
                        path: e.source.clone(),
                    })?;
                h.file_digest(&e.path, *mode, *size, &digest);
            }
        }
    }
    Ok(h.finish())
}

/// The SHA-256 of exactly `size` bytes of `content`; `None` when it has
/// more or fewer.
fn content_digest(content: impl Read, size: u64) -> io::Result<Option<[u8; 32]>> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let n = io::copy(
        &mut content.take(size + 1),
        &mut crate::digest::HashWriter(&mut hasher),
    )?;
    Ok((n == size).then(|| hasher.finalize().into()))
}

/// What identifies one version of a file without reading it: device,
/// inode, size, and the modification and change times to the nanosecond
/// (the change time moves on every write, whoever sets the mtime).
type FileVersion = (u64, u64, u64, i64, i64, i64, i64);

/// Files hashed by this process: images built from one context (a
/// monorepo's `.`) read each of its files once, not once per image.
static DIGESTS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<FileVersion, [u8; 32]>>,
> = std::sync::LazyLock::new(Default::default);

/// The SHA-256 of the file at `path`, which the scan found `size` bytes
/// long; `None` when it no longer is (it changed under us). A version of
/// the file this process hashed before is not read again.
fn file_digest(path: &Path, size: u64) -> io::Result<Option<[u8; 32]>> {
    use std::os::unix::fs::MetadataExt as _;
    let file = fs::File::open(path)?;
    let m = file.metadata()?;
    if m.len() != size {
        return Ok(None);
    }
    let version: FileVersion = (
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    );
    let known = DIGESTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&version)
        .copied();
    if let Some(digest) = known {
        return Ok(Some(digest));
    }
    let digest = content_digest(io::BufReader::new(file), size)?;
    if let Some(digest) = digest {
        DIGESTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(version, digest);
    }
    Ok(digest)
}

/// Writes the context as the tar the engine builds from.
pub fn write_tar(ctx: &Context, out: impl Write) -> Result<(), ContextError> {
    let mut tar = tar::Builder::new(out);
    let tar_err = |source| ContextError::Io {
        path: ctx.root.clone(),
        source,
    };
    let header = |kind: tar::EntryType, mode: u32, size: u64, mtime: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for e in &ctx.entries {
        match &e.kind {
            EntryKind::Dir { mode } => {
                let mut h = header(tar::EntryType::Directory, *mode, 0, e.mtime);
                tar.append_data(&mut h, format!("{}/", e.path), io::empty())
                    .map_err(tar_err)?;
            }
            EntryKind::Symlink { target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0, e.mtime);
                tar.append_link(&mut h, &e.path, target).map_err(tar_err)?;
            }
            EntryKind::File { mode, size } => {
                let f = fs::File::open(&e.source).map_err(io_err(&e.source))?;
                // The header carries the size seen by the scan: a file that
                // changed since would corrupt the archive, so check first.
                let now = f.metadata().map_err(io_err(&e.source))?.len();
                if now != *size {
                    return Err(ContextError::Changed {
                        path: e.source.clone(),
                    });
                }
                let mut h = header(tar::EntryType::Regular, *mode, *size, e.mtime);
                tar.append_data(&mut h, &e.path, f.take(*size))
                    .map_err(io_err(&e.source))?;
            }
        }
    }
    if ctx.dockerfile_outside {
        let text = fs::read(&ctx.dockerfile).map_err(io_err(&ctx.dockerfile))?;
        let mut h = header(tar::EntryType::Regular, 0o644, text.len() as u64, 0);
        tar.append_data(&mut h, EXTERNAL_DOCKERFILE, text.as_slice())
            .map_err(tar_err)?;
    }
    tar.into_inner()
        .map_err(tar_err)?
        .flush()
        .map_err(tar_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context given as data: (path, content) files, plus settings.
    #[derive(Clone)]
    struct Inputs {
        files: Vec<(&'static str, u32, &'static [u8])>,
        dockerfile: &'static [u8],
        args: Vec<(&'static str, &'static str)>,
        target: Option<&'static str>,
        base_id: Option<&'static str>,
    }

    fn tag(i: &Inputs) -> String {
        let mut h = InputHasher::new();
        let args: IndexMap<String, String> = i
            .args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        h.settings("Dockerfile", i.dockerfile, &args, i.target);
        h.base("busybox:1", i.base_id);
        for (path, mode, content) in &i.files {
            let size = content.len() as u64;
            let digest = content_digest(*content, size).unwrap().unwrap();
            h.file_digest(path, *mode, size, &digest);
        }
        h.finish()
    }

    fn base() -> Inputs {
        Inputs {
            files: vec![
                ("a.txt", 0o644, b"hello"),
                ("src/main.go", 0o644, b"package main"),
            ],
            dockerfile: b"FROM scratch\nCOPY . /\n",
            args: vec![("A", "1"), ("B", "2")],
            target: None,
            base_id: Some("sha256:1111"),
        }
    }

    #[test]
    fn what_changes_the_tag_and_what_does_not() {
        let b = base();
        let same = tag(&b);
        assert_eq!(same.len(), 64);
        assert_eq!(tag(&b), same, "deterministic");
        type Change = (&'static str, fn(&mut Inputs), bool);
        let cases: &[Change] = &[
            ("one byte of a file", |i| i.files[0].2 = b"hellp", true),
            ("a file's mode", |i| i.files[0].1 = 0o755, true),
            ("a file's path", |i| i.files[0].0 = "b.txt", true),
            ("a file added", |i| i.files.push(("c", 0o644, b"")), true),
            ("the Dockerfile", |i| i.dockerfile = b"FROM scratch\n", true),
            ("a build arg's value", |i| i.args[0].1 = "9", true),
            ("a build arg added", |i| i.args.push(("C", "")), true),
            ("the target", |i| i.target = Some("runtime"), true),
            (
                "the base image's ID",
                |i| i.base_id = Some("sha256:2222"),
                true,
            ),
            ("the base image pulled", |i| i.base_id = None, true),
            ("build arg order", |i| i.args.reverse(), false),
            // Content moved between adjacent fields must not collide.
            (
                "content moved between path and data",
                |i| i.files[0] = ("a.txth", 0o644, b"ello"),
                true,
            ),
        ];
        for (what, change, changes) in cases {
            let mut i = b.clone();
            change(&mut i);
            assert_eq!(tag(&i) != same, *changes, "{what}");
        }
    }

    #[test]
    fn a_file_shorter_than_announced_is_reported() {
        assert!(content_digest(&b"short"[..], 10).unwrap().is_none());
        assert!(content_digest(&b"longer"[..], 2).unwrap().is_none());
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn paths(ctx: &Context) -> Vec<&str> {
        ctx.entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn scan_honours_dockerignore_and_always_sends_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "Dockerfile", "FROM scratch\n");
        write(
            d,
            ".dockerignore",
            "*.log\nbuild\n!build/keep\nDockerfile\n.dockerignore\n",
        );
        write(d, "a.txt", "a");
        write(d, "x.log", "log");
        write(d, "build/out", "o");
        write(d, "build/keep", "k");
        write(d, "src/b.txt", "b");
        write(d, ".harness/logs/images/x.log", "state");
        std::os::unix::fs::symlink("a.txt", d.join("link")).unwrap();
        // Written with `.` and `..`, as a lane file may.
        let ctx = scan(
            &d.join("src/.."),
            &d.join("./src/../Dockerfile"),
            &[d.join("src/../.harness")],
        )
        .unwrap();
        assert_eq!(
            paths(&ctx),
            [
                ".dockerignore",
                "Dockerfile",
                "a.txt",
                "build/keep",
                "link",
                "src",
                "src/b.txt"
            ]
        );
        assert_eq!(ctx.dockerfile_in_tar, "Dockerfile");
        assert!(!ctx.dockerfile_outside);
        assert!(matches!(&ctx.entries[4].kind, EntryKind::Symlink { target } if target == "a.txt"));
    }

    #[test]
    fn the_tar_holds_what_the_scan_listed_and_an_outside_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "ctx/a.txt", "a");
        write(d, "ctx/sub/b.txt", "bb");
        write(d, "docker/app.Dockerfile", "FROM scratch\n");
        let ctx = scan(&d.join("ctx"), &d.join("docker/app.Dockerfile"), &[]).unwrap();
        assert!(ctx.dockerfile_outside);
        assert_eq!(ctx.dockerfile_in_tar, EXTERNAL_DOCKERFILE);
        let mut buf = Vec::new();
        write_tar(&ctx, &mut buf).unwrap();
        let mut archive = tar::Archive::new(buf.as_slice());
        let mut got = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            assert_eq!(e.header().uid().unwrap(), 0);
            got.push((e.path().unwrap().display().to_string(), text));
        }
        let want: Vec<(String, String)> = [
            ("a.txt", "a"),
            ("sub/", ""),
            ("sub/b.txt", "bb"),
            (EXTERNAL_DOCKERFILE, "FROM scratch\n"),
        ]
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn ignored_files_do_not_change_the_hash_and_sent_files_do() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "Dockerfile", "FROM scratch\n");
        write(d, ".dockerignore", "notes.md\n");
        write(d, "a.txt", "a");
        write(d, "notes.md", "one");
        let h = |d: &Path| {
            let ctx = scan(d, &d.join("Dockerfile"), &[]).unwrap();
            hash(&ctx, &IndexMap::new(), None, &[]).unwrap()
        };
        let first = h(d);
        write(d, "notes.md", "two");
        assert_eq!(h(d), first, "ignored file");
        write(d, "a.txt", "b");
        assert_ne!(h(d), first, "sent file");
    }

    /// A file this process hashed before is not read again while it is the
    /// same version; a rewrite of the same length with its modification
    /// time put back is still seen (its change time moved), and a file
    /// that grew after the scan is reported.
    #[test]
    fn a_file_hashed_before_is_known_until_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "Dockerfile", "FROM scratch\n");
        write(d, "bin", "aaaa");
        let h = |d: &Path| {
            let ctx = scan(d, &d.join("Dockerfile"), &[]).unwrap();
            hash(&ctx, &IndexMap::new(), None, &[])
        };
        let first = h(d).unwrap();
        assert_eq!(h(d).unwrap(), first);
        let bin = d.join("bin");
        let mtime = fs::metadata(&bin).unwrap().modified().unwrap();
        fs::write(&bin, "bbbb").unwrap();
        fs::File::options()
            .write(true)
            .open(&bin)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(fs::metadata(&bin).unwrap().modified().unwrap(), mtime);
        let second = h(d).unwrap();
        assert_ne!(second, first, "rewritten with its mtime put back");

        let ctx = scan(d, &d.join("Dockerfile"), &[]).unwrap();
        fs::write(&bin, "bbbbb").unwrap();
        assert!(matches!(
            hash(&ctx, &IndexMap::new(), None, &[]),
            Err(ContextError::Changed { .. })
        ));
    }
}
