//! The settings of an HTTP listener: the serde section an operator writes
//! ([`HttpConfig`], `[server.http]` for the console) and the checked runtime values the
//! server uses ([`Limits`], [`TrustedProxies`]).

use crate::client::{ClientAddressHeader, TrustedProxies};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Settings of one HTTP listener. Every field has a default that is safe for a listener
/// facing the Internet, so the section can be left out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Seconds a client has to send the headers of a request. For the first request of a
    /// connection this counts from the TCP accept, TLS handshake included, so a client
    /// that opens a connection and sends nothing (or one byte a minute) is cut off
    /// (slowloris).
    pub header_read_timeout_secs: u64,
    /// Seconds a keep-alive connection may wait for its next request.
    pub idle_timeout_secs: u64,
    /// Seconds the server waits for the next piece of a request body before the request
    /// fails.
    pub body_read_timeout_secs: u64,
    /// Seconds a response may stay blocked because the client does not read it.
    pub write_timeout_secs: u64,
    /// Connections open at once on this server, all clients together.
    pub max_connections: usize,
    /// Connections open at once from one client address (an IPv6 client by its /64).
    /// Trusted proxies are exempt: they carry many clients.
    pub max_connections_per_client: usize,
    /// Largest request head (request line and headers), bytes; at least 8192.
    pub max_header_bytes: usize,
    /// Most header fields in one HTTP/1 request (HTTP/2 heads are bounded by
    /// `max_header_bytes` alone).
    pub max_headers: usize,
    /// Most HTTP/2 streams one connection may have open at once.
    pub http2_max_concurrent_streams: u32,
    /// Seconds open connections get to finish their requests on shutdown.
    pub shutdown_grace_secs: u64,
    /// Addresses or networks of reverse proxies and load balancers allowed to tell the
    /// client's address in `client_address_header`. From any other peer the header is
    /// ignored. Example: `["127.0.0.1/32", "10.0.0.0/28"]`.
    pub trusted_proxies: Vec<IpNet>,
    /// The header trusted proxies use: `x-forwarded-for` or `forwarded` (RFC 7239).
    pub client_address_header: ClientAddressHeader,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_read_timeout_secs: 30,
            write_timeout_secs: 30,
            max_connections: 10_000,
            max_connections_per_client: 256,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            http2_max_concurrent_streams: 100,
            shutdown_grace_secs: 10,
            trusted_proxies: Vec::new(),
            client_address_header: ClientAddressHeader::XForwardedFor,
        }
    }
}

// The allowed range of each setting, for `validate` (which reports a value outside it)
// and `Limits::sanitized` (which brings one into it).
const HEADER_READ_TIMEOUT_SECS: (u64, u64) = (1, 300);
const TIMEOUT_SECS: (u64, u64) = (1, 3600);
const CONNECTIONS: (u64, u64) = (1, 1_000_000);
const HEADER_BYTES: (u64, u64) = (8192, 1024 * 1024);
const HEADERS: (u64, u64) = (8, 1000);
const HTTP2_STREAMS: (u64, u64) = (1, 10_000);
const SHUTDOWN_GRACE_SECS: (u64, u64) = (0, 600);

impl HttpConfig {
    /// Checks the section without I/O and returns every problem, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut range = |key: &str, value: u64, (min, max): (u64, u64)| {
            if value < min || value > max {
                problems.push(format!("{key}: {value} is out of range ({min}–{max})"));
            }
        };
        range("header_read_timeout_secs", self.header_read_timeout_secs, HEADER_READ_TIMEOUT_SECS);
        range("idle_timeout_secs", self.idle_timeout_secs, TIMEOUT_SECS);
        range("body_read_timeout_secs", self.body_read_timeout_secs, TIMEOUT_SECS);
        range("write_timeout_secs", self.write_timeout_secs, TIMEOUT_SECS);
        range("max_connections", self.max_connections as u64, CONNECTIONS);
        range("max_connections_per_client", self.max_connections_per_client as u64, CONNECTIONS);
        range("max_header_bytes", self.max_header_bytes as u64, HEADER_BYTES);
        range("max_headers", self.max_headers as u64, HEADERS);
        range("http2_max_concurrent_streams", u64::from(self.http2_max_concurrent_streams), HTTP2_STREAMS);
        range("shutdown_grace_secs", self.shutdown_grace_secs, SHUTDOWN_GRACE_SECS);
        if self.max_connections_per_client > self.max_connections {
            problems.push(format!("max_connections_per_client: {} is more than max_connections ({})", self.max_connections_per_client, self.max_connections));
        }
        for net in &self.trusted_proxies {
            if net.prefix_len() == 0 {
                problems.push(format!("trusted_proxies: '{net}' would let every client choose its own address; name the proxies' addresses"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// Returns the runtime limits. Call [`HttpConfig::validate`] first; out-of-range
    /// values are clamped here so a missed check cannot disable a limit.
    pub fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_secs),
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            max_body_bytes: None,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        }
        .sanitized()
    }

    /// Returns who may set the client address.
    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::new(self.trusted_proxies.iter().copied().filter(|n| n.prefix_len() > 0).collect(), self.client_address_header)
    }
}

