//! The normalized event: a subset of OCSF 1.3 (Open Cybersecurity Schema Framework).
//!
//! Every component publishes what it sees as [`Event`]s. The wire and storage form is
//! the OCSF JSON object ([`Event::to_ocsf`]): `time`, `class_uid`, `category_uid`,
//! `activity_id`, `type_uid`, `severity_id`, `disposition_id`, `message`,
//! `src_endpoint`, `dst_endpoint`, `actor.user.name`, `metadata` (with `tenant_uid`,
//! `uid`, `product`), `raw_data`, and class-specific attributes (e.g. `http_request`)
//! kept in [`Event::fields`] and merged at the top level.
//!
//! Requirements: the event model of log collection and analysis (F18), event monitoring
//! (F19) and the managed security service (F20).

use crate::{EventId, Problem, Problems, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// OCSF class of an event (`class_uid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventClass(pub u32);

impl EventClass {
    /// File System Activity.
    pub const FILE_ACTIVITY: Self = Self(1001);
    /// Process Activity.
    pub const PROCESS_ACTIVITY: Self = Self(1007);
    /// Detection Finding.
    pub const DETECTION_FINDING: Self = Self(2004);
    /// Authentication.
    pub const AUTHENTICATION: Self = Self(3002);
    /// Network Activity.
    pub const NETWORK_ACTIVITY: Self = Self(4001);
    /// HTTP Activity.
    pub const HTTP_ACTIVITY: Self = Self(4002);
    /// DNS Activity.
    pub const DNS_ACTIVITY: Self = Self(4003);
    /// Email Activity.
    pub const EMAIL_ACTIVITY: Self = Self(4009);
    /// Application Lifecycle (a component or service started, stopped, failed).
    pub const APPLICATION_LIFECYCLE: Self = Self(6002);
    /// API Activity.
    pub const API_ACTIVITY: Self = Self(6003);

    /// The classes Mamori names, in display order.
    pub const KNOWN: [Self; 10] = [
        Self::FILE_ACTIVITY,
        Self::PROCESS_ACTIVITY,
        Self::DETECTION_FINDING,
        Self::AUTHENTICATION,
        Self::NETWORK_ACTIVITY,
        Self::HTTP_ACTIVITY,
        Self::DNS_ACTIVITY,
        Self::EMAIL_ACTIVITY,
        Self::APPLICATION_LIFECYCLE,
        Self::API_ACTIVITY,
    ];

    /// Returns the OCSF category (`category_uid`).
    pub fn category(&self) -> u32 {
        self.0 / 1000
    }

    /// Returns the Japanese name.
    pub fn ja(&self) -> &'static str {
        match self.0 {
            1001 => "ファイル操作",
            1007 => "プロセス",
            2004 => "検知",
            3002 => "認証",
            4001 => "ネットワーク通信",
            4002 => "HTTP 通信",
            4003 => "DNS",
            4009 => "メール",
            6002 => "サービス状態",
            6003 => "API 操作",
            _ => "その他",
        }
    }

    /// Returns the OCSF (English) name.
    pub fn en(&self) -> &'static str {
        match self.0 {
            1001 => "File System Activity",
            1007 => "Process Activity",
            2004 => "Detection Finding",
            3002 => "Authentication",
            4001 => "Network Activity",
            4002 => "HTTP Activity",
            4003 => "DNS Activity",
            4009 => "Email Activity",
            6002 => "Application Lifecycle",
            6003 => "API Activity",
            _ => "Other",
        }
    }
}

/// OCSF `severity_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Severity(pub u8);

impl Severity {
    /// Unknown (0).
    pub const UNKNOWN: Self = Self(0);
    /// Informational (1).
    pub const INFO: Self = Self(1);
    /// Low (2).
    pub const LOW: Self = Self(2);
    /// Medium (3).
    pub const MEDIUM: Self = Self(3);
    /// High (4).
    pub const HIGH: Self = Self(4);
    /// Critical (5).
    pub const CRITICAL: Self = Self(5);
    /// Fatal (6).
    pub const FATAL: Self = Self(6);

    /// The defined levels, lowest first.
    pub const ALL: [Self; 7] = [Self::UNKNOWN, Self::INFO, Self::LOW, Self::MEDIUM, Self::HIGH, Self::CRITICAL, Self::FATAL];

