//! Tenants: the prefecture and its member organizations (構成団体).

use crate::catalog;
use crate::network::{DomainName, NetworkRange, SeparationModel};
use crate::{Problem, Problems, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The six-digit local government code (全国地方公共団体コード): two digits of
/// prefecture (01–47), three of organization, and a check digit.
///
/// The check digit is the ones digit of `11 - (Σ dᵢ·wᵢ mod 11)` with weights 6,5,4,3,2
/// over the first five digits (総務省 告示). 東京都 is 130001, 札幌市 011002.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct LocalGovCode([u8; 6]);

impl LocalGovCode {
    /// Returns the check digit for the first five digits.
    pub fn check_digit(first_five: &[u8; 5]) -> u8 {
        let sum: u32 = first_five.iter().zip([6u32, 5, 4, 3, 2]).map(|(d, w)| u32::from(*d) * w).sum();
        ((11 - sum % 11) % 10) as u8
    }

    /// Builds a code from its first five digits, computing the check digit.
    pub fn from_five(first_five: &str) -> Result<Self, Problem> {
        let digits = digits::<5>(first_five).ok_or_else(|| bad_code(first_five))?;
        let mut all = [0u8; 6];
        all[..5].copy_from_slice(&digits);
        all[5] = Self::check_digit(&digits);
        Self::from_str(&all.iter().map(|d| char::from(b'0' + d)).collect::<String>())
    }

    /// Returns the prefecture number (1–47).
    pub fn prefecture(&self) -> u8 {
        self.0[0] * 10 + self.0[1]
    }
}

fn digits<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = [0u8; N];
    for (o, c) in out.iter_mut().zip(b) {
        *o = c - b'0';
    }
    Some(out)
}

fn bad_code(s: &str) -> Problem {
    Problem::new("code", "invalid_code", format!("団体コード「{s}」は6桁の数字で入力してください"), format!("local government code '{s}' must be 6 digits"))
}

impl FromStr for LocalGovCode {
    type Err = Problem;

    fn from_str(input: &str) -> Result<Self, Problem> {
        let s = input.trim();
        let d = digits::<6>(s).ok_or_else(|| bad_code(s))?;
        let pref = d[0] * 10 + d[1];
        if !(1..=47).contains(&pref) {
            return Err(Problem::new(
                "code",
                "invalid_code",
                format!("団体コード「{s}」の先頭2桁（都道府県）は01〜47の範囲で入力してください"),
                format!("local government code '{s}': prefecture part must be 01-47"),
            ));
        }
        let first: [u8; 5] = [d[0], d[1], d[2], d[3], d[4]];
        let expected = Self::check_digit(&first);
        if d[5] != expected {
            return Err(Problem::new(
                "code",
                "invalid_check_digit",
                format!("団体コード「{s}」の検査数字が正しくありません（正しくは{expected}）"),
                format!("local government code '{s}' has a wrong check digit (expected {expected})"),
            ));
        }
        Ok(Self(d))
    }
}

impl TryFrom<String> for LocalGovCode {
    type Error = Problem;
    fn try_from(s: String) -> Result<Self, Problem> {
        s.parse()
    }
}

impl From<LocalGovCode> for String {
    fn from(c: LocalGovCode) -> String {
        c.to_string()
    }
}

impl fmt::Display for LocalGovCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for LocalGovCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalGovCode({self})")
    }
}

/// What kind of organization a tenant is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantKind {
    /// 都道府県: the prefecture that runs the security cloud.
    Prefecture,
    /// 市
    City,
    /// 区 (special wards of Tokyo, or wards of designated cities)
    Ward,
    /// 町
    Town,
    /// 村
    Village,
    /// 一部事務組合・広域連合: a joint association of municipalities.
    JointAssociation,
}

impl TenantKind {
    /// Every kind, in display order.
    pub const ALL: [TenantKind; 6] =
        [TenantKind::Prefecture, TenantKind::City, TenantKind::Ward, TenantKind::Town, TenantKind::Village, TenantKind::JointAssociation];

