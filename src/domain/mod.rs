//! Pure campaign logic: no I/O, no database, no HTTP.

pub mod audit;
pub mod campaign;
pub mod claim;
pub mod draw;
pub mod exclusion;
pub mod figures;
pub mod holder_code;
pub mod lifecycle;
pub mod phone;
pub mod quiz;
pub mod random;
pub mod redemption;
pub mod refusal;
pub mod risk;
pub mod settlement;
pub mod signing;
pub mod sms;
pub mod text;
pub mod throttle;
pub mod token;
pub mod voucher;

/// `LP(x)`: the 4-byte big-endian length of `x` followed by `x`, the framing every hash of this
/// service uses so that no two different field lists hash the same bytes.
pub(crate) fn lp(hasher: &mut impl sha2::Digest, bytes: &[u8]) {
    hasher.update((bytes.len() as u32).to_be_bytes());
    hasher.update(bytes);
}