    /// Returns the OCSF caption.
    pub fn en(&self) -> &'static str {
        match self.0 {
            0 => "Unknown",
            1 => "Informational",
            2 => "Low",
            3 => "Medium",
            4 => "High",
            5 => "Critical",
            6 => "Fatal",
            _ => "Other",
        }
    }

    /// Returns the Japanese caption.
    pub fn ja(&self) -> &'static str {
        match self.0 {
            0 => "不明",
            1 => "情報",
            2 => "低",
            3 => "中",
            4 => "高",
            5 => "重大",
            6 => "致命的",
            _ => "その他",
        }
    }
}

/// OCSF `disposition_id`: what the control did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Disposition(pub u8);

impl Disposition {
    /// Allowed (1).
    pub const ALLOWED: Self = Self(1);
    /// Blocked (2).
    pub const BLOCKED: Self = Self(2);
    /// Quarantined (3).
    pub const QUARANTINED: Self = Self(3);
    /// Deleted (5).
    pub const DELETED: Self = Self(5);
    /// Dropped (6).
    pub const DROPPED: Self = Self(6);
    /// Corrected (11), e.g. sanitized.
    pub const CORRECTED: Self = Self(11);
    /// Detected (15).
    pub const DETECTED: Self = Self(15);
    /// Logged (17).
    pub const LOGGED: Self = Self(17);
    /// Tagged (18).
    pub const TAGGED: Self = Self(18);

    /// The dispositions Mamori names.
    pub const KNOWN: [Self; 9] =
        [Self::ALLOWED, Self::BLOCKED, Self::QUARANTINED, Self::DELETED, Self::DROPPED, Self::CORRECTED, Self::DETECTED, Self::LOGGED, Self::TAGGED];

    /// Returns the OCSF caption.
    pub fn en(&self) -> &'static str {
        match self.0 {
            1 => "Allowed",
            2 => "Blocked",
            3 => "Quarantined",
            5 => "Deleted",
            6 => "Dropped",
            11 => "Corrected",
            15 => "Detected",
            17 => "Logged",
            18 => "Tagged",
            _ => "Other",
        }
    }

    /// Returns the Japanese caption.
    pub fn ja(&self) -> &'static str {
        match self.0 {
            1 => "許可",
            2 => "遮断",
            3 => "隔離",
            5 => "削除",
            6 => "破棄",
            11 => "無害化",
            15 => "検知",
            17 => "記録",
            18 => "タグ付け",
            _ => "その他",
        }
    }
}

/// A network endpoint (OCSF `network_endpoint`, subset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// The product that reported an event (OCSF `metadata.product`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Product name, e.g. `mamori-monitor` or `FortiGate`.
    pub name: String,
    /// Vendor name.
    #[serde(default)]
    pub vendor_name: String,
}

/// A normalized event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Unique id; its embedded time equals `time`.
    pub id: EventId,
    /// Owning tenant (`metadata.tenant_uid`).
    pub tenant: TenantId,
    /// Event time, Unix ms: when it happened, as its source says. Partitions and
    /// retention go by it, so a late event lands with the others of its time.
    pub time: i64,
    /// Receipt time, Unix ms (`metadata.logged_time`): when Mamori took it in, set by
    /// the bus on publish whatever a submitter sent. None before that.
    pub received: Option<i64>,
    /// Class.
    pub class: EventClass,
    /// `activity_id` within the class.
    pub activity_id: u8,
    /// Severity.
    pub severity: Severity,
    /// What the control did, when it decided something.
    pub disposition: Option<Disposition>,
    /// One-line human description.
    pub message: String,
    /// Reporting product.
    pub product: Product,
    /// Source endpoint.
    pub src: Option<Endpoint>,
    /// Destination endpoint.
    pub dst: Option<Endpoint>,
    /// User name of the actor.
    pub user: Option<String>,
    /// Class-specific OCSF attributes (e.g. `http_request`), merged at the top level.
    pub fields: Map<String, Value>,
    /// The original record as received.
    pub raw: Option<String>,
}

/// Largest accepted `message`, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Largest accepted `raw_data`, in bytes.
pub const MAX_RAW_BYTES: usize = 64 * 1024;
/// Largest accepted serialized event, in bytes.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// Deepest accepted nesting of class-specific attributes.
pub const MAX_DEPTH: usize = 8;

const RESERVED: &[&str] = &[
    "metadata",
    "time",
    "class_uid",
    "class_name",
    "category_uid",
    "category_name",
    "activity_id",
    "type_uid",
    "severity_id",
    "severity",
    "disposition_id",
    "disposition",
    "message",
    "src_endpoint",
    "dst_endpoint",
    "actor",
    "raw_data",
];