    /// Returns the stable name used in the API and CSV.
    pub fn as_str(&self) -> &'static str {
        match self {
            TenantKind::Prefecture => "prefecture",
            TenantKind::City => "city",
            TenantKind::Ward => "ward",
            TenantKind::Town => "town",
            TenantKind::Village => "village",
            TenantKind::JointAssociation => "joint_association",
        }
    }

    /// Returns the Japanese name.
    pub fn ja(&self) -> &'static str {
        match self {
            TenantKind::Prefecture => "都道府県",
            TenantKind::City => "市",
            TenantKind::Ward => "区",
            TenantKind::Town => "町",
            TenantKind::Village => "村",
            TenantKind::JointAssociation => "一部事務組合等",
        }
    }

    /// Returns the English name.
    pub fn en(&self) -> &'static str {
        match self {
            TenantKind::Prefecture => "Prefecture",
            TenantKind::City => "City",
            TenantKind::Ward => "Ward",
            TenantKind::Town => "Town",
            TenantKind::Village => "Village",
            TenantKind::JointAssociation => "Joint association",
        }
    }
}

impl FromStr for TenantKind {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        let t = s.trim();
        TenantKind::ALL.into_iter().find(|k| k.as_str() == t || k.ja() == t).ok_or_else(|| {
            Problem::new(
                "kind",
                "invalid_kind",
                format!("団体種別「{t}」は不明です（prefecture, city, ward, town, village, joint_association のいずれか）"),
                format!("unknown organization type '{t}' (prefecture, city, ward, town, village, joint_association)"),
            )
        })
    }
}

/// A contact person of a tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name of the person.
    pub name: String,
    /// Department (所属), e.g. 総務課情報係.
    #[serde(default)]
    pub department: String,
    /// E-mail address.
    #[serde(default)]
    pub email: String,
    /// Telephone number.
    #[serde(default)]
    pub phone: String,
}

/// A tenant as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tenant {
    /// Identifier.
    pub id: TenantId,
    /// Local government code.
    pub code: LocalGovCode,
    /// Name in Japanese, e.g. 桜川市.
    pub name: String,
    /// Reading in katakana, e.g. サクラガワシ.
    pub kana: String,
    /// Kind of organization.
    pub kind: TenantKind,
    /// Contacts, the first being the primary.
    pub contacts: Vec<Contact>,
    /// The organization's network ranges, each on a segment (used to attribute traffic
    /// and logs).
    pub network_ranges: Vec<NetworkRange>,
    /// Network separation model (α, α′, β, β′).
    #[serde(default)]
    pub separation: SeparationModel,
    /// Mail domains the organization receives mail for (its subdomains included).
    #[serde(default)]
    pub mail_domains: Vec<DomainName>,
    /// Public web site names behind the WAF: one is standard, more need F41.
    #[serde(default)]
    pub fqdns: Vec<DomainName>,
    /// Subscribed optional services: catalog id (e.g. `F41`) → quantity.
    pub services: BTreeMap<String, u32>,
    /// Free notes for operators.
    pub notes: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

/// The fields a person or import provides to create or replace a tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Local government code as typed.
    pub code: String,
    /// Name in Japanese.
    pub name: String,
    /// Reading in katakana (hiragana is converted).
    pub kana: String,
    /// Kind, by its stable name or Japanese name.
    pub kind: String,
    /// Contacts.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Network ranges in CIDR notation, `@segment` appended for a segment other than
    /// the default one.
    #[serde(default)]
    pub network_ranges: Vec<String>,
    /// Separation model by stable name or symbol (`alpha`, `β′`); empty is α.
    #[serde(default)]
    pub separation: String,
    /// Mail domains.
    #[serde(default)]
    pub mail_domains: Vec<String>,
    /// Public FQDNs.
    #[serde(default)]
    pub fqdns: Vec<String>,
    /// Catalog id → quantity.
    #[serde(default)]
    pub services: BTreeMap<String, u32>,
    /// Notes.
    #[serde(default)]
    pub notes: String,
}

