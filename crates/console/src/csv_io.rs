//! CSV import and export of tenants, and CSV export of the audit log.
//!
//! Tenant CSV columns (header row required, UTF-8, a BOM is accepted and written so
//! Excel shows Japanese correctly):
//!
//! `code,name,kana,kind,separation,network_ranges,mail_domains,fqdns,services,contact_name,contact_department,contact_email,contact_phone,other_contacts,notes`
//!
//! - `separation`: the network separation model (`alpha`, `alpha_prime`, `beta`,
//!   `beta_prime`, or α, α′, β, β′); empty is α.
//! - `network_ranges`: CIDR ranges separated by spaces, each with `@segment` when it is
//!   not on the default segment.
//! - `mail_domains`, `fqdns`: domain names separated by spaces.
//! - `services`: catalog ids separated by spaces, each with an optional quantity
//!   (`F41:2 F43`).
//! - `other_contacts`: further contacts separated by `;`, each `name|department|email|phone`.
//!
//! Import checks every row and reports every problem with its row number before
//! anything is written; then all rows are applied in one transaction.
//!
//! Requirements: bulk registration of member organizations and their subscriptions
//! (F30–F51).

use mamori_core::{CheckedTenant, Contact, NewTenant, Problem, Problems, Tenant};
use mamori_store::AuditEntry;
use std::collections::BTreeMap;

/// Columns of the tenant CSV, in order.
pub const TENANT_COLUMNS: [&str; 15] = [
    "code",
    "name",
    "kana",
    "kind",
    "separation",
    "network_ranges",
    "mail_domains",
    "fqdns",
    "services",
    "contact_name",
    "contact_department",
    "contact_email",
    "contact_phone",
    "other_contacts",
    "notes",
];

/// Most rows accepted in one import.
pub const MAX_ROWS: usize = 5000;

const BOM: &str = "\u{feff}";

use mamori_web::table::{FORMULA_START, csv_cell as cell};

/// Undoes [`cell`] on import, so an export re-imports unchanged.
fn uncell(s: &str) -> String {
    match s.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_START) => rest.to_string(),
        _ => s.to_string(),
    }
}

/// Writes tenants as CSV.
pub fn export_tenants(tenants: &[Tenant]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(TENANT_COLUMNS);
    for t in tenants {
        let primary = t.contacts.first().cloned().unwrap_or_default();
        let others = t.contacts.iter().skip(1).map(|c| format!("{}|{}|{}|{}", c.name, c.department, c.email, c.phone)).collect::<Vec<_>>().join(";");
        let services = t.services.iter().map(|(k, q)| if *q == 1 { k.clone() } else { format!("{k}:{q}") }).collect::<Vec<_>>().join(" ");
        let joined = |items: &mut dyn Iterator<Item = String>| items.collect::<Vec<_>>().join(" ");
        let ranges = joined(&mut t.network_ranges.iter().map(ToString::to_string));
        let mail = joined(&mut t.mail_domains.iter().map(ToString::to_string));
        let fqdns = joined(&mut t.fqdns.iter().map(ToString::to_string));
        let _ = w.write_record(
            [
                t.code.to_string().as_str(),
                &t.name,
                &t.kana,
                t.kind.as_str(),
                t.separation.as_str(),
                &ranges,
                &mail,
                &fqdns,
                &services,
                &primary.name,
                &primary.department,
                &primary.email,
                &primary.phone,
                &others,
                &t.notes,
            ]
            .map(cell),
        );
    }
    let body = w.into_inner().unwrap_or_default();
    format!("{BOM}{}", String::from_utf8_lossy(&body))
}

fn row_problem(row: usize, ja: String, en: String) -> Problem {
    Problem::new(format!("row {row}"), "csv", format!("{row}行目: {ja}"), format!("row {row}: {en}"))
}

