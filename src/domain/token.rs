//! API tokens: roles, the printed secret and the stored hash.

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

/// Checks a token name given by an operator: something a person will recognise in a list.
pub fn check_token_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a token needs a name (who or what will use it)".into());
    }
    if name.chars().count() > 100 {
        return Err("a token name has at most 100 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("a token name cannot contain control characters".into());
    }
    Ok(name.to_owned())
}

/// Only venue tokens are bound to a venue, and they must be.
pub fn check_venue_binding(role: Role, venue_id: Option<&str>) -> Result<(), String> {
    match (role, venue_id) {
        (Role::Venue, None) => Err("a venue token must name its venue (venue_id)".into()),
        (Role::Venue, Some(_)) => Ok(()),
        (other, Some(_)) => Err(format!(
            "only venue tokens are bound to a venue, not {other} tokens"
        )),
        (_, None) => Ok(()),
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
    }
}
