//! `[components.forward]`: the destinations, each a receiver of its own with its own
//! cursor, filter and format.

use mamori_core::{Problem, Problems};
use mamori_runtime::ComponentConfig;
use serde::{Deserialize, Serialize};

/// Most destinations.
pub const MAX_DESTINATIONS: usize = 32;
/// Most tenants or classes one destination names.
pub const MAX_FILTER: usize = 512;
/// Events per batch, at most.
pub const MAX_BATCH: usize = 10_000;

/// `[components.forward]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// 転送先（外部 SOC 事業者や既存の SIEM）。転送先ごとにカーソルを持ち、すべてのイベントを少なくとも一度送ります。
    /// 項目の一覧と例は運用ガイド「外部の SOC・SIEM へのイベント転送」にあります（[[components.forward.destinations]] の表でも書けます）。
    /// Destinations (outside SOC contractors, existing SIEMs), each with its own cursor: every event is sent at least once.
    /// The operator guide lists every key with examples ([[components.forward.destinations]] tables work too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = example_destinations())]
    pub destinations: Vec<Destination>,
}

fn example_destinations() -> serde_json::Value {
    serde_json::json!([{
        "name": "soc", "kind": "syslog", "address": "siem.example.lg.jp:6514", "protocol": "tcp", "tls": true,
        "format": "cef", "tenants": ["082015"], "classes": [4001, 3002]
    }])
}

/// What a destination receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Syslog: RFC 5424 or CEF, over UDP, TCP (TLS: RFC 5425) or RELP.
    Syslog,
    /// Splunk HTTP Event Collector (`/services/collector/event`).
    SplunkHec,
    /// The Elasticsearch / OpenSearch bulk API (`/_bulk`).
    Elasticsearch,
}

impl Kind {
    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Syslog => "syslog",
            Kind::SplunkHec => "Splunk HEC",
            Kind::Elasticsearch => "Elasticsearch / OpenSearch",
        }
    }
}

/// The syslog transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// TCP (RFC 6587; with `tls`, RFC 5425). Sent is not received: a broken
    /// connection can lose what was in flight.
    #[default]
    Tcp,
    /// UDP (RFC 5426): no delivery guarantee at all.
    Udp,
    /// RELP (rsyslog's reliable protocol): every message acknowledged by the receiver.
    Relp,
}

/// The syslog message format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// RFC 5424 with structured data; the message is the event's OCSF JSON.
    #[default]
    Rfc5424,
    /// ArcSight Common Event Format in an RFC 5424 header.
    Cef,
}

/// How syslog messages are delimited on TCP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// `LEN SP MSG` (RFC 6587 octet counting, RFC 5425).
    #[default]
    OctetCounting,
    /// A line feed after each message (newlines inside are replaced).
    Newline,
}

/// Where a new destination starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// With events published from now on.
    #[default]
    New,
    /// With the oldest event the log still has.
    Oldest,
}

