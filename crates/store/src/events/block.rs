//! A block: up to [`MAX_ROWS`] events of one tenant and one class in one day
//! partition, written once and never changed.
//!
//! ```text
//! head:  bloom_words u32 | cols_len u32 | cols_raw u32 | frames u16 | (rows u16, len u32) × frames
//!        | bloom (bloom_words × u64 LE)
//! body:  cols (zstd) | frame 1 (zstd) | frame 2 (zstd) | …
//! ```
//!
//! - The bloom filter holds the hashes of every trigram of the block's search text
//!   (ASCII folded to lower case, so a Japanese substring of 3 characters or more can be
//!   looked for without a word splitter) and of every `path=value` leaf of the events'
//!   OCSF documents (so any attribute can be filtered on). A query reads a block's head
//!   first and skips the block when one of its hashes is missing.
//! - The columns are what filters need without the documents: per row time, sequence
//!   number, severity, disposition, and the source and destination addresses and user
//!   as indexes into a string table of the block; and each document's length.
//! - The documents are compressed in frames of [`FRAME_ROWS`] rows, so a query that
//!   needs a few rows decompresses only their frames.
//!
//! Every number is little-endian. The hash functions are part of the format: changing
//! them makes existing blooms wrong.

use super::EventStoreError;
use std::collections::HashMap;

/// Rows in one block, at most.
pub(crate) const MAX_ROWS: usize = 1024;
/// Rows in one compressed frame of documents, at most.
pub(crate) const FRAME_ROWS: usize = 128;
/// Bloom filter bits per distinct hash (about 1.7% false positives with 3 probes).
const BITS_PER_KEY: usize = 10;
/// zstd level of columns and documents (1: fastest, about 7× on OCSF JSON).
const ZSTD_LEVEL: i32 = 1;
/// Bytes of one row in the columns.
const COL_ROW: usize = 8 + 8 + 1 + 1 + 2 + 2 + 2 + 4;
/// Largest uncompressed columns of a block (rows and three strings each).
const MAX_COLS_RAW: usize = 6 + MAX_ROWS * (COL_ROW + 3 * (2 + MAX_COL_STRING));
/// Longest string kept in a column (a longer one is kept as "none": no filter value
/// can be that long, so none could match it).
const MAX_COL_STRING: usize = 1024;
/// Largest document a block row may claim.
const MAX_DOC: u32 = 1 << 20;
/// "No value" in a string column.
const NONE16: u16 = u16::MAX;
/// "No disposition".
pub(crate) const NO_DISPOSITION: u8 = u8::MAX;

/// One event as the writer hands it to a block.
pub(crate) struct Row {
    pub time: i64,
    pub seq: i64,
    pub severity: u8,
    pub disposition: u8,
    pub src_ip: Option<String>,
    pub dst_ip: Option<String>,
    pub user: Option<String>,
    pub doc: String,
    /// Its event-log offset, when it came from there (not written in the block).
    pub log: Option<u64>,
}

/// The columns of one row as read back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ColRow {
    pub time: i64,
    pub seq: i64,
    pub severity: u8,
    pub disposition: u8,
    pub src: u16,
    pub dst: u16,
    pub user: u16,
    pub doc_len: u32,
}

/// The columns of a block.
pub(crate) struct Cols {
    pub rows: Vec<ColRow>,
    pub strings: Vec<String>,
}

impl Cols {
    /// Returns the index of `s` in the string table, if present.
    pub fn find(&self, s: &str) -> Option<u16> {
        self.strings.iter().position(|x| x == s).map(|i| i as u16)
    }
}

/// The head of a block: frame table and bloom filter.
pub(crate) struct Head {
    cols_len: u32,
    cols_raw: u32,
    frames: Vec<(u16, u32)>,
    bloom: Vec<u64>,
}

impl Head {
    /// Returns true when every hash may be in the block.
    pub fn may_contain(&self, hashes: &[u64]) -> bool {
        hashes.iter().all(|h| bloom_test(&self.bloom, *h))
    }

