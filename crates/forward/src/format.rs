//! What a destination receives for one event: an RFC 5424 or CEF syslog message, a
//! Splunk HEC event, or an Elasticsearch bulk `create` action with its document.
//!
//! Every format carries the event's id (`metadata.uid`), so a receiver can drop the
//! copies that at-least-once delivery may repeat (Elasticsearch does: the id is the
//! document's `_id`, and a repeat is refused as a conflict, which counts as delivered).

use crate::config::{Destination, Format};
use mamori_core::Event;
use serde_json::{Value, json};
use std::fmt::Write;

/// What a format needs to know of the event's tenant.
#[derive(Clone, Debug, Default)]
pub struct TenantInfo {
    /// Local government code (empty when the tenant is not known here).
    pub code: String,
    /// Name, e.g. 桜川市.
    pub name: String,
}

/// The UTC date and time of a Unix ms time: RFC 3339 with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second(), t.millisecond())
}

/// RFC 5424 severity of an OCSF severity.
fn syslog_severity(severity_id: u8) -> u8 {
    match severity_id {
        0 | 1 => 6, // informational
        2 => 5,     // notice
        3 => 4,     // warning
        4 => 3,     // error
        5 => 2,     // critical
        _ => 1,     // alert (fatal)
    }
}

/// CEF severity (0-10) of an OCSF severity.
fn cef_severity(severity_id: u8) -> u8 {
    match severity_id {
        0 => 0,
        1 => 1,
        2 => 3,
        3 => 5,
        4 => 7,
        5 => 9,
        _ => 10,
    }
}

/// A header field of RFC 5424: printable ASCII without spaces, at most `max`, `-` when
/// empty.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if f.is_empty() { "-".into() } else { f }
}

