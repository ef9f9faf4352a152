//! Checks on a must-gather bundle, for the tests that make one: it
//! unpacks, has one directory at the top with a README, and its SHA256SUMS
//! covers every other file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Unpacks a bundle and checks it is complete: a README, and SHA256SUMS
/// covering every other file.
pub fn assert_complete(bundle: &Path) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(bundle)
        .arg("-C")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let top: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(top.len(), 1, "one directory at the top: {top:?}");
    let root = &top[0];
    assert!(root.join("README.md").is_file() || root.join("README").is_file());
    let check = Command::new("sha256sum")
        .args(["--check", "--quiet", "SHA256SUMS"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "SHA256SUMS: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    out
}

/// The one directory at the top of a bundle [`assert_complete`] unpacked.
pub fn top(unpacked: &tempfile::TempDir) -> PathBuf {
    std::fs::read_dir(unpacked.path())
        .unwrap()
        .next()
        .expect("a directory at the top")
        .unwrap()
        .path()
}

pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}
