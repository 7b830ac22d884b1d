//! Test harness: a fresh database per test on each backend, and the app on a free port.
//!
//! SQLite tests always run. PostgreSQL tests use `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) to create a throw-away database per test; when no
//! server answers they say so on stderr and pass, unless `REQUIRE_POSTGRES=1` makes that a failure.
#![allow(dead_code)]

pub mod browser;

use campaign_lottery::clock::ManualClock;
use campaign_lottery::config::{
    CampaignSettings, DatabaseSettings, LoadedSettings, LogSettings, LoginSettings, ServerSettings,
    Settings,
};
use campaign_lottery::domain::token::Role;
use campaign_lottery::startup::Application;
use campaign_lottery::store::{NewToken, SharedStore};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::Connection;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named async test once per backend: `sqlite::NAME` and `postgres::NAME`.
#[allow(unused_macros)]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::TestDb::new($crate::common::Backend::Sqlite).await.unwrap();
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::common::TestDb::new($crate::common::Backend::Postgres).await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

/// A database of its own for one test, removed afterwards.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    admin_url: Option<String>,
    db_name: Option<String>,
    /// A tablespace made for this database, dropped after it.
    tablespace: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

pub fn say(msg: &str) {
    // Straight to stderr: the test harness captures print macros, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "{msg}");
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Some(Self {
                    backend,
                    url,
                    admin_url: None,
                    db_name: None,
                    tablespace: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let conn = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    sqlx::PgConnection::connect(&admin),
                )
                .await;
                let mut conn = match conn {
                    Ok(Ok(c)) => c,
                    other => {
                        let why = match other {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".into(),
                        };
                        if std::env::var("REQUIRE_POSTGRES").as_deref() == Ok("1") {
                            panic!("REQUIRE_POSTGRES=1 but PostgreSQL at TEST_DATABASE_URL is unavailable: {why}");
                        }
                        say(&format!(
                            "SKIPPED (PostgreSQL unavailable: {why}; set TEST_DATABASE_URL to run the PostgreSQL tests)"
                        ));
                        return None;
                    }
                };
                let name = format!("cl_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                Some(Self {
                    backend,
                    url: with_database(&admin, &name),
                    admin_url: Some(admin),
                    db_name: Some(name),
                    tablespace: None,
                    _dir: None,
                })
            }
        }
    }

    /// An SQLite test database in `dir` (which the caller keeps).
    pub fn sqlite_in(dir: &Path) -> Self {
        Self::sqlite_at(&dir.join("test.db"))
    }

    /// The SQLite database in `file` (which the caller keeps).
    pub fn sqlite_at(file: &Path) -> Self {
        Self {
            backend: Backend::Sqlite,
            url: format!("sqlite://{}", file.display()),
            admin_url: None,
            db_name: None,
            tablespace: None,
            _dir: None,
        }
    }

    /// A PostgreSQL test database whose tables live in a tablespace at `location` (an empty
    /// folder the server's user owns), made for it and dropped with it.
    pub async fn postgres_in(location: &Path) -> Option<Self> {
        let mut db = Self::new(Backend::Postgres).await?;
        let admin = db.admin_url.clone().unwrap();
        let name = db.db_name.clone().unwrap();
        let space = format!("{name}_space");
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!(
            "CREATE TABLESPACE {space} LOCATION '{}'",
            location.display()
        ))
        .execute(&mut c)
        .await
        .expect("create the tablespace");
        db.tablespace = Some(space.clone());
        sqlx::query(&format!("ALTER DATABASE {name} SET TABLESPACE {space}"))
            .execute(&mut c)
            .await
            .expect("move the test database into the tablespace");
        Some(db)
    }

    /// Runs raw SQL against the test database (for tampering and for setting up states).
    pub async fn execute(&self, sql: &str) -> u64 {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .unwrap()
                    .rows_affected()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .unwrap()
                    .rows_affected()
            }
        }
    }

    /// Raw SQL that the database may refuse: the error's text, if it did.
    pub async fn try_execute(&self, sql: &str) -> Result<u64, String> {
        let result = match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected())
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected())
            }
        };
        result.map_err(|e| e.to_string())
    }

    /// Takes a PostgreSQL test database away under the running service (connections and all).
    pub async fn drop_database_now(&self) {
        let (Some(admin), Some(name)) = (&self.admin_url, &self.db_name) else {
            panic!("only PostgreSQL test databases can be dropped");
        };
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut c)
            .await
            .unwrap();
    }

    /// A PostgreSQL outage for this database: no new connections, and every open one (the
    /// service's) terminated, as in a server restart.
    pub async fn cut_off(&self) {
        let (Some(admin), Some(name)) = (&self.admin_url, &self.db_name) else {
            panic!("only a PostgreSQL test database can be cut off");
        };
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(name)
            .execute(&mut c)
            .await
            .unwrap();
    }

    /// The end of [`TestDb::cut_off`]'s outage.
    pub async fn reconnect(&self) {
        let (Some(admin), Some(name)) = (&self.admin_url, &self.db_name) else {
            panic!("only a PostgreSQL test database can be cut off");
        };
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            .execute(&mut c)
            .await
            .unwrap();
    }

    /// One integer from raw SQL (`SELECT COUNT(*) …`).
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }

    /// One text value from raw SQL.
    pub async fn text(&self, sql: &str) -> String {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (Some(admin), Some(name)) = (self.admin_url.clone(), self.db_name.clone()) else {
            return;
        };
        let space = self.tablespace.clone();
        // Drop needs its own runtime: the test's may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                    if let Some(space) = space {
                        let _ = sqlx::query(&format!("DROP TABLESPACE IF EXISTS {space}"))
                            .execute(&mut c)
                            .await;
                    }
                }
            });
        })
        .join();
    }
}

