//! Day partitions: `DIR/YYYY-MM-DD/` holds `blocks.dat` (the blocks, appended) and
//! `blocks.idx` (the directory: one checksummed entry per block, per retention mark).
//!
//! ```text
//! entry: "MMD1" | len u32 | crc32c(body) u32 | body
//! body:  1 | tenant 16 | class u32 | rows u32 | min_time i64 | max_time i64
//!          | max_log i64 | max_severity u8 | pos u64 | len u32 | head_len u32
//!          | cols_end u32 | cols_crc u32 | docs_crc u32
//!        2 | tenant 16 | hidden_before i64          (retention: rows before are gone)
//!        3 | log offset i64                         (events at or before it are here)
//!        4 | tenant 16 | class u32 | hidden_before i64
//!                                   (retention of one class: its rows before are gone)
//! ```
//!
//! The writer appends a flush's blocks to `blocks.dat`, syncs it, then appends their
//! entries to `blocks.idx` and syncs that: an entry never names bytes that are not on
//! disk. Loading reads the directory up to its first damaged or cut entry; the writer
//! then cuts both files back to what the directory names (a crash in the middle of a
//! flush leaves a tail nobody acknowledged: those events are still in the event log).
//! Each block carries two CRC-32Cs in its entry (head and columns; documents), checked
//! on every read of those bytes.
//!
//! Readers share a partition's state with the writer ([`Catalog`]); one tenant's
//! blocks are kept apart from another's, so a tenant's query reads only its own.

use super::EventStoreError;
use super::block::Bytes;
use super::day::{day_name, parse_day_name};
use mamori_core::TenantId;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

const MAGIC: [u8; 4] = *b"MMD1";
pub(crate) const DATA: &str = "blocks.dat";
pub(crate) const INDEX: &str = "blocks.idx";
/// Largest directory entry body.
const MAX_ENTRY: usize = 256;

/// Where one block is and what it holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockMeta {
    pub class: u32,
    pub rows: u32,
    pub min_time: i64,
    pub max_time: i64,
    /// Highest event-log offset in the block, -1 when none came from the log.
    pub max_log: i64,
    pub max_severity: u8,
    pub pos: u64,
    pub len: u32,
    pub head_len: u32,
    /// End of the columns (head and columns: what filters need).
    pub cols_end: u32,
    /// CRC-32C of the head and columns.
    pub cols_crc: u32,
    /// CRC-32C of the document frames.
    pub docs_crc: u32,
}

/// One tenant's part of a partition.
#[derive(Clone, Debug, Default)]
pub(crate) struct TenantPart {
    /// Its blocks, in the order written.
    pub blocks: Vec<BlockMeta>,
    /// Rows before this time were deleted by retention (`i64::MIN`: none).
    pub hidden_before: i64,
    /// Rows of a class before this time were deleted by its class's retention.
    pub class_hidden: HashMap<u32, i64>,
}

impl TenantPart {
    /// Rows of `class` before this time are gone (the tenant's mark or its class's).
    pub fn hidden_for(&self, class: u32) -> i64 {
        self.class_hidden.get(&class).copied().unwrap_or(i64::MIN).max(self.hidden_before)
    }
}

/// What a partition holds, as its directory says.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub tenants: HashMap<TenantId, TenantPart>,
    /// Events from the log at or before this offset are in the partition (migrated
    /// partitions); -1: none.
    pub floor: i64,
    /// Highest log offset stored, per tenant and class.
    pub key_max: HashMap<(TenantId, u32), i64>,
    /// Bytes of `blocks.dat` and `blocks.idx` the directory accounts for.
    pub data_len: u64,
    pub index_len: u64,
}

impl State {
    fn apply(&mut self, e: Entry) {
        match e {
            Entry::Block(t, m) => {
                if m.max_log >= 0 {
                    let k = self.key_max.entry((t, m.class)).or_insert(-1);
                    *k = (*k).max(m.max_log);
                }
                let part = self.tenants.entry(t).or_insert_with(|| TenantPart { blocks: Vec::new(), hidden_before: i64::MIN, class_hidden: HashMap::new() });
                part.blocks.push(m);
                self.data_len = self.data_len.max(m.pos + u64::from(m.len));
            }
            Entry::Hide(t, before) => {
                if let Some(part) = self.tenants.get_mut(&t) {
                    part.hidden_before = part.hidden_before.max(before);
                    part.blocks.retain(|b| b.max_time >= before);
                }
            }
            Entry::HideClass(t, class, before) => {
                if let Some(part) = self.tenants.get_mut(&t) {
                    let h = part.class_hidden.entry(class).or_insert(i64::MIN);
                    *h = (*h).max(before);
                    part.blocks.retain(|b| b.class != class || b.max_time >= before);
                }
            }
            Entry::Floor(o) => self.floor = self.floor.max(o),
        }
    }

