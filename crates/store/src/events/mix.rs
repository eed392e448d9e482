//! Deterministic mixes of realistic events for benchmarks (`cargo bench`,
//! `mamori bench events`), over 50 tenants and 7 days:
//!
//! - [`Kind::Standard`]: web access (40%), firewall traffic (25%), DNS (15%),
//!   authentication (10%), detections, mail and lifecycle, with a ~200-byte syslog raw
//!   record each.
//! - [`Kind::RealSizes`]: the raw records at the sizes real sources send: proxy access
//!   lines (~240 bytes, 45%), firewall traffic logs in key=value syslog (~1 KB, 40%)
//!   and Windows security events as XML (1.8–3.5 KB, 15%).

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

/// Which events a [`Mix`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kind {
    /// Realistic messages with a ~200-byte raw record.
    #[default]
    Standard,
    /// Raw records of real sizes (proxy ~240 B, firewall ~1 KB, Windows XML 1.8–3.5 KB).
    RealSizes,
}

const URLS: [&str; 6] = [
    "https://www.pref.example.lg.jp/kurashi/gomi/bunbetsu.html",
    "https://update.example.com/v2/download/client-x64-2026.12.1.msi",
    "https://cdn.example.net/assets/js/app.bundle.min.js?v=20261201",
    "https://mail.example.lg.jp/owa/auth/logon.aspx?replaceCurrent=1",
    "http://c2.bad.example/gate.php?id=8f14e45fceea167a5a36dedd4bea2543",
    "https://www.e-gov.example.go.jp/shinsei/form/input?proc=120&step=2",
];
const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Microsoft-Delivery-Optimization/10.0",
];

