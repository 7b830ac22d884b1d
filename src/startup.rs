//! Putting the service together: settings → store (migrated, campaign synced) → HTTP server.

use crate::app::App;
use crate::clock::Clock;
use crate::config::{
    campaign_error, read_campaign_file, read_question_bank, validate_campaign, LoadedSettings,
};
use crate::domain::campaign::Campaign;
use crate::domain::quiz::QuestionBank;
use crate::http;
use crate::store::{self, SharedStore, StoreError, SyncOutcome};
use actix_web::{web, HttpServer};
use anyhow::Context;
use chrono_tz::Tz;
use std::net::TcpListener;
use std::sync::Arc;

/// A store with its migrations applied and the configured campaign recorded.
pub struct Prepared {
    pub store: SharedStore,
    pub campaign: Campaign,
    pub questions: QuestionBank,
    pub sync: SyncOutcome,
    /// The key that signs proof-of-work challenges, the same for every instance.
    pub challenge_key: String,
}

/// Connects to the database, migrates it and syncs the campaign configuration into it.
pub async fn prepare(loaded: &LoadedSettings, clock: &dyn Clock) -> anyhow::Result<Prepared> {
    let path = loaded.campaign_path();
    // Read the file before touching the database: a typo should not need a database to report.
    let file = read_campaign_file(&path)?;
    let questions = read_question_bank(&loaded.questions_path())?;
    if questions.len() < file.quiz.questions_per_attempt as usize {
        anyhow::bail!(
            "question bank {} has {} questions, but campaign file {} asks {} per attempt",
            loaded.questions_path().display(),
            questions.len(),
            path.display(),
            file.quiz.questions_per_attempt
        );
    }
    let db = &loaded.settings.database;
    let store = step(
        &format!("connecting to {}", store::redact_url(&db.url)),
        store::connect(&db.url, db.limits()),
    )
    .await?;
    step("applying database migrations", store.migrate()).await?;
    let recorded = step("reading the recorded campaign", store.recorded_campaign()).await?;
    // A demo campaign that starts "today" keeps the day it first ran.
    let today = match &recorded {
        Some(r) if file.starts_today() && r.id == file.campaign.id => r.first_round_start,
        _ => {
            let tz: Tz = file.campaign.time_zone.parse().unwrap_or(Tz::UTC);
            clock.now().with_timezone(&tz).date_naive()
        }
    };
    let campaign = validate_campaign(&path, file, today)?;
    let sync = match waiting(
        "recording the campaign configuration",
        store.sync_campaign(&campaign, clock.now()),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(StoreError::Incompatible(e)) => return Err(campaign_error(&path, e)),
        Err(e) => return Err(anyhow::Error::new(e).context("recording the campaign configuration")),
    };
    let challenge_key = step(
        "reading the key of the proof-of-work challenges",
        crate::app::challenge::shared_key(&store),
    )
    .await?;
    step(
        "reading the key that signs the round records",
        crate::app::keys::active(&store, clock.now()),
    )
    .await?;
    Ok(Prepared {
        store,
        campaign,
        questions,
        sync,
        challenge_key,
    })
}

/// How often a start-up step that waits says so.
const STILL_WAITING_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs one start-up step, naming it in the error if it fails.
async fn step<T>(
    what: &str,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> anyhow::Result<T> {
    waiting(what, work)
        .await
        .map_err(|e| anyhow::Error::new(e).context(what.to_owned()))
}

/// Runs one start-up step, saying what it does and, while it waits (for a server, a lock held
/// elsewhere), that it still does: the database's time-outs end the wait.
async fn waiting<T, E>(
    what: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tracing::info!("start-up: {what}");
    let started = std::time::Instant::now();
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + STILL_WAITING_EVERY,
        STILL_WAITING_EVERY,
    );
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tick.tick() => tracing::warn!(
                waited_secs = started.elapsed().as_secs(),
                "start-up still waiting: {what} (a lock another session holds, or a server that does not answer; the database's time-outs end it)"
            ),
        }
    }
}

/// The application over a prepared store, with the service's settings.
pub fn application(p: Prepared, loaded: &LoadedSettings, clock: Arc<dyn Clock>) -> App {
    let mut sms = loaded.settings.sms.clone();
    sms.report_token_hash = std::env::var(crate::sms::REPORT_TOKEN_VAR)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| crate::domain::token::token_hash(t.trim()));
    App::new(
        p.store,
        p.challenge_key,
        Arc::new(p.campaign),
        Arc::new(p.questions),
        clock,
        loaded.settings.login.clone(),
        loaded.settings.vouchers.clone(),
        sms,
        loaded.settings.risk.policy(),
    )
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    pub store: SharedStore,
    pub campaign: Arc<Campaign>,
    clock: Arc<dyn Clock>,
    /// Drains the outbox through the configured gateway; none for the outbox alone.
    sender: Option<crate::sms::sender::Sender>,
    /// For the use cases the service runs by itself (forfeiting unclaimed prizes).
    app: web::Data<App>,
    /// On SQLite, the lock that keeps a second server off the same file, held while serving.
    _sole_server: Option<std::fs::File>,
}

/// Takes the lock `FILE.lock` beside an SQLite database, for as long as the returned file is
/// open: SQLite takes one server (one writer, caches of its own), and a second one on the same
/// file is refused at start-up rather than found out later. The operator commands need no lock.
fn serve_alone(database: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the database folder {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another campaign-lottery process is already serving the SQLite database {} (it holds {}). \
             SQLite takes one service process; to run several instances, use PostgreSQL \
             (database.url = \"postgres://…\")",
            database.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("locking {}", path.display())))
        }
    }
}

