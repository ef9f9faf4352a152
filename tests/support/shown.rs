//! Documented output is tested output: what README.md and docs/ show as
//! the `harness` binary's output is an insta snapshot that a test made by
//! running the binary (`cli/tests/shown.rs`, `cli/tests/frames.rs`), and
//! `cli/tests/documented_output.rs` holds every marked block of the docs
//! to its snapshot.
//!
//! A run prints things no two runs share: the time of day, how long a step
//! took, the random part of a run id or a namespace, a scratch directory,
//! byte counts and rates, the spinner's glyph of the moment. [`normalize`]
//! is the one set of rules that turns each of them into a placeholder. It
//! is applied to what a test captured before it is snapshotted, and to both
//! sides when a documented block is compared with its snapshot, so the docs
//! keep realistic values (`4s`, `10.1 MiB`, `r-1a2b3c4d`) while everything
//! else must match to the character. Keep the rules few and narrow: each
//! one is a place where the docs may differ from the binary.
#![allow(dead_code)]

use std::sync::LazyLock;

use regex::Regex;

/// The rules, in order: each is a pattern and its placeholder. Earlier
/// rules see the text first (a timestamp before the clock time inside it).
static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // The spinner of the live frame turns ten times a second.
        (r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", "⠋"),
        // Timestamps (events, logs) and clock times (plain lines, reports).
        (
            r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
            "[timestamp]",
        ),
        (r"\b\d\d:\d\d:\d\d(\.\d+)?\b", "[time]"),
        // Random ids: runs, and suite namespaces `<prefix>-p<N>-<8 hex>`.
        (r"\br-[0-9a-f]{8}\b", "r-[id]"),
        (r"\b([a-z0-9][a-z0-9-]*-p\d+)-[0-9a-f]{8}\b", "$1-[hex]"),
        // Where the project is: what leads to its `.harness/` directory
        // (a scratch directory in the tests, the user's checkout in the
        // docs), and the tests' other scratch directories (`.tmpXXXXXX`).
        (r"/[^\s:()'`]*?/\.harness\b", "[project]/.harness"),
        // The docs' example checkout, where a tool's words name the
        // project's own files (the tests put `[project]` there themselves).
        (r"/work/project\b", "[project]"),
        (r"/[^\s:()'`]*/\.tmp[A-Za-z0-9]{6}", "[tmp]"),
        // Ports of the servers a test starts on 127.0.0.1.
        (r"\b127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        // The free port a lane's clashing host port was moved to.
        (r"\bmoved to \d+\b", "moved to [port]"),
        // Byte counts and rates: `10.1 MiB`, `3 B`, `40.4 MiB/s`.
        (r"\b\d+(\.\d+)? ?(B|KiB|MiB|GiB|TiB|kB|MB|GB)\b", "[bytes]"),
        // Progress bars, whose filling is a matter of bytes and time.
        (r"\[[=> ]{3,}\]", "[bar]"),
        // Durations: `45s`, `6.6s`, `2m05s`, `1h02m`, `250ms`, `18m`.
        (
            r"\b(\d+h\d\dm|\d+m\d\ds|\d+(\.\d+)?(ms|s|m|h))\b",
            "[duration]",
        ),
    ]
    .into_iter()
    .map(|(pattern, with)| (Regex::new(pattern).unwrap(), with))
    .collect()
});

/// Spaces that align a placeholder's column: they depend on the width of
/// the value it replaced (`    4s` and `  1m12s` are both `{:>6}`).
static PADDING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\S) {2,}(\[(timestamp|time|duration|bytes|bar)\])|(\[(timestamp|time|duration|bytes|bar)\]) {2,}(\S)")
        .unwrap()
});

/// `text` with everything that differs between runs replaced by
/// placeholders, padding around them collapsed, trailing spaces and blank
/// lines at either end gone.
pub fn normalize(text: &str) -> String {
    let mut text = text.replace("\r\n", "\n");
    for (pattern, with) in RULES.iter() {
        text = pattern.replace_all(&text, *with).into_owned();
    }
    // Twice: a placeholder may be padded on both sides.
    for _ in 0..2 {
        text = PADDING
            .replace_all(&text, |c: &regex::Captures| match (c.get(1), c.get(2)) {
                (Some(before), Some(token)) => format!("{} {}", before.as_str(), token.as_str()),
                _ => format!("{} {}", &c[4], &c[6]),
            })
            .into_owned();
    }
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim_matches('\n').to_owned()
}

/// The contents of an insta snapshot file (what follows its header), or
/// `None` when there is no such file.
pub fn snapshot(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    // `---`, the header's fields, `---`, then the contents.
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(
        rest[end + "\n---\n".len()..]
            .trim_end_matches('\n')
            .to_owned(),
    )
}

/// What a person sees of a command: `$ harness <args>` and what it printed.
pub fn session(args: &[&str], printed: &str) -> String {
    format!("$ harness {}\n{printed}", args.join(" "))
}

/// The failure a command ended with, as printed: from its `error:` line to
/// the end of stderr (its `= help:` and evidence included).
pub fn told_error(stderr: &str) -> &str {
    let at = stderr
        .find("\nerror: ")
        .map(|i| i + 1)
        .or_else(|| stderr.starts_with("error: ").then_some(0))
        .unwrap_or_else(|| panic!("no `error:` line in:\n{stderr}"));
    &stderr[at..]
}

/// What a test snapshots of `printed`: its normalized text. The text as
/// printed goes to the test's output (`--nocapture` shows it), where the
/// realistic values the docs show come from.
pub fn taken(printed: &str) -> String {
    println!("--- as printed ---\n{printed}\n--- end ---");
    normalize(printed)
}
