//! The event log over NATS JetStream, for split nodes: intake nodes publish, indexing
//! nodes consume, each at its own pace.
//!
//! # Layout
//! Events are spread over `partitions` streams by tenant (`{stream}_{k}`, subjects
//! `{subject}.{k}.{tenant}`; one tenant is always in one partition, so a tenant's
//! events keep their order and one indexer holds all of them). A stream's sequence is
//! the log offset + 1, as in the local log, so cursors and the event store's replay
//! check work the same. Each event is published with its id as `Nats-Msg-Id`: a
//! publish retried after a lost acknowledgement is dropped by JetStream as a
//! duplicate instead of being stored twice.
//!
//! # Acknowledgement
//! A publish returns once JetStream acknowledged every event of the batch (stored in
//! the stream, on disk by the file store; with `replicas` > 1 on a quorum of servers).
//!
//! # Progress
//! An indexing node keeps its checkpoint on its own disk (it belongs to its event
//! store) and reports it to the stream `{stream}_PROGRESS` (subject
//! `{subject}.progress.{k}`, the last message of each kept), where intake nodes read it:
//! they hold publishers back when a partition's indexer is too far behind, and show the
//! lag.

use crate::BusError;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::{FutureExt, StreamExt};
use mamori_core::Event;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How a node reaches JetStream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JetStreamOptions {
    /// Server URLs (`nats://host:4222`, `tls://host:4222`), several for a cluster.
    pub urls: Vec<String>,
    /// The streams' name; partition k is the stream `{stream}_{k}`.
    pub stream: String,
    /// The subjects' prefix; partition k holds `{subject}.{k}.>`.
    pub subject: String,
    /// Partitions (streams) the events are spread over by tenant. Every node of an
    /// installation must agree on it.
    pub partitions: u32,
    /// The partition this node indexes; None: an intake node only.
    pub index_partition: Option<u32>,
    /// How long a stream keeps events (indexed or not): the longest an indexer may
    /// be down without losing events.
    pub max_age: Duration,
    /// Bytes a stream may hold (0: no limit); when full, publishes are refused (the
    /// oldest events are never dropped to make room).
    pub max_bytes: u64,
    /// Copies of each stream in a JetStream cluster (1, 3 or 5).
    pub replicas: usize,
    /// A token, or a user's name and password, when the server asks for one.
    pub auth: NatsAuth,
    /// CA certificates (PEM) to check the server's certificate; set, TLS is required.
    pub ca_file: Option<PathBuf>,
    /// This node's name, sent to the server (shown by its monitoring).
    pub node: String,
}

/// How a node authenticates to the NATS server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials.
    #[default]
    None,
    /// A token.
    Token(String),
    /// A user and password.
    User {
        /// The user.
        name: String,
        /// The password.
        password: String,
    },
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        JetStreamOptions {
            urls: vec!["nats://127.0.0.1:4222".into()],
            stream: "MAMORI_EVENTS".into(),
            subject: "mamori.events".into(),
            partitions: 1,
            index_partition: Some(0),
            max_age: Duration::from_secs(7 * 86_400),
            max_bytes: 0,
            replicas: 1,
            auth: NatsAuth::None,
            ca_file: None,
            node: String::new(),
        }
    }
}

