//! `.dockerignore` matching: parse the patterns, then ask about paths.
//!
//! Input: the `.dockerignore` text, then after a NUL byte the paths to ask
//! about, one per line (context-relative, `/`-separated).

#![no_main]

use harness::images::ignore::Ignore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (patterns, paths) = input
        .split_once('\0')
        .unwrap_or((input, "a\nb/c\nDockerfile"));
    let Ok(mut ignore) = Ignore::parse(patterns) else {
        return;
    };
    for path in paths.lines().take(64) {
        let _ = ignore.excludes(path);
        let _ = ignore.must_descend(path);
    }
    // What the context builder always sends is sent.
    for path in ["Dockerfile", ".dockerignore"]
        .into_iter()
        .chain(paths.lines().take(8).filter(|p| is_clean(p)))
    {
        ignore.keep(path);
        assert!(!ignore.excludes(path), "kept `{path}` is still excluded");
    }
});

/// The paths the context walk produces: relative, no empty or dot parts.
fn is_clean(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}
