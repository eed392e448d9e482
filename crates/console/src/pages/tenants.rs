//! Tenant pages: list, create, show and edit, contacts, CSV import and export.
//!
//! Requirements: the member organizations with their subscriptions from the service
//! catalog (F05, F17, F21, F30–F51), their FQDNs counted against F41 and their separation
//! model (F21, F47, F48).

use super::{Pairs, field, layout, page_result, problems, see_other, when};
use crate::auth::{Authed, PageAuth};
use crate::{AppError, AppState, Lang};
use axum::extract::{Multipart, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use mamori_core::{Contact, NewTenant, Permission, SeparationModel, Tenant, TenantId, TenantKind, catalog};
use mamori_web::Form;
use mamori_web::Path;
use mamori_web::table::{Table, TableQuery, num, text};
use maud::{Markup, html};
use std::collections::BTreeMap;

fn check_csrf(a: &Authed, pairs: &Pairs) -> Result<(), AppError> {
    a.check_csrf(field(pairs, "csrf"))
}

/// The tenants a query asks for: `q` searches name, kana and code (さくら finds サクラ;
/// full-width digits find the code).
async fn matching(state: &AppState, a: &Authed, q: &BTreeMap<String, String>) -> Result<(String, Vec<Tenant>), AppError> {
    a.require(Permission::TenantsRead)?;
    let filter = q.get("q").map(|s| s.trim().to_string()).unwrap_or_default();
    let key = mamori_core::search_fold(&filter);
    let fold = mamori_core::search_fold;
    let tenants = state
        .store
        .list_tenants(&a.principal.scope())
        .await?
        .into_iter()
        .filter(|t| key.is_empty() || fold(&t.name).contains(&key) || fold(&t.kana).contains(&key) || t.code.to_string().contains(&key))
        .collect();
    Ok((filter, tenants))
}

/// The tenant list: sortable, paged; its CSV is the export that re-imports.
fn table<'a>(l: Lang) -> Table<'a, Tenant> {
    Table::new("/tenants", "tenants.csv")
        .csv_path("/tenants/export.csv")
        .default_sort("code", false)
        .text_column("code", ("団体コード", "Code"), |t: &Tenant| t.code.to_string())
        .column(
            "name",
            ("団体名", "Name"),
            |t: &Tenant| html! { a href=(format!("/tenants/{}", t.id)) { (t.name) } },
            |t| t.name.clone(),
            // In the order of the reading, as a Japanese list is.
            text(|t: &Tenant| t.kana.clone()),
        )
        .nowrap()
        .text_column("kana", ("フリガナ", "Kana"), |t: &Tenant| t.kana.clone())
        .text_column("kind", ("種別", "Type"), move |t: &Tenant| l.t(t.kind.ja(), t.kind.en()).to_string())
        .column(
            "model",
            ("分離モデル", "Model"),
            move |t: &Tenant| html! { span title=(l.t(t.separation.ja(), t.separation.en())) { (t.separation.symbol()) } },
            move |t| t.separation.symbol().to_string(),
            text(|t: &Tenant| t.separation.symbol().to_string()),
        )
        .text_column("contact", ("主担当", "Primary contact"), |t: &Tenant| t.contacts.first().map(|c| c.name.clone()).unwrap_or_default())
        .column(
            "fqdns",
            ("公開 FQDN", "Public FQDNs"),
            |t: &Tenant| html! { (t.fqdns.len()) },
            |t| t.fqdns.len().to_string(),
            num(|t: &Tenant| Some(t.fqdns.len() as f64)),
        )
        .text_column("networks", ("ネットワーク", "Networks"), |t: &Tenant| {
            t.network_ranges.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
        })
}

/// GET /tenants: searchable, sortable, paged.
pub async fn list(State(state): State<AppState>, PageAuth(a): PageAuth, mamori_web::Query(q): mamori_web::Query<BTreeMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(l, async {
        let (filter, tenants) = matching(&state, &a, &q).await?;
        let tq = TableQuery::from_query(&q);
        if tq.wants_csv() {
            return Ok(export_csv(l, &tenants, &tq));
        }
        let can_write = a.principal.can(Permission::TenantsWrite);
        let body = html! {
            div.toolbar {
                form method="get" action="/tenants" {
                    input type="search" name="q" value=(filter) placeholder=(l.t("団体名・フリガナ・コードで検索", "Search name, kana or code")) aria-label=(l.t("団体の検索", "Search tenants"));
                    button type="submit" { (l.t("検索", "Search")) }
                }
                @if can_write {
                    a.button href="/tenants/new" { (l.t("団体を追加", "Add tenant")) }
                    a.button href="/tenants/import" { (l.t("CSV 取り込み", "Import CSV")) }
                }
                @if a.principal.role().is_operator() {
                    a.button href="/tenants/segments" { (l.t("ネットワークセグメントと団体の判定", "Network segments and tenant lookup")) }
                }
            }
            (table(l).render(l, &tenants, &tq))
        };
        Ok(layout(&a, l.t("団体", "Tenants"), "/tenants", body))
    }
    .await)
}

fn tenant_form(l: Lang, csrf: &str, action: &str, t: &NewTenant, error: Option<&AppError>) -> Markup {
    let mut contacts = t.contacts.clone();
    contacts.resize(contacts.len().max(1) + 1, Contact::default());
    html! {
        @if let Some(e) = error { (problems(l, e)) }
        form.grid method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            label { (l.t("団体コード（6桁）", "Local government code (6 digits)")) input type="text" name="code" value=(t.code) required maxlength="6" inputmode="numeric"; }
            label { (l.t("団体名", "Name")) input type="text" name="name" value=(t.name) required; }
            label { (l.t("フリガナ", "Kana")) input type="text" name="kana" value=(t.kana) required; }
            label { (l.t("種別", "Type"))
                select name="kind" { @for k in TenantKind::ALL { option value=(k.as_str()) selected[t.kind == k.as_str()] { (l.t(k.ja(), k.en())) } } }
            }
            label { (l.t("ネットワーク分離モデル", "Network separation model"))
                select name="separation" { @for m in SeparationModel::ALL { option value=(m.as_str()) selected[t.separation == m.as_str() || (t.separation.is_empty() && m == SeparationModel::default())] { (l.t(m.ja(), m.en())) } } }
            }
            label.wide { (l.t("ネットワーク範囲（CIDR、空白または改行区切り。標準以外のセグメントは 192.168.1.0/24@wan-a のように指定）", "Network ranges (CIDR, separated by spaces or lines; another segment than the default as 192.168.1.0/24@wan-a)"))
                textarea name="network_ranges" rows="3" { (t.network_ranges.join("\n")) }
            }
            label { (l.t("メールドメイン（改行区切り、サブドメインを含む）", "Mail domains (one per line, subdomains included)"))
                textarea name="mail_domains" rows="2" { (t.mail_domains.join("\n")) }
            }
            label { (l.t("公開 FQDN（WAF 対象。2件目からは F41 の契約が必要）", "Public FQDNs (behind the WAF; from the 2nd on, F41 is needed)"))
                textarea name="fqdns" rows="2" { (t.fqdns.join("\n")) }
            }
            fieldset.wide {
                legend { (l.t("連絡先（1行目が主担当）", "Contacts (the first is primary)")) }
                table.compact {
                    thead { tr { th { (l.t("氏名", "Name")) } th { (l.t("所属", "Department")) } th { (l.t("メール", "E-mail")) } th { (l.t("電話", "Phone")) } } }
                    tbody { @for (i, c) in contacts.iter().enumerate() { tr {
                        td { input type="text" name=(format!("contact_name_{i}")) aria-label=(l.t("氏名", "name")) value=(c.name); }
                        td { input type="text" name=(format!("contact_department_{i}")) aria-label=(l.t("所属", "department")) value=(c.department); }
                        td { input type="email" name=(format!("contact_email_{i}")) aria-label=(l.t("メール", "email")) value=(c.email); }
                        td { input type="tel" name=(format!("contact_phone_{i}")) aria-label=(l.t("電話", "phone")) value=(c.phone); }
                    } } }
                }
            }
            fieldset.wide {
                legend { (l.t("契約サービス", "Subscribed services")) }
                table.compact {
                    thead { tr { th {} th { "ID" } th { (l.t("サービス", "Service")) } th { (l.t("区分", "Offering")) } th { (l.t("数量", "Quantity")) } } }
                    tbody { @for s in catalog::SERVICES { tr {
                        td { input type="checkbox" name=(format!("svc_{}", s.id)) checked[t.services.contains_key(s.id)]; }
                        td { (s.id) }
                        td { (l.t(s.ja, s.en)) }
                        td { @if s.offering == catalog::Offering::Standard { (l.t("標準", "Standard")) } @else { (l.t("オプション", "Option")) } }
                        td { @if let Some(u) = s.unit_ja { input.small type="number" min="1" max=(s.max_quantity) name=(format!("qty_{}", s.id)) value=(t.services.get(s.id).copied().unwrap_or(1)) title=(l.t(u, s.unit_en.unwrap_or(""))); } }
                    } } }
                }
            }
            label.wide { (l.t("備考", "Notes")) textarea name="notes" rows="3" { (t.notes) } }
            div.wide { button type="submit" { (l.t("保存", "Save")) } }
        }
    }
}