/// One destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Destination {
    /// 転送先の名前（英小文字・数字・-・_、1〜48文字）。カーソルと指標の名前になります。
    /// Name (a-z 0-9 - _, 1-48): names its cursor and metrics.
    pub name: String,
    /// 種類: "syslog"、"splunk_hec"、"elasticsearch"（OpenSearch も同じ）。
    /// Kind: "syslog", "splunk_hec" or "elasticsearch" (OpenSearch too).
    pub kind: Option<Kind>,
    /// false にすると送信を止めます（カーソルは残ります）。
    /// false pauses sending (the cursor stays).
    pub enabled: bool,
    /// 送る団体の地方公共団体コード。空なら全団体。
    /// Local government codes of the tenants to send; empty: every tenant.
    pub tenants: Vec<String>,
    /// 送るイベントクラス（OCSF class_uid）。空なら全クラス。
    /// Event classes to send (OCSF class_uid); empty: every class.
    pub classes: Vec<u32>,
    /// これ未満の重大度（severity_id 0〜6）のイベントは送りません。
    /// Events below this severity_id (0-6) are not sent.
    pub min_severity: u8,
    /// 新しい転送先の開始位置: "new"（これから届くイベント）または "oldest"（ログに残る最古から）。
    /// Where a new destination starts: "new" (events from now on) or "oldest" (the oldest the log keeps).
    pub start: Start,
    /// syslog: 受信側の「ホスト:ポート」。
    /// syslog: the receiver's host:port.
    pub address: String,
    /// syslog: "tcp"、"udp"、"relp"（受信確認あり）。
    /// syslog: "tcp", "udp" or "relp" (acknowledged).
    pub protocol: Protocol,
    /// syslog: TLS で送る（tcp と relp）。
    /// syslog: send over TLS (tcp and relp).
    pub tls: bool,
    /// syslog: "rfc5424"（本文は OCSF JSON）または "cef"。
    /// syslog: "rfc5424" (the message is OCSF JSON) or "cef".
    pub format: Format,
    /// syslog over TCP: "octet_counting" または "newline"。
    /// syslog over TCP: "octet_counting" or "newline".
    pub framing: Framing,
    /// syslog: ファシリティ（0〜23、既定 16 = local0）。
    /// syslog: facility (0-23; 16 = local0).
    pub facility: u8,
    /// syslog: HOSTNAME 欄（空ならこのノードのホスト名）。
    /// syslog: the HOSTNAME field (empty: this node's host name).
    pub hostname: String,
    /// syslog: 構造化データの SD-ID（"名前@私企業番号"）。
    /// syslog: the SD-ID of the structured data ("name@private-enterprise-number").
    pub sd_id: String,
    /// HEC と Elasticsearch: 受信側の URL（例: https://splunk.example.lg.jp:8088）。
    /// HEC and Elasticsearch: the receiver's URL (e.g. https://splunk.example.lg.jp:8088).
    pub url: String,
    /// HEC: index 名、Elasticsearch: インデックス名。{tenant}（団体コード）、{class_uid}、{yyyy}、{MM}、{dd}（イベント日付、UTC）を置き換えます。
    /// HEC: the index; Elasticsearch: the index name. {tenant} (local government code), {class_uid}, {yyyy}, {MM}, {dd} (event date, UTC) are replaced.
    pub index: String,
    /// HEC: sourcetype。
    /// HEC: the sourcetype.
    pub sourcetype: String,
    /// HEC: トークンを保管したシークレットの名前（mamori vault set-secret）。
    /// HEC: the name of the secret holding the token (mamori vault set-secret).
    pub token_secret: String,
    /// Elasticsearch: Basic 認証のユーザー名。
    /// Elasticsearch: the user for basic authentication.
    pub user: String,
    /// Elasticsearch: そのパスワードを保管したシークレットの名前。
    /// Elasticsearch: the name of the secret holding its password.
    pub password_secret: String,
    /// Elasticsearch: API キー（id:key を base64 にしたもの）を保管したシークレットの名前。
    /// Elasticsearch: the name of the secret holding an API key (base64 of id:key).
    pub api_key_secret: String,
    /// 受信側の証明書を検証する CA 証明書（PEM）。空なら公開のルート証明書。
    /// CA certificate (PEM) to verify the receiver with; empty: the public roots.
    pub ca_file: String,
    /// 証明書で確かめる名前（空ならアドレスのホスト名）。
    /// Name to verify in the certificate (empty: the address's host).
    pub server_name: String,
    /// ループバック以外へ暗号化せずに送ることを認めます（閉域網の既存 SIEM 向け。既定は拒否）。
    /// Allows sending unencrypted beyond loopback (existing SIEMs on closed networks; refused by default).
    pub insecure_plaintext: bool,
    /// 1回に送る最大イベント数（1〜10000）。
    /// Most events per batch (1-10000).
    pub batch_events: usize,
    /// 1回の送信の制限時間（秒、1〜300）。
    /// Seconds one send may take (1-300).
    pub timeout_secs: u64,
}

impl Default for Destination {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: None,
            enabled: true,
            tenants: Vec::new(),
            classes: Vec::new(),
            min_severity: 0,
            start: Start::New,
            address: String::new(),
            protocol: Protocol::Tcp,
            tls: false,
            format: Format::Rfc5424,
            framing: Framing::OctetCounting,
            facility: 16,
            hostname: String::new(),
            sd_id: "mamori@32473".into(),
            url: String::new(),
            index: String::new(),
            sourcetype: "ocsf".into(),
            token_secret: String::new(),
            user: String::new(),
            password_secret: String::new(),
            api_key_secret: String::new(),
            ca_file: String::new(),
            server_name: String::new(),
            insecure_plaintext: false,
            batch_events: 500,
            timeout_secs: 30,
        }
    }
}

impl Destination {
    /// The name of its durable cursor in the event log.
    pub fn cursor(&self) -> String {
        format!("forward.{}", self.name)
    }

