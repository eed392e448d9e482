//! The binary's basics: first start and the demo, `--no-demo`, admin commands, config
//! checks, signals, component-only nodes, PostgreSQL.

use crate::support::*;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn first_start_seeds_the_demo_and_prints_the_first_login() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&[], &data);
    let banner = server.stdout.join("\n");
    assert!(banner.contains(&format!("http://127.0.0.1:{}/", server.port)), "{banner}");
    let admin_pw = one_time_password(&server.stdout, "admin");
    assert!(admin_pw.len() >= 12);
    // A demo tenant user logs in with the printed password and must change it first.
    let pw = one_time_password(&server.stdout, "sakuragawa-user");
    let (status, head, _) =
        server.http("POST", "/login", &[("Content-Type", "application/x-www-form-urlencoded")], &format!("username=sakuragawa-user&password={pw}"));
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /login/password"), "{head}");
    // The data directory is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }
    // The second start of the same data seeds nothing and prints no password.
    drop(server);
    let again = start(&[], &data);
    assert!(!again.stdout.join("\n").contains("one-time password"), "{:?}", again.stdout);
    let (code, out) = mamori(&data, &["user", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("sakuragawa-admin") && out.contains("operator_admin"), "{out}");
}

#[test]
fn no_demo_installs_only_the_first_operator() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&["--no-demo"], &data);
    assert!(server.stdout.join("\n").contains("first login: admin"));
    drop(server);
    let (_, out) = mamori(&data, &["tenant", "export"]);
    assert_eq!(out.trim_start_matches('\u{feff}').lines().count(), 1, "only the header: {out}");
}

#[test]
fn audit_verify_detects_a_modified_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(start(&[], &data));
    let (code, out) = mamori(&data, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
    // Someone with access to the database file rewrites history.
    let db = rusqlite::Connection::open(data.join("mamori.db")).unwrap();
    assert!(db.execute("UPDATE audit_log SET actor_name = 'mallory' WHERE seq = 3", []).is_err(), "the trigger refuses updates");
    db.execute_batch("DROP TRIGGER audit_log_no_update").unwrap();
    let seq: i64 = db.query_row("SELECT seq FROM audit_log WHERE action = 'tenant.create' AND after_doc LIKE '%桜川市%'", [], |r| r.get(0)).unwrap();
    let changed = db.execute("UPDATE audit_log SET after_doc = replace(after_doc, '桜川市', '偽市') WHERE seq = ?1", [seq]).unwrap();
    assert_eq!(changed, 1, "entry {seq} records the creation of 桜川市");
    drop(db);
    let (code, out) = mamori(&data, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("BROKEN at entry {seq}")), "{out}");
}

#[test]
fn admin_commands_work_before_the_console_is_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(start(&["--no-demo"], &data));
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "code,name,kana,kind\n390003,サンプル県,サンプルケン,prefecture\n392910,桜川市,さくらがわし,city\n").unwrap();
    let (code, out) = mamori(&data, &["tenant", "import", csv.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = mamori(&data, &["user", "create", "--username", "clerk1", "--role", "tenant_user", "--tenant", "392910"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("one-time password:"));
    let (code, out) = mamori(&data, &["user", "create", "--username", "clerk2", "--role", "tenant_user"]);
    assert_ne!(code, 0);
    assert!(out.contains("--tenant"), "{out}");
    std::fs::write(&csv, "code,name,kana,kind\n392911,壊れ市,コワレシ,city\n").unwrap();
    let (code, out) = mamori(&data, &["tenant", "import", csv.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(out.contains("検査数字"), "{out}");
    for args in
        [vec!["user", "unlock", "clerk1"], vec!["user", "reset-password", "clerk1"], vec!["user", "reset-totp", "admin"], vec!["migrate"], vec!["version"]]
    {
        let (code, out) = mamori(&data, &args);
        assert_eq!(code, 0, "{args:?}: {out}");
    }
    // An API token for automation: printed once, bounded by the account's role.
    let (code, out) = mamori(&data, &["token", "create", "--user", "clerk1", "--name", "SIEM 連携", "--scopes", "events:read"]);
    assert_ne!(code, 0, "no token that could not work: the password is still the one-time one");
    assert!(out.contains("must set its password first"), "{out}");
    // As if the person had logged in and set a password.
    rusqlite::Connection::open(data.join("mamori.db")).unwrap().execute("UPDATE users SET must_change_password = 0 WHERE username = 'clerk1'", []).unwrap();
    let (code, out) = mamori(&data, &["token", "create", "--user", "clerk1", "--name", "SIEM 連携", "--scopes", "users:write"]);
    assert_ne!(code, 0);
    assert!(out.contains("exceeds the role"), "{out}");
    let out = std::process::Command::new(BIN)
        .args([
            "--data",
            data.to_str().unwrap(),
            "token",
            "create",
            "--user",
            "clerk1",
            "--name",
            "SIEM 連携",
            "--scopes",
            "events:read,monitors:read",
            "--days",
            "30",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("mmr_") && !token.contains('\n'), "only the token on standard output: {token}");
    let server = start(&["--no-demo"], &data);
    let bearer = format!("Bearer {token}");
    let (status, _, body) = server.http("GET", "/api/v1/me", &[("authorization", &bearer)], "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("clerk1"), "{body}");
    drop(server);
    let (code, out) = mamori(&data, &["audit", "export"]);
    assert_eq!(code, 0);
    assert!(out.contains("cli:") && out.contains("tenant.create"), "the CLI's changes are audited: {out}");
    assert!(out.contains("token.create") && !out.contains(&token[4..]), "the token's creation is audited, its secret is not: {out}");
}

#[test]
fn init_writes_a_config_that_serve_accepts_and_typos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mamori.toml");
    let (code, _) = mamori(dir.path(), &["init", "--path", cfg.to_str().unwrap()]);
    assert_eq!(code, 0);
    let (code, out) = mamori(dir.path(), &["init", "--path", cfg.to_str().unwrap()]);
    assert_ne!(code, 0, "no silent overwrite: {out}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("[server]") && text.contains("サンプル県"));
    std::fs::write(&cfg, text.replace("listen =", "listn =")).unwrap();
    let out = Command::new(BIN).args(["--config", cfg.to_str().unwrap(), "serve"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listn"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN).args(["serve", "--only", "nonesuch"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown part 'nonesuch'"));
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&["--no-demo"], &dir.path().join("data"));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_component_node_serves_health_without_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&["--only", "retention", "--no-demo"], &dir.path().join("data"));
    assert_eq!(server.http("GET", "/healthz", &[], "").0, 200);
    assert_eq!(server.http("GET", "/login", &[], "").0, 404);
}

#[test]
fn postgres_is_a_drop_in_config_store() {
    let Some(url) = fresh_postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(start_with(&data, Opts { database_url: Some(&url), ..Default::default() }));
    assert!(!data.join("mamori.db").exists(), "nothing written to SQLite");
    let (code, out) = mamori(&data, &["--database-url", &url, "audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"));
    let (code, out) = mamori(&data, &["--database-url", &url, "user", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("sakuragawa-admin"), "{out}");
}
