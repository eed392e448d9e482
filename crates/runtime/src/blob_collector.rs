//! The blob collector: ends expired blob references and deletes blobs nothing holds.
//!
//! Placement: singleton. Blob records live in the shared config store, so one node
//! collects for all. Every `interval_secs` (config, default 300) it collects in batches
//! of `batch` until a batch comes back short, and counts what it did in
//! `mamori_blobs_references_expired_total` and `mamori_blobs_deleted_total`.
//!
//! Requirements: ends quarantine periods (F44, F45) and archive retention (F51) by
//! reference expiry; evidence on hold (F24) is kept.

use crate::{BoxFuture, BuildCx, BuildError, Component, ComponentConfig, ComponentError, Placement, RunCx, Service};
use mamori_core::{Problem, Problems};
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The blob collector component.
pub struct BlobCollector;

/// `[components.blob-collector]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BlobCollectorConfig {
    /// 期限切れの参照と、どこからも参照されないファイルを削除する間隔（秒、10〜86400）。
    /// Seconds between collections (10-86400).
    pub interval_secs: u64,
    /// 一度に削除するファイルの数（1〜100000）。
    /// Blobs deleted per batch (1-100000).
    pub batch: i64,
}

impl Default for BlobCollectorConfig {
    fn default() -> Self {
        Self { interval_secs: 300, batch: 1000 }
    }
}

impl ComponentConfig for BlobCollectorConfig {
    fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::default();
        if !(10..=86_400).contains(&self.interval_secs) {
            p.push(Problem::new("interval_secs", "invalid", "interval_secs は10〜86400で指定してください", "interval_secs must be 10-86400"));
        }
        if !(1..=100_000).contains(&self.batch) {
            p.push(Problem::new("batch", "invalid", "batch は1〜100000で指定してください", "batch must be 1-100000"));
        }
        p.into_result(())
    }
}

impl Component for BlobCollector {
    type Config = BlobCollectorConfig;

    fn name(&self) -> &'static str {
        "blob-collector"
    }

    fn placement(&self) -> Placement {
        Placement::Singleton
    }

    async fn build(&self, config: BlobCollectorConfig, cx: BuildCx) -> Result<Arc<dyn Service>, BuildError> {
        let expired = Counter::default();
        let deleted = Counter::default();
        cx.metrics.register("blobs", "references_expired", "Blob references ended by their expiry", expired.clone());
        cx.metrics.register("blobs", "deleted", "Blobs deleted because nothing held them", deleted.clone());
        Ok(Arc::new(CollectorService { interval: Duration::from_secs(config.interval_secs), batch: config.batch, expired, deleted }))
    }
}

struct CollectorService {
    interval: Duration,
    batch: i64,
    expired: Counter,
    deleted: Counter,
}

impl Service for CollectorService {
    fn run(self: Arc<Self>, cx: RunCx) -> BoxFuture<Result<(), ComponentError>> {
        Box::pin(async move {
            let mut stop = cx.stop.clone();
            let grant = cx.system_grant();
            loop {
                loop {
                    let (expired, deleted) =
                        cx.vault.blobs.collect(grant, self.batch).await.map_err(|e| ComponentError::Other(format!("blob collection: {e}")))?;
                    self.expired.inc_by(expired);
                    self.deleted.inc_by(deleted);
                    if deleted > 0 || expired > 0 {
                        tracing::info!(expired, deleted, "blob collection");
                    }
                    if (deleted as i64) < self.batch {
                        break;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.interval) => {}
                    _ = crate::stopped(&mut stop) => return Ok(()),
                }
            }
        })
    }
}
