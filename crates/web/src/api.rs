//! What every component's REST endpoints share: the route documentation the OpenAPI
//! document is generated from, and the JSON answers.
//!
//! Errors are `{"error", "message", "message_ja", "problems": [{field, code, ja, en}]}`
//! ([`crate::AppError::json`]).

use crate::AppError;
use axum::Json;
use mamori_core::Permission;
use serde_json::Value;

/// One documented endpoint.
#[derive(Clone, Copy, Debug)]
pub struct RouteDoc {
    /// HTTP method.
    pub method: &'static str,
    /// Path with `{param}`s.
    pub path: &'static str,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// Summary (English).
    pub summary: &'static str,
    /// Permission needed, if any beyond being logged in.
    pub permission: Option<Permission>,
    /// Query parameters.
    pub query: &'static [&'static str],
    /// Request body schema name (in `components.schemas`), if any.
    pub body: Option<&'static str>,
    /// Whether the endpoint changes something.
    pub writes: bool,
    /// The success status and the schema of its body (`components.schemas`; `CsvText`
    /// is served as `text/csv`), none for an empty body ([`RouteDoc::returns`]).
    pub response: (u16, Option<&'static str>),
}

impl RouteDoc {
    /// Documents the success answer: `status` with a body of schema `schema`.
    pub const fn returns(self, status: u16, schema: &'static str) -> RouteDoc {
        RouteDoc { response: (status, Some(schema)), ..self }
    }

    /// Documents a success answer without a body (204).
    pub const fn no_content(self) -> RouteDoc {
        RouteDoc { response: (204, None), ..self }
    }
}

/// Documents an endpoint (a `const` so route tables are static).
pub const fn route(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    permission: Option<Permission>,
    query: &'static [&'static str],
    body: Option<&'static str>,
) -> RouteDoc {
    let writes = !matches!(method.as_bytes(), b"GET");
    RouteDoc { method, path, tag, summary, permission, query, body, writes, response: (200, None) }
}

/// The OpenAPI 3.0 schemas of a part's answers, derived from the Rust types they are
/// serialized from (`schemars`, serialize contract), so the document cannot drift from
/// the code.
pub struct Schemas {
    generator: schemars::SchemaGenerator,
    named: serde_json::Map<String, Value>,
}

impl Default for Schemas {
    fn default() -> Self {
        Schemas { generator: schemars::generate::SchemaSettings::openapi3().for_serialize().into_generator(), named: serde_json::Map::new() }
    }
}

impl Schemas {
    /// Adds the schema of `T` as `name` (the types it contains are added under their
    /// own names).
    pub fn with<T: schemars::JsonSchema>(mut self, name: &str) -> Self {
        let schema = self.generator.subschema_for::<T>().to_value();
        // `T` itself named `name`: its definition is already there under that name.
        if schema.get("$ref").and_then(Value::as_str) != Some(&format!("#/components/schemas/{name}")) {
            self.named.insert(name.to_string(), schema);
        }
        self
    }

    /// Returns every schema by name.
    pub fn into_map(mut self) -> serde_json::Map<String, Value> {
        let mut out: serde_json::Map<String, Value> = self.generator.take_definitions(true).into_iter().collect();
        out.extend(self.named);
        out
    }
}

/// The JSON result of an API handler.
pub type ApiResult = Result<axum::response::Response, AppError>;

/// Returns 200 with `v`.
pub fn ok(v: Value) -> ApiResult {
    Ok(axum::response::IntoResponse::into_response(Json(v)))
}

/// Returns 201 with `v`.
pub fn created(v: Value) -> ApiResult {
    Ok(axum::response::IntoResponse::into_response((axum::http::StatusCode::CREATED, Json(v))))
}

/// Returns 202 with `v`: taken, to be done by another part (e.g. the node running
/// the component).
pub fn accepted(v: Value) -> ApiResult {
    Ok(axum::response::IntoResponse::into_response((axum::http::StatusCode::ACCEPTED, Json(v))))
}

/// Reads a JSON body, turning syntax and type errors into clear problems.
pub fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes)
        .map_err(|e| mamori_core::Problem::new("body", "invalid_json", format!("JSON を読めません: {e}"), format!("cannot read the JSON body: {e}")).into())
}

/// Reads an optional tenant id from a query parameter: empty or absent is none; a value
/// that is not a tenant id is a problem, never silently "every tenant".
pub fn tenant_param(key: &'static str, value: Option<&str>) -> Result<Option<mamori_core::TenantId>, AppError> {
    match value.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            mamori_core::Problem::new(key, "invalid_tenant", format!("{key} は団体の ID ではありません: {s}"), format!("{key} is not a tenant id: {s}")).into()
        }),
    }
}

