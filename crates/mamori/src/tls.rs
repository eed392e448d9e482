//! The console's certificate: the configured one, or a self-signed one made once and
//! kept in DATA/tls for any address that is not loopback.

use anyhow::Context;
use mamori_http::tls::CertStore;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The certificate a node serves.
pub struct Served {
    /// The certificate in use, reloadable.
    pub certs: Arc<CertStore>,
    /// Whether it is the self-signed one made by Mamori.
    pub self_signed: bool,
    /// Its certificate file (PEM), for the demo's self-monitor to trust.
    pub pem: String,
}

/// Loads the configured certificate, or the self-signed one (making it first).
pub fn load(cert: &str, key: &str, data_dir: &Path, listen: IpAddr) -> anyhow::Result<Served> {
    let self_signed = cert.is_empty();
    let (cert_path, key_path) = if self_signed {
        let names = names(listen);
        let (c, k, made) = mamori_http::tls::self_signed(&data_dir.join("tls"), &names).context("cannot make the self-signed certificate")?;
        if made {
            tracing::warn!(path = %c.display(), names = ?names, "no TLS certificate configured: made a self-signed one; configure [tls] for production");
        }
        (c, k)
    } else {
        (PathBuf::from(cert), PathBuf::from(key))
    };
    let certs = CertStore::load(&cert_path, &key_path).context("cannot load the TLS certificate ([tls] cert and key)")?;
    let pem = std::fs::read_to_string(&cert_path).with_context(|| format!("cannot read {}", cert_path.display()))?;
    Ok(Served { certs, self_signed, pem })
}

/// Names for a self-signed certificate: loopback, the listen address when it is a
/// specific one, and the host's name.
fn names(listen: IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !listen.is_unspecified() && !listen.is_loopback() {
        names.push(listen.to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            names.push(host.to_string());
        }
    }
    names
}
