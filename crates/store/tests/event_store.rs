//! Behaviour of the embedded event store, checked against an in-memory model.

use mamori_core::{Disposition, Endpoint, Event, EventClass, EventId, Severity, TenantId};
use mamori_store::events::{EventPage, EventQuery, EventStore, EventStoreError, FieldFilter, Hold, RetentionRules, StoredEvent, TenantRetention};
use mamori_store::{CrossTenant, Scope};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::Path;

const DAY: i64 = 86_400_000;
/// 2025-11-20T00:00:00Z.
const BASE: i64 = 1_763_596_800_000;

/// A cross-tenant grant, from a config store opened only for it (the event store has
/// no authority of its own; a grant is not bound to the store that minted it).
async fn cross_tenant() -> CrossTenant {
    let dir = tempfile::tempdir().unwrap();
    let (_store, authority) = mamori_store::Store::open(&format!("sqlite://{}", dir.path().join("c.db").display())).await.unwrap();
    authority.grant("test", "event store test").await.unwrap()
}

fn event(tenant: TenantId, time: i64, class: EventClass, message: &str) -> Event {
    Event::new(tenant, time, class, message, "test")
}

/// Test data: 3 tenants, 3 days, several events per timestamp.
struct Data {
    tenants: [TenantId; 3],
    /// In append order.
    events: Vec<Event>,
}

fn data() -> Data {
    let tenants = [TenantId::new(), TenantId::new(), TenantId::new()];
    let classes = [EventClass::HTTP_ACTIVITY, EventClass::AUTHENTICATION, EventClass::DETECTION_FINDING, EventClass::DNS_ACTIVITY];
    let mut events = Vec::new();
    for i in 0..360i64 {
        let day = i % 3;
        // Pairs of events share a timestamp, so the order within a time is tested.
        let time = BASE + day * DAY + (i / 2) * 60_000;
        let message = match i % 10 {
            0 => format!("県庁への不正アクセスを検知 #{i}"),
            3 => format!("ログイン失敗 {i}"),
            7 => format!("100% 完了 file_{i}"),
            _ => format!("GET /page/{i} 200"),
        };
        let mut e = event(tenants[(i % 3 + i / 90) as usize % 3], time, classes[(i % 4) as usize], &message);
        e.severity = Severity((i % 6) as u8);
        e.disposition = match i % 5 {
            0 => None,
            1 | 2 => Some(Disposition::BLOCKED),
            _ => Some(Disposition::ALLOWED),
        };
        e.src = Some(Endpoint { ip: Some(format!("198.51.100.{}", i % 20)), port: Some(40_000 + i as u16), hostname: None });
        e.dst = Some(Endpoint { ip: Some(format!("203.0.113.{}", i % 7)), port: Some(443), hostname: Some("www.example.lg.jp".into()) });
        e.user = Some(format!("user{}", i % 7));
        e.fields.insert("http_request".into(), json!({"url": {"hostname": format!("host{}.example.lg.jp", i % 4)}}));
        e.fields.insert("http_response".into(), json!({"code": if i % 9 == 0 { 404 } else { 200 }}));
        e.raw = Some(format!("<134>raw line {i} zz{i}zz"));
        events.push(e);
    }
    Data { tenants, events }
}

async fn store_with(dir: &Path, d: &Data) -> EventStore {
    let store = EventStore::open(dir).unwrap();
    let mut appended = 0;
    for chunk in d.events.chunks(37) {
        appended += store.append(chunk.to_vec()).await.unwrap();
    }
    assert_eq!(appended, d.events.len() as u64);
    store
}

/// Returns the ids the model expects, newest first (time, then append order).
fn expect(d: &Data, scope_tenant: Option<TenantId>, keep: impl Fn(&Event) -> bool) -> Vec<EventId> {
    let mut v: Vec<(usize, &Event)> = d.events.iter().enumerate().filter(|(_, e)| scope_tenant.is_none_or(|t| e.tenant == t) && keep(e)).collect();
    v.sort_by_key(|(i, e)| std::cmp::Reverse((e.time, *i)));
    v.into_iter().map(|(_, e)| e.id).collect()
}

