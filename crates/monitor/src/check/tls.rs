//! TLS for checks: the public roots plus an optional private CA per monitor, the peer's
//! leaf certificate kept even when verification fails (so an expired certificate is
//! reported with its date), and expiry warnings.

use super::{Findings, Stage, StepResult};
use mamori_core::monitor::Reason;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Verifies like the WebPKI verifier and keeps the leaf it was shown.
#[derive(Debug)]
pub(crate) struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    leaf: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut l) = self.leaf.lock() {
            *l = Some(end_entity.to_vec());
        }
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }
    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client config for one connection, and the leaf its verifier saw.
pub(crate) struct Client {
    pub config: Arc<ClientConfig>,
    verifier: Arc<Recording>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Parses PEM certificates; the error names what is wrong.
pub fn parse_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, Reason> {
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_bytes()).collect();
    match certs {
        Ok(c) if !c.is_empty() => Ok(c),
        _ => Err(Reason::new("invalid_ca", "設定された CA 証明書（PEM）を読み取れません", "the configured CA certificate (PEM) cannot be read")),
    }
}

/// Builds a client trusting the public roots and `ca_pem`.
pub(crate) fn client(ca_pem: Option<&str>, alpn: &[&[u8]]) -> StepResult<Client> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = ca_pem {
        for c in parse_pem(pem)? {
            roots.add(c).map_err(|e| Reason::new("invalid_ca", format!("CA 証明書が使えません（{e}）"), format!("unusable CA certificate ({e})")))?;
        }
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| Reason::new("tls_setup", format!("TLS の設定に失敗しました（{e}）"), format!("TLS setup failed ({e})")))?;
    let verifier = Arc::new(Recording { inner, leaf: Mutex::new(None) });
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Reason::new("tls_setup", format!("TLS の設定に失敗しました（{e}）"), format!("TLS setup failed ({e})")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Client { config: Arc::new(config), verifier })
}

impl Client {
    /// Returns the leaf certificate the server showed, if it got that far.
    pub fn leaf(&self) -> Option<Vec<u8>> {
        self.verifier.leaf.lock().ok().and_then(|l| l.clone())
    }
}

/// Performs a TLS handshake over `tcp` for `host`, records certificate facts in `f`,
/// and warns when the certificate expires within `warn_days`.
pub(crate) async fn handshake<IO>(
    tcp: IO,
    host: &str,
    ca_pem: Option<&str>,
    warn_days: u32,
    alpn: &[&[u8]],
    stage: &Stage,
    f: &mut Findings,
) -> StepResult<TlsStream<IO>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stage.set("TLS ハンドシェイク", "TLS handshake");
    let client = client(ca_pem, alpn)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Reason::new("tls_name", format!("「{host}」は TLS のサーバー名になりません"), format!("'{host}' is not a valid TLS server name")))?;
    let result = TlsConnector::from(client.config.clone()).connect(name, tcp).await;
    if let Some(leaf) = client.leaf() {
        cert_facts(&leaf, warn_days, f);
    }
    result.map_err(|e| tls_reason(&e, f))
}

/// Records subject, issuer and expiry of a leaf certificate; warns near expiry.
pub(crate) fn cert_facts(der: &[u8], warn_days: u32, f: &mut Findings) {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return };
    let not_after = cert.validity().not_after.timestamp() * 1000;
    let days_left = (not_after - mamori_core::time::now_ms()).div_euclid(86_400_000);
    f.detail("cert_subject", cert.subject().to_string());
    f.detail("cert_issuer", cert.issuer().to_string());
    f.detail("cert_not_after", mamori_core::time::format_rfc3339(not_after));
    f.detail("cert_days_left", days_left);
    if days_left >= 0 && days_left < i64::from(warn_days) {
        f.warn(Reason::new(
            "cert_expiring",
            format!("証明書の有効期限が近づいています（残り{days_left}日、{} まで）", mamori_core::time::format_jst(not_after)),
            format!("the certificate expires in {days_left} days ({})", mamori_core::time::format_rfc3339(not_after)),
        ));
    }
}

fn tls_reason(e: &std::io::Error, f: &Findings) -> Reason {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let until = f.details.get("cert_not_after").and_then(|v| v.as_str()).unwrap_or("?").to_string();
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                Reason::new("cert_expired", format!("証明書の有効期限が切れています（{until} まで）"), format!("the certificate expired ({until})"))
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Reason::new("cert_not_yet_valid", "証明書の有効期間がまだ始まっていません", "the certificate is not valid yet")
            }
            CertificateError::UnknownIssuer => Reason::new(
                "cert_untrusted",
                "証明書を信頼できません（発行者が不明、自己署名、または中間証明書の不足）",
                "untrusted certificate (unknown issuer, self-signed, or missing intermediate)",
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Reason::new("cert_name_mismatch", "証明書のホスト名が一致しません", "the certificate does not match the host name")
            }
            CertificateError::Revoked => Reason::new("cert_revoked", "証明書は失効しています", "the certificate is revoked"),
            other => Reason::new("cert_invalid", format!("証明書が不正です（{other:?}）"), format!("invalid certificate ({other:?})")),
        },
        Some(other) => Reason::new("tls_error", format!("TLS ハンドシェイクに失敗しました（{other}）"), format!("TLS handshake failed ({other})")),
        None => super::io_reason(e, "TLS ハンドシェイク", "TLS handshake"),
    }
}

/// Connects and handshakes in one step.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn connect(
    host: &str,
    port: u16,
    ca_pem: Option<&str>,
    warn_days: u32,
    alpn: &[&[u8]],
    stage: &Stage,
    f: &mut Findings,
) -> StepResult<TlsStream<TcpStream>> {
    let tcp = super::connect(host, port, stage).await?;
    handshake(tcp, host, ca_pem, warn_days, alpn, stage, f).await
}
