//! The blob store: content-addressed (SHA-256), compressed, sealed, reference-counted.
//!
//! **Object format.** `MAMORIB1`, the key id (a length byte and the id), an 8-byte random
//! nonce prefix, then frames: a flag byte (1 on the last frame), a big-endian `u32`
//! length and the sealed frame: AES-256-GCM of the zstd-compressed chunk (at most 1 MiB
//! of content), nonce = prefix ‖ frame number, associated data = frame number and flag.
//! A dropped, reordered or truncated frame does not open, and a reader checks the
//! SHA-256 of everything it read against the address before it reports the end.
//!
//! **Names.** The backend stores an object under HMAC-SHA256(naming key, address), the
//! naming key being a platform secret, so a listing of the bucket or directory does not
//! tell which known files are stored.
//!
//! **Order of a store.** The object is encoded to a staging file, the record and the
//! reference are committed, then the staging file becomes the object. The collector locks
//! a blob's row while it deletes the object, so a store of the same content waits for it
//! and writes the object again; a crash before the last step leaves a record without an
//! object for a store that was never acknowledged, and storing it again repairs it.

use crate::keyring::{Keyring, Purpose, SealError};
use crate::secrets::{SecretError, Secrets};
use aws_lc_rs::aead::NONCE_LEN;
use aws_lc_rs::digest;
use aws_lc_rs::hmac;
use mamori_store::{BlobRecord, BlobRef, Store, StoreError};
use mamori_store::{CrossTenant, Scope};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const MAGIC: &[u8; 8] = b"MAMORIB1";
/// Content per frame.
pub const CHUNK: usize = 1024 * 1024;
/// Largest sealed frame a reader accepts: zstd's bound for a chunk, plus the tag.
const MAX_FRAME: usize = CHUNK + CHUNK / 128 + 1024;
const ZSTD_LEVEL: i32 = 3;
const NAMING_KEY: &str = "vault/blob-naming-key";
/// A staging file older than this belongs to a store that crashed.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The config store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The naming key could not be had.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The backend or the source failed.
    #[error("blob I/O: {0}")]
    Io(#[from] io::Error),
    /// Not sealed as it should be (altered, truncated, another key).
    #[error("blob {0} is damaged or was altered: {1}")]
    Damaged(String, String),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Larger than allowed.
    #[error("blob is larger than {0} bytes")]
    TooLarge(u64),
    /// Not in the scope, or not there.
    #[error("blob not found")]
    NotFound,
}

/// An object being read from a backend.
pub type ObjectReader = Box<dyn AsyncRead + Send + Unpin>;
/// What a backend operation returns.
pub type IoFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// Where objects are kept. Writes arrive as a finished local staging file.
pub trait Backend: Send + Sync + 'static {
    /// Makes the staging file `staged` the object `name` (replacing one of that name).
    fn put<'a>(&'a self, name: &'a str, staged: &'a Path) -> IoFuture<'a, ()>;
    /// Opens object `name` for reading.
    fn get<'a>(&'a self, name: &'a str) -> IoFuture<'a, ObjectReader>;
    /// Deletes object `name`; one already gone is not an error.
    fn delete<'a>(&'a self, name: &'a str) -> IoFuture<'a, ()>;
    /// Returns the directory for staging files (on the same file system for a local backend).
    fn staging(&self) -> &Path;
}