impl JetStreamOptions {
    /// The problems of these options, for the config check at start.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.urls.is_empty() {
            out.push("[events.jetstream] urls: name at least one NATS server".into());
        }
        for url in &self.urls {
            if !is_loopback_url(url) && self.ca_file.is_none() && !url.starts_with("tls://") {
                out.push(format!("[events.jetstream] urls: {url} is not on loopback: use tls:// and ca_file (TLS outside loopback)"));
            }
        }
        let name_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok(&self.stream) {
            out.push(format!("[events.jetstream] stream: {:?} may hold only letters, digits, _ and -", self.stream));
        }
        if self.subject.is_empty() || self.subject.split('.').any(|t| !name_ok(t)) {
            out.push(format!("[events.jetstream] subject: {:?} must be dot-separated tokens of letters, digits, _ and -", self.subject));
        }
        if !(1..=1024).contains(&self.partitions) {
            out.push("[events.jetstream] partitions: 1 to 1024".into());
        }
        if let Some(k) = self.index_partition
            && k >= self.partitions
        {
            out.push(format!("[events.jetstream] index_partition: {k} is not below partitions ({})", self.partitions));
        }
        if ![1, 3, 5].contains(&self.replicas) {
            out.push("[events.jetstream] replicas: 1, 3 or 5".into());
        }
        if self.max_age < Duration::from_secs(3600) {
            out.push("[events.jetstream] max_age_hours: at least 1".into());
        }
        out
    }

    fn stream_name(&self, k: u32) -> String {
        format!("{}_{k}", self.stream)
    }
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host_port = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let host = if let Some(v6) = host_port.strip_prefix('[') { v6.split(']').next().unwrap_or("") } else { host_port.split(':').next().unwrap_or("") };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The partition of a tenant's events: FNV-1a of its id, modulo the partitions.
pub fn partition_of(tenant: &str, partitions: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in tenant.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h % partitions.max(1)
}

fn nats_error(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Transport(format!("JetStream {what}: {e}"))
}

/// The JetStream side of a bus: cheap to clone.
#[derive(Clone)]
pub(crate) struct JetStream {
    inner: Arc<Inner>,
}

struct Inner {
    options: JetStreamOptions,
    context: jetstream::Context,
    streams: Vec<stream::Stream>,
    /// The stream of the indexers' progress reports.
    progress: stream::Stream,
    /// Per partition: the offset after the last event known acknowledged.
    ends: Vec<watch::Sender<u64>>,
    /// Per partition: the offset up to which its indexer has stored events.
    indexed: Vec<watch::Sender<u64>>,
    /// Per partition: bytes in the stream (last seen).
    bytes: Vec<std::sync::atomic::AtomicU64>,
}

