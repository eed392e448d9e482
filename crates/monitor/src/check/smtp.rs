//! SMTP: the mail relay check (F02) and the client that sends notifications.
//!
//! Replies are read line by line with limits (line length, lines per reply), so a
//! garbage banner or an endless reply is a clear failure. After STARTTLS nothing the
//! server sent before the handshake is kept (no command injection, RFC 3207 §5).

use super::{Findings, Stage, StepResult};
use mamori_core::monitor::{Reason, SmtpCheck, StartTls};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt, BufReader};

/// Longest reply line accepted.
const MAX_LINE: usize = 2048;
/// Most lines in one reply.
const MAX_LINES: usize = 100;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One SMTP reply.
#[derive(Debug)]
pub(crate) struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

/// Parses one reply line (`250-text` / `250 text`): code, whether more lines follow,
/// text. The error carries the line, for the reason.
pub fn parse_line(raw: &[u8]) -> Result<(u16, bool, String), String> {
    let line = String::from_utf8_lossy(raw).trim_end().to_string();
    let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (200..600).contains(c) && line.as_bytes()[..3].iter().all(u8::is_ascii_digit));
    let sep = line.as_bytes().get(3).copied();
    match (code, sep) {
        (Some(code), None | Some(b' ') | Some(b'-')) => Ok((code, sep == Some(b'-'), line.get(4..).unwrap_or("").to_string())),
        _ => Err(line),
    }
}

/// An SMTP session.
pub(crate) struct Session {
    io: BufReader<Box<dyn Io>>,
    host: String,
    pub tls: bool,
    /// Recipients the server refused in the last `send`.
    pub refused: Vec<String>,
}

fn printable(s: &str) -> String {
    s.chars().take(120).map(|c| if c.is_control() { '?' } else { c }).collect()
}

impl Session {
    pub async fn connect(host: &str, port: u16, stage: &Stage) -> StepResult<(Self, Reply)> {
        let tcp = super::connect(host, port, stage).await?;
        let mut s = Self { io: BufReader::new(Box::new(tcp)), host: host.into(), tls: false, refused: Vec::new() };
        stage.set("SMTP バナー待ち", "waiting for the SMTP banner");
        let banner = s.reply("バナー", "banner").await?;
        Ok((s, banner))
    }

