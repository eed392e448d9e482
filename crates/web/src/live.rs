//! Live refresh of a page's fragment by server-sent events.
//!
//! A page marks a fragment `data-live="URL"` ([`attr`]); `/static/live.js`, a small
//! same-origin script (the console's policy is `script-src 'self'`), opens an
//! `EventSource` on that URL and puts each `update` the server sends in place of the
//! fragment. Without the script, or when the stream is refused, the page is the same,
//! only static. The stream ([`stream`]) renders the fragment again every few seconds
//! and sends it only when it changed. It reads the store, never a node's memory, so it
//! shows what a component on another node did.
//!
//! Each round checks the session again (read-only: watching a page is not activity,
//! so an idle session still expires) and renders with the account's rights as they
//! are now; a session that ended, or an account disabled, ends the stream.

use crate::{AppError, Authed};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How often a live fragment is rendered again.
pub const EVERY: Duration = Duration::from_secs(3);

/// Live streams one process serves at most; beyond it a page stays static (the
/// stream answers 503 and the script gives up).
pub const MAX_STREAMS: usize = 256;

static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Returns how many live streams are open in this process.
pub fn open_streams() -> usize {
    OPEN.load(Ordering::Relaxed)
}

/// One of the [`MAX_STREAMS`]; given back when the stream ends.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_STREAMS).then_some(n + 1)).ok().map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Returns the `data-live` URL of a fragment: `path` with the page's own query, so
/// the stream renders what the page shows (its filters, sort and page).
pub fn url(path: &str, query: Option<&str>) -> String {
    match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

struct Round<F> {
    authed: Authed,
    render: F,
    /// Hash of the fragment last sent; none before the first.
    last: Option<u64>,
    every: Duration,
    _slot: Slot,
}

/// Answers a live stream of the fragment `render` makes: now, then every `every`
/// whenever it changed. A request without a session (an API token) is refused: live
/// views are for the console's pages.
pub fn stream<F, Fut>(authed: Authed, every: Duration, render: F) -> Response
where
    F: Fn(Authed) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Markup, AppError>> + Send + 'static,
{
    if authed.session.is_none() {
        return AppError::Forbidden.into_response();
    }
    let Some(slot) = Slot::take() else {
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "60")], "too many live views").into_response();
    };
    let round = Round { authed, render, last: None, every, _slot: slot };
    let events = futures_util::stream::unfold(round, |mut r| async move {
        loop {
            // The first fragment goes at once.
            if r.last.is_some() {
                tokio::time::sleep(r.every).await;
            }
            r.authed = recheck(&r.authed).await?;
            let html = match (r.render)(r.authed.clone()).await {
                Ok(m) => m.into_string(),
                Err(e) => {
                    // The script reconnects; a lasting fault shows on the next full load.
                    tracing::debug!(error = ?e, "live view could not be rendered; ending its stream");
                    return None;
                }
            };
            let mut h = std::collections::hash_map::DefaultHasher::new();
            html.hash(&mut h);
            let h = h.finish();
            if r.last != Some(h) {
                r.last = Some(h);
                let event = Event::default().event("update").retry(r.every * 2).data(html);
                return Some((Ok::<_, Infallible>(event), r));
            }
        }
    });
    let mut res = Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response();
    // No proxy may hold the stream back (nginx buffers responses by default).
    res.headers_mut().insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    res
}

/// The same session, read again without touching it: `None` once it ended or its
/// account can no longer log in.
async fn recheck(a: &Authed) -> Option<Authed> {
    let session = a.session.as_ref()?;
    let now = mamori_core::time::now_ms();
    match a.site.store().authenticate_session(&session.id_hash, now, a.principal.ip().map(str::to_string)).await {
        Ok(Some(fresh)) => Some(Authed { principal: fresh.principal, user: fresh.user, session: fresh.session, lang: a.lang, site: a.site.clone() }),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(error = %e, "live view could not check its session; ending its stream");
            None
        }
    }
}
