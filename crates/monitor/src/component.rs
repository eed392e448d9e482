//! The `monitor` component of `mamori serve`.
//!
//! Config (`[components.monitor]` of mamori.toml), every key optional:
//!
//! ```toml
//! [components.monitor]
//! concurrency = 256          # checks at once
//! results_days = 35          # raw results kept (uptime comes from fault records)
//! smtp_host = "127.0.0.1"    # mail server for notifications (none: not sent, recorded)
//! smtp_port = 25
//! smtp_starttls = "optional" # required | optional | off
//! smtp_ca_file = "/etc/mamori/mail-ca.pem"  # private CA of the mail server
//! per_tenant = 64            # checks of one tenant at once
//! mail_from = "mamori@pref.example.lg.jp"
//! soc_emails = ["soc@pref.example.lg.jp"]   # told of every fault
//! console_url = "https://mamori.pref.example.lg.jp"
//! ```

use crate::engine::{Engine, EngineConfig, Inbox};
use crate::notify::{MonitorPolicy, Notifier};
use mamori_bus::{Component, ComponentCx, ComponentError};
use mamori_core::monitor::StartTls;
use mamori_core::{PolicyValidator, Problem, Problems};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The monitoring component. Its [`Inbox`] takes remote probes' results.
pub struct Monitoring {
    inbox: Mutex<Option<Inbox>>,
}

impl Default for Monitoring {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitoring {
    /// Returns the component.
    pub fn new() -> Self {
        Self { inbox: Mutex::new(None) }
    }

    /// Returns the inbox of the running engine (None before it starts, or on a node
    /// that does not run it).
    pub fn inbox(&self) -> Option<Inbox> {
        self.inbox.lock().ok().and_then(|i| i.clone())
    }
}

const KEYS: [&str; 10] =
    ["concurrency", "per_tenant", "results_days", "smtp_host", "smtp_port", "smtp_starttls", "smtp_ca_file", "mail_from", "soc_emails", "console_url"];

/// Reads the notifier and engine settings from the config section.
pub fn settings(section: &Value) -> Result<(Notifier, EngineConfig), Problems> {
    let mut p = Problems::default();
    if let Some(obj) = section.as_object() {
        for k in obj.keys().filter(|k| !KEYS.contains(&k.as_str())) {
            p.push(Problem::new(k.clone(), "unknown_key", format!("監視コンポーネントに「{k}」という設定はありません"), format!("unknown key '{k}'")));
        }
    }
    let get = |k: &str| section.get(k);
    let mut cfg = EngineConfig::default();
    if let Some(v) = get("concurrency") {
        match v.as_u64().filter(|n| (1..=10_000).contains(n)) {
            Some(n) => cfg.concurrency = n as usize,
            None => p.push(Problem::new("concurrency", "invalid", "concurrency は1〜10000です", "concurrency must be 1-10000")),
        }
    }
    if let Some(v) = get("per_tenant") {
        match v.as_u64().filter(|n| (1..=10_000).contains(n)) {
            Some(n) => cfg.per_tenant = n as usize,
            None => p.push(Problem::new("per_tenant", "invalid", "per_tenant は1〜10000です", "per_tenant must be 1-10000")),
        }
    }
    if let Some(v) = get("smtp_ca_file")
        && v.as_str().is_none_or(str::is_empty)
    {
        p.push(Problem::new("smtp_ca_file", "invalid", "smtp_ca_file は PEM ファイルのパスです", "smtp_ca_file must be the path of a PEM file"));
    }
    if let Some(v) = get("results_days") {
        match v.as_u64().filter(|n| (1..=400).contains(n)) {
            Some(n) => cfg.results_days = n as u32,
            None => p.push(Problem::new("results_days", "invalid", "results_days は1〜400です", "results_days must be 1-400")),
        }
    }
    let starttls = match get("smtp_starttls").and_then(Value::as_str).unwrap_or("optional") {
        "required" => StartTls::Required,
        "optional" => StartTls::Optional,
        "off" => StartTls::Off,
        other => {
            p.push(Problem::new(
                "smtp_starttls",
                "invalid",
                format!("smtp_starttls「{other}」は required / optional / off のいずれかです"),
                "smtp_starttls must be required, optional or off",
            ));
            StartTls::Optional
        }
    };
    let port = match get("smtp_port") {
        None => 25,
        Some(v) => v.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|n| *n > 0).unwrap_or_else(|| {
            p.push(Problem::new("smtp_port", "invalid", "smtp_port は1〜65535です", "smtp_port must be 1-65535"));
            25
        }),
    };
    let mail = get("smtp_host").and_then(Value::as_str).map(|h| crate::check::MailServer {
        host: h.to_string(),
        port,
        starttls,
        ca_pem: None,
        ehlo: "mamori.invalid".into(),
    });
    let soc: Vec<String> = match get("soc_emails") {
        None => vec![],
        Some(v) => match v.as_array().map(|a| a.iter().map(|x| x.as_str().map(String::from)).collect::<Option<Vec<_>>>()) {
            Some(Some(list)) => list,
            _ => {
                p.push(Problem::new("soc_emails", "invalid", "soc_emails はメールアドレスの配列です", "soc_emails must be an array of addresses"));
                vec![]
            }
        },
    };
    let notifier = Notifier {
        mail,
        from: get("mail_from").and_then(Value::as_str).unwrap_or("mamori@localhost").to_string(),
        always: soc,
        console_url: get("console_url").and_then(Value::as_str).unwrap_or("").to_string(),
        timeout: Duration::from_secs(20),
    };
    p.into_result((notifier, cfg))
}

impl Component for Monitoring {
    fn name(&self) -> &'static str {
        "monitor"
    }

    fn policy(&self) -> Option<Arc<dyn PolicyValidator>> {
        Some(Arc::new(MonitorPolicy))
    }

    fn check_config(&self, section: &Value) -> Result<(), Problems> {
        settings(section).map(|_| ())
    }

    fn run(self: Arc<Self>, cx: ComponentCx) -> Pin<Box<dyn Future<Output = Result<(), ComponentError>> + Send>> {
        Box::pin(async move {
            let (mut notifier, cfg) = settings(&cx.config).map_err(|p| ComponentError::Config("monitor", p))?;
            if let (Some(mail), Some(path)) = (notifier.mail.as_mut(), cx.config.get("smtp_ca_file").and_then(Value::as_str)) {
                let pem = std::fs::read_to_string(path).map_err(|e| ComponentError::Other(format!("smtp_ca_file {path}: {e}")))?;
                crate::check::parse_pem(&pem).map_err(|r| ComponentError::Other(format!("smtp_ca_file {path}: {}", r.en)))?;
                mail.ca_pem = Some(pem);
            }
            let engine = Engine::new(cx.store.clone(), Some(cx.bus.clone()), notifier, cfg, cx.system_grant());
            if let Ok(mut i) = self.inbox.lock() {
                *i = Some(engine.inbox());
            }
            let pcx = cx.clone();
            let policies = move || {
                let pcx = pcx.clone();
                Box::pin(async move { pcx.policies().await.ok() }) as Pin<Box<dyn Future<Output = _> + Send>>
            };
            let result = engine.run(cx.shutdown.clone(), policies).await;
            if let Ok(mut i) = self.inbox.lock() {
                *i = None;
            }
            result.map_err(ComponentError::from)
        })
    }
}
