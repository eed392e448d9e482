//! Who the client is: the TCP peer, or, behind a trusted reverse proxy, the address the
//! proxy reports in `X-Forwarded-For` or `Forwarded` (RFC 7239).
//!
//! The header is read from right to left, the way nginx's `real_ip_recursive` does: the
//! rightmost entry was written by the proxy that connected to us, which we trust; each
//! entry that is itself a trusted proxy passes us one hop further left; the first entry
//! that is not a trusted proxy is the client. Entries further left were written by the
//! client (or by proxies we do not know) and are never believed. A peer that is not a
//! trusted proxy is the client, whatever its headers say.

use http::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Most header entries looked at; a longer chain ends at the last trusted hop.
const MAX_HOPS: usize = 32;
/// Longest header value looked at, bytes.
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// The client of a request, put in every request's extensions by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address: the TCP peer, or the address a trusted proxy reported.
    pub ip: IpAddr,
    /// The TCP peer (IPv4-mapped IPv6 addresses shown as IPv4).
    pub peer: SocketAddr,
    /// Whether `ip` came from a trusted proxy's header.
    pub forwarded: bool,
}

/// The connection a request came on, put in every request's extensions by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Our address the client connected to.
    pub local: SocketAddr,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The server name the client asked for in TLS (SNI).
    pub server_name: Option<std::sync::Arc<str>>,
    /// Whether the connection speaks HTTP/2.
    pub http2: bool,
}

/// The header trusted proxies put the client address in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:4711"` (RFC 7239).
    Forwarded,
}

impl ClientAddressHeader {
    fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

/// The reverse proxies allowed to report the client address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ClientAddressHeader,
}

impl TrustedProxies {
    /// Trusts `nets` to report the client in `header`.
    pub fn new(nets: Vec<IpNet>, header: ClientAddressHeader) -> Self {
        Self { nets, header }
    }

    /// Returns whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Returns whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Returns the client of a request from `peer` with `headers`.
    pub fn resolve(&self, peer: SocketAddr, headers: &HeaderMap) -> ClientAddr {
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let direct = ClientAddr { ip: peer.ip(), peer, forwarded: false };
        if !self.trusts(peer.ip()) {
            return direct;
        }
        // All fields of the header, in order, form one list (RFC 9110 §5.3).
        let mut entries: Vec<&str> = Vec::new();
        let mut seen = 0usize;
        for value in headers.get_all(self.header.name()) {
            seen += value.len();
            if seen > MAX_HEADER_BYTES {
                break;
            }
            let Ok(text) = value.to_str() else { break };
            entries.extend(text.split(',').map(str::trim).filter(|e| !e.is_empty()));
        }
        let mut client = direct;
        for entry in entries.iter().rev().take(MAX_HOPS) {
            let parsed = match self.header {
                ClientAddressHeader::XForwardedFor => parse_node(entry),
                ClientAddressHeader::Forwarded => forwarded_for(entry).and_then(parse_node),
            };
            // Garbage or an obfuscated/unknown node: the last hop we could follow stands.
            let Some(ip) = parsed else { break };
            client = ClientAddr { ip, peer, forwarded: true };
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// Returns the `for=` value of one `Forwarded` element (`for=x;proto=https;by=y`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
    })
}

/// Parses a node: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`,
/// optionally in double quotes. `unknown` and `_obfuscated` nodes give `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.strip_prefix('"').and_then(|n| n.strip_suffix('"')).unwrap_or(node);
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, tail) = rest.split_once(']')?;
        if !(tail.is_empty() || tail.strip_prefix(':').is_some_and(valid_port)) {
            return None;
        }
        return v6.parse::<Ipv6Addr>().ok().map(|ip| IpAddr::V6(ip).to_canonical());
    }
    let (v4, port) = node.rsplit_once(':')?;
    if !valid_port(port) {
        return None;
    }
    v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn valid_port(p: &str) -> bool {
    // RFC 7239 also allows obfuscated ports (`_abc`); they carry no address and are fine.
    p.parse::<u16>().is_ok() || (p.starts_with('_') && p.len() > 1)
}

