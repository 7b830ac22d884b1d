//! The storage contract and the one store that keeps it, on SQLite or PostgreSQL.
//!
//! The trait speaks in domain operations and domain errors: no sqlx type crosses it. Every
//! operation that changes state writes its audit entry in the same transaction. Its one
//! implementation, [`sql::SqlStore`], writes each statement once; a [`dialect::Dialect`] says
//! how each database runs them.

mod dialect;
mod events;
pub(crate) mod postgres;
mod sql;
pub(crate) mod sqlite;

pub use sql::SqlStore;
pub use sqlite::WAL_LIMIT as SQLITE_WAL_LIMIT;

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<postgres::Pg>;
/// The store on an SQLite file.
pub type SqliteStore = SqlStore<sqlite::Lite>;

use crate::domain::audit::{AuditEntry, AuditEvent, ChainBreak, ChainVerifier};
use crate::domain::campaign::{Campaign, CampaignError, RoundProgress};
pub use crate::domain::exclusion::{Reason, SortedOut};
use crate::domain::quiz::AttemptQuestion;
use crate::domain::refusal::Refusal;
pub use crate::domain::throttle::{LoginLimits, LookupFailures};
use crate::domain::token::Role;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// What was asked contradicts what the database records (a round already frozen, a phone
    /// already registered…): the caller's to explain.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The configuration contradicts what the database already records.
    #[error("the configuration contradicts the recorded campaign: {0}")]
    Incompatible(#[from] CampaignError),
    /// The database cannot be reached now, or not in time (down, restarting, refusing
    /// connections, a lock held too long): a passing outage, worth retrying.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database has no room to write (its disk, or its configured size, is full).
    #[error("the database is full: {0}")]
    Full(String),
    /// Anything else the database reported; details are for the log, not for clients.
    #[error("database error: {0}")]
    Database(String),
}

/// What a database failure means for the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Unavailable,
    Full,
    Other,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let failure = match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Failure::Unavailable,
            sqlx::Error::Database(db) => {
                sqlite::failure(db.as_ref()).unwrap_or_else(|| postgres::failure(db.as_ref()))
            }
            _ => Failure::Other,
        };
        match failure {
            Failure::Unavailable => StoreError::Unavailable(e.to_string()),
            Failure::Full => StoreError::Full(e.to_string()),
            Failure::Other => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration failed: {e}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What syncing the configuration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenRecord {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub venue_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub venue_id: Option<String>,
    /// Hash of the token; the token itself is never stored.
    pub token_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Participant {
    pub id: Uuid,
    /// Normalised 11 digits; mask it before it leaves the service.
    pub phone: String,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A participant's login, stored as a hash.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// What a phone not yet taking part brings with its first code: consent to the privacy notice
/// (that there is a `Newcomer` at all) and an optional nickname.
#[derive(Debug, Clone, Default)]
pub struct Newcomer {
    pub display_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LoginCode {
    pub phone: String,
    pub code_hash: String,
    /// The client address, for the per-address limit.
    pub requested_from: String,
    pub expires_at: DateTime<Utc>,
    /// The text message that carries the code, queued in the outbox with it.
    pub sms: NewSms,
    /// The proof-of-work challenge that paid for this SMS: spent with it, refused when spent.
    pub challenge: SpentChallenge,
}

/// A solved proof-of-work challenge, by its nonce, kept until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentChallenge {
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The session is open; `registered` when the participant was created by this code.
    LoggedIn {
        participant: Participant,
        registered: bool,
    },
    /// The code is right, but the phone takes no part yet and no consent came with it. Nothing
    /// was written: the code stays valid and this try did not count.
    ConsentNeeded,
    WrongCode {
        tries_left: u32,
    },
    /// No unused, unexpired code for this phone.
    NoActiveCode,
    TooManyTries,
}

/// A text message to queue: by its template and parameters, which a gateway sends, with the
/// text they render for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSms {
    pub phone: String,
    pub template: String,
    pub params: Vec<(String, String)>,
    pub body: String,
    /// Not worth sending after this (a login code that expires).
    pub send_before: Option<DateTime<Utc>>,
    /// The event it tells of (`prize:…`), which gets one message at most.
    pub event_key: Option<String>,
}

impl NewSms {
    pub fn new(
        phone: &str,
        t: &crate::domain::sms::Template,
        sign_name: &str,
        send_before: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            phone: phone.to_owned(),
            template: t.name().to_owned(),
            params: t.params(),
            body: t.text(sign_name),
            send_before,
            event_key: None,
        }
    }
}

/// A message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    pub id: i64,
    pub phone: String,
    pub template: String,
    pub params: Vec<(String, String)>,
    pub body: String,
    pub status: crate::domain::sms::Status,
    /// Tries at the gateway so far.
    pub attempts: i32,
    pub send_before: Option<DateTime<Utc>>,
    /// Why it failed (or, queued again, why the last try did not go out).
    pub failure: Option<String>,
    pub gateway_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What a gateway reported of a message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub gateway_id: String,
    pub delivered: bool,
    /// The gateway's code for a failure (`MK:0001`…).
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// How many messages of each status the outbox holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
}

