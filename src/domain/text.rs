//! Free text typed by people (names, reasons, beacon sources): trimmed, bounded, and free of
//! characters that corrupt storage or mislead readers — control characters (NUL breaks
//! PostgreSQL text, a newline breaks a CSV row or a log line), bidirectional overrides (which
//! make `gpj.exe` read as `exe.jpg`) and invisible zero-width characters (which make two names
//! that look the same differ). Such text ends up in published records, so it is refused rather
//! than silently cleaned.

use super::refusal::Refusal;

/// Whether a character may not appear in free text.
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Bidirectional embeddings, overrides, isolates and marks.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            // Zero-width spaces, joiners and the byte-order mark.
            | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
            // Line and paragraph separators.
            | '\u{2028}' | '\u{2029}')
}

/// `value` trimmed, if it is 1 (or 0, with `allow_empty`) to `max_chars` characters with none
/// forbidden; otherwise the refusal names `field`.
pub fn checked(
    field: &str,
    value: &str,
    max_chars: usize,
    allow_empty: bool,
) -> Result<String, Refusal> {
    let value = value.trim();
    if value.is_empty() && !allow_empty {
        return Err(Refusal::field(field, "请填写这一项"));
    }
    let count = value.chars().count();
    if count > max_chars {
        return Err(Refusal::field(
            field,
            format!("最多 {max_chars} 个字，现在是 {count} 个"),
        ));
    }
    if let Some(c) = value.chars().find(|c| is_forbidden(*c)) {
        return Err(Refusal::field(
            field,
            format!("不能包含控制字符或不可见字符（U+{:04X}）", c as u32),
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_trimmed_and_kept() {
        assert_eq!(
            checked("reason", "  持券人报失 ", 200, false).unwrap(),
            "持券人报失"
        );
        assert_eq!(checked("beacon_source", "", 500, true).unwrap(), "");
        assert_eq!(
            checked("name", "Hôtel Ω · 衡山宾馆前台", 100, false).unwrap(),
            "Hôtel Ω · 衡山宾馆前台"
        );
    }

    #[test]
    fn control_bidi_and_zero_width_characters_are_refused_naming_the_field() {
        for bad in [
            "a\u{0}b",
            "a\nb",
            "a\tb",
            "a\u{7f}b",
            "a\u{202E}gpj.exe",
            "公证\u{200B}处",
            "\u{FEFF}x",
            "a\u{2066}b",
        ] {
            let e = checked("reason", bad, 200, false).unwrap_err();
            assert_eq!(e.code(), "invalid_field", "{bad:?}");
            assert_eq!(
                e.details(),
                Some(serde_json::json!({"field": "reason"})),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert!(checked("reason", &"字".repeat(200), 200, false).is_ok());
        assert!(checked("reason", &"字".repeat(201), 200, false).is_err());
        assert!(checked("reason", "   ", 200, false).is_err());
    }
}
