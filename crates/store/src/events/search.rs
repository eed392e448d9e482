//! Query execution over the day partitions: which blocks a query reads, which rows
//! of them match, newest first with keyset paging, histograms and counts.
//!
//! A block is skipped on what its directory entry says (tenant, class, time range,
//! highest severity), then on its bloom filter (every trigram of every search word
//! and every `path=value` filter must be in it). The rows left are filtered on the
//! columns; the documents of the frames that still hold candidates are decompressed
//! only when a search word or an attribute filter needs them: a word must occur in the
//! document's raw text (ASCII case folded) and then in the event's search text, an
//! attribute filter must hold on the parsed document.

use super::EventStoreError;
use super::block::{self, Cols, Head, NO_DISPOSITION};
use super::day::{DAY_MS, END_TIME_MS, MIN_TIME_MS, day_name, day_of, day_start};
use super::part::{BlockMeta, Catalog, Partition};
use super::query::{Cursor, EventPage, EventQuery, FieldFilter, Histogram, StoredEvent};
use crate::access::Scope;
use mamori_core::{Event, EventId, Severity, TenantId};
use std::collections::HashMap;
use std::sync::Arc;

/// At most this many words of a search text are used.
const MAX_TERMS: usize = 16;

/// A column kept for an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Src,
    Dst,
    User,
}

/// A search word.
#[derive(Clone, Debug)]
struct Term {
    /// Folded (ASCII lower case).
    folded: String,
    /// Whether the word appears as is in a document's JSON when it occurs in one of
    /// its strings (false for words with characters JSON escapes).
    raw_findable: bool,
}

/// A query reduced to what blocks and rows are checked against.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plan {
    /// None: every tenant.
    tenants: Option<Vec<TenantId>>,
    classes: Option<Vec<u32>>,
    min_severity: Option<u8>,
    dispositions: Option<Vec<u8>>,
    terms: Vec<Term>,
    cols: Vec<(Col, String)>,
    /// Attribute filters checked on the document.
    fields: Vec<FieldFilter>,
    /// Hashes every matching block's bloom holds.
    hashes: Vec<u64>,
}

impl Plan {
    fn needs_docs(&self) -> bool {
        !self.terms.is_empty() || !self.fields.is_empty()
    }
}

/// Returns the tenants a scope narrowed by `tenants` reaches (None: all), or None
/// inside when nothing can match.
fn reach(scope: &Scope, tenants: &[TenantId]) -> Option<Option<Vec<TenantId>>> {
    let mut wanted: Vec<TenantId> = tenants.to_vec();
    wanted.sort();
    wanted.dedup();
    match scope.tenants() {
        None if wanted.is_empty() => {
            if scope.is_all() {
                Some(None)
            } else {
                None
            }
        }
        None => Some(Some(wanted)),
        Some([]) => None,
        Some(own) if wanted.is_empty() => Some(Some(own.to_vec())),
        Some(own) => {
            let r: Vec<TenantId> = wanted.into_iter().filter(|t| own.contains(t)).collect();
            if r.is_empty() { None } else { Some(Some(r)) }
        }
    }
}

/// Returns the plan of a query within a scope, or None when nothing can match.
pub(crate) fn plan(scope: &Scope, q: &EventQuery) -> Option<Plan> {
    let tenants = reach(scope, &q.tenants)?;
    let mut p = Plan { tenants, ..Plan::default() };
    if !q.classes.is_empty() {
        p.classes = Some(q.classes.iter().map(|c| c.0).collect());
    }
    p.min_severity = q.min_severity.map(|s| s.0);
    if !q.dispositions.is_empty() {
        p.dispositions = Some(q.dispositions.iter().map(|d| d.0).collect());
    }
    if let Some(text) = &q.text {
        for w in text.split_whitespace().take(MAX_TERMS) {
            let folded: String = w.chars().map(block::fold).collect();
            if folded.chars().count() >= 3 {
                block::text_hashes(&folded, &mut p.hashes);
            }
            let raw_findable = !folded.chars().any(|c| c == '"' || c == '\\' || c.is_control());
            p.terms.push(Term { folded, raw_findable });
        }
    }
    for f in &q.fields {
        p.hashes.push(block::leaf_hash(&f.path, &f.value));
        match f.path.as_str() {
            "src_endpoint.ip" => p.cols.push((Col::Src, f.value.clone())),
            "dst_endpoint.ip" => p.cols.push((Col::Dst, f.value.clone())),
            "actor.user.name" => p.cols.push((Col::User, f.value.clone())),
            _ => p.fields.push(f.clone()),
        }
    }
    Some(p)
}

