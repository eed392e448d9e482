//! `mamori.toml`: the node's configuration. Every key has a default, so the product runs
//! with no file at all; `mamori init` writes a commented file with these defaults.

use anyhow::{Context, bail};
use mamori_console::ConsoleConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub console: ConsoleConfig,
    pub tls: TlsConfig,
    pub demo: DemoConfig,
    pub vault: VaultConfig,
    pub events: EventsConfig,
    /// `[components.NAME]` sections, handed to each component as JSON.
    pub components: BTreeMap<String, toml::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The node's name in the console; empty: the host name.
    pub node_name: String,
    /// Service account to switch to once the listeners are bound (so ports below 1024
    /// work without running as root); empty: stay who started it.
    pub user: String,
    /// `[server.http]`: timeouts, connection caps, trusted proxies of the listener.
    pub http: mamori_http::HttpConfig,
    /// `[server.cluster]`: several nodes on one PostgreSQL.
    pub cluster: ClusterConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            node_name: String::new(),
            user: String::new(),
            http: mamori_http::HttpConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Seconds a singleton's lease lasts unrenewed (3-300): how soon another node takes
    /// over the monitor when this one dies.
    pub lease_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self { lease_secs: 15 }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Empty: SQLite file `mamori.db` in the data directory. Else `postgres://…`.
    pub url: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. Empty: plain HTTP on loopback, a self-signed certificate
    /// (kept in DATA/tls) on any other address.
    pub cert: String,
    /// PEM private key.
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Seed the demo prefecture when the data directory is created.
    pub seed: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { seed: true }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// The master key file (empty: DATA/master.key, made on first start). The
    /// environment variable MAMORI_MASTER_KEY, when set, is used instead of any file.
    pub master_key_file: String,
    /// Where blobs are kept: "local" (a directory, blob_dir) or "s3" (S3-compatible
    /// object storage, [vault.s3]; what several nodes without a shared directory need).
    pub backend: String,
    /// Where blobs are kept with the local backend, and staged with s3 (empty:
    /// DATA/blobs).
    pub blob_dir: String,
    /// Largest blob, in MiB.
    pub max_blob_mib: u64,
    /// S3-compatible object storage (backend = "s3").
    pub s3: S3Section,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self { master_key_file: String::new(), backend: "local".into(), blob_dir: String::new(), max_blob_mib: 4096, s3: S3Section::default() }
    }
}

/// S3-compatible object storage for blobs. The secret access key is read from
/// MAMORI_S3_SECRET_ACCESS_KEY, else from the platform secret
/// vault/s3-secret-access-key (mamori vault set-secret); never from this file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Section {
    /// The service's URL, e.g. https://s3.ap-northeast-1.amazonaws.com (https unless
    /// on loopback).
    pub endpoint: String,
    /// The bucket (made beforehand).
    pub bucket: String,
    /// The region.
    pub region: String,
    /// A key prefix inside the bucket.
    pub prefix: String,
    /// The access key id.
    pub access_key_id: String,
    /// Seconds one request may take before it is retried.
    pub timeout_secs: u64,
}

impl Default for S3Section {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            bucket: String::new(),
            region: "ap-northeast-1".into(),
            prefix: "mamori/blobs".into(),
            access_key_id: String::new(),
            timeout_secs: 60,
        }
    }
}

/// `[events]`: where events are acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// "local" (a log on this node's disk) or "jetstream" (NATS JetStream, split nodes).
    pub log: String,
    /// Hours the local log keeps segments once every reader has read them.
    pub log_keep_hours: u64,
    /// Hours the local log keeps segments at most for a durable reader behind (a
    /// forwarder whose receiver is down).
    pub reader_keep_hours: u64,
    /// `[events.jetstream]`.
    pub jetstream: JetStreamSection,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self { log: "local".into(), log_keep_hours: 24, reader_keep_hours: 168, jetstream: JetStreamSection::default() }
    }
}

