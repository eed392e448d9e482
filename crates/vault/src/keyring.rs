//! The master keyring: the keys everything at rest is encrypted under.
//!
//! A keyring is read from a file (`[vault] master_key_file`, one key a line) or from the
//! environment (`MAMORI_MASTER_KEY`, the same lines, `;` also separating). Each line is
//! `ID BASE64` with a 32-byte key; `#` starts a comment. The **first** key seals new data;
//! the others only open older data, so a rotation is: put a new key first, restart, run
//! `mamori vault rotate` (which re-seals every secret and blob), then drop the old line.
//!
//! Each use has its own key, derived with HKDF-SHA256 from the master key and a label,
//! so a secret's key never encrypts a blob. Sealing is AES-256-GCM with a random 96-bit
//! nonce and associated data naming what is sealed (a secret's tenant and name), so a
//! sealed value moved to another row does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use base64::Engine;
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// Why a keyring cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The file cannot be read.
    #[error("cannot read the master key file {0}: {1}")]
    Read(String, #[source] std::io::Error),
    /// The file can be read by others than its owner.
    #[error("the master key file {0} can be read by other accounts (mode {1:o}); run: chmod 600 {0}")]
    Permissions(String, u32),
    /// An entry is not `ID BASE64` with a 32-byte key.
    #[error("master key entry {0}: {1}")]
    Line(usize, String),
    /// No key at all.
    #[error("the master keyring has no key")]
    Empty,
    /// The key file cannot be written.
    #[error("cannot write the master key file {0}: {1}")]
    Write(String, #[source] std::io::Error),
}

/// What is sealed with which derived key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Values of the secrets store.
    Secrets,
    /// Objects of the blob store.
    Blobs,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Secrets => b"mamori secrets v1",
            Purpose::Blobs => b"mamori blobs v1",
        }
    }
}

struct Len32;
impl KeyType for Len32 {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// One master key.
struct MasterKey {
    id: String,
    secrets: LessSafeKey,
    blobs: LessSafeKey,
}

impl MasterKey {
    fn new(id: String, bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != KEY_LEN {
            return Err(format!("key {id} has {} bytes, not {KEY_LEN}", bytes.len()));
        }
        let derive = |purpose: Purpose| -> Result<LessSafeKey, String> {
            let prk = Salt::new(HKDF_SHA256, b"mamori master key").extract(bytes);
            let info = [purpose.label()];
            let okm = prk.expand(&info, Len32).map_err(|_| "key derivation failed".to_string())?;
            let mut out = Zeroizing::new([0u8; KEY_LEN]);
            okm.fill(out.as_mut()).map_err(|_| "key derivation failed".to_string())?;
            UnboundKey::new(&AES_256_GCM, out.as_ref()).map(LessSafeKey::new).map_err(|_| "bad key".to_string())
        };
        Ok(Self { secrets: derive(Purpose::Secrets)?, blobs: derive(Purpose::Blobs)?, id })
    }

    fn key(&self, purpose: Purpose) -> &LessSafeKey {
        match purpose {
            Purpose::Secrets => &self.secrets,
            Purpose::Blobs => &self.blobs,
        }
    }
}

/// Sealing failed or a sealed value does not open (wrong key, altered, moved).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key it was sealed with is not in the keyring.
    #[error("sealed with key {0}, which is not in the master keyring")]
    UnknownKey(String),
    /// It does not open: altered, truncated or sealed for something else.
    #[error("sealed data does not open: altered or not what it claims to be")]
    Open,
    /// The system random source failed.
    #[error("no randomness available")]
    Random,
}

/// The master keys, the first one current.
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("keys", &self.ids()).finish()
    }
}

