//! Making what is gathered safe to share.
//!
//! Two passes. Structurally, every object loses `metadata.managedFields`,
//! and Secrets keep their keys but not their values (`data`, `stringData`,
//! and the `last-applied-configuration` annotation, which holds a copy).
//! Then, textually, every secret value known from the gathered Secrets is
//! replaced wherever else it appears: in pod specs, events, and logs (an
//! application printing its database password, an env var set from a
//! Secret and echoed). Very short values are left to the structural pass:
//! scrubbing a three-letter string from every log would destroy the logs
//! without protecting anything.

use std::collections::BTreeSet;
use std::io::{self, Write};

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use serde_json::Value;

/// What replaces a secret value.
pub const REDACTED: &str = "<redacted>";

/// Values shorter than this are redacted structurally only.
pub const MIN_SCRUB_LEN: usize = 6;

/// Keys of a service account token Secret whose values are public: the
/// cluster's CA certificate and the Secret's own namespace. Scrubbing them
/// from every file would replace the namespace's name everywhere (clusters
/// before 1.24 make one such Secret per service account).
const PUBLIC_TOKEN_KEYS: [&str; 2] = ["ca.crt", "namespace"];

/// Removes `metadata.managedFields` and, for Secrets, every value.
/// Returns the secret values found (decoded), for [`Redactor::new`]: all of
/// them but the public ones of a service account token, and any equal to
/// the Secret's own namespace, which is a name, not a secret.
pub fn sanitize(object: &mut Value) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if object.get("kind").and_then(Value::as_str) != Some("Secret") {
        return secrets;
    }
    let token =
        object.get("type").and_then(Value::as_str) == Some("kubernetes.io/service-account-token");
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let public = |key: &str, value: &str| {
        (token && PUBLIC_TOKEN_KEYS.contains(&key)) || namespace.as_deref() == Some(value)
    };
    if let Some(data) = object.get_mut("data").and_then(Value::as_object_mut) {
        for (key, value) in data.iter_mut() {
            if let Some(encoded) = value.as_str() {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
                if !decoded.as_deref().is_some_and(|d| public(key, d)) {
                    secrets.extend(decoded);
                    // The encoded form can leak too (e.g. a manifest in a ConfigMap).
                    secrets.push(encoded.to_owned());
                }
            }
            *value = Value::String(REDACTED.into());
        }
    }
    if let Some(data) = object.get_mut("stringData").and_then(Value::as_object_mut) {
        for (key, value) in data.iter_mut() {
            if let Some(plain) = value.as_str()
                && !public(key, plain)
            {
                secrets.push(plain.to_owned());
            }
            *value = Value::String(REDACTED.into());
        }
    }
    if let Some(v) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        .and_then(|a| a.get_mut("kubectl.kubernetes.io/last-applied-configuration"))
    {
        *v = Value::String(REDACTED.into());
    }
    secrets
}

/// `value` as a JSON string with every non-ASCII character escaped
/// (`\u00e9`), as some writers (Go's `encoding/json` with `SetEscapeHTML`,
/// Python's `json.dumps`) write it.
fn ascii_escaped(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    let inner = &quoted[1..quoted.len().saturating_sub(1).max(1)];
    let mut out = String::with_capacity(inner.len());
    for c in inner.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Scrubs known secret values from text and streams.
#[derive(Clone, Debug)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    count: usize,
}

