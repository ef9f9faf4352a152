//! The lane file (`harness.yaml`): finding it, reading it, and checking it.
//!
//! Loading is two steps. [`raw`] is the YAML as written, with source spans;
//! [`validate`] checks it as a whole (paths exist, every reference is
//! defined, no dependency cycles, no host port mapped twice in one lane) and
//! builds the [`Project`] the rest of the program works from. Validation
//! collects every problem it can find rather than stopping at the first, and
//! each one names the file, line and column and says how to fix it.

pub mod diag;
pub mod kind;
pub mod manifests;
mod model;
pub mod ports;
mod raw;
mod readiness;
mod validate;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, SourceLoc, Sources};
pub use kind::{HostPort, Protocol};
pub use model::*;
pub use ports::{PortClaim, SharedPort};

/// The lane file's name, looked for in the current directory and its parents.
pub const FILE_NAME: &str = "harness.yaml";

/// Why a lane file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no {FILE_NAME} in {} or any parent directory", .start.display())]
    NotFound { start: PathBuf },
    #[error("cannot read lane file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} in {}", problems(.diagnostics.len()), diag::display_path(.file))]
    Invalid {
        file: PathBuf,
        diagnostics: Vec<Diagnostic>,
        sources: Sources,
    },
}

impl ConfigError {
    /// How the user can fix it, when there is one thing to say.
    pub fn help(&self) -> Option<String> {
        match self {
            ConfigError::NotFound { .. } => Some(format!(
                "run harness from your project (where {FILE_NAME} is), or pass --config PATH"
            )),
            ConfigError::Read { .. } => Some("check the path given to --config".into()),
            ConfigError::Invalid { .. } => None,
        }
    }

    /// Every diagnostic rendered with the lines it points at.
    pub fn rendered(&self) -> Option<String> {
        match self {
            ConfigError::Invalid {
                diagnostics,
                sources,
                ..
            } => Some(
                diagnostics
                    .iter()
                    .map(|d| sources.render(d))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            _ => None,
        }
    }
}

/// A lane file that cannot be used stops the command before anything
/// starts: a usage error (2). Its diagnostics tell themselves, each with
/// the lines it points at and its own fix.
impl crate::failure::Failure for ConfigError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            ConfigError::NotFound { .. }
            | ConfigError::Read { .. }
            | ConfigError::Invalid { .. } => crate::exit::Exit::Usage,
        }
    }

    fn fix(&self) -> Option<String> {
        self.help()
    }

    fn told_whole(&self) -> Option<crate::failure::Whole> {
        match self {
            ConfigError::Invalid { diagnostics, .. } => Some(crate::failure::Whole {
                text: format!(
                    "{}\nharness: {self}; nothing was started\n",
                    self.rendered().unwrap_or_default()
                ),
                json: serde_json::to_value(diagnostics).ok(),
            }),
            ConfigError::NotFound { .. } | ConfigError::Read { .. } => None,
        }
    }
}

fn problems(n: usize) -> String {
    if n == 1 {
        "1 problem".into()
    } else {
        format!("{n} problems")
    }
}

/// Finds the lane file: `explicit` if given, else `harness.yaml` in `start`
/// or the nearest parent directory that has one.
pub fn discover(explicit: Option<&Path>, start: &Path) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            start.join(path)
        };
        return Ok(path);
    }
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| ConfigError::NotFound {
            start: start.to_path_buf(),
        })
}

/// Reads and validates the lane file at `path`.
pub fn load(path: &Path) -> Result<Project, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    validate::validate(path, &text)
}

/// Validates `text` as the lane file at `path`: [`load`] without reading
/// the lane file itself. The files it names (manifests, kind configs,
/// Dockerfiles) are still read from disk, relative to `path`'s directory.
pub fn load_text(path: &Path, text: &str) -> Result<Project, ConfigError> {
    validate::validate(path, text)
}

/// The message of a YAML error without the location prefix and snippet
/// serde-saphyr adds: we print both ourselves.
pub(crate) fn parse_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    // "line 5 column 23: unknown field ..." -> "unknown field ..."
    match text.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => {
            rest.to_owned()
        }
        _ => text.to_owned(),
    }
    .lines()
    .next()
    .map(strip_location_suffix)
    .unwrap_or_default()
    .to_owned()
}

/// serde's messages may end in " at line 4, column 5"; we show that already.
fn strip_location_suffix(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((head, tail))
            if tail.split_once(", column ").is_some_and(|(l, c)| {
                l.bytes().all(|b| b.is_ascii_digit()) && c.bytes().all(|b| b.is_ascii_digit())
            }) =>
        {
            head
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_walks_up_to_the_nearest_lane_file() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/c");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(dir.path().join("a").join(FILE_NAME), "lanes: {}\n").unwrap();
        assert_eq!(
            discover(None, &nested).unwrap(),
            dir.path().join("a").join(FILE_NAME)
        );
        let err = discover(None, dir.path()).unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }));
        assert!(err.help().unwrap().contains("--config"));
    }

    #[test]
    fn explicit_config_is_taken_relative_to_start() {
        let got = discover(Some(Path::new("ci/lanes.yaml")), Path::new("/repo")).unwrap();
        assert_eq!(got, Path::new("/repo/ci/lanes.yaml"));
    }

    #[test]
    fn parse_message_strips_location_and_snippet() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            a: u8,
        }
        let e = serde_saphyr::from_str::<S>("a: 1\nb: 2\n").unwrap_err();
        assert_eq!(parse_message(&e), "unknown field `b`, expected one of a");
        assert_eq!(
            strip_location_suffix("unknown variant `x` at line 2, column 13"),
            "unknown variant `x`"
        );
        assert_eq!(
            strip_location_suffix("a value at line zero"),
            "a value at line zero"
        );
    }
}