/// NATS JetStream as the event log. The password or token come from
/// MAMORI_NATS_PASSWORD / MAMORI_NATS_TOKEN, never from this file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JetStreamSection {
    pub urls: Vec<String>,
    pub stream: String,
    pub subject: String,
    pub partitions: u32,
    /// Whether this node indexes a partition (false: an intake node only).
    pub index: bool,
    pub index_partition: u32,
    pub max_age_hours: u64,
    /// 0: no limit.
    pub max_gib: u64,
    pub replicas: usize,
    pub user: String,
    pub ca_file: String,
}

impl Default for JetStreamSection {
    fn default() -> Self {
        let d = mamori_bus::jetstream::JetStreamOptions::default();
        Self {
            urls: d.urls,
            stream: d.stream,
            subject: d.subject,
            partitions: d.partitions,
            index: true,
            index_partition: 0,
            max_age_hours: d.max_age.as_secs() / 3600,
            max_gib: 0,
            replicas: d.replicas,
            user: String::new(),
            ca_file: String::new(),
        }
    }
}

/// The environment variables that hold the NATS password and token.
pub const NATS_PASSWORD_ENV: &str = "MAMORI_NATS_PASSWORD";
pub const NATS_TOKEN_ENV: &str = "MAMORI_NATS_TOKEN";

impl EventsConfig {
    /// The bus options of these settings.
    pub fn bus_options(&self) -> mamori_bus::BusOptions {
        let hours = |h: u64| std::time::Duration::from_secs(h * 3600);
        mamori_bus::BusOptions { live_capacity: 4096, log_keep: hours(self.log_keep_hours), reader_keep: hours(self.reader_keep_hours), ..Default::default() }
    }

    /// The JetStream options of this node, when the log is JetStream.
    pub fn jetstream(&self, node: &str) -> Option<mamori_bus::jetstream::JetStreamOptions> {
        use mamori_bus::jetstream::{JetStreamOptions, NatsAuth};
        if self.log != "jetstream" {
            return None;
        }
        let j = &self.jetstream;
        let auth = match (std::env::var(NATS_TOKEN_ENV).ok().filter(|t| !t.is_empty()), j.user.is_empty()) {
            (Some(t), _) => NatsAuth::Token(t),
            (None, false) => NatsAuth::User { name: j.user.clone(), password: std::env::var(NATS_PASSWORD_ENV).unwrap_or_default() },
            (None, true) => NatsAuth::None,
        };
        Some(JetStreamOptions {
            urls: j.urls.clone(),
            stream: j.stream.clone(),
            subject: j.subject.clone(),
            partitions: j.partitions,
            index_partition: j.index.then_some(j.index_partition),
            max_age: std::time::Duration::from_secs(j.max_age_hours.saturating_mul(3600)),
            max_bytes: j.max_gib.saturating_mul(1 << 30),
            replicas: j.replicas,
            auth,
            ca_file: (!j.ca_file.is_empty()).then(|| PathBuf::from(&j.ca_file)),
            node: node.to_string(),
        })
    }
}

/// The environment variable that holds the S3 secret access key.
pub const S3_SECRET_ENV: &str = "MAMORI_S3_SECRET_ACCESS_KEY";

/// The environment variable that holds the master keyring instead of a file.
pub const MASTER_KEY_ENV: &str = "MAMORI_MASTER_KEY";

