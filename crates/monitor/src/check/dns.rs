//! External DNS checks (F04): every listed name server must answer authoritatively for
//! the zone, give the expected records and the same SOA serial; with `dnssec`, the SOA
//! must carry an RRSIG that verifies against the zone's DNSKEY and is inside its
//! validity period (the chain to the parent's DS is not followed); a server that offers
//! recursion (RA set in its answer to a recursive query) is flagged as a possible open
//! resolver.
//!
//! Queries go over UDP (EDNS, 1232-byte payload) and are retried over TCP when the
//! answer is truncated. Answers are parsed by hickory-proto; their size is bounded by
//! the transport (64 KiB).

use super::{Findings, Stage, StepResult};
use hickory_proto::dnssec::Verifier;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mamori_core::monitor::{DnsCheck, DnsExpect, Reason, parse_server};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one server said.
#[derive(Debug, Default)]
struct ServerReport {
    serial: Option<u32>,
    failure: Option<Reason>,
    warnings: Vec<Reason>,
    recursion: bool,
    signed: Option<bool>,
}

pub(crate) async fn check(c: &DnsCheck, timeout: Duration, stage: &Stage, f: &mut Findings) -> StepResult<()> {
    stage.set("DNS 問い合わせ", "DNS queries");
    let zone = Name::from_ascii(format!("{}.", c.zone.trim_end_matches('.')))
        .map_err(|e| Reason::new("invalid_config", format!("ゾーン名が不正です（{e}）"), format!("invalid zone name ({e})")))?;
    let per_query = (timeout / 3).clamp(Duration::from_millis(500), Duration::from_secs(3));
    let mut tasks = tokio::task::JoinSet::new();
    for s in &c.servers {
        let Some(addr) = parse_server(s) else { continue };
        stage.allow(s, addr.ip())?;
        let (c, zone) = (c.clone(), zone.clone());
        tasks.spawn(async move { (addr, server(&c, &zone, addr, per_query).await) });
    }
    let mut reports: Vec<(SocketAddr, ServerReport)> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(r) = r {
            reports.push(r);
        }
    }
    reports.sort_by_key(|(a, _)| c.servers.iter().position(|s| parse_server(s) == Some(*a)));
    f.detail(
        "servers",
        reports
            .iter()
            .map(|(a, r)| json!({"server": a.to_string(), "serial": r.serial, "ok": r.failure.is_none(), "recursion": r.recursion, "signed": r.signed}))
            .collect::<Vec<_>>(),
    );
    for (a, r) in &reports {
        if let Some(fail) = &r.failure {
            f.fail(Reason::new(fail.code.clone(), format!("{a}: {}", fail.ja), format!("{a}: {}", fail.en)));
        }
        for w in &r.warnings {
            f.warn(Reason::new(w.code.clone(), format!("{a}: {}", w.ja), format!("{a}: {}", w.en)));
        }
    }
    if c.serial_consistency {
        let serials: Vec<(SocketAddr, u32)> = reports.iter().filter_map(|(a, r)| r.serial.map(|s| (*a, s))).collect();
        if serials.windows(2).any(|w| w[0].1 != w[1].1) {
            let list = serials.iter().map(|(a, s)| format!("{a}={s}")).collect::<Vec<_>>().join(", ");
            f.fail(Reason::new(
                "soa_serial_mismatch",
                format!("ネームサーバー間で SOA シリアルが一致しません（{list}）。ゾーン転送が止まっている可能性があります"),
                format!("SOA serials differ between name servers ({list}); zone transfer may be failing"),
            ));
        }
    }
    if c.refuse_recursion {
        let open: Vec<String> = reports.iter().filter(|(_, r)| r.recursion).map(|(a, _)| a.to_string()).collect();
        if !open.is_empty() {
            f.fail(Reason::new(
                "open_resolver",
                format!("再帰問い合わせを受け付けています（オープンリゾルバーの疑い）: {}", open.join(", ")),
                format!("answers recursive queries (possible open resolver): {}", open.join(", ")),
            ));
        }
    }
    Ok(())
}

