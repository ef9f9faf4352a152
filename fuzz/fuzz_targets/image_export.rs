//! The engine's image export as harness rewrites it for one node
//! (`cluster::layout`): the input's first byte picks a chunk size, the rest
//! is the export; the images are two whose layers the fixture save has, and
//! the node holds one of their layers. Checked beyond no panic: cutting the
//! export differently changes nothing; a layout that is made is a tar whose
//! every entry is a blob by digest (never one the node holds), an unnamed
//! blob, `index.json` or `oci-layout`; its bytes are what it says it sent,
//! and the images' shares add up to them.

#![no_main]

use std::collections::HashSet;
use std::io::Read as _;

use bytes::Bytes;
use harness::cluster::layout::{ExportedImage, Layout};
use libfuzzer_sys::fuzz_target;

const BOTTOM: &str = "sha256:6531bfd96fffb947b95847ef3d536e8a26d12ff3673b090103e49c7921ec6e02";
const A_TOP: &str = "sha256:0753099069ec63c9cade504164192d8ba3ff4272ff03a53cf770aaf68d99270c";
const B_TOP: &str = "sha256:4e108662fdaec1d9ed6a4bfdd17e33b6d27e58d962506b83571cc466b480f336";

fn images() -> Vec<ExportedImage> {
    vec![
        ExportedImage {
            id: "sha256:8d1800e8e2d2876a58284a30e1e62109f58e966833f13a2ce3ceca887099a7df".into(),
            diff_ids: vec![BOTTOM.into(), A_TOP.into()],
        },
        ExportedImage {
            id: "sha256:f34c68907e6c4bf9da6c1c78c866adbcc481dd5e1438f74a27fb13c05871d3c9".into(),
            diff_ids: vec![BOTTOM.into(), A_TOP.into(), B_TOP.into()],
        },
    ]
}

fn convert(export: &Bytes, chunk: usize) -> (Vec<u8>, Result<harness::cluster::layout::Sent, String>) {
    let held: HashSet<String> = [BOTTOM.to_owned()].into_iter().collect();
    let mut layout = Layout::new(images(), held);
    let mut out = Vec::new();
    let mut start = 0;
    while start < export.len() {
        let end = (start + chunk).min(export.len());
        layout.feed(&export.slice(start..end), &mut out);
        start = end;
    }
    let done = layout.finish(&mut out).map_err(|e| e.to_string());
    (out.iter().flat_map(|b| b.iter().copied()).collect(), done)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, export)) = data.split_first() else {
        return;
    };
    let export = Bytes::copy_from_slice(export);
    let (whole, done) = convert(&export, export.len().max(1));
    let (cut_out, cut_done) = convert(&export, usize::from(cut) + 1);
    assert_eq!(whole, cut_out, "cut in chunks of {}", usize::from(cut) + 1);
    assert_eq!(done, cut_done);
    let Ok(sent) = done else { return };
    assert_eq!(sent.total, whole.len() as u64);
    assert_eq!(whole.len() % 512, 0);
    assert_eq!(sent.per_image.iter().sum::<u64>(), sent.total);
    let mut tar = tar::Archive::new(whole.as_slice());
    for entry in tar.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        let path = entry.path().expect("a path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("its data");
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            assert_ne!(format!("sha256:{hex}"), BOTTOM, "a blob the node holds was sent");
        } else {
            assert!(
                path.starts_with("blobs/sha512/")
                    || path.starts_with("harness-unnamed/")
                    || path == "index.json"
                    || path == "oci-layout",
                "{path}"
            );
        }
    }
});
