//! The lane file loader and validator: bytes → a [`Project`] or
//! diagnostics that each name a file, a line and a column.
//!
//! Input: the lane file, then optional embedded files (`#@ kind.yaml` and
//! its text; see `harness_fuzz::split_files`) written beside it, so that
//! manifests, kind configs and Dockerfiles it names exist and are fuzzed
//! together with it. A valid project must also plan, resolve every
//! endpoint of every lane, and render every component's manifests as
//! deploy does, since validation promised all three.

#![no_main]

use harness::config::{self, ConfigError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return; // the loader reads UTF-8 text; anything else is a read error
    };
    let (lane_text, files) = harness_fuzz::split_files(input);
    // Paths that leave the scratch directory would make the validator read
    // the machine's files: slow, not wrong. Skip those inputs.
    if let Ok(docs) = serde_saphyr::from_multiple::<serde_json::Value>(lane_text)
        && docs.iter().any(harness_fuzz::escapes)
    {
        return;
    }
    let dir = harness_fuzz::scratch("lane_file");
    harness_fuzz::write_files(&dir, &files);
    let path = dir.join("harness.yaml");
    match config::load_text(&path, lane_text) {
        Ok(project) => valid(&project),
        Err(ConfigError::Invalid { diagnostics, .. }) if !diagnostics.is_empty() => {
            for d in &diagnostics {
                for at in std::iter::once(&d.at).chain(d.notes.iter().map(|n| &n.at)) {
                    assert!(at.line >= 1 && at.column >= 1, "no line/column: {d:?}");
                }
            }
            // Rendering quotes the lines the diagnostics point at.
            let err = config::load_text(&path, lane_text).unwrap_err();
            let _ = err.rendered();
            let _ = err.to_string();
        }
        Err(e) => panic!("load_text gave neither a project nor diagnostics: {e:?}"),
    }
});

fn valid(project: &config::Project) {
    let plan = harness::plan::plan(project, None).expect("a valid project plans");
    let _ = harness::plan::render_text(&plan, project);
    serde_json::to_string(&plan).expect("a plan serializes");
    for lane in project.lanes.values() {
        harness::plan::plan(project, Some(&lane.name)).expect("each lane plans");
        let closure = harness::plan::closure(project, &lane.components);
        let images: indexmap::IndexMap<String, String> =
            harness::images::lane_images(project, lane)
                .into_iter()
                .map(|i| {
                    let reference = format!("localhost/harness/{i}:0123456789abcdef");
                    (i, reference)
                })
                .collect();
        for name in &closure {
            let component = &project.components[name.as_str()];
            let urls = component
                .endpoint
                .iter()
                .chain(component.health.as_ref().map(|h| &h.url));
            for url in urls {
                lane.resolve_url(url)
                    .unwrap_or_else(|m| panic!("validated url {url} misses ports {m:?}"));
            }
            if let Err(e) = harness::deploy::manifests::render(component, lane, &images) {
                panic!("validated component `{name}` does not render: {e}");
            }
        }
        let _ = harness::suites::stage::endpoints(project, lane);
        let _ = harness::suites::stage::suite_specs(lane, &Default::default());
    }
}
