//! The base images a Dockerfile builds on, so that their IDs are part of
//! the content tag: an image built `FROM postgres:16` is rebuilt when the
//! engine's `postgres:16` changes, even though no file did.
//!
//! This reads only what it needs: `FROM` lines (after joining `\`
//! continuations), their `--flags`, `AS <stage>` names (a later `FROM
//! <stage>` is not an image), and `$VAR`/`${VAR}` from the build arguments
//! or from the defaults of `ARG` lines before the first `FROM`, as Docker
//! substitutes them. `scratch` is not an image.

use indexmap::IndexMap;

/// The images named by `FROM` lines, in order, each once.
pub fn base_images(dockerfile: &str, build_args: &IndexMap<String, String>) -> Vec<String> {
    let mut globals: IndexMap<String, String> = IndexMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut bases: Vec<String> = Vec::new();
    let mut seen_from = false;
    for line in logical_lines(dockerfile) {
        let mut words = line.split_whitespace();
        let Some(instruction) = words.next() else {
            continue;
        };
        if instruction.eq_ignore_ascii_case("ARG") && !seen_from {
            for decl in words {
                let (name, default) = decl.split_once('=').unwrap_or((decl, ""));
                let value = build_args
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| unquote(default).to_owned());
                globals.insert(name.to_owned(), value);
            }
        } else if instruction.eq_ignore_ascii_case("FROM") {
            seen_from = true;
            let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
            let Some(image) = rest.first() else { continue };
            let image = substitute(image, &globals);
            // Only stages defined by earlier lines can be built upon.
            let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(&image));
            if let [_, as_kw, stage, ..] = rest.as_slice()
                && as_kw.eq_ignore_ascii_case("AS")
            {
                stages.push(stage.to_ascii_lowercase());
            }
            if image.eq_ignore_ascii_case("scratch") || is_stage || bases.contains(&image) {
                continue;
            }
            bases.push(image);
        }
    }
    bases
}

/// Lines with `\` continuations joined; comments and blank lines dropped.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let trimmed = raw.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// `$NAME` and `${NAME}` replaced from `vars`; unknown names become empty,
/// as in Docker.
fn substitute(word: &str, vars: &IndexMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let name: String = if chars.peek() == Some(&'{') {
            chars.next();
            let mut n = String::new();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                n.push(c);
            }
            n
        } else {
            let mut n = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    n.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            n
        };
        // `${NAME:-default}` and friends: the name is before the colon.
        let (name, default) = match name.split_once(":-") {
            Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
            None => (name, None),
        };
        match vars.get(&name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(v),
            None => out.push_str(default.as_deref().unwrap_or("")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_table() {
        // (Dockerfile, build args, base images)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            ("FROM busybox:1\nRUN true\n", &[], &["busybox:1"]),
            ("from busybox:1 as base\nFROM base\n", &[], &["busybox:1"]),
            (
                "FROM golang:1.22 AS build\nFROM debian:bookworm-slim\nCOPY --from=build /x /x\n",
                &[],
                &["golang:1.22", "debian:bookworm-slim"],
            ),
            ("FROM scratch\nCOPY x /\n", &[], &[]),
            (
                "FROM --platform=linux/amd64 alpine:3 AS a\n",
                &[],
                &["alpine:3"],
            ),
            (
                "ARG BASE=alpine:3\nFROM $BASE\nFROM ${BASE}\n",
                &[],
                &["alpine:3"],
            ),
            (
                "ARG BASE=alpine:3\nFROM ${BASE}\n",
                &[("BASE", "debian:12")],
                &["debian:12"],
            ),
            ("ARG V\nFROM node:${V:-20}-slim\n", &[], &["node:20-slim"]),
            (
                "# syntax comment\nFROM \\\n  python:3.12 \\\n  AS py\n",
                &[],
                &["python:3.12"],
            ),
            // A stage cannot name itself: `FROM x AS x` is an image.
            ("FROM redis AS redis\n", &[], &["redis"]),
        ];
        for (text, args, want) in cases {
            let args: IndexMap<String, String> = args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(base_images(text, &args), *want, "{text}");
        }
    }
}
