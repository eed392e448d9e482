//! `mamori serve`: open the stores, seed on first start, start the components and the
//! console, and stop cleanly on SIGINT or SIGTERM.

use crate::config::Config;
use anyhow::{Context, bail};
use mamori_bus::Bus;
use mamori_console::{AppState, Metrics};
use mamori_runtime::{Node, NodeOptions, Plan};
use mamori_store::Store;
use mamori_store::events::EventStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.listen), e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Do not seed the demo prefecture on first start (a real installation).
    #[arg(long)]
    no_demo: bool,
    /// Run only these parts, comma-separated: `console` and component names (e.g.
    /// `--only retention` for a node that runs only retention).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

pub async fn run(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    let registry = mamori::components::registry();
    for name in &args.only {
        if name != "console" && registry.get(name).is_none() {
            bail!("--only: unknown part '{name}' (console, {})", registry.all().iter().map(|c| c.name()).collect::<Vec<_>>().join(", "));
        }
    }
    let wants = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let listen = config.server.listen;
    let use_tls = !listen.ip().is_loopback() || !config.tls.cert.is_empty();
    let scheme = if use_tls { "https" } else { "http" };
    let shown_host = if listen.ip().is_unspecified() { "localhost".to_string() } else { listen.ip().to_string() };
    let url = match listen.ip() {
        std::net::IpAddr::V6(_) if !listen.ip().is_unspecified() => format!("{scheme}://[{shown_host}]:{}/", listen.port()),
        _ => format!("{scheme}://{shown_host}:{}/", listen.port()),
    };

    // Every component's section, and clashes between listeners (the console's
    // included), before anything starts: all problems at once.
    let mut sections = crate::config::component_sections(&config);
    // Notifications link to this console unless the config names another URL.
    if let Some(obj) = sections.entry("monitor".into()).or_insert_with(|| serde_json::json!({})).as_object_mut() {
        obj.entry("console_url").or_insert_with(|| serde_json::json!(url.trim_end_matches('/')));
    }
    let console_listener = [("console".to_string(), mamori_runtime::Resource::tcp("https", listen))];
    let plan = match Plan::check(&registry, &sections, wants, &console_listener) {
        Ok(plan) => plan,
        Err(problems) => bail!("configuration problems / 設定の誤り:\n  {}", problems.join("\n  ")),
    };

    // Bind every port, then give up root: nothing after this runs privileged.
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let plan = plan.bind().map_err(anyhow::Error::msg)?;
    if !config.server.user.is_empty() {
        crate::privileges::drop_to(&config.server.user)?;
        tracing::info!(user = %config.server.user, "listeners bound; running as the service account");
    }

    let data = config.server.data_dir.clone();
    let first_start = crate::prepare_data_dir(&data)?;
    let (store, authority) = Store::open(&config.database_url()).await.context("cannot open the config store")?;
    let events = EventStore::open(&data.join("events")).context("cannot open the event store")?;
    let node_name = if config.server.node_name.is_empty() { mamori_runtime::hostname() } else { config.server.node_name.clone() };
    let bus = match config.events.jetstream(&node_name) {
        None => Bus::open(events, config.events.bus_options()).context("cannot open the event log")?,
        Some(js) => {
            let role = match js.index_partition {
                Some(k) => format!("indexing partition {k} of {}", js.partitions),
                None => "intake only (events are searchable on the indexing nodes)".to_string(),
            };
            let bus = Bus::connect(events, config.events.bus_options(), js)
                .await
                .context("cannot reach NATS JetStream for the event log / イベントログの NATS JetStream に接続できません")?;
            tracing::info!(role, "event log: NATS JetStream");
            bus
        }
    };
    let hasher = mamori_console::auth::PasswordHasher::new(config.console.argon2_memory_kib, config.console.argon2_iterations);

    // First start: an operator to log in with, and the demo unless turned off.
    let mut first_login = None;
    let mut demo_accounts = Vec::new();
    let seeding = if store.count_users().await? == 0 { Some(authority.grant("system:first-start", "first operator account and demo").await?) } else { None };
    if let Some(grant) = &seeding {
        if first_start && config.demo.seed && !args.no_demo {
            demo_accounts = crate::seed::demo(&store, grant, &bus, &hasher).await.context("cannot seed the demo prefecture")?;
        }
        let reach = crate::seed::AccountReach::default();
        first_login = Some(crate::seed::create_account(&store, grant, &hasher, "admin", "運用管理者", mamori_core::Role::OperatorAdmin, reach).await?);
    }

    // The certificate before anything starts: a wrong path is a clear error at start,
    // not a half-started node.
    let tls = if use_tls { Some(crate::tls::load(&config.tls.cert, &config.tls.key, &data, listen.ip())?) } else { None };
    if !demo_accounts.is_empty() {
        let self_signed_pem = tls.as_ref().filter(|t| t.self_signed).map(|t| t.pem.clone());
        let grant = seeding.as_ref().context("demo accounts without a first start")?;
        crate::seed::demo_monitors(&store, grant, listen, use_tls, self_signed_pem).await.context("cannot seed the demo monitors")?;
    }
    let poller = store.spawn_policy_poller(Duration::from_secs(2));
    let directory_poller = store.spawn_directory_poller(Duration::from_secs(2));
    let node = Node::new(NodeOptions {
        name: node_name.clone(),
        lease_ttl: Duration::from_secs(config.server.cluster.lease_secs),
        shutdown_grace: Duration::from_secs(config.server.http.shutdown_grace_secs),
        ..NodeOptions::default()
    });
    let vault = config.open_vault(store.clone(), &authority.grant("vault", "open the secrets and blob store").await?).await?;
    let running = match plan.start(&node, store.clone(), &authority, bus.clone(), vault.clone()).await {
        Ok(r) => r,
        Err(problems) => bail!("components could not be built / コンポーネントを起動できません:\n  {}", problems.join("\n  ")),
    };

    config.console.secure_cookies |= use_tls;
    let http_stats = Arc::new(mamori_http::ServerStats::default());
    let state = AppState {
        store: store.clone(),
        bus: bus.clone(),
        registry: registry.clone(),
        config: Arc::new(config.console.clone()),
        metrics: Arc::new(Metrics::new(http_stats.clone())),
        version: env!("CARGO_PKG_VERSION"),
        throttle: Arc::new(mamori_console::auth::LoginThrottle::default()),
        node: node.clone(),
        vault: vault.clone(),
    };
    // A node without the console still answers /healthz and /metrics.
    let app = if wants("console") { mamori_console::router(state) } else { mamori_console::node_router(state) };
    let limits = config.server.http.limits().with_max_body_bytes(config.console.max_body_bytes);
    let server = mamori_http::HttpServer::with_stats(limits, config.server.http.trusted_proxies(), http_stats);
    announce(&url, first_login.as_ref(), &demo_accounts, &data);

    let tls_config = match &tls {
        Some(t) => {
            tracing::info!(certificate = %t.certs.cert_path().display(), "serving HTTPS");
            spawn_reload_on_sighup(t.certs.clone());
            Some(t.certs.server_config(true)?)
        }
        None => None,
    };
    // One signal stops the listener and the components together; both drain within
    // the grace, in parallel.
    let (signal_tx, signal_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = signal_tx.send(true);
    });
    let mut http_stop = signal_rx.clone();
    let mut components_stop = signal_rx;
    tokio::join!(server.serve(listener, tls_config, app, async move { mamori_runtime::stopped(&mut http_stop).await }), async move {
        mamori_runtime::stopped(&mut components_stop).await;
        running.shutdown().await;
    });
    poller.abort();
    directory_poller.abort();
    store.close().await;
    Ok(())
}

fn announce(url: &str, first: Option<&crate::seed::Credential>, demo: &[crate::seed::Credential], data: &std::path::Path) {
    println!("Mamori {} is running.", env!("CARGO_PKG_VERSION"));
    println!("  コンソール / console: {url}");
    println!("  データ / data: {}", data.display());
    if let Some(c) = first {
        println!("  初回ログイン / first login: {}  初期パスワード / one-time password: {}", c.username, c.password);
        println!("  （初回ログイン時にパスワード変更と二要素認証の設定を行います / you will set a new password and TOTP at first login）");
    }
    if !demo.is_empty() {
        println!("  デモ用アカウント / demo accounts (one-time passwords):");
        for c in demo {
            println!("    {:<20} {:<20} {:<28} {}", c.username, c.role.as_str(), c.tenant.as_deref().unwrap_or("-"), c.password);
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: no new connections; open ones may finish");
}

/// Loads the certificate files again on SIGHUP (after a renewal), keeping the old
/// certificate when the new files are broken.
fn spawn_reload_on_sighup(certs: Arc<mamori_http::tls::CertStore>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            match certs.reload() {
                Ok(()) => tracing::info!(certificate = %certs.cert_path().display(), "TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays in use"),
            }
        }
    });
}
