//! TCP connect and ICMP echo checks.
//!
//! ICMP uses an unprivileged ICMP datagram socket (Linux `net.ipv4.ping_group_range`)
//! and falls back to a raw socket when running with CAP_NET_RAW.

use super::{Findings, Stage, StepResult};
use mamori_core::monitor::{IcmpCheck, Reason, TcpCheck};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub(crate) async fn tcp_check(c: &TcpCheck, stage: &Stage, f: &mut Findings) -> StepResult<()> {
    let started = Instant::now();
    super::connect(&c.host, c.port, stage).await?;
    f.detail("connect_ms", started.elapsed().as_millis() as u64);
    Ok(())
}

pub(crate) async fn icmp_check(c: &IcmpCheck, timeout: Duration, stage: &Stage, f: &mut Findings) -> StepResult<()> {
    stage.set("名前解決", "name resolution");
    let ip = match c.host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => tokio::net::lookup_host((c.host.as_str(), 0))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip())
            .ok_or_else(|| Reason::new("dns_error", format!("「{}」の名前解決に失敗しました", c.host), format!("cannot resolve '{}'", c.host)))?,
    };
    stage.allow(&c.host, ip)?;
    stage.set("ICMP エコー応答待ち", "waiting for the ICMP echo reply");
    let rtt = tokio::task::spawn_blocking(move || ping(ip, timeout))
        .await
        .map_err(|e| Reason::new("icmp_error", format!("ICMP の送信に失敗しました（{e}）"), format!("ICMP failed ({e})")))??;
    f.detail("rtt_us", rtt.as_micros() as u64);
    Ok(())
}

/// Sends echo requests (3, one per third of the timeout) and waits for a reply.
fn ping(ip: IpAddr, timeout: Duration) -> StepResult<Duration> {
    let (domain, proto, echo_type, reply_type) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4, 8u8, 0u8),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6, 128u8, 129u8),
    };
    let (sock, raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(_) => (
            Socket::new(domain, Type::RAW, Some(proto)).map_err(|e| {
                Reason::new(
                    "icmp_not_permitted",
                    format!("ICMP ソケットを開けません（権限がありません: {e}）。net.ipv4.ping_group_range を設定してください"),
                    format!("cannot open an ICMP socket ({e}); set net.ipv4.ping_group_range"),
                )
            })?,
            true,
        ),
    };
    let addr = SockAddr::from(SocketAddr::new(ip, 0));
    let ident: u16 = rand::random();
    let tries = 3u16;
    let slice = timeout / u32::from(tries);
    for seq in 0..tries {
        let mut pkt = vec![echo_type, 0, 0, 0, (ident >> 8) as u8, ident as u8, (seq >> 8) as u8, seq as u8];
        pkt.extend_from_slice(b"mamori-monitor-icmp");
        if ip.is_ipv4() {
            let sum = checksum(&pkt);
            pkt[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        let sent = Instant::now();
        sock.send_to(&pkt, &addr).map_err(|e| super::io_reason(&e, "ICMP エコー要求", "ICMP echo request"))?;
        let deadline = sent + slice;
        while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            let _ = sock.set_read_timeout(Some(left));
            let mut buf = [0u8; 1500];
            let Ok(n) = std::io::Read::read(&mut &sock, &mut buf) else { break };
            let data = &buf[..n];
            // A raw IPv4 socket delivers the IP header first.
            let icmp = if raw && ip.is_ipv4() { data.get(usize::from(data.first().copied().unwrap_or(0) & 0x0f) * 4..).unwrap_or(&[]) } else { data };
            // Datagram sockets rewrite the identifier; match on type and sequence only.
            if icmp.len() >= 8
                && icmp[0] == reply_type
                && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
                && (!raw || u16::from_be_bytes([icmp[4], icmp[5]]) == ident)
            {
                return Ok(sent.elapsed());
            }
        }
    }
    Err(Reason::new("icmp_no_reply", format!("{ip} から ICMP エコー応答がありません"), format!("no ICMP echo reply from {ip}")))
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in b.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_ping_when_permitted() {
        match ping("127.0.0.1".parse().unwrap(), Duration::from_secs(2)) {
            Ok(rtt) => assert!(rtt < Duration::from_secs(2)),
            Err(r) => assert_eq!(r.code, "icmp_not_permitted", "{r:?}"),
        }
    }

    #[test]
    fn checksum_of_a_known_packet() {
        // Echo request id 0 seq 0 no payload: checksum is !0x0800.
        assert_eq!(checksum(&[8, 0, 0, 0, 0, 0, 0, 0]), 0xf7ff);
    }
}