/// The checked content of a [`NewTenant`].
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedTenant {
    /// Code.
    pub code: LocalGovCode,
    /// Name.
    pub name: String,
    /// Katakana reading.
    pub kana: String,
    /// Kind.
    pub kind: TenantKind,
    /// Contacts.
    pub contacts: Vec<Contact>,
    /// Ranges.
    pub network_ranges: Vec<NetworkRange>,
    /// Separation model.
    pub separation: SeparationModel,
    /// Mail domains.
    pub mail_domains: Vec<DomainName>,
    /// Public FQDNs.
    pub fqdns: Vec<DomainName>,
    /// Services.
    pub services: BTreeMap<String, u32>,
    /// Notes.
    pub notes: String,
}

/// Longest name, kana, contact field or note accepted, in characters.
const MAX_TEXT: usize = 200;
const MAX_NOTES: usize = 4000;
const MAX_CONTACTS: usize = 20;
const MAX_RANGES: usize = 256;
const MAX_DOMAINS: usize = 64;

impl NewTenant {
    /// Checks every field and returns the checked tenant or every problem found.
    pub fn check(&self) -> Result<CheckedTenant, Problems> {
        let mut problems = Problems::default();
        let code = match self.code.parse::<LocalGovCode>() {
            Ok(c) => Some(c),
            Err(p) => {
                problems.push(p);
                None
            }
        };
        let name = self.name.trim().to_string();
        if name.is_empty() {
            problems.push(Problem::new("name", "required", "団体名を入力してください", "name is required"));
        } else if name.chars().count() > MAX_TEXT || name.chars().any(char::is_control) {
            problems.push(Problem::new(
                "name",
                "invalid_name",
                "団体名が長すぎるか、使えない文字を含んでいます",
                "name is too long or contains control characters",
            ));
        }
        let kana = match validate_kana(&self.kana) {
            Ok(k) => k,
            Err(p) => {
                problems.push(p);
                String::new()
            }
        };
        let kind = match self.kind.parse::<TenantKind>() {
            Ok(k) => Some(k),
            Err(p) => {
                problems.push(p);
                None
            }
        };
        if self.contacts.len() > MAX_CONTACTS {
            problems.push(Problem::new("contacts", "too_many", "連絡先が多すぎます（20件まで）", "too many contacts (at most 20)"));
        }
        let mut contacts = Vec::new();
        for (i, c) in self.contacts.iter().enumerate() {
            let field = format!("contacts[{i}]");
            let c = Contact {
                name: c.name.trim().to_string(),
                department: c.department.trim().to_string(),
                email: c.email.trim().to_string(),
                phone: c.phone.trim().to_string(),
            };
            if c.name.is_empty() && c.email.is_empty() && c.phone.is_empty() {
                continue;
            }
            if [&c.name, &c.department, &c.email, &c.phone].iter().any(|v| v.chars().count() > MAX_TEXT || v.chars().any(char::is_control)) {
                problems.push(Problem::new(
                    field.clone(),
                    "invalid_contact",
                    "連絡先の項目が長すぎるか、使えない文字を含んでいます",
                    "a contact field is too long or contains control characters",
                ));
            }
            if !c.email.is_empty() && !looks_like_email(&c.email) {
                problems.push(Problem::new(
                    format!("{field}.email"),
                    "invalid_email",
                    format!("メールアドレス「{}」の形式が正しくありません", c.email),
                    format!("'{}' is not an e-mail address", c.email),
                ));
            }
            if !c.phone.is_empty() && !c.phone.chars().all(|ch| ch.is_ascii_digit() || "-+() ".contains(ch)) {
                problems.push(Problem::new(
                    format!("{field}.phone"),
                    "invalid_phone",
                    format!("電話番号「{}」には数字とハイフンのみ使えます", c.phone),
                    format!("phone '{}' may only contain digits and hyphens", c.phone),
                ));
            }
            contacts.push(c);
        }
        if self.network_ranges.len() > MAX_RANGES {
            problems.push(Problem::new("network_ranges", "too_many", "ネットワーク範囲が多すぎます（256件まで）", "too many network ranges (at most 256)"));
        }
        let mut ranges: Vec<NetworkRange> = Vec::new();
        for r in self.network_ranges.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
            match r.parse::<NetworkRange>() {
                Ok(net) if !ranges.contains(&net) => ranges.push(net),
                Ok(_) => {}
                Err(p) => problems.push(p),
            }
        }
        let separation = if self.separation.trim().is_empty() {
            SeparationModel::default()
        } else {
            self.separation.parse().map_err(|p| problems.push(p)).unwrap_or_default()
        };
        let mail_domains = domains(&self.mail_domains, "mail_domains", &mut problems);
        let fqdns = domains(&self.fqdns, "fqdns", &mut problems);
        let mut services = BTreeMap::new();
        for (id, qty) in &self.services {
            match catalog::find(id) {
                None => problems.push(Problem::new(
                    "services",
                    "unknown_service",
                    format!("サービス「{id}」はサービスカタログにありません"),
                    format!("service '{id}' is not in the catalog"),
                )),
                Some(s) if *qty > s.max_quantity || *qty == 0 => problems.push(Problem::new(
                    "services",
                    "invalid_quantity",
                    format!("サービス「{id}」の数量は1〜{}で指定してください", s.max_quantity),
                    format!("quantity of service '{id}' must be 1-{}", s.max_quantity),
                )),
                Some(s) => {
                    services.insert(s.id.to_string(), *qty);
                }
            }
        }
        let allowed = 1 + services.get("F41").copied().unwrap_or(0) as usize;
        if fqdns.len() > allowed {
            problems.push(Problem::new(
                "fqdns",
                "fqdn_quota",
                format!(
                    "公開FQDNは標準で1件、2件目からはF41（WAF追加FQDN）の契約数だけ登録できます。{}件の登録には F41 が{}件必要です",
                    fqdns.len(),
                    fqdns.len() - 1
                ),
                format!("one public FQDN is standard, each further one needs an F41 subscription: {} FQDNs need F41 × {}", fqdns.len(), fqdns.len() - 1),
            ));
        }
        let notes = self.notes.trim().to_string();
        if notes.chars().count() > MAX_NOTES {
            problems.push(Problem::new("notes", "too_long", "備考が長すぎます（4000文字まで）", "notes are too long (at most 4000 characters)"));
        }
        if let (Some(code), Some(kind)) = (code, kind) {
            let is_pref_code = code.to_string()[2..5] == *"000";
            if (kind == TenantKind::Prefecture) != is_pref_code {
                problems.push(Problem::new(
                    "kind",
                    "kind_code_mismatch",
                    "都道府県の団体コードは下5桁目〜3桁目が000です。種別とコードが一致しません",
                    "a prefecture's code has 000 as organization part; type and code disagree",
                ));
            }
        }
        match (code, kind) {
            (Some(code), Some(kind)) if problems.is_empty() => {
                Ok(CheckedTenant { code, name, kana, kind, contacts, network_ranges: ranges, separation, mail_domains, fqdns, services, notes })
            }
            _ => Err(problems),
        }
    }
}

