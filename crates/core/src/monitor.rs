//! Service monitoring (F01–F05): what a monitor checks, how often, what a result and a
//! fault record (障害記録) are.
//!
//! A [`MonitorSpec`] belongs to one tenant and holds one [`Check`]: HTTP(S) (web
//! servers, F01), SMTP (mail relays, F02), proxy (F03), DNS (external DNS, F04),
//! LDAP (AD, F05), or the building blocks TCP and ICMP. [`StandardSet`] expands the
//! usual set of a municipality (web, mail relay, proxy, DNS) into specs, so adding one
//! municipality is one form. Nothing here does I/O: the checks run in `mamori-monitor`.

use crate::{Problem, Problems, TenantId};
use serde::{Deserialize, Serialize};
use std::fmt;

pub use crate::ids::{FaultId, MonitorId, NotifyTestId, ProbeId};

/// Shortest interval between checks, in seconds.
pub const MIN_INTERVAL_SECS: u32 = 10;
/// Longest interval between checks, in seconds (one day).
pub const MAX_INTERVAL_SECS: u32 = 86_400;
/// Longest timeout of one check, in seconds.
pub const MAX_TIMEOUT_SECS: u32 = 120;
/// Most retries before a failing monitor is DOWN.
pub const MAX_RETRIES: u32 = 10;
/// Longest text field (names, URLs, keywords), in bytes.
pub const MAX_TEXT: usize = 2048;
/// Largest PEM trust anchor, in bytes.
pub const MAX_PEM: usize = 64 * 1024;
/// Most DNS servers or record expectations in one check.
pub const MAX_LIST: usize = 16;

/// What a monitor checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Check {
    /// A web page over HTTP(S) (F01).
    Http(HttpCheck),
    /// A mail relay over SMTP (F02).
    Smtp(SmtpCheck),
    /// A fetch through an Internet proxy (F03).
    Proxy(ProxyCheck),
    /// Authoritative DNS servers of a zone (F04).
    Dns(DnsCheck),
    /// An LDAP / Active Directory server (F05).
    Ldap(LdapCheck),
    /// A TCP port accepts connections.
    Tcp(TcpCheck),
    /// A host answers ICMP echo.
    Icmp(IcmpCheck),
}

impl Check {
    /// Returns the stable type name (`http`, `smtp`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Http(_) => "http",
            Check::Smtp(_) => "smtp",
            Check::Proxy(_) => "proxy",
            Check::Dns(_) => "dns",
            Check::Ldap(_) => "ldap",
            Check::Tcp(_) => "tcp",
            Check::Icmp(_) => "icmp",
        }
    }

    /// Returns the type's name in Japanese.
    pub fn kind_ja(&self) -> &'static str {
        match self {
            Check::Http(_) => "Web (HTTP)",
            Check::Smtp(_) => "メール中継 (SMTP)",
            Check::Proxy(_) => "プロキシ",
            Check::Dns(_) => "外部 DNS",
            Check::Ldap(_) => "AD / LDAP",
            Check::Tcp(_) => "TCP ポート",
            Check::Icmp(_) => "ICMP (ping)",
        }
    }

    /// Returns the hosts the check connects to (names or addresses).
    pub fn hosts(&self) -> Vec<String> {
        fn url_host(u: &str) -> String {
            let rest = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let hostport = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
            if let Some(v6) = hostport.strip_prefix('[') {
                return v6.split(']').next().unwrap_or("").to_string();
            }
            hostport.split(':').next().unwrap_or("").to_string()
        }
        match self {
            Check::Http(c) => vec![url_host(&c.url)],
            Check::Smtp(c) => vec![c.host.clone()],
            Check::Proxy(c) => vec![split_host_port(&c.proxy).map(|(h, _)| h).unwrap_or_default(), url_host(&c.url)],
            Check::Dns(c) => c.servers.iter().filter_map(|s| parse_server(s)).map(|a| a.ip().to_string()).collect(),
            Check::Ldap(c) => vec![url_host(&c.url)],
            Check::Tcp(c) => vec![c.host.clone()],
            Check::Icmp(c) => vec![c.host.clone()],
        }
    }

    /// Returns what is checked, for lists: a URL, `host:port`, a zone.
    pub fn target(&self) -> String {
        match self {
            Check::Http(c) => c.url.clone(),
            Check::Smtp(c) => format!("{}:{}", c.host, c.port),
            Check::Proxy(c) => format!("{} → {}", c.proxy, c.url),
            Check::Dns(c) => format!("{} @ {}", c.zone, c.servers.join(", ")),
            Check::Ldap(c) => c.url.clone(),
            Check::Tcp(c) => format!("{}:{}", c.host, c.port),
            Check::Icmp(c) => c.host.clone(),
        }
    }
}

/// An HTTP(S) check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// `http://` or `https://` URL.
    pub url: String,
    /// `GET` (default) or `HEAD`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Accepted status codes, e.g. `200-399` (default) or `200,301`.
    #[serde(default = "default_status")]
    pub expect_status: String,
    /// Text that must be in the body (or must not, with `keyword_absent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// The keyword must be absent (e.g. an error page's text).
    #[serde(default)]
    pub keyword_absent: bool,
    /// A regular expression the body must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Redirects followed (0: none).
    #[serde(default = "default_redirects")]
    pub max_redirects: u8,
    /// Slower than this (ms) is DEGRADED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_ms: Option<u32>,
    /// A certificate expiring within this many days is DEGRADED (default 14).
    #[serde(default = "default_cert_days")]
    pub cert_warn_days: u32,
    /// Extra trust anchor (PEM) beside the public roots, e.g. a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Record a hash of the body and warn when it changes (for tamper detection).
    #[serde(default)]
    pub track_content: bool,
}