    /// Bytes of the body (columns and frames).
    #[cfg(test)]
    pub fn body_len(&self) -> usize {
        self.cols_len as usize + self.frames.iter().map(|(_, l)| *l as usize).sum::<usize>()
    }
}

/// Returns the bytes of a block of `rows` whose bloom holds `set`, the length of its
/// head and where its columns end.
pub(crate) fn encode<'a>(rows: &[&'a Row], set: &HashSet64) -> Result<(Vec<u8>, usize, usize), EventStoreError> {
    // Distinct hashes size the bloom filter.
    let bits = (set.len() * BITS_PER_KEY).max(64);
    let words = bits.div_ceil(64);
    let mut bloom = vec![0u64; words];
    set.for_each(|h| bloom_set(&mut bloom, h));

    let mut strings: Vec<&'a str> = Vec::new();
    let mut index: HashMap<&'a str, u16, FastHash> = HashMap::with_hasher(FastHash);
    let mut intern = |s: &'a Option<String>| -> u16 {
        match s {
            Some(s) if s.len() <= MAX_COL_STRING => *index.entry(s.as_str()).or_insert_with(|| {
                strings.push(s.as_str());
                (strings.len() - 1) as u16
            }),
            _ => NONE16,
        }
    };
    let mut cols = Vec::with_capacity(rows.len() * COL_ROW + 64);
    cols.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for r in rows {
        cols.extend_from_slice(&r.time.to_le_bytes());
        cols.extend_from_slice(&r.seq.to_le_bytes());
        cols.push(r.severity);
        cols.push(r.disposition);
        for s in [&r.src_ip, &r.dst_ip, &r.user] {
            cols.extend_from_slice(&intern(s).to_le_bytes());
        }
        cols.extend_from_slice(&(r.doc.len() as u32).to_le_bytes());
    }
    cols.extend_from_slice(&(strings.len() as u16).to_le_bytes());
    for s in &strings {
        cols.extend_from_slice(&(s.len() as u16).to_le_bytes());
        cols.extend_from_slice(s.as_bytes());
    }
    let cols_raw = cols.len() as u32;
    let cols = compress(&cols)?;
    let mut frames = Vec::new();
    let mut frame_bytes = Vec::new();
    for chunk in rows.chunks(FRAME_ROWS) {
        let mut raw = Vec::with_capacity(chunk.iter().map(|r| r.doc.len()).sum());
        for r in chunk {
            raw.extend_from_slice(r.doc.as_bytes());
        }
        let z = compress(&raw)?;
        frames.push((chunk.len() as u16, z.len() as u32));
        frame_bytes.push(z);
    }
    let head_len = 4 + 4 + 4 + 2 + frames.len() * 6 + words * 8;
    let mut out = Vec::with_capacity(head_len + cols.len() + frame_bytes.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(&(words as u32).to_le_bytes());
    out.extend_from_slice(&(cols.len() as u32).to_le_bytes());
    out.extend_from_slice(&cols_raw.to_le_bytes());
    out.extend_from_slice(&(frames.len() as u16).to_le_bytes());
    for (rows, len) in &frames {
        out.extend_from_slice(&rows.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    for w in &bloom {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&cols);
    for f in frame_bytes {
        out.extend_from_slice(&f);
    }
    let cols_end = head_len + cols.len();
    Ok((out, head_len, cols_end))
}

thread_local! {
    // One zstd context per thread, reused (creating one costs more than a frame).
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

fn compress(raw: &[u8]) -> Result<Vec<u8>, EventStoreError> {
    COMPRESSOR
        .with(|c| {
            let mut c = c.borrow_mut();
            if c.is_none() {
                *c = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL)?);
            }
            match c.as_mut() {
                Some(c) => c.compress(raw),
                None => Err(std::io::Error::other("no compressor")),
            }
        })
        .map_err(|e| EventStoreError::Write(format!("compression failed: {e}")))
}

fn decompress(z: &[u8], capacity: usize) -> Result<Vec<u8>, String> {
    DECOMPRESSOR
        .with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new()?);
            }
            match d.as_mut() {
                Some(d) => d.decompress(z, capacity),
                None => Err(std::io::Error::other("no decompressor")),
            }
        })
        .map_err(|e| format!("cannot decompress: {e}"))
}

