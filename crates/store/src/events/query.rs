//! Queries: what a search, a histogram or a count asks for, and its validation
//! (execution is in [`super::search`]).

use super::EventStoreError;
use super::day::{DAY_MS, END_TIME_MS, MIN_TIME_MS, day_of};
use mamori_core::{Disposition, Event, EventClass, Problem, Problems, Severity, TenantId};
use serde::Serialize;

/// Largest page.
pub const MAX_LIMIT: usize = 1000;
/// Longest time range of a query, in days.
pub const MAX_RANGE_DAYS: i64 = 400;
/// Longest full-text query, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Most field filters in one query.
pub const MAX_FIELD_FILTERS: usize = 10;
/// Most buckets of a histogram.
pub const MAX_BUCKETS: usize = 200;
const MAX_TENANTS: usize = 1000;
const MAX_CLASSES: usize = 100;
const MAX_PATH_BYTES: usize = 128;
const MAX_VALUE_BYTES: usize = 1024;
/// Full-text terms shorter than this (in characters) have no trigram in the bloom
/// filters, so every document of the range is read for them.
const MIN_FTS_CHARS: usize = 3;
/// Longest range over which words too short for the index are scanned for.
const MAX_SHORT_TERM_RANGE_MS: i64 = 31 * 86_400_000;

/// A search over stored events. `from_ms`..`to_ms` is required (the caller picks the
/// default window); every list left empty means "any".
#[derive(Clone, Debug, PartialEq)]
pub struct EventQuery {
    /// Start of the time range, Unix ms (inclusive).
    pub from_ms: i64,
    /// End of the time range, Unix ms (exclusive).
    pub to_ms: i64,
    /// Only these classes.
    pub classes: Vec<EventClass>,
    /// Only events at least this severe.
    pub min_severity: Option<Severity>,
    /// Only these dispositions.
    pub dispositions: Vec<Disposition>,
    /// Only these tenants (narrows the caller's scope, never widens it).
    pub tenants: Vec<TenantId>,
    /// Words that must all occur in the event's text (message, addresses, user,
    /// attributes, raw data), as substrings, case-insensitively for ASCII.
    pub text: Option<String>,
    /// Equality conditions on OCSF attributes.
    pub fields: Vec<FieldFilter>,
    /// Page size (1..=1000).
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            from_ms: 0,
            to_ms: 0,
            classes: Vec::new(),
            min_severity: None,
            dispositions: Vec::new(),
            tenants: Vec::new(),
            text: None,
            fields: Vec::new(),
            limit: 100,
            cursor: None,
        }
    }
}

impl EventQuery {
    /// Returns a query of every event in `from_ms..to_ms`, 100 a page.
    pub fn between(from_ms: i64, to_ms: i64) -> Self {
        Self { from_ms, to_ms, ..Self::default() }
    }
}

/// An equality condition on an OCSF attribute path, e.g. `src_endpoint.ip=192.0.2.1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldFilter {
    /// Dotted OCSF path: lowercase letters, digits and `_`, at most 8 segments.
    pub path: String,
    /// The value, compared as text (numbers match their decimal form).
    pub value: String,
}

impl FieldFilter {
    /// Returns the filter written as `path=value`, or the problem with it.
    pub fn parse(s: &str) -> Result<FieldFilter, Problem> {
        let Some((path, value)) = s.split_once('=') else {
            return Err(Problem::new(
                "fields",
                "invalid_field_filter",
                "項目の条件は「項目=値」の形で指定してください（例: src_endpoint.ip=192.0.2.1）",
                "a field filter is written path=value (e.g. src_endpoint.ip=192.0.2.1)",
            ));
        };
        let f = FieldFilter { path: path.trim().to_string(), value: value.trim().to_string() };
        match f.problem("fields") {
            Some(p) => Err(p),
            None => Ok(f),
        }
    }

    /// Returns the problem with this filter, if any.
    fn problem(&self, field: &str) -> Option<Problem> {
        if !valid_path(&self.path) {
            let shown: String = self.path.chars().take(40).collect();
            return Some(Problem::new(
                field,
                "invalid_field_path",
                format!("項目名「{shown}」が正しくありません（英小文字・数字・_ を . でつないだ OCSF の項目名。例: src_endpoint.ip）"),
                format!("field path '{shown}' is invalid (lowercase OCSF path such as src_endpoint.ip)"),
            ));
        }
        if self.value.is_empty() || self.value.len() > MAX_VALUE_BYTES {
            return Some(Problem::new(field, "invalid_field_value", "項目の値は1〜1024バイトで指定してください", "a field value must be 1-1024 bytes"));
        }
        None
    }
}

