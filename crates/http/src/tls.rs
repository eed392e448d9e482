//! TLS for servers: a certificate chain and key from PEM files, or a self-signed
//! certificate made once and kept, served with TLS 1.3 and 1.2 (aws-lc-rs) and ALPN
//! `h2` then `http/1.1`.
//!
//! [`CertStore`] holds the certificate in use and can load it again from its files
//! (`mamori serve` does on SIGHUP), so a renewed certificate takes effect without a
//! restart and without dropping connections; a broken renewal keeps the old one.

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Errors of loading or making certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        what: String,
    },
    /// The certificate and key do not fit together, or rustls refused them.
    #[error("certificate {}: {reason}", path.display())]
    Unusable {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.to_path_buf(), source }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads a certificate chain (leaf first) and its private key from PEM files.
pub fn read_pem_files(cert: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let cert_bytes = std::fs::read(cert).map_err(io_err(cert))?;
    let certs = rustls_pemfile::certs(&mut cert_bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { path: cert.to_path_buf(), what: format!("unreadable PEM ({e})") })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { path: cert.to_path_buf(), what: "no certificate in the file".into() });
    }
    let key_bytes = std::fs::read(key).map_err(io_err(key))?;
    let private = rustls_pemfile::private_key(&mut key_bytes.as_slice())
        .map_err(|e| TlsError::Pem { path: key.to_path_buf(), what: format!("unreadable PEM ({e})") })?
        .ok_or_else(|| TlsError::Pem { path: key.to_path_buf(), what: "no private key in the file".into() })?;
    Ok((certs, private))
}

fn certified_key(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let (certs, key) = read_pem_files(cert_path, key_path)?;
    let unusable = |reason: String| TlsError::Unusable { path: cert_path.to_path_buf(), reason };
    let signing = provider().key_provider.load_private_key(key).map_err(|e| unusable(format!("unusable private key ({e})")))?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match().map_err(|e| unusable(format!("the certificate and the key do not match ({e})")))?;
    Ok(Arc::new(ck))
}

/// The certificate a server presents, reloadable from its files.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Loads the certificate chain and key; fails if they are unreadable or do not match.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, TlsError> {
        let current = certified_key(cert_path, key_path)?;
        Ok(Arc::new(Self { cert_path: cert_path.to_path_buf(), key_path: key_path.to_path_buf(), current: RwLock::new(current) }))
    }

    /// Loads the files again. On error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = certified_key(&self.cert_path, &self.key_path)?;
        if let Ok(mut c) = self.current.write() {
            *c = fresh;
        }
        Ok(())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The leaf certificate in use (DER).
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.current.read().ok().and_then(|c| c.cert.first().cloned())
    }

    /// Returns a rustls server config presenting this certificate, offering ALPN `h2`
    /// and `http/1.1` (or only `http/1.1` when `http2` is false; the server still
    /// recognises a client that speaks HTTP/2 regardless).
    pub fn server_config(self: &Arc<Self>, http2: bool) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Unusable { path: self.cert_path.clone(), reason: e.to_string() })?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// Returns the files of a self-signed certificate in `dir` (`console.crt`,
/// `console.key`), making them first if they do not exist. `names` are DNS names or IP
/// addresses for the certificate's subject alternative names; a certificate once made
/// is kept with the names it got (remove both files for a new one). The third value is
/// true when the certificate was made now.
pub fn self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf, bool), TlsError> {
    let (cert, key) = (dir.join("console.crt"), dir.join("console.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key, false));
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, names.first().cloned().unwrap_or_else(|| "localhost".into()));
    dn.push(rcgen::DnType::OrganizationName, "Mamori (self-signed)");
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let key_pair = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let certified = params.self_signed(&key_pair).map_err(|e| TlsError::Generate(e.to_string()))?;
    // A key file left from before may have looser permissions: write a new file.
    let _ = std::fs::remove_file(&key);
    write_private(&key, key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert, certified.pem()).map_err(io_err(&cert))?;
    Ok((cert, key, true))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).and_then(|mut f| f.write_all(bytes)).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_made_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        let (cert, key, made) = self_signed(dir.path(), &names).unwrap();
        assert!(made);
        let store = CertStore::load(&cert, &key).unwrap();
        assert!(store.leaf().is_some());
        assert!(store.server_config(true).unwrap().alpn_protocols.contains(&b"h2".to_vec()));
        let (_, _, made_again) = self_signed(dir.path(), &names).unwrap();
        assert!(!made_again, "kept, not replaced");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn broken_files_name_the_file_and_a_failed_reload_keeps_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = self_signed(dir.path(), &["localhost".to_string()]).unwrap();
        let store = CertStore::load(&cert, &key).unwrap();
        let before = store.leaf();
        std::fs::write(&cert, "not a certificate").unwrap();
        let e = store.reload().unwrap_err().to_string();
        assert!(e.contains("console.crt") && e.contains("no certificate"), "{e}");
        assert_eq!(store.leaf(), before);
        let missing = CertStore::load(&dir.path().join("nope.crt"), &key).unwrap_err().to_string();
        assert!(missing.contains("nope.crt"), "{missing}");
        // A key of another certificate.
        let other = tempfile::tempdir().unwrap();
        let (cert2, _, _) = self_signed(other.path(), &["localhost".to_string()]).unwrap();
        let e = CertStore::load(&cert2, &key).unwrap_err().to_string();
        assert!(e.contains("do not match"), "{e}");
    }
}