impl Config {
    /// Opens the vault: the keyring from MAMORI_MASTER_KEY or the key file (made on the
    /// first start of a single node), blobs in the blob directory.
    pub async fn open_vault(&self, store: mamori_store::Store, grant: &mamori_store::CrossTenant) -> anyhow::Result<mamori_vault::Vault> {
        use mamori_vault::Keyring;
        let default_file = self.server.data_dir.join("master.key");
        let mut made = false;
        let ring = match std::env::var(MASTER_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Keyring::parse(&text).with_context(|| format!("{MASTER_KEY_ENV} is not a valid master keyring"))?,
            _ if self.vault.master_key_file.is_empty() => {
                made = !default_file.exists();
                Keyring::read_or_create(&default_file)?
            }
            _ => Keyring::read(Path::new(&self.vault.master_key_file))?,
        };
        let dir = if self.vault.blob_dir.is_empty() { self.server.data_dir.join("blobs") } else { PathBuf::from(&self.vault.blob_dir) };
        let (ring, max) = (std::sync::Arc::new(ring), self.vault.max_blob_mib.saturating_mul(1024 * 1024));
        let opened = match self.vault.backend.as_str() {
            "s3" => {
                let s3 = &self.vault.s3;
                let cfg = mamori_vault::S3Config {
                    endpoint: s3.endpoint.clone(),
                    bucket: s3.bucket.clone(),
                    region: s3.region.clone(),
                    prefix: s3.prefix.clone(),
                    access_key_id: s3.access_key_id.clone(),
                    secret_access_key: zeroize::Zeroizing::new(std::env::var(S3_SECRET_ENV).unwrap_or_default()),
                    timeout: std::time::Duration::from_secs(s3.timeout_secs.max(1)),
                };
                mamori_vault::Vault::open_s3(store, grant, ring, cfg, &dir.join("staging"), max).await
            }
            _ => mamori_vault::Vault::open_local(store, grant, ring, &dir, max).await,
        };
        match opened {
            Ok(v) => Ok(v),
            Err(e) if made => {
                // A new node of an existing store made a key of its own: say what to do.
                let _ = std::fs::remove_file(&default_file);
                bail!(
                    "this config store's secrets are sealed with another node's master key ({e}). Give this node the same key: copy the first node's master key file and set [vault] master_key_file, or set {MASTER_KEY_ENV} / \
                     この設定ストアの秘密情報は別のノードのマスターキーで暗号化されています。最初のノードのマスターキーファイルを複製して [vault] master_key_file に指定するか、{MASTER_KEY_ENV} を設定してください"
                )
            }
            Err(e) => Err(anyhow::Error::new(e).context("cannot open the vault (secrets and blobs): is the master key the one this config store was sealed with? / マスターキーがこの設定ストアのものと一致しません")),
        }
    }

    /// Reads `path`, or the defaults when `path` is None and `./mamori.toml` is absent.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if Path::new("mamori.toml").exists() => PathBuf::from("mamori.toml"),
            None => return Ok(Config::default()),
        };
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read config file {}", path.display()))?;
        let config: Config = toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(config)
    }

    /// Returns the database URL in force.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() { format!("sqlite://{}", self.server.data_dir.join("mamori.db").display()) } else { self.database.url.clone() }
    }

    /// Checks what can be checked without I/O.
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.database.url.is_empty() && !self.database.url.starts_with("postgres") && !self.database.url.starts_with("sqlite:") {
            bail!("database.url must be empty (SQLite in the data directory), sqlite://PATH or postgres://…");
        }
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            bail!("tls.cert and tls.key must be given together");
        }
        if !(1..=1_048_576).contains(&self.vault.max_blob_mib) {
            bail!("[vault] max_blob_mib must be 1-1048576 / max_blob_mib は1〜1048576で指定してください");
        }
        match self.vault.backend.as_str() {
            "local" => {}
            "s3" if self.vault.s3.endpoint.is_empty() || self.vault.s3.bucket.is_empty() || self.vault.s3.access_key_id.is_empty() => {
                bail!(
                    "[vault] backend = \"s3\" needs [vault.s3] endpoint, bucket and access_key_id / S3 の接続先・バケット・アクセスキー ID を指定してください"
                )
            }
            "s3" => {}
            other => bail!("[vault] backend must be \"local\" or \"s3\", not \"{other}\" / backend は local か s3 です"),
        }
        if !(3..=300).contains(&self.server.cluster.lease_secs) {
            bail!("[server.cluster] lease_secs must be 3-300 / lease_secs は3〜300秒で指定してください");
        }
        if !(1..=8760).contains(&self.events.log_keep_hours) || !(self.events.log_keep_hours..=8760).contains(&self.events.reader_keep_hours) {
            bail!(
                "[events] log_keep_hours must be 1-8760 and reader_keep_hours from log_keep_hours to 8760 / log_keep_hours は1〜8760、reader_keep_hours は log_keep_hours〜8760 で指定してください"
            );
        }
        match self.events.log.as_str() {
            "local" => {}
            "jetstream" => {
                let problems = self.events.jetstream("check").map(|j| j.problems()).unwrap_or_default();
                if !problems.is_empty() {
                    bail!("configuration problems / 設定の誤り:\n  {}", problems.join("\n  "));
                }
            }
            other => bail!("[events] log must be \"local\" or \"jetstream\", not \"{other}\" / log は local か jetstream です"),
        }
        if let Err(problems) = self.server.http.validate() {
            bail!("configuration problems:\n  {}", problems.iter().map(|p| format!("[server.http] {p}")).collect::<Vec<_>>().join("\n  "));
        }
        Ok(())
    }
}