/// Parses and checks a tenant CSV; returns every row checked, or every problem found.
pub fn import_tenants(bytes: &[u8]) -> Result<Vec<CheckedTenant>, Problems> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(
            Problem::new("file", "not_utf8", "CSV ファイルは UTF-8 で保存してください（Excel では「CSV UTF-8」形式）", "the CSV file must be UTF-8").into()
        );
    };
    let text = text.strip_prefix(BOM).unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Problem::new("file", "empty", "CSV ファイルが空です", "the CSV file is empty").into());
    }
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect::<Vec<_>>(),
        Err(e) => return Err(Problem::new("file", "bad_header", format!("見出し行を読めません: {e}"), format!("cannot read the header row: {e}")).into()),
    };
    let missing: Vec<_> = ["code", "name", "kana", "kind"].into_iter().filter(|c| !headers.iter().any(|h| h == c)).collect();
    let unknown: Vec<_> = headers.iter().filter(|h| !TENANT_COLUMNS.contains(&h.as_str())).cloned().collect();
    let mut problems = Problems::default();
    if !missing.is_empty() {
        problems.push(Problem::new(
            "file",
            "missing_column",
            format!("必須の列がありません: {}", missing.join(", ")),
            format!("required columns missing: {}", missing.join(", ")),
        ));
    }
    if !unknown.is_empty() {
        problems.push(Problem::new(
            "file",
            "unknown_column",
            format!("不明な列があります: {}", unknown.join(", ")),
            format!("unknown columns: {}", unknown.join(", ")),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let col = |rec: &csv::StringRecord, name: &str| -> String { uncell(headers.iter().position(|h| h == name).and_then(|i| rec.get(i)).unwrap_or("").trim()) };
    let mut out = Vec::new();
    let mut seen_codes: BTreeMap<String, usize> = BTreeMap::new();
    for (i, rec) in reader.records().enumerate() {
        let row = i + 2;
        if i >= MAX_ROWS {
            problems.push(row_problem(row, format!("行数が多すぎます（{MAX_ROWS}行まで）"), format!("too many rows (at most {MAX_ROWS})")));
            break;
        }
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(row_problem(row, format!("CSV として読めません（{e}）"), format!("not valid CSV ({e})")));
                continue;
            }
        };
        let mut services = BTreeMap::new();
        for item in col(&rec, "services").split_whitespace() {
            let (id, qty) = item.split_once(':').unwrap_or((item, "1"));
            match qty.parse::<u32>() {
                Ok(q) => {
                    services.insert(id.to_ascii_uppercase(), q);
                }
                Err(_) => problems.push(row_problem(
                    row,
                    format!("サービス「{item}」の数量が数字ではありません"),
                    format!("quantity of service '{item}' is not a number"),
                )),
            }
        }
        let mut contacts = vec![Contact {
            name: col(&rec, "contact_name"),
            department: col(&rec, "contact_department"),
            email: col(&rec, "contact_email"),
            phone: col(&rec, "contact_phone"),
        }];
        for c in col(&rec, "other_contacts").split(';').map(str::trim).filter(|c| !c.is_empty()) {
            let f: Vec<&str> = c.split('|').map(str::trim).collect();
            contacts.push(Contact {
                name: f.first().unwrap_or(&"").to_string(),
                department: f.get(1).unwrap_or(&"").to_string(),
                email: f.get(2).unwrap_or(&"").to_string(),
                phone: f.get(3).unwrap_or(&"").to_string(),
            });
        }
        let input = NewTenant {
            code: col(&rec, "code"),
            name: col(&rec, "name"),
            kana: col(&rec, "kana"),
            kind: col(&rec, "kind"),
            contacts,
            network_ranges: col(&rec, "network_ranges").split_whitespace().map(str::to_string).collect(),
            separation: col(&rec, "separation"),
            mail_domains: col(&rec, "mail_domains").split_whitespace().map(str::to_string).collect(),
            fqdns: col(&rec, "fqdns").split_whitespace().map(str::to_string).collect(),
            services,
            notes: col(&rec, "notes"),
        };
        if let Some(first) = seen_codes.insert(input.code.clone(), row) {
            problems.push(row_problem(
                row,
                format!("団体コード {} は{first}行目と重複しています", input.code),
                format!("code {} repeats row {first}", input.code),
            ));
        }
        match input.check() {
            Ok(t) => out.push(t),
            Err(ps) => {
                for p in ps.0 {
                    problems.push(Problem {
                        field: format!("row {row}.{}", p.field),
                        code: p.code,
                        ja: format!("{row}行目: {}", p.ja),
                        en: format!("row {row}: {}", p.en),
                    });
                }
            }
        }
    }
    if out.is_empty() && problems.is_empty() {
        problems.push(Problem::new("file", "no_rows", "取り込む行がありません", "there are no rows to import"));
    }
    problems.into_result(out)
}

