//! Exclusions (DESIGN §4a): every ticket held for a round is either an entry (drawn among) or an
//! exclusion with a reason, and both lists are published. Reasons are fixed codes; `won_earlier`
//! is the win limit's, applied at the freeze, every other one an operator's, before the freeze.

use super::draw::merkle::{leaf_hash, root_of_leaf_hashes, Hash};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The holder already won as often as the win limit allows.
    WonEarlier,
    /// A number range configured as virtual or IoT.
    VirtualNumber,
    /// Many tickets from one network.
    SharedAddress,
    /// One browser behind many phones.
    SharedDevice,
    /// A quiz answered faster than a person reads.
    TooFast,
    /// One person behind several phones, found otherwise.
    DuplicatePerson,
    /// Staff of the organiser, who may not win.
    Staff,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::WonEarlier,
        Reason::VirtualNumber,
        Reason::SharedAddress,
        Reason::SharedDevice,
        Reason::TooFast,
        Reason::DuplicatePerson,
        Reason::Staff,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WonEarlier => "won_earlier",
            Reason::VirtualNumber => "virtual_number",
            Reason::SharedAddress => "shared_address",
            Reason::SharedDevice => "shared_device",
            Reason::TooFast => "too_fast",
            Reason::DuplicatePerson => "duplicate_person",
            Reason::Staff => "staff",
            Reason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What a participant reads on /me.
    pub fn label(self) -> &'static str {
        match self {
            Reason::WonEarlier => "已中奖，按活动规则不再参加抽奖",
            Reason::VirtualNumber => "虚拟号段或物联网号码",
            Reason::SharedAddress => "同一网络短时间内大量参与",
            Reason::SharedDevice => "同一设备登录多个手机号",
            Reason::TooFast => "答题速度明显快于正常阅读",
            Reason::DuplicatePerson => "同一人使用多个手机号",
            Reason::Staff => "主办方工作人员",
            Reason::Other => "其他原因（经审核）",
        }
    }

    /// Whether an operator may give it (`won_earlier` comes only from the win limit).
    pub fn set_by_operator(self) -> bool {
        self != Reason::WonEarlier
    }
}

/// A round's tickets sorted out: entries and exclusions, each in canonical order (ascending
/// ticket bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortedOut {
    pub entries: Vec<Uuid>,
    pub exclusions: Vec<(Uuid, Reason)>,
}

/// Sorts out a round's tickets `(ticket, holder's wins in earlier rounds)`: an operator's
/// exclusion stands as given; else a holder at the win limit is `won_earlier`; else an entry.
pub fn sort_out(
    tickets: impl IntoIterator<Item = (Uuid, u32)>,
    excluded: &HashMap<Uuid, Reason>,
    win_limit: u32,
) -> SortedOut {
    let mut out = SortedOut::default();
    for (ticket, wins) in tickets {
        match excluded.get(&ticket) {
            Some(reason) => out.exclusions.push((ticket, *reason)),
            None if wins >= win_limit => out.exclusions.push((ticket, Reason::WonEarlier)),
            None => out.entries.push(ticket),
        }
    }
    out.entries.sort_unstable();
    out.exclusions.sort_unstable();
    out
}

/// An exclusion's leaf data: the 16 ticket bytes, then the reason code in UTF-8.
pub fn leaf(ticket: &Uuid, reason: Reason) -> Vec<u8> {
    let mut data = ticket.as_bytes().to_vec();
    data.extend_from_slice(reason.as_str().as_bytes());
    data
}

pub fn leaf_hashes(exclusions: &[(Uuid, Reason)]) -> Vec<Hash> {
    exclusions
        .iter()
        .map(|(t, r)| leaf_hash(&leaf(t, *r)))
        .collect()
}

/// `exclusions_root`: RFC 6962 over the exclusions in canonical order (the empty list: SHA-256
/// of nothing).
pub fn exclusions_root(exclusions: &[(Uuid, Reason)]) -> Hash {
    root_of_leaf_hashes(&leaf_hashes(exclusions))
}

/// `exclusions_by_reason`: how many of each, zero counts left out.
pub fn by_reason(exclusions: &[(Uuid, Reason)]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (_, r) in exclusions {
        *counts.entry(r.as_str().to_owned()).or_insert(0) += 1;
    }
    counts
}

/// The exclusions file: `uuid SP reason LF` per exclusion, canonical order.
pub fn exclusions_file(exclusions: &[(Uuid, Reason)]) -> String {
    let mut out = String::with_capacity(exclusions.len() * 50);
    for (t, r) in exclusions {
        out.push_str(&t.hyphenated().to_string());
        out.push(' ');
        out.push_str(r.as_str());
        out.push('\n');
    }
    out
}