/// Makes a backend's staging directory and removes what crashed stores left there.
/// Those were never acknowledged; only old ones go, since the directory may be shared
/// with a running node (or a CLI command) mid-store.
pub(crate) fn prepare_staging(staging: &Path) -> io::Result<()> {
    std::fs::create_dir_all(staging)?;
    let stale = std::time::SystemTime::now().checked_sub(STALE_STAGING).unwrap_or(std::time::UNIX_EPOCH);
    for e in std::fs::read_dir(staging)?.flatten() {
        if e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < stale) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

/// Objects in a local directory: `ROOT/ab/cd/NAME`, written by rename after fsync, the
/// directory synced too, so an acknowledged blob survives a crash.
pub struct LocalBackend {
    root: PathBuf,
    staging: PathBuf,
}

impl LocalBackend {
    /// Opens (creating) the directory.
    pub fn open(root: &Path) -> io::Result<Self> {
        let staging = root.join("staging");
        prepare_staging(&staging)?;
        Ok(Self { root: root.to_path_buf(), staging })
    }

    fn path(&self, name: &str) -> PathBuf {
        let (a, b) = (&name[..2.min(name.len())], &name[2.min(name.len())..4.min(name.len())]);
        self.root.join(a).join(b).join(name)
    }
}

impl Backend for LocalBackend {
    fn put<'a>(&'a self, name: &'a str, staged: &'a Path) -> IoFuture<'a, ()> {
        Box::pin(async move {
            let path = self.path(name);
            let dir = path.parent().ok_or_else(|| io::Error::other("object path has no parent"))?.to_path_buf();
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::rename(staged, &path).await?;
            tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all()).await.map_err(io::Error::other)?
        })
    }

    fn get<'a>(&'a self, name: &'a str) -> IoFuture<'a, ObjectReader> {
        Box::pin(async move {
            let f = tokio::fs::File::open(self.path(name)).await?;
            Ok(Box::new(tokio::io::BufReader::with_capacity(256 * 1024, f)) as ObjectReader)
        })
    }

    fn delete<'a>(&'a self, name: &'a str) -> IoFuture<'a, ()> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(name)).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
    }

    fn staging(&self) -> &Path {
        &self.staging
    }
}

/// What a store returns: the address and sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Content size.
    pub size: u64,
    /// Stored size (compressed, sealed).
    pub stored_size: u64,
}

/// The blob store. Cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    store: Store,
    keyring: Arc<Keyring>,
    backend: Arc<dyn Backend>,
    naming: Arc<hmac::Key>,
    max_size: u64,
}

fn nonce(prefix: &[u8; 8], frame: u32) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&frame.to_be_bytes());
    n
}

fn frame_aad(frame: u32, last: bool) -> [u8; 9] {
    let mut a = [0u8; 9];
    a[..4].copy_from_slice(b"blob");
    a[4..8].copy_from_slice(&frame.to_be_bytes());
    a[8] = u8::from(last);
    a
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
async fn read_full(src: &mut (impl AsyncRead + Unpin), buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let m = src.read(&mut buf[n..]).await?;
        if m == 0 {
            break;
        }
        n += m;
    }
    Ok(n)
}

