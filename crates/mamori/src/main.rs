//! `mamori`: the one binary of the Mamori municipal information security cloud.
//!
//! `mamori serve` runs the product (console, API, components); `mamori init` writes a
//! commented `mamori.toml`; the other subcommands are what an operator needs before
//! the console is reachable (first operator, password reset, unlock, migrations, audit
//! verification, tenant import/export).

mod admin;
use mamori::components;
mod config;
mod privileges;
mod seed;
mod serve;
mod tls;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "mamori", version, about = "Mamori (守り): municipal information security cloud / 自治体情報セキュリティクラウド")]
struct Cli {
    /// Configuration file (default: ./mamori.toml if present, else built-in defaults).
    #[arg(long, global = true, env = "MAMORI_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides server.data_dir).
    #[arg(long, global = true, env = "MAMORI_DATA")]
    data: Option<PathBuf>,
    /// Database URL (overrides database.url): sqlite://PATH or postgres://…
    #[arg(long, global = true, env = "MAMORI_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the product: console, REST API and components.
    Serve(serve::ServeArgs),
    /// Write a commented mamori.toml with the defaults.
    Init {
        /// Where to write it.
        #[arg(long, default_value = "mamori.toml")]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Manage accounts before the console is reachable.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Create API tokens for automation.
    #[command(subcommand)]
    Token(admin::TokenCommand),
    /// Import or export tenants as CSV.
    #[command(subcommand)]
    Tenant(admin::TenantCommand),
    /// Check or export the audit log.
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Master keys, secrets and blobs: status, rotation, storing a secret.
    #[command(subcommand)]
    Vault(admin::VaultCommand),
    /// Events: legal holds (証拠保全) that retention never purges.
    #[command(subcommand)]
    Events(admin::EventsCommand),
    /// Run as a remote monitoring probe: fetch the checks assigned to this probe from
    /// the core and report their results (runs inside a municipality's network).
    Probe {
        /// The core's URL, e.g. https://mamori.pref.example.lg.jp
        #[arg(long, env = "MAMORI_PROBE_SERVER")]
        server: String,
        /// The probe token (mmp_…), shown once when the probe was registered.
        #[arg(long, env = "MAMORI_PROBE_TOKEN", hide_env_values = true)]
        token: String,
        /// PEM file of the CA (or self-signed certificate) of the core's TLS certificate.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Seconds between fetches of the assignments.
        #[arg(long, default_value_t = 30)]
        refresh_secs: u64,
    },
    /// Measure this machine: `bench events` publishes events of the benchmark mix
    /// through the real pipeline into a fresh folder and reports publish-to-searchable.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Apply database migrations and report the schema version.
    Migrate,
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Publish N events (50 tenants, 7 days, ~200-byte raw records) through the event
    /// log into the searchable store, wait until all are searchable, and end with the
    /// line `RATE <events/s>` (publish to searchable, whole run).
    Events {
        /// How many events.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// A fresh (absent or empty) folder for the run; default a temporary one,
        /// removed afterwards.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Which events: `standard` (~200-byte raw records) or `real-sizes` (proxy
        /// ~240 B, firewall ~1 KB, Windows XML 1.8–3.5 KB).
        #[arg(long, value_enum, default_value_t = MixArg::Standard)]
        mix: MixArg,
        /// Run the log over NATS JetStream at this URL (e.g. nats://127.0.0.1:4222)
        /// instead of the local log; the run's streams are removed afterwards.
        #[arg(long)]
        nats: Option<String>,
        /// With --nats: publish every event through an intake-only node first, then
        /// start an indexing node and time it alone (a split installation's indexer).
        #[arg(long, requires = "nats")]
        index_after: bool,
    },
}

/// The event mixes of `mamori bench events`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum MixArg {
    Standard,
    RealSizes,
}

