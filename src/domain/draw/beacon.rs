//! The public beacon (DESIGN §4c): a `beacon_source` of the form `drand-quicknet:N` names round N
//! of the League of Entropy's drand quicknet chain, whose signature anyone can check offline
//! against the chain's public key; the beacon that enters the seed is the round's randomness,
//! SHA-256 of the signature. Any other source is free text, taken as typed and not checkable
//! offline.

use crate::domain::refusal::Refusal;
use chrono::{DateTime, Duration, Utc};
use drand_verify::{G2PubkeyRfc, Pubkey};
use sha2::{Digest, Sha256};

/// The quicknet chain (https://api.drand.sh/52db…e971/info).
pub const QUICKNET_CHAIN_HASH: &str =
    "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971";
/// Its BLS public key (G2, compressed), scheme `bls-unchained-g1-rfc9380`.
pub const QUICKNET_PUBLIC_KEY: &str = "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a";
/// Round 1's time (Unix seconds) and the seconds between rounds.
pub const QUICKNET_GENESIS: i64 = 1_692_803_367;
pub const QUICKNET_PERIOD: i64 = 3;

const PREFIX: &str = "drand-quicknet:";

/// What a round's `beacon_source` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// No beacon: the seed takes the empty string.
    None,
    /// Round N of drand quicknet.
    Quicknet(u64),
    /// Anything else (a public lottery's result, say): the value typed at the draw.
    FreeText,
}

impl Source {
    /// Reads a declared source. `drand-quicknet:N` counts only in its exact form (N decimal, from
    /// 1, no leading zeros, no spaces): anything else is free text, as the contract says.
    pub fn of(source: &str) -> Source {
        if source.is_empty() {
            return Source::None;
        }
        let Some(n) = source.strip_prefix(PREFIX) else {
            return Source::FreeText;
        };
        let exact = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0');
        match n.parse::<u64>() {
            Ok(round) if exact && round_time(round).is_some() => Source::Quicknet(round),
            _ => Source::FreeText,
        }
    }
}

/// When quicknet publishes round `n`: genesis + (n − 1) · 3 s. None past what a time can hold.
pub fn round_time(n: u64) -> Option<DateTime<Utc>> {
    let offset = i64::try_from(n.checked_sub(1)?)
        .ok()?
        .checked_mul(QUICKNET_PERIOD)?;
    DateTime::from_timestamp(QUICKNET_GENESIS.checked_add(offset)?, 0)
}

/// The first quicknet round published after `at` plus `margin`: what a freeze at `at` may name.
pub fn first_round_after(at: DateTime<Utc>, margin: Duration) -> u64 {
    let after = (at + margin).timestamp() - QUICKNET_GENESIS;
    if after < 0 {
        return 1;
    }
    (after / QUICKNET_PERIOD + 2) as u64
}

/// What the operator gives at the draw: the value of a free-text source, or the signature of
/// the declared quicknet round (as drand serves it). Either may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given {
    pub value: String,
    pub signature: String,
}

/// The beacon that enters the seed, with the quicknet signature it is the randomness of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    pub value: String,
    pub signature: Option<String>,
}

/// Takes what was given at the draw of `round` for the source `declared` at its freeze: nothing
/// for no source; the value for free text; for quicknet, a signature that verifies, whose
/// randomness is the beacon.
pub fn take(round: u32, declared: &str, given: &Given) -> Result<Beacon, Refusal> {
    let (value, signature) = (given.value.trim(), given.signature.trim());
    match Source::of(declared) {
        Source::None if value.is_empty() && signature.is_empty() => Ok(Beacon {
            value: String::new(),
            signature: None,
        }),
        Source::None => Err(Refusal::UnexpectedBeacon { round }),
        Source::FreeText if !signature.is_empty() => {
            Err(Refusal::UnexpectedBeaconSignature { round })
        }
        Source::FreeText if value.is_empty() => Err(Refusal::BeaconRequired {
            round,
            source: declared.to_owned(),
        }),
        Source::FreeText => Ok(Beacon {
            value: given.value.clone(),
            signature: None,
        }),
        Source::Quicknet(n) if signature.is_empty() => Err(Refusal::BeaconSignatureRequired {
            round,
            beacon_round: n,
        }),
        Source::Quicknet(n) => match verify_quicknet(n, signature) {
            Ok(randomness) if value.is_empty() || value.eq_ignore_ascii_case(&randomness) => {
                Ok(Beacon {
                    value: randomness,
                    signature: Some(signature.to_ascii_lowercase()),
                })
            }
            Ok(_) => Err(Refusal::BeaconSignatureInvalid {
                round,
                beacon_round: n,
                why: "签名正确，但填写的随机数不是它的 SHA-256".into(),
            }),
            Err(e) => Err(Refusal::BeaconSignatureInvalid {
                round,
                beacon_round: n,
                why: e.chinese(),
            }),
        },
    }
}

