//! The proof of work before each SMS, in the ALTCHA protocol (PoW v2, PBKDF2-SHA-256): the
//! service hands out a challenge signed with its key and bound to one phone; the browser (the
//! vendored ALTCHA widget) searches for the counter whose derived key starts with a zero byte,
//! 256 tries on average of `login.challenge_cost` iterations each; the code request carries the
//! solution. Checking it costs the service one derivation; a solved challenge buys one SMS (the
//! store spends its nonce with the code) and expires after `login.challenge_ttl_secs`.
//!
//! The expiry is in the signed `data`, judged by the service's clock, not the crate's
//! `expiresAt` (judged by the system clock, which the tests do not move).

use super::{internal, App, Result};
use crate::domain::phone::Phone;
use crate::domain::refusal::Refusal;
use crate::store::{SharedStore, SpentChallenge, StoreResult};
use altcha::{Challenge, CreateChallengeOptions, Payload, VerifySolutionOptions};
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The name of the signing key in `service_secrets`.
const KEY_NAME: &str = "altcha-hmac";

/// The key every instance on this database signs challenges with: made (from the OS's
/// randomness) by the first instance that starts, read by the others.
pub async fn shared_key(store: &SharedStore) -> StoreResult<String> {
    let fresh = hex::encode(
        crate::csprng::bytes::<32>()
            .map_err(|e| crate::store::StoreError::Database(e.to_string()))?,
    );
    store.service_secret(KEY_NAME, &fresh).await
}

/// What binds a challenge to one phone: a digest of the number, so that the challenge (which
/// the browser shows to scripts as readily as to people) carries no number.
pub fn phone_tag(phone: &str) -> String {
    let digest = Sha256::digest(format!("campaign-altcha/v1\n{phone}"));
    hex::encode(&digest[..16])
}

/// The signed `data` of a challenge for `phone` that may be used until `expires`.
fn binding(phone: &str, expires: DateTime<Utc>) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([
        ("phone".to_owned(), phone_tag(phone).into()),
        ("expires".to_owned(), expires.timestamp().into()),
    ])
}

/// Whether a challenge's signed `data` holds for `phone` at `now`: its expiry if so.
pub fn binding_holds(
    data: Option<&BTreeMap<String, serde_json::Value>>,
    phone: &str,
    now: DateTime<Utc>,
) -> std::result::Result<DateTime<Utc>, Refusal> {
    let data = data.ok_or(Refusal::ChallengeInvalid)?;
    if data.get("phone").and_then(|v| v.as_str()) != Some(phone_tag(phone).as_str()) {
        return Err(Refusal::ChallengeInvalid);
    }
    let expires = data
        .get("expires")
        .and_then(|v| v.as_i64())
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or(Refusal::ChallengeInvalid)?;
    if expires <= now {
        return Err(Refusal::ChallengeExpired);
    }
    Ok(expires)
}

/// Makes a challenge for `phone` (`invalid_phone` if it is none).
pub fn challenge(app: &App, phone: &str) -> Result<Challenge> {
    let phone = super::participants::parse_phone(phone)?;
    let expires = app.clock.now() + chrono::Duration::seconds(app.login.challenge_ttl_secs);
    make(
        &app.challenge_key,
        app.login.challenge_cost,
        phone.as_str(),
        expires,
    )
}

/// A challenge for `phone`, signed with `key`, `cost` iterations a try, usable until `expires`.
pub fn make(key: &str, cost: u32, phone: &str, expires: DateTime<Utc>) -> Result<Challenge> {
    altcha::create_challenge(CreateChallengeOptions {
        algorithm: "PBKDF2/SHA-256".into(),
        cost: cost.max(1),
        data: Some(binding(phone, expires)),
        hmac_signature_secret: Some(key.to_owned()),
        ..Default::default()
    })
    .map_err(|e| internal(format!("making a proof-of-work challenge: {e}")))
}

/// Checks the solved challenge `payload` (base64 of the JSON `{challenge, solution}`, as the
/// widget gives it) for `phone` now: the challenge to spend with the code it pays for.
pub fn check(app: &App, phone: &Phone, payload: Option<&str>) -> Result<SpentChallenge> {
    Ok(judge(
        &app.challenge_key,
        phone.as_str(),
        payload,
        app.clock.now(),
    )?)
}

