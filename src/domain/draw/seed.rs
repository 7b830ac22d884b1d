//! Witness commitments and the draw seed (DESIGN §4, a contract).

use super::merkle::Hash;
use crate::domain::lp;
use sha2::{Digest, Sha256};

/// `SHA-256( LP("campaign-commit/v1") ‖ LP(campaign_id) ‖ u32be(round) ‖ LP(witness) ‖ LP(secret) )`
pub fn commitment(campaign_id: &str, round: u32, witness: &str, secret: &[u8]) -> Hash {
    let mut h = Sha256::new();
    lp(&mut h, b"campaign-commit/v1");
    lp(&mut h, campaign_id.as_bytes());
    h.update(round.to_be_bytes());
    lp(&mut h, witness.as_bytes());
    lp(&mut h, secret);
    h.finalize().into()
}

/// `SHA-256( LP("campaign-draw/v1") ‖ LP(campaign_id) ‖ u32be(round) ‖ u64be(entry_count)
/// ‖ entries_root ‖ u32be(witness_count) ‖ for each witness by ascending name bytes: LP(name) ‖
/// LP(secret) ‖ LP(beacon) )`
pub fn seed(
    campaign_id: &str,
    round: u32,
    entry_count: u64,
    entries_root: &Hash,
    witnesses: &[(String, Vec<u8>)],
    beacon: &str,
) -> Hash {
    let mut sorted: Vec<&(String, Vec<u8>)> = witnesses.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    lp(&mut h, b"campaign-draw/v1");
    lp(&mut h, campaign_id.as_bytes());
    h.update(round.to_be_bytes());
    h.update(entry_count.to_be_bytes());
    h.update(entries_root);
    h.update((sorted.len() as u32).to_be_bytes());
    for (name, secret) in sorted {
        lp(&mut h, name.as_bytes());
        lp(&mut h, secret);
    }
    lp(&mut h, beacon.as_bytes());
    h.finalize().into()
}
