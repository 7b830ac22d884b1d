//! API tokens: roles, the printed secret and the stored hash.

use super::refusal::Refusal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the draws, handles lost vouchers, exports reports.
    Operator,
    /// Co-produces each draw's seed (e.g. a notary office).
    Witness,
    /// Reads everything.
    Auditor,
    /// Redeems codes at one venue.
    Venue,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Operator, Role::Witness, Role::Auditor, Role::Venue];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Witness => "witness",
            Role::Auditor => "auditor",
            Role::Venue => "venue",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prefix of every API token, so that a leaked one is recognisable in logs and by scanners.
pub const TOKEN_PREFIX: &str = "clt_";

/// Makes a token from 32 random bytes (the caller takes them from the OS CSPRNG).
pub fn token_from_bytes(bytes: [u8; 32]) -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// What is stored instead of the token: hex SHA-256 of its text. Tokens carry 256 random bits,
/// so a plain hash is enough (there is nothing to brute-force).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Prefix of participants' session tokens.
pub const SESSION_PREFIX: &str = "clp_";

/// A participant's session token from 32 random bytes (from the OS CSPRNG).
pub fn session_token_from_bytes(bytes: [u8; 32]) -> String {
    format!("{SESSION_PREFIX}{}", hex::encode(bytes))
}

/// What is stored instead of a one-time login code: bound to the phone it was sent to, so a
/// code is worth nothing for another number.
pub fn login_code_hash(phone: &str, code: &str) -> String {
    hex::encode(Sha256::digest(
        format!("login-code:{phone}:{code}").as_bytes(),
    ))
}

/// Checks a token name given by an operator: something a person will recognise in a list. A
/// witness's token name is published with every draw it takes part in.
pub fn check_token_name(name: &str) -> Result<String, Refusal> {
    super::text::checked("name", name, 100, false)
}

/// Only venue tokens are bound to a venue, and they must be.
pub fn check_venue_binding(role: Role, venue_id: Option<&str>) -> Result<(), Refusal> {
    match (role, venue_id) {
        (Role::Venue, None) => Err(Refusal::field("venue_id", "场所令牌必须指明所属场所")),
        (Role::Venue, Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => Err(Refusal::field("venue_id", "只有场所令牌才绑定场所")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_to_64_hex_digits_and_differ_by_bytes() {
        let a = token_from_bytes([1; 32]);
        let b = token_from_bytes([2; 32]);
        assert!(a.starts_with("clt_") && a.len() == 68);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash(&a).len(), 64);
        assert_eq!(token_hash(&format!(" {a}\n")), token_hash(&a));
    }

    #[test]
    fn roles_round_trip_by_name() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn only_venue_tokens_name_a_venue() {
        assert!(check_venue_binding(Role::Venue, Some("shenlong-hotel")).is_ok());
        assert!(check_venue_binding(Role::Venue, None).is_err());
        assert!(check_venue_binding(Role::Operator, Some("shenlong-hotel")).is_err());
        assert!(check_venue_binding(Role::Auditor, None).is_ok());
    }

    #[test]
    fn token_names_are_checked() {
        assert_eq!(check_token_name("  衡山宾馆前台 ").unwrap(), "衡山宾馆前台");
        assert!(check_token_name("  ").is_err());
        assert!(check_token_name(&"x".repeat(101)).is_err());
        assert!(check_token_name("a\u{7}b").is_err());
        assert!(check_token_name("公证\u{202E}处").is_err());
    }
}
