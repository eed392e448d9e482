//! The retention component: deletes events older than each tenant's retention.
//!
//! Policy (per tenant, with a platform default), component `retention`:
//!
//! ```json
//! { "events_days": 365, "classes": [{ "class_uid": 4001, "days": 90 }, { "class_uid": 3002, "days": 730 }] }
//! ```
//!
//! `events_days` is 1–3650, and never below the platform minimum (F18: logs kept for
//! audits and investigations), 365 days unless an operator admin sets another
//! (`Store::put_policy_minimums`): a tenant cannot purge its own evidence by saving a
//! short retention. `classes` gives an event class (OCSF `class_uid`) days of its own,
//! shorter or longer (firewall traffic shorter than authentication); each is held to
//! the minimum of its class when the minimums name it (`{"events_days": 365,
//! "classes": [{"class_uid": 4001, "days": 90}]}`), else to `events_days` of the
//! minimums. A tenant's policy replaces the platform default's whole. The component purges once at start, whenever a retention
//! policy changes (so a shortened retention takes effect within seconds of being saved
//! in the console), and every `interval_secs` (config, default 3600). Each purge that
//! deletes something emits [`RetentionEvent::Purged`] (an Application Lifecycle event of
//! the prefecture) for the records.
//!
//! After each purge it seals the day partitions that ended more than a day ago and
//! grew since their last seal, recording each seal's digest in the audit log
//! (`events.seal`; `mamori events verify` checks both).
//!
//! Placement: replicated. Each node keeps its own embedded event store, so each node
//! purges and seals its own.

use crate::{BoxFuture, BuildCx, BuildError, Component, ComponentConfig, ComponentError, ComponentEvent, PolicySnapshot, RunCx, Service};
use mamori_core::{Event, EventClass, PolicyValidator, Problem, Problems, TenantId};
use mamori_store::events::{RetentionRules, TenantRetention};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Smallest and largest retention accepted.
pub const DAYS: std::ops::RangeInclusive<u64> = 1..=3650;
/// A day partition is sealed this long after its day ended (late events come first;
/// later ones are covered by the next seal).
pub const SEAL_AFTER_MS: i64 = 86_400_000;
/// Most classes one policy may name.
pub const MAX_CLASSES: usize = 64;
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
        for key in obj.keys().filter(|k| !matches!(k.as_str(), "events_days" | "classes")) {
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
        validate_classes(obj.get("classes"), &mut problems);
        problems.into_result(())
    }

    fn default_minimums(&self) -> Option<Value> {
        Some(json!({ "events_days": DEFAULT_MIN_DAYS }))
    }

    fn check_minimums(&self, doc: &Value, minimums: &Value) -> Result<(), Problems> {
        let min = days_of_or(minimums, DEFAULT_MIN_DAYS);
        let mut problems = Problems::default();
        if let Some(d) = doc.get("events_days").and_then(Value::as_u64)
            && d < u64::from(min)
        {
            problems.push(Problem::new(
                "events_days",
                "below_minimum",
                format!("イベントの保存日数は、県が定めた最低日数（{min}日）より短くできません。監査や事案調査に必要な記録を守るための設定です"),
                format!("events_days cannot be shorter than the platform minimum of {min} days, which keeps the records audits and investigations need"),
            ));
        }
        let class_min = classes_of(minimums);
        for (i, c) in classes_of(doc).iter().enumerate() {
            let floor = floor_of(&class_min, c.class_uid, min);
            if c.days < floor {
                problems.push(Problem::new(
                    format!("classes.{i}.days"),
                    "below_minimum",
                    format!("クラス {} のイベント保存日数は、県が定めた最低日数（{floor}日）より短くできません", c.class_uid),
                    format!("days of class {} cannot be shorter than the platform minimum of {floor} days", c.class_uid),
                ));
            }
        }
        problems.into_result(())
    }
}

/// Checks a `classes` list: class numbers, days, no class twice.
fn validate_classes(v: Option<&Value>, problems: &mut Problems) {
    let Some(v) = v else { return };
    let Some(list) = v.as_array() else {
        problems.push(Problem::new(
            "classes",
            "invalid_classes",
            "classes はクラスごとの保存日数の一覧で指定してください",
            "classes must be a list of per-class days",
        ));
        return;
    };
    if list.len() > MAX_CLASSES {
        problems.push(Problem::new("classes", "too_many", format!("classes は{MAX_CLASSES}件までです"), format!("at most {MAX_CLASSES} classes")));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, item) in list.iter().enumerate() {
        match serde_json::from_value::<ClassDays>(item.clone()) {
            Ok(c) if !(1000..=99_999).contains(&c.class_uid) => problems.push(Problem::new(
                format!("classes.{i}.class_uid"),
                "invalid_class",
                "class_uid は OCSF のクラス番号（1000〜99999）で指定してください",
                "class_uid must be an OCSF class number (1000-99999)",
            )),
            Ok(c) if !DAYS.contains(&u64::from(c.days)) => problems.push(Problem::new(
                format!("classes.{i}.days"),
                "invalid_days",
                "保存日数は1〜3650の整数で指定してください",
                "days must be an integer 1-3650",
            )),
            Ok(c) if !seen.insert(c.class_uid) => problems.push(Problem::new(
                format!("classes.{i}.class_uid"),
                "duplicate_class",
                format!("クラス {} が二度指定されています", c.class_uid),
                format!("class {} is given twice", c.class_uid),
            )),
            Ok(_) => {}
            Err(_) => problems.push(Problem::new(
                format!("classes.{i}"),
                "invalid_class_days",
                "classes の各項目は class_uid と days で指定してください",
                "each of classes needs class_uid and days",
            )),
        }
    }
}

