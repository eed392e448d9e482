//! A server for `scripts/bench-http`: answers every request with `ok\n`, on one
//! runtime thread, through `HttpServer` (or, with `--bare`, through hyper-util's auto
//! builder with no limits, to show what the hardening costs).
//!
//! Usage: bench_server ADDR [--tls CERT KEY] [--bare]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use std::convert::Infallible;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:18080".into());
    let bare = args.iter().any(|a| a == "--bare");
    let tls = args.iter().position(|a| a == "--tls").map(|i| {
        let store = mamori_http::tls::CertStore::load(args[i + 1].as_ref(), args[i + 2].as_ref()).expect("certificate");
        store.server_config(true).expect("tls config")
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        if bare {
            serve_bare(listener, tls).await;
        } else {
            // The load generator is one client.
            let config = mamori_http::HttpConfig { max_connections: 30_000, max_connections_per_client: 30_000, ..Default::default() };
            let server = mamori_http::HttpServer::new(config.limits(), config.trusted_proxies());
            let svc = tower::service_fn(|_req: Request<mamori_http::RequestBody>| async { Ok::<_, Infallible>(ok()) });
            server.serve(listener, tls, svc, std::future::pending::<()>()).await;
        }
    });
}

fn ok() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"ok\n")));
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    r
}

async fn serve_bare(listener: tokio::net::TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let builder = Arc::new(hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()));
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let _ = tcp.set_nodelay(true);
        let (builder, acceptor) = (builder.clone(), acceptor.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async { Ok::<_, Infallible>(ok()) });
            match acceptor {
                Some(a) => {
                    if let Ok(s) = a.accept(tcp).await {
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                }
            }
        });
    }
}