impl Tenant {
    /// Returns the tenant's fields as input, e.g. to fill an edit form.
    pub fn to_input(&self) -> NewTenant {
        NewTenant {
            code: self.code.to_string(),
            name: self.name.clone(),
            kana: self.kana.clone(),
            kind: self.kind.as_str().to_string(),
            contacts: self.contacts.clone(),
            network_ranges: self.network_ranges.iter().map(ToString::to_string).collect(),
            separation: self.separation.as_str().to_string(),
            mail_domains: self.mail_domains.iter().map(ToString::to_string).collect(),
            fqdns: self.fqdns.iter().map(ToString::to_string).collect(),
            services: self.services.clone(),
            notes: self.notes.clone(),
        }
    }

    /// Checks new contacts for this tenant (its other fields as they are) and returns
    /// them normalized, or every problem.
    pub fn check_contacts(&self, contacts: Vec<Contact>) -> Result<Vec<Contact>, Problems> {
        NewTenant { contacts, ..self.to_input() }.check().map(|c| c.contacts)
    }
}

impl CheckedTenant {
    /// Returns the tenant these checked fields make, with its id and times.
    pub fn into_tenant(self, id: TenantId, created_at: i64, updated_at: i64) -> Tenant {
        Tenant {
            id,
            code: self.code,
            name: self.name,
            kana: self.kana,
            kind: self.kind,
            contacts: self.contacts,
            network_ranges: self.network_ranges,
            separation: self.separation,
            mail_domains: self.mail_domains,
            fqdns: self.fqdns,
            services: self.services,
            notes: self.notes,
            created_at,
            updated_at,
        }
    }
}

