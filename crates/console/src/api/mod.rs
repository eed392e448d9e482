//! The REST API under `/api/v1`: everything the console does, as JSON.
//!
//! Authentication: `Authorization: Bearer mmr_…` (an API token, acting with its
//! owner's role narrowed to its scopes), or the console session cookie (then
//! state-changing requests need `X-CSRF-Token`). Errors are
//! `{"error", "message", "message_ja", "problems": [{field, code, ja, en}]}`.
//!
//! [`ROUTES`] lists every endpoint; [`routes`] builds the router beside it and
//! [`openapi`] describes the same table, so the three cannot drift apart silently (a
//! test walks the table against the router).

mod audit;
mod events;
pub mod holds;
pub mod openapi;
mod policies;
mod secrets;
pub use policies::{PendingChange, decide as decide_policy, effective_at, pending_changes, require_policy_writer};
pub use secrets::secret_tenant;
mod segments;
mod tenants;
mod tokens;
mod users;

use crate::AppState;
use crate::auth::ApiAuth;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post, put};
use mamori_core::Permission;
use serde_json::json;

pub use mamori_web::RouteDoc;
use mamori_web::api::route as r;
pub use mamori_web::api::{ApiResult, body, created, from_doc, ok, patch_doc, replace_doc};

use Permission::*;

const EVENT_QUERY: &[&str] = &["from", "to", "tenant", "class", "severity", "disposition", "q", "fields", "limit", "cursor"];
const AUDIT_QUERY: &[&str] = &["actor", "action", "tenant", "from", "to", "before", "limit"];

