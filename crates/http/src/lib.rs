//! Hardened HTTP serving for every Mamori listener: the console and API today, the
//! gateway's and the edge's listeners tomorrow. One place gets this right:
//!
//! - HTTP/1.1 and HTTP/2 over TLS (ALPN) or plain TCP (HTTP/2 by prior knowledge);
//! - a deadline for the first request counted from the accept (TLS handshake included),
//!   a header-read timeout for every later request head, an idle timeout between
//!   requests, a timeout between pieces of a request body, and a write timeout for
//!   clients that stop reading;
//! - caps on open connections in all and per client address (IPv6 by /64), trusted
//!   proxies exempt from the latter;
//! - a request body limit the application sees as a read error (axum answers 413);
//! - the client address from trusted reverse proxies only ([`TrustedProxies`]);
//! - a handler panic answers 500 and is counted, never taking the connection's
//!   neighbours down;
//! - graceful drain on shutdown: no new connections, open ones finish their requests
//!   within a grace period, then the rest are closed;
//! - counters for `/metrics` ([`ServerStats`]);
//! - TLS certificates from PEM files or self-signed, reloadable ([`tls::CertStore`]).
//!
//! Connections that hyper upgrades (CONNECT tunnels, WebSocket) leave the server's
//! accounting and timeouts when they are handed over: their owner times them.
//!
//! Any tower service of `Request<RequestBody>` can be served (an axum `Router` is one):
//!
//! ```no_run
//! use mamori_http::{HttpConfig, HttpServer};
//! # async fn example<S, B>(service: S) where
//! #   S: tower::Service<http::Request<mamori_http::RequestBody>, Response = http::Response<B>> + Clone + Send + 'static,
//! #   S::Future: Send + 'static, S::Error: Into<mamori_http::BoxError>,
//! #   B: http_body::Body<Data = bytes::Bytes> + Send + 'static, B::Error: Into<mamori_http::BoxError> {
//! let config = HttpConfig::default();
//! config.validate().expect("valid");
//! let server = HttpServer::new(config.limits().with_max_body_bytes(4 << 20), config.trusted_proxies());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! server.serve(listener, None, service, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # }
//! ```
#![deny(missing_docs)]

mod body;
mod client;
mod config;
mod conn;
mod server;
mod stats;
pub mod tls;

pub use body::{BodyTimeout, BoxError, RequestBody};
pub use client::{ClientAddr, ClientAddressHeader, ClientKey, ConnectionInfo, TrustedProxies};
pub use config::{HttpConfig, Limits};
pub use server::HttpServer;
pub use stats::{ServerStats, StatsSnapshot};