/// Checks a list of domain names: each valid, none twice, at most [`MAX_DOMAINS`].
fn domains(input: &[String], field: &str, problems: &mut Problems) -> Vec<DomainName> {
    if input.len() > MAX_DOMAINS {
        problems.push(Problem::new(field, "too_many", "ドメイン名が多すぎます（64件まで）", "too many domain names (at most 64)"));
    }
    let mut out: Vec<DomainName> = Vec::new();
    for d in input.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
        match d.parse::<DomainName>() {
            Ok(d) if !out.contains(&d) => out.push(d),
            Ok(_) => {}
            Err(p) => problems.push(Problem { field: field.to_string(), ..p }),
        }
    }
    out
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && s.chars().all(|c| c.is_ascii_graphic())
}

/// Folds text for searching names and readings: hiragana becomes katakana (さくら finds
/// サクラ), full-width letters and digits become ASCII (ＡＢＣ１ finds abc1), and case
/// is ignored.
pub fn search_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ぁ'..='ゖ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            '！'..='～' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '　' => ' ',
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Checks a katakana reading and returns it normalized: hiragana converted to katakana,
/// full-width spaces to half-width, trimmed. Allowed: katakana, ー, ・, spaces.
pub fn validate_kana(input: &str) -> Result<String, Problem> {
    let normalized: String = input
        .trim()
        .chars()
        .map(|c| match c {
            'ぁ'..='ゖ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect();
    if normalized.is_empty() {
        return Err(Problem::new("kana", "required", "フリガナを入力してください", "kana reading is required"));
    }
    let ok = normalized.chars().count() <= MAX_TEXT && normalized.chars().all(|c| matches!(c, 'ァ'..='ヺ' | 'ー' | '・' | 'ヽ' | 'ヾ' | ' '));
    if ok {
        Ok(normalized)
    } else {
        Err(Problem::new(
            "kana",
            "invalid_kana",
            format!("フリガナ「{}」はカタカナで入力してください", input.trim()),
            format!("kana reading '{}' must be katakana", input.trim()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_folds_hiragana_width_and_case() {
        assert_eq!(search_fold("さくら"), search_fold("サクラ"));
        assert!(search_fold("サクラガワシ").contains(&search_fold("さくらがわ")));
        assert_eq!(search_fold("ＡＢＣ１２３"), "abc123");
        assert_eq!(search_fold("桜川市"), "桜川市");
    }

    #[test]
    fn real_codes_pass_their_check_digit() {
        for code in ["130001", "011002", "010006", "270008", "131016", "141003", "472158"] {
            assert!(code.parse::<LocalGovCode>().is_ok(), "{code}");
        }
    }

    #[test]
    fn wrong_check_digit_and_shapes_are_refused() {
        let e = "130002".parse::<LocalGovCode>().unwrap_err();
        assert_eq!(e.code, "invalid_check_digit");
        assert!(e.ja.contains("検査数字"));
        for bad in ["13000", "1300011", "13000a", "", "480001", "000000", "１３０００１"] {
            assert!(bad.parse::<LocalGovCode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn from_five_computes_the_digit() {
        assert_eq!(LocalGovCode::from_five("13000").unwrap().to_string(), "130001");
        assert_eq!(LocalGovCode::from_five("01100").unwrap().to_string(), "011002");
    }

    #[test]
    fn kana_is_normalized() {
        assert_eq!(validate_kana(" さくらがわし ").unwrap(), "サクラガワシ");
        assert_eq!(validate_kana("サンプル　ケン").unwrap(), "サンプル ケン");
        assert!(validate_kana("桜川市").is_err());
        assert!(validate_kana("").is_err());
    }

    #[test]
    fn check_reports_every_problem() {
        let t = NewTenant {
            code: "130002".into(),
            name: "".into(),
            kana: "abc".into(),
            kind: "metropolis".into(),
            network_ranges: vec!["10.0.0.0/33".into()],
            services: [("F99".to_string(), 1)].into_iter().collect(),
            ..Default::default()
        };
        let problems = t.check().unwrap_err();
        let codes: Vec<_> = problems.0.iter().map(|p| p.code).collect();
        for c in ["invalid_check_digit", "required", "invalid_kana", "invalid_kind", "invalid_range", "unknown_service"] {
            assert!(codes.contains(&c), "{c} missing from {codes:?}");
        }
    }

    #[test]
    fn check_accepts_a_good_city() {
        let t = NewTenant {
            code: "131016".into(),
            name: "千代田区".into(),
            kana: "ちよだく".into(),
            kind: "ward".into(),
            network_ranges: vec!["192.0.2.7/24".into(), "2001:db8::/32".into(), "198.51.100.1".into()],
            services: [("F41".to_string(), 2)].into_iter().collect(),
            ..Default::default()
        };
        let c = t.check().unwrap();
        assert_eq!(c.kana, "チヨダク");
        assert_eq!(c.network_ranges[0].to_string(), "192.0.2.0/24");
        assert_eq!(c.network_ranges[2].to_string(), "198.51.100.1/32");
    }

    /// F41: the second public FQDN onward needs an F41 subscription each.
    #[test]
    fn f41_fqdns_are_counted_against_the_subscription() {
        let base = NewTenant { code: "131016".into(), name: "千代田区".into(), kana: "チヨダク".into(), kind: "ward".into(), ..Default::default() };
        let three = vec!["www.a.example.jp".to_string(), "b.example.jp".into(), "c.example.jp".into()];
        let t = NewTenant { fqdns: three.clone(), services: [("F41".to_string(), 1)].into_iter().collect(), ..base.clone() };
        let p = t.check().unwrap_err();
        assert_eq!(p.0[0].code, "fqdn_quota");
        assert!(p.0[0].ja.contains("F41 が2件必要"), "{}", p.0[0].ja);
        let t = NewTenant { fqdns: three, services: [("F41".to_string(), 2)].into_iter().collect(), separation: "β′".into(), ..base.clone() };
        let c = t.check().unwrap();
        assert_eq!(c.fqdns.len(), 3);
        assert_eq!(c.separation, SeparationModel::BetaPrime);
        let t = NewTenant { mail_domains: vec!["city.example.lg.jp".into(), "bad_domain".into()], separation: "delta".into(), ..base };
        let codes: Vec<_> = t.check().unwrap_err().0.iter().map(|p| (p.field.clone(), p.code)).collect();
        assert_eq!(codes, vec![("separation".to_string(), "invalid_separation"), ("mail_domains".to_string(), "invalid_domain")]);
    }

    #[test]
    fn prefecture_kind_must_match_code() {
        let t = NewTenant { code: "130001".into(), name: "東京都".into(), kana: "トウキョウト".into(), kind: "city".into(), ..Default::default() };
        assert_eq!(t.check().unwrap_err().0[0].code, "kind_code_mismatch");
    }
}
