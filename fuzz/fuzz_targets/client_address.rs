//! `X-Forwarded-For` and `Forwarded` headers from hostile clients behind (or pretending
//! to be behind) a trusted proxy: resolving the client never panics, a peer that is not
//! trusted is always the client, and an address that came from a header is never a
//! trusted proxy unless every hop was one.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_http::{ClientAddressHeader, TrustedProxies};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let header = if first & 1 == 0 { ClientAddressHeader::XForwardedFor } else { ClientAddressHeader::Forwarded };
    let name = if first & 1 == 0 { "x-forwarded-for" } else { "forwarded" };
    let mut headers = http::HeaderMap::new();
    for value in rest.split(|b| *b == b'\n') {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            headers.append(name, v);
        }
    }
    let proxies = TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap(), "10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()], header);
    let untrusted = "192.0.2.1:4000".parse().unwrap();
    let c = proxies.resolve(untrusted, &headers);
    assert!(!c.forwarded && c.ip == untrusted.ip());
    let trusted = "127.0.0.1:4000".parse().unwrap();
    let c = proxies.resolve(trusted, &headers);
    assert_eq!(c.peer, trusted);
    if !c.forwarded {
        assert_eq!(c.ip, trusted.ip());
    }
});
