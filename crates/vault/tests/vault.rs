//! Secrets and blobs at rest, on SQLite and PostgreSQL: sealed, bound, audited, rotated;
//! blobs deduplicated, isolated, collected, and refused when altered.

use base64::Engine;
use mamori_core::{Actor, TenantId};
use mamori_store::CrossTenant;
use mamori_store::{AuditFilter, BlobRef, Store};
use mamori_vault::{BlobError, Blobs, Keyring, LocalBackend, SecretKind, Secrets};
use std::path::Path;
use std::sync::Arc;

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Store, CrossTenant, std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    for (name, url) in mamori_store::testing::backends(dir.path()).await {
        eprintln!("backend: {name}");
        let (store, authority) = Store::open(&url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let work = dir.path().join(name);
        std::fs::create_dir_all(&work).unwrap();
        f(store.clone(), grant, work).await;
        store.close().await;
    }
}

async fn town(store: &Store, grant: &CrossTenant, five: &str) -> TenantId {
    mamori_store::testing::town(store, grant, five).await
}

fn ring(text: &str) -> Arc<Keyring> {
    Arc::new(Keyring::parse(text).unwrap())
}

fn key_line(id: &str, byte: u8) -> String {
    format!("{id} {}", base64::engine::general_purpose::STANDARD.encode([byte; 32]))
}

async fn all_text(store: &Store) -> String {
    use sqlx::Row;
    let mut text = String::new();
    for table in ["secrets", "audit_log"] {
        for r in sqlx::query(&format!("SELECT * FROM {table}")).fetch_all(store.db_pool()).await.unwrap() {
            for i in 0..r.len() {
                if let Ok(Some(s)) = r.try_get::<Option<String>, _>(i) {
                    text.push_str(&s);
                    text.push('\n');
                }
            }
        }
    }
    text
}

#[tokio::test]
async fn secrets_are_sealed_scoped_audited_and_rotated() {
    each_backend(|store, grant, _| async move {
        let a = town(&store, &grant, "39301").await;
        let b = town(&store, &grant, "39302").await;
        let secrets = Secrets::new(store.clone(), ring(&key_line("k1", 1)));
        let op = grant.scope();
        let actor = Actor::system();
        const VALUE: &str = "Sakura-LDAP-pass-7731";
        secrets.put(&grant.tenant(a), &actor, Some(a), "ldap/ad01", SecretKind::Password, VALUE.as_bytes()).await.unwrap();
        secrets.put(&op, &actor, None, "smtp/relay", SecretKind::Password, b"platform-relay-secret").await.unwrap();
        // A tenant can neither write another's secret nor the platform's.
        assert!(secrets.put(&grant.tenant(a), &actor, Some(b), "ldap/ad01", SecretKind::Password, b"x").await.is_err());
        assert!(secrets.put(&grant.tenant(a), &actor, None, "smtp/relay", SecretKind::Password, b"x").await.is_err());
        assert!(secrets.put(&op, &actor, None, "Bad Name", SecretKind::Password, b"x").await.is_err());
        // Listing shows names, never values; a tenant lists only its own.
        let own = secrets.list(&grant.tenant(a)).await.unwrap();
        assert_eq!(own.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["ldap/ad01"]);
        assert!(secrets.list(&grant.tenant(b)).await.unwrap().is_empty());
        assert!(!serde_json::to_string(&secrets.list(&op).await.unwrap()).unwrap().contains(VALUE));

        let value = secrets.get(&grant, Some(a), "ldap/ad01").await.unwrap().unwrap();
        assert_eq!(value.expose_str(), Some(VALUE));
        assert_eq!(format!("{value:?}"), "SecretValue(***)");
        assert!(secrets.get(&grant, Some(b), "ldap/ad01").await.unwrap().is_none(), "bound to its tenant");
        // Neither the rows nor the audit log hold the value; the read is audited.
        let text = all_text(&store).await;
        assert!(!text.contains(VALUE) && !text.contains("platform-relay-secret"), "a value is stored or audited in clear");
        let log = store.list_audit(&op, &AuditFilter::default(), None, 100).await.unwrap();
        assert!(log.iter().any(|e| e.action == "secret.read" && e.target_id.as_deref() == Some("ldap/ad01")), "{log:?}");
        assert!(log.iter().any(|e| e.action == "secret.create"));

        // A sealed value moved to another row does not open there.
        sqlx::query("UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'smtp/relay') WHERE name = 'ldap/ad01'")
            .execute(store.db_pool())
            .await
            .unwrap();
        assert!(secrets.get(&grant, Some(a), "ldap/ad01").await.is_err());
        secrets.put(&grant.tenant(a), &actor, Some(a), "ldap/ad01", SecretKind::Password, VALUE.as_bytes()).await.unwrap();

        // Rotation: a new key first, the old one kept to read; rotate; then the old one goes.
        let both = Secrets::new(store.clone(), ring(&format!("{}\n{}", key_line("k2", 2), key_line("k1", 1))));
        assert_eq!(both.get(&grant, Some(a), "ldap/ad01").await.unwrap().unwrap().expose_str(), Some(VALUE));
        assert_eq!(both.rotate(&grant).await.unwrap(), 2);
        assert_eq!(both.rotate(&grant).await.unwrap(), 0, "nothing left under the old key");
        let only_new = Secrets::new(store.clone(), ring(&key_line("k2", 2)));
        assert_eq!(only_new.get(&grant, Some(a), "ldap/ad01").await.unwrap().unwrap().expose_str(), Some(VALUE));
        assert!(only_new.list(&op).await.unwrap().iter().all(|s| s.key_id == "k2"));
        let old_only = Secrets::new(store.clone(), ring(&key_line("k1", 1)));
        assert!(old_only.get(&grant, None, "smtp/relay").await.is_err(), "the retired key opens nothing");

        secrets.delete(&grant.tenant(a), &actor, Some(a), "ldap/ad01").await.unwrap();
        assert!(only_new.get(&grant, Some(a), "ldap/ad01").await.unwrap().is_none());
    })
    .await;
}

