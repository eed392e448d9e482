//! The server against real sockets: HTTP/1.1 and HTTP/2, plain and TLS, every timeout,
//! the connection caps, body limits, panics, trusted proxies and graceful drain.
//!
//! Hostile clients connect from other loopback addresses (127.0.0.2 and up: all of
//! 127/8 is loopback on Linux) so the caps, which count by client address, leave the
//! test's own well-behaved client at 127.0.0.1 alone.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mamori_http::{ClientAddr, ConnectionInfo, HttpConfig, HttpServer, Limits, RequestBody};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

type Body = BoxBody<Bytes, mamori_http::BoxError>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).map_err(|e| match e {}).boxed()
}

/// The application under test.
async fn app(req: Request<RequestBody>) -> Result<Response<Body>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let res = match path.as_str() {
        "/healthz" => Response::new(full("ok")),
        "/client" => {
            let c = req.extensions().get::<ClientAddr>().copied();
            Response::new(full(c.map(|c| format!("{} {}", c.ip, c.forwarded)).unwrap_or_default()))
        }
        "/conn" => {
            let i = req.extensions().get::<ConnectionInfo>().cloned();
            let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("-").to_string();
            Response::new(full(i.map(|i| format!("tls={} h2={} sni={} host={host}", i.tls, i.http2, i.server_name.unwrap_or_default())).unwrap_or_default()))
        }
        "/echo" => match req.into_body().collect().await {
            Ok(b) => Response::new(full(b.to_bytes().len().to_string())),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => status(StatusCode::PAYLOAD_TOO_LARGE, "too large"),
            Err(e) if e.downcast_ref::<mamori_http::BodyTimeout>().is_some() => status(StatusCode::REQUEST_TIMEOUT, "body timeout"),
            Err(e) => status(StatusCode::BAD_REQUEST, &e.to_string()),
        },
        "/panic" => panic!("handler bug"),
        "/wait" => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Response::new(full("waited"))
        }
        "/big" => Response::new(full(vec![b'x'; 64 << 20])),
        "/stream" => {
            // 64 MiB in 1 MiB pieces.
            let (mut tx, body) = http_body_util::channel::Channel::<Bytes, mamori_http::BoxError>::new(1);
            tokio::spawn(async move {
                for _ in 0..64 {
                    if tx.send_data(Bytes::from(vec![b'y'; 1 << 20])).await.is_err() {
                        return;
                    }
                }
            });
            Response::new(body.boxed())
        }
        "/trickle" => {
            // Six pieces, 400 ms apart: slower than the idle timeout in total, but never idle.
            let (mut tx, body) = http_body_util::channel::Channel::<Bytes, mamori_http::BoxError>::new(1);
            tokio::spawn(async move {
                for _ in 0..6 {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    if tx.send_data(Bytes::from_static(b"piece\n")).await.is_err() {
                        return;
                    }
                }
            });
            Response::new(body.boxed())
        }
        _ => status(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(res)
}

fn status(code: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(full(text.to_string()));
    *r.status_mut() = code;
    r
}

/// A server running in the background; `stop` starts its drain.
struct Running {
    addr: SocketAddr,
    server: HttpServer,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn start(limits: Limits, config: &HttpConfig, tls: Option<Arc<rustls::ServerConfig>>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(listener, limits, config, tls)
}

fn start_on(listener: tokio::net::TcpListener, limits: Limits, config: &HttpConfig, tls: Option<Arc<rustls::ServerConfig>>) -> Running {
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(limits, config.trusted_proxies());
    let (tx, rx) = oneshot::channel::<()>();
    let s = server.clone();
    let done = tokio::spawn(async move {
        s.serve(listener, tls, tower::service_fn(app), async {
            let _ = rx.await;
        })
        .await
    });
    Running { addr, server, stop: Some(tx), done }
}

fn limits(f: impl FnOnce(&mut HttpConfig)) -> (Limits, HttpConfig) {
    let mut c = HttpConfig::default();
    f(&mut c);
    c.validate().unwrap();
    (c.limits().with_max_body_bytes(1 << 20), c)
}

/// Connects from a chosen loopback source address.
async fn connect_from(src: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((src, 0)))?;
    s.connect(to).await
}