    /// Where it sends, for people.
    pub fn target(&self) -> String {
        match self.kind {
            Some(Kind::Syslog) => {
                let p = match (self.protocol, self.tls) {
                    (Protocol::Udp, _) => "udp",
                    (Protocol::Tcp, false) => "tcp",
                    (Protocol::Tcp, true) => "tls",
                    (Protocol::Relp, false) => "relp",
                    (Protocol::Relp, true) => "relp+tls",
                };
                format!("{p}://{}", self.address)
            }
            _ => self.url.clone(),
        }
    }

    /// The host part of `address` or `url`.
    pub fn host(&self) -> Option<String> {
        match self.kind? {
            Kind::Syslog => split_host_port(&self.address).map(|(h, _)| h),
            _ => {
                let rest = self.url.split_once("://")?.1;
                let authority = rest.split(['/', '?', '#']).next()?;
                if let Some(v6) = authority.strip_prefix('[') {
                    return v6.split_once(']').map(|(h, _)| h.to_string());
                }
                Some(authority.split(':').next()?.to_string())
            }
        }
    }

    /// Whether what it sends is encrypted.
    pub fn encrypted(&self) -> bool {
        match self.kind {
            Some(Kind::Syslog) => self.tls && self.protocol != Protocol::Udp,
            _ => self.url.starts_with("https://"),
        }
    }
}

/// Splits `host:port` (`[v6]:port` for IPv6).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        let (h, p) = s.rsplit_once(':')?;
        if h.contains(':') {
            return None;
        }
        (h, p)
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// The index template with its placeholders taken out.
fn index_rest(index: &str) -> String {
    let mut rest = index.to_string();
    for p in ["{tenant}", "{class_uid}", "{yyyy}", "{MM}", "{dd}"] {
        rest = rest.replace(p, "0");
    }
    rest
}

fn check_index(index: &str) -> bool {
    !index_rest(index).contains(['{', '}']) && index.len() <= 200
}