/// The rows of a query's time window: `lo..hi`, before the cursor when there is one.
#[derive(Clone, Copy, Debug)]
struct Window {
    lo: i64,
    hi: i64,
    before: Option<(i64, i64)>,
}

impl Window {
    fn holds(&self, time: i64, seq: i64) -> bool {
        time >= self.lo && time < self.hi && self.before.is_none_or(|b| (time, seq) < b)
    }
}

/// A matching row.
struct Hit {
    time: i64,
    seq: i64,
    part: Arc<Partition>,
    meta: BlockMeta,
    row: usize,
    doc: Option<String>,
}

/// A block read for a query.
struct Loaded {
    head: Head,
    bytes: Vec<u8>,
    cols: Cols,
}

impl Loaded {
    fn body(&self, meta: &BlockMeta) -> &[u8] {
        self.bytes.get(meta.head_len as usize..).unwrap_or(&[])
    }
}

fn corrupt(part: &Partition, m: &BlockMeta, why: impl std::fmt::Display) -> EventStoreError {
    EventStoreError::Corrupt(format!("partition {} block at {}: {why}", day_name(part.day), m.pos))
}

/// Reads a block (its documents too with `docs`), or None when its bloom filter rules
/// out `hashes`.
fn load(part: &Partition, m: &BlockMeta, hashes: &[u64], docs: bool) -> Result<Option<Loaded>, EventStoreError> {
    if !hashes.is_empty() {
        let head = part.read(m, 0, m.head_len as usize)?;
        let head = block::decode_head(&head, m.rows as usize).map_err(|e| corrupt(part, m, e))?;
        if !head.may_contain(hashes) {
            return Ok(None);
        }
    }
    let bytes = part.read_block(m, docs)?;
    let head = block::decode_head(bytes.get(..m.head_len as usize).unwrap_or(&[]), m.rows as usize).map_err(|e| corrupt(part, m, e))?;
    let cols = block::decode_cols(&head, bytes.get(m.head_len as usize..).unwrap_or(&[]), m.rows as usize).map_err(|e| corrupt(part, m, e))?;
    Ok(Some(Loaded { head, bytes, cols }))
}