#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub id: Uuid,
    pub participant_id: Uuid,
    pub questions: Vec<AttemptQuestion>,
    pub started_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    /// The campaign-local date the attempt counts against.
    pub local_day: NaiveDate,
    /// Where it was made, for the risk signals on its ticket: the client's network (see
    /// [`crate::domain::risk::network_of`]) and the hash of the device cookie.
    pub network: Option<String>,
    pub device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub id: Uuid,
    pub participant_id: Uuid,
    pub questions: Vec<AttemptQuestion>,
    pub started_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub score: Option<u32>,
    pub passed: Option<bool>,
    /// JSON of the answers given (the result is scored again from them).
    pub result: Option<String>,
    /// The round a passed submission was entered in, and what it did for the ticket.
    pub ticket_round: Option<u32>,
    pub ticket: TicketOutcome,
}

#[derive(Debug, Clone)]
pub struct Submission {
    pub attempt_id: Uuid,
    pub participant_id: Uuid,
    pub score: u32,
    pub passed: bool,
    pub result: String,
    pub at: DateTime<Utc>,
    /// The attempt's deadline must be at or after this: `at` less the grace for the network.
    pub due_after: DateTime<Utc>,
    /// The round a passed attempt earns a ticket in, if one is open.
    pub ticket_round: Option<(String, u32)>,
    /// When set, the hash of a session token that must be the participant's and live at `at`:
    /// the session is then checked by the same write (the service's one-round-trip path).
    pub session: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TicketOutcome {
    /// Failed, or no round open.
    #[default]
    None,
    Issued(Uuid),
    AlreadyHeld(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    Recorded(TicketOutcome),
    /// `session` was given and is not a live session of the participant.
    LoggedOut,
    AlreadySubmitted,
    Expired,
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketRecord {
    pub id: Uuid,
    pub campaign_id: String,
    pub round: u32,
    pub created_at: DateTime<Utc>,
    /// An operator's exclusion from the round's draw.
    pub excluded: Option<Reason>,
}

/// A witness's commitment to a round and, after the freeze, its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessState {
    pub name: String,
    /// Hex.
    pub commitment: String,
    pub committed_at: DateTime<Utc>,
    /// Hex.
    pub secret: Option<String>,
    pub revealed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinnerState {
    pub rank: u32,
    pub ticket: Uuid,
    pub tier: String,
    /// Normalised; mask before publishing.
    pub phone: String,
}

/// What the database records about one round's draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundDrawState {
    pub progress: RoundProgress,
    pub frozen_at: Option<DateTime<Utc>>,
    pub entry_count: Option<u64>,
    /// Hex.
    pub entries_root: Option<String>,
    /// Set at the freeze (DESIGN §4a).
    pub tickets_issued: Option<u64>,
    pub exclusion_count: Option<u64>,
    pub exclusions_root: Option<String>,
    pub exclusions_by_reason: Option<std::collections::BTreeMap<String, u64>>,
    pub beacon_source: Option<String>,
    /// (tier, count) in draw order, rollover included; set at the freeze.
    pub prizes: Vec<(String, u32)>,
    pub beacon: Option<String>,
    /// The drand quicknet signature the beacon is the randomness of (DESIGN §4c).
    pub beacon_signature: Option<String>,
    /// The audit log's head (seq, hash) right after the freeze's and the draw's entries (§4d).
    pub audit_at_freeze: Option<(i64, String)>,
    pub audit_at_draw: Option<(i64, String)>,
    /// Hex.
    pub seed: Option<String>,
    pub drawn_at: Option<DateTime<Utc>>,
    pub witnesses: Vec<WitnessState>,
    pub winners: Vec<WinnerState>,
    /// Ranks after the winners, in order (DESIGN §4b).
    pub reserves: Vec<ReserveState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveState {
    pub rank: u32,
    pub ticket: Uuid,
}

/// An operator's exclusion of tickets from a round.
#[derive(Debug, Clone)]
pub struct Exclusion {
    pub campaign_id: String,
    pub round: u32,
    pub tickets: Vec<Uuid>,
    pub reason: Reason,
    /// Why, in the operator's words (audited, not published).
    pub note: String,
}

/// A ticket as the review sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub ticket: Uuid,
    pub phone: String,
    pub started_at: DateTime<Utc>,
    pub submitted_at: DateTime<Utc>,
    pub questions: u32,
    pub network: Option<String>,
    pub device: Option<String>,
    /// Tickets of the round from the same network / device (itself included; 1 when unknown).
    pub same_network: u64,
    pub same_device: u64,
    /// An operator's exclusion, if any.
    pub excluded: Option<Reason>,
}

#[derive(Debug, Clone)]
pub struct FreezeRound {
    pub campaign_id: String,
    pub round: u32,
    /// When the round's entry window closes, in UTC and as the campaign's local time.
    pub closes_at: DateTime<Utc>,
    pub closes_at_local: String,
    pub min_witnesses: u32,
    pub beacon_source: String,
    /// The round's own prizes, (tier, count) in draw order.
    pub base_prizes: Vec<(String, u32)>,
    pub win_limit: u32,
}

#[derive(Debug, Clone)]
pub struct DrawRound {
    pub campaign_id: String,
    pub round: u32,
    /// What the operator gave for the beacon: taken by the source declared at the freeze.
    pub beacon: crate::domain::draw::beacon::Given,
    /// For each tier, the voucher kinds a winner of it receives.
    pub tier_kinds: Vec<(String, Vec<String>)>,
    pub win_limit: u32,
    /// Reserves to draw after the winners (DESIGN §4b).
    pub reserves: u32,
    /// Until when the winners may claim their prizes.
    pub claim_deadline: DateTime<Utc>,
}

/// A prize held: a drawn winner's, or a reserve's it went to (`promoted_from` the forfeited
/// rank), with where its claim stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrizeState {
    pub campaign_id: String,
    pub round: u32,
    pub rank: u32,
    pub tier: String,
    pub participant_id: Uuid,
    pub promoted_from: Option<u32>,
    pub standing: crate::domain::claim::Standing,
}

/// The tallied learning figures, as the report reads them (see `domain::figures`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuizFigures {
    /// By (local day, round): the counts (attempts started among them) and the distinct
    /// participants who submitted.
    pub days: Vec<(String, u32, crate::domain::figures::Counts, u64)>,
    /// Distinct participants per round (0: outside every round), by round.
    pub takers_per_round: Vec<(u32, u64)>,
    /// Distinct participants in all.
    pub takers: u64,
    /// Per question over the whole campaign, by id.
    pub questions: Vec<crate::domain::figures::QuestionFigures>,
    /// Attempts done with (submitted, or their time up) and not tallied yet.
    pub untallied: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClaimCounts {
    pub round: u32,
    pub to_claim: u64,
    pub claimed: u64,
    pub forfeited: u64,
    /// Holders whose prize notice, and whose reminder, was queued for SMS.
    pub notified: u64,
    pub reminded: u64,
}

/// What forfeiting a prize needs to know to pass it on.
#[derive(Debug, Clone)]
pub struct Forfeit {
    pub campaign_id: String,
    pub tier_kinds: Vec<(String, Vec<String>)>,
    /// The claim period of a reserve who gets the prize.
    pub claim_days: u32,
}

/// An event the holder is told of by SMS, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A prize to claim (a winner's, or one passed to a reserve).
    Prize {
        round: u32,
        rank: u32,
        phone: String,
        claim_by: DateTime<Utc>,
    },
    /// Its claim deadline is near.
    Reminder {
        round: u32,
        rank: u32,
        phone: String,
        claim_by: DateTime<Utc>,
    },
    Redeemed {
        redemption: Uuid,
        phone: String,
        kind: String,
        venue_id: String,
        at: DateTime<Utc>,
    },
    Reversed {
        reversal: Uuid,
        phone: String,
        kind: String,
        venue_id: String,
        at: DateTime<Utc>,
    },
}