/// A campaign file like `base` (the demo's or the real one's text) with one round of `winners`
/// prizes under the id `id`: 30 % grand (a tourism card, a hotel night and a dining coupon), the
/// rest a tourism card.
pub fn one_round_campaign(base: &str, id: &str, winners: u32) -> String {
    let grand = winners * 3 / 10;
    let standard = winners - grand;
    let text = base
        .replace("id = \"demo\"", &format!("id = \"{id}\""))
        .replace("id = \"hengyang-2024\"", &format!("id = \"{id}\""))
        .replace("rounds = 12", "rounds = 1")
        .replace("winners = 3180", &format!("winners = {winners}"))
        .replace(
            "vouchers = { tourism_card = 3180, hotel_night = 360, dining_coupon = 360 }",
            &format!(
                "vouchers = {{ tourism_card = {winners}, hotel_night = {grand}, dining_coupon = {grand} }}"
            ),
        )
        .replace("count = 30\n", &format!("count = {grand}\n"))
        .replace("count = 235\n", &format!("count = {standard}\n"));
    assert!(
        text.contains(&format!("winners = {winners}")),
        "the base campaign's totals moved"
    );
    text
}

pub fn repo_config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Settings for a test: port 0, the given database, a campaign file from `config_dir`.
pub fn settings(url: &str, config_dir: &Path, campaign_file: &str) -> LoadedSettings {
    LoadedSettings {
        settings: Settings {
            server: ServerSettings {
                host: "127.0.0.1".into(),
                port: 0,
                body_limit_bytes: 64 * 1024,
                shutdown_timeout_secs: 1,
                workers: 2,
                body_timeout_secs: 10,
                https: false,
                trusted_proxies: 0,
            },
            database: DatabaseSettings {
                url: url.into(),
                max_connections: 8,
                connect_timeout_secs: 10,
                lock_timeout_secs: 10,
                statement_timeout_secs: 60,
            },
            campaign: CampaignSettings {
                file: campaign_file.into(),
                questions: repo_config_dir().join("questions.toml"),
            },
            log: LogSettings::default(),
            // Every test signs up from 127.0.0.1; the tests of the address limit set their own.
            // Proofs of work that cost nothing: the tests prove the protocol, not the cost.
            login: LoginSettings {
                address_codes_per_hour: 10_000,
                address_codes_per_day: 10_000,
                challenge_cost: 1,
                ..LoginSettings::default()
            },
            vouchers: Default::default(),
            sms: Default::default(),
            risk: Default::default(),
        },
        config_dir: config_dir.to_path_buf(),
    }
}

