//! The event log: where an event is acknowledged. A publish returns once its events are
//! written and synced here; the search index and every consumer that must see every
//! event read the log by offset, each at its own pace.
//!
//! # Format
//! Segments `DIR/{base:020}.seg`, `base` the offset of their first record. A record is
//!
//! ```text
//! magic "MML1" | len u32 LE | crc32c u32 LE | offset u64 LE | payload (len bytes)
//! ```
//!
//! the checksum (CRC-32C) over offset and payload. Offsets count records from 0 and
//! have no gaps when written; a reader checks each record's checksum and offset.
//!
//! # Writing
//! One writer thread takes every batch already queued (group commit), writes them with
//! one `write` and one `fdatasync`, and only then answers the publishers and moves the
//! committed end, which readers never pass. Its queue is bounded, so a disk that cannot
//! keep up slows publishers instead of filling memory. A segment is closed (synced)
//! after `segment_bytes`, and the folder synced when a segment is created.
//!
//! # Damage
//! Opening scans the newest segment: a record cut short at its end (a crash in the
//! middle of a write that was never acknowledged) is cut off. A damaged record
//! elsewhere (a bad checksum, a length beyond [`MAX_RECORD`]) is counted and skipped:
//! the reader looks for the next record whose header and checksum hold, so one bad
//! sector loses the records in it, not the rest of the segment.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{oneshot, watch};

const MAGIC: [u8; 4] = *b"MML1";
const HEADER: usize = 20;
/// The largest payload of one record.
pub const MAX_RECORD: usize = 4 << 20;
/// Bytes the writer gathers for one group commit, at most.
const MAX_GROUP_BYTES: usize = 16 << 20;
/// Batches waiting for the writer, at most (then publishers wait).
const QUEUE: usize = 256;
const EXT: &str = ".seg";

/// An error of the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file system failed.
    #[error("event log i/o error: {0}")]
    Io(#[from] io::Error),
    /// A payload is larger than [`MAX_RECORD`].
    #[error("event log record of {0} bytes is too large")]
    TooLarge(usize),
    /// The writer thread has stopped.
    #[error("event log writer has stopped")]
    Closed,
    /// A write failed; nothing of the batch was acknowledged.
    #[error("event log write failed: {0}")]
    Write(String),
}

/// How the log is kept.
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// A segment is closed and a new one begun after this many bytes.
    pub segment_bytes: u64,
    /// Whether each group commit is synced to disk (off only for benchmarks of the
    /// rest of the pipeline).
    pub sync: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { segment_bytes: 64 << 20, sync: true }
    }
}

/// Counters of the log.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Records written since start.
    pub records: AtomicU64,
    /// Bytes written since start (headers included).
    pub bytes: AtomicU64,
    /// Group commits (syncs) since start.
    pub commits: AtomicU64,
    /// Damaged stretches found by readers (or at open) and skipped.
    pub damaged: AtomicU64,
    /// Records a reader could not read because retention had removed their segment.
    pub expired: AtomicU64,
}

struct Append {
    payloads: Vec<Vec<u8>>,
    reply: oneshot::Sender<Result<u64, LogError>>,
}

struct Shared {
    dir: PathBuf,
    tx: Mutex<Option<SyncSender<Append>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The offset after the last synced record.
    end: watch::Sender<u64>,
    stats: Arc<LogStats>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut t) = self.thread.lock()
            && let Some(t) = t.take()
            && t.join().is_err()
        {
            tracing::error!("event log writer panicked");
        }
    }
}

/// Handle on the log; cheap to clone.
#[derive(Clone)]
pub struct Log {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("dir", &self.shared.dir).field("end", &self.end()).finish()
    }
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{EXT}"))
}

