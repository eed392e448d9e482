//! Split nodes over NATS JetStream, as a prefecture scales out: an intake node takes
//! events through the API and publishes them to JetStream; an indexing node consumes
//! them into its event store, where they are searched. Both share PostgreSQL for their
//! config and run `--no-demo`. The indexing node is killed (SIGKILL) while events keep
//! arriving at the intake node; after its restart every acknowledged event is
//! searchable on it, none twice, and the intake node's lag returns to zero.

use crate::events::found;
use crate::support::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A tenant and an operator with an API token for events, made in the store and by
/// the command line (as an operator would).
fn seed(url: &str, data: &std::path::Path) -> (String, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tenant = rt.block_on(async {
        use mamori_core::{Actor, Role};
        let (store, authority) = mamori_store::Store::open(url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let scope = grant.scope();
        let t = create_city(&store, &scope).await;
        let user = mamori_store::NewUser {
            username: "soc".into(),
            display_name: "SOC 担当".into(),
            email: String::new(),
            role: Role::OperatorAdmin,
            tenant_id: None,
            tenants: Vec::new(),
            expires_at: None,
            password_hash: "unused".into(),
            must_change_password: false,
        };
        store.create_user(&scope, &Actor::system(), user).await.unwrap();
        store.close().await;
        t.id.to_string()
    });
    let out = std::process::Command::new(BIN)
        .args([
            "--data",
            data.to_str().unwrap(),
            "--database-url",
            url,
            "token",
            "create",
            "--user",
            "soc",
            "--name",
            "split",
            "--scopes",
            "events:write,events:read,tenants:read",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (tenant, format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim()))
}

/// Posts `n` events with `words` in their message; their ids once acknowledged (None:
/// refused).
#[test]
fn events_posted_to_the_intake_node_are_searchable_on_the_indexing_node_and_killing_it_loses_nothing() {
    let Some(url) = fresh_postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(nats) = mamori_bus::testing::NatsServer::start(&dir.path().join("nats")) else { return };
    let nats_url = nats.url();
    let config = |name: &str, index: bool, key: Option<&std::path::Path>| {
        let path = dir.path().join(format!("{name}.toml"));
        let vault = key.map(|k| format!("[vault]\nmaster_key_file = \"{}\"\n", k.display())).unwrap_or_default();
        std::fs::write(
            &path,
            format!("[server]\nnode_name = \"{name}\"\n{vault}[events]\nlog = \"jetstream\"\n[events.jetstream]\nurls = [\"{nats_url}\"]\nindex = {index}\n"),
        )
        .unwrap();
        path
    };
    let (intake_data, indexer_data) = (dir.path().join("intake"), dir.path().join("indexer"));
    let intake_cfg = config("intake", false, None);
    let intake = start_with(&intake_data, Opts { args: &["--no-demo"], config: Some(&intake_cfg), database_url: Some(&url), ..Default::default() });
    let (tenant, bearer) = seed(&url, &intake_data);
    let indexer_cfg = config("indexer", true, Some(&intake_data.join("master.key")));
    let start_indexer = || start_with(&indexer_data, Opts { args: &["--no-demo"], config: Some(&indexer_cfg), database_url: Some(&url), ..Default::default() });
    let mut indexer = start_indexer();

    let mut acked: HashSet<String> = HashSet::new();
    for b in 0..3 {
        acked.extend(post_events(&intake.client, &bearer, &tenant, &format!("splitrun b{b}"), 300).expect("the intake node takes events"));
    }
    let wait_all = |server: &Server, acked: &HashSet<String>| {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ids = found(server, &bearer, "splitrun");
            let unique: HashSet<&String> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "no event is stored twice");
            let missing = acked.iter().filter(|id| !unique.contains(id)).count();
            if missing == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "{missing} of {} acknowledged events are not searchable on the indexing node", acked.len());
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    wait_all(&indexer, &acked);

    // Clients keep posting to the intake node while the indexing node is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let more = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for k in 0..2 {
        let (client, stop, more) = (intake.client.clone(), stop.clone(), more.clone());
        let (bearer, tenant) = (bearer.clone(), tenant.clone());
        clients.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let ids = post_events(&client, &bearer, &tenant, &format!("splitrun c{k} n{n}"), 200);
                more.lock().unwrap().extend(ids.expect("the intake node keeps taking events while the indexer is down"));
                n += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    indexer.child.kill().unwrap(); // SIGKILL
    indexer.child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    acked.extend(more.lock().unwrap().iter().cloned());
    eprintln!("{} events acknowledged by the intake node", acked.len());
    // The intake node sees the indexer behind.
    let lag = metric(&intake, "mamori_event_index_lag");
    assert!(lag > 0.0, "the lag is visible on the intake node: {lag}");

    drop(indexer);
    let indexer = start_indexer();
    wait_all(&indexer, &acked);
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&intake, "mamori_event_index_lag") != 0.0 {
        assert!(Instant::now() < deadline, "the intake node's lag returns to zero");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(found(&intake, &bearer, "splitrun").is_empty(), "an intake node keeps no events of its own");
}
