//! Documented output is tested output. Every fenced block of README.md and
//! docs/*.md that shows what `harness` prints is preceded by a marker line
//! naming the insta snapshot a test made by running the binary:
//!
//! ```text
//! <!-- output: shown__plan_audit -->
//! ```
//!
//! and must equal `cli/tests/snapshots/<NAME>.snap` once both are put
//! through the one set of normalizations in `tests/support/shown.rs` (clock
//! times, durations, run ids, scratch paths, byte counts: the docs keep
//! realistic values). A block that looks like output (an `error:` or
//! `= help:` line, `$ harness …`, a report's section header, a frame's
//! spinner, a timestamped plain line) and carries no marker fails the test
//! with its `file:line`; `<!-- not output: why -->` says a block only looks
//! like it. See docs/tests.md ("Documented output").

#[path = "../../tests/support/shown.rs"]
mod shown;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What precedes a fenced block.
#[derive(Debug, PartialEq)]
enum Marker {
    /// `<!-- output: NAME -->`: the block is the snapshot NAME.
    Output(String),
    /// `<!-- not output: why -->`: it only looks like output.
    NotOutput(String),
    None,
}

/// One fenced block: where its opening fence is, what marks it, its text
/// (the fence's indentation removed).
#[derive(Debug)]
struct Block {
    line: usize,
    marker: Marker,
    text: String,
}

static FENCE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^( *)(`{3,}|~{3,})(.*)$").unwrap());
static OUTPUT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^<!-- output: ([A-Za-z0-9_-]+) -->$").unwrap());
static NOT_OUTPUT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^<!-- not output: (.*\S.*) -->$").unwrap());

/// Every fenced block of a Markdown text, and the markers that precede no
/// block (by line), which are mistakes.
fn blocks(markdown: &str) -> (Vec<Block>, Vec<usize>) {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut dangling = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim();
        if OUTPUT.is_match(trimmed) || NOT_OUTPUT.is_match(trimmed) {
            let next = (i + 1..lines.len()).find(|&j| !lines[j].trim().is_empty());
            if !next.is_some_and(|j| FENCE.is_match(lines[j])) {
                dangling.push(i + 1);
            }
        }
        let Some(open) = FENCE.captures(lines[i]) else {
            i += 1;
            continue;
        };
        let indent = open[1].len();
        let fence = open[2].to_owned();
        let marker = match (0..i).rev().find(|&j| !lines[j].trim().is_empty()) {
            Some(j) => {
                let before = lines[j].trim();
                if let Some(c) = OUTPUT.captures(before) {
                    Marker::Output(c[1].to_owned())
                } else if let Some(c) = NOT_OUTPUT.captures(before) {
                    Marker::NotOutput(c[1].to_owned())
                } else {
                    Marker::None
                }
            }
            None => Marker::None,
        };
        let mut text = Vec::new();
        let mut j = i + 1;
        while j < lines.len() {
            let line = lines[j];
            let closing = line.trim();
            if closing.starts_with(&fence)
                && closing.chars().all(|c| c == fence.chars().next().unwrap())
            {
                break;
            }
            let strip = line.len() - line.trim_start_matches(' ').len();
            text.push(&line[strip.min(indent)..]);
            j += 1;
        }
        blocks.push(Block {
            line: i + 1,
            marker,
            text: text.join("\n"),
        });
        i = j + 1;
    }
    (blocks, dangling)
}

/// Lines that only the binary prints, each with what it is.
static LOOKS_LIKE_OUTPUT: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"^(error|warning|note)(\[\w+\])?: ", "an `error:`-style line"),
        (r"^= (help|note): ", "a `= help:` line"),
        (r"^\$ harness\b", "a `$ harness` command line with what follows it"),
        (r"^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", "a live progress frame"),
        (
            r"^(phases|images|infrastructure timeline|dependency matrix|artifacts|suites|post-suite hooks)$",
            "a report's section header",
        ),
        (
            r"^(deploy timeline \(|verdicts \(|result: |harness run r-)",
            "a report's line",
        ),
        (
            r"^(preflight for lane |lane \S+  \(cluster |component \S+: not Ready|component `[^`]+` (was not Ready|will not become Ready))",
            "a command's report",
        ),
        (
            r"^\d\d:\d\d:\d\d (run|preflight|images|cluster|load|deploy|suites|gather|hooks|teardown|notice|finished|infra|artifact) ",
            "a timestamped plain line",
        ),
    ]
    .into_iter()
    .map(|(pattern, what)| (Regex::new(pattern).unwrap(), what))
    .collect()
});