async fn server(c: &DnsCheck, zone: &Name, addr: SocketAddr, per_query: Duration) -> ServerReport {
    let mut r = ServerReport::default();
    // SOA, asked with RD set: an authoritative-only server answers with RA clear.
    let soa = match query(addr, zone, RecordType::SOA, true, c.dnssec, per_query).await {
        Ok(m) => m,
        Err(e) => {
            r.failure = Some(e);
            return r;
        }
    };
    r.recursion = soa.metadata.recursion_available;
    if let Err(e) = authoritative(&soa, "SOA") {
        r.failure = Some(e);
        return r;
    }
    r.serial = soa.answers.iter().find_map(|rec| match &rec.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    });
    if r.serial.is_none() {
        r.failure = Some(Reason::new("dns_no_soa", "SOA レコードが返されません（権威サーバーではありません）", "no SOA record (not authoritative)"));
        return r;
    }
    for e in &c.records {
        if let Err(fail) = expect(addr, zone, e, per_query).await {
            r.failure = Some(fail);
            return r;
        }
    }
    if c.dnssec {
        match dnssec(addr, zone, &soa, c.dnssec_warn_days, per_query).await {
            Ok(warn) => {
                r.signed = Some(true);
                r.warnings.extend(warn);
            }
            Err(e) => {
                r.signed = Some(false);
                r.failure = Some(e);
            }
        }
    }
    r
}

fn authoritative(m: &Message, what: &str) -> StepResult<()> {
    if m.metadata.response_code != ResponseCode::NoError {
        return Err(Reason::new(
            "dns_rcode",
            format!("{what} の問い合わせに {} が返りました", m.metadata.response_code),
            format!("{what} query answered {}", m.metadata.response_code),
        ));
    }
    if !m.metadata.authoritative {
        return Err(Reason::new("dns_not_authoritative", "権威のある応答ではありません（AA フラグなし）", "the answer is not authoritative (AA clear)"));
    }
    Ok(())
}

fn owner(zone: &Name, name: &str) -> StepResult<Name> {
    let n = name.trim();
    let full = if n == "@" || n.is_empty() {
        zone.to_ascii()
    } else if n.ends_with('.') {
        n.to_string()
    } else {
        format!("{n}.{}", zone.to_ascii())
    };
    Name::from_ascii(&full).map_err(|e| Reason::new("invalid_config", format!("名前「{name}」が不正です（{e}）"), format!("invalid name '{name}' ({e})")))
}

/// Formats record data the way people write it (no trailing dots, lower case names).
fn value(d: &RData) -> Option<String> {
    let name = |n: &Name| n.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    Some(match d {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::MX(m) => format!("{} {}", m.preference, name(&m.exchange)),
        RData::NS(n) => name(&n.0),
        RData::CNAME(n) => name(&n.0),
        RData::TXT(t) => t.txt_data.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect::<Vec<_>>().join(""),
        RData::SOA(s) => format!("{} {}", name(&s.mname), s.serial),
        RData::CAA(c) => c.to_string(),
        _ => return None,
    })
}

async fn expect(addr: SocketAddr, zone: &Name, e: &DnsExpect, per_query: Duration) -> StepResult<()> {
    let rtype: RecordType = e.rtype.to_ascii_uppercase().parse().map_err(|_| Reason::new("invalid_config", "レコード種別が不正です", "invalid record type"))?;
    let name = owner(zone, &e.name)?;
    let m = query(addr, &name, rtype, false, false, per_query).await?;
    authoritative(&m, &format!("{name} {rtype}"))?;
    let got: Vec<String> = m.answers.iter().filter(|r| r.record_type() == rtype).filter_map(|r| value(&r.data)).collect();
    if got.is_empty() {
        return Err(Reason::new("dns_no_answer", format!("{name} の {rtype} レコードがありません"), format!("no {rtype} record for {name}")));
    }
    let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
    let missing: Vec<&String> = e.expect.iter().filter(|want| !got.iter().any(|g| norm(g) == norm(want))).collect();
    if !missing.is_empty() {
        return Err(Reason::new(
            "dns_mismatch",
            format!("{name} の {rtype} が期待と異なります（期待: {}、応答: {}）", e.expect.join(", "), got.join(", ")),
            format!("{name} {rtype} differs (expected {}, got {})", e.expect.join(", "), got.join(", ")),
        ));
    }
    Ok(())
}

