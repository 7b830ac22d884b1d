//! The service's signature on each drawn round's record (DESIGN §4d): Ed25519 (RFC 8032) over the
//! record's exact bytes as served. Keys are named by an id derived from the public key, so that a
//! signature says which of the published keys (the retired ones stay published) made it.

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A key's id: `ed25519:` and the first 16 hex digits of SHA-256 of the public key.
pub fn key_id(public: &[u8; 32]) -> String {
    format!("ed25519:{}", &hex::encode(Sha256::digest(public))[..16])
}

/// The public half of a secret key.
pub fn public_of(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// The signature of `message`, base64 (standard, padded).
pub fn sign(secret: &[u8; 32], message: &[u8]) -> String {
    B64.encode(SigningKey::from_bytes(secret).sign(message).to_bytes())
}

/// Whether `signature` (base64) is `public`'s on `message`.
pub fn verify(public: &[u8; 32], message: &[u8], signature: &str) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    let Some(bytes) = B64
        .decode(signature.trim())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
    else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(&bytes))
        .is_ok()
}

/// A public key as published (base64) or as hex.
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = hex::decode(text).ok().or_else(|| B64.decode(text).ok())?;
    bytes.try_into().ok()
}

/// A public key as published: base64.
pub fn encode_public_key(public: &[u8; 32]) -> String {
    B64.encode(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes32(hex_text: &str) -> [u8; 32] {
        hex::decode(hex_text).unwrap().try_into().unwrap()
    }

    #[test]
    fn rfc_8032_test_vectors() {
        // RFC 8032 §7.1, TEST 1 (the empty message) and TEST 2 (one byte, 0x72).
        let secret = bytes32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        assert_eq!(
            hex::encode(public_of(&secret)),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let signature = B64.decode(sign(&secret, b"")).unwrap();
        assert_eq!(
            hex::encode(signature),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        let secret = bytes32("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let signature = B64.decode(sign(&secret, &[0x72])).unwrap();
        assert_eq!(
            hex::encode(signature),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
        assert!(verify(
            &public_of(&secret),
            &[0x72],
            &sign(&secret, &[0x72])
        ));
    }

    #[test]
    fn a_changed_byte_or_another_key_fails() {
        let secret = [7u8; 32];
        let public = public_of(&secret);
        let record = br#"{"round":1,"winners":[]}"#;
        let signature = sign(&secret, record);
        assert!(verify(&public, record, &signature));
        assert!(!verify(
            &public,
            br#"{"round":1,"winners":[] }"#,
            &signature
        ));
        assert!(!verify(&public_of(&[8u8; 32]), record, &signature));
        assert!(!verify(&public, record, "not base64"));
        assert!(!verify(&public, record, &B64.encode([0u8; 64])));
    }

    #[test]
    fn keys_are_read_as_base64_or_hex_and_named_by_their_hash() {
        let public = public_of(&[7u8; 32]);
        assert_eq!(parse_public_key(&encode_public_key(&public)), Some(public));
        assert_eq!(parse_public_key(&hex::encode(public)), Some(public));
        assert_eq!(parse_public_key("abcd"), None);
        let id = key_id(&public);
        assert!(id.starts_with("ed25519:") && id.len() == 8 + 16, "{id}");
        assert_ne!(key_id(&public_of(&[8u8; 32])), id);
    }
}
