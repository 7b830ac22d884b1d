//! Service settings: `config/default.toml`, then `config/$APP_ENVIRONMENT.toml` if present, then
//! `APP_`-prefixed environment variables with `__` between levels (`APP_DATABASE__URL`).
//! The campaign itself lives in its own file, named by `campaign.file`.

use crate::domain::campaign::{Campaign, CampaignError, CampaignFile};
use anyhow::Context;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub campaign: CampaignSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub login: LoginSettings,
    #[serde(default)]
    pub vouchers: VoucherSettings,
    #[serde(default)]
    pub sms: SmsSettings,
    #[serde(default)]
    pub risk: RiskSettings,
}

/// Where the risk signals on tickets start (see [`crate::domain::risk`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RiskSettings {
    pub virtual_prefixes: Vec<String>,
    pub min_seconds_per_question: f64,
    pub tickets_per_network: u64,
    pub tickets_per_device: u64,
}

impl Default for RiskSettings {
    fn default() -> Self {
        let p = crate::domain::risk::RiskPolicy::default();
        Self {
            virtual_prefixes: p.virtual_prefixes,
            min_seconds_per_question: p.min_seconds_per_question,
            tickets_per_network: p.tickets_per_network,
            tickets_per_device: p.tickets_per_device,
        }
    }
}

impl RiskSettings {
    pub fn policy(&self) -> crate::domain::risk::RiskPolicy {
        crate::domain::risk::RiskPolicy {
            virtual_prefixes: self.virtual_prefixes.clone(),
            min_seconds_per_question: self.min_seconds_per_question,
            tickets_per_network: self.tickets_per_network,
            tickets_per_device: self.tickets_per_device,
        }
    }
}

/// Which SMS gateway drains the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    /// None: messages wait in the outbox (`campaign-lottery sms pending` reads them).
    #[default]
    Outbox,
    /// Aliyun SMS (`dysmsapi`, SendSms).
    Aliyun,
    /// Tencent Cloud SMS (`sms`, SendSms, API 2021-01-11).
    Tencent,
}

impl SmsProvider {
    /// As the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            SmsProvider::Outbox => "outbox",
            SmsProvider::Aliyun => "aliyun",
            SmsProvider::Tencent => "tencent",
        }
    }
}

/// Text messages. The gateway's credentials are never in a file: they come from the environment
/// (`SMS_ACCESS_KEY_ID`, `SMS_ACCESS_KEY_SECRET`), see [`crate::sms::Credentials`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmsSettings {
    pub provider: SmsProvider,
    /// The signature registered with the provider (签名), shown as 【…】 before each message.
    pub sign_name: String,
    /// The provider's template id for each of the service's templates (`login_code`).
    pub templates: std::collections::BTreeMap<String, String>,
    /// Tencent: the SMS application's SdkAppId.
    pub sdk_app_id: String,
    /// The provider's region (Aliyun `cn-hangzhou`, Tencent `ap-guangzhou` when empty).
    pub region: String,
    /// Another address for the provider's API (a private endpoint, a test server).
    pub endpoint: Option<String>,
    /// Messages one sender takes at a time, and how often it looks when the outbox is empty.
    pub batch: u32,
    pub poll_interval_ms: u64,
    /// Seconds one request to the gateway may take.
    pub request_timeout_secs: u64,
    /// Tries per message, and the waits between them (doubling from the first).
    pub max_attempts: i32,
    pub first_retry_secs: i64,
    pub longest_retry_secs: i64,
    /// Hours before a claim deadline that a winner who has not claimed is reminded.
    pub reminder_hours: u32,
    /// The hash of `SMS_REPORT_TOKEN`, read from the environment at start-up: the token in
    /// the address the provider pushes delivery reports to. None: reports are not taken.
    #[serde(skip)]
    pub report_token_hash: Option<String>,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            provider: SmsProvider::Outbox,
            sign_name: "衡阳学法".into(),
            templates: Default::default(),
            sdk_app_id: String::new(),
            region: String::new(),
            endpoint: None,
            batch: 10,
            poll_interval_ms: 1_000,
            request_timeout_secs: 10,
            max_attempts: 5,
            first_retry_secs: 10,
            longest_retry_secs: 600,
            reminder_hours: 48,
            report_token_hash: None,
        }
    }
}

impl SmsSettings {
    pub fn retry_policy(&self) -> crate::domain::sms::RetryPolicy {
        crate::domain::sms::RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            first_wait: chrono::Duration::seconds(self.first_retry_secs.max(1)),
            longest_wait: chrono::Duration::seconds(
                self.longest_retry_secs.max(self.first_retry_secs.max(1)),
            ),
        }
    }
}