/// Verifies the SOA's RRSIG against the zone's DNSKEYs; returns warnings.
async fn dnssec(addr: SocketAddr, zone: &Name, soa: &Message, warn_days: u32, per_query: Duration) -> StepResult<Vec<Reason>> {
    let unsigned = || Reason::new("dnssec_unsigned", "ゾーンに DNSSEC 署名がありません（RRSIG なし）", "the zone is not DNSSEC-signed (no RRSIG)");
    let soa_records: Vec<&Record> = soa.answers.iter().filter(|r| r.record_type() == RecordType::SOA).collect();
    let sigs: Vec<_> = soa
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == RecordType::SOA => Some(s.clone()),
            _ => None,
        })
        .collect();
    if sigs.is_empty() {
        return Err(unsigned());
    }
    let keys_msg = query(addr, zone, RecordType::DNSKEY, false, true, per_query).await?;
    let keys: Vec<_> = keys_msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Err(Reason::new("dnssec_no_dnskey", "DNSKEY レコードがありません", "no DNSKEY record"));
    }
    let now = (mamori_core::time::now_ms() / 1000) as u32;
    let mut last_err = None;
    for sig in &sigs {
        let input = sig.input();
        let (inception, expiration) = (input.sig_inception.get(), input.sig_expiration.get());
        // Serial-number arithmetic (RFC 4034 §3.1.5): compare as differences.
        let started = now.wrapping_sub(inception) as i32 >= 0;
        let left = expiration.wrapping_sub(now) as i32;
        if !started {
            last_err = Some(Reason::new("dnssec_not_yet_valid", "DNSSEC 署名の有効期間がまだ始まっていません", "the DNSSEC signature is not valid yet"));
            continue;
        }
        if left < 0 {
            last_err = Some(Reason::new("dnssec_expired", "DNSSEC 署名の有効期限が切れています", "the DNSSEC signature has expired"));
            continue;
        }
        let Some(key) = keys.iter().find(|k| k.calculate_key_tag().ok() == Some(input.key_tag)) else {
            last_err = Some(Reason::new("dnssec_no_key", "署名に対応する DNSKEY がありません", "no DNSKEY matches the signature's key tag"));
            continue;
        };
        match key.verify_rrsig(zone, DNSClass::IN, sig, soa_records.iter().copied()) {
            Ok(()) => {
                let days = i64::from(left) / 86_400;
                let mut warnings = Vec::new();
                if days < i64::from(warn_days) {
                    warnings.push(Reason::new(
                        "dnssec_expiring",
                        format!("DNSSEC 署名の有効期限が近づいています（残り{days}日）。再署名を確認してください"),
                        format!("the DNSSEC signature expires in {days} days; check re-signing"),
                    ));
                }
                return Ok(warnings);
            }
            Err(e) => {
                last_err =
                    Some(Reason::new("dnssec_bogus", format!("DNSSEC 署名の検証に失敗しました（{e}）"), format!("DNSSEC signature does not verify ({e})")))
            }
        }
    }
    Err(last_err.unwrap_or_else(unsigned))
}

