//! Reading the engine's image archive as it streams past.
//!
//! [`Reader`] is a tar reader that works chunk by chunk on a stream it never
//! holds: it parses each header (long names and PAX paths applied), hands
//! the entry's data on as slices of the chunk it was fed, and keeps nothing
//! else — so a 140 MB layer costs no memory and no copy, and the caller
//! decides per entry whether to count it, keep it (a small manifest), pass
//! it on or drop it ([`super::layout`] does the last two).
//!
//! Several images are exported in one archive (`GET /images/get?names=a&names=b`,
//! what `docker save a b` sends), and the engine writes each layer once
//! however many of the images share it. To still report bytes per image,
//! [`Tally`] counts the entries as they pass (keeping only `manifest.json`),
//! and [`attribute`] then splits the bytes streamed by `manifest.json`'s
//! `Config` and `Layers` paths: each entry counts for the first image, in
//! load order, whose manifest names it — so a base layer shared by three
//! images counts once, with the first — and what belongs to no image
//! (`manifest.json`, `repositories`, the OCI index, the archive's end
//! blocks) counts with the first image too, so the lines add up to exactly
//! the bytes streamed. Both of Docker's formats work: the classic one
//! (Docker < 25: `<v1 id>/layer.tar`, with symlinks between directories for
//! a layer reached through several chains) and the OCI layout
//! (`blobs/sha256/<digest>`).

use std::collections::HashMap;

use serde::Deserialize;

pub(crate) const BLOCK: usize = 512;
/// `manifest.json` lists every image's config and layers: a few hundred
/// bytes per image. Anything larger than this is not a manifest we read.
pub(crate) const MAX_MANIFEST: usize = 4 << 20;
/// PAX and GNU long-name records carry a path or two.
const MAX_META: usize = 64 << 10;

/// What kind of entry a header announces (its typeflag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (`0`, or NUL in old archives), or any other type
    /// with data of its own (contiguous files and the like).
    File,
    Directory,
    Symlink,
    HardLink,
    /// Devices and FIFOs: no data.
    Other,
}

/// An entry's header, after any long-name or PAX records that name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub path: String,
    /// A link's target, as written (a symlink's relative to its directory).
    pub link: Option<String>,
    pub kind: Kind,
    /// Bytes of data (padding not included).
    pub size: u64,
    /// The entry's bytes in the stream: its header block, the long-name or
    /// PAX records before it, its data and its padding.
    pub bytes: u64,
}

