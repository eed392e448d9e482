//! Forwarding to Splunk HEC (over HTTPS, a private CA) and to the Elasticsearch bulk
//! API, against a receiver of our own that fails the way real ones do: 503 at first,
//! 413 for large requests, 429 for some items, 409 for repeats, 400 for a document it
//! cannot map.

mod common;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{CODE_A, Harness, wait_until};
use mamori_core::EventClass;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Receiver {
    /// HEC requests still to fail with 503.
    hec_fail: usize,
    hec_requests: usize,
    /// HEC events by uid, with their index.
    hec: Vec<(String, String)>,
    /// Bulk documents by _id: (index, document).
    docs: HashMap<String, (String, Value)>,
    /// Ids already answered 429 once.
    busy_once: HashSet<String>,
    bulk_requests: usize,
    too_large: usize,
    conflicts: usize,
}

type Shared = Arc<Mutex<Receiver>>;

async fn hec(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let mut r = r.lock().unwrap();
    r.hec_requests += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Splunk test-token") {
        return (StatusCode::FORBIDDEN, json!({"text": "Invalid token", "code": 4}).to_string());
    }
    if r.hec_fail > 0 {
        r.hec_fail -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, json!({"text": "Server is busy", "code": 9}).to_string());
    }
    for v in serde_json::Deserializer::from_slice(&body).into_iter::<Value>() {
        let Ok(v) = v else { return (StatusCode::BAD_REQUEST, json!({"text": "Invalid data format", "code": 6}).to_string()) };
        let uid = v["fields"]["uid"].as_str().unwrap_or_default().to_string();
        assert_eq!(v["event"]["metadata"]["uid"].as_str(), Some(uid.as_str()), "the event is the OCSF document");
        r.hec.push((uid, v["index"].as_str().unwrap_or_default().to_string()));
    }
    (StatusCode::OK, json!({"text": "Success", "code": 0}).to_string())
}