/// Returns the commented file `mamori init` writes: the node's sections, then each
/// component's, generated from its typed config and field docs.
pub fn template(registry: &mamori_runtime::Registry) -> String {
    let mut out = TEMPLATE.to_string();
    out.push_str("\n# Components read their own section. / 各コンポーネントの設定。\n");
    for c in registry.all() {
        out.push('\n');
        out.push_str(&c.template());
    }
    out
}

/// Returns the `[components.NAME]` sections as JSON, as components read them.
pub fn component_sections(config: &Config) -> BTreeMap<String, serde_json::Value> {
    config.components.iter().map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null))).collect()
}

/// The node's part of the commented file `mamori init` writes.
const TEMPLATE: &str = r#"# Mamori configuration. Every key below shows its default; delete what you do not change.
# Mamori の設定ファイル。各項目は既定値です。変更しない項目は削除して構いません。

[server]
# Address of the console and API. Outside loopback, Mamori serves HTTPS only.
# コンソールと API の待ち受けアドレス。ループバック以外では HTTPS のみで待ち受けます。
listen = "127.0.0.1:8080"
# Where the config store (SQLite), the event store and certificates live.
# 設定ストア（SQLite）、イベントストア、証明書を置くディレクトリ。
data_dir = "data"
# The node's name in the console (empty: the host name).
# コンソールに表示するノード名（空のときはホスト名）。
node_name = ""
# Service account to switch to after binding the ports (lets a non-root account serve
# ports below 1024); empty: keep the account that started Mamori.
# 待ち受け開始後に切り替えるサービスアカウント（1024 未満のポートを root 以外で扱えます）。空のときは切り替えません。
user = ""

[server.cluster]
# Seconds a singleton component's lease (e.g. the monitor's) lasts unrenewed: when a
# node dies, another takes over within about this time. Several nodes need PostgreSQL.
# シングルトン（監視など）のリース期間（秒）。ノードが止まると、ほぼこの時間で別ノードが引き継ぎます。
lease_secs = 15

[server.http]
# Seconds a client has to send a request's headers; for a connection's first request
# counted from the connection's start, TLS handshake included (slowloris guard).
# リクエストヘッダーの受信期限（秒）。最初のリクエストは接続開始（TLS ハンドシェイクを含む）から数えます。
header_read_timeout_secs = 10
# Seconds a keep-alive connection may wait for its next request.
# キープアライブ接続が次のリクエストを待つ時間（秒）。
idle_timeout_secs = 60
# Seconds between two pieces of a request body before the request fails.
# リクエスト本文の受信が途切れてから失敗とするまでの時間（秒）。
body_read_timeout_secs = 30
# Seconds a response may stay blocked because the client does not read it.
# クライアントが応答を読み取らない場合に接続を切るまでの時間（秒）。
write_timeout_secs = 30
# Connections open at once, in all and from one client address (IPv6: per /64).
# 同時接続数の上限（全体、および 1 クライアントアドレスあたり。IPv6 は /64 単位）。
max_connections = 10000
max_connections_per_client = 256
# Largest request head in bytes, and most header fields in one request.
# リクエストヘッダーの最大サイズ（バイト）と最大項目数。
max_header_bytes = 65536
max_headers = 100
# Most HTTP/2 streams at once on one connection.
# 1 接続で同時に開ける HTTP/2 ストリームの上限。
http2_max_concurrent_streams = 100
# Seconds open connections get to finish on shutdown.
# 停止時に処理中の接続を待つ時間（秒）。
shutdown_grace_secs = 10
# Reverse proxies or load balancers allowed to report the client's address, e.g.
# ["127.0.0.1/32", "10.0.0.0/28"]. From any other peer the header is ignored.
# クライアントのアドレスを通知してよいリバースプロキシ・負荷分散装置。これ以外からのヘッダーは無視します。
trusted_proxies = []
# The header they use: "x-forwarded-for" or "forwarded" (RFC 7239).
# 通知に使うヘッダー（"x-forwarded-for" または "forwarded"）。
client_address_header = "x-forwarded-for"