/// Returns the segments of `dir` by base offset, oldest first.
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(EXT)) else { continue };
        if stem.len() == 20
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(base) = stem.parse::<u64>()
        {
            out.push((base, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn checksum(offset: u64, payload: &[u8]) -> u32 {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    d.update(&offset.to_le_bytes());
    d.update(payload);
    d.finalize() as u32
}

fn encode(out: &mut Vec<u8>, offset: u64, payload: &[u8]) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(offset, payload).to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(payload);
}

/// What one position of a segment's bytes holds.
enum Parsed {
    /// A whole, intact record: its offset, payload range and total size.
    Record { offset: u64, start: usize, len: usize },
    /// Too few bytes for a record here (the end, or a record cut short).
    Short,
    /// Not a record (bad magic, length or checksum).
    Bad,
}

fn parse(buf: &[u8], at: usize) -> Parsed {
    let Some(h) = buf.get(at..at + HEADER) else { return Parsed::Short };
    if h[0..4] != MAGIC {
        return Parsed::Bad;
    }
    let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if len > MAX_RECORD {
        return Parsed::Bad;
    }
    let crc = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    let offset = u64::from_le_bytes([h[12], h[13], h[14], h[15], h[16], h[17], h[18], h[19]]);
    let start = at + HEADER;
    let Some(payload) = buf.get(start..start + len) else { return Parsed::Short };
    if checksum(offset, payload) != crc {
        return Parsed::Bad;
    }
    Parsed::Record { offset, start, len }
}

/// Finds the next intact record after a damaged one at `at`.
fn resync(buf: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    while i + HEADER <= buf.len() {
        match memchr_magic(&buf[i..]) {
            Some(j) => {
                if let Parsed::Record { .. } = parse(buf, i + j) {
                    return Some(i + j);
                }
                i += j + 1;
            }
            None => return None,
        }
    }
    None
}

fn memchr_magic(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == MAGIC)
}

/// Reads a segment whole and returns its intact records (offset, payload range), the
/// length up to the end of the last intact record, and the damaged stretches skipped.
fn scan(buf: &[u8]) -> (Vec<(u64, usize, usize)>, usize, u64) {
    let (mut out, mut at, mut damaged, mut valid_end) = (Vec::new(), 0usize, 0u64, 0usize);
    while at < buf.len() {
        match parse(buf, at) {
            Parsed::Record { offset, start, len } => {
                out.push((offset, start, len));
                at = start + len;
                valid_end = at;
            }
            Parsed::Short | Parsed::Bad => match resync(buf, at) {
                Some(next) => {
                    damaged += 1;
                    at = next;
                }
                None => break,
            },
        }
    }
    (out, valid_end, damaged)
}

/// The intact records of a segment's bytes as read from disk (perhaps damaged or cut
/// short), by offset, and the number of damaged stretches skipped: what readers get
/// of them. For checks of a log from outside and the fuzz target.
pub fn intact_records(buf: &[u8]) -> (Vec<(u64, &[u8])>, u64) {
    let (records, _, damaged) = scan(buf);
    (records.into_iter().map(|(o, start, len)| (o, &buf[start..start + len])).collect(), damaged)
}

impl Log {
    /// Opens the log kept in `dir` (created when missing) and starts its writer. A
    /// record cut short at the end of the newest segment is cut off; damage elsewhere
    /// is counted (`stats().damaged`) and skipped.
    pub fn open(dir: &Path, options: LogOptions) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir)?;
        let segs = segments(dir)?;
        let stats = Arc::new(LogStats::default());
        let (end, file, size) = match segs.last() {
            Some((base, path)) => {
                let mut f = OpenOptions::new().read(true).write(true).open(path)?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                let (records, valid_end, damaged) = scan(&buf);
                if damaged > 0 {
                    tracing::error!(segment = %path.display(), damaged, "event log: damaged records skipped");
                    stats.damaged.fetch_add(damaged, Ordering::Relaxed);
                }
                if valid_end < buf.len() {
                    tracing::warn!(segment = %path.display(), cut = buf.len() - valid_end, "event log: a record cut short by a crash was removed");
                    f.set_len(valid_end as u64)?;
                    f.sync_all()?;
                }
                f.seek(SeekFrom::Start(valid_end as u64))?;
                let end = records.last().map(|(o, _, _)| o + 1).unwrap_or(*base).max(*base);
                (end, f, valid_end as u64)
            }
            None => {
                let f = create_segment(dir, 0)?;
                (0, f, 0)
            }
        };
        let (end_tx, _) = watch::channel(end);
        let (tx, rx) = sync_channel(QUEUE);
        let shared = Arc::new(Shared { dir: dir.to_path_buf(), tx: Mutex::new(Some(tx)), thread: Mutex::new(None), end: end_tx, stats });
        let writer = Writer { dir: dir.to_path_buf(), file, size, next: end, options, shared: Arc::downgrade(&shared) };
        let thread = std::thread::Builder::new().name("mamori-event-log".into()).spawn(move || writer.run(rx))?;
        if let Ok(mut t) = shared.thread.lock() {
            *t = Some(thread);
        }
        Ok(Log { shared })
    }

    /// Appends `payloads` as consecutive records; returns the offset of the first once
    /// all are synced to disk. Waits while the writer's queue is full.
    pub async fn append(&self, payloads: Vec<Vec<u8>>) -> Result<u64, LogError> {
        if let Some(p) = payloads.iter().find(|p| p.len() > MAX_RECORD) {
            return Err(LogError::TooLarge(p.len()));
        }
        let (reply, rx) = oneshot::channel();
        let tx = self.shared.tx.lock().ok().and_then(|t| t.clone()).ok_or(LogError::Closed)?;
        let append = Append { payloads, reply };
        // A full queue blocks: wait for room off the async threads.
        match tx.try_send(append) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(a)) => {
                tokio::task::spawn_blocking(move || tx.send(a)).await.map_err(|_| LogError::Closed)?.map_err(|_| LogError::Closed)?
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(LogError::Closed),
        }
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// The offset after the last record synced to disk.
    pub fn end(&self) -> u64 {
        *self.shared.end.borrow()
    }

    /// Changes of [`Log::end`].
    pub fn watch_end(&self) -> watch::Receiver<u64> {
        self.shared.end.subscribe()
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<LogStats> {
        &self.shared.stats
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// A reader from `offset` (blocking reads; see [`LogReader::read`]).
    pub fn reader(&self, offset: u64) -> LogReader {
        LogReader { log: self.clone(), next: offset, seg: None }
    }

    /// Removes the segments whose every record is before `offset` (all consumers
    /// are past them) and that were last written before `older_than` (none: keep
    /// them), never the newest. Returns how many were removed.
    pub fn remove_before(&self, offset: u64, older_than: Option<std::time::SystemTime>) -> Result<usize, LogError> {
        let Some(cutoff) = older_than else { return Ok(0) };
        let segs = segments(&self.shared.dir)?;
        let mut removed = 0;
        for pair in segs.windows(2) {
            // A segment ends where the next begins.
            let old = std::fs::metadata(&pair[0].1).and_then(|m| m.modified()).is_ok_and(|t| t < cutoff);
            if pair[1].0 <= offset && old {
                std::fs::remove_file(&pair[0].1)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        segments(&self.shared.dir).map(|s| s.iter().filter_map(|(_, p)| p.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
    }
}

fn create_segment(dir: &Path, base: u64) -> io::Result<File> {
    let f = OpenOptions::new().read(true).write(true).create_new(true).open(segment_path(dir, base))?;
    // The new name must survive a crash too.
    File::open(dir)?.sync_all()?;
    Ok(f)
}

struct Writer {
    dir: PathBuf,
    file: File,
    size: u64,
    next: u64,
    options: LogOptions,
    shared: std::sync::Weak<Shared>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Append>) {
        let mut buf = Vec::with_capacity(1 << 20);
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            let mut bytes: usize = group[0].payloads.iter().map(|p| p.len() + HEADER).sum();
            while bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(a) => {
                        bytes += a.payloads.iter().map(|p| p.len() + HEADER).sum::<usize>();
                        group.push(a);
                    }
                    Err(_) => break,
                }
            }
            let result = self.commit(&mut buf, &group);
            for (a, first) in group.into_iter().zip(result.iter()) {
                let _ = a.reply.send(first.clone().map_err(LogError::Write));
            }
        }
        if let Err(e) = self.file.sync_all() {
            tracing::error!(error = %e, "event log: final sync failed");
        }
    }

    /// Writes a group and syncs it; returns each batch's first offset.
    fn commit(&mut self, buf: &mut Vec<u8>, group: &[Append]) -> Vec<Result<u64, String>> {
        if self.size >= self.options.segment_bytes
            && let Err(e) = self.rotate()
        {
            tracing::error!(error = %e, "event log: cannot begin a new segment");
            return group.iter().map(|_| Err(e.to_string())).collect();
        }
        buf.clear();
        let mut firsts = Vec::with_capacity(group.len());
        let mut next = self.next;
        for a in group {
            firsts.push(next);
            for p in &a.payloads {
                encode(buf, next, p);
                next += 1;
            }
        }
        let written = self.file.write_all(buf).and_then(|()| if self.options.sync { self.file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            tracing::error!(error = %e, "event log: write failed; the batches are refused");
            // Whatever part reached the file is cut off again, so offsets stay dense.
            let _ = self.file.set_len(self.size);
            let _ = self.file.seek(SeekFrom::Start(self.size));
            return group.iter().map(|_| Err(e.to_string())).collect();
        }
        let records = next - self.next;
        self.size += buf.len() as u64;
        self.next = next;
        if let Some(shared) = self.shared.upgrade() {
            shared.stats.records.fetch_add(records, Ordering::Relaxed);
            shared.stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            shared.stats.commits.fetch_add(1, Ordering::Relaxed);
            shared.end.send_replace(next);
        }
        firsts.into_iter().map(Ok).collect()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        self.file = create_segment(&self.dir, self.next)?;
        self.size = 0;
        Ok(())
    }
}

/// Reads the log from an offset on, never past the synced end.
pub struct LogReader {
    log: Log,
    next: u64,
    /// The segment being read: base, its bytes read so far, and the position in them.
    seg: Option<Segment>,
}

struct Segment {
    base: u64,
    file: File,
    buf: Vec<u8>,
    at: usize,
    /// The damaged position last counted (each is counted once).
    reported: Option<usize>,
}

impl LogReader {
    /// The offset of the next record this reader returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Returns up to `max` records from the position on (fewer at the synced end;
    /// none when there is nothing new). Blocking: call it off the async threads.
    pub fn read(&mut self, max: usize) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let end = self.log.end();
        let mut out = Vec::new();
        while out.len() < max && self.next < end {
            if self.seg.is_none() {
                self.seg = self.open_segment()?;
                if self.seg.is_none() {
                    break;
                }
            }
            let Some(seg) = self.seg.as_mut() else { break };
            match parse(&seg.buf, seg.at) {
                Parsed::Record { offset, start, len } => {
                    if offset >= end {
                        break;
                    }
                    seg.at = start + len;
                    if offset >= self.next {
                        out.push((offset, seg.buf[start..start + len].to_vec()));
                        self.next = offset + 1;
                    }
                }
                Parsed::Short => {
                    // More of this segment may have been written since it was read.
                    if seg.fill()? > 0 {
                        continue;
                    }
                    // A later segment means this one is closed: go on there.
                    match later_than(&self.log, seg.base)? {
                        Some(b) => {
                            self.next = self.next.max(b);
                            self.seg = None;
                        }
                        None => break,
                    }
                }
                Parsed::Bad => {
                    // A record may lie beyond what was read so far.
                    if seg.buf.len() - seg.at < MAX_RECORD + HEADER && seg.fill()? > 0 {
                        continue;
                    }
                    if seg.reported != Some(seg.at) {
                        seg.reported = Some(seg.at);
                        self.log.shared.stats.damaged.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(base = seg.base, at = seg.at, "event log: damaged record skipped");
                    }
                    match resync(&seg.buf, seg.at) {
                        Some(next) => seg.at = next,
                        None => match later_than(&self.log, seg.base)? {
                            Some(b) => {
                                self.next = self.next.max(b);
                                self.seg = None;
                            }
                            // Nothing intact after it yet: look again when more is written.
                            None => break,
                        },
                    }
                }
            }
        }
        if let Some(seg) = self.seg.as_mut() {
            seg.compact();
        }
        Ok(out)
    }

    /// Opens the segment holding `self.next` (or the first one after it, when
    /// retention removed it).
    fn open_segment(&mut self) -> Result<Option<Segment>, LogError> {
        let segs = segments(&self.log.shared.dir)?;
        let pick = segs.iter().rev().find(|(b, _)| *b <= self.next).or_else(|| segs.first());
        let Some((base, path)) = pick else { return Ok(None) };
        if *base > self.next {
            let lost = base - self.next;
            self.log.shared.stats.expired.fetch_add(lost, Ordering::Relaxed);
            tracing::warn!(from = self.next, to = base, "event log: records removed by retention were not read");
            self.next = *base;
        }
        let file = match File::open(path) {
            Ok(f) => f,
            // Removed between the listing and now: look again next time.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut seg = Segment { base: *base, file, buf: Vec::new(), at: 0, reported: None };
        seg.fill()?;
        Ok(Some(seg))
    }
}

/// The base of the first segment of `log` after `base`, if any.
fn later_than(log: &Log, base: u64) -> Result<Option<u64>, LogError> {
    Ok(segments(&log.shared.dir)?.into_iter().map(|(b, _)| b).find(|b| *b > base))
}

/// Bytes read from a segment at once.
const READ_CHUNK: usize = 4 << 20;

impl Segment {
    /// Reads more of the file; returns how many bytes came.
    fn fill(&mut self) -> io::Result<usize> {
        let before = self.buf.len();
        (&mut self.file).take(READ_CHUNK as u64).read_to_end(&mut self.buf)?;
        Ok(self.buf.len() - before)
    }

    /// Forgets the bytes already read past.
    fn compact(&mut self) {
        if self.at >= READ_CHUNK {
            self.buf.drain(..self.at);
            self.reported = self.reported.and_then(|r| r.checked_sub(self.at));
            self.at = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(i: u64) -> Vec<u8> {
        format!("{{\"n\":{i},\"text\":\"不正アクセス {i}\"}}").into_bytes()
    }

    fn read_all(log: &Log, from: u64) -> Vec<(u64, Vec<u8>)> {
        let mut r = log.reader(from);
        let mut out = Vec::new();
        loop {
            let got = r.read(1000).unwrap();
            if got.is_empty() {
                return out;
            }
            out.extend(got);
        }
    }

    #[tokio::test]
    async fn records_come_back_in_order_across_segments_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let small = LogOptions { segment_bytes: 4096, sync: true };
        let log = Log::open(dir.path(), small.clone()).unwrap();
        let mut firsts = Vec::new();
        for b in 0..50u64 {
            firsts.push(log.append((0..20).map(|i| payload(b * 20 + i)).collect()).await.unwrap());
        }
        assert_eq!(firsts, (0..50).map(|b| b * 20).collect::<Vec<_>>());
        assert_eq!(log.end(), 1000);
        assert!(segments(dir.path()).unwrap().len() > 5, "the log rotated");
        let all = read_all(&log, 0);
        assert_eq!(all.len(), 1000);
        assert!(all.iter().enumerate().all(|(i, (o, p))| *o == i as u64 && *p == payload(i as u64)));
        assert_eq!(read_all(&log, 777).first().map(|(o, _)| *o), Some(777), "a reader starts anywhere");
        drop(log);
        let log = Log::open(dir.path(), small).unwrap();
        assert_eq!(log.end(), 1000, "the end is found again");
        assert_eq!(log.append(vec![payload(1000)]).await.unwrap(), 1000);
        assert_eq!(read_all(&log, 995).len(), 6);
        // Retention removes whole segments behind every consumer, never the newest.
        assert_eq!(log.remove_before(500, Some(std::time::SystemTime::UNIX_EPOCH)).unwrap(), 0, "kept while young");
        let removed = log.remove_before(500, Some(std::time::SystemTime::now() + std::time::Duration::from_secs(1))).unwrap();
        assert!(removed > 0);
        let r = read_all(&log, 0);
        assert!(r[0].0 > 0 && r[0].0 <= 500 && r.last().map(|x| x.0) == Some(1000), "reading from 0 starts at the oldest kept");
        assert!(log.stats().expired.load(Ordering::Relaxed) > 0, "and counts what it could not read");
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_damage_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogOptions::default()).unwrap();
        log.append((0..100).map(payload).collect()).await.unwrap();
        drop(log);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        // A crash in the middle of a write: half a record at the end.
        let mut torn = Vec::new();
        encode(&mut torn, 100, &payload(100));
        bytes.extend_from_slice(&torn[..torn.len() / 2]);
        // One flipped byte in record 40's payload.
        let at40 = {
            let (records, _, _) = scan(&bytes);
            records[40].1
        };
        bytes[at40 + 3] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();

        let log = Log::open(dir.path(), LogOptions::default()).unwrap();
        assert_eq!(log.end(), 100, "the torn record was never acknowledged and is gone");
        assert!(std::fs::metadata(&path).unwrap().len() < bytes.len() as u64);
        let all = read_all(&log, 0);
        assert_eq!(all.len(), 99, "every record but the damaged one");
        assert!(!all.iter().any(|(o, _)| *o == 40));
        assert!(log.stats().damaged.load(Ordering::Relaxed) >= 1);
        // And it goes on where it was.
        assert_eq!(log.append(vec![payload(100)]).await.unwrap(), 100);
        assert_eq!(read_all(&log, 100), vec![(100, payload(100))]);
    }

    #[test]
    fn hostile_bytes_never_panic_and_give_only_intact_records() {
        let mut good = Vec::new();
        for i in 0..5 {
            encode(&mut good, i, &payload(i));
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..2000 {
            let mut b = good.clone();
            for _ in 0..(round % 7 + 1) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % b.len();
                b[i] = (seed >> 32) as u8;
            }
            if round % 3 == 0 {
                b.truncate((seed as usize) % b.len());
            }
            let (records, valid_end, _) = scan(&b);
            assert!(valid_end <= b.len());
            for (o, start, len) in records {
                assert_eq!(&b[start..start + len], payload(o).as_slice(), "a record that passes its checksum is the one written");
            }
        }
        // A huge length claims nothing.
        let mut b = good.clone();
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(scan(&b).0.len(), 4);
    }
}