/// The limits a server enforces on every connection and request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// See [`HttpConfig::header_read_timeout_secs`].
    pub header_read_timeout: Duration,
    /// See [`HttpConfig::idle_timeout_secs`].
    pub idle_timeout: Duration,
    /// See [`HttpConfig::body_read_timeout_secs`].
    pub body_read_timeout: Duration,
    /// See [`HttpConfig::write_timeout_secs`].
    pub write_timeout: Duration,
    /// See [`HttpConfig::max_connections`].
    pub max_connections: usize,
    /// See [`HttpConfig::max_connections_per_client`].
    pub max_connections_per_client: usize,
    /// See [`HttpConfig::max_header_bytes`].
    pub max_header_bytes: usize,
    /// See [`HttpConfig::max_headers`].
    pub max_headers: usize,
    /// Largest request body the application can read; reading past it fails with
    /// [`http_body_util::LengthLimitError`] (axum answers 413). `None`: the application
    /// sets its own limit.
    pub max_body_bytes: Option<usize>,
    /// See [`HttpConfig::http2_max_concurrent_streams`].
    pub http2_max_concurrent_streams: u32,
    /// See [`HttpConfig::shutdown_grace_secs`].
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        HttpConfig::default().limits()
    }
}

impl Limits {
    /// Returns the limits with every value brought into its allowed range (the fields
    /// are public; a value out of range must not disable a limit or upset hyper).
    pub fn sanitized(mut self) -> Self {
        let secs = |d: Duration, (min, max): (u64, u64)| d.clamp(Duration::from_secs(min), Duration::from_secs(max));
        let count = |n: usize, (min, max): (u64, u64)| n.clamp(min as usize, max as usize);
        self.header_read_timeout = secs(self.header_read_timeout, HEADER_READ_TIMEOUT_SECS);
        self.idle_timeout = secs(self.idle_timeout, TIMEOUT_SECS);
        self.body_read_timeout = secs(self.body_read_timeout, TIMEOUT_SECS);
        self.write_timeout = secs(self.write_timeout, TIMEOUT_SECS);
        self.max_connections = count(self.max_connections, CONNECTIONS);
        self.max_connections_per_client = count(self.max_connections_per_client, CONNECTIONS);
        self.max_header_bytes = count(self.max_header_bytes, HEADER_BYTES);
        self.max_headers = count(self.max_headers, HEADERS);
        self.http2_max_concurrent_streams = count(self.http2_max_concurrent_streams as usize, HTTP2_STREAMS) as u32;
        self.shutdown_grace = secs(self.shutdown_grace, SHUTDOWN_GRACE_SECS);
        self
    }

    /// Sets the request body limit.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = HttpConfig::default();
        assert_eq!(c.validate(), Ok(()));
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<HttpConfig>(&text).unwrap(), c);
        assert_eq!(toml::from_str::<HttpConfig>("").unwrap(), c, "every key has a default");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let c = HttpConfig {
            header_read_timeout_secs: 0,
            max_header_bytes: 100,
            max_connections: 10,
            max_connections_per_client: 20,
            trusted_proxies: vec!["0.0.0.0/0".parse().unwrap(), "10.0.0.1/32".parse().unwrap()],
            ..Default::default()
        };
        let p = c.validate().unwrap_err();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("header_read_timeout_secs"), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("max_header_bytes")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("max_connections_per_client")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("'0.0.0.0/0'")), "{p:?}");
        // Clamped anyway, and the catch-all network is never trusted.
        assert_eq!(c.limits().header_read_timeout, Duration::from_secs(1));
        assert!(!c.trusted_proxies().trusts("192.0.2.1".parse().unwrap()));
        assert!(c.trusted_proxies().trusts("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn misspelled_keys_and_unknown_headers_are_refused() {
        assert!(toml::from_str::<HttpConfig>("idle_timeout = 5").unwrap_err().to_string().contains("idle_timeout"));
        assert!(toml::from_str::<HttpConfig>("client_address_header = \"x-real-ip\"").is_err());
        let c: HttpConfig = toml::from_str("client_address_header = \"forwarded\"\ntrusted_proxies = [\"::1/128\"]").unwrap();
        assert_eq!(c.client_address_header, ClientAddressHeader::Forwarded);
    }
}
