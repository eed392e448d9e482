//! Where a tenant's traffic comes from: network segments, address ranges, mail domains,
//! public FQDNs and the network separation model (α/β, 三層の対策).
//!
//! Municipalities reuse the same RFC 1918 ranges (192.168.1.0/24 in two towns is common),
//! so an address alone does not name a tenant. Traffic reaches the security cloud on a
//! **segment**, a network path the operator defines (a line of the prefecture WAN, the
//! LGWAN side, a VPN), and within one segment the ranges of different tenants must not
//! overlap. Across segments they may. [`TenantDirectory`] is the one lookup every
//! component uses: (segment, source address), mail domain or Host header → tenant.
//!
//! Requirements: every function that attributes traffic to a member organization uses
//! this lookup: F06 firewall and F07 IDS/IPS (source address), F10 URL filter and F03
//! proxy (source address), F11/F43/F45 mail (recipient domain), F14 WAF and F41
//! additional FQDNs (Host), F18 log collection (sender address). The separation model
//! marks F21 (EDR for β/β′), F47 (virtual browser, α) and F48 (cloud services, α′).

use crate::{Problem, TenantId};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A network segment's name: 1–32 of `a-z`, `0-9` and `-`, starting with a letter.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct SegmentName(String);

impl SegmentName {
    /// The segment every range without a named one belongs to.
    pub const DEFAULT: &'static str = "default";

    /// Returns the default segment's name.
    pub fn default_segment() -> Self {
        Self(Self::DEFAULT.to_string())
    }

    /// Returns the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SegmentName {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        let s = s.trim();
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(Problem::new(
                "segment",
                "invalid_segment",
                format!("セグメント名「{s}」は英小文字で始まる32文字以内の英小文字・数字・ハイフンで入力してください"),
                format!("segment name '{s}' must be 1-32 of a-z, 0-9 and '-', starting with a letter"),
            ))
        }
    }
}

impl TryFrom<String> for SegmentName {
    type Error = Problem;
    fn try_from(s: String) -> Result<Self, Problem> {
        s.parse()
    }
}

impl From<SegmentName> for String {
    fn from(s: SegmentName) -> String {
        s.0
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SegmentName({})", self.0)
    }
}

/// Which side of a municipality's separated network a segment carries (三層の対策).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    /// インターネット接続系
    Internet,
    /// LGWAN接続系
    Lgwan,
}

impl Zone {
    /// Every zone, in display order.
    pub const ALL: [Zone; 2] = [Zone::Internet, Zone::Lgwan];

    /// Returns the stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Zone::Internet => "internet",
            Zone::Lgwan => "lgwan",
        }
    }

    /// Returns the Japanese name.
    pub fn ja(&self) -> &'static str {
        match self {
            Zone::Internet => "インターネット接続系",
            Zone::Lgwan => "LGWAN接続系",
        }
    }

    /// Returns the English name.
    pub fn en(&self) -> &'static str {
        match self {
            Zone::Internet => "Internet-connected",
            Zone::Lgwan => "LGWAN-connected",
        }
    }
}

impl FromStr for Zone {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        let t = s.trim();
        Zone::ALL.into_iter().find(|z| z.as_str() == t || z.ja() == t).ok_or_else(|| {
            Problem::new("zone", "invalid_zone", format!("接続系「{t}」は不明です（internet または lgwan）"), format!("unknown zone '{t}' (internet or lgwan)"))
        })
    }
}

/// A network segment as the operator defines it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Name, referred to by tenant ranges and listener configs.
    pub name: SegmentName,
    /// Label shown in the console, e.g. 県WAN 回線A.
    pub label: String,
    /// The side it carries.
    pub zone: Zone,
    /// Notes for operators.
    #[serde(default)]
    pub notes: String,
}

impl Segment {
    /// Checks a segment typed by an operator.
    pub fn check(name: &str, label: &str, zone: &str, notes: &str) -> Result<Segment, crate::Problems> {
        let mut problems = crate::Problems::default();
        let name = name.parse::<SegmentName>().map_err(|p| problems.push(p)).ok();
        let zone = zone.parse::<Zone>().map_err(|p| problems.push(p)).ok();
        let label = label.trim().to_string();
        if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
            problems.push(Problem::new("label", "invalid_label", "表示名を100文字以内で入力してください", "label is required (at most 100 characters)"));
        }
        let notes = notes.trim().to_string();
        if notes.chars().count() > 2000 {
            problems.push(Problem::new("notes", "too_long", "備考が長すぎます（2000文字まで）", "notes are too long (at most 2000 characters)"));
        }
        match (name, zone) {
            (Some(name), Some(zone)) if problems.0.is_empty() => Ok(Segment { name, label, zone, notes }),
            _ => Err(problems),
        }
    }
}

