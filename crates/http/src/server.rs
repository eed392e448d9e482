//! The server: the accept loop with its connection caps, and one task per connection
//! that runs hyper (HTTP/1.1 or HTTP/2, chosen by ALPN under TLS and by the client's
//! preface on plain TCP) beside a watchdog enforcing the timeouts.
//!
//! ```text
//! accept ─► caps (total, per client) ─► [TLS handshake] ─► hyper ─► service
//!                                           ▲                 ▲
//!                           watchdog: first request deadline, header, idle and
//!                           write timeouts, drain on shutdown
//! ```

use crate::body::{BoxError, RequestBody, Sending};
use crate::client::{ClientAddr, ClientKey, ConnectionInfo, TrustedProxies};
use crate::config::Limits;
use crate::conn::{ConnState, RequestGuard, Tracked};
use crate::stats::ServerStats;
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{Either, Full};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::sleep_until;
use tower::{Service, ServiceExt};

/// The response body type the server writes: the application's, or its own 500 after a
/// handler panicked.
pub(crate) type ServerBody<B> = Either<Sending<B>, Full<Bytes>>;

/// The future of one request's answer, boxed: its type must be nameable for the
/// connection future to be provably `Send`.
type Answer<B> = std::pin::Pin<Box<dyn Future<Output = Result<Response<ServerBody<B>>, std::convert::Infallible>> + Send>>;

/// An HTTP server with one set of limits, counters and connection caps, for any number
/// of listeners.
#[derive(Clone, Debug)]
pub struct HttpServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: Limits,
    proxies: TrustedProxies,
    stats: Arc<ServerStats>,
    caps: Caps,
    /// One builder for every connection: with upgrades, hyper-util recognises HTTP/1 and
    /// HTTP/2 itself (its `http1_only`/`http2_only` do nothing there), so ALPN cannot
    /// bind a connection to a builder of its own.
    builder: auto::Builder<StreamExecutor>,
    streams: StreamExecutor,
    warned: RateLimited,
}

impl HttpServer {
    /// A server enforcing `limits`, believing client addresses only from `proxies`.
    pub fn new(limits: Limits, proxies: TrustedProxies) -> Self {
        Self::with_stats(limits, proxies, Arc::default())
    }

    /// Like [`HttpServer::new`], counting into `stats` (so `/metrics` can hold them
    /// before the server exists).
    pub fn with_stats(limits: Limits, proxies: TrustedProxies, stats: Arc<ServerStats>) -> Self {
        let limits = limits.sanitized();
        let streams = StreamExecutor::default();
        let builder = builder(&limits, streams.clone());
        let inner = Inner { limits, proxies, stats, caps: Caps::default(), builder, streams, warned: RateLimited::default() };
        Self { inner: Arc::new(inner) }
    }