/// A freeze at `at` may declare `source` only if, for quicknet, its round is published more than
/// `margin` after `at`: until then nobody, the operators included, can know the beacon.
pub fn may_declare(source: &str, at: DateTime<Utc>, margin: Duration) -> Result<(), Refusal> {
    let Source::Quicknet(n) = Source::of(source) else {
        return Ok(());
    };
    let published = round_time(n).expect("Source::of keeps rounds with a time");
    if published > at + margin {
        return Ok(());
    }
    Err(Refusal::BeaconRoundTooSoon {
        beacon_round: n,
        published: published.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        margin_minutes: margin.num_minutes(),
        earliest: first_round_after(at, margin),
    })
}

/// Why a quicknet signature is not round N's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeaconError {
    #[error("the signature is not hex")]
    NotHex,
    #[error("the signature is {0} bytes; a quicknet signature is 48")]
    Length(usize),
    #[error("the signature is not a point of the curve")]
    NotAPoint,
    #[error("the signature is not quicknet's for round {0}")]
    Wrong(u64),
}

impl BeaconError {
    fn chinese(&self) -> String {
        match self {
            BeaconError::NotHex => "签名应为十六进制".into(),
            BeaconError::Length(n) => {
                format!("签名有 {n} 字节，quicknet 的签名是 48 字节（96 位十六进制）")
            }
            BeaconError::NotAPoint => "签名不是有效的曲线点".into(),
            BeaconError::Wrong(n) => format!("签名与第 {n} 轮不符"),
        }
    }
}