/// Sends one query (UDP, then TCP when truncated) and returns the answer.
async fn query(addr: SocketAddr, name: &Name, rtype: RecordType, rd: bool, dnssec_ok: bool, per_query: Duration) -> StepResult<Message> {
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = rd;
    m.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(dnssec_ok);
    m.set_edns(edns);
    let bytes = m.to_vec().map_err(|e| Reason::new("dns_error", format!("問い合わせを作れません（{e}）"), format!("cannot build the query ({e})")))?;
    let no_answer = || {
        Reason::new(
            "dns_no_response",
            format!("{} 秒以内に応答がありません", per_query.as_secs_f32()),
            format!("no answer within {} s", per_query.as_secs_f32()),
        )
    };
    let mut truncated = false;
    // Two UDP tries; a refusal or garbage ends at once. A truncated answer goes to TCP.
    for _ in 0..2 {
        match tokio::time::timeout(per_query, udp(addr, &bytes, id)).await {
            Ok(Ok(ans)) if ans.metadata.truncation => {
                truncated = true;
                break;
            }
            Ok(Ok(ans)) => return Ok(ans),
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
    }
    if !truncated {
        return Err(no_answer());
    }
    tokio::time::timeout(per_query, tcp(addr, &bytes, id)).await.unwrap_or_else(|_| Err(no_answer()))
}

fn parse_answer(buf: &[u8], id: u16) -> StepResult<Option<Message>> {
    let m = Message::from_vec(buf)
        .map_err(|e| Reason::new("dns_garbage", format!("DNS の応答を解釈できません（{e}）"), format!("cannot parse the DNS answer ({e})")))?;
    Ok((m.metadata.id == id && m.metadata.message_type == MessageType::Response).then_some(m))
}

async fn udp(addr: SocketAddr, bytes: &[u8], id: u16) -> StepResult<Message> {
    let local: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = tokio::net::UdpSocket::bind(local).await.map_err(|e| super::io_reason(&e, "UDP ソケット", "UDP socket"))?;
    sock.connect(addr).await.map_err(|e| super::io_reason(&e, "UDP 接続", "UDP connect"))?;
    sock.send(bytes).await.map_err(|e| super::io_reason(&e, "問い合わせの送信", "sending the query"))?;
    let mut buf = vec![0u8; 4096];
    // Ignore stray datagrams with another id (at most a few).
    for _ in 0..8 {
        let n = sock.recv(&mut buf).await.map_err(|e| super::io_reason(&e, "応答の受信", "receiving the answer"))?;
        if let Some(m) = parse_answer(&buf[..n], id)? {
            return Ok(m);
        }
    }
    Err(Reason::new("dns_garbage", "問い合わせと一致しない応答しか届きません", "only answers not matching the query arrived"))
}

async fn tcp(addr: SocketAddr, bytes: &[u8], id: u16) -> StepResult<Message> {
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| super::io_reason(&e, "TCP 接続", "TCP connect"))?;
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    s.write_all(&out).await.map_err(|e| super::io_reason(&e, "問い合わせの送信", "sending the query"))?;
    let len = s.read_u16().await.map_err(|e| super::io_reason(&e, "応答の受信", "receiving the answer"))?;
    let mut buf = vec![0u8; usize::from(len)];
    s.read_exact(&mut buf).await.map_err(|e| super::io_reason(&e, "応答の受信", "receiving the answer"))?;
    parse_answer(&buf, id)?.ok_or_else(|| Reason::new("dns_garbage", "問い合わせと一致しない応答です", "the answer does not match the query"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn f04_garbage_answers_are_named_not_fatal() {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((_, peer)) = sock.recv_from(&mut buf).await {
                // Echo the id, then nonsense.
                let mut out = buf[..2].to_vec();
                out.extend_from_slice(&[0x81, 0x80, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
                let _ = sock.send_to(&out, peer).await;
            }
        });
        let zone = Name::from_ascii("test.lg.jp.").unwrap();
        let e = query(addr, &zone, RecordType::SOA, false, false, Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(e.code, "dns_garbage", "{e:?}");
    }

    #[tokio::test]
    async fn f04_silent_server_times_out_per_query() {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let zone = Name::from_ascii("test.lg.jp.").unwrap();
        let started = std::time::Instant::now();
        let e = query(addr, &zone, RecordType::SOA, false, false, Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(e.code.as_str(), "dns_no_response" | "connect_refused"), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(sock);
    }
}