/// An address range of a tenant on one segment. Written `CIDR` (the default segment)
/// or `CIDR@segment`, e.g. `192.168.1.0/24@wan-a`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct NetworkRange {
    /// The range, truncated to its network address.
    pub net: IpNet,
    /// The segment it is reached on.
    pub segment: SegmentName,
}

impl NetworkRange {
    /// Returns whether the two ranges share an address on the same segment.
    pub fn overlaps(&self, other: &NetworkRange) -> bool {
        self.segment == other.segment && (self.net.contains(&other.net.network()) || other.net.contains(&self.net.network()))
    }
}

impl FromStr for NetworkRange {
    type Err = Problem;
    fn from_str(input: &str) -> Result<Self, Problem> {
        let s = input.trim();
        let (cidr, segment) = match s.split_once('@') {
            Some((c, seg)) => (c.trim(), seg.parse::<SegmentName>().map_err(|p| p.within("network_ranges."))?),
            None => (s, SegmentName::default_segment()),
        };
        let net = cidr.parse::<IpNet>().or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
            Problem::new(
                "network_ranges",
                "invalid_range",
                format!("ネットワーク範囲「{s}」はCIDR形式（例: 192.0.2.0/24、セグメント指定は 192.0.2.0/24@wan-a）で入力してください"),
                format!("network range '{s}' must be in CIDR notation (e.g. 192.0.2.0/24, or 192.0.2.0/24@wan-a for a segment)"),
            )
        })?;
        Ok(Self { net: net.trunc(), segment })
    }
}

impl TryFrom<String> for NetworkRange {
    type Error = Problem;
    fn try_from(s: String) -> Result<Self, Problem> {
        s.parse()
    }
}

impl From<NetworkRange> for String {
    fn from(r: NetworkRange) -> String {
        r.to_string()
    }
}

impl fmt::Display for NetworkRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segment.as_str() == SegmentName::DEFAULT { write!(f, "{}", self.net) } else { write!(f, "{}@{}", self.net, self.segment) }
    }
}

impl fmt::Debug for NetworkRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkRange({self})")
    }
}

/// A DNS name: lower-case ASCII letters, digits and hyphens in labels of 1–63, at least
/// two labels, 253 characters at most, no trailing dot. Internationalized names are
/// written in their `xn--` form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    /// Returns the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the names from this one up to its last two labels, most specific first:
    /// `a.city.example.lg.jp` gives itself, `city.example.lg.jp`, `example.lg.jp`, `lg.jp`.
    fn suffixes(name: &str) -> impl Iterator<Item = &str> {
        let dots = name.bytes().filter(|b| *b == b'.').count();
        std::iter::successors(Some(name), |n| n.split_once('.').map(|(_, rest)| rest)).take(dots)
    }
}

impl FromStr for DomainName {
    type Err = Problem;
    fn from_str(input: &str) -> Result<Self, Problem> {
        let s = input.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if s.len() <= 253 && s.contains('.') && s.split('.').all(label_ok) {
            Ok(Self(s))
        } else {
            let shown = input.trim();
            Err(Problem::new(
                "domain",
                "invalid_domain",
                format!("ドメイン名「{shown}」の形式が正しくありません（日本語ドメインは xn-- で始まる形で入力してください）"),
                format!("'{shown}' is not a domain name (write internationalized names in their xn-- form)"),
            ))
        }
    }
}

impl TryFrom<String> for DomainName {
    type Error = Problem;
    fn try_from(s: String) -> Result<Self, Problem> {
        s.parse()
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> String {
        d.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({})", self.0)
    }
}

/// A municipality's network separation model (総務省「三層の対策」の見直し).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeparationModel {
    /// α: work on the LGWAN side; the Internet only through isolation (virtual browser).
    #[default]
    Alpha,
    /// α′: the LGWAN side, with cloud services such as Microsoft 365 made usable.
    AlphaPrime,
    /// β: work on the Internet side; EDR required.
    Beta,
    /// β′: most work on the Internet side, some systems kept on LGWAN; EDR required.
    BetaPrime,
}

impl SeparationModel {
    /// Every model, in display order.
    pub const ALL: [SeparationModel; 4] = [SeparationModel::Alpha, SeparationModel::AlphaPrime, SeparationModel::Beta, SeparationModel::BetaPrime];

