//! The checks. [`run`] runs one monitor's check under its timeout and returns a
//! [`CheckResult`] that always carries a reason when something is wrong: the step that
//! failed (connect, TLS handshake, banner, …) and why, in Japanese and English.
//!
//! Every read from a peer is bounded (line lengths, header and body sizes, record
//! counts), so a garbage or endless answer ends as a clear failure, never as a stuck
//! worker or unbounded memory.
//!
//! Requirements: F01 web servers, F02 mail relays, F03 proxies, F04 external DNS, F05 AD
//! servers.

mod dns;
mod http;
mod ldap;
mod net;
mod proxy;
mod smtp;
pub(crate) mod tls;

use mamori_core::monitor::{Check, CheckResult, MonitorId, MonitorSpec, Reason, Status};
use serde_json::{Map, Value};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) use http::request;
pub use http::{MAX_BODY_BYTES, post_json};
pub(crate) use smtp::rfc2822_now;
pub use smtp::{MailServer, parse_line as parse_smtp_line, send_mail};
pub use tls::parse_pem;

/// What a check found: its verdict, and facts for the details.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// First failure; makes the check DOWN.
    pub failure: Option<Reason>,
    /// Warnings; make an otherwise passing check DEGRADED.
    pub warnings: Vec<Reason>,
    /// Facts (certificate expiry, serials, content hash, …).
    pub details: Map<String, Value>,
}

impl Findings {
    pub fn fail(&mut self, r: Reason) {
        if self.failure.is_none() {
            self.failure = Some(r);
        }
    }
    pub fn warn(&mut self, r: Reason) {
        self.warnings.push(r);
    }
    pub fn detail(&mut self, k: &str, v: impl Into<Value>) {
        self.details.insert(k.into(), v.into());
    }
}

/// The step a check is in (for the reason given when it times out), and whether the
/// platform's own addresses are off limits for it.
#[derive(Debug)]
pub(crate) struct Stage(Mutex<(&'static str, &'static str)>, bool);

impl Stage {
    fn new() -> Self {
        Self(Mutex::new(("開始", "start")), false)
    }

    /// A stage whose connections refuse the platform's own addresses.
    pub(crate) fn guarded(guard: bool) -> Self {
        Self(Mutex::new(("開始", "start")), guard)
    }

    /// Refuses `ip` when this check may not reach the platform itself.
    pub(crate) fn allow(&self, host: &str, ip: std::net::IpAddr) -> StepResult<()> {
        if self.1 && mamori_core::monitor::is_platform_internal(&ip.to_string()) {
            return Err(Reason::new(
                "internal_target",
                format!("「{host}」（{ip}）は監視基盤の内部アドレスのため接続しません"),
                format!("'{host}' ({ip}) is internal to the platform; not connecting"),
            ));
        }
        Ok(())
    }
    pub fn set(&self, ja: &'static str, en: &'static str) {
        if let Ok(mut s) = self.0.lock() {
            *s = (ja, en);
        }
    }
    fn get(&self) -> (&'static str, &'static str) {
        self.0.lock().map(|s| *s).unwrap_or(("不明", "unknown"))
    }
}

/// Errors of a check step; turned into a [`Reason`].
pub(crate) type StepResult<T> = Result<T, Reason>;

