//! The retention component: deletes events older than each tenant's retention.
//!
//! Policy (per tenant, with a platform default), component `retention`:
//!
//! ```json
//! { "events_days": 365 }
//! ```
//!
//! `events_days` is 1–3650, and never below the platform minimum (F18: logs kept for
//! audits and investigations), 365 days unless an operator admin sets another
//! (`Store::put_policy_minimums`): a tenant cannot purge its own evidence by saving a
//! short retention. The component purges once at start, whenever a retention
//! policy changes (so a shortened retention takes effect within seconds of being saved
//! in the console), and every `interval_secs` (config, default 3600). Each purge that
//! deletes something emits [`RetentionEvent::Purged`] (an Application Lifecycle event of
//! the prefecture) for the records.
//!
//! Placement: replicated. Each node keeps its own embedded event store, so each node
//! purges its own.

use crate::{BoxFuture, BuildCx, BuildError, Component, ComponentConfig, ComponentError, ComponentEvent, PolicySnapshot, RunCx, Service};
use mamori_core::{Event, EventClass, PolicyValidator, Problem, Problems, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Smallest and largest retention accepted.
pub const DAYS: std::ops::RangeInclusive<u64> = 1..=3650;
/// Retention when no policy says otherwise.
pub const DEFAULT_DAYS: u32 = 365;
/// The platform minimum when operators set none: a year, as municipal log retention
/// rules usually ask.
pub const DEFAULT_MIN_DAYS: u32 = 365;

/// The retention component.
pub struct Retention;

/// `[components.retention]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// 保存期間を過ぎたイベントを削除する間隔（秒、60〜86400）。ポリシー変更時はすぐに削除します。
    /// Seconds between purges (60-86400); a policy change purges at once.
    pub interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { interval_secs: 3600 }
    }
}

impl ComponentConfig for RetentionConfig {
    fn validate(&self) -> Result<(), Problems> {
        if !(60..=86_400).contains(&self.interval_secs) {
            return Err(Problem::new("interval_secs", "invalid", "interval_secs は60〜86400で指定してください", "interval_secs must be 60-86400").into());
        }
        Ok(())
    }
}

/// Events of the retention component.
#[derive(Clone, Debug, PartialEq)]
pub enum RetentionEvent {
    /// Events past their retention were deleted.
    Purged {
        /// The prefecture, whose records these are.
        tenant: TenantId,
        /// When (Unix ms).
        at: i64,
        /// Events deleted from partitions that stay.
        events_deleted: u64,
        /// Whole day partitions dropped.
        partitions_dropped: u64,
    },
}

impl ComponentEvent for RetentionEvent {
    fn kind(&self) -> &'static str {
        match self {
            RetentionEvent::Purged { .. } => "purged",
        }
    }

    fn into_event(self) -> Event {
        match self {
            RetentionEvent::Purged { tenant, at, events_deleted, partitions_dropped } => {
                let mut e = Event::new(
                    tenant,
                    at,
                    EventClass::APPLICATION_LIFECYCLE,
                    format!("保存期間を過ぎたイベント {events_deleted} 件を削除しました（日別パーティション {partitions_dropped} 個）"),
                    "mamori-retention",
                );
                e.fields.insert("unmapped".into(), json!({ "events_deleted": events_deleted, "partitions_dropped": partitions_dropped }));
                e
            }
        }
    }
}

/// Validates retention policies.
pub struct RetentionPolicy;

impl PolicyValidator for RetentionPolicy {
    fn component(&self) -> &'static str {
        "retention"
    }

    fn default_policy(&self) -> Value {
        json!({ "events_days": DEFAULT_DAYS })
    }

    fn schema(&self) -> Option<Value> {
        Some(schemars::schema_for!(RetentionDoc).to_value())
    }

    fn validate(&self, doc: &Value) -> Result<(), Problems> {
        let mut problems = Problems::default();
        let Some(obj) = doc.as_object() else {
            return Err(Problem::new("", "not_object", "ポリシーは JSON オブジェクトで指定してください", "the policy must be a JSON object").into());
        };
        for key in obj.keys().filter(|k| k.as_str() != "events_days") {
            problems.push(Problem::new(
                key.clone(),
                "unknown_key",
                format!("「{key}」は保存期間ポリシーの項目ではありません"),
                format!("'{key}' is not a retention policy key"),
            ));
        }
        match obj.get("events_days").and_then(Value::as_u64) {
            Some(d) if DAYS.contains(&d) => {}
            _ => problems.push(Problem::new(
                "events_days",
                "invalid_days",
                "events_days（イベント保存日数）は1〜3650の整数で指定してください",
                "events_days must be an integer 1-3650",
            )),
        }
        problems.into_result(())
    }

    fn default_minimums(&self) -> Option<Value> {
        Some(json!({ "events_days": DEFAULT_MIN_DAYS }))
    }

    fn check_minimums(&self, doc: &Value, minimums: &Value) -> Result<(), Problems> {
        let min = days_of_or(minimums, DEFAULT_MIN_DAYS);
        match doc.get("events_days").and_then(Value::as_u64) {
            Some(d) if d < u64::from(min) => Err(Problem::new(
                "events_days",
                "below_minimum",
                format!("イベントの保存日数は、県が定めた最低日数（{min}日）より短くできません。監査や事案調査に必要な記録を守るための設定です"),
                format!("events_days cannot be shorter than the platform minimum of {min} days, which keeps the records audits and investigations need"),
            )
            .into()),
            _ => Ok(()),
        }
    }
}