/// Reads an integer query parameter within `range`; absent or empty gives `default`, and
/// anything else (not a number, out of range) is a problem naming the parameter.
pub fn int_param(value: Option<&str>, key: &'static str, default: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64, AppError> {
    let Some(s) = value.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(default) };
    match s.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(mamori_core::Problem::new(
            key,
            "invalid_integer",
            format!("{key} は {}〜{} の整数で指定してください", range.start(), range.end()),
            format!("{key} must be an integer from {} to {}", range.start(), range.end()),
        )
        .into()),
    }
}

/// Reads the body of a PUT that replaces `current`: a JSON object that names every
/// field `current` has (besides `ignore`), so an omitted field is an error listing what
/// is missing, never silently reset to a default. `null` clears an optional field.
/// Keys the body has beyond `current`'s are left for the type to accept or refuse.
pub fn replace_doc(current: &Value, bytes: &[u8], ignore: &[&str]) -> Result<Value, AppError> {
    let given: Value = body(bytes)?;
    let (Some(cur), Some(obj)) = (current.as_object(), given.as_object()) else { return Err(not_an_object()) };
    let missing: Vec<&str> = cur.keys().map(String::as_str).filter(|k| !obj.contains_key(*k) && !ignore.contains(k)).collect();
    if missing.is_empty() {
        return Ok(given);
    }
    let list = missing.join(", ");
    Err(mamori_core::Problem::new(
        "body",
        "missing_fields",
        format!(
            "PUT は全項目の置き換えです。省略された項目があります: {list}（一部だけ変えるときは PATCH を使ってください。項目を空にするときは null を送ります）"
        ),
        format!("PUT replaces every field; missing: {list} (use PATCH to change some fields; send null to clear one)"),
    )
    .into())
}

/// Applies a JSON merge patch (RFC 7396) to `current`: the patch's keys replace the
/// document's, `null` removes one, nested objects merge; everything else stays.
pub fn merge_patch(current: &mut Value, patch: Value) {
    match (current, patch) {
        (Value::Object(cur), Value::Object(patch)) => {
            for (k, v) in patch {
                if v.is_null() {
                    cur.remove(&k);
                } else {
                    merge_patch(cur.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (cur, patch) => *cur = patch,
    }
}

/// Reads the body of a PATCH of `current` (a JSON merge patch, RFC 7396).
pub fn patch_doc(current: Value, bytes: &[u8]) -> Result<Value, AppError> {
    let patch: Value = body(bytes)?;
    if !patch.is_object() {
        return Err(not_an_object());
    }
    let mut doc = current;
    merge_patch(&mut doc, patch);
    Ok(doc)
}

fn not_an_object() -> AppError {
    mamori_core::Problem::new("body", "not_an_object", "JSON のオブジェクトを送ってください", "send a JSON object").into()
}

/// Reads a document into `T`, every type error a problem of the body.
pub fn from_doc<T: serde::de::DeserializeOwned>(doc: Value) -> Result<T, AppError> {
    serde_json::from_value(doc)
        .map_err(|e| mamori_core::Problem::new("body", "invalid_document", format!("内容を読めません: {e}"), format!("cannot read the document: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn put_names_every_field_and_patch_keeps_the_rest() {
        let current = json!({"a": 1, "b": {"x": 1, "y": 2}, "c": "keep"});
        let e = replace_doc(&current, br#"{"a": 2}"#, &[]).unwrap_err();
        assert!(matches!(&e, AppError::Invalid(p) if p.0[0].code == "missing_fields" && p.0[0].en.contains("b, c")), "{e:?}");
        assert!(replace_doc(&current, br#"{"a": 2, "b": null}"#, &["c"]).is_ok());
        let doc = patch_doc(current, br#"{"a": 2, "b": {"y": null, "z": 3}}"#).unwrap();
        assert_eq!(doc, json!({"a": 2, "b": {"x": 1, "z": 3}, "c": "keep"}));
        assert!(patch_doc(json!({}), b"[1]").is_err());
    }

    #[test]
    fn integer_parameters_are_checked_not_guessed() {
        assert_eq!(int_param(None, "limit", 10, 1..=100).unwrap(), 10);
        assert_eq!(int_param(Some(" "), "limit", 10, 1..=100).unwrap(), 10);
        assert_eq!(int_param(Some("42"), "limit", 10, 1..=100).unwrap(), 42);
        for bad in ["abc", "0", "101", "1e3", "-5"] {
            let e = int_param(Some(bad), "limit", 10, 1..=100).unwrap_err();
            assert!(matches!(&e, AppError::Invalid(p) if p.0[0].field == "limit"), "{bad}: {e:?}");
        }
        assert!(tenant_param("tenant", Some("not-a-uuid")).is_err());
        assert_eq!(tenant_param("tenant", Some("")).unwrap(), None);
    }
}
