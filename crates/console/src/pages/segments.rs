//! Network segments (operators) and the tenant lookup: which tenant an address on a
//! segment, a mail domain or a host name belongs to, as every component resolves it.
//!
//! Requirements: the attribution every component uses (F03, F06, F07, F10, F11, F14, F18,
//! F41).

use super::{Pairs, field, layout, page_result, problems, see_other};
use crate::auth::{Authed, PageAuth};
use crate::{AppError, AppState, Lang};
use axum::extract::State;
use axum::response::Response;
use mamori_core::{Permission, Segment, SegmentName, TenantDirectory, Zone};
use mamori_web::Form;
use mamori_web::{Path, Query};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// What a lookup asks: one of an address (with its segment), a mail domain, a host.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Lookup {
    /// Segment name (for an address).
    #[serde(default)]
    pub segment: String,
    /// Source address.
    #[serde(default)]
    pub address: String,
    /// Mail domain or address.
    #[serde(default)]
    pub mail: String,
    /// Host name (Host header, SNI).
    #[serde(default)]
    pub host: String,
}

/// Returns the tenants in `scope` and the directory built from them, as components
/// build theirs (for the lookup of people).
pub async fn directory(state: &AppState, scope: &mamori_store::Scope) -> Result<(Vec<mamori_core::Tenant>, TenantDirectory), AppError> {
    let tenants = state.store.list_tenants(scope).await?;
    let dir = TenantDirectory::build(state.store.list_segments().await?, &tenants);
    Ok((tenants, dir))
}

/// The answer to a [`Lookup`]: what was asked, and the tenant id, if any.
pub fn resolve(dir: &TenantDirectory, q: &Lookup) -> Result<Option<(String, Option<mamori_core::TenantId>)>, AppError> {
    if !q.address.trim().is_empty() {
        let segment = if q.segment.trim().is_empty() { SegmentName::default_segment() } else { q.segment.parse()? };
        let addr: std::net::IpAddr = q.address.trim().parse().map_err(|_| {
            mamori_core::Problem::new(
                "address",
                "invalid_address",
                format!("アドレス「{}」はIPアドレスではありません", q.address.trim()),
                format!("'{}' is not an IP address", q.address.trim()),
            )
        })?;
        return Ok(Some((format!("{addr}@{segment}"), dir.by_address(&segment, addr))));
    }
    if !q.mail.trim().is_empty() {
        return Ok(Some((q.mail.trim().to_string(), dir.by_mail_domain(&q.mail))));
    }
    if !q.host.trim().is_empty() {
        return Ok(Some((q.host.trim().to_string(), dir.by_fqdn(&q.host))));
    }
    Ok(None)
}

fn segment_form(l: Lang, csrf: &str, s: Option<&Segment>) -> Markup {
    html! {
        form.grid method="post" action="/tenants/segments" {
            input type="hidden" name="csrf" value=(csrf);
            label { (l.t("セグメント名（英小文字・数字・ハイフン）", "Name (a-z, 0-9, -)"))
                input type="text" name="name" value=(s.map(|s| s.name.to_string()).unwrap_or_default()) required maxlength="32" pattern="[a-z][a-z0-9-]*";
            }
            label { (l.t("表示名", "Label")) input type="text" name="label" value=(s.map(|s| s.label.as_str()).unwrap_or("")) required maxlength="100"; }
            label { (l.t("接続系", "Zone"))
                select name="zone" { @for z in Zone::ALL { option value=(z.as_str()) selected[s.is_some_and(|s| s.zone == z)] { (l.t(z.ja(), z.en())) } } }
            }
            label.wide { (l.t("備考", "Notes")) textarea name="notes" rows="2" { (s.map(|s| s.notes.as_str()).unwrap_or("")) } }
            div.wide { button type="submit" { (l.t("保存", "Save")) } }
        }
    }
}