fn objects(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "staging") {
                    stack.push(p);
                }
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn content(len: usize) -> Vec<u8> {
    // Compressible text with a random-looking tail, over several frames.
    let mut v: Vec<u8> = "件名: 見積書の送付について\r\n".repeat(len / 80).into_bytes();
    let mut x = 0x9e3779b97f4a7c15u64;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v.truncate(len);
    v
}

#[tokio::test]
async fn f13_f30_blobs_are_deduplicated_isolated_collected_and_refused_when_altered() {
    each_backend(|store, grant, work| async move {
        let a = town(&store, &grant, "39301").await;
        let b = town(&store, &grant, "39302").await;
        let keys = ring(&key_line("k1", 1));
        let secrets = Secrets::new(store.clone(), keys.clone());
        let root = work.join("blobs");
        let blobs = Blobs::open(store.clone(), &grant, keys.clone(), &secrets, Arc::new(LocalBackend::open(&root).unwrap()), 16 * 1024 * 1024).await.unwrap();
        let mail = content(2 * 1024 * 1024 + 12345);
        let held = |owner: &str, tenant| BlobRef { owner: owner.into(), tenant: Some(tenant), hold_until: 0, expires_at: None };
        let s1 = blobs.put_bytes(&grant.tenant(a), &held("mail:q:1", a), &mail).await.unwrap();
        assert_eq!(s1.size, mail.len() as u64);
        assert!(s1.stored_size < s1.size, "compressed: {} of {}", s1.stored_size, s1.size);
        let expected = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &mail).as_ref());
        assert_eq!(s1.sha256, expected);
        // The same attachment for the other town is stored once.
        let s2 = blobs.put_bytes(&grant.tenant(b), &held("mail:q:2", b), &mail).await.unwrap();
        assert_eq!(s2.sha256, s1.sha256);
        let files = objects(&root);
        assert_eq!(files.len(), 1, "{files:?}");
        // The object is neither plain, nor named by its address.
        let raw = std::fs::read(&files[0]).unwrap();
        assert!(!raw.windows(20).any(|w| w == &mail[..20]));
        assert!(!files[0].to_string_lossy().contains(&s1.sha256));

        assert_eq!(blobs.get_bytes(&grant.tenant(a), &s1.sha256, u64::MAX).await.unwrap(), mail);
        // A town sees only references of its own.
        assert_eq!(store.blob_refs(&grant.tenant(a), &s1.sha256).await.unwrap().len(), 1);
        let c = town(&store, &grant, "39303").await;
        assert!(matches!(blobs.open_blob(&grant.tenant(c), &s1.sha256).await, Err(BlobError::NotFound)));
        assert!(matches!(blobs.get_bytes(&grant.tenant(a), &s1.sha256, 1000).await, Err(BlobError::TooLarge(1000))));

        // Released by one, the blob stays for the other; released by both, it is collected.
        assert!(store.release_blob(&grant.tenant(a), &s1.sha256, "mail:q:1").await.unwrap());
        assert_eq!(blobs.collect(&grant, 100).await.unwrap(), (0, 0));
        assert!(blobs.get_bytes(&grant.tenant(b), &s1.sha256, u64::MAX).await.is_ok());
        assert!(store.release_blob(&grant.tenant(b), &s1.sha256, "mail:q:2").await.unwrap());
        assert_eq!(blobs.collect(&grant, 100).await.unwrap(), (0, 1));
        assert!(objects(&root).is_empty());

        // Evidence on hold cannot be released; a quarantine reference expires by itself.
        let now = mamori_core::time::now_ms();
        let evidence = blobs
            .put_bytes(&grant.scope(), &BlobRef { owner: "case:1".into(), tenant: Some(a), hold_until: now + 86_400_000, expires_at: None }, b"evidence")
            .await
            .unwrap();
        let e = store.release_blob(&grant.tenant(a), &evidence.sha256, "case:1").await.unwrap_err();
        assert!(e.to_string().contains("on hold"), "{e}");
        let q =
            blobs.put_bytes(&grant.tenant(a), &BlobRef { owner: "q:9".into(), tenant: Some(a), hold_until: 0, expires_at: Some(now - 1) }, b"").await.unwrap();
        assert_eq!(blobs.get_bytes(&grant.tenant(a), &q.sha256, 10).await.unwrap(), b"", "an empty blob");
        assert_eq!(blobs.collect(&grant, 100).await.unwrap(), (1, 1));
        assert_eq!(objects(&root).len(), 1, "the evidence stays");

        // An altered or truncated object is refused, never returned as content.
        let big = blobs.put_bytes(&grant.tenant(a), &held("f:1", a), &mail).await.unwrap();
        let path = objects(&root).into_iter().find(|p| std::fs::metadata(p).unwrap().len() > 1000).unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut bent = good.clone();
        let at = bent.len() / 2;
        bent[at] ^= 0x40;
        std::fs::write(&path, &bent).unwrap();
        assert!(matches!(blobs.get_bytes(&grant.tenant(a), &big.sha256, u64::MAX).await, Err(BlobError::Damaged(..))));
        std::fs::write(&path, &good[..good.len() - 100]).unwrap();
        assert!(matches!(blobs.get_bytes(&grant.tenant(a), &big.sha256, u64::MAX).await, Err(BlobError::Damaged(..))));
        std::fs::write(&path, &good).unwrap();
        // Too large a blob is refused and leaves nothing staged.
        let small = Blobs::open(store.clone(), &grant, keys.clone(), &secrets, Arc::new(LocalBackend::open(&root).unwrap()), 1000).await.unwrap();
        assert!(matches!(small.put_bytes(&grant.tenant(a), &held("f:2", a), &mail).await, Err(BlobError::TooLarge(1000))));
        assert_eq!(std::fs::read_dir(root.join("staging")).unwrap().count(), 0);

        // Rotation re-seals blobs under the new key; the old key can then go.
        let both = ring(&format!("{}\n{}", key_line("k2", 2), key_line("k1", 1)));
        let secrets2 = Secrets::new(store.clone(), both.clone());
        assert_eq!(secrets2.rotate(&grant).await.unwrap(), 1, "the naming key");
        let blobs2 = Blobs::open(store.clone(), &grant, both, &secrets2, Arc::new(LocalBackend::open(&root).unwrap()), 1 << 30).await.unwrap();
        assert_eq!(blobs2.rotate(&grant, 100).await.unwrap(), 2);
        let new_only = ring(&key_line("k2", 2));
        let secrets3 = Secrets::new(store.clone(), new_only.clone());
        let blobs3 = Blobs::open(store.clone(), &grant, new_only, &secrets3, Arc::new(LocalBackend::open(&root).unwrap()), 1 << 30).await.unwrap();
        assert_eq!(blobs3.get_bytes(&grant.tenant(a), &big.sha256, u64::MAX).await.unwrap(), mail);
        assert_eq!(blobs3.get_bytes(&grant.tenant(a), &evidence.sha256, 100).await.unwrap(), b"evidence");
    })
    .await;
}

