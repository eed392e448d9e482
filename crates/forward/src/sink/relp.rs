//! RELP, rsyslog's Reliable Event Logging Protocol: every syslog message is a numbered
//! transaction the receiver answers `200 OK` once it has taken it, so a message counts
//! as delivered only when acknowledged, and a broken connection resends exactly those
//! that were not.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. The client opens the session
//! (`open` with `relp_version=0` and `commands=syslog`), then sends up to [`WINDOW`]
//! `syslog` frames before it waits for their answers. The receiver's frames are read
//! with limits ([`MAX_DATA`]); anything else ends the connection.

use super::syslog::{Stream, connect};
use super::{Delivery, SendError};
use crate::config::Destination;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncReadExt, AsyncWriteExt, BufStream};

/// Messages sent before waiting for their answers. librelp's clients use 128; each wait
/// for answers costs about 40 ms against rsyslog (its answers wait for our delayed
/// ACK), so a larger window moves about eight times as many messages (measured in
/// `benches/forward.rs`).
pub const WINDOW: usize = 1024;
/// Largest DATA accepted from the receiver.
pub const MAX_DATA: usize = 128 * 1024;
/// Largest transaction number; the next is 1.
const MAX_TXNR: u64 = 999_999_999;

/// A frame of the receiver.
#[derive(Debug, PartialEq)]
pub struct Frame {
    /// Transaction number.
    pub txnr: u64,
    /// Command (`rsp`, `serverclose`).
    pub command: String,
    /// Data.
    pub data: Vec<u8>,
}