/// What [`check`] decides, from the key, the phone, the payload and the time.
pub fn judge(
    key: &str,
    phone: &str,
    payload: Option<&str>,
    now: DateTime<Utc>,
) -> std::result::Result<SpentChallenge, Refusal> {
    let payload = payload
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or(Refusal::ChallengeRequired)?;
    let payload: Payload = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(Refusal::ChallengeInvalid)?;
    // The signature first (one HMAC): nothing else is worth a derivation until it holds.
    let verified = altcha::verify_solution(VerifySolutionOptions::new(
        &payload.challenge,
        &payload.solution,
        key,
    ))
    .map_err(|_| Refusal::ChallengeInvalid)?;
    if !verified.verified {
        return Err(Refusal::ChallengeInvalid);
    }
    let expires_at = binding_holds(payload.challenge.parameters.data.as_ref(), phone, now)?;
    Ok(SpentChallenge {
        nonce: payload.challenge.parameters.nonce,
        expires_at,
    })
}

/// A solution for `challenge`, encoded as the widget sends it (for tests, benchmarks and
/// scripts of the service's own).
pub fn solve(challenge: &Challenge) -> Option<String> {
    let solution =
        altcha::solve_challenge(altcha::SolveChallengeOptions::new(challenge)).ok()??;
    let payload = Payload {
        challenge: challenge.clone(),
        solution,
    };
    Some(base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&payload).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const PHONE: &str = "13800138000";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 6, 2, 0, 0).unwrap()
    }

    fn solved(key: &str, phone: &str) -> String {
        let c = make(key, 1, phone, now() + chrono::Duration::minutes(5)).unwrap();
        solve(&c).unwrap()
    }

    #[test]
    fn a_solved_challenge_for_the_phone_holds_until_it_expires() {
        let payload = solved("k", PHONE);
        let spent = judge("k", PHONE, Some(&payload), now()).unwrap();
        assert_eq!(spent.expires_at, now() + chrono::Duration::minutes(5));
        assert_eq!(spent.nonce.len(), 32);
        assert_eq!(
            judge(
                "k",
                PHONE,
                Some(&payload),
                now() + chrono::Duration::minutes(5)
            ),
            Err(Refusal::ChallengeExpired)
        );
    }

    #[test]
    fn a_challenge_is_refused_for_another_phone_another_key_or_unsolved() {
        let payload = solved("k", PHONE);
        assert_eq!(
            judge("k", "13900139000", Some(&payload), now()),
            Err(Refusal::ChallengeInvalid)
        );
        assert_eq!(
            judge("other", PHONE, Some(&payload), now()),
            Err(Refusal::ChallengeInvalid)
        );
        // The right challenge with a counter that does not solve it.
        let json = base64::engine::general_purpose::STANDARD
            .decode(&payload)
            .unwrap();
        let mut p: Payload = serde_json::from_slice(&json).unwrap();
        p.solution.counter += 1;
        let wrong =
            base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&p).unwrap());
        assert_eq!(
            judge("k", PHONE, Some(&wrong), now()),
            Err(Refusal::ChallengeInvalid)
        );
        // A cheaper challenge than the one signed.
        let mut p: Payload = serde_json::from_slice(&json).unwrap();
        p.challenge.parameters.cost = 0;
        let cheaper =
            base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&p).unwrap());
        assert_eq!(
            judge("k", PHONE, Some(&cheaper), now()),
            Err(Refusal::ChallengeInvalid)
        );
    }

    #[test]
    fn no_payload_or_noise_is_named() {
        assert_eq!(
            judge("k", PHONE, None, now()),
            Err(Refusal::ChallengeRequired)
        );
        assert_eq!(
            judge("k", PHONE, Some("  "), now()),
            Err(Refusal::ChallengeRequired)
        );
        for noise in ["not base64!", "bm90IGpzb24=", "e30="] {
            assert_eq!(
                judge("k", PHONE, Some(noise), now()),
                Err(Refusal::ChallengeInvalid),
                "{noise}"
            );
        }
    }

    #[test]
    fn the_binding_names_no_number() {
        let tag = phone_tag(PHONE);
        assert_eq!(tag.len(), 32);
        assert!(!tag.contains(PHONE));
        assert_ne!(tag, phone_tag("13900139000"));
    }
}
