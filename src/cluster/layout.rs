//! The engine's image export, turned on the fly into an OCI image layout
//! that carries only the blobs a node lacks.
//!
//! `ctr images import` reads every byte it is given and discards the
//! blobs its content store already has (containerd#11978), so sending a
//! node the 140 MB base layer its own images share costs the whole read.
//! But it does not need them: the layers of an imported image are read only
//! when unpacked, and then from the content store, however they got there.
//! So [`Layout`] sits between the engine's export and one node's import and
//! rewrites the stream as it passes, with no temp file and no second read:
//! every blob the node lacks is passed on under `blobs/<alg>/<hex>` (its
//! data as slices of the engine's chunks, never copied); a blob the node
//! holds, or one already passed, is read past and dropped; and at the end,
//! from the export's `manifest.json`, come one Docker schema 2 manifest per
//! image — byte for byte the one containerd writes when it imports the
//! engine's archive itself, so either road gives the node the same image —
//! an `index.json` naming each image as its tags do, and `oci-layout`.
//! What a blob is must be known when its header passes. Where the export
//! names blobs by digest (Docker ≥ 25 and Podman: `blobs/sha256/<hex>`,
//! `<hex>.tar`; configs `<hex>.json`) that is its name. Docker < 25 writes
//! each layer as `<v1 id>/layer.tar`, after `<v1 id>/json`; the v1 ID is a
//! hash of that json with the layer's chain ID, so hashing it with each
//! chain ID of the images' layers (known from `docker image inspect` before
//! the export) names the layer ([`v1_layer`]). A layer that cannot be named
//! is passed on anyway — sending a blob the node holds costs bytes, not
//! correctness — and named at the end from its place in `manifest.json`.
//! Anything this cannot make sense of is an error, and the caller sends the
//! whole export instead. Bytes are attributed as [`super::archive`] does:
//! each blob to the first image (in load order) that has it, the layout's
//! own files to the first image, so the lines add up to the bytes sent.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::archive::{BLOCK, Kind, MAX_MANIFEST, ManifestImage, Piece, Reader, normalize, parent};

/// Media types as containerd's importer names what it finds in a Docker
/// archive (so that the manifests written here are the ones it writes).
const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
const LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// A v1 layer's `json` is the image's config at most: a few kB.
const MAX_V1_JSON: usize = 1 << 20;
static ZEROS: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// One image of the export, as the engine describes it beforehand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedImage {
    /// The image ID: `sha256:` and its config's digest.
    pub id: String,
    /// Its layers' diff IDs (`RootFS.Layers`), bottom first: for the
    /// engine's uncompressed layer blobs, their digests.
    pub diff_ids: Vec<String>,
}

/// Why an export could not be turned into a layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("the export has no manifest.json")]
    NoManifest,
    #[error("the export's manifest.json cannot be read")]
    BadManifest(#[source] serde_json::Error),
    #[error("the config `{path}` named by the export's manifest.json is not in it")]
    ConfigMissing { path: String },
    #[error("layer {index} (`{path}`) of image {image} cannot be identified")]
    LayerUnknown {
        image: String,
        index: usize,
        path: String,
    },
}

/// What a finished layout sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Per image, in the order given, the bytes attributed to it; they sum
    /// to `total`.
    pub per_image: Vec<u64>,
    /// Bytes of the layout, every one passed on.
    pub total: u64,
    /// The digests of the blobs passed on, in order.
    pub blobs: Vec<String>,
    /// The images' blobs (configs and layers) left out because the node
    /// holds them, and their bytes.
    pub held: Vec<String>,
    pub held_bytes: u64,
}

/// One blob of the export (a config or a layer), by its path there.
#[derive(Clone, Debug, Default)]
struct Blob {
    digest: Option<String>,
    size: u64,
    /// Its first bytes (for the compression, hence the media type).
    magic: Vec<u8>,
    /// Where in `out` it was passed on, if it was.
    out: Option<usize>,
}

#[derive(Debug)]
enum Action {
    Pass,
    Drop,
    Keep(Vec<u8>, Kept),
}

#[derive(Debug)]
enum Kept {
    Manifest,
    Index,
    V1Json(String),
}

#[derive(Debug)]
struct Current {
    path: String,
    size: u64,
    action: Action,
    cap: usize,
}

/// Converts one export for one node, chunk by chunk.
#[derive(Debug)]
pub struct Layout {
    reader: Reader,
    state: State,
}

#[derive(Debug)]
struct State {
    images: Vec<ExportedImage>,
    /// Every chain of the images' layers.
    chains: Vec<Chain>,
    held: HashSet<String>,
    passed: HashSet<String>,
    blobs: HashMap<String, Blob>,
    links: HashMap<String, String>,
    /// Docker < 25's layer directories, named.
    v1: HashMap<String, Chain>,
    current: Option<Current>,
    manifest: Option<Vec<u8>>,
    engine_index: Option<Vec<u8>>,
    /// What was passed on, entry by entry: its digest when known, its bytes.
    out: Vec<(Option<String>, u64)>,
    unnamed: usize,
}

impl Layout {
    /// A layout of `images` (in load order) for a node holding `held`
    /// (digests, `sha256:<hex>`).
    pub fn new(images: Vec<ExportedImage>, held: HashSet<String>) -> Layout {
        let mut chains: Vec<Chain> = Vec::new();
        for image in &images {
            for chain in chains_of(&image.diff_ids) {
                if !chains.iter().any(|c| c.id == chain.id) {
                    chains.push(chain);
                }
            }
        }
        Layout {
            reader: Reader::new(),
            state: State {
                images,
                chains,
                held,
                passed: HashSet::new(),
                blobs: HashMap::new(),
                links: HashMap::new(),
                v1: HashMap::new(),
                current: None,
                manifest: None,
                engine_index: None,
                out: Vec::new(),
                unnamed: 0,
            },
        }
    }

    /// Reads the next chunk of the export; what the node gets of it is
    /// pushed to `out` (slices of `chunk` and headers written here).
    pub fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Bytes>) {
        let state = &mut self.state;
        self.reader
            .feed(chunk, &mut |piece| state.piece(piece, chunk, out));
    }

    /// The end of the export: the manifests, the index and `oci-layout`
    /// are pushed to `out`, and the archive is closed.
    pub fn finish(self, out: &mut Vec<Bytes>) -> Result<Sent, LayoutError> {
        let _torn = self.reader.finish();
        self.state.finish(out)
    }
}