impl Keyring {
    /// Parses keyring text (see the module docs).
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let mut keys: Vec<MasterKey> = Vec::new();
        let entries = text.lines().flat_map(|l| l.split('#').next().unwrap_or("").split(';'));
        for (i, line) in entries.enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (id, b64) = line.split_once(char::is_whitespace).ok_or_else(|| KeyringError::Line(i + 1, "expected `ID BASE64`".into()))?;
            let id = id.trim();
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(KeyringError::Line(i + 1, "the key id must be 1-64 of A-Z, a-z, 0-9, - and _".into()));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyringError::Line(i + 1, format!("key id {id} appears twice")));
            }
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| KeyringError::Line(i + 1, format!("key {id} is not base64")))?,
            );
            keys.push(MasterKey::new(id.to_string(), &bytes).map_err(|e| KeyringError::Line(i + 1, e))?);
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Self { keys })
    }

    /// Reads a keyring file, refusing one that others may read.
    pub fn read(path: &Path) -> Result<Self, KeyringError> {
        let shown = path.display().to_string();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path).map_err(|e| KeyringError::Read(shown.clone(), e))?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyringError::Permissions(shown, mode));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| KeyringError::Read(shown, e))?);
        Self::parse(&text)
    }

    /// Returns the text of a new keyring file with one fresh key.
    pub fn generate_text() -> Result<Zeroizing<String>, SealError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(key.as_mut()).map_err(|_| SealError::Random)?;
        let mut tag = [0u8; 3];
        aws_lc_rs::rand::fill(&mut tag).map_err(|_| SealError::Random)?;
        // The date for people, a random tag so two keys made at once differ.
        let date: String = mamori_core::time::format_rfc3339(mamori_core::time::now_ms()).chars().take(10).filter(char::is_ascii_digit).collect();
        let id = format!("k{date}-{}", hex::encode(tag));
        Ok(Zeroizing::new(format!(
            "# Mamori master keys. The first seals new data; keep older ones until `mamori vault rotate` has run.\n# Mamori のマスターキー。先頭の鍵で暗号化します。古い鍵は `mamori vault rotate` の実行後に削除してください。\n{id} {}\n",
            base64::engine::general_purpose::STANDARD.encode(key.as_ref())
        )))
    }

    /// Reads the keyring file at `path`, creating it (mode 0600) with a fresh key first
    /// if it does not exist: the embedded default of a single-machine installation.
    pub fn read_or_create(path: &Path) -> Result<Self, KeyringError> {
        if !path.exists() {
            let text = Self::generate_text().map_err(|e| KeyringError::Write(path.display().to_string(), std::io::Error::other(e.to_string())))?;
            write_private(path, text.as_bytes()).map_err(|e| KeyringError::Write(path.display().to_string(), e))?;
            tracing::info!(path = %path.display(), "created a master key file; back it up: without it nothing encrypted can be read");
        }
        Self::read(path)
    }

    /// Returns the key ids, the current one first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Returns the id of the key new data is sealed with.
    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Seals `plain` for `purpose` under the current key, bound to `aad`. Returns the key
    /// id and `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, purpose: Purpose, aad: &[u8], plain: &[u8]) -> Result<(String, Vec<u8>), SealError> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.key(purpose).seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body).map_err(|_| SealError::Open)?;
        out.extend_from_slice(&body);
        body.iter_mut().for_each(|b| *b = 0);
        Ok((key.id.clone(), out))
    }

    /// Opens what [`Keyring::seal`] made.
    pub fn open(&self, purpose: Purpose, key_id: &str, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let key = self.keys.iter().find(|k| k.id == key_id).ok_or_else(|| SealError::UnknownKey(key_id.to_string()))?;
        if sealed.len() < NONCE_LEN + 16 {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let n = key.key(purpose).open_in_place(nonce, Aad::from(aad), buf.as_mut_slice()).map_err(|_| SealError::Open)?.len();
        buf.truncate(n);
        Ok(buf)
    }

    /// Seals with an explicit nonce (the blob format derives one per chunk).
    pub(crate) fn seal_with(&self, purpose: Purpose, nonce: [u8; NONCE_LEN], aad: &[u8], buf: &mut Vec<u8>) -> Result<(), SealError> {
        self.keys[0].key(purpose).seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf).map_err(|_| SealError::Open)
    }

    /// Opens a chunk sealed by [`Keyring::seal_with`]; returns the plaintext length.
    pub(crate) fn open_with(&self, purpose: Purpose, key_id: &str, nonce: [u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> Result<usize, SealError> {
        let key = self.keys.iter().find(|k| k.id == key_id).ok_or_else(|| SealError::UnknownKey(key_id.to_string()))?;
        key.key(purpose).open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf).map(|p| p.len()).map_err(|_| SealError::Open)
    }
}

/// Writes a file only its owner can read, durably.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_the_same_key_purpose_and_aad() {
        let ring = Keyring::parse(&Keyring::generate_text().unwrap()).unwrap();
        let (kid, sealed) = ring.seal(Purpose::Secrets, b"tenant-a/ldap", b"hunter2").unwrap();
        assert_eq!(kid, ring.current_id());
        assert_eq!(&ring.open(Purpose::Secrets, &kid, b"tenant-a/ldap", &sealed).unwrap()[..], b"hunter2");
        assert!(matches!(ring.open(Purpose::Secrets, &kid, b"tenant-b/ldap", &sealed), Err(SealError::Open)), "moved to another name");
        assert!(matches!(ring.open(Purpose::Blobs, &kid, b"tenant-a/ldap", &sealed), Err(SealError::Open)), "another purpose");
        let mut bent = sealed.clone();
        bent[20] ^= 1;
        assert!(matches!(ring.open(Purpose::Secrets, &kid, b"tenant-a/ldap", &bent), Err(SealError::Open)));
        assert!(matches!(ring.open(Purpose::Secrets, &kid, b"x", &sealed[..10]), Err(SealError::Open)), "truncated");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn an_older_key_still_opens_after_a_new_one_is_put_first() {
        let old_text = Keyring::generate_text().unwrap();
        let old = Keyring::parse(&old_text).unwrap();
        let (kid, sealed) = old.seal(Purpose::Secrets, b"n", b"v").unwrap();
        let new_line = format!("k2 {}", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
        let both = Keyring::parse(&format!("{new_line};{}", old_text.as_str())).unwrap();
        assert_eq!(both.current_id(), "k2");
        assert_eq!(&both.open(Purpose::Secrets, &kid, b"n", &sealed).unwrap()[..], b"v");
        let only_new = Keyring::parse(&new_line).unwrap();
        assert!(matches!(only_new.open(Purpose::Secrets, &kid, b"n", &sealed), Err(SealError::UnknownKey(_))));
    }

    #[test]
    fn bad_keyrings_are_refused_with_the_line() {
        for (text, want) in [("", "no key"), ("k1", "expected `ID BASE64`"), ("k1 !!!", "not base64"), ("k1 AAAA", "has 3 bytes"), ("k/1 AAAA", "key id")] {
            let e = Keyring::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let line = format!("k1 {}", base64::engine::general_purpose::STANDARD.encode([1u8; 32]));
        assert!(Keyring::parse(&format!("{line}\n{line}")).unwrap_err().to_string().contains("twice"));
        // Debug shows ids only.
        assert_eq!(format!("{:?}", Keyring::parse(&line).unwrap()), "Keyring { keys: [\"k1\"] }");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let ring = Keyring::read_or_create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(Keyring::read(&path).unwrap().current_id(), ring.current_id(), "created once, then read");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Keyring::read(&path), Err(KeyringError::Permissions(_, 0o644))));
    }
}