/// Returns true when a document satisfies the words and attribute filters.
fn doc_matches(plan: &Plan, doc: &str) -> bool {
    if plan.terms.iter().any(|t| t.raw_findable) {
        let folded = doc.to_ascii_lowercase();
        if plan.terms.iter().any(|t| t.raw_findable && memchr::memmem::find(folded.as_bytes(), t.folded.as_bytes()).is_none()) {
            return false;
        }
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(doc) else { return false };
    if !plan.terms.is_empty() {
        let Ok(e) = Event::from_ocsf(&v, None, |_| true) else { return false };
        let text = e.search_text().to_ascii_lowercase();
        if !plan.terms.iter().all(|t| text.contains(&t.folded)) {
            return false;
        }
    }
    plan.fields.iter().all(|f| {
        let segs: Vec<&str> = f.path.split('.').collect();
        path_matches(&v, &segs, &f.value)
    })
}

/// Returns true when some value at `segs` below `v` is the scalar `want` (arrays on
/// the way are looked into).
fn path_matches(v: &serde_json::Value, segs: &[&str], want: &str) -> bool {
    match v {
        serde_json::Value::Array(a) => a.iter().any(|x| path_matches(x, segs, want)),
        _ => match segs.split_first() {
            None => block::leaf_text(v).is_some_and(|s| s == want),
            Some((k, rest)) => v.get(k).is_some_and(|x| path_matches(x, rest, want)),
        },
    }
}

/// Calls `f` with every row of a block that matches; `with_docs` also hands over
/// the document when it was decompressed.
fn scan(
    part: &Arc<Partition>,
    m: &BlockMeta,
    hidden_before: i64,
    plan: &Plan,
    w: &Window,
    f: &mut dyn FnMut(usize, &block::ColRow, Option<String>),
) -> Result<(), EventStoreError> {
    if plan.classes.as_ref().is_some_and(|c| !c.contains(&m.class))
        || m.max_time < w.lo.max(hidden_before)
        || m.min_time >= w.hi
        || w.before.is_some_and(|(t, _)| m.min_time > t)
        || plan.min_severity.is_some_and(|s| m.max_severity < s)
    {
        return Ok(());
    }
    let b = match load(part, m, &plan.hashes, plan.needs_docs()) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(()),
        // A damaged block loses its rows, not the query: skipped, counted and said.
        Err(EventStoreError::Corrupt(why)) => {
            damaged(part, &why);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let mut want_cols = Vec::with_capacity(plan.cols.len());
    for (c, v) in &plan.cols {
        match b.cols.find(v) {
            Some(i) => want_cols.push((*c, i)),
            // No row of the block has the value.
            None => return Ok(()),
        }
    }
    let mut candidates = Vec::new();
    for (i, r) in b.cols.rows.iter().enumerate() {
        if !w.holds(r.time, r.seq) || r.time < hidden_before || plan.min_severity.is_some_and(|s| r.severity < s) {
            continue;
        }
        if let Some(ds) = &plan.dispositions
            && (r.disposition == NO_DISPOSITION || !ds.contains(&r.disposition))
        {
            continue;
        }
        if want_cols.iter().any(|(c, idx)| {
            *idx != match c {
                Col::Src => r.src,
                Col::Dst => r.dst,
                Col::User => r.user,
            }
        }) {
            continue;
        }
        candidates.push(i);
    }
    if !plan.needs_docs() {
        for i in candidates {
            f(i, &b.cols.rows[i], None);
        }
        return Ok(());
    }
    let mut frame: Option<(usize, Vec<String>)> = None;
    for i in candidates {
        let fi = i / block::FRAME_ROWS;
        if frame.as_ref().is_none_or(|(n, _)| *n != fi) {
            match block::decode_frame(&b.head, b.body(m), &b.cols, fi) {
                Ok(docs) => frame = Some((fi, docs)),
                Err(why) => {
                    damaged(part, &why);
                    return Ok(());
                }
            }
        }
        let Some(doc) = frame.as_ref().and_then(|(_, d)| d.get(i % block::FRAME_ROWS)) else { continue };
        if doc_matches(plan, doc) {
            f(i, &b.cols.rows[i], Some(doc.clone()));
        }
    }
    Ok(())
}

/// The blocks of a partition a plan may read, with the retention mark of their
/// tenant.
fn blocks_of(part: &Partition, plan: &Plan) -> Result<Vec<(TenantId, i64, BlockMeta)>, EventStoreError> {
    let st = part.read_state()?;
    let mut out = Vec::new();
    let mut add = |t: &TenantId| {
        if let Some(tp) = st.tenants.get(t) {
            out.extend(tp.blocks.iter().map(|b| (*t, tp.hidden_for(b.class), *b)));
        }
    };
    match &plan.tenants {
        Some(ts) => ts.iter().for_each(&mut add),
        None => st.tenants.keys().for_each(add),
    }
    Ok(out)
}

/// Returns the days with a partition that overlap `from..to`, newest first, with
/// the part of the range each covers.
fn days_in(catalog: &Catalog, from_ms: i64, to_ms: i64) -> Result<Vec<(Arc<Partition>, i64, i64)>, EventStoreError> {
    let (from, to) = (from_ms.max(MIN_TIME_MS), to_ms.min(END_TIME_MS));
    if from >= to {
        return Ok(Vec::new());
    }
    let (first, last) = (day_of(from), day_of(to - 1));
    let mut out = Vec::new();
    for day in catalog.days()?.into_iter().rev().filter(|d| (first..=last).contains(d)) {
        if let Some(p) = catalog.get(day)? {
            let start = day_start(day);
            out.push((p, from.max(start), to.min(start + DAY_MS)));
        }
    }
    Ok(out)
}

/// Returns the stored event of a document.
fn stored(part: &Partition, m: &BlockMeta, doc: &str) -> Result<StoredEvent, EventStoreError> {
    let doc: serde_json::Value = serde_json::from_str(doc).map_err(|e| corrupt(part, m, e))?;
    let mut event = Event::from_ocsf(&doc, None, |_| true).map_err(|e| corrupt(part, m, e))?;
    let id = doc.get("metadata").and_then(|m| m.get("uid")).and_then(|u| u.as_str()).ok_or_else(|| corrupt(part, m, "document without metadata.uid"))?;
    event.id = id.parse::<EventId>().map_err(|e| corrupt(part, m, e))?;
    Ok(StoredEvent { event, doc })
}

/// Runs a page query (blocking).
pub(crate) fn run_query(catalog: &Catalog, plan: &Plan, q: &EventQuery, cursor: Option<Cursor>) -> Result<EventPage, EventStoreError> {
    let limit = q.limit;
    let want = limit + 1;
    let to = match cursor {
        Some(c) => q.to_ms.min(c.time.saturating_add(1)),
        None => q.to_ms,
    };
    let before = cursor.map(|c| (c.time, c.seq));
    let mut hits: Vec<Hit> = Vec::new();
    for (part, lo, hi) in days_in(catalog, q.from_ms, to)? {
        let w = Window { lo, hi, before };
        let mut blocks = blocks_of(&part, plan)?;
        blocks.sort_by_key(|(_, _, m)| std::cmp::Reverse(m.max_time));
        let mut day_hits: Vec<Hit> = Vec::new();
        let need = want - hits.len();
        let mut threshold: Option<i64> = None;
        for (_, hidden, m) in blocks {
            if threshold.is_some_and(|t| m.max_time < t) {
                break;
            }
            scan(&part, &m, hidden, plan, &w, &mut |row, r, doc| {
                day_hits.push(Hit { time: r.time, seq: r.seq, part: part.clone(), meta: m, row, doc });
            })?;
            if day_hits.len() >= need {
                day_hits.sort_by_key(|h| std::cmp::Reverse((h.time, h.seq)));
                day_hits.truncate(need);
                threshold = day_hits.last().map(|h| h.time);
            }
        }
        day_hits.sort_by_key(|h| std::cmp::Reverse((h.time, h.seq)));
        day_hits.truncate(need);
        hits.extend(day_hits);
        if hits.len() >= want {
            break;
        }
    }
    let next_cursor = if hits.len() > limit {
        hits.truncate(limit);
        hits.last().map(|h| Cursor { time: h.time, seq: h.seq, day: day_of(h.time) }.encode())
    } else {
        None
    };
    fill_docs(&mut hits)?;
    let events = hits.iter().filter_map(|h| Some(stored(&h.part, &h.meta, h.doc.as_deref()?))).collect::<Result<Vec<_>, _>>()?;
    Ok(EventPage { events, next_cursor })
}

/// Reads the documents of hits that do not have theirs yet, one frame at a time. A
/// hit whose block turns out damaged keeps no document (skipped by the caller,
/// counted and said like any damaged block).
fn fill_docs(hits: &mut [Hit]) -> Result<(), EventStoreError> {
    let mut cache: HashMap<(i64, u64, usize), Vec<String>> = HashMap::new();
    let mut loaded: HashMap<(i64, u64), Option<Loaded>> = HashMap::new();
    for h in hits.iter_mut().filter(|h| h.doc.is_none()) {
        let key = (h.part.day, h.meta.pos);
        let b = match loaded.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(match load(&h.part, &h.meta, &[], true) {
                Ok(b) => b,
                Err(EventStoreError::Corrupt(why)) => {
                    damaged(&h.part, &why);
                    None
                }
                Err(e) => return Err(e),
            }),
        };
        let Some(b) = b.as_ref() else { continue };
        let fi = h.row / block::FRAME_ROWS;
        let docs = match cache.entry((key.0, key.1, fi)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match block::decode_frame(&b.head, b.body(&h.meta), &b.cols, fi) {
                Ok(d) => v.insert(d),
                Err(why) => {
                    damaged(&h.part, &why);
                    continue;
                }
            },
        };
        h.doc = docs.get(h.row % block::FRAME_ROWS).cloned();
    }
    Ok(())
}

/// Counts and says a damaged block.
fn damaged(part: &Partition, why: &str) {
    part.damaged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::error!(partition = %day_name(part.day), %why, "event store: damaged block skipped");
}

/// Finds one event by id (blocking).
pub(crate) fn run_get(catalog: &Catalog, scope: &Scope, id: EventId) -> Result<Option<StoredEvent>, EventStoreError> {
    let time = id.time_ms();
    if scope.is_nothing() || !(MIN_TIME_MS..END_TIME_MS).contains(&time) {
        return Ok(None);
    }
    let Some(plan) = reach(scope, &[]).map(|tenants| Plan { tenants, ..Plan::default() }) else { return Ok(None) };
    let Some(part) = catalog.get(day_of(time))? else { return Ok(None) };
    let w = Window { lo: time, hi: time + 1, before: None };
    let wanted = id.to_string();
    let mut found = None;
    for (_, hidden, m) in blocks_of(&part, &plan)? {
        if m.min_time > time || m.max_time < time {
            continue;
        }
        let mut rows = Vec::new();
        scan(&part, &m, hidden, &plan, &w, &mut |row, _, _| rows.push(row))?;
        if rows.is_empty() {
            continue;
        }
        let mut hits: Vec<Hit> = rows.into_iter().map(|row| Hit { time, seq: 0, part: part.clone(), meta: m, row, doc: None }).collect();
        fill_docs(&mut hits)?;
        for h in hits {
            let Some(doc) = h.doc else { continue };
            if doc.contains(&wanted) {
                let s = stored(&part, &m, &doc)?;
                if s.event.id == id {
                    found = Some(s);
                    break;
                }
            }
        }
        if found.is_some() {
            break;
        }
    }
    Ok(found)
}

/// Computes a histogram (blocking).
pub(crate) fn run_histogram(catalog: &Catalog, plan: Option<&Plan>, q: &EventQuery, buckets: usize) -> Result<Histogram, EventStoreError> {
    let range = q.to_ms - q.from_ms;
    let buckets = buckets as i64;
    let bucket_ms = ((range + buckets - 1) / buckets).max(1);
    let n = ((range + bucket_ms - 1) / bucket_ms) as usize;
    let mut h = Histogram { from_ms: q.from_ms, bucket_ms, counts: vec![0; n], total: 0 };
    let Some(plan) = plan else { return Ok(h) };
    for (part, lo, hi) in days_in(catalog, q.from_ms, q.to_ms)? {
        let w = Window { lo, hi, before: None };
        for (_, hidden, m) in blocks_of(&part, plan)? {
            scan(&part, &m, hidden, plan, &w, &mut |_, r, _| {
                if let Some(slot) = usize::try_from((r.time - q.from_ms) / bucket_ms).ok().and_then(|b| h.counts.get_mut(b)) {
                    *slot += 1;
                    h.total += 1;
                }
            })?;
        }
    }
    Ok(h)
}

/// Counts events by tenant (blocking).
pub(crate) fn run_counts(
    catalog: &Catalog,
    scope: &Scope,
    from_ms: i64,
    to_ms: i64,
    min_severity: Option<Severity>,
) -> Result<HashMap<TenantId, u64>, EventStoreError> {
    let mut out = HashMap::new();
    let Some(tenants) = reach(scope, &[]) else { return Ok(out) };
    let plan = Plan { tenants, min_severity: min_severity.map(|s| s.0), ..Plan::default() };
    for (part, lo, hi) in days_in(catalog, from_ms, to_ms)? {
        let w = Window { lo, hi, before: None };
        for (t, hidden, m) in blocks_of(&part, &plan)? {
            let mut n = 0u64;
            scan(&part, &m, hidden, &plan, &w, &mut |_, _, _| n += 1)?;
            if n > 0 {
                *out.entry(t).or_insert(0) += n;
            }
        }
    }
    Ok(out)
}

/// Counts a tenant's rows of one block in `from..to` (for retention reports).
pub(crate) fn count_rows(part: &Arc<Partition>, m: &BlockMeta, from: i64, to: i64) -> Result<u64, EventStoreError> {
    if m.min_time >= from && m.max_time < to {
        return Ok(u64::from(m.rows));
    }
    let mut n = 0;
    let plan = Plan::default();
    scan(part, m, i64::MIN, &plan, &Window { lo: from, hi: to, before: None }, &mut |_, _, _| n += 1)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attribute_paths_look_into_arrays_and_compare_scalars_as_text() {
        let v = json!({"a": {"b": [{"c": 1}, {"c": "x"}], "t": true}, "n": 2.5});
        assert!(path_matches(&v, &["a", "b", "c"], "1"));
        assert!(path_matches(&v, &["a", "b", "c"], "x"));
        assert!(!path_matches(&v, &["a", "b", "c"], "2"));
        assert!(path_matches(&v, &["a", "t"], "true"));
        assert!(path_matches(&v, &["n"], "2.5"));
        assert!(!path_matches(&v, &["a"], "x"));
        assert!(!path_matches(&v, &["z"], "x"));
    }
}
