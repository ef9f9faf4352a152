//! What changed since a ref, asked of the `git` binary.
//!
//! The `git` CLI rather than a library: it is what every CI image already
//! has, it reads every repository layout and configuration git itself
//! reads (worktrees, sparse checkouts, `safe.directory`), and what it says
//! is what the user's own `git diff` says. Paths come back relative to the
//! repository's top; they are joined to the lane file's directory less the
//! prefix git reports for it, so they compare with the lane file's paths
//! without resolving symlinks.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BaseLaneFile, Changes};
use crate::exit::Exit;

/// Why git could not say what changed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git")]
    Missing(#[source] std::io::Error),
    #[error("{} is not in a git repository: {stderr}", .dir.display())]
    NotARepository { dir: PathBuf, stderr: String },
    #[error("git does not know the base `{base}`")]
    UnknownBase { base: String },
    #[error("`git {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
}

impl crate::failure::Failure for GitError {
    fn exit(&self) -> Exit {
        match self {
            GitError::Missing(_) => Exit::Preflight,
            GitError::NotARepository { .. } | GitError::UnknownBase { .. } => Exit::Usage,
            GitError::Failed { .. } => Exit::Internal,
        }
    }

    fn fix(&self) -> Option<String> {
        Some(match self {
            GitError::Missing(_) => "install git (`apt-get install git`) and put it on PATH".into(),
            GitError::NotARepository { .. } => {
                "run harness in the git checkout that holds the lane file".into()
            }
            GitError::UnknownBase { base } => format!(
                "fetch it first (a shallow CI clone lacks it: `git fetch origin {}`), or check its spelling",
                base.strip_prefix("origin/").unwrap_or(base)
            ),
            GitError::Failed { .. } => "run that git command by hand to see why".into(),
        })
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output, GitError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(GitError::Missing)
}

fn ok(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = git(dir, args)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// NUL-separated paths (`-z`), as git writes them.
fn paths(bytes: &[u8]) -> impl Iterator<Item = &str> {
    bytes
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .filter_map(|p| std::str::from_utf8(p).ok())
}

/// The files that differ between `base` and the work tree of the
/// repository holding `root` (staged, unstaged and untracked, deleted
/// included; a rename is its two paths), and the lane file at `base` when
/// it is one of them.
pub fn changes(root: &Path, lane_file: &Path, base: &str) -> Result<Changes, GitError> {
    let prefix = git(root, &["rev-parse", "--show-prefix"])?;
    if !prefix.status.success() {
        return Err(GitError::NotARepository {
            dir: root.to_owned(),
            stderr: String::from_utf8_lossy(&prefix.stderr).trim().to_owned(),
        });
    }
    let prefix = String::from_utf8_lossy(&prefix.stdout).trim().to_owned();
    let verify = git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{base}^{{commit}}"),
        ],
    )?;
    if !verify.status.success() {
        return Err(GitError::UnknownBase {
            base: base.to_owned(),
        });
    }
    // The repository's top, reached from `root` by as many `..` as the
    // prefix has directories.
    let depth = Path::new(&prefix).components().count();
    let top = root.ancestors().nth(depth).unwrap_or(root).to_owned();
    let diff = ok(
        root,
        &[
            "diff",
            "--name-only",
            "--no-renames",
            "-z",
            base,
            "--",
            ":/",
        ],
    )?;
    let untracked = ok(
        root,
        &[
            "ls-files",
            "--others",
            "--exclude-standard",
            "--full-name",
            "-z",
            "--",
            ":/",
        ],
    )?;
    let mut changed: Vec<PathBuf> = Vec::new();
    for p in paths(&diff).chain(paths(&untracked)) {
        let path = top.join(p);
        if !changed.contains(&path) {
            changed.push(path);
        }
    }
    let lane_file_rel = lane_file
        .file_name()
        .map(|name| format!("{prefix}{}", name.to_string_lossy()))
        .unwrap_or_default();
    let base_lane_file = if changed.iter().any(|p| p == &top.join(&lane_file_rel)) {
        let spec = format!("{base}:{lane_file_rel}");
        let exists = git(root, &["cat-file", "-e", &spec])?;
        Some(if exists.status.success() {
            BaseLaneFile::Text(String::from_utf8_lossy(&ok(root, &["show", &spec])?).into_owned())
        } else {
            BaseLaneFile::Missing
        })
    } else {
        None
    };
    Ok(Changes {
        paths: changed,
        base_lane_file,
    })
}