fn from_pairs(pairs: &Pairs) -> NewTenant {
    let mut contacts = Vec::new();
    for i in 0..32 {
        if !pairs.iter().any(|(k, _)| *k == format!("contact_name_{i}")) {
            break;
        }
        contacts.push(Contact {
            name: field(pairs, &format!("contact_name_{i}")).to_string(),
            department: field(pairs, &format!("contact_department_{i}")).to_string(),
            email: field(pairs, &format!("contact_email_{i}")).to_string(),
            phone: field(pairs, &format!("contact_phone_{i}")).to_string(),
        });
    }
    let mut services = BTreeMap::new();
    for s in catalog::SERVICES {
        if !field(pairs, &format!("svc_{}", s.id)).is_empty() {
            let qty = field(pairs, &format!("qty_{}", s.id)).trim().parse::<u32>().unwrap_or(if s.unit_ja.is_some() { 0 } else { 1 });
            services.insert(s.id.to_string(), if s.unit_ja.is_some() { qty } else { 1 });
        }
    }
    NewTenant {
        code: field(pairs, "code").to_string(),
        name: field(pairs, "name").to_string(),
        kana: field(pairs, "kana").to_string(),
        kind: field(pairs, "kind").to_string(),
        contacts,
        network_ranges: field(pairs, "network_ranges").split_whitespace().map(str::to_string).collect(),
        separation: field(pairs, "separation").to_string(),
        mail_domains: field(pairs, "mail_domains").split_whitespace().map(str::to_string).collect(),
        fqdns: field(pairs, "fqdns").split_whitespace().map(str::to_string).collect(),
        services,
        notes: field(pairs, "notes").to_string(),
    }
}