impl Event {
    /// Returns a new event of `class` for `tenant` at `time` (ms), informational, with
    /// the given message and product name.
    pub fn new(tenant: TenantId, time: i64, class: EventClass, message: impl Into<String>, product: &str) -> Self {
        Self {
            id: EventId::at(time),
            tenant,
            time,
            received: None,
            class,
            activity_id: 0,
            severity: Severity::INFO,
            disposition: None,
            message: message.into(),
            product: Product { name: product.to_string(), vendor_name: "Mamori".into() },
            src: None,
            dst: None,
            user: None,
            fields: Map::new(),
            raw: None,
        }
    }

    /// Returns the OCSF `type_uid` (class × 100 + activity).
    pub fn type_uid(&self) -> u64 {
        u64::from(self.class.0) * 100 + u64::from(self.activity_id)
    }

    /// Returns the event as an OCSF JSON object.
    pub fn to_ocsf(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.fields {
            if !RESERVED.contains(&k.as_str()) {
                m.insert(k.clone(), v.clone());
            }
        }
        let mut meta = json!({
            "uid": self.id.to_string(),
            "version": "1.3.0",
            "tenant_uid": self.tenant.to_string(),
            "product": self.product,
        });
        if let (Some(r), Some(o)) = (self.received, meta.as_object_mut()) {
            o.insert("logged_time".into(), json!(r));
        }
        m.insert("metadata".into(), meta);
        m.insert("time".into(), json!(self.time));
        m.insert("class_uid".into(), json!(self.class.0));
        m.insert("class_name".into(), json!(self.class.en()));
        m.insert("category_uid".into(), json!(self.class.category()));
        m.insert("activity_id".into(), json!(self.activity_id));
        m.insert("type_uid".into(), json!(self.type_uid()));
        m.insert("severity_id".into(), json!(self.severity.0));
        m.insert("severity".into(), json!(self.severity.en()));
        if let Some(d) = self.disposition {
            m.insert("disposition_id".into(), json!(d.0));
            m.insert("disposition".into(), json!(d.en()));
        }
        m.insert("message".into(), json!(self.message));
        if let Some(s) = &self.src {
            m.insert("src_endpoint".into(), json!(s));
        }
        if let Some(d) = &self.dst {
            m.insert("dst_endpoint".into(), json!(d));
        }
        if let Some(u) = &self.user {
            m.insert("actor".into(), json!({ "user": { "name": u } }));
        }
        if let Some(r) = &self.raw {
            m.insert("raw_data".into(), json!(r));
        }
        Value::Object(m)
    }