/// Walks every page; checks page sizes and that no id repeats.
async fn walk(store: &EventStore, scope: &Scope, q: &EventQuery) -> Vec<EventId> {
    let mut q = q.clone();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..10_000 {
        let page: EventPage = store.query(scope, &q).await.unwrap();
        assert!(page.events.len() <= q.limit);
        if page.next_cursor.is_some() {
            assert_eq!(page.events.len(), q.limit, "only the last page may be short");
        }
        for e in &page.events {
            assert!(seen.insert(e.event.id), "duplicate {:?}", e.event.id);
            out.push(e.event.id);
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
    panic!("paging does not end");
}

fn range() -> EventQuery {
    EventQuery { limit: 7, ..EventQuery::between(BASE - DAY, BASE + 4 * DAY) }
}

#[tokio::test]
async fn f18_every_filter_matches_the_model_and_paging_has_no_gap_or_duplicate() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let store = store_with(dir.path(), &d).await;
    let s = grant.scope();
    let [a, b, _] = d.tenants;
    type Keep = Box<dyn Fn(&Event) -> bool>;
    let cases: Vec<(EventQuery, Keep)> = vec![
        (range(), Box::new(|_| true)),
        (EventQuery { classes: vec![EventClass::AUTHENTICATION], ..range() }, Box::new(|e| e.class == EventClass::AUTHENTICATION)),
        (
            EventQuery { classes: vec![EventClass::DNS_ACTIVITY, EventClass::HTTP_ACTIVITY], ..range() },
            Box::new(|e| e.class == EventClass::DNS_ACTIVITY || e.class == EventClass::HTTP_ACTIVITY),
        ),
        (EventQuery { min_severity: Some(Severity::HIGH), ..range() }, Box::new(|e| e.severity >= Severity::HIGH)),
        (EventQuery { dispositions: vec![Disposition::BLOCKED], ..range() }, Box::new(|e| e.disposition == Some(Disposition::BLOCKED))),
        (EventQuery { tenants: vec![b], ..range() }, Box::new(move |e| e.tenant == b)),
        (EventQuery { tenants: vec![a, b, a], ..range() }, Box::new(move |e| e.tenant == a || e.tenant == b)),
        (
            EventQuery { from_ms: BASE + DAY + 3_600_000, to_ms: BASE + 2 * DAY + 7_200_000, ..range() },
            Box::new(|e| e.time >= BASE + DAY + 3_600_000 && e.time < BASE + 2 * DAY + 7_200_000),
        ),
        (
            EventQuery { fields: vec![FieldFilter::parse("src_endpoint.ip=198.51.100.3").unwrap()], ..range() },
            Box::new(|e| e.src.as_ref().and_then(|s| s.ip.as_deref()) == Some("198.51.100.3")),
        ),
        (
            EventQuery { fields: vec![FieldFilter::parse("dst_endpoint.ip=203.0.113.2").unwrap()], ..range() },
            Box::new(|e| e.dst.as_ref().and_then(|s| s.ip.as_deref()) == Some("203.0.113.2")),
        ),
        (EventQuery { fields: vec![FieldFilter::parse("actor.user.name=user4").unwrap()], ..range() }, Box::new(|e| e.user.as_deref() == Some("user4"))),
        (
            EventQuery { fields: vec![FieldFilter::parse("http_request.url.hostname=host2.example.lg.jp").unwrap()], ..range() },
            Box::new(|e| e.fields["http_request"]["url"]["hostname"] == "host2.example.lg.jp"),
        ),
        (EventQuery { fields: vec![FieldFilter::parse("http_response.code=404").unwrap()], ..range() }, Box::new(|e| e.fields["http_response"]["code"] == 404)),
        (
            EventQuery { fields: vec![FieldFilter::parse("src_endpoint.port=40005").unwrap()], ..range() },
            Box::new(|e| e.src.as_ref().and_then(|s| s.port) == Some(40005)),
        ),
        (
            EventQuery {
                classes: vec![EventClass::HTTP_ACTIVITY],
                min_severity: Some(Severity::LOW),
                dispositions: vec![Disposition::ALLOWED, Disposition::BLOCKED],
                fields: vec![FieldFilter::parse("http_response.code=200").unwrap(), FieldFilter::parse("actor.user.name=user1").unwrap()],
                ..range()
            },
            Box::new(|e| {
                e.class == EventClass::HTTP_ACTIVITY
                    && e.severity >= Severity::LOW
                    && e.disposition.is_some()
                    && e.fields["http_response"]["code"] == 200
                    && e.user.as_deref() == Some("user1")
            }),
        ),
    ];
    for (i, (q, keep)) in cases.iter().enumerate() {
        let want = expect(&d, None, keep);
        assert!(!want.is_empty() && want.len() < d.events.len() || i == 0, "case {i} selects something but not all");
        assert_eq!(walk(&store, &s, q).await, want, "case {i}");
        // The same with big pages.
        assert_eq!(walk(&store, &s, &EventQuery { limit: 1000, ..q.clone() }).await, want, "case {i}, one page");
        // And within a tenant scope.
        assert_eq!(walk(&store, &grant.tenant(a), q).await, expect(&d, Some(a), keep), "case {i}, tenant scope");
    }
}

#[tokio::test]
async fn f18_full_text_finds_japanese_substrings_short_terms_and_literal_wildcards() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let store = store_with(dir.path(), &d).await;
    let s = grant.scope();
    let text = |t: &str| EventQuery { text: Some(t.into()), ..range() };
    let contains = |needle: &'static str| move |e: &Event| e.search_text().to_lowercase().contains(&needle.to_lowercase());
    let cases: Vec<(&str, Vec<EventId>)> = vec![
        ("不正アクセス", expect(&d, None, contains("不正アクセス"))),
        ("県庁", expect(&d, None, contains("県庁"))),
        ("検知", expect(&d, None, contains("検知"))),
        ("ログイン失敗", expect(&d, None, contains("ログイン失敗"))),
        ("zz17zz", expect(&d, None, contains("zz17zz"))),
        ("ZZ17ZZ", expect(&d, None, contains("zz17zz"))),
        ("host3.example", expect(&d, None, contains("host3.example"))),
        ("198.51.100.19", expect(&d, None, contains("198.51.100.19"))),
        // Several words: all must occur.
        ("不正アクセス #30", expect(&d, None, |e| e.message.contains("不正アクセス") && e.message.contains("#30"))),
        // LIKE wildcards are literal.
        ("%", expect(&d, None, contains("%"))),
        ("0%", expect(&d, None, contains("0%"))),
        ("e_", expect(&d, None, contains("e_"))),
        // Short terms match string values of the document, not its keys.
        ("ip", Vec::new()),
        ("no such words here", Vec::new()),
    ];
    for (t, want) in cases {
        assert_eq!(walk(&store, &s, &text(t)).await, want, "text {t:?}");
    }
    assert_eq!(expect(&d, None, contains("不正アクセス")).len(), 36);
    assert_eq!(expect(&d, None, contains("%")).len(), 36);
}