/// A little-endian reader over a byte slice; every read is bounds-checked.
pub(crate) struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("block is cut short".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(crate) fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Reads the head of a block (`bytes` starts with it and holds at least all of it).
pub(crate) fn decode_head(bytes: &[u8], rows: usize) -> Result<Head, String> {
    let mut b = Bytes(bytes);
    let words = b.u32()? as usize;
    let cols_len = b.u32()?;
    let cols_raw = b.u32()?;
    let n = b.u16()? as usize;
    if n > MAX_ROWS.div_ceil(FRAME_ROWS) || words > bytes.len() / 8 + 1 || cols_raw as usize > MAX_COLS_RAW {
        return Err("block head is malformed".into());
    }
    let mut frames = Vec::with_capacity(n);
    let mut total = 0usize;
    for _ in 0..n {
        let (r, l) = (b.u16()?, b.u32()?);
        total += r as usize;
        frames.push((r, l));
    }
    if total != rows {
        return Err(format!("block frames hold {total} rows instead of {rows}"));
    }
    let mut bloom = Vec::with_capacity(words);
    for _ in 0..words {
        bloom.push(b.u64()?);
    }
    Ok(Head { cols_len, cols_raw, frames, bloom })
}

/// Reads the columns of a block from its body.
pub(crate) fn decode_cols(head: &Head, body: &[u8], rows: usize) -> Result<Cols, String> {
    let z = body.get(..head.cols_len as usize).ok_or("block columns are cut short")?;
    let raw = decompress(z, head.cols_raw as usize)?;
    let mut b = Bytes(&raw);
    if b.u32()? as usize != rows {
        return Err("block columns hold another number of rows".into());
    }
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        out.push(ColRow {
            time: b.i64()?,
            seq: b.i64()?,
            severity: b.u8()?,
            disposition: b.u8()?,
            src: b.u16()?,
            dst: b.u16()?,
            user: b.u16()?,
            doc_len: b.u32()?,
        });
    }
    let n = b.u16()? as usize;
    let mut strings = Vec::with_capacity(n);
    for _ in 0..n {
        let len = b.u16()? as usize;
        if len > MAX_COL_STRING {
            return Err("block string is too long".into());
        }
        strings.push(String::from_utf8(b.take(len)?.to_vec()).map_err(|_| "block string is not UTF-8")?);
    }
    for r in &out {
        if r.doc_len > MAX_DOC {
            return Err("block row claims an oversized document".into());
        }
        for i in [r.src, r.dst, r.user] {
            if i != NONE16 && i as usize >= strings.len() {
                return Err("block column points past its strings".into());
            }
        }
    }
    Ok(Cols { rows: out, strings })
}

/// Returns the string of a column value.
#[cfg(test)]
pub(crate) fn col_str(cols: &Cols, i: u16) -> Option<&str> {
    if i == NONE16 { None } else { cols.strings.get(i as usize).map(String::as_str) }
}

/// Decompresses frame `f` of a block and returns its documents.
pub(crate) fn decode_frame(head: &Head, body: &[u8], cols: &Cols, f: usize) -> Result<Vec<String>, String> {
    let mut at = head.cols_len as usize;
    for (_, len) in head.frames.iter().take(f) {
        at += *len as usize;
    }
    let (rows, len) = *head.frames.get(f).ok_or("no such frame")?;
    let z = body.get(at..at + len as usize).ok_or("block frame is cut short")?;
    let first = f * FRAME_ROWS;
    let lens: Vec<usize> = cols.rows.get(first..first + rows as usize).ok_or("frame rows out of range")?.iter().map(|r| r.doc_len as usize).collect();
    let raw = decompress(z, lens.iter().sum())?;
    let mut out = Vec::with_capacity(lens.len());
    let mut b = Bytes(&raw);
    for l in lens {
        out.push(String::from_utf8(b.take(l)?.to_vec()).map_err(|_| "document is not UTF-8")?);
    }
    Ok(out)
}