impl JetStream {
    /// Connects, makes (or updates) the streams and the progress bucket, and starts
    /// following the streams' ends and the indexers' progress.
    pub(crate) async fn connect(options: JetStreamOptions) -> Result<Self, BusError> {
        let problems = options.problems();
        if !problems.is_empty() {
            return Err(BusError::Transport(problems.join("; ")));
        }
        let mut connect = async_nats::ConnectOptions::new()
            .name(format!("mamori {}", options.node))
            .connection_timeout(Duration::from_secs(5))
            // Unbounded reconnects: publishes fail meanwhile (503 to the sender).
            .max_reconnects(None::<usize>);
        connect = match &options.auth {
            NatsAuth::None => connect,
            NatsAuth::Token(t) => connect.token(t.clone()),
            NatsAuth::User { name, password } => connect.user_and_password(name.clone(), password.clone()),
        };
        if let Some(ca) = &options.ca_file {
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        let urls: Vec<async_nats::ServerAddr> =
            options.urls.iter().map(|u| u.parse().map_err(|e| nats_error("server URL", format!("{u}: {e}")))).collect::<Result<_, _>>()?;
        let client = connect.connect(urls).await.map_err(|e| nats_error("connect", e))?;
        let context = jetstream::new(client);
        let mut streams = Vec::new();
        for k in 0..options.partitions {
            let config = stream::Config {
                name: options.stream_name(k),
                subjects: vec![format!("{}.{k}.>", options.subject)],
                storage: stream::StorageType::File,
                retention: stream::RetentionPolicy::Limits,
                discard: stream::DiscardPolicy::New,
                max_age: options.max_age,
                max_bytes: if options.max_bytes == 0 { -1 } else { i64::try_from(options.max_bytes).unwrap_or(i64::MAX) },
                num_replicas: options.replicas,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            };
            let s = ensure_stream(&context, config).await?;
            streams.push(s);
        }
        let progress = ensure_stream(
            &context,
            stream::Config {
                name: format!("{}_PROGRESS", options.stream),
                subjects: vec![format!("{}.progress.*", options.subject)],
                storage: stream::StorageType::File,
                max_messages_per_subject: 1,
                num_replicas: options.replicas,
                ..Default::default()
            },
        )
        .await?;
        let mut ends = Vec::new();
        let mut indexed = Vec::new();
        let mut bytes = Vec::new();
        for (k, s) in streams.iter().enumerate() {
            let info = s.get_info().await.map_err(|e| nats_error("stream info", e))?;
            ends.push(watch::channel(info.state.last_sequence).0);
            bytes.push(std::sync::atomic::AtomicU64::new(info.state.bytes));
            indexed.push(watch::channel(last_progress(&progress, &options.subject, k as u32).await.unwrap_or(0)).0);
        }
        let js = JetStream { inner: Arc::new(Inner { options, context, streams, progress, ends, indexed, bytes }) };
        tokio::spawn(follow(Arc::downgrade(&js.inner)));
        Ok(js)
    }

    pub(crate) fn options(&self) -> &JetStreamOptions {
        &self.inner.options
    }

    /// Publishes `docs` (the OCSF documents of `events`, in order) and returns once
    /// JetStream acknowledged all of them.
    pub(crate) async fn append(&self, events: &[Event], docs: Vec<String>) -> Result<(), BusError> {
        let o = &self.inner.options;
        let mut acks = Vec::with_capacity(docs.len());
        for (event, doc) in events.iter().zip(docs) {
            let tenant = event.tenant.to_string();
            let k = partition_of(&tenant, o.partitions);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
            let ack = self
                .inner
                .context
                .publish_with_headers(format!("{}.{k}.{tenant}", o.subject), headers, doc.into_bytes().into())
                .await
                .map_err(|e| nats_error("publish", e))?;
            acks.push((k, ack));
        }
        for (k, ack) in acks {
            let ack = ack.await.map_err(|e| nats_error("publish", e))?;
            if let Some(end) = self.inner.ends.get(k as usize) {
                raise(end, ack.sequence);
            }
        }
        Ok(())
    }

    /// Partition `k`'s end as last seen.
    pub(crate) fn end(&self, k: u32) -> u64 {
        self.inner.ends.get(k as usize).map(|e| *e.borrow()).unwrap_or(0)
    }

    /// The partitions' ends and indexed offsets.
    pub(crate) fn ends(&self) -> Vec<watch::Receiver<u64>> {
        self.inner.ends.iter().map(watch::Sender::subscribe).collect()
    }

    pub(crate) fn indexed(&self) -> Vec<watch::Receiver<u64>> {
        self.inner.indexed.iter().map(watch::Sender::subscribe).collect()
    }

    /// Each partition's end as the server has it now.
    pub(crate) async fn fresh_ends(&self) -> Result<Vec<u64>, BusError> {
        let mut out = Vec::new();
        for (k, s) in self.inner.streams.iter().enumerate() {
            let info = s.get_info().await.map_err(|e| nats_error("stream info", e))?;
            if let Some(end) = self.inner.ends.get(k) {
                raise(end, info.state.last_sequence);
            }
            out.push(info.state.last_sequence);
        }
        Ok(out)
    }

    /// Bytes in the streams as the server has them now.
    pub(crate) async fn fresh_bytes(&self) -> Result<u64, BusError> {
        let mut total = 0;
        for s in &self.inner.streams {
            total += s.get_info().await.map_err(|e| nats_error("stream info", e))?.state.bytes;
        }
        Ok(total)
    }

    /// Removes this bus's streams and their progress (benchmark runs only).
    pub(crate) async fn delete_streams(&self) -> Result<(), BusError> {
        let o = &self.inner.options;
        for name in (0..o.partitions).map(|k| o.stream_name(k)).chain([format!("{}_PROGRESS", o.stream)]) {
            self.inner.context.delete_stream(&name).await.map_err(|e| nats_error("stream delete", e))?;
        }
        Ok(())
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.inner.bytes.iter().map(|b| b.load(std::sync::atomic::Ordering::Relaxed)).sum()
    }

    /// Records that partition `k` is stored up to `offset` (here and in the bucket).
    pub(crate) async fn report(&self, k: u32, offset: u64) {
        if let Some(i) = self.inner.indexed.get(k as usize) {
            i.send_replace(offset);
        }
        let subject = format!("{}.progress.{k}", self.inner.options.subject);
        let sent = match self.inner.context.publish(subject, offset.to_string().into()).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, partition = k, "event indexer: cannot report progress to JetStream");
        }
    }

    /// A reader of partition `k` from `offset` on.
    /// (`k` is below `partitions`, which the options check; past it, the last.)
    pub(crate) fn reader(&self, k: u32, offset: u64) -> Reader {
        let k = (k as usize).min(self.inner.streams.len().saturating_sub(1));
        Reader { stream: self.inner.streams[k].clone(), next: offset, messages: None, end: self.inner.ends[k].subscribe(), stalls: 0 }
    }
}

