//! Maintenance vendors (保守業者, F33) with the real binary: made by the command line for
//! named municipalities until a date; the account works until then, and past it a
//! correct password gets a plain refusal over the console's login.

use crate::support::*;

fn login(server: &Server, user: &str, password: &str) -> (u16, String, String) {
    server.http("POST", "/login", &[("Content-Type", "application/x-www-form-urlencoded")], &format!("username={user}&password={password}"))
}

#[test]
fn f33_a_vendor_made_by_the_cli_works_until_its_end_and_is_refused_after() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&[], &data);
    // Two of the demo's towns; a vendor needs an end date, one in the future.
    let code = |five: &str| mamori_core::LocalGovCode::from_five(five).unwrap().to_string();
    let (one, both) = (code("39291"), format!("{},{}", code("39291"), code("39292")));
    let (code, out) = mamori(&data, &["user", "create", "--username", "vendor-x", "--role", "maintenance_vendor", "--tenant", &one]);
    assert_ne!(code, 0);
    assert!(out.contains("--expires"), "{out}");
    let (code, out) = mamori(&data, &["user", "create", "--username", "vendor-x", "--role", "maintenance_vendor", "--tenant", &one, "--expires", "2020-01-01"]);
    assert_ne!(code, 0);
    assert!(out.contains("the expiry must not be in the past") || out.contains("今日以降"), "{out}");
    let (code, out) =
        mamori(&data, &["user", "create", "--username", "vendor-x", "--role", "maintenance_vendor", "--tenant", &both, "--expires", "2199-03-31"]);
    assert_eq!(code, 0, "{out}");
    let password = out.lines().find_map(|l| l.strip_prefix("one-time password: ")).unwrap().trim().to_string();
    let (code, list) = mamori(&data, &["user", "list"]);
    assert_eq!(code, 0);
    assert!(list.contains("vendor-x") && list.contains("maintenance_vendor"), "{list}");

    // Until its end, the password leads on to the second factor, which a vendor must use.
    let (status, head, _) = login(&server, "vendor-x", &password);
    assert_eq!(status, 303, "{head}");
    assert!(head.to_ascii_lowercase().contains("location: /login/enroll"), "{head}");

    // The contract ends (an operator moves the date; here, straight in the database).
    rusqlite::Connection::open(data.join("mamori.db")).unwrap().execute("UPDATE users SET expires_at = 1 WHERE username = 'vendor-x'", []).unwrap();
    let (status, _, page) = login(&server, "vendor-x", &password);
    assert_eq!(status, 403);
    assert!(page.contains("有効期限") && page.contains("ログインできません"), "{page}");
    let (code, audit) = mamori(&data, &["audit", "export"]);
    assert_eq!(code, 0);
    assert!(audit.contains("access.grant") && audit.contains("cli:"), "each command's grant is audited");
}
