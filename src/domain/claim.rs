//! Claims (DESIGN §4b, §5): a winner claims the prize within the claim period; unclaimed past the
//! deadline, or declined, it is forfeited, and goes to the lowest-ranked reserve not yet used.

use super::refusal::Refusal;
use chrono::{DateTime, Utc};

/// Why a prize was forfeited: the reallocations document's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForfeitReason {
    Unclaimed,
    Declined,
}

impl ForfeitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ForfeitReason::Unclaimed => "unclaimed",
            ForfeitReason::Declined => "declined",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unclaimed" => Some(ForfeitReason::Unclaimed),
            "declined" => Some(ForfeitReason::Declined),
            _ => None,
        }
    }
}

/// Where a prize stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// To be claimed before the deadline.
    Open {
        deadline: DateTime<Utc>,
    },
    Claimed {
        at: DateTime<Utc>,
    },
    Forfeited {
        at: DateTime<Utc>,
        reason: ForfeitReason,
    },
}

impl Standing {
    /// From what the database records.
    pub fn of(
        deadline: DateTime<Utc>,
        claimed_at: Option<DateTime<Utc>>,
        forfeited: Option<(DateTime<Utc>, ForfeitReason)>,
    ) -> Self {
        match (forfeited, claimed_at) {
            (Some((at, reason)), _) => Standing::Forfeited { at, reason },
            (None, Some(at)) => Standing::Claimed { at },
            (None, None) => Standing::Open { deadline },
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Standing::Open { .. } => "to_claim",
            Standing::Claimed { .. } => "claimed",
            Standing::Forfeited { .. } => "forfeited",
        }
    }
}

/// A claim is taken while the prize is open and its deadline has not passed; claiming twice is
/// no error (a retried tap). A decline likewise, once.
pub fn may_claim(round: u32, s: Standing, now: DateTime<Utc>) -> Result<bool, Refusal> {
    match s {
        Standing::Open { deadline } if now < deadline => Ok(true),
        Standing::Claimed { .. } => Ok(false),
        Standing::Open { .. } | Standing::Forfeited { .. } => Err(Refusal::ClaimClosed { round }),
    }
}

/// Whether an open prize is past its deadline at `now`.
pub fn overdue(s: Standing, now: DateTime<Utc>) -> bool {
    matches!(s, Standing::Open { deadline } if now >= deadline)
}

/// The reserve a forfeited prize goes to: the lowest-ranked one not used yet.
pub fn next_reserve(reserves: &[u32], used: &[u32]) -> Option<u32> {
    reserves.iter().copied().filter(|r| !used.contains(r)).min()
}

/// What the campaign could not give, once its last round is drawn: the prizes the last round
/// offered (rollover included) beyond its winners, and forfeited prizes no reserve was left for;
/// by tier.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Unawarded {
    pub rollover_left: std::collections::BTreeMap<String, u32>,
    pub forfeited: std::collections::BTreeMap<String, u32>,
    pub total: u32,
}

pub fn unawarded(
    offered_last: &[(String, u32)],
    awarded_last: &std::collections::HashMap<String, u32>,
    forfeits_without_reserve: &[String],
) -> Unawarded {
    let mut u = Unawarded::default();
    for (tier, offered) in offered_last {
        let left = offered.saturating_sub(awarded_last.get(tier).copied().unwrap_or(0));
        if left > 0 {
            u.rollover_left.insert(tier.clone(), left);
            u.total += left;
        }
    }
    for tier in forfeits_without_reserve {
        *u.forfeited.entry(tier.clone()).or_insert(0) += 1;
        u.total += 1;
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 10, h, 0, 0).unwrap()
    }

    #[test]
    fn a_claim_is_taken_before_the_deadline_only() {
        let open = Standing::of(t(12), None, None);
        assert_eq!(may_claim(1, open, t(11)), Ok(true));
        assert_eq!(
            may_claim(1, open, t(12)),
            Err(Refusal::ClaimClosed { round: 1 })
        );
        let claimed = Standing::of(t(12), Some(t(9)), None);
        assert_eq!(may_claim(1, claimed, t(11)), Ok(false), "again: no error");
        let gone = Standing::of(t(12), None, Some((t(10), ForfeitReason::Declined)));
        assert_eq!(
            may_claim(1, gone, t(11)),
            Err(Refusal::ClaimClosed { round: 1 })
        );
        assert_eq!(gone.code(), "forfeited");
        assert!(overdue(open, t(12)) && !overdue(open, t(11)) && !overdue(claimed, t(13)));
    }

    #[test]
    fn what_could_not_be_given_is_the_last_rollover_and_forfeits_without_reserve() {
        let offered = [("grand".to_owned(), 50), ("standard".to_owned(), 470)];
        let awarded = std::collections::HashMap::from([
            ("grand".to_owned(), 50),
            ("standard".to_owned(), 400),
        ]);
        let u = unawarded(
            &offered,
            &awarded,
            &["grand".into(), "grand".into(), "standard".into()],
        );
        assert_eq!(u.rollover_left, [("standard".to_owned(), 70)].into());
        assert_eq!(
            u.forfeited,
            [("grand".to_owned(), 2), ("standard".to_owned(), 1)].into()
        );
        assert_eq!(u.total, 73);
        assert_eq!(
            unawarded(
                &offered,
                &[("grand".to_owned(), 50), ("standard".to_owned(), 470)].into(),
                &[]
            )
            .total,
            0
        );
    }

    #[test]
    fn reserves_are_used_lowest_rank_first_each_once() {
        let reserves = [266, 267, 268];
        assert_eq!(next_reserve(&reserves, &[]), Some(266));
        assert_eq!(next_reserve(&reserves, &[266]), Some(267));
        assert_eq!(next_reserve(&reserves, &[267, 266]), Some(268));
        assert_eq!(next_reserve(&reserves, &[266, 267, 268]), None);
        assert_eq!(next_reserve(&[], &[]), None);
        for r in [ForfeitReason::Unclaimed, ForfeitReason::Declined] {
            assert_eq!(ForfeitReason::parse(r.as_str()), Some(r));
        }
    }
}