    /// The server's counters.
    pub fn stats(&self) -> Arc<ServerStats> {
        self.inner.stats.clone()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Serves `listener` until `shutdown` completes, then stops accepting, lets open
    /// connections finish their requests for up to `shutdown_grace`, and closes the
    /// rest. With `tls`, every connection is TLS (ALPN picks HTTP/2 or HTTP/1.1);
    /// without, HTTP/1.1 and HTTP/2 with prior knowledge are both accepted.
    ///
    /// Each request reaches `service` with a [`RequestBody`] and, in its extensions, a
    /// [`ClientAddr`] and a [`ConnectionInfo`]. HTTP/2 requests get a `Host` header from
    /// their `:authority` when they have none, so applications see one shape.
    pub async fn serve<S, B>(&self, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, service: S, shutdown: impl Future<Output = ()>)
    where
        S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let (drain_tx, drain_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut shutdown = pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    self.reaped(done);
                    continue;
                }
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        self.accept_failed(&e).await;
                        continue;
                    }
                },
            };
            let Some(slot) = self.admit(peer) else { continue };
            let inner = self.inner.clone();
            let (acceptor, service, drain) = (acceptor.clone(), service.clone(), drain_rx.clone());
            tasks.spawn(async move { inner.connection(tcp, peer, slot, acceptor, service, drain).await });
        }
        drop(listener);
        let _ = drain_tx.send(true);
        let deadline = tokio::time::sleep(self.inner.limits.shutdown_grace);
        let mut deadline = pin!(deadline);
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    Some(d) => self.reaped(d),
                    None => break,
                },
                _ = &mut deadline => {
                    tracing::info!(open = tasks.len(), "shutdown grace over; closing the remaining connections");
                    tasks.shutdown().await;
                    break;
                }
            }
        }
        // HTTP/2 handlers run as tasks of their own: they get what is left of the grace.
        self.inner.streams.drained(&mut deadline).await;
    }

    fn reaped(&self, done: Result<(), tokio::task::JoinError>) {
        if let Err(e) = done
            && e.is_panic()
        {
            tracing::error!("a connection task panicked");
        }
    }

    async fn accept_failed(&self, e: &std::io::Error) {
        ServerStats::add(&self.inner.stats.accept_errors);
        // Out of file descriptors or memory: pause instead of spinning on the error
        // (Linux error numbers).
        const EMFILE: i32 = 24;
        const ENFILE: i32 = 23;
        const ENOBUFS: i32 = 105;
        const ENOMEM: i32 = 12;
        let exhausted = matches!(e.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM));
        if self.inner.warned.allow(if exhausted { 0 } else { 1 }) {
            tracing::warn!(error = %e, "accept failed");
        }
        if exhausted {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Takes a place for a new connection, or refuses it when a cap is reached. A
    /// refused connection is closed at once: answering it would cost what the cap saves.
    fn admit(&self, peer: SocketAddr) -> Option<Slot> {
        let inner = &self.inner;
        let ip = peer.ip().to_canonical();
        let exempt = inner.proxies.trusts(ip);
        match inner.caps.take(&inner.limits, ClientKey::of(ip), exempt) {
            Ok(slot) => {
                ServerStats::add(&inner.stats.connections_accepted);
                inner.stats.connections_open.fetch_add(1, Ordering::Relaxed);
                Some(Slot { caps: self.inner.clone(), key: slot })
            }
            Err(Refusal::Total) => {
                ServerStats::add(&inner.stats.refused_total_cap);
                if inner.warned.allow(2) {
                    tracing::warn!(limit = inner.limits.max_connections, "connection refused: the server is at max_connections");
                }
                None
            }
            Err(Refusal::Client) => {
                ServerStats::add(&inner.stats.refused_client_cap);
                if inner.warned.allow(3) {
                    tracing::warn!(client = %ip, limit = inner.limits.max_connections_per_client, "connection refused: the client is at max_connections_per_client");
                }
                None
            }
        }
    }
}