/// `mamori bench events`.
async fn bench_events(n: usize, data: Option<PathBuf>, mix: MixArg, nats: Option<String>, index_after: bool) -> anyhow::Result<std::process::ExitCode> {
    anyhow::ensure!(n > 0, "--events must be at least 1");
    let tmp;
    let dir = match data {
        Some(d) => {
            anyhow::ensure!(!d.exists() || std::fs::read_dir(&d)?.next().is_none(), "{} is not empty: a benchmark needs a fresh folder", d.display());
            d
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("events")
        }
    };
    println!("publishing {n} events into {} …", dir.display());
    let kind = match mix {
        MixArg::Standard => mamori_store::events::mix::Kind::Standard,
        MixArg::RealSizes => mamori_store::events::mix::Kind::RealSizes,
    };
    let js = nats.map(|url| {
        let run = format!("BENCH{}", std::process::id());
        mamori_bus::jetstream::JetStreamOptions {
            urls: vec![url],
            stream: format!("MAMORI_{run}"),
            subject: format!("mamori.{}", run.to_lowercase()),
            node: "bench".into(),
            ..Default::default()
        }
    });
    let split = if index_after { mamori_bus::bench::Split::IndexAfter } else { mamori_bus::bench::Split::Together };
    let r = mamori_bus::bench::run_split(&dir, n, kind, js, split).await?;
    println!("acknowledged (in the log): {:.1} s, {:.0} events/s", r.acknowledged.as_secs_f64(), n as f64 / r.acknowledged.as_secs_f64());
    if let Some(i) = r.index_only {
        println!("indexing node alone: {:.1} s, {:.0} events/s", i.as_secs_f64(), n as f64 / i.as_secs_f64());
    }
    println!("searchable: {:.1} s; raw data {:.1} MB/s", r.searchable.as_secs_f64(), r.raw_bytes as f64 / 1e6 / r.searchable.as_secs_f64());
    println!("on disk: store {:.0} bytes/event, log {:.0} bytes/event", r.store_bytes as f64 / n as f64, r.log_bytes as f64 / n as f64);
    println!("RATE {:.0} events/s", r.rate());
    Ok(std::process::ExitCode::SUCCESS)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAMORI_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let mut config = config::Config::load(cli.config.as_deref())?;
    if let Some(d) = cli.data {
        config.server.data_dir = d;
    }
    if let Some(u) = cli.database_url {
        config.database.url = u;
    }
    config.check()?;
    match cli.command {
        Command::Serve(args) => serve::run(config, args).await.map(|_| std::process::ExitCode::SUCCESS),
        Command::Init { path, force } => {
            if path.exists() && !force {
                anyhow::bail!("{} exists; use --force to overwrite", path.display());
            }
            std::fs::write(&path, config::template(&components::registry()))?;
            println!("wrote {}", path.display());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Events { events, data, mix, nats, index_after }) => bench_events(events, data, mix, nats, index_after).await,
        Command::User(c) => admin::user(&config, c).await,
        Command::Token(c) => admin::token(&config, c).await,
        Command::Tenant(c) => admin::tenant(&config, c).await,
        Command::Audit(c) => admin::audit(&config, c).await,
        Command::Vault(c) => admin::vault(&config, c).await,
        Command::Events(c) => admin::events(&config, c).await,
        Command::Probe { server, token, ca_file, refresh_secs } => {
            let ca_pem = ca_file.map(|f| std::fs::read_to_string(&f).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))).transpose()?;
            if let Some(pem) = &ca_pem {
                mamori_monitor::check::parse_pem(pem).map_err(|r| anyhow::anyhow!("{}", r.en))?;
            }
            let cfg = mamori_monitor::probe::ProbeConfig { server, token, ca_pem, refresh: std::time::Duration::from_secs(refresh_secs.clamp(5, 3600)) };
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                let _ = tx.send(true);
            });
            mamori_monitor::probe::run(cfg, rx).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Migrate => {
            prepare_data_dir(&config.server.data_dir)?;
            let db = mamori_store::Db::connect(&config.database_url()).await?;
            let ran = db.migrate().await?;
            println!("applied {ran} migration(s); schema version {}", db.schema_version().await?);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("mamori {} (schema {})", env!("CARGO_PKG_VERSION"), mamori_store::latest_schema_version());
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// Creates the data directory readable by its owner only.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<bool> {
    let existed = dir.exists();
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(!existed)
}

/// Raises the soft limit of open files to the hard limit, as Go programs and nginx's
/// `worker_rlimit_nofile` do: a server holding thousands of connections would otherwise
/// hit the usual soft limit of 1024 and refuse clients long before its own caps.
fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer,
        // which lives on this stack frame for the duration of each call.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                let wanted = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
                    tracing::debug!("could not raise the open-file limit");
                }
            }
        }
    }
}
