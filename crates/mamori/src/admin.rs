//! Admin commands that work on the stores directly, for when the console is not
//! reachable yet (or any more). Every command takes one cross-tenant grant, written to
//! the audit log (`access.grant` by `cli:USER`, naming the command), and every
//! change it makes is audited as `cli:USER` too.

use crate::config::Config;
use anyhow::{Context, bail};
use clap::Subcommand;
use mamori_core::Role;
use mamori_store::{AuditFilter, CrossTenant, Store, UserFilter};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account and print its one-time password.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// operator_admin, soc_analyst, helpdesk, auditor, prefecture_approver,
        /// maintenance_vendor, tenant_admin, tenant_user.
        #[arg(long)]
        role: String,
        /// Local government code of the tenant (tenant roles); for a maintenance vendor,
        /// each tenant it serves (repeat, or comma-separated).
        #[arg(long, value_delimiter = ',')]
        tenant: Vec<String>,
        /// Last day the account works, YYYY-MM-DD (JST); required for maintenance vendors.
        #[arg(long)]
        expires: Option<String>,
        /// Display name (default: the login name).
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Set a new one-time password (to be changed at next login) and print it.
    ResetPassword { username: String },
    /// Lift a lockout.
    Unlock { username: String },
    /// Remove the TOTP second factor (the person enrolls again at next login).
    ResetTotp { username: String },
    /// List accounts.
    List,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token for an account (for automation) and print it once.
    Create {
        /// The account the token acts as; its role bounds the scopes.
        #[arg(long)]
        user: String,
        /// A name for the token, e.g. the system that uses it.
        #[arg(long)]
        name: String,
        /// Scopes, comma-separated, e.g. events:read,monitors:read.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Days until it expires (1-400).
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
}

