//! HTTP(S) checks (F01): status, keyword or regex, redirects, TLS certificate, content
//! hash. One HTTP/1.1 request per connection (hyper), bodies read up to
//! [`MAX_BODY_BYTES`], decoded by their charset (Shift_JIS and EUC-JP pages are common
//! on municipal sites).

use super::{Findings, Stage, StepResult};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use mamori_core::monitor::{HttpCheck, Reason, StatusSet};
use sha2::Digest;

/// Most body bytes read and inspected.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A parsed `http(s)://` URL.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> StepResult<Self> {
        let bad = || Reason::new("invalid_url", format!("URL「{url}」を解釈できません"), format!("cannot parse URL '{url}'"));
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let host = uri.host().ok_or_else(bad)?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri.path_and_query().map(|p| p.as_str().to_string()).filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
        Ok(Self { tls, host, port, path })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        let h = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if (self.tls && self.port == 443) || (!self.tls && self.port == 80) { h } else { format!("{h}:{}", self.port) }
    }

    pub fn url(&self) -> String {
        format!("{}://{}{}", if self.tls { "https" } else { "http" }, self.authority(), self.path)
    }

    /// Resolves a `Location` against this URL.
    pub fn join(&self, location: &str) -> StepResult<Self> {
        if location.starts_with("http://") || location.starts_with("https://") {
            Self::parse(location)
        } else if let Some(rest) = location.strip_prefix("//") {
            Self::parse(&format!("{}://{rest}", if self.tls { "https" } else { "http" }))
        } else if location.starts_with('/') {
            Ok(Self { path: location.into(), ..self.clone() })
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map(|i| i + 1).unwrap_or(1)];
            Ok(Self { path: format!("{dir}{location}"), ..self.clone() })
        }
    }
}

/// An HTTP answer, its body cut at [`MAX_BODY_BYTES`].
pub(crate) struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub truncated: bool,
}

/// Sends one request over `io` (already connected, TLS done) and reads the answer.
/// `request_target` is the path (origin form) or the full URL (absolute form, for a
/// proxy).
pub(crate) async fn exchange<IO>(io: IO, method: &str, request_target: &str, host: &str, read_body: bool, stage: &Stage) -> StepResult<Answer>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    exchange_with(io, method, request_target, host, &[], None, if read_body { MAX_BODY_BYTES } else { 0 }, stage).await
}

