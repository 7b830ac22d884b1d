//! The holder code (DESIGN §5): the 6 digits that change every 30 seconds on the holder's own
//! phone, proof at the front desk that the person showing a voucher holds it. RFC 6238 TOTP
//! (HMAC-SHA1, 30-second steps from the Unix epoch, 6 digits) over a per-voucher secret that only
//! the holder's session receives; the holder's browser computes the same (static/holder-code.js).
//! A screenshot stops working within a minute, and a code that was used is not taken again.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a voucher's secret: HMAC-SHA1's output size, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
/// Steps either side of the desk's own that are accepted: a phone's clock a little off, or a
/// code read just as it changed.
pub const TOLERANCE: i64 = 1;

/// A voucher's secret. Its `Debug` does not show it, so that no log line carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: [u8; SECRET_BYTES]) -> Self {
        Secret(bytes.to_vec())
    }

    /// As stored and as sent to the holder's session: lowercase hex.
    pub fn from_hex(text: &str) -> Option<Self> {
        hex::decode(text)
            .ok()
            .filter(|b| b.len() == SECRET_BYTES)
            .map(Secret)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The step `at` falls in.
pub fn step_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(STEP_SECONDS)
}

/// The code of `step` (RFC 4226 HOTP with the step as counter), 6 digits with leading zeros.
pub fn code_at(secret: &[u8], step: i64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation: 31 bits from the offset the last nibble names.
    let offset = usize::from(digest[19] & 0x0f);
    let bits = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", bits % 1_000_000)
}

/// Whether a code given at the desk is the holder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The code of this step, not used before: it is recorded with the redemption.
    Step(i64),
    /// The code of a step inside the window, used already.
    Used,
    /// No step inside the window has this code (wrong, or older than a minute).
    Wrong,
}

/// Judges `given` at `now` against `secret`, with `used` the steps this voucher was already
/// redeemed with. The desk's own step first, then the one before and the one after.
pub fn prove(secret: &[u8], given: &str, now: DateTime<Utc>, used: &[i64]) -> Proof {
    let here = step_of(now);
    let mut found_used = false;
    for step in [here, here - TOLERANCE, here + TOLERANCE] {
        if constant_time_eq(code_at(secret, step).as_bytes(), given.as_bytes()) {
            if used.contains(&step) {
                found_used = true;
            } else {
                return Proof::Step(step);
            }
        }
    }
    if found_used {
        Proof::Used
    } else {
        Proof::Wrong
    }
}

/// The oldest step a code given at `now` may be of: used steps before it need not be read.
pub fn earliest_step(now: DateTime<Utc>) -> i64 {
    step_of(now) - TOLERANCE
}

/// Whether `given` is shaped like a code: 6 ASCII digits.
pub fn well_formed(given: &str) -> bool {
    given.len() == DIGITS && given.bytes().all(|b| b.is_ascii_digit())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 seed.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn at(unix: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(unix, 0).unwrap()
    }

    #[test]
    fn rfc_6238_known_answers() {
        // The appendix gives 8 digits (94287082 …); the 6-digit code is their last six.
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(RFC_SECRET, step_of(at(t))), code, "T = {t}");
        }
    }

    #[test]
    fn rfc_4226_known_answers() {
        // RFC 4226 Appendix D: HOTP of counters 0..9 with the same secret.
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(code_at(RFC_SECRET, counter as i64), *code);
        }
    }

    #[test]
    fn steps_are_thirty_seconds_from_the_epoch() {
        assert_eq!(step_of(at(0)), 0);
        assert_eq!(step_of(at(29)), 0);
        assert_eq!(step_of(at(30)), 1);
        assert_eq!(step_of(at(-1)), -1);
        assert_eq!(earliest_step(at(90)), 2);
    }

    #[test]
    fn the_desk_takes_the_step_before_and_after_its_own() {
        let now = at(1_000_000_005);
        let here = step_of(now);
        for d in [-1, 0, 1] {
            let code = code_at(RFC_SECRET, here + d);
            assert_eq!(prove(RFC_SECRET, &code, now, &[]), Proof::Step(here + d));
        }
        for d in [-3, -2, 2, 3] {
            let code = code_at(RFC_SECRET, here + d);
            // (Six digits can repeat across steps; these do not.)
            assert_eq!(prove(RFC_SECRET, &code, now, &[]), Proof::Wrong, "{d}");
        }
        assert_eq!(prove(RFC_SECRET, "12345", now, &[]), Proof::Wrong);
        assert_eq!(
            prove(b"another secret", &code_at(RFC_SECRET, here), now, &[]),
            Proof::Wrong
        );
    }

    #[test]
    fn a_used_step_is_not_taken_again() {
        let now = at(1_000_000_005);
        let here = step_of(now);
        let code = code_at(RFC_SECRET, here);
        assert_eq!(prove(RFC_SECRET, &code, now, &[here]), Proof::Used);
        // The next step's code is good.
        let next = code_at(RFC_SECRET, here + 1);
        assert_eq!(
            prove(RFC_SECRET, &next, now, &[here]),
            Proof::Step(here + 1)
        );
    }

    #[test]
    fn secrets_are_twenty_bytes_of_hex_and_not_shown_in_logs() {
        let s = Secret::new([0xab; SECRET_BYTES]);
        assert_eq!(Secret::from_hex(&s.to_hex()), Some(s.clone()));
        assert_eq!(s.to_hex().len(), 40);
        assert_eq!(format!("{s:?}"), "Secret(…)");
        assert_eq!(Secret::from_hex("abcd"), None);
        assert_eq!(Secret::from_hex(&"zz".repeat(20)), None);
    }

    #[test]
    fn codes_are_six_digits() {
        assert!(well_formed("012345"));
        for bad in ["12345", "1234567", "12a456", "１２３４５６", " 12345"] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }
}