    /// Returns the stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            SeparationModel::Alpha => "alpha",
            SeparationModel::AlphaPrime => "alpha_prime",
            SeparationModel::Beta => "beta",
            SeparationModel::BetaPrime => "beta_prime",
        }
    }

    /// Returns the short symbol, e.g. `β′`.
    pub fn symbol(&self) -> &'static str {
        match self {
            SeparationModel::Alpha => "α",
            SeparationModel::AlphaPrime => "α′",
            SeparationModel::Beta => "β",
            SeparationModel::BetaPrime => "β′",
        }
    }

    /// Returns a Japanese description.
    pub fn ja(&self) -> &'static str {
        match self {
            SeparationModel::Alpha => "αモデル（LGWAN接続系で業務、インターネットは分離して利用）",
            SeparationModel::AlphaPrime => "α′モデル（LGWAN接続系で業務、クラウドサービスを利用）",
            SeparationModel::Beta => "βモデル（インターネット接続系で業務）",
            SeparationModel::BetaPrime => "β′モデル（主な業務をインターネット接続系で実施）",
        }
    }

    /// Returns an English description.
    pub fn en(&self) -> &'static str {
        match self {
            SeparationModel::Alpha => "α model (work on LGWAN, Internet through isolation)",
            SeparationModel::AlphaPrime => "α′ model (work on LGWAN, with cloud services)",
            SeparationModel::Beta => "β model (work on the Internet side)",
            SeparationModel::BetaPrime => "β′ model (most work on the Internet side)",
        }
    }

    /// Returns whether endpoints must be watched by EDR (F21).
    pub fn requires_edr(&self) -> bool {
        matches!(self, SeparationModel::Beta | SeparationModel::BetaPrime)
    }
}

impl FromStr for SeparationModel {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        let t = s.trim();
        let t = t.strip_suffix("モデル").unwrap_or(t);
        SeparationModel::ALL.into_iter().find(|m| m.as_str() == t || m.symbol() == t || (t.ends_with('\'') && m.symbol().replace('′', "'") == t)).ok_or_else(
            || {
                Problem::new(
                    "separation",
                    "invalid_separation",
                    format!("分離モデル「{t}」は不明です（alpha, alpha_prime, beta, beta_prime のいずれか）"),
                    format!("unknown separation model '{t}' (alpha, alpha_prime, beta, beta_prime)"),
                )
            },
        )
    }
}

/// What the directory knows of a tenant, for components that act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantEntry {
    /// Identifier.
    pub id: TenantId,
    /// Name, e.g. 桜川市.
    pub name: String,
    /// Local government code, e.g. `082015`.
    pub code: String,
    /// Network separation model.
    pub separation: SeparationModel,
    /// The zones of the segments it has ranges on.
    pub zones: Vec<Zone>,
}

/// One IP family's ranges of a segment, by prefix length: a longest-prefix match tries
/// the lengths present, longest first, each one hash lookup.
#[derive(Debug, Default)]
struct PrefixTable {
    /// Prefix lengths present, longest first.
    lengths: Vec<u8>,
    by_len: HashMap<(u8, u128), TenantId>,
}

impl PrefixTable {
    fn insert(&mut self, len: u8, key: u128, tenant: TenantId) {
        self.by_len.insert((len, key), tenant);
        if let Err(at) = self.lengths.binary_search_by(|l| len.cmp(l)) {
            self.lengths.insert(at, len);
        }
    }

    fn lookup(&self, addr: u128, bits: u8) -> Option<TenantId> {
        self.lengths.iter().find_map(|&len| self.by_len.get(&(len, mask(addr, len, bits))).copied())
    }
}

fn mask(addr: u128, len: u8, bits: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let keep = u128::MAX << (u32::from(bits) - u32::from(len));
    addr & keep
}

fn key(addr: IpAddr) -> (u128, u8, bool) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32, false),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (u128::from(u32::from(v4)), 32, false),
            None => (u128::from(a), 128, true),
        },
    }
}

/// Everything that maps traffic to a tenant, built from the tenants and segments of the
/// config store. Components hold it behind the runtime's `TenantResolver`, which swaps
/// in a new one when tenants change.
#[derive(Debug, Default)]
pub struct TenantDirectory {
    segments: HashMap<SegmentName, Segment>,
    v4: HashMap<SegmentName, PrefixTable>,
    v6: HashMap<SegmentName, PrefixTable>,
    mail: HashMap<String, TenantId>,
    fqdns: HashMap<String, TenantId>,
    tenants: HashMap<TenantId, TenantEntry>,
}