fn builder(limits: &Limits, executor: StreamExecutor) -> auto::Builder<StreamExecutor> {
    let mut b = auto::Builder::new(executor);
    b.http1()
        .timer(TokioTimer::new())
        // The watchdog times request heads itself: hyper's timer would also cut idle
        // keep-alive connections at the header timeout.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(Some(20))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

impl Inner {
    async fn connection<S, B>(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        _slot: Slot,
        acceptor: Option<tokio_rustls::TlsAcceptor>,
        service: S,
        drain: watch::Receiver<bool>,
    ) where
        S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(peer);
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let state = ConnState::new();
        let io = Tracked::new(tcp, state.clone());
        let first_deadline = state.epoch() + self.limits.header_read_timeout;
        let mut info = ConnectionInfo { local, peer, tls: acceptor.is_some(), server_name: None, http2: false };
        match acceptor {
            Some(acceptor) => {
                let stream = match tokio::time::timeout_at(first_deadline.into(), acceptor.accept(io)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        ServerStats::add(&self.stats.tls_handshake_failed);
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        ServerStats::add(&self.stats.header_timeouts);
                        return;
                    }
                };
                let (_, session) = stream.get_ref();
                info.http2 = session.alpn_protocol() == Some(b"h2");
                info.server_name = session.server_name().map(Arc::from);
                self.drive(stream, state, info, service, drain).await;
            }
            None => self.drive(io, state, info, service, drain).await,
        }
    }

    /// Runs hyper on one connection beside its watchdog.
    async fn drive<I, S, B>(&self, io: I, state: Arc<ConnState>, info: ConnectionInfo, service: S, mut drain: watch::Receiver<bool>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // On plain TCP the protocol is known once the first request arrives; until then
        // bytes may be a request head of either, and both are timed from the accept.
        let http2_known = info.http2;
        let peer = info.peer;
        state.watch_heads.store(!http2_known, Ordering::Relaxed);
        let svc = {
            let state = state.clone();
            let limits = self.limits.clone();
            let proxies = self.proxies.clone();
            let stats = self.stats.clone();
            hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let is_h2 = req.version() == http::Version::HTTP_2;
                let guard = RequestGuard::new(state.clone(), is_h2);
                ServerStats::add(&stats.requests);
                // The protocol the client speaks decides, not what ALPN said: hyper-util
                // recognises either on any connection.
                state.watch_heads.store(!is_h2, Ordering::Relaxed);
                let (mut parts, body) = req.into_parts();
                if is_h2
                    && !parts.headers.contains_key(http::header::HOST)
                    && let Some(authority) = parts.uri.authority()
                    && let Ok(v) = http::HeaderValue::from_str(authority.as_str())
                {
                    parts.headers.insert(http::header::HOST, v);
                }
                let client: ClientAddr = proxies.resolve(info.peer, &parts.headers);
                let mut conn_info = info.clone(); // the server name is shared, not copied
                conn_info.http2 = is_h2;
                parts.extensions.insert(client);
                parts.extensions.insert(conn_info);
                let req = Request::from_parts(parts, RequestBody::new(body, limits.body_read_timeout, limits.max_body_bytes));
                let call = service.clone().oneshot(req);
                let stats = stats.clone();
                let answer: Answer<B> = Box::pin(async move {
                    match AssertUnwindSafe(call).catch_unwind().await {
                        Ok(Ok(res)) => Ok(res.map(|inner| Either::Left(Sending { inner, guard }))),
                        Ok(Err(e)) => {
                            let e: BoxError = e.into();
                            tracing::error!(peer = %client.peer, error = %e, "a request handler failed; answered 500");
                            Ok(internal_error())
                        }
                        Err(_) => {
                            ServerStats::add(&stats.handler_panics);
                            tracing::error!(peer = %client.peer, "a request handler panicked; answered 500");
                            Ok(internal_error())
                        }
                    }
                });
                answer
            })
        };
        let conn = self.builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
        let mut conn = pin!(conn);
        let limits = &self.limits;
        let mut closing: Option<Instant> = None;
        let mut draining = *drain.borrow();
        if draining {
            conn.as_mut().graceful_shutdown();
            closing = Some(Instant::now() + limits.shutdown_grace);
        }
        loop {
            // The next moment something may be due.
            let now = Instant::now();
            let mut next = now + limits.idle_timeout;
            let mut due: Option<Due> = None;
            let mut consider = |at: Instant, what: Due| {
                if at <= now {
                    due = due.or(Some(what));
                }
                if at < next {
                    next = at;
                }
            };
            if state.requests() == 0 {
                consider(state.epoch() + limits.header_read_timeout, Due::HeaderTimeout);
            }
            if let Some(at) = state.head_started() {
                consider(at + limits.header_read_timeout, Due::HeaderTimeout);
            }
            if let Some(at) = state.write_blocked_since() {
                consider(at + limits.write_timeout, Due::WriteTimeout);
            }
            if let Some(at) = state.responses_stalled_since() {
                consider(at + limits.write_timeout, Due::WriteTimeout);
            }
            if closing.is_none()
                && let Some(at) = state.idle_since()
            {
                consider(at + limits.idle_timeout, Due::Idle);
            }
            if let Some(at) = closing {
                consider(at, Due::Close);
            }
            // Deadlines that may start while we sleep: look again within their timeout.
            if state.watching_heads() && state.head_started().is_none() {
                next = next.min(now + limits.header_read_timeout);
            }
            // A blocked write or a stalled response may start any time (hyper may drop a
            // response body before its last bytes are written, so even with no request
            // in flight).
            next = next.min(now + limits.write_timeout);
            match due {
                Some(Due::HeaderTimeout) => {
                    ServerStats::add(&self.stats.header_timeouts);
                    tracing::debug!(%peer, "request head not complete in time; closing");
                    return;
                }
                Some(Due::WriteTimeout) => {
                    ServerStats::add(&self.stats.write_timeouts);
                    tracing::debug!(%peer, "client stopped reading its response; closing");
                    return;
                }
                Some(Due::Close) => return,
                Some(Due::Idle) => {
                    ServerStats::add(&self.stats.idle_closed);
                    conn.as_mut().graceful_shutdown();
                    // An idle HTTP/1 connection closes at once; HTTP/2 says GOAWAY first.
                    closing = Some(Instant::now() + limits.header_read_timeout);
                    continue;
                }
                None => {}
            }
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = sleep_until(next.into()) => {}
                changed = drain.changed(), if !draining => {
                    draining = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + limits.shutdown_grace);
                    }
                }
            }
        }
    }
}