/// Writes audit entries as CSV (JST times beside the UTC ones).
pub fn export_audit(entries: &[AuditEntry]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "seq",
        "time_utc",
        "time_jst",
        "actor_kind",
        "actor_name",
        "source_ip",
        "tenant_id",
        "action",
        "target_kind",
        "target_id",
        "before",
        "after",
        "prev_hash",
        "hash",
    ]);
    for e in entries {
        let _ = w.write_record(
            [
                e.seq.to_string().as_str(),
                &mamori_core::time::format_rfc3339(e.time),
                &mamori_core::time::format_jst(e.time),
                &e.actor_kind,
                &e.actor_name,
                e.source_ip.as_deref().unwrap_or(""),
                e.tenant_id.as_deref().unwrap_or(""),
                &e.action,
                &e.target_kind,
                e.target_id.as_deref().unwrap_or(""),
                &e.before.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                &e.after.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                &e.prev_hash,
                &e.hash,
            ]
            .map(cell),
        );
    }
    format!("{BOM}{}", String::from_utf8_lossy(&w.into_inner().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "code,name,kana,kind,network_ranges,services,contact_name,contact_department,contact_email,contact_phone,other_contacts,notes\n\
131016,千代田区,チヨダク,ward,192.0.2.0/24 2001:db8::/48,F41:2 F43,山田太郎,情報政策課,yamada@example.lg.jp,03-1234-5678,鈴木花子|総務課|suzuki@example.lg.jp|03-0000-0000,備考\n";

    #[test]
    fn good_rows_import_and_export_round_trips() {
        let rows = import_tenants(format!("\u{feff}{GOOD}").as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].contacts.len(), 2);
        assert_eq!(rows[0].services.get("F41"), Some(&2));
        let t = rows[0].clone().into_tenant(mamori_core::TenantId::new(), 0, 0);
        let again = import_tenants(export_tenants(&[t]).as_bytes()).unwrap();
        assert_eq!(again, rows);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_number() {
        let csv = "code,name,kana,kind\n131016,千代田区,チヨダク,ward\n131017,中央区,チュウオウク,ward\n131016,重複,ジュウフク,ward\n\"unterminated,x\n";
        let p = import_tenants(csv.as_bytes()).unwrap_err();
        let text = p.0.iter().map(|p| p.ja.clone()).collect::<Vec<_>>().join("\n");
        assert!(text.contains("3行目") && text.contains("検査数字"), "{text}");
        assert!(text.contains("4行目") && text.contains("重複"), "{text}");
    }

    #[test]
    fn formulas_are_neutralized_on_export_and_restored_on_import() {
        let csv = "code,name,kana,kind,contact_name,contact_phone,notes\n131016,千代田区,チヨダク,ward,\"=HYPERLINK(\"\"http://evil/\"\",\"\"x\"\")\",+81-3-0000-0000,'quoted\n";
        let rows = import_tenants(csv.as_bytes()).unwrap();
        let t = rows[0].clone().into_tenant(mamori_core::TenantId::new(), 0, 0);
        let out = export_tenants(&[t]);
        assert!(out.contains("\"'=HYPERLINK(") && out.contains("'+81-3"), "{out}");
        assert!(!out.contains(",=") && !out.contains(",+"), "no cell starts with a formula character: {out}");
        assert_eq!(import_tenants(out.as_bytes()).unwrap(), rows, "the export re-imports unchanged");
        assert_eq!(rows[0].notes, "'quoted");
    }

    #[test]
    fn hostile_files_get_clear_errors() {
        assert_eq!(import_tenants(b"\xff\xfe\x00garbage").unwrap_err().0[0].code, "not_utf8");
        assert_eq!(import_tenants(b"").unwrap_err().0[0].code, "empty");
        assert_eq!(import_tenants(b"name,kana\nx,y\n").unwrap_err().0[0].code, "missing_column");
        assert_eq!(import_tenants(b"code,name,kana,kind,evil\n").unwrap_err().0[0].code, "unknown_column");
        assert_eq!(import_tenants(b"code,name,kana,kind\n").unwrap_err().0[0].code, "no_rows");
        let many = format!("code,name,kana,kind\n{}", "131016,a,ア,ward\n".repeat(MAX_ROWS + 5));
        assert!(import_tenants(many.as_bytes()).is_err());
    }
}