/// Reads a block of unknown origin (its row count in its first two bytes) as far as
/// it goes; returns the documents read. For the fuzz target.
pub(crate) fn read_any(bytes: &[u8]) -> usize {
    let Some((n, rest)) = bytes.split_first_chunk::<2>() else { return 0 };
    let rows = usize::from(u16::from_le_bytes(*n)).min(MAX_ROWS);
    let Ok(head) = decode_head(rest, rows) else { return 0 };
    let head_len = 4 + 4 + 4 + 2 + head.frames.len() * 6 + head.bloom.len() * 8;
    let body = rest.get(head_len..).unwrap_or(&[]);
    let Ok(cols) = decode_cols(&head, body, rows) else { return 0 };
    (0..head.frames.len()).filter_map(|f| decode_frame(&head, body, &cols, f).ok()).map(|d| d.len()).sum()
}

// ---- hashing (part of the format) ----

/// Final mix of MurmurHash3 (fmix64).
fn fmix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Hash of three characters.
fn trigram(a: char, b: char, c: char) -> u64 {
    fmix((u64::from(a as u32) << 42) ^ (u64::from(b as u32) << 21) ^ u64::from(c as u32) ^ 0x7467_7261_6d00_0000)
}

/// Folds a character as the index does (ASCII letters to lower case).
pub(crate) fn fold(c: char) -> char {
    c.to_ascii_lowercase()
}

/// Adds the hashes of every trigram of `text` (folded).
pub(crate) fn text_hashes(text: &str, out: &mut Vec<u64>) {
    let mut w = ['\0'; 3];
    for (n, c) in text.chars().enumerate() {
        w = [w[1], w[2], fold(c)];
        if n >= 2 {
            out.push(trigram(w[0], w[1], w[2]));
        }
    }
}

/// What indexing takes from a document besides its hashes.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct DocCols {
    pub time: Option<i64>,
    pub tenant: Option<String>,
    pub class: Option<u64>,
    pub severity: Option<u64>,
    pub disposition: Option<u64>,
    pub src_ip: Option<String>,
    pub dst_ip: Option<String>,
    pub user: Option<String>,
}

/// Reads a document's JSON text in one pass, without building it: adds its bloom
/// hashes to `out` (what [`doc_hashes`] gives) and returns its columns, or None when
/// it is not JSON.
pub(crate) fn scan_doc(doc: &str, out: &mut Vec<u64>) -> Option<DocCols> {
    use serde::de::DeserializeSeed;
    let mut sink = Sink { out, cols: DocCols::default() };
    let mut path = String::with_capacity(64);
    let mut de = serde_json::Deserializer::from_str(doc);
    Walk { path: &mut path, depth: 0, sink: &mut sink }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(sink.cols)
}

struct Sink<'o> {
    out: &'o mut Vec<u64>,
    cols: DocCols,
}

impl Sink<'_> {
    fn string(&mut self, path: &str, s: &str) {
        text_hashes(s, self.out);
        self.out.push(leaf_hash(path, s));
        let slot = match path {
            "metadata.tenant_uid" => &mut self.cols.tenant,
            "src_endpoint.ip" => &mut self.cols.src_ip,
            "dst_endpoint.ip" => &mut self.cols.dst_ip,
            "actor.user.name" => &mut self.cols.user,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(s.to_string());
        }
    }

    fn unsigned(&mut self, path: &str, v: u64) {
        let mut buf = itoa::Buffer::new();
        self.out.push(leaf_hash(path, buf.format(v)));
        let slot = match path {
            "class_uid" => &mut self.cols.class,
            "severity_id" => &mut self.cols.severity,
            "disposition_id" => &mut self.cols.disposition,
            "time" => {
                self.cols.time = self.cols.time.or(i64::try_from(v).ok());
                return;
            }
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
    }
}