/// Every API endpoint of the console itself (components bring theirs in their web
/// parts; [`crate::Assembly`] has the union).
pub const ROUTES: &[RouteDoc] = &[
    r("GET", "/api/v1/me", "account", "The caller: account, role, tenant, permissions", None, &[], None).returns(200, "Me"),
    r("GET", "/api/v1/catalog", "tenants", "The service catalog (F05, F17, F21, F30-F51)", None, &[], None).returns(200, "Catalog"),
    r("GET", "/api/v1/tenants", "tenants", "List tenants in scope", Some(TenantsRead), &[], None).returns(200, "Tenants"),
    r("POST", "/api/v1/tenants", "tenants", "Create a tenant", Some(TenantsWrite), &[], Some("NewTenant")).returns(201, "Tenant"),
    r("GET", "/api/v1/tenants/export", "tenants", "Export tenants as CSV", Some(TenantsRead), &[], None).returns(200, "CsvText"),
    r(
        "GET",
        "/api/v1/secrets",
        "secrets",
        "List the secrets in scope: name, kind, master key, who changed them when; never a value",
        Some(PoliciesRead),
        &[],
        None,
    ).returns(200, "SecretInfos"),
    r(
        "PUT",
        "/api/v1/secrets",
        "secrets",
        "Store or replace a secret (a tenant's, or the platform's for operator admins); the answer has no value",
        Some(PoliciesWrite),
        &[],
        Some("SecretInput"),
    ).returns(200, "SecretInfo"),
    r("DELETE", "/api/v1/secrets", "secrets", "Delete a secret", Some(PoliciesWrite), &["tenant", "name"], None).returns(200, "Deleted"),
    r("GET", "/api/v1/segments", "tenants", "List the network segments tenant ranges are registered on", Some(TenantsRead), &[], None).returns(200, "Segments"),
    r("PUT", "/api/v1/segments/{name}", "tenants", "Create or change a network segment (operator roles)", Some(TenantsWrite), &[], Some("SegmentInput")).returns(200, "Segment"),
    r("DELETE", "/api/v1/segments/{name}", "tenants", "Delete a network segment no tenant range is on (operator roles)", Some(TenantsWrite), &[], None).returns(200, "Deleted"),
    r(
        "GET",
        "/api/v1/resolve",
        "tenants",
        "Which tenant an address on a segment, a mail domain or a host name belongs to (operator roles)",
        Some(TenantsRead),
        &["segment", "address", "mail", "host"],
        None,
    ).returns(200, "Resolved"),
    r("POST", "/api/v1/tenants/import", "tenants", "Import tenants from CSV (all or nothing)", Some(TenantsWrite), &[], Some("CsvText")).returns(200, "ImportReport"),
    r("GET", "/api/v1/tenants/{id}", "tenants", "Get a tenant", Some(TenantsRead), &[], None).returns(200, "Tenant"),
    r(
        "PUT",
        "/api/v1/tenants/{id}",
        "tenants",
        "Replace a tenant's fields (every field; use PATCH to change some)",
        Some(TenantsWrite),
        &[],
        Some("NewTenant"),
    ).returns(200, "Tenant"),
    r(
        "PATCH",
        "/api/v1/tenants/{id}",
        "tenants",
        "Change some of a tenant's fields (JSON merge patch; the others stay)",
        Some(TenantsWrite),
        &[],
        Some("TenantPatch"),
    ).returns(200, "Tenant"),
    r("DELETE", "/api/v1/tenants/{id}", "tenants", "Delete a tenant without accounts", Some(TenantsWrite), &[], None).returns(200, "Deleted"),
    r(
        "PUT",
        "/api/v1/tenants/{id}/contacts",
        "tenants",
        "Replace a tenant's contacts (tenants:write, or policies:write for a tenant admin's own tenant)",
        None,
        &[],
        Some("Contacts"),
    ).returns(200, "Tenant"),
    r("GET", "/api/v1/users", "users", "List accounts in scope", Some(UsersRead), &["tenant"], None).returns(200, "Users"),
    r("POST", "/api/v1/users", "users", "Create an account (returns a one-time password)", Some(UsersWrite), &[], Some("NewUser")).returns(201, "CreatedUser"),
    r("GET", "/api/v1/users/{id}", "users", "Get an account", Some(UsersRead), &[], None).returns(200, "User"),
    r("PATCH", "/api/v1/users/{id}", "users", "Change an account", Some(UsersWrite), &[], Some("UserPatch")).returns(200, "User"),
    r("DELETE", "/api/v1/users/{id}", "users", "Delete an account", Some(UsersWrite), &[], None).returns(200, "Deleted"),
    r("POST", "/api/v1/users/{id}/reset-password", "users", "Reset the password (returns a one-time password)", Some(UsersWrite), &[], None).returns(200, "OneTimePassword"),
    r("POST", "/api/v1/users/{id}/unlock", "users", "Lift a lockout", Some(UsersWrite), &[], None).returns(200, "Unlocked"),
    r("POST", "/api/v1/users/{id}/reset-totp", "users", "Remove the TOTP second factor", Some(UsersWrite), &[], None).returns(200, "TotpReset"),
    r("GET", "/api/v1/events", "events", "Search events (newest first, keyset paging)", Some(EventsRead), EVENT_QUERY, None).returns(200, "EventPage"),
    r("POST", "/api/v1/events", "events", "Submit OCSF events (one object or an array of up to 1000)", Some(EventsWrite), &[], Some("OcsfEvents")).returns(201, "EventsAccepted"),
    r(
        "GET",
        "/api/v1/events/histogram",
        "events",
        "Event counts over time",
        Some(EventsRead),
        &["from", "to", "tenant", "class", "severity", "disposition", "q", "fields", "buckets"],
        None,
    ).returns(200, "Histogram"),
    r("GET", "/api/v1/events/{id}", "events", "Get one event", Some(EventsRead), &[], None).returns(200, "OcsfEvent"),
    r("GET", "/api/v1/holds", "events", "Legal holds (証拠保全) in scope, newest first; all=true with released ones", Some(EventsRead), &["all"], None).returns(200, "EventHolds"),
    r("POST", "/api/v1/holds", "events", "Place a legal hold on a tenant's events in a range: retention never purges them until it is released (operators)", Some(EventsWrite), &[], Some("HoldRequest"))
        .returns(201, "EventHold"),
    r("POST", "/api/v1/holds/{id}/release", "events", "Release a legal hold (operators); retention may then purge its events", Some(EventsWrite), &[], None).returns(200, "EventHold"),
    r("GET", "/api/v1/audit", "audit", "List audit entries (newest first)", Some(AuditRead), AUDIT_QUERY, None).returns(200, "AuditEntries"),
    r("GET", "/api/v1/audit/export", "audit", "Export audit entries as CSV", Some(AuditRead), &["actor", "action", "tenant", "from", "to"], None).returns(200, "CsvText"),
    r("GET", "/api/v1/audit/verify", "audit", "Verify the audit hash chain (operator roles)", Some(AuditRead), &[], None).returns(200, "AuditVerification"),
    r(
        "GET",
        "/api/v1/nodes",
        "nodes",
        "The platform's nodes, their components' states and the singleton leases (operator roles)",
        Some(MonitorsRead),
        &[],
        None,
    ).returns(200, "Nodes"),
    r("GET", "/api/v1/policies", "policies", "Components with policies and their defaults", Some(PoliciesRead), &[], None).returns(200, "PolicyComponents"),
    r("GET", "/api/v1/policies/{component}", "policies", "The policy in force (tenant's own, else the default)", Some(PoliciesRead), &["tenant"], None).returns(200, "PolicyInForce"),
    r(
        "PUT",
        "/api/v1/policies/{component}",
        "policies",
        "Validate and save a new policy version; with effective_at it takes effect then; with dry_run=true only validate and list the changes against the version in force",
        Some(PoliciesWrite),
        &["tenant", "dry_run", "effective_at"],
        Some("PolicyDocument"),
    ).returns(200, "PolicySaved"),
    r(
        "POST",
        "/api/v1/policies/{component}/rollback",
        "policies",
        "Save an earlier version's document as the newest version (checked like any save)",
        Some(PoliciesWrite),
        &["tenant", "version"],
        None,
    ).returns(200, "PolicyDocument"),
    r(
        "DELETE",
        "/api/v1/policies/{component}/scheduled",
        "policies",
        "Cancel a scheduled version that has not taken effect",
        Some(PoliciesWrite),
        &["tenant", "version"],
        None,
    ).returns(200, "Cancelled"),
    r("GET", "/api/v1/policies/{component}/writers", "policies", "The roles that may write this component's policies", Some(PoliciesRead), &[], None).returns(200, "PolicyWritersAnswer"),
    r(
        "PUT",
        "/api/v1/policies/{component}/writers",
        "policies",
        "Set the roles that may write this component's policies (operator admins; operator_admin always may)",
        Some(SettingsWrite),
        &[],
        Some("PolicyWriters"),
    ).returns(200, "PolicyWritersAnswer"),
    r("GET", "/api/v1/policies/{component}/versions", "policies", "Saved versions, newest first", Some(PoliciesRead), &["tenant"], None).returns(200, "PolicyDocuments"),
    r(
        "GET",
        "/api/v1/policies/{component}/approval",
        "policies",
        "Whether people's changes of this component's policies need the prefecture's approval",
        Some(PoliciesRead),
        &[],
        None,
    ).returns(200, "PolicyApprovalAnswer"),
    r(
        "PUT",
        "/api/v1/policies/{component}/approval",
        "policies",
        "Require (or not) the prefecture's approval for this component's policy changes (operator admins)",
        Some(SettingsWrite),
        &[],
        Some("PolicyApproval"),
    ).returns(200, "PolicyApprovalAnswer"),
    r("GET", "/api/v1/approvals", "policies", "Policy versions waiting for the prefecture's approval, with what each changes", Some(PoliciesRead), &[], None).returns(200, "PendingChanges"),
    r(
        "POST",
        "/api/v1/policies/{component}/versions/{version}/approve",
        "policies",
        "Approve a waiting version (prefecture approvers; not the submitter); it takes effect at once or at its scheduled time",
        Some(PoliciesApprove),
        &["tenant"],
        Some("PolicyDecision"),
    ).returns(200, "PolicyDocument"),
    r(
        "POST",
        "/api/v1/policies/{component}/versions/{version}/reject",
        "policies",
        "Reject a waiting version, saying why (prefecture approvers; not the submitter)",
        Some(PoliciesApprove),
        &["tenant"],
        Some("PolicyDecision"),
    ).returns(200, "PolicyDocument"),
    r("GET", "/api/v1/policies/{component}/minimums", "policies", "Platform minimums no policy may go below", Some(PoliciesRead), &[], None).returns(200, "PolicyMinimumsAnswer"),
    r(
        "PUT",
        "/api/v1/policies/{component}/minimums",
        "policies",
        "Set the platform minimums (operator admins)",
        Some(SettingsWrite),
        &[],
        Some("PolicyDocument"),
    ).returns(200, "PolicyMinimumsAnswer"),
    r("GET", "/api/v1/tokens", "account", "The caller's API tokens", None, &[], None).returns(200, "ApiTokens"),
    r("POST", "/api/v1/tokens", "account", "Create an API token (the secret is returned once)", None, &[], Some("NewToken")).returns(201, "CreatedToken"),
    r("DELETE", "/api/v1/tokens/{id}", "account", "Revoke an API token", None, &[], None).returns(200, "Revoked"),
    r("GET", "/api/v1/settings/auth", "settings", "Login and session settings", Some(SettingsWrite), &[], None).returns(200, "AuthSettings"),
    r("PUT", "/api/v1/settings/auth", "settings", "Replace the login and session settings (every field)", Some(SettingsWrite), &[], Some("AuthSettings")).returns(200, "AuthSettings"),
    r(
        "PATCH",
        "/api/v1/settings/auth",
        "settings",
        "Change some login and session settings (JSON merge patch; the others stay)",
        Some(SettingsWrite),
        &[],
        Some("AuthSettingsPatch"),
    ).returns(200, "AuthSettings"),
];