/// [`exchange`] with a request body (`content type`, bytes).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn exchange_with<IO>(
    io: IO,
    method: &str,
    request_target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Bytes)>,
    max_body: usize,
    stage: &Stage,
) -> StepResult<Answer>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    stage.set("HTTP 応答待ち", "waiting for the HTTP response");
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| Reason::new("http_error", format!("HTTP の開始に失敗しました（{e}）"), format!("HTTP handshake failed ({e})")))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::builder();
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some((ct, _)) = &body {
        req = req.header(hyper::header::CONTENT_TYPE, *ct);
    }
    let req = req
        .method(method)
        .uri(request_target)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, concat!("Mamori-Monitor/", env!("CARGO_PKG_VERSION")))
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close")
        .body(Full::new(body.map(|(_, b)| b).unwrap_or_default()))
        .map_err(|e| Reason::new("invalid_url", format!("リクエストを組み立てられません（{e}）"), format!("cannot build the request ({e})")))?;
    let resp = sender.send_request(req).await.map_err(|e| {
        driver.abort();
        Reason::new("http_error", format!("HTTP 応答を読み取れません（{e}）"), format!("cannot read the HTTP response ({e})"))
    })?;
    let status = resp.status().as_u16();
    let header = |n: hyper::header::HeaderName| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(String::from);
    let location = header(hyper::header::LOCATION);
    let content_type = header(hyper::header::CONTENT_TYPE);
    let mut body = Vec::new();
    let mut truncated = false;
    if max_body > 0 {
        stage.set("本文の受信", "reading the body");
        let mut b = resp.into_body();
        while let Some(frame) = b.frame().await {
            let frame = frame
                .map_err(|e| Reason::new("http_body", format!("本文の受信中にエラーが発生しました（{e}）"), format!("error while reading the body ({e})")))?;
            if let Ok(data) = frame.into_data() {
                let room = max_body - body.len();
                if data.len() > room {
                    body.extend_from_slice(&data[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&data);
            }
        }
    }
    driver.abort();
    Ok(Answer { status, location, content_type, body, truncated })
}

/// Decodes a body by its declared charset (header, then `<meta charset>`), else UTF-8.
pub(crate) fn decode(body: &[u8], content_type: Option<&str>) -> String {
    let from_header = content_type.and_then(|ct| ct.to_ascii_lowercase().split("charset=").nth(1).map(|c| c.trim_matches(['"', ' ', ';']).to_string()));
    let sniffed = || {
        let head = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
        head.split("charset=")
            .nth(1)
            .map(|c| c.trim_start_matches(['"', '\'']).chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>())
    };
    let label = from_header.or_else(sniffed).unwrap_or_default();
    let enc = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap_or(encoding_rs::UTF_8);
    enc.decode(body).0.into_owned()
}

/// The HTTP check.
pub(crate) async fn check(c: &HttpCheck, stage: &Stage, f: &mut Findings) -> StepResult<()> {
    let expect =
        StatusSet::parse(&c.expect_status).ok_or_else(|| Reason::new("invalid_config", "期待ステータスの設定が不正です", "invalid expected status"))?;
    let mut target = Target::parse(&c.url)?;
    let read_body = c.method == "GET";
    let mut hops = 0u8;
    let answer = loop {
        let max_body = if read_body { MAX_BODY_BYTES } else { 0 };
        let answer = send(&target, &c.method, &[], None, c.ca_pem.as_deref(), c.cert_warn_days, max_body, stage, f).await?;
        match (&answer.location, answer.status) {
            (Some(loc), 301 | 302 | 303 | 307 | 308) if c.max_redirects > 0 => {
                if hops >= c.max_redirects {
                    return Err(Reason::new(
                        "too_many_redirects",
                        format!("リダイレクトが{}回を超えました（最後: {}）", c.max_redirects, target.url()),
                        format!("more than {} redirects (last: {})", c.max_redirects, target.url()),
                    ));
                }
                hops += 1;
                target = target.join(loc)?;
            }
            _ => break answer,
        }
    };
    f.detail("status", answer.status);
    if hops > 0 {
        f.detail("final_url", target.url());
        f.detail("redirects", hops);
    }
    if !expect.contains(answer.status) {
        return Err(Reason::new(
            "http_status",
            format!("HTTP ステータス {} を受信しました（期待値 {}）", answer.status, c.expect_status),
            format!("HTTP status {} (expected {})", answer.status, c.expect_status),
        ));
    }
    if !read_body {
        return Ok(());
    }
    f.detail("body_bytes", answer.body.len());
    if answer.truncated {
        f.detail("body_truncated", true);
    }
    let scope_ja = if answer.truncated { "（先頭1MiBを検査）" } else { "" };
    let scope_en = if answer.truncated { " (first 1 MiB checked)" } else { "" };
    let text = decode(&answer.body, answer.content_type.as_deref());
    if let Some(k) = &c.keyword {
        let found = text.contains(k.as_str());
        if found && c.keyword_absent {
            return Err(Reason::new("keyword_present", format!("含まれてはならない文字列「{k}」がありました"), format!("the forbidden text '{k}' is present")));
        }
        if !found && !c.keyword_absent {
            return Err(Reason::new(
                "keyword_missing",
                format!("ページに文字列「{k}」がありません{scope_ja}"),
                format!("the text '{k}' is missing from the page{scope_en}"),
            ));
        }
    }
    if let Some(r) = &c.regex {
        let re = regex::RegexBuilder::new(r)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| Reason::new("invalid_regex", format!("正規表現が不正です（{e}）"), format!("invalid regular expression ({e})")))?;
        if !re.is_match(&text) {
            return Err(Reason::new(
                "regex_mismatch",
                format!("ページが正規表現に一致しません{scope_ja}"),
                format!("the page does not match the regular expression{scope_en}"),
            ));
        }
    }
    if c.track_content {
        f.detail("content_sha256", hex::encode(sha2::Sha256::digest(&answer.body)));
    }
    Ok(())
}