    /// Reads one (possibly multi-line) reply.
    pub async fn reply(&mut self, what_ja: &str, what_en: &str) -> StepResult<Reply> {
        let mut lines: Vec<(u16, String)> = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = (&mut self.io).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).await.map_err(|e| super::io_reason(&e, what_ja, what_en))?;
            if n == 0 {
                return Err(Reason::new(
                    "connection_closed",
                    format!("{what_ja}の受信中にサーバーが接続を閉じました"),
                    format!("the server closed the connection while sending its {what_en}"),
                ));
            }
            if buf.len() > MAX_LINE || !buf.ends_with(b"\n") {
                return Err(Reason::new(
                    "smtp_garbage",
                    format!("{what_ja}の行が長すぎます（SMTP の応答ではありません）"),
                    format!("{what_en} line too long (not SMTP)"),
                ));
            }
            let (code, more, text) = parse_line(&buf).map_err(|line| {
                Reason::new(
                    "smtp_garbage",
                    format!("{what_ja}が SMTP の応答ではありません:「{}」", printable(&line)),
                    format!("the {what_en} is not an SMTP reply: '{}'", printable(&line)),
                )
            })?;
            if lines.first().is_some_and(|(c, _)| *c != code) {
                return Err(Reason::new("smtp_garbage", format!("{what_ja}の応答コードが行ごとに異なります"), format!("mixed reply codes in the {what_en}")));
            }
            lines.push((code, text));
            if lines.len() > MAX_LINES {
                return Err(Reason::new("smtp_garbage", format!("{what_ja}の行数が多すぎます"), format!("too many lines in the {what_en}")));
            }
            if !more {
                return Ok(Reply { code, lines: lines.into_iter().map(|(_, t)| t).collect() });
            }
        }
    }

    /// Sends a command and reads its reply.
    pub async fn command(&mut self, cmd: &str, what_ja: &str, what_en: &str) -> StepResult<Reply> {
        self.io.get_mut().write_all(format!("{cmd}\r\n").as_bytes()).await.map_err(|e| super::io_reason(&e, what_ja, what_en))?;
        self.io.get_mut().flush().await.map_err(|e| super::io_reason(&e, what_ja, what_en))?;
        self.reply(what_ja, what_en).await
    }

    /// Upgrades with STARTTLS (after a 220 to the command).
    pub async fn starttls(self, ca_pem: Option<&str>, warn_days: u32, stage: &Stage, f: &mut Findings) -> StepResult<Self> {
        if !self.io.buffer().is_empty() {
            return Err(Reason::new(
                "starttls_injection",
                "STARTTLS の前に余分なデータが送られてきました（不正な応答）",
                "the server sent extra data before the TLS handshake",
            ));
        }
        let host = self.host.clone();
        let inner = self.io.into_inner();
        let tls = super::tls::handshake(inner, &host, ca_pem, warn_days, &[], stage, f).await?;
        Ok(Self { io: BufReader::new(Box::new(tls)), host, tls: true, refused: Vec::new() })
    }

    /// Sends a message: MAIL, RCPT for each recipient, DATA (dot-stuffed).
    pub async fn send(&mut self, from: &str, to: &[String], message: &[u8], stage: &Stage) -> StepResult<Reply> {
        stage.set("メール送信", "sending the message");
        let r = self.command(&format!("MAIL FROM:<{from}>"), "MAIL FROM への応答", "reply to MAIL FROM").await?;
        expect(&r, 250, "MAIL FROM", "smtp_rejected")?;
        // A refused recipient does not stop the others; the message fails only when
        // nobody is accepted.
        let mut refused = Vec::new();
        let mut last_refusal = None;
        for rcpt in to {
            let r = self.command(&format!("RCPT TO:<{rcpt}>"), "RCPT TO への応答", "reply to RCPT TO").await?;
            if let Err(e) = expect(&r, 250, &format!("RCPT TO:<{rcpt}>"), "smtp_rejected") {
                refused.push(rcpt.clone());
                last_refusal = Some(e);
            }
        }
        if refused.len() == to.len() {
            return Err(last_refusal.unwrap_or_else(|| Reason::new("smtp_rejected", "宛先がありません", "no recipient")));
        }
        self.refused = refused;
        let r = self.command("DATA", "DATA への応答", "reply to DATA").await?;
        expect(&r, 354, "DATA", "smtp_rejected")?;
        let mut out = Vec::with_capacity(message.len() + 16);
        for line in message.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.starts_with(b".") {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        let w = self.io.get_mut();
        w.write_all(&out).await.map_err(|e| super::io_reason(&e, "本文の送信", "sending the body"))?;
        w.flush().await.map_err(|e| super::io_reason(&e, "本文の送信", "sending the body"))?;
        let r = self.reply("本文への応答", "reply to the message").await?;
        expect(&r, 250, "message", "smtp_rejected")?;
        Ok(r)
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT", "QUIT", "QUIT").await;
    }
}

fn expect(r: &Reply, code: u16, what: &str, reason: &str) -> StepResult<()> {
    if r.code == code {
        return Ok(());
    }
    Err(Reason::new(
        reason.to_string(),
        format!("{what} が拒否されました（{} {}）", r.code, printable(&r.text())),
        format!("{what} refused ({} {})", r.code, printable(&r.text())),
    ))
}

/// Opens a session up to EHLO (and STARTTLS as asked); returns it with the extensions.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open(
    host: &str,
    port: u16,
    ehlo: &str,
    starttls: StartTls,
    ca_pem: Option<&str>,
    warn_days: u32,
    stage: &Stage,
    f: &mut Findings,
) -> StepResult<(Session, Reply, Vec<String>)> {
    let (mut s, banner) = Session::connect(host, port, stage).await?;
    if banner.code != 220 {
        return Err(Reason::new(
            "smtp_banner",
            format!("サーバーが接続を受け付けていません（{} {}）", banner.code, printable(&banner.text())),
            format!("the server does not accept connections ({} {})", banner.code, printable(&banner.text())),
        ));
    }
    stage.set("EHLO", "EHLO");
    let mut ehlo_reply = s.command(&format!("EHLO {ehlo}"), "EHLO への応答", "reply to EHLO").await?;
    expect(&ehlo_reply, 250, "EHLO", "smtp_ehlo")?;
    let offers_tls = ehlo_reply.lines.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS"));
    if starttls == StartTls::Required && !offers_tls {
        return Err(Reason::new("starttls_missing", "サーバーが STARTTLS を提供していません", "the server does not offer STARTTLS"));
    }
    if starttls != StartTls::Off && offers_tls {
        stage.set("STARTTLS", "STARTTLS");
        let r = s.command("STARTTLS", "STARTTLS への応答", "reply to STARTTLS").await?;
        expect(&r, 220, "STARTTLS", "starttls_failed")?;
        s = s.starttls(ca_pem, warn_days, stage, f).await?;
        ehlo_reply = s.command(&format!("EHLO {ehlo}"), "EHLO への応答", "reply to EHLO").await?;
        expect(&ehlo_reply, 250, "EHLO", "smtp_ehlo")?;
    }
    let ext = ehlo_reply.lines.iter().skip(1).map(|l| l.split_whitespace().next().unwrap_or("").to_ascii_uppercase()).collect();
    Ok((s, banner, ext))
}

