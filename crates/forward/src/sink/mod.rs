//! The receivers: how a prepared batch reaches a destination, and what came back.

pub mod http;
pub mod relp;
pub mod syslog;

use crate::config::{Destination, Kind};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;

/// What a send achieved, when it got an answer.
#[derive(Debug, Default, PartialEq)]
pub struct Delivery {
    /// Items (by index in the batch) the receiver refused for good, with why: counted
    /// and logged, not sent again (a mapping conflict, an event too large).
    pub rejected: Vec<(usize, String)>,
    /// Items to send again (the receiver was busy with them).
    pub retry: Vec<usize>,
}

/// A send that failed as a whole: everything is sent again after a pause.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// A destination's connection, kept between batches.
pub enum Sink {
    /// Syslog over UDP, TCP or TLS.
    Syslog(syslog::SyslogSink),
    /// Syslog over RELP.
    Relp(relp::RelpSink),
    /// Splunk HEC or the bulk API.
    Http(http::HttpSink),
}

impl Sink {
    /// Makes the sink of a destination (no connection yet); `secret` is the token,
    /// password or API key its config names.
    pub fn new(d: &Destination, ca_pem: Option<&str>, secret: Option<String>) -> Result<Self, SendError> {
        let tls = || client_config(ca_pem, d.kind == Some(Kind::Syslog));
        Ok(match d.kind {
            Some(Kind::Syslog) if d.protocol == crate::config::Protocol::Relp => Sink::Relp(relp::RelpSink::new(d, if d.tls { Some(tls()?) } else { None })?),
            Some(Kind::Syslog) => Sink::Syslog(syslog::SyslogSink::new(d, if d.tls { Some(tls()?) } else { None })?),
            Some(_) => Sink::Http(http::HttpSink::new(d, tls()?, secret)?),
            None => return Err(SendError("no kind".into())),
        })
    }

    /// Sends `items` (prepared by [`crate::prepare`]).
    pub async fn send(&mut self, items: &[&[u8]]) -> Result<Delivery, SendError> {
        match self {
            Sink::Syslog(s) => s.send(items).await,
            Sink::Relp(s) => s.send(items).await,
            Sink::Http(s) => s.send(items).await,
        }
    }
}

/// A TLS client config trusting `ca_pem` when given (a private SIEM's CA), else the
/// public roots. HTTP receivers get ALPN `http/1.1`.
pub fn client_config(ca_pem: Option<&str>, syslog: bool) -> Result<Arc<rustls::ClientConfig>, SendError> {
    let mut roots = RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_bytes()).filter_map(Result::ok).collect();
            if certs.is_empty() {
                return Err(SendError("ca_file holds no PEM certificate / ca_file に PEM 形式の証明書がありません".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| SendError(format!("unusable CA certificate: {e}")))?;
            }
        }
        None => roots.roots = webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SendError(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !syslog {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Ok(Arc::new(config))
}

/// The name to verify in the receiver's certificate.
pub(crate) fn server_name(d: &Destination) -> Result<rustls::pki_types::ServerName<'static>, SendError> {
    let host = if d.server_name.is_empty() { d.host().unwrap_or_default() } else { d.server_name.clone() };
    rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| SendError(format!("'{host}' is not a name to verify a certificate for")))
}
