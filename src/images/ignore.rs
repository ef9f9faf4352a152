//! `.dockerignore`, with Docker's own semantics.
//!
//! This is a port of the classic matcher the Docker CLI used when it sent
//! build contexts (moby `pkg/fileutils`, now `moby/patternmatcher`): each
//! line is a pattern relative to the context root (a leading `/` is
//! dropped, the pattern is cleaned like Go's `filepath.Clean`); `*` and `?`
//! never cross a `/`; `**` matches any number of directories, none
//! included; a `!` line is an exception; the last pattern that matches
//! decides; and a file is excluded when it *or any of its parent
//! directories* is excluded. Patterns become regular expressions exactly as
//! Docker builds them, so the edge cases (character classes, escapes,
//! `foo/**` not matching `foo` itself) agree with `docker build`.
//! gitignore-style crates (`ignore`, `globset`) were not used because their
//! grammar differs: unanchored patterns match at any depth, and `{a,b}`
//! alternation means something there but not to Docker.

use regex::Regex;

/// A parsed `.dockerignore`.
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
struct Pattern {
    /// The cleaned pattern, without its `!`.
    text: String,
    exception: bool,
    re: Regex,
}

/// A line of `.dockerignore` that is not a valid pattern.
#[derive(Debug, thiserror::Error)]
#[error("invalid .dockerignore pattern `{pattern}` (line {line})")]
pub struct BadPattern {
    pub pattern: String,
    pub line: usize,
    #[source]
    pub source: regex::Error,
}