/// Redemption at the front desks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VoucherSettings {
    /// How long a venue may reverse its own redemption.
    pub reversal_window_minutes: i64,
    /// Failed look-ups (unknown codes, wrong holder digits) allowed within the window, per venue
    /// token and per client address, before requests are refused with 429.
    pub failed_lookups_per_token: u32,
    pub failed_lookups_per_address: u32,
    pub failed_lookup_window_minutes: i64,
}

impl Default for VoucherSettings {
    fn default() -> Self {
        Self {
            reversal_window_minutes: 30,
            failed_lookups_per_token: 10,
            failed_lookups_per_address: 30,
            failed_lookup_window_minutes: 15,
        }
    }
}

impl VoucherSettings {
    pub fn lookup_limits(&self) -> crate::domain::throttle::LookupLimits {
        crate::domain::throttle::LookupLimits {
            per_token: self.failed_lookups_per_token,
            per_address: self.failed_lookups_per_address,
            window: chrono::Duration::minutes(self.failed_lookup_window_minutes),
        }
    }

    pub fn reversal_window(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.reversal_window_minutes)
    }
}

/// Participants' sessions and one-time login codes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LoginSettings {
    /// How long a one-time code is valid.
    pub code_ttl_secs: i64,
    /// Seconds between two codes for one phone.
    pub phone_interval_secs: i64,
    pub phone_codes_per_hour: i64,
    pub phone_codes_per_day: i64,
    pub address_codes_per_hour: i64,
    pub address_codes_per_day: i64,
    /// Text messages queued per hour for the whole campaign: past it, code requests are
    /// answered `sms_paused` until the hour has room again (and the console says so).
    pub campaign_sms_per_hour: i64,
    /// Wrong tries before a code is dead.
    pub max_tries: i32,
    /// How long a participant stays logged in.
    pub session_days: i64,
    /// The proof of work before each SMS: PBKDF2-SHA-256 iterations per try (a solution takes
    /// 256 tries on average), so the work of one challenge is about 256 × this.
    pub challenge_cost: u32,
    /// How long a challenge may be used.
    pub challenge_ttl_secs: i64,
    /// Replaced by `server.trusted_proxies`; refused at start-up when set, so that an old
    /// setting does not silently put every client behind the proxy's one address.
    pub trust_forwarded_for: Option<bool>,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            code_ttl_secs: 300,
            phone_interval_secs: 60,
            phone_codes_per_hour: 5,
            phone_codes_per_day: 10,
            address_codes_per_hour: 20,
            address_codes_per_day: 50,
            campaign_sms_per_hour: 3_000,
            max_tries: 5,
            session_days: 30,
            challenge_cost: 5_000,
            challenge_ttl_secs: 300,
            trust_forwarded_for: None,
        }
    }
}

impl LoginSettings {
    pub fn limits(&self) -> crate::domain::throttle::LoginLimits {
        crate::domain::throttle::LoginLimits {
            phone_interval_secs: self.phone_interval_secs,
            phone_per_hour: self.phone_codes_per_hour,
            phone_per_day: self.phone_codes_per_day,
            address_per_hour: self.address_codes_per_hour,
            address_per_day: self.address_codes_per_day,
            sms_per_hour: self.campaign_sms_per_hour,
            max_tries: self.max_tries,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// How long a shutdown waits for requests in flight.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// Worker threads; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// How long a request body may take to arrive; a body that trickles in is cut off.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: u64,
    /// The service is reached over HTTPS (behind a TLS-terminating proxy): session cookies are
    /// then marked `Secure`.
    #[serde(default)]
    pub https: bool,
    /// How many reverse proxies in front of the service append the address they were reached
    /// from to `X-Forwarded-For`: the client's address is then the entry that many places from
    /// the right. 0 (no proxy) takes the connection's peer. Entries further left are the
    /// client's own to write and are never used.
    #[serde(default)]
    pub trusted_proxies: usize,
}

#[derive(Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (created on first run) or `postgres://user:pass@host/db`.
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long to wait for a connection, at start-up and for each request.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// How long any statement waits for a lock another session holds (at start-up: a migration
    /// elsewhere, a long transaction) before it gives up.
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout_secs: u64,
    /// How long one statement may run (PostgreSQL only).
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_secs: u64,
}

impl DatabaseSettings {
    pub fn limits(&self) -> crate::store::ConnectLimits {
        let secs = |n: u64| std::time::Duration::from_secs(n.max(1));
        crate::store::ConnectLimits {
            max_connections: self.max_connections,
            connect_timeout: secs(self.connect_timeout_secs),
            lock_timeout: secs(self.lock_timeout_secs),
            statement_timeout: secs(self.statement_timeout_secs),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CampaignSettings {
    /// The campaign file, relative to the configuration folder.
    pub file: PathBuf,
    /// The quiz's question bank, relative to the configuration folder.
    #[serde(default = "default_questions_file")]
    pub questions: PathBuf,
}

fn default_questions_file() -> PathBuf {
    "questions.toml".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A tracing filter such as `info` or `campaign_lottery=debug,info`; `RUST_LOG` wins.
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            filter: default_log_filter(),
        }
    }
}

fn default_body_limit() -> usize {
    64 * 1024
}
fn default_shutdown_timeout() -> u64 {
    30
}
fn default_body_timeout() -> u64 {
    10
}
fn default_max_connections() -> u32 {
    crate::store::ConnectLimits::default().max_connections
}
fn default_connect_timeout() -> u64 {
    crate::store::ConnectLimits::default()
        .connect_timeout
        .as_secs()
}
fn default_lock_timeout() -> u64 {
    crate::store::ConnectLimits::default()
        .lock_timeout
        .as_secs()
}
fn default_statement_timeout() -> u64 {
    crate::store::ConnectLimits::default()
        .statement_timeout
        .as_secs()
}
fn default_log_format() -> String {
    "pretty".into()
}
fn default_log_filter() -> String {
    "info".into()
}

// The database URL may hold a password: never print it.
impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &crate::store::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("lock_timeout_secs", &self.lock_timeout_secs)
            .field("statement_timeout_secs", &self.statement_timeout_secs)
            .finish()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("server", &self.server)
            .field("database", &self.database)
            .field("campaign", &self.campaign)
            .field("log", &self.log)
            .field("login", &self.login)
            .field("vouchers", &self.vouchers)
            .field("sms", &self.sms)
            .field("risk", &self.risk)
            .finish()
    }
}

