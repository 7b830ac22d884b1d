//! The service's signing keys (DESIGN §4d): one active Ed25519 key signs each drawn round's
//! record; every key's public half is published, the retired ones too.

use super::auth::Operator;
use super::{App, Result};
use crate::domain::signing;
use crate::store::{SharedStore, SigningKeyRecord, StoreError, StoreResult};
use chrono::{DateTime, Utc};

/// A new key from the OS CSPRNG, made at `at`.
fn fresh(at: DateTime<Utc>) -> std::result::Result<SigningKeyRecord, crate::csprng::RandomError> {
    let secret: [u8; 32] = crate::csprng::bytes()?;
    let public = signing::public_of(&secret);
    Ok(SigningKeyRecord {
        id: signing::key_id(&public),
        public_key: hex::encode(public),
        secret_key: hex::encode(secret),
        created_at: at,
        retired_at: None,
    })
}

/// The active key; the first instance to start makes it.
pub async fn active(store: &SharedStore, at: DateTime<Utc>) -> StoreResult<SigningKeyRecord> {
    let fresh = fresh(at).map_err(|e| StoreError::Database(e.to_string()))?;
    store.active_signing_key(&fresh).await
}

/// Every key's public half, oldest first.
pub async fn published(app: &App) -> Result<Vec<SigningKeyRecord>> {
    Ok(app.store.public_keys().await?)
}

/// Retires the active key and makes a new one (audited): records drawn from now on are signed
/// with it; the old signatures stay checkable with the old key, which stays published.
pub async fn rotate(app: &App, who: &Operator) -> Result<(Option<String>, SigningKeyRecord)> {
    let now = app.clock.now();
    let mut key = fresh(now)?;
    let retired = app.store.rotate_signing_key(&key, who.actor(), now).await?;
    key.secret_key.clear();
    Ok((retired, key))
}

/// Signs `bytes` with the active key.
pub(super) async fn sign(app: &App, bytes: &[u8]) -> Result<crate::store::RecordSignature> {
    let key = active(&app.store, app.clock.now()).await?;
    let secret: [u8; 32] = hex::decode(&key.secret_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| super::internal(format!("signing key {} is not 32 bytes of hex", key.id)))?;
    Ok(crate::store::RecordSignature {
        key_id: key.id,
        signature: signing::sign(&secret, bytes),
    })
}