#[tokio::test]
async fn f18_tenant_scope_never_reaches_another_tenant() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let store = store_with(dir.path(), &d).await;
    let [a, b, c] = d.tenants;
    let mine = grant.tenant(a);
    let got = walk(&store, &mine, &EventQuery { limit: 1000, ..range() }).await;
    assert_eq!(got, expect(&d, Some(a), |_| true));
    // Asking for other tenants narrows to nothing, never widens.
    for tenants in [vec![b], vec![b, c]] {
        let p = store.query(&mine, &EventQuery { tenants, ..range() }).await.unwrap();
        assert!(p.events.is_empty() && p.next_cursor.is_none());
    }
    assert_eq!(walk(&store, &mine, &EventQuery { tenants: vec![a, b], ..range() }).await, expect(&d, Some(a), |_| true));
    let theirs = d.events.iter().find(|e| e.tenant == b).unwrap();
    let own = d.events.iter().find(|e| e.tenant == a).unwrap();
    assert!(store.get(&mine, theirs.id).await.unwrap().is_none());
    assert_eq!(store.get(&mine, own.id).await.unwrap().unwrap().event, *own);
    assert_eq!(store.get(&grant.scope(), theirs.id).await.unwrap().unwrap().event, *theirs);
    // Nothing reaches nothing.
    let nothing = Scope::nothing();
    assert!(store.query(&nothing, &range()).await.unwrap().events.is_empty());
    assert!(store.get(&nothing, own.id).await.unwrap().is_none());
    assert_eq!(store.histogram(&nothing, &range(), 10).await.unwrap().total, 0);
    assert!(store.count_by_tenant(&nothing, BASE - DAY, BASE + 4 * DAY, None).await.unwrap().is_empty());
    let counts = store.count_by_tenant(&mine, BASE - DAY, BASE + 4 * DAY, None).await.unwrap();
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), vec![a]);
    assert_eq!(store.histogram(&mine, &range(), 10).await.unwrap().total, expect(&d, Some(a), |_| true).len() as u64);
    // Text search obeys the scope as well.
    let t = EventQuery { text: Some("不正アクセス".into()), limit: 1000, ..range() };
    assert!(store.query(&mine, &t).await.unwrap().events.iter().all(|e| e.event.tenant == a));
}

#[tokio::test]
async fn f18_get_returns_the_event_as_appended() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let store = store_with(dir.path(), &d).await;
    for e in d.events.iter().step_by(17) {
        let got: StoredEvent = store.get(&grant.scope(), e.id).await.unwrap().unwrap();
        assert_eq!(got.event, *e);
        assert_eq!(got.doc, e.to_ocsf());
    }
    assert!(store.get(&grant.scope(), EventId::at(BASE)).await.unwrap().is_none());
    assert!(store.get(&grant.scope(), EventId::at(BASE + 100 * DAY)).await.unwrap().is_none());
    assert!(store.get(&grant.scope(), EventId::at(5)).await.unwrap().is_none());
}

#[tokio::test]
async fn f18_histogram_totals_equal_query_counts() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let store = store_with(dir.path(), &d).await;
    let s = grant.scope();
    let queries = [
        range(),
        EventQuery { classes: vec![EventClass::AUTHENTICATION], ..range() },
        EventQuery { text: Some("不正アクセス".into()), ..range() },
        EventQuery { tenants: vec![d.tenants[1]], min_severity: Some(Severity::MEDIUM), ..range() },
        EventQuery { fields: vec![FieldFilter::parse("src_endpoint.ip=198.51.100.3").unwrap()], ..range() },
        EventQuery { from_ms: BASE + 3_600_000, to_ms: BASE + DAY + 1, ..range() },
    ];
    for (i, q) in queries.iter().enumerate() {
        let count = walk(&store, &s, q).await.len() as u64;
        for buckets in [1, 7, 96, 200] {
            let h = store.histogram(&s, q, buckets).await.unwrap();
            assert_eq!(h.total, count, "query {i}, {buckets} buckets");
            assert_eq!(h.counts.iter().sum::<u64>(), count);
            assert!(h.counts.len() <= buckets && h.counts.len() as i64 * h.bucket_ms >= q.to_ms - q.from_ms);
        }
    }
    // 96 buckets of 1 h from BASE: each event falls into its hour.
    let h = store.histogram(&s, &EventQuery::between(BASE, BASE + 4 * DAY), 96).await.unwrap();
    assert_eq!(h.bucket_ms, 3_600_000);
    for (b, c) in h.counts.iter().enumerate() {
        let lo = BASE + b as i64 * 3_600_000;
        let want = d.events.iter().filter(|e| e.time >= lo && e.time < lo + 3_600_000).count() as u64;
        assert_eq!(*c, want, "bucket {b}");
    }
    let counts = store.count_by_tenant(&s, BASE - DAY, BASE + 4 * DAY, Some(Severity::HIGH)).await.unwrap();
    for t in d.tenants {
        let want = d.events.iter().filter(|e| e.tenant == t && e.severity >= Severity::HIGH).count() as u64;
        assert_eq!(counts.get(&t).copied(), Some(want));
    }
}

