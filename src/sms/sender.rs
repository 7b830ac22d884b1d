//! The background sender: claims queued messages under a lease, hands each to the gateway once
//! per try, and records what came of it (see [`crate::domain::sms::RetryPolicy`]). Several
//! instances may run one each: a message is claimed by one sender at a time.

use super::{Attempt, Gateway, Outgoing};
use crate::clock::Clock;
use crate::domain::phone::Phone;
use crate::domain::sms::{Outcome, RetryPolicy};
use crate::store::{SharedStore, SmsMessage, StoreResult};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Sender {
    pub store: SharedStore,
    pub gateway: Arc<dyn Gateway>,
    /// The provider's template id of each of the service's templates.
    pub templates: BTreeMap<String, String>,
    pub clock: Arc<dyn Clock>,
    pub policy: RetryPolicy,
    pub batch: u32,
    /// How long a claim holds: past it, a message still `sending` counts as perhaps sent.
    pub lease: chrono::Duration,
    pub poll: std::time::Duration,
}

/// What one turn did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Turn {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl Sender {
    pub fn new(
        store: SharedStore,
        gateway: Arc<dyn Gateway>,
        s: &crate::config::SmsSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            gateway,
            templates: s.templates.clone(),
            clock,
            policy: s.retry_policy(),
            batch: s.batch.max(1),
            // A request ends by its time-out; the margin covers recording what came of it.
            lease: chrono::Duration::seconds(s.request_timeout_secs.max(1) as i64 + 60),
            poll: std::time::Duration::from_millis(s.poll_interval_ms.max(10)),
        }
    }

    async fn try_one(&self, m: &SmsMessage) -> Attempt {
        match self.templates.get(&m.template) {
            Some(id) => {
                self.gateway
                    .send(&Outgoing {
                        id: m.id,
                        phone: &m.phone,
                        template_id: id,
                        params: &m.params,
                    })
                    .await
            }
            None => Attempt::Refused {
                reason: format!("no template id for {} in sms.templates", m.template),
            },
        }
    }

    /// One turn: claims what is due, tries each (together), records each outcome.
    pub async fn turn(&self) -> StoreResult<Turn> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_sms(self.batch, now + self.lease, now)
            .await?;
        let attempts =
            futures_util::future::join_all(claimed.iter().map(|m| self.try_one(m))).await;
        let mut turn = Turn {
            claimed: claimed.len(),
            ..Turn::default()
        };
        let mut first_error = None;
        for (m, attempt) in claimed.iter().zip(attempts) {
            let now = self.clock.now();
            let outcome = self.policy.after(attempt, m.attempts, m.send_before, now);
            let to = Phone::parse(&m.phone)
                .map(|p| p.masked())
                .unwrap_or_else(|_| "?".into());
            let kind = match &outcome {
                Outcome::Sent { .. } => {
                    turn.sent += 1;
                    tracing::info!(id = m.id, to = %to, template = %m.template, "SMS sent");
                    "sent"
                }
                Outcome::Retry { reason, at } => {
                    turn.retried += 1;
                    tracing::info!(id = m.id, to = %to, %reason, retry_at = %at, "SMS not sent, tried again later");
                    "retry"
                }
                Outcome::Failed { reason } => {
                    turn.failed += 1;
                    tracing::warn!(id = m.id, to = %to, %reason, "SMS failed");
                    "failed"
                }
            };
            metrics::counter!("sms_attempts_total", "gateway" => self.gateway.name(), "outcome" => kind)
                .increment(1);
            // One failed write leaves its message `sending`: the lease ends it as perhaps sent.
            if let Err(e) = self.store.record_sms_outcome(m.id, &outcome, now).await {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(turn),
        }
    }

    /// Turns until the process stops: at once again after a full batch, else after the poll
    /// interval.
    pub async fn run(self) {
        tracing::info!(gateway = self.gateway.name(), "SMS sender started");
        loop {
            match self.turn().await {
                Ok(t) if t.claimed as u32 >= self.batch => continue,
                Ok(_) => {}
                // The database's own alerts say why; the next turn tries again.
                Err(e) => tracing::warn!(error = %e, "the SMS sender could not take its turn"),
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
