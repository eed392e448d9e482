//! Notifications of faults: e-mail (SMTP) and webhooks, in escalation steps, repeated
//! while a fault stays open and unacknowledged; every attempt is recorded on the fault.
//!
//! Policy (per tenant, with a platform default), component `monitor`:
//!
//! ```json
//! {
//!   "escalation": [
//!     { "after_minutes": 0,  "tenant_contacts": true, "emails": [], "webhooks": [] },
//!     { "after_minutes": 30, "emails": ["kacho@city.example.lg.jp"] }
//!   ],
//!   "repeat_minutes": 60,
//!   "notify_recovery": true
//! }
//! ```
//!
//! `tenant_contacts` sends to the e-mail addresses among the tenant's contacts.
//! `repeat_minutes` 0 sends each step once.
//!
//! Requirements: notification of the faults found by F01–F05 (and their fault records,
//! F25).

use crate::check::{MailServer, post_json, send_mail};
use mamori_core::monitor::{Fault, Notification, Reason};
use mamori_core::{PolicyValidator, Problem, Problems, Tenant};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

// The doc comments are the form's labels: Japanese, English, then hints (ja, en).

/// One escalation step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// 障害発生からの経過時間（分）
    /// Minutes after the fault opened
    /// 0 は障害の検知と同時。段階は経過時間の順に並べます（最大10080分＝7日）。
    /// 0 is at once; steps ascend (at most 10080 minutes, 7 days).
    #[serde(default)]
    #[schemars(range(max = 10080))]
    pub after_minutes: u32,
    /// 団体の連絡先に送る
    /// Send to the tenant's contacts
    /// 団体情報に登録したメールアドレスへ送ります。
    /// The e-mail addresses among the tenant's contacts.
    #[serde(default)]
    pub tenant_contacts: bool,
    /// 追加のメールアドレス
    /// Further e-mail addresses
    #[serde(default)]
    pub emails: Vec<String>,
    /// Webhook の URL
    /// Webhook URLs
    /// 障害の内容を JSON で POST します（Teams・Slack などの受信口）。
    /// The fault is POSTed as JSON (Teams, Slack and similar receivers).
    #[serde(default)]
    pub webhooks: Vec<String>,
}

/// A tenant's notification policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyPolicy {
    /// 通知の段階（エスカレーション）
    /// Escalation steps
    /// 対応開始（確認）されるまで、段階ごとに宛先を広げて通知します（8段階まで）。
    /// Until someone acknowledges the fault, each step notifies more people (up to 8).
    #[serde(default)]
    #[schemars(length(max = 8))]
    pub escalation: Vec<Step>,
    /// 再通知の間隔（分）
    /// Resend every (minutes)
    /// 対応開始されない間、この間隔で通知を繰り返します。0 は繰り返さない、または5〜1440分。
    /// While unacknowledged, notifications repeat this often: 0 never, else 5-1440.
    #[serde(default)]
    #[schemars(range(max = 1440))]
    pub repeat_minutes: u32,
    /// 復旧したら通知する
    /// Notify on recovery
    /// 通知した全員に、サービスの復旧を知らせます。
    /// Everyone notified is told when service is back.
    #[serde(default = "yes")]
    pub notify_recovery: bool,
}

fn yes() -> bool {
    true
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        Self { escalation: vec![Step { tenant_contacts: true, ..Default::default() }], repeat_minutes: 60, notify_recovery: true }
    }
}

/// The steps of a policy without any: the SOC alone, at once.
static SOC_ONLY: [Step; 1] = [Step { after_minutes: 0, tenant_contacts: false, emails: Vec::new(), webhooks: Vec::new() }];

impl NotifyPolicy {
    /// Returns the escalation steps in force: the policy's own, or (when it has none)
    /// one immediate step that tells only the addresses told of every fault.
    pub fn steps(&self) -> &[Step] {
        if self.escalation.is_empty() { &SOC_ONLY } else { &self.escalation }
    }

