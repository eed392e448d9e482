//! The event pipeline against the store it replaces, same events, same machine, one
//! run: the old SQLite store's write path (`legacy::SqliteStore`: FTS5 trigram and
//! B-tree indexes, acknowledged once indexed), the block store written directly
//! (`EventStore::append_blocking`), and the pipeline (publish into the log,
//! acknowledged there, indexed asynchronously into the block store), each timed until
//! every event is searchable. All in batches of 1,000.
//!
//! ```text
//! MAMORI_BENCH_EVENTS=1000000 cargo bench -p mamori-bus --bench pipeline
//! ```

use mamori_store::events::EventStore;
use mamori_store::events::legacy::SqliteStore;
use mamori_store::events::mix::Mix;
use std::time::Instant;

fn main() {
    let n: usize = std::env::var("MAMORI_BENCH_EVENTS").ok().and_then(|s| s.replace('_', "").parse().ok()).unwrap_or(1_000_000);
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary folder");
    println!("event pipeline benchmark: {n} events of the mix (50 tenants, 7 days, ~200-byte raw records), batches of 1000");

    let mut mix = Mix::new(n, mamori_core::time::now_ms());
    let batches: Vec<_> = (0..n).step_by(1000).map(|from| mix.batch(from, (from + 1000).min(n))).collect();

    // The old store: SQLite + FTS5, indexing before the acknowledgement.
    let mut old_store = SqliteStore::open(&tmp.path().join("old")).expect("open old store");
    let t = Instant::now();
    for b in &batches {
        old_store.append(b).expect("append");
    }
    let old = t.elapsed();
    let old_rate = n as f64 / old.as_secs_f64();
    println!(
        "old SQLite store (append = searchable): {:>9.0} events/s  ({:.1} s, {:.0} bytes/event)",
        old_rate,
        old.as_secs_f64(),
        old_store.bytes() as f64 / n as f64
    );
    drop(old_store);

    // The block store written directly, one batch at a time.
    let store = EventStore::open(&tmp.path().join("direct")).expect("open store");
    let t = Instant::now();
    for b in batches {
        store.append_blocking(b).expect("append");
    }
    let direct = t.elapsed();
    drop(store);
    println!("block store, append_blocking:           {:>9.0} events/s  ({:.1} s)", n as f64 / direct.as_secs_f64(), direct.as_secs_f64());

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let r = rt.block_on(mamori_bus::bench::run(&tmp.path().join("new"), n)).expect("pipeline");
    println!(
        "pipeline (log, then index):              {:>9.0} events/s publish to searchable ({:.1} s); acknowledged at {:.0} events/s",
        r.rate(),
        r.searchable.as_secs_f64(),
        n as f64 / r.acknowledged.as_secs_f64()
    );
    println!(
        "raw data: {:.1} MB/s; on disk: store {:.0} bytes/event, log {:.0} bytes/event",
        r.raw_bytes as f64 / 1e6 / r.searchable.as_secs_f64(),
        r.store_bytes as f64 / n as f64,
        r.log_bytes as f64 / n as f64
    );
    println!("ratio pipeline / old store: {:.2}", r.rate() / old_rate);
}