    /// Returns the highest log offset a key holds (or the floor).
    pub fn held(&self, tenant: TenantId, class: u32) -> i64 {
        self.key_max.get(&(tenant, class)).copied().unwrap_or(-1).max(self.floor)
    }
}

/// A directory entry.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Entry {
    Block(TenantId, BlockMeta),
    Hide(TenantId, i64),
    Floor(i64),
    HideClass(TenantId, u32, i64),
}

impl Entry {
    /// Appends the entry's encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(96);
        match self {
            Entry::Block(t, m) => {
                body.push(1);
                body.extend_from_slice(t.0.as_bytes());
                for v in [m.class, m.rows] {
                    body.extend_from_slice(&v.to_le_bytes());
                }
                for v in [m.min_time, m.max_time, m.max_log] {
                    body.extend_from_slice(&v.to_le_bytes());
                }
                body.push(m.max_severity);
                body.extend_from_slice(&m.pos.to_le_bytes());
                for v in [m.len, m.head_len, m.cols_end, m.cols_crc, m.docs_crc] {
                    body.extend_from_slice(&v.to_le_bytes());
                }
            }
            Entry::Hide(t, before) => {
                body.push(2);
                body.extend_from_slice(t.0.as_bytes());
                body.extend_from_slice(&before.to_le_bytes());
            }
            Entry::Floor(o) => {
                body.push(3);
                body.extend_from_slice(&o.to_le_bytes());
            }
            Entry::HideClass(t, class, before) => {
                body.push(4);
                body.extend_from_slice(t.0.as_bytes());
                body.extend_from_slice(&class.to_le_bytes());
                body.extend_from_slice(&before.to_le_bytes());
            }
        }
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc(&body).to_le_bytes());
        out.extend_from_slice(&body);
    }

    fn decode(body: &[u8]) -> Option<Entry> {
        let mut b = Bytes(body);
        let kind = b.u8().ok()?;
        let tenant = |b: &mut Bytes| -> Option<TenantId> { Some(TenantId(uuid::Uuid::from_bytes(b.array().ok()?))) };
        let e = match kind {
            1 => Entry::Block(
                tenant(&mut b)?,
                BlockMeta {
                    class: b.u32().ok()?,
                    rows: b.u32().ok()?,
                    min_time: b.i64().ok()?,
                    max_time: b.i64().ok()?,
                    max_log: b.i64().ok()?,
                    max_severity: b.u8().ok()?,
                    pos: b.u64().ok()?,
                    len: b.u32().ok()?,
                    head_len: b.u32().ok()?,
                    cols_end: b.u32().ok()?,
                    cols_crc: b.u32().ok()?,
                    docs_crc: b.u32().ok()?,
                },
            ),
            2 => Entry::Hide(tenant(&mut b)?, b.i64().ok()?),
            3 => Entry::Floor(b.i64().ok()?),
            4 => Entry::HideClass(tenant(&mut b)?, b.u32().ok()?, b.i64().ok()?),
            _ => return None,
        };
        // Exactly its size: a longer body is not an entry of this version.
        b.is_empty().then_some(e)
    }
}

/// CRC-32C (Castagnoli).
pub(crate) fn crc(bytes: &[u8]) -> u32 {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    d.update(bytes);
    d.finalize() as u32
}

/// Reads a directory: its entries up to the first damaged one and the bytes they
/// take. Entries naming bytes beyond `data_len` end it too.
pub(crate) fn read_index(bytes: &[u8], data_len: u64) -> (Vec<Entry>, u64) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(head) = bytes.get(at..at + 12) {
        if head[..4] != MAGIC {
            break;
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let sum = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if len > MAX_ENTRY {
            break;
        }
        let Some(body) = bytes.get(at + 12..at + 12 + len) else { break };
        if crc(body) != sum {
            break;
        }
        let Some(e) = Entry::decode(body) else { break };
        if let Entry::Block(_, m) = e
            && m.pos.saturating_add(u64::from(m.len)) > data_len
        {
            break;
        }
        out.push(e);
        at += 12 + len;
    }
    (out, at as u64)
}

