//! Whether a voucher may be redeemed at a venue now (DESIGN §5). Pure rules: the store reads the
//! voucher and its uses, asks `judge`, and records the redemption in the same transaction.

use super::campaign::{Campaign, Category, RedemptionPolicy, Venue, VoucherKind};
use super::refusal::Refusal;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An unreversed redemption of a winner's voucher of one kind (under any of its codes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Use {
    pub venue_id: String,
    pub at: DateTime<Utc>,
}

/// Why a voucher is refused at the front desk. Serialised as recorded for an Idempotency-Key,
/// so that a retry is told exactly what the first request was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The operators voided it (lost, or replaced by a reissued code), or its prize was forfeited.
    Void,
    /// Its prize is not claimed yet.
    NotClaimed,
    /// A hotel voucher at a restaurant, say.
    WrongCategory {
        venue: Category,
        voucher: Category,
    },
    NotYetValid {
        from: DateTime<Utc>,
    },
    Expired {
        until: DateTime<Utc>,
    },
    /// Single use and used, or a tourism card already used at this scenic spot.
    AlreadyUsed(Use),
    /// The kind asks for the holder code from the holder's phone and none was given. (Recorded
    /// refusals from before the holder code name it `holder_digits_required`.)
    #[serde(alias = "holder_digits_required")]
    HolderCodeRequired,
    /// The code given is not the holder's code of now (±1 step).
    HolderMismatch,
    /// The holder's code of now, but this voucher was redeemed with it already.
    HolderCodeUsed,
}

/// Whether a voucher may be used at all: not void, and its prize claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Usable,
    Void,
    Unclaimed,
}

impl Standing {
    pub fn of(void: bool, claimed: bool) -> Self {
        match (void, claimed) {
            (true, _) => Standing::Void,
            (false, false) => Standing::Unclaimed,
            (false, true) => Standing::Usable,
        }
    }
}

/// What the front desk was told about the holder.
#[derive(Debug, Clone, Copy)]
pub enum HolderCheck<'a> {
    /// Only checking, not redeeming: the holder code is asked for at redemption.
    NotYet,
    /// Redeeming: the holder code typed or scanned (if any), against the voucher's secret (none
    /// yet for a voucher issued before holder codes whose holder has not opened /me since) and
    /// the steps it was redeemed with.
    Code {
        given: Option<&'a str>,
        secret: Option<&'a [u8]>,
        used: &'a [i64],
    },
}

/// The rules, in the order a front desk would want them explained: a void code is void whatever
/// else holds; a wrong kind of venue before dates; dates before earlier use; the holder last.
/// Allowed: the step of the holder code proven (to record with the redemption), if one was.
pub fn judge(
    kind: &VoucherKind,
    standing: Standing,
    uses: &[Use],
    venue: &Venue,
    now: DateTime<Utc>,
    holder: HolderCheck<'_>,
) -> Result<Option<i64>, Reason> {
    match standing {
        Standing::Void => return Err(Reason::Void),
        Standing::Unclaimed => return Err(Reason::NotClaimed),
        Standing::Usable => {}
    }
    if venue.category != kind.category {
        return Err(Reason::WrongCategory {
            venue: venue.category,
            voucher: kind.category,
        });
    }
    if now < kind.valid_from {
        return Err(Reason::NotYetValid {
            from: kind.valid_from,
        });
    }
    if now >= kind.valid_until {
        return Err(Reason::Expired {
            until: kind.valid_until,
        });
    }
    if let Some(used) = uses
        .iter()
        .find(|u| kind.policy == RedemptionPolicy::SingleUse || u.venue_id == venue.id)
    {
        return Err(Reason::AlreadyUsed(used.clone()));
    }
    let (
        true,
        HolderCheck::Code {
            given,
            secret,
            used,
        },
    ) = (kind.holder_check, holder)
    else {
        return Ok(None);
    };
    let given = given.ok_or(Reason::HolderCodeRequired)?;
    let secret = secret.ok_or(Reason::HolderMismatch)?;
    match super::holder_code::prove(secret, given, now, used) {
        super::holder_code::Proof::Step(step) => Ok(Some(step)),
        super::holder_code::Proof::Used => Err(Reason::HolderCodeUsed),
        super::holder_code::Proof::Wrong => Err(Reason::HolderMismatch),
    }
}