/// One HTTP/1.1 request on a fresh connection, by hand: (status, body).
async fn get(addr: SocketAddr, path: &str, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n{extra}\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.expect("answered").unwrap();
    parse(&out)
}

fn parse(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), body.to_string())
}

/// Whether the server has closed `s`: a read gives EOF or a reset.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn http1_keep_alive_and_http2_prior_knowledge_on_plain_tcp() {
    let (l, c) = limits(|_| {});
    let r = start(l, &c, None).await;
    // HTTP/1.1, two requests on one connection.
    let io = TokioIo::new(TcpStream::connect(r.addr).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io).await.unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let res = send.send_request(Request::get("/conn").header("host", "t.example").body(Full::default()).unwrap()).await.unwrap();
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "tls=false h2=false sni= host=t.example");
    }
    // HTTP/2 by prior knowledge: a Host header is made from :authority.
    let io = TokioIo::new(TcpStream::connect(r.addr).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    let res = send.send_request(Request::get(format!("http://{}/conn", r.addr)).body(Full::default()).unwrap()).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, format!("tls=false h2=true sni= host={}", r.addr));
    assert!(r.server.stats().snapshot().requests >= 3);
}

#[tokio::test]
async fn tls_offers_http2_and_http1_by_alpn_and_records_the_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = mamori_http::tls::self_signed(dir.path(), &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let store = mamori_http::tls::CertStore::load(&cert, &key).unwrap();
    let (l, c) = limits(|_| {});
    let r = start(l, &c, Some(store.server_config(true).unwrap())).await;
    // The client trusts the self-signed certificate itself, as a probe given --ca-file does.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(store.leaf().unwrap()).unwrap();
    for (alpn, want_h2) in [(vec![b"h2".to_vec(), b"http/1.1".to_vec()], true), (vec![b"http/1.1".to_vec()], false)] {
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        cfg.alpn_protocols = alpn;
        let tcp = TcpStream::connect(r.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect("localhost".try_into().unwrap(), tcp).await.unwrap();
        let body = if want_h2 {
            let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
            tokio::spawn(conn);
            let res = send.send_request(Request::get("https://localhost/conn").body(Full::default()).unwrap()).await.unwrap();
            res.into_body().collect().await.unwrap().to_bytes()
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tls)).await.unwrap();
            tokio::spawn(conn);
            let res = send.send_request(Request::get("/conn").header("host", "localhost").body(Full::default()).unwrap()).await.unwrap();
            res.into_body().collect().await.unwrap().to_bytes()
        };
        assert_eq!(body, format!("tls=true h2={want_h2} sni=localhost host=localhost"));
    }
    // Plain HTTP on the TLS port is a failed handshake, counted, and the server goes on.
    let (status, _) = {
        let mut s = TcpStream::connect(r.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        parse(&out)
    };
    assert_ne!(status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.server.stats().snapshot().tls_handshake_failed, 1);
}