/// Checks `signature_hex` (as drand serves it) as quicknet's signature of `round`, offline; the
/// beacon it gives: the round's randomness, SHA-256 of the signature, lowercase hex.
pub fn verify_quicknet(round: u64, signature_hex: &str) -> Result<String, BeaconError> {
    let signature = hex::decode(signature_hex.trim()).map_err(|_| BeaconError::NotHex)?;
    if signature.len() != 48 {
        return Err(BeaconError::Length(signature.len()));
    }
    let key: [u8; 96] = hex::decode(QUICKNET_PUBLIC_KEY)
        .expect("the key is hex")
        .try_into()
        .expect("the key is 96 bytes");
    let key = G2PubkeyRfc::from_fixed(key).expect("the quicknet key is a point");
    match key.verify(round, b"", &signature) {
        Ok(true) => Ok(hex::encode(Sha256::digest(&signature))),
        Ok(false) => Err(BeaconError::Wrong(round)),
        Err(_) => Err(BeaconError::NotAPoint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published quicknet rounds (https://api.drand.sh/52db…e971/public/N): signature, randomness.
    const ROUND_123: &str = "b75c69d0b72a5d906e854e808ba7e2accb1542ac355ae486d591aa9d43765482e26cd02df835d3546d23c4b13e0dfc92";
    const ROUND_657413: &str = "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be41076862b98fad56e91a6b85b89cd97b";
    const RANDOMNESS_657413: &str =
        "fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587";

    #[test]
    fn published_rounds_verify_offline_and_give_their_randomness() {
        assert_eq!(
            verify_quicknet(657_413, ROUND_657413).unwrap(),
            RANDOMNESS_657413
        );
        let beacon = verify_quicknet(123, ROUND_123).unwrap();
        assert_eq!(
            beacon,
            hex::encode(Sha256::digest(hex::decode(ROUND_123).unwrap()))
        );
        // Upper-case hex, as some tools print it, is the same signature.
        assert_eq!(
            verify_quicknet(657_413, &ROUND_657413.to_uppercase()).unwrap(),
            RANDOMNESS_657413
        );
    }

    #[test]
    fn tampered_signatures_and_other_rounds_are_refused() {
        assert_eq!(
            verify_quicknet(657_414, ROUND_657413),
            Err(BeaconError::Wrong(657_414))
        );
        assert_eq!(
            verify_quicknet(124, ROUND_123),
            Err(BeaconError::Wrong(124))
        );
        // One bit flipped: not a point, or not the signature.
        let mut bytes = hex::decode(ROUND_657413).unwrap();
        bytes[20] ^= 1;
        assert!(matches!(
            verify_quicknet(657_413, &hex::encode(&bytes)),
            Err(BeaconError::Wrong(_) | BeaconError::NotAPoint)
        ));
        assert_eq!(verify_quicknet(1, "zz"), Err(BeaconError::NotHex));
        assert_eq!(verify_quicknet(1, "abcd"), Err(BeaconError::Length(2)));
    }

    #[test]
    fn sources_are_quicknet_only_in_their_exact_form() {
        assert_eq!(Source::of(""), Source::None);
        assert_eq!(
            Source::of("drand-quicknet:657413"),
            Source::Quicknet(657_413)
        );
        for free in [
            "drand-quicknet:0657413",
            "drand-quicknet:0",
            "drand-quicknet:",
            "drand-quicknet: 5",
            "drand-quicknet:+5",
            "Drand-quicknet:5",
            "drand-quicknet:99999999999999999999",
            "福彩3D 2024年第190期开奖号码",
        ] {
            assert_eq!(Source::of(free), Source::FreeText, "{free:?}");
        }
    }

    fn given(value: &str, signature: &str) -> Given {
        Given {
            value: value.into(),
            signature: signature.into(),
        }
    }

    #[test]
    fn the_draw_takes_what_the_declared_source_asks_for() {
        let quicknet = "drand-quicknet:657413";
        let taken = take(1, quicknet, &given("", ROUND_657413)).unwrap();
        assert_eq!(taken.value, RANDOMNESS_657413);
        assert_eq!(taken.signature.as_deref(), Some(ROUND_657413));
        // The randomness beside the signature is fine if it is the signature's.
        assert_eq!(
            take(1, quicknet, &given(RANDOMNESS_657413, ROUND_657413)).unwrap(),
            taken
        );
        assert!(matches!(
            take(1, quicknet, &given(&"0".repeat(64), ROUND_657413)),
            Err(Refusal::BeaconSignatureInvalid { .. })
        ));
        // A value typed instead of the signature, another round's signature: refused.
        assert_eq!(
            take(1, quicknet, &given(RANDOMNESS_657413, "")),
            Err(Refusal::BeaconSignatureRequired {
                round: 1,
                beacon_round: 657_413
            })
        );
        assert!(matches!(
            take(1, quicknet, &given("", ROUND_123)),
            Err(Refusal::BeaconSignatureInvalid {
                beacon_round: 657_413,
                ..
            })
        ));
        // Free text: the value as typed; no signature to give.
        let free = "福彩3D 2024年第190期";
        assert_eq!(
            take(1, free, &given("0 7 2", "")).unwrap(),
            Beacon {
                value: "0 7 2".into(),
                signature: None
            }
        );
        assert_eq!(
            take(1, free, &given("0 7 2", ROUND_123)),
            Err(Refusal::UnexpectedBeaconSignature { round: 1 })
        );
        assert!(matches!(
            take(1, free, &given("", "")),
            Err(Refusal::BeaconRequired { .. })
        ));
        // No source: nothing.
        assert_eq!(take(1, "", &given("", "")).unwrap().value, "");
        assert_eq!(
            take(1, "", &given("x", "")),
            Err(Refusal::UnexpectedBeacon { round: 1 })
        );
    }

    #[test]
    fn a_freeze_names_a_quicknet_round_only_past_the_margin() {
        let n = 657_413;
        let published = round_time(n).unwrap();
        let source = format!("drand-quicknet:{n}");
        let hour = Duration::hours(1);
        assert_eq!(
            may_declare(&source, published - Duration::hours(2), hour),
            Ok(())
        );
        let r = may_declare(&source, published - Duration::minutes(30), hour).unwrap_err();
        let Refusal::BeaconRoundTooSoon { earliest, .. } = r else {
            panic!("{r:?}")
        };
        assert!(round_time(earliest).unwrap() > published - Duration::minutes(30) + hour);
        assert!(may_declare(&source, published + Duration::days(1), hour).is_err());
        assert_eq!(may_declare("福彩3D", published, hour), Ok(()));
        assert_eq!(may_declare("", published, hour), Ok(()));
    }

    #[test]
    fn rounds_are_three_seconds_apart_from_genesis() {
        assert_eq!(round_time(1).unwrap().timestamp(), QUICKNET_GENESIS);
        assert_eq!(round_time(2).unwrap().timestamp(), QUICKNET_GENESIS + 3);
        assert_eq!(round_time(0), None);
        let at = DateTime::from_timestamp(QUICKNET_GENESIS + 300, 0).unwrap();
        // Round 101 is published at exactly `at`: not after it. 102 is the first after.
        assert_eq!(round_time(101).unwrap(), at);
        let n = first_round_after(at, Duration::zero());
        assert_eq!(n, 102);
        assert!(round_time(n).unwrap() > at && round_time(n - 1).unwrap() <= at);
        let n = first_round_after(at + Duration::seconds(1), Duration::hours(1));
        assert!(round_time(n).unwrap() > at + Duration::seconds(3601));
        assert!(round_time(n - 1).unwrap() <= at + Duration::seconds(3601));
    }
}
