//! The append-only audit log: each entry's hash covers the previous entry's hash and the entry's
//! own canonical content, so editing, deleting or reordering any entry breaks the chain.

use super::lp;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// An action to record, before it has a place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Who acted: `cli`, `system`, or `ROLE:TOKEN-NAME`.
    pub actor: String,
    /// What was done, `noun.verb`: `token.create`, `campaign.sync`, …
    pub action: String,
    /// What it was done to: `token:UUID`, `round:3`, …
    pub subject: String,
    /// Canonical JSON (keys sorted, no spaces) with the details.
    pub details: String,
}

impl AuditEvent {
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            // serde_json's default map is ordered by key, which makes this canonical.
            details: details.to_string(),
        }
    }
}

/// A recorded entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    /// Hex of the previous entry's hash.
    pub prev_hash: String,
    /// Hex of this entry's hash.
    pub hash: String,
}

/// `SHA-256( LP("campaign-audit/v1") ‖ u64be(seq) ‖ prev_hash ‖ LP(at) ‖ LP(actor) ‖ LP(action)
/// ‖ LP(subject) ‖ LP(details) )`, with `at` as RFC 3339 UTC with microseconds.
pub fn entry_hash(seq: i64, prev: &[u8; 32], at: DateTime<Utc>, event: &AuditEvent) -> [u8; 32] {
    let mut h = Sha256::new();
    lp(&mut h, b"campaign-audit/v1");
    h.update((seq as u64).to_be_bytes());
    h.update(prev);
    lp(
        &mut h,
        at.to_rfc3339_opts(SecondsFormat::Micros, true).as_bytes(),
    );
    lp(&mut h, event.actor.as_bytes());
    lp(&mut h, event.action.as_bytes());
    lp(&mut h, event.subject.as_bytes());
    lp(&mut h, event.details.as_bytes());
    h.finalize().into()
}

/// The bytes an entry's hash covers before and after `u64be(seq) ‖ prev`, so that a database can
/// chain an entry in the statement that writes it: `hash = SHA-256(prefix ‖ u64be(seq) ‖ prev ‖
/// suffix)`.
pub fn hash_frame(at: DateTime<Utc>, event: &AuditEvent) -> (Vec<u8>, Vec<u8>) {
    let framed = |parts: &[&[u8]]| {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    };
    let at = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    (
        framed(&[b"campaign-audit/v1"]),
        framed(&[
            at.as_bytes(),
            event.actor.as_bytes(),
            event.action.as_bytes(),
            event.subject.as_bytes(),
            event.details.as_bytes(),
        ]),
    )
}

/// Places `event` after the entry with sequence number `prev_seq` and hash `prev`.
pub fn chain(prev_seq: i64, prev: [u8; 32], at: DateTime<Utc>, event: AuditEvent) -> AuditEntry {
    let seq = prev_seq + 1;
    let hash = entry_hash(seq, &prev, at, &event);
    AuditEntry {
        seq,
        at,
        actor: event.actor,
        action: event.action,
        subject: event.subject,
        details: event.details,
        prev_hash: hex::encode(prev),
        hash: hex::encode(hash),
    }
}

/// Why the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error(
        "entry {seq}: expected sequence number {expected} (an entry is missing or out of order)"
    )]
    Gap { seq: i64, expected: i64 },
    #[error("entry {seq}: its prev_hash does not match the entry before it")]
    PrevMismatch { seq: i64 },
    #[error("entry {seq}: its content does not match its hash (edited)")]
    HashMismatch { seq: i64 },
    #[error("the log ends at entry {last} but the recorded head is entry {head_seq} (entries removed from the end, or the head edited)")]
    HeadMismatch { last: i64, head_seq: i64 },
}

/// Checks entries incrementally, so that a long log can be read page by page.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    last_seq: i64,
    last_hash: [u8; 32],
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS,
        }
    }
}