/// Events of `tenant` on `day` that a text search for the tenant's id finds.
async fn text_hits(store: &EventStore, grant: &CrossTenant, day: &str, tenant: TenantId) -> usize {
    let start = days_since_epoch(day) * DAY;
    let q = EventQuery { text: Some(tenant.to_string()), limit: 1000, ..EventQuery::between(start, start + DAY) };
    walk(store, &grant.scope(), &q).await.len()
}

fn days_since_epoch(day: &str) -> i64 {
    let d = time::Date::parse(day, &time::format_description::well_known::Iso8601::DATE).unwrap();
    (d - time::Date::from_calendar_date(1970, time::Month::January, 1).unwrap()).whole_days()
}

#[tokio::test]
async fn f18_purge_keeps_each_tenants_retention_and_drops_old_days() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path()).unwrap();
    let (short, default, long) = (TenantId::new(), TenantId::new(), TenantId::new());
    let now = BASE + 40 * DAY + 12 * 3_600_000;
    let ages_h: [i64; 6] = [35 * 24, 20 * 24, 5 * 24, 2 * 24 + 1, 2 * 24 - 1, 1];
    let mut events = Vec::new();
    for t in [short, default, long] {
        for age in ages_h {
            events.push(event(t, now - age * 3_600_000, EventClass::HTTP_ACTIVITY, &format!("marker {t} age {age}")));
        }
    }
    store.append(events.clone()).await.unwrap();
    let days_before = store.partitions().unwrap();
    assert!(days_before.iter().all(|p| p.bytes > 0));
    let old_day = days_before[0].day.clone();
    let mid_day = days_before[1].day.clone();
    assert_eq!(text_hits(&store, &grant, &mid_day, short).await, 1);

    let retention = HashMap::from([(short, 2), (long, 30)]);
    let report = store.purge(&grant, now, RetentionRules::days(10, retention.clone())).await.unwrap();
    assert_eq!(report.partitions_dropped, 1, "the day 35 days ago is older than every retention");
    // short: 20 d, 5 d and 2 d 1 h ago; default: 20 d ago.
    assert_eq!(report.events_deleted, 4);
    let after = store.partitions().unwrap();
    assert_eq!(after.len(), days_before.len() - 1);
    assert!(after.iter().all(|p| p.day != old_day));
    assert!(!dir.path().join(&old_day).exists());

    let left = walk(&store, &grant.scope(), &EventQuery { limit: 1000, ..EventQuery::between(now - 399 * DAY, now + DAY) }).await;
    let keep = |e: &Event| {
        let age = now - e.time;
        let days = if e.tenant == short {
            2
        } else if e.tenant == long {
            30
        } else {
            10
        };
        age < 30 * DAY && age <= days * DAY
    };
    let want: HashSet<EventId> = events.iter().filter(|e| keep(e)).map(|e| e.id).collect();
    assert_eq!(left.iter().copied().collect::<HashSet<_>>(), want);
    assert_eq!(left.len(), 18 - 3 - 4);
    // Full text finds only what is kept.
    assert_eq!(text_hits(&store, &grant, &mid_day, short).await, 0);
    assert_eq!(text_hits(&store, &grant, &mid_day, long).await, 1);
    // Purging again changes nothing; new appends still work.
    assert_eq!(store.purge(&grant, now, RetentionRules::days(10, retention)).await.unwrap().events_deleted, 0);
    assert_eq!(store.append(vec![event(short, now, EventClass::HTTP_ACTIVITY, "after purge")]).await.unwrap(), 1);
    assert!(matches!(store.purge(&grant, now, RetentionRules::days(0, HashMap::new())).await, Err(EventStoreError::BadQuery(_))));
}