impl Blobs {
    /// Opens the blob store over `backend`, making the naming key on first use (which
    /// `grant` reads). `max_size` bounds one blob's content.
    pub async fn open(
        store: Store,
        grant: &CrossTenant,
        keyring: Arc<Keyring>,
        secrets: &Secrets,
        backend: Arc<dyn Backend>,
        max_size: u64,
    ) -> Result<Self, BlobError> {
        let key = secrets.get_or_create_random(grant, NAMING_KEY, 32).await?;
        Ok(Self { store, keyring, backend, naming: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, key.expose())), max_size })
    }

    /// Returns the backend name of a blob.
    fn object_name(&self, sha256: &str) -> String {
        hex::encode(hmac::sign(&self.naming, sha256.as_bytes()).as_ref())
    }

    /// Encodes `src` into a staging file; returns its path, the address, the content size
    /// and the stored size.
    async fn encode(&self, src: &mut (impl AsyncRead + Unpin)) -> Result<(PathBuf, String, u64, u64), BlobError> {
        let path = self.backend.staging().join(uuid::Uuid::new_v4().simple().to_string());
        let result = self.encode_to(&path, src).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&path).await;
        }
        result.map(|(sha, size, stored)| (path, sha, size, stored))
    }

    async fn encode_to(&self, path: &Path, src: &mut (impl AsyncRead + Unpin)) -> Result<(String, u64, u64), BlobError> {
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::create(path).await?);
        let key_id = self.keyring.current_id().as_bytes().to_vec();
        let mut prefix = [0u8; 8];
        aws_lc_rs::rand::fill(&mut prefix).map_err(|_| SealError::Random)?;
        out.write_all(MAGIC).await?;
        out.write_all(&[key_id.len() as u8]).await?;
        out.write_all(&key_id).await?;
        out.write_all(&prefix).await?;
        let mut stored = (MAGIC.len() + 1 + key_id.len() + 8) as u64;
        let mut hash = digest::Context::new(&digest::SHA256);
        let mut size = 0u64;
        let mut cur = vec![0u8; CHUNK];
        let mut next = vec![0u8; CHUNK];
        let mut n = read_full(src, &mut cur).await?;
        let mut frame = 0u32;
        loop {
            // A full chunk may be the last: look one ahead.
            let m = if n == CHUNK { read_full(src, &mut next).await? } else { 0 };
            let last = m == 0;
            size += n as u64;
            if size > self.max_size {
                return Err(BlobError::TooLarge(self.max_size));
            }
            hash.update(&cur[..n]);
            let mut body = zstd::bulk::compress(&cur[..n], ZSTD_LEVEL)?;
            self.keyring.seal_with(Purpose::Blobs, nonce(&prefix, frame), &frame_aad(frame, last), &mut body)?;
            out.write_all(&[u8::from(last)]).await?;
            out.write_all(&(body.len() as u32).to_be_bytes()).await?;
            out.write_all(&body).await?;
            stored += 5 + body.len() as u64;
            if last {
                break;
            }
            std::mem::swap(&mut cur, &mut next);
            n = m;
            frame = frame.checked_add(1).ok_or(BlobError::TooLarge(self.max_size))?;
        }
        out.flush().await?;
        let file = out.into_inner();
        file.sync_all().await?;
        Ok((hex::encode(hash.finish().as_ref()), size, stored))
    }

    /// Stores the content of `src` and records `reference` to it. Returns once the blob
    /// is durable in the backend.
    pub async fn put(&self, scope: &Scope, reference: &BlobRef, src: &mut (impl AsyncRead + Unpin)) -> Result<StoredBlob, BlobError> {
        let (staged, sha256, size, stored_size) = self.encode(src).await?;
        let rec = BlobRecord {
            sha256: sha256.clone(),
            size: size as i64,
            stored_size: stored_size as i64,
            key_id: self.keyring.current_id().to_string(),
            created_at: mamori_core::time::now_ms(),
        };
        let done = async {
            self.store.record_blob(scope, &rec, reference).await?;
            self.backend.put(&self.object_name(&sha256), &staged).await?;
            Ok::<_, BlobError>(())
        }
        .await;
        if done.is_err() {
            let _ = tokio::fs::remove_file(&staged).await;
        }
        done?;
        Ok(StoredBlob { sha256, size, stored_size })
    }

    /// Stores bytes; see [`Blobs::put`].
    pub async fn put_bytes(&self, scope: &Scope, reference: &BlobRef, bytes: &[u8]) -> Result<StoredBlob, BlobError> {
        let mut src = bytes;
        self.put(scope, reference, &mut src).await
    }

    /// Opens a blob the scope holds a reference to.
    pub async fn open_blob(&self, scope: &Scope, sha256: &str) -> Result<BlobReader, BlobError> {
        let rec = self.store.blob(scope, sha256).await?.ok_or(BlobError::NotFound)?;
        let src = self.backend.get(&self.object_name(&rec.sha256)).await.map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound { BlobError::Damaged(rec.sha256.clone(), "the object is missing".into()) } else { BlobError::Io(e) }
        })?;
        BlobReader::start(self.keyring.clone(), rec.sha256, src).await
    }

    /// Reads a whole blob of at most `max` bytes.
    pub async fn get_bytes(&self, scope: &Scope, sha256: &str, max: u64) -> Result<Vec<u8>, BlobError> {
        let mut r = self.open_blob(scope, sha256).await?;
        let mut out = Vec::new();
        while let Some(chunk) = r.next_chunk().await? {
            if (out.len() + chunk.len()) as u64 > max {
                return Err(BlobError::TooLarge(max));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Ends expired references and deletes up to `limit` blobs nothing holds; returns
    /// (references expired, blobs deleted).
    pub async fn collect(&self, grant: &CrossTenant, limit: i64) -> Result<(u64, u64), BlobError> {
        let me = self.clone();
        let delete: mamori_store::DeleteObject<'_> = Box::new(move |rec: BlobRecord| {
            let me = me.clone();
            Box::pin(async move { me.backend.delete(&me.object_name(&rec.sha256)).await })
        });
        Ok(self.store.collect_blobs(grant, limit, delete).await?)
    }

    /// Re-seals up to `limit` blobs sealed with an older master key; returns how many.
    pub async fn rotate(&self, grant: &CrossTenant, limit: i64) -> Result<usize, BlobError> {
        let current = self.keyring.current_id().to_string();
        let old = self.store.blobs_sealed_with_other_key(grant, &current, limit).await?;
        let scope = grant.scope();
        for rec in &old {
            let mut reader = self.open_blob(&scope, &rec.sha256).await?;
            // Decoded chunks go through a pipe into the encoder: a blob of gigabytes is
            // re-sealed frame by frame, never held in memory or written out in clear.
            let (mut sink, mut source) = tokio::io::duplex(CHUNK);
            let pump = tokio::spawn(async move {
                while let Some(c) = reader.next_chunk().await? {
                    sink.write_all(&c).await?;
                }
                Ok::<_, BlobError>(())
            });
            let encoded = self.encode(&mut source).await;
            let pumped = pump.await.map_err(|e| BlobError::Io(io::Error::other(e)))?;
            if let (Err(_), Ok((staged, ..))) = (&pumped, &encoded) {
                let _ = tokio::fs::remove_file(staged).await;
            }
            pumped?;
            let (staged, sha, _, stored) = encoded?;
            if sha != rec.sha256 {
                let _ = tokio::fs::remove_file(&staged).await;
                return Err(BlobError::Damaged(rec.sha256.clone(), "content does not match its address".into()));
            }
            self.backend.put(&self.object_name(&sha), &staged).await?;
            self.store.set_blob_key(grant, &sha, &current, stored as i64).await?;
        }
        Ok(old.len())
    }
}