/// One day partition.
pub(crate) struct Partition {
    pub day: i64,
    pub path: PathBuf,
    data: File,
    state: RwLock<State>,
    /// Blocks found damaged by readers (skipped, and said in the log).
    pub damaged: std::sync::atomic::AtomicU64,
}

impl Partition {
    fn load(day: i64, path: PathBuf) -> Result<Partition, EventStoreError> {
        let data = File::open(path.join(DATA))?;
        let data_len = data.metadata()?.len();
        let index = match std::fs::read(path.join(INDEX)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let (entries, index_len) = read_index(&index, data_len);
        let mut state = State { floor: -1, ..State::default() };
        for e in entries {
            state.apply(e);
        }
        state.index_len = index_len;
        Ok(Partition { day, path, data, state: RwLock::new(state), damaged: std::sync::atomic::AtomicU64::new(0) })
    }

    /// Reads the partition's state.
    pub fn read_state(&self) -> Result<std::sync::RwLockReadGuard<'_, State>, EventStoreError> {
        self.state.read().map_err(|_| EventStoreError::Task("partition lock poisoned".into()))
    }

    fn write_state(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>, EventStoreError> {
        self.state.write().map_err(|_| EventStoreError::Task("partition lock poisoned".into()))
    }

    /// Returns a block's bytes `from..to` (relative to the block).
    pub fn read(&self, m: &BlockMeta, from: usize, to: usize) -> Result<Vec<u8>, EventStoreError> {
        let mut buf = vec![0u8; to.saturating_sub(from)];
        self.data.read_exact_at(&mut buf, m.pos + from as u64)?;
        Ok(buf)
    }

    /// Returns a block's head and columns, or the whole block with `docs`, their
    /// checksums checked.
    pub fn read_block(&self, m: &BlockMeta, docs: bool) -> Result<Vec<u8>, EventStoreError> {
        let cols_end = (m.cols_end as usize).min(m.len as usize);
        let b = self.read(m, 0, if docs { m.len as usize } else { cols_end })?;
        let damaged =
            |what: &str| EventStoreError::Corrupt(format!("partition {}: the {what} of the block at {} fail their checksum", day_name(self.day), m.pos));
        if crc(b.get(..cols_end).unwrap_or(&[])) != m.cols_crc {
            return Err(damaged("head and columns"));
        }
        if docs && crc(b.get(cols_end..).unwrap_or(&[])) != m.docs_crc {
            return Err(damaged("documents"));
        }
        Ok(b)
    }
}

/// The partitions of a store, loaded when first used and shared by the writer and
/// every reader.
pub(crate) struct Catalog {
    dir: PathBuf,
    parts: Mutex<BTreeMap<i64, Arc<Partition>>>,
}

impl Catalog {
    pub fn new(dir: &Path) -> Catalog {
        Catalog { dir: dir.to_path_buf(), parts: Mutex::new(BTreeMap::new()) }
    }

    fn path(&self, day: i64) -> PathBuf {
        self.dir.join(day_name(day))
    }

