//! The OpenAPI 3.0 document of the REST API, built from the union of the console's
//! [`super::ROUTES`] and every component's web part ([`crate::Assembly`]).

use mamori_web::RouteDoc;
use serde_json::{Map, Value, json};

fn schemas() -> Value {
    let string = json!({"type": "string"});
    json!({
        "Problem": {"type": "object", "required": ["field", "code", "ja", "en"], "properties": {"field": string, "code": string, "ja": string, "en": string}},
        "Error": {"type": "object", "required": ["error", "message", "message_ja", "problems"], "properties": {"error": string, "message": string, "message_ja": string, "problems": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}}}},
        "Contact": {"type": "object", "required": ["name"], "properties": {"name": string, "department": string, "email": string, "phone": string}},
        "Contacts": {"type": "array", "items": {"$ref": "#/components/schemas/Contact"}},
        "NewTenant": {
            "type": "object", "required": ["code", "name", "kana", "kind"],
            "properties": {
                "code": {"type": "string", "pattern": "^[0-9]{6}$", "description": "全国地方公共団体コード with check digit"},
                "name": string, "kana": {"type": "string", "description": "katakana (hiragana is converted)"},
                "kind": {"type": "string", "enum": ["prefecture", "city", "ward", "town", "village", "joint_association"]},
                "contacts": {"$ref": "#/components/schemas/Contacts"},
                "separation": {"type": "string", "enum": ["alpha", "alpha_prime", "beta", "beta_prime"], "description": "network separation model (α, α′, β, β′); default alpha"},
                "network_ranges": {"type": "array", "items": {"type": "string", "description": "CIDR, or CIDR@segment for a segment other than default"}},
                "mail_domains": {"type": "array", "items": {"type": "string", "description": "domain name; its subdomains included"}},
                "fqdns": {"type": "array", "items": {"type": "string", "description": "public FQDN behind the WAF; the 2nd onward each needs F41"}},
                "services": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}, "description": "catalog id → quantity"},
                "notes": string
            }
        },
        "Tenant": {"allOf": [{"$ref": "#/components/schemas/NewTenant"}, {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}, "created_at": {"type": "integer"}, "updated_at": {"type": "integer"}}}]},
        "NewUser": {
            "type": "object", "required": ["username", "display_name", "role"],
            "properties": {"username": string, "display_name": string, "email": string,
                "role": {"type": "string", "enum": mamori_core::Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()},
                "tenant_id": {"type": "string", "format": "uuid", "description": "the municipality of a tenant role"},
                "tenants": {"type": "array", "items": {"type": "string", "format": "uuid"}, "description": "the municipalities a maintenance vendor serves"},
                "expires_on": {"type": "string", "format": "date", "description": "last day the account works (JST); required for maintenance vendors"},
                "password": string}
        },
        "UserPatch": {"type": "object", "properties": {"display_name": string, "email": string, "role": string, "tenant_id": {"type": "string", "format": "uuid", "nullable": true},
            "tenants": {"type": "array", "items": {"type": "string", "format": "uuid"}}, "expires_on": {"type": "string", "format": "date", "nullable": true},
            "disabled": {"type": "boolean"}, "lang": {"type": "string", "enum": ["ja", "en"]}}},
        "OcsfEvent": {"type": "object", "required": ["class_uid"], "description": "An OCSF 1.3 event: time, class_uid, activity_id, severity_id, disposition_id, message, src_endpoint, dst_endpoint, actor.user.name, metadata.tenant_uid, raw_data, class attributes", "additionalProperties": true},
        "OcsfEvents": {"oneOf": [{"$ref": "#/components/schemas/OcsfEvent"}, {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/OcsfEvent"}}]},
        "PolicyDocument": {"type": "object", "additionalProperties": true},
        "NewToken": {"type": "object", "required": ["name", "scopes"], "properties": {"name": string, "days": {"type": "integer", "minimum": 1, "maximum": 400},
            "scopes": {"type": "array", "items": {"type": "string", "enum": mamori_core::TokenScope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()}}}},
        "AuthSettingsPatch": {"type": "object", "description": "JSON merge patch (RFC 7396) of AuthSettings: the fields named change, the others stay", "additionalProperties": true},
        "TenantPatch": {"type": "object", "description": "JSON merge patch (RFC 7396) of a NewTenant: the fields named change, the others stay", "additionalProperties": true},
        "AuthSettings": {"type": "object", "properties": {"lockout_threshold": {"type": "integer"}, "lockout_minutes": {"type": "integer"}, "session_idle_minutes": {"type": "integer"}, "session_max_hours": {"type": "integer"}, "password_min_length": {"type": "integer"}, "totp_tenant_admins": {"type": "boolean", "description": "tenant admins must use TOTP (default true)"}, "totp_tenant_users": {"type": "boolean", "description": "tenant users must use TOTP (default false)"}}},
        "PolicyApproval": {"type": "object", "required": ["required"], "properties": {"required": {"type": "boolean"}}},
        "PolicyDecision": {"type": "object", "properties": {"note": {"type": "string", "maxLength": 1000, "description": "why; required to reject"}}},
        "PolicyWriters": {"type": "object", "required": ["roles"], "properties": {"roles": {"type": "array", "items": {"type": "string", "enum": ["operator_admin", "soc_analyst", "tenant_admin"]}}}},
        "SecretInput": {"type": "object", "required": ["name", "kind", "value"], "properties": {"tenant": {"type": "string", "description": "tenant id; empty: the caller's own, or the platform's for operator admins"}, "name": {"type": "string", "pattern": "^[a-z0-9._/-]{1,128}$"}, "kind": {"type": "string", "enum": ["password", "private_key", "certificate", "token", "other"]}, "value": {"type": "string", "format": "password", "writeOnly": true}}},
        "SegmentInput": {"type": "object", "required": ["label", "zone"], "properties": {"label": string, "zone": {"type": "string", "enum": ["internet", "lgwan"]}, "notes": string}},
        "CsvText": {"type": "string", "description": "CSV with the header code,name,kana,kind,separation,network_ranges,mail_domains,fqdns,services,contact_name,contact_department,contact_email,contact_phone,other_contacts,notes"}
    })
}