/// 2026-11-26 10:00 in Shanghai: the demo's round 1 (which starts "today") is open.
/// The holder code `v`'s holder's phone shows at `at` (DESIGN §5).
pub fn holder_code(v: &campaign_lottery::store::VoucherRecord, at: DateTime<Utc>) -> String {
    use campaign_lottery::domain::holder_code::{code_at, step_of};
    let secret = v
        .holder_secret
        .as_ref()
        .expect("issued with a holder secret");
    code_at(secret.as_bytes(), step_of(at))
}

/// Six digits the desk would not take from `v`'s holder at `at`: none of its window's codes.
pub fn wrong_holder_code(v: &campaign_lottery::store::VoucherRecord, at: DateTime<Utc>) -> String {
    let window: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|s| holder_code(v, at + chrono::Duration::seconds(*s)))
        .collect();
    (0..4)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !window.contains(c))
        .expect("four candidates, three codes")
}

pub fn demo_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0).unwrap()
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub store: SharedStore,
    pub campaign: Arc<campaign_lottery::domain::campaign::Campaign>,
    /// The use cases, for what the service runs by itself (forfeits, notices).
    pub app: actix_web::web::Data<campaign_lottery::app::App>,
    pub db: TestDb,
}

impl TestApp {
    /// The demo campaign on a fresh database, the clock at [`demo_now`].
    pub async fn spawn(db: TestDb) -> Self {
        let loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
        Self::spawn_with(db, &loaded, demo_now()).await
    }

    pub async fn spawn_with(db: TestDb, loaded: &LoadedSettings, now: DateTime<Utc>) -> Self {
        let clock = Arc::new(ManualClock::new(now));
        let app = Application::build(loaded, clock.clone())
            .await
            .expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let store = app.store.clone();
        let campaign = app.campaign.clone();
        let use_cases = app.app();
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            client: reqwest::Client::new(),
            clock,
            store,
            campaign,
            app: use_cases,
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Creates a token the way the CLI does, returning the secret; a venue token is for
    /// 神龙大酒店.
    pub async fn token(&self, role: Role, name: &str) -> String {
        let venue_id = (role == Role::Venue).then(|| "shenlong-hotel".to_owned());
        create_token(&self.store, role, name, venue_id.as_deref()).await
    }

    /// A venue token for the venue `venue_id`.
    pub async fn venue_token(&self, venue_id: &str) -> String {
        create_token(
            &self.store,
            Role::Venue,
            &format!("{venue_id} 前台"),
            Some(venue_id),
        )
        .await
    }
}

/// A new staff token and its stored hash, as the service makes them.
pub fn new_token() -> (String, String) {
    let token = campaign_lottery::domain::token::token_from_bytes(
        campaign_lottery::csprng::bytes().unwrap(),
    );
    let hash = campaign_lottery::domain::token::token_hash(&token);
    (token, hash)
}

/// Creates a token the way the CLI does, returning the secret.
pub async fn create_token(
    store: &SharedStore,
    role: Role,
    name: &str,
    venue_id: Option<&str>,
) -> String {
    {
        let venue_id = venue_id.map(str::to_owned);
        let store = store.clone();
        let (token, token_hash) = new_token();
        store
            .create_token(
                NewToken {
                    name: name.into(),
                    role,
                    venue_id,
                    token_hash,
                },
                "cli",
                Utc::now(),
            )
            .await
            .unwrap();
        token
    }
}

impl TestApp {
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }
}