/// The minimum days of a class: its own in the minimums, else the minimum of all.
fn floor_of(class_min: &[ClassDays], class: u32, min_days: u32) -> u32 {
    class_min.iter().find(|m| m.class_uid == class).map(|m| m.days).unwrap_or(min_days)
}

/// The valid entries of a document's `classes`.
fn classes_of(doc: &Value) -> Vec<ClassDays> {
    doc.get("classes").and_then(Value::as_array).map(|l| l.iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect()).unwrap_or_default()
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
    /// イベントの種類ごとの保存日数
    /// Days per event class
    /// 通信ログは短く、認証ログは長くなど、OCSF クラスごとに保存日数を変えられます。指定のないクラスは上の日数です。
    /// Keep a class shorter or longer (network traffic shorter, authentication longer); other classes keep the days above.
    #[serde(default)]
    #[schemars(length(max = 64))]
    classes: Vec<ClassDays>,
}

/// One class's retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ClassDays {
    /// クラス番号（OCSF class_uid）
    /// Class number (OCSF class_uid)
    /// 例: 4001 ネットワーク通信、4002 HTTP、3002 認証、4009 メール。
    /// E.g. 4001 network activity, 4002 HTTP, 3002 authentication, 4009 e-mail.
    #[schemars(range(min = 1000, max = 99999))]
    class_uid: u32,
    /// 保存日数
    /// Days kept
    #[schemars(range(min = 1, max = 3650))]
    days: u32,
}

impl RetentionDoc {
    /// This document's rule, each figure held to its minimum.
    fn rule(&self, min_days: u32, class_min: &[ClassDays]) -> TenantRetention {
        let mut classes: HashMap<u32, u32> = self.classes.iter().map(|c| (c.class_uid, c.days.max(floor_of(class_min, c.class_uid, min_days)))).collect();
        let days = self.events_days.max(min_days);
        // A class the minimums name and this policy does not keeps at least its minimum.
        for m in class_min {
            classes.entry(m.class_uid).or_insert(days.max(m.days));
        }
        TenantRetention { days, classes }
    }
}

async fn purge(cx: &RunCx, policies: &PolicySnapshot<RetentionDoc>) -> Result<(), ComponentError> {
    let tenants = cx.store.list_tenants(&cx.system_grant().scope()).await?;
    // Policies saved before the minimum was raised are held to it here too.
    let minimums = cx.store.policy_minimums(&RetentionPolicy).await?;
    let min_days = minimums.as_ref().map(|m| days_of_or(m, DEFAULT_MIN_DAYS)).unwrap_or(DEFAULT_MIN_DAYS);
    let class_min = minimums.as_ref().map(classes_of).unwrap_or_default();
    let default = policies.default_policy().rule(min_days, &class_min);
    let rules = RetentionRules {
        default_days: default.days,
        default_classes: default.classes,
        tenants: tenants.iter().map(|t| (t.id, policies.for_tenant(t.id).rule(min_days, &class_min))).collect(),
        holds: cx.store.active_event_holds(cx.system_grant()).await?,
    };
    let now = mamori_core::time::now_ms();
    let report = cx.bus().events().purge(cx.system_grant(), now, rules).await.map_err(mamori_bus::BusError::from)?;
    tracing::info!(partitions_dropped = report.partitions_dropped, events_deleted = report.events_deleted, "retention purge");
    // Days over for a while are sealed, and each seal's digest goes to the audit log.
    let seals = cx.bus().events().seal(cx.system_grant(), now, SEAL_AFTER_MS).await.map_err(mamori_bus::BusError::from)?;
    cx.store.record_event_seals(cx.system_grant(), &crate::hostname(), &seals).await?;
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

    #[test]
    fn class_days_are_checked_and_held_to_their_minimums() {
        let doc = json!({"events_days": 400, "classes": [{"class_uid": 4001, "days": 90}, {"class_uid": 3002, "days": 730}]});
        assert!(RetentionPolicy.validate(&doc).is_ok());
        let bad = json!({"events_days": 400, "classes": [{"class_uid": 12, "days": 90}, {"class_uid": 4001, "days": 0}, {"class_uid": 3002, "days": 9}, {"class_uid": 3002, "days": 9}, {"x": 1}]});
        let p = RetentionPolicy.validate(&bad).unwrap_err();
        let codes: Vec<&str> = p.0.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["invalid_class", "invalid_days", "duplicate_class", "invalid_class_days"], "{p}");
        assert_eq!(p.0[1].field, "classes.1.days");
        // The platform lets network traffic go after 90 days, nothing else before 365.
        let minimums = json!({"events_days": 365, "classes": [{"class_uid": 4001, "days": 90}]});
        assert!(RetentionPolicy.check_minimums(&doc, &minimums).is_ok());
        let p = RetentionPolicy.check_minimums(&json!({"events_days": 400, "classes": [{"class_uid": 4002, "days": 90}]}), &minimums).unwrap_err();
        assert_eq!((p.0[0].code, p.0[0].field.as_str()), ("below_minimum", "classes.0.days"));
        assert!(p.0[0].ja.contains("365日"), "{p}");
        // The rule the purge gets: figures held to the minimums, even from older policies.
        let old: RetentionDoc = serde_json::from_value(json!({"events_days": 30, "classes": [{"class_uid": 4001, "days": 10}]})).unwrap();
        let class_min = classes_of(&minimums);
        let rule = old.rule(365, &class_min);
        assert_eq!((rule.days, rule.classes[&4001]), (365, 90));
        let plain: RetentionDoc = serde_json::from_value(json!({"events_days": 400})).unwrap();
        assert_eq!(plain.rule(365, &class_min).classes, HashMap::from([(4001, 400)]), "a class named only by the minimums keeps the policy's days");
    }
}