/// Returns one event of tenant `t` at `time` whose raw record has a real size.
pub fn make_real_event(rng: &mut Rng, tenants: &[TenantId], time: i64) -> Event {
    let ti = rng.below(TENANTS as u64) as usize;
    let tenant = tenants[ti];
    let internal = format!("10.{}.{}.{}", ti, rng.below(256), rng.below(254) + 1);
    let external = format!("{}.{}", ["198.51.100", "203.0.113", "192.0.2"][rng.below(3) as usize], rng.below(256));
    let user = USERS[rng.below(USERS.len() as u64) as usize];
    let roll = rng.below(100);
    let (class, message, severity, disposition, raw) = match roll {
        0..45 => {
            let url = URLS[rng.below(URLS.len() as u64) as usize];
            let status = [200, 200, 200, 304, 404, 403][rng.below(6) as usize];
            let denied = url.contains("bad.example");
            let raw = format!(
                "{}.{:03} {:>6} {internal} TCP_{}/{status} {} GET {url} {user} HIER_DIRECT/{external} text/html \"{}\"",
                time / 1000,
                time % 1000,
                rng.below(5000),
                if denied { "DENIED" } else { "MISS" },
                rng.below(200_000),
                AGENTS[rng.below(AGENTS.len() as u64) as usize]
            );
            let message = if denied { format!("不正な通信先へのアクセスを遮断: {url}") } else { format!("GET {url} {status}") };
            let (sev, disp) = if denied { (Severity::HIGH, Disposition::BLOCKED) } else { (Severity::INFO, Disposition::ALLOWED) };
            (EventClass::HTTP_ACTIVITY, message, sev, disp, raw)
        }
        45..85 => {
            let action = if rng.below(20) == 0 { "deny" } else { "accept" };
            let mut raw = format!(
                "<189>date=2026-12-01 time=10:{:02}:{:02} devname=\"FGT-{:02}\" devid=\"FG200F{:010}\" eventtime={time}000000 tz=\"+0900\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" vd=\"root\" srcip={internal} srcport={} srcintf=\"port{}\" srcintfrole=\"lan\" dstip={external} dstport=443 dstintf=\"wan1\" dstintfrole=\"wan\" srccountry=\"Reserved\" dstcountry=\"Japan\" sessionid={} proto=6 action=\"{action}\" policyid={} policytype=\"policy\" poluuid=\"{:08x}-{:04x}-51ef-{:04x}-{:012x}\" policyname=\"LAN-to-Internet\" service=\"HTTPS\" trandisp=\"snat\" transip=203.0.113.{} transport={} appid={} app=\"HTTPS.BROWSER\" appcat=\"Web.Client\" apprisk=\"medium\" applist=\"default\" duration={} sentbyte={} rcvdbyte={} sentpkt={} rcvdpkt={} vwlid=0 utmaction=\"allow\" countweb=1 osname=\"Windows\" srcswversion=\"10 / 2016\" mastersrcmac=\"{:012x}\" srcmac=\"{:012x}\" srcserver=0 dsthwvendor=\"Fortinet\" unauthuser=\"{user}\" unauthusersource=\"kerberos\"",
                rng.below(60),
                rng.below(60),
                ti % 8,
                rng.below(10_000_000_000),
                1024 + rng.below(60_000),
                1 + rng.below(8),
                rng.next_u64() % 100_000_000,
                1 + rng.below(300),
                rng.next_u64() as u32,
                rng.below(65536),
                rng.below(65536),
                rng.next_u64() & 0xffff_ffff_ffff,
                rng.below(256),
                1024 + rng.below(60_000),
                rng.below(50_000),
                rng.below(3600),
                rng.below(10_000_000),
                rng.below(100_000_000),
                rng.below(10_000),
                rng.below(100_000),
                rng.next_u64() & 0xffff_ffff_ffff,
                rng.next_u64() & 0xffff_ffff_ffff,
            );
            raw.push_str(&format!(" crscore={} craction={} crlevel=\"low\"", rng.below(50), rng.below(10_000_000)));
            let (sev, disp) = if action == "deny" { (Severity::LOW, Disposition::BLOCKED) } else { (Severity::INFO, Disposition::ALLOWED) };
            (EventClass::NETWORK_ACTIVITY, format!("TCP {internal} -> {external}:443 {action}"), sev, disp, raw)
        }
        _ => {
            let (id, what, ok) = match rng.below(4) {
                0 => (4625, "ログオンに失敗しました", false),
                1 => (4688, "新しいプロセスが作成されました", true),
                _ => (4624, "アカウントが正常にログオンしました", true),
            };
            let mut raw = format!(
                "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Security-Auditing' Guid='{{54849625-5478-4994-a5ba-3e3b0328c30d}}'/><EventID>{id}</EventID><Version>2</Version><Level>0</Level><Task>12544</Task><Opcode>0</Opcode><Keywords>{}</Keywords><TimeCreated SystemTime='2026-12-01T01:{:02}:{:02}.{:07}Z'/><EventRecordID>{}</EventRecordID><Correlation ActivityID='{{{:08X}-{:04X}-0001-{:04X}-{:012X}}}'/><Execution ProcessID='{}' ThreadID='{}'/><Channel>Security</Channel><Computer>PC{:05}.ad.example.lg.jp</Computer><Security/></System><EventData><Data Name='SubjectUserSid'>S-1-5-18</Data><Data Name='SubjectUserName'>PC{:05}$</Data><Data Name='SubjectDomainName'>AD</Data><Data Name='SubjectLogonId'>0x3e7</Data><Data Name='TargetUserSid'>S-1-5-21-{}-{}-{}-{}</Data><Data Name='TargetUserName'>{user}</Data><Data Name='TargetDomainName'>AD</Data><Data Name='TargetLogonId'>0x{:x}</Data><Data Name='LogonType'>{}</Data><Data Name='LogonProcessName'>User32 </Data><Data Name='AuthenticationPackageName'>Negotiate</Data><Data Name='WorkstationName'>PC{:05}</Data><Data Name='LogonGuid'>{{{:08X}-{:04X}-{:04X}-{:04X}-{:012X}}}</Data><Data Name='TransmittedServices'>-</Data><Data Name='LmPackageName'>-</Data><Data Name='KeyLength'>0</Data><Data Name='ProcessId'>0x{:x}</Data><Data Name='ProcessName'>C:\\Windows\\System32\\svchost.exe</Data><Data Name='IpAddress'>{internal}</Data><Data Name='IpPort'>{}</Data><Data Name='ImpersonationLevel'>%%1833</Data><Data Name='RestrictedAdminMode'>-</Data><Data Name='TargetOutboundUserName'>-</Data><Data Name='TargetOutboundDomainName'>-</Data><Data Name='VirtualAccount'>%%1843</Data><Data Name='TargetLinkedLogonId'>0x0</Data><Data Name='ElevatedToken'>%%1842</Data></EventData>",
                if ok { "0x8020000000000000" } else { "0x8010000000000000" },
                rng.below(60),
                rng.below(60),
                rng.below(10_000_000),
                rng.below(100_000_000),
                rng.next_u64() as u32,
                rng.below(65536),
                rng.below(65536),
                rng.next_u64() & 0xffff_ffff_ffff,
                rng.below(10_000),
                rng.below(10_000),
                rng.below(100_000),
                rng.below(100_000),
                rng.next_u64() as u32,
                rng.next_u64() as u32,
                rng.next_u64() as u32,
                1000 + rng.below(50_000),
                rng.next_u64() & 0xff_ffff,
                [2, 3, 10][rng.below(3) as usize],
                rng.below(100_000),
                rng.next_u64() as u32,
                rng.below(65536),
                rng.below(65536),
                rng.below(65536),
                rng.next_u64() & 0xffff_ffff_ffff,
                rng.below(65536),
                rng.below(65536),
            );
            // Some events carry a rendered message as well (1.8-3.5 KB in all).
            let extra = rng.below(3) as usize;
            for _ in 0..extra {
                raw.push_str("<RenderingInfo Culture='ja-JP'><Message>特権の割り当て: 新しいログオンに特殊な特権が割り当てられました。サブジェクト: セキュリティ ID: SYSTEM アカウント名: SYSTEM</Message><Level>情報</Level><Task>Logon</Task><Opcode>情報</Opcode><Channel>セキュリティ</Channel><Provider>Microsoft Windows security auditing.</Provider><Keywords><Keyword>成功の監査</Keyword></Keywords></RenderingInfo>");
            }
            raw.push_str("</Event>");
            let (sev, disp) = if ok { (Severity::INFO, Disposition::ALLOWED) } else { (Severity::MEDIUM, Disposition::BLOCKED) };
            (EventClass::AUTHENTICATION, format!("Windows イベント {id}: {what} ({user})"), sev, disp, raw)
        }
    };
    let mut e = Event::new(tenant, time, class, message, "mamori-collector");
    e.severity = severity;
    e.disposition = Some(disposition);
    let (src, dst) = if class == EventClass::NETWORK_ACTIVITY || class == EventClass::HTTP_ACTIVITY { (internal, external) } else { (external, internal) };
    e.src = Some(Endpoint { ip: Some(src), port: Some(1024 + rng.below(60_000) as u16), hostname: None });
    e.dst = Some(Endpoint { ip: Some(dst), port: Some(443), hostname: None });
    e.user = Some(user.to_string());
    e.raw = Some(raw);
    e
}