/// Returns true for `^[a-z][a-z0-9_]*(\.[a-z0-9_]+){0,7}$`.
fn valid_path(p: &str) -> bool {
    if p.len() > MAX_PATH_BYTES || !p.as_bytes().first().is_some_and(u8::is_ascii_lowercase) {
        return false;
    }
    let mut segments = 0;
    for seg in p.split('.') {
        segments += 1;
        if seg.is_empty() || !seg.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return false;
        }
    }
    segments <= 8
}

/// One page of events, newest first.
#[derive(Clone, Debug)]
pub struct EventPage {
    /// The events.
    pub events: Vec<StoredEvent>,
    /// Pass as [`EventQuery::cursor`] for the next page; None on the last page.
    pub next_cursor: Option<String>,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// The event, read back from its document with its stored id.
    pub event: Event,
    /// The stored OCSF document.
    pub doc: serde_json::Value,
}

/// Event counts over equal time buckets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Histogram {
    /// Start of the first bucket, Unix ms.
    pub from_ms: i64,
    /// Width of a bucket in ms.
    pub bucket_ms: i64,
    /// Count of each bucket, oldest first.
    pub counts: Vec<u64>,
    /// Sum of the counts.
    pub total: u64,
}

/// Where a page ended: the last row's time, sequence number and day partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub time: i64,
    pub seq: i64,
    pub day: i64,
}

impl Cursor {
    /// Returns the cursor's text form `time.seq.day`.
    pub(crate) fn encode(&self) -> String {
        format!("{}.{}.{}", self.time, self.seq, self.day)
    }

    /// Returns the cursor of a text form, or None when it is malformed.
    fn parse(s: &str) -> Option<Cursor> {
        if s.len() > 64 {
            return None;
        }
        let num = |p: &str| -> Option<i64> { if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) { p.parse().ok() } else { None } };
        let mut parts = s.split('.');
        let c = Cursor { time: num(parts.next()?)?, seq: num(parts.next()?)?, day: num(parts.next()?)? };
        let ok = parts.next().is_none() && c.seq >= 1 && (MIN_TIME_MS..END_TIME_MS).contains(&c.time) && day_of(c.time) == c.day;
        ok.then_some(c)
    }
}

/// Records the problems of a time range.
fn check_range(from_ms: i64, to_ms: i64, p: &mut Problems) {
    if from_ms >= to_ms {
        p.push(Problem::new("from", "invalid_range", "開始日時は終了日時より前にしてください", "from must be before to"));
    } else if to_ms.saturating_sub(from_ms) > MAX_RANGE_DAYS * DAY_MS {
        p.push(Problem::new("from", "range_too_long", "期間は400日以内で指定してください", "the time range must be at most 400 days"));
    }
}