/// Builds the console's own API router (`/api/openapi.json` is added with the parts').
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/catalog", get(catalog))
        .route("/api/v1/tenants", get(tenants::list).post(tenants::create))
        .route("/api/v1/tenants/export", get(tenants::export))
        .route("/api/v1/tenants/import", post(tenants::import))
        .route("/api/v1/tenants/{id}", get(tenants::get).put(tenants::update).patch(tenants::patch).delete(tenants::delete))
        .route("/api/v1/tenants/{id}/contacts", put(tenants::contacts))
        .route("/api/v1/secrets", get(secrets::list).put(secrets::put).delete(secrets::delete))
        .route("/api/v1/segments", get(segments::list))
        .route("/api/v1/segments/{name}", put(segments::put).delete(segments::delete))
        .route("/api/v1/resolve", get(segments::lookup))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/users/{id}", get(users::get).patch(users::update).delete(users::delete))
        .route("/api/v1/users/{id}/reset-password", post(users::reset_password))
        .route("/api/v1/users/{id}/unlock", post(users::unlock))
        .route("/api/v1/users/{id}/reset-totp", post(users::reset_totp))
        .route("/api/v1/events", get(events::search).post(events::submit))
        .route("/api/v1/events/histogram", get(events::histogram))
        .route("/api/v1/events/{id}", get(events::get))
        .route("/api/v1/holds", get(holds::list).post(holds::place))
        .route("/api/v1/holds/{id}/release", post(holds::release))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/audit/export", get(audit::export))
        .route("/api/v1/audit/verify", get(audit::verify))
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/policies", get(policies::list))
        .route("/api/v1/policies/{component}", get(policies::get).put(policies::put))
        .route("/api/v1/policies/{component}/versions", get(policies::versions))
        .route("/api/v1/policies/{component}/rollback", post(policies::rollback))
        .route("/api/v1/policies/{component}/scheduled", axum::routing::delete(policies::cancel))
        .route("/api/v1/policies/{component}/writers", get(policies::writers).put(policies::put_writers))
        .route("/api/v1/policies/{component}/minimums", get(policies::minimums).put(policies::put_minimums))
        .route("/api/v1/policies/{component}/approval", get(policies::approval).put(policies::put_approval))
        .route("/api/v1/policies/{component}/versions/{version}/approve", post(policies::approve))
        .route("/api/v1/policies/{component}/versions/{version}/reject", post(policies::reject))
        .route("/api/v1/approvals", get(policies::approvals))
        .route("/api/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/api/v1/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/api/v1/settings/auth", get(settings_get).put(settings_put).patch(settings_patch))
}