/// The key connection caps count by: an IPv4 address, or an IPv6 /64 (one client can
/// use any address of its /64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl ClientKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Self::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str], header: ClientAddressHeader) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect(), header)
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, v.parse().unwrap());
        }
        h
    }

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_and_only_from_trusted_peers() {
        use ClientAddressHeader::XForwardedFor as X;
        let p = proxies(&["127.0.0.1/32", "10.0.0.0/24"], X);
        // (peer, headers, expected client, forwarded)
        let cases: &[(&str, &[&str], &str, bool)] = &[
            ("192.0.2.9:5000", &["203.0.113.7"], "192.0.2.9", false), // untrusted peer: header ignored
            ("127.0.0.1:5000", &[], "127.0.0.1", false),              // trusted, no header
            ("127.0.0.1:5000", &["203.0.113.7"], "203.0.113.7", true),
            ("127.0.0.1:5000", &["198.51.100.1, 203.0.113.7"], "203.0.113.7", true), // spoofed left part ignored
            ("127.0.0.1:5000", &["198.51.100.1, 203.0.113.7, 10.0.0.5"], "203.0.113.7", true), // a chain of trusted proxies
            ("127.0.0.1:5000", &["198.51.100.1", "203.0.113.7, 10.0.0.5"], "203.0.113.7", true), // several fields are one list
            ("127.0.0.1:5000", &["10.0.0.7, 10.0.0.5"], "10.0.0.7", true),           // all trusted: the leftmost
            ("127.0.0.1:5000", &["garbage, 10.0.0.5"], "10.0.0.5", true),            // garbage ends the walk at the last good hop
            ("127.0.0.1:5000", &["203.0.113.7:4711"], "203.0.113.7", true),
            ("127.0.0.1:5000", &["[2001:db8::7]:4711"], "2001:db8::7", true),
            ("127.0.0.1:5000", &["2001:db8::7"], "2001:db8::7", true),
            ("127.0.0.1:5000", &["::ffff:203.0.113.7"], "203.0.113.7", true),
            ("127.0.0.1:5000", &["203.0.113.7:99999"], "127.0.0.1", false),
            ("127.0.0.1:5000", &["[2001:db8::7"], "127.0.0.1", false),
            ("[::ffff:127.0.0.1]:5000", &["203.0.113.7"], "203.0.113.7", true), // mapped peer on a dual-stack socket
        ];
        for (peer_addr, values, want, forwarded) in cases {
            let got = p.resolve(peer(peer_addr), &headers("x-forwarded-for", values));
            assert_eq!(got.ip, want.parse::<IpAddr>().unwrap(), "{peer_addr} {values:?}");
            assert_eq!(got.forwarded, *forwarded, "{peer_addr} {values:?}");
            assert!(got.peer.ip().to_canonical() == got.peer.ip());
        }
    }

    #[test]
    fn forwarded_header_of_rfc_7239() {
        let p = proxies(&["127.0.0.1/32"], ClientAddressHeader::Forwarded);
        let cases: &[(&[&str], &str)] = &[
            (&["for=192.0.2.60;proto=http;by=203.0.113.43"], "192.0.2.60"),
            (&["For=\"[2001:db8:cafe::17]:4711\""], "2001:db8:cafe::17"),
            (&["for=192.0.2.43, for=198.51.100.17"], "198.51.100.17"),
            (&["for=unknown"], "127.0.0.1"),
            (&["for=_hidden, for=198.51.100.17"], "198.51.100.17"),
            (&["by=203.0.113.43"], "127.0.0.1"),
        ];
        for (values, want) in cases {
            assert_eq!(p.resolve(peer("127.0.0.1:1"), &headers("forwarded", values)).ip, want.parse::<IpAddr>().unwrap(), "{values:?}");
        }
        // The other header is not read.
        assert_eq!(p.resolve(peer("127.0.0.1:1"), &headers("x-forwarded-for", &["192.0.2.1"])).ip, "127.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn hostile_headers_are_bounded() {
        let p = proxies(&["127.0.0.0/8"], ClientAddressHeader::XForwardedFor);
        // A chain longer than MAX_HOPS of trusted addresses stops at the last one looked at.
        let long = vec!["127.0.0.2"; 500].join(",");
        let got = p.resolve(peer("127.0.0.1:1"), &headers("x-forwarded-for", &[&format!("203.0.113.1,{long}")]));
        assert_eq!(got.ip, "127.0.0.2".parse::<IpAddr>().unwrap());
        // Oversized values are not read past the limit.
        let huge = format!("203.0.113.1,{}", "9".repeat(20_000));
        assert_eq!(p.resolve(peer("127.0.0.1:1"), &headers("x-forwarded-for", &[&huge])).ip, "127.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn caps_count_ipv6_clients_by_their_64() {
        let a = ClientKey::of("2001:db8:1:2::1".parse().unwrap());
        let b = ClientKey::of("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = ClientKey::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(ClientKey::of("::ffff:192.0.2.1".parse().unwrap()), ClientKey::of("192.0.2.1".parse().unwrap()));
    }
}