/// Slowloris: thousands of connections from one client, each sending a request head
/// one piece at a time and never finishing it. Health checks from elsewhere keep being
/// answered, and the server closes every half-open connection once the header timeout
/// has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_at_the_header_timeout_and_health_keeps_answering() {
    const HALF_OPEN: usize = 3000;
    let (l, c) = limits(|c| {
        c.header_read_timeout_secs = 2;
        c.max_connections_per_client = 10_000; // the timeout, not the cap, is under test here
    });
    let r = start(l, &c, None).await;
    let opened = Instant::now();
    let mut attackers = Vec::with_capacity(HALF_OPEN);
    for _ in 0..HALF_OPEN {
        let mut s = connect_from([127, 0, 0, 2], r.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: victim\r\n").await.unwrap();
        attackers.push(s);
    }
    let all_open = opened.elapsed();
    // They keep trickling header lines; health checks go on meanwhile.
    for _ in 0..3 {
        for s in attackers.iter_mut() {
            let _ = s.write_all(b"X-a: b\r\n").await;
        }
        let (code, body) = tokio::time::timeout(Duration::from_secs(5), get(r.addr, "/healthz", "")).await.expect("health answered during the attack");
        assert_eq!((code, body.as_str()), (200, "ok"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Every half-open connection is closed by the server within the header timeout
    // of its accept (plus scheduling slack), although it kept sending.
    let deadline = opened + all_open + Duration::from_secs(2) + Duration::from_secs(3);
    let mut still_open = 0;
    for s in attackers.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        if !closed_within(s, left).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "{still_open} of {HALF_OPEN} half-open connections were still open after {:?}", opened.elapsed());
    let stats = r.server.stats().snapshot();
    assert!(stats.header_timeouts >= HALF_OPEN as u64, "{stats:?}");
    assert_eq!(get(r.addr, "/healthz", "").await.0, 200);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_or_stalls_its_next_head_is_closed() {
    let (l, c) = limits(|c| {
        c.header_read_timeout_secs = 1;
        c.idle_timeout_secs = 30;
    });
    let r = start(l, &c, None).await;
    // Silent from the start.
    let mut silent = TcpStream::connect(r.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(4)).await);
    // One good request, then the next head one byte at a time: the header timeout
    // counts from its first byte, though the idle timeout is far away.
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let mut closed = false;
    for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\n".iter() {
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut s, Duration::from_millis(150)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert!(r.server.stats().snapshot().header_timeouts >= 2);
}

#[tokio::test]
async fn idle_keep_alive_is_closed_but_a_slow_response_is_not_idle() {
    let (l, c) = limits(|c| {
        c.idle_timeout_secs = 1;
        c.header_read_timeout_secs = 5;
    });
    let r = start(l, &c, None).await;
    // A response that takes 2.4 s in pieces, on a server whose idle timeout is 1 s.
    let (code, body) = get(r.addr, "/trickle", "").await;
    assert_eq!((code, body.matches("piece").count()), (200, 6));
    // Between requests, the idle timeout applies (not the longer header timeout).
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let _ = s.read(&mut buf).await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(4)).await);
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    assert_eq!(r.server.stats().snapshot().idle_closed, 1);
    // HTTP/2 connections idle out too (GOAWAY, then close).
    let io = TokioIo::new(TcpStream::connect(r.addr).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);
    let res = send.send_request(Request::get(format!("http://{}/healthz", r.addr)).body(Full::default()).unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    let _ = res.into_body().collect().await;
    tokio::time::timeout(Duration::from_secs(5), conn).await.expect("the server ended the idle HTTP/2 connection").unwrap().unwrap();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_at_the_write_timeout() {
    let (l, c) = limits(|c| c.write_timeout_secs = 1);
    let r = start(l, &c, None).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    // Read nothing for a while: the socket buffers fill and the server's write blocks.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => total += n,
            Err(_) => panic!("not closed"),
        }
    }
    assert!(total < 64 << 20, "the whole body was sent: {total}");
    assert_eq!(r.server.stats().snapshot().write_timeouts, 1);
}

