//! Durable cursors: where each consumer that must see every event (a forwarder, the
//! SOC detector) stands in the log, kept on this node's disk so it goes on from there
//! after a restart.
//!
//! A cursor is one small file in the log folder's `cursors/` (with JetStream, one per
//! partition: `NAME@STREAM_K`). It holds the offset of the next event the consumer has
//! not yet finished with: a consumer saves it only after it has dealt with everything
//! before (sent and acknowledged), so a crash repeats at most the last batch (at least
//! once). The folder is also the registry: the local log keeps segments that a cursor
//! still needs, up to [`crate::BusOptions::reader_keep`]; a consumer further behind
//! loses the oldest records, and its reader counts them
//! ([`crate::log::LogStats::expired`], `mamori_events_log_expired_total`).

use crate::BusError;
use crate::log::LogError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of the cursors, in the log folder.
pub(crate) const DIR: &str = "cursors";
/// Longest cursor name.
pub const MAX_NAME: usize = 64;

/// Checks a cursor name: 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), BusError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(BusError::Cursor(format!("invalid cursor name '{name}' (1-{MAX_NAME} of a-z 0-9 . _ -)"))) }
}

/// One consumer's durable position in the log.
#[derive(Debug)]
pub struct Cursor {
    name: String,
    path: PathBuf,
    offset: u64,
    created: bool,
}

impl Cursor {
    /// Opens the cursor file `file` in `dir`, making it at `start` when missing, and
    /// holding it to `end` (a log made anew is shorter than a cursor of the old one).
    pub(crate) fn open(dir: &Path, name: &str, file: &str, start: u64, end: u64) -> Result<Self, BusError> {
        check_name(name)?;
        std::fs::create_dir_all(dir).map_err(LogError::Io)?;
        let path = dir.join(file);
        let (offset, created) = match std::fs::read_to_string(&path) {
            Ok(s) => match s.trim().parse::<u64>() {
                Ok(o) => (o, false),
                Err(_) => {
                    // Torn or foreign: starting from the beginning repeats, never skips.
                    tracing::warn!(cursor = name, "cursor file unreadable; starting from the oldest kept event");
                    (0, false)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (start, true),
            Err(e) => return Err(LogError::Io(e).into()),
        };
        let offset = if offset > end {
            tracing::warn!(cursor = name, offset, end, "cursor beyond the end of the log (the log was made anew); going on from its end");
            end
        } else {
            offset
        };
        let mut c = Self { name: name.to_string(), path, offset, created };
        if created {
            c.write(offset)?;
        }
        Ok(c)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offset of the next event its consumer has not finished with.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether this open made it (the consumer is new).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Moves the cursor to `offset` and makes that durable (written, synced, renamed
    /// into place) before returning.
    pub async fn save(&mut self, offset: u64) -> Result<(), BusError> {
        if offset == self.offset {
            return Ok(());
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_file(&path, offset)).await.map_err(|_| LogError::Closed)??;
        self.offset = offset;
        Ok(())
    }

    fn write(&mut self, offset: u64) -> Result<(), BusError> {
        write_file(&self.path, offset)?;
        self.offset = offset;
        Ok(())
    }
}

fn write_file(path: &Path, offset: u64) -> Result<(), LogError> {
    // A name starting with a dot is not a cursor name: a torn write is never listed.
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("cursor");
    let tmp = path.with_file_name(format!(".{file}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(offset.to_string().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Every cursor in `dir` whose file name ends in `suffix`: (name, offset).
pub(crate) fn list(dir: &Path, suffix: &str) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(String, u64)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_suffix(suffix)?;
            if name.is_empty() || name.contains('@') || check_name(name).is_err() {
                return None;
            }
            let offset = std::fs::read_to_string(e.path()).ok()?.trim().parse().ok()?;
            Some((name.to_string(), offset))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["forward.siem", "detector", "a", "x-1_2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "Upper", "a/b", "a@b", "../x", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_cursor_survives_reopening_and_is_held_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cursor::open(dir.path(), "forward.a", "forward.a", 7, 100).unwrap();
        assert!(c.created());
        assert_eq!(c.offset(), 7);
        c.save(42).await.unwrap();
        let c = Cursor::open(dir.path(), "forward.a", "forward.a", 0, 100).unwrap();
        assert!(!c.created());
        assert_eq!(c.offset(), 42);
        let c = Cursor::open(dir.path(), "forward.a", "forward.a", 0, 10).unwrap();
        assert_eq!(c.offset(), 10, "a log made anew");
        assert_eq!(list(dir.path(), ""), vec![("forward.a".to_string(), 42)]);
        std::fs::write(dir.path().join("forward.a"), "garbage").unwrap();
        assert_eq!(Cursor::open(dir.path(), "forward.a", "forward.a", 50, 100).unwrap().offset(), 0, "unreadable: from the oldest, never skipping");
    }
}