/// A PARAM-VALUE of RFC 5424 structured data: `"`, `\` and `]` escaped.
fn sd_value(out: &mut String, v: &str) {
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The RFC 5424 header and structured data of an event, up to the message.
fn syslog_header(e: &Event, tenant: &TenantInfo, d: &Destination, host: &str) -> String {
    let pri = u16::from(d.facility) * 8 + u16::from(syslog_severity(e.severity.0));
    let app = if e.product.name.is_empty() { "mamori" } else { e.product.name.as_str() };
    let mut s = format!("<{pri}>1 {} {} {} - {} [{} tenant=\"", rfc3339(e.time), header_field(host, 255), header_field(app, 48), e.class.0, d.sd_id);
    sd_value(&mut s, &tenant.code);
    let _ = write!(s, "\" class_uid=\"{}\" severity_id=\"{}\" uid=\"{}\"", e.class.0, e.severity.0, e.id);
    if let Some(r) = e.received {
        let _ = write!(s, " logged_time=\"{}\"", rfc3339(r));
    }
    s.push_str("] ");
    s
}

/// A syslog message (RFC 5424 with the OCSF JSON as message, or CEF).
pub fn syslog(e: &Event, doc: &str, tenant: &TenantInfo, d: &Destination, host: &str) -> String {
    let mut s = syslog_header(e, tenant, d, host);
    match d.format {
        Format::Rfc5424 => s.push_str(doc),
        Format::Cef => cef(&mut s, e, tenant),
    }
    s
}

/// Escapes a CEF header field: `\` and `|`; line breaks become spaces.
fn cef_header(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Writes ` key=value` with a CEF extension value escaped: `\`, `=`, line breaks.
fn cef_ext(out: &mut String, key: &str, v: &str) {
    if v.is_empty() {
        return;
    }
    out.push(' ');
    out.push_str(key);
    out.push('=');
    for c in v.chars() {
        match c {
            '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Appends the CEF record of an event.
fn cef(out: &mut String, e: &Event, tenant: &TenantInfo) {
    out.push_str("CEF:0|");
    cef_header(out, if e.product.vendor_name.is_empty() { "Mamori" } else { &e.product.vendor_name });
    out.push('|');
    cef_header(out, if e.product.name.is_empty() { "mamori" } else { &e.product.name });
    out.push('|');
    cef_header(out, env!("CARGO_PKG_VERSION"));
    // The OCSF type: class and activity.
    let _ = write!(out, "|{}|", u64::from(e.class.0) * 100 + u64::from(e.activity_id));
    let name: String = e.message.chars().take(512).collect();
    cef_header(out, if name.is_empty() { e.class.en() } else { &name });
    let _ = write!(out, "|{}|", cef_severity(e.severity.0));
    let mut ext = String::new();
    cef_ext(&mut ext, "rt", &e.received.unwrap_or(e.time).to_string());
    cef_ext(&mut ext, "start", &e.time.to_string());
    cef_ext(&mut ext, "externalId", &e.id.to_string());
    cef_ext(&mut ext, "cat", e.class.en());
    if let Some(src) = &e.src {
        cef_ext(&mut ext, "src", src.ip.as_deref().unwrap_or(""));
        cef_ext(&mut ext, "spt", &src.port.map(|p| p.to_string()).unwrap_or_default());
        cef_ext(&mut ext, "shost", src.hostname.as_deref().unwrap_or(""));
    }
    if let Some(dst) = &e.dst {
        cef_ext(&mut ext, "dst", dst.ip.as_deref().unwrap_or(""));
        cef_ext(&mut ext, "dpt", &dst.port.map(|p| p.to_string()).unwrap_or_default());
        cef_ext(&mut ext, "dhost", dst.hostname.as_deref().unwrap_or(""));
    }
    cef_ext(&mut ext, "suser", e.user.as_deref().unwrap_or(""));
    if let Some(d) = e.disposition {
        cef_ext(&mut ext, "act", d.en());
    }
    cef_ext(&mut ext, "msg", &e.message);
    cef_ext(&mut ext, "cs1Label", "tenant");
    cef_ext(&mut ext, "cs1", &tenant.code);
    cef_ext(&mut ext, "cs2Label", "tenantName");
    cef_ext(&mut ext, "cs2", &tenant.name);
    out.push_str(ext.trim_start());
}

/// Frames a syslog message for TCP: octet counting (`LEN SP MSG`) or a line feed
/// after it (line breaks inside become spaces).
pub fn frame(msg: &str, framing: crate::config::Framing) -> Vec<u8> {
    match framing {
        crate::config::Framing::OctetCounting => format!("{} {msg}", msg.len()).into_bytes(),
        crate::config::Framing::Newline => {
            let mut b: Vec<u8> = msg.bytes().map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }).collect();
            b.push(b'\n');
            b
        }
    }
}

/// Fills an index template: `{tenant}`, `{class_uid}`, `{yyyy}`, `{MM}`, `{dd}`.
pub fn index_name(template: &str, e: &Event, tenant: &TenantInfo) -> String {
    if !template.contains('{') {
        return template.to_string();
    }
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.time) * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let code = if tenant.code.is_empty() { "unknown" } else { tenant.code.as_str() };
    template
        .replace("{tenant}", code)
        .replace("{class_uid}", &e.class.0.to_string())
        .replace("{yyyy}", &format!("{:04}", t.year()))
        .replace("{MM}", &format!("{:02}", u8::from(t.month())))
        .replace("{dd}", &format!("{:02}", t.day()))
}

/// One Splunk HEC event (`/services/collector/event`), a JSON object.
pub fn hec(e: &Event, doc: &str, tenant: &TenantInfo, d: &Destination, host: &str) -> String {
    let event: Value = serde_json::from_str(doc).unwrap_or(Value::String(doc.to_string()));
    let mut o = json!({
        "time": e.time as f64 / 1000.0,
        "host": host,
        "source": "mamori",
        "sourcetype": d.sourcetype,
        "event": event,
        "fields": { "tenant": tenant.code, "class_uid": e.class.0, "severity_id": e.severity.0, "uid": e.id.to_string() },
    });
    if !d.index.is_empty() {
        o["index"] = Value::String(index_name(&d.index, e, tenant));
    }
    o.to_string()
}

/// One Elasticsearch bulk `create` action and its document (two NDJSON lines): the
/// event id is the document id, and `@timestamp` is added for Kibana and OpenSearch
/// Dashboards.
pub fn bulk(e: &Event, doc: &str, tenant: &TenantInfo, d: &Destination) -> String {
    let action = json!({ "create": { "_index": index_name(&d.index, e, tenant), "_id": e.id.to_string() } });
    let mut body: Value = serde_json::from_str(doc).unwrap_or_else(|_| json!({ "message": doc }));
    if let Value::Object(m) = &mut body {
        m.insert("@timestamp".into(), Value::String(rfc3339(e.time)));
        m.entry("tenant_code").or_insert(Value::String(tenant.code.clone()));
    }
    format!("{action}\n{body}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Framing, Kind};
    use mamori_core::{Endpoint, EventClass, Severity, TenantId};

    fn event() -> Event {
        let mut e = Event::new(TenantId::new(), 1_733_300_000_123, EventClass::NETWORK_ACTIVITY, "拒否 a|b=c\\d\n2行目", "FortiGate");
        e.severity = Severity::HIGH;
        e.received = Some(1_733_300_001_000);
        e.src = Some(Endpoint { ip: Some("192.0.2.1".into()), port: Some(50000), hostname: None });
        e.dst = Some(Endpoint { ip: Some("198.51.100.7".into()), port: Some(443), hostname: Some("x.example".into()) });
        e.user = Some("tanaka".into());
        e
    }

    fn tenant() -> TenantInfo {
        TenantInfo { code: "082015".into(), name: "水戸市".into() }
    }

    #[test]
    fn rfc5424_has_the_header_structured_data_and_the_document() {
        let e = event();
        let d = Destination { kind: Some(Kind::Syslog), ..Default::default() };
        let m = syslog(&e, r#"{"a":1}"#, &tenant(), &d, "node-1");
        // local0 (16) * 8 + error (3) = 131
        let want = format!(
            "<131>1 2024-12-04T08:13:20.123Z node-1 FortiGate - 4001 [mamori@32473 tenant=\"082015\" class_uid=\"4001\" severity_id=\"4\" uid=\"{}\" logged_time=\"2024-12-04T08:13:21.000Z\"] {{\"a\":1}}",
            e.id
        );
        assert_eq!(m, want);
        assert_eq!(frame("abc", Framing::OctetCounting), b"3 abc");
        assert_eq!(frame("a\nb", Framing::Newline), b"a b\n");
        assert_eq!(frame("日本", Framing::OctetCounting), "6 日本".as_bytes(), "octets, not characters");
    }

    #[test]
    fn cef_escapes_header_and_extension() {
        let e = event();
        let d = Destination { kind: Some(Kind::Syslog), format: Format::Cef, ..Default::default() };
        let m = syslog(&e, "{}", &tenant(), &d, "node-1");
        let cef = &m[m.find("CEF:").unwrap()..];
        assert!(cef.starts_with("CEF:0|Mamori|FortiGate|"), "{cef}");
        assert!(cef.contains("|400100|拒否 a\\|b=c\\\\d 2行目|7|"), "{cef}");
        assert!(cef.contains(" msg=拒否 a|b\\=c\\\\d\\n2行目 "), "{cef}");
        assert!(cef.contains("src=192.0.2.1 spt=50000 dst=198.51.100.7 dpt=443 dhost=x.example suser=tanaka"), "{cef}");
        assert!(cef.contains("cs1Label=tenant cs1=082015 cs2Label=tenantName cs2=水戸市"), "{cef}");
        assert!(cef.contains(&format!("externalId={}", e.id)), "{cef}");
    }

    #[test]
    fn hec_and_bulk_carry_the_id_and_the_index() {
        let e = event();
        let doc = e.to_ocsf().to_string();
        let d = Destination { kind: Some(Kind::SplunkHec), index: "mamori_{tenant}".into(), ..Default::default() };
        let h: Value = serde_json::from_str(&hec(&e, &doc, &tenant(), &d, "node-1")).unwrap();
        assert_eq!(h["time"], json!(1_733_300_000.123));
        assert_eq!(h["index"], "mamori_082015");
        assert_eq!(h["event"]["class_uid"], 4001);
        assert_eq!(h["fields"]["uid"], e.id.to_string());
        let d = Destination { kind: Some(Kind::Elasticsearch), index: "mamori-{tenant}-{yyyy}.{MM}.{dd}".into(), ..Default::default() };
        let b = bulk(&e, &doc, &tenant(), &d);
        let lines: Vec<Value> = b.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["create"]["_index"], "mamori-082015-2024.12.04");
        assert_eq!(lines[0]["create"]["_id"], e.id.to_string());
        assert_eq!(lines[1]["@timestamp"], "2024-12-04T08:13:20.123Z");
        assert!(b.ends_with('\n') && b.lines().count() == 2);
    }
}