fn category_name(c: Category) -> &'static str {
    match c {
        Category::Scenic => "景区",
        Category::Hotel => "酒店",
        Category::Dining => "餐厅",
    }
}

impl Reason {
    /// The refusal as the front desk reads it: dates in the campaign's local time, the venue by
    /// its name.
    pub fn refusal(&self, c: &Campaign) -> Refusal {
        let tz = c.tz();
        let day = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y年%m月%d日").to_string();
        match self {
            Reason::Void => Refusal::VoucherVoid,
            Reason::NotClaimed => Refusal::PrizeNotClaimed,
            Reason::WrongCategory { venue, voucher } => Refusal::WrongVenueCategory {
                voucher: category_name(*voucher),
                venue: category_name(*venue),
            },
            Reason::NotYetValid { from } => Refusal::NotYetValid {
                from: day(*from),
                from_rfc3339: c.local_rfc3339(*from),
            },
            Reason::Expired { until } => Refusal::Expired {
                until: day(*until - chrono::Duration::seconds(1)),
                until_rfc3339: c.local_rfc3339(*until),
            },
            Reason::AlreadyUsed(used) => Refusal::AlreadyUsed {
                at: used
                    .at
                    .with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                at_rfc3339: c.local_rfc3339(used.at),
                venue_id: used.venue_id.clone(),
                venue_name: c
                    .venue(&used.venue_id)
                    .map_or_else(|| used.venue_id.clone(), |v| v.name.clone()),
            },
            Reason::HolderCodeRequired => Refusal::HolderCodeRequired,
            Reason::HolderMismatch => Refusal::HolderMismatch,
            Reason::HolderCodeUsed => Refusal::HolderCodeUsed,
        }
    }
}

/// A lost code is replaced once: the old one must be voided first, and not replaced already.
pub fn may_reissue(void: bool, replaced_by: Option<uuid::Uuid>) -> Result<(), Refusal> {
    if !void {
        return Err(Refusal::NotVoid);
    }
    match replaced_by {
        Some(replacement) => Err(Refusal::AlreadyReissued { replacement }),
        None => Ok(()),
    }
}

/// What may be used once: `slot` is the venue for a once-per-venue kind and `*` otherwise. The
/// database holds at most one unreversed redemption per (entitlement, slot).
pub fn slot(policy: RedemptionPolicy, venue_id: &str) -> &str {
    match policy {
        RedemptionPolicy::OncePerVenue => venue_id,
        RedemptionPolicy::SingleUse => "*",
    }
}

/// A winner's voucher of one kind, whatever code it carries after reissues; a reissued code
/// keeps the uses of the one it replaces.
pub fn entitlement(campaign_id: &str, round: u32, rank: u32, kind: &str) -> String {
    format!("{campaign_id}:{round}:{rank}:{kind}")
}

/// Where a voucher stands, for its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoucherStatus {
    Usable,
    NotYetValid,
    /// Used up: single use and used, or a tourism card used at every scenic spot.
    Used,
    Expired,
    Void,
    /// Its prize is to be claimed first.
    ToClaim,
}

pub fn status(
    kind: &VoucherKind,
    standing: Standing,
    uses: &[Use],
    venues: &[Venue],
    now: DateTime<Utc>,
) -> VoucherStatus {
    let used_up = match kind.policy {
        RedemptionPolicy::SingleUse => !uses.is_empty(),
        RedemptionPolicy::OncePerVenue => venues
            .iter()
            .filter(|v| v.category == kind.category)
            .all(|v| uses.iter().any(|u| u.venue_id == v.id)),
    };
    if standing == Standing::Void {
        VoucherStatus::Void
    } else if standing == Standing::Unclaimed {
        VoucherStatus::ToClaim
    } else if used_up {
        VoucherStatus::Used
    } else if now >= kind.valid_until {
        VoucherStatus::Expired
    } else if now < kind.valid_from {
        VoucherStatus::NotYetValid
    } else {
        VoucherStatus::Usable
    }
}