/// The code in the newest SMS queued for `phone` (its eleven digits) in the database at
/// `db_url`, read from the outbox as a person reads it off their phone.
pub async fn sent_code(db_url: &str, phone: &str) -> String {
    assert!(phone.len() == 11 && phone.bytes().all(|b| b.is_ascii_digit()));
    let query = "SELECT body FROM sms_outbox WHERE phone = $1 AND template = 'login_code'
                 ORDER BY id DESC LIMIT 1";
    let body: String = if db_url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(db_url).await.unwrap();
        sqlx::query_scalar(query)
            .bind(phone)
            .fetch_one(&mut c)
            .await
    } else {
        let mut c = sqlx::SqliteConnection::connect(db_url).await.unwrap();
        sqlx::query_scalar(query)
            .bind(phone)
            .fetch_one(&mut c)
            .await
    }
    .unwrap_or_else(|e| panic!("no SMS to {phone}: {e}"));
    body.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .unwrap_or_else(|| panic!("no code in {body:?}"))
        .into()
}

/// A challenge from `base` for `phone` (as typed), solved as the widget solves it: the value of
/// `altcha` in a code request.
pub async fn solved_challenge(client: &reqwest::Client, base: &str, phone: &str) -> String {
    let res = client
        .post(format!("{base}/api/login/challenge"))
        .json(&serde_json::json!({ "phone": phone }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status(), 200, "challenge for {phone}");
    let challenge: altcha::Challenge = res.json().await.unwrap();
    campaign_lottery::app::challenge::solve(&challenge).expect("solved")
}

/// Asks `base` for a code for `phone` (as typed) as the page does: a challenge solved first.
pub async fn request_code_at(
    client: &reqwest::Client,
    base: &str,
    phone: &str,
) -> reqwest::Response {
    request_code_from(client, base, phone, None).await
}

/// [`request_code_at`], with `X-Forwarded-For` set to `forwarded` when given.
pub async fn request_code_from(
    client: &reqwest::Client,
    base: &str,
    phone: &str,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let altcha = solved_challenge(client, base, phone).await;
    let mut req = client
        .post(format!("{base}/api/login/code"))
        .json(&serde_json::json!({ "phone": phone, "altcha": altcha }));
    if let Some(f) = forwarded {
        req = req.header("X-Forwarded-For", f);
    }
    req.send().await.expect("request sent")
}

/// Signs up (or in) at `base` as a person does: a code by SMS to `phone`, read from the outbox,
/// then the code with consent and whatever `extra` adds. The login's answer.
pub async fn sign_up_at(
    client: &reqwest::Client,
    base: &str,
    db_url: &str,
    phone: &str,
    extra: serde_json::Value,
) -> reqwest::Response {
    let sent = request_code_at(client, base, phone).await;
    assert_eq!(
        sent.status(),
        202,
        "code for {phone}: {:?}",
        sent.text().await
    );
    let mut body = serde_json::json!({
        "phone": phone,
        "code": sent_code(db_url, phone).await,
        "consent": true,
    });
    if let serde_json::Value::Object(extra) = extra {
        body.as_object_mut().unwrap().extend(extra);
    }
    client
        .post(format!("{base}/api/login"))
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

impl TestApp {
    /// Asks for a code for `phone` (as typed), a challenge solved first.
    pub async fn request_code(&self, phone: &str) -> reqwest::Response {
        request_code_at(&self.client, &self.address, phone).await
    }

    /// Signs up with `phone` (see [`sign_up_at`]); the session token of the new participant.
    pub async fn sign_up(&self, phone: &str) -> String {
        let res = sign_up_at(
            &self.client,
            &self.address,
            &self.db.url,
            phone,
            serde_json::json!({}),
        )
        .await;
        assert_eq!(res.status(), 201, "sign-up of {phone}");
        let body: serde_json::Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }
}

/// Reads a JSON error response and returns `(status, code)`, checking the shape on the way.
pub async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = res.text().await.unwrap();
    assert!(
        ct.starts_with("application/json"),
        "status {status}: not JSON ({ct}): {text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let code = v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {text}"));
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {text}"));
    assert!(!message.is_empty(), "empty message in {text}");
    (status, code.to_owned())
}