/// Retention classes and legal holds: firewall traffic kept shorter than
/// authentication, per tenant; a tenant's rule replaces the default's; a hold keeps
/// a tenant's events in its range past every retention, whole days included, until
/// it is released; marks survive a reopen.
#[tokio::test]
async fn f18_purge_keeps_each_class_its_days_and_never_purges_a_held_range() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let (plain, strict, held) = (TenantId::new(), TenantId::new(), TenantId::new());
    let now = BASE + 100 * DAY + 12 * 3_600_000;
    let ages_d: [i64; 5] = [70, 40, 20, 8, 1];
    let classes = [EventClass::NETWORK_ACTIVITY, EventClass::AUTHENTICATION, EventClass::HTTP_ACTIVITY];
    let mut events = Vec::new();
    for t in [plain, strict, held] {
        for age in ages_d {
            for c in classes {
                events.push(event(t, now - age * DAY, c, &format!("marker {t} {} {age}", c.0)));
            }
        }
    }
    let store = EventStore::open(dir.path()).unwrap();
    store.append(events.clone()).await.unwrap();
    let (net, auth) = (EventClass::NETWORK_ACTIVITY.0, EventClass::AUTHENTICATION.0);
    // Default: 30 days, network traffic 10, authentication 90. `strict` has its own
    // rule: 15 days, authentication 60 (no network rule: its 15 days). `held` has the
    // default rule and a hold over 45 to 35 days ago.
    let hold = Hold { tenant: held, from_ms: now - 45 * DAY, to_ms: now - 35 * DAY };
    let rules = RetentionRules {
        default_days: 30,
        default_classes: HashMap::from([(net, 10), (auth, 90)]),
        tenants: HashMap::from([(strict, TenantRetention { days: 15, classes: HashMap::from([(auth, 60)]) })]),
        holds: vec![hold],
    };
    assert_eq!(rules.longest(), 90);
    let report = store.purge(&grant, now, rules.clone()).await.unwrap();
    assert_eq!(report.partitions_dropped, 0, "authentication is kept 90 days: every day stays");
    let kept_days = |t: TenantId, c: u32| -> i64 {
        match (t == strict, c) {
            (true, c) if c == auth => 60,
            (true, _) => 15,
            (false, c) if c == net => 10,
            (false, c) if c == auth => 90,
            _ => 30,
        }
    };
    let keep = |e: &Event| {
        let age = now - e.time;
        age <= kept_days(e.tenant, e.class.0) * DAY || (e.tenant == held && e.time >= hold.from_ms && e.time < hold.to_ms)
    };
    let want: HashSet<EventId> = events.iter().filter(|e| keep(e)).map(|e| e.id).collect();
    let all = EventQuery { limit: 1000, ..EventQuery::between(now - 399 * DAY, now + DAY) };
    let left: HashSet<EventId> = walk(&store, &grant.scope(), &all).await.into_iter().collect();
    assert_eq!(left, want);
    assert_eq!(report.events_deleted as usize, events.len() - want.len());
    // Held: the 40-day-old network and HTTP events of `held` are there, not `plain`'s.
    let forty = |t: TenantId, c: EventClass| events.iter().find(|e| e.tenant == t && e.class == c && now - e.time == 40 * DAY).unwrap().id;
    assert!(left.contains(&forty(held, EventClass::NETWORK_ACTIVITY)) && !left.contains(&forty(plain, EventClass::NETWORK_ACTIVITY)));
    // The marks are durable; purging again deletes nothing.
    drop(store);
    let store = EventStore::open(dir.path()).unwrap();
    assert_eq!(walk(&store, &grant.scope(), &all).await.into_iter().collect::<HashSet<_>>(), want);
    assert_eq!(store.purge(&grant, now, rules.clone()).await.unwrap().events_deleted, 0);
    // Released, the hold's events go at the next purge; past 90 days the days go whole.
    let released = RetentionRules { holds: Vec::new(), ..rules.clone() };
    let report = store.purge(&grant, now, released.clone()).await.unwrap();
    assert!(report.events_deleted > 0);
    assert!(!walk(&store, &grant.scope(), &all).await.contains(&forty(held, EventClass::NETWORK_ACTIVITY)));
    let later = now + 30 * DAY;
    let days_before = store.partitions().unwrap().len();
    let report = store.purge(&grant, later, released).await.unwrap();
    assert_eq!(report.partitions_dropped, 1, "the day 70 days ago is now past 90 days: {report:?}");
    assert_eq!(store.partitions().unwrap().len(), days_before - 1);
    // A held whole day is not dropped.
    let store2_dir = tempfile::tempdir().unwrap();
    let store2 = EventStore::open(store2_dir.path()).unwrap();
    store2.append(vec![event(held, now - 200 * DAY, EventClass::AUTHENTICATION, "case evidence")]).await.unwrap();
    let hold = Hold { tenant: held, from_ms: now - 201 * DAY, to_ms: now - 199 * DAY };
    let report = store2.purge(&grant, now, RetentionRules { holds: vec![hold], ..RetentionRules::days(30, HashMap::new()) }).await.unwrap();
    assert_eq!((report.partitions_dropped, report.events_deleted), (0, 0));
    assert_eq!(walk(&store2, &grant.scope(), &all).await.len(), 1, "the held event is there");
}

#[tokio::test]
async fn f18_appended_events_survive_a_restart() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    {
        let store = store_with(dir.path(), &d).await;
        // A crash right now: the files as they are on disk hold every event whose
        // append returned.
        let crashed = tempfile::tempdir().unwrap();
        copy_tree(dir.path(), crashed.path());
        let copy = EventStore::open(crashed.path()).unwrap();
        assert_eq!(walk(&copy, &grant.scope(), &EventQuery { limit: 1000, ..range() }).await.len(), d.events.len());
        drop(copy);
        let clone = store.clone();
        drop(store);
        assert_eq!(clone.append_blocking(vec![event(d.tenants[0], BASE + 5, EventClass::API_ACTIVITY, "last")]).unwrap(), 1);
    }
    let store = EventStore::open(dir.path()).unwrap();
    let got = walk(&store, &grant.scope(), &EventQuery { limit: 1000, ..range() }).await;
    assert_eq!(got.len(), d.events.len() + 1);
    for e in d.events.iter().step_by(11) {
        assert_eq!(store.get(&grant.scope(), e.id).await.unwrap().unwrap().event, *e);
    }
    assert_eq!(store.partitions().unwrap().len(), 3);
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f18_concurrent_appends_are_all_committed() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path()).unwrap();
    let t = TenantId::new();
    let mut tasks = Vec::new();
    for w in 0..8i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for b in 0..25i64 {
                let batch = (0..20i64).map(|i| event(t, BASE + (w * 500 + b * 20 + i) * 1000 + (b % 2) * DAY, EventClass::NETWORK_ACTIVITY, "conn")).collect();
                n += store.append(batch).await.unwrap();
            }
            n
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 8 * 25 * 20);
    let got = walk(&store, &grant.scope(), &EventQuery { limit: 1000, ..range() }).await;
    assert_eq!(got.len(), 4000);
    assert_eq!(store.count_by_tenant(&grant.tenant(t), BASE, BASE + 2 * DAY, None).await.unwrap()[&t], 4000);
}

