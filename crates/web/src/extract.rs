//! Extractors for query strings, path parameters and forms whose failures answer like
//! every other error: JSON (`{"error": "invalid", …, "problems": […]}`) under
//! `/api/`, a page in the person's language elsewhere; never axum's plain-text 400.

use crate::{AppError, Lang};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mamori_core::Problem;
use serde::de::DeserializeOwned;

/// Why a query string, path or form could not be read, answered as JSON or a page.
#[derive(Debug)]
pub struct BadInput {
    api: bool,
    lang: Lang,
    problem: Problem,
}

impl BadInput {
    /// `field` is where the input was: `query`, `path` or `form`.
    fn new(parts: &Parts, field: &'static str, detail: &str) -> Self {
        let (code, ja, en) = match field {
            "query" => ("invalid_query", format!("URL のパラメータが正しくありません: {detail}"), format!("invalid query parameter: {detail}")),
            "path" => ("invalid_path", format!("URL が正しくありません: {detail}"), format!("invalid path parameter: {detail}")),
            _ => ("invalid_form", format!("フォームの入力を読めません: {detail}"), format!("cannot read the form: {detail}")),
        };
        BadInput { api: parts.uri.path().starts_with("/api/"), lang: Lang::from_headers(&parts.headers), problem: Problem::new(field, code, ja, en) }
    }
}

impl IntoResponse for BadInput {
    fn into_response(self) -> Response {
        let e = AppError::Invalid(self.problem.into());
        let mut r = if self.api { e.json() } else { crate::layout::error_page(self.lang, &e) };
        *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
        r
    }
}

/// A query string read into `T` (serde); a bad one is a 400 with the reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = BadInput;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, BadInput> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(q).map(Query).map_err(|e| BadInput::new(parts, "query", &e.to_string()))
    }
}

/// Path parameters read into `T`; a bad one (a version that is not a number) is a
/// 400 with the reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = BadInput;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BadInput> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => Err(BadInput::new(parts, "path", &e.body_text())),
        }
    }
}

/// A form body (`application/x-www-form-urlencoded`) read into `T`; a bad one is a
/// 400 page with the reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let probe = Parts::clone(&parts);
        match axum::Form::<T>::from_request(Request::from_parts(parts, body), state).await {
            Ok(axum::Form(v)) => Ok(Form(v)),
            // Too large stays 413 (the console's guard words it).
            Err(axum::extract::rejection::FormRejection::BytesRejection(e)) => Err(e.into_response()),
            Err(e) => Err(BadInput::new(&probe, "form", &e.body_text()).into_response()),
        }
    }
}