impl State {
    fn piece(&mut self, piece: Piece<'_>, chunk: &Bytes, out: &mut Vec<Bytes>) {
        match piece {
            Piece::Start(h) => self.start(h, out),
            Piece::Data(data) => {
                let Some(current) = &mut self.current else {
                    return;
                };
                if let Some(blob) = self.blobs.get_mut(&current.path)
                    && blob.magic.len() < 4
                {
                    let take = (4 - blob.magic.len()).min(data.len());
                    blob.magic.extend_from_slice(&data[..take]);
                }
                match &mut current.action {
                    Action::Pass => out.push(chunk.slice_ref(data)),
                    Action::Drop => {}
                    Action::Keep(buf, _) => {
                        if buf.len() + data.len() > current.cap {
                            current.action = Action::Drop;
                        } else {
                            buf.extend_from_slice(data);
                        }
                    }
                }
            }
            Piece::End => {
                let Some(current) = self.current.take() else {
                    return;
                };
                match current.action {
                    Action::Pass => {
                        let pad = padding(current.size);
                        if pad > 0 {
                            out.push(Bytes::from_static(&ZEROS[..pad as usize]));
                        }
                    }
                    Action::Drop => {}
                    Action::Keep(buf, Kept::Manifest) => self.manifest = Some(buf),
                    Action::Keep(buf, Kept::Index) => self.engine_index = Some(buf),
                    Action::Keep(buf, Kept::V1Json(dir)) => {
                        // A parent named already leaves only its chain's
                        // children to try.
                        let below = v1_parent(&buf)
                            .and_then(|p| self.v1.get(&p))
                            .map(|c| c.id.clone());
                        let found = match below {
                            Some(below) => {
                                let children: Vec<Chain> = self
                                    .chains
                                    .iter()
                                    .filter(|c| c.below.as_deref() == Some(&below))
                                    .cloned()
                                    .collect();
                                v1_layer(&buf, &children).cloned()
                            }
                            None => v1_layer(&buf, &self.chains).cloned(),
                        };
                        if let Some(chain) = found {
                            self.v1.insert(dir, chain);
                        }
                    }
                }
            }
            Piece::Loose(_) => {}
        }
    }

    fn start(&mut self, h: &super::archive::Header, out: &mut Vec<Bytes>) {
        let path = normalize(&h.path);
        let keep = |cap: usize, kept: Kept| match h.size as usize <= cap {
            true => (Action::Keep(Vec::with_capacity(h.size as usize), kept), cap),
            false => (Action::Drop, 0),
        };
        let (action, cap) = match h.kind {
            Kind::Symlink | Kind::HardLink => {
                let link = h.link.as_deref().unwrap_or_default();
                let target = match (h.kind, link.starts_with('/')) {
                    (Kind::Symlink, false) => normalize(&format!("{}/{link}", parent(&path))),
                    _ => normalize(link),
                };
                self.links.insert(path.clone(), target);
                (Action::Drop, 0)
            }
            Kind::Directory | Kind::Other => (Action::Drop, 0),
            Kind::File => match role(&path) {
                Role::Manifest => keep(MAX_MANIFEST, Kept::Manifest),
                Role::Index => keep(MAX_MANIFEST, Kept::Index),
                Role::Ignore => (Action::Drop, 0),
                Role::V1Json(dir) => keep(MAX_V1_JSON, Kept::V1Json(dir)),
                Role::V1Layer(dir) => {
                    let digest = self.v1.get(&dir).map(|c| c.diff.clone());
                    (self.blob(&path, digest, h.size, out), 0)
                }
                Role::Blob(digest) => (self.blob(&path, Some(digest), h.size, out), 0),
                Role::Other => (self.blob(&path, None, h.size, out), 0),
            },
        };
        self.current = Some(Current {
            path,
            size: h.size,
            action,
            cap,
        });
    }

    /// A blob at `path`: passed on unless the node holds it or it went
    /// already.
    fn blob(
        &mut self,
        path: &str,
        digest: Option<String>,
        size: u64,
        out: &mut Vec<Bytes>,
    ) -> Action {
        let mut blob = Blob {
            digest: digest.clone(),
            size,
            ..Blob::default()
        };
        let pass = match &digest {
            Some(d) => !self.held.contains(d) && !self.passed.contains(d),
            None => true,
        };
        let action = if pass {
            let name = match &digest {
                Some(d) => blob_path(d),
                None => None,
            }
            .unwrap_or_else(|| {
                self.unnamed += 1;
                format!("harness-unnamed/{}", self.unnamed)
            });
            out.push(tar_header(&name, size));
            if let Some(d) = &digest {
                self.passed.insert(d.clone());
            }
            blob.out = Some(self.out.len());
            self.out.push((digest, BLOCK as u64 + size + padding(size)));
            Action::Pass
        } else {
            Action::Drop
        };
        self.blobs.insert(path.to_owned(), blob);
        action
    }