/// GET /tenants/new
pub async fn new_form(PageAuth(a): PageAuth) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::TenantsWrite)?;
            let blank = NewTenant { kind: "city".into(), ..Default::default() };
            Ok(layout(&a, l.t("団体を追加", "Add tenant"), "/tenants", tenant_form(l, a.csrf(), "/tenants", &blank, None)))
        }
        .await,
    )
}

/// POST /tenants
pub async fn create(State(state): State<AppState>, PageAuth(a): PageAuth, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::TenantsWrite)?;
            check_csrf(&a, &pairs)?;
            let input = from_pairs(&pairs);
            let result = match input.check() {
                Ok(checked) => state.store.create_tenant(&a.principal.scope(), &a.principal.actor(), checked).await.map_err(AppError::from),
                Err(p) => Err(AppError::Invalid(p)),
            };
            match result {
                Ok(t) => Ok(see_other(&format!("/tenants/{}", t.id))),
                Err(e @ AppError::Invalid(_)) => {
                    let mut r = layout(&a, l.t("団体を追加", "Add tenant"), "/tenants", tenant_form(l, a.csrf(), "/tenants", &input, Some(&e)));
                    *r.status_mut() = e.status();
                    Ok(r)
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

fn parse_id(s: &str) -> Result<TenantId, AppError> {
    s.parse().map_err(|_| AppError::NotFound)
}

/// GET /tenants/{id}
pub async fn show(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::TenantsRead)?;
            let t = state.store.get_tenant(&a.principal.scope(), parse_id(&id)?).await?.ok_or(AppError::NotFound)?;
            Ok(layout(&a, &t.name, "/tenants", detail(&state, &a, &t, None).await?))
        }
        .await,
    )
}

