//! Sealing closed day partitions (証拠保全): a day is sealed once it has been over for
//! a while, by `manifest.json` in its folder, which lists for each seal the length
//! and SHA-256 of `blocks.dat` and `blocks.idx` up to what the directory named then.
//! Both files only grow (late events, retention marks), so a later seal covers a
//! longer prefix and chains to the one before by its digest. The retention component
//! seals and writes each seal's digest to the hash-chained audit log
//! (`events.seal`), apart from the data: `mamori events verify` recomputes every
//! sealed prefix from the files and checks each day's last digest against the audit
//! log, so a change to a sealed byte, a rewritten manifest or a dropped seal shows.

use super::EventStoreError;
use super::day::{day_name, parse_day_name};
use super::part::{Catalog, DATA, INDEX};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// The manifest's file name in a day's folder.
pub const MANIFEST: &str = "manifest.json";

/// A day's manifest: its seals, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The seals.
    pub seals: Vec<Seal>,
}

/// One seal: the files' prefixes as they were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// When (Unix ms).
    pub sealed_at: i64,
    /// Each file's sealed length and SHA-256 (hex) of those bytes.
    pub files: Vec<FileSeal>,
    /// The digest of the seal before (none for the first).
    pub previous: Option<String>,
}

/// A file's sealed prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSeal {
    /// `blocks.dat` or `blocks.idx`.
    pub name: String,
    /// Bytes sealed.
    pub bytes: u64,
    /// SHA-256 (hex) of them.
    pub sha256: String,
}

impl Seal {
    /// The seal's digest: SHA-256 (hex) of its JSON (what the audit log records).
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(serde_json::to_vec(self).unwrap_or_default()))
    }
}

/// A seal made now, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SealRecord {
    /// The day.
    pub day: String,
    /// The seal's digest.
    pub digest: String,
    /// The seal.
    pub seal: Seal,
}

/// What a check of one day found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DayCheck {
    /// Every seal holds; the digest of the last.
    Sealed {
        /// How many seals.
        seals: usize,
        /// The last seal's digest.
        digest: String,
    },
    /// Not sealed yet (the day is recent).
    Open,
    /// A seal does not hold: what differs.
    Broken {
        /// What.
        reason: String,
    },
}

/// SHA-256 (hex) of the first `len` bytes of a file; None when it is shorter.
fn hash_prefix(path: &Path, len: u64) -> Result<Option<String>, EventStoreError> {
    let f = std::fs::File::open(path)?;
    let mut r = f.take(len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        read += n as u64;
    }
    Ok((read == len).then(|| hex::encode(h.finalize())))
}

/// The largest manifest read (a day sealed hourly for years stays far below).
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