/// Checks a query; returns its cursor. `paging` checks the limit and cursor too
/// (histograms ignore them).
pub(crate) fn validate(q: &EventQuery, paging: bool) -> Result<Option<Cursor>, EventStoreError> {
    let mut p = Problems::default();
    check_range(q.from_ms, q.to_ms, &mut p);
    if paging && !(1..=MAX_LIMIT).contains(&q.limit) {
        p.push(Problem::new("limit", "invalid_limit", "表示件数（limit）は1〜1000で指定してください", "limit must be 1-1000"));
    }
    if q.text.as_ref().is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS) {
        p.push(Problem::new("text", "too_long", "検索語は256文字以内で指定してください", "search text must be at most 256 characters"));
    } else if q.text.as_ref().is_some_and(|t| t.contains('\0')) {
        // SQLite would end the LIKE pattern or the FTS5 phrase at a NUL.
        p.push(Problem::new("text", "invalid_text", "検索語に使えない文字（NUL）が含まれています", "search text must not contain NUL characters"));
    } else if q.text.as_ref().is_some_and(|t| t.split_whitespace().any(|w| w.chars().count() < MIN_FTS_CHARS))
        && q.to_ms.saturating_sub(q.from_ms) > MAX_SHORT_TERM_RANGE_MS
    {
        // Words under three characters cannot use the trigram index and are matched by
        // scanning; keep such scans to a month.
        p.push(Problem::new(
            "text",
            "short_term_range",
            "2文字以下の検索語は期間31日以内で使えます。期間を短くするか、3文字以上の語で検索してください",
            "words shorter than 3 characters work over at most 31 days; shorten the range or use longer words",
        ));
    }
    if q.fields.len() > MAX_FIELD_FILTERS {
        p.push(Problem::new("fields", "too_many", "項目の条件は10個までです", "at most 10 field filters"));
    } else {
        for (i, f) in q.fields.iter().enumerate() {
            if let Some(problem) = f.problem(&format!("fields[{i}]")) {
                p.push(problem);
            }
        }
    }
    if q.tenants.len() > MAX_TENANTS {
        p.push(Problem::new("tenants", "too_many", "団体は1000件まで指定できます", "at most 1000 tenants"));
    }
    if q.classes.len() > MAX_CLASSES || q.dispositions.len() > MAX_CLASSES {
        p.push(Problem::new("classes", "too_many", "種別・処置は100件まで指定できます", "at most 100 classes and 100 dispositions"));
    }
    let mut cursor = None;
    if paging && let Some(c) = &q.cursor {
        cursor = Cursor::parse(c);
        if cursor.is_none() {
            p.push(Problem::new(
                "cursor",
                "invalid_cursor",
                "ページ位置（cursor）が正しくありません。最初のページから検索し直してください",
                "the cursor is malformed; search again from the first page",
            ));
        }
    }
    if p.is_empty() { Ok(cursor) } else { Err(EventStoreError::BadQuery(p)) }
}

/// Checks the range of a count.
pub(crate) fn validate_range(from_ms: i64, to_ms: i64) -> Result<(), EventStoreError> {
    let mut p = Problems::default();
    check_range(from_ms, to_ms, &mut p);
    if p.is_empty() { Ok(()) } else { Err(EventStoreError::BadQuery(p)) }
}

/// Checks the number of histogram buckets.
pub(crate) fn validate_buckets(buckets: usize) -> Result<(), EventStoreError> {
    if (1..=MAX_BUCKETS).contains(&buckets) {
        Ok(())
    } else {
        Err(EventStoreError::BadQuery(
            Problem::new("buckets", "invalid_buckets", "ヒストグラムの区間数は1〜200で指定してください", "buckets must be 1-200").into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_follow_the_grammar() {
        for ok in ["src_endpoint.ip", "a", "http_request.url.hostname", "a.0.b_c", "a.b.c.d.e.f.g.h"] {
            assert!(valid_path(ok), "{ok}");
        }
        for bad in ["", "A", "1a", "_a", "a.", ".a", "a..b", "a;drop", "a.b.c.d.e.f.g.h.i", "a-b", "a.B", "ａ", "a b", "a'b", "a.b[0]", "$.a"] {
            assert!(!valid_path(bad), "{bad}");
        }
        assert_eq!(FieldFilter::parse(" src_endpoint.ip = 192.0.2.1 ").unwrap(), FieldFilter { path: "src_endpoint.ip".into(), value: "192.0.2.1".into() });
        assert_eq!(FieldFilter::parse("a.b=x=y").unwrap().value, "x=y");
        assert_eq!(FieldFilter::parse("novalue").unwrap_err().code, "invalid_field_filter");
        assert_eq!(FieldFilter::parse("a;drop=1").unwrap_err().code, "invalid_field_path");
        assert_eq!(FieldFilter::parse("a=").unwrap_err().code, "invalid_field_value");
    }

    #[test]
    fn cursors_round_trip_and_malformed_ones_are_refused() {
        let c = Cursor { time: 1_763_800_000_123, seq: 42, day: day_of(1_763_800_000_123) };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            "x",
            "1.2",
            "1.2.3.4",
            "1763800000123.42.0",
            "1763800000123.0.20414",
            "-1.1.-1",
            "1763800000123.42.20414 ",
            "99999999999999999999.1.1",
            "1763800000123.+42.20414",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
