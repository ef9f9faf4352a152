//! Kustomize directories: recognising one, and rendering it with
//! `kustomize build` — or `kubectl kustomize`, kubectl's built-in copy,
//! where only kubectl is installed — exactly as `kubectl apply -k` would.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::tool::{self, RenderError};

/// The names kustomize accepts for a directory's kustomization, in the
/// order it looks for them.
pub const FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomization file of `dir`, when `dir` is a kustomize directory.
pub fn kustomization(dir: &Path) -> Option<PathBuf> {
    FILES.iter().map(|f| dir.join(f)).find(|f| f.is_file())
}

/// The tool that renders kustomize directories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `kustomize build DIR`.
    Kustomize(PathBuf),
    /// `kubectl kustomize DIR`.
    Kubectl(PathBuf),
}

impl Tool {
    /// `kustomize` on PATH, else `kubectl`, given how to find a program.
    pub fn choose(which: impl Fn(&str) -> Option<PathBuf>) -> Option<Tool> {
        which("kustomize")
            .map(Tool::Kustomize)
            .or_else(|| which("kubectl").map(Tool::Kubectl))
    }

    /// The program and its arguments to render `dir`.
    pub fn command(&self, dir: &Path) -> (PathBuf, Vec<OsString>) {
        match self {
            Tool::Kustomize(p) => (p.clone(), vec!["build".into(), dir.into()]),
            Tool::Kubectl(p) => (p.clone(), vec!["kustomize".into(), dir.into()]),
        }
    }
}

/// How to get a tool that renders kustomize directories.
pub const INSTALL: &str = "install kustomize (Debian: `apt-get install kustomize`, from trixie on bookworm; scripts/install-deps does) or kubectl, whose `kubectl kustomize` renders the same";

/// Renders the kustomize directory `dir` (its paths shown relative to
/// `root` in messages).
pub fn build(dir: &Path, root: &Path) -> Result<String, RenderError> {
    let shown_dir = dir.strip_prefix(root).unwrap_or(dir);
    let tool = Tool::choose(tool::which).ok_or_else(|| RenderError::Missing {
        what: format!("kustomize directory {}", shown_dir.display()),
        needs: "neither kustomize nor kubectl is on PATH".into(),
        install: INSTALL.into(),
    })?;
    let (program, args) = tool.command(shown_dir);
    let fix = kustomization(dir).unwrap_or_else(|| dir.join(FILES[0]));
    let fix = fix.strip_prefix(root).map(Path::to_path_buf).unwrap_or(fix);
    tool::run(&program, &args, root, &fix, tool::TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kustomize_is_preferred_and_kubectl_stands_in() {
        let both = |name: &str| Some(PathBuf::from(format!("/usr/bin/{name}")));
        let kubectl_only = |name: &str| (name == "kubectl").then(|| PathBuf::from("/bin/kubectl"));
        assert_eq!(
            Tool::choose(both),
            Some(Tool::Kustomize("/usr/bin/kustomize".into()))
        );
        assert_eq!(
            Tool::choose(kubectl_only),
            Some(Tool::Kubectl("/bin/kubectl".into()))
        );
        assert_eq!(Tool::choose(|_| None), None);
        let (program, args) = Tool::Kubectl("/bin/kubectl".into()).command(Path::new("deploy/x"));
        assert_eq!(program, Path::new("/bin/kubectl"));
        assert_eq!(args, ["kustomize", "deploy/x"].map(OsString::from));
        let (_, args) = Tool::Kustomize("/k".into()).command(Path::new("deploy/x"));
        assert_eq!(args, ["build", "deploy/x"].map(OsString::from));
    }

    #[test]
    fn a_directory_is_a_kustomization_by_any_of_its_three_names() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(kustomization(dir.path()), None);
        for name in FILES {
            let sub = dir.path().join(name.replace('.', "-"));
            std::fs::create_dir(&sub).unwrap();
            std::fs::write(sub.join(name), "resources: []\n").unwrap();
            assert_eq!(kustomization(&sub), Some(sub.join(name)));
        }
    }
}