/// Walks one JSON value below `path`.
struct Walk<'p, 's, 'o> {
    path: &'p mut String,
    depth: usize,
    sink: &'s mut Sink<'o>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.sink.out.push(leaf_hash(self.path, if b { "true" } else { "false" }));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.sink.unsigned(self.path, v);
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        let mut buf = itoa::Buffer::new();
        self.sink.out.push(leaf_hash(self.path, buf.format(v)));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        if let Some(n) = serde_json::Number::from_f64(v) {
            self.sink.out.push(leaf_hash(self.path, &n.to_string()));
        }
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.sink.string(self.path, s);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Walk { path, depth, sink } = self;
        if depth > 16 {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        while seq.next_element_seed(Walk { path: &mut *path, depth: depth + 1, sink: &mut *sink })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Walk { path, depth, sink } = self;
        let len = path.len();
        while map.next_key_seed(Key(&mut *path))?.is_some() {
            if depth > 16 {
                map.next_value::<serde::de::IgnoredAny>()?;
            } else {
                map.next_value_seed(Walk { path: &mut *path, depth: depth + 1, sink: &mut *sink })?;
            }
            path.truncate(len);
        }
        Ok(())
    }
}

/// Appends an object key to the path (`.` between segments).
struct Key<'p>(&'p mut String);

impl<'de> serde::de::DeserializeSeed<'de> for Key<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, k: &str) -> Result<(), E> {
        if !self.0.is_empty() {
            self.0.push('.');
        }
        self.0.push_str(k);
        Ok(())
    }
}

/// Hash of an attribute leaf `path=value`.
pub(crate) fn leaf_hash(path: &str, value: &str) -> u64 {
    // FNV-1a over path, a separator no path holds, and value.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes().chain(std::iter::once(0xff)).chain(value.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    fmix(h)
}

/// Adds the bloom hashes of a document from its parsed value (the reference the
/// streaming [`scan_doc`] is tested against): the trigrams of every string
/// value (folded; keys are not text) and every scalar leaf at its dotted path (array
/// elements at the path of the array), numbers in decimal, booleans as true/false.
#[cfg(test)]
pub(crate) fn doc_hashes(v: &serde_json::Value, out: &mut Vec<u64>) {
    fn walk(v: &serde_json::Value, path: &mut String, depth: usize, out: &mut Vec<u64>) {
        if depth > 16 {
            return;
        }
        match v {
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    let len = path.len();
                    if len > 0 {
                        path.push('.');
                    }
                    path.push_str(k);
                    walk(x, path, depth + 1, out);
                    path.truncate(len);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, path, depth + 1, out)),
            serde_json::Value::String(s) => {
                text_hashes(s, out);
                out.push(leaf_hash(path, s));
            }
            serde_json::Value::Number(n) => {
                let mut buf = itoa::Buffer::new();
                let text = match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => std::borrow::Cow::Borrowed(buf.format(i)),
                    (None, Some(u)) => std::borrow::Cow::Borrowed(buf.format(u)),
                    _ => std::borrow::Cow::Owned(n.to_string()),
                };
                out.push(leaf_hash(path, &text));
            }
            serde_json::Value::Bool(b) => out.push(leaf_hash(path, if *b { "true" } else { "false" })),
            serde_json::Value::Null => {}
        }
    }
    walk(v, &mut String::new(), 0, out);
}