impl TenantDirectory {
    /// Builds the directory. Conflicts the store refuses (an overlap within a segment, a
    /// domain of two tenants) cannot occur here; if they did, the later tenant wins.
    pub fn build<'a>(segments: impl IntoIterator<Item = Segment>, tenants: impl IntoIterator<Item = &'a crate::Tenant>) -> Self {
        let mut d = TenantDirectory { segments: segments.into_iter().map(|s| (s.name.clone(), s)).collect(), ..Default::default() };
        for t in tenants {
            let mut zones = Vec::new();
            for r in &t.network_ranges {
                let (table, bits) = match r.net {
                    IpNet::V4(_) => (d.v4.entry(r.segment.clone()).or_default(), 32),
                    IpNet::V6(_) => (d.v6.entry(r.segment.clone()).or_default(), 128),
                };
                let addr = match r.net {
                    IpNet::V4(n) => u128::from(u32::from(n.network())),
                    IpNet::V6(n) => u128::from(n.network()),
                };
                table.insert(r.net.prefix_len(), mask(addr, r.net.prefix_len(), bits), t.id);
                if let Some(seg) = d.segments.get(&r.segment)
                    && !zones.contains(&seg.zone)
                {
                    zones.push(seg.zone);
                }
            }
            for m in &t.mail_domains {
                d.mail.insert(m.0.clone(), t.id);
            }
            for f in &t.fqdns {
                d.fqdns.insert(f.0.clone(), t.id);
            }
            d.tenants.insert(t.id, TenantEntry { id: t.id, name: t.name.clone(), code: t.code.to_string(), separation: t.separation, zones });
        }
        d
    }

    /// Returns the tenant whose range on `segment` holds `addr`, the most specific range
    /// winning. An IPv4-mapped IPv6 address is looked up as IPv4.
    pub fn by_address(&self, segment: &SegmentName, addr: IpAddr) -> Option<TenantId> {
        let (k, bits, v6) = key(addr);
        let table = if v6 { self.v6.get(segment) } else { self.v4.get(segment) }?;
        table.lookup(k, bits)
    }

    /// Returns the tenant a mail domain belongs to: the domain itself, else the nearest
    /// registered parent (`mail.city.example.lg.jp` → `city.example.lg.jp`). Takes a
    /// whole address too (`user@domain`).
    pub fn by_mail_domain(&self, domain_or_address: &str) -> Option<TenantId> {
        let domain = domain_or_address.rsplit_once('@').map_or(domain_or_address, |(_, d)| d);
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        DomainName::suffixes(&domain).find_map(|d| self.mail.get(d).copied())
    }

    /// Returns the tenant serving a public FQDN (a Host header or TLS SNI; a port is
    /// ignored). Only exact names match: each FQDN is subscribed on its own (F41).
    pub fn by_fqdn(&self, host: &str) -> Option<TenantId> {
        let host = host.trim();
        let host = match host.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        self.fqdns.get(host.trim_end_matches('.').to_ascii_lowercase().as_str()).copied()
    }

    /// Returns what the directory knows of a tenant.
    pub fn tenant(&self, id: TenantId) -> Option<&TenantEntry> {
        self.tenants.get(&id)
    }

    /// Returns the tenant with this local government code.
    pub fn by_code(&self, code: &str) -> Option<TenantId> {
        self.tenants.values().find(|t| t.code == code).map(|t| t.id)
    }

    /// Returns a segment by name.
    pub fn segment(&self, name: &SegmentName) -> Option<&Segment> {
        self.segments.get(name)
    }

    /// Returns how many tenants it holds.
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    /// Returns whether it holds no tenant.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_with_and_without_segment() {
        let r: NetworkRange = "192.168.1.7/24@wan-a".parse().unwrap();
        assert_eq!(r.to_string(), "192.168.1.0/24@wan-a");
        let d: NetworkRange = "2001:db8::1".parse().unwrap();
        assert_eq!(d.to_string(), "2001:db8::1/128");
        assert_eq!(d.segment.as_str(), "default");
        assert_eq!("10.0.0.0/8@Bad".parse::<NetworkRange>().unwrap_err().code, "invalid_segment");
        assert_eq!("10.0.0.0/33".parse::<NetworkRange>().unwrap_err().code, "invalid_range");
        let json = serde_json::to_string(&vec![r.clone()]).unwrap();
        assert_eq!(json, r#"["192.168.1.0/24@wan-a"]"#);
        // What earlier versions stored reads as the default segment.
        let old: Vec<NetworkRange> = serde_json::from_str(r#"["192.0.2.0/24"]"#).unwrap();
        assert_eq!(old[0].segment.as_str(), "default");
    }

    #[test]
    fn overlap_is_within_one_segment_only() {
        let a: NetworkRange = "192.168.1.0/24@wan-a".parse().unwrap();
        let b: NetworkRange = "192.168.1.128/25@wan-a".parse().unwrap();
        let c: NetworkRange = "192.168.1.0/24@wan-b".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }

    #[test]
    fn domains_are_normalized_and_checked() {
        assert_eq!("City.Sakuragawa.LG.JP.".parse::<DomainName>().unwrap().as_str(), "city.sakuragawa.lg.jp");
        for bad in ["localhost", "-a.jp", "a..jp", "桜川.jp", "a_b.jp", ""] {
            assert!(bad.parse::<DomainName>().is_err(), "{bad}");
        }
        assert!("xn--u9jt50gsvn.jp".parse::<DomainName>().is_ok());
    }

    #[test]
    fn separation_models_parse_by_name_and_symbol() {
        assert_eq!("β′".parse::<SeparationModel>().unwrap(), SeparationModel::BetaPrime);
        assert_eq!("β'".parse::<SeparationModel>().unwrap(), SeparationModel::BetaPrime);
        assert_eq!("αモデル".parse::<SeparationModel>().unwrap(), SeparationModel::Alpha);
        assert_eq!("alpha_prime".parse::<SeparationModel>().unwrap(), SeparationModel::AlphaPrime);
        assert!("gamma".parse::<SeparationModel>().is_err());
        assert!(SeparationModel::Beta.requires_edr() && !SeparationModel::Alpha.requires_edr());
    }

    fn tenant(name: &str, ranges: &[&str], mail: &[&str], fqdns: &[&str]) -> crate::Tenant {
        crate::Tenant {
            id: TenantId::new(),
            code: "131016".parse().unwrap(),
            name: name.into(),
            kana: "テスト".into(),
            kind: crate::TenantKind::City,
            contacts: vec![],
            network_ranges: ranges.iter().map(|r| r.parse().unwrap()).collect(),
            separation: SeparationModel::Beta,
            mail_domains: mail.iter().map(|r| r.parse().unwrap()).collect(),
            fqdns: fqdns.iter().map(|r| r.parse().unwrap()).collect(),
            services: Default::default(),
            notes: String::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn seg(name: &str, zone: Zone) -> Segment {
        Segment { name: name.parse().unwrap(), label: name.into(), zone, notes: String::new() }
    }

    /// F06/F07/F41: one lookup for every component, with reused private ranges.
    #[test]
    fn directory_resolves_same_range_on_two_segments() {
        let x = tenant(
            "X町",
            &["192.168.1.0/24@wan-a", "10.0.0.0/8@wan-a", "10.1.2.0/24@lgwan", "2001:db8:1::/48@wan-a"],
            &["x.example.lg.jp"],
            &["www.x.example.jp"],
        );
        let y = tenant("Y村", &["192.168.1.0/24@wan-b", "10.1.0.0/16@wan-a"], &["y.example.lg.jp"], &["www.y.example.jp"]);
        let d = TenantDirectory::build([seg("wan-a", Zone::Internet), seg("wan-b", Zone::Internet), seg("lgwan", Zone::Lgwan)], [&x, &y]);
        let a: SegmentName = "wan-a".parse().unwrap();
        let b: SegmentName = "wan-b".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(d.by_address(&a, ip("192.168.1.5")), Some(x.id));
        assert_eq!(d.by_address(&b, ip("192.168.1.5")), Some(y.id));
        assert_eq!(d.by_address(&b, ip("192.168.2.5")), None);
        // The most specific range wins (the store refuses such an overlap between two
        // tenants, but one tenant's nested ranges and older data can have it).
        assert_eq!(d.by_address(&a, ip("10.1.9.9")), Some(y.id));
        assert_eq!(d.by_address(&a, ip("10.2.0.1")), Some(x.id));
        assert_eq!(d.by_address(&a, ip("::ffff:192.168.1.5")), Some(x.id));
        assert_eq!(d.by_address(&a, ip("2001:db8:1::9")), Some(x.id));
        assert_eq!(d.by_address(&a, ip("2001:db8:2::9")), None);
        assert_eq!(d.by_address(&"nowhere".parse().unwrap(), ip("192.168.1.5")), None);
        assert_eq!(d.by_mail_domain("Taro@X.example.lg.jp"), Some(x.id));
        assert_eq!(d.by_mail_domain("mail.y.example.lg.jp"), Some(y.id));
        assert_eq!(d.by_mail_domain("example.lg.jp"), None);
        assert_eq!(d.by_fqdn("WWW.X.example.jp:443"), Some(x.id));
        assert_eq!(d.by_fqdn("other.x.example.jp"), None);
        assert_eq!(d.tenant(x.id).unwrap().zones, vec![Zone::Internet, Zone::Lgwan]);
        assert_eq!(d.len(), 2);
    }
}
