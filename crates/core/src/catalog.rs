//! The catalog of services a member organization can subscribe to, from the
//! prefecture's requirement table (`shared/docs/requirements.md`, F05, F17, F21, F30–F51).
//!
//! Standard services are part of every subscription but are still recorded per
//! organization where the table counts users (e.g. F45 with 29 organizations). Optional
//! services with a quantity (F40–F42) count units beyond the first, which is included.

use serde::Serialize;

/// How a service is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Offering {
    /// Included in the standard service (標準).
    Standard,
    /// An option the organization orders (オプション).
    Optional,
}

/// One entry of the catalog.
#[derive(Clone, Copy, Debug, Serialize, schemars::JsonSchema)]
pub struct Service {
    /// Function id, e.g. `F41`.
    pub id: &'static str,
    /// Japanese name.
    pub ja: &'static str,
    /// English name.
    pub en: &'static str,
    /// Standard or optional.
    pub offering: Offering,
    /// Unit of the quantity in Japanese, when the service is counted (e.g. FQDN数).
    pub unit_ja: Option<&'static str>,
    /// Unit of the quantity in English.
    pub unit_en: Option<&'static str>,
    /// Largest quantity accepted (1 for a plain subscription).
    pub max_quantity: u32,
}

const fn plain(id: &'static str, ja: &'static str, en: &'static str, offering: Offering) -> Service {
    Service { id, ja, en, offering, unit_ja: None, unit_en: None, max_quantity: 1 }
}

const fn counted(id: &'static str, ja: &'static str, en: &'static str, unit_ja: &'static str, unit_en: &'static str) -> Service {
    Service { id, ja, en, offering: Offering::Optional, unit_ja: Some(unit_ja), unit_en: Some(unit_en), max_quantity: 1000 }
}

use Offering::{Optional, Standard};

/// Every service, in catalog order.
pub const SERVICES: &[Service] = &[
    plain("F05", "AD サーバー監視", "AD server monitoring", Optional),
    plain("F17", "リモートデスクトップ（インターネット側 VDI）", "Remote desktop (Internet-side VDI)", Optional),
    plain("F21", "EDR 監視・運用", "EDR monitoring and operation", Optional),
    plain("F30", "大容量ファイル転送", "Large file transfer", Standard),
    plain("F31", "LGWAN 共同利用セグメントサーバー", "LGWAN shared segment servers", Standard),
    plain("F32", "ポータルサイト", "Portal site", Standard),
    plain("F33", "リモートメンテナンス", "Remote maintenance", Standard),
    plain("F34", "Web サーバー用仮想サーバー", "Web server VMs", Optional),
    plain("F35", "Web メール", "Webmail", Optional),
    plain("F36", "メールサーバー用仮想サーバー", "Mail server VMs", Optional),
    plain("F37", "Web サーバースターターパック", "Web server starter pack", Optional),
    plain("F38", "メールサーバースターターパック", "Mail server starter pack", Optional),
    plain("F39", "メールサーバーサポートパック", "Mail server support pack", Optional),
    counted("F40", "グローバル IP アドレス追加", "Additional global IP addresses", "追加アドレス数", "additional addresses"),
    counted("F41", "WAF 対象 FQDN 追加", "Additional WAF FQDNs", "追加 FQDN 数", "additional FQDNs"),
    counted("F42", "改ざん検知対象 URL 追加", "Additional tamper-detection URLs", "追加 URL 数", "additional URLs"),
    plain("F43", "団体別迷惑メールホワイトリスト", "Per-organization anti-spam whitelist", Optional),
    plain("F44", "隔離迷惑メールの再送", "Re-send quarantined spam", Optional),
    plain("F45", "LGWAN メールのウイルス・迷惑メール対策", "LGWAN anti-virus / anti-spam", Standard),
    plain("F46", "添付ファイル自動無害化", "Automatic attachment sanitization", Standard),
    plain("F47", "仮想ブラウザ", "Virtual browser", Standard),
    plain("F48", "クラウドサービス利用環境", "Cloud service environment (M365)", Standard),
    plain("F49", "安全なデータファイル交換（PPAP 代替）", "Safe data file exchange (PPAP replacement)", Standard),
    plain("F50", "メールセキュリティ強化（SPF/DKIM/DMARC）", "Mail security hardening (SPF/DKIM/DMARC)", Standard),
    plain("F51", "メールアーカイブ", "Mail archive", Standard),
];

/// Returns the catalog entry with this id (case-insensitive).
pub fn find(id: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.id.eq_ignore_ascii_case(id.trim()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_found() {
        let mut ids: Vec<_> = super::SERVICES.iter().map(|s| s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), super::SERVICES.len());
        assert_eq!(super::find("f41").unwrap().max_quantity, 1000);
        assert!(super::find("F01").is_none());
    }
}