impl ComponentConfig for ForwardConfig {
    fn validate(&self) -> Result<(), Problems> {
        let mut problems = Problems::default();
        if self.destinations.len() > MAX_DESTINATIONS {
            problems.push(Problem::new(
                "destinations",
                "too_many",
                format!("転送先は {MAX_DESTINATIONS} 個までです"),
                format!("at most {MAX_DESTINATIONS} destinations"),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            let at = |f: &str| format!("destinations[{i}].{f}");
            let name_ok = !d.name.is_empty()
                && d.name.len() <= 48
                && d.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
                && d.name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
            if !name_ok {
                problems.push(Problem::new(
                    at("name"),
                    "invalid",
                    "name は英小文字・数字・-・_ の1〜48文字で指定してください",
                    "name must be 1-48 of a-z 0-9 - _",
                ));
            } else if !names.insert(d.name.clone()) {
                problems.push(Problem::new(
                    at("name"),
                    "duplicate",
                    format!("転送先の名前「{}」が重複しています", d.name),
                    format!("destination name '{}' is used twice", d.name),
                ));
            }
            let Some(kind) = d.kind else {
                problems.push(Problem::new(
                    at("kind"),
                    "required",
                    "kind（syslog、splunk_hec、elasticsearch）を指定してください",
                    "kind is required (syslog, splunk_hec, elasticsearch)",
                ));
                continue;
            };
            if d.tenants.len() > MAX_FILTER || d.classes.len() > MAX_FILTER {
                problems.push(Problem::new(
                    at("tenants"),
                    "too_many",
                    format!("tenants と classes はそれぞれ {MAX_FILTER} 個までです"),
                    format!("at most {MAX_FILTER} tenants and classes each"),
                ));
            }
            for t in &d.tenants {
                if t.parse::<mamori_core::LocalGovCode>().is_err() {
                    problems.push(Problem::new(
                        at("tenants"),
                        "invalid",
                        format!("団体コード「{t}」が正しくありません"),
                        format!("'{t}' is not a local government code"),
                    ));
                }
            }
            if d.min_severity > 6 {
                problems.push(Problem::new(at("min_severity"), "invalid", "min_severity は0〜6で指定してください", "min_severity must be 0-6"));
            }
            if !(1..=MAX_BATCH).contains(&d.batch_events) {
                problems.push(Problem::new(
                    at("batch_events"),
                    "invalid",
                    format!("batch_events は1〜{MAX_BATCH}で指定してください"),
                    format!("batch_events must be 1-{MAX_BATCH}"),
                ));
            }
            if !(1..=300).contains(&d.timeout_secs) {
                problems.push(Problem::new(at("timeout_secs"), "invalid", "timeout_secs は1〜300で指定してください", "timeout_secs must be 1-300"));
            }
            let mut target_ok = true;
            match kind {
                Kind::Syslog => {
                    if split_host_port(&d.address).is_none() {
                        target_ok = false;
                        problems.push(Problem::new(at("address"), "invalid", "address は「ホスト:ポート」で指定してください", "address must be host:port"));
                    }
                    if d.tls && d.protocol == Protocol::Udp {
                        problems.push(Problem::new(at("tls"), "invalid", "UDP では TLS を使えません", "TLS cannot be used with UDP"));
                    }
                    if d.facility > 23 {
                        problems.push(Problem::new(at("facility"), "invalid", "facility は0〜23で指定してください", "facility must be 0-23"));
                    }
                    let sd_ok = d.sd_id.split_once('@').is_some_and(|(n, pen)| {
                        !n.is_empty()
                            && !pen.is_empty()
                            && d.sd_id.len() <= 32
                            && d.sd_id.bytes().all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"' | b' '))
                    });
                    if !sd_ok {
                        problems.push(Problem::new(
                            at("sd_id"),
                            "invalid",
                            "sd_id は「名前@番号」（32文字まで）で指定してください",
                            "sd_id must be name@number (up to 32 characters)",
                        ));
                    }
                    if d.hostname.len() > 255 || d.hostname.bytes().any(|b| !(33..=126).contains(&b)) {
                        problems.push(Problem::new(
                            at("hostname"),
                            "invalid",
                            "hostname は空白を含まない ASCII 255文字までです",
                            "hostname must be up to 255 printable ASCII characters",
                        ));
                    }
                }
                Kind::SplunkHec | Kind::Elasticsearch => {
                    let authority = d.url.split_once("://").map(|(_, r)| r.split(['/', '?', '#']).next().unwrap_or("")).unwrap_or("");
                    if authority.contains('@') {
                        target_ok = false;
                        problems.push(Problem::new(
                            at("url"),
                            "credentials",
                            "url に認証情報を含めないでください（user と password_secret、または token_secret を使います）",
                            "url must not hold credentials (use user and password_secret, or token_secret)",
                        ));
                    } else if !(d.url.starts_with("https://") || d.url.starts_with("http://")) || d.host().is_none_or(|h| h.is_empty()) {
                        target_ok = false;
                        problems.push(Problem::new(
                            at("url"),
                            "invalid",
                            "url は http:// または https:// で始めてください",
                            "url must start with http:// or https://",
                        ));
                    }
                    if !check_index(&d.index) {
                        problems.push(Problem::new(
                            at("index"),
                            "invalid",
                            "index に使える置き換えは {tenant}、{class_uid}、{yyyy}、{MM}、{dd} です",
                            "index may use {tenant}, {class_uid}, {yyyy}, {MM} and {dd}",
                        ));
                    }
                    if kind == Kind::SplunkHec && d.token_secret.is_empty() {
                        problems.push(Problem::new(
                            at("token_secret"),
                            "required",
                            "HEC のトークンを保管したシークレットの名前を指定してください",
                            "token_secret is required for Splunk HEC",
                        ));
                    }
                    if kind == Kind::Elasticsearch {
                        if d.index.is_empty() {
                            problems.push(Problem::new(
                                at("index"),
                                "required",
                                "index（例: mamori-{tenant}-{yyyy}.{MM}.{dd}）を指定してください",
                                "index is required (e.g. mamori-{tenant}-{yyyy}.{MM}.{dd})",
                            ));
                        } else if index_rest(&d.index) != index_rest(&d.index).to_lowercase()
                            || d.index.starts_with(['-', '_', '+'])
                            || d.index.contains([' ', ',', '#', '\\', '/', '*', '?', '"', '<', '>', '|', ':'])
                        {
                            problems.push(Problem::new(
                                at("index"),
                                "invalid",
                                "インデックス名は英小文字で、空白や , # \\ / * ? \" < > | : を含められません",
                                "index names are lower case without spaces or , # \\ / * ? \" < > | :",
                            ));
                        }
                        if !d.user.is_empty() && d.password_secret.is_empty() {
                            problems.push(Problem::new(
                                at("password_secret"),
                                "required",
                                "user を指定したときは password_secret も指定してください",
                                "password_secret is required with user",
                            ));
                        }
                    }
                }
            }
            if target_ok && !d.encrypted() && !d.insecure_plaintext && d.host().is_some_and(|h| !is_loopback(&h)) {
                problems.push(Problem::new(
                    at("tls"),
                    "plaintext",
                    "ループバック以外へは TLS（syslog は tls = true、HTTP は https://）で送ってください。閉域網で暗号化できない受信側には insecure_plaintext = true を指定します",
                    "beyond loopback, send over TLS (syslog: tls = true; HTTP: https://); for a receiver on a closed network that cannot, set insecure_plaintext = true",
                ));
            }
        }
        problems.into_result(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(d: Destination) -> Result<(), Problems> {
        ForwardConfig { destinations: vec![d] }.validate()
    }

    fn syslog() -> Destination {
        Destination { name: "soc".into(), kind: Some(Kind::Syslog), address: "127.0.0.1:514".into(), ..Default::default() }
    }

    #[test]
    fn a_good_destination_passes_and_bad_ones_say_why() {
        assert!(one(syslog()).is_ok());
        let codes = |d: Destination| one(d).unwrap_err().0.iter().map(|p| format!("{}:{}", p.field, p.code)).collect::<Vec<_>>();
        assert_eq!(codes(Destination { name: "Bad Name".into(), ..syslog() }), ["destinations[0].name:invalid"]);
        assert_eq!(codes(Destination { kind: None, ..syslog() }), ["destinations[0].kind:required"]);
        assert_eq!(codes(Destination { address: "nohost".into(), ..syslog() }), ["destinations[0].address:invalid"]);
        assert_eq!(codes(Destination { protocol: Protocol::Udp, tls: true, ..syslog() }), ["destinations[0].tls:invalid"]);
        assert_eq!(codes(Destination { address: "siem.example.lg.jp:514".into(), ..syslog() }), ["destinations[0].tls:plaintext"]);
        assert!(one(Destination { address: "siem.example.lg.jp:514".into(), insecure_plaintext: true, ..syslog() }).is_ok());
        assert!(one(Destination { address: "siem.example.lg.jp:6514".into(), tls: true, ..syslog() }).is_ok());
        assert_eq!(codes(Destination { tenants: vec!["12345".into()], ..syslog() }), ["destinations[0].tenants:invalid"]);
        let es = Destination {
            name: "es".into(),
            kind: Some(Kind::Elasticsearch),
            url: "https://es.example.lg.jp:9200".into(),
            index: "mamori-{tenant}-{yyyy}.{MM}".into(),
            ..Default::default()
        };
        assert!(one(es.clone()).is_ok());
        assert_eq!(codes(Destination { index: "Mamori".into(), ..es.clone() }), ["destinations[0].index:invalid"]);
        assert_eq!(codes(Destination { index: "m-{host}".into(), ..es.clone() }), ["destinations[0].index:invalid"]);
        assert_eq!(codes(Destination { url: "ftp://x".into(), ..es.clone() }), ["destinations[0].url:invalid"]);
        assert_eq!(codes(Destination { url: "https://elastic:secret@es.example.lg.jp:9200".into(), ..es.clone() }), ["destinations[0].url:credentials"]);
        let hec = Destination { name: "hec".into(), kind: Some(Kind::SplunkHec), url: "https://splunk:8088".into(), ..Default::default() };
        assert_eq!(codes(hec.clone()), ["destinations[0].token_secret:required"]);
        let two = ForwardConfig { destinations: vec![syslog(), syslog()] }.validate().unwrap_err();
        assert_eq!(two.0.iter().map(|p| p.code).collect::<Vec<_>>(), ["duplicate"]);
    }

    #[test]
    fn hosts_and_targets() {
        assert_eq!(split_host_port("[::1]:514"), Some(("::1".into(), 514)));
        assert_eq!(split_host_port("a.b:0"), None);
        assert_eq!(split_host_port("::1:514"), None);
        let d = Destination { kind: Some(Kind::Elasticsearch), url: "https://[2001:db8::1]:9200/x".into(), ..Default::default() };
        assert_eq!(d.host().as_deref(), Some("2001:db8::1"));
        assert_eq!(Destination { protocol: Protocol::Relp, tls: true, ..syslog() }.target(), "relp+tls://127.0.0.1:514");
    }
}