    /// Reads a stored policy document (falls back to the default when unreadable).
    pub fn from_doc(doc: &Value) -> Self {
        serde_json::from_value(doc.clone()).unwrap_or_default()
    }
}

/// Validates `monitor` policies.
pub struct MonitorPolicy;

impl PolicyValidator for MonitorPolicy {
    fn component(&self) -> &'static str {
        "monitor"
    }

    fn default_policy(&self) -> Value {
        json!(NotifyPolicy::default())
    }

    fn schema(&self) -> Option<Value> {
        Some(schemars::schema_for!(NotifyPolicy).to_value())
    }

    fn validate(&self, doc: &Value) -> Result<(), Problems> {
        let p: NotifyPolicy = serde_json::from_value(doc.clone()).map_err(|e| {
            Problems::from(Problem::new(
                "",
                "invalid_policy",
                format!("監視通知ポリシーの形式が正しくありません（{e}）"),
                format!("invalid monitor policy ({e})"),
            ))
        })?;
        let mut problems = Problems::default();
        if p.escalation.len() > 8 {
            problems.push(Problem::new("escalation", "too_many", "エスカレーションは8段階までです", "at most 8 escalation steps"));
        }
        if p.repeat_minutes != 0 && !(5..=1440).contains(&p.repeat_minutes) {
            problems.push(Problem::new("repeat_minutes", "invalid", "再通知間隔は0（しない）または5〜1440分です", "repeat_minutes must be 0 or 5-1440"));
        }
        let mut last = 0;
        for (i, s) in p.escalation.iter().enumerate() {
            if s.after_minutes < last || s.after_minutes > 7 * 24 * 60 {
                problems.push(Problem::new(
                    format!("escalation[{i}].after_minutes"),
                    "invalid",
                    "各段階の経過分は昇順で、10080分（7日）以内にしてください",
                    "after_minutes must ascend and be at most 10080",
                ));
            }
            last = s.after_minutes;
            if s.emails.len() + s.webhooks.len() > 20 {
                problems.push(Problem::new(format!("escalation[{i}]"), "too_many", "1段階の宛先は20件までです", "at most 20 targets per step"));
            }
            for e in &s.emails {
                if !valid_email(e) {
                    problems.push(Problem::new(
                        format!("escalation[{i}].emails"),
                        "invalid_email",
                        format!("メールアドレス「{e}」が正しくありません"),
                        format!("invalid address '{e}'"),
                    ));
                }
            }
            for w in &s.webhooks {
                if !(w.starts_with("https://") || w.starts_with("http://")) || w.len() > 2048 || w.chars().any(char::is_whitespace) {
                    problems.push(Problem::new(
                        format!("escalation[{i}].webhooks"),
                        "invalid_url",
                        format!("Webhook の URL「{w}」が正しくありません"),
                        format!("invalid webhook URL '{w}'"),
                    ));
                }
            }
        }
        problems.into_result(())
    }
}

/// Whether `e` looks like an e-mail address a notification can go to.
pub fn valid_email(e: &str) -> bool {
    e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !e.contains(['<', '>', ' ', '\r', '\n', ','])
}

/// Where and how notifications go out (component config).
#[derive(Clone, Debug)]
pub struct Notifier {
    /// The mail server (None: e-mail notifications are recorded as not sent).
    pub mail: Option<MailServer>,
    /// Envelope and header sender.
    pub from: String,
    /// Addresses told of every fault (the SOC).
    pub always: Vec<String>,
    /// The console's URL, for links in messages.
    pub console_url: String,
    /// Time allowed for one delivery.
    pub timeout: Duration,
}

/// Why a notification goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// The fault opened (or reached an escalation step).
    Down,
    /// Reminder while open.
    Repeat,
    /// Service recovered.
    Up,
}

impl Why {
    fn as_str(&self) -> &'static str {
        match self {
            Why::Down => "down",
            Why::Repeat => "repeat",
            Why::Up => "up",
        }
    }
}

