//! Syslog over UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425).
//!
//! TCP gives no acknowledgement: what the kernel accepted is taken as sent, so a
//! receiver that dies with messages in flight loses them. Use RELP ([`super::relp`])
//! where that matters.

use super::{Delivery, SendError, server_name};
use crate::config::{Destination, Protocol, split_host_port};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// A byte stream to a receiver: TCP, or TLS over TCP.
pub(crate) type Stream = Box<dyn AsyncStream>;

/// What a stream to a receiver is.
pub(crate) trait AsyncStream: tokio::io::AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// Connects to `address`, with TLS when `tls` is given, within `timeout`.
pub(crate) async fn connect(d: &Destination, tls: Option<&Arc<rustls::ClientConfig>>, timeout: Duration) -> Result<Stream, SendError> {
    let (host, port) = split_host_port(&d.address).ok_or_else(|| SendError(format!("bad address '{}'", d.address)))?;
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| SendError(format!("connecting to {} timed out", d.address)))?
        .map_err(|e| SendError(format!("cannot connect to {}: {e}", d.address)))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Ok(Box::new(tcp)),
        Some(config) => {
            let name = server_name(d)?;
            let tls = tokio::time::timeout(timeout, tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp))
                .await
                .map_err(|_| SendError(format!("TLS handshake with {} timed out", d.address)))?
                .map_err(|e| SendError(format!("TLS handshake with {} failed: {e}", d.address)))?;
            Ok(Box::new(tls))
        }
    }
}

/// Syslog over UDP, TCP or TLS.
pub struct SyslogSink {
    destination: Destination,
    tls: Option<Arc<rustls::ClientConfig>>,
    stream: Option<Stream>,
    udp: Option<UdpSocket>,
    timeout: Duration,
}

impl SyslogSink {
    pub(crate) fn new(d: &Destination, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Self, SendError> {
        Ok(Self { destination: d.clone(), tls, stream: None, udp: None, timeout: Duration::from_secs(d.timeout_secs) })
    }

    /// Sends framed messages (TCP, TLS) or one datagram each (UDP).
    pub(crate) async fn send(&mut self, items: &[&[u8]]) -> Result<Delivery, SendError> {
        if self.destination.protocol == Protocol::Udp {
            return self.send_udp(items).await;
        }
        if self.stream.is_none() {
            self.stream = Some(connect(&self.destination, self.tls.as_ref(), self.timeout).await?);
        }
        let Some(stream) = self.stream.as_mut() else { return Err(SendError("not connected".into())) };
        let mut buf = Vec::with_capacity(items.iter().map(|i| i.len()).sum());
        for i in items {
            buf.extend_from_slice(i);
        }
        let written = tokio::time::timeout(self.timeout, async {
            stream.write_all(&buf).await?;
            stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(Delivery::default()),
            Ok(Err(e)) => {
                self.stream = None;
                Err(SendError(format!("sending to {} failed: {e}", self.destination.address)))
            }
            Err(_) => {
                self.stream = None;
                Err(SendError(format!("sending to {} timed out", self.destination.address)))
            }
        }
    }

    async fn send_udp(&mut self, items: &[&[u8]]) -> Result<Delivery, SendError> {
        if self.udp.is_none() {
            let (host, port) = split_host_port(&self.destination.address).ok_or_else(|| SendError("bad address".into()))?;
            let target = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| SendError(format!("cannot resolve {}: {e}", self.destination.address)))?
                .next()
                .ok_or_else(|| SendError(format!("{} has no address", self.destination.address)))?;
            let local: std::net::SocketAddr = if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
            let socket = UdpSocket::bind(local).await.map_err(|e| SendError(format!("UDP socket: {e}")))?;
            socket.connect(target).await.map_err(|e| SendError(format!("UDP to {target}: {e}")))?;
            self.udp = Some(socket);
        }
        let Some(socket) = self.udp.as_ref() else { return Err(SendError("no socket".into())) };
        let mut rejected = Vec::new();
        for (n, i) in items.iter().enumerate() {
            // One message per datagram, without framing.
            if let Err(e) = socket.send(i).await {
                if e.raw_os_error() == Some(libc::EMSGSIZE) {
                    rejected.push((n, format!("too large for one datagram ({} bytes)", i.len())));
                    continue;
                }
                self.udp = None;
                return Err(SendError(format!("UDP to {} failed: {e}", self.destination.address)));
            }
        }
        Ok(Delivery { rejected, retry: Vec::new() })
    }
}