async fn me(ApiAuth(a): ApiAuth) -> ApiResult {
    let perms: Vec<Permission> = Permission::ALL.into_iter().filter(|p| a.principal.can(*p)).collect();
    ok(json!({ "user": a.user, "permissions": perms, "token": a.principal.token().as_ref().map(|(id, scopes)| json!({"id": id, "scopes": scopes})) }))
}

async fn catalog(ApiAuth(_a): ApiAuth) -> ApiResult {
    ok(json!(mamori_core::catalog::SERVICES))
}

async fn settings_get(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require(SettingsWrite)?;
    ok(json!(state.auth_settings().await))
}

/// PUT replaces every field (an omitted one is an error, never reset to its default).
async fn settings_put(State(state): State<AppState>, ApiAuth(a): ApiAuth, bytes: axum::body::Bytes) -> ApiResult {
    a.require(SettingsWrite)?;
    let current = json!(state.auth_settings().await);
    save_settings(&state, &a, from_doc(replace_doc(&current, &bytes, &[])?)?).await
}

/// PATCH changes the fields it names (a JSON merge patch).
async fn settings_patch(State(state): State<AppState>, ApiAuth(a): ApiAuth, bytes: axum::body::Bytes) -> ApiResult {
    a.require(SettingsWrite)?;
    let current = json!(state.auth_settings().await);
    save_settings(&state, &a, from_doc(patch_doc(current, &bytes)?)?).await
}

async fn save_settings(state: &AppState, a: &crate::auth::Authed, s: crate::AuthSettings) -> ApiResult {
    s.check()?;
    state.store.put_setting(&a.principal.scope(), &a.principal.actor(), "auth", &json!(s)).await?;
    ok(json!(s))
}

/// GET /api/v1/nodes
async fn nodes(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require_operator(Permission::MonitorsRead)?;
    let scope = a.principal.scope();
    let nodes = state.store.list_nodes(&scope).await?;
    let leases = state.store.list_leases(&scope).await?;
    ok(json!({ "this_node": &*state.node.id, "nodes": nodes, "leases": leases }))
}