#[tokio::test]
async fn f18_a_failing_partition_fails_only_the_batches_that_write_to_it() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    // A file where the day's partition folder should be: it cannot be created.
    std::fs::write(dir.path().join("2025-11-20"), "not a partition").unwrap();
    let store = EventStore::open(dir.path()).unwrap();
    let t = TenantId::new();
    let broken = || vec![event(t, BASE + 10, EventClass::HTTP_ACTIVITY, "broken day")];
    let fine = || vec![event(t, BASE + DAY + 10, EventClass::HTTP_ACTIVITY, "fine day")];
    let both = || vec![event(t, BASE + 20, EventClass::HTTP_ACTIVITY, "broken"), event(t, BASE + DAY + 20, EventClass::HTTP_ACTIVITY, "fine")];
    // Queued together, so they share one group commit.
    let (a, b, c, d) = tokio::join!(store.append(broken()), store.append(fine()), store.append(broken()), store.append(both()));
    assert!(matches!(a, Err(EventStoreError::Io(_))), "{a:?}");
    assert_eq!(b.unwrap(), 1);
    assert!(matches!(c, Err(EventStoreError::Io(_))), "{c:?}");
    assert!(d.is_err(), "a batch with a failed day reports the failure");
    let got = store.query(&grant.scope(), &EventQuery { limit: 1000, ..range() }).await.unwrap();
    assert_eq!(got.events.iter().map(|e| e.event.message.as_str()).collect::<Vec<_>>(), ["fine", "fine day"]);
    assert_eq!(store.partitions().unwrap().len(), 1);
    assert_eq!(store.append(fine()).await.unwrap(), 1);
}

#[tokio::test]
async fn f18_out_of_range_events_refuse_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path()).unwrap();
    let t = TenantId::new();
    let good = event(t, BASE, EventClass::HTTP_ACTIVITY, "good");
    for bad_time in [946_684_799_999, 7_289_654_400_000, 0, -5, i64::MAX] {
        let bad = event(t, bad_time, EventClass::HTTP_ACTIVITY, "bad");
        match store.append(vec![good.clone(), bad]).await {
            Err(EventStoreError::Rejected(p)) => assert_eq!(p.0[0].code, "time_out_of_range"),
            other => panic!("{bad_time}: {other:?}"),
        }
    }
    let mut moved = good.clone();
    moved.time += DAY;
    assert!(matches!(store.append_blocking(vec![moved]), Err(EventStoreError::Rejected(_))));
    assert!(store.partitions().unwrap().is_empty(), "nothing written");
    assert_eq!(store.append(Vec::new()).await.unwrap(), 0);
    // The edges of the range are accepted.
    let edges = vec![event(t, 946_684_800_000, EventClass::HTTP_ACTIVITY, "2000"), event(t, 7_289_654_399_999, EventClass::HTTP_ACTIVITY, "2200")];
    assert_eq!(store.append(edges).await.unwrap(), 2);
    let p = store.partitions().unwrap();
    assert_eq!(p.iter().map(|p| p.day.as_str()).collect::<Vec<_>>(), ["2000-01-01", "2200-12-31"]);
}