/// The S3-compatible test server of `scripts/test` (moto), with its bucket; None when
/// it is not running (outside CI only).
fn s3_server() -> Option<(String, String)> {
    match std::env::var("MAMORI_TEST_S3_URL") {
        Ok(url) if !url.is_empty() => Some((url, std::env::var("MAMORI_TEST_S3_BUCKET").unwrap_or_else(|_| "mamori-test".into()))),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("MAMORI_TEST_S3_URL is not set under CI: the S3 blob tests must run (scripts/test starts moto)");
            }
            eprintln!("note: MAMORI_TEST_S3_URL is not set; S3 blob tests skipped");
            None
        }
    }
}

fn s3_config(url: &str, bucket: &str, prefix: &str) -> mamori_vault::S3Config {
    mamori_vault::S3Config {
        endpoint: url.into(),
        bucket: bucket.into(),
        region: "us-east-1".into(),
        prefix: prefix.into(),
        access_key_id: "mamori-test".into(),
        secret_access_key: zeroize::Zeroizing::new(String::new()),
        timeout: std::time::Duration::from_secs(20),
    }
}

#[tokio::test]
async fn f13_f30_blobs_in_s3_compatible_storage_are_stored_in_parts_shared_collected_and_rotated() {
    let Some((url, bucket)) = s3_server() else { return };
    each_backend(|store, grant, work| {
        let (url, bucket) = (url.clone(), bucket.clone());
        async move {
            let a = town(&store, &grant, "39301").await;
            let b = town(&store, &grant, "39302").await;
            let keys = ring(&key_line("k1", 1));
            let prefix = format!("run-{}", uuid::Uuid::new_v4().simple());
            // The secret key comes from the secrets store when the environment has none;
            // without either, opening says what to set.
            let missing =
                mamori_vault::Vault::open_s3(store.clone(), &grant, keys.clone(), s3_config(&url, &bucket, &prefix), &work.join("staging"), 1 << 30).await;
            let Err(e) = missing else { panic!("opened without a secret key") };
            assert!(e.to_string().contains(mamori_vault::S3_SECRET_NAME), "{e}");
            let secrets = Secrets::new(store.clone(), keys.clone());
            secrets.put(&grant.scope(), grant.actor(), None, mamori_vault::S3_SECRET_NAME, SecretKind::Password, b"moto-accepts-any").await.unwrap();
            let vault = mamori_vault::Vault::open_s3(store.clone(), &grant, keys.clone(), s3_config(&url, &bucket, &prefix), &work.join("staging"), 1 << 30)
                .await
                .unwrap();
            let blobs = vault.blobs.clone();

            // 20 MiB: an upload of three parts; read back whole, for both towns, stored once.
            let file = content(20 * 1024 * 1024 + 777);
            let held = |owner: &str, tenant| BlobRef { owner: owner.into(), tenant: Some(tenant), hold_until: 0, expires_at: None };
            let s1 = blobs.put_bytes(&grant.tenant(a), &held("transfer:1", a), &file).await.unwrap();
            let s2 = blobs.put_bytes(&grant.tenant(b), &held("transfer:2", b), &file).await.unwrap();
            assert_eq!(s1, s2);
            assert_eq!(blobs.get_bytes(&grant.tenant(b), &s1.sha256, u64::MAX).await.unwrap(), file);
            assert_eq!(std::fs::read_dir(work.join("staging")).unwrap().count(), 0, "nothing left staged");
            let c = town(&store, &grant, "39303").await;
            assert!(matches!(blobs.open_blob(&grant.tenant(c), &s1.sha256).await, Err(BlobError::NotFound)));

            // Rotation re-seals the object in the bucket under the new key.
            let both = ring(&format!("{}\n{}", key_line("k2", 2), key_line("k1", 1)));
            let rotated =
                mamori_vault::Vault::open_s3(store.clone(), &grant, both, s3_config(&url, &bucket, &prefix), &work.join("staging"), 1 << 30).await.unwrap();
            assert_eq!(rotated.secrets.rotate(&grant).await.unwrap(), 2, "the naming key and the S3 key");
            assert_eq!(rotated.blobs.rotate(&grant, 100).await.unwrap(), 1);
            let new_only = ring(&key_line("k2", 2));
            let after =
                mamori_vault::Vault::open_s3(store.clone(), &grant, new_only, s3_config(&url, &bucket, &prefix), &work.join("staging"), 1 << 30).await.unwrap();
            assert_eq!(after.blobs.get_bytes(&grant.tenant(a), &s1.sha256, u64::MAX).await.unwrap(), file);

            // Released by both, the object is deleted from the bucket.
            for (t, owner) in [(a, "transfer:1"), (b, "transfer:2")] {
                assert!(store.release_blob(&grant.tenant(t), &s1.sha256, owner).await.unwrap());
            }
            assert_eq!(after.blobs.collect(&grant, 100).await.unwrap(), (0, 1));
            assert!(after.blobs.get_bytes(&grant.scope(), &s1.sha256, u64::MAX).await.is_err());
        }
    })
    .await;
}