    /// The blob a path of `manifest.json` names, through any links.
    fn resolve(&self, path: &str) -> Option<&Blob> {
        let mut path = normalize(path);
        for _ in 0..8 {
            if let Some(blob) = self.blobs.get(&path) {
                return Some(blob);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }

    fn finish(mut self, out: &mut Vec<Bytes>) -> Result<Sent, LayoutError> {
        let Some(manifest) = self.manifest.take() else {
            // An OCI layout without Docker's manifest.json: its own index
            // names the images, and its blobs went by digest.
            let index = self.engine_index.take().ok_or(LayoutError::NoManifest)?;
            self.file("index.json", &index, None, out);
            self.close(out);
            return Ok(self.sent(&[]));
        };
        let items: Vec<ManifestImage> =
            serde_json::from_slice(&manifest).map_err(LayoutError::BadManifest)?;
        let mut index = Vec::new();
        // Per image of `items`: the digests it names, for attribution.
        let mut named: Vec<(Option<usize>, Vec<String>)> = Vec::new();
        let mut held = Vec::new();
        let mut held_bytes = 0;
        for item in &items {
            let config = self
                .resolve(&item.config)
                .and_then(|b| Some((b.digest.clone()?, b.size)))
                .ok_or_else(|| LayoutError::ConfigMissing {
                    path: item.config.clone(),
                })?;
            let image = self.images.iter().position(|i| i.id == config.0);
            let known = image
                .map(|i| &self.images[i].diff_ids)
                .filter(|d| d.len() == item.layers.len());
            let mut layers = Vec::with_capacity(item.layers.len());
            for (k, path) in item.layers.iter().enumerate() {
                let unknown = || LayoutError::LayerUnknown {
                    image: config.0.clone(),
                    index: k,
                    path: path.clone(),
                };
                let blob = self.resolve(path).ok_or_else(unknown)?.clone();
                let digest = match (&blob.digest, known) {
                    (Some(d), _) => d.clone(),
                    (None, Some(diff_ids)) => diff_ids[k].clone(),
                    (None, None) => return Err(unknown()),
                };
                // A blob is passed on unless the node holds it or it went
                // already: it reaches the node either way.
                match blob.out {
                    Some(at) => {
                        self.out[at].0.get_or_insert_with(|| digest.clone());
                        self.passed.insert(digest.clone());
                    }
                    None if !self.passed.contains(&digest) && !held.contains(&digest) => {
                        held.push(digest.clone());
                        held_bytes += blob.size;
                    }
                    None => {}
                }
                layers.push(Descriptor {
                    media_type: layer_type(&blob.magic),
                    digest,
                    size: blob.size,
                    annotations: None,
                });
            }
            if self.held.contains(&config.0) && !self.passed.contains(&config.0) {
                held.push(config.0.clone());
                held_bytes += config.1;
            }
            let body = serde_json::to_vec(&Manifest {
                schema_version: 2,
                media_type: MANIFEST_TYPE,
                config: Descriptor {
                    media_type: CONFIG_TYPE,
                    digest: config.0.clone(),
                    size: config.1,
                    annotations: None,
                },
                layers: &layers,
            })
            .expect("a manifest serializes");
            let digest = sha256_digest(&body);
            let mut names: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
            names.push(config.0.clone());
            names.push(digest.clone());
            named.push((image, names));
            let path = blob_path(&digest).expect("a sha256 digest has a path");
            self.file(&path, &body, Some(digest.clone()), out);
            let descriptor = |annotations| Descriptor {
                media_type: MANIFEST_TYPE,
                digest: digest.clone(),
                size: body.len() as u64,
                annotations,
            };
            match item.repo_tags.as_deref().unwrap_or_default() {
                [] => index.push(descriptor(None)),
                tags => {
                    for tag in tags {
                        let name = super::nodes::normalize_reference(tag);
                        let annotations = vec![
                            (NAME_ANNOTATION, ref_name_of(&name).0.to_owned()),
                            (REF_ANNOTATION, ref_name_of(&name).1.to_owned()),
                        ];
                        index.push(descriptor(Some(annotations.into_iter().collect())));
                    }
                }
            }
        }
        let body = serde_json::to_vec(&Index {
            schema_version: 2,
            media_type: INDEX_TYPE,
            manifests: &index,
        })
        .expect("an index serializes");
        self.file("index.json", &body, None, out);
        self.close(out);
        let mut sent = self.sent(&named);
        sent.held = held;
        sent.held_bytes = held_bytes;
        Ok(sent)
    }

    /// A small file of the layout, whole.
    fn file(&mut self, name: &str, body: &[u8], digest: Option<String>, out: &mut Vec<Bytes>) {
        let pad = padding(body.len() as u64) as usize;
        let mut entry = Vec::with_capacity(BLOCK + body.len() + pad);
        entry.extend_from_slice(&tar_header(name, body.len() as u64));
        entry.extend_from_slice(body);
        entry.extend_from_slice(&ZEROS[..pad]);
        self.out.push((digest, entry.len() as u64));
        out.push(Bytes::from(entry));
    }

    /// `oci-layout`, and the two zero blocks that end an archive.
    fn close(&mut self, out: &mut Vec<Bytes>) {
        self.file(
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            None,
            out,
        );
        self.out.push((None, ZEROS.len() as u64));
        out.push(Bytes::from_static(&ZEROS));
    }

    /// Bytes per image (in the order given): each entry to the first image
    /// whose manifest names its digest, the rest to the first.
    fn sent(&self, named: &[(Option<usize>, Vec<String>)]) -> Sent {
        let mut owner: HashMap<&str, usize> = HashMap::new();
        let mut by_load: Vec<&(Option<usize>, Vec<String>)> = named.iter().collect();
        by_load.sort_by_key(|(image, _)| image.unwrap_or(usize::MAX));
        for (image, digests) in by_load {
            for d in digests {
                owner.entry(d.as_str()).or_insert(image.unwrap_or(0));
            }
        }
        let mut per_image = vec![0u64; self.images.len().max(1)];
        for (digest, bytes) in &self.out {
            let i = digest
                .as_deref()
                .and_then(|d| owner.get(d).copied())
                .unwrap_or(0);
            per_image[i] += bytes;
        }
        per_image.truncate(self.images.len());
        Sent {
            total: self.out.iter().map(|(_, b)| b).sum(),
            per_image,
            blobs: self.out.iter().filter_map(|(d, _)| d.clone()).collect(),
            ..Sent::default()
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: &'a [Descriptor],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: &'a [Descriptor],
}

/// An OCI descriptor, its fields in the order Go's image-spec writes them.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<std::collections::BTreeMap<&'static str, String>>,
}

/// What a path of an export is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Role {
    Manifest,
    /// An OCI layout's own index.
    Index,
    /// Metadata the layout has no use for (`repositories`, `VERSION`, the
    /// engine's `oci-layout`).
    Ignore,
    /// `<v1 id>/json` (Docker < 25).
    V1Json(String),
    /// `<v1 id>/layer.tar` (Docker < 25).
    V1Layer(String),
    /// A blob whose name is its digest.
    Blob(String),
    Other,
}

fn role(path: &str) -> Role {
    let parts: Vec<&str> = path.split('/').collect();
    match parts[..] {
        ["manifest.json"] => Role::Manifest,
        ["index.json"] => Role::Index,
        ["oci-layout" | "repositories"] => Role::Ignore,
        ["blobs", alg, hex] => match digest_of(alg, hex) {
            Some(d) => Role::Blob(d),
            None => Role::Other,
        },
        // Docker < 25 names configs `<hex>.json`; containers/image
        // (Podman) layers `<hex>.tar` too.
        [file] => match file
            .strip_suffix(".json")
            .or_else(|| file.strip_suffix(".tar"))
            .and_then(|hex| digest_of("sha256", hex))
        {
            Some(d) => Role::Blob(d),
            None => Role::Other,
        },
        [dir, name] if is_hex(dir, 64) => match name {
            "json" => Role::V1Json(dir.to_owned()),
            "layer.tar" => Role::V1Layer(dir.to_owned()),
            "VERSION" => Role::Ignore,
            _ => Role::Other,
        },
        _ => Role::Other,
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn digest_of(alg: &str, hex: &str) -> Option<String> {
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return None,
    };
    is_hex(hex, len).then(|| format!("{alg}:{hex}"))
}

/// `blobs/<alg>/<hex>`, when it fits a tar header.
fn blob_path(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    let path = format!("blobs/{alg}/{hex}");
    (path.len() < 100).then_some(path)
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn tar_header(name: &str, size: u64) -> Bytes {
    let mut h = tar::Header::new_ustar();
    // Names are written here (`blobs/…`, `harness-unnamed/<n>`, the
    // layout's files): short, relative and plain.
    h.set_path(name).expect("a short relative path");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Bytes::copy_from_slice(h.as_bytes())
}

/// A layer's media type by its first bytes, as containerd tells them.
fn layer_type(magic: &[u8]) -> &'static str {
    match magic {
        [0x1f, 0x8b, ..] => LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => LAYER_ZSTD,
        _ => LAYER_TAR,
    }
}

/// The name and tag annotations of a normalized reference
/// (`docker.io/library/busybox:1` → it, `1`), as containerd writes them.
fn ref_name_of(name: &str) -> (&str, &str) {
    let last = name.rsplit('/').next().unwrap_or(name);
    let object = match (last.find('@'), last.find(':')) {
        (Some(at), _) => &last[at..],
        (None, Some(colon)) => &last[colon + 1..],
        (None, None) => "",
    };
    (name, object)
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    format!("sha256:{}", crate::digest::hex(h))
}

/// The chain IDs of a stack of layers: the first diff ID, then each
/// `sha256(<chain below> + " " + <diff ID>)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chains: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let chain = match chains.last() {
            None => diff.clone(),
            Some(below) => sha256_digest(format!("{below} {diff}").as_bytes()),
        };
        chains.push(chain);
    }
    chains
}