/// Connects to `target` (TLS for `https`) and exchanges one request.
#[allow(clippy::too_many_arguments)]
async fn send(
    target: &Target,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Bytes)>,
    ca_pem: Option<&str>,
    cert_warn_days: u32,
    max_body: usize,
    stage: &Stage,
    f: &mut Findings,
) -> StepResult<Answer> {
    if target.tls {
        let tls = super::tls::connect(&target.host, target.port, ca_pem, cert_warn_days, &[b"http/1.1"], stage, f).await?;
        exchange_with(tls, method, &target.path, &target.authority(), headers, body, max_body, stage).await
    } else {
        let tcp = super::connect(&target.host, target.port, stage).await?;
        exchange_with(tcp, method, &target.path, &target.authority(), headers, body, max_body, stage).await
    }
}

/// Sends one request to `url` and returns the answer (the remote probe's client, and
/// webhooks). `ca_pem` adds a trust anchor; `guard` refuses the platform's own
/// addresses (webhooks a tenant configured).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn request(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Bytes)>,
    ca_pem: Option<&str>,
    max_body: usize,
    guard: bool,
    timeout: std::time::Duration,
) -> Result<Answer, Reason> {
    let stage = Stage::guarded(guard);
    let mut f = Findings::default();
    let run = async { send(&Target::parse(url)?, method, headers, body, ca_pem, 0, max_body, &stage, &mut f).await };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => {
            let (ja, en) = stage.get();
            Err(Reason::new("timeout", format!("{url} がタイムアウトしました（{ja}の途中）"), format!("{url} timed out (during {en})")))
        }
    }
}

/// Posts a JSON document to `url` (webhooks); succeeds on a 2xx answer. `guard`
/// refuses the platform's own addresses (webhooks a tenant configured).
pub async fn post_json(url: &str, doc: &serde_json::Value, guard: bool, timeout: std::time::Duration) -> Result<u16, Reason> {
    let body = Bytes::from(serde_json::to_vec(doc).unwrap_or_default());
    // Webhook URLs often carry a token: keep it out of the reasons that get recorded.
    let hidden = crate::notify::redact_url(url);
    let answer = request(url, "POST", &[], Some(("application/json", body)), None, 64 * 1024, guard, timeout)
        .await
        .map_err(|r| Reason::new(r.code, r.ja.replace(url, &hidden), r.en.replace(url, &hidden)))?;
    if (200..300).contains(&answer.status) {
        Ok(answer.status)
    } else {
        Err(Reason::new("http_status", format!("Webhook の応答が {} でした", answer.status), format!("the webhook answered {}", answer.status)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f01_urls_and_redirect_targets() {
        let t = Target::parse("https://www.city.example.lg.jp/a/b.html?x=1").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (true, 443, "/a/b.html?x=1"));
        assert_eq!(t.join("c.html").unwrap().path, "/a/c.html");
        assert_eq!(t.join("/top").unwrap().path, "/top");
        let other = t.join("http://other.example:8080/").unwrap();
        assert_eq!((other.tls, other.host.as_str(), other.port), (false, "other.example", 8080));
        assert_eq!(Target::parse("http://[::1]:8080").unwrap().authority(), "[::1]:8080");
        assert!(Target::parse("ftp://x/").is_err());
    }

    #[test]
    fn f01_shift_jis_pages_are_decoded() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("<meta charset=\"Shift_JIS\">市役所のお知らせ");
        assert!(decode(&sjis, None).contains("市役所"));
        let (euc, _, _) = encoding_rs::EUC_JP.encode("町役場");
        assert!(decode(&euc, Some("text/html; charset=EUC-JP")).contains("町役場"));
        assert!(decode("守り".as_bytes(), None).contains("守り"));
    }

    async fn serve_once(answer: Vec<u8>) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await;
            let _ = s.write_all(&answer).await;
        });
        port
    }

    async fn check_port(port: u16) -> Reason {
        let c: HttpCheck = serde_json::from_value(serde_json::json!({"url": format!("http://127.0.0.1:{port}/")})).unwrap();
        check(&c, &Stage::new(), &mut Findings::default()).await.unwrap_err()
    }

    #[tokio::test]
    async fn f01_garbage_and_oversized_heads_are_named() {
        assert_eq!(check_port(serve_once(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()).await).await.code, "http_error");
        let mut huge = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 512 * 1024));
        huge.extend_from_slice(b"\r\n\r\n");
        assert_eq!(check_port(serve_once(huge).await).await.code, "http_error");
        let empty = check_port(serve_once(Vec::new()).await).await;
        assert_eq!(empty.code, "http_error", "{empty:?}");
    }
}