fn days_of_or(policy: &Value, fallback: u32) -> u32 {
    policy.get("events_days").and_then(Value::as_u64).filter(|d| DAYS.contains(d)).map(|d| d as u32).unwrap_or(fallback)
}

impl Component for Retention {
    type Config = RetentionConfig;

    fn name(&self) -> &'static str {
        "retention"
    }

    fn policy(&self) -> Option<Arc<dyn PolicyValidator>> {
        Some(Arc::new(RetentionPolicy))
    }

    async fn build(&self, config: RetentionConfig, _cx: BuildCx) -> Result<Arc<dyn Service>, BuildError> {
        Ok(Arc::new(RetentionService { interval: Duration::from_secs(config.interval_secs) }))
    }
}

struct RetentionService {
    interval: Duration,
}

impl Service for RetentionService {
    fn run(self: Arc<Self>, cx: RunCx) -> BoxFuture<Result<(), ComponentError>> {
        Box::pin(async move {
            let mut feed = cx.policy_feed::<RetentionDoc>().await?;
            let mut stop = cx.stop.clone();
            loop {
                purge(&cx, &feed.snapshot()).await?;
                tokio::select! {
                    _ = tokio::time::sleep(self.interval) => {}
                    changed = feed.changed() => { changed.map_err(|e| ComponentError::Other(e.to_string()))?; }
                    _ = crate::stopped(&mut stop) => return Ok(()),
                }
            }
        })
    }
}

/// A retention policy, as the component reads it (and as its form shows it).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RetentionDoc {
    /// イベントの保存日数
    /// Days events are kept
    /// 1〜3650日。県が定める最低値より短くはできません。
    /// 1-3650 days, never shorter than the platform minimum.
    #[schemars(range(min = 1, max = 3650))]
    events_days: u32,
}

async fn purge(cx: &RunCx, policies: &PolicySnapshot<RetentionDoc>) -> Result<(), ComponentError> {
    let tenants = cx.store.list_tenants(&cx.system_grant().scope()).await?;
    // Policies saved before the minimum was raised are held to it here too.
    let min_days = cx.store.policy_minimums(&RetentionPolicy).await?.map(|m| days_of_or(&m, DEFAULT_MIN_DAYS)).unwrap_or(DEFAULT_MIN_DAYS);
    let default_days = policies.default_policy().events_days.max(min_days);
    let per_tenant: HashMap<_, _> = tenants.iter().map(|t| (t.id, policies.for_tenant(t.id).events_days.max(min_days))).collect();
    let now = mamori_core::time::now_ms();
    let report = cx.bus().events().purge(cx.system_grant(), now, default_days, per_tenant).await.map_err(mamori_bus::BusError::from)?;
    tracing::info!(partitions_dropped = report.partitions_dropped, events_deleted = report.events_deleted, "retention purge");
    if (report.events_deleted > 0 || report.partitions_dropped > 0)
        && let Some(pref) = tenants.iter().find(|t| t.kind == mamori_core::TenantKind::Prefecture)
    {
        let event = RetentionEvent::Purged { tenant: pref.id, at: now, events_deleted: report.events_deleted, partitions_dropped: report.partitions_dropped };
        cx.events.emit([event]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_validation_lists_every_problem() {
        assert!(RetentionPolicy.validate(&json!({"events_days": 30})).is_ok());
        let p = RetentionPolicy.validate(&json!({"events_days": 0, "foo": 1})).unwrap_err();
        assert_eq!(p.0.len(), 2);
        assert!(RetentionPolicy.validate(&json!("x")).is_err());
        assert!(RetentionPolicy.validate(&json!({"events_days": "30"})).is_err());
        assert!(crate::read_section::<RetentionConfig>(&json!({"interval_secs": 5})).is_err());
        let p = RetentionPolicy.check_minimums(&json!({"events_days": 30}), &json!({"events_days": 365})).unwrap_err();
        assert_eq!(p.0[0].code, "below_minimum");
        assert!(p.0[0].ja.contains("365日"), "{p}");
        assert!(RetentionPolicy.check_minimums(&json!({"events_days": 365}), &json!({"events_days": 365})).is_ok());
        assert_eq!(crate::read_section::<RetentionConfig>(&json!({"interval_secs": 600})).unwrap().interval_secs, 600);
    }
}
