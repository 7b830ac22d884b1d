//! The storage contract and its two implementations (SQLite and PostgreSQL).
//!
//! The trait speaks in domain operations and domain errors: no sqlx type crosses it. Every
//! operation that changes state writes its audit entry in the same transaction.

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::domain::audit::{AuditEntry, AuditEvent, ChainBreak, ChainVerifier};
use crate::domain::campaign::{Campaign, CampaignError, RoundProgress};
use crate::domain::token::Role;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The configuration contradicts what the database already records.
    #[error("the configuration contradicts the recorded campaign: {0}")]
    Incompatible(#[from] CampaignError),
    /// Anything the database itself reported; details are for the log, not for clients.
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Applies this backend's migrations.
    async fn migrate(&self) -> StoreResult<()>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

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

    /// Revokes a token; revoking a revoked token is a conflict.
    async fn revoke_token(
        &self,
        id: Uuid,
        actor: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<TokenRecord>;

    /// Records an event on its own (for actions with no other write, such as a CLI run).
    async fn append_audit(&self, event: AuditEvent, at: DateTime<Utc>) -> StoreResult<AuditEntry>;

    /// Audit entries with `seq > after`, in order, at most `limit`.
    async fn audit_page(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEntry>>;

    /// The recorded last entry of the chain: `(seq, hash)`.
    async fn audit_head(&self) -> StoreResult<(i64, String)>;
}

pub type SharedStore = Arc<dyn Store>;

/// Opens the store a database URL names: `postgres://…` or `sqlite:…`.
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<SharedStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect(url, max_connections).await?,
        ))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else {
        Err(StoreError::Database(format!(
            "unsupported database URL {:?}: expected postgres://… or sqlite:…",
            redact_url(url)
        )))
    }
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

/// What the sync should write, decided from the recorded state (shared by both backends).
pub(crate) fn plan_sync(
    recorded: Option<&Campaign>,
    progress: &[(u32, RoundProgress)],
    new: &Campaign,
) -> StoreResult<SyncOutcome> {
    match recorded {
        None => Ok(SyncOutcome::Created),
        Some(old) => {
            crate::domain::campaign::check_compatible(old, progress, new)?;
            Ok(if old == new {
                SyncOutcome::Unchanged
            } else {
                SyncOutcome::Updated
            })
        }
    }
}

pub(crate) fn sync_event(campaign: &Campaign, outcome: SyncOutcome) -> AuditEvent {
    AuditEvent::new(
        "system",
        "campaign.sync",
        format!("campaign:{}", campaign.id),
        serde_json::json!({
            "outcome": outcome,
            "rounds": campaign.rounds.len(),
            "tiers": campaign.tiers.iter().map(|t| format!("{}×{}", t.name, t.count)).collect::<Vec<_>>(),
            "venues": campaign.venues.len(),
            "win_limit": campaign.win_limit,
        }),
    )
}

pub(crate) fn token_event(actor: &str, action: &str, t: &TokenRecord) -> AuditEvent {
    AuditEvent::new(
        actor,
        action,
        format!("token:{}", t.id),
        serde_json::json!({"name": t.name, "role": t.role, "venue_id": t.venue_id}),
    )
}

pub(crate) fn decode_hash(hex_hash: &str) -> StoreResult<[u8; 32]> {
    hex::decode(hex_hash)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            StoreError::Database(format!(
                "audit head hash {hex_hash:?} is not 32 bytes of hex"
            ))
        })
}

pub(crate) fn parse_role(s: &str) -> StoreResult<Role> {
    Role::parse(s).ok_or_else(|| StoreError::Database(format!("unknown role {s:?} in api_tokens")))
}

pub(crate) fn parse_progress(s: &str) -> StoreResult<RoundProgress> {
    RoundProgress::parse(s)
        .ok_or_else(|| StoreError::Database(format!("unknown round progress {s:?}")))
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
