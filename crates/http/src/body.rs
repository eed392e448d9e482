//! Bodies: the request body the application reads ([`RequestBody`]: a size limit and a
//! timeout between pieces), and the response wrapper that tells the connection when a
//! response has been sent in full.

use crate::conn::RequestGuard;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Limited;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::Sleep;

/// Boxed error of bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body stopped arriving for longer than `body_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no part of the request body for {0:?}")]
pub struct BodyTimeout(pub Duration);

pin_project! {
    /// The body of a request as the application sees it: reading more than the server's
    /// `max_body_bytes` fails with [`http_body_util::LengthLimitError`], and a client
    /// that stops sending for `body_read_timeout` fails the read with [`BodyTimeout`].
    pub struct RequestBody {
        #[pin]
        inner: Limited<Timed<hyper::body::Incoming>>,
    }
}

impl RequestBody {
    pub(crate) fn new(incoming: hyper::body::Incoming, timeout: Duration, limit: Option<usize>) -> Self {
        Self { inner: Limited::new(Timed { inner: incoming, timeout, sleep: None }, limit.unwrap_or(usize::MAX)) }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody").finish_non_exhaustive()
    }
}

pin_project! {
    /// A body whose next frame must come within `timeout` of being asked for.
    pub(crate) struct Timed<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        sleep: Option<Pin<Box<Sleep>>>,
    }
}

impl<B> Body for Timed<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.sleep = None;
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = *this.timeout;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(sleep.as_mut().poll(cx));
                *this.sleep = None;
                Poll::Ready(Some(Err(Box::new(BodyTimeout(timeout)))))
            }
        }
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A response body that holds its request's place on the connection until it has
    /// been sent (or dropped), so a long download is never taken for an idle connection.
    pub(crate) struct Sending<B> {
        #[pin]
        pub(crate) inner: B,
        pub(crate) guard: RequestGuard,
    }
}

impl<B> Body for Sending<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        this.guard.asked();
        let frame = this.inner.poll_frame(cx);
        if matches!(frame, Poll::Ready(Some(Ok(_)))) {
            this.guard.gave();
        }
        frame.map(|f| f.map(|r| r.map_err(Into::into)))
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