/// Settings together with the folder they came from (the campaign file is relative to it).
#[derive(Debug, Clone)]
pub struct LoadedSettings {
    pub settings: Settings,
    pub config_dir: PathBuf,
}

impl LoadedSettings {
    pub fn campaign_path(&self) -> PathBuf {
        self.config_dir.join(&self.settings.campaign.file)
    }

    pub fn questions_path(&self) -> PathBuf {
        self.config_dir.join(&self.settings.campaign.questions)
    }
}

/// Reads the layered settings from `config_dir`.
pub fn load_settings(config_dir: &Path) -> anyhow::Result<LoadedSettings> {
    let base = config_dir.join("default.toml");
    if !base.is_file() {
        anyhow::bail!(
            "configuration file {} not found (run from the project folder, or pass --config-dir)",
            base.display()
        );
    }
    let environment = std::env::var("APP_ENVIRONMENT").unwrap_or_else(|_| "local".into());
    let settings = config::Config::builder()
        .add_source(config::File::from(base.clone()))
        .add_source(
            config::File::from(config_dir.join(format!("{environment}.toml"))).required(false),
        )
        .add_source(
            config::Environment::with_prefix("APP")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .with_context(|| format!("reading settings from {}", config_dir.display()))?
        .try_deserialize::<Settings>()
        .with_context(|| format!("settings in {} (and APP_… variables)", config_dir.display()))?;
    if settings.login.trust_forwarded_for.is_some() {
        anyhow::bail!(
            "settings in {}: login.trust_forwarded_for is no longer read; set server.trusted_proxies \
             to the number of reverse proxies in front of the service (1 behind one nginx), or 0 \
             without one. (trust_forwarded_for = true took the leftmost X-Forwarded-For entry, \
             which a client writes itself.)",
            config_dir.display()
        );
    }
    Ok(LoadedSettings {
        settings,
        config_dir: config_dir.to_path_buf(),
    })
}

/// Reads and parses a campaign file; validation happens once the recorded start is known.
pub fn read_campaign_file(path: &Path) -> anyhow::Result<CampaignFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("campaign file {} not found", path.display())
        } else {
            anyhow::anyhow!("cannot read campaign file {}: {e}", path.display())
        }
    })?;
    CampaignFile::parse(&text).map_err(|e| campaign_error(path, e))
}

pub fn campaign_error(path: &Path, e: CampaignError) -> anyhow::Error {
    anyhow::anyhow!("campaign file {}: {e}", path.display())
}

/// Validates a campaign file, anchoring a `today` schedule at `today`.
pub fn validate_campaign(
    path: &Path,
    file: CampaignFile,
    today: chrono::NaiveDate,
) -> anyhow::Result<Campaign> {
    Campaign::from_file(file, today).map_err(|e| campaign_error(path, e))
}

/// Reads and checks the question bank.
pub fn read_question_bank(path: &Path) -> anyhow::Result<crate::domain::quiz::QuestionBank> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("question bank {} not found", path.display())
        } else {
            anyhow::anyhow!("cannot read question bank {}: {e}", path.display())
        }
    })?;
    crate::domain::quiz::QuestionBank::parse(&text)
        .map_err(|e| anyhow::anyhow!("question bank {}: {e}", path.display()))
}
