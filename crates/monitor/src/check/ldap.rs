//! LDAP / Active Directory checks (F05): connect (LDAP, LDAPS or StartTLS), bind with
//! the service account, search the base entry; then the further ports of the same host
//! (Kerberos 88, global catalog 3268/3269) must accept connections.

use super::{Findings, Stage, StepResult};
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope};
use mamori_core::monitor::{LdapCheck, Reason};
use std::time::Duration;

fn ldap_reason(e: &LdapError, what_ja: &str, what_en: &str, f: &Findings) -> Reason {
    match e {
        LdapError::LdapResult { result } => {
            let (code, ja) = match result.rc {
                49 => ("ldap_bind", "認証に失敗しました（DN またはパスワードが違います）"),
                32 => ("ldap_no_such_object", "検索ベースのエントリがありません"),
                50 => ("ldap_access", "アクセス権がありません"),
                51..=53 => ("ldap_unavailable", "サーバーが処理できない状態です（busy / unavailable）"),
                _ => ("ldap_error", "LDAP の処理に失敗しました"),
            };
            Reason::new(
                code,
                format!("{what_ja}: {ja}（結果コード {} {}）", result.rc, result.text),
                format!("{what_en}: result code {} {}", result.rc, result.text),
            )
        }
        LdapError::Io { source } => {
            if let Some(tls) = source.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                let until = f.details.get("cert_not_after").and_then(|v| v.as_str()).unwrap_or("?");
                let ja = match tls {
                    rustls::Error::InvalidCertificate(rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }) => {
                        return Reason::new("cert_expired", format!("LDAPS の証明書の有効期限が切れています（{until} まで）"), "the LDAPS certificate expired");
                    }
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                        return Reason::new("cert_untrusted", "LDAPS の証明書を信頼できません（発行者が不明）", "untrusted LDAPS certificate");
                    }
                    other => format!("TLS エラー（{other}）"),
                };
                return Reason::new("tls_error", format!("{what_ja}: {ja}"), format!("{what_en}: TLS error ({tls})"));
            }
            super::io_reason(source, what_ja, what_en)
        }
        LdapError::Timeout { .. } => Reason::new("timeout", format!("{what_ja}: 応答がありません"), format!("{what_en}: timed out")),
        other => Reason::new("ldap_error", format!("{what_ja}: {other}"), format!("{what_en}: {other}")),
    }
}

pub(crate) async fn check(c: &LdapCheck, timeout: Duration, stage: &Stage, f: &mut Findings) -> StepResult<()> {
    let tls_used = c.url.starts_with("ldaps://") || c.starttls;
    let client = super::tls::client(c.ca_pem.as_deref(), &[])?;
    let settings = LdapConnSettings::new().set_conn_timeout(timeout).set_starttls(c.starttls).set_config(client.config.clone());
    if let Some(host) = ldap_host(&c.url) {
        // ldap3 resolves the name itself: look first, so the guard sees every address.
        let port = if c.url.starts_with("ldaps") { 636 } else { 389 };
        if let Ok(addrs) = tokio::net::lookup_host((host.as_str(), port)).await {
            for a in addrs {
                stage.allow(&host, a.ip())?;
            }
        }
    }
    stage.set("LDAP 接続", "LDAP connect");
    let connected = LdapConnAsync::with_settings(settings, &c.url).await;
    if let Some(leaf) = client.leaf() {
        super::tls::cert_facts(&leaf, 14, f);
    }
    let (conn, mut ldap) = connected.map_err(|e| ldap_reason(&e, "LDAP 接続", "LDAP connect", f))?;
    let driver = tokio::spawn(async move {
        let _ = conn.drive().await;
    });
    f.detail("tls", tls_used);
    let result = async {
        stage.set("LDAP バインド", "LDAP bind");
        ldap.simple_bind(&c.bind_dn, &c.bind_password).await.and_then(|r| r.success()).map_err(|e| ldap_reason(&e, "バインド", "bind", f))?;
        stage.set("LDAP 検索", "LDAP search");
        let (entries, _) =
            ldap.search(&c.base, Scope::Base, &c.filter, vec!["1.1"]).await.and_then(|r| r.success()).map_err(|e| ldap_reason(&e, "検索", "search", f))?;
        if entries.is_empty() {
            return Err(Reason::new(
                "ldap_search_empty",
                format!("「{}」をフィルター {} で検索しても見つかりません", c.base, c.filter),
                format!("no entry for '{}' with filter {}", c.base, c.filter),
            ));
        }
        let _ = ldap.unbind().await;
        Ok(())
    }
    .await;
    driver.abort();
    result?;
    if !c.extra_ports.is_empty() {
        let host = ldap_host(&c.url).ok_or_else(|| Reason::new("invalid_url", "URL からホスト名を取り出せません", "cannot take the host from the URL"))?;
        for p in &c.extra_ports {
            super::connect(&host, *p, stage).await.map_err(|r| {
                let label = match p {
                    88 => "Kerberos",
                    3268 | 3269 => "グローバルカタログ",
                    _ => "追加ポート",
                };
                Reason::new("port_closed", format!("{label}（{p}番ポート）: {}", r.ja), format!("port {p}: {}", r.en))
            })?;
        }
        f.detail("extra_ports_open", c.extra_ports.clone());
    }
    Ok(())
}

fn ldap_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().map(String::from);
    }
    authority.split(':').next().filter(|h| !h.is_empty()).map(String::from)
}