/// The console's answers: schemas derived from the types they are serialized from, and
/// the small objects handlers build on the spot.
fn responses() -> Map<String, Value> {
    use mamori_store as st;
    let mut m = mamori_web::api::Schemas::default()
        .with::<Vec<mamori_core::catalog::Service>>("Catalog")
        .with::<mamori_core::Tenant>("Tenant")
        .with::<Vec<mamori_core::Tenant>>("Tenants")
        .with::<st::EventHold>("EventHold")
        .with::<Vec<st::EventHold>>("EventHolds")
        .with::<super::holds::HoldRequest>("HoldRequest")
        .with::<st::SecretInfo>("SecretInfo")
        .with::<Vec<st::SecretInfo>>("SecretInfos")
        .with::<mamori_core::network::Segment>("Segment")
        .with::<Vec<mamori_core::network::Segment>>("Segments")
        .with::<st::ImportReport>("ImportReport")
        .with::<st::User>("User")
        .with::<Vec<st::User>>("Users")
        .with::<st::events::Histogram>("Histogram")
        .with::<st::AuditEntry>("AuditEntry")
        .with::<Vec<st::AuditEntry>>("AuditEntries")
        .with::<st::NodeReport>("NodeReport")
        .with::<st::LeaseRecord>("LeaseRecord")
        .with::<mamori_core::PolicyDocument>("PolicyDocument")
        .with::<Vec<mamori_core::PolicyDocument>>("PolicyDocuments")
        .with::<Vec<mamori_core::PolicyChange>>("PolicyChanges")
        .with::<Vec<super::policies::PendingChange>>("PendingChanges")
        .with::<st::ApiToken>("ApiToken")
        .with::<Vec<st::ApiToken>>("ApiTokens")
        .with::<mamori_web::AuthSettings>("AuthSettings")
        .with::<Vec<mamori_core::Permission>>("Permissions")
        .with::<Vec<mamori_core::Role>>("Roles")
        .with::<Vec<mamori_core::TokenScope>>("TokenScopes")
        .with::<mamori_core::network::SeparationModel>("SeparationModel")
        .into_map();
    let r = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let object = |props: Value| {
        let required: Vec<String> = props.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        json!({"type": "object", "required": required, "properties": props})
    };
    let string = json!({"type": "string"});
    let int = json!({"type": "integer"});
    let any = json!({"nullable": true, "description": "any JSON value"});
    let ad_hoc = [
        (
            "Me",
            object(
                json!({"user": r("User"), "permissions": r("Permissions"), "token": {"nullable": true, "type": "object", "required": ["id", "scopes"], "properties": {"id": {"type": "string", "format": "uuid"}, "scopes": r("TokenScopes")}}}),
            ),
        ),
        ("Deleted", object(json!({"deleted": string}))),
        (
            "Resolved",
            object(
                json!({"asked": string, "tenant": {"nullable": true, "type": "object", "required": ["id", "code", "name", "separation"], "properties": {"id": {"type": "string", "format": "uuid"}, "code": string, "name": string, "separation": r("SeparationModel")}}}),
            ),
        ),
        ("CreatedUser", object(json!({"user": r("User"), "one_time_password": {"type": "string", "nullable": true}}))),
        ("OneTimePassword", object(json!({"one_time_password": string}))),
        ("Unlocked", object(json!({"unlocked": {"type": "string", "format": "uuid"}}))),
        ("TotpReset", object(json!({"totp_reset": {"type": "string", "format": "uuid"}}))),
        ("EventPage", object(json!({"events": {"type": "array", "items": r("OcsfEvent")}, "next_cursor": {"type": "string", "nullable": true}}))),
        ("EventsAccepted", object(json!({"accepted": int, "ids": {"type": "array", "items": {"type": "string", "format": "uuid"}}}))),
        (
            "AuditVerification",
            object(
                json!({"entries": int, "head": string, "intact": {"type": "boolean"}, "first_bad": {"nullable": true, "type": "object", "required": ["seq", "reason"], "properties": {"seq": int, "reason": string}}}),
            ),
        ),
        (
            "Nodes",
            object(json!({"this_node": string, "nodes": {"type": "array", "items": r("NodeReport")}, "leases": {"type": "array", "items": r("LeaseRecord")}})),
        ),
        ("PolicyComponents", json!({"type": "array", "items": object(json!({"component": string, "default": any}))})),
        (
            "PolicyInForce",
            object(
                json!({"component": string, "tenant": {"type": "string", "format": "uuid", "nullable": true}, "source": {"type": "string", "enum": ["tenant", "platform", "builtin"]}, "version": {"type": "integer", "nullable": true}, "document": any}),
            ),
        ),
        (
            "PolicyDryRun",
            object(
                json!({"component": string, "tenant": {"type": "string", "format": "uuid", "nullable": true}, "version": {"type": "integer", "nullable": true}, "changes": r("PolicyChanges")}),
            ),
        ),
        (
            "PolicySaved",
            json!({"description": "the saved version, or with dry_run=true the changes it would make", "oneOf": [r("PolicyDocument"), r("PolicyDryRun")]}),
        ),
        ("Cancelled", object(json!({"cancelled": int}))),
        ("PolicyWritersAnswer", object(json!({"component": string, "roles": r("Roles")}))),
        ("PolicyApprovalAnswer", object(json!({"component": string, "required": {"type": "boolean"}}))),
        ("PolicyMinimumsAnswer", object(json!({"component": string, "minimums": any}))),
        ("CreatedToken", object(json!({"token": r("ApiToken"), "secret": string}))),
        ("Revoked", object(json!({"revoked": {"type": "string", "format": "uuid"}}))),
    ];
    for (name, schema) in ad_hoc {
        m.insert(name.to_string(), schema);
    }
    m
}