/// Moves a partition's end forward to `to` (never back: acknowledgements and stream
/// infos arrive in any order).
fn raise(end: &watch::Sender<u64>, to: u64) {
    end.send_if_modified(|e| {
        let moved = to > *e;
        *e = (*e).max(to);
        moved
    });
}

/// Makes a stream, or brings an existing one to `config`.
async fn ensure_stream(context: &jetstream::Context, config: stream::Config) -> Result<stream::Stream, BusError> {
    let name = config.name.clone();
    match context.get_stream(&name).await {
        Ok(_) => {
            context.update_stream(config).await.map_err(|e| nats_error("stream update", e))?;
            context.get_stream(&name).await.map_err(|e| nats_error("stream", e))
        }
        Err(_) => context.get_or_create_stream(config).await.map_err(|e| nats_error("stream create", e)),
    }
}

/// The last progress partition `k`'s indexer reported (None: none yet, or unreadable).
async fn last_progress(progress: &stream::Stream, subject: &str, k: u32) -> Option<u64> {
    let m = progress.get_last_raw_message_by_subject(&format!("{subject}.progress.{k}")).await.ok()?;
    std::str::from_utf8(&m.payload).ok()?.trim().parse().ok()
}

/// Follows the streams' ends and bytes and the indexers' progress (twice a second),
/// until the bus is gone.
async fn follow(inner: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Some(i) = inner.upgrade() else { return };
        for (k, s) in i.streams.iter().enumerate() {
            if let Ok(info) = s.get_info().await {
                raise(&i.ends[k], info.state.last_sequence);
                i.bytes[k].store(info.state.bytes, std::sync::atomic::Ordering::Relaxed);
            }
            if i.options.index_partition != Some(k as u32)
                && let Some(at) = last_progress(&i.progress, &i.options.subject, k as u32).await
            {
                crate::set(&i.indexed[k], at);
            }
        }
    }
}

/// Reads one partition by offset (stream sequence − 1) through an ordered consumer.
pub(crate) struct Reader {
    stream: stream::Stream,
    next: u64,
    messages: Option<consumer::pull::Ordered>,
    /// The partition's end, to notice a consumer that delivers nothing while events
    /// wait (its server restarted and forgot it): it is then made again.
    end: watch::Receiver<u64>,
    stalls: u32,
}

impl Reader {
    pub(crate) fn position(&self) -> u64 {
        self.next
    }

    /// The partition's end as last seen.
    pub(crate) fn end(&self) -> u64 {
        *self.end.borrow()
    }

    pub(crate) fn seek(&mut self, offset: u64) {
        self.next = offset;
        self.messages = None;
    }