#[tokio::test]
async fn f18_hostile_queries_are_refused_or_harmless() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let store = store_with(dir.path(), &d).await;
    let s = grant.scope();
    let bad = |r: Result<EventPage, EventStoreError>| match r {
        Err(EventStoreError::BadQuery(p)) => {
            assert!(p.0.iter().all(|p| !p.ja.is_empty() && !p.en.is_empty()));
            p.0.iter().map(|p| p.code).collect::<Vec<_>>()
        }
        other => panic!("not refused: {other:?}"),
    };
    for cursor in [
        "",
        "abc",
        "1.2.3",
        "1763596800000.1",
        "1763596800000.1.20412.1",
        "1763596800000.0.20412",
        "1763596800000.1.20413",
        "9999999999999999999999.1.1",
        "-1.-1.-1",
        "1763596800000.1.20412; DROP TABLE events",
    ] {
        let codes = bad(store.query(&s, &EventQuery { cursor: Some(cursor.into()), ..range() }).await);
        assert_eq!(codes, ["invalid_cursor"], "{cursor:?}");
    }
    assert_eq!(bad(store.query(&s, &EventQuery { limit: 1_000_000, ..range() }).await), ["invalid_limit"]);
    assert_eq!(bad(store.query(&s, &EventQuery { limit: usize::MAX, ..range() }).await), ["invalid_limit"]);
    assert_eq!(bad(store.query(&s, &EventQuery { limit: 0, ..range() }).await), ["invalid_limit"]);
    assert_eq!(bad(store.query(&s, &EventQuery::default()).await), ["invalid_range"]);
    assert_eq!(bad(store.query(&s, &EventQuery::between(BASE, BASE - 1)).await), ["invalid_range"]);
    assert_eq!(bad(store.query(&s, &EventQuery::between(BASE, BASE + 401 * DAY)).await), ["range_too_long"]);
    assert_eq!(bad(store.query(&s, &EventQuery::between(i64::MIN, i64::MAX)).await), ["range_too_long"]);
    assert_eq!(bad(store.query(&s, &EventQuery { text: Some("あ".repeat(257)), ..range() }).await), ["too_long"]);
    assert_eq!(store.query(&s, &EventQuery { text: Some("あ".repeat(256)), ..range() }).await.unwrap().events.len(), 0);
    for t in ["\u{0}", "abc\u{0}def", "GET\u{0}"] {
        assert_eq!(bad(store.query(&s, &EventQuery { text: Some(t.into()), ..range() }).await), ["invalid_text"]);
    }
    let f = |p: &str| FieldFilter { path: p.into(), value: "1".into() };
    assert_eq!(bad(store.query(&s, &EventQuery { fields: vec![f("a;drop")], ..range() }).await), ["invalid_field_path"]);
    assert_eq!(bad(store.query(&s, &EventQuery { fields: vec![f("message') OR 1=1 --")], ..range() }).await), ["invalid_field_path"]);
    assert_eq!(bad(store.query(&s, &EventQuery { fields: vec![f("a"); 11], ..range() }).await), ["too_many"]);
    assert!(FieldFilter::parse("a;drop=1").is_err());
    assert!(matches!(store.histogram(&s, &range(), 0).await, Err(EventStoreError::BadQuery(_))));
    assert!(matches!(store.histogram(&s, &range(), 201).await, Err(EventStoreError::BadQuery(_))));
    assert!(matches!(store.count_by_tenant(&s, BASE, BASE, None).await, Err(EventStoreError::BadQuery(_))));
    // A cursor far outside the range reads nothing.
    let p = store.query(&s, &EventQuery { cursor: Some("946684800000.1.10957".into()), ..range() }).await.unwrap();
    assert!(p.events.is_empty());
    // FTS5 syntax and SQL are only text.
    for t in [
        "\"",
        "\"\"\"",
        "NEAR(",
        "NEAR(a b)",
        "*",
        "a*",
        "OR",
        "a OR b",
        "AND",
        "NOT x",
        "^県庁",
        "text:abc",
        "(",
        ")",
        "{text}:x",
        "'; DROP TABLE events; --",
        "\\",
        "%_%",
        "県庁\" OR \"GET",
    ] {
        let page = store.query(&s, &EventQuery { text: Some(t.into()), limit: 1000, ..range() }).await.unwrap_or_else(|e| panic!("{t:?}: {e}"));
        for e in &page.events {
            let text = e.event.search_text().to_lowercase();
            let doc = e.doc.to_string().to_lowercase();
            for word in t.split_whitespace() {
                assert!(text.contains(&word.to_lowercase()) || doc.contains(&word.to_lowercase()), "{t:?} matched {:?}", e.event.message);
            }
        }
        store.histogram(&s, &EventQuery { text: Some(t.into()), ..range() }, 10).await.unwrap();
    }
    // Literal matches still work after all that, and nothing was dropped.
    let all_ids = walk(&store, &s, &EventQuery { limit: 1000, ..range() }).await;
    assert_eq!(all_ids.len(), d.events.len());
    let page = store.query(&s, &EventQuery { text: Some("\"".into()), ..range() }).await.unwrap();
    assert!(page.events.is_empty());
}

#[tokio::test]
async fn f18_damaged_partition_files_lose_only_what_is_damaged() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::new();
    let day = |i: i64| event(t, BASE + i * 1000, EventClass::HTTP_ACTIVITY, &format!("県庁への不正アクセス {i}"));
    {
        let store = EventStore::open(dir.path()).unwrap();
        // Three appends: three blocks.
        for r in [0..100, 100..200, 200..300] {
            store.append(r.map(day).collect()).await.unwrap();
        }
    }
    let part = dir.path().join("2025-11-20");
    let all = || EventQuery { limit: 1000, ..EventQuery::between(BASE, BASE + DAY) };
    // A crash in the middle of a flush: bytes after the last block and half an entry.
    let mut data = std::fs::OpenOptions::new().append(true).open(part.join("blocks.dat")).unwrap();
    std::io::Write::write_all(&mut data, &[0xab; 5000]).unwrap();
    let mut idx = std::fs::OpenOptions::new().append(true).open(part.join("blocks.idx")).unwrap();
    std::io::Write::write_all(&mut idx, b"MMD1\x46\x00\x00\x00garbage").unwrap();
    drop((data, idx));
    {
        let store = EventStore::open(dir.path()).unwrap();
        assert_eq!(walk(&store, &grant.scope(), &all()).await.len(), 300);
        // The writer cuts the tail off before it appends.
        store.append(vec![day(300)]).await.unwrap();
        assert_eq!(walk(&store, &grant.scope(), &all()).await.len(), 301);
    }
    // A flipped bit in the middle block: its rows are lost, the rest is read, and the
    // damage is counted.
    let mut bytes = std::fs::read(part.join("blocks.dat")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(part.join("blocks.dat"), bytes).unwrap();
    let store = EventStore::open(dir.path()).unwrap();
    let got = walk(&store, &grant.scope(), &all()).await.len();
    assert!((200..=201).contains(&got), "{got} events read");
    assert_eq!(store.damaged_blocks(), 1);
    let text = EventQuery { text: Some("不正アクセス".into()), ..all() };
    assert_eq!(walk(&store, &grant.scope(), &text).await.len(), got);
}