async fn detail(state: &AppState, a: &Authed, t: &Tenant, error: Option<&AppError>) -> Result<Markup, AppError> {
    let l = a.lang;
    let retention = state.store.policy(&a.principal.scope(), Some(t.id), "retention").await?;
    let retention_days = retention.as_ref().and_then(|p| p.document.get("events_days")).and_then(|v| v.as_u64());
    let is_admin_of_own = a.principal.may_edit_contacts(t.id);
    Ok(html! {
        dl.facts {
            dt { (l.t("団体コード", "Code")) } dd { (t.code) }
            dt { (l.t("フリガナ", "Kana")) } dd { (t.kana) }
            dt { (l.t("種別", "Type")) } dd { (l.t(t.kind.ja(), t.kind.en())) }
            dt { (l.t("ネットワーク分離モデル", "Network separation model")) } dd {
                (l.t(t.separation.ja(), t.separation.en()))
                @if t.separation.requires_edr() { " " span.sev.sev3 { (l.t("EDR 必須（F21）", "EDR required (F21)")) } }
            }
            dt { (l.t("公開 FQDN", "Public FQDNs")) } dd {
                (t.fqdns.len()) " / " (1 + t.services.get("F41").copied().unwrap_or(0)) (l.t("件（標準1件＋F41）", " (1 standard + F41)"))
            }
            dt { (l.t("イベント保存期間", "Event retention")) } dd {
                @match retention_days { Some(d) => { (d) (l.t("日", " days")) }, None => { (l.t("既定値", "platform default")) } }
                " " a href=(format!("/settings/policies?tenant={}&component=retention", t.id)) { (l.t("変更", "change")) }
            }
            dt { (l.t("登録日時", "Created")) } dd { (when(t.created_at)) }
            dt { (l.t("更新日時", "Updated")) } dd { (when(t.updated_at)) }
        }
        p {
            a href=(format!("/events?tenant={}", t.id)) { (l.t("この団体のイベント", "Events of this tenant")) } " · "
            a href=(format!("/users?tenant={}", t.id)) { (l.t("この団体の利用者", "Accounts of this tenant")) }
        }
        @if a.principal.can(Permission::TenantsWrite) {
            h2 { (l.t("編集", "Edit")) }
            (tenant_form(l, a.csrf(), &format!("/tenants/{}", t.id), &t.to_input(), error))
            h2 { (l.t("削除", "Delete")) }
            form method="post" action=(format!("/tenants/{}/delete", t.id)) {
                input type="hidden" name="csrf" value=(a.csrf());
                label.check { input type="checkbox" name="confirm" required; (l.t("この団体を削除します（利用者が残っている場合は削除できません）", "Delete this tenant (refused while it has accounts)")) }
                button.danger type="submit" { (l.t("削除", "Delete")) }
            }
        } @else {
            h2 { (l.t("連絡先", "Contacts")) }
            @if let Some(e) = error { (problems(l, e)) }
            @if is_admin_of_own {
                form method="post" action=(format!("/tenants/{}/contacts", t.id)) {
                    input type="hidden" name="csrf" value=(a.csrf());
                    table.compact {
                        thead { tr { th { (l.t("氏名", "Name")) } th { (l.t("所属", "Department")) } th { (l.t("メール", "E-mail")) } th { (l.t("電話", "Phone")) } } }
                        tbody { @for (i, c) in t.contacts.iter().cloned().chain(std::iter::once(Contact::default())).enumerate() { tr {
                            td { input type="text" name=(format!("contact_name_{i}")) aria-label=(l.t("氏名", "name")) value=(c.name); }
                            td { input type="text" name=(format!("contact_department_{i}")) aria-label=(l.t("所属", "department")) value=(c.department); }
                            td { input type="email" name=(format!("contact_email_{i}")) aria-label=(l.t("メール", "email")) value=(c.email); }
                            td { input type="tel" name=(format!("contact_phone_{i}")) aria-label=(l.t("電話", "phone")) value=(c.phone); }
                        } } }
                    }
                    button type="submit" { (l.t("連絡先を保存", "Save contacts")) }
                }
            } @else {
                ul { @for c in &t.contacts { li { (c.name) " " (c.department) " " (c.email) " " (c.phone) } } }
            }
            h2 { (l.t("ネットワーク範囲", "Network ranges")) }
            p { (t.network_ranges.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")) }
            h2 { (l.t("メールドメイン", "Mail domains")) }
            p { (t.mail_domains.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")) }
            h2 { (l.t("公開 FQDN", "Public FQDNs")) }
            p { (t.fqdns.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")) }
            h2 { (l.t("契約サービス", "Subscribed services")) }
            ul { @for (id, q) in &t.services { li { (id) " " (catalog::find(id).map(|s| l.t(s.ja, s.en)).unwrap_or("")) @if *q > 1 { " × " (q) } } } }
        }
    })
}

/// POST /tenants/{id}
pub async fn update(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::TenantsWrite)?;
            check_csrf(&a, &pairs)?;
            let id = parse_id(&id)?;
            let scope = a.principal.scope();
            let current = state.store.get_tenant(&scope, id).await?.ok_or(AppError::NotFound)?;
            let result = match from_pairs(&pairs).check() {
                Ok(checked) => state.store.update_tenant(&scope, &a.principal.actor(), id, checked).await.map_err(AppError::from),
                Err(p) => Err(AppError::Invalid(p)),
            };
            match result {
                Ok(t) => Ok(see_other(&format!("/tenants/{}", t.id))),
                Err(e @ AppError::Invalid(_)) => {
                    let mut r = layout(&a, &current.name, "/tenants", detail(&state, &a, &current, Some(&e)).await?);
                    *r.status_mut() = e.status();
                    Ok(r)
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// POST /tenants/{id}/contacts (tenant admins keep their own contacts)
pub async fn update_contacts(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            check_csrf(&a, &pairs)?;
            let id = parse_id(&id)?;
            if !a.principal.may_edit_contacts(id) {
                return Err(AppError::Forbidden);
            }
            let scope = a.principal.scope();
            let current = state.store.get_tenant(&scope, id).await?.ok_or(AppError::NotFound)?;
            match current.check_contacts(from_pairs(&pairs).contacts) {
                Ok(contacts) => {
                    state.store.update_contacts(&scope, &a.principal.actor(), id, contacts).await?;
                    Ok(see_other(&format!("/tenants/{id}")))
                }
                Err(p) => {
                    let e = AppError::Invalid(p);
                    let mut r = layout(&a, &current.name, "/tenants", detail(&state, &a, &current, Some(&e)).await?);
                    *r.status_mut() = e.status();
                    Ok(r)
                }
            }
        }
        .await,
    )
}

/// POST /tenants/{id}/delete
pub async fn delete(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::TenantsWrite)?;
            check_csrf(&a, &pairs)?;
            state.store.delete_tenant(&a.principal.scope(), &a.principal.actor(), parse_id(&id)?).await?;
            Ok(see_other("/tenants"))
        }
        .await,
    )
}

fn import_page(a: &Authed, error: Option<&AppError>, done: Option<&mamori_store::ImportReport>) -> Response {
    let l = a.lang;
    layout(
        a,
        l.t("団体の CSV 取り込み", "Import tenants from CSV"),
        "/tenants",
        html! {
            @if let Some(e) = error { (problems(l, e)) p { (l.t("エラーがあるため、何も変更していません。", "Nothing was changed because of these errors.")) } }
            @if let Some(r) = done { div.ok role="status" { (l.t("取り込みました", "Imported")) ": " (l.t("追加", "created")) " " (r.created) " / " (l.t("更新", "updated")) " " (r.updated) } }
            p { (l.t("1行目は見出し行です。団体コードが同じ行は既存の団体を更新し、それ以外は追加します。すべての行を確認してから、まとめて反映します。",
                     "The first row is the header. A row whose code exists updates that tenant; others are added. Every row is checked before anything is applied.")) }
            p { code { (crate::csv_io::TENANT_COLUMNS.join(",")) } }
            form method="post" action="/tenants/import" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(a.csrf());
                label { (l.t("CSV ファイル（UTF-8）", "CSV file (UTF-8)")) input type="file" name="file" accept=".csv,text/csv" required; }
                button type="submit" { (l.t("取り込む", "Import")) }
            }
        },
    )
}

/// GET /tenants/import
pub async fn import_form(PageAuth(a): PageAuth) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::TenantsWrite)?;
            Ok(import_page(&a, None, None))
        }
        .await,
    )
}

