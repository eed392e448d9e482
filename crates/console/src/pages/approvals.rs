//! 承認待ち: policy changes that wait for the prefecture's approver (県の承認者), each
//! with what it changes; the approver approves or rejects it with a note, never their
//! own submission. Writers see what they submitted and where it stands.
//!
//! Requirements: the change management of the standard's operations (運用管理) behind
//! every component's policy (F06–F51).

use super::{layout, page_result, problems, see_other, when};
use crate::api::PendingChange;
use crate::auth::{Authed, PageAuth};
use crate::{AppError, AppState};
use axum::extract::State;
use axum::response::Response;
use mamori_core::{Permission, Tenant};
use mamori_web::Form;
use maud::{Markup, html};
use serde::Deserialize;

/// Renders a list of changes, before and after.
pub(crate) fn changes_table(l: crate::Lang, changes: &[mamori_core::PolicyChange]) -> Markup {
    let shown = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "—".into());
    html! {
        @if changes.is_empty() {
            p { (l.t("現在のポリシーから変わる項目はありません。", "Nothing changes from the policy in force.")) }
        } @else {
            table.compact.policy-diff {
                thead { tr { th { (l.t("項目", "Key")) } th { (l.t("変更前", "Before")) } th { (l.t("変更後", "After")) } } }
                tbody { @for c in changes { tr { td { code { (if c.path.is_empty() { "(全体)" } else { c.path.as_str() }) } } td { code { (shown(&c.before)) } } td { code { (shown(&c.after)) } } } } }
            }
        }
    }
}

fn tenant_label(l: crate::Lang, tenants: &[Tenant], t: Option<mamori_core::TenantId>) -> String {
    match t {
        None => l.t("全団体の既定値", "Platform default").to_string(),
        Some(id) => tenants.iter().find(|x| x.id == id).map(|x| x.name.clone()).unwrap_or_default(),
    }
}

async fn page(state: &AppState, a: &Authed, error: Option<&AppError>, done: Option<&str>) -> Result<Response, AppError> {
    let l = a.lang;
    let pending: Vec<PendingChange> = crate::api::pending_changes(state, a).await?;
    let tenants = state.store.list_tenants(&a.principal.scope()).await?;
    let approver = a.principal.can(Permission::PoliciesApprove);
    let me = a.principal.actor().name;
    let body = html! {
        @if let Some(e) = error { (problems(l, e)) }
        @if let Some(d) = done { div.ok role="status" { (d) } }
        p.muted { (l.t(
            "承認が必要なコンポーネントのポリシー変更は、県の承認者が承認するまで適用されません。承認者は自分が申請した変更を承認できません。",
            "Policy changes of components that need approval take effect only once a prefecture approver approves them; nobody approves their own.")) }
        @if pending.is_empty() {
            p #no-pending { (l.t("承認待ちの変更はありません。", "No change waits for approval.")) }
        }
        @for p in &pending {
            section.card.pending-change {
                h2 { (p.policy.component) " / " (tenant_label(l, &tenants, p.policy.tenant)) " — " (l.t("版 ", "version ")) (p.policy.version) }
                p { (l.t("申請者", "Submitted by")) ": " (p.policy.created_by) "（" (when(p.policy.created_at)) "）"
                    @if p.policy.effective_at > 0 { " / " (l.t("適用予定", "Takes effect at")) ": " (when(p.policy.effective_at)) } }
                (changes_table(l, &p.changes))
                @if approver && p.policy.created_by != me {
                    form.grid method="post" action="/approvals" {
                        input type="hidden" name="csrf" value=(a.csrf());
                        input type="hidden" name="component" value=(p.policy.component);
                        input type="hidden" name="tenant" value=(p.policy.tenant.map(|t| t.to_string()).unwrap_or_default());
                        input type="hidden" name="version" value=(p.policy.version);
                        label.wide { (l.t("コメント（却下する場合は理由を必ず記入）", "Note (say why when rejecting)")) textarea name="note" rows="2" maxlength="1000" {} }
                        div.wide {
                            button type="submit" name="decision" value="approve" { (l.t("承認して適用する", "Approve")) }
                            " "
                            button.danger type="submit" name="decision" value="reject" { (l.t("却下する", "Reject")) }
                        }
                    }
                } @else if approver {
                    p.muted { (l.t("ご自身の申請のため、別の承認者の判断を待っています。", "Your own submission: it waits for another approver.")) }
                }
            }
        }
    };
    let mut r = layout(a, l.t("承認待ちの変更", "Changes awaiting approval"), "/approvals", body);
    if let Some(e) = error {
        *r.status_mut() = e.status();
    }
    Ok(r)
}

/// The decision form.
#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    component: String,
    #[serde(default)]
    tenant: String,
    version: i64,
    decision: String,
    #[serde(default)]
    note: String,
}

/// POST /approvals: approves or rejects one waiting version.
pub async fn decide(State(state): State<AppState>, PageAuth(a): PageAuth, Form(f): Form<DecisionForm>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.check_csrf(&f.csrf)?;
            let tenant = match f.tenant.trim() {
                "" => None,
                t => Some(t.parse().map_err(|_| AppError::NotFound)?),
            };
            let approve = match f.decision.as_str() {
                "approve" => true,
                "reject" => false,
                _ => return Err(AppError::NotFound),
            };
            match crate::api::decide_policy(&state, &a, &f.component, tenant, f.version, approve, &f.note).await {
                Ok(_) if approve => Ok(see_other("/approvals?done=approved")),
                Ok(_) => Ok(see_other("/approvals?done=rejected")),
                Err(e @ (AppError::Invalid(_) | AppError::Denied(_))) => page(&state, &a, Some(&e), None).await,
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// The query of the list after a decision.
#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

/// GET /approvals (`?done=approved|rejected` after a decision)
pub async fn list(State(state): State<AppState>, PageAuth(a): PageAuth, mamori_web::Query(q): mamori_web::Query<Done>) -> Response {
    let l = a.lang;
    let note = match q.done.as_deref() {
        Some("approved") => Some(l.t(
            "承認しました。稼働中のコンポーネントに数秒以内に反映されます（適用予定日時のあるものはその時刻に）。",
            "Approved. Running components pick it up within seconds (or at its scheduled time).",
        )),
        Some("rejected") => Some(l.t("却下しました。申請者には履歴に理由が表示されます。", "Rejected. The submitter sees the reason in the history.")),
        _ => None,
    };
    page_result(l, page(&state, &a, None, note).await)
}
