//! Who is asking. Staff tokens become typed identities here, role checked, and nowhere else;
//! a use case that takes an [`Operator`] cannot be reached by anyone who is not one.

use super::{App, Result};
use crate::domain::campaign::Venue;
use crate::domain::refusal::Refusal;
use crate::domain::token::{token_hash, Role};
use crate::store::{Participant, TokenRecord};
use uuid::Uuid;

/// The holder of a known, unrevoked staff token, not yet checked for any role.
#[derive(Debug, Clone)]
pub struct Staff {
    token: TokenRecord,
}

/// Looks a Bearer token up.
pub async fn staff(app: &App, bearer: &str) -> Result<Staff> {
    let token = app
        .store
        .token_by_hash(&token_hash(bearer))
        .await?
        .ok_or(Refusal::UnknownToken)?;
    if token.revoked_at.is_some() {
        return Err(Refusal::RevokedToken.into());
    }
    Ok(Staff { token })
}

impl Staff {
    pub fn token(&self) -> &TokenRecord {
        &self.token
    }

    /// How the caller appears in the audit log.
    fn actor(&self) -> String {
        format!("{}:{}", self.token.role, self.token.name)
    }

    fn require(&self, roles: &[Role]) -> std::result::Result<(), Refusal> {
        if roles.contains(&self.token.role) {
            Ok(())
        } else {
            Err(Refusal::WrongRole {
                needs: roles.to_vec(),
                has: self.token.role,
            })
        }
    }

    pub fn operator(&self) -> std::result::Result<Operator, Refusal> {
        self.require(&[Role::Operator])?;
        Ok(Operator {
            actor: self.actor(),
            token_id: Some(self.token.id),
        })
    }

    pub fn witness(&self) -> std::result::Result<Witness, Refusal> {
        self.require(&[Role::Witness])?;
        Ok(Witness {
            name: self.token.name.clone(),
            actor: self.actor(),
        })
    }

    /// Operators read everything auditors do.
    pub fn auditor(&self) -> std::result::Result<Auditor, Refusal> {
        self.require(&[Role::Auditor, Role::Operator])?;
        Ok(Auditor {
            actor: self.actor(),
        })
    }

    /// A venue token whose venue is still a partner of `app`'s campaign.
    pub fn desk(&self, app: &App) -> std::result::Result<Desk, Refusal> {
        self.require(&[Role::Venue])?;
        let id = self.token.venue_id.clone().unwrap_or_default();
        let venue = app
            .campaign
            .venue(&id)
            .cloned()
            .ok_or(Refusal::VenueGone { venue: id })?;
        Ok(Desk {
            venue,
            token_id: self.token.id,
            actor: self.actor(),
        })
    }

    /// A venue's desk (its own settlement) or someone who reads every venue's.
    pub fn settlement_reader(&self, app: &App) -> std::result::Result<SettlementReader, Refusal> {
        match self.token.role {
            Role::Venue => self.desk(app).map(SettlementReader::Desk),
            Role::Operator | Role::Auditor => self.auditor().map(SettlementReader::Auditor),
            has => Err(Refusal::WrongRole {
                needs: vec![Role::Venue, Role::Operator, Role::Auditor],
                has,
            }),
        }
    }
}

/// Runs the draws, handles lost vouchers, makes tokens.
#[derive(Debug, Clone)]
pub struct Operator {
    actor: String,
    /// `None` at the server's command line.
    token_id: Option<Uuid>,
}

impl Operator {
    /// Someone at the server, running the CLI (`user` from the environment).
    pub fn command_line(user: &str) -> Self {
        Self {
            actor: format!("cli:{user}"),
            token_id: None,
        }
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The operator's own token, when acting through the API.
    pub fn token_id(&self) -> Option<Uuid> {
        self.token_id
    }
}

/// Co-produces each draw's seed; named by its token's name.
#[derive(Debug, Clone)]
pub struct Witness {
    name: String,
    actor: String,
}

impl Witness {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }
}

/// Reads everything: an auditor, or an operator.
#[derive(Debug, Clone)]
pub struct Auditor {
    actor: String,
}

impl Auditor {
    /// Someone at the server, running the CLI.
    pub fn command_line(user: &str) -> Self {
        Self {
            actor: format!("cli:{user}"),
        }
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }
}

/// A front desk: a venue token bound to a partner venue.
#[derive(Debug, Clone)]
pub struct Desk {
    venue: Venue,
    token_id: Uuid,
    actor: String,
}

impl Desk {
    pub fn venue(&self) -> &Venue {
        &self.venue
    }

    pub fn token_id(&self) -> Uuid {
        self.token_id
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }
}

/// Who may read a settlement.
#[derive(Debug, Clone)]
pub enum SettlementReader {
    Desk(Desk),
    Auditor(Auditor),
}

/// A participant's live session.
#[derive(Debug, Clone)]
pub struct Session {
    participant: Participant,
    token_hash: String,
}

impl Session {
    pub fn participant(&self) -> &Participant {
        &self.participant
    }

    pub fn token_hash(&self) -> &str {
        &self.token_hash
    }
}

/// A session token as sent, hashed but not yet looked up: for use cases that check the session
/// in the same statement as their own work.
#[derive(Debug, Clone)]
pub struct SessionKey(String);

impl SessionKey {
    pub fn from_token(token: &str) -> Self {
        Self(token_hash(token))
    }

    pub fn hash(&self) -> &str {
        &self.0
    }
}

/// The participant a session token belongs to, if the session is live.
pub async fn session(app: &App, key: &SessionKey) -> Result<Session> {
    let participant = app
        .store
        .participant_by_session(key.hash(), app.clock.now())
        .await?
        .ok_or(Refusal::LoginRequired { expired: true })?;
    Ok(Session {
        participant,
        token_hash: key.0.clone(),
    })
}