impl ChainVerifier {
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ChainBreak> {
        let expected = self.last_seq + 1;
        if e.seq != expected {
            return Err(ChainBreak::Gap {
                seq: e.seq,
                expected,
            });
        }
        if e.prev_hash != hex::encode(self.last_hash) {
            return Err(ChainBreak::PrevMismatch { seq: e.seq });
        }
        let event = AuditEvent {
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            details: e.details.clone(),
        };
        let computed = entry_hash(e.seq, &self.last_hash, e.at, &event);
        if hex::encode(computed) != e.hash {
            return Err(ChainBreak::HashMismatch { seq: e.seq });
        }
        self.last_seq = e.seq;
        self.last_hash = computed;
        Ok(())
    }

    /// Checks the end of the log against the separately recorded head.
    pub fn finish(self, head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        if self.last_seq != head_seq || hex::encode(self.last_hash) != head_hash {
            return Err(ChainBreak::HeadMismatch {
                last: self.last_seq,
                head_seq,
            });
        }
        Ok(self.last_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn log(n: usize) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        let (mut seq, mut prev) = (0, GENESIS);
        for i in 0..n {
            let at = Utc.with_ymd_and_hms(2024, 7, 1, 0, 0, i as u32).unwrap();
            let e = chain(
                seq,
                prev,
                at,
                AuditEvent::new(
                    "cli",
                    "token.create",
                    format!("token:{i}"),
                    serde_json::json!({"i": i}),
                ),
            );
            seq = e.seq;
            prev = hex::decode(&e.hash).unwrap().try_into().unwrap();
            out.push(e);
        }
        out
    }

    fn verify(entries: &[AuditEntry], head: &AuditEntry) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.push(e)?;
        }
        v.finish(head.seq, &head.hash)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let l = log(5);
        assert_eq!(verify(&l, &l[4]), Ok(5));
    }

    #[test]
    fn an_edited_entry_is_found() {
        let mut l = log(5);
        let head = l[4].clone();
        l[2].details = r#"{"i":99}"#.into();
        assert_eq!(verify(&l, &head), Err(ChainBreak::HashMismatch { seq: 3 }));
    }

    #[test]
    fn a_deleted_entry_is_found() {
        let mut l = log(5);
        let head = l[4].clone();
        l.remove(1);
        assert_eq!(
            verify(&l, &head),
            Err(ChainBreak::Gap {
                seq: 3,
                expected: 2
            })
        );
        let mut l = log(5);
        l.pop();
        assert!(matches!(
            verify(&l, &head),
            Err(ChainBreak::HeadMismatch { .. })
        ));
    }

    #[test]
    fn reordered_entries_are_found() {
        let mut l = log(5);
        let head = l[4].clone();
        // Swap contents but keep sequence numbers, as an UPDATE would.
        let (a, b) = (l[1].clone(), l[2].clone());
        l[1] = AuditEntry { seq: 2, ..b };
        l[2] = AuditEntry { seq: 3, ..a };
        assert_eq!(verify(&l, &head), Err(ChainBreak::PrevMismatch { seq: 2 }));
    }

    #[test]
    fn details_are_canonical_json() {
        let e = AuditEvent::new("a", "b", "c", serde_json::json!({"z": 1, "a": [1, 2]}));
        assert_eq!(e.details, r#"{"a":[1,2],"z":1}"#);
    }

    #[test]
    fn the_hash_frame_gives_the_entry_hash() {
        use chrono::TimeZone;
        let at = Utc.with_ymd_and_hms(2024, 7, 22, 3, 4, 5).unwrap()
            + chrono::Duration::microseconds(123_456);
        let event = AuditEvent::new(
            "venue:衡山宾馆",
            "voucher.redeem",
            "voucher:x",
            serde_json::json!({"a": 1}),
        );
        let prev = [7u8; 32];
        let (prefix, suffix) = hash_frame(at, &event);
        let mut bytes = prefix;
        bytes.extend_from_slice(&42u64.to_be_bytes());
        bytes.extend_from_slice(&prev);
        bytes.extend_from_slice(&suffix);
        let framed: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(framed, entry_hash(42, &prev, at, &event));
    }
}
