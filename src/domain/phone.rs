//! Mainland China mobile numbers: normalised to 11 digits, masked in public output.

use std::fmt;

/// A normalised mainland mobile number: 11 digits, `1` then `3`–`9`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("请输入手机号")]
    Empty,
    #[error("手机号只能包含数字，可带 +86 或 0086 前缀、空格和短横线")]
    BadCharacter,
    #[error("手机号应为 11 位数字，现在是 {0} 位")]
    WrongLength(usize),
    #[error("这不是大陆手机号：应以 13–19 开头")]
    NotMobile,
}

impl Phone {
    /// Accepts `13812345678`, `+86 138-1234-5678`, `0086 13812345678`, `86 138 1234 5678`, and
    /// the same typed with full-width digits, plus sign, spaces or dashes (Chinese keyboards).
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let compact: String = input
            .chars()
            .filter_map(|c| match c {
                ' ' | '-' | '\t' | '\u{3000}' | '－' | '‐' | '‑' | '–' | '—' => None,
                '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
                '＋' => Some('+'),
                c => Some(c),
            })
            .collect();
        if compact.is_empty() {
            return Err(PhoneError::Empty);
        }
        let digits = if let Some(rest) = compact.strip_prefix('+') {
            rest.strip_prefix("86").ok_or(PhoneError::NotMobile)?
        } else if let Some(rest) = compact.strip_prefix("0086") {
            rest
        } else if compact.len() == 13 && compact.starts_with("86") {
            &compact[2..]
        } else {
            &compact
        };
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(PhoneError::BadCharacter);
        }
        if digits.len() != 11 {
            return Err(PhoneError::WrongLength(digits.len()));
        }
        let b = digits.as_bytes();
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(PhoneError::NotMobile);
        }
        Ok(Self(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****5678`: what public output shows.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    pub fn last_four(&self) -> &str {
        &self.0[7..]
    }
}

/// Masks a stored phone number; anything that is not 11 characters is hidden entirely.
pub fn mask(phone: &str) -> String {
    if phone.len() == 11 && phone.is_ascii() {
        format!("{}****{}", &phone[..3], &phone[7..])
    } else {
        "***".into()
    }
}

// Never print a whole number by accident.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_spellings_normalise_to_eleven_digits() {
        for input in [
            "13812345678",
            "+8613812345678",
            "+86 138 1234 5678",
            "0086-138-1234-5678",
            "86 13812345678",
            " 138-1234-5678 ",
            "１３８１２３４５６７８",
            "＋８６ １３８－１２３４－５６７８",
            "+86\u{3000}138 1234\u{3000}5678",
        ] {
            assert_eq!(
                Phone::parse(input).unwrap().as_str(),
                "13812345678",
                "{input}"
            );
        }
    }

    #[test]
    fn wrong_numbers_say_what_is_wrong() {
        assert_eq!(Phone::parse("  "), Err(PhoneError::Empty));
        assert_eq!(Phone::parse("1381234567"), Err(PhoneError::WrongLength(10)));
        assert_eq!(
            Phone::parse("138123456789"),
            Err(PhoneError::WrongLength(12))
        );
        assert_eq!(Phone::parse("1381234abcd"), Err(PhoneError::BadCharacter));
        assert_eq!(Phone::parse("12812345678"), Err(PhoneError::NotMobile));
        assert_eq!(Phone::parse("23812345678"), Err(PhoneError::NotMobile));
        assert_eq!(Phone::parse("+1 2025550100"), Err(PhoneError::NotMobile));
        assert_eq!(
            Phone::parse("１３８１２３４ｘ６７８"),
            Err(PhoneError::BadCharacter)
        );
    }

    #[test]
    fn public_output_masks_the_middle_four_digits() {
        let p = Phone::parse("13812345678").unwrap();
        assert_eq!(p.masked(), "138****5678");
        assert_eq!(p.last_four(), "5678");
        assert_eq!(format!("{p:?}"), "Phone(138****5678)");
        assert_eq!(mask("x"), "***");
    }
}