/// Reads an exclusions file strictly: lowercase hyphenated UUIDs, known reasons, ascending
/// order without repeats, `\n` after each line; an error names the line.
pub fn parse_exclusions_file(text: &str) -> Result<Vec<(Uuid, Reason)>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err("the last line does not end with \\n".into());
    };
    let mut out: Vec<(Uuid, Reason)> = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let n = i + 1;
        let (id, reason) = line
            .split_once(' ')
            .ok_or_else(|| format!("line {n}: not \"ticket reason\""))?;
        let ticket = Uuid::parse_str(id)
            .ok()
            .filter(|u| u.hyphenated().to_string() == id)
            .ok_or_else(|| format!("line {n}: {id:?} is not a lowercase hyphenated UUID"))?;
        let reason =
            Reason::parse(reason).ok_or_else(|| format!("line {n}: unknown reason {reason:?}"))?;
        if let Some((last, _)) = out.last() {
            if *last >= ticket {
                return Err(format!(
                    "line {n}: {ticket} is not after {last} (canonical order, no repeats)"
                ));
            }
        }
        out.push((ticket, reason));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn reasons_read_back_and_only_the_win_limit_gives_won_earlier() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert!(!r.label().is_empty());
        }
        assert_eq!(Reason::parse("bot"), None);
        assert!(!Reason::WonEarlier.set_by_operator());
        assert!(Reason::TooFast.set_by_operator());
    }

    #[test]
    fn every_ticket_is_an_entry_or_an_exclusion_in_canonical_order() {
        let tickets = [(id(5), 0), (id(1), 1), (id(3), 0), (id(2), 0), (id(4), 2)];
        let excluded = HashMap::from([(id(3), Reason::TooFast), (id(4), Reason::Staff)]);
        let s = sort_out(tickets, &excluded, 1);
        assert_eq!(s.entries, vec![id(2), id(5)]);
        assert_eq!(
            s.exclusions,
            vec![
                (id(1), Reason::WonEarlier),
                (id(3), Reason::TooFast),
                (id(4), Reason::Staff)
            ]
        );
        assert_eq!(
            by_reason(&s.exclusions),
            BTreeMap::from([
                ("staff".to_owned(), 1),
                ("too_fast".to_owned(), 1),
                ("won_earlier".to_owned(), 1)
            ])
        );
        // A higher win limit lets the earlier winner in.
        assert_eq!(
            sort_out(tickets, &excluded, 2).entries,
            vec![id(1), id(2), id(5)]
        );
    }

    #[test]
    fn the_root_hashes_ticket_bytes_then_the_reason() {
        use sha2::{Digest, Sha256};
        assert_eq!(
            hex::encode(exclusions_root(&[])),
            hex::encode(Sha256::digest(b""))
        );
        let one = [(id(7), Reason::TooFast)];
        let mut leaf = vec![0u8];
        leaf.extend_from_slice(&[7; 16]);
        leaf.extend_from_slice(b"too_fast");
        assert_eq!(
            exclusions_root(&one).to_vec(),
            Sha256::digest(&leaf).to_vec()
        );
        assert_ne!(
            exclusions_root(&one),
            exclusions_root(&[(id(7), Reason::Staff)]),
            "the reason is hashed"
        );
    }

    #[test]
    fn the_file_round_trips_and_is_read_strictly() {
        let list = vec![(id(1), Reason::WonEarlier), (id(9), Reason::Other)];
        let file = exclusions_file(&list);
        assert_eq!(
            file,
            "01010101-0101-0101-0101-010101010101 won_earlier\n\
             09090909-0909-0909-0909-090909090909 other\n"
        );
        assert_eq!(parse_exclusions_file(&file).unwrap(), list);
        assert_eq!(parse_exclusions_file("").unwrap(), vec![]);
        for (bad, says) in [
            (file.trim_end().to_owned(), "does not end"),
            (file.replace(" other", " bot"), "unknown reason"),
            (file.replace(" won_earlier", ""), "line 1"),
            (
                "ABABABAB-ABAB-ABAB-ABAB-ABABABABABAB other\n".to_owned(),
                "lowercase",
            ),
            (
                format!(
                    "{}{}",
                    exclusions_file(&list[1..]),
                    exclusions_file(&list[..1])
                ),
                "canonical order",
            ),
            (format!("{file}{}", exclusions_file(&list[1..])), "line 3"),
        ] {
            let e = parse_exclusions_file(&bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
