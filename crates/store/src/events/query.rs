//! Queries: validation, SQL building (every value bound as a parameter), keyset
//! paging across day partitions, histograms and per-tenant counts.

use super::EventStoreError;
use super::day::{DAY_MS, END_TIME_MS, MIN_TIME_MS, day_name, day_of, day_start, list_partitions};
use super::schema::open_reader;
use crate::access::Scope;
use mamori_core::{Disposition, Event, EventClass, EventId, Problem, Problems, Severity, TenantId};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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
const MAX_TERMS: usize = 16;
/// Full-text terms shorter than this (in characters) are matched with `LIKE`, since
/// the trigram index cannot find them.
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

    /// Returns the indexed column this path is kept in, if any.
    fn column(&self) -> Option<&'static str> {
        match self.path.as_str() {
            "src_endpoint.ip" => Some("src_ip"),
            "dst_endpoint.ip" => Some("dst_ip"),
            "actor.user.name" => Some("user"),
            _ => None,
        }
    }

    /// Returns the SQL condition and its parameters.
    fn sql(&self, conds: &mut String, params: &mut Vec<SqlValue>) {
        match self.column() {
            Some(c) => conds.push_str(&format!(" AND {c} = ?")),
            None => {
                conds.push_str(" AND CAST(json_extract(doc, ?) AS TEXT) = ?");
                params.push(SqlValue::Text(format!("$.{}", self.path)));
            }
        }
        params.push(SqlValue::Text(self.value.clone()));
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
    time: i64,
    seq: i64,
    day: i64,
}