/// The answer when a handler fails or panics: 500, and the connection closes.
fn internal_error<B>() -> Response<ServerBody<B>> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::from_static(b"internal server error\n"))));
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    res.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    res
}

#[derive(Clone, Copy, Debug)]
enum Due {
    HeaderTimeout,
    WriteTimeout,
    Idle,
    Close,
}

/// Open connections, in all and per client.
#[derive(Debug, Default)]
struct Caps {
    total: AtomicUsize,
    per_client: Mutex<HashMap<ClientKey, usize>>,
}

enum Refusal {
    Total,
    Client,
}

impl Caps {
    /// Takes a place; `exempt` clients (trusted proxies) count only toward the total.
    fn take(&self, limits: &Limits, key: ClientKey, exempt: bool) -> Result<Option<ClientKey>, Refusal> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        if exempt {
            return Ok(None);
        }
        let mut map = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key).or_insert(0);
        if *n >= limits.max_connections_per_client {
            drop(map);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Client);
        }
        *n += 1;
        Ok(Some(key))
    }

    fn give_back(&self, key: Option<ClientKey>) {
        if let Some(key) = key {
            let mut map = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
        self.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's place under the caps, given back when the connection ends.
struct Slot {
    caps: Arc<Inner>,
    key: Option<ClientKey>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.caps.caps.give_back(self.key);
        self.caps.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// At most one warning of each kind every ten seconds, so a flood does not flood the log.
#[derive(Debug, Default)]
struct RateLimited {
    last: [AtomicU64; 4],
}

impl RateLimited {
    fn allow(&self, kind: usize) -> bool {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let now = EPOCH.get_or_init(Instant::now).elapsed().as_secs() + 10;
        let slot = &self.last[kind % 4];
        let last = slot.load(Ordering::Relaxed);
        now >= last + 10 && slot.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// Runs HTTP/2 stream handlers as tasks, counted, so a shutdown can wait for them.
#[derive(Clone, Debug, Default)]
struct StreamExecutor {
    running: Arc<Running>,
}

#[derive(Debug, Default)]
struct Running {
    count: AtomicUsize,
    none_left: tokio::sync::Notify,
}

struct RunningGuard(Arc<Running>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.running.count.fetch_add(1, Ordering::AcqRel);
        let guard = RunningGuard(self.running.clone());
        tokio::spawn(async move {
            let _running = guard;
            fut.await;
        });
    }
}

impl StreamExecutor {
    /// Waits until no stream task runs, or `deadline`.
    async fn drained(&self, deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>) {
        loop {
            let none_left = self.running.none_left.notified();
            let mut none_left = pin!(none_left);
            none_left.as_mut().enable();
            let left = self.running.count.load(Ordering::Acquire);
            if left == 0 {
                return;
            }
            tokio::select! {
                _ = none_left => {}
                _ = deadline.as_mut() => {
                    tracing::info!(left, "shutdown grace over; HTTP/2 handlers still running are left to end");
                    return;
                }
            }
        }
    }
}
