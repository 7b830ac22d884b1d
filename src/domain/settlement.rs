//! Settlement: what each venue is reimbursed for a range of time. Every redemption in the range
//! counts +1 (and its face value), every reversal in the range −1; a redemption made before the
//! range and reversed in it is a −1 of this range. Nothing is netted silently: each entry is
//! listed, then the totals per venue and voucher kind.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A redemption as settlement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption<'a> {
    pub id: Uuid,
    pub venue_id: &'a str,
    pub kind: &'a str,
    pub code: &'a str,
    pub redeemed_at: DateTime<Utc>,
    pub reversed_at: Option<DateTime<Utc>>,
}

/// One line of a settlement: a redemption (+1) or a reversal (−1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub redemption: &'a Redemption<'a>,
    pub at: DateTime<Utc>,
    /// +1 for a redemption, −1 for a reversal.
    pub count: i64,
    /// `count` × the kind's face value (0 for kinds without one).
    pub value: i64,
}

/// Net count and face value of one venue's redemptions of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Total {
    pub count: i64,
    pub value: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement<'a> {
    /// In time order (a redemption before its own reversal at the same instant).
    pub entries: Vec<Entry<'a>>,
    /// By (venue, kind).
    pub totals: BTreeMap<(&'a str, &'a str), Total>,
}

/// The settlement of `[from, to)`; `face_value` gives a kind's face value in yuan, if any.
pub fn settle<'a>(
    redemptions: &'a [Redemption<'a>],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    face_value: impl Fn(&str) -> Option<u32>,
) -> Settlement<'a> {
    let within = |t: DateTime<Utc>| t >= from && t < to;
    let mut entries = Vec::new();
    for r in redemptions {
        let value = i64::from(face_value(r.kind).unwrap_or(0));
        if within(r.redeemed_at) {
            entries.push(Entry {
                redemption: r,
                at: r.redeemed_at,
                count: 1,
                value,
            });
        }
        if let Some(at) = r.reversed_at.filter(|at| within(*at)) {
            entries.push(Entry {
                redemption: r,
                at,
                count: -1,
                value: -value,
            });
        }
    }
    entries.sort_by_key(|e| (e.at, e.redemption.id, -e.count));
    let mut totals: BTreeMap<(&str, &str), Total> = BTreeMap::new();
    for e in &entries {
        let t = totals
            .entry((e.redemption.venue_id, e.redemption.kind))
            .or_default();
        t.count += e.count;
        t.value += e.value;
    }
    Settlement { entries, totals }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 7, d, h, 0, 0).unwrap()
    }

    fn r<'a>(
        n: u128,
        venue: &'a str,
        kind: &'a str,
        at: DateTime<Utc>,
        reversed: Option<DateTime<Utc>>,
    ) -> Redemption<'a> {
        Redemption {
            id: Uuid::from_u128(n),
            venue_id: venue,
            kind,
            code: "ABCDEFGHJKMY",
            redeemed_at: at,
            reversed_at: reversed,
        }
    }

    fn value(kind: &str) -> Option<u32> {
        (kind == "dining_coupon").then_some(200)
    }

    #[test]
    fn redemptions_count_up_and_reversals_down_each_in_its_own_range() {
        let list = vec![
            r(1, "hotel", "hotel_night", day(20, 10), None),
            r(2, "food", "dining_coupon", day(20, 11), Some(day(20, 11))),
            r(3, "food", "dining_coupon", day(19, 23), Some(day(20, 1))),
            r(4, "food", "dining_coupon", day(20, 12), None),
            r(5, "food", "dining_coupon", day(21, 0), None),
        ];
        let s = settle(&list, day(20, 0), day(21, 0), value);
        let lines: Vec<(u128, i64, i64)> = s
            .entries
            .iter()
            .map(|e| (e.redemption.id.as_u128(), e.count, e.value))
            .collect();
        assert_eq!(
            lines,
            vec![
                (3, -1, -200),
                (1, 1, 0),
                (2, 1, 200),
                (2, -1, -200),
                (4, 1, 200)
            ]
        );
        assert_eq!(
            s.totals[&("food", "dining_coupon")],
            Total { count: 0, value: 0 }
        );
        assert_eq!(
            s.totals[&("hotel", "hotel_night")],
            Total { count: 1, value: 0 }
        );
        assert_eq!(s.totals.len(), 2);
    }

    #[test]
    fn an_empty_range_settles_nothing() {
        let list = vec![r(1, "hotel", "hotel_night", day(20, 10), None)];
        let s = settle(&list, day(22, 0), day(23, 0), value);
        assert!(s.entries.is_empty() && s.totals.is_empty());
    }
}
