//! Errors of handlers, turned into pages (Japanese or English) or JSON.

use crate::Lang;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mamori_core::Problems;
use mamori_store::StoreError;
use mamori_store::events::EventStoreError;
use serde_json::json;

/// A handler error.
#[derive(Debug)]
pub enum AppError {
    /// Not logged in (401).
    Unauthorized,
    /// Logged in but not allowed (403).
    Forbidden,
    /// Not allowed, with the reason and whom to ask (403).
    Denied(mamori_core::Problem),
    /// Missing or outside the caller's scope (404).
    NotFound,
    /// Bad input with every problem (400 / 422).
    Invalid(Problems),
    /// CSRF token missing or wrong (403).
    Csrf,
    /// Something failed inside (500); the detail is logged, never shown.
    Internal(String),
    /// A service this one needs is unreachable for now (503 with `Retry-After`);
    /// the detail is logged, never shown. Nothing was done: the caller may retry.
    Unavailable(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Invalid(p) => AppError::Invalid(p),
            StoreError::Forbidden(_) => AppError::Forbidden,
            StoreError::Denied(p) => AppError::Denied(p),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<mamori_vault::SecretError> for AppError {
    fn from(e: mamori_vault::SecretError) -> Self {
        match e {
            mamori_vault::SecretError::Store(s) => s.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<EventStoreError> for AppError {
    fn from(e: EventStoreError) -> Self {
        match e {
            EventStoreError::BadQuery(p) | EventStoreError::Rejected(p) => AppError::Invalid(p),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<Problems> for AppError {
    fn from(p: Problems) -> Self {
        AppError::Invalid(p)
    }
}

impl From<mamori_core::Problem> for AppError {
    fn from(p: mamori_core::Problem) -> Self {
        AppError::Invalid(p.into())
    }
}

impl AppError {
    /// Returns the status code.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden | AppError::Denied(_) | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Returns the message for people.
    pub fn message(&self, lang: Lang) -> String {
        match self {
            AppError::Unauthorized => lang.t("ログインしてください", "please log in").into(),
            AppError::Forbidden => lang.t("この操作を行う権限がありません", "you are not allowed to do this").into(),
            AppError::NotFound => lang.t("見つかりません", "not found").into(),
            AppError::Denied(p) => p.message(lang.code()).to_string(),
            AppError::Invalid(p) => p.0.iter().map(|p| p.message(lang.code()).to_string()).collect::<Vec<_>>().join(" / "),
            AppError::Csrf => {
                lang.t("フォームの有効期限が切れました。画面を再読み込みしてやり直してください", "the form has expired; reload the page and try again").into()
            }
            AppError::Internal(_) => lang.t("内部エラーが発生しました。運用担当にお問い合わせください", "internal error; please contact the operators").into(),
            AppError::Unavailable(_) => lang
                .t("一時的に受け付けられません。しばらくしてから送り直してください", "temporarily unavailable; nothing was accepted, please retry shortly")
                .into(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden | AppError::Denied(_) => "forbidden",
            AppError::NotFound => "not_found",
            AppError::Invalid(_) => "invalid",
            AppError::Csrf => "csrf",
            AppError::Internal(_) => "internal",
            AppError::Unavailable(_) => "unavailable",
        }
    }

    /// Returns the error as a JSON API response.
    pub fn json(&self) -> Response {
        match self {
            AppError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            AppError::Unavailable(detail) => tracing::warn!(error = %detail, "service unavailable"),
            _ => {}
        }
        let problems = match self {
            AppError::Invalid(p) => json!(p),
            _ => json!([]),
        };
        let retry = matches!(self, AppError::Unavailable(_)).then_some([(axum::http::header::RETRY_AFTER, "5")]);
        (
            self.status(),
            retry,
            axum::Json(json!({"error": self.code(), "message": self.message(Lang::En), "message_ja": self.message(Lang::Ja), "problems": problems})),
        )
            .into_response()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.json()
    }
}
