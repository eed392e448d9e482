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
    /// Whether the TCP peer is a trusted proxy. With `forwarded` false this means the
    /// proxy named no usable client (no header, `unknown`, garbage): `ip` is then the
    /// proxy's own address, which must not be taken for a local client.
    pub via_proxy: bool,
}

impl ClientAddr {
    /// Returns whether the request comes from this host itself: a loopback address,
    /// either as the TCP peer with no proxy in between or as a trusted proxy reported it.
    pub fn is_local(&self) -> bool {
        self.ip.is_loopback() && (self.forwarded || !self.via_proxy)
    }
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
    /// Trusts `nets` to report the client in `header`. IPv4-mapped IPv6 networks
    /// (`::ffff:10.0.0.0/104`) are taken as the IPv4 networks they map, since addresses
    /// are compared in their canonical form.
    pub fn new(nets: Vec<IpNet>, header: ClientAddressHeader) -> Self {
        let nets = nets.into_iter().map(canonical_net).collect();
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
    ///
    /// The list is read from its right end, where the proxy that connected to us wrote:
    /// fields last to first, each split from the right, and the byte and hop budgets
    /// count from the right too, so nothing a client puts in front (an oversized value,
    /// bytes that are not text) can hide the entries the proxies wrote.
    pub fn resolve(&self, peer: SocketAddr, headers: &HeaderMap) -> ClientAddr {
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        if !self.trusts(peer.ip()) {
            return ClientAddr { ip: peer.ip(), peer, forwarded: false, via_proxy: false };
        }
        let mut client = ClientAddr { ip: peer.ip(), peer, forwarded: false, via_proxy: true };
        let mut budget = MAX_HEADER_BYTES;
        let mut hops = 0usize;
        let values: Vec<&http::HeaderValue> = headers.get_all(self.header.name()).iter().collect();
        for value in values.iter().rev() {
            for entry in value.as_bytes().rsplit(|b| *b == b',') {
                if entry.len() > budget || hops >= MAX_HOPS {
                    return client;
                }
                budget -= entry.len();
                let Ok(text) = std::str::from_utf8(entry) else { return client };
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                hops += 1;
                let parsed = match self.header {
                    ClientAddressHeader::XForwardedFor => parse_node(text),
                    ClientAddressHeader::Forwarded => forwarded_for(text).and_then(parse_node),
                };
                // Garbage or an obfuscated/unknown node: the last hop we could follow stands.
                let Some(ip) = parsed else { return client };
                client = ClientAddr { ip, peer, forwarded: true, via_proxy: true };
                if !self.trusts(ip) {
                    return client;
                }
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 network as the IPv4 network it maps; any other unchanged.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let IpAddr::V4(v4) = IpAddr::V6(v6.network()).to_canonical()
        && v6.prefix_len() >= 96
        && let Ok(n) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(n);
    }
    net
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

/// What counts as one client wherever clients are counted (connection caps here, the
/// console's login throttle): an IPv4 address, or an IPv6 /64, since one client can use
/// any address of its /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 address (IPv4-mapped IPv6 included).
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl ClientKey {
    /// Returns the client `ip` counts as.
    pub fn of(ip: IpAddr) -> Self {
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
        let got = p.resolve(peer("127.0.0.1:1"), &headers("x-forwarded-for", &[&huge]));
        assert_eq!(got.ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(got.via_proxy && !got.forwarded && !got.is_local(), "an unresolved client behind a proxy is not local");
    }

    /// Regression (review of the first version): the budgets ran from the left, so a
    /// client could hide the entries its proxy appended behind an oversized or non-text
    /// prefix, and be taken for the proxy itself (a local client).
    #[test]
    fn what_a_client_puts_in_front_never_hides_what_the_proxy_wrote() {
        let p = proxies(&["127.0.0.1/32"], ClientAddressHeader::XForwardedFor);
        let mut h = HeaderMap::new();
        // HAProxy style: the client's own field, then the proxy's.
        h.append("x-forwarded-for", format!("{}, 127.0.0.1", "1".repeat(8180)).parse().unwrap());
        h.append("x-forwarded-for", "203.0.113.7".parse().unwrap());
        assert_eq!(p.resolve(peer("127.0.0.1:1"), &h).ip, "203.0.113.7".parse::<IpAddr>().unwrap());
        // nginx style: one field, the client's part with a byte that is not text.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", http::HeaderValue::from_bytes(b"\x80\x81, 203.0.113.7").unwrap());
        let got = p.resolve(peer("127.0.0.1:1"), &h);
        assert_eq!(got.ip, "203.0.113.7".parse::<IpAddr>().unwrap());
        assert!(!got.is_local());
        // A proxy that reports `unknown`: the proxy's address, not local.
        let p = proxies(&["127.0.0.1/32"], ClientAddressHeader::Forwarded);
        let got = p.resolve(peer("127.0.0.1:1"), &headers("forwarded", &["for=unknown"]));
        assert!(got.via_proxy && !got.is_local());
        // A client of this host through the proxy is local; a direct one too.
        assert!(p.resolve(peer("127.0.0.1:1"), &headers("forwarded", &["for=127.0.0.1"])).is_local());
        assert!(proxies(&[], ClientAddressHeader::Forwarded).resolve(peer("127.0.0.1:1"), &HeaderMap::new()).is_local());
    }

    #[test]
    fn mapped_ipv6_networks_are_compared_as_ipv4() {
        let p = proxies(&["::ffff:10.0.0.0/104"], ClientAddressHeader::XForwardedFor);
        assert!(p.trusts("10.1.2.3".parse().unwrap()));
        assert!(p.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!p.trusts("11.0.0.1".parse().unwrap()));
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