/// How an SMTP check treats STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartTls {
    /// The server must offer STARTTLS and the handshake must succeed (default).
    #[default]
    Required,
    /// Use STARTTLS when offered.
    Optional,
    /// Do not use STARTTLS.
    Off,
}

/// A test message sent by an SMTP check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestMessage {
    /// Envelope sender.
    pub from: String,
    /// Envelope recipient (a sink address that discards it).
    pub to: String,
}

/// An SMTP relay check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpCheck {
    /// Host name or address.
    pub host: String,
    /// Port (default 25).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Name sent in EHLO.
    #[serde(default = "default_ehlo")]
    pub ehlo: String,
    /// STARTTLS handling.
    #[serde(default)]
    pub starttls: StartTls,
    /// Text the banner must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_banner: Option<String>,
    /// Extra trust anchor (PEM) for the STARTTLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// A certificate expiring within this many days is DEGRADED (default 14).
    #[serde(default = "default_cert_days")]
    pub cert_warn_days: u32,
    /// Send a test message and require it to be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_message: Option<TestMessage>,
    /// Slower than this (ms) is DEGRADED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_ms: Option<u32>,
}

/// A proxy check: fetch a URL through an HTTP proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyCheck {
    /// The proxy, `host:port`.
    pub proxy: String,
    /// The URL fetched through it: `http://` (absolute-form request) or `https://`
    /// (CONNECT tunnel, then TLS to the origin).
    pub url: String,
    /// Accepted status codes of the origin's answer (default `200-399`).
    #[serde(default = "default_status")]
    pub expect_status: String,
    /// Extra trust anchor (PEM) for the origin behind a CONNECT tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Slower than this (ms) is DEGRADED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_ms: Option<u32>,
}

/// One expected DNS answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsExpect {
    /// Owner name, absolute or relative to the zone (`www`, `@`).
    pub name: String,
    /// Record type: A, AAAA, MX, TXT, NS, CNAME, SOA, CAA.
    #[serde(rename = "type")]
    pub rtype: String,
    /// Values that must all be in the answer (empty: any non-empty answer).
    #[serde(default)]
    pub expect: Vec<String>,
}

/// An external DNS check over the zone's name servers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// The zone, e.g. `city.example.lg.jp`.
    pub zone: String,
    /// Name servers asked, `address` or `address:port`.
    pub servers: Vec<String>,
    /// Answers expected from every server.
    #[serde(default)]
    pub records: Vec<DnsExpect>,
    /// All servers must serve the same SOA serial (default true).
    #[serde(default = "yes")]
    pub serial_consistency: bool,
    /// The zone must be DNSSEC-signed with signatures in their validity period.
    #[serde(default)]
    pub dnssec: bool,
    /// Signatures expiring within this many days are DEGRADED (default 3).
    #[serde(default = "default_sig_days")]
    pub dnssec_warn_days: u32,
    /// A server that recurses for anyone (open resolver) is DOWN (default true).
    #[serde(default = "yes")]
    pub refuse_recursion: bool,
}

/// An LDAP / AD check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapCheck {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// Service account DN (empty: anonymous bind).
    #[serde(default)]
    pub bind_dn: String,
    /// Service account password. Never shown again once saved.
    #[serde(default)]
    pub bind_password: String,
    /// Search base; a base-scope search must return an entry.
    pub base: String,
    /// Search filter (default `(objectClass=*)`).
    #[serde(default = "default_filter")]
    pub filter: String,
    /// Extra trust anchor (PEM) for LDAPS / StartTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Further TCP ports of the same host that must accept connections, e.g. 88
    /// (Kerberos) and 3268 (global catalog).
    #[serde(default)]
    pub extra_ports: Vec<u16>,
}

/// A TCP connect check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// An ICMP echo check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IcmpCheck {
    /// Host name or address.
    pub host: String,
}

/// A maintenance window: no fault is opened and nobody is notified inside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Maintenance {
    /// One period (RFC 3339 times).
    Once {
        /// Start.
        start: String,
        /// End.
        end: String,
        /// Why.
        #[serde(default)]
        note: String,
    },
    /// Every week, in Japan time.
    Weekly {
        /// 0 = Sunday … 6 = Saturday.
        weekday: u8,
        /// `HH:MM` (JST).
        start: String,
        /// Length in minutes.
        minutes: u32,
        /// Why.
        #[serde(default)]
        note: String,
    },
}

impl Maintenance {
    /// Returns true when `at_ms` (Unix ms) falls inside the window.
    pub fn covers(&self, at_ms: i64) -> bool {
        match self {
            Maintenance::Once { start, end, .. } => match (crate::time::parse_time(start), crate::time::parse_time(end)) {
                (Some(s), Some(e)) => s <= at_ms && at_ms < e,
                _ => false,
            },
            Maintenance::Weekly { weekday, start, minutes, .. } => {
                let Some(start_min) = parse_hhmm(start) else { return false };
                const WEEK_MIN: i64 = 7 * 24 * 60;
                // Minutes since Sunday 00:00 JST. 1970-01-01 was a Thursday (4).
                let jst_min = (at_ms.div_euclid(60_000) + 9 * 60).rem_euclid(WEEK_MIN);
                let now = (jst_min + 4 * 24 * 60) % WEEK_MIN;
                let begin = i64::from(*weekday) * 24 * 60 + i64::from(start_min);
                let into = (now - begin).rem_euclid(WEEK_MIN);
                into < i64::from(*minutes)
            }
        }
    }
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Everything about a monitor that a person sets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    /// Display name, e.g. 「○○市 公式サイト」.
    pub name: String,
    /// What is checked.
    pub check: Check,
    /// Seconds between checks (default 60).
    #[serde(default = "default_interval")]
    pub interval_secs: u32,
    /// Seconds one check may take (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u32,
    /// Failed checks in a row tolerated before DOWN (default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds between retries while failing (default 20).
    #[serde(default = "default_retry_interval")]
    pub retry_interval_secs: u32,
    /// A monitor whose DOWN explains this one's failures (e.g. the proxy for web
    /// checks made through it): then this one is UNREACHABLE, with no fault of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<MonitorId>,
    /// The remote probe that runs the check (none: the core runs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeId>,
    /// Whether the monitor runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Maintenance windows.
    #[serde(default)]
    pub maintenance: Vec<Maintenance>,
    /// Whether checks run by the core may reach the platform's own addresses
    /// (loopback, link-local). Set by the store, never by the input: true only for
    /// monitors last saved by an operator.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub platform_targets: bool,
}