/// The targets of one step for one tenant.
pub fn targets(step: &Step, tenant: Option<&Tenant>, always: &[String], first: bool) -> (Vec<String>, Vec<String>) {
    let mut emails: Vec<String> = step.emails.clone();
    if step.tenant_contacts
        && let Some(t) = tenant
    {
        emails.extend(t.contacts.iter().filter(|c| valid_email(&c.email)).map(|c| c.email.clone()));
    }
    if first {
        emails.extend(always.iter().cloned());
    }
    emails.sort();
    emails.dedup();
    (emails, step.webhooks.clone())
}

fn encode_subject(s: &str) -> String {
    use base64::Engine;
    format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(s))
}

impl Notifier {
    /// Builds the message for a fault.
    pub fn message(&self, fault: &Fault, tenant_name: &str, why: Why, to: &[String]) -> Vec<u8> {
        let (subject, lead_ja, lead_en) = match why {
            Why::Down => ("【障害】", "監視で障害を検知しました。", "A monitor detected a fault."),
            Why::Repeat => ("【障害継続】", "障害が継続しています（未対応）。", "The fault continues (not acknowledged)."),
            Why::Up => ("【復旧】", "サービスが復旧しました。", "The service has recovered."),
        };
        let subject = format!("{subject}{tenant_name} {}", fault.monitor_name);
        let now = mamori_core::time::now_ms();
        let duration_min = fault.duration_ms(now) / 60_000;
        let link = format!("{}/faults/{}", self.console_url.trim_end_matches('/'), fault.id);
        let body = format!(
            "{lead_ja}\n\n団体: {tenant_name}\n監視: {}\n原因: {}\n発生: {}\n{}継続時間: {duration_min}分\n詳細: {link}\n\n-- \n{lead_en}\nMonitor: {}\nCause: {}\nSince: {}\n\nMamori 自治体情報セキュリティクラウド\n",
            fault.monitor_name,
            fault.cause.ja,
            mamori_core::time::format_jst(fault.opened_at),
            fault.closed_at.map(|c| format!("復旧: {}\n", mamori_core::time::format_jst(c))).unwrap_or_default(),
            fault.monitor_name,
            fault.cause.en,
            mamori_core::time::format_rfc3339(fault.opened_at),
        );
        self.mime(&subject, &body, to, &fault.id.to_string(), why.as_str())
    }