impl Notice {
    /// The event's key in the outbox: one message per event.
    pub fn key(&self, campaign_id: &str) -> String {
        match self {
            Notice::Prize { round, rank, .. } => format!("prize:{campaign_id}:{round}:{rank}"),
            Notice::Reminder { round, rank, .. } => {
                format!("reminder:{campaign_id}:{round}:{rank}")
            }
            Notice::Redeemed { redemption, .. } => format!("redeemed:{redemption}"),
            Notice::Reversed { reversal, .. } => format!("reversed:{reversal}"),
        }
    }

    pub fn phone(&self) -> &str {
        match self {
            Notice::Prize { phone, .. }
            | Notice::Reminder { phone, .. }
            | Notice::Redeemed { phone, .. }
            | Notice::Reversed { phone, .. } => phone,
        }
    }
}

impl Forfeit {
    pub fn of(c: &Campaign) -> Self {
        Self {
            campaign_id: c.id.clone(),
            tier_kinds: c.tier_kinds(),
            claim_days: c.claim_days,
        }
    }
}

/// One line of a round's reallocations document (DESIGN §4b).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reallocation {
    pub seq: u32,
    pub forfeited_rank: u32,
    pub reason: crate::domain::claim::ForfeitReason,
    /// None: no reserve was left, the prize is unawarded.
    pub reserve_rank: Option<u32>,
    pub tier: String,
    pub at: DateTime<Utc>,
}