    /// Returns the days that have a partition on disk, oldest first.
    pub fn days(&self) -> Result<Vec<i64>, EventStoreError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if let Some(day) = entry.file_name().to_str().and_then(parse_day_name)
                && entry.path().join(DATA).exists()
            {
                out.push(day);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Returns the bytes a day's partition takes on disk (without loading it).
    pub fn bytes(&self, day: i64) -> u64 {
        let path = self.path(day);
        [DATA, INDEX].iter().map(|f| std::fs::metadata(path.join(f)).map(|m| m.len()).unwrap_or(0)).sum()
    }

    /// Returns a day's partition, or None when it has none.
    pub fn get(&self, day: i64) -> Result<Option<Arc<Partition>>, EventStoreError> {
        let mut parts = self.parts.lock().map_err(|_| EventStoreError::Task("catalog lock poisoned".into()))?;
        if let Some(p) = parts.get(&day) {
            return Ok(Some(p.clone()));
        }
        let path = self.path(day);
        if !path.join(DATA).exists() {
            return Ok(None);
        }
        let p = Arc::new(Partition::load(day, path)?);
        parts.insert(day, p.clone());
        Ok(Some(p))
    }

    /// Returns a day's partition for writing, creating it when needed.
    pub fn create(&self, day: i64) -> Result<Arc<Partition>, EventStoreError> {
        if let Some(p) = self.get(day)? {
            return Ok(p);
        }
        let path = self.path(day);
        std::fs::create_dir_all(&path)?;
        for f in [INDEX, DATA] {
            OpenOptions::new().create(true).append(true).open(path.join(f))?.sync_all()?;
        }
        File::open(&self.dir)?.sync_all()?;
        self.get(day)?.ok_or_else(|| EventStoreError::Write(format!("partition {} vanished", day_name(day))))
    }

    /// Returns the damaged blocks readers found in the loaded partitions.
    pub fn damaged(&self) -> u64 {
        self.parts.lock().map(|p| p.values().map(|p| p.damaged.load(std::sync::atomic::Ordering::Relaxed)).sum()).unwrap_or(0)
    }

    /// Forgets a day and deletes its partition.
    pub fn remove(&self, day: i64) -> Result<(), EventStoreError> {
        let mut parts = self.parts.lock().map_err(|_| EventStoreError::Task("catalog lock poisoned".into()))?;
        parts.remove(&day);
        let path = self.path(day);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The writer's open files of one partition.
pub(crate) struct Files {
    data: File,
    index: File,
}

impl Files {
    /// Opens a partition for appending; cuts what its directory does not name (the
    /// tail of a flush a crash interrupted).
    pub fn open(p: &Partition) -> Result<Files, EventStoreError> {
        let data = OpenOptions::new().read(true).write(true).open(p.path.join(DATA))?;
        let index = OpenOptions::new().read(true).write(true).open(p.path.join(INDEX))?;
        let st = p.read_state()?;
        for (f, len) in [(&data, st.data_len), (&index, st.index_len)] {
            if f.metadata()?.len() != len {
                tracing::warn!(partition = %day_name(p.day), bytes = len, "event store: cutting a partition file back to what its directory names");
                f.set_len(len)?;
                f.sync_all()?;
            }
        }
        Ok(Files { data, index })
    }

    /// Appends blocks (already laid out from `at`), syncs them, then appends their
    /// entries and syncs those; the state learns of them last.
    pub fn append(&mut self, p: &Partition, at: u64, data: &[u8], entries: &[Entry]) -> Result<(), EventStoreError> {
        if !data.is_empty() {
            self.data.write_all_at(data, at)?;
            self.data.sync_data()?;
        }
        let mut idx = Vec::with_capacity(entries.len() * 84);
        for e in entries {
            e.encode(&mut idx);
        }
        let index_at = p.read_state()?.index_len;
        self.index.write_all_at(&idx, index_at)?;
        self.index.sync_data()?;
        let mut st = p.write_state()?;
        for e in entries {
            st.apply(*e);
        }
        st.data_len = st.data_len.max(at + data.len() as u64);
        st.index_len = index_at + idx.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pos: u64) -> BlockMeta {
        BlockMeta {
            class: 4002,
            rows: 3,
            min_time: 10,
            max_time: 20,
            max_log: 7,
            max_severity: 2,
            pos,
            len: 100,
            head_len: 40,
            cols_end: 60,
            cols_crc: 1,
            docs_crc: 0xdead_beef,
        }
    }

    #[test]
    fn entries_round_trip_and_the_directory_stops_at_damage() {
        let t = TenantId::new();
        let entries = [Entry::Block(t, meta(0)), Entry::Hide(t, 15), Entry::Floor(99), Entry::Block(t, meta(100)), Entry::HideClass(t, 7, 20)];
        let mut bytes = Vec::new();
        for e in &entries {
            e.encode(&mut bytes);
        }
        let (got, len) = read_index(&bytes, 200);
        assert_eq!(got.len(), 5);
        assert_eq!(len, bytes.len() as u64);
        let mut st = State { floor: -1, ..State::default() };
        got.into_iter().for_each(|e| st.apply(e));
        assert_eq!(st.tenants[&t].blocks.len(), 2);
        assert_eq!(st.tenants[&t].hidden_before, 15);
        assert_eq!((st.tenants[&t].hidden_for(7), st.tenants[&t].hidden_for(4002)), (20, 15), "a class's mark applies to its class only");
        assert_eq!(st.held(t, 4002), 99);
        assert_eq!(st.held(t, 1), 99);
        // A block beyond the data ends the directory; so does a flipped bit or a cut.
        assert_eq!(read_index(&bytes, 150).0.len(), 3);
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert_eq!(read_index(&bad, 200).0.len(), 0);
        assert_eq!(read_index(&bytes[..bytes.len() - 1], 200).0.len(), 4);
        assert_eq!(read_index(&[0xff; 64], 200).0.len(), 0);
    }
}
