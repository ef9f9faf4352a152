//! Diagnostics that point into the user's files.
//!
//! A lane-file problem is only useful if it says where it is: every
//! [`Diagnostic`] carries a file, line and column (1-based, in characters,
//! as the YAML parser reports them) and renders like a compiler error, with
//! the offending line quoted and a `help:` line that says how to fix it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A position in a file the user wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceLoc {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

impl SourceLoc {
    pub fn new(file: impl Into<PathBuf>, line: u64, column: u64) -> Self {
        Self {
            file: file.into(),
            line,
            column,
        }
    }

    /// The location of a value read with `serde_saphyr::Spanned`.
    pub fn of(file: &Path, location: &serde_saphyr::Location) -> Self {
        Self::new(file, location.line(), location.column())
    }
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            display_path(&self.file),
            self.line,
            self.column
        )
    }
}

/// A second location that explains the first ("first claimed here").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    pub at: SourceLoc,
    pub message: String,
}

/// One problem found in the lane file or a file it points to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub at: SourceLoc,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

impl Diagnostic {
    pub fn new(at: SourceLoc, message: impl Into<String>) -> Self {
        Self {
            at,
            message: message.into(),
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn note(mut self, at: SourceLoc, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            at,
            message: message.into(),
        });
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// The text of the files diagnostics point into, for quoting their lines.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    texts: HashMap<PathBuf, String>,
}

impl Sources {
    pub fn add(&mut self, file: &Path, text: &str) {
        self.texts.insert(file.to_path_buf(), text.to_owned());
    }

    fn line(&self, file: &Path, line: u64) -> Option<&str> {
        let text = self.texts.get(file)?;
        text.lines()
            .nth(usize::try_from(line.checked_sub(1)?).ok()?)
    }

    /// Renders a diagnostic like a compiler error:
    ///
    /// ```text
    /// error: harness.yaml:5:23: unknown field `depnds_on`
    ///   |
    /// 5 |   b: {manifests: [y], depnds_on: [a]}
    ///   |                       ^^^^^^^^^
    ///   = help: did you mean `depends_on`?
    /// ```
    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        let mut out = format!("error: {diagnostic}\n");
        self.quote(&mut out, &diagnostic.at);
        for note in &diagnostic.notes {
            out.push_str(&format!("note: {}: {}\n", note.at, note.message));
            self.quote(&mut out, &note.at);
        }
        if let Some(help) = &diagnostic.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }

    fn quote(&self, out: &mut String, at: &SourceLoc) {
        let Some(text) = self.line(&at.file, at.line) else {
            return;
        };
        let number = at.line.to_string();
        let pad = " ".repeat(number.len());
        let column = usize::try_from(at.column.max(1) - 1).unwrap_or(0);
        let token = token_len(text, column);
        // Keep tabs as tabs so the caret lines up under the same characters.
        let lead: String = text
            .chars()
            .take(column)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!(
            "{pad} |\n{number} | {text}\n{pad} | {lead}{}\n",
            "^".repeat(token)
        ));
    }
}

/// How many characters from `column` make up the token the caret points at.
fn token_len(line: &str, column: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(column).collect();
    if let Some(&quote @ ('"' | '\'')) = rest.first() {
        // A quoted scalar: underline through its closing quote.
        return rest[1..]
            .iter()
            .position(|&c| c == quote)
            .map_or(rest.len(), |end| end + 2);
    }
    rest.iter()
        .position(|&c| c.is_whitespace() || matches!(c, ',' | ']' | '}' | ':' | '#'))
        .unwrap_or(rest.len())
        .max(1)
}

/// A path as the user would like to read it: relative to the current
/// directory when it is below it.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// The closest of `candidates` to `word`, if any is close enough to be a typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(text: &str) -> Sources {
        let mut s = Sources::default();
        s.add(Path::new("/x/harness.yaml"), text);
        s
    }

    #[test]
    fn renders_location_quote_caret_and_help() {
        let s = sources("components:\n  b: {manifests: [y], depnds_on: [a]}\n");
        let d = Diagnostic::new(
            SourceLoc::new("/x/harness.yaml", 2, 23),
            "unknown field `depnds_on`",
        )
        .help("did you mean `depends_on`?");
        let text = s.render(&d);
        assert_eq!(
            text,
            "error: /x/harness.yaml:2:23: unknown field `depnds_on`\n  |\n2 |   b: {manifests: [y], depnds_on: [a]}\n  |                       ^^^^^^^^^\n  = help: did you mean `depends_on`?\n"
        );
    }

    #[test]
    fn caret_covers_a_quoted_scalar() {
        assert_eq!(token_len(r#"  url: "http://x:1/health" # c"#, 7), 19);
        assert_eq!(token_len("  - manifests/a.yaml", 4), 16);
        assert_eq!(token_len("", 0), 1);
    }

    #[test]
    fn missing_line_renders_header_only() {
        let s = Sources::default();
        let d = Diagnostic::new(SourceLoc::new("/nowhere.yaml", 9, 1), "boom");
        assert_eq!(s.render(&d), "error: /nowhere.yaml:9:1: boom\n");
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        let fields = ["manifests", "images", "depends_on", "health", "tolerate"];
        assert_eq!(did_you_mean("depnds_on", fields), Some("depends_on"));
        assert_eq!(did_you_mean("manifest", fields), Some("manifests"));
        assert_eq!(did_you_mean("replicas", fields), None);
    }
}