/// Reads a blob frame by frame, checking each and, at the end, the address.
pub struct BlobReader {
    keyring: Arc<Keyring>,
    sha256: String,
    src: ObjectReader,
    key_id: String,
    prefix: [u8; 8],
    frame: u32,
    hash: Option<digest::Context>,
}

impl BlobReader {
    /// Reads an object from any source (the fuzz target and hostile-input tests).
    #[doc(hidden)]
    pub async fn from_source(keyring: Arc<Keyring>, sha256: String, src: ObjectReader) -> Result<Self, BlobError> {
        Self::start(keyring, sha256, src).await
    }

    async fn start(keyring: Arc<Keyring>, sha256: String, mut src: ObjectReader) -> Result<Self, BlobError> {
        let damaged = |what: &str| BlobError::Damaged(sha256.clone(), what.to_string());
        let mut magic = [0u8; 9];
        if read_full(&mut src, &mut magic).await? != 9 || &magic[..8] != MAGIC {
            return Err(damaged("not a Mamori blob"));
        }
        let mut kid = vec![0u8; usize::from(magic[8])];
        let mut prefix = [0u8; 8];
        if read_full(&mut src, &mut kid).await? != kid.len() || read_full(&mut src, &mut prefix).await? != 8 {
            return Err(damaged("truncated header"));
        }
        let key_id = String::from_utf8(kid).map_err(|_| damaged("bad key id"))?;
        Ok(Self { keyring, sha256, src, key_id, prefix, frame: 0, hash: Some(digest::Context::new(&digest::SHA256)) })
    }

