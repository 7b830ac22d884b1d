//! The application layer: one function per use case (register, submit an attempt, freeze, draw,
//! redeem, reissue…), each a single store transaction for what it changes, called alike by the
//! HTTP handlers and the CLI. Handlers parse, call and render; the rules live in the domain and
//! the atomic steps in the store.
//!
//! A use case that needs a role takes the caller as a typed identity ([`auth::Operator`],
//! [`auth::Witness`], [`auth::Desk`]…), which only [`auth`] can make from a checked token (or the
//! CLI, for an operator at the server): a caller cannot reach it without its check.

pub mod auth;
pub mod challenge;
pub mod claims;
pub mod health;
pub mod keys;
pub mod notices;
pub mod participants;
pub mod quiz;
pub mod records;
pub mod reports;
pub mod rounds;
pub mod sms;
pub mod staff;
pub mod vouchers;

use crate::clock::Clock;
use crate::config::{LoginSettings, SmsSettings, VoucherSettings};
use crate::domain::campaign::Campaign;
use crate::domain::quiz::QuestionBank;
use crate::domain::refusal::Refusal;
use crate::store::{SharedStore, StoreError};
use std::sync::Arc;

/// Everything a use case can reach.
pub struct App {
    pub store: SharedStore,
    /// Signs the proof-of-work challenges (see [`challenge`]).
    challenge_key: String,
    pub campaign: Arc<Campaign>,
    pub questions: Arc<QuestionBank>,
    pub clock: Arc<dyn Clock>,
    pub login: LoginSettings,
    pub vouchers: VoucherSettings,
    pub sms: SmsSettings,
    /// Where the risk signals on tickets start.
    pub risk: crate::domain::risk::RiskPolicy,
    /// Frozen rounds' entries and trees, for the entries file and inclusion proofs.
    frozen: rounds::FrozenCache,
    /// Attempts this process started, for one-write submissions.
    attempts: quiz::AttemptCache,
    /// What this process saw of its database's health, for readiness.
    pub health: health::Health,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: SharedStore,
        challenge_key: String,
        campaign: Arc<Campaign>,
        questions: Arc<QuestionBank>,
        clock: Arc<dyn Clock>,
        login: LoginSettings,
        vouchers: VoucherSettings,
        sms: SmsSettings,
        risk: crate::domain::risk::RiskPolicy,
    ) -> Self {
        Self {
            store,
            challenge_key,
            campaign,
            questions,
            clock,
            login,
            vouchers,
            sms,
            risk,
            frozen: Default::default(),
            attempts: Default::default(),
            health: Default::default(),
        }
    }
}

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's to know or fix.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The database cannot be reached now (the cause, for the log).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database has no room to write (the cause, for the log).
    #[error("the database is full: {0}")]
    StorageFull(String),
    /// Ours: logged, never shown in detail.
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused(r) => Error::Refused(r),
            StoreError::Unavailable(cause) => Error::Unavailable(cause),
            StoreError::Full(cause) => Error::StorageFull(cause),
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<crate::csprng::RandomError> for Error {
    fn from(e: crate::csprng::RandomError) -> Self {
        Error::Internal(e.into())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A failure of ours with a message for the log.
pub(crate) fn internal(message: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{message}"))
}