/// The text a scalar is compared as (None for null, objects and arrays).
pub(crate) fn leaf_text(v: &serde_json::Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        serde_json::Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
        serde_json::Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        serde_json::Value::Bool(b) => Some(std::borrow::Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// Double hashing: probe `i` of a hash in a bloom of `bits` bits.
fn probe(h: u64, i: u64, bits: u64) -> u64 {
    let (a, b) = (h & 0xffff_ffff, (h >> 32) | 1);
    let x = a.wrapping_add(i.wrapping_mul(b)) & 0xffff_ffff;
    (x * bits) >> 32
}

fn bloom_set(bloom: &mut [u64], h: u64) {
    let bits = bloom.len() as u64 * 64;
    for i in 0..3 {
        let bit = probe(h, i, bits);
        bloom[(bit / 64) as usize] |= 1 << (bit % 64);
    }
}

fn bloom_test(bloom: &[u64], h: u64) -> bool {
    let bits = bloom.len() as u64 * 64;
    if bits == 0 {
        return false;
    }
    (0..3).all(|i| {
        let bit = probe(h, i, bits);
        bloom.get((bit / 64) as usize).is_some_and(|w| w & (1 << (bit % 64)) != 0)
    })
}

/// A fast, non-keyed hasher (FxHash) for the writer's short-lived maps of trusted
/// keys (strings of a block, tenants and classes of a flush).
#[derive(Clone, Copy, Default)]
pub(crate) struct FastHash;

/// The state of [`FastHash`].
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn finish(&self) -> u64 {
        fmix(self.0)
    }
}

impl std::hash::BuildHasher for FastHash {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

/// An open-addressing set of non-zero u64 (0 is stored as 1: a bloom does not care).
pub(crate) struct HashSet64 {
    slots: Vec<u64>,
    len: usize,
}

impl HashSet64 {
    pub(crate) fn with_capacity(n: usize) -> Self {
        HashSet64 { slots: vec![0; (n * 2).next_power_of_two().max(1024)], len: 0 }
    }

    pub(crate) fn insert(&mut self, h: u64) {
        let h = h.max(1);
        if (self.len + 1) * 2 > self.slots.len() {
            let grown = vec![0; self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, grown);
            self.len = 0;
            for x in old.into_iter().filter(|x| *x != 0) {
                self.insert(x);
            }
        }
        let mask = self.slots.len() - 1;
        let mut i = (fmix(h) as usize) & mask;
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = h;
                    self.len += 1;
                    return;
                }
                x if x == h => return,
                _ => i = (i + 1) & mask,
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(u64)) {
        self.slots.iter().filter(|x| **x != 0).for_each(|x| f(*x));
    }

    /// Adds every hash of another set.
    pub(crate) fn merge(&mut self, other: &HashSet64) {
        other.for_each(|h| self.insert(h));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: i64, doc: &str, text: &str, set: &mut HashSet64) -> Row {
        let mut hashes = Vec::new();
        text_hashes(text, &mut hashes);
        doc_hashes(&serde_json::from_str(doc).unwrap(), &mut hashes);
        hashes.into_iter().for_each(|h| set.insert(h));
        Row {
            time: 1000 + i,
            seq: i + 1,
            severity: (i % 6) as u8,
            disposition: if i % 2 == 0 { NO_DISPOSITION } else { 2 },
            src_ip: Some(format!("192.0.2.{}", i % 3)),
            dst_ip: None,
            user: (i % 5 == 0).then(|| "tanaka".to_string()),
            doc: doc.to_string(),
            log: None,
        }
    }

    #[test]
    fn the_streaming_scan_gives_the_hashes_and_columns_of_the_parsed_document() {
        let docs = [
            r#"{"time":1763596800000,"class_uid":4002,"severity_id":3,"disposition_id":2,"metadata":{"tenant_uid":"t-1","uid":"x"},"message":"県庁への\"不正\"アクセス","src_endpoint":{"ip":"192.0.2.1","port":443},"actor":{"user":{"name":"tanaka"}},"a":[1,-2,2.5,true,null,{"b":"c"}],"e\u0041":"\u3042"}"#,
            r#"{"time":5,"class_uid":1}"#,
            r#"{}"#,
        ];
        for d in docs {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            doc_hashes(&serde_json::from_str(d).unwrap(), &mut a);
            let cols = scan_doc(d, &mut b).unwrap();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "{d}");
            let v: serde_json::Value = serde_json::from_str(d).unwrap();
            assert_eq!(cols.time, v["time"].as_i64());
            assert_eq!(cols.class, v["class_uid"].as_u64());
            assert_eq!(cols.tenant.as_deref(), v["metadata"]["tenant_uid"].as_str());
            assert_eq!(cols.src_ip.as_deref(), v["src_endpoint"]["ip"].as_str());
            assert_eq!(cols.user.as_deref(), v["actor"]["user"]["name"].as_str());
        }
        let mut h = Vec::new();
        assert!(scan_doc(r#"{"a":1"#, &mut h).is_none());
        assert!(scan_doc(r#"{"a":1} x"#, &mut h).is_none());
        // Nesting past 16 levels is skipped (not hashed), however deep, without
        // recursing into it.
        let nested = |n: usize| format!(r#"{{"a":{}"x"{}}}"#, "[".repeat(n), "]".repeat(n));
        h.clear();
        assert!(scan_doc(&nested(30), &mut h).is_some());
        assert!(h.is_empty(), "nothing below depth 16 is hashed");
        assert!(scan_doc(&nested(100_000), &mut h).is_some());
        assert!(h.is_empty());
    }

    #[test]
    fn a_block_reads_back_what_was_written_and_its_bloom_has_no_false_negative() {
        let mut set = HashSet64::with_capacity(1024);
        let rows: Vec<Row> = (0..300)
            .map(|i| row(i, &format!(r#"{{"message":"不正アクセス {i}","a":{{"b":[{i},true]}}}}"#), &format!("不正アクセス {i}\nzz{i}zz"), &mut set))
            .collect();
        let refs: Vec<&Row> = rows.iter().collect();
        let (bytes, head_len, _) = encode(&refs, &set).unwrap();
        let head = decode_head(&bytes[..head_len], rows.len()).unwrap();
        let body = &bytes[head_len..];
        assert_eq!(head.body_len(), body.len());
        let cols = decode_cols(&head, body, rows.len()).unwrap();
        for (i, r) in cols.rows.iter().enumerate() {
            assert_eq!((r.time, r.seq, r.severity), (1000 + i as i64, i as i64 + 1, (i % 6) as u8));
            assert_eq!(col_str(&cols, r.src), Some(format!("192.0.2.{}", i % 3).as_str()));
            assert_eq!(col_str(&cols, r.dst), None);
        }
        let f = decode_frame(&head, body, &cols, 2).unwrap();
        assert_eq!(f.len(), 300 - 2 * FRAME_ROWS);
        assert!(f[0].contains(&format!("不正アクセス {}", 2 * FRAME_ROWS)));
        let mut q = Vec::new();
        text_hashes("アクセス 17", &mut q);
        assert!(head.may_contain(&q));
        assert!(head.may_contain(&[leaf_hash("a.b", "299"), leaf_hash("a.b", "true")]));
        // Absent hashes are mostly refused (about 2% false positives).
        let absent = (0..1000).filter(|i| head.may_contain(&[leaf_hash("a.b", &format!("x{i}"))])).count();
        assert!(absent < 80, "{absent} false positives in 1000");
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let mut set = HashSet64::with_capacity(16);
        let rows: Vec<Row> = (0..10).map(|i| row(i, r#"{"m":"x"}"#, "x", &mut set)).collect();
        let refs: Vec<&Row> = rows.iter().collect();
        let (bytes, head_len, _) = encode(&refs, &set).unwrap();
        for cut in [0, 3, head_len - 1] {
            assert!(decode_head(&bytes[..cut], 10).is_err());
        }
        assert!(decode_head(&bytes[..head_len], 11).is_err());
        let head = decode_head(&bytes[..head_len], 10).unwrap();
        let body = &bytes[head_len..];
        assert!(decode_cols(&head, &body[..2], 10).is_err());
        let cols = decode_cols(&head, body, 10).unwrap();
        assert!(decode_frame(&head, &body[..body.len() - 1], &cols, 0).is_err());
        assert!(decode_frame(&head, body, &cols, 1).is_err());
    }
}