/// `n` participants with a passed attempt and a random ticket each in `round` of `campaign`,
/// inserted by one statement per table (phones 1NNNNNNNNNN, participants and attempts with
/// made-up sequential ids) — for tests and benchmarks that need many.
pub async fn bulk_tickets(db: &TestDb, campaign: &str, round: u32, n: u64, at: DateTime<Utc>) {
    let at = at.to_rfc3339();
    match db.backend {
        Backend::Sqlite => {
            let each = |sql: &str| {
                format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) {sql}"
                )
            };
            db.execute(&each(&format!(
                "INSERT INTO participants (id, phone, display_name, consented_at, created_at)
                 SELECT printf('00000000-0000-4000-8000-%012x', i), printf('1%010d', i), NULL,
                        '{at}', '{at}' FROM n"
            )))
            .await;
            db.execute(&each(&format!(
                "INSERT INTO quiz_attempts (id, participant_id, questions, started_at, deadline, local_day)
                 SELECT printf('00000000-0000-4000-9000-%012x', i),
                        printf('00000000-0000-4000-8000-%012x', i), '[]', '{at}', '{at}', '2024-07-16'
                 FROM n"
            )))
            .await;
            db.execute(&each(&format!(
                "INSERT INTO tickets (id, campaign_id, round, participant_id, attempt_id, created_at)
                 SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
                        || substr(lower(hex(randomblob(2))), 2) || '-8'
                        || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
                        '{campaign}', {round}, printf('00000000-0000-4000-8000-%012x', i),
                        printf('00000000-0000-4000-9000-%012x', i), '{at}' FROM n"
            )))
            .await;
        }
        Backend::Postgres => {
            let at = format!("'{at}'::timestamptz");
            let p = "('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid";
            let a = "('00000000-0000-4000-9000-' || lpad(to_hex(i), 12, '0'))::uuid";
            db.execute(&format!(
                "INSERT INTO participants (id, phone, display_name, consented_at, created_at)
                 SELECT {p}, '1' || lpad(i::text, 10, '0'), NULL, {at}, {at}
                 FROM generate_series(1, {n}) i"
            ))
            .await;
            db.execute(&format!(
                "INSERT INTO quiz_attempts (id, participant_id, questions, started_at, deadline, local_day)
                 SELECT {a}, {p}, '[]', {at}, {at}, '2024-07-16' FROM generate_series(1, {n}) i"
            ))
            .await;
            db.execute(&format!(
                "INSERT INTO tickets (id, campaign_id, round, participant_id, attempt_id, created_at)
                 SELECT gen_random_uuid(), '{campaign}', {round}, {p}, {a}, {at}
                 FROM generate_series(1, {n}) i"
            ))
            .await;
            db.execute("ANALYZE").await;
        }
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; taken by whoever binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A proof-of-work challenge paid for nothing yet (its nonce fresh), kept until 2099: for
/// codes the tests issue straight through the store.
pub fn unspent_challenge() -> campaign_lottery::store::SpentChallenge {
    campaign_lottery::store::SpentChallenge {
        nonce: uuid::Uuid::new_v4().to_string(),
        expires_at: Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap(),
    }
}

/// A participant made as the service makes one: a code issued for `phone` and entered with
/// consent, opening the session `session_token`.
pub async fn prove_phone(
    store: &SharedStore,
    phone: &str,
    session_token: &str,
    now: DateTime<Utc>,
) -> campaign_lottery::store::Participant {
    use campaign_lottery::domain::token::{login_code_hash, token_hash};
    use campaign_lottery::store::{LoginCode, LoginOutcome, NewSession, Newcomer};
    // The harness proves thousands of phones (the benchmarks): no campaign-wide budget here.
    let limits = campaign_lottery::domain::throttle::LoginLimits {
        sms_per_hour: i64::MAX,
        ..Default::default()
    };
    store
        .issue_login_code(
            LoginCode {
                phone: phone.into(),
                code_hash: login_code_hash(phone, "123456"),
                requested_from: format!("harness:{phone}"),
                expires_at: now + chrono::Duration::minutes(5),
                sms: code_sms(phone, "code"),
                challenge: unspent_challenge(),
            },
            &limits,
            now,
        )
        .await
        .unwrap();
    let session = NewSession {
        token_hash: token_hash(session_token),
        expires_at: now + chrono::Duration::days(90),
    };
    match store
        .verify_login_code(
            phone,
            &login_code_hash(phone, "123456"),
            session,
            Some(Newcomer::default()),
            &limits,
            now,
        )
        .await
        .unwrap()
    {
        LoginOutcome::LoggedIn { participant, .. } => participant,
        other => panic!("{phone}: {other:?}"),
    }
}