/// Returns the OpenAPI document of `routes`, with the console's schemas and `extra`
/// (the components').
pub fn document(version: &str, routes: &[RouteDoc], extra: Map<String, Value>) -> Value {
    let mut all = match schemas() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    all.extend(responses());
    all.extend(extra);
    let mut paths: Map<String, Value> = Map::new();
    for r in routes {
        let mut op = Map::new();
        op.insert("tags".into(), json!([r.tag]));
        op.insert("summary".into(), json!(r.summary));
        op.insert(
            "operationId".into(),
            json!(format!("{}_{}", r.method.to_lowercase(), r.path.trim_start_matches("/api/v1/").replace(['/', '{', '}', '-'], "_"))),
        );
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(r.query.iter().map(|q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}})));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(b) = r.body {
            let media = if b == "CsvText" { "text/csv" } else { "application/json" };
            op.insert("requestBody".into(), json!({"required": true, "content": {media: {"schema": {"$ref": format!("#/components/schemas/{b}")}}}}));
        }
        if let Some(p) = r.permission {
            op.insert(
                "description".into(),
                json!(format!("Needs permission `{}`.", serde_json::to_value(p).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())),
            );
        }
        let (code, schema) = r.response;
        let success = match schema {
            Some("CsvText") => json!({"description": "Success", "content": {"text/csv": {"schema": {"$ref": "#/components/schemas/CsvText"}}}}),
            Some(name) => json!({"description": "Success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}}),
            None => json!({"description": "Success (no body)"}),
        };
        let error = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        op.insert(
            "responses".into(),
            json!({
                code.to_string(): success,
                "400": {"description": "A parameter or body that cannot be read", "content": error["content"]},
                "401": {"description": "Not authenticated", "content": error["content"]},
                "403": {"description": "Not allowed", "content": error["content"]},
                "404": {"description": "Not found, or outside the caller's tenant", "content": error["content"]},
                "422": {"description": "Invalid input; every problem is listed", "content": error["content"]}
            }),
        );
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(r.method.to_lowercase(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Mamori API", "version": version, "description": "REST API of the Mamori municipal information security cloud. Errors carry Japanese (message_ja) and English messages."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": all,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "API token (mmr_…) created under Settings → API tokens"},
                "session": {"type": "apiKey", "in": "cookie", "name": "mamori_session", "description": "Console session; state-changing requests also need the X-CSRF-Token header"}
            }
        },
        "security": [{"token": []}, {"session": []}]
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_once_with_its_parameters() {
        let doc = super::document("test", super::super::ROUTES, serde_json::Map::new());
        let mut n = 0;
        for r in super::super::ROUTES {
            let op = &doc["paths"][r.path][r.method.to_lowercase()];
            assert!(op.is_object(), "{} {}", r.method, r.path);
            n += 1;
            if r.path.contains("{id}") {
                assert!(op["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "id" && p["in"] == "path"));
            }
            if let Some(b) = r.body {
                assert!(doc["components"]["schemas"][b].is_object() || doc["components"]["schemas"][b]["type"].is_string(), "schema {b}");
            }
        }
        let ops: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(ops, n, "no duplicate method+path in ROUTES");
    }
}