/// One chain of an image's layers: the layers up to one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Its chain ID.
    pub id: String,
    /// The diff ID of its top layer.
    pub diff: String,
    /// The chain below it (`None` for a bottom layer).
    pub below: Option<String>,
}

/// The chains of a stack of layers, bottom first.
pub fn chains_of(diff_ids: &[String]) -> Vec<Chain> {
    let ids = chain_ids(diff_ids);
    let mut below = None;
    ids.into_iter()
        .zip(diff_ids)
        .map(|(id, diff)| Chain {
            id: id.clone(),
            diff: diff.clone(),
            below: below.replace(id),
        })
        .collect()
}

/// The directory a Docker < 25 layer's `json` names as its parent.
fn v1_parent(json: &[u8]) -> Option<String> {
    let members = members(json)?;
    let (_, value) = members.iter().find(|(k, _)| *k == b"parent")?;
    unquote(value).map(str::to_owned)
}

/// The chain a Docker < 25 layer directory holds, from its `json`: Docker
/// names the directory `sha256` of that json without its `id` and
/// `parent`, with the layer's chain ID as `layer_id` and the full parent
/// ID as `parent`, keys sorted (moby `image/v1.CreateID`); the layers below
/// the top (those without a `config`) are hashed before `os` is added to
/// their json. Tried against each of `chains` that fits (a bottom layer
/// names no parent); `None` when none gives the directory's name.
pub fn v1_layer<'c>(json: &[u8], chains: &'c [Chain]) -> Option<&'c Chain> {
    let members = members(json)?;
    let value = |key: &str| {
        members
            .iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| *v)
    };
    let id = unquote(value("id")?)?;
    let parent = value("parent")
        .and_then(unquote)
        .map(|p| match p.contains(':') {
            true => p.to_owned(),
            false => format!("sha256:{p}"),
        });
    let variants: &[bool] = match (value("os"), value("config")) {
        (None, _) => &[false],
        (Some(_), Some(_)) => &[false, true],
        (Some(_), None) => &[true, false],
    };
    let fits = |c: &&Chain| c.below.is_some() == parent.is_some();
    for &drop_os in variants {
        for chain in chains.iter().filter(fits) {
            let mut keep: Vec<(&[u8], Vec<u8>)> = members
                .iter()
                .filter(|(k, _)| {
                    let k: &[u8] = k;
                    k != b"id" && k != b"parent" && k != b"layer_id" && !(drop_os && k == b"os")
                })
                .map(|(k, v)| (*k, v.to_vec()))
                .collect();
            keep.push((b"layer_id", format!("\"{}\"", chain.id).into_bytes()));
            if let Some(p) = &parent {
                keep.push((b"parent", format!("\"{p}\"").into_bytes()));
            }
            keep.sort_by(|a, b| a.0.cmp(b.0));
            let mut text = vec![b'{'];
            for (i, (k, v)) in keep.iter().enumerate() {
                if i > 0 {
                    text.push(b',');
                }
                text.push(b'"');
                text.extend_from_slice(k);
                text.extend_from_slice(b"\":");
                text.extend_from_slice(v);
            }
            text.push(b'}');
            if sha256_digest(&text)[7..] == *id {
                return Some(chain);
            }
        }
    }
    None
}

