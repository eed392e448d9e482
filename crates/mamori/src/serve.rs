//! `mamori serve`: open the stores, seed on first start, start the components and the
//! console, and stop cleanly on SIGINT or SIGTERM.

use crate::config::Config;
use anyhow::{Context, bail};
use mamori_bus::{Bus, ComponentCx, Registry};
use mamori_console::{AppState, Metrics};
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
    let mut registry = Registry::builtin();
    let monitoring = Arc::new(mamori_monitor::Monitoring::new());
    registry.add(monitoring.clone());
    for name in &args.only {
        if name != "console" && registry.get(name).is_none() {
            bail!("--only: unknown part '{name}' (console, {})", registry.all().iter().map(|c| c.name()).collect::<Vec<_>>().join(", "));
        }
    }
    let wants = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    // Check every component's config before starting anything.
    let mut problems = Vec::new();
    for c in registry.all() {
        let section = config.components.get(c.name()).map(|v| serde_json::to_value(v).unwrap_or_default()).unwrap_or_else(|| serde_json::json!({}));
        if let Err(p) = c.check_config(&section) {
            problems.push(format!("[components.{}]: {p}", c.name()));
        }
    }
    for name in config.components.keys() {
        if registry.get(name).is_none() {
            problems.push(format!("[components.{name}]: no such component"));
        }
    }
    if !problems.is_empty() {
        bail!("configuration problems:\n  {}", problems.join("\n  "));
    }

    let data = config.server.data_dir.clone();
    let first_start = crate::prepare_data_dir(&data)?;
    let store = Store::open(&config.database_url()).await.context("cannot open the config store")?;
    let events = EventStore::open(&data.join("events")).context("cannot open the event store")?;
    let bus = Bus::new(events, 4096);
    let hasher = mamori_console::auth::PasswordHasher::new(config.console.argon2_memory_kib, config.console.argon2_iterations);

    // First start: an operator to log in with, and the demo unless turned off.
    let mut first_login = None;
    let mut demo_accounts = Vec::new();
    if store.count_users().await? == 0 {
        let actor = mamori_core::Actor::system();
        if first_start && config.demo.seed && !args.no_demo {
            demo_accounts = crate::seed::demo(&store, &bus, &hasher).await.context("cannot seed the demo prefecture")?;
        }
        first_login = Some(crate::seed::create_account(&store, &hasher, &actor, "admin", "運用管理者", mamori_core::Role::OperatorAdmin, None).await?);
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let listen = config.server.listen;
    let use_tls = !listen.ip().is_loopback() || !config.tls.cert.is_empty();
    let scheme = if use_tls { "https" } else { "http" };
    let shown_host = if listen.ip().is_unspecified() { "localhost".to_string() } else { listen.ip().to_string() };
    let url = match listen.ip() {
        std::net::IpAddr::V6(_) if !listen.ip().is_unspecified() => format!("{scheme}://[{shown_host}]:{}/", listen.port()),
        _ => format!("{scheme}://{shown_host}:{}/", listen.port()),
    };
    // The certificate and the port before anything starts: a wrong path or a port in
    // use is a clear error at start, not a half-started node.
    let tls = if use_tls { Some(crate::tls::load(&config.tls.cert, &config.tls.key, &data, listen.ip())?) } else { None };
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    if !demo_accounts.is_empty() {
        let self_signed_pem = tls.as_ref().filter(|t| t.self_signed).map(|t| t.pem.clone());
        crate::seed::demo_monitors(&store, listen, use_tls, self_signed_pem).await.context("cannot seed the demo monitors")?;
    }
    let poller = store.spawn_policy_poller(Duration::from_secs(2));
    let mut tasks = Vec::new();
    for c in registry.all().iter().filter(|c| wants(c.name())) {
        let mut section = config.components.get(c.name()).map(|v| serde_json::to_value(v).unwrap_or_default()).unwrap_or_else(|| serde_json::json!({}));
        // Notifications link to this console unless the config names another URL.
        if c.name() == "monitor"
            && let Some(obj) = section.as_object_mut()
        {
            obj.entry("console_url").or_insert_with(|| serde_json::json!(url.trim_end_matches('/')));
        }
        let cx = ComponentCx::new(c.as_ref(), bus.clone(), store.clone(), section, shutdown_rx.clone());
        tasks.push(tokio::spawn(supervise(c.clone(), cx)));
    }

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
        monitoring,
    };
    let app = if wants("console") {
        mamori_console::router(state)
    } else {
        axum::Router::new().route("/healthz", axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
    };
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
    server.serve(listener, tls_config, app, shutdown_signal()).await;
    let _ = shutdown_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    poller.abort();
    store.close().await;
    Ok(())
}

/// Runs a component; when it fails, logs why and starts it again after a pause, so one
/// component's fault never takes the node down.
async fn supervise(c: Arc<dyn mamori_bus::Component>, cx: ComponentCx) {
    let mut delay = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        match c.clone().run(cx.clone()).await {
            Ok(()) => return,
            Err(e) => tracing::error!(component = c.name(), error = %e, "component failed; restarting"),
        }
        if *cx.shutdown.borrow() {
            return;
        }
        if started.elapsed() > Duration::from_secs(60) {
            delay = Duration::from_secs(1);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
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
            println!("    {:<20} {:<14} {:<28} {}", c.username, c.role.as_str(), c.tenant.as_deref().unwrap_or("-"), c.password);
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
