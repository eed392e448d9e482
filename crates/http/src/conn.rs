//! What a connection's watchdog knows: requests in flight, when the last one ended, when
//! the bytes of the next request head began to arrive, and whether writes are blocked.
//! [`Tracked`] (the socket) and [`RequestGuard`] (one per request, held until its
//! response has been sent) keep it up to date; the server's per-connection loop reads it
//! to enforce the header, idle and write timeouts.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Shared between the socket, the requests and the watchdog of one connection. Times are
/// milliseconds since `epoch` plus one, so zero means "not set".
#[derive(Debug)]
pub(crate) struct ConnState {
    epoch: Instant,
    /// Requests whose response has not been sent in full yet.
    active: AtomicUsize,
    /// Requests handed to the application on this connection.
    requests: AtomicU64,
    /// When a request last ended (or the connection opened).
    last_done: AtomicU64,
    /// When the first byte arrived while no request was in flight (HTTP/1 only: the
    /// start of the next request head).
    head_started: AtomicU64,
    /// Since when a write has been waiting for the client to read.
    write_blocked: AtomicU64,
    /// HTTP/1: bytes that arrive between requests start a request head.
    pub(crate) watch_heads: std::sync::atomic::AtomicBool,
    /// HTTP/2 response bodies that gave hyper a frame and have not been asked for the
    /// next one: they wait for the client (flow control), not for the application.
    awaiting_client: AtomicUsize,
    /// When an HTTP/2 response body was last asked for a frame or gave one.
    body_progress: AtomicU64,
}

impl ConnState {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            active: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last_done: AtomicU64::new(1),
            head_started: AtomicU64::new(0),
            write_blocked: AtomicU64::new(0),
            watch_heads: std::sync::atomic::AtomicBool::new(true),
            awaiting_client: AtomicUsize::new(0),
            body_progress: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn at(&self, stamp: u64) -> Option<Instant> {
        (stamp != 0).then(|| self.epoch + Duration::from_millis(stamp - 1))
    }

    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Acquire)
    }

    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// When the last request ended, if none is in flight.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        if self.active() > 0 { None } else { self.at(self.last_done.load(Ordering::Acquire)) }
    }

    /// When the head of the next request began to arrive, if it is still arriving.
    pub(crate) fn head_started(&self) -> Option<Instant> {
        if self.active() > 0 { None } else { self.at(self.head_started.load(Ordering::Acquire)) }
    }

    pub(crate) fn write_blocked_since(&self) -> Option<Instant> {
        self.at(self.write_blocked.load(Ordering::Acquire))
    }

    /// Since when HTTP/2 responses have waited for the client to take more, if any do.
    /// A client can stall HTTP/2 responses by flow control alone (never opening its
    /// window), which no socket write shows.
    pub(crate) fn responses_stalled_since(&self) -> Option<Instant> {
        if self.awaiting_client.load(Ordering::Acquire) == 0 { None } else { self.at(self.body_progress.load(Ordering::Acquire)) }
    }

    // Neither the socket nor the requests wake the watchdog: on the hot path that would
    // be a task wake-up per request. The watchdog instead never sleeps longer than the
    // timeout of a deadline that could start meanwhile (see `Inner::drive`), and arms
    // the exact deadline at its next look.

    pub(crate) fn watching_heads(&self) -> bool {
        self.watch_heads.load(Ordering::Relaxed)
    }

    fn on_read(&self) {
        if self.watching_heads() && self.active() == 0 && self.head_started.load(Ordering::Relaxed) == 0 {
            let _ = self.head_started.compare_exchange(0, self.now(), Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn on_write(&self, blocked: bool) {
        if blocked {
            if self.write_blocked.load(Ordering::Relaxed) == 0 {
                let _ = self.write_blocked.compare_exchange(0, self.now(), Ordering::AcqRel, Ordering::Relaxed);
            }
        } else if self.write_blocked.load(Ordering::Relaxed) != 0 {
            self.write_blocked.store(0, Ordering::Release);
        }
    }
}

/// Holds one request's place until its response has been sent or dropped.
#[derive(Debug)]
pub(crate) struct RequestGuard {
    state: Arc<ConnState>,
    /// HTTP/2: whether this response's body progress is watched.
    watch_body: bool,
    /// Whether its body gave a frame and waits to be asked again.
    awaiting: bool,
}

impl RequestGuard {
    pub(crate) fn new(state: Arc<ConnState>, watch_body: bool) -> Self {
        state.active.fetch_add(1, Ordering::AcqRel);
        state.requests.fetch_add(1, Ordering::AcqRel);
        state.head_started.store(0, Ordering::Release);
        Self { state, watch_body, awaiting: false }
    }

    /// hyper asks the body for its next frame.
    pub(crate) fn asked(&mut self) {
        if !self.watch_body {
            return;
        }
        if self.awaiting {
            self.awaiting = false;
            self.state.awaiting_client.fetch_sub(1, Ordering::AcqRel);
        }
        self.state.body_progress.store(self.state.now(), Ordering::Release);
    }

    /// The body gave a frame; the next request for one depends on the client.
    pub(crate) fn gave(&mut self) {
        if self.watch_body && !self.awaiting {
            self.awaiting = true;
            self.state.body_progress.store(self.state.now(), Ordering::Release);
            self.state.awaiting_client.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.awaiting {
            self.state.awaiting_client.fetch_sub(1, Ordering::AcqRel);
        }
        let s = &self.state;
        s.last_done.store(s.now(), Ordering::Release);
        if s.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            s.head_started.store(0, Ordering::Release);
        }
    }
}

/// The socket of a connection, reporting reads and blocked writes to its state.
#[derive(Debug)]
pub(crate) struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnState>) -> Self {
        Self { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.state.on_write(r.is_pending());
        r
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.state.on_write(r.is_pending());
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Only written bytes count as progress: a socket's flush is ready at once even
        // while the client reads nothing.
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if r.is_pending() {
            self.state.on_write(true);
        }
        r
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_clears_the_head_and_its_end_starts_the_idle_time() {
        let s = ConnState::new();
        assert!(s.idle_since().is_some(), "a new connection is idle from its start");
        s.on_read();
        assert!(s.head_started().is_some());
        let mut g = RequestGuard::new(s.clone(), true);
        assert_eq!(s.requests(), 1);
        assert!(s.head_started().is_none() && s.idle_since().is_none());
        s.on_read();
        assert!(s.head_started().is_none(), "bytes during a request start no head");
        g.asked();
        g.gave();
        assert!(s.responses_stalled_since().is_some(), "a frame given waits for the client");
        g.asked();
        assert!(s.responses_stalled_since().is_none(), "asked again: the client took it");
        g.gave();
        drop(g);
        assert!(s.responses_stalled_since().is_none());
        assert!(s.idle_since().is_some() && s.head_started().is_none());
        s.on_write(true);
        let blocked = s.write_blocked_since();
        assert!(blocked.is_some());
        s.on_write(true);
        assert_eq!(s.write_blocked_since(), blocked, "the first block counts");
        s.on_write(false);
        assert!(s.write_blocked_since().is_none());
    }
}
