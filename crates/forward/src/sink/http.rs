//! Splunk HTTP Event Collector and the Elasticsearch / OpenSearch bulk API, over one
//! kept-alive HTTP/1.1 connection pool (reqwest on the platform's rustls).
//!
//! - HEC (`/services/collector/event`): the batch is one request of concatenated
//!   events. 200 takes all. A 400 naming `invalid-event-number` took the events before
//!   that one and refused it; the rest are sent again.
//! - Bulk (`/_bulk`): one `create` per event with the event id as `_id`. Each item's
//!   status decides: 2xx taken, 409 already there (a repeat: taken), 429 and 5xx sent
//!   again, any other refused with the receiver's reason.
//! - Both: 413 halves the batch (one event alone that is too large is refused);
//!   401/403, 429, 5xx and network errors send the whole batch again after a pause.

use super::{Delivery, SendError};
use crate::config::{Destination, Kind};
use std::sync::Arc;
use std::time::Duration;

/// Largest answer read from the receiver.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// A HEC or bulk receiver.
pub struct HttpSink {
    client: reqwest::Client,
    kind: Kind,
    url: String,
    auth: Option<String>,
    /// Events per request; halved by 413.
    max_items: usize,
}

impl HttpSink {
    pub(crate) fn new(d: &Destination, tls: Arc<rustls::ClientConfig>, secret: Option<String>) -> Result<Self, SendError> {
        let kind = d.kind.unwrap_or(Kind::SplunkHec);
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(Duration::from_secs(d.timeout_secs))
            .connect_timeout(Duration::from_secs(d.timeout_secs.min(10)))
            .pool_idle_timeout(Duration::from_secs(50))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SendError(format!("HTTP client: {e}")))?;
        let base = d.url.trim_end_matches('/');
        let has_path = base.split_once("://").is_some_and(|(_, rest)| rest.contains('/'));
        let url = match (kind, has_path) {
            (_, true) => d.url.clone(),
            (Kind::Elasticsearch, false) => format!("{base}/_bulk"),
            (_, false) => format!("{base}/services/collector/event"),
        };
        use base64::Engine;
        let auth = match (kind, secret) {
            (_, None) => None,
            (Kind::Elasticsearch, Some(s)) if !d.api_key_secret.is_empty() => Some(format!("ApiKey {s}")),
            (Kind::Elasticsearch, Some(s)) => Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{s}", d.user)))),
            (_, Some(s)) => Some(format!("Splunk {s}")),
        };
        Ok(Self { client, kind, url, auth, max_items: d.batch_events.max(1) })
    }

    /// Sends `items` (HEC events or bulk action pairs) in requests of at most
    /// `max_items`.
    pub(crate) async fn send(&mut self, items: &[&[u8]]) -> Result<Delivery, SendError> {
        let mut delivery = Delivery::default();
        let mut at = 0;
        while at < items.len() {
            let n = self.max_items.min(items.len() - at);
            let chunk = &items[at..at + n];
            match self.request(chunk).await {
                Ok(d) => {
                    delivery.rejected.extend(d.rejected.into_iter().map(|(i, why)| (at + i, why)));
                    delivery.retry.extend(d.retry.into_iter().map(|i| at + i));
                    at += n;
                }
                Err(Oversized) if n > 1 => {
                    self.max_items = (n / 2).max(1);
                    tracing::warn!(url = %self.url, events = self.max_items, "receiver said the request is too large; sending fewer events per request");
                }
                Err(Oversized) => {
                    delivery.rejected.push((at, "too large for the receiver (413)".into()));
                    at += 1;
                }
                Err(Failed(e)) if at == 0 => return Err(e),
                Err(Failed(e)) => {
                    tracing::warn!(url = %self.url, error = %e, "request failed; the rest of the batch goes again");
                    delivery.retry.extend(at..items.len());
                    break;
                }
            }
        }
        Ok(delivery)
    }

    async fn request(&self, chunk: &[&[u8]]) -> Result<Delivery, Outcome> {
        let mut body = Vec::with_capacity(chunk.iter().map(|c| c.len()).sum());
        for c in chunk {
            body.extend_from_slice(c);
        }
        let content_type = if self.kind == Kind::Elasticsearch { "application/x-ndjson" } else { "application/json" };
        let mut req = self.client.post(&self.url).header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        if let Some(a) = &self.auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        let mut resp = req.send().await.map_err(|e| Failed(SendError(format!("{}: {}", self.url, error_chain(&e)))))?;
        let status = resp.status().as_u16();
        let mut answer = Vec::new();
        while let Some(piece) = resp.chunk().await.map_err(|e| Failed(SendError(format!("{}: reading the answer: {e}", self.url))))? {
            if answer.len() + piece.len() > MAX_RESPONSE_BYTES {
                return Err(Failed(SendError(format!("{}: answer larger than {MAX_RESPONSE_BYTES} bytes", self.url))));
            }
            answer.extend_from_slice(&piece);
        }
        let text = || String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
        match status {
            413 => Err(Oversized),
            200..=299 if self.kind == Kind::Elasticsearch => bulk_items(&answer, chunk.len()).map_err(|e| Failed(SendError(format!("{}: {e}", self.url)))),
            200..=299 => Ok(Delivery::default()),
            400 if self.kind == Kind::SplunkHec => Ok(hec_invalid(&answer, chunk.len())),
            401 | 403 => Err(Failed(SendError(format!("{}: refused the credentials ({status}): {}", self.url, text())))),
            _ => Err(Failed(SendError(format!("{}: answered {status}: {}", self.url, text())))),
        }
    }
}