/// Reversing is allowed to the venue that redeemed, within the window after the redemption.
pub fn may_reverse(
    redeemed_at: DateTime<Utc>,
    window: chrono::Duration,
    now: DateTime<Utc>,
) -> bool {
    now < redeemed_at + window
}

/// Redemptions per venue and local day, for the operators' chart: one row per venue (in the
/// order given), one count per day from the first day with a redemption to the last. `uses` are
/// (venue, local day) of the redemptions to count (the caller leaves reversed ones out). Empty
/// days are zero; no redemptions at all give no days.
pub fn per_venue_per_day(
    venues: &[&str],
    uses: impl IntoIterator<Item = (String, NaiveDate)>,
) -> (Vec<NaiveDate>, Vec<Vec<u32>>) {
    let mut counts: BTreeMap<(String, NaiveDate), u32> = BTreeMap::new();
    for key in uses {
        *counts.entry(key).or_default() += 1;
    }
    let (Some(first), Some(last)) = (
        counts.keys().map(|k| k.1).min(),
        counts.keys().map(|k| k.1).max(),
    ) else {
        return (Vec::new(), vec![Vec::new(); venues.len()]);
    };
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    let rows = venues
        .iter()
        .map(|v| {
            days.iter()
                .map(|d| counts.get(&((*v).to_owned(), *d)).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    (days, rows)
}

/// What a front desk asked, as recorded with its Idempotency-Key: a retry under the same key
/// must ask the same (the code and the holder code), or it is refused as a reused key. A
/// digest, so that what the holder showed is not stored.
pub fn request_fingerprint(code: &str, holder_code: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"redeem\n");
    h.update(code.as_bytes());
    h.update(b"\n");
    h.update(holder_code.unwrap_or("").as_bytes());
    hex::encode(h.finalize())
}

/// Whether a request is the one recorded as `recorded` under its key. Keys recorded before
/// fingerprints were (migration 0008) name the code only: `code:` and the code.
pub fn same_request(recorded: &str, code: &str, holder_code: Option<&str>) -> bool {
    match recorded.strip_prefix("code:") {
        Some(earlier) => earlier == code,
        None => recorded == request_fingerprint(code, holder_code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_must_ask_the_same_as_the_first_request() {
        let first = request_fingerprint("ABCDEFGHJKMN", Some("5678"));
        assert_eq!(first.len(), 64);
        assert!(!first.contains("5678"));
        assert!(same_request(&first, "ABCDEFGHJKMN", Some("5678")));
        assert!(!same_request(&first, "ABCDEFGHJKMN", Some("1234")));
        assert!(!same_request(&first, "ABCDEFGHJKMN", None));
        assert!(!same_request(&first, "ABCDEFGHJKMP", Some("5678")));
        // No digits and empty digits are one request; a code and digits do not run together.
        assert_eq!(
            request_fingerprint("AB", None),
            request_fingerprint("AB", Some(""))
        );
        assert_ne!(
            request_fingerprint("AB", Some("12")),
            request_fingerprint("AB1", Some("2"))
        );
        // Keys recorded before fingerprints: the code decides.
        assert!(same_request(
            "code:ABCDEFGHJKMN",
            "ABCDEFGHJKMN",
            Some("0000")
        ));
        assert!(!same_request("code:ABCDEFGHJKMN", "ABCDEFGHJKMP", None));
    }

    #[test]
    fn a_refusal_is_recorded_and_read_back_as_it_was() {
        let reasons = [
            Reason::Void,
            Reason::WrongCategory {
                venue: Category::Dining,
                voucher: Category::Hotel,
            },
            Reason::AlreadyUsed(Use {
                venue_id: "shenlong-hotel".into(),
                at: Utc::now(),
            }),
            Reason::HolderMismatch,
            Reason::HolderCodeUsed,
            Reason::HolderCodeRequired,
        ];
        for r in reasons {
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Reason>(&text).unwrap(), r, "{text}");
        }
        // Recorded before the holder code: still read, as its successor.
        assert_eq!(
            serde_json::from_str::<Reason>(r#"{"reason":"holder_digits_required"}"#).unwrap(),
            Reason::HolderCodeRequired
        );
    }
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 7, day, hour, 0, 0).unwrap()
    }

    fn kind(policy: RedemptionPolicy, category: Category) -> VoucherKind {
        VoucherKind {
            code: "k".into(),
            name: "k".into(),
            category,
            policy,
            valid_from: at(15, 0),
            valid_until: at(31, 0),
            face_value_yuan: None,
            holder_check: true,
        }
    }

    fn venue(id: &str, category: Category) -> Venue {
        Venue {
            id: id.into(),
            name: id.into(),
            category,
            example: false,
        }
    }

    const SECRET: &[u8] = b"12345678901234567890";

    /// The holder's code at `now`.
    fn good(now: DateTime<Utc>) -> String {
        crate::domain::holder_code::code_at(SECRET, crate::domain::holder_code::step_of(now))
    }

    #[test]
    fn a_voucher_of_a_prize_not_claimed_is_not_usable_yet() {
        let hotel = kind(RedemptionPolicy::SingleUse, Category::Hotel);
        let desk = venue("h", Category::Hotel);
        let now = at(20, 9);
        let code = good(now);
        assert_eq!(Standing::of(false, false), Standing::Unclaimed);
        assert_eq!(Standing::of(true, false), Standing::Void);
        assert_eq!(
            judge(&hotel, Standing::Unclaimed, &[], &desk, now, holder(&code)),
            Err(Reason::NotClaimed)
        );
        assert_eq!(
            status(
                &hotel,
                Standing::Unclaimed,
                &[],
                std::slice::from_ref(&desk),
                now
            ),
            VoucherStatus::ToClaim
        );
        assert_eq!(
            judge(
                &hotel,
                Standing::of(false, true),
                &[],
                &desk,
                now,
                holder(&code)
            ),
            Ok(Some(crate::domain::holder_code::step_of(now)))
        );
    }

    #[test]
    fn a_code_is_reissued_once_and_only_once_voided() {
        assert_eq!(may_reissue(true, None), Ok(()));
        assert_eq!(may_reissue(false, None), Err(Refusal::NotVoid));
        let new = uuid::Uuid::from_u128(7);
        assert_eq!(
            may_reissue(true, Some(new)),
            Err(Refusal::AlreadyReissued { replacement: new })
        );
    }

    #[test]
    fn reasons_read_in_local_time_with_the_venue_by_name() {
        let c: Campaign = crate::domain::campaign::Campaign::from_file(
            crate::domain::campaign::CampaignFile::parse(include_str!(
                "../../config/campaign.toml"
            ))
            .unwrap(),
            chrono::NaiveDate::from_ymd_opt(2024, 7, 15).unwrap(),
        )
        .unwrap();
        let used = Reason::AlreadyUsed(Use {
            venue_id: "shenlong-hotel".into(),
            at: at(16, 2),
        });
        let r = used.refusal(&c);
        assert_eq!(r.code(), "already_used");
        assert_eq!(
            r.message(),
            "此券已于 2024-07-16 10:00 在「神龙大酒店」使用过"
        );
        let expired = Reason::Expired { until: at(31, 16) }.refusal(&c);
        assert_eq!(expired.message(), "此券已过期（有效期至 2024年07月31日）");
    }

    fn holder(code: &str) -> HolderCheck<'_> {
        HolderCheck::Code {
            given: Some(code),
            secret: Some(SECRET),
            used: &[],
        }
    }

    #[test]
    fn a_fresh_voucher_at_the_right_venue_with_the_holder_code_is_accepted() {
        let card = kind(RedemptionPolicy::OncePerVenue, Category::Scenic);
        let spot = venue("spot", Category::Scenic);
        let code = good(at(20, 9));
        assert_eq!(
            judge(
                &card,
                Standing::Usable,
                &[],
                &spot,
                at(20, 9),
                holder(&code)
            ),
            Ok(Some(crate::domain::holder_code::step_of(at(20, 9))))
        );
        assert_eq!(
            judge(
                &card,
                Standing::Usable,
                &[],
                &spot,
                at(20, 9),
                HolderCheck::NotYet
            ),
            Ok(None)
        );
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let hotel = kind(RedemptionPolicy::SingleUse, Category::Hotel);
        let desk = venue("h1", Category::Hotel);
        let now = at(20, 9);
        let code = good(now);
        assert_eq!(
            judge(&hotel, Standing::Void, &[], &desk, now, holder(&code)),
            Err(Reason::Void)
        );
        assert_eq!(
            judge(
                &hotel,
                Standing::Usable,
                &[],
                &venue("r", Category::Dining),
                now,
                holder(&code)
            ),
            Err(Reason::WrongCategory {
                venue: Category::Dining,
                voucher: Category::Hotel
            })
        );
        assert_eq!(
            judge(
                &hotel,
                Standing::Usable,
                &[],
                &desk,
                at(14, 23),
                holder(&code)
            ),
            Err(Reason::NotYetValid { from: at(15, 0) })
        );
        // valid_until is exclusive: the first instant after the last valid local day.
        assert_eq!(
            judge(
                &hotel,
                Standing::Usable,
                &[],
                &desk,
                at(31, 0),
                holder(&code)
            ),
            Err(Reason::Expired { until: at(31, 0) })
        );
        let used = Use {
            venue_id: "h2".into(),
            at: at(18, 10),
        };
        assert_eq!(
            judge(
                &hotel,
                Standing::Usable,
                std::slice::from_ref(&used),
                &desk,
                now,
                holder(&code)
            ),
            Err(Reason::AlreadyUsed(used))
        );
        let none = HolderCheck::Code {
            given: None,
            secret: Some(SECRET),
            used: &[],
        };
        assert_eq!(
            judge(&hotel, Standing::Usable, &[], &desk, now, none),
            Err(Reason::HolderCodeRequired)
        );
        let wrong = good(now + chrono::Duration::minutes(5));
        assert_eq!(
            judge(&hotel, Standing::Usable, &[], &desk, now, holder(&wrong)),
            Err(Reason::HolderMismatch)
        );
        assert_eq!(
            judge(&hotel, Standing::Usable, &[], &desk, now, holder("")),
            Err(Reason::HolderMismatch)
        );
        // A voucher whose holder never received a secret cannot be proven.
        let no_secret = HolderCheck::Code {
            given: Some(&code),
            secret: None,
            used: &[],
        };
        assert_eq!(
            judge(&hotel, Standing::Usable, &[], &desk, now, no_secret),
            Err(Reason::HolderMismatch)
        );
        let step = crate::domain::holder_code::step_of(now);
        let replayed = HolderCheck::Code {
            given: Some(&code),
            secret: Some(SECRET),
            used: &[step],
        };
        assert_eq!(
            judge(&hotel, Standing::Usable, &[], &desk, now, replayed),
            Err(Reason::HolderCodeUsed)
        );
        assert_eq!(
            judge(&hotel, Standing::Usable, &[], &desk, now, holder(&code)),
            Ok(Some(step))
        );
    }

    #[test]
    fn a_tourism_card_is_once_per_spot_and_a_hotel_night_once_anywhere() {
        let card = kind(RedemptionPolicy::OncePerVenue, Category::Scenic);
        let hotel = kind(RedemptionPolicy::SingleUse, Category::Hotel);
        let uses = [Use {
            venue_id: "a".into(),
            at: at(18, 10),
        }];
        let now = at(20, 9);
        let code = good(now);
        let spot_a = venue("a", Category::Scenic);
        let spot_b = venue("b", Category::Scenic);
        assert!(matches!(
            judge(&card, Standing::Usable, &uses, &spot_a, now, holder(&code)),
            Err(Reason::AlreadyUsed(_))
        ));
        assert_eq!(
            judge(&card, Standing::Usable, &uses, &spot_b, now, holder(&code)),
            Ok(Some(crate::domain::holder_code::step_of(now)))
        );
        assert!(matches!(
            judge(
                &hotel,
                Standing::Usable,
                &uses,
                &venue("b", Category::Hotel),
                now,
                holder(&code)
            ),
            Err(Reason::AlreadyUsed(_))
        ));
    }

    #[test]
    fn without_holder_check_no_code_is_needed() {
        let mut dining = kind(RedemptionPolicy::SingleUse, Category::Dining);
        dining.holder_check = false;
        let none = HolderCheck::Code {
            given: None,
            secret: None,
            used: &[],
        };
        let desk = venue("d", Category::Dining);
        assert_eq!(
            judge(&dining, Standing::Usable, &[], &desk, at(20, 9), none),
            Ok(None)
        );
    }

    #[test]
    fn status_for_the_holder() {
        let card = kind(RedemptionPolicy::OncePerVenue, Category::Scenic);
        let venues = [
            venue("a", Category::Scenic),
            venue("b", Category::Scenic),
            venue("h", Category::Hotel),
        ];
        let use_at = |v: &str| Use {
            venue_id: v.into(),
            at: at(18, 10),
        };
        let now = at(20, 9);
        assert_eq!(
            status(&card, Standing::Usable, &[], &venues, now),
            VoucherStatus::Usable
        );
        assert_eq!(
            status(&card, Standing::Usable, &[use_at("a")], &venues, now),
            VoucherStatus::Usable
        );
        assert_eq!(
            status(
                &card,
                Standing::Usable,
                &[use_at("a"), use_at("b")],
                &venues,
                now
            ),
            VoucherStatus::Used
        );
        assert_eq!(
            status(&card, Standing::Void, &[], &venues, now),
            VoucherStatus::Void
        );
        assert_eq!(
            status(&card, Standing::Usable, &[], &venues, at(31, 0)),
            VoucherStatus::Expired
        );
        assert_eq!(
            status(&card, Standing::Usable, &[], &venues, at(14, 0)),
            VoucherStatus::NotYetValid
        );
        let hotel = kind(RedemptionPolicy::SingleUse, Category::Hotel);
        assert_eq!(
            status(&hotel, Standing::Usable, &[use_at("h")], &venues, now),
            VoucherStatus::Used
        );
    }

    #[test]
    fn slots_and_entitlements() {
        assert_eq!(slot(RedemptionPolicy::OncePerVenue, "a"), "a");
        assert_eq!(slot(RedemptionPolicy::SingleUse, "a"), "*");
        assert_eq!(entitlement("c", 3, 17, "hotel_night"), "c:3:17:hotel_night");
    }

    #[test]
    fn reversal_window() {
        let w = chrono::Duration::minutes(30);
        assert!(may_reverse(
            at(20, 9),
            w,
            at(20, 9) + chrono::Duration::minutes(29)
        ));
        assert!(!may_reverse(
            at(20, 9),
            w,
            at(20, 9) + chrono::Duration::minutes(30)
        ));
    }

    #[test]
    fn redemptions_are_counted_per_venue_and_day_with_empty_days_filled() {
        let d = |day| NaiveDate::from_ymd_opt(2026, 7, day).unwrap();
        let uses = [("a", 3), ("a", 3), ("b", 5), ("c", 4), ("a", 5)]
            .map(|(v, day)| (v.to_owned(), d(day)));
        let (days, rows) = per_venue_per_day(&["b", "a", "quiet"], uses);
        assert_eq!(days, vec![d(3), d(4), d(5)]);
        assert_eq!(rows, vec![vec![0, 0, 1], vec![2, 0, 1], vec![0, 0, 0]]);
        let (days, rows) = per_venue_per_day(&["a"], []);
        assert!(days.is_empty());
        assert_eq!(rows, vec![Vec::<u32>::new()]);
    }
}