/// Participants (phones 1380000NNNN) who each passed round `round`'s quiz at `now`, as the quiz
/// records them: one ticket each.
pub async fn tickets_in(
    store: &SharedStore,
    campaign: &str,
    round: u32,
    now: DateTime<Utc>,
    phones: std::ops::Range<u32>,
) {
    let phones: Vec<String> = phones.map(|i| format!("1380000{i:04}")).collect();
    tickets_from(store, campaign, round, now, &phones, &Attempted::default()).await
}

/// How the attempts behind [`tickets_from`]'s tickets were made.
#[derive(Default)]
pub struct Attempted<'a> {
    pub network: Option<&'a str>,
    pub device: Option<&'a str>,
    /// Questions in the attempt, and the seconds it took (submitted that long after `now`).
    pub questions: usize,
    pub seconds: i64,
}

/// One passed attempt and ticket in round `round` for each of `phones`, made as `how` says.
pub async fn tickets_from(
    store: &SharedStore,
    campaign: &str,
    round: u32,
    now: DateTime<Utc>,
    phones: &[String],
    how: &Attempted<'_>,
) {
    for phone in phones {
        let phone = phone.as_str();
        let participant = match store.participant_by_phone(phone).await.unwrap() {
            Some(p) => p,
            None => prove_phone(store, phone, &format!("clp_{phone}"), now).await,
        };
        let id = uuid::Uuid::new_v4();
        assert!(store
            .start_attempt(
                campaign_lottery::store::NewAttempt {
                    id,
                    participant_id: participant.id,
                    questions: (0..how.questions)
                        .map(|q| campaign_lottery::domain::quiz::AttemptQuestion {
                            question: format!("q{q}"),
                            order: vec![0, 1],
                        })
                        .collect(),
                    started_at: now,
                    deadline: now + chrono::Duration::minutes(10),
                    local_day: now.date_naive(),
                    network: how.network.map(str::to_owned),
                    device: how.device.map(str::to_owned),
                },
                100,
            )
            .await
            .unwrap());
        let outcome = store
            .submit_attempt(campaign_lottery::store::Submission {
                attempt_id: id,
                participant_id: participant.id,
                score: 10,
                passed: true,
                result: "[]".into(),
                at: now + chrono::Duration::seconds(how.seconds),
                due_after: now + chrono::Duration::seconds(how.seconds),
                ticket_round: Some((campaign.into(), round)),
                session: None,
            })
            .await
            .unwrap();
        assert!(matches!(
            outcome,
            campaign_lottery::store::SubmitOutcome::Recorded(_)
        ));
    }
}

/// Commits two witnesses, freezes, reveals and draws round `round` through the store at `at`
/// (after the round's window closed), as the draw API would.
pub async fn draw_round(
    store: &SharedStore,
    campaign: &campaign_lottery::domain::campaign::Campaign,
    round: u32,
    at: DateTime<Utc>,
) {
    draw_round_unclaimed(store, campaign, round, at).await;
    claim_all(store, campaign, round, at).await;
}

/// [`draw_round`], the prizes left to claim.
pub async fn draw_round_unclaimed(
    store: &SharedStore,
    campaign: &campaign_lottery::domain::campaign::Campaign,
    round: u32,
    at: DateTime<Utc>,
) {
    use campaign_lottery::domain::draw::seed::commitment;
    let witnesses = ["衡阳公证处", "律师见证人"];
    let secret = |name: &str| {
        let mut s = [7u8; 32];
        s[..name.len().min(32)].copy_from_slice(&name.as_bytes()[..name.len().min(32)]);
        s[31] = round as u8;
        s
    };
    for w in witnesses {
        let c = hex::encode(commitment(&campaign.id, round, w, &secret(w)));
        store
            .commit_witness(&campaign.id, round, w, &c, "witness", at)
            .await
            .unwrap();
    }
    store
        .freeze_round(freeze_request(campaign, round, ""), "operator:test", at)
        .await
        .unwrap();
    for w in witnesses {
        store
            .reveal_secret(
                &campaign.id,
                round,
                w,
                &hex::encode(secret(w)),
                "witness",
                at,
            )
            .await
            .unwrap();
    }
    store
        .draw_round(draw_request(campaign, round, ""), "operator:test", at)
        .await
        .unwrap();
}