/// Runs `spec`'s check for `monitor` under its timeout.
pub async fn run(monitor: MonitorId, spec: &MonitorSpec) -> CheckResult {
    let started = Instant::now();
    let at = mamori_core::time::now_ms();
    // Checks the core runs for a tenant's own settings may not reach the platform (a
    // name resolving to loopback, a redirect to the metadata address); a probe runs in
    // the municipality's network, where its loopback is its own.
    let stage = Stage::guarded(!spec.platform_targets && spec.probe.is_none());
    let timeout = Duration::from_secs(u64::from(spec.timeout_secs.max(1)));
    let mut f = Findings::default();
    match tokio::time::timeout(timeout, run_inner(&spec.check, timeout, &stage, &mut f)).await {
        Ok(()) => {}
        Err(_) => {
            let (ja, en) = stage.get();
            f.fail(Reason::new(
                "timeout",
                format!("{}秒以内に完了しませんでした（{ja}の途中）", spec.timeout_secs),
                format!("did not complete within {} s (during {en})", spec.timeout_secs),
            ));
        }
    }
    let rt_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
    let slow = match &spec.check {
        Check::Http(c) => c.slow_ms,
        Check::Smtp(c) => c.slow_ms,
        Check::Proxy(c) => c.slow_ms,
        _ => None,
    };
    if let Some(limit) = slow
        && rt_ms > limit
    {
        f.warn(Reason::new("slow", format!("応答が遅くなっています（{rt_ms} ms、基準 {limit} ms）"), format!("slow response ({rt_ms} ms, limit {limit} ms)")));
    }
    // Reasons are stored with every result: keep them short whatever a peer sent.
    let clip = |r: Reason| {
        Reason::new(r.code.chars().take(64).collect::<String>(), r.ja.chars().take(600).collect::<String>(), r.en.chars().take(600).collect::<String>())
    };
    let (status, reason) = match (f.failure.map(clip), f.warnings.first().cloned().map(clip)) {
        (Some(r), _) => (Status::Down, Some(r)),
        (None, Some(w)) => (Status::Degraded, Some(w)),
        (None, None) => (Status::Up, None),
    };
    if f.warnings.len() > 1 {
        f.details.insert("warnings".into(), serde_json::to_value(&f.warnings).unwrap_or(Value::Null));
    }
    CheckResult { monitor, at, status, rt_ms, reason, details: Value::Object(f.details) }
}

async fn run_inner(check: &Check, timeout: Duration, stage: &Stage, f: &mut Findings) {
    let r = match check {
        Check::Http(c) => http::check(c, stage, f).await,
        Check::Smtp(c) => smtp::check(c, stage, f).await,
        Check::Proxy(c) => proxy::check(c, stage, f).await,
        Check::Dns(c) => dns::check(c, timeout, stage, f).await,
        Check::Ldap(c) => ldap::check(c, timeout, stage, f).await,
        Check::Tcp(c) => net::tcp_check(c, stage, f).await,
        Check::Icmp(c) => net::icmp_check(c, timeout, stage, f).await,
    };
    if let Err(r) = r {
        f.fail(r);
    }
}

/// Turns a network error of step `what` into a reason. The Japanese text says what
/// happened in Japanese, with one bracket at most (the system's English wording only
/// where there is no Japanese one); the English keeps the system's message.
pub(crate) fn io_reason(e: &std::io::Error, what_ja: &str, what_en: &str) -> Reason {
    use std::io::ErrorKind::*;
    let detail = os_detail(e);
    let (code, ja, en) = match e.kind() {
        ConnectionRefused => {
            ("connect_refused", "接続が拒否されました。サービスが停止している可能性があります".to_string(), "connection refused (service down?)")
        }
        ConnectionReset | ConnectionAborted => ("connection_reset", "接続が相手側から切断されました".to_string(), "connection reset by peer"),
        UnexpectedEof => ("connection_closed", "応答の途中で接続が閉じられました".to_string(), "connection closed in mid-answer"),
        TimedOut => ("timeout", "応答がありません（タイムアウト）".to_string(), "timed out"),
        HostUnreachable | NetworkUnreachable => ("unreachable", "相手に到達できません（経路がありません）".to_string(), "host or network unreachable"),
        _ => ("network_error", format!("通信エラーが発生しました（{detail}）"), "network error"),
    };
    Reason::new(code, format!("{what_ja}: {ja}"), format!("{what_en}: {en} ({e})"))
}

/// The system's message of an I/O error without its `(os error N)` tail.
fn os_detail(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    }
}