/// The SMTP relay check.
pub(crate) async fn check(c: &SmtpCheck, stage: &Stage, f: &mut Findings) -> StepResult<()> {
    let (mut s, banner, ext) = open(&c.host, c.port, &c.ehlo, c.starttls, c.ca_pem.as_deref(), c.cert_warn_days, stage, f).await?;
    f.detail("banner", printable(&banner.text()));
    f.detail("tls", s.tls);
    f.detail("extensions", ext);
    if let Some(want) = &c.expect_banner
        && !banner.text().contains(want.as_str())
    {
        return Err(Reason::new("smtp_banner", format!("バナーに「{want}」がありません"), format!("the banner lacks '{want}'")));
    }
    if let Some(t) = &c.test_message {
        let id = uuid_like();
        let msg = format!(
            "From: <{}>\r\nTo: <{}>\r\nSubject: Mamori relay check {id}\r\nMessage-ID: <{id}@monitor.mamori.invalid>\r\nDate: {}\r\n\r\nThis message tests the mail relay. It can be discarded.\r\n",
            t.from,
            t.to,
            rfc2822_now()
        );
        let r = s.send(&t.from, std::slice::from_ref(&t.to), msg.as_bytes(), stage).await?;
        f.detail("test_message", printable(&r.text()));
    }
    s.quit().await;
    Ok(())
}

fn uuid_like() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The current time as an RFC 5322 date.
pub(crate) fn rfc2822_now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc2822).unwrap_or_default()
}

/// A mail server notifications are sent through.
#[derive(Clone, Debug)]
pub struct MailServer {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// STARTTLS handling.
    pub starttls: StartTls,
    /// Private CA of the server's certificate.
    pub ca_pem: Option<String>,
    /// Name sent in EHLO.
    pub ehlo: String,
}

/// Sends `message` (headers and body) to `to` through `server`; returns the recipients
/// the server refused (the others got it).
pub async fn send_mail(server: &MailServer, from: &str, to: &[String], message: &[u8], timeout: std::time::Duration) -> Result<Vec<String>, Reason> {
    let stage = Stage::new();
    let mut f = Findings::default();
    let run = async {
        let (mut s, _, _) = open(&server.host, server.port, &server.ehlo, server.starttls, server.ca_pem.as_deref(), 0, &stage, &mut f).await?;
        s.send(from, to, message, &stage).await?;
        let refused = std::mem::take(&mut s.refused);
        s.quit().await;
        Ok(refused)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => {
            let (ja, en) = stage.get();
            Err(Reason::new("timeout", format!("メール送信がタイムアウトしました（{ja}の途中）"), format!("sending mail timed out (during {en})")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn serve_once(script: &'static [u8]) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.write_all(script).await;
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.read(&mut sink)).await;
        });
        port
    }

    #[tokio::test]
    async fn f02_garbage_banner_is_named() {
        let port = serve_once(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        let mut f = Findings::default();
        let c: SmtpCheck = serde_json::from_value(serde_json::json!({"host": "127.0.0.1", "port": port})).unwrap();
        let e = check(&c, &Stage::new(), &mut f).await.unwrap_err();
        assert_eq!(e.code, "smtp_garbage");
        assert!(e.ja.contains("SSH-2.0"), "{}", e.ja);
    }

    #[tokio::test]
    async fn f02_endless_line_is_refused() {
        static LONG: [u8; 8192] = [b'2'; 8192];
        let port = serve_once(&LONG).await;
        let mut f = Findings::default();
        let c: SmtpCheck = serde_json::from_value(serde_json::json!({"host": "127.0.0.1", "port": port})).unwrap();
        assert_eq!(check(&c, &Stage::new(), &mut f).await.unwrap_err().code, "smtp_garbage");
    }

    #[tokio::test]
    async fn f02_refused_service_and_missing_starttls() {
        let port = serve_once(b"554 5.3.2 service not available\r\n").await;
        let c: SmtpCheck = serde_json::from_value(serde_json::json!({"host": "127.0.0.1", "port": port})).unwrap();
        assert_eq!(check(&c, &Stage::new(), &mut Findings::default()).await.unwrap_err().code, "smtp_banner");
        let port = serve_once(b"220 mx ESMTP\r\n250-mx\r\n250 SIZE 1000\r\n").await;
        let c: SmtpCheck = serde_json::from_value(serde_json::json!({"host": "127.0.0.1", "port": port})).unwrap();
        assert_eq!(check(&c, &Stage::new(), &mut Findings::default()).await.unwrap_err().code, "starttls_missing");
    }
}