    /// Reads an event from its OCSF JSON form, checking sizes and types. `tenant` is the
    /// tenant the submitter may write to; when the document names another tenant the
    /// caller decides (see `allowed`): a document's `metadata.tenant_uid` is taken only
    /// if `allowed` accepts it, else it is refused.
    pub fn from_ocsf(doc: &Value, default_tenant: Option<TenantId>, allowed: impl Fn(TenantId) -> bool) -> Result<Event, Problems> {
        let mut problems = Problems::default();
        let Some(obj) = doc.as_object() else {
            return Err(Problem::new("", "not_object", "イベントはJSONオブジェクトで送ってください", "an event must be a JSON object").into());
        };
        if json_depth(doc) > MAX_DEPTH + 2 {
            return Err(Problem::new("", "too_deep", "イベントの入れ子が深すぎます", "event nesting is too deep").into());
        }
        let meta = obj.get("metadata").and_then(Value::as_object);
        let tenant = match meta.and_then(|m| m.get("tenant_uid")).and_then(Value::as_str) {
            Some(s) => match s.parse::<TenantId>() {
                Ok(t) if allowed(t) => Some(t),
                Ok(_) => {
                    problems.push(Problem::new(
                        "metadata.tenant_uid",
                        "tenant_forbidden",
                        "この団体のイベントは登録できません",
                        "you may not submit events for this tenant",
                    ));
                    None
                }
                Err(_) => {
                    problems.push(Problem::new("metadata.tenant_uid", "invalid_tenant", "tenant_uid が正しくありません", "tenant_uid is not a valid id"));
                    None
                }
            },
            None => default_tenant,
        };
        if tenant.is_none() && problems.is_empty() {
            problems.push(Problem::new("metadata.tenant_uid", "required", "団体（tenant_uid）を指定してください", "metadata.tenant_uid is required"));
        }
        let time = match obj.get("time") {
            Some(Value::Number(n)) => n.as_i64().filter(|t| *t > 0),
            Some(Value::String(s)) => crate::time::parse_time(s),
            None => Some(crate::time::now_ms()),
            _ => None,
        };
        if time.is_none() {
            problems.push(Problem::new("time", "invalid_time", "time は Unix ミリ秒か RFC 3339 の日時で指定してください", "time must be Unix ms or RFC 3339"));
        }
        let class = obj.get("class_uid").and_then(Value::as_u64).filter(|c| (1000..=99_999).contains(c));
        if class.is_none() {
            problems.push(Problem::new("class_uid", "invalid_class", "class_uid（OCSF クラス番号）が必要です", "class_uid (an OCSF class number) is required"));
        }
        let small = |key: &str, max: u64| -> Result<Option<u8>, Problem> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().filter(|n| *n <= max).map(|n| Some(n as u8)).ok_or_else(|| {
                    Problem::new(key, "invalid_number", format!("{key} は0〜{max}の整数で指定してください"), format!("{key} must be an integer 0-{max}"))
                }),
            }
        };
        let activity_id = small("activity_id", 99).unwrap_or_else(|p| {
            problems.push(p);
            None
        });
        let severity = small("severity_id", 99).unwrap_or_else(|p| {
            problems.push(p);
            None
        });
        let disposition = small("disposition_id", 99).unwrap_or_else(|p| {
            problems.push(p);
            None
        });
        let message = obj.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
        let raw = obj.get("raw_data").and_then(Value::as_str).map(str::to_string);
        let endpoint = |key: &str, problems: &mut Problems| -> Option<Endpoint> {
            let v = obj.get(key)?;
            match serde_json::from_value::<Endpoint>(v.clone()) {
                Ok(e) => Some(e),
                Err(_) => {
                    problems.push(Problem::new(
                        key,
                        "invalid_endpoint",
                        format!("{key} の形式が正しくありません（ip, port, hostname）"),
                        format!("{key} must have ip, port, hostname"),
                    ));
                    None
                }
            }
        };
        let src = endpoint("src_endpoint", &mut problems);
        let dst = endpoint("dst_endpoint", &mut problems);
        let user = doc.pointer("/actor/user/name").and_then(Value::as_str).map(str::to_string);
        let product = meta
            .and_then(|m| m.get("product"))
            .and_then(|p| serde_json::from_value::<Product>(p.clone()).ok())
            .unwrap_or_else(|| Product { name: "api".into(), vendor_name: String::new() });
        let fields: Map<String, Value> = obj.iter().filter(|(k, _)| !RESERVED.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        let received = meta.and_then(|m| m.get("logged_time")).and_then(Value::as_i64).filter(|t| *t > 0);
        let event = match (tenant, time, class) {
            (Some(tenant), Some(time), Some(class)) if problems.is_empty() => Event {
                id: EventId::at(time),
                tenant,
                time,
                received,
                class: EventClass(class as u32),
                activity_id: activity_id.unwrap_or(0),
                severity: Severity(severity.unwrap_or(1)),
                disposition: disposition.map(Disposition),
                message,
                product,
                src,
                dst,
                user,
                fields,
                raw,
            },
            _ => return Err(problems),
        };
        // Sizes are checked on the event as it will be stored.
        event.checked_ocsf()?;
        Ok(event)
    }

    /// Checks the limits every stored event meets (class number, small ids, sizes of
    /// message, raw record and document, nesting) and returns its OCSF document when
    /// they hold, else every problem. The event store refuses events that fail it, so
    /// anything stored can be read back by [`Event::from_ocsf`].
    pub fn checked_ocsf(&self) -> Result<Value, Problems> {
        self.checked_ocsf_text().map(|(doc, _)| doc)
    }

    /// Returns what [`Event::checked_ocsf`] returns and the document serialized
    /// (serialized once: the size check needs it anyway).
    pub fn checked_ocsf_text(&self) -> Result<(Value, String), Problems> {
        let mut problems = Problems::default();
        if !(1000..=99_999).contains(&self.class.0) {
            problems.push(Problem::new("class_uid", "invalid_class", "class_uid（OCSF クラス番号）が正しくありません", "class_uid is not a valid OCSF class"));
        }
        for (name, v) in [("activity_id", Some(self.activity_id)), ("severity_id", Some(self.severity.0)), ("disposition_id", self.disposition.map(|d| d.0))] {
            if v.is_some_and(|v| v > 99) {
                problems.push(Problem::new(
                    name,
                    "invalid_number",
                    format!("{name} は0〜99の整数で指定してください"),
                    format!("{name} must be an integer 0-99"),
                ));
            }
        }
        if self.message.len() > MAX_MESSAGE_BYTES {
            problems.push(Problem::new("message", "too_long", "message が長すぎます（8 KiB まで）", "message is too long (at most 8 KiB)"));
        }
        if self.raw.as_ref().is_some_and(|r| r.len() > MAX_RAW_BYTES) {
            problems.push(Problem::new("raw_data", "too_long", "raw_data が長すぎます（64 KiB まで）", "raw_data is too long (at most 64 KiB)"));
        }
        let doc = self.to_ocsf();
        let mut text = String::new();
        if json_depth(&doc) > MAX_DEPTH + 2 {
            problems.push(Problem::new("", "too_deep", "イベントの入れ子が深すぎます", "event nesting is too deep"));
        } else {
            text = doc.to_string();
            if text.len() > MAX_EVENT_BYTES {
                problems.push(Problem::new("", "too_large", "イベントが大きすぎます（256 KiB まで）", "event is too large (at most 256 KiB)"));
            }
        }
        problems.into_result((doc, text))
    }

    /// Returns the text the full-text index holds for this event.
    pub fn search_text(&self) -> String {
        let mut out = String::with_capacity(self.message.len() + 64);
        out.push_str(&self.message);
        for ep in [&self.src, &self.dst].into_iter().flatten() {
            for v in [&ep.ip, &ep.hostname].into_iter().flatten() {
                out.push('\n');
                out.push_str(v);
            }
        }
        if let Some(u) = &self.user {
            out.push('\n');
            out.push_str(u);
        }
        collect_strings(&Value::Object(self.fields.clone()), &mut out, 0);
        if let Some(r) = &self.raw {
            out.push('\n');
            out.push_str(r);
        }
        out
    }
}