impl Frame {
    /// The status code of a `rsp` (`200 OK` → 200).
    pub fn status(&self) -> Option<u16> {
        let digits = self.data.get(..3)?;
        std::str::from_utf8(digits).ok()?.parse().ok()
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a RELP frame.
    #[error("not a RELP frame: {0}")]
    Malformed(&'static str),
}

/// Reads one token up to `stop` (not included), at most `max` bytes.
async fn token<R: AsyncBufRead + Unpin>(r: &mut R, max: usize, stops: &[u8]) -> Result<(Vec<u8>, u8), FrameError> {
    let mut out = Vec::new();
    loop {
        let b = r.read_u8().await?;
        if stops.contains(&b) {
            return Ok((out, b));
        }
        if out.len() >= max {
            return Err(FrameError::Malformed("token too long"));
        }
        out.push(b);
    }
}

fn number(b: &[u8], what: &'static str) -> Result<u64, FrameError> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(FrameError::Malformed(what));
    }
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or(FrameError::Malformed(what))
}

/// Reads one frame.
pub async fn read_frame<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Frame, FrameError> {
    let (txnr, _) = token(r, 9, b" ").await?;
    let txnr = number(&txnr, "transaction number")?;
    let (command, _) = token(r, 32, b" ").await?;
    if command.is_empty() || !command.iter().all(u8::is_ascii_alphabetic) {
        return Err(FrameError::Malformed("command"));
    }
    let (len, stop) = token(r, 9, b" \n").await?;
    let len = number(&len, "data length")? as usize;
    if len > MAX_DATA {
        return Err(FrameError::Malformed("data too long"));
    }
    let mut data = vec![0; len];
    if stop == b' ' {
        r.read_exact(&mut data).await?;
        if r.read_u8().await? != b'\n' {
            return Err(FrameError::Malformed("no trailer"));
        }
    } else if len != 0 {
        return Err(FrameError::Malformed("data missing"));
    }
    Ok(Frame { txnr, command: String::from_utf8_lossy(&command).into_owned(), data })
}

/// Writes one frame.
fn frame(out: &mut Vec<u8>, txnr: u64, command: &str, data: &[u8]) {
    out.extend_from_slice(format!("{txnr} {command} {}", data.len()).as_bytes());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// Syslog over RELP.
pub struct RelpSink {
    destination: Destination,
    tls: Option<Arc<rustls::ClientConfig>>,
    session: Option<BufStream<Stream>>,
    txnr: u64,
    timeout: Duration,
}

impl RelpSink {
    pub(crate) fn new(d: &Destination, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Self, SendError> {
        Ok(Self { destination: d.clone(), tls, session: None, txnr: 0, timeout: Duration::from_secs(d.timeout_secs) })
    }

    fn next_txnr(&mut self) -> u64 {
        self.txnr = if self.txnr >= MAX_TXNR { 1 } else { self.txnr + 1 };
        self.txnr
    }

    async fn open(&mut self) -> Result<(), SendError> {
        let stream = connect(&self.destination, self.tls.as_ref(), self.timeout).await?;
        let mut s = BufStream::new(stream);
        self.txnr = 0;
        let txnr = self.next_txnr();
        let offer = format!("relp_version=0\nrelp_software=mamori,{},https://example.invalid/mamori\ncommands=syslog", env!("CARGO_PKG_VERSION"));
        let mut out = Vec::new();
        frame(&mut out, txnr, "open", offer.as_bytes());
        let answer = tokio::time::timeout(self.timeout, async {
            s.write_all(&out).await?;
            s.flush().await?;
            read_frame(&mut s).await
        })
        .await
        .map_err(|_| SendError(format!("RELP open with {} timed out", self.destination.address)))?
        .map_err(|e| SendError(format!("RELP open with {}: {e}", self.destination.address)))?;
        if answer.command != "rsp" || answer.txnr != txnr || answer.status() != Some(200) {
            return Err(SendError(format!("RELP receiver {} refused the session: {}", self.destination.address, String::from_utf8_lossy(&answer.data))));
        }
        if !String::from_utf8_lossy(&answer.data).lines().any(|l| l.trim() == "commands=syslog") {
            return Err(SendError(format!("RELP receiver {} does not take syslog", self.destination.address)));
        }
        self.session = Some(s);
        Ok(())
    }

    /// Sends each item (a syslog message) as a `syslog` transaction; those not
    /// acknowledged with 200 come back in [`Delivery::retry`].
    pub(crate) async fn send(&mut self, items: &[&[u8]]) -> Result<Delivery, SendError> {
        if self.session.is_none() {
            self.open().await?;
        }
        let mut delivery = Delivery::default();
        let mut done = 0;
        while done < items.len() {
            let window = &items[done..(done + WINDOW).min(items.len())];
            let mut out = Vec::new();
            let mut pending = std::collections::HashMap::with_capacity(window.len());
            for (n, item) in window.iter().enumerate() {
                let txnr = self.next_txnr();
                frame(&mut out, txnr, "syslog", item);
                pending.insert(txnr, done + n);
            }
            let Some(s) = self.session.as_mut() else { return Err(SendError("no session".into())) };
            let result = tokio::time::timeout(self.timeout, async {
                s.write_all(&out).await?;
                s.flush().await?;
                while !pending.is_empty() {
                    let f = read_frame(s).await?;
                    match f.command.as_str() {
                        "rsp" => {
                            let Some(index) = pending.remove(&f.txnr) else { return Err(FrameError::Malformed("answer to an unknown transaction")) };
                            if f.status() != Some(200) {
                                tracing::warn!(answer = %String::from_utf8_lossy(&f.data), "RELP receiver did not take a message; sending it again");
                                delivery.retry.push(index);
                            }
                        }
                        "serverclose" => return Err(FrameError::Io(std::io::ErrorKind::ConnectionAborted.into())),
                        _ => return Err(FrameError::Malformed("unexpected command")),
                    }
                }
                Ok(())
            })
            .await;
            let why = match result {
                Ok(Ok(())) => {
                    done += window.len();
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_string(),
            };
            tracing::warn!(receiver = %self.destination.address, error = %why, "RELP session broken; the unacknowledged messages are sent again");
            self.session = None;
            if done == 0 && pending.len() == window.len() {
                return Err(SendError(format!("RELP to {}: {why}", self.destination.address)));
            }
            // Acknowledged ones are delivered; the rest go again.
            delivery.retry.extend(pending.into_values());
            delivery.retry.extend(done + window.len()..items.len());
            delivery.retry.sort_unstable();
            return Ok(delivery);
        }
        Ok(delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(b: &[u8]) -> Result<Frame, FrameError> {
        let mut r = tokio::io::BufReader::new(b);
        read_frame(&mut r).await
    }

    #[tokio::test]
    async fn frames_are_read_and_bad_ones_refused() {
        let f = parse(b"2 rsp 6 200 OK\n").await.unwrap();
        assert_eq!((f.txnr, f.command.as_str(), f.status()), (2, "rsp", Some(200)));
        let f = parse(b"0 serverclose 0\n").await.unwrap();
        assert_eq!((f.txnr, f.command.as_str(), f.data.len()), (0, "serverclose", 0));
        for bad in [&b"x rsp 6 200 OK\n"[..], b"1 rsp 6 200 OKX", b"1 rsp 999999 x\n", b"1 r$p 0\n", b"1234567890 rsp 0\n", b"1 rsp 3\n", b"1 rsp 6 200"] {
            assert!(parse(bad).await.is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let mut out = Vec::new();
        frame(&mut out, 7, "syslog", b"<13>1 - - - - - - hi");
        assert_eq!(out, b"7 syslog 20 <13>1 - - - - - - hi\n");
        out.clear();
        frame(&mut out, 8, "close", b"");
        assert_eq!(out, b"8 close 0\n");
    }
}