    /// Returns the next chunk of content, or `None` at the end (after the address matched).
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        let Some(hash) = self.hash.as_mut() else { return Ok(None) };
        let damaged = |what: String| BlobError::Damaged(self.sha256.clone(), what);
        let mut head = [0u8; 5];
        if read_full(&mut self.src, &mut head).await? != 5 {
            return Err(damaged(format!("truncated before frame {}", self.frame)));
        }
        let last = match head[0] {
            0 => false,
            1 => true,
            _ => return Err(damaged(format!("frame {} has a bad flag", self.frame))),
        };
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            return Err(damaged(format!("frame {} is too large", self.frame)));
        }
        let mut body = vec![0u8; len];
        if read_full(&mut self.src, &mut body).await? != len {
            return Err(damaged(format!("frame {} is truncated", self.frame)));
        }
        let n = self
            .keyring
            .open_with(Purpose::Blobs, &self.key_id, nonce(&self.prefix, self.frame), &frame_aad(self.frame, last), &mut body)
            .map_err(|e| damaged(format!("frame {}: {e}", self.frame)))?;
        let chunk = zstd::bulk::decompress(&body[..n], CHUNK).map_err(|e| damaged(format!("frame {}: {e}", self.frame)))?;
        hash.update(&chunk);
        self.frame += 1;
        if last {
            let mut extra = [0u8; 1];
            if read_full(&mut self.src, &mut extra).await? != 0 {
                return Err(damaged("data after the last frame".into()));
            }
            let done = self.hash.take().map(|h| hex::encode(h.finish().as_ref())).unwrap_or_default();
            if done != self.sha256 {
                return Err(damaged("content does not match its address".into()));
            }
        }
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Arc<Keyring> {
        Arc::new(Keyring::parse("t QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=").unwrap())
    }

    async fn read_all(bytes: Vec<u8>) -> Result<Vec<u8>, BlobError> {
        let src: ObjectReader = Box::new(std::io::Cursor::new(bytes));
        let mut r = BlobReader::from_source(ring(), "00".repeat(32), src).await?;
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    fn header() -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.push(1);
        h.push(b't');
        h.extend_from_slice(&[0u8; 8]);
        h
    }

    #[test]
    fn opening_keeps_fresh_staging_files_of_other_nodes_and_drops_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::open(dir.path()).unwrap();
        let fresh = backend.staging().join("fresh");
        let stale = backend.staging().join("stale");
        std::fs::write(&fresh, b"in flight").unwrap();
        let f = std::fs::File::create(&stale).unwrap();
        f.set_modified(std::time::SystemTime::now() - STALE_STAGING - std::time::Duration::from_secs(60)).unwrap();
        drop(f);
        LocalBackend::open(dir.path()).unwrap();
        assert!(fresh.exists(), "another node's store in progress is left alone");
        assert!(!stale.exists(), "a crashed store's leftover goes");
    }

    #[tokio::test]
    async fn hostile_objects_are_refused_without_large_allocations() {
        for bad in [
            Vec::new(),
            b"MAMORIB1".to_vec(),
            b"NOTMAMOR\x01t12345678".to_vec(),
            [header(), vec![1, 0xff, 0xff, 0xff, 0xff]].concat(),
            [header(), vec![7, 0, 0, 0, 1, 0]].concat(),
            [header(), vec![1, 0, 0, 0, 20], vec![0u8; 20]].concat(),
            [header(), vec![0, 0, 0, 0, 16], vec![0u8; 16]].concat(),
        ] {
            assert!(matches!(read_all(bad.clone()).await, Err(BlobError::Damaged(..))), "{bad:?}");
        }
        // An unknown key id is refused as damaged too, naming the frame.
        let mut other = header();
        other[9] = b'x';
        let e = read_all([other, vec![1, 0, 0, 0, 16], vec![0u8; 16]].concat()).await.unwrap_err();
        assert!(e.to_string().contains("frame 0"), "{e}");
    }
}