fn read_manifest(dir: &Path) -> Result<Option<Manifest>, EventStoreError> {
    let path = dir.join(MANIFEST);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_MANIFEST_BYTES) {
        return Err(EventStoreError::Task(format!("{}: larger than {MAX_MANIFEST_BYTES} bytes", path.display())));
    }
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| EventStoreError::Task(format!("{}: {e}", dir.join(MANIFEST).display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), EventStoreError> {
    let tmp = dir.join(format!("{MANIFEST}.tmp"));
    let bytes = serde_json::to_vec_pretty(m).map_err(|e| EventStoreError::Task(e.to_string()))?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(MANIFEST))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Seals the days that ended at least `after_ms` before `now_ms` and have grown since
/// their last seal (or have none). Reads only what each directory names, so appends
/// going on meanwhile are not in the seal (the next one takes them).
pub(crate) fn seal_closed(catalog: &Catalog, now_ms: i64, after_ms: i64) -> Result<Vec<SealRecord>, EventStoreError> {
    let mut out = Vec::new();
    for day in catalog.days()? {
        if super::day::day_start(day).saturating_add(super::day::DAY_MS).saturating_add(after_ms) > now_ms {
            continue;
        }
        let Some(part) = catalog.get(day)? else { continue };
        let (data_len, index_len) = {
            let st = part.read_state()?;
            (st.data_len, st.index_len)
        };
        let mut manifest = read_manifest(&part.path)?.unwrap_or_else(|| Manifest { day: day_name(day), seals: Vec::new() });
        let last = manifest.seals.last();
        let lens = |s: &Seal| s.files.iter().map(|f| f.bytes).collect::<Vec<_>>();
        if last.is_some_and(|s| lens(s) == [data_len, index_len]) {
            continue;
        }
        let mut files = Vec::new();
        for (name, len) in [(DATA, data_len), (INDEX, index_len)] {
            let Some(sha256) = hash_prefix(&part.path.join(name), len)? else {
                return Err(EventStoreError::Task(format!("{}: shorter than its directory says", part.path.join(name).display())));
            };
            files.push(FileSeal { name: name.to_string(), bytes: len, sha256 });
        }
        let seal = Seal { sealed_at: now_ms, files, previous: last.map(Seal::digest) };
        let digest = seal.digest();
        manifest.seals.push(seal.clone());
        write_manifest(&part.path, &manifest)?;
        tracing::info!(day = %day_name(day), %digest, "event store: partition sealed");
        out.push(SealRecord { day: day_name(day), digest, seal });
    }
    Ok(out)
}

/// Checks every day folder under `dir` (an event store's folder) against its
/// manifest, reading the files only (safe while a server writes to them).
pub fn verify_dir(dir: &Path) -> Result<Vec<(String, DayCheck)>, EventStoreError> {
    let mut days: Vec<(i64, std::path::PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(day) = entry.file_name().to_str().and_then(parse_day_name)
            && entry.file_type()?.is_dir()
        {
            days.push((day, entry.path()));
        }
    }
    days.sort();
    let mut out = Vec::new();
    for (day, path) in days {
        let check = match read_manifest(&path) {
            Ok(None) => DayCheck::Open,
            Ok(Some(m)) => check_manifest(&path, &m, &day_name(day))?,
            Err(e) => DayCheck::Broken { reason: format!("manifest unreadable: {e}") },
        };
        out.push((day_name(day), check));
    }
    Ok(out)
}

fn check_manifest(path: &Path, m: &Manifest, day: &str) -> Result<DayCheck, EventStoreError> {
    if m.day != day {
        return Ok(DayCheck::Broken { reason: format!("the manifest is of {}", m.day) });
    }
    let mut previous: Option<String> = None;
    for (i, seal) in m.seals.iter().enumerate() {
        if seal.previous != previous {
            return Ok(DayCheck::Broken { reason: format!("seal {} does not chain to the one before", i + 1) });
        }
        for f in &seal.files {
            if f.name != DATA && f.name != INDEX {
                return Ok(DayCheck::Broken { reason: format!("seal {} names {:?}", i + 1, f.name) });
            }
            match hash_prefix(&path.join(&f.name), f.bytes)? {
                Some(h) if h == f.sha256 => {}
                Some(_) => return Ok(DayCheck::Broken { reason: format!("{}: its first {} bytes changed since seal {}", f.name, f.bytes, i + 1) }),
                None => return Ok(DayCheck::Broken { reason: format!("{}: shorter than the {} bytes of seal {}", f.name, f.bytes, i + 1) }),
            }
        }
        previous = Some(seal.digest());
    }
    Ok(match previous {
        Some(digest) => DayCheck::Sealed { seals: m.seals.len(), digest },
        None => DayCheck::Open,
    })
}

/// The last seal's digest of each day partition under `dir` that has a manifest.
pub fn last_digests(dir: &Path) -> Result<Vec<(String, String)>, EventStoreError> {
    Ok(verify_dir(dir)?
        .into_iter()
        .filter_map(|(day, c)| match c {
            DayCheck::Sealed { digest, .. } => Some((day, digest)),
            _ => None,
        })
        .collect())
}