/// The mix of `n` events over the 7 days before `end`: event `i` of them, with the
/// same tenants and times whatever the batch size.
pub struct Mix {
    kind: Kind,
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
        Self::of(Kind::Standard, n, end)
    }

    /// A mix of this kind.
    pub fn of(kind: Kind, n: usize, end: i64) -> Self {
        Mix {
            kind,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            tenants: (0..TENANTS).map(|_| TenantId::new()).collect(),
            start: end - 7 * DAY,
            span: (7 * DAY) as u128,
            n: n.max(1),
        }
    }

    /// Events `from..to` of the mix.
    pub fn batch(&mut self, from: usize, to: usize) -> Vec<Event> {
        let make = match self.kind {
            Kind::Standard => make_event,
            Kind::RealSizes => make_real_event,
        };
        (from..to).map(|i| make(&mut self.rng, &self.tenants, self.start + ((i as u128 * self.span) / self.n as u128) as i64)).collect()
    }

    /// The first ms of the mix.
    pub fn start(&self) -> i64 {
        self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_size_mix_has_the_sizes_it_says() {
        let mut m = Mix::of(Kind::RealSizes, 3000, 1_763_596_800_000 + 7 * DAY);
        let events = m.batch(0, 3000);
        let size = |c: EventClass| -> Vec<usize> { events.iter().filter(|e| e.class == c).map(|e| e.raw.as_ref().map_or(0, String::len)).collect() };
        let avg = |v: &[usize]| v.iter().sum::<usize>() / v.len().max(1);
        let (proxy, fw, win) = (size(EventClass::HTTP_ACTIVITY), size(EventClass::NETWORK_ACTIVITY), size(EventClass::AUTHENTICATION));
        assert!((220..320).contains(&avg(&proxy)), "proxy {}", avg(&proxy));
        assert!((900..1200).contains(&avg(&fw)), "firewall {}", avg(&fw));
        assert!(win.iter().all(|s| (1800..=4200).contains(s)), "windows {:?}", win.iter().min());
        assert!(events.iter().all(|e| e.checked_ocsf().is_ok()));
    }
}