    /// Sends one step's notifications; returns the records to keep on the fault.
    /// `tenant_hooks`: the webhooks come from a tenant's own policy, so they may not
    /// reach the platform's own addresses.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        fault: &Fault,
        tenant_name: &str,
        why: Why,
        step: u32,
        emails: &[String],
        webhooks: &[String],
        tenant_hooks: bool,
    ) -> Vec<Notification> {
        let doc = json!({
            "event": why.as_str(),
            "fault_id": fault.id,
            "tenant_id": fault.tenant,
            "tenant": tenant_name,
            "monitor_id": fault.monitor,
            "monitor": fault.monitor_name,
            "cause": fault.cause,
            "opened_at": mamori_core::time::format_rfc3339(fault.opened_at),
            "closed_at": fault.closed_at.map(mamori_core::time::format_rfc3339),
            "url": format!("{}/faults/{}", self.console_url.trim_end_matches('/'), fault.id),
        });
        let delivery = Delivery { reason: why.as_str(), step, emails, webhooks, doc: &doc, tenant_hooks };
        self.deliver(delivery, || self.message(fault, tenant_name, why, emails)).await
    }

    /// Builds a test message: says it is a test, for whom, and who asked.
    pub fn test_message(&self, tenant_name: &str, requested_by: &str, to: &[String]) -> Vec<u8> {
        let subject = format!("【テスト】{tenant_name} 障害通知のテスト");
        let body = format!(
            "これは Mamori の障害通知のテストです。このメールが届いていれば、障害が起きたときの通知もこの宛先に届きます。\n\n団体: {tenant_name}\n依頼者: {requested_by}\n送信: {}\n通知の設定: {}/monitors/notifications\n\n-- \nThis is a test of Mamori's fault notifications: if it reached you, fault notifications reach this address too.\n\nMamori 自治体情報セキュリティクラウド\n",
            mamori_core::time::format_jst(mamori_core::time::now_ms()),
            self.console_url.trim_end_matches('/'),
        );
        self.mime(&subject, &body, to, "test", "test")
    }

    /// Sends a test notification to `emails` and `webhooks` (all of a tenant's steps).
    pub async fn send_test(
        &self,
        tenant: Option<(mamori_core::TenantId, &str)>,
        requested_by: &str,
        emails: &[String],
        webhooks: &[String],
        tenant_hooks: bool,
    ) -> Vec<Notification> {
        let name = tenant.map(|(_, n)| n).unwrap_or("SOC");
        let doc = json!({
            "event": "test",
            "tenant_id": tenant.map(|(t, _)| t),
            "tenant": name,
            "requested_by": requested_by,
            "url": format!("{}/monitors/notifications", self.console_url.trim_end_matches('/')),
        });
        let delivery = Delivery { reason: "test", step: 0, emails, webhooks, doc: &doc, tenant_hooks };
        self.deliver(delivery, || self.test_message(name, requested_by, emails)).await
    }

    fn mime(&self, subject: &str, body: &str, to: &[String], id: &str, kind: &str) -> Vec<u8> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
        let wrapped: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
        format!(
            "From: Mamori <{}>\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}.{}.{}@mamori.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\nX-Mamori-Fault: {}\r\n\r\n{}\r\n",
            self.from,
            to.iter().map(|t| format!("<{t}>")).collect::<Vec<_>>().join(", "),
            encode_subject(subject),
            crate::check::rfc2822_now(),
            id,
            kind,
            mamori_core::time::now_ms(),
            id,
            wrapped.join("\r\n"),
        )
        .into_bytes()
    }

    async fn deliver(&self, d: Delivery<'_>, message: impl FnOnce() -> Vec<u8>) -> Vec<Notification> {
        let mut out = Vec::new();
        let now = mamori_core::time::now_ms();
        if !d.emails.is_empty() {
            let result = match &self.mail {
                Some(server) => send_mail(server, &self.from, d.emails, &message(), self.timeout).await,
                None => Err(no_mail_server()),
            };
            for e in d.emails {
                let error = match &result {
                    Ok(refused) if refused.contains(e) => Some("宛先がメールサーバーに拒否されました".to_string()),
                    Ok(_) => None,
                    Err(r) => Some(r.ja.clone()),
                };
                out.push(Notification {
                    at: now,
                    channel: "email".into(),
                    target: e.clone(),
                    reason: d.reason.into(),
                    step: d.step,
                    ok: error.is_none(),
                    error,
                });
            }
        }
        for w in d.webhooks {
            let result = post_json(w, d.doc, d.tenant_hooks, self.timeout).await;
            out.push(Notification {
                at: now,
                channel: "webhook".into(),
                target: redact_url(w),
                reason: d.reason.into(),
                step: d.step,
                ok: result.is_ok(),
                error: result.err().map(|r| r.ja),
            });
        }
        out
    }
}

/// One round of deliveries: to whom, why, and the webhook's JSON.
struct Delivery<'a> {
    reason: &'a str,
    step: u32,
    emails: &'a [String],
    webhooks: &'a [String],
    doc: &'a Value,
    tenant_hooks: bool,
}

fn no_mail_server() -> Reason {
    Reason::new("no_mail_server", NO_MAIL_SERVER.0, NO_MAIL_SERVER.1)
}

/// Why mail is not sent when `[components.monitor] smtp_host` is unset.
pub const NO_MAIL_SERVER: (&str, &str) = ("メールサーバーが設定されていません", "no mail server configured");