/// The first line of `text` that looks like the binary's output (its index
/// and what it looks like), if any.
fn looks_like_output(text: &str) -> Option<(usize, &'static str)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let line = line.trim_start();
        LOOKS_LIKE_OUTPUT
            .iter()
            .find(|(pattern, _)| pattern.is_match(line))
            .map(|(_, what)| (i, *what))
    })
}

/// README.md and docs/*.md, by their path from the repository's root.
fn documents() -> Vec<(String, String)> {
    let mut paths = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(repo()).unwrap().display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// What is wrong with one document: each problem with its `file:line`.
fn problems(file: &str, markdown: &str, snapshots: &Path, tests: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let (blocks, dangling) = blocks(markdown);
    for line in dangling {
        problems.push(format!(
            "{file}:{line}: an output marker must be followed by the fenced block it marks"
        ));
    }
    for block in &blocks {
        let at = format!("{file}:{}", block.line);
        match &block.marker {
            Marker::Output(name) => {
                let path = snapshots.join(format!("{name}.snap"));
                let Some(snapshot) = shown::snapshot(&path) else {
                    problems.push(format!(
                        "{at}: no snapshot {} (write the test that runs the binary and \
                         snapshots it, see docs/tests.md)",
                        path.display()
                    ));
                    continue;
                };
                if let Some(problem) = untested(name, tests) {
                    problems.push(format!("{at}: {problem}"));
                }
                let (want, have) = (shown::normalize(&snapshot), shown::normalize(&block.text));
                if want != have {
                    problems.push(format!(
                        "{at}: the block is not what the binary prints (snapshot {name}); \
                         normalized, the first difference is\n{}",
                        first_difference(&want, &have)
                    ));
                }
            }
            Marker::NotOutput(_) => {}
            Marker::None => {
                if let Some((i, what)) = looks_like_output(&block.text) {
                    problems.push(format!(
                        "{file}:{}: this block shows {what} (`{}`) but names no snapshot: \
                         precede it with `<!-- output: NAME -->` and a test that snapshots \
                         the binary's output as NAME, or `<!-- not output: why -->`",
                        block.line + 1 + i,
                        block.text.lines().nth(i).unwrap().trim()
                    ));
                }
            }
        }
    }
    problems
}

/// A snapshot `<binary>__<name>` must be asserted by name in
/// `cli/tests/<binary>.rs`: every documented output has a test that runs
/// the binary, and a snapshot file alone proves nothing.
fn untested(name: &str, tests: &Path) -> Option<String> {
    let Some((binary, snapshot)) = name.split_once("__") else {
        return Some(format!(
            "snapshot {name} is not named `<test binary>__<name>`"
        ));
    };
    let source = tests.join(format!("{binary}.rs"));
    match std::fs::read_to_string(&source) {
        Ok(text) if text.contains(&format!("\"{snapshot}\"")) => None,
        Ok(_) => Some(format!(
            "{} never asserts the snapshot \"{snapshot}\"",
            source.display()
        )),
        Err(_) => Some(format!("no test file {}", source.display())),
    }
}

/// The first line where `want` (the snapshot) and `have` (the docs) part.
fn first_difference(want: &str, have: &str) -> String {
    let (w, h): (Vec<&str>, Vec<&str>) = (want.lines().collect(), have.lines().collect());
    let i = (0..w.len().max(h.len()))
        .find(|&i| w.get(i) != h.get(i))
        .unwrap_or(0);
    format!(
        "  line {} of the block\n  binary: {}\n  docs:   {}",
        i + 1,
        w.get(i).copied().unwrap_or("(nothing)"),
        h.get(i).copied().unwrap_or("(nothing)")
    )
}

#[test]
fn every_output_block_of_the_docs_is_a_snapshot_of_the_binary() {
    let snapshots = repo().join("cli/tests/snapshots");
    let tests = repo().join("cli/tests");
    let mut all = Vec::new();
    let mut marked = 0;
    for (file, markdown) in documents() {
        marked += blocks(&markdown)
            .0
            .iter()
            .filter(|b| matches!(b.marker, Marker::Output(_)))
            .count();
        all.extend(problems(&file, &markdown, &snapshots, &tests));
    }
    assert!(all.is_empty(), "\n{}\n", all.join("\n\n"));
    // The docs show output: a parser that found none has lost it.
    assert!(marked >= 10, "only {marked} marked blocks found");
}

// ------------------------------------------------------------------ the checker itself

/// A scratch repository: `cli/tests/snapshots/<name>.snap` files and the
/// test files that assert them.
fn scratch(snapshots: &[(&str, &str)], tests: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("snapshots")).unwrap();
    for (name, contents) in snapshots {
        std::fs::write(
            dir.path().join(format!("snapshots/{name}.snap")),
            format!("---\nsource: cli/tests/shown.rs\nexpression: x\n---\n{contents}\n"),
        )
        .unwrap();
    }
    for (name, text) in tests {
        std::fs::write(dir.path().join(format!("{name}.rs")), text).unwrap();
    }
    dir
}

