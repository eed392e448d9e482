//! The `monitor` component of `mamori serve` (F01–F05).
//!
//! Config: `[components.monitor]` of mamori.toml ([`MonitorConfig`]; `mamori init` writes
//! every key with its comment). Placement: singleton. With several nodes on one config
//! store, exactly one runs the checks (the holder of the `component:monitor` lease), so
//! every check runs once and every notification goes out once; another node takes over
//! when that one stops or dies.

use crate::engine::{Engine, EngineConfig};
use crate::notify::{MonitorPolicy, Notifier};
use mamori_core::monitor::StartTls;
use mamori_core::{PolicyValidator, Problem, Problems};
use mamori_runtime::{BoxFuture, BuildCx, BuildError, Component, ComponentConfig, ComponentError, Placement, RunCx, Service};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The monitoring component. Remote probes' results reach it through the config store
/// (`Store::queue_probe_results`), so any node may take them.
#[derive(Default)]
pub struct Monitoring;

impl Monitoring {
    /// Returns the component.
    pub fn new() -> Self {
        Self
    }
}

/// `[components.monitor]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// 同時に実行する監視の数（1〜10000）。
    /// Checks run at once (1-10000).
    pub concurrency: usize,
    /// 一つの団体の監視を同時に実行する数（1〜10000）。遅い監視先が全枠を占めないようにします。
    /// Checks of one tenant run at once (1-10000), so one tenant's slow targets cannot hold every slot.
    pub per_tenant: usize,
    /// 監視結果の生データを残す日数（1〜400）。稼働率は障害記録から計算します。
    /// Days raw results are kept (1-400); uptime comes from fault records.
    pub results_days: u32,
    /// 通知メールを送るメールサーバー。未設定のときメール通知は送らず記録だけ残します。
    /// Mail server for notifications; when unset, mail notifications are recorded as not sent.
    #[schemars(example = "127.0.0.1")]
    pub smtp_host: Option<String>,
    /// メールサーバーのポート。
    /// Port of the mail server.
    pub smtp_port: u16,
    /// STARTTLS: required（必須）/ optional（可能なら）/ off（使わない）。
    /// STARTTLS: required, optional or off.
    pub smtp_starttls: String,
    /// メールサーバーの証明書を発行した私設 CA（PEM ファイル）。
    /// Private CA of the mail server (PEM file).
    #[schemars(example = "/etc/mamori/mail-ca.pem")]
    pub smtp_ca_file: Option<String>,
    /// 通知メールの差出人。
    /// Sender of notification mail.
    pub mail_from: String,
    /// すべての障害を知らせる宛先（SOC）。
    /// Addresses told of every fault (the SOC).
    pub soc_emails: Vec<String>,
    /// 通知に載せるコンソールの URL。未設定のときはこのノードのコンソール。
    /// Console URL for links in notifications; when unset, this node's console.
    #[schemars(example = "https://mamori.pref.example.lg.jp")]
    pub console_url: Option<String>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        let e = EngineConfig::default();
        Self {
            concurrency: e.concurrency,
            per_tenant: e.per_tenant,
            results_days: e.results_days,
            smtp_host: None,
            smtp_port: 25,
            smtp_starttls: "optional".into(),
            smtp_ca_file: None,
            mail_from: "mamori@localhost".into(),
            soc_emails: Vec::new(),
            console_url: None,
        }
    }
}

impl MonitorConfig {
    fn starttls(&self) -> Option<StartTls> {
        match self.smtp_starttls.as_str() {
            "required" => Some(StartTls::Required),
            "optional" => Some(StartTls::Optional),
            "off" => Some(StartTls::Off),
            _ => None,
        }
    }

    /// Returns the engine settings and the notifier (without the CA, which
    /// [`Component::build`] reads).
    pub fn settings(&self) -> (Notifier, EngineConfig) {
        let cfg = EngineConfig { concurrency: self.concurrency, per_tenant: self.per_tenant, results_days: self.results_days, ..EngineConfig::default() };
        let mail = self.smtp_host.as_ref().map(|h| crate::check::MailServer {
            host: h.clone(),
            port: self.smtp_port,
            starttls: self.starttls().unwrap_or(StartTls::Optional),
            ca_pem: None,
            ehlo: "mamori.invalid".into(),
        });
        let notifier = Notifier {
            mail,
            from: self.mail_from.clone(),
            always: self.soc_emails.clone(),
            console_url: self.console_url.clone().unwrap_or_default(),
            timeout: Duration::from_secs(20),
        };
        (notifier, cfg)
    }
}

