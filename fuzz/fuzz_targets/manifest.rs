//! Manifests: finding and filling `{{placeholders}}`, the validator's check
//! of a manifest file, and deploy's parse of the filled text into objects.

#![no_main]

use std::path::Path;

use harness::config::manifests::{check, fill, placeholders};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let found = placeholders(text);
    let mut last_end = 0;
    for p in &found {
        // Each range is a `{{…}}` of the text, in order, not overlapping,
        // and its line/column point at it.
        assert!(p.range.start >= last_end, "{p:?}");
        let whole = &text[p.range.clone()];
        assert!(whole.starts_with("{{") && whole.ends_with("}}"), "{p:?}");
        assert_eq!(whole[2..whole.len() - 2].trim(), p.name);
        assert!(p.line >= 1 && p.column >= 1);
        let line = text.lines().nth(p.line as usize - 1).unwrap_or("");
        let at: String = line.chars().skip(p.column as usize - 1).take(2).collect();
        assert_eq!(at, "{{", "{p:?}");
        last_end = p.range.end;
    }
    // Filling nothing changes nothing.
    assert_eq!(fill(text, |_| None), text);
    let images = ["app", "db"];
    let refs: indexmap::IndexMap<String, String> = images
        .iter()
        .map(|i| {
            (
                i.to_string(),
                format!("localhost/harness/{i}:0123456789abcdef"),
            )
        })
        .collect();
    match check(Path::new("m.yaml"), text, "fx", &images) {
        Ok(_) => {
            // What validation accepts, deploy parses: the same text filled
            // with the real values.
            let filled = fill(text, |name| match name.split_once('.') {
                Some(("image", i)) => refs.get(i).cloned(),
                _ => Some(match name {
                    "namespace" => "fx".to_owned(),
                    "lane" => "main".to_owned(),
                    _ => "c1".to_owned(),
                }),
            });
            match harness::deploy::manifests::parse_documents(&filled) {
                Ok(objects) => {
                    let _ = harness::deploy::manifests::crds_first(objects);
                }
                Err(e) => panic!("validated manifest does not parse for deploy: {e}"),
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            for d in &problems {
                assert!(d.at.line >= 1 && d.at.column >= 1, "{d:?}");
            }
        }
    }
    // Deploy's parse on the raw text never panics either.
    let _ = harness::deploy::manifests::parse_documents(text);
});
