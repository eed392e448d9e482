//! Secrets and blobs of Mamori at rest.
//!
//! - [`Keyring`]: the master keys (a file or `MAMORI_MASTER_KEY`), AES-256-GCM with keys
//!   derived per purpose, rotation by putting a new key first.
//! - [`Secrets`]: keys, certificates and passwords, sealed in the config store, bound to
//!   their tenant and name; values never leave as text in logs, audit entries or API
//!   answers ([`SecretValue`] has no `Display` and a redacted `Debug`), every read audited.
//! - [`Blobs`]: quarantined mail, evidence and transferred files, addressed by SHA-256,
//!   compressed (zstd) and sealed in chunks, kept in a [`Backend`] (a local directory by
//!   default), held by references and collected when none is left.
//!
//! Requirements: blobs hold quarantined mail (F11, F44, F45), evidence of incidents (F18,
//! F24), transferred files (F30, F49) and archived mail (F51); secrets hold DKIM keys
//! (F50), LDAP bind passwords of monitored AD servers (F05) and certificates of the
//! gateway and edge (F09, F14).
#![deny(missing_docs)]

mod blobs;
mod keyring;
mod s3;
mod secrets;

pub use blobs::{Backend, BlobError, BlobReader, Blobs, IoFuture, LocalBackend, ObjectReader, StoredBlob};
pub use keyring::{KEY_LEN, Keyring, KeyringError, Purpose, SealError};
pub use s3::{S3Backend, S3Config};

/// The platform secret that holds the S3 secret access key, when the environment
/// does not.
pub const S3_SECRET_NAME: &str = "vault/s3-secret-access-key";
pub use secrets::{SecretError, SecretKind, SecretValue, Secrets};

/// The vault of a node: its secrets and blobs, cheap to clone.
#[derive(Clone)]
pub struct Vault {
    /// The secrets store.
    pub secrets: Secrets,
    /// The blob store.
    pub blobs: Blobs,
}

impl Vault {
    /// Returns the master key ids, the current one first.
    pub fn keyring_ids(&self) -> Vec<String> {
        self.secrets.keyring().ids().into_iter().map(str::to_string).collect()
    }

    /// Returns the id of the key new data is sealed with.
    pub fn current_key_id(&self) -> &str {
        self.secrets.keyring().current_id()
    }

    /// Opens the vault with blobs in a local directory.
    pub async fn open_local(
        store: mamori_store::Store,
        grant: &mamori_store::CrossTenant,
        keyring: std::sync::Arc<Keyring>,
        dir: &std::path::Path,
        max_blob: u64,
    ) -> Result<Self, BlobError> {
        let secrets = Secrets::new(store.clone(), keyring.clone());
        let backend = std::sync::Arc::new(LocalBackend::open(dir)?);
        let blobs = Blobs::open(store, grant, keyring, &secrets, backend, max_blob).await?;
        Ok(Self { secrets, blobs })
    }

    /// Opens the vault with blobs in S3-compatible object storage, staged in `staging`.
    /// An empty secret key in `cfg` is read from the platform secret
    /// [`S3_SECRET_NAME`]; the bucket is asked once, so wrong settings fail here.
    pub async fn open_s3(
        store: mamori_store::Store,
        grant: &mamori_store::CrossTenant,
        keyring: std::sync::Arc<Keyring>,
        mut cfg: S3Config,
        staging: &std::path::Path,
        max_blob: u64,
    ) -> Result<Self, BlobError> {
        let secrets = Secrets::new(store.clone(), keyring.clone());
        if cfg.secret_access_key.is_empty() {
            let Some(key) = secrets.get(grant, None, S3_SECRET_NAME).await? else {
                return Err(BlobError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("no S3 secret access key: set MAMORI_S3_SECRET_ACCESS_KEY or store the platform secret {S3_SECRET_NAME} (mamori vault set-secret)"),
                )));
            };
            cfg.secret_access_key = zeroize::Zeroizing::new(key.expose_str().unwrap_or_default().to_string());
        }
        let backend = S3Backend::open(&cfg, staging)?;
        backend.check().await?;
        let blobs = Blobs::open(store, grant, keyring, &secrets, std::sync::Arc::new(backend), max_blob).await?;
        Ok(Self { secrets, blobs })
    }

    /// Opens a vault with a fixed test key and blobs under `dir`, for tests (several
    /// nodes of one test share the key, as a real installation's nodes do).
    #[doc(hidden)]
    pub async fn for_tests(store: mamori_store::Store, grant: &mamori_store::CrossTenant, dir: &std::path::Path) -> Self {
        let Ok(ring) = Keyring::parse("test QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=") else { panic!("the test keyring parses") };
        match Self::open_local(store, grant, std::sync::Arc::new(ring), &dir.join("blobs"), 1 << 30).await {
            Ok(v) => v,
            Err(e) => panic!("test vault: {e}"),
        }
    }
}