impl Ignore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Ignore, BadPattern> {
        let mut patterns = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (n, line) in text.lines().enumerate() {
            // Comments are recognised before trimming, as Docker does.
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, rest) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if rest.is_empty() {
                continue;
            }
            let mut text = clean(rest);
            if text.len() > 1 && text.starts_with('/') {
                text.remove(0);
            }
            let re = Regex::new(&to_regex(&text)).map_err(|source| BadPattern {
                pattern: line.to_owned(),
                line: n + 1,
                source,
            })?;
            patterns.push(Pattern {
                text,
                exception,
                re,
            });
        }
        Ok(Ignore { patterns })
    }

    /// Adds exceptions for paths that are always sent (the Dockerfile and
    /// `.dockerignore` itself, as the Docker CLI does).
    pub fn keep(&mut self, path: &str) {
        if self.excludes(path) {
            let text = clean(path);
            let re = Regex::new(&format!("^{}$", regex::escape(&text)))
                .expect("an escaped literal path is a valid regex");
            self.patterns.push(Pattern {
                text,
                exception: true,
                re,
            });
        }
    }

    /// Whether `path` (relative to the context root, `/`-separated) is left
    /// out of the build context.
    pub fn excludes(&self, path: &str) -> bool {
        let parent_dirs: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut excluded = false;
        for p in &self.patterns {
            // An exclusion cannot change an excluded path, nor an exception
            // an included one.
            if p.exception != excluded {
                continue;
            }
            let mut hit = p.re.is_match(path);
            if !hit {
                // The pattern may name one of the parent directories.
                hit = (1..=parent_dirs.len()).any(|i| p.re.is_match(&parent_dirs[..i].join("/")));
            }
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether an excluded directory must still be walked because an
    /// exception may re-include something under it. Docker's rule: only
    /// when an exception pattern starts with the directory's path.
    pub fn must_descend(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exception && format!("{}/", p.text).starts_with(&prefix))
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// The regular expression Docker builds for a cleaned pattern.
fn to_regex(pattern: &str) -> String {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is the same as `**`.
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    re.push_str(".*");
                } else {
                    // Any number of directories, none included.
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.next() {
                Some(next) => re.push_str(&regex::escape(&next.to_string())),
                None => re.push_str("\\\\"),
            },
            // Character classes pass through, as in Docker.
            c => re.push(c),
        }
    }
    re.push('$');
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_table() {
        for (input, want) in [
            ("a/b", "a/b"),
            ("a//b/", "a/b"),
            ("./a/./b", "a/b"),
            ("a/../b", "b"),
            ("/a", "/a"),
            ("/../a", "/a"),
            ("../a", "../a"),
            (".", "."),
            ("a/..", "."),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    /// (dockerignore text, path, excluded?)
    #[test]
    fn matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            // Plain names are anchored at the context root, not at any depth.
            ("foo", "foo", true),
            ("foo", "a/foo", false),
            ("foo", "foobar", false),
            // A pattern naming a directory excludes everything under it.
            ("foo", "foo/bar/baz.go", true),
            ("foo/", "foo/bar", true),
            ("/foo", "foo/bar", true),
            ("./foo", "foo", true),
            // `*` and `?` stay within one path segment.
            ("*.go", "main.go", true),
            ("*.go", "cmd/main.go", false),
            ("*/*.go", "cmd/main.go", true),
            ("?.txt", "a.txt", true),
            ("?.txt", "ab.txt", false),
            ("a?b", "a/b", false),
            // `*` matching a directory excludes its contents.
            ("foo/*", "foo/bar/baz", true),
            ("foo/*", "foo", false),
            // `**` spans any number of directories, none included.
            ("**/*.go", "main.go", true),
            ("**/*.go", "a/b/c/main.go", true),
            ("**/*.go", "main.rs", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "ab", false),
            ("foo/**", "foo/x/y", true),
            ("foo/**", "foo", false),
            ("**", "anything/at/all", true),
            // Dots and other regex characters are literal.
            (".git", ".git/config", true),
            (".git", "xgit", false),
            ("a+b(c)", "a+b(c)", true),
            ("a.b", "axb", false),
            // Character classes and escapes.
            ("[ab].txt", "a.txt", true),
            ("[ab].txt", "c.txt", false),
            ("[a-c]x", "bx", true),
            ("\\*", "*", true),
            ("\\*", "x", false),
            // Comments and blank lines; a `#` after leading space is a pattern.
            ("# foo\n\n", "# foo", false),
            ("#foo", "#foo", false),
            // Exceptions: the last matching line wins.
            ("*.md\n!README.md", "README.md", false),
            ("*.md\n!README.md", "CHANGES.md", true),
            ("!README.md\n*.md", "README.md", true),
            ("docs\n!docs/keep.md", "docs/keep.md", false),
            ("docs\n!docs/keep.md", "docs/other.md", true),
            ("**\n!src\n", "src/main.rs", false),
            ("**\n!src\n", "target/debug/x", true),
            ("! spaced ", "spaced", false),
            ("  padded  ", "padded", true),
            // A parent excluded by a later line wins over an earlier exception.
            ("!docs/keep.md\ndocs", "docs/keep.md", true),
        ];
        for (text, path, want) in cases {
            let ig = Ignore::parse(text).unwrap();
            assert_eq!(ig.excludes(path), *want, "pattern {text:?} path {path:?}");
        }
    }

    #[test]
    fn kept_paths_are_sent_even_when_excluded() {
        let mut ig = Ignore::parse("*\n").unwrap();
        assert!(ig.excludes("Dockerfile"));
        ig.keep("Dockerfile");
        ig.keep(".dockerignore");
        assert!(!ig.excludes("Dockerfile"));
        assert!(!ig.excludes(".dockerignore"));
        assert!(ig.excludes("main.go"));
        // A kept path inside an excluded directory is reachable too.
        let mut ig = Ignore::parse("build\n").unwrap();
        ig.keep("build/app.Dockerfile");
        assert!(!ig.excludes("build/app.Dockerfile"));
        assert!(ig.must_descend("build"));
    }

    #[test]
    fn descend_only_where_an_exception_starts_with_the_directory() {
        let ig = Ignore::parse("vendor\n!vendor/keep.go\n!**/x\n").unwrap();
        assert!(ig.must_descend("vendor"));
        assert!(!ig.must_descend("other"));
        let ig = Ignore::parse("vendor\n").unwrap();
        assert!(!ig.must_descend("vendor"));
    }

    #[test]
    fn an_invalid_class_names_its_line() {
        let err = Ignore::parse("ok\n[z-a]\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("[z-a]"), "{err}");
    }
}