#[tokio::test]
async fn f18_logged_documents_that_are_not_events_are_left_out_and_counted() {
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path()).unwrap();
    let t = TenantId::new();
    let good = event(t, BASE + 10, EventClass::HTTP_ACTIVITY, "good");
    let logged = |offset: u64, doc: String| mamori_store::events::Logged { offset, doc };
    let no_tenant = json!({"time": BASE, "class_uid": 4002, "message": "no tenant"}).to_string();
    let taken = store
        .index(vec![logged(0, good.to_ocsf().to_string()), logged(1, no_tenant), logged(2, "not json {".into()), logged(3, "[1,2]".into())])
        .await
        .unwrap();
    assert_eq!(taken, 1);
    let got = walk(&store, &grant.scope(), &EventQuery { limit: 1000, ..range() }).await;
    assert_eq!(got, vec![good.id]);
}

/// Sealing: closed days get a manifest whose seals chain; a late event is covered by
/// the next seal; a changed or cut byte of a sealed prefix is found by the check.
#[tokio::test]
async fn closed_days_are_sealed_and_a_changed_byte_is_found() {
    use mamori_store::events::seal::{DayCheck, MANIFEST, verify_dir};
    let grant = cross_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path()).unwrap();
    let t = TenantId::new();
    let now = BASE + 10 * DAY + 12 * 3_600_000;
    let events: Vec<Event> = (0..5).map(|d| event(t, now - d * DAY, EventClass::HTTP_ACTIVITY, &format!("day {d}"))).collect();
    store.append(events).await.unwrap();
    // Days over for a day or more: today and yesterday are open.
    let seals = store.seal(&grant, now, DAY).await.unwrap();
    assert_eq!(seals.len(), 3, "{seals:?}");
    assert!(store.seal(&grant, now, DAY).await.unwrap().is_empty(), "nothing grew: nothing to seal again");
    let checks = verify_dir(dir.path()).unwrap();
    assert_eq!(checks.iter().filter(|(_, c)| matches!(c, DayCheck::Open)).count(), 2);
    for s in &seals {
        let (_, c) = checks.iter().find(|(d, _)| d == &s.day).unwrap();
        assert_eq!(c, &DayCheck::Sealed { seals: 1, digest: s.digest.clone() });
    }
    // A late event to a sealed day: the next seal covers it and chains to the first.
    let oldest = seals[0].clone();
    let late_time = now - 4 * DAY + 1000;
    store.append(vec![event(t, late_time, EventClass::HTTP_ACTIVITY, "late")]).await.unwrap();
    let again = store.seal(&grant, now, DAY).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].day, oldest.day);
    assert_eq!(again[0].seal.previous.as_deref(), Some(oldest.digest.as_str()));
    let (_, c) = verify_dir(dir.path()).unwrap().into_iter().find(|(d, _)| d == &oldest.day).unwrap();
    assert_eq!(c, DayCheck::Sealed { seals: 2, digest: again[0].digest.clone() });
    drop(store);
    // One flipped bit inside the sealed prefix, then a cut file: both are found.
    let data = dir.path().join(&oldest.day).join("blocks.dat");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&data, &bytes).unwrap();
    let (_, c) = verify_dir(dir.path()).unwrap().into_iter().find(|(d, _)| d == &oldest.day).unwrap();
    assert!(matches!(&c, DayCheck::Broken { reason } if reason.contains("changed")), "{c:?}");
    bytes[10] ^= 1;
    std::fs::write(&data, &bytes[..bytes.len() - 1]).unwrap();
    let (_, c) = verify_dir(dir.path()).unwrap().into_iter().find(|(d, _)| d == &oldest.day).unwrap();
    assert!(matches!(&c, DayCheck::Broken { reason } if reason.contains("shorter")), "{c:?}");
    // A manifest that does not chain, or is not JSON, is broken too.
    let manifest = dir.path().join(&seals[1].day).join(MANIFEST);
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["seals"][0]["previous"] = serde_json::json!("00");
    std::fs::write(&manifest, m.to_string()).unwrap();
    std::fs::write(dir.path().join(&seals[2].day).join(MANIFEST), b"{not json").unwrap();
    let checks = verify_dir(dir.path()).unwrap();
    for day in [&seals[1].day, &seals[2].day] {
        assert!(matches!(checks.iter().find(|(d, _)| d == day).unwrap().1, DayCheck::Broken { .. }), "{day}");
    }
}