#[tokio::test]
async fn bodies_over_the_limit_or_stalled_fail_the_read() {
    let (l, c) = limits(|c| c.body_read_timeout_secs = 1);
    let r = start(l, &c, None).await;
    // Declared and chunked bodies over 1 MiB.
    let big = vec![b'a'; (1 << 20) + 1];
    let io = TokioIo::new(TcpStream::connect(r.addr).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io).await.unwrap();
    tokio::spawn(conn);
    let res = send.send_request(Request::post("/echo").header("host", "x").body(Full::new(Bytes::from(big))).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 300_000, "b".repeat(300_000));
    for _ in 0..4 {
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert_eq!(parse(&out).0, 413);
    // Within the limit: read in full.
    let (code, body) = {
        let mut s = TcpStream::connect(r.addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello").await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        parse(&out)
    };
    assert_eq!((code, body.as_str()), (200, "5"));
    // A body that stops arriving.
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly ten..").await.unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await.expect("answered").unwrap();
    assert_eq!(parse(&out).0, 408);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn connection_caps_per_client_and_in_total() {
    let (l, c) = limits(|c| {
        c.max_connections = 12;
        c.max_connections_per_client = 4;
        c.header_read_timeout_secs = 30;
        c.trusted_proxies = vec!["127.0.0.9/32".parse().unwrap()];
    });
    let r = start(l, &c, None).await;
    // A client at its cap: the next connection is closed at once, the others stay.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from([127, 0, 0, 3], r.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = connect_from([127, 0, 0, 3], r.addr).await.unwrap();
    assert!(closed_within(&mut fifth, Duration::from_secs(2)).await, "over the per-client cap");
    // Another client is served meanwhile, and a held connection still works.
    assert_eq!(get(r.addr, "/healthz", "").await.0, 200);
    held[0].write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    held[0].read_to_end(&mut out).await.unwrap();
    assert_eq!(parse(&out).0, 200);
    held.remove(0);
    // The closed connection gave its place back.
    tokio::time::sleep(Duration::from_millis(100)).await;
    held.push(connect_from([127, 0, 0, 3], r.addr).await.unwrap());
    // A trusted proxy is not held to the per-client cap, only to the total.
    for _ in 0..8 {
        held.push(connect_from([127, 0, 0, 9], r.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over_total = connect_from([127, 0, 0, 5], r.addr).await.unwrap();
    assert!(closed_within(&mut over_total, Duration::from_secs(2)).await, "over the total cap");
    for s in held.iter_mut().skip(4) {
        assert!(!closed_within(s, Duration::from_millis(20)).await, "proxy connections stay open");
    }
    let stats = r.server.stats().snapshot();
    assert_eq!((stats.refused_client_cap, stats.refused_total_cap), (1, 1), "{stats:?}");
    assert_eq!(stats.connections_open, 12);
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.server.stats().snapshot().connections_open, 0);
    assert_eq!(get(r.addr, "/healthz", "").await.0, 200);
}

#[tokio::test]
async fn the_client_address_comes_from_trusted_proxies_only() {
    let (l, c) = limits(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]);
    let r = start(l, &c, None).await;
    assert_eq!(get(r.addr, "/client", "X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n").await.1, "203.0.113.7 true");
    assert_eq!(get(r.addr, "/client", "").await.1, "127.0.0.1 false");
    // The same header from an untrusted peer is ignored.
    let mut s = connect_from([127, 0, 0, 4], r.addr).await.unwrap();
    s.write_all(b"GET /client HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert_eq!(parse(&out).1, "127.0.0.4 false");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
    let (l, c) = limits(|_| {});
    let r = start(l, &c, None).await;
    assert_eq!(get(r.addr, "/panic", "").await.0, 500);
    assert_eq!(get(r.addr, "/healthz", "").await, (200, "ok".into()));
    assert_eq!(r.server.stats().snapshot().handler_panics, 1);
}

#[tokio::test]
async fn oversized_heads_are_refused() {
    let (l, c) = limits(|c| c.max_header_bytes = 16 * 1024);
    let r = start(l, &c, None).await;
    let big = format!("X-Big: {}\r\n", "a".repeat(40 * 1024));
    let (code, _) = get(r.addr, "/healthz", &big).await;
    assert_eq!(code, 431);
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (code, _) = get(r.addr, "/healthz", &many).await;
    assert_eq!(code, 431);
    assert_eq!(get(r.addr, "/healthz", "").await.0, 200);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_requests_in_flight_finish() {
    let (l, c) = limits(|c| c.shutdown_grace_secs = 5);
    let mut r = start(l, &c, None).await;
    let addr = r.addr;
    let in_flight = tokio::spawn(async move { get(addr, "/wait", "").await });
    // An idle keep-alive connection is closed at once on shutdown.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let _ = idle.read(&mut buf).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let _ = r.stop.take().unwrap().send(());
    assert!(closed_within(&mut idle, Duration::from_secs(2)).await);
    assert_eq!(in_flight.await.unwrap(), (200, "waited".into()), "the request in flight finished");
    tokio::time::timeout(Duration::from_secs(5), r.done).await.expect("serve returned").unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert!(TcpStream::connect(addr).await.is_err(), "no longer listening");
}

#[tokio::test]
async fn shutdown_closes_what_is_left_after_the_grace_period() {
    let (l, c) = limits(|c| {
        c.shutdown_grace_secs = 1;
        c.write_timeout_secs = 600;
    });
    let mut r = start(l, &c, None).await;
    // A client that never reads its 64 MiB response holds its connection open.
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let _ = r.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(5), r.done).await.expect("serve returned").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
}

/// HTTP/2 by prior knowledge that stops after the preface is cut off at the header
/// timeout like any other silent connection.
#[tokio::test]
async fn an_http2_preface_without_a_request_is_closed_at_the_header_timeout() {
    let (l, c) = limits(|c| c.header_read_timeout_secs = 1);
    let r = start(l, &c, None).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    // An empty SETTINGS frame, then nothing.
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(4)).await);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

/// Garbage of every kind (random bytes, broken request lines, a truncated HTTP/2
/// preface, lone CRLFs, huge chunk sizes): each connection ends with an error answer or
/// a close, and the server goes on answering.
#[tokio::test]
async fn garbage_on_the_wire_never_takes_the_server_down() {
    let (l, c) = limits(|c| c.header_read_timeout_secs = 2);
    let r = start(l, &c, None).await;
    let mut inputs: Vec<Vec<u8>> = vec![
        b"\r\n\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n".to_vec(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        b"GET /\x00\x01 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nX: \xff\xfe\r\n\r\n".to_vec(),
    ];
    // And random bytes from a fixed seed (xorshift), some behind a valid request line.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..200 {
        let mut bytes = if i % 2 == 0 { b"GET / HTTP/1.1\r\n".to_vec() } else { Vec::new() };
        for _ in 0..(seed % 600) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push((seed >> 24) as u8);
        }
        inputs.push(bytes);
    }
    for input in &inputs {
        let mut s = TcpStream::connect(r.addr).await.unwrap();
        let _ = s.write_all(input).await;
        let _ = s.shutdown().await;
        let mut out = Vec::new();
        let answered = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        assert!(answered.is_ok(), "the server neither answered nor closed: {:?}", String::from_utf8_lossy(input));
        let (code, _) = parse(&out);
        assert!(code == 0 || code >= 400 || input.starts_with(b"GET / HTTP/1.1\r\n"), "{code} for {:?}", String::from_utf8_lossy(input));
    }
    assert_eq!(get(r.addr, "/healthz", "").await, (200, "ok".into()));
    assert_eq!(r.server.stats().snapshot().handler_panics, 0);
}

/// An HTTP/2 client that never opens its flow-control window again holds its response
/// with no blocked socket write at all. A streamed response is cut off at the write
/// timeout; one handed to HTTP/2 whole (queued inside h2, beyond our sight) at the idle
/// timeout, when the connection is told to go away and then closed.
#[tokio::test]
async fn an_http2_client_that_withholds_its_window_is_cut_off() {
    let (l, c) = limits(|c| {
        c.write_timeout_secs = 1;
        c.idle_timeout_secs = 2;
        c.header_read_timeout_secs = 1;
    });
    let r = start(l, &c, None).await;
    for (path, within) in [("/stream", Duration::from_secs(4)), ("/big", Duration::from_secs(6))] {
        let io = TokioIo::new(TcpStream::connect(r.addr).await.unwrap());
        let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(TokioExecutor::new(), io).await.unwrap();
        let conn = tokio::spawn(conn);
        let res = send.send_request(Request::get(format!("http://{}{path}", r.addr)).body(Full::default()).unwrap()).await.unwrap();
        assert_eq!(res.status(), 200);
        // The body is never read, so the client never sends WINDOW_UPDATE.
        let started = Instant::now();
        let ended = tokio::time::timeout(within, conn).await;
        assert!(ended.is_ok(), "{path}: the server kept the stalled HTTP/2 connection");
        assert!(started.elapsed() >= Duration::from_millis(900), "{path}: {:?}", started.elapsed());
        drop(res);
    }
    let stats = r.server.stats().snapshot();
    assert_eq!((stats.write_timeouts, stats.idle_closed), (1, 1), "{stats:?}");
}