[database]
# Empty: SQLite file DATA/mamori.db. For several nodes or HA: "postgres://user:password@host/mamori".
# 空: データディレクトリ内の SQLite。複数ノードや冗長構成では PostgreSQL の URL を指定します。
url = ""

[tls]
# PEM files. Empty: a self-signed certificate in DATA/tls is made for non-loopback addresses.
# PEM 形式の証明書と秘密鍵。空の場合、ループバック以外では自己署名証明書を DATA/tls に作成します。
cert = ""
key = ""

[console]
# Set automatically under TLS; only for plain HTTP on loopback may it be false.
# TLS 使用時は自動で有効になります。
secure_cookies = false
# Largest request body (CSV imports included), bytes.
# 受け付ける最大リクエストサイズ（バイト）。
max_body_bytes = 4194304
# Argon2id cost (OWASP recommendation: 19456 KiB, 2 iterations).
# パスワードハッシュ（Argon2id）の強度。
argon2_memory_kib = 19456
argon2_iterations = 2

[vault]
# The master key file that secrets and blobs are encrypted under (empty: DATA/master.key,
# made on the first start). Back it up apart from the data: without it nothing encrypted
# can be read. The environment variable MAMORI_MASTER_KEY, when set, is used instead.
# 秘密情報とファイルを暗号化するマスターキーのファイル（空: DATA/master.key を初回起動時に作成）。
# データとは別にバックアップしてください。環境変数 MAMORI_MASTER_KEY があればそちらを使います。
master_key_file = ""
# Where blobs (quarantined mail, evidence, transferred files) are kept: "local" (the
# directory blob_dir; several nodes need one shared directory) or "s3" (S3-compatible
# object storage, [vault.s3]). Either way they are compressed and encrypted first.
# ファイル（隔離メール、証拠、受け渡しファイル）の保存先: "local"（blob_dir のディレクトリ。
# 複数ノードでは共有ディレクトリが必要）または "s3"（S3 互換ストレージ、[vault.s3]）。どちらも圧縮・暗号化して保存します。
backend = "local"
# The local directory (empty: DATA/blobs); with "s3", files are staged under it.
# 保存先ディレクトリ（空: DATA/blobs）。"s3" のときは一時ファイルの置き場所です。
blob_dir = ""
# Largest file kept, in MiB.
# 保存できるファイルの最大サイズ（MiB）。
max_blob_mib = 4096

[vault.s3]
# S3-compatible object storage (backend = "s3"): Amazon S3, MinIO, Ceph RGW and the like.
# The secret access key comes from MAMORI_S3_SECRET_ACCESS_KEY, else from the platform
# secret vault/s3-secret-access-key (mamori vault set-secret), never from this file.
# S3 互換ストレージ（backend = "s3" のとき）。シークレットアクセスキーは環境変数
# MAMORI_S3_SECRET_ACCESS_KEY か、秘密情報 vault/s3-secret-access-key から読みます（このファイルには書きません）。
# The service's URL (https unless on loopback). / 接続先 URL（ループバック以外は https）。
endpoint = ""
# The bucket, made beforehand. / 保存先のバケット（事前に作成）。
bucket = ""
region = "ap-northeast-1"
# A key prefix inside the bucket. / バケット内のキーの接頭辞。
prefix = "mamori/blobs"
access_key_id = ""
# Seconds one request may take before it is retried. / 1 回の要求の待ち時間（秒、超えると再試行）。
timeout_secs = 60

