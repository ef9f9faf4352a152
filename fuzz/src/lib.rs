//! What the fuzz targets share: the input formats that carry more than one
//! file, and the scratch directory the lane-file target writes them to.
//!
//! Every target asserts, beyond "no panic", the promises its code makes to
//! the rest of the program (a diagnostic has a line and a column, a placeholder
//! range is a `{{...}}` of the text, a valid project plans), so a fuzz failure
//! is a broken promise as well as a crash.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The marker line that starts an embedded file in a multi-file input: the
/// lane file comes first, then `#@ <relative path>` and the file's text, as
/// often as needed. It is a YAML comment, so a mutated marker leaves the
/// lane file parseable.
pub const FILE_MARKER: &str = "#@ ";

/// Splits a multi-file input into its first part and its embedded files.
/// Paths that are not plain relative paths (absolute, `..`, odd characters)
/// are dropped with their file.
pub fn split_files(input: &str) -> (&str, Vec<(PathBuf, &str)>) {
    let mut parts = Vec::new();
    let mut first_end = input.len();
    let mut marks: Vec<(usize, usize)> = Vec::new(); // (marker start, content start)
    let mut offset = 0;
    for line in input.split_inclusive('\n') {
        if line.starts_with(FILE_MARKER) {
            if marks.is_empty() {
                first_end = offset;
            }
            marks.push((offset, offset + line.len()));
        }
        offset += line.len();
    }
    for (i, &(start, content)) in marks.iter().enumerate() {
        let end = marks.get(i + 1).map_or(input.len(), |m| m.0);
        let name = input[start + FILE_MARKER.len()..content].trim();
        if let Some(path) = plain_relative(name) {
            parts.push((path, &input[content..end]));
        }
    }
    (&input[..first_end], parts)
}

fn plain_relative(name: &str) -> Option<PathBuf> {
    let ok = !name.is_empty()
        && name.len() < 200
        && !name.starts_with('/')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    ok.then(|| PathBuf::from(name))
}

/// Whether any string in a YAML document could name a path outside the
/// scratch directory (absolute, `..`, `~`): the lane-file target skips such
/// inputs, since the validator would then read the machine's real files (a
/// `manifests: [/]` walks the whole disk), which is slow, not wrong.
pub fn escapes(value: &Value) -> bool {
    match value {
        Value::String(s) => s.starts_with('/') || s.starts_with('~') || s.contains(".."),
        Value::Array(a) => a.iter().any(escapes),
        Value::Object(o) => o
            .iter()
            .any(|(k, v)| escapes(&Value::String(k.clone())) || escapes(v)),
        _ => false,
    }
}

/// A private scratch directory for this process, emptied on each call.
pub fn scratch(target: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("harness-fuzz")
        .join(format!("{target}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Writes embedded files under `dir`; a path that collides with an
/// earlier one (a file where a directory must be) is skipped.
pub fn write_files(dir: &Path, files: &[(PathBuf, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent()
            && std::fs::create_dir_all(parent).is_err()
        {
            continue;
        }
        let _ = std::fs::write(path, text);
    }
}

/// The Kubernetes objects in a JSON text: one object, a list (`items`), or
/// newline-delimited watch events (`{"type": …, "object": …}`), in order.
pub fn objects(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(doc) => vec![doc],
        Err(_) => text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect(),
    };
    let mut out = Vec::new();
    for doc in docs {
        flatten(doc, &mut out, 0);
    }
    out
}

fn flatten(doc: Value, out: &mut Vec<Value>, depth: usize) {
    if depth > 3 {
        return;
    }
    match doc {
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out, depth + 1)),
        Value::Object(mut map) => {
            if let Some(Value::Array(items)) = map.remove("items") {
                items.into_iter().for_each(|i| flatten(i, out, depth + 1));
            } else if map.contains_key("type")
                && let Some(object) = map.remove("object")
            {
                flatten(object, out, depth + 1);
            } else {
                out.push(Value::Object(map));
            }
        }
        _ => {}
    }
}

/// The kind of an object, when it says.
pub fn kind_of(value: &Value) -> Option<&str> {
    value.get("kind").and_then(Value::as_str)
}