/// A stored monitor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Monitor {
    /// Its id.
    pub id: MonitorId,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// Its settings.
    #[serde(flatten)]
    pub spec: MonitorSpec,
    /// When it was created (Unix ms).
    pub created_at: i64,
    /// When it was last changed (Unix ms).
    pub updated_at: i64,
}

/// Placeholder shown instead of a stored secret.
pub const SECRET_MASK: &str = "********";

impl MonitorSpec {
    /// Returns the spec with secrets replaced by [`SECRET_MASK`], for display.
    pub fn redacted(&self) -> Self {
        let mut s = self.clone();
        if let Check::Ldap(l) = &mut s.check
            && !l.bind_password.is_empty()
        {
            l.bind_password = SECRET_MASK.into();
        }
        s
    }

    /// Keeps the stored secret where an edit sent back the mask (or nothing), but only
    /// while it would go to the same place: a changed URL, TLS setting, account or probe
    /// needs the password entered again (so an edit cannot send it elsewhere).
    pub fn keep_secrets_of(&mut self, stored: &MonitorSpec) {
        let same_probe = self.probe == stored.probe;
        if let (Check::Ldap(new), Check::Ldap(old)) = (&mut self.check, &stored.check)
            && (new.bind_password == SECRET_MASK || new.bind_password.is_empty())
        {
            let same_place = same_probe && new.url == old.url && new.starttls == old.starttls && new.bind_dn == old.bind_dn && new.ca_pem == old.ca_pem;
            new.bind_password = if same_place { old.bind_password.clone() } else { String::new() };
        }
    }

