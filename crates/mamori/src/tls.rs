//! TLS for the console outside loopback: the configured certificate, or a self-signed
//! one made once and kept in DATA/tls.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Returns the rustls server config, and the certificate path in use.
pub fn server_config(cert: &str, key: &str, data_dir: &Path, host: &str) -> anyhow::Result<(Arc<rustls::ServerConfig>, PathBuf)> {
    let (cert_path, key_path) = if cert.is_empty() { self_signed(data_dir, host)? } else { (PathBuf::from(cert), PathBuf::from(key)) };
    let certs =
        rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(&cert_path).with_context(|| format!("cannot open {}", cert_path.display()))?))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("cannot read certificates in {}", cert_path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", cert_path.display());
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(&key_path).with_context(|| format!("cannot open {}", key_path.display()))?,
    ))
    .with_context(|| format!("cannot read the key in {}", key_path.display()))?
    .with_context(|| format!("no private key in {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), cert_path))
}

fn self_signed(data_dir: &Path, host: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("console.crt"), dir.join("console.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir)?;
    let mut names = vec!["localhost".to_string()];
    if !host.is_empty() && host != "0.0.0.0" && host != "::" {
        names.push(host.to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names).context("cannot make a self-signed certificate")?;
    std::fs::write(&cert, certified.cert.pem())?;
    crate::write_private(&key, certified.key_pair.serialize_pem().as_bytes())?;
    tracing::warn!(path = %cert.display(), "no TLS certificate configured: made a self-signed one; configure [tls] for production");
    Ok((cert, key))
}