impl Cursor {
    /// Returns the cursor's text form `time.seq.day`.
    fn encode(&self) -> String {
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

/// The conditions of a query beyond its time range, as SQL (` AND …` terms) and
/// parameters in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    conds: String,
    params: Vec<SqlValue>,
}

/// Appends `column IN (…)` (or `=` for one value).
fn in_list(conds: &mut String, params: &mut Vec<SqlValue>, column: &str, values: Vec<SqlValue>) {
    match values.len() {
        0 => {}
        1 => conds.push_str(&format!(" AND {column} = ?")),
        n => conds.push_str(&format!(" AND {column} IN ({})", vec!["?"; n].join(","))),
    }
    params.extend(values);
}

/// Returns the tenant condition of a scope narrowed by `tenants`, or None when
/// nothing can match (scope Nothing, or a tenant scope asking for other tenants).
fn tenant_filter(scope: &Scope, tenants: &[TenantId], column: &str) -> Option<Filter> {
    let mut f = Filter::default();
    let mut wanted: Vec<TenantId> = tenants.to_vec();
    wanted.sort();
    wanted.dedup();
    let reach: Vec<TenantId> = match scope.tenants() {
        None => wanted,
        Some([]) => return None,
        // The tenants asked for that the scope reaches; all of the scope's if none.
        Some(own) if wanted.is_empty() => own.to_vec(),
        Some(own) => wanted.into_iter().filter(|t| own.contains(t)).collect(),
    };
    if reach.is_empty() && !scope.is_all() {
        return None;
    }
    in_list(&mut f.conds, &mut f.params, column, reach.iter().map(|t| SqlValue::Text(t.to_string())).collect());
    Some(f)
}

/// Returns a LIKE pattern matching `s` anywhere, with `\`, `%` and `_` escaped.
fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Returns an FTS5 phrase matching `s` literally (FTS syntax in it is quoted away).
fn fts_phrase(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Returns the filter of a query within a scope, or None when nothing can match.
pub(crate) fn filter(scope: &Scope, q: &EventQuery) -> Option<Filter> {
    // A condition on an indexed field (an address, a user) is far more selective than
    // the tenant or class: `+column` keeps SQLite from choosing the tenant and class
    // indexes over the field's index (it has no statistics to tell them apart).
    let by_field = q.fields.iter().any(|f| f.column().is_some());
    let (tenant_col, class_col) = if by_field { ("+tenant", "+class_uid") } else { ("tenant", "class_uid") };
    let mut f = tenant_filter(scope, &q.tenants, tenant_col)?;
    let mut classes: Vec<u32> = q.classes.iter().map(|c| c.0).collect();
    classes.sort_unstable();
    classes.dedup();
    in_list(&mut f.conds, &mut f.params, class_col, classes.into_iter().map(|c| SqlValue::Integer(i64::from(c))).collect());
    if let Some(s) = q.min_severity {
        f.conds.push_str(" AND severity_id >= ?");
        f.params.push(SqlValue::Integer(i64::from(s.0)));
    }
    let mut dispositions: Vec<u8> = q.dispositions.iter().map(|d| d.0).collect();
    dispositions.sort_unstable();
    dispositions.dedup();
    in_list(&mut f.conds, &mut f.params, "disposition_id", dispositions.into_iter().map(|d| SqlValue::Integer(i64::from(d))).collect());
    if let Some(text) = &q.text {
        let mut phrases = Vec::new();
        for term in text.split_whitespace().take(MAX_TERMS) {
            if term.chars().count() >= MIN_FTS_CHARS {
                phrases.push(fts_phrase(term));
            } else {
                // Too short for the trigram index: a substring of the message or of any
                // string in the document (not its keys).
                f.conds.push_str(
                    " AND (message LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM json_tree(events.doc) AS j WHERE j.type = 'text' AND j.value LIKE ? ESCAPE '\\'))",
                );
                let pattern = like_pattern(term);
                f.params.push(SqlValue::Text(pattern.clone()));
                f.params.push(SqlValue::Text(pattern));
            }
        }
        if !phrases.is_empty() {
            f.conds.push_str(" AND seq IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)");
            f.params.push(SqlValue::Text(phrases.join(" AND ")));
        }
    }
    for field in &q.fields {
        field.sql(&mut f.conds, &mut f.params);
    }
    Some(f)
}

/// Returns the partitions overlapping `from..to`, newest first, with the part of the
/// range each covers.
fn partitions_in(dir: &Path, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, PathBuf, i64, i64)>, EventStoreError> {
    let (from, to) = (from_ms.max(MIN_TIME_MS), to_ms.min(END_TIME_MS));
    if from >= to {
        return Ok(Vec::new());
    }
    let all = list_partitions(dir)?;
    Ok(all
        .range(day_of(from)..=day_of(to - 1))
        .rev()
        .map(|(day, path)| {
            let start = day_start(*day);
            (*day, path.clone(), from.max(start), to.min(start + DAY_MS))
        })
        .collect())
}

/// Returns the error for a stored row that cannot be read back.
fn corrupt(day: i64, seq: i64, why: impl std::fmt::Display) -> EventStoreError {
    EventStoreError::Corrupt(format!("partition {} row {seq}: {why}", day_name(day)))
}

/// Returns the event of a stored row.
fn decode(day: i64, seq: i64, id: &str, doc: &str) -> Result<StoredEvent, EventStoreError> {
    let doc: serde_json::Value = serde_json::from_str(doc).map_err(|e| corrupt(day, seq, e))?;
    let mut event = Event::from_ocsf(&doc, None, |_| true).map_err(|e| corrupt(day, seq, e))?;
    event.id = id.parse::<EventId>().map_err(|e| corrupt(day, seq, e))?;
    Ok(StoredEvent { event, doc })
}

/// Runs a page query (blocking).
pub(crate) fn run_query(dir: &Path, f: &Filter, q: &EventQuery, cursor: Option<Cursor>) -> Result<EventPage, EventStoreError> {
    let limit = q.limit;
    let to = match cursor {
        Some(c) => q.to_ms.min(c.time.saturating_add(1)),
        None => q.to_ms,
    };
    // One row more than the page tells whether there is a next page.
    let want = limit + 1;
    let mut rows: Vec<(i64, i64, i64, String, String)> = Vec::with_capacity(want.min(128));
    for (day, path, lo, hi) in partitions_in(dir, q.from_ms, to)? {
        let Some(conn) = open_reader(&path)? else { continue };
        let mut sql = String::from("SELECT seq, time, id, doc FROM events WHERE time >= ? AND time < ?");
        let mut params = vec![SqlValue::Integer(lo), SqlValue::Integer(hi)];
        if let Some(c) = cursor.filter(|c| c.day == day) {
            sql.push_str(" AND (time < ? OR seq < ?)");
            params.extend([SqlValue::Integer(c.time), SqlValue::Integer(c.seq)]);
        }
        sql.push_str(&f.conds);
        params.extend(f.params.iter().cloned());
        sql.push_str(" ORDER BY time DESC, seq DESC LIMIT ?");
        params.push(SqlValue::Integer((want - rows.len()) as i64));
        let mut stmt = conn.prepare(&sql)?;
        let mut rs = stmt.query(params_from_iter(params))?;
        while let Some(r) = rs.next()? {
            rows.push((day, r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
        }
        if rows.len() >= want {
            break;
        }
    }
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(day, seq, time, _, _)| Cursor { time: *time, seq: *seq, day: *day }.encode())
    } else {
        None
    };
    let events = rows.iter().map(|(day, seq, _, id, doc)| decode(*day, *seq, id, doc)).collect::<Result<Vec<_>, _>>()?;
    Ok(EventPage { events, next_cursor })
}

/// Finds one event by id (blocking).
pub(crate) fn run_get(dir: &Path, scope: &Scope, id: EventId) -> Result<Option<StoredEvent>, EventStoreError> {
    let time = id.time_ms();
    if scope.is_nothing() || !(MIN_TIME_MS..END_TIME_MS).contains(&time) {
        return Ok(None);
    }
    let day = day_of(time);
    let path = super::day::partition_path(dir, day);
    if !path.exists() {
        return Ok(None);
    }
    let Some(conn) = open_reader(&path)? else { return Ok(None) };
    let mut sql = String::from("SELECT seq, id, doc FROM events WHERE time = ? AND id = ?");
    let mut params = vec![SqlValue::Integer(time), SqlValue::Text(id.to_string())];
    if let Some(ts) = scope.tenants() {
        sql.push_str(&format!(" AND tenant IN ({})", vec!["?"; ts.len()].join(", ")));
        params.extend(ts.iter().map(|t| SqlValue::Text(t.to_string())));
    }
    sql.push_str(" ORDER BY seq LIMIT 1");
    let mut stmt = conn.prepare(&sql)?;
    let mut rs = stmt.query(params_from_iter(params))?;
    match rs.next()? {
        Some(r) => {
            let (seq, id, doc): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            decode(day, seq, &id, &doc).map(Some)
        }
        None => Ok(None),
    }
}

/// Computes a histogram (blocking).
pub(crate) fn run_histogram(dir: &Path, f: Option<&Filter>, q: &EventQuery, buckets: usize) -> Result<Histogram, EventStoreError> {
    let range = q.to_ms - q.from_ms;
    let buckets = buckets as i64;
    let bucket_ms = ((range + buckets - 1) / buckets).max(1);
    let n = ((range + bucket_ms - 1) / bucket_ms) as usize;
    let mut h = Histogram { from_ms: q.from_ms, bucket_ms, counts: vec![0; n], total: 0 };
    let Some(f) = f else { return Ok(h) };
    for (_, path, lo, hi) in partitions_in(dir, q.from_ms, q.to_ms)? {
        let Some(conn) = open_reader(&path)? else { continue };
        let sql = format!("SELECT (time - ?) / ?, count(*) FROM events WHERE time >= ? AND time < ?{} GROUP BY 1", f.conds);
        let mut params = vec![SqlValue::Integer(q.from_ms), SqlValue::Integer(bucket_ms), SqlValue::Integer(lo), SqlValue::Integer(hi)];
        params.extend(f.params.iter().cloned());
        let mut stmt = conn.prepare(&sql)?;
        let mut rs = stmt.query(params_from_iter(params))?;
        while let Some(r) = rs.next()? {
            let (b, c): (i64, i64) = (r.get(0)?, r.get(1)?);
            if let Some(slot) = usize::try_from(b).ok().and_then(|b| h.counts.get_mut(b)) {
                *slot += c as u64;
                h.total += c as u64;
            }
        }
    }
    Ok(h)
}

/// Counts events by tenant (blocking).
pub(crate) fn run_counts(
    dir: &Path,
    scope: &Scope,
    from_ms: i64,
    to_ms: i64,
    min_severity: Option<Severity>,
) -> Result<HashMap<TenantId, u64>, EventStoreError> {
    let mut out = HashMap::new();
    let Some(mut f) = tenant_filter(scope, &[], "tenant") else { return Ok(out) };
    if let Some(s) = min_severity {
        f.conds.push_str(" AND severity_id >= ?");
        f.params.push(SqlValue::Integer(i64::from(s.0)));
    }
    for (day, path, lo, hi) in partitions_in(dir, from_ms, to_ms)? {
        let Some(conn) = open_reader(&path)? else { continue };
        count_partition(&conn, &f, lo, hi, day, &mut out)?;
    }
    Ok(out)
}

fn count_partition(conn: &Connection, f: &Filter, lo: i64, hi: i64, day: i64, out: &mut HashMap<TenantId, u64>) -> Result<(), EventStoreError> {
    let sql = format!("SELECT tenant, count(*) FROM events WHERE time >= ? AND time < ?{} GROUP BY tenant", f.conds);
    let mut params = vec![SqlValue::Integer(lo), SqlValue::Integer(hi)];
    params.extend(f.params.iter().cloned());
    let mut stmt = conn.prepare(&sql)?;
    let mut rs = stmt.query(params_from_iter(params))?;
    while let Some(r) = rs.next()? {
        let (t, c): (String, i64) = (r.get(0)?, r.get(1)?);
        let t: TenantId = t.parse().map_err(|e| corrupt(day, 0, format!("tenant {t}: {e}")))?;
        *out.entry(t).or_insert(0) += c as u64;
    }
    Ok(())
}

/// Sizes of the partitions, by day.
pub(crate) fn partition_sizes(dir: &Path) -> Result<BTreeMap<i64, u64>, EventStoreError> {
    let mut out = BTreeMap::new();
    for (day, path) in list_partitions(dir)? {
        let mut bytes = 0;
        for suffix in ["", "-wal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            bytes += std::fs::metadata(PathBuf::from(p)).map(|m| m.len()).unwrap_or(0);
        }
        out.insert(day, bytes);
    }
    Ok(out)
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

    #[test]
    fn like_and_fts_text_is_escaped() {
        assert_eq!(like_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
        assert_eq!(fts_phrase("x\" OR NEAR(y"), "\"x\"\" OR NEAR(y\"");
    }
}