/// Resolves `host:port` and connects, recording the stages.
pub(crate) async fn connect(host: &str, port: u16, stage: &Stage) -> StepResult<tokio::net::TcpStream> {
    stage.set("名前解決", "name resolution");
    let addrs: Vec<std::net::SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![std::net::SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Reason::new("dns_error", format!("「{host}」の名前解決に失敗しました（{e}）"), format!("cannot resolve '{host}' ({e})")))?
            .collect(),
    };
    for a in &addrs {
        stage.allow(host, a.ip())?;
    }
    stage.set("接続", "connect");
    let mut last = None;
    // With several addresses (IPv6 and IPv4), a dead one gets 3 s, not the whole timeout.
    let each = if addrs.len() > 1 { std::time::Duration::from_secs(3) } else { std::time::Duration::MAX };
    for a in addrs.iter().take(4) {
        match tokio::time::timeout(each, tokio::net::TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = Some(io_reason(&e, &format!("{a} への接続"), &format!("connect to {a}"))),
            Err(_) => last = Some(Reason::new("timeout", format!("{a} への接続がタイムアウトしました"), format!("connect to {a} timed out"))),
        }
    }
    Err(last.unwrap_or_else(|| Reason::new("dns_error", format!("「{host}」のアドレスがありません"), format!("'{host}' has no address"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_core::monitor::{Check, TcpCheck};

    fn spec(check: Check, timeout_secs: u32) -> MonitorSpec {
        MonitorSpec {
            name: "t".into(),
            check,
            interval_secs: 60,
            timeout_secs,
            retries: 0,
            retry_interval_secs: 20,
            depends_on: None,
            probe: None,
            enabled: true,
            maintenance: vec![],
            platform_targets: true,
        }
    }

    #[tokio::test]
    async fn f01_f05_refused_port_names_the_reason() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let r = run(MonitorId::new(), &spec(Check::Tcp(TcpCheck { host: "127.0.0.1".into(), port }), 5)).await;
        assert_eq!(r.status, Status::Down);
        let reason = r.reason.unwrap();
        assert_eq!(reason.code, "connect_refused");
        // Japanese without the system's English in brackets; English with it.
        assert_eq!(reason.ja, format!("127.0.0.1:{port} への接続: 接続が拒否されました。サービスが停止している可能性があります"));
        assert!(reason.en.contains("connection refused (service down?) (Connection refused"), "{}", reason.en);
        let other = io_reason(&std::io::Error::other("odd (os error 99)"), "接続", "connect");
        assert_eq!(other.ja, "接続: 通信エラーが発生しました（odd）");
    }

    #[tokio::test]
    async fn f01_f05_unresolvable_host_is_a_dns_error() {
        let r = run(MonitorId::new(), &spec(Check::Tcp(TcpCheck { host: "no-such-host.invalid".into(), port: 80 }), 5)).await;
        assert_eq!(r.status, Status::Down);
        let reason = r.reason.unwrap();
        assert!(matches!(reason.code.as_str(), "dns_error" | "timeout"), "{reason:?}");
    }

    #[tokio::test]
    async fn f01_f05_tenant_checks_do_not_reach_the_platform() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut s = spec(Check::Tcp(TcpCheck { host: "localhost".into(), port }), 5);
        assert_eq!(run(MonitorId::new(), &s).await.status, Status::Up, "an operator's monitor may");
        s.platform_targets = false;
        let r = run(MonitorId::new(), &s).await;
        assert_eq!(r.reason.map(|x| x.code), Some("internal_target".into()), "a tenant's may not, even by name");
        s.probe = Some(mamori_core::monitor::ProbeId::new());
        assert_eq!(run(MonitorId::new(), &s).await.status, Status::Up, "on a probe, loopback is the probe's own");
        drop(l);
    }

    #[tokio::test]
    async fn f01_f05_a_blackholed_address_ends_at_the_timeout_with_a_reason() {
        // TEST-NET-1 is never routed: the connect hangs (then the timeout ends it), or a
        // sandboxed network refuses or reports it unreachable at once.
        let started = std::time::Instant::now();
        let r = run(MonitorId::new(), &spec(Check::Tcp(TcpCheck { host: "192.0.2.1".into(), port: 80 }), 1)).await;
        assert_eq!(r.status, Status::Down);
        let code = r.reason.map(|x| x.code).unwrap_or_default();
        assert!(matches!(code.as_str(), "timeout" | "unreachable" | "network_error" | "connect_refused"), "{code}");
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "no check outlives its timeout");
    }

    #[tokio::test]
    async fn f01_f05_a_silent_server_times_out_naming_the_step() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let c: mamori_core::monitor::HttpCheck = serde_json::from_value(serde_json::json!({"url": format!("http://127.0.0.1:{port}/")})).unwrap();
        let started = std::time::Instant::now();
        let r = run(MonitorId::new(), &spec(Check::Http(c), 1)).await;
        let reason = r.reason.unwrap();
        assert_eq!(reason.code, "timeout");
        assert!(reason.ja.contains("HTTP 応答待ち"), "{}", reason.ja);
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        hold.abort();
    }
}