fn check(markdown: &str, dir: &tempfile::TempDir) -> Vec<String> {
    problems(
        "doc.md",
        markdown,
        &dir.path().join("snapshots"),
        dir.path(),
    )
}

#[test]
fn a_marked_block_equals_its_snapshot_modulo_the_normalizations() {
    let dir = scratch(
        &[("shown__up", "error: took [duration]\n  = help: wait")],
        &[("shown", "insta::assert_snapshot!(\"up\", x);")],
    );
    let good =
        "text\n\n<!-- output: shown__up -->\n```text\nerror: took 4.2s\n  = help: wait\n```\n";
    assert_eq!(check(good, &dir), Vec::<String>::new());
    // Indented in a list item, as docs/commands.md's are.
    let listed = "- item\n\n  <!-- output: shown__up -->\n  ```text\n  error: took 1m05s\n    = help: wait\n  ```\n";
    assert_eq!(check(listed, &dir), Vec::<String>::new());
    // What the binary does not print fails, with where and what.
    let bad = "<!-- output: shown__up -->\n```text\nerror: took 4.2s\n  = help: wait (...)\n```\n";
    let problems = check(bad, &dir);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("doc.md:2: the block is not what the binary prints"));
    assert!(
        problems[0].contains("docs:     = help: wait (...)"),
        "{}",
        problems[0]
    );
    // A line the binary prints and the docs leave out fails too.
    let short = "<!-- output: shown__up -->\n```text\nerror: took 4.2s\n```\n";
    assert_eq!(check(short, &dir).len(), 1);
}

#[test]
fn a_marker_needs_a_snapshot_a_test_that_asserts_it_and_a_block() {
    let dir = scratch(
        &[("shown__orphan", "x"), ("nobinary", "x")],
        &[("shown", "nothing here")],
    );
    let problems = check(
        "<!-- output: shown__missing -->\n```\nx\n```\n\n<!-- output: shown__orphan -->\n```\nx\n```\n\n<!-- output: nobinary -->\n```\nx\n```\n\n<!-- output: shown__orphan -->\n\ntext\n",
        &dir,
    );
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].starts_with("doc.md:16: an output marker must be followed"));
    assert!(problems[1].starts_with("doc.md:2: no snapshot"));
    assert!(problems[2].contains("never asserts the snapshot \"orphan\""));
    assert!(problems[3].contains("is not named `<test binary>__<name>`"));
}

#[test]
fn unmarked_output_is_found_and_hand_written_blocks_are_not() {
    let dir = scratch(&[], &[]);
    for (block, line) in [
        (
            "```text\nerror: component `crds`: cannot apply\n  = help: x\n```\n",
            2,
        ),
        (
            "```text\nsome words\n  = help: use a newer node image\n```\n",
            3,
        ),
        (
            "```text\n$ harness plan --lane audit\nlane audit  (cluster audit-e2e, kind (docker))\n```\n",
            2,
        ),
        (
            "```text\n⠴     1s deploy   wave 1 of 3: postgresql, redis\n```\n",
            2,
        ),
        (
            "```text\ninfrastructure timeline\n  14:22:40 datastorage OOMKilled\n```\n",
            2,
        ),
        ("```\n10:00:01 deploy    FAILED after 3.0s\n```\n", 2),
        (
            "```text\ncomponent `api` was not Ready within 20s: it waits\n```\n",
            2,
        ),
        ("  ```text\n  warning: 2 host ports are shared\n  ```\n", 2),
    ] {
        let problems = check(block, &dir);
        assert_eq!(problems.len(), 1, "{block}: {problems:?}");
        assert!(
            problems[0].starts_with(&format!("doc.md:{line}: this block shows")),
            "{}",
            problems[0]
        );
    }
    for block in [
        // docs/commands.md's synopsis and `harness test`'s order.
        "```text\nharness [--config PATH] [--lane LANE] [--output text|json] [-v] <command>\n\n  up          build images, create (or reuse) the cluster\n  report BUNDLE   a run's report again\n```\n",
        "```text\nup → suites → gather → hooks → teardown\n```\n",
        // Commands to type, lane files, the repository's layout.
        "```sh\nscripts/demo                     # the main job\ncargo run -- plan\n```\n",
        "```text\nharness report .harness/runs/r-1a2b3c4d/gather/must-gather-audit-r-1a2b3c4d.tar.gz\n```\n",
        "```yaml\nlanes:\n  audit:\n    components: [datastorage]\n    suites:\n      audit: { command: [go, test] }\n```\n",
        "```text\ncli/src/main.rs      parse the command line, run, exit with the documented code\nsrc/report/          the event stream (bus, phase)\n```\n",
        // The rare exception says why.
        "<!-- not output: the shape of an error, not a run's -->\n```text\nerror: <what went wrong>\n  = help: <how to fix it>\n```\n",
    ] {
        assert_eq!(check(block, &dir), Vec::<String>::new(), "{block}");
    }
}