    /// Returns up to `max` records from the position on: those already delivered, or
    /// waiting up to `wait` for the first.
    pub(crate) async fn read(&mut self, max: usize, wait: Duration) -> Result<Vec<(u64, Vec<u8>)>, BusError> {
        if self.messages.is_none() {
            let stream = &self.stream;
            let deliver_policy =
                if self.next == 0 { consumer::DeliverPolicy::All } else { consumer::DeliverPolicy::ByStartSequence { start_sequence: self.next + 1 } };
            let c =
                stream.create_consumer(consumer::pull::OrderedConfig { deliver_policy, ..Default::default() }).await.map_err(|e| nats_error("consumer", e))?;
            self.messages = Some(c.messages().await.map_err(|e| nats_error("consumer", e))?);
        }
        let Some(messages) = self.messages.as_mut() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let first = match tokio::time::timeout(wait, messages.next()).await {
            Err(_) => {
                if self.end() > self.next {
                    self.stalls += 1;
                    if self.stalls >= 2 {
                        tracing::info!(at = self.next, "JetStream reader: the consumer delivers nothing while events wait; making it again");
                        self.messages = None;
                        self.stalls = 0;
                    }
                }
                return Ok(out);
            }
            Ok(m) => m,
        };
        self.stalls = 0;
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                None => {
                    self.messages = None;
                    break;
                }
                Some(Err(e)) => {
                    self.messages = None;
                    if out.is_empty() {
                        return Err(nats_error("read", e));
                    }
                    break;
                }
                Some(Ok(m)) => {
                    let seq = m.info().map_err(|e| nats_error("message info", e))?.stream_sequence;
                    let offset = seq.saturating_sub(1);
                    if offset >= self.next {
                        if offset > self.next {
                            // Only age (max_age) removes events from these streams.
                            tracing::error!(
                                lost = offset - self.next,
                                from = self.next,
                                "JetStream reader: events expired from the stream before they were read (the reader was down longer than max_age_hours)"
                            );
                        }
                        self.next = offset + 1;
                        out.push((offset, m.message.payload.to_vec()));
                    }
                }
            }
            if out.len() >= max {
                break;
            }
            // What is delivered or on its way: the consumer pulls in batches, so while
            // the stream is known to hold more, wait for them (a full batch makes
            // fuller blocks); at the end, a pause of a few milliseconds ends the read.
            let behind = *self.end.borrow() > self.next;
            next = match messages.next().now_or_never() {
                Some(m) => Some(m),
                None => tokio::time::timeout(Duration::from_millis(if behind { 100 } else { 5 }), messages.next()).await.ok(),
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        assert!(is_loopback_url("nats://127.0.0.1:4222"));
        assert!(is_loopback_url("nats://user:pw@localhost:4222"));
        assert!(is_loopback_url("[::1]:4222"));
        assert!(!is_loopback_url("nats://10.0.0.5:4222"));
        assert!(!is_loopback_url("nats://127.0.0.1.example.jp:4222"));
    }

    #[test]
    fn options_are_checked() {
        assert!(JetStreamOptions::default().problems().is_empty());
        let bad = JetStreamOptions {
            urls: vec!["nats://10.0.0.5:4222".into()],
            stream: "A.B".into(),
            partitions: 2,
            index_partition: Some(2),
            replicas: 2,
            ..Default::default()
        };
        let p = bad.problems();
        assert_eq!(p.len(), 4, "{p:?}");
        let tls = JetStreamOptions { urls: vec!["tls://10.0.0.5:4222".into()], ..Default::default() };
        assert!(tls.problems().is_empty());
    }

    #[test]
    fn a_tenant_stays_in_one_partition() {
        let t = "0190a1b2-0000-7000-8000-000000000001";
        assert_eq!(partition_of(t, 4), partition_of(t, 4));
        assert_eq!(partition_of(t, 1), 0);
        let spread: std::collections::HashSet<u32> = (0..200).map(|i| partition_of(&format!("tenant-{i}"), 4)).collect();
        assert_eq!(spread.len(), 4);
    }
}