async fn page_body(state: &AppState, a: &Authed, q: &Lookup, error: Option<&AppError>) -> Result<Markup, AppError> {
    let l = a.lang;
    let scope = a.principal.scope();
    let segments = state.store.list_segments().await?;
    let (tenants, dir) = directory(state, &scope).await?;
    let mut on: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &tenants {
        for r in &t.network_ranges {
            let names = on.entry(r.segment.as_str()).or_default();
            if !names.contains(&t.name.as_str()) {
                names.push(&t.name);
            }
        }
    }
    let (answer, lookup_error) = match resolve(&dir, q) {
        Ok(a) => (a, None),
        Err(e) => (None, Some(e)),
    };
    let name_of = |id| tenants.iter().find(|t| t.id == id);
    Ok(html! {
        p { (l.t("セグメントは、通信がセキュリティクラウドに届くネットワーク経路（県WAN の回線、LGWAN 側など）です。団体のネットワーク範囲はセグメントごとに登録し、同じセグメントの中では団体どうしで重なることはできません。別のセグメントであれば、同じプライベートアドレス（例: 192.168.1.0/24）を複数の団体が使えます。",
                 "A segment is a network path on which traffic reaches the security cloud (a line of the prefecture WAN, the LGWAN side, …). Tenant ranges are registered per segment and may not overlap between tenants within one segment; on different segments, several tenants may use the same private range (e.g. 192.168.1.0/24).")) }
        table {
            thead { tr { th { (l.t("セグメント名", "Name")) } th { (l.t("表示名", "Label")) } th { (l.t("接続系", "Zone")) } th { (l.t("利用団体", "Tenants")) } th { (l.t("備考", "Notes")) } th {} } }
            tbody { @for s in &segments { tr {
                td { code { (s.name) } }
                td { (s.label) }
                td { (l.t(s.zone.ja(), s.zone.en())) }
                td { (on.get(s.name.as_str()).map(|n| n.join("、")).unwrap_or_default()) }
                td { (s.notes) }
                td { @if s.name.as_str() != SegmentName::DEFAULT {
                    form.inline method="post" action=(format!("/tenants/segments/{}/delete", s.name)) {
                        input type="hidden" name="csrf" value=(a.csrf());
                        button.danger type="submit" { (l.t("削除", "Delete")) }
                    }
                } }
            } } }
        }
        h2 { (l.t("セグメントを追加・変更", "Add or change a segment")) }
        @if let Some(e) = error { (problems(l, e)) }
        p.hint { (l.t("既存のセグメント名を入力すると、その表示名・接続系・備考を変更します。", "Typing an existing name changes its label, zone and notes.")) }
        (segment_form(l, a.csrf(), None))
        h2 { (l.t("団体の判定", "Tenant lookup")) }
        p { (l.t("各コンポーネントと同じ方法で、送信元アドレス・メールドメイン・ホスト名がどの団体のものかを調べます。", "Finds the tenant of a source address, a mail domain or a host name, as every component does.")) }
        form.filters method="get" action="/tenants/segments" {
            label { (l.t("セグメント", "Segment"))
                select name="segment" { @for s in &segments { option value=(s.name) selected[q.segment == s.name.as_str()] { (s.name) " (" (s.label) ")" } } }
            }
            label { (l.t("送信元アドレス", "Source address")) input type="text" name="address" value=(q.address) placeholder="192.168.1.10"; }
            label { (l.t("メールドメイン・アドレス", "Mail domain or address")) input type="text" name="mail" value=(q.mail); }
            label { (l.t("ホスト名（FQDN）", "Host name (FQDN)")) input type="text" name="host" value=(q.host); }
            div { button type="submit" { (l.t("判定", "Look up")) } }
        }
        @if let Some(e) = &lookup_error { (problems(l, e)) }
        @if let Some((asked, found)) = answer {
            @match found.and_then(name_of) {
                Some(t) => div.ok role="status" { (asked) " → " a href=(format!("/tenants/{}", t.id)) { (t.name) } " (" (t.code) ")" },
                None => div.error role="status" { (asked) (l.t(" に該当する団体はありません", ": no tenant")) },
            }
        }
    })
}

/// Back to the page after a change, or the page again with the problems of a refused one.
async fn after_change(state: &AppState, a: &Authed, result: Result<(), AppError>) -> Result<Response, AppError> {
    match result {
        Ok(()) => Ok(see_other("/tenants/segments")),
        Err(e @ AppError::Invalid(_)) => {
            let l = a.lang;
            let mut r = layout(a, l.t("ネットワークセグメント", "Network segments"), "/tenants", page_body(state, a, &Lookup::default(), Some(&e)).await?);
            *r.status_mut() = e.status();
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

/// GET /tenants/segments
pub async fn page(State(state): State<AppState>, PageAuth(a): PageAuth, Query(q): Query<Lookup>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require_operator(Permission::TenantsRead)?;
            Ok(layout(&a, l.t("ネットワークセグメント", "Network segments"), "/tenants", page_body(&state, &a, &q, None).await?))
        }
        .await,
    )
}

/// POST /tenants/segments
pub async fn save(State(state): State<AppState>, PageAuth(a): PageAuth, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require_operator(Permission::TenantsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let result = match Segment::check(field(&pairs, "name"), field(&pairs, "label"), field(&pairs, "zone"), field(&pairs, "notes")) {
                Ok(s) => state.store.put_segment(&a.principal.scope(), &a.principal.actor(), s).await.map_err(AppError::from),
                Err(p) => Err(AppError::Invalid(p)),
            };
            after_change(&state, &a, result.map(|_| ())).await
        }
        .await,
    )
}

/// POST /tenants/segments/{name}/delete
pub async fn delete(State(state): State<AppState>, PageAuth(a): PageAuth, Path(name): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require_operator(Permission::TenantsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let name: SegmentName = name.parse().map_err(|_| AppError::NotFound)?;
            let result = state.store.delete_segment(&a.principal.scope(), &a.principal.actor(), &name).await.map_err(AppError::from);
            after_change(&state, &a, result).await
        }
        .await,
    )
}