/// Why a request did not get through.
enum Outcome {
    /// 413: fewer events per request.
    Oversized,
    /// Anything else.
    Failed(SendError),
}
use Outcome::{Failed, Oversized};

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Reads a bulk answer: which items were taken, refused or are to go again.
pub fn bulk_items(answer: &[u8], sent: usize) -> Result<Delivery, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        errors: bool,
        #[serde(default)]
        items: Vec<serde_json::Map<String, serde_json::Value>>,
    }
    let a: Answer = serde_json::from_slice(answer).map_err(|e| format!("the bulk answer is not JSON: {e}"))?;
    if !a.errors {
        return Ok(Delivery::default());
    }
    if a.items.len() != sent {
        return Err(format!("the bulk answer has {} items for {sent} sent", a.items.len()));
    }
    let mut d = Delivery::default();
    for (i, item) in a.items.iter().enumerate() {
        let Some(result) = item.values().next() else {
            d.retry.push(i);
            continue;
        };
        let status = result.get("status").and_then(|s| s.as_u64()).unwrap_or(0);
        match status {
            200..=299 | 409 => {}
            429 | 500.. | 0 => d.retry.push(i),
            _ => {
                let e = result.get("error");
                let kind = e.and_then(|e| e.get("type")).and_then(|t| t.as_str()).unwrap_or("error");
                let reason = e.and_then(|e| e.get("reason")).and_then(|t| t.as_str()).unwrap_or("");
                let reason: String = reason.chars().take(300).collect();
                d.rejected.push((i, format!("{status} {kind}: {reason}")));
            }
        }
    }
    Ok(d)
}

/// Reads a HEC 400: the events before `invalid-event-number` were taken, that one is
/// refused, the rest go again. Without the number nothing is known to be taken: the
/// first is refused (the request as a whole was bad) and the rest go again.
pub fn hec_invalid(answer: &[u8], sent: usize) -> Delivery {
    let v: serde_json::Value = serde_json::from_slice(answer).unwrap_or_default();
    let bad = v.get("invalid-event-number").and_then(|n| n.as_u64()).map(|n| n as usize).filter(|n| *n < sent).unwrap_or(0);
    let why = v.get("text").and_then(|t| t.as_str()).unwrap_or("refused").chars().take(300).collect::<String>();
    Delivery { rejected: vec![(bad, format!("400: {why}"))], retry: (bad + 1..sent).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_answers_decide_item_by_item() {
        let ok = br#"{"took":3,"errors":false,"items":[{"create":{"status":201}}]}"#;
        assert_eq!(bulk_items(ok, 1).unwrap(), Delivery::default());
        let mixed = br#"{"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [time]"}}},
            {"create":{"status":503}}]}"#;
        let d = bulk_items(mixed, 5).unwrap();
        assert_eq!(d.retry, vec![2, 4]);
        assert_eq!(d.rejected, vec![(3, "400 mapper_parsing_exception: failed to parse field [time]".to_string())]);
        assert!(bulk_items(b"<html>", 1).is_err());
        assert!(bulk_items(br#"{"errors":true,"items":[]}"#, 2).is_err(), "items must match what was sent");
    }

    #[test]
    fn hec_400_takes_the_events_before_the_bad_one() {
        let d = hec_invalid(br#"{"text":"Invalid data format","code":6,"invalid-event-number":2}"#, 5);
        assert_eq!(d.rejected, vec![(2, "400: Invalid data format".to_string())]);
        assert_eq!(d.retry, vec![3, 4]);
        let d = hec_invalid(b"garbage", 3);
        assert_eq!((d.rejected.len(), d.retry), (1, vec![1, 2]));
    }
}
