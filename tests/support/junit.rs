//! The run's JUnit report as CI tools read it: its re-run elements
//! checked against the Surefire schema's rules with xmllint.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Validates each `<flakyFailure>`, `<rerunFailure>`, `<flakyError>` and
/// `<rerunError>` of a JUnit report against the Surefire 3.0 schema (with
/// xmllint), each inside a minimal `<testcase>` of a minimal `<testsuite>`:
/// the elements as harness writes them, whatever the suites wrote around
/// them. Returns how many were checked.
pub fn validate_reruns(junit: &str) -> usize {
    let schema = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("tests/fixtures/junit/surefire-reruns.xsd");
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for tag in ["flakyFailure", "rerunFailure", "flakyError", "rerunError"] {
        let mut rest = junit;
        while let Some(start) = rest.find(&format!("<{tag}")) {
            let end = rest[start..]
                .find(&format!("</{tag}>"))
                .map(|e| start + e + tag.len() + 3)
                .expect("a closed element");
            let doc = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"s\" tests=\"1\" errors=\"0\" skipped=\"0\" failures=\"0\"><testcase name=\"c\" time=\"0\">{}</testcase></testsuite>\n",
                &rest[start..end]
            );
            let file = dir.path().join(format!("{tag}-{checked}.xml"));
            std::fs::write(&file, &doc).unwrap();
            let out = match Command::new("xmllint")
                .args(["--noout", "--schema"])
                .arg(&schema)
                .arg(&file)
                .output()
            {
                Ok(out) => out,
                Err(e) => {
                    assert!(
                        std::env::var("HARNESS_REQUIRE_ENGINE").as_deref() != Ok("1"),
                        "xmllint cannot run ({e}): scripts/install-deps installs libxml2-utils"
                    );
                    eprintln!(
                        "skipped: xmllint cannot run ({e}); scripts/install-deps installs it"
                    );
                    return usize::MAX;
                }
            };
            assert!(
                out.status.success(),
                "{tag} is not valid per the Surefire schema:\n{doc}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
            rest = &rest[end..];
        }
    }
    checked
}