/// A winner's voucher, its holder and its unreversed uses (under this code or the codes it
/// replaced: see [`crate::domain::redemption::entitlement`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherRecord {
    pub id: Uuid,
    /// 12 symbols, no separators.
    pub code: String,
    pub campaign_id: String,
    pub round: u32,
    pub rank: u32,
    pub tier: String,
    pub kind: String,
    pub participant_id: Uuid,
    /// Normalised; mask before showing it to anyone but operators.
    pub holder_phone: String,
    pub holder_name: Option<String>,
    pub void: bool,
    /// Its prize has been claimed (vouchers are usable only then).
    pub claimed: bool,
    pub issued_at: DateTime<Utc>,
    pub voided_at: Option<DateTime<Utc>>,
    pub void_reason: Option<String>,
    pub reissued_from: Option<Uuid>,
    /// The holder code's secret (DESIGN §5): for the holder's session only. None for a voucher
    /// issued before holder codes until its holder opens /me.
    pub holder_secret: Option<crate::domain::holder_code::Secret>,
    pub uses: Vec<UseRecord>,
}

impl VoucherRecord {
    pub fn standing(&self) -> crate::domain::redemption::Standing {
        crate::domain::redemption::Standing::of(self.void, self.claimed)
    }

    pub fn entitlement(&self) -> String {
        crate::domain::redemption::entitlement(&self.campaign_id, self.round, self.rank, &self.kind)
    }