fn unquote(value: &[u8]) -> Option<&str> {
    let inner = value.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// The members of a JSON object as written: each key (without its quotes)
/// and the text of its value. `None` for anything but one object, or a key
/// with an escape in it (it could not be compared as Go sorts it).
fn members(text: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let ws = |i: &mut usize| {
        while *i < text.len() && matches!(text[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    let mut i = 0;
    ws(&mut i);
    if text.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut out = Vec::new();
    ws(&mut i);
    if text.get(i) == Some(&b'}') {
        i += 1;
        ws(&mut i);
        return (i == text.len()).then_some(out);
    }
    loop {
        ws(&mut i);
        let key_end = skip_string(text, i)?;
        let key = &text[i + 1..key_end - 1];
        if key.contains(&b'\\') {
            return None;
        }
        i = key_end;
        ws(&mut i);
        if text.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        ws(&mut i);
        let value_end = skip_value(text, i)?;
        out.push((key, &text[i..value_end]));
        i = value_end;
        ws(&mut i);
        match text.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {
                i += 1;
                ws(&mut i);
                return (i == text.len()).then_some(out);
            }
            _ => return None,
        }
    }
}

/// The end (exclusive) of the string starting at `i`.
fn skip_string(text: &[u8], mut i: usize) -> Option<usize> {
    if text.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end (exclusive) of the value starting at `i`.
fn skip_value(text: &[u8], mut i: usize) -> Option<usize> {
    match text.get(i)? {
        b'"' => skip_string(text, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            while i < text.len() {
                match text[i] {
                    b'"' => {
                        i = skip_string(text, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let start = i;
            while i < text.len()
                && !matches!(text[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::nodes::parse_ctr_content;
    use std::path::{Path, PathBuf};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/node")
            .join(name)
    }

    /// `fixtures/layers-a:1` and `fixtures/layers-b:1` as `docker image
    /// inspect` described them before the save.
    fn inspected() -> Vec<ExportedImage> {
        let text = std::fs::read_to_string(fixture("docker-inspect-ab.json")).unwrap();
        let json: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        json.iter()
            .map(|i| ExportedImage {
                id: i["Id"].as_str().unwrap().to_owned(),
                diff_ids: i["RootFS"]["Layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_owned())
                    .collect(),
            })
            .collect()
    }

    const A_BOTTOM: &str =
        "sha256:6531bfd96fffb947b95847ef3d536e8a26d12ff3673b090103e49c7921ec6e02";
    const A_TOP: &str = "sha256:0753099069ec63c9cade504164192d8ba3ff4272ff03a53cf770aaf68d99270c";
    const B_TOP: &str = "sha256:4e108662fdaec1d9ed6a4bfdd17e33b6d27e58d962506b83571cc466b480f336";
    const A_CONFIG: &str =
        "sha256:8d1800e8e2d2876a58284a30e1e62109f58e966833f13a2ce3ceca887099a7df";
    const B_CONFIG: &str =
        "sha256:f34c68907e6c4bf9da6c1c78c866adbcc481dd5e1438f74a27fb13c05871d3c9";

    /// Feeds `archive` in chunks of `chunk` bytes; returns what the node
    /// would get and the outcome.
    fn convert(
        archive: &[u8],
        chunk: usize,
        images: Vec<ExportedImage>,
        held: &[&str],
    ) -> (Vec<u8>, Result<Sent, LayoutError>) {
        let mut layout = Layout::new(images, held.iter().map(|s| s.to_string()).collect());
        let mut out = Vec::new();
        let whole = Bytes::copy_from_slice(archive);
        for start in (0..archive.len()).step_by(chunk.max(1)) {
            let end = (start + chunk).min(archive.len());
            layout.feed(&whole.slice(start..end), &mut out);
        }
        let done = layout.finish(&mut out);
        let bytes: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        (bytes, done)
    }

    /// The entries of a tar: (path, data), symlinks as `-> target`.
    fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        use std::io::Read as _;
        let mut out = Vec::new();
        let mut tar = tar::Archive::new(archive);
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            match entry.link_name().unwrap() {
                Some(link) => data.extend(format!("-> {}", link.display()).bytes()),
                None => {
                    entry.read_to_end(&mut data).unwrap();
                }
            }
            out.push((path, data));
        }
        out
    }

    fn blob<'a>(layout: &'a [(String, Vec<u8>)], digest: &str) -> Option<&'a [u8]> {
        let path = format!("blobs/sha256/{}", &digest[7..]);
        layout
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, d)| d.as_slice())
    }

    /// The manifest digests containerd gave the two images when it imported
    /// the engine's whole archive itself (`ctr images ls`, captured).
    fn containerd_manifests() -> Vec<(String, String)> {
        std::fs::read_to_string(fixture("ctr-images-ls-ab.txt"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("docker.io/"))
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols[0].to_owned(), cols[2].to_owned())
            })
            .collect()
    }

    /// index.json's images: (name, manifest digest).
    fn index_of(layout: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
        let index = &layout.iter().find(|(p, _)| p == "index.json").unwrap().1;
        let index: serde_json::Value = serde_json::from_slice(index).unwrap();
        assert_eq!(index["schemaVersion"], 2);
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m["mediaType"], MANIFEST_TYPE);
                (
                    m["annotations"][NAME_ANNOTATION]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    m["digest"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_real_docker_save_becomes_a_layout_of_what_the_node_lacks() {
        // Docker 20.10's save of a (two layers) and b (a's and one more); the
        // node holds a (its `ctr content ls` after a whole import of a).
        let archive = std::fs::read(fixture("docker-save-ab.tar")).unwrap();
        let original = entries(&archive);
        let held_text = std::fs::read_to_string(fixture("ctr-content-ls.txt")).unwrap();
        let held = parse_ctr_content(&held_text).digests();
        let held: Vec<&str> = held.iter().map(String::as_str).collect();
        let (out, sent) = convert(&archive, 4096, inspected(), &held);
        let sent = sent.unwrap();
        let layout = entries(&out);
        let names: Vec<&str> = layout.iter().map(|(p, _)| p.as_str()).collect();

        // Only b's own layer and config travel, with the engine's bytes.
        let top = original
            .iter()
            .find(|(p, _)| {
                p == "0d777d5a554dbd73a554dc63529995dfb16428097cd0ddda5b4914e069e9df40/layer.tar"
            })
            .unwrap();
        assert_eq!(blob(&layout, B_TOP), Some(top.1.as_slice()));
        assert_eq!(
            sha256_digest(&top.1),
            B_TOP,
            "a layer's digest is its diff ID"
        );
        let config = &original
            .iter()
            .find(|(p, _)| p.starts_with(&B_CONFIG[7..]))
            .unwrap()
            .1;
        assert_eq!(blob(&layout, B_CONFIG), Some(config.as_slice()));
        for held in [A_BOTTOM, A_TOP, A_CONFIG] {
            assert_eq!(blob(&layout, held), None, "{held} in {names:?}");
        }
        assert_eq!(sent.held, [A_BOTTOM, A_TOP, A_CONFIG]);
        assert_eq!(sent.held_bytes, 2048 + 2048 + 1704);
        // Nothing of the legacy layout goes, nothing but the OCI layout's.
        assert!(
            names.iter().all(|n| n.starts_with("blobs/sha256/")
                || *n == "index.json"
                || *n == "oci-layout"),
            "{names:?}"
        );
        assert_eq!(
            layout.last().unwrap(),
            &(
                "oci-layout".to_owned(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()
            )
        );

        // The manifests are the ones containerd makes of the whole archive:
        // either road gives the node the same images.
        let index = index_of(&layout);
        assert_eq!(index, containerd_manifests());
        for (_, digest) in &index {
            let manifest = blob(&layout, digest).unwrap();
            assert_eq!(sha256_digest(manifest), *digest);
        }

        // The bytes: every one counted once, b's own with b.
        assert_eq!(sent.total, out.len() as u64);
        assert_eq!(sent.per_image.iter().sum::<u64>(), sent.total);
        let b_own = (512 + 2048) + (512 + 2048) + (512 + 1024); // layer, config, manifest
        assert!(
            sent.per_image[1] >= b_own as u64 - 512 && sent.per_image[1] <= b_own as u64,
            "{sent:?}"
        );
        assert_eq!(
            sent.blobs.iter().filter(|b| *b == B_TOP).count(),
            1,
            "{:?}",
            sent.blobs
        );
    }

    #[test]
    fn the_layout_is_the_same_however_the_export_is_cut() {
        let archive = std::fs::read(fixture("docker-save-ab.tar")).unwrap();
        let (whole, done) = convert(&archive, archive.len(), inspected(), &[A_BOTTOM]);
        let done = done.unwrap();
        for chunk in [1, 7, 511, 512, 513, 10_000] {
            let (out, sent) = convert(&archive, chunk, inspected(), &[A_BOTTOM]);
            assert_eq!(out, whole, "chunk {chunk}");
            assert_eq!(sent.unwrap(), done, "chunk {chunk}");
        }
    }

    #[test]
    fn a_node_that_holds_nothing_gets_each_blob_once() {
        let archive = std::fs::read(fixture("docker-save-ab.tar")).unwrap();
        let (out, sent) = convert(&archive, 1000, inspected(), &[]);
        let sent = sent.unwrap();
        let layout = entries(&out);
        for digest in [A_BOTTOM, A_TOP, B_TOP, A_CONFIG, B_CONFIG] {
            assert!(blob(&layout, digest).is_some(), "{digest}");
        }
        // a's top layer is reached twice (a symlink in b's chain): sent once.
        let blobs = layout
            .iter()
            .filter(|(p, _)| p.starts_with("blobs/"))
            .count();
        assert_eq!(blobs, 5 + 2, "five blobs and two manifests");
        assert_eq!(index_of(&layout), containerd_manifests());
        assert!(sent.held.is_empty());
        // Shared layers count with a, which comes first.
        assert!(sent.per_image[0] > sent.per_image[1], "{sent:?}");
        assert_eq!(sent.per_image.iter().sum::<u64>(), out.len() as u64);
    }

    #[test]
    fn each_layer_directory_of_a_real_save_is_named_by_its_json() {
        let archive = std::fs::read(fixture("docker-save-ab.tar")).unwrap();
        let images = inspected();
        let mut chains = Vec::new();
        for image in &images {
            chains.extend(chains_of(&image.diff_ids));
        }
        let diff = |json: &[u8], chains: &[Chain]| v1_layer(json, chains).map(|c| c.diff.clone());
        let named: Vec<(String, Option<String>)> = entries(&archive)
            .into_iter()
            .filter(|(p, _)| p.ends_with("/json"))
            .map(|(p, json)| (p[..12].to_owned(), diff(&json, &chains)))
            .collect();
        let want = [
            ("0b782f4cc168", A_TOP),    // a's top layer, as a's
            ("0d777d5a554d", B_TOP),    // b's top layer
            ("5a0d53935940", A_BOTTOM), // the bottom layer, shared
            ("c933bdf90013", A_TOP),    // a's top layer again, in b's chain
        ];
        let want: Vec<(String, Option<String>)> = want
            .iter()
            .map(|(p, d)| (p.to_string(), Some(d.to_string())))
            .collect();
        assert_eq!(named, want);
        // A json that is not what the directory was named by names nothing.
        let json = &entries(&archive)
            .into_iter()
            .find(|(p, _)| p.starts_with("0d777d5a554d") && p.ends_with("/json"))
            .unwrap()
            .1;
        let text = String::from_utf8(json.clone()).unwrap();
        let tampered = text.replacen(" in /b ", " in /c ", 1);
        assert_ne!(tampered, text);
        assert_eq!(diff(tampered.as_bytes(), &chains), None);
        assert_eq!(
            diff(json, &chains[..2]),
            None,
            "its chain is not among these"
        );
        assert_eq!(diff(b"not json", &chains), None);
    }

    #[test]
    fn chains_know_what_is_below_them() {
        let b = &inspected()[1];
        let chains = chains_of(&b.diff_ids);
        assert_eq!(chains.len(), 3);
        assert_eq!(chains[0].below, None);
        assert_eq!(
            chains[0].id, chains[0].diff,
            "a bottom layer's chain is its diff ID"
        );
        assert_eq!(chains[1].below.as_deref(), Some(chains[0].id.as_str()));
        assert_eq!(chains[2].below.as_deref(), Some(chains[1].id.as_str()));
        assert_eq!(chains[2].diff, B_TOP);
    }

    #[test]
    fn chain_ids_are_containerds() {
        // containerd labels a's config with the snapshot of a's top chain
        // (`ctr content ls`: containerd.io/gc.ref.snapshot.overlayfs).
        let a = &inspected()[0];
        assert_eq!(
            chain_ids(&a.diff_ids),
            [
                A_BOTTOM.to_owned(),
                "sha256:6e6049b463927808b9a9bdcd45d04226247faa97a7b10165b14285e854251439"
                    .to_owned()
            ]
        );
        assert!(chain_ids(&[]).is_empty());
    }

    fn file(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, path, data).unwrap();
    }

    fn symlink(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Symlink);
        builder.append_link(&mut h, path, target).unwrap();
    }

    /// Two layers (one gzip-compressed) and a config, by digest.
    struct Blobs {
        base: Vec<u8>,
        top: Vec<u8>,
        config: Vec<u8>,
    }

    impl Blobs {
        fn new() -> Blobs {
            let mut top = vec![0x1f, 0x8b, 8, 0];
            top.extend(vec![3u8; 700]);
            Blobs {
                base: vec![7u8; 3000],
                top,
                config: br#"{"architecture":"amd64","os":"linux"}"#.to_vec(),
            }
        }
        fn digests(&self) -> (String, String, String) {
            (
                sha256_digest(&self.base),
                sha256_digest(&self.top),
                sha256_digest(&self.config),
            )
        }
        fn image(&self) -> ExportedImage {
            let (base, top, config) = self.digests();
            ExportedImage {
                id: config,
                diff_ids: vec![base, top],
            }
        }
    }

    /// The shape Docker ≥ 25 saves in (moby image/tarexport/save.go): an
    /// OCI layout with the engine's own index and manifest, legacy v1
    /// configs as blobs, and manifest.json naming blobs by path.
    fn docker_25(b: &Blobs) -> Vec<u8> {
        let (base, top, config) = b.digests();
        let path = |d: &str| format!("blobs/sha256/{}", &d[7..]);
        let mut t = tar::Builder::new(Vec::new());
        let engine_manifest = br#"{"schemaVersion":2,"layers":[]}"#;
        let mut blobs = vec![
            (path(&base), b.base.clone()),
            (path(&top), b.top.clone()),
            (path(&config), b.config.clone()),
            (path(&sha256_digest(b"{}")), b"{}".to_vec()),
            (
                path(&sha256_digest(engine_manifest)),
                engine_manifest.to_vec(),
            ),
        ];
        blobs.sort();
        for (p, data) in &blobs {
            file(&mut t, p, data);
        }
        file(
            &mut t,
            "index.json",
            br#"{"schemaVersion":2,"manifests":[]}"#,
        );
        let manifest = format!(
            r#"[{{"Config":"{}","RepoTags":["harness/app:1"],"Layers":["{}","{}"]}}]"#,
            path(&config),
            path(&base),
            path(&top)
        );
        file(&mut t, "manifest.json", manifest.as_bytes());
        file(&mut t, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        file(&mut t, "repositories", b"{}");
        t.into_inner().unwrap()
    }

    #[test]
    fn an_oci_layout_export_is_filtered_by_the_digests_in_its_names() {
        let b = Blobs::new();
        let (base, top, config) = b.digests();
        let (out, sent) = convert(&docker_25(&b), 333, vec![b.image()], &[&base]);
        let sent = sent.unwrap();
        let layout = entries(&out);
        assert_eq!(blob(&layout, &base), None);
        assert_eq!(blob(&layout, &top), Some(b.top.as_slice()));
        assert_eq!(blob(&layout, &config), Some(b.config.as_slice()));
        assert_eq!(sent.held, std::slice::from_ref(&base));
        // The manifest is written here, with each layer's media type by
        // its bytes (the top one is gzip) and the held layer's size as the
        // export had it.
        let index = index_of(&layout);
        assert_eq!(index[0].0, "docker.io/harness/app:1");
        let manifest: serde_json::Value =
            serde_json::from_slice(blob(&layout, &index[0].1).unwrap()).unwrap();
        assert_eq!(manifest["config"]["digest"], config.as_str());
        assert_eq!(manifest["layers"][0]["digest"], base.as_str());
        assert_eq!(manifest["layers"][0]["size"], 3000);
        assert_eq!(manifest["layers"][0]["mediaType"], LAYER_TAR);
        assert_eq!(manifest["layers"][1]["mediaType"], LAYER_GZIP);
        // The engine's own index is not the one the node gets.
        let engine_index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_ne!(
            layout.iter().find(|(p, _)| p == "index.json").unwrap().1,
            engine_index
        );
    }

    #[test]
    fn podman_names_layers_by_digest_and_links_the_legacy_paths() {
        // containers/image's docker-archive: `<hex>.tar` layers, legacy
        // directories whose layer.tar is a symlink to them.
        let b = Blobs::new();
        let (base, top, config) = b.digests();
        let legacy = "c".repeat(64);
        let mut t = tar::Builder::new(Vec::new());
        file(&mut t, &format!("{}.tar", &base[7..]), &b.base);
        file(&mut t, &format!("{}.tar", &top[7..]), &b.top);
        file(&mut t, &format!("{}.json", &config[7..]), &b.config);
        symlink(
            &mut t,
            &format!("{legacy}/layer.tar"),
            &format!("../{}.tar", &top[7..]),
        );
        file(&mut t, &format!("{legacy}/json"), b"{}");
        let manifest = format!(
            r#"[{{"Config":"{}.json","RepoTags":["localhost/app:1"],"Layers":["{}.tar","{legacy}/layer.tar"]}}]"#,
            &config[7..],
            &base[7..]
        );
        file(&mut t, "manifest.json", manifest.as_bytes());
        let (out, sent) = convert(&t.into_inner().unwrap(), 100, vec![b.image()], &[&top]);
        let sent = sent.unwrap();
        let layout = entries(&out);
        assert_eq!(blob(&layout, &base), Some(b.base.as_slice()));
        assert_eq!(blob(&layout, &top), None, "the node holds it");
        assert_eq!(sent.held, std::slice::from_ref(&top));
        let index = index_of(&layout);
        assert_eq!(index[0].0, "localhost/app:1");
        let manifest: serde_json::Value =
            serde_json::from_slice(blob(&layout, &index[0].1).unwrap()).unwrap();
        assert_eq!(manifest["layers"][1]["digest"], top.as_str());
        assert_eq!(manifest["layers"][1]["size"], b.top.len());
    }

    /// A classic save whose layer directories' json names nothing (hashed
    /// some other way): the layers go anyway, named by their place.
    fn unnameable(b: &Blobs) -> Vec<u8> {
        let (_, _, config) = b.digests();
        let (d1, d2) = ("1".repeat(64), "2".repeat(64));
        let mut t = tar::Builder::new(Vec::new());
        file(&mut t, &format!("{d1}/json"), br#"{"id":"nope"}"#);
        file(&mut t, &format!("{d1}/layer.tar"), &b.base);
        file(&mut t, &format!("{d2}/layer.tar"), &b.top);
        file(&mut t, &format!("{}.json", &config[7..]), &b.config);
        let manifest = format!(
            r#"[{{"Config":"{}.json","RepoTags":null,"Layers":["{d1}/layer.tar","{d2}/layer.tar"]}}]"#,
            &config[7..]
        );
        file(&mut t, "manifest.json", manifest.as_bytes());
        t.into_inner().unwrap()
    }

    #[test]
    fn a_layer_that_cannot_be_named_goes_and_is_named_by_its_place() {
        let b = Blobs::new();
        let (base, top, _) = b.digests();
        // Even a layer the node holds goes: it could not be told apart.
        let (out, sent) = convert(&unnameable(&b), 512, vec![b.image()], &[&base]);
        let sent = sent.unwrap();
        let layout = entries(&out);
        let unnamed: Vec<&str> = layout
            .iter()
            .filter(|(p, _)| p.starts_with("harness-unnamed/"))
            .map(|(_, d)| d.as_slice())
            .map(|d| {
                if d == b.base.as_slice() {
                    "base"
                } else {
                    "top"
                }
            })
            .collect();
        assert_eq!(unnamed, ["base", "top"]);
        assert!(sent.held.is_empty());
        assert!(sent.blobs.contains(&base) && sent.blobs.contains(&top));
        // Saved by ID: an image without a name (ctr --digests names it).
        let index: serde_json::Value =
            serde_json::from_slice(&layout.iter().find(|(p, _)| p == "index.json").unwrap().1)
                .unwrap();
        assert!(index["manifests"][0].get("annotations").is_none());
        let manifest: serde_json::Value = serde_json::from_slice(
            blob(&layout, index["manifests"][0]["digest"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["layers"][0]["digest"], base.as_str());
        assert_eq!(manifest["layers"][1]["digest"], top.as_str());

        // Without the engine's diff IDs (or other ones), it cannot be named.
        let other = ExportedImage {
            diff_ids: vec![base.clone()],
            ..b.image()
        };
        let (_, sent) = convert(&unnameable(&b), 512, vec![other], &[]);
        assert!(
            matches!(sent, Err(LayoutError::LayerUnknown { index: 0, .. })),
            "{sent:?}"
        );
    }

    #[test]
    fn what_cannot_be_made_a_layout_is_an_error() {
        let b = Blobs::new();
        let (base, _, config) = b.digests();
        let archive = |manifest: Option<&str>| {
            let mut t = tar::Builder::new(Vec::new());
            file(&mut t, &format!("blobs/sha256/{}", &base[7..]), &b.base);
            file(&mut t, &format!("blobs/sha256/{}", &config[7..]), &b.config);
            if let Some(m) = manifest {
                file(&mut t, "manifest.json", m.as_bytes());
            }
            t.into_inner().unwrap()
        };
        let run = |manifest| convert(&archive(manifest), 512, vec![b.image()], &[]).1;
        assert!(matches!(run(None), Err(LayoutError::NoManifest)));
        assert!(matches!(run(Some("[{")), Err(LayoutError::BadManifest(_))));
        let no_config = r#"[{"Config":"blobs/sha256/00","Layers":[]}]"#;
        assert!(matches!(
            run(Some(no_config)),
            Err(LayoutError::ConfigMissing { .. })
        ));
        let no_layer = format!(
            r#"[{{"Config":"blobs/sha256/{}","Layers":["blobs/sha256/{}","gone/layer.tar"]}}]"#,
            &config[7..],
            &base[7..]
        );
        assert!(matches!(
            run(Some(&no_layer)),
            Err(LayoutError::LayerUnknown { index: 1, .. })
        ));
        // An OCI layout without Docker's manifest.json: its own index.
        let mut t = tar::Builder::new(Vec::new());
        file(&mut t, &format!("blobs/sha256/{}", &base[7..]), &b.base);
        file(&mut t, "index.json", br#"{"manifests":[]}"#);
        let (out, sent) = convert(&t.into_inner().unwrap(), 512, vec![b.image()], &[]);
        assert!(sent.is_ok());
        let layout = entries(&out);
        assert_eq!(
            layout.iter().find(|(p, _)| p == "index.json").unwrap().1,
            br#"{"manifests":[]}"#
        );
    }

    #[test]
    fn paths_are_told_apart_by_their_shape() {
        let hex = "ab".repeat(32);
        let cases = [
            ("manifest.json", Role::Manifest),
            ("index.json", Role::Index),
            ("oci-layout", Role::Ignore),
            ("repositories", Role::Ignore),
            (
                &format!("blobs/sha256/{hex}"),
                Role::Blob(format!("sha256:{hex}")),
            ),
            (
                &format!("blobs/sha512/{hex}{hex}"),
                Role::Blob(format!("sha512:{hex}{hex}")),
            ),
            (&format!("blobs/sha256/{}", &hex[1..]), Role::Other),
            (&format!("blobs/md5/{hex}"), Role::Other),
            (&format!("{hex}.json"), Role::Blob(format!("sha256:{hex}"))),
            (&format!("{hex}.tar"), Role::Blob(format!("sha256:{hex}"))),
            (&format!("{hex}/json"), Role::V1Json(hex.clone())),
            (&format!("{hex}/layer.tar"), Role::V1Layer(hex.clone())),
            (&format!("{hex}/VERSION"), Role::Ignore),
            (&format!("{}/layer.tar", hex.to_uppercase()), Role::Other),
            ("other/file", Role::Other),
        ];
        for (path, want) in cases {
            assert_eq!(role(path), want, "{path}");
        }
    }

    #[test]
    fn json_members_are_kept_as_written() {
        let text = br#" { "a" : 1, "b":{"c":"}"}, "d":[1,{"e":"\""}] ,"f":"x\"y","g":null } "#;
        let got: Vec<(String, String)> = members(text)
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect();
        let want = [
            ("a", "1"),
            ("b", r#"{"c":"}"}"#),
            ("d", r#"[1,{"e":"\""}]"#),
            ("f", r#""x\"y""#),
            ("g", "null"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(members(b"{}").unwrap(), Vec::<(&[u8], &[u8])>::new());
        for bad in [
            &b"[]"[..],
            b"{",
            b"{\"a\"}",
            b"{\"a\":1,}",
            b"{\"a\":1} x",
            b"",
            b"{\"\\u0061\":1}",
        ] {
            assert_eq!(members(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn layer_media_types_follow_their_first_bytes() {
        assert_eq!(layer_type(&[0x1f, 0x8b, 8, 0]), LAYER_GZIP);
        assert_eq!(layer_type(&[0x28, 0xb5, 0x2f, 0xfd]), LAYER_ZSTD);
        assert_eq!(layer_type(b"usr/"), LAYER_TAR);
        assert_eq!(layer_type(&[]), LAYER_TAR);
        assert_eq!(
            ref_name_of("docker.io/library/busybox:1"),
            ("docker.io/library/busybox:1", "1")
        );
        assert_eq!(
            ref_name_of("localhost:5000/app:v2"),
            ("localhost:5000/app:v2", "v2")
        );
        assert_eq!(
            ref_name_of("ghcr.io/o/i@sha256:ab"),
            ("ghcr.io/o/i@sha256:ab", "@sha256:ab")
        );
    }
}