/// Every winner of a drawn round claims at once, written straight to the database as
/// [`bulk_tickets`] writes tickets: for the benchmarks' tens of thousands of winners (one claim a
/// transaction, through the store, takes minutes on PostgreSQL).
pub async fn claim_all_at_once(db_url: &str, campaign_id: &str, round: u32, at: DateTime<Utc>) {
    let q = "UPDATE round_winners SET claimed_at = $1
             WHERE campaign_id = $2 AND round = $3 AND claimed_at IS NULL AND forfeited_at IS NULL";
    if db_url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(db_url).await.unwrap();
        sqlx::query(q)
            .bind(at)
            .bind(campaign_id)
            .bind(round as i32)
            .execute(&mut c)
            .await
            .unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(db_url).await.unwrap();
        sqlx::query(q)
            .bind(at)
            .bind(campaign_id)
            .bind(round as i32)
            .execute(&mut c)
            .await
            .unwrap();
    }
}

/// Every winner of a drawn round claims the prize, as the tests of what comes after want.
pub async fn claim_all(
    store: &SharedStore,
    campaign: &campaign_lottery::domain::campaign::Campaign,
    round: u32,
    at: DateTime<Utc>,
) {
    let state = store
        .round_draw_state(&campaign.id, round)
        .await
        .unwrap()
        .unwrap();
    for w in state.winners {
        let p = store.participant_by_phone(&w.phone).await.unwrap().unwrap();
        store
            .claim_prize(&campaign.id, round, p.id, "participant:test", at)
            .await
            .unwrap();
    }
}

/// What the freeze use case asks the store, for round `round` of `campaign`.
pub fn freeze_request(
    campaign: &campaign_lottery::domain::campaign::Campaign,
    round: u32,
    beacon_source: &str,
) -> campaign_lottery::store::FreezeRound {
    let w = campaign.round(round).expect("the campaign has the round");
    campaign_lottery::store::FreezeRound {
        campaign_id: campaign.id.clone(),
        round,
        closes_at: w.closes_at,
        closes_at_local: campaign.local_rfc3339(w.closes_at),
        min_witnesses: campaign.min_witnesses,
        beacon_source: beacon_source.into(),
        base_prizes: campaign
            .tiers
            .iter()
            .map(|t| (t.name.clone(), t.count))
            .collect(),
        win_limit: campaign.win_limit,
    }
}

/// What the draw use case asks the store.
pub fn draw_request(
    campaign: &campaign_lottery::domain::campaign::Campaign,
    round: u32,
    beacon: &str,
) -> campaign_lottery::store::DrawRound {
    campaign_lottery::store::DrawRound {
        campaign_id: campaign.id.clone(),
        round,
        beacon: campaign_lottery::domain::draw::beacon::Given {
            value: beacon.into(),
            signature: String::new(),
        },
        tier_kinds: campaign.tier_kinds(),
        win_limit: campaign.win_limit,
        reserves: campaign.reserves,
        claim_deadline: chrono::DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(365 * 100),
    }
}

