//! The one home of the operating system's randomness: every secret the service makes (API and
//! session tokens, one-time codes, voucher codes, quiz question draws) comes from here.

use crate::domain::voucher::VoucherCode;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

/// `N` bytes from the OS CSPRNG.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| RandomError(e.to_string()))?;
    Ok(b)
}

/// A ChaCha20 generator keyed from the OS CSPRNG, for choices that must not be guessable
/// (one-time codes, quiz questions).
pub fn rng() -> Result<ChaCha20Rng, RandomError> {
    Ok(ChaCha20Rng::from_seed(bytes()?))
}

/// A fresh holder-code secret for a voucher (DESIGN §5).
pub fn holder_secret() -> Result<crate::domain::holder_code::Secret, RandomError> {
    Ok(crate::domain::holder_code::Secret::new(bytes()?))
}

/// A fresh voucher code: 55 bits from the OS CSPRNG.
pub fn voucher_code() -> Result<VoucherCode, RandomError> {
    Ok(VoucherCode::from_random(bytes()?))
}