/// POST /tenants/import
pub async fn import(State(state): State<AppState>, PageAuth(a): PageAuth, mut multipart: Multipart) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::TenantsWrite)?;
            let (mut csrf, mut file) = (String::new(), None);
            loop {
                let field = match multipart.next_field().await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(AppError::Invalid(
                            mamori_core::Problem::new(
                                "file",
                                "bad_upload",
                                format!("アップロードを読めません（{e}）"),
                                format!("cannot read the upload ({e})"),
                            )
                            .into(),
                        ));
                    }
                };
                match field.name() {
                    Some("csrf") => csrf = field.text().await.unwrap_or_default(),
                    Some("file") => {
                        file = Some(field.bytes().await.map_err(|e| {
                            AppError::Invalid(
                                mamori_core::Problem::new("file", "bad_upload", format!("ファイルを読めません（{e}）"), format!("cannot read the file ({e})"))
                                    .into(),
                            )
                        })?)
                    }
                    _ => {}
                }
            }
            a.check_csrf(&csrf)?;
            let bytes = file.unwrap_or_default();
            let result = match crate::csv_io::import_tenants(&bytes) {
                Ok(rows) => state.store.import_tenants(&a.principal.scope(), &a.principal.actor(), rows).await.map_err(AppError::from),
                Err(p) => Err(AppError::Invalid(p)),
            };
            match result {
                Ok(report) => Ok(import_page(&a, None, Some(&report))),
                Err(e @ AppError::Invalid(_)) => {
                    let mut r = import_page(&a, Some(&e), None);
                    *r.status_mut() = e.status();
                    Ok(r)
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// GET /tenants/export.csv: the tenants of the list's search in its order, in the
/// form the import reads (the list's CSV link).
pub async fn export(State(state): State<AppState>, PageAuth(a): PageAuth, mamori_web::Query(q): mamori_web::Query<BTreeMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            let (_, tenants) = matching(&state, &a, &q).await?;
            Ok(export_csv(l, &tenants, &TableQuery::from_query(&q)))
        }
        .await,
    )
}

fn export_csv(l: Lang, tenants: &[Tenant], tq: &TableQuery) -> Response {
    let rows: Vec<Tenant> = table(l).ordered(tenants, tq).into_iter().cloned().collect();
    csv_response("tenants.csv", crate::csv_io::export_tenants(&rows))
}

/// Returns a CSV download.
pub fn csv_response(name: &str, body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))], body)
        .into_response()
}
