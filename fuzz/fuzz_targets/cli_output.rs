//! What the node and kind print, as harness reads it: `ctr images ls`
//! (the node's image inventory), `ctr content ls` (its blobs),
//! `containerd config dump` (its snapshotter), and kind's `get clusters`,
//! `get kubeconfig` and error output. The same text is fed to each reader.

#![no_main]

use harness::cluster::kind::{fix_for, is_transient, lists_cluster, strip_banner};
use harness::cluster::nodes::{
    Decision, decide, normalize_reference, parse_ctr_content, parse_ctr_images,
    snapshotter_from_config,
};
use harness::config::EngineKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let inventory = parse_ctr_images(&text);
    for image in &inventory.images {
        if let Some(id) = &image.id {
            // An image known by content and name is present under that name.
            for name in &image.names {
                if normalize_reference(name) == *name {
                    assert_eq!(decide(name, id, &inventory), Decision::Present, "{name}");
                }
            }
        }
        for name in &image.names {
            let once = normalize_reference(name);
            assert_eq!(
                normalize_reference(&once),
                once,
                "normalizing `{name}` twice"
            );
        }
    }
    let _ = decide("harness/app:1", "sha256:00", &inventory);
    // Every blob is a digest, and only lines that start with one are.
    let held = parse_ctr_content(&text);
    for digest in held.0.keys() {
        let (alg, hex) = digest.split_once(':').expect("alg:hex");
        assert!(matches!((alg, hex.len()), ("sha256", 64) | ("sha512", 128)), "{digest}");
        assert!(text.lines().any(|l| l.split_whitespace().next() == Some(digest)));
    }
    if let Some(s) = snapshotter_from_config(&text) {
        assert!(!s.is_empty());
    }
    for line in text.lines().take(32) {
        assert!(lists_cluster(&text, line.trim()) || line.trim().is_empty());
    }
    if let Some(config) = strip_banner(&text) {
        assert!(config.starts_with("apiVersion:") && text.ends_with(config));
    }
    let _ = is_transient(&text);
    for engine in [EngineKind::Docker, EngineKind::Podman] {
        let _ = fix_for(&["create".into()], &text, engine, "c1");
    }
});
