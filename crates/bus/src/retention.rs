//! The retention component: deletes events older than each tenant's retention.
//!
//! Policy (per tenant, with a platform default), component `retention`:
//!
//! ```json
//! { "events_days": 365 }
//! ```
//!
//! `events_days` is 1–3650. The component purges once at start, whenever a retention
//! policy changes (so a shortened retention takes effect within seconds of being saved
//! in the console), and every `interval_secs` (config, default 3600). Each purge that
//! deletes something publishes an Application Lifecycle event for the prefecture's
//! records.

use crate::{Component, ComponentCx, ComponentError};
use mamori_core::{Event, EventClass, PolicyValidator, Problem, Problems, Scope};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Smallest and largest retention accepted.
pub const DAYS: std::ops::RangeInclusive<u64> = 1..=3650;
/// Retention when no policy says otherwise.
pub const DEFAULT_DAYS: u32 = 365;

/// The retention component.
pub struct Retention;

/// Validates retention policies.
pub struct RetentionPolicy;

impl PolicyValidator for RetentionPolicy {
    fn component(&self) -> &'static str {
        "retention"
    }

    fn default_policy(&self) -> Value {
        json!({ "events_days": DEFAULT_DAYS })
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
}

fn days_of(policy: &Value) -> u32 {
    policy.get("events_days").and_then(Value::as_u64).filter(|d| DAYS.contains(d)).map(|d| d as u32).unwrap_or(DEFAULT_DAYS)
}

impl Component for Retention {
    fn name(&self) -> &'static str {
        "retention"
    }

    fn policy(&self) -> Option<Arc<dyn PolicyValidator>> {
        Some(Arc::new(RetentionPolicy))
    }

    fn check_config(&self, section: &Value) -> Result<(), Problems> {
        let mut problems = Problems::default();
        if let Some(obj) = section.as_object() {
            for (k, v) in obj {
                match (k.as_str(), v.as_u64()) {
                    ("interval_secs", Some(60..=86_400)) => {}
                    ("interval_secs", _) => {
                        problems.push(Problem::new("interval_secs", "invalid", "interval_secs は60〜86400で指定してください", "interval_secs must be 60-86400"))
                    }
                    _ => problems.push(Problem::new(k.clone(), "unknown_key", format!("不明な設定「{k}」"), format!("unknown key '{k}'"))),
                }
            }
        }
        problems.into_result(())
    }

    fn run(self: Arc<Self>, cx: ComponentCx) -> Pin<Box<dyn Future<Output = Result<(), ComponentError>> + Send>> {
        Box::pin(async move {
            let interval = Duration::from_secs(cx.config.get("interval_secs").and_then(Value::as_u64).unwrap_or(3600));
            let mut watch = cx.watch_policies();
            let mut shutdown = cx.shutdown.clone();
            let mut last: Option<crate::Policies> = None;
            loop {
                let policies = cx.policies().await?;
                if last.as_ref() != Some(&policies) {
                    purge(&cx, &policies).await?;
                    last = Some(policies);
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => { last = None; }
                    _ = watch.changed() => {}
                    _ = shutdown.changed() => {
                        if *shutdown.borrow() { return Ok(()); }
                    }
                }
            }
        })
    }
}

async fn purge(cx: &ComponentCx, policies: &crate::Policies) -> Result<(), ComponentError> {
    let tenants = cx.store.list_tenants(&Scope::All(cx.system_grant())).await?;
    let default_days = days_of(&policies.default);
    let per_tenant: HashMap<_, _> = tenants.iter().map(|t| (t.id, days_of(policies.for_tenant(t.id)))).collect();
    let now = mamori_core::time::now_ms();
    let report = cx.bus.events().purge(now, default_days, per_tenant).await.map_err(crate::BusError::from)?;
    tracing::info!(partitions_dropped = report.partitions_dropped, events_deleted = report.events_deleted, "retention purge");
    if (report.events_deleted > 0 || report.partitions_dropped > 0)
        && let Some(pref) = tenants.iter().find(|t| t.kind == mamori_core::TenantKind::Prefecture)
    {
        let mut e = Event::new(
            pref.id,
            now,
            EventClass::APPLICATION_LIFECYCLE,
            format!("保存期間を過ぎたイベント {} 件を削除しました（日別パーティション {} 個）", report.events_deleted, report.partitions_dropped),
            "mamori-retention",
        );
        e.fields.insert("unmapped".into(), json!({ "events_deleted": report.events_deleted, "partitions_dropped": report.partitions_dropped }));
        cx.bus.publish(vec![e]).await?;
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
        assert!(Retention.check_config(&json!({"interval_secs": 5})).is_err());
        assert!(Retention.check_config(&json!({"interval_secs": 600})).is_ok());
    }
}