fn collect_strings(v: &Value, out: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::String(s) => {
            out.push('\n');
            out.push_str(s);
        }
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out, depth + 1)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out, depth + 1)),
        _ => {}
    }
}

/// Returns the nesting depth of a JSON value (iteratively, so hostile nesting cannot
/// overflow the stack).
pub(crate) fn json_depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_ocsf().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocsf_round_trip_keeps_everything() {
        let t = TenantId::new();
        let mut e = Event::new(t, 1_763_800_000_000, EventClass::HTTP_ACTIVITY, "GET /index.html 200", "mamori-edge");
        e.activity_id = 3;
        e.severity = Severity::LOW;
        e.disposition = Some(Disposition::BLOCKED);
        e.src = Some(Endpoint { ip: Some("198.51.100.7".into()), port: Some(51234), hostname: None });
        e.user = Some("tanaka".into());
        e.fields.insert("http_request".into(), json!({"url": {"hostname": "www.example.lg.jp"}}));
        e.raw = Some("raw line".into());
        let doc = e.to_ocsf();
        assert_eq!(doc["type_uid"], 400203);
        assert_eq!(doc["category_uid"], 4);
        assert_eq!(doc["metadata"]["tenant_uid"], t.to_string());
        let back = Event::from_ocsf(&doc, None, |x| x == t).unwrap();
        assert_eq!(back.fields, e.fields);
        assert_eq!((back.class, back.severity, back.disposition, back.src.clone()), (e.class, e.severity, e.disposition, e.src.clone()));
        assert!(back.search_text().contains("www.example.lg.jp"));
    }

    #[test]
    fn foreign_tenant_and_bad_fields_are_refused() {
        let mine = TenantId::new();
        let other = TenantId::new();
        let doc = json!({"metadata": {"tenant_uid": other.to_string()}, "class_uid": 4002, "severity_id": 300});
        let p = Event::from_ocsf(&doc, Some(mine), |t| t == mine).unwrap_err();
        let codes: Vec<_> = p.0.iter().map(|p| p.code).collect();
        assert!(codes.contains(&"tenant_forbidden") && codes.contains(&"invalid_number"), "{codes:?}");
        assert!(Event::from_ocsf(&json!([1]), Some(mine), |_| true).is_err());
    }

    #[test]
    fn hostile_nesting_is_refused_without_overflow() {
        let mut v = json!("x");
        for _ in 0..100 {
            v = json!([v]);
        }
        let doc = json!({"class_uid": 4002, "x": v});
        let p = Event::from_ocsf(&doc, Some(TenantId::new()), |_| true).unwrap_err();
        assert_eq!(p.0[0].code, "too_deep");
    }
}
