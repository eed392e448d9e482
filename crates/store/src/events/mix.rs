//! A deterministic mix of realistic events for benchmarks (`cargo bench`,
//! `mamori bench events`): web access (40%), firewall traffic (25%), DNS (15%),
//! authentication (10%), detections, mail and lifecycle, with a ~200-byte syslog raw
//! record each, over 50 tenants and 7 days.

use mamori_core::{Disposition, Endpoint, Event, EventClass, Severity, TenantId};
use serde_json::json;

/// Tenants of the mix.
pub const TENANTS: usize = 50;
/// One day in ms.
pub const DAY: i64 = 86_400_000;

/// xorshift64*: deterministic and dependency-free.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

const PATHS: [&str; 8] =
    ["/", "/portal/login", "/kurashi/gomi.html", "/api/v1/forms", "/admin/login", "/bousai/index.html", "/wp-login.php", "/search?q=%E7%A8%8E"];
const USERS: [&str; 6] = ["tanaka", "suzuki", "sato", "takahashi", "watanabe", "admin"];
const DOMAINS: [&str; 5] = ["www.pref.example.lg.jp", "mail.example.lg.jp", "update.example.com", "cdn.example.net", "c2.bad.example"];

/// Returns one realistic event of tenant `t` at `time`.
pub fn make_event(rng: &mut Rng, tenants: &[TenantId], time: i64) -> Event {
    let ti = rng.below(TENANTS as u64) as usize;
    let tenant = tenants[ti];
    let internal = format!("10.{}.{}.{}", ti, rng.below(256), rng.below(254) + 1);
    let external = format!("{}.{}", ["198.51.100", "203.0.113", "192.0.2"][rng.below(3) as usize], rng.below(256));
    let roll = rng.below(100);
    let (class, message, severity, disposition) = match roll {
        0..40 => {
            let path = PATHS[rng.below(PATHS.len() as u64) as usize];
            if rng.below(200) == 0 {
                (EventClass::HTTP_ACTIVITY, format!("県庁への不正アクセスを検知: {path}"), Severity::HIGH, Disposition::BLOCKED)
            } else {
                let status = [200, 200, 200, 304, 404, 403][rng.below(6) as usize];
                (EventClass::HTTP_ACTIVITY, format!("GET {path} {status}"), Severity::INFO, Disposition::ALLOWED)
            }
        }
        40..65 => (EventClass::NETWORK_ACTIVITY, format!("TCP {internal} -> {external}:443 許可"), Severity::INFO, Disposition::ALLOWED),
        65..80 => {
            let d = DOMAINS[rng.below(DOMAINS.len() as u64) as usize];
            (EventClass::DNS_ACTIVITY, format!("DNS 問い合わせ {d} A"), Severity::INFO, Disposition::LOGGED)
        }
        80..90 => {
            let u = USERS[rng.below(USERS.len() as u64) as usize];
            if rng.below(4) == 0 {
                (EventClass::AUTHENTICATION, format!("ログイン失敗: ユーザー {u}"), Severity::MEDIUM, Disposition::BLOCKED)
            } else {
                (EventClass::AUTHENTICATION, format!("ログイン成功: ユーザー {u}"), Severity::INFO, Disposition::ALLOWED)
            }
        }
        90..95 => (EventClass::DETECTION_FINDING, format!("マルウェア通信の疑い: {external} (C2)"), Severity::CRITICAL, Disposition::BLOCKED),
        95..98 => (EventClass::EMAIL_ACTIVITY, "添付ファイルを無害化しました: 請求書.zip".to_string(), Severity::LOW, Disposition::CORRECTED),
        _ => (EventClass::APPLICATION_LIFECYCLE, "mamori-edge を再起動しました".to_string(), Severity::INFO, Disposition::LOGGED),
    };
    let mut e = Event::new(tenant, time, class, message, "mamori-edge");
    e.severity = severity;
    e.disposition = Some(disposition);
    let inbound = class == EventClass::HTTP_ACTIVITY || class == EventClass::AUTHENTICATION;
    let (src, dst) = if inbound { (external, internal) } else { (internal, external) };
    let sport = 1024 + rng.below(60_000) as u16;
    e.src = Some(Endpoint { ip: Some(src.clone()), port: Some(sport), hostname: None });
    e.dst = Some(Endpoint { ip: Some(dst.clone()), port: Some(443), hostname: None });
    if class == EventClass::AUTHENTICATION {
        e.user = Some(USERS[rng.below(USERS.len() as u64) as usize].to_string());
    }
    if class == EventClass::HTTP_ACTIVITY {
        e.fields.insert("http_request".into(), json!({"http_method": "GET", "url": {"hostname": "www.pref.example.lg.jp"}}));
    }
    let raw = format!(
        "<134>1 {time} fw{:02} mamori-edge 2231 - - action={} src={src} sport={sport} dst={dst} dport=443 proto=tcp bytes={} rule=R{:04} policy=default session={:016x}",
        ti % 4,
        disposition.en().to_lowercase(),
        rng.below(100_000),
        rng.below(2000),
        rng.next_u64()
    );
    e.raw = Some(raw);
    e
}

/// The mix of `n` events over the 7 days before `end`: event `i` of them, with the
/// same tenants and times whatever the batch size.
pub struct Mix {
    rng: Rng,
    /// The tenants.
    pub tenants: Vec<TenantId>,
    start: i64,
    span: u128,
    n: usize,
}

impl Mix {
    /// A mix of `n` events ending at `end` (Unix ms).
    pub fn new(n: usize, end: i64) -> Self {
        Mix {
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            tenants: (0..TENANTS).map(|_| TenantId::new()).collect(),
            start: end - 7 * DAY,
            span: (7 * DAY) as u128,
            n: n.max(1),
        }
    }

    /// Events `from..to` of the mix.
    pub fn batch(&mut self, from: usize, to: usize) -> Vec<Event> {
        (from..to).map(|i| make_event(&mut self.rng, &self.tenants, self.start + ((i as u128 * self.span) / self.n as u128) as i64)).collect()
    }

    /// The first ms of the mix.
    pub fn start(&self) -> i64 {
        self.start
    }
}