    /// Checks every field; returns every problem in Japanese and English.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::default();
        text(&mut p, "name", &self.name, true, "名前");
        if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&self.interval_secs) {
            p.push(Problem::new("interval_secs", "invalid_interval", "監視間隔は10〜86400秒で指定してください", "interval_secs must be 10-86400"));
        }
        if self.timeout_secs == 0 || self.timeout_secs > MAX_TIMEOUT_SECS || self.timeout_secs > self.interval_secs {
            p.push(Problem::new(
                "timeout_secs",
                "invalid_timeout",
                "タイムアウトは1〜120秒、かつ監視間隔以下で指定してください",
                "timeout_secs must be 1-120 and not above the interval",
            ));
        }
        if self.retries > MAX_RETRIES {
            p.push(Problem::new("retries", "invalid_retries", "再試行回数は0〜10回で指定してください", "retries must be 0-10"));
        }
        if !(5..=MAX_INTERVAL_SECS).contains(&self.retry_interval_secs) {
            p.push(Problem::new(
                "retry_interval_secs",
                "invalid_retry_interval",
                "再試行間隔は5〜86400秒で指定してください",
                "retry_interval_secs must be 5-86400",
            ));
        }
        if self.maintenance.len() > MAX_LIST {
            p.push(Problem::new("maintenance", "too_many", "メンテナンス時間帯は16件までです", "at most 16 maintenance windows"));
        }
        for (i, m) in self.maintenance.iter().enumerate() {
            let f = format!("maintenance[{i}]");
            match m {
                Maintenance::Once { start, end, note } => {
                    text(&mut p, &format!("{f}.note"), note, false, "メモ");
                    match (crate::time::parse_time(start), crate::time::parse_time(end)) {
                        (Some(s), Some(e)) if s < e => {}
                        _ => p.push(Problem::new(
                            f,
                            "invalid_window",
                            "メンテナンスの開始・終了日時が正しくありません（開始＜終了）",
                            "maintenance start/end must be valid times with start < end",
                        )),
                    }
                }
                Maintenance::Weekly { weekday, start, minutes, note } => {
                    text(&mut p, &format!("{f}.note"), note, false, "メモ");
                    if *weekday > 6 || parse_hhmm(start).is_none() || *minutes == 0 || *minutes > 7 * 24 * 60 {
                        p.push(Problem::new(
                            f,
                            "invalid_window",
                            "毎週のメンテナンスは曜日0〜6、開始 HH:MM、長さ1〜10080分で指定してください",
                            "weekly maintenance needs weekday 0-6, start HH:MM and 1-10080 minutes",
                        ));
                    }
                }
            }
        }
        match &self.check {
            Check::Http(c) => {
                url(&mut p, "check.url", &c.url, &["http", "https"]);
                if !matches!(c.method.as_str(), "GET" | "HEAD") {
                    p.push(Problem::new("check.method", "invalid_method", "メソッドは GET か HEAD です", "method must be GET or HEAD"));
                }
                if c.method == "HEAD" && (c.keyword.is_some() || c.regex.is_some() || c.track_content) {
                    p.push(Problem::new(
                        "check.method",
                        "head_without_body",
                        "HEAD では本文を検査できません（キーワード・正規表現・改ざん検知は GET で）",
                        "HEAD has no body to check; use GET for keyword, regex or content tracking",
                    ));
                }
                status(&mut p, "check.expect_status", &c.expect_status);
                if let Some(k) = &c.keyword {
                    text(&mut p, "check.keyword", k, true, "キーワード");
                }
                if let Some(r) = &c.regex {
                    text(&mut p, "check.regex", r, true, "正規表現");
                    if let Err(e) = regex::RegexBuilder::new(r).size_limit(1 << 20).build() {
                        p.push(Problem::new(
                            "check.regex",
                            "invalid_regex",
                            format!("正規表現が正しくありません（{e}）"),
                            format!("invalid regular expression ({e})"),
                        ));
                    }
                }
                if c.max_redirects > 10 {
                    p.push(Problem::new("check.max_redirects", "invalid_redirects", "リダイレクトは10回までです", "at most 10 redirects"));
                }
                pem(&mut p, "check.ca_pem", &c.ca_pem);
            }
            Check::Smtp(c) => {
                host(&mut p, "check.host", &c.host);
                port(&mut p, "check.port", c.port);
                host(&mut p, "check.ehlo", &c.ehlo);
                pem(&mut p, "check.ca_pem", &c.ca_pem);
                if let Some(t) = &c.test_message {
                    mailbox(&mut p, "check.test_message.from", &t.from);
                    mailbox(&mut p, "check.test_message.to", &t.to);
                }
            }
            Check::Proxy(c) => {
                host_port(&mut p, "check.proxy", &c.proxy);
                url(&mut p, "check.url", &c.url, &["http", "https"]);
                status(&mut p, "check.expect_status", &c.expect_status);
                pem(&mut p, "check.ca_pem", &c.ca_pem);
            }
            Check::Dns(c) => {
                host(&mut p, "check.zone", &c.zone);
                if c.servers.is_empty() || c.servers.len() > MAX_LIST {
                    p.push(Problem::new("check.servers", "invalid_servers", "ネームサーバーを1〜16台指定してください", "list 1-16 name servers"));
                }
                for (i, s) in c.servers.iter().enumerate() {
                    if parse_server(s).is_none() {
                        p.push(Problem::new(
                            format!("check.servers[{i}]"),
                            "invalid_server",
                            format!("ネームサーバー「{s}」は IP アドレスまたは IP:ポートで指定してください"),
                            format!("name server '{s}' must be an IP address or IP:port"),
                        ));
                    }
                }
                if c.records.len() > MAX_LIST {
                    p.push(Problem::new("check.records", "too_many", "確認するレコードは16件までです", "at most 16 records"));
                }
                for (i, r) in c.records.iter().enumerate() {
                    text(&mut p, &format!("check.records[{i}].name"), &r.name, true, "名前");
                    if !DNS_TYPES.contains(&r.rtype.to_ascii_uppercase().as_str()) {
                        p.push(Problem::new(
                            format!("check.records[{i}].type"),
                            "invalid_type",
                            format!("レコード種別は {} のいずれかです", DNS_TYPES.join(", ")),
                            format!("record type must be one of {}", DNS_TYPES.join(", ")),
                        ));
                    }
                    for v in &r.expect {
                        text(&mut p, &format!("check.records[{i}].expect"), v, true, "期待値");
                    }
                }
            }
            Check::Ldap(c) => {
                url(&mut p, "check.url", &c.url, &["ldap", "ldaps"]);
                if c.starttls && c.url.starts_with("ldaps") {
                    p.push(Problem::new("check.starttls", "starttls_with_ldaps", "ldaps:// では StartTLS は使えません", "StartTLS does not apply to ldaps://"));
                }
                text(&mut p, "check.bind_dn", &c.bind_dn, false, "バインドDN");
                if !c.bind_password.is_empty() && c.url.starts_with("ldap://") && !c.starttls {
                    p.push(Problem::new(
                        "check.starttls",
                        "password_in_clear",
                        "パスワードを平文で送らないよう、ldaps:// か StartTLS を使ってください",
                        "use ldaps:// or StartTLS so the password is not sent in clear",
                    ));
                }
                if !c.bind_dn.is_empty() && (c.bind_password.is_empty() || c.bind_password == SECRET_MASK) {
                    p.push(Problem::new(
                        "check.bind_password",
                        "required",
                        "サービスアカウントのパスワードを入力してください",
                        "enter the service account's password",
                    ));
                }
                text(&mut p, "check.base", &c.base, false, "検索ベース");
                text(&mut p, "check.filter", &c.filter, true, "フィルター");
                if !(c.filter.starts_with('(') && c.filter.ends_with(')')) {
                    p.push(Problem::new(
                        "check.filter",
                        "invalid_filter",
                        "フィルターは (objectClass=*) のように括弧で囲んでください",
                        "the filter must be parenthesized",
                    ));
                }
                if c.extra_ports.len() > MAX_LIST || c.extra_ports.contains(&0) {
                    p.push(Problem::new("check.extra_ports", "invalid_ports", "追加ポートは1〜65535を16個までです", "up to 16 extra ports, 1-65535"));
                }
                pem(&mut p, "check.ca_pem", &c.ca_pem);
            }
            Check::Tcp(c) => {
                host(&mut p, "check.host", &c.host);
                port(&mut p, "check.port", c.port);
            }
            Check::Icmp(c) => host(&mut p, "check.host", &c.host),
        }
        p.into_result(())
    }
}

