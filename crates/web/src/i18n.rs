//! The language of pages and messages. Japanese is the default; English is chosen with
//! `/lang/en` (kept in a cookie) or the account's preference. Texts are written at their use as
//! `lang.t("日本語", "English")`, so both stay side by side and none can be missing.

use axum::http::HeaderMap;

/// A language of the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    /// 日本語
    #[default]
    Ja,
    /// English
    En,
}

impl Lang {
    /// Returns the text in this language.
    pub fn t<'a>(&self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }

    /// Returns the language code.
    pub fn code(&self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    /// Parses a language code.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Returns the language of a request: the `mamori_lang` cookie, else Japanese.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        crate::auth::cookie(headers, "mamori_lang").and_then(|v| Lang::parse(&v)).unwrap_or_default()
    }
}
