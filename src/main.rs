//! `campaign-lottery`: the service and its operator commands.

use anyhow::Context;
use campaign_lottery::app::auth::{Auditor, Operator};
use campaign_lottery::app::{rounds, staff, App};
use campaign_lottery::clock::{Clock, SystemClock};
use campaign_lottery::config::{load_settings, LoadedSettings};
use campaign_lottery::domain::token::Role;
use campaign_lottery::startup::{application, prepare, Application};
use campaign_lottery::telemetry;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "campaign-lottery",
    version,
    about = "Law-quiz campaign lottery and voucher service"
)]
struct Cli {
    /// Folder with default.toml and the campaign files.
    #[arg(long, global = true, env = "APP_CONFIG_DIR", default_value = "config")]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply database migrations and record the campaign configuration, then exit.
    Migrate,
    /// Check the settings and the campaign file without touching the database.
    CheckConfig,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Inspect the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check a drawn round from its published record and entries file (paths or http(s) URLs),
    /// with no database: exit 0 only if every check holds.
    Verify {
        /// The round record (`GET /api/rounds/{round}`).
        #[arg(long = "round", required_unless_present = "chain")]
        record: Option<String>,
        /// The entries file (`GET /api/rounds/{round}/entries`).
        #[arg(long, required_unless_present = "chain")]
        entries: Option<String>,
        /// A whole campaign instead (DESIGN §4d): a folder of drawn records (`*.json`, as served),
        /// or the service's base URL (every drawn round's record and entries fetched and verified
        /// too). Checks each record's link to the one before, each round's rollover, and reports
        /// what the last round left unawarded.
        #[arg(long, conflicts_with_all = ["record", "entries"])]
        chain: Option<String>,
        /// Also the exclusions file (`GET /api/rounds/{round}/exclusions`): its root, counts,
        /// and that no ticket is in both lists.
        #[arg(long)]
        exclusions: Option<String>,
        /// Also the reallocations document (`GET /api/rounds/{round}/reallocations`): forfeited
        /// prizes passed to the reserves in order, each once.
        #[arg(long)]
        reallocations: Option<String>,
        /// Also the service's signature on the record, by this public key (base64 or hex, from
        /// `GET /api/keys`).
        #[arg(long)]
        public_key: Option<String>,
        /// The signature (`GET /api/rounds/{round}/record.sig`); by default, when the record is a
        /// URL, that URL with `/record.sig`.
        #[arg(long, requires = "public_key")]
        signature: Option<String>,
    },
    /// Freeze or draw a round from the terminal (the same rules as the API).
    #[command(subcommand)]
    Round(RoundCommand),
    /// Write a consistent copy of the SQLite database to PATH (a new file) while the service
    /// runs, and check it. PostgreSQL: see docs/operations.md.
    Backup { path: PathBuf },
    /// The SMS outbox (login codes), for running without an SMS gateway.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// The keys that sign the drawn rounds' records (DESIGN §4d).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum RoundCommand {
    /// Freeze a round's entries (after its window; needs the witnesses' commitments).
    Freeze {
        round: u32,
        /// Exactly which public value will be the beacon; none if absent.
        #[arg(long, default_value = "")]
        beacon_source: String,
    },
    /// Draw a frozen round once every committed witness has revealed.
    Draw {
        round: u32,
        /// The beacon's value, when a free-text source was declared at the freeze.
        #[arg(long, default_value = "")]
        beacon: String,
        /// For a drand-quicknet:N source: round N's signature (hex), checked offline.
        #[arg(long, default_value = "")]
        beacon_signature: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Every key, oldest first: id, public key (base64), when made and retired.
    List,
    /// Retire the active key and make a new one (audited): records drawn from now on are signed
    /// with it; the retired key stays published, and its signatures valid.
    Rotate,
}

#[derive(Subcommand)]
enum SmsCommand {
    /// Print the messages not yet sent, oldest first.
    Pending {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Print the newest messages with what became of them (sent, delivered, failed and why).
    Recent {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// operator, witness, auditor or venue.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who or what will use it.
        #[arg(long)]
        name: String,
        /// The venue id, for a venue token.
        #[arg(long)]
        venue: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by its id.
    Revoke { id: uuid::Uuid },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain; exit 1 and name the first bad entry if it does not hold.
    Verify {
        /// Also check the audit heads published in these round records (files or URLs; or
        /// `GET /api/audit/head` answers kept earlier): each must be an entry of the chain.
        #[arg(long, num_args = 1..)]
        anchors: Vec<String>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("unknown role {s:?}: expected operator, witness, auditor or venue"))
}

fn main() -> ExitCode {
    // Errors are logged as one line with their cause chain. With RUST_BACKTRACE=1 anyhow would
    // also capture a backtrace for every error made, slowly, and for nothing the log shows; set
    // RUST_LIB_BACKTRACE=1 to have them anyway. Set before any thread starts.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Serve);
    // The verifier needs nothing of this installation: no settings, no database.
    if let Command::Verify {
        chain: Some(chain), ..
    } = &command
    {
        return verify_chain(chain).await;
    }
    if let Command::Verify {
        record: Some(record),
        entries: Some(entries),
        exclusions,
        reallocations,
        public_key,
        signature,
        ..
    } = &command
    {
        return verify(
            record,
            entries,
            exclusions.as_deref(),
            reallocations.as_deref(),
            public_key.as_deref().map(|k| (k, signature.as_deref())),
        )
        .await;
    }
    let loaded = load_settings(&cli.config_dir)?;
    let log = &loaded.settings.log;
    match command {
        Command::Serve => telemetry::init_logs(&log.format, &log.filter),
        _ => telemetry::init_logs(&log.format, "warn"),
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve => serve(&loaded, clock).await,
        Command::Verify { .. } => unreachable!("handled above"),
        Command::Migrate => {
            let p = prepare(&loaded, clock.as_ref()).await?;
            println!(
                "migrations applied ({}); campaign {} {}",
                p.store.backend(),
                p.campaign.id,
                serde_json::to_string(&p.sync)?.trim_matches('"')
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { path } => backup(&loaded, &path).await,
        Command::CheckConfig => {
            let path = loaded.campaign_path();
            let file = campaign_lottery::config::read_campaign_file(&path)?;
            let today = chrono::Utc::now().date_naive();
            let c = campaign_lottery::config::validate_campaign(&path, file, today)?;
            let t = c.totals();
            println!(
                "{}: {} rounds, {} winners per round, {} winners in all; vouchers {}; {} venues",
                c.id,
                c.rounds.len(),
                c.winners_per_round(),
                t.winners,
                t.vouchers
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                c.venues.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(cmd) => token(&loaded, clock, cmd).await,
        Command::Keys(cmd) => {
            let app = open(&loaded, clock).await?;
            if let KeysCommand::Rotate = cmd {
                let who = Operator::command_line(&user());
                let (retired, key) = campaign_lottery::app::keys::rotate(&app, &who).await?;
                println!(
                    "new signing key {} (retired: {})",
                    key.id,
                    retired.as_deref().unwrap_or("none")
                );
            }
            for k in campaign_lottery::app::keys::published(&app).await? {
                let public: [u8; 32] = hex::decode(&k.public_key)?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("key {} is not 32 bytes", k.id))?;
                println!(
                    "{}  {}  made {}{}",
                    k.id,
                    campaign_lottery::domain::signing::encode_public_key(&public),
                    k.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    k.retired_at
                        .map(|t| format!(", retired {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                        .unwrap_or_else(|| ", active".into())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Round(cmd) => {
            let app = open(&loaded, clock).await?;
            let who = Operator::command_line(&user());
            let r = match cmd {
                RoundCommand::Freeze {
                    round,
                    beacon_source,
                } => rounds::freeze(&app, &who, round, &beacon_source).await?,
                RoundCommand::Draw {
                    round,
                    beacon,
                    beacon_signature,
                } => {
                    let given = campaign_lottery::domain::draw::beacon::Given {
                        value: beacon,
                        signature: beacon_signature,
                    };
                    rounds::draw(&app, &who, round, &given).await?
                }
            };
            let s = &r.state;
            println!(
                "round {}: {}; {} entries; root {}; {} winners{}",
                r.window.number,
                s.progress.as_str(),
                s.entry_count.unwrap_or(0),
                s.entries_root.as_deref().unwrap_or("-"),
                s.winners.len(),
                s.seed
                    .as_deref()
                    .map(|x| format!("; seed {x}"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Sms(command) => {
            let p = prepare(&loaded, clock.as_ref()).await?;
            let messages = match command {
                SmsCommand::Pending { limit } => p.store.pending_sms(limit).await?,
                SmsCommand::Recent { limit } => p.store.recent_sms(limit).await?,
            };
            for m in messages {
                println!(
                    "{}  {}  {:<9} {}{}",
                    m.created_at
                        .with_timezone(&p.campaign.tz())
                        .format("%Y-%m-%d %H:%M:%S"),
                    m.phone,
                    m.status.as_str(),
                    m.body,
                    m.failure.map(|f| format!("  ({f})")).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify { anchors }) => {
            let app = open(&loaded, clock).await?;
            let who = Auditor::command_line(&user());
            let intact = match staff::verify_audit(&app, &who).await? {
                Ok(n) => {
                    println!("audit log intact: {n} entries, chain and head verified");
                    true
                }
                Err(brk) => {
                    println!("audit log BROKEN: {brk}");
                    false
                }
            };
            let mut published = Vec::new();
            for source in &anchors {
                published.extend(anchors_in(source, &fetch(source).await?)?);
            }
            let mut all = intact;
            for (label, ok, detail) in staff::verify_anchors(&app, &who, &published).await? {
                println!("{} {label:<32} {detail}", if ok { "ok  " } else { "FAIL" });
                all &= ok;
            }
            Ok(if all {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// `backup PATH`: the live SQLite database, copied and checked; nothing migrated or written.
async fn backup(loaded: &LoadedSettings, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    use campaign_lottery::store;
    let db = &loaded.settings.database;
    let Some(file) = store::sqlite_file(&db.url) else {
        anyhow::bail!(
            "backup copies an SQLite database; {} is backed up with pg_dump or WAL archiving (docs/operations.md)",
            store::redact_url(&db.url)
        );
    };
    if !file.exists() {
        anyhow::bail!("there is no database at {} to back up", file.display());
    }
    let live = store::connect(&db.url, store::ConnectLimits::with_connections(1)).await?;
    let started = std::time::Instant::now();
    live.backup_into(path)
        .await
        .with_context(|| format!("backing up {} to {}", file.display(), path.display()))?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup of {} written to {} ({} bytes in {:.1} s); integrity check ok",
        file.display(),
        path.display(),
        bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Who runs the command, for the audit log.
fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".into())
}

/// The application over the migrated, synced store, for a command.
async fn open(loaded: &LoadedSettings, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
    let prepared = prepare(loaded, clock.as_ref()).await?;
    Ok(application(prepared, loaded, clock))
}

async fn serve(loaded: &LoadedSettings, clock: Arc<dyn Clock>) -> anyhow::Result<ExitCode> {
    let app = Application::build(loaded, clock).await?;
    let c = &app.campaign;
    tracing::info!(
        port = app.port(),
        backend = app.store.backend(),
        campaign = %c.id,
        "serving {} on http://{}:{}/ (API page: /api/docs/)",
        c.name,
        loaded.settings.server.host,
        app.port()
    );
    app.run_until_stopped().await.context("HTTP server")?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn token(
    loaded: &LoadedSettings,
    clock: Arc<dyn Clock>,
    cmd: TokenCommand,
) -> anyhow::Result<ExitCode> {
    let app = open(loaded, clock).await?;
    let who = Operator::command_line(&user());
    match cmd {
        TokenCommand::Create { role, name, venue } => {
            let created = staff::create_token(&app, &who, role, &name, venue.as_deref()).await?;
            let record = created.record;
            eprintln!(
                "created {} token {} ({}{}); it is shown only now:",
                record.role,
                record.id,
                record.name,
                record
                    .venue_id
                    .as_deref()
                    .map(|v| format!(", venue {v}"))
                    .unwrap_or_default()
            );
            println!("{}", created.token);
        }
        TokenCommand::List => {
            println!(
                "{:<36}  {:<8}  {:<20}  {:<25}  name",
                "id", "role", "venue", "created (UTC)"
            );
            for t in staff::tokens(&app, &who).await? {
                println!(
                    "{:<36}  {:<8}  {:<20}  {:<25}  {}{}",
                    t.id,
                    t.role,
                    t.venue_id.as_deref().unwrap_or("-"),
                    t.created_at.format("%Y-%m-%d %H:%M:%S"),
                    t.name,
                    if t.revoked_at.is_some() {
                        "  [revoked]"
                    } else {
                        ""
                    }
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let t = staff::revoke_token(&app, &who, id).await?;
            println!("revoked {} token {} ({})", t.role, t.id, t.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The audit heads a document publishes: a round record's two, or a kept `GET /api/audit/head`.
fn anchors_in(
    source: &str,
    text: &str,
) -> anyhow::Result<Vec<(String, campaign_lottery::domain::draw::record::AuditHead)>> {
    use campaign_lottery::domain::draw::record::{AuditHead, RoundRecord};
    if let Ok(head) = serde_json::from_str::<AuditHead>(text) {
        return Ok(vec![(source.to_owned(), head)]);
    }
    let record: RoundRecord = serde_json::from_str(text)
        .with_context(|| format!("{source} is neither a round record nor an audit head"))?;
    let mut out = Vec::new();
    if let Some(h) = record.audit_head_at_freeze {
        out.push((format!("round {} at the freeze", record.round), h));
    }
    if let Some(h) = record.audit_head_at_draw {
        out.push((format!("round {} at the draw", record.round), h));
    }
    if out.is_empty() {
        anyhow::bail!("{source}: round {} publishes no audit head", record.round);
    }
    Ok(out)
}

/// Reads a document from a file or an http(s) URL.
async fn fetch(source: &str) -> anyhow::Result<String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let res = reqwest::get(source)
            .await
            .with_context(|| format!("fetching {source}"))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .with_context(|| format!("reading {source}"))?;
        if !status.is_success() {
            anyhow::bail!(
                "{source} answered {status}: {}",
                text.chars().take(200).collect::<String>()
            );
        }
        Ok(text)
    } else {
        std::fs::read_to_string(source).with_context(|| format!("reading {source}"))
    }
}

/// `verify --chain`: the drawn records of a campaign from a folder or the service, each round
/// verified on its own when its entries are at hand (from the service), then the chain.
async fn verify_chain(source: &str) -> anyhow::Result<ExitCode> {
    use campaign_lottery::domain::draw::record::{verify, verify_chain, RoundRecord};
    let mut records = Vec::new();
    let mut checks = Vec::new();
    if source.starts_with("http://") || source.starts_with("https://") {
        let base = source.trim_end_matches('/');
        for round in 1.. {
            let url = format!("{base}/api/rounds/{round}");
            let res = reqwest::get(&url)
                .await
                .with_context(|| format!("fetching {url}"))?;
            if res.status() == reqwest::StatusCode::NOT_FOUND {
                break;
            }
            let text = res.text().await.with_context(|| format!("reading {url}"))?;
            let record: RoundRecord = serde_json::from_str(&text)
                .with_context(|| format!("{url} is not a round record"))?;
            if record.drawn_at.is_none() && record.seed.is_none() {
                break; // the first round not drawn yet
            }
            let entries = fetch(&format!("{url}/entries")).await?;
            for mut c in verify(&record, &entries) {
                c.name = format!("round {round}: {}", c.name);
                checks.push(c);
            }
            records.push(text);
        }
    } else {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(source)
            .with_context(|| format!("reading the folder {source}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for p in paths {
            records.push(
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
            );
        }
    }
    checks.extend(verify_chain(&records));
    for c in &checks {
        println!(
            "{} {:<28} {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    match checks.iter().find(|c| !c.ok) {
        None => {
            println!("verified: {} rounds, each linked to the one before, every rollover as the rules give it", records.len());
            Ok(ExitCode::SUCCESS)
        }
        Some(c) => {
            println!("NOT verified: {} failed", c.name);
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn verify(
    record_source: &str,
    entries_source: &str,
    exclusions_source: Option<&str>,
    reallocations_source: Option<&str>,
    signed_by: Option<(&str, Option<&str>)>,
) -> anyhow::Result<ExitCode> {
    use campaign_lottery::domain::draw::record::{
        verify, verify_exclusions, verify_reallocations, Check, ReallocationsDocument, RoundRecord,
    };
    let record_text = fetch(record_source).await?;
    let record: RoundRecord = serde_json::from_str(&record_text)
        .with_context(|| format!("{record_source} is not a round record"))?;
    let entries = fetch(entries_source).await?;
    println!("round {} of campaign {}", record.round, record.campaign_id);
    let mut checks = verify(&record, &entries);
    if let Some(source) = exclusions_source {
        if checks.iter().all(|c| c.ok) {
            checks.extend(verify_exclusions(&record, &entries, &fetch(source).await?));
        }
    }
    if let Some(source) = reallocations_source {
        if checks.iter().all(|c| c.ok) {
            let doc: ReallocationsDocument = serde_json::from_str(&fetch(source).await?)
                .with_context(|| format!("{source} is not a reallocations document"))?;
            checks.extend(verify_reallocations(&record, &doc));
        }
    }
    if let Some((key, signature_source)) = signed_by {
        let source = match signature_source {
            Some(s) => s.to_owned(),
            None if record_source.starts_with("http") => format!("{record_source}/record.sig"),
            None => anyhow::bail!("--signature FILE is needed with a record read from a file"),
        };
        let sig: campaign_lottery::store::RecordSignature =
            serde_json::from_str(&fetch(&source).await?)
                .with_context(|| format!("{source} is not a record signature"))?;
        checks.push(match campaign_lottery::domain::signing::parse_public_key(key) {
            None => Check {
                name: "signature".into(),
                ok: false,
                detail: format!("{key:?} is not a 32-byte public key (base64 or hex)"),
            },
            Some(public) => {
                let id = campaign_lottery::domain::signing::key_id(&public);
                let valid = campaign_lottery::domain::signing::verify(&public, record_text.as_bytes(), &sig.signature);
                Check {
                    name: "signature".into(),
                    ok: valid && sig.key_id == id,
                    detail: if sig.key_id != id {
                        format!("signed by {}, the key given is {id}", sig.key_id)
                    } else if valid {
                        format!("Ed25519 signature by {id} over the record's exact bytes")
                    } else {
                        format!("not {id}'s signature on these bytes: the record or the signature was changed")
                    },
                }
            }
        });
    }
    for c in &checks {
        println!(
            "{} {:<24} {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    match checks.iter().find(|c| !c.ok) {
        None => {
            println!("verified: the published winners follow from the published entries, secrets and beacon");
            if exclusions_source.is_some() {
                println!(
                    "verified: every ticket issued is an entry or a published exclusion, once"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(c) => {
            println!("NOT verified: {} failed", c.name);
            Ok(ExitCode::FAILURE)
        }
    }
}