/// Login codes, failed look-ups, expired sessions and sent SMS are kept this long, then deleted:
/// they hold phone numbers and addresses, and nothing reads them after a day (the daily caps on
/// codes).
pub const KEEP_SHORT_LIVED: chrono::TimeDelta = chrono::TimeDelta::days(1);
const FORGET_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes what [`KEEP_SHORT_LIVED`] allows, at once and then hourly; never returns.
async fn forget_expired_hourly(store: SharedStore, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(FORGET_EVERY);
    loop {
        tick.tick().await;
        match store.forget_expired(clock.now() - KEEP_SHORT_LIVED).await {
            Ok(0) => {}
            Ok(gone) => tracing::info!(rows = gone, "forgot expired login codes, sessions and SMS"),
            // Tried again next hour; nothing depends on it meanwhile.
            Err(e) => tracing::warn!(error = %e, "forgetting expired rows failed"),
        }
    }
}

const FORFEIT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Forfeits the prizes whose claim period ended, passing each to the next reserve, every minute;
/// never returns. Several instances may run it: each prize is forfeited once.
async fn forfeit_unclaimed(app: web::Data<App>) {
    let mut tick = tokio::time::interval(FORFEIT_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = crate::app::claims::forfeit_overdue(&app).await {
            tracing::warn!(error = %e, "forfeiting unclaimed prizes failed; tried again in a minute");
        }
    }
}

const TALLY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Tallies the attempts submitted since the last time into the learning figures, every minute,
/// so that a report has only the last minute's to tally; never returns.
async fn tally_figures(app: web::Data<App>) {
    let mut tick = tokio::time::interval(TALLY_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = crate::app::reports::tally(&app).await {
            tracing::warn!(error = %e, "tallying the learning figures failed; tried again in a minute");
        }
    }
}

const NOTICES_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Queues the SMS of prizes to claim, reminders, redemptions and reversals, every ten seconds;
/// never returns.
async fn send_notices(app: web::Data<App>) {
    let mut tick = tokio::time::interval(NOTICES_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = crate::app::notices::send_due(&app).await {
            tracing::warn!(error = %e, "queueing notices failed; tried again shortly");
        }
    }
}

impl Application {
    /// Prepares the store and binds the listener (port 0 picks a free port).
    pub async fn build(loaded: &LoadedSettings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let sole_server = match store::sqlite_file(&loaded.settings.database.url) {
            Some(file) => Some(serve_alone(&file)?),
            None => None,
        };
        // A gateway misconfigured is found before anything else starts.
        let gateway = crate::sms::gateway(&loaded.settings.sms, crate::sms::Credentials::from_env)?;
        let prepared = prepare(loaded, clock.as_ref()).await?;
        let sender = gateway.map(|g| {
            crate::sms::sender::Sender::new(
                prepared.store.clone(),
                g,
                &loaded.settings.sms,
                clock.clone(),
            )
        });
        let server_settings = &loaded.settings.server;
        let address = format!("{}:{}", server_settings.host, server_settings.port);
        let listener =
            TcpListener::bind(&address).with_context(|| format!("listening on {address}"))?;
        let port = listener.local_addr()?.port();
        let app = web::Data::new(application(prepared, loaded, clock.clone()));
        let store = app.store.clone();
        let campaign = app.campaign.clone();
        let app_for_tasks = app.clone();
        let metrics = web::Data::new(crate::telemetry::metrics_handle());
        let http_settings = http::Settings::new(server_settings);
        let mut server = HttpServer::new(move || {
            actix_web::App::new()
                .app_data(app.clone())
                .app_data(metrics.clone())
                .configure(|cfg| http::configure(cfg, &http_settings))
                .default_service(web::to(http::not_found))
                .wrap(http::json_errors())
                .wrap_fn(http::security_headers)
                .wrap_fn(http::record_metrics)
                .wrap_fn(http::echo_request_id)
                .wrap(tracing_actix_web::TracingLogger::<http::RequestSpan>::new())
        })
        .shutdown_timeout(server_settings.shutdown_timeout_secs)
        // Small JSON answers go out at once instead of waiting for the client's ACK (Nagle).
        .tcp_nodelay(true)
        .listen(listener)?;
        if server_settings.workers > 0 {
            server = server.workers(server_settings.workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            store,
            campaign,
            clock,
            sender,
            app: app_for_tasks,
            _sole_server: sole_server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The application the server runs, for what the service does by itself.
    pub fn app(&self) -> web::Data<App> {
        self.app.clone()
    }

    /// Serves until SIGINT or SIGTERM, then finishes the requests in flight.
    /// Deletes expired short-lived rows meanwhile (see [`KEEP_SHORT_LIVED`]), and sends the
    /// outbox's messages through the gateway, if one is configured.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let _held_until_stopped = self._sole_server;
        let sending = async {
            match self.sender {
                Some(sender) => sender.run().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            stopped = self.server => stopped,
            () = forget_expired_hourly(self.store, self.clock) => Ok(()),
            () = sending => Ok(()),
            () = forfeit_unclaimed(self.app.clone()) => Ok(()),
            () = tally_figures(self.app.clone()) => Ok(()),
            () = send_notices(self.app) => Ok(()),
        }
    }
}