#[test]
fn values_that_differ_between_runs_become_placeholders() {
    for (text, want) in [
        ("⠴     1s deploy   wave 1", "⠋ [duration] deploy   wave 1"),
        ("⠋  1m12s suites", "⠋ [duration] suites"),
        (
            "14:22:40 datastorage OOMKilled",
            "[time] datastorage OOMKilled",
        ),
        ("  ~14:22:41 audit", "  ~[time] audit"),
        ("at 2026-01-01T10:00:03Z BackOff", "at [timestamp] BackOff"),
        (
            "run       r-1a2b3c4d (lane audit)",
            "run       r-[id] (lane audit)",
        ),
        ("namespace audit-p1-0a1b2c3d", "namespace audit-p1-[hex]"),
        ("log /tmp/.tmpAb12Cd/x.log", "log [tmp]/x.log"),
        (
            "(full output in /tmp/.tmpAb12Cd/.harness/logs/a.log)",
            "(full output in [project]/.harness/logs/a.log)",
        ),
        (
            "free on /home/me/demo/.harness (need",
            "free on [project]/.harness (need",
        ),
        (
            "'/work/project/deploy/app/base' must resolve",
            "'[project]/deploy/app/base' must resolve",
        ),
        (
            "at tcp://127.0.0.1:41234 (DOCKER_HOST)",
            "at tcp://127.0.0.1:[port] (DOCKER_HOST)",
        ),
        (
            "[>      ] 10.1 MiB of ~941.5 MiB, 40.4 MiB/s, ~23s left",
            "[bar] [bytes] of ~[bytes], [bytes]/s, ~[duration] left",
        ),
        ("Ready after 6.6s", "Ready after [duration]"),
        (
            "still running after 19s (log",
            "still running after [duration] (log",
        ),
        (
            "  audit     1m11s of 18m",
            "  audit [duration] of [duration]",
        ),
        ("building   12s  Step 5/9", "building [duration] Step 5/9"),
    ] {
        assert_eq!(shown::normalize(text), want, "{text}");
    }
}

#[test]
fn what_a_run_decides_is_kept() {
    for text in [
        "memory limit 64Mi (exit 137)",
        "Step 5/9 : RUN cargo build --release",
        "the cluster (Kubernetes v1.20.2) refused",
        "28090→30090 25432→30432",
        "restarted 1x",
        "harness.yaml:4:5: unknown field",
        "  datastorage    0/1  ContainerCreating",
        "docker 20.10.24+dfsg1, API 1.41",
    ] {
        assert_eq!(shown::normalize(text), text);
    }
}

#[test]
fn trailing_spaces_and_outer_blank_lines_go_and_normalizing_twice_changes_nothing() {
    assert_eq!(shown::normalize("\n\na  \nb\n\n"), "a\nb");
    let once = shown::normalize("⠋    12s images   1 ready\n  x  building   12s  Step 1/2");
    assert_eq!(shown::normalize(&once), once);
}

#[test]
fn a_snapshot_file_reads_as_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.snap");
    std::fs::write(
        &path,
        "---\nsource: x.rs\nexpression: y\n---\nline 1\n---\nline 3\n",
    )
    .unwrap();
    assert_eq!(shown::snapshot(&path).unwrap(), "line 1\n---\nline 3");
    assert_eq!(shown::snapshot(&dir.path().join("none.snap")), None);
}

#[test]
fn the_told_error_starts_at_its_error_line() {
    let stderr = "10:00:00 deploy    FAILED after 1.0s\nerror: it broke\n  = help: fix it\n";
    assert_eq!(
        shown::told_error(stderr),
        "error: it broke\n  = help: fix it\n"
    );
}