    pub fn domain_uses(&self) -> Vec<crate::domain::redemption::Use> {
        self.uses
            .iter()
            .map(|u| crate::domain::redemption::Use {
                venue_id: u.venue_id.clone(),
                at: u.at,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseRecord {
    pub redemption_id: Uuid,
    pub venue_id: String,
    pub at: DateTime<Utc>,
}

/// One redemption at a venue and, if it was reversed, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionRecord {
    pub id: Uuid,
    pub voucher_id: Uuid,
    pub code: String,
    pub kind: String,
    pub venue_id: String,
    pub token_id: Uuid,
    pub idempotency_key: String,
    pub redeemed_at: DateTime<Utc>,
    pub reversal_id: Option<Uuid>,
    pub reversed_at: Option<DateTime<Utc>>,
}

/// A drawn round's record, its exact bytes, and the service's signature on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRecord {
    pub json: String,
    /// None for a record kept before records were signed, until it is signed.
    pub signature: Option<RecordSignature>,
}

/// `GET /api/rounds/{round}/record.sig` (DESIGN §4d).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RecordSignature {
    pub key_id: String,
    /// Ed25519 over the record's exact bytes, base64.
    pub signature: String,
}

/// One of the service's signing keys (hex halves).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub id: String,
    pub public_key: String,
    /// Empty when read for publication.
    pub secret_key: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("id", &self.id)
            .field("public_key", &self.public_key)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// A front desk's request to redeem a code.
#[derive(Debug, Clone)]
pub struct Redeem {
    /// 12 symbols, already checked for typos.
    pub code: String,
    pub venue: crate::domain::campaign::Venue,
    pub token_id: Uuid,
    pub idempotency_key: String,
    /// The holder code from the holder's phone, as typed or scanned (6 digits).
    pub holder_code: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

impl Redeem {
    /// The redemption this request writes, as `id`, of `voucher`.
    pub(crate) fn record(&self, id: Uuid, voucher: &VoucherRecord) -> RedemptionRecord {
        RedemptionRecord {
            id,
            voucher_id: voucher.id,
            code: voucher.code.clone(),
            kind: voucher.kind.clone(),
            venue_id: self.venue.id.clone(),
            token_id: self.token_id,
            idempotency_key: self.idempotency_key.clone(),
            redeemed_at: self.at,
            reversal_id: None,
            reversed_at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
// One per request, moved once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum RedeemOutcome {
    /// `replayed`: the same Idempotency-Key and request redeemed this code before; nothing new
    /// was written.
    Redeemed {
        redemption: RedemptionRecord,
        voucher: VoucherRecord,
        replayed: bool,
    },
    /// `replayed`: the answer recorded for the same Idempotency-Key and request.
    Refused {
        reason: crate::domain::redemption::Reason,
        replayed: bool,
    },
    /// No voucher has this code.
    Unknown { replayed: bool },
    /// The Idempotency-Key was used by this token for another request (another code, other
    /// holder digits).
    KeyReused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReverseOutcome {
    Reversed(RedemptionRecord),
    /// No redemption with this id by this venue.
    NotFound,
    AlreadyReversed(RedemptionRecord),
    WindowPassed(RedemptionRecord),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Applies this backend's migrations.
    async fn migrate(&self) -> StoreResult<()>;

    /// Writes a consistent copy of the live database to the new file `path` (SQLite's
    /// `VACUUM INTO`, beside the running service) and checks it (`integrity_check`).
    async fn backup_into(&self, path: &std::path::Path) -> StoreResult<()>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    /// A tiny write, committed: whether the database takes writes now (it may answer reads and
    /// still refuse writes, with its disk full).
    async fn probe_write(&self, at: DateTime<Utc>) -> StoreResult<()>;

    /// The configuration as last synced, if any.
    async fn recorded_campaign(&self) -> StoreResult<Option<Campaign>>;

    /// Records the configuration: the campaign, its rounds, voucher kinds, tiers and venues.
    /// Idempotent; refuses a configuration that contradicts frozen or drawn rounds.
    async fn sync_campaign(
        &self,
        campaign: &Campaign,
        at: DateTime<Utc>,
    ) -> StoreResult<SyncOutcome>;

    /// Each round's recorded progress, by round number.
    async fn round_progress(&self, campaign_id: &str) -> StoreResult<Vec<(u32, RoundProgress)>>;

    /// Stores a token's hash. A venue token must name an active venue.
    async fn create_token(
        &self,
        token: NewToken,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<TokenRecord>;

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>>;

    /// Revokes a token once. With `keep_an_operator`, refuses to revoke the last live operator
    /// token (decided under a lock, so that two revocations at once cannot both pass).
    async fn revoke_token(
        &self,
        id: Uuid,
        keep_an_operator: bool,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<TokenRecord>;

    /// Records an event on its own (for actions with no other write, such as a CLI run).
    async fn append_audit(&self, event: AuditEvent, at: DateTime<Utc>) -> StoreResult<AuditEntry>;

    /// Audit entries with `seq > after`, in order, at most `limit`.
    async fn audit_page(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEntry>>;

    /// The recorded last entry of the chain: `(seq, hash)`.
    async fn audit_head(&self) -> StoreResult<(i64, String)>;

    // ---- participants -------------------------------------------------------------------------

    async fn participant_by_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Participant>>;

    async fn participant_by_phone(&self, phone: &str) -> StoreResult<Option<Participant>>;

    async fn end_session(&self, token_hash: &str) -> StoreResult<()>;

    /// The secret named `name`, shared by every instance on this database: `fresh` the first
    /// time it is asked for, whatever was stored ever after.
    async fn service_secret(&self, name: &str, fresh: &str) -> StoreResult<String>;

    /// Records a one-time code and queues its SMS in the outbox, in one transaction, unless
    /// [`crate::domain::throttle::may_send_code`] refuses or its challenge was spent
    /// (`challenge_used`); the challenge is spent with it.
    async fn issue_login_code(
        &self,
        code: LoginCode,
        limits: &LoginLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Checks a code against the newest unexpired code sent to the phone (a newer one ends the
    /// older ones, and a used one is used up); on success it is used up and the
    /// session opened, for a phone not yet taking part only with a `newcomer` (consent), which
    /// then creates the participant in the same transaction. This is the only way a participant
    /// or a session comes to be: the phone is proven. Every wrong try counts.
    async fn verify_login_code(
        &self,
        phone: &str,
        code_hash: &str,
        session: NewSession,
        newcomer: Option<Newcomer>,
        limits: &LoginLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<LoginOutcome>;

    async fn enqueue_sms(&self, sms: &NewSms, at: DateTime<Utc>) -> StoreResult<()>;

    /// Text messages queued after `since` (for the campaign-wide budget's status).
    async fn sms_queued_since(&self, since: DateTime<Utc>) -> StoreResult<u64>;

    /// The outbox by status, of the messages queued after `since`.
    async fn outbox_counts(&self, since: DateTime<Utc>) -> StoreResult<OutboxCounts>;

    /// Messages queued or being sent, oldest first (the outbox, read without a gateway).
    async fn pending_sms(&self, limit: u32) -> StoreResult<Vec<SmsMessage>>;

    /// The newest messages, whatever became of them, newest first.
    async fn recent_sms(&self, limit: u32) -> StoreResult<Vec<SmsMessage>>;

    /// The sender's turn, in one transaction: messages past their `send_before` fail as
    /// `expired`, a `sending` one whose lease ran out fails as `outcome_unknown` (its sender
    /// stopped mid-way: perhaps sent, so never again), then up to `limit` queued messages due
    /// by `now` become `sending`, leased until `lease_until`, their tries counted. Senders on
    /// other instances claim other messages.
    async fn claim_sms(
        &self,
        limit: u32,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SmsMessage>>;

    /// Records what a try of a claimed message came to; false when it is no longer `sending`
    /// (its lease ran out meanwhile).
    async fn record_sms_outcome(
        &self,
        id: i64,
        outcome: &crate::domain::sms::Outcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// A gateway's delivery reports for messages it accepted, in one transaction: how many
    /// changed a message (one known by that id and `sent`; a report repeated changes nothing).
    async fn record_deliveries(&self, reports: &[DeliveryReport]) -> StoreResult<u64>;

    // ---- the quiz and tickets -------------------------------------------------------------------

    /// Starts an attempt unless the participant has started `daily_limit` on that local day.
    async fn start_attempt(&self, a: NewAttempt, daily_limit: u32) -> StoreResult<bool>;

    async fn attempt(&self, id: Uuid) -> StoreResult<Option<AttemptRecord>>;

    /// A participant's submitted attempts, the latest `limit` of them, newest first.
    async fn submitted_attempts_of(
        &self,
        participant_id: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<AttemptRecord>>;

    /// In one look-up: the participant of a live session (None: no such session) and the
    /// attempt `attempt_id` if it is theirs.
    async fn session_attempt(
        &self,
        token_hash: &str,
        attempt_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Participant, Option<AttemptRecord>)>>;

    /// Records a scored attempt once (never after its deadline) and, for a pass in an open
    /// round, the participant's one ticket of that round.
    async fn submit_attempt(&self, s: Submission) -> StoreResult<SubmitOutcome>;

    async fn tickets_of(&self, participant_id: Uuid) -> StoreResult<Vec<TicketRecord>>;

    /// How many tickets each round holds, rounds without tickets left out, by round.
    async fn tickets_per_round(&self, campaign_id: &str) -> StoreResult<Vec<(u32, u64)>>;

    /// Tallies up to `limit` attempts done with at `now` (submitted, or their time up) and not
    /// tallied yet into the learning figures, each exactly once even with several instances
    /// tallying at the same time (an attempt is claimed by the same transaction that counts it).
    /// How many it tallied.
    async fn tally_attempts(
        &self,
        bank: &crate::domain::quiz::QuestionBank,
        campaign: &crate::domain::campaign::Campaign,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// The tallied learning figures; `untallied` counts what is done with at `now`.
    async fn quiz_figures(&self, now: DateTime<Utc>) -> StoreResult<QuizFigures>;

    // ---- draws ------------------------------------------------------------------------------

    async fn round_draw_state(
        &self,
        campaign_id: &str,
        round: u32,
    ) -> StoreResult<Option<RoundDrawState>>;

    /// Records a witness's commitment; only while the round is pending, once per witness.
    async fn commit_witness(
        &self,
        campaign_id: &str,
        round: u32,
        witness: &str,
        commitment: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Freezes the eligible tickets when [`crate::domain::lifecycle::may_freeze`] allows it:
    /// after the entry window, once the previous round is drawn and enough witnesses have
    /// committed. Happens once.
    async fn freeze_round(&self, f: FreezeRound, actor: &str, at: DateTime<Utc>)
        -> StoreResult<()>;

    /// Records a witness's secret, once, after the freeze; the caller has checked it against the
    /// commitment.
    async fn reveal_secret(
        &self,
        campaign_id: &str,
        round: u32,
        witness: &str,
        secret_hex: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Draws a round when [`crate::domain::lifecycle::may_draw`] allows it (frozen, every
    /// secret revealed, the beacon given exactly when declared): winners and their vouchers are
    /// recorded in the transaction that marks the round drawn. Happens once.
    async fn draw_round(&self, d: DrawRound, actor: &str, at: DateTime<Utc>) -> StoreResult<()>;

    /// A round's tickets sorted out (DESIGN §4a): the entries and the exclusions, each in
    /// canonical order — an operator's exclusions, and `won_earlier` for a holder who already
    /// won `win_limit` times in earlier rounds.
    async fn round_sorted_out(
        &self,
        campaign_id: &str,
        round: u32,
        win_limit: u32,
    ) -> StoreResult<SortedOut>;

    /// Excludes tickets of a round that is not frozen yet, with a reason an operator may give,
    /// each audited, in one transaction: the tickets newly excluded (one already excluded
    /// keeps its first reason). A ticket not of the round refuses the whole (`not_a_ticket`).
    async fn exclude_tickets(
        &self,
        x: &Exclusion,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>>;

    /// Takes tickets back into a round that is not frozen yet, each audited: those that were
    /// excluded.
    async fn restore_tickets(
        &self,
        campaign_id: &str,
        round: u32,
        tickets: &[Uuid],
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>>;

    /// What the review of a round's tickets needs: each ticket with the facts of the attempt
    /// that won it and how many of the round's tickets share its network and its device.
    async fn round_review(&self, campaign_id: &str, round: u32) -> StoreResult<Vec<TicketFacts>>;

    // ---- claims ---------------------------------------------------------------------------------

    /// The prizes a participant holds or held, by round.
    async fn prizes_of(&self, participant_id: Uuid) -> StoreResult<Vec<PrizeState>>;

    /// Claims the participant's prize of a round, while open and before its deadline (`no_prize`,
    /// `claim_closed`); claiming twice changes nothing. Audited. The prize as it stands.
    async fn claim_prize(
        &self,
        campaign_id: &str,
        round: u32,
        participant_id: Uuid,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<PrizeState>;

    /// Declines the participant's open prize of a round: forfeited, passed to the next reserve.
    async fn decline_prize(
        &self,
        f: &Forfeit,
        round: u32,
        participant_id: Uuid,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Reallocation>;

    /// Forfeits every open prize past its deadline at `now`, each passed to the next reserve of its
    /// round, in one transaction; what was reallocated.
    async fn forfeit_overdue(
        &self,
        f: &Forfeit,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Reallocation>>;

    /// Events whose holder is to be told and has not been: prizes to claim, claims due within
    /// `remind_before`, redemptions and reversals; at most `limit` of each kind.
    async fn pending_notices(
        &self,
        campaign_id: &str,
        remind_before: chrono::Duration,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Notice>>;

    /// Queues each notice's message, in one transaction, marking its event told: an event
    /// already told (by another instance meanwhile) gets none. How many were queued.
    async fn queue_notices(
        &self,
        campaign_id: &str,
        notices: &[(Notice, NewSms)],
        at: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Per drawn round: prizes to claim, claimed and forfeited (winners' and reserves' alike).
    async fn claim_counts(&self, campaign_id: &str) -> StoreResult<Vec<ClaimCounts>>;

    /// A round's reallocations document, by seq.
    async fn reallocations(&self, campaign_id: &str, round: u32) -> StoreResult<Vec<Reallocation>>;

    // ---- vouchers ---------------------------------------------------------------------------

    async fn voucher(&self, id: Uuid) -> StoreResult<Option<VoucherRecord>>;

    /// `code`: 12 symbols, no separators.
    async fn voucher_by_code(&self, code: &str) -> StoreResult<Option<VoucherRecord>>;

    /// A drawn round's record as it was kept (DESIGN §4d), if it was, with its signature.
    async fn kept_record(&self, campaign_id: &str, round: u32) -> StoreResult<Option<KeptRecord>>;

    /// Keeps a drawn round's record with its signature, unless one is kept already: the record
    /// kept, byte for byte (another instance's, if it kept one first).
    async fn keep_record(
        &self,
        campaign_id: &str,
        round: u32,
        record: &KeptRecord,
    ) -> StoreResult<KeptRecord>;

    /// Signs a record kept before records were signed (migration 0019), unless it is signed.
    async fn sign_kept_record(
        &self,
        campaign_id: &str,
        round: u32,
        signature: &RecordSignature,
    ) -> StoreResult<KeptRecord>;

    /// The active signing key; `fresh` becomes it when there is none (the first start).
    async fn active_signing_key(&self, fresh: &SigningKeyRecord) -> StoreResult<SigningKeyRecord>;

    /// Retires the active signing key and makes `fresh` the active one, audited: the retired
    /// key's id, if there was one.
    async fn rotate_signing_key(
        &self,
        fresh: &SigningKeyRecord,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<String>>;

    /// Every signing key's public half, oldest first (the secret halves left empty).
    async fn public_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;

    /// A participant's vouchers, void ones included, by round, rank and kind.
    async fn vouchers_of(&self, participant_id: Uuid) -> StoreResult<Vec<VoucherRecord>>;

    /// Gives each listed voucher its holder-code secret where it has none yet (vouchers issued
    /// before holder codes); one given already stays. How many were given.
    async fn give_holder_secrets(
        &self,
        secrets: &[(Uuid, crate::domain::holder_code::Secret)],
    ) -> StoreResult<u64>;

    /// Every voucher of a campaign, by round, rank and kind.
    async fn all_vouchers(&self, campaign_id: &str) -> StoreResult<Vec<VoucherRecord>>;

    /// Redeems exactly once: the voucher is judged by the campaign's rules and the redemption
    /// written in one transaction, with its audit entry; a unique index stops a second
    /// unreversed redemption of the same slot whatever the concurrency.
    async fn redeem(&self, campaign: &Campaign, r: Redeem) -> StoreResult<RedeemOutcome>;

    /// Reverses a venue's own redemption within `window` of it: a reversal record, and the
    /// redemption marked with it; nothing is deleted.
    async fn reverse_redemption(
        &self,
        redemption_id: Uuid,
        venue_id: &str,
        token_id: Uuid,
        window: chrono::Duration,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<ReverseOutcome>;

    /// A venue's latest redemptions (or every venue's), newest first.
    async fn recent_redemptions(
        &self,
        venue_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<RedemptionRecord>>;

    /// Redemptions made or reversed in `[from, to)`, at one venue or all, oldest first.
    async fn redemptions_between(
        &self,
        venue_id: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<RedemptionRecord>>;

    /// Voids a live voucher (lost, say); its uses stay on record.
    async fn void_voucher(
        &self,
        id: Uuid,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<VoucherRecord>;

    /// A new code for a voided voucher, to the same winner, once; it keeps the old code's uses.
    async fn reissue_voucher(
        &self,
        id: Uuid,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<VoucherRecord>;

    async fn record_lookup_failure(
        &self,
        token_id: Uuid,
        address: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    async fn lookup_failures(
        &self,
        token_id: Uuid,
        address: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<LookupFailures>;

    /// Deletes what is kept only for a while, from before `before`: login codes and failed
    /// look-ups (the throttles look back an hour at most), sessions that had expired, and SMS the
    /// gateway had sent. Unsent SMS stay. Returns how many rows went.
    async fn forget_expired(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

pub type SharedStore = Arc<dyn Store>;

/// How the store connects, and how long what it runs may wait.
#[derive(Debug, Clone, Copy)]
pub struct ConnectLimits {
    pub max_connections: u32,
    /// For a connection: the first (a server that does not answer is named), and each later one
    /// a request waits for.
    pub connect_timeout: Duration,
    /// For a lock another session holds (PostgreSQL's `lock_timeout`; SQLite's busy timeout):
    /// past it the statement fails as unavailable instead of hanging, at start-up and in requests.
    pub lock_timeout: Duration,
    /// For one statement (PostgreSQL's `statement_timeout`; SQLite has none).
    pub statement_timeout: Duration,
}

impl Default for ConnectLimits {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
        }
    }
}

impl ConnectLimits {
    /// The defaults with `max_connections` connections.
    pub fn with_connections(max_connections: u32) -> Self {
        Self {
            max_connections,
            ..Self::default()
        }
    }
}

/// Opens the store a database URL names: `postgres://…` or `sqlite:…`.
pub async fn connect(url: &str, limits: ConnectLimits) -> StoreResult<SharedStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(SqlStore::new(
            postgres::Pg::connect(url, limits).await?,
        )))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqlStore::new(
            sqlite::Lite::connect(url, limits).await?,
        )))
    } else {
        Err(StoreError::Database(format!(
            "unsupported database URL {:?}: expected postgres://… or sqlite:…",
            redact_url(url)
        )))
    }
}

/// The file an `sqlite:` URL names, `None` for another URL or an in-memory database.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url).ok()?;
    let file = options.get_filename();
    (!file.as_os_str().is_empty() && file.as_os_str() != ":memory:").then(|| file.to_path_buf())
}

/// A database URL with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Walks the whole audit log and checks the chain and its recorded head.
/// The outer error is a failure to read; the inner one says where the chain breaks.
pub async fn verify_audit_log(store: &dyn Store) -> StoreResult<Result<i64, ChainBreak>> {
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = store.audit_page(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            if let Err(brk) = verifier.push(entry) {
                return Ok(Err(brk));
            }
        }
    }
    Ok(verifier.finish(head_seq, &head_hash))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/campaign"),
            "postgres://app:***@db:5432/campaign"
        );
        assert_eq!(
            redact_url("postgres://app@db/campaign"),
            "postgres://app@db/campaign"
        );
        assert_eq!(redact_url("sqlite://data/demo.db"), "sqlite://data/demo.db");
    }
}