/// A `campaign-lottery serve` process of its own, stopped when dropped.
pub struct ServiceProcess {
    pub child: std::process::Child,
    pub base: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServiceProcess {
    /// The lines it logged (to stderr) since the last call.
    pub fn logged(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

/// Starts the service binary on `db_url` with the campaign file `campaign_file` (in `config/`)
/// and waits for it to log its port.
pub fn serve_process(db_url: &str, campaign_file: &str) -> ServiceProcess {
    serve_process_with(db_url, campaign_file, &[])
}

/// [`serve_process`] with more environment variables.
pub fn serve_process_with(
    db_url: &str,
    campaign_file: &str,
    env: &[(&str, &str)],
) -> ServiceProcess {
    match start_process(db_url, campaign_file, env) {
        Ok(process) => process,
        Err((status, log)) => panic!(
            "the service process did not start ({status}):\n{}",
            log.join("\n")
        ),
    }
}

/// Starts the service binary and waits for it to log its port; or, if it exits first, how it
/// exited and what it logged.
pub fn start_process(
    db_url: &str,
    campaign_file: &str,
    env: &[(&str, &str)],
) -> Result<ServiceProcess, (std::process::ExitStatus, Vec<String>)> {
    use std::io::{BufRead, BufReader};
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"));
    command
        .args(["--config-dir", repo_config_dir().to_str().unwrap(), "serve"])
        .env("APP_DATABASE__URL", db_url)
        .env("APP_CAMPAIGN__FILE", campaign_file)
        .env("APP_SERVER__PORT", "0")
        .env("APP_LOG__FORMAT", "json")
        // Every test signs up from 127.0.0.1 (as in `settings`); a test's `env` may say otherwise.
        .env("APP_LOGIN__ADDRESS_CODES_PER_HOUR", "10000")
        .env("APP_LOGIN__ADDRESS_CODES_PER_DAY", "10000")
        .env("APP_LOGIN__CHALLENGE_COST", "1")
        .env_remove("RUST_LOG")
        .env_remove("APP_ENVIRONMENT")
        .stderr(std::process::Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut process = ServiceProcess {
        child,
        base: String::new(),
        log: rx,
    };
    let mut seen = Vec::new();
    loop {
        let line = match process.log.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) => line,
            // The pipe closed: the process ended without serving.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err((process.child.wait().unwrap(), seen));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("the service process did not log its port within a minute: {seen:?}")
            }
        };
        if let Some(port) = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["port"].as_u64())
        {
            process.base = format!("http://127.0.0.1:{port}");
            return Ok(process);
        }
        seen.push(line);
    }
}

/// A small file system of its own (tmpfs, so the tests must run as root), for running out of
/// space; unmounted when dropped. `None`, said on stderr, where it cannot be mounted.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `bytes` large, its root owned by `owner` (a user name) when given.
    pub fn mount(bytes: u64, owner: Option<&str>) -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("cl-small-disk-")
            .tempdir()
            .unwrap();
        let mut options = format!("size={bytes},mode=0755");
        if let Some(user) = owner {
            let id = |flag: &str| {
                let out = std::process::Command::new("id")
                    .args([flag, user])
                    .output()
                    .unwrap();
                String::from_utf8(out.stdout).unwrap().trim().to_owned()
            };
            options = format!("{options},uid={},gid={}", id("-u"), id("-g"));
        }
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Self { dir }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                say(&format!(
                    "SKIPPED (cannot mount a small file system, which needs root: {why})"
                ));
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free on it.
    pub fn available(&self) -> u64 {
        let out = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    }

    /// Fills it with a ballast file until `leave` bytes are free.
    pub fn fill_leaving(&self, leave: u64) {
        let size = self.available().saturating_sub(leave);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("ballast"))
            .unwrap();
        let chunk = vec![0xa5u8; 64 << 10];
        let mut file = std::io::BufWriter::new(file);
        let mut written = 0;
        while written < size {
            let n = (size - written).min(chunk.len() as u64) as usize;
            if file.write_all(&chunk[..n]).is_err() {
                break;
            }
            written += n as u64;
        }
        let _ = file.flush();
    }

    /// Removes the ballast: space again.
    pub fn free_ballast(&self) {
        std::fs::remove_file(self.path().join("ballast")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a process still holding a file there must not keep the mount (and the test
        // failing meanwhile) around.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.path())
            .status();
    }
}

/// A login code's text message as the store's tests queue it: `body` is what they look for.
pub fn code_sms(phone: &str, body: impl Into<String>) -> campaign_lottery::store::NewSms {
    campaign_lottery::store::NewSms {
        phone: phone.into(),
        template: "login_code".into(),
        params: vec![
            ("code".into(), "123456".into()),
            ("minutes".into(), "5".into()),
        ],
        body: body.into(),
        send_before: None,
        event_key: None,
    }
}