/// Returns true for a host that names the platform itself (loopback, `localhost`,
/// link-local such as the cloud metadata address, unspecified): a tenant may not point
/// checks the core runs there.
pub fn is_platform_internal(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => a.is_loopback() || a.is_link_local() || a.is_unspecified(),
        Ok(std::net::IpAddr::V6(a)) => {
            a.is_loopback()
                || a.is_unspecified()
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_link_local())
        }
        Err(_) => false,
    }
}

/// DNS record types a DNS check can expect.
pub const DNS_TYPES: [&str; 8] = ["A", "AAAA", "MX", "TXT", "NS", "CNAME", "SOA", "CAA"];

/// Parses a name server, `ip` or `ip:port` (`[v6]:port`), default port 53.
pub fn parse_server(s: &str) -> Option<std::net::SocketAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, 53));
    }
    s.parse().ok()
}

/// Splits `host:port` (`[v6]:port`).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (h, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    valid_host(h).then(|| (h.to_string(), port))
}

fn valid_host(h: &str) -> bool {
    if h.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !h.is_empty()
        && h.len() <= 253
        && h.trim_end_matches('.').split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

fn text(p: &mut Problems, field: &str, v: &str, required: bool, label: &str) {
    if required && v.trim().is_empty() {
        p.push(Problem::new(field, "required", format!("{label}を入力してください"), format!("{field} is required")));
    } else if v.len() > MAX_TEXT || v.chars().any(|c| c.is_control() && c != '\t') {
        p.push(Problem::new(
            field,
            "invalid_text",
            format!("{label}は2048バイト以内で、制御文字を含めないでください"),
            format!("{field} must be at most 2048 bytes without control characters"),
        ));
    }
}

fn host(p: &mut Problems, field: &str, v: &str) {
    if !valid_host(v) {
        p.push(Problem::new(field, "invalid_host", format!("ホスト名「{v}」が正しくありません"), format!("invalid host name '{v}'")));
    }
}

fn port(p: &mut Problems, field: &str, v: u16) {
    if v == 0 {
        p.push(Problem::new(field, "invalid_port", "ポートは1〜65535です", "port must be 1-65535"));
    }
}

fn host_port(p: &mut Problems, field: &str, v: &str) {
    if split_host_port(v).is_none() {
        p.push(Problem::new(field, "invalid_host_port", format!("「{v}」はホスト:ポートの形で指定してください"), format!("'{v}' must be host:port")));
    }
}

fn mailbox(p: &mut Problems, field: &str, v: &str) {
    let ok = v.len() <= 254 && v.split_once('@').is_some_and(|(l, d)| !l.is_empty() && valid_host(d)) && !v.contains(['<', '>', ' ', '\r', '\n']);
    if !ok {
        p.push(Problem::new(field, "invalid_mailbox", format!("メールアドレス「{v}」が正しくありません"), format!("invalid address '{v}'")));
    }
}

fn url(p: &mut Problems, field: &str, v: &str, schemes: &[&str]) {
    let ok = v.len() <= MAX_TEXT
        && v.split_once("://").is_some_and(|(s, rest)| {
            schemes.contains(&s) && {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                let hostpart = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
                let h = if hostpart.starts_with('[') {
                    hostpart.split(']').next().map(|h| &h[1..]).unwrap_or("")
                } else {
                    hostpart.split(':').next().unwrap_or("")
                };
                valid_host(h) && !v.chars().any(|c| c.is_whitespace() || c.is_control())
            }
        });
    if !ok {
        p.push(Problem::new(
            field,
            "invalid_url",
            format!("URL「{v}」が正しくありません（{}:// で始まる形）", schemes.join("://, ")),
            format!("invalid URL '{v}' (scheme {})", schemes.join(", ")),
        ));
    }
}

fn pem(p: &mut Problems, field: &str, v: &Option<String>) {
    if let Some(v) = v
        && (v.len() > MAX_PEM || !v.contains("-----BEGIN CERTIFICATE-----"))
    {
        p.push(Problem::new(field, "invalid_pem", "CA 証明書は PEM 形式（64KiB以内）で指定してください", "the CA certificate must be PEM, at most 64 KiB"));
    }
}

fn status(p: &mut Problems, field: &str, v: &str) {
    if StatusSet::parse(v).is_none() {
        p.push(Problem::new(
            field,
            "invalid_status",
            format!("期待するステータス「{v}」が正しくありません（例: 200-399、200,301）"),
            format!("invalid expected status '{v}' (e.g. 200-399 or 200,301)"),
        ));
    }
}

/// A set of accepted HTTP status codes, e.g. `200-299,301`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    /// Parses `200-399` / `200,301` / `200-299,304`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if !(100..=599).contains(&a) || !(100..=599).contains(&b) || a > b {
                return None;
            }
            v.push((a, b));
        }
        (!v.is_empty() && v.len() <= 16).then_some(Self(v))
    }

    /// Returns true when `code` is accepted.
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }
}

fn yes() -> bool {
    true
}
fn default_method() -> String {
    "GET".into()
}
fn default_status() -> String {
    "200-399".into()
}
fn default_redirects() -> u8 {
    5
}
fn default_cert_days() -> u32 {
    14
}
fn default_sig_days() -> u32 {
    3
}
fn default_smtp_port() -> u16 {
    25
}
fn default_ehlo() -> String {
    "monitor.mamori.invalid".into()
}
fn default_filter() -> String {
    "(objectClass=*)".into()
}
fn default_interval() -> u32 {
    60
}
fn default_timeout() -> u32 {
    10
}
fn default_retries() -> u32 {
    2
}
fn default_retry_interval() -> u32 {
    20
}