impl Redactor {
    /// A redactor for these values (short ones are ignored, see the module
    /// doc). Each value is also looked for as a JSON (or YAML double-quoted)
    /// string writes it, escapes and all: the harness's own records — the
    /// event stream, the diagnosis — are JSON, and `pa"ss\word` appears
    /// there as `pa\"ss\\word`.
    pub fn new<I: IntoIterator<Item = String>>(values: I) -> Self {
        let values: BTreeSet<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_SCRUB_LEN)
            .flat_map(|v| {
                let quoted = serde_json::to_string(&v).unwrap_or_default();
                let escaped = quoted[1..quoted.len().saturating_sub(1).max(1)].to_owned();
                let ascii = ascii_escaped(&v);
                [Some(v), Some(escaped), Some(ascii)]
            })
            .flatten()
            .collect();
        let count = values.len();
        // Leftmost-longest: a value that contains another is replaced whole.
        let matcher = (!values.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&values)
                .expect("literal patterns always build")
        });
        Self { matcher, count }
    }

    /// How many values it scrubs.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn text(&self, text: &str) -> String {
        match &self.matcher {
            None => text.to_owned(),
            Some(m) => m.replace_all(text, &vec![REDACTED; self.count]),
        }
    }

    /// A writer that scrubs everything written through it before passing
    /// it on, holding back only as many bytes as a value could still span,
    /// so logs are streamed, never held whole. Call [`ScrubWriter::finish`].
    pub fn writer<W: Write>(&self, inner: W) -> ScrubWriter<W> {
        let hold = self
            .matcher
            .as_ref()
            .map_or(0, |m| m.max_pattern_len().saturating_sub(1));
        ScrubWriter {
            redactor: self.clone(),
            inner,
            carry: Vec::new(),
            hold,
        }
    }
}

/// See [`Redactor::writer`].
pub struct ScrubWriter<W: Write> {
    redactor: Redactor,
    inner: W,
    carry: Vec<u8>,
    hold: usize,
}

impl<W: Write> ScrubWriter<W> {
    /// Scrubs `carry[..]` up to a safe cut and writes it; keeps the rest.
    fn drain(&mut self, last: bool) -> io::Result<()> {
        let Some(matcher) = &self.redactor.matcher else {
            self.inner.write_all(&self.carry)?;
            self.carry.clear();
            return Ok(());
        };
        let mut cut = if last {
            self.carry.len()
        } else {
            self.carry.len().saturating_sub(self.hold)
        };
        let mut out = Vec::with_capacity(cut);
        let mut written = 0;
        for m in matcher.find_iter(&self.carry) {
            if m.start() >= cut {
                break;
            }
            // A match that starts before the cut is complete in the buffer
            // (no value is longer than `hold + 1`): take it whole.
            cut = cut.max(m.end());
            out.extend_from_slice(&self.carry[written..m.start()]);
            out.extend_from_slice(REDACTED.as_bytes());
            written = m.end();
        }
        out.extend_from_slice(&self.carry[written..cut]);
        self.inner.write_all(&out)?;
        self.carry.drain(..cut);
        Ok(())
    }