/// What a [`Reader`] sees, in stream order.
#[derive(Debug)]
pub enum Piece<'a> {
    /// An entry begins.
    Start(&'a Header),
    /// Some of its data: a slice of the chunk being fed.
    Data(&'a [u8]),
    /// Its data and padding have passed.
    End,
    /// Bytes that belong to no entry: end-of-archive blocks, and what
    /// follows a header that is not tar.
    Loose(u64),
}

/// Reads a tar stream chunk by chunk, as it passes: headers are parsed,
/// long names and PAX paths applied, and data handed on as slices of the
/// chunk fed (never copied, never buffered), so the caller decides per
/// entry what to keep. Nothing is kept but a header being completed and
/// the small records that name the next entry.
#[derive(Debug, Default)]
pub struct Reader {
    state: State,
    header: Vec<u8>,
    /// Bytes of long-name / PAX records waiting for the entry they describe.
    pending_bytes: u64,
    pending_path: Option<String>,
    pending_link: Option<String>,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Header,
    /// An entry's data, handed on.
    Data { remaining: u64, padding: u64 },
    /// A record about the next entry, kept.
    Meta {
        remaining: u64,
        padding: u64,
        meta: Meta,
    },
    /// After a header that is not tar.
    Done,
}

#[derive(Debug)]
enum Meta {
    Skip,
    LongName(Vec<u8>),
    LongLink(Vec<u8>),
    Pax(Vec<u8>),
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Reads the next chunk; `visit` hears each piece of it.
    pub fn feed(&mut self, mut chunk: &[u8], visit: &mut impl FnMut(Piece<'_>)) {
        while !chunk.is_empty() {
            match &mut self.state {
                State::Done => {
                    visit(Piece::Loose(chunk.len() as u64));
                    return;
                }
                State::Header => {
                    let take = (BLOCK - self.header.len()).min(chunk.len());
                    self.header.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if self.header.len() == BLOCK {
                        let header = std::mem::take(&mut self.header);
                        self.start_entry(&header, visit);
                    }
                }
                State::Data { remaining, padding } => {
                    let data = (*remaining).min(chunk.len() as u64) as usize;
                    if data > 0 {
                        visit(Piece::Data(&chunk[..data]));
                        *remaining -= data as u64;
                        chunk = &chunk[data..];
                    }
                    if *remaining == 0 {
                        let pad = (*padding).min(chunk.len() as u64) as usize;
                        *padding -= pad as u64;
                        chunk = &chunk[pad..];
                        if *padding == 0 {
                            self.state = State::Header;
                            visit(Piece::End);
                        }
                    }
                }
                State::Meta {
                    remaining,
                    padding,
                    meta,
                } => {
                    let data = (*remaining).min(chunk.len() as u64) as usize;
                    meta.extend(&chunk[..data]);
                    *remaining -= data as u64;
                    chunk = &chunk[data..];
                    if *remaining == 0 {
                        let pad = (*padding).min(chunk.len() as u64) as usize;
                        *padding -= pad as u64;
                        chunk = &chunk[pad..];
                        if *padding == 0 {
                            let meta = std::mem::replace(meta, Meta::Skip);
                            self.state = State::Header;
                            self.end_meta(meta);
                        }
                    }
                }
            }
        }
    }

    fn start_entry(&mut self, header: &[u8], visit: &mut impl FnMut(Piece<'_>)) {
        if header.iter().all(|&b| b == 0) {
            // The end-of-archive marker: two zero blocks, then nothing.
            visit(Piece::Loose(BLOCK as u64));
            return;
        }
        let Some(size) = parse_size(&header[124..136]) else {
            visit(Piece::Loose(BLOCK as u64));
            self.state = State::Done;
            return;
        };
        let typeflag = header[156];
        let padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        let meta = match typeflag {
            b'L' => Meta::LongName(Vec::new()),
            b'K' => Meta::LongLink(Vec::new()),
            b'x' => Meta::Pax(Vec::new()),
            b'g' => Meta::Skip,
            _ => {
                let path = self
                    .pending_path
                    .take()
                    .unwrap_or_else(|| header_path(header));
                let kind = match typeflag {
                    b'0' | 0 | b'7' => Kind::File,
                    b'5' => Kind::Directory,
                    b'2' => Kind::Symlink,
                    b'1' => Kind::HardLink,
                    b'3' | b'4' | b'6' => Kind::Other,
                    // Unknown types are read as files: their data is theirs.
                    _ => Kind::File,
                };
                let link = match kind {
                    Kind::Symlink | Kind::HardLink => Some(
                        self.pending_link
                            .take()
                            .unwrap_or_else(|| cstr(&header[157..257])),
                    ),
                    _ => None,
                };
                self.pending_link = None;
                let bytes = std::mem::take(&mut self.pending_bytes) + BLOCK as u64 + size + padding;
                visit(Piece::Start(&Header {
                    path,
                    link,
                    kind,
                    size,
                    bytes,
                }));
                if size == 0 {
                    visit(Piece::End);
                } else {
                    self.state = State::Data {
                        remaining: size,
                        padding,
                    };
                }
                return;
            }
        };
        // A record about the next entry: its bytes go with that entry.
        self.pending_bytes += BLOCK as u64 + size + padding;
        if size == 0 {
            self.end_meta(meta);
        } else {
            self.state = State::Meta {
                remaining: size,
                padding,
                meta,
            };
        }
    }

    fn end_meta(&mut self, meta: Meta) {
        match meta {
            Meta::Skip => {}
            Meta::LongName(bytes) => self.pending_path = Some(cstr(&bytes)),
            Meta::LongLink(bytes) => self.pending_link = Some(cstr(&bytes)),
            Meta::Pax(bytes) => {
                for (key, value) in pax_records(&bytes) {
                    match key {
                        "path" => self.pending_path = Some(value.to_owned()),
                        "linkpath" => self.pending_link = Some(value.to_owned()),
                        _ => {}
                    }
                }
            }
        }
    }

    /// The end of the stream: a header cut short, and records that named
    /// no entry, belong to nothing.
    pub fn finish(self) -> u64 {
        self.header.len() as u64 + self.pending_bytes
    }
}

impl Meta {
    fn extend(&mut self, data: &[u8]) {
        let buf = match self {
            Meta::Skip => return,
            Meta::LongName(b) | Meta::LongLink(b) | Meta::Pax(b) => b,
        };
        let room = MAX_META.saturating_sub(buf.len());
        buf.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// One tar entry: its path and the bytes it took in the stream (its
/// header, any long-name or PAX records before it, its data and padding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    /// A symlink's target, as written (relative to the link's directory).
    pub link: Option<String>,
    pub bytes: u64,
}

/// Counts a tar stream's entries as it passes, chunk by chunk, keeping
/// only `manifest.json`.
#[derive(Debug, Default)]
pub struct Tally {
    reader: Reader,
    entries: Vec<Entry>,
    /// Bytes that belong to no entry: end-of-archive blocks, a torn tail.
    loose: u64,
    total: u64,
    /// `manifest.json` while it passes.
    reading_manifest: Option<Vec<u8>>,
    manifest: Option<Vec<u8>>,
}

impl Tally {
    pub fn new() -> Tally {
        Tally::default()
    }

    /// Bytes seen so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Reads the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let Tally {
            reader,
            entries,
            loose,
            reading_manifest,
            manifest,
            ..
        } = self;
        reader.feed(chunk, &mut |piece| match piece {
            Piece::Start(h) => {
                entries.push(Entry {
                    path: h.path.clone(),
                    link: h.link.clone(),
                    bytes: h.bytes,
                });
                if h.path == "manifest.json"
                    && h.kind == Kind::File
                    && h.size as usize <= MAX_MANIFEST
                {
                    *reading_manifest = Some(Vec::with_capacity(h.size as usize));
                }
            }
            Piece::Data(data) => {
                if let Some(m) = reading_manifest {
                    m.extend_from_slice(data);
                }
            }
            Piece::End => {
                if let Some(m) = reading_manifest.take() {
                    *manifest = Some(m);
                }
            }
            Piece::Loose(n) => *loose += n,
        });
    }

    /// The entries seen, the bytes that belong to none, and the archive's
    /// `manifest.json` when it had one.
    pub fn finish(self) -> (Vec<Entry>, u64, Option<Vec<u8>>) {
        let loose = self.loose + self.reader.finish();
        (self.entries, loose, self.manifest)
    }
}

/// A header's path: ustar's prefix joined to its name.
pub(crate) fn header_path(header: &[u8]) -> String {
    let name = cstr(&header[0..100]);
    if &header[257..262] == b"ustar" {
        let prefix = cstr(&header[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A size field: octal digits (space or NUL padded), or base-256 when the
/// high bit of the first byte is set (sizes of 8 GiB and more).
fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    let digits: &[u8] = {
        let start = field.iter().position(|&b| b != b' ').unwrap_or(field.len());
        let rest = &field[start..];
        let end = rest
            .iter()
            .position(|&b| b == 0 || b == b' ')
            .unwrap_or(rest.len());
        &rest[..end]
    };
    if digits.is_empty() {
        return Some(0);
    }
    let text = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(text, 8).ok()
}

/// `"<len> <key>=<value>\n"` records of a PAX extended header.
fn pax_records(bytes: &[u8]) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= space + 1 || len > rest.len() {
            break;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Ok(text) = std::str::from_utf8(record)
            && let Some((k, v)) = text.split_once('=')
        {
            out.push((k, v));
        }
        rest = &rest[len..];
    }
    out
}

/// One image of `manifest.json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ManifestImage {
    pub config: String,
    /// `null` when an image was saved by ID.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub layers: Vec<String>,
}

/// The config digest a manifest's `Config` path names: `<hex>.json`
/// (classic) or `blobs/sha256/<hex>` (OCI layout).
fn config_hex(path: &str) -> &str {
    let last = path.rsplit('/').next().unwrap_or(path);
    last.strip_suffix(".json").unwrap_or(last)
}

/// `path` as written in the archive, with `.` and `..` resolved.
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// Splits the bytes of an archive among `ids` (image IDs, `sha256:<hex>`,
/// in load order): each entry to the first image whose manifest names it
/// (its config, a layer, the target of a layer's symlink, or — classic
/// format — another file of a layer's own directory), everything else to
/// the first image. Returns one count per id, summing to every byte fed.
/// An archive without a readable `manifest.json` gives all to the first.
pub fn attribute(entries: &[Entry], loose: u64, manifest: Option<&[u8]>, ids: &[&str]) -> Vec<u64> {
    let mut out = vec![0u64; ids.len()];
    if ids.is_empty() {
        return out;
    }
    let images: Vec<ManifestImage> = manifest
        .and_then(|m| serde_json::from_slice(m).ok())
        .unwrap_or_default();
    let links: HashMap<String, String> = entries
        .iter()
        .filter_map(|e| {
            let link = e.link.as_ref()?;
            let path = normalize(&e.path);
            let target = if link.starts_with('/') {
                normalize(link)
            } else {
                normalize(&format!("{}/{link}", parent(&path)))
            };
            Some((path, target))
        })
        .collect();
    // Path (or, for classic layer directories, directory) → owning image.
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut owner_dir: HashMap<String, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        for image in images.iter().filter(|m| config_hex(&m.config) == hex) {
            owner.entry(normalize(&image.config)).or_insert(i);
            for layer in &image.layers {
                let mut path = normalize(layer);
                // Follow a chain of symlinks (bounded: a loop is not ours to solve).
                for _ in 0..8 {
                    owner.entry(path.clone()).or_insert(i);
                    if path.ends_with("/layer.tar") {
                        owner_dir.entry(parent(&path).to_owned()).or_insert(i);
                    }
                    match links.get(&path) {
                        Some(target) => path = target.clone(),
                        None => break,
                    }
                }
            }
        }
    }
    for entry in entries {
        let path = normalize(&entry.path);
        let i = owner
            .get(&path)
            .or_else(|| owner_dir.get(&path))
            .or_else(|| owner_dir.get(parent(&path)))
            .copied()
            .unwrap_or(0);
        out[i] += entry.bytes;
    }
    out[0] += loose;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

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

    fn dir(builder: &mut tar::Builder<Vec<u8>>, path: &str) {
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Directory);
        builder.append_data(&mut h, path, &[][..]).unwrap();
    }

    /// Two images sharing a base layer, in Docker 20.10's classic layout:
    /// the base once under `base/`, reached from `b`'s chain through a symlink.
    fn classic() -> Vec<u8> {
        let mut t = tar::Builder::new(Vec::new());
        dir(&mut t, "base/");
        file(&mut t, "base/VERSION", b"1.0");
        file(&mut t, "base/json", b"{}");
        file(&mut t, "base/layer.tar", &vec![7u8; 10_000]);
        dir(&mut t, "top-a/");
        file(&mut t, "top-a/layer.tar", &vec![1u8; 3_000]);
        dir(&mut t, "b-base/");
        symlink(&mut t, "b-base/layer.tar", "../base/layer.tar");
        dir(&mut t, "top-b/");
        file(&mut t, "top-b/layer.tar", &vec![2u8; 5_000]);
        file(&mut t, &format!("{}.json", &A[7..]), b"{\"a\":1}");
        file(&mut t, &format!("{}.json", &B[7..]), b"{\"b\":1}");
        let manifest = format!(
            r#"[{{"Config":"{}.json","RepoTags":["a:1"],"Layers":["base/layer.tar","top-a/layer.tar"]}},
               {{"Config":"{}.json","RepoTags":["b:1"],"Layers":["b-base/layer.tar","top-b/layer.tar"]}}]"#,
            &A[7..],
            &B[7..]
        );
        file(&mut t, "manifest.json", manifest.as_bytes());
        file(&mut t, "repositories", b"{}");
        t.into_inner().unwrap()
    }

    fn tally_in_chunks(archive: &[u8], chunk: usize) -> (Vec<Entry>, u64, Option<Vec<u8>>) {
        let mut tally = Tally::new();
        for c in archive.chunks(chunk) {
            tally.feed(c);
        }
        assert_eq!(tally.total(), archive.len() as u64);
        tally.finish()
    }

    #[test]
    fn every_byte_is_counted_once_whatever_the_chunking() {
        let archive = classic();
        let whole = tally_in_chunks(&archive, archive.len());
        for chunk in [1, 7, 511, 512, 513, 4096] {
            let (entries, loose, manifest) = tally_in_chunks(&archive, chunk);
            assert_eq!(entries, whole.0, "chunk {chunk}");
            assert_eq!(loose, whole.1, "chunk {chunk}");
            assert_eq!(manifest, whole.2, "chunk {chunk}");
        }
        let (entries, loose, _) = whole;
        let sum: u64 = entries.iter().map(|e| e.bytes).sum::<u64>() + loose;
        assert_eq!(sum, archive.len() as u64);
        let link = entries
            .iter()
            .find(|e| e.path == "b-base/layer.tar")
            .unwrap();
        assert_eq!(link.link.as_deref(), Some("../base/layer.tar"));
    }

    #[test]
    fn a_shared_layer_counts_for_the_first_image_that_needs_it() {
        let archive = classic();
        let (entries, loose, manifest) = tally_in_chunks(&archive, 1000);
        let split = attribute(&entries, loose, manifest.as_deref(), &[A, B]);
        assert_eq!(split.iter().sum::<u64>(), archive.len() as u64);
        // b: only what is its own — the directories b-base/ and top-b/,
        // the symlink to a's base, its top layer (5,000 bytes padded to
        // 5,120) and its config, each entry with its 512-byte header.
        let b_own = 512 + 512 + 512 + (512 + 5_120) + (512 + 512);
        assert_eq!(split[1], b_own, "{split:?}");
        // In the other order the base layer goes with b, and a keeps its
        // directory, its top layer (3,000 → 3,072) and its config.
        let split = attribute(&entries, loose, manifest.as_deref(), &[B, A]);
        assert_eq!(split[1], 512 + (512 + 3_072) + (512 + 512), "{split:?}");
        assert_eq!(split.iter().sum::<u64>(), archive.len() as u64);
    }

    #[test]
    fn without_a_manifest_everything_goes_to_the_first_image() {
        let mut t = tar::Builder::new(Vec::new());
        file(&mut t, "blob", &[0u8; 2000]);
        let archive = t.into_inner().unwrap();
        let (entries, loose, manifest) = tally_in_chunks(&archive, 100);
        assert_eq!(manifest, None);
        assert_eq!(
            attribute(&entries, loose, None, &[A, B]),
            vec![archive.len() as u64, 0]
        );
        assert!(attribute(&entries, loose, None, &[]).is_empty());
    }

    #[test]
    fn long_names_and_pax_paths_name_the_entry_after_them() {
        let long = format!("blobs/sha256/{}/{}", "d".repeat(64), "x".repeat(80));
        let mut gnu = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_entry_type(tar::EntryType::Regular);
        gnu.append_data(&mut h, &long, &b"abcd"[..]).unwrap();
        let gnu = gnu.into_inner().unwrap();
        let (entries, loose, _) = tally_in_chunks(&gnu, 3);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, long);
        assert_eq!(entries[0].bytes + loose, gnu.len() as u64);

        let mut pax = tar::Builder::new(Vec::new());
        pax.append_pax_extensions([("path", long.as_bytes())])
            .unwrap();
        file(&mut pax, "short", b"abcd");
        let pax = pax.into_inner().unwrap();
        let (entries, loose, _) = tally_in_chunks(&pax, 100);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, long);
        assert_eq!(entries[0].bytes + loose, pax.len() as u64);
    }

    #[test]
    fn sizes_read_octal_and_base_256() {
        assert_eq!(parse_size(b"00000001750\0"), Some(0o1750));
        assert_eq!(parse_size(b"     1750 \0\0"), Some(0o1750));
        assert_eq!(parse_size(b"\0\0\0\0\0\0\0\0\0\0\0\0"), Some(0));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 1;
        big[10] = 2;
        assert_eq!(parse_size(&big), Some(513));
        assert_eq!(parse_size(b"notanumber!!"), None);
    }

    #[test]
    fn config_paths_of_both_layouts_name_the_image() {
        assert_eq!(config_hex("abc.json"), "abc");
        assert_eq!(config_hex("blobs/sha256/abc"), "abc");
        assert_eq!(normalize("b-base/../base/layer.tar"), "base/layer.tar");
        assert_eq!(normalize("./manifest.json"), "manifest.json");
    }
}