/// The state of a monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not checked yet.
    Unknown,
    /// Working.
    Up,
    /// Working, with a warning (near-expiry certificate, slow, content changed).
    Degraded,
    /// Failing, retries left before DOWN.
    Pending,
    /// Failing: a fault is open.
    Down,
    /// Failing because a monitor it depends on is DOWN.
    Unreachable,
    /// Inside a maintenance window.
    Maintenance,
    /// Switched off.
    Paused,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 8] =
        [Status::Unknown, Status::Up, Status::Degraded, Status::Pending, Status::Down, Status::Unreachable, Status::Maintenance, Status::Paused];

    /// Returns the stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Up => "up",
            Status::Degraded => "degraded",
            Status::Pending => "pending",
            Status::Down => "down",
            Status::Unreachable => "unreachable",
            Status::Maintenance => "maintenance",
            Status::Paused => "paused",
        }
    }

    /// Returns the Japanese label.
    pub fn ja(&self) -> &'static str {
        match self {
            Status::Unknown => "確認前",
            Status::Up => "正常",
            Status::Degraded => "注意",
            Status::Pending => "確認中",
            Status::Down => "障害",
            Status::Unreachable => "依存先障害",
            Status::Maintenance => "メンテナンス中",
            Status::Paused => "停止中",
        }
    }

    /// Returns the English label.
    pub fn en(&self) -> &'static str {
        match self {
            Status::Unknown => "Not checked yet",
            Status::Up => "Up",
            Status::Degraded => "Degraded",
            Status::Pending => "Pending",
            Status::Down => "DOWN",
            Status::Unreachable => "Unreachable",
            Status::Maintenance => "Maintenance",
            Status::Paused => "Paused",
        }
    }

    /// Returns true for the states counted as service available.
    pub fn is_available(&self) -> bool {
        matches!(self, Status::Up | Status::Degraded)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Status::ALL.into_iter().find(|x| x.as_str() == s).ok_or(())
    }
}

/// Why a check failed or warned: a stable code and text in both languages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reason {
    /// Stable code, e.g. `connect_refused`, `http_status`, `soa_serial_mismatch`.
    pub code: String,
    /// Japanese text.
    pub ja: String,
    /// English text.
    pub en: String,
}

impl Reason {
    /// Returns a reason.
    pub fn new(code: impl Into<String>, ja: impl Into<String>, en: impl Into<String>) -> Self {
        Self { code: code.into(), ja: ja.into(), en: en.into() }
    }

    /// Returns the text in the given language.
    pub fn text(&self, lang: &str) -> &str {
        if lang == "en" { &self.en } else { &self.ja }
    }
}

/// What one run of a check found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The monitor.
    pub monitor: MonitorId,
    /// When the check started (Unix ms).
    pub at: i64,
    /// `up`, `degraded` or `down` (the check's own verdict, before retries).
    pub status: Status,
    /// Time to complete, in ms.
    pub rt_ms: u32,
    /// Why it failed, or its first warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Facts found: certificate expiry, serials, content hash, …
    #[serde(default)]
    pub details: serde_json::Value,
}

/// A stored check result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResultRow {
    /// When (Unix ms).
    pub at: i64,
    /// The check's verdict.
    pub status: Status,
    /// Response time in ms.
    pub rt_ms: u32,
    /// Reason code, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// The current state of a monitor, as the scheduler keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MonitorState {
    /// The monitor.
    pub monitor: MonitorId,
    /// Current status.
    pub status: Status,
    /// Since when (Unix ms).
    pub since: i64,
    /// Last check (Unix ms), 0 if never.
    pub last_check: i64,
    /// Last response time in ms.
    pub last_rt_ms: u32,
    /// Last reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Failed checks in a row.
    pub failures: u32,
    /// The open fault, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultId>,
    /// Content hash last seen (HTTP checks with `track_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

/// One line of a fault's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaultEntry {
    /// When (Unix ms).
    pub at: i64,
    /// `opened`, `check`, `notified`, `escalated`, `comment`, `acknowledged`, `flapping`, `closed`.
    pub kind: String,
    /// Japanese text.
    pub ja: String,
    /// English text.
    pub en: String,
    /// Who, for entries made by a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// One notification sent (or tried) for a fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notification {
    /// When (Unix ms).
    pub at: i64,
    /// `email` or `webhook`.
    pub channel: String,
    /// Address or URL.
    pub target: String,
    /// `down`, `repeat`, `escalation`, `up`.
    pub reason: String,
    /// Escalation step (0 first).
    pub step: u32,
    /// Whether it was accepted by the peer.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A fault record (障害記録): one DOWN period of one monitor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fault {
    /// Its id.
    pub id: FaultId,
    /// The tenant.
    pub tenant: TenantId,
    /// The monitor.
    pub monitor: MonitorId,
    /// The monitor's name when the fault opened.
    pub monitor_name: String,
    /// When it opened (the first failed check, Unix ms).
    pub opened_at: i64,
    /// When service came back (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<i64>,
    /// The cause.
    pub cause: Reason,
    /// Who acknowledged it, if anybody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// What happened, in order.
    #[serde(default)]
    pub timeline: Vec<FaultEntry>,
    /// Who was told.
    #[serde(default)]
    pub notifications: Vec<Notification>,
}

impl Fault {
    /// Returns the duration in ms (up to `now` while open).
    pub fn duration_ms(&self, now: i64) -> i64 {
        self.closed_at.unwrap_or(now).saturating_sub(self.opened_at).max(0)
    }
}