    /// Writes what is held back and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ScrubWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.carry.extend_from_slice(buf);
        if self.carry.len() > self.hold.max(8 * 1024) {
            self.drain(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Held-back bytes may be the start of a value: only `finish` may write them.
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Value {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/k8s")
            .join(path);
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn captured_secret_loses_its_values_but_keeps_its_keys() {
        let mut secret = fixture("pod-create-container-config-error/secret.app-secret.json");
        let original = secret.clone();
        let found = sanitize(&mut secret);
        let keys: Vec<&String> = original["data"].as_object().unwrap().keys().collect();
        assert!(!keys.is_empty());
        for key in keys {
            assert_eq!(secret["data"][key], REDACTED);
        }
        assert!(found.contains(&"value".to_string()), "{found:?}");
        assert!(found.contains(&"dmFsdWU=".to_string()), "{found:?}");
        let text = serde_json::to_string(&secret).unwrap();
        assert!(!text.contains("dmFsdWU="), "{text}");
    }

    #[test]
    fn a_service_account_tokens_public_values_are_not_scrubbed_elsewhere() {
        // Captured on the 1.20 test cluster (its token value replaced).
        let mut secret = fixture("secret-sa-token/secret.default-token-dwtfr.json");
        let found = sanitize(&mut secret);
        for key in ["ca.crt", "namespace", "token"] {
            assert_eq!(secret["data"][key], REDACTED, "{key}");
        }
        // Only the token is a secret: the namespace's name and the CA stay
        // readable in every other file.
        assert_eq!(
            found,
            [
                "REDACTED-service-account-token".to_string(),
                "UkVEQUNURUQtc2VydmljZS1hY2NvdW50LXRva2Vu".to_string()
            ]
        );
        let r = Redactor::new(found);
        assert_eq!(
            r.text("namespace: story-lane\ntoken: REDACTED-service-account-token\n"),
            "namespace: story-lane\ntoken: <redacted>\n"
        );
        // Any Secret's value that is its own namespace is a name, not a secret.
        let mut opaque = serde_json::json!({"kind": "Secret", "type": "Opaque",
            "metadata": {"name": "s", "namespace": "story-lane"},
            "stringData": {"ns": "story-lane", "password": "hunter2hunter2"}});
        assert_eq!(sanitize(&mut opaque), ["hunter2hunter2".to_string()]);
        assert_eq!(opaque["stringData"]["ns"], REDACTED);
    }

    #[test]
    fn managed_fields_and_last_applied_are_removed() {
        let mut obj = serde_json::json!({
            "kind": "Secret",
            "metadata": {
                "name": "s",
                "managedFields": [{"manager": "harness"}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"stringData\":{\"pw\":\"hunter2hunter2\"}}"}
            },
            "stringData": {"pw": "hunter2hunter2"}
        });
        let found = sanitize(&mut obj);
        let text = obj.to_string();
        assert!(!text.contains("managedFields"));
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(found, vec!["hunter2hunter2".to_string()]);
        let mut pod =
            serde_json::json!({"kind": "Pod", "metadata": {"name": "p", "managedFields": []}});
        assert!(sanitize(&mut pod).is_empty());
        assert!(pod["metadata"].get("managedFields").is_none());
    }

    use std::io::Read;

    #[test]
    fn scrubs_values_in_text_and_across_stream_chunk_boundaries() {
        let r = Redactor::new([
            "s3cr3t-password".to_string(),
            "s3cr3t".to_string(),
            "abc".to_string(),
        ]);
        assert_eq!(r.len(), 2, "short values are structural-only");
        assert_eq!(
            r.text("pw=s3cr3t-password and s3cr3t"),
            "pw=<redacted> and <redacted>"
        );
        // A reader that returns one byte at a time puts every match across a boundary.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let mut w = r.writer(Vec::new());
        io::copy(&mut Trickle(b"connecting with s3cr3t-password\n"), &mut w).unwrap();
        assert_eq!(
            String::from_utf8(w.finish().unwrap()).unwrap(),
            "connecting with <redacted>\n"
        );
        // Large writes with values straddling the 8 KiB drain points.
        let line = "x".repeat(8190) + "s3cr3t-password" + &"y".repeat(8190) + "s3cr3t";
        let mut w = r.writer(Vec::new());
        for chunk in line.as_bytes().chunks(4093) {
            w.write_all(chunk).unwrap();
        }
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert!(!out.contains("s3cr3t"), "a value survived");
        assert_eq!(out.matches(REDACTED).count(), 2);
        assert_eq!(
            out.len(),
            line.len() - "s3cr3t-password".len() - "s3cr3t".len() + 2 * REDACTED.len()
        );
        let none = Redactor::new(Vec::new());
        let mut w = none.writer(Vec::new());
        w.write_all(b"as is").unwrap();
        assert_eq!(w.finish().unwrap(), b"as is");
    }

    #[test]
    fn values_are_found_as_json_writes_them_too() {
        let r = Redactor::new(["pa\"ss\\wörd\n1".to_string()]);
        let event = serde_json::json!({"event": "suite_output", "line": "pw=pa\"ss\\wörd\n1"});
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains(r#"pa\"ss\\wörd\n1"#), "{json}");
        assert_eq!(
            r.text(&json),
            r#"{"event":"suite_output","line":"pw=<redacted>"}"#
        );
        // With non-ASCII escaped, as Python and some Go writers do.
        assert_eq!(
            r.text(r#"{"line":"pa\"ss\\w\u00f6rd\n1"}"#),
            r#"{"line":"<redacted>"}"#
        );
        // A plain value has one form only.
        assert_eq!(Redactor::new(["plain-value".to_string()]).len(), 1);
    }
}
