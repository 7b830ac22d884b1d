//! Voucher codes (DESIGN §5, a contract): 11 random symbols of the Crockford base-32 alphabet and a
//! Luhn mod 32 check symbol, shown as `XXXX-XXXX-XXXX`. A mistyped code is caught here, before
//! any database look-up.

use std::fmt;

pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const N: u32 = 32;

fn code_point(symbol: u8) -> Option<u32> {
    ALPHABET.iter().position(|&c| c == symbol).map(|p| p as u32)
}

/// The Luhn mod N check symbol for a body; the rightmost body symbol is doubled first.
pub fn check_symbol(body: &[u8]) -> Option<u8> {
    let mut factor = 2;
    let mut sum = 0;
    for &s in body.iter().rev() {
        let addend = factor * code_point(s)?;
        factor = 3 - factor;
        sum += addend / N + addend % N;
    }
    Some(ALPHABET[((N - sum % N) % N) as usize])
}

/// A well-formed voucher code: 12 symbols whose check symbol holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VoucherCode([u8; 12]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a voucher code has 12 characters (letters and digits); this one has {0}")]
    WrongLength(usize),
    #[error("{0:?} cannot appear in a voucher code")]
    BadSymbol(char),
    #[error("this code has a typo: its last character does not match the others")]
    Typo,
}

impl VoucherCode {
    /// A new code from 11 random bytes (the caller takes them from the OS CSPRNG). 32 divides 256,
    /// so keeping the low five bits of each byte is uniform.
    pub fn from_random(bytes: [u8; 11]) -> Self {
        let mut code = [0u8; 12];
        for (slot, b) in code.iter_mut().zip(bytes) {
            *slot = ALPHABET[(b & 0x1f) as usize];
        }
        code[11] = check_symbol(&code[..11]).expect("body from the alphabet");
        Self(code)
    }

    /// Reads a code as typed: any case, spaces and hyphens ignored, O read as 0, I and L as 1.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let mut symbols = Vec::with_capacity(12);
        for c in input.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' | '\t' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                other => other,
            };
            if !c.is_ascii() || code_point(c as u8).is_none() {
                return Err(CodeError::BadSymbol(c));
            }
            symbols.push(c as u8);
        }
        let code: [u8; 12] = symbols
            .as_slice()
            .try_into()
            .map_err(|_| CodeError::WrongLength(symbols.len()))?;
        if check_symbol(&code[..11]) != Some(code[11]) {
            return Err(CodeError::Typo);
        }
        Ok(Self(code))
    }

    /// The 12 symbols without separators, as stored.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII")
    }
}

impl fmt::Display for VoucherCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_str();
        write!(f, "{}-{}-{}", &s[..4], &s[4..8], &s[8..])
    }
}

impl fmt::Debug for VoucherCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VoucherCode({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_example_has_check_symbol_y() {
        assert_eq!(check_symbol(b"ABCDEFGHJKM"), Some(b'Y'));
        let code = VoucherCode::parse("ABCD-EFGH-JKMY").unwrap();
        assert_eq!(code.to_string(), "ABCD-EFGH-JKMY");
        assert_eq!(code.as_str(), "ABCDEFGHJKMY");
    }

    #[test]
    fn typing_is_forgiving() {
        let code = VoucherCode::from_random([0, 1, 24, 18, 5, 6, 7, 8, 9, 10, 11]);
        let shown = code.to_string();
        assert_eq!(VoucherCode::parse(&shown.to_lowercase()).unwrap(), code);
        assert_eq!(VoucherCode::parse(&shown.replace('-', " ")).unwrap(), code);
        // 0 and 1 typed as O, I or L.
        let loose: String = shown
            .chars()
            .map(|c| match c {
                '0' => 'o',
                '1' => 'L',
                c => c,
            })
            .collect();
        assert_eq!(VoucherCode::parse(&loose).unwrap(), code);
    }

    #[test]
    fn every_single_symbol_substitution_is_caught_as_a_typo() {
        for seed in 0..50u8 {
            let bytes: [u8; 11] =
                std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7));
            let code = VoucherCode::from_random(bytes);
            let text = code.as_str().as_bytes().to_vec();
            for pos in 0..12 {
                for &sym in ALPHABET {
                    if sym == text[pos] {
                        continue;
                    }
                    let mut typo = text.clone();
                    typo[pos] = sym;
                    let typo = String::from_utf8(typo).unwrap();
                    assert_eq!(
                        VoucherCode::parse(&typo),
                        Err(CodeError::Typo),
                        "{typo} from {code}"
                    );
                }
            }
        }
    }

    #[test]
    fn malformed_input_says_what_is_wrong() {
        assert_eq!(
            VoucherCode::parse("ABCD-EFGH-JKM"),
            Err(CodeError::WrongLength(11))
        );
        assert_eq!(
            VoucherCode::parse("ABCD-EFGH-JKMYY"),
            Err(CodeError::WrongLength(13))
        );
        assert_eq!(
            VoucherCode::parse("ABCD-EFGH-JKMU"),
            Err(CodeError::BadSymbol('U'))
        );
        assert_eq!(
            VoucherCode::parse("ABCD-EFGH-JKM中"),
            Err(CodeError::BadSymbol('中'))
        );
    }

    #[test]
    fn random_codes_use_the_whole_alphabet_evenly() {
        let mut counts = [0u32; 32];
        for b in 0..=255u8 {
            let code = VoucherCode::from_random([b; 11]);
            counts[code_point(code.as_str().as_bytes()[0]).unwrap() as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c == 8));
    }

    /// Property: for codes from the OS random source, display and parse round-trip in any of the
    /// accepted spellings, and every single-symbol substitution is a typo.
    #[test]
    fn property_random_codes_round_trip_and_catch_every_substitution() {
        for _ in 0..2000 {
            let mut bytes = [0u8; 11];
            getrandom::fill(&mut bytes).unwrap();
            let code = VoucherCode::from_random(bytes);
            let shown = code.to_string();
            assert_eq!(shown.len(), 14);
            assert_eq!(VoucherCode::parse(&shown), Ok(code));
            assert_eq!(VoucherCode::parse(code.as_str()), Ok(code));
            assert_eq!(VoucherCode::parse(&shown.to_lowercase()), Ok(code));
            assert_eq!(
                VoucherCode::parse(&format!(" {} ", shown.replace('-', " "))),
                Ok(code)
            );
            let text = code.as_str().as_bytes();
            for pos in 0..12 {
                for &sym in ALPHABET.iter().filter(|&&s| s != text[pos]) {
                    let mut typo = text.to_vec();
                    typo[pos] = sym;
                    assert_eq!(
                        VoucherCode::parse(std::str::from_utf8(&typo).unwrap()),
                        Err(CodeError::Typo)
                    );
                }
            }
        }
    }
}