impl ComponentConfig for MonitorConfig {
    fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::default();
        if !(1..=10_000).contains(&self.concurrency) {
            p.push(Problem::new("concurrency", "invalid", "concurrency は1〜10000です", "concurrency must be 1-10000"));
        }
        if !(1..=10_000).contains(&self.per_tenant) {
            p.push(Problem::new("per_tenant", "invalid", "per_tenant は1〜10000です", "per_tenant must be 1-10000"));
        }
        if !(1..=400).contains(&self.results_days) {
            p.push(Problem::new("results_days", "invalid", "results_days は1〜400です", "results_days must be 1-400"));
        }
        if self.smtp_port == 0 {
            p.push(Problem::new("smtp_port", "invalid", "smtp_port は1〜65535です", "smtp_port must be 1-65535"));
        }
        if self.starttls().is_none() {
            p.push(Problem::new(
                "smtp_starttls",
                "invalid",
                format!("smtp_starttls「{}」は required / optional / off のいずれかです", self.smtp_starttls),
                "smtp_starttls must be required, optional or off",
            ));
        }
        if self.smtp_ca_file.as_deref().is_some_and(str::is_empty) {
            p.push(Problem::new("smtp_ca_file", "invalid", "smtp_ca_file は PEM ファイルのパスです", "smtp_ca_file must be the path of a PEM file"));
        }
        for a in self.soc_emails.iter().filter(|a| !crate::notify::valid_email(a)) {
            p.push(Problem::new("soc_emails", "invalid", format!("「{a}」はメールアドレスではありません"), format!("'{a}' is not a mail address")));
        }
        p.into_result(())
    }
}

impl Component for Monitoring {
    type Config = MonitorConfig;

    fn name(&self) -> &'static str {
        "monitor"
    }

    fn placement(&self) -> Placement {
        Placement::Singleton
    }

    fn policy(&self) -> Option<Arc<dyn PolicyValidator>> {
        Some(Arc::new(MonitorPolicy))
    }

    fn web(&self, cx: &mamori_web::WebCx) -> Option<mamori_web::WebPart> {
        Some(crate::web::part(cx))
    }

    async fn build(&self, config: MonitorConfig, cx: BuildCx) -> Result<Arc<dyn Service>, BuildError> {
        let (mut notifier, cfg) = config.settings();
        if let (Some(mail), Some(path)) = (notifier.mail.as_mut(), config.smtp_ca_file.as_deref()) {
            let file = |reason: String| BuildError::File { key: "smtp_ca_file", path: path.to_string(), reason };
            let pem = std::fs::read_to_string(path).map_err(|e| file(e.to_string()))?;
            crate::check::parse_pem(&pem).map_err(|r| file(r.en))?;
            mail.ca_pem = Some(pem);
        }
        let metrics = crate::events::MonitorMetrics::register(&cx.metrics);
        Ok(Arc::new(MonitorService { notifier, cfg, metrics }))
    }
}

struct MonitorService {
    notifier: Notifier,
    cfg: EngineConfig,
    metrics: crate::events::MonitorMetrics,
}

impl Service for MonitorService {
    fn run(self: Arc<Self>, cx: RunCx) -> BoxFuture<Result<(), ComponentError>> {
        Box::pin(async move {
            let engine = Engine::new(cx.store.clone(), Some(cx.events.clone()), self.notifier.clone(), self.cfg.clone(), cx.system_grant().clone())
                .with_metrics(self.metrics.clone())
                .with_health(cx.health.clone());
            let feed = cx.policy_feed::<crate::notify::NotifyPolicy>().await?;
            engine.run(cx.stop.clone(), Some(feed)).await.map_err(ComponentError::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_problem_of_the_section_is_named() {
        let p = mamori_runtime::read_section::<MonitorConfig>(&json!({"concurrency": 0, "smtp_starttls": "maybe", "soc_emails": ["soc"]})).unwrap_err();
        let fields: Vec<&str> = p.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["concurrency", "smtp_starttls", "soc_emails"], "{p}");
        let c = mamori_runtime::read_section::<MonitorConfig>(&json!({"smtp_host": "127.0.0.1", "smtp_port": 2525})).unwrap();
        assert_eq!(c.settings().0.mail.map(|m| m.port), Some(2525));
    }

    #[test]
    fn the_template_reads_back_as_the_default() {
        let t = mamori_runtime::template::<MonitorConfig>("monitor");
        assert!(t.contains("# 同時に実行する監視の数（1〜10000）。\n# Checks run at once (1-10000).\nconcurrency = 256\n"), "{t}");
        assert!(t.contains("# smtp_host = \"127.0.0.1\"\n"), "{t}");
        let parsed: toml::Table = toml::from_str(&t).unwrap();
        let section = serde_json::to_value(&parsed["components"]["monitor"]).unwrap();
        assert_eq!(mamori_runtime::read_section::<MonitorConfig>(&section).unwrap(), MonitorConfig::default());
    }
}