[events]
# Where an event is acknowledged: "local" (a checksummed log on this node's disk) or
# "jetstream" (NATS JetStream: intake nodes publish, indexing nodes consume; for split
# nodes and scaling out).
# イベントの受付記録の置き場所: "local"（このノードのディスク上のログ）または "jetstream"
# （NATS JetStream。受付ノードが書き込み、索引ノードが読み出します。ノード分割・スケールアウト用）。
log = "local"
# Hours the local log keeps what every reader has read (the searchable store keeps
# events by retention; this is only the log in front of it).
# すべての読み手が読み終えたローカルログのセグメントを残す時間（検索用のイベントストアは保存期間に従い、これはその手前のログだけの設定です）。
log_keep_hours = 24
# Hours it keeps at most for a reader behind, such as a forwarder whose receiver is
# down; past that the oldest go and the forwarder counts them as lost.
# 遅れている読み手（受信側が止まっている転送先など）のために残す最長時間。これを過ぎると古い順に消え、転送側で欠落として数えます。
reader_keep_hours = 168

[events.jetstream]
# NATS servers (tls:// and ca_file outside loopback). / NATS サーバー（ループバック以外は tls:// と ca_file）。
urls = ["nats://127.0.0.1:4222"]
# Partition k is the stream STREAM_k with subjects SUBJECT.k.>.
# パーティション k はストリーム STREAM_k（サブジェクト SUBJECT.k.>）です。
stream = "MAMORI_EVENTS"
subject = "mamori.events"
# Streams the events are spread over by tenant; every node must agree.
# イベントを団体ごとに振り分けるストリーム数。全ノードで同じ値にしてください。
partitions = 1
# Whether this node indexes (false: an intake node only; search on the indexing nodes),
# and which partition. / このノードで索引を作るか（false: 受付専用。検索は索引ノードで行います）と、その対象パーティション。
index = true
index_partition = 0
# Hours a stream keeps events, indexed or not: the longest an indexer may be down.
# ストリームがイベントを保持する時間。索引ノードが停止していてよい最長時間です。
max_age_hours = 168
# GiB a stream may hold (0: no limit); when full, intake is refused, nothing is dropped.
# ストリームの容量上限（GiB、0: 無制限）。上限に達すると受付を拒否し、既存のイベントは消しません。
max_gib = 0
# Copies in a JetStream cluster (1, 3 or 5). / JetStream クラスター内の複製数（1・3・5）。
replicas = 1
# A NATS user (its password from MAMORI_NATS_PASSWORD); or a token in MAMORI_NATS_TOKEN.
# NATS のユーザー名（パスワードは MAMORI_NATS_PASSWORD）。トークンは MAMORI_NATS_TOKEN で指定します。
user = ""
# CA certificates (PEM) for the servers' certificates; set, TLS is required.
# サーバー証明書を検証する CA（PEM）。指定すると TLS 必須になります。
ca_file = ""

[demo]
# Seed the demo prefecture (サンプル県) when the data directory is first created.
# Set to false for a real installation.
# データディレクトリ作成時にデモ用の県（サンプル県）を登録します。本番では false にしてください。
seed = true

"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_the_defaults() {
        let registry = mamori::components::registry();
        let c: Config = toml::from_str(&template(&registry)).unwrap();
        assert_eq!(c.server.listen, ServerConfig::default().listen);
        assert_eq!(c.server.http, mamori_http::HttpConfig::default(), "the template shows the defaults");
        assert_eq!(c.console.argon2_memory_kib, ConsoleConfig::default().argon2_memory_kib);
        assert!(c.demo.seed);
        assert_eq!(c.server.cluster, ClusterConfig::default());
        assert_eq!(c.vault, VaultConfig::default());
        assert_eq!(c.events, EventsConfig::default());
        let plan = mamori_runtime::Plan::check(&registry, &component_sections(&c), |_| true, &[]);
        assert_eq!(plan.err(), None, "every component reads its template section");
        for name in ["retention", "monitor"] {
            assert!(c.components.contains_key(name), "{name}");
        }
    }

    #[test]
    fn bad_http_settings_are_all_listed() {
        let c: Config = toml::from_str("[server.http]\nidle_timeout_secs = 0\ntrusted_proxies = [\"0.0.0.0/0\"]\n").unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("[server.http] idle_timeout_secs") && e.contains("0.0.0.0/0"), "{e}");
    }

    #[test]
    fn misspelled_keys_are_refused() {
        let e = toml::from_str::<Config>("[server]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");
    }
}