#[derive(Subcommand)]
pub enum VaultCommand {
    /// Show the master keys and what is sealed under each.
    Status,
    /// Re-seal every secret and blob under the current (first) master key, so older
    /// keys can be removed from the keyring afterwards.
    Rotate,
    /// Print a new master key line (to put first in the key file, then run rotate).
    NewKey,
    /// Store a secret; the value is read from standard input (never from the command
    /// line, where it would stay in the shell history and the process list).
    SetSecret {
        /// Local government code of the tenant; empty: the platform's own.
        #[arg(long, default_value = "")]
        tenant: String,
        /// Name, e.g. ldap/ad01.
        #[arg(long)]
        name: String,
        /// password, private_key, certificate, token or other.
        #[arg(long, default_value = "password")]
        kind: String,
    },
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Import tenants from a CSV file (all rows or none).
    Import { file: PathBuf },
    /// Export tenants as CSV to standard output.
    Export,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exit status 1 when it is broken.
    Verify,
    /// Export the audit log as CSV.
    Export {
        /// File to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Legal holds (証拠保全): events retention keeps until the hold is released.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Check every sealed day partition against its manifest and the audit log (or,
    /// with --export, an evidence export); exit status 1 when something does not hold.
    /// Reads the files only (safe while serving).
    Verify {
        /// An export made by `mamori events export` (its FILE; FILE.manifest.json beside it).
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Export a tenant's events of a time range as evidence: OCSF documents one per
    /// line (newest first) in FILE, and FILE.manifest.json with its SHA-256, the query,
    /// the seals of the days it read and who exported it; recorded in the audit log.
    Export {
        #[command(flatten)]
        range: TenantRange,
        /// Only events matching these words (as in the console's search).
        #[arg(long)]
        query: Option<String>,
        /// The file to write (must not exist).
        #[arg(long)]
        output: PathBuf,
    },
}

/// A tenant's events of a time range (`mamori events hold add`, `export`).
#[derive(clap::Args)]
pub struct TenantRange {
    /// The tenant's code (全国地方公共団体コード).
    #[arg(long)]
    tenant: String,
    /// From (included): YYYY-MM-DD (JST midnight), YYYY-MM-DD HH:MM (JST) or RFC 3339.
    #[arg(long)]
    from: String,
    /// To (excluded), as --from; a date alone means the end of that day.
    #[arg(long)]
    to: String,
}

impl TenantRange {
    /// The tenant, and the range in Unix ms.
    async fn resolve(&self, store: &Store, scope: &mamori_store::Scope) -> anyhow::Result<(mamori_core::Tenant, i64, i64)> {
        let t = store.tenant_by_code(scope, &self.tenant).await?.with_context(|| format!("no tenant with code {}", self.tenant))?;
        Ok((t, range_time("from", &self.from, false)?, range_time("to", &self.to, true)?))
    }
}

#[derive(Subcommand)]
pub enum HoldCommand {
    /// Place a hold on a tenant's events in a time range.
    Add {
        #[command(flatten)]
        range: TenantRange,
        /// Why (required; kept with the hold and in the audit log).
        #[arg(long)]
        reason: String,
        /// What it is for: a case number, a letter's reference.
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// List the holds in force (with --all, released ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Release a hold by its id: retention may then purge its events.
    Release {
        /// The hold's id (from `list`).
        id: String,
    },
}

/// Opens the config store and takes the command's cross-tenant grant (audited).
async fn open(config: &Config, command: &str) -> anyhow::Result<(Store, CrossTenant)> {
    crate::prepare_data_dir(&config.server.data_dir)?;
    let (store, authority) = Store::open(&config.database_url()).await.context("cannot open the config store")?;
    let grant = authority.cli(&format!("mamori {command}")).await.context("cannot record the command in the audit log")?;
    Ok((store, grant))
}

fn hasher(config: &Config) -> mamori_console::auth::PasswordHasher {
    mamori_console::auth::PasswordHasher::new(config.console.argon2_memory_kib, config.console.argon2_iterations)
}

async fn find(store: &Store, username: &str) -> anyhow::Result<mamori_store::User> {
    Ok(store.login_record(username).await?.with_context(|| format!("no account named '{username}'"))?.user)
}

pub async fn user(config: &Config, c: UserCommand) -> anyhow::Result<ExitCode> {
    let (store, grant) = open(config, "user").await?;
    let (actor, scope) = (grant.actor().clone(), grant.scope());
    match c {
        UserCommand::Create { username, role, tenant, expires, display_name } => {
            let role: Role = role.parse().map_err(|p: mamori_core::Problem| anyhow::anyhow!(p.en))?;
            let mut named = Vec::new();
            for code in tenant.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
                let t = store.tenant_by_code(&scope, code).await?.with_context(|| format!("no tenant with code {code}"))?;
                named.push((t.id, t.name));
            }
            let expires_at = match expires {
                Some(d) => Some(mamori_core::time::end_of_day_jst(&d).with_context(|| format!("--expires {d}: not a date YYYY-MM-DD"))?),
                None => None,
            };
            let reach = match role.reach() {
                mamori_core::Reach::OwnTenant if named.len() == 1 => crate::seed::AccountReach { tenant: named.pop(), expires_at, ..Default::default() },
                mamori_core::Reach::OwnTenant => bail!("--tenant CODE (one) is required for {role}"),
                mamori_core::Reach::NamedTenants if named.is_empty() || expires_at.is_none() => {
                    bail!("{role} needs --tenant CODE[,CODE…] and --expires YYYY-MM-DD / 保守業者には担当団体と有効期限が必要です")
                }
                mamori_core::Reach::NamedTenants => crate::seed::AccountReach { tenants: named, expires_at, ..Default::default() },
                mamori_core::Reach::AllTenants if !named.is_empty() => bail!("{role} belongs to no tenant; drop --tenant"),
                mamori_core::Reach::AllTenants => crate::seed::AccountReach { expires_at, ..Default::default() },
            };
            let display = display_name.unwrap_or_else(|| username.clone());
            let c = crate::seed::create_account(&store, &grant, &hasher(config), &username, &display, role, reach).await?;
            println!("created {} ({})", c.username, c.role);
            println!("one-time password: {}", c.password);
        }
        UserCommand::ResetPassword { username } => {
            let u = find(&store, &username).await?;
            let password = mamori_console::auth::random_token(12);
            let hash = hasher(config).hash(&password).map_err(anyhow::Error::msg)?;
            store.set_password(&scope, &actor, u.id, &hash, true, None).await?;
            println!("one-time password for {}: {password}", u.username);
        }
        UserCommand::Unlock { username } => {
            let u = find(&store, &username).await?;
            store.unlock_user(&scope, &actor, u.id).await?;
            println!("unlocked {}", u.username);
        }
        UserCommand::ResetTotp { username } => {
            let u = find(&store, &username).await?;
            store.set_totp(&scope, &actor, u.id, None, 0).await?;
            store.delete_user_sessions(u.id, None).await?;
            println!("removed the second factor of {}; they enroll again at next login", u.username);
        }
        UserCommand::List => {
            let codes: std::collections::HashMap<_, _> = store.list_tenants(&scope).await?.into_iter().map(|t| (t.id, t.code.to_string())).collect();
            let now = mamori_core::time::now_ms();
            for u in store.list_users(&scope, &UserFilter::default()).await? {
                // The tenant of a tenant role; the towns a vendor serves.
                let reach: Vec<&str> = u.tenant_id.iter().chain(&u.tenants).filter_map(|t| codes.get(t).map(|c| c.as_str())).collect();
                let until = u.expires_at.map(|e| format!("until {}", mamori_core::time::format_date_jst(e - 1))).unwrap_or_default();
                let state = if u.disabled {
                    "disabled"
                } else if u.expired_at(now) {
                    "expired"
                } else {
                    ""
                };
                let reach = if reach.is_empty() { "-".to_string() } else { reach.join(",") };
                println!("{:<24} {:<20} {:<24} {:<17} {state}", u.username, u.role.as_str(), reach, until);
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn tenant(config: &Config, c: TenantCommand) -> anyhow::Result<ExitCode> {
    let (store, grant) = open(config, "tenant").await?;
    let (actor, scope) = (grant.actor().clone(), grant.scope());
    match c {
        TenantCommand::Import { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            match mamori_console::import_tenants_csv(&bytes) {
                Ok(rows) => {
                    let r = store.import_tenants(&scope, &actor, rows).await?;
                    println!("created {}, updated {}", r.created, r.updated);
                }
                Err(problems) => {
                    for p in problems.0 {
                        eprintln!("{}", p.ja);
                    }
                    bail!("nothing was imported");
                }
            }
        }
        TenantCommand::Export => print!("{}", mamori_console::export_tenants_csv(&store.list_tenants(&scope).await?)),
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(config: &Config, c: AuditCommand) -> anyhow::Result<ExitCode> {
    let (store, grant) = open(config, "audit").await?;
    let scope = grant.scope();
    let code = match c {
        AuditCommand::Verify => {
            let r = store.verify_audit().await?;
            match r.first_bad {
                None => {
                    println!("audit log intact: {} entries, head {}", r.entries, r.head);
                    ExitCode::SUCCESS
                }
                Some((seq, why)) => {
                    println!("audit log BROKEN at entry {seq}: {why} ({} entries checked)", r.entries);
                    ExitCode::from(1)
                }
            }
        }
        AuditCommand::Export { output } => {
            let entries = store.export_audit(&scope, &AuditFilter::default()).await?;
            let csv = mamori_console::export_audit_csv(&entries);
            match output {
                Some(p) => std::fs::write(&p, csv).with_context(|| format!("cannot write {}", p.display()))?,
                None => print!("{csv}"),
            }
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}

pub async fn token(config: &Config, c: TokenCommand) -> anyhow::Result<ExitCode> {
    let (store, grant) = open(config, "token create").await?;
    match c {
        TokenCommand::Create { user, name, scopes, days } => {
            let account = find(&store, &user).await?;
            // The console refuses tokens of such accounts; do not print one that cannot work.
            if !account.usable_at(mamori_core::time::now_ms()) || account.must_change_password {
                bail!(
                    "'{user}' is disabled, expired, or must set its password first (log in once) / このアカウントは無効か期限切れ、または初回ログインでのパスワード変更が済んでいません"
                );
            }
            let mut parsed = Vec::new();
            for s in &scopes {
                let Some(scope) = mamori_core::TokenScope::ALL.into_iter().find(|t| t.as_str() == s.trim()) else {
                    let known: Vec<&str> = mamori_core::TokenScope::ALL.iter().map(|t| t.as_str()).collect();
                    bail!("unknown scope '{s}' (known: {})", known.join(", "));
                };
                if !account.role.allows(scope.permission()) {
                    bail!("scope {s} exceeds the role of '{user}' ({}) / スコープ {s} はこのアカウントのロールにない権限です", account.role.as_str());
                }
                parsed.push(scope);
            }
            if !(1..=400).contains(&days) {
                bail!("--days must be 1-400");
            }
            let expires_at = mamori_core::time::now_ms() + days * 86_400_000;
            let (new, secret) = mamori_console::auth::mint_api_token(account.id, &name, parsed, expires_at);
            let token = store.create_token_for(&grant, new, account.tenant_id).await?;
            // The secret goes to standard output only, once; the store keeps its hash.
            eprintln!("token {} for {user}, expires {} (shown once / 一度だけ表示します):", token.id, mamori_core::time::format_jst(token.expires_at));
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn vault(config: &Config, c: VaultCommand) -> anyhow::Result<ExitCode> {
    if let VaultCommand::NewKey = c {
        let text = mamori_vault::Keyring::generate_text().map_err(|e| anyhow::anyhow!("{e}"))?;
        // Only the key line: comments belong to the file once.
        if let Some(line) = text.lines().find(|l| !l.starts_with('#')) {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (store, grant) = open(config, "vault").await?;
    let vault = config.open_vault(store.clone(), &grant).await?;
    let (actor, scope) = (grant.actor().clone(), grant.scope());
    match c {
        VaultCommand::Status => {
            let secrets = vault.secrets.list(&scope).await?;
            let (blobs, stored) = store.blob_totals(&grant).await?;
            println!("master keys (the first seals new data): {}", vault.keyring_ids().join(", "));
            let mut by_key: std::collections::BTreeMap<&str, usize> = Default::default();
            for s in &secrets {
                *by_key.entry(s.key_id.as_str()).or_default() += 1;
            }
            for (k, n) in by_key {
                println!("  {k}: {n} secrets");
            }
            let old = store.blobs_sealed_with_other_key(&grant, vault.current_key_id(), i64::MAX).await?.len();
            println!("blobs: {blobs} ({stored} bytes stored), {old} sealed under an older key");
        }
        VaultCommand::Rotate => {
            let secrets = vault.secrets.rotate(&grant).await?;
            let mut blobs = 0;
            loop {
                let n = vault.blobs.rotate(&grant, 100).await?;
                blobs += n;
                if n < 100 {
                    break;
                }
            }
            println!("re-sealed under {}: {secrets} secrets, {blobs} blobs / 再暗号化しました", vault.current_key_id());
        }
        VaultCommand::SetSecret { tenant, name, kind } => {
            let tenant = if tenant.trim().is_empty() {
                None
            } else {
                Some(store.tenant_by_code(&scope, &tenant).await?.with_context(|| format!("no tenant with code {tenant}"))?.id)
            };
            let kind: mamori_vault::SecretKind = kind.parse().map_err(|p: mamori_core::Problem| anyhow::anyhow!(p.en))?;
            let mut value = zeroize::Zeroizing::new(String::new());
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut value).context("cannot read the value from standard input")?;
            let trimmed = value.trim_end_matches(['\r', '\n']);
            match vault.secrets.put(&scope, &actor, tenant, &name, kind, trimmed.as_bytes()).await {
                Ok(info) => println!("stored {} ({}, master key {}) / 保存しました", info.name, info.kind, info.key_id),
                Err(mamori_vault::SecretError::Store(mamori_store::StoreError::Invalid(p))) => {
                    bail!("{}", p.0.iter().map(|p| format!("{}: {}", p.field, p.en)).collect::<Vec<_>>().join("; "))
                }
                Err(e) => return Err(e.into()),
            }
        }
        VaultCommand::NewKey => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a time of a [`TenantRange`]; a date alone as `to` is the end of that day.
fn range_time(flag: &str, value: &str, end_of_day: bool) -> anyhow::Result<i64> {
    let t = if end_of_day { mamori_core::time::parse_range_end(value) } else { mamori_core::time::parse_time(value) };
    t.with_context(|| format!("--{flag} {value}: not a date or time (YYYY-MM-DD, YYYY-MM-DD HH:MM or RFC 3339) / 日時を読めません"))
}

pub async fn events(config: &Config, c: EventsCommand) -> anyhow::Result<ExitCode> {
    let c = match c {
        EventsCommand::Verify { export: None } => return verify_events(config).await,
        EventsCommand::Verify { export: Some(file) } => return verify_export(config, &file).await,
        EventsCommand::Export { range, query, output } => return export_events(config, &range, query, &output).await,
        EventsCommand::Hold(c) => c,
    };
    let (store, grant) = open(config, "events hold").await?;
    let (actor, scope) = (grant.actor().clone(), grant.scope());
    match c {
        HoldCommand::Add { range, reason, reference } => {
            let (t, from_ms, to_ms) = range.resolve(&store, &scope).await?;
            let hold = mamori_store::NewEventHold { tenant: t.id, from_ms, to_ms, reason, reference };
            let h = match store.place_event_hold(&scope, &actor, hold).await {
                Err(mamori_store::StoreError::Invalid(problems)) => {
                    bail!("{}", problems.0.iter().map(|p| format!("{} / {}", p.en, p.ja)).collect::<Vec<_>>().join("\n"))
                }
                other => other?,
            };
            println!("{}", h.id);
            eprintln!(
                "hold placed on {}'s events {} – {} / {} の {} から {} までのイベントを保全しました",
                t.name,
                mamori_core::time::format_jst(h.from_ms),
                mamori_core::time::format_jst(h.to_ms),
                t.name,
                mamori_core::time::format_jst(h.from_ms),
                mamori_core::time::format_jst(h.to_ms)
            );
        }
        HoldCommand::List { all } => {
            let names: std::collections::HashMap<_, _> = store.list_tenants(&scope).await?.into_iter().map(|t| (t.id, (t.code.to_string(), t.name))).collect();
            for h in store.list_event_holds(&scope, all).await? {
                let (code, name) = names.get(&h.tenant).cloned().unwrap_or_default();
                let state = match (&h.released_by, h.released_at) {
                    (Some(by), Some(at)) => format!("released {} by {by}", mamori_core::time::format_jst(at)),
                    _ => "holding".to_string(),
                };
                println!(
                    "{}\t{code} {name}\t{} – {}\t{}\t{}\tby {} {}\t{state}",
                    h.id,
                    mamori_core::time::format_jst(h.from_ms),
                    mamori_core::time::format_jst(h.to_ms),
                    h.reason,
                    h.reference,
                    h.created_by,
                    mamori_core::time::format_jst(h.created_at)
                );
            }
        }
        HoldCommand::Release { id } => {
            let id: uuid::Uuid = id.parse().with_context(|| format!("{id} is not a hold id"))?;
            let h = store.release_event_hold(&scope, &actor, id).await?;
            eprintln!("hold {} released; retention may purge its events at its next run / 保全を解除しました", h.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mamori events verify`.
async fn verify_events(config: &Config) -> anyhow::Result<ExitCode> {
    use mamori_store::events::seal::DayCheck;
    let (store, grant) = open(config, "events verify").await?;
    let dir = config.server.data_dir.join("events");
    let recorded = store.event_seal_digests(&grant).await?;
    let checks = if dir.is_dir() { mamori_store::events::seal::verify_dir(&dir)? } else { Vec::new() };
    let (mut sealed, mut open, mut bad) = (0, 0, 0);
    for (day, check) in &checks {
        match check {
            DayCheck::Sealed { seals, digest } if recorded.get(day).is_some_and(|d| d.contains(digest)) => {
                sealed += 1;
                println!("{day}\tOK\t{seals} seal(s), last {digest}");
            }
            DayCheck::Sealed { digest, .. } => {
                bad += 1;
                println!("{day}\tBROKEN\tthe last seal ({digest}) is not in the audit log: the manifest was rewritten / 封印記録が監査ログにありません");
            }
            DayCheck::Open => {
                if recorded.contains_key(day) {
                    bad += 1;
                    println!("{day}\tBROKEN\tthe audit log records seals of this day but it has no manifest / 封印記録があるのにマニフェストがありません");
                } else {
                    open += 1;
                    println!("{day}\topen\tnot sealed yet");
                }
            }
            DayCheck::Broken { reason } => {
                bad += 1;
                println!("{day}\tBROKEN\t{reason} / 封印後に変更されています");
            }
        }
    }
    eprintln!("{sealed} sealed day(s) hold, {open} open, {bad} broken / 封印済み {sealed} 日は正常、未封印 {open} 日、異常 {bad} 日");
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn manifest_path(file: &std::path::Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

fn sha256_file(path: &std::path::Path) -> anyhow::Result<(u64, String)> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let bytes = std::io::copy(&mut f, &mut h)?;
    Ok((bytes, hex::encode(h.finalize())))
}

/// `mamori events export`.
async fn export_events(config: &Config, range: &TenantRange, query: Option<String>, output: &std::path::Path) -> anyhow::Result<ExitCode> {
    use sha2::Digest;
    use std::io::Write;
    let (store, grant) = open(config, "events export").await?;
    let (t, from_ms, to_ms) = range.resolve(&store, &grant.scope()).await?;
    let dir = config.server.data_dir.join("events");
    let events = mamori_store::events::EventStore::open_read_only(&dir).context("cannot read the event store")?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(output)
        .with_context(|| format!("cannot create {} (it must not exist)", output.display()))?;
    let mut out = std::io::BufWriter::new(out);
    let mut q = mamori_store::events::EventQuery {
        text: query.clone(),
        limit: mamori_store::events::MAX_LIMIT,
        ..mamori_store::events::EventQuery::between(from_ms, to_ms)
    };
    let mut count = 0u64;
    loop {
        let page = events.query(&grant.tenant(t.id), &q).await?;
        for e in &page.events {
            serde_json::to_writer(&mut out, &e.doc)?;
            out.write_all(b"\n")?;
            count += 1;
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    out.into_inner().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?.sync_all()?;
    let (bytes, sha256) = sha256_file(output)?;
    // The seals of the days the range reaches (those sealed so far).
    let first_day = mamori_core::time::format_rfc3339(from_ms)[..10].to_string();
    let last_day = mamori_core::time::format_rfc3339(to_ms - 1)[..10].to_string();
    let seals: Vec<serde_json::Value> = mamori_store::events::seal::last_digests(&dir)?
        .into_iter()
        .filter(|(d, _)| *d >= first_day && *d <= last_day)
        .map(|(day, digest)| serde_json::json!({"day": day, "digest": digest}))
        .collect();
    let manifest = serde_json::json!({
        "format": "mamori-evidence/1",
        "tenant": {"id": t.id, "code": t.code.to_string(), "name": t.name},
        "from": mamori_core::time::format_rfc3339(from_ms),
        "to": mamori_core::time::format_rfc3339(to_ms),
        "query": query,
        "order": "newest first",
        "events": count,
        "file": {"name": output.file_name().map(|n| n.to_string_lossy().to_string()), "bytes": bytes, "sha256": sha256},
        "partition_seals": seals,
        "exported_by": grant.actor().name,
        "exported_at": mamori_core::time::format_rfc3339(mamori_core::time::now_ms()),
    });
    let text = serde_json::to_string_pretty(&manifest)?;
    std::fs::write(manifest_path(output), &text)?;
    let digest = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    store.record_event_export(&grant, t.id, &digest, &manifest).await?;
    println!("{}", manifest_path(output).display());
    eprintln!("{count} events of {} exported; manifest SHA-256 {digest} is in the audit log / {count} 件を書き出し、監査ログに記録しました", t.name);
    Ok(ExitCode::SUCCESS)
}

/// `mamori events verify --export FILE`.
async fn verify_export(config: &Config, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    use sha2::Digest;
    let (store, grant) = open(config, "events verify").await?;
    let text = std::fs::read(manifest_path(file)).with_context(|| format!("cannot read {}", manifest_path(file).display()))?;
    let manifest: serde_json::Value = serde_json::from_slice(&text).context("the manifest is not JSON")?;
    let digest = hex::encode(sha2::Sha256::digest(&text));
    let (bytes, sha256) = sha256_file(file)?;
    let mut problems = Vec::new();
    if manifest["file"]["sha256"].as_str() != Some(sha256.as_str()) || manifest["file"]["bytes"].as_u64() != Some(bytes) {
        problems.push("the file is not the one the manifest names (its SHA-256 or size differs) / ファイルがマニフェストと一致しません".to_string());
    }
    if !store.event_export_digests(&grant).await?.contains(&digest) {
        problems.push("the manifest is not in the audit log (made elsewhere or changed) / マニフェストが監査ログの記録と一致しません".to_string());
    }
    if problems.is_empty() {
        println!("OK\t{} events, SHA-256 {sha256}, manifest {digest}", manifest["events"]);
        Ok(ExitCode::SUCCESS)
    } else {
        for p in problems {
            println!("BROKEN\t{p}");
        }
        Ok(ExitCode::FAILURE)
    }
}
