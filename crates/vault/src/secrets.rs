//! The secrets store: values sealed under the keyring, kept in the config store.

use crate::keyring::{Keyring, Purpose, SealError};
use mamori_core::{Actor, Problem, TenantId};
use mamori_store::{CrossTenant, Scope};
use mamori_store::{SealedSecret, SecretInfo, Store, StoreError};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Largest secret accepted (a certificate chain fits easily).
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// A secret's value. It cannot be printed: `Debug` shows `SecretValue(***)` and there is
/// no `Display` or `Serialize`; the memory is wiped when it is dropped.
#[derive(Clone)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Returns the bytes, for the one place that uses them (a TLS config, a bind).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Returns the value as text, if it is UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

/// What a secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// A password (LDAP bind, SMTP relay, a monitored service).
    Password,
    /// A private key (DKIM, TLS, the gateway's CA), PEM.
    PrivateKey,
    /// A certificate or chain, PEM.
    Certificate,
    /// An API token or shared secret.
    Token,
    /// Anything else.
    Other,
}

impl SecretKind {
    /// Every kind.
    pub const ALL: [SecretKind; 5] = [SecretKind::Password, SecretKind::PrivateKey, SecretKind::Certificate, SecretKind::Token, SecretKind::Other];

    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::PrivateKey => "private_key",
            SecretKind::Certificate => "certificate",
            SecretKind::Token => "token",
            SecretKind::Other => "other",
        }
    }

    /// Japanese name.
    pub fn ja(&self) -> &'static str {
        match self {
            SecretKind::Password => "パスワード",
            SecretKind::PrivateKey => "秘密鍵",
            SecretKind::Certificate => "証明書",
            SecretKind::Token => "トークン",
            SecretKind::Other => "その他",
        }
    }
}

impl FromStr for SecretKind {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        SecretKind::ALL.into_iter().find(|k| k.as_str() == s.trim()).ok_or_else(|| {
            Problem::new(
                "kind",
                "invalid_kind",
                format!("種類「{}」は不明です（password, private_key, certificate, token, other）", s.trim()),
                format!("unknown kind '{}' (password, private_key, certificate, token, other)", s.trim()),
            )
        })
    }
}

/// Why a secret could not be kept or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The config store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// It does not open (see [`SealError`]).
    #[error("secret {0}: {1}")]
    Seal(String, #[source] SealError),
}

/// Checks a secret's name: 1–128 of `a-z`, `0-9`, `.`, `_`, `-` and `/`, not starting
/// or ending with `/`.
pub fn check_name(name: &str) -> Result<&str, Problem> {
    let n = name.trim();
    let ok = (1..=128).contains(&n.len())
        && !n.starts_with('/')
        && !n.ends_with('/')
        && !n.contains("//")
        && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
    if ok {
        Ok(n)
    } else {
        Err(Problem::new(
            "name",
            "invalid_name",
            format!("名前「{n}」は128文字以内の英小文字・数字・「. _ - /」で入力してください"),
            format!("name '{n}' must be 1-128 of a-z, 0-9, '.', '_', '-' and '/'"),
        ))
    }
}

fn aad(tenant: Option<TenantId>, name: &str, kind: &str) -> Vec<u8> {
    format!("secret\0{}\0{name}\0{kind}", tenant.map(|t| t.to_string()).unwrap_or_default()).into_bytes()
}

/// The secrets store. Cheap to clone.
#[derive(Clone)]
pub struct Secrets {
    store: Store,
    keyring: Arc<Keyring>,
}

impl Secrets {
    /// Returns the secrets store over `store`, sealing with `keyring`.
    pub fn new(store: Store, keyring: Arc<Keyring>) -> Self {
        Self { store, keyring }
    }

    /// Returns the keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Seals and stores a secret (replacing one of the same tenant and name). Audited
    /// by name and kind only.
    pub async fn put(
        &self,
        scope: &Scope,
        actor: &Actor,
        tenant: Option<TenantId>,
        name: &str,
        kind: SecretKind,
        value: &[u8],
    ) -> Result<SecretInfo, SecretError> {
        let name = check_name(name).map_err(StoreError::from)?;
        if value.is_empty() || value.len() > MAX_SECRET_BYTES {
            return Err(StoreError::from(Problem::new(
                "value",
                "invalid_value",
                "値は1バイト以上64KiB以下で入力してください",
                "the value must be 1 byte to 64 KiB",
            ))
            .into());
        }
        let (key_id, sealed) =
            self.keyring.seal(Purpose::Secrets, &aad(tenant, name, kind.as_str()), value).map_err(|e| SecretError::Seal(name.to_string(), e))?;
        Ok(self.store.put_sealed_secret(scope, actor, SealedSecret { tenant, name: name.to_string(), kind: kind.as_str().to_string(), key_id, sealed }).await?)
    }

    /// Opens a secret, for a component or the CLI (the read is audited).
    pub async fn get(&self, grant: &CrossTenant, tenant: Option<TenantId>, name: &str) -> Result<Option<SecretValue>, SecretError> {
        let Some(s) = self.store.sealed_secret(grant, tenant, name).await? else { return Ok(None) };
        let plain =
            self.keyring.open(Purpose::Secrets, &s.key_id, &aad(tenant, name, &s.kind), &s.sealed).map_err(|e| SecretError::Seal(name.to_string(), e))?;
        Ok(Some(SecretValue(plain)))
    }

    /// Lists secrets in scope, without values.
    pub async fn list(&self, scope: &Scope) -> Result<Vec<SecretInfo>, SecretError> {
        Ok(self.store.list_secrets(scope).await?)
    }

    /// Deletes a secret.
    pub async fn delete(&self, scope: &Scope, actor: &Actor, tenant: Option<TenantId>, name: &str) -> Result<(), SecretError> {
        Ok(self.store.delete_secret(scope, actor, tenant, name).await?)
    }

    /// Re-seals every secret under the current master key; returns how many changed.
    pub async fn rotate(&self, grant: &CrossTenant) -> Result<usize, SecretError> {
        let ring = self.keyring.clone();
        let n = self
            .store
            .reseal_secrets(grant, ring.current_id(), |s| {
                let a = aad(s.tenant, &s.name, &s.kind);
                let plain = ring.open(Purpose::Secrets, &s.key_id, &a, &s.sealed).map_err(|e| e.to_string())?;
                ring.seal(Purpose::Secrets, &a, &plain).map_err(|e| e.to_string())
            })
            .await?;
        Ok(n)
    }

    /// Returns the platform secret `name`, creating it with `len` random bytes first if
    /// it does not exist (keys the platform makes for itself).
    pub async fn get_or_create_random(&self, grant: &CrossTenant, name: &str, len: usize) -> Result<SecretValue, SecretError> {
        if let Some(v) = self.get(grant, None, name).await? {
            return Ok(v);
        }
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        aws_lc_rs::rand::fill(bytes.as_mut_slice()).map_err(|_| SecretError::Seal(name.to_string(), SealError::Random))?;
        let name = check_name(name).map_err(StoreError::from)?;
        let kind = SecretKind::Other.as_str();
        let (key_id, sealed) = self.keyring.seal(Purpose::Secrets, &aad(None, name, kind), &bytes).map_err(|e| SecretError::Seal(name.to_string(), e))?;
        let s = SealedSecret { tenant: None, name: name.to_string(), kind: kind.to_string(), key_id, sealed };
        self.store.insert_sealed_secret_if_absent(grant, s).await?;
        // Another node may have made it at the same moment: the first stored wins.
        self.get(grant, None, name).await?.ok_or_else(|| SecretError::Store(StoreError::NotFound))
    }
}
