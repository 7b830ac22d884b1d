//! Text messages go out through an [`SmsSender`]. The default writes each message to the
//! `sms_outbox` table (and a log line, with the phone masked), from which an SMS gateway adapter
//! can send them; a gateway can also implement the trait directly.

use crate::domain::phone::mask;
use crate::store::{SharedStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait SmsSender: Send + Sync {
    async fn send(&self, phone: &str, body: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
}

pub struct OutboxSender {
    store: SharedStore,
}

impl OutboxSender {
    pub fn new(store: SharedStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl SmsSender for OutboxSender {
    async fn send(&self, phone: &str, body: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.store.enqueue_sms(phone, body, at).await?;
        tracing::info!(phone = %mask(phone), chars = body.chars().count(), "SMS queued in the outbox");
        Ok(())
    }
}
