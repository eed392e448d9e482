//! Blobs in S3-compatible object storage (Amazon S3, MinIO, Ceph RGW, a cloud
//! provider's object storage) through Apache OpenDAL, for installations whose nodes
//! share no file system (F14 quarantine, F24 transferred files, evidence of cases).
//!
//! Objects are what the blob store writes anywhere: already compressed and sealed under
//! the master key, named by HMAC, so the bucket's operator sees neither content nor
//! which known files are kept. A store is acknowledged only once the object storage
//! has answered the (multipart) upload. Credentials are a key id in the configuration
//! and a secret key from the environment or the secrets store, never in the file.

use crate::blobs::{Backend, IoFuture, ObjectReader};
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

/// Size of one part of an upload (S3 allows at least 5 MiB, at most 10,000 parts).
const PART: usize = 8 * 1024 * 1024;

/// Where and how to reach the bucket.
#[derive(Clone)]
pub struct S3Config {
    /// The service's URL, e.g. `https://s3.ap-northeast-1.amazonaws.com` or
    /// `https://minio.pref.example.jp:9000`.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region (`ap-northeast-1`; any value for most S3-compatible stores).
    pub region: String,
    /// A key prefix inside the bucket (e.g. `mamori/blobs/`).
    pub prefix: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// Answer time of one request before it is retried.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Objects in a bucket, staged in a local directory while they are sealed.
pub struct S3Backend {
    op: opendal::Operator,
    staging: PathBuf,
}

fn io_error(e: opendal::Error) -> io::Error {
    let kind = match e.kind() {
        opendal::ErrorKind::NotFound => io::ErrorKind::NotFound,
        opendal::ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

impl S3Backend {
    /// Connects to the bucket (no request is sent yet: [`S3Backend::check`] does one) and
    /// prepares the staging directory, as the local backend does.
    pub fn open(cfg: &S3Config, staging: &Path) -> io::Result<Self> {
        if cfg.endpoint.trim().is_empty() || cfg.bucket.trim().is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "S3 blob storage needs an endpoint and a bucket"));
        }
        if !cfg.endpoint.starts_with("https://") && !is_loopback_url(&cfg.endpoint) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "S3 blob storage outside loopback must use https://"));
        }
        // The HTTP client is reqwest on rustls without a built-in provider: the
        // platform's one TLS backend, aws-lc-rs, serves it (later calls are no-ops).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        opendal_http_transport_reqwest::install_default();
        crate::blobs::prepare_staging(staging)?;
        let builder = opendal::services::S3::default()
            .endpoint(cfg.endpoint.trim_end_matches('/'))
            .bucket(&cfg.bucket)
            .region(if cfg.region.is_empty() { "us-east-1" } else { &cfg.region })
            .root(&format!("/{}", cfg.prefix.trim_matches('/')))
            .access_key_id(&cfg.access_key_id)
            .secret_access_key(&cfg.secret_access_key)
            // Only what the configuration says: no ~/.aws files, no instance metadata.
            .disable_config_load()
            .disable_ec2_metadata();
        let op = opendal::Operator::new(builder)
            .map_err(io_error)?
            .layer(opendal::layers::TimeoutLayer::new().with_timeout(cfg.timeout).with_io_timeout(cfg.timeout))
            .layer(opendal::layers::RetryLayer::new().with_max_times(4).with_jitter());
        Ok(Self { op, staging: staging.to_path_buf() })
    }

    /// Checks that the bucket answers and the credentials are accepted (at start, so a
    /// wrong key is a clear error rather than the first quarantined mail failing).
    pub async fn check(&self) -> io::Result<()> {
        match self.op.stat("mamori-check-does-not-exist").await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }
}

/// Returns true for `http://127.…`, `http://localhost…` and `http://[::1]…` (a test
/// server or a local MinIO next to the node).
fn is_loopback_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or("");
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = if let Some(h) = host.strip_prefix('[') { h.split(']').next().unwrap_or("") } else { host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host) };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Backend for S3Backend {
    fn put<'a>(&'a self, name: &'a str, staged: &'a Path) -> IoFuture<'a, ()> {
        Box::pin(async move {
            let mut file = tokio::fs::File::open(staged).await?;
            let mut w = self.op.writer_with(name).chunk(PART).concurrent(2).await.map_err(io_error)?;
            let mut buf = vec![0u8; PART];
            loop {
                let mut filled = 0;
                while filled < PART {
                    let n = file.read(&mut buf[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                if let Err(e) = w.write(Bytes::copy_from_slice(&buf[..filled])).await {
                    let _ = w.abort().await;
                    return Err(io_error(e));
                }
                if filled < PART {
                    break;
                }
            }
            w.close().await.map_err(io_error)?;
            // Uploaded and answered: the staging file has done its work.
            tokio::fs::remove_file(staged).await
        })
    }

    fn get<'a>(&'a self, name: &'a str) -> IoFuture<'a, ObjectReader> {
        Box::pin(async move {
            let reader = self.op.reader_with(name).chunk(PART).await.map_err(io_error)?;
            let stream = reader.into_bytes_stream(..).await.map_err(io_error)?;
            Ok(Box::new(tokio_util::io::StreamReader::new(stream)) as ObjectReader)
        })
    }

    fn delete<'a>(&'a self, name: &'a str) -> IoFuture<'a, ()> {
        Box::pin(async move {
            match self.op.delete(name).await {
                Err(e) if e.kind() != opendal::ErrorKind::NotFound => Err(io_error(e)),
                _ => Ok(()),
            }
        })
    }

    fn staging(&self) -> &Path {
        &self.staging
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in ["http://127.0.0.1:9000", "http://localhost:9000/", "http://[::1]:9000", "http://127.0.0.1"] {
            assert!(is_loopback_url(ok), "{ok}");
        }
        for bad in ["http://minio.example.jp:9000", "http://10.0.0.5:9000", "http://127.0.0.1.example.jp", "ftp://127.0.0.1"] {
            assert!(!is_loopback_url(bad), "{bad}");
        }
        let cfg = S3Config {
            endpoint: "http://minio.example.jp:9000".into(),
            bucket: "b".into(),
            region: String::new(),
            prefix: String::new(),
            access_key_id: "k".into(),
            secret_access_key: Zeroizing::new("s3cr3t-value".into()),
            timeout: Duration::from_secs(5),
        };
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(S3Backend::open(&cfg, dir.path()).err().map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
        assert!(!format!("{cfg:?}").contains("s3cr3t"), "the secret key is never printed");
    }
}