async fn bulk(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    use base64::Engine;
    let mut r = r.lock().unwrap();
    r.bulk_requests += 1;
    let want = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("elastic:es-password"));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/x-ndjson"));
    let text = String::from_utf8(body.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() / 2 > 100 {
        r.too_large += 1;
        return (StatusCode::PAYLOAD_TOO_LARGE, String::new());
    }
    let mut items = Vec::new();
    let mut errors = false;
    for pair in lines.chunks(2) {
        let action: Value = serde_json::from_str(pair[0]).unwrap();
        let doc: Value = serde_json::from_str(pair[1]).unwrap();
        let id = action["create"]["_id"].as_str().unwrap().to_string();
        let index = action["create"]["_index"].as_str().unwrap().to_string();
        let message = doc["message"].as_str().unwrap_or_default();
        let n: usize = message.split(' ').nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
        let item = if message.contains("poison") {
            errors = true;
            json!({"create": {"_index": index, "_id": id, "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [message]"}}})
        } else if n % 7 == 3 && r.busy_once.insert(id.clone()) {
            errors = true;
            json!({"create": {"_index": index, "_id": id, "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}})
        } else if r.docs.contains_key(&id) {
            errors = true;
            r.conflicts += 1;
            json!({"create": {"_index": index, "_id": id, "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "document already exists"}}})
        } else {
            r.docs.insert(id.clone(), (index.clone(), doc));
            json!({"create": {"_index": index, "_id": id, "status": 201, "result": "created"}})
        };
        items.push(item);
    }
    (StatusCode::OK, json!({"took": 1, "errors": errors, "items": items}).to_string())
}

/// A CA, and a certificate for localhost it signed: (CA PEM, server config).
fn tls() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "Test SIEM CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca_cert, &ca_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

/// Serves the receiver on loopback (TLS when given); returns its port.
async fn serve(r: Shared, tls: Option<Arc<rustls::ServerConfig>>) -> u16 {
    let app = Router::new().route("/services/collector/event", post(hec)).route("/_bulk", post(bulk)).with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = mamori_http::HttpServer::new(mamori_http::Limits::default(), mamori_http::TrustedProxies::default());
    tokio::spawn(async move { server.serve(listener, tls, app, std::future::pending()).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_over_https_and_bulk_get_every_event_once_through_failures() {
    let dir = tempfile::tempdir().unwrap();
    let receiver: Shared = Arc::new(Mutex::new(Receiver { hec_fail: 3, ..Default::default() }));
    let (ca_pem, server_tls) = tls();
    let ca_file = dir.path().join("siem-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let https = serve(receiver.clone(), Some(server_tls)).await;
    let http = serve(receiver.clone(), None).await;
    let forward = json!({ "destinations": [
        { "name": "splunk", "kind": "splunk_hec", "url": format!("https://localhost:{https}"), "ca_file": ca_file, "token_secret": "hec-token", "index": "mamori_{tenant}", "tenants": [CODE_A], "batch_events": 400 },
        { "name": "es", "kind": "elasticsearch", "url": format!("http://127.0.0.1:{http}"), "user": "elastic", "password_secret": "es-password", "index": "mamori-{tenant}-{yyyy}.{MM}.{dd}", "batch_events": 250 },
    ]});
    let h = Harness::start(dir.path(), forward, &[("hec-token", "test-token"), ("es-password", "es-password")]).await;

    let mut a_ids = h.publish(h.a, EventClass::NETWORK_ACTIVITY, 1000, "net").await;
    a_ids.extend(h.publish(h.a, EventClass::HTTP_ACTIVITY, 1, "poison").await);
    let b_ids = h.publish(h.b, EventClass::NETWORK_ACTIVITY, 500, "net").await;
    let total = a_ids.len() + b_ids.len();

    wait_until(60, "HEC to have tenant A's events", async || receiver.lock().unwrap().hec.len() >= a_ids.len()).await;
    wait_until(60, "the bulk receiver to have every event but the poison", async || receiver.lock().unwrap().docs.len() >= total - 1).await;
    wait_until(10, "both cursors at the end", async || {
        let end = h.bus.end();
        ["splunk", "es"].iter().all(|n| h.status(n).is_some_and(|s| s.lag(end) == 0))
    })
    .await;

    let r = receiver.lock().unwrap();
    // HEC: three 503s, then everything of tenant A once, with its index; B never.
    let uids: HashSet<&str> = r.hec.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(uids.len(), a_ids.len(), "every event of tenant A");
    assert!(a_ids.iter().all(|i| uids.contains(i.as_str())));
    assert!(b_ids.iter().all(|i| !uids.contains(i.as_str())), "not tenant B's");
    assert!(r.hec.iter().all(|(_, index)| index == &format!("mamori_{CODE_A}")));
    let s = h.status("splunk").unwrap();
    assert_eq!(s.sent, a_ids.len() as u64);
    assert!(s.last_error.as_ref().is_some_and(|e| e.text.contains("503")), "{:?}", s.last_error);
    assert!(s.failing_since.is_none());

    // Bulk: 413 made the batches smaller; 429s went again; the poison was refused
    // and counted; nothing is stored twice.
    assert!(r.too_large >= 1, "the first batch of 250 was too large");
    assert_eq!(r.docs.len(), total - 1);
    let poison = a_ids.last().unwrap();
    assert!(!r.docs.contains_key(poison));
    assert!(b_ids.iter().all(|i| r.docs.get(i).is_some_and(|(index, _)| index.starts_with("mamori-39342"))));
    let (index, doc) = &r.docs[&a_ids[0]];
    assert!(index.starts_with(&format!("mamori-{CODE_A}-")) && index.len() == "mamori-393410-2026.12.04".len(), "{index}");
    assert!(doc["@timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{doc}");
    assert_eq!(doc["metadata"]["uid"], a_ids[0]);
    let s = h.status("es").unwrap();
    assert_eq!(s.rejected, 1);
    assert_eq!(s.sent, (total - 1) as u64);
    assert!(s.last_rejection.as_ref().is_some_and(|n| n.text.contains("mapper_parsing_exception")), "{:?}", s.last_rejection);
    assert_eq!(h.metric("mamori_forward_rejected_total", "es"), Some(1.0));
    assert_eq!(h.metric("mamori_forward_lag_events", "es").unwrap_or(0.0), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_destination_starts_where_it_says_and_a_removed_one_loses_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let receiver: Shared = Arc::new(Mutex::new(Receiver::default()));
    let http = serve(receiver.clone(), None).await;
    let es = |name: &str, start: &str| json!({ "name": name, "kind": "elasticsearch", "url": format!("http://127.0.0.1:{http}"), "user": "elastic", "password_secret": "es-password", "index": "i", "start": start });
    let mut h = Harness::start(dir.path(), json!({ "destinations": [] }), &[("es-password", "es-password")]).await;
    wait_until(10, "the component to be ready", async || h.node.health.ready()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(h.node.health.ready(), "with no destinations the component stays up: {:?}", h.node.health.snapshot());
    let before = h.publish(h.a, EventClass::NETWORK_ACTIVITY, 20, "old").await;
    h.stop().await;
    h.set_forward(json!({ "destinations": [es("from-now", "new"), es("from-oldest", "oldest")] }));
    h.run().await;
    // "new" is from the moment the destination starts: its cursor made.
    wait_until(10, "both cursors made", async || h.bus.cursors().len() == 2).await;
    let after = h.publish(h.a, EventClass::NETWORK_ACTIVITY, 10, "new").await;
    wait_until(30, "both destinations at the end", async || {
        let end = h.bus.end();
        ["from-now", "from-oldest"].iter().all(|n| h.status(n).is_some_and(|s| s.lag(end) == 0))
    })
    .await;
    assert_eq!(h.status("from-now").unwrap().sent, after.len() as u64, "new: only events from its start");
    assert_eq!(h.status("from-oldest").unwrap().sent, (before.len() + after.len()) as u64, "oldest: the log's whole");
    let cursors: Vec<String> = h.bus.cursors().into_iter().map(|(n, _)| n).collect();
    assert_eq!(cursors, ["forward.from-now", "forward.from-oldest"]);

    // Removed from the config: its cursor and status go, the other keeps its place.
    h.stop().await;
    h.set_forward(json!({ "destinations": [es("from-oldest", "oldest")] }));
    h.run().await;
    wait_until(10, "the removed cursor to go", async || h.bus.cursors().len() == 1).await;
    assert!(h.status("from-now").is_none());
    assert_eq!(h.bus.cursors()[0], ("forward.from-oldest".to_string(), h.bus.end()));
}

/// Split nodes: the indexing node of a JetStream partition forwards it (its cursor
/// named by stream and partition); an intake-only node forwards nothing and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_jetstream_the_indexing_node_forwards_its_partition() {
    use mamori_bus::jetstream::JetStreamOptions;
    let dir = tempfile::tempdir().unwrap();
    let Some(nats) = mamori_bus::testing::NatsServer::start(&dir.path().join("nats")) else { return };
    let receiver: Shared = Arc::new(Mutex::new(Receiver::default()));
    let http = serve(receiver.clone(), None).await;
    let forward = json!({ "destinations": [{ "name": "es", "kind": "elasticsearch", "url": format!("http://127.0.0.1:{http}"), "user": "elastic", "password_secret": "es-password", "index": "i", "start": "oldest" }] });
    let node = |k: Option<u32>, name: &str| {
        let events = mamori_store::events::EventStore::open(&dir.path().join(name).join("events")).unwrap();
        let js = JetStreamOptions { urls: vec![nats.url()], partitions: 1, index_partition: k, node: name.into(), ..Default::default() };
        mamori_bus::Bus::connect(events, mamori_bus::BusOptions::default(), js)
    };
    let (indexer_dir, intake_dir) = (dir.path().join("indexer"), dir.path().join("intake"));
    std::fs::create_dir_all(&indexer_dir).unwrap();
    std::fs::create_dir_all(&intake_dir).unwrap();
    let indexer = Harness::start_with(&indexer_dir, node(Some(0), "indexer").await.unwrap(), forward.clone(), &[("es-password", "es-password")]).await;
    let intake = Harness::start_with(&intake_dir, node(None, "intake").await.unwrap(), forward, &[("es-password", "es-password")]).await;
    // Tenants are made per node's store; events carry the indexer's tenant id.
    let ids = intake.publish(indexer.a, EventClass::NETWORK_ACTIVITY, 700, "js").await;
    wait_until(60, "the indexing node to forward the partition", async || receiver.lock().unwrap().docs.len() >= ids.len()).await;
    assert!(ids.iter().all(|i| receiver.lock().unwrap().docs.contains_key(i)));
    let cursors = indexer.bus.cursors();
    assert_eq!(cursors.len(), 1);
    assert!(indexer_dir.join("events/log/cursors/forward.es@MAMORI_EVENTS_0").is_file(), "the cursor is the partition's");
    assert!(intake.bus.cursors().is_empty(), "an intake node keeps no cursor");
    let notices: Vec<String> = intake.node.health.snapshot().iter().flat_map(|c| c.notices.iter().map(|n| n.code.clone())).collect();
    assert!(notices.contains(&"forward_no_log".to_string()), "{notices:?}");
}