/// The targets a test notification goes to: every step's targets of the tenant's
/// policy (the SOC's addresses are told of every fault, not of each tenant's test);
/// without a tenant, the SOC's addresses.
pub fn test_targets(policy: &NotifyPolicy, tenant: Option<&Tenant>, always: &[String]) -> (Vec<String>, Vec<String>) {
    let Some(t) = tenant else { return (always.to_vec(), Vec::new()) };
    merge_targets(policy.steps().iter().map(|step| targets(step, Some(t), &[], false)))
}

/// Merges the targets of several steps: each address and webhook once, sorted.
pub fn merge_targets(steps: impl Iterator<Item = (Vec<String>, Vec<String>)>) -> (Vec<String>, Vec<String>) {
    let (mut emails, mut hooks) = (Vec::new(), Vec::new());
    for (e, h) in steps {
        emails.extend(e);
        hooks.extend(h);
    }
    emails.sort();
    emails.dedup();
    hooks.sort();
    hooks.dedup();
    (emails, hooks)
}

/// Keeps the monitor's notices true to the last deliveries: mail that could not be
/// sent raises `mail_failing` (shown in every node's console), mail that went clears it.
pub fn note_outcome(health: &mamori_runtime::HealthReporter, sent: &[Notification]) {
    let mail: Vec<&Notification> = sent.iter().filter(|n| n.channel == "email").collect();
    if mail.iter().any(|n| n.ok) {
        health.clear_notice("mail_failing");
    } else if let Some(n) = mail.iter().find(|n| n.error.as_deref().is_some_and(|e| e != NO_MAIL_SERVER.0)) {
        let at = mamori_core::time::format_jst(n.at);
        let why = n.error.clone().unwrap_or_default();
        health.notice(
            "mail_failing",
            format!("通知メールを送信できませんでした（{at}、{why}）。メールサーバーの設定と稼働を確認してください。"),
            format!("Notification mail could not be sent ({at}: {why}). Check the mail server and its settings."),
        );
    }
}

/// Hides a webhook URL's query (tokens often live there) for records and pages.
pub fn redact_url(u: &str) -> String {
    match u.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_validate_with_every_problem() {
        assert!(MonitorPolicy.validate(&MonitorPolicy.default_policy()).is_ok());
        let bad = json!({"escalation": [{"after_minutes": 30, "emails": ["x"]}, {"after_minutes": 10, "webhooks": ["ftp://x"]}], "repeat_minutes": 2});
        let e = MonitorPolicy.validate(&bad).unwrap_err();
        let codes: Vec<_> = e.0.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["invalid", "invalid_email", "invalid", "invalid_url"], "{e:?}");
        assert!(MonitorPolicy.validate(&json!({"escalation": [], "nope": 1})).is_err());
    }

    #[test]
    fn f01_f05_fault_mail_is_utf8_with_encoded_subjects() {
        let n = Notifier {
            mail: None,
            from: "mamori@pref.example.lg.jp".into(),
            always: vec![],
            console_url: "https://console".into(),
            timeout: Duration::from_secs(5),
        };
        let f = Fault {
            id: mamori_core::monitor::FaultId::new(),
            tenant: mamori_core::TenantId::new(),
            monitor: mamori_core::monitor::MonitorId::new(),
            monitor_name: "みどり市 公式サイト".into(),
            opened_at: 0,
            closed_at: None,
            cause: Reason::new("connect_refused", "接続が拒否されました", "connection refused"),
            acknowledged_by: None,
            timeline: vec![],
            notifications: vec![],
        };
        let m = String::from_utf8(n.message(&f, "みどり市", Why::Down, &["a@b.example".into()])).unwrap();
        assert!(m.contains("Subject: =?UTF-8?B?"));
        assert!(m.is_ascii(), "the message is 7-bit clean");
        assert!(m.lines().all(|l| l.len() <= 998));
    }
}