/// The standard monitors of one municipality, filled in one form.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardSet {
    /// Municipality name used in monitor names, e.g. 「みどり市」.
    pub label: String,
    /// The public web site URL (F01).
    #[serde(default)]
    pub web_url: String,
    /// Text the web page must contain.
    #[serde(default)]
    pub web_keyword: String,
    /// Mail relay `host:port` (F02).
    #[serde(default)]
    pub mail_relay: String,
    /// Proxy `host:port` (F03).
    #[serde(default)]
    pub proxy: String,
    /// URL fetched through the proxy (default: the web site).
    #[serde(default)]
    pub proxy_test_url: String,
    /// DNS zone (F04).
    #[serde(default)]
    pub dns_zone: String,
    /// Name servers, comma or space separated.
    #[serde(default)]
    pub dns_servers: String,
    /// Private CA (PEM) for the municipality's own certificates.
    #[serde(default)]
    pub ca_pem: String,
    /// Seconds between checks (default 60).
    #[serde(default)]
    pub interval_secs: Option<u32>,
}

impl StandardSet {
    /// Returns the specs of the filled-in parts (web, mail relay, proxy, DNS). Every
    /// spec is validated; problems name the form field they come from.
    pub fn specs(&self) -> Result<Vec<MonitorSpec>, Problems> {
        let mut p = Problems::default();
        text(&mut p, "label", &self.label, true, "団体名");
        let ca = (!self.ca_pem.trim().is_empty()).then(|| self.ca_pem.clone());
        let interval = self.interval_secs.unwrap_or(60);
        let spec = |name: String, check: Check| MonitorSpec {
            name,
            check,
            interval_secs: interval,
            timeout_secs: 10.min(interval),
            retries: 2,
            retry_interval_secs: 20.min(interval).max(5),
            depends_on: None,
            probe: None,
            enabled: true,
            maintenance: vec![],
            platform_targets: false,
        };
        let mut out: Vec<(&str, MonitorSpec)> = Vec::new();
        if !self.web_url.trim().is_empty() {
            out.push((
                "web_url",
                spec(
                    format!("{} 公式サイト", self.label),
                    Check::Http(HttpCheck {
                        url: self.web_url.trim().into(),
                        method: default_method(),
                        expect_status: default_status(),
                        keyword: (!self.web_keyword.trim().is_empty()).then(|| self.web_keyword.trim().to_string()),
                        keyword_absent: false,
                        regex: None,
                        max_redirects: default_redirects(),
                        slow_ms: Some(3000),
                        cert_warn_days: default_cert_days(),
                        ca_pem: ca.clone(),
                        track_content: false,
                    }),
                ),
            ));
        }
        if !self.mail_relay.trim().is_empty() {
            match split_host_port(self.mail_relay.trim()).or_else(|| valid_host(self.mail_relay.trim()).then(|| (self.mail_relay.trim().to_string(), 25))) {
                Some((host, port)) => out.push((
                    "mail_relay",
                    spec(
                        format!("{} メール中継", self.label),
                        Check::Smtp(SmtpCheck {
                            host,
                            port,
                            ehlo: default_ehlo(),
                            starttls: StartTls::Required,
                            expect_banner: None,
                            ca_pem: ca.clone(),
                            cert_warn_days: default_cert_days(),
                            test_message: None,
                            slow_ms: None,
                        }),
                    ),
                )),
                None => host_port(&mut p, "mail_relay", &self.mail_relay),
            }
        }
        if !self.proxy.trim().is_empty() {
            let url = if self.proxy_test_url.trim().is_empty() { self.web_url.trim() } else { self.proxy_test_url.trim() };
            if url.is_empty() {
                p.push(Problem::new(
                    "proxy_test_url",
                    "required",
                    "プロキシ経由で取得する URL を入力してください",
                    "a URL to fetch through the proxy is required",
                ));
            } else {
                out.push((
                    "proxy",
                    spec(
                        format!("{} プロキシ", self.label),
                        Check::Proxy(ProxyCheck {
                            proxy: self.proxy.trim().into(),
                            url: url.into(),
                            expect_status: default_status(),
                            ca_pem: ca.clone(),
                            slow_ms: None,
                        }),
                    ),
                ));
            }
        }
        if !self.dns_zone.trim().is_empty() || !self.dns_servers.trim().is_empty() {
            out.push((
                "dns",
                spec(
                    format!("{} 外部 DNS", self.label),
                    Check::Dns(DnsCheck {
                        zone: self.dns_zone.trim().trim_end_matches('.').into(),
                        servers: self.dns_servers.split([',', ' ', '\n', '、']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
                        records: vec![],
                        serial_consistency: true,
                        dnssec: false,
                        dnssec_warn_days: default_sig_days(),
                        refuse_recursion: true,
                    }),
                ),
            ));
        }
        if out.is_empty() && p.0.is_empty() {
            p.push(Problem::new("web_url", "nothing", "監視する項目を1つ以上入力してください", "fill in at least one service to monitor"));
        }
        for (field, s) in &out {
            if let Err(e) = s.validate() {
                for mut x in e.0 {
                    x.field = format!("{field}.{}", x.field);
                    p.push(x);
                }
            }
        }
        p.into_result(out.into_iter().map(|(_, s)| s).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_parse_with_defaults_and_reject_unknown_fields() {
        let s: MonitorSpec = serde_json::from_value(json!({"name": "web", "check": {"type": "http", "url": "https://www.city.example.lg.jp/"}})).unwrap();
        assert_eq!(s.interval_secs, 60);
        let Check::Http(h) = &s.check else { panic!() };
        assert_eq!(h.expect_status, "200-399");
        s.validate().unwrap();
        let bad = serde_json::from_value::<MonitorSpec>(json!({"name": "web", "check": {"type": "http", "url": "https://x/", "urll": 1}}));
        assert!(bad.is_err());
        let bad = serde_json::from_value::<MonitorSpec>(json!({"name": "web", "check": {"type": "gopher"}}));
        assert!(bad.is_err());
    }

    #[test]
    fn validation_lists_every_problem_in_japanese() {
        let s: MonitorSpec = serde_json::from_value(json!({
            "name": "", "interval_secs": 5, "timeout_secs": 0,
            "check": {"type": "dns", "zone": "bad zone", "servers": ["nope"], "records": [{"name": "www", "type": "XYZ"}]}
        }))
        .unwrap();
        let e = s.validate().unwrap_err();
        let codes: Vec<_> = e.0.iter().map(|p| p.code).collect();
        for c in ["required", "invalid_interval", "invalid_timeout", "invalid_host", "invalid_server", "invalid_type"] {
            assert!(codes.contains(&c), "{c} missing from {codes:?}");
        }
        assert!(e.0.iter().all(|p| !p.ja.is_empty()));
    }

    #[test]
    fn status_sets() {
        let s = StatusSet::parse("200-299, 301").unwrap();
        assert!(s.contains(204) && s.contains(301) && !s.contains(302));
        assert!(StatusSet::parse("").is_none() && StatusSet::parse("300-200").is_none() && StatusSet::parse("99").is_none());
    }

    #[test]
    fn weekly_maintenance_in_japan_time() {
        // 2026-11-22 is a Sunday. 02:30 JST = 2026-11-21T17:30Z.
        let at = crate::time::parse_time("2026-11-21T17:30:00Z").unwrap();
        let w = Maintenance::Weekly { weekday: 0, start: "02:00".into(), minutes: 60, note: String::new() };
        assert!(w.covers(at));
        assert!(!w.covers(at + 3_600_000));
        let sat = Maintenance::Weekly { weekday: 6, start: "23:00".into(), minutes: 240, note: String::new() };
        assert!(sat.covers(at), "a window crossing midnight into Sunday");
    }

    #[test]
    fn secrets_are_masked_and_kept_on_edit() {
        let stored: MonitorSpec = serde_json::from_value(
            json!({"name": "ad", "check": {"type": "ldap", "url": "ldaps://ad.example.lg.jp", "bind_dn": "cn=m", "bind_password": "s3cret", "base": "dc=x"}}),
        )
        .unwrap();
        let shown = stored.redacted();
        assert!(!serde_json::to_string(&shown).unwrap().contains("s3cret"));
        let mut edited = shown.clone();
        edited.keep_secrets_of(&stored);
        assert_eq!(edited, stored);
    }

    #[test]
    fn platform_internal_hosts() {
        for h in ["localhost", "127.0.0.1", "127.9.9.9", "::1", "169.254.169.254", "0.0.0.0", "fe80::1", "::ffff:127.0.0.1", "x.localhost."] {
            assert!(is_platform_internal(h), "{h}");
        }
        for h in ["www.city.example.lg.jp", "10.1.2.3", "192.0.2.1", "2001:db8::1"] {
            assert!(!is_platform_internal(h), "{h}");
        }
        let s: MonitorSpec =
            serde_json::from_value(json!({"name": "p", "check": {"type": "proxy", "proxy": "proxy.example:8080", "url": "http://[::1]:80/"}})).unwrap();
        assert_eq!(s.check.hosts(), ["proxy.example", "::1"]);
    }

    #[test]
    fn a_kept_password_never_follows_a_changed_target() {
        let stored: MonitorSpec = serde_json::from_value(
            json!({"name": "ad", "check": {"type": "ldap", "url": "ldaps://ad.example.lg.jp", "bind_dn": "cn=m", "bind_password": "s3cret", "base": "dc=x"}}),
        )
        .unwrap();
        let mut moved = stored.redacted();
        if let Check::Ldap(l) = &mut moved.check {
            l.url = "ldaps://attacker.example".into();
        }
        moved.keep_secrets_of(&stored);
        assert!(!serde_json::to_string(&moved).unwrap().contains("s3cret"));
        assert!(moved.validate().is_err(), "the password must be entered again");
        let plain: MonitorSpec = serde_json::from_value(
            json!({"name": "ad", "check": {"type": "ldap", "url": "ldap://ad.example.lg.jp", "bind_dn": "cn=m", "bind_password": "x", "base": "dc=x"}}),
        )
        .unwrap();
        assert_eq!(plain.validate().unwrap_err().0[0].code, "password_in_clear");
    }

    #[test]
    fn standard_set_expands_and_names_fields() {
        let set = StandardSet {
            label: "みどり市".into(),
            web_url: "https://www.city.midori.example.lg.jp/".into(),
            mail_relay: "mail.city.midori.example.lg.jp:25".into(),
            proxy: "proxy.example.lg.jp:8080".into(),
            dns_zone: "city.midori.example.lg.jp".into(),
            dns_servers: "192.0.2.1, 192.0.2.2:53".into(),
            ..Default::default()
        };
        let specs = set.specs().unwrap();
        assert_eq!(specs.iter().map(|s| s.check.kind()).collect::<Vec<_>>(), ["http", "smtp", "proxy", "dns"]);
        let bad = StandardSet { label: "x".into(), dns_zone: "z.example".into(), dns_servers: "not-an-ip".into(), ..Default::default() };
        let e = bad.specs().unwrap_err();
        assert_eq!(e.0[0].field, "dns.check.servers[0]");
    }
}
