//! Proxy checks (F03): an `http://` URL is fetched with an absolute-form request to the
//! proxy; an `https://` URL through a CONNECT tunnel, then TLS to the origin.

use super::http::{Target, exchange};
use super::{Findings, Stage, StepResult};
use mamori_core::monitor::{ProxyCheck, Reason, StatusSet, split_host_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest CONNECT response head accepted.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

pub(crate) async fn check(c: &ProxyCheck, stage: &Stage, f: &mut Findings) -> StepResult<()> {
    let expect =
        StatusSet::parse(&c.expect_status).ok_or_else(|| Reason::new("invalid_config", "期待ステータスの設定が不正です", "invalid expected status"))?;
    let (phost, pport) = split_host_port(&c.proxy).ok_or_else(|| Reason::new("invalid_config", "プロキシの指定が不正です", "invalid proxy address"))?;
    let target = Target::parse(&c.url)?;
    let mut tcp = super::connect(&phost, pport, stage).await.map_err(|r| Reason::new(r.code, format!("プロキシ {}", r.ja), format!("proxy {}", r.en)))?;
    let answer = if target.tls {
        stage.set("CONNECT", "CONNECT");
        let authority = format!("{}:{}", if target.host.contains(':') { format!("[{}]", target.host) } else { target.host.clone() }, target.port);
        tcp.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: Mamori-Monitor\r\n\r\n").as_bytes())
            .await
            .map_err(|e| super::io_reason(&e, "CONNECT の送信", "sending CONNECT"))?;
        let status = read_connect_head(&mut tcp).await?;
        f.detail("connect_status", status);
        if status != 200 {
            return Err(Reason::new(
                "proxy_connect",
                format!("プロキシが {authority} への CONNECT を拒否しました（ステータス {status}）"),
                format!("the proxy refused CONNECT to {authority} (status {status})"),
            ));
        }
        let tls = super::tls::handshake(tcp, &target.host, c.ca_pem.as_deref(), 0, &[b"http/1.1"], stage, f).await?;
        exchange(tls, "GET", &target.path, &target.authority(), true, stage).await?
    } else {
        exchange(tcp, "GET", &target.url(), &target.authority(), true, stage).await?
    };
    f.detail("status", answer.status);
    if !expect.contains(answer.status) {
        return Err(Reason::new(
            "proxy_status",
            format!("プロキシ経由の取得でステータス {} を受信しました（期待値 {}）", answer.status, c.expect_status),
            format!("status {} through the proxy (expected {})", answer.status, c.expect_status),
        ));
    }
    Ok(())
}

/// Reads the proxy's answer to CONNECT up to the blank line, byte by byte (nothing of
/// the tunnel may be consumed); returns its status.
async fn read_connect_head(tcp: &mut tokio::net::TcpStream) -> StepResult<u16> {
    let mut head = Vec::with_capacity(256);
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut b).await.map_err(|e| super::io_reason(&e, "CONNECT の応答", "CONNECT response"))?;
        if n == 0 {
            return Err(Reason::new(
                "proxy_connect",
                "プロキシが CONNECT の応答前に接続を閉じました",
                "the proxy closed the connection before answering CONNECT",
            ));
        }
        head.push(b[0]);
        if head.len() > MAX_CONNECT_HEAD {
            return Err(Reason::new("proxy_garbage", "プロキシの応答ヘッダーが大きすぎます", "the proxy's response head is too large"));
        }
    }
    let line = String::from_utf8_lossy(&head);
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok()).filter(|_| line.starts_with("HTTP/1."));
    status.ok_or_else(|| Reason::new("proxy_garbage", "プロキシの応答が HTTP ではありません", "the proxy's answer is not HTTP"))
}
