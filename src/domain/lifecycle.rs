//! A round's lifecycle, `scheduled → open → closed → frozen → drawn` (DESIGN §4): which step
//! may happen now, decided from facts the store reads inside the step's own transaction, so
//! that the decision and the write it allows are atomic. Also the prizes a round offers once
//! the previous round's unawarded prizes roll over.

use super::campaign::RoundProgress;
use super::refusal::Refusal;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// A witness commits only while the round takes entries or waits for its freeze.
pub fn may_commit(round: u32, progress: RoundProgress) -> Result<(), Refusal> {
    match progress {
        RoundProgress::Pending => Ok(()),
        RoundProgress::Frozen => Err(Refusal::AlreadyFrozen { round }),
        RoundProgress::Drawn => Err(Refusal::AlreadyDrawn { round }),
    }
}

/// Tickets are excluded or taken back only before the freeze, whose entries they decide: the
/// same window as a witness's commitment.
pub fn may_change_tickets(round: u32, progress: RoundProgress) -> Result<(), Refusal> {
    may_commit(round, progress)
}

/// What a freeze depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeFacts {
    pub round: u32,
    pub progress: RoundProgress,
    /// When the entry window closes, and that instant as the campaign's local time.
    pub closes_at: DateTime<Utc>,
    pub closes_at_local: String,
    pub now: DateTime<Utc>,
    /// The previous round's progress; `None` for round 1.
    pub previous: Option<RoundProgress>,
    pub commitments: u32,
    pub min_witnesses: u32,
}

/// A round is frozen once: after its entry window, when the round before it is drawn (its
/// winners are not eligible again) and enough witnesses have committed.
pub fn may_freeze(f: &FreezeFacts) -> Result<(), Refusal> {
    let round = f.round;
    match f.progress {
        RoundProgress::Pending => {}
        RoundProgress::Frozen => return Err(Refusal::AlreadyFrozen { round }),
        RoundProgress::Drawn => return Err(Refusal::AlreadyDrawn { round }),
    }
    if f.now < f.closes_at {
        return Err(Refusal::RoundNotClosed {
            round,
            closes_at: f.closes_at_local.clone(),
        });
    }
    if f.previous.is_some_and(|p| p != RoundProgress::Drawn) {
        return Err(Refusal::PreviousRoundNotDrawn { round });
    }
    if f.commitments < f.min_witnesses {
        return Err(Refusal::NotEnoughCommitments {
            round,
            needed: f.min_witnesses,
            has: f.commitments,
        });
    }
    Ok(())
}

/// What the store records of a witness for the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WitnessStep {
    NotCommitted,
    Committed,
    Revealed,
}

/// A witness reveals once, after the freeze and before the draw, a secret it committed to.
pub fn may_reveal(
    round: u32,
    witness: &str,
    progress: RoundProgress,
    step: WitnessStep,
) -> Result<(), Refusal> {
    match progress {
        RoundProgress::Pending => return Err(Refusal::RoundNotFrozen { round }),
        RoundProgress::Drawn => return Err(Refusal::AlreadyDrawn { round }),
        RoundProgress::Frozen => {}
    }
    match step {
        WitnessStep::NotCommitted => Err(Refusal::NotCommitted {
            round,
            witness: witness.to_owned(),
        }),
        WitnessStep::Revealed => Err(Refusal::AlreadyRevealed {
            round,
            witness: witness.to_owned(),
        }),
        WitnessStep::Committed => Ok(()),
    }
}

/// A round is drawn once, when frozen, with every committed witness's secret, and with the
/// beacon its source declared at the freeze asks for (DESIGN §4c). `unrevealed` are the
/// witnesses whose secret is missing; `declared` is the beacon source ("" for none), `given`
/// what the operator gave. The beacon to draw with.
pub fn may_draw(
    round: u32,
    progress: RoundProgress,
    unrevealed: &[&str],
    declared: &str,
    given: &super::draw::beacon::Given,
) -> Result<super::draw::beacon::Beacon, Refusal> {
    match progress {
        RoundProgress::Pending => return Err(Refusal::RoundNotFrozen { round }),
        RoundProgress::Drawn => return Err(Refusal::AlreadyDrawn { round }),
        RoundProgress::Frozen => {}
    }
    if !unrevealed.is_empty() {
        return Err(Refusal::RevealsMissing {
            round,
            witnesses: unrevealed.iter().map(|w| (*w).to_owned()).collect(),
        });
    }
    super::draw::beacon::take(round, declared, given)
}

/// The entries of a round (DESIGN §4): of the tickets held for it — each with how many times its
/// holder won in earlier rounds — those whose holder has won fewer than `win_limit` times, in
/// canonical order (ascending 16 bytes, which is ascending lowercase hyphenated text). One ticket
/// per participant and round is the database's to keep (a unique constraint).
/// Without any operator's exclusion: [`super::exclusion::sort_out`] sorts them out in full.
pub fn entries(tickets: impl IntoIterator<Item = (Uuid, u32)>, win_limit: u32) -> Vec<Uuid> {
    super::exclusion::sort_out(tickets, &HashMap::new(), win_limit).entries
}

/// The prizes a round offers, `(tier, count)` in draw order: its own, plus what the previous
/// round offered and did not award (DESIGN §2, rollover). `previous_awarded` counts winners by
/// tier.
pub fn prizes_with_rollover(
    base: &[(String, u32)],
    previous_offered: &[(String, u32)],
    previous_awarded: &HashMap<String, u32>,
) -> Vec<(String, u32)> {
    base.iter()
        .map(|(tier, count)| {
            let offered = previous_offered
                .iter()
                .find(|(t, _)| t == tier)
                .map_or(0, |(_, c)| *c);
            let awarded = previous_awarded.get(tier).copied().unwrap_or(0);
            (tier.clone(), count + offered.saturating_sub(awarded))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use RoundProgress::*;

    fn facts() -> FreezeFacts {
        FreezeFacts {
            round: 2,
            progress: Pending,
            closes_at: Utc.with_ymd_and_hms(2024, 7, 28, 16, 0, 0).unwrap(),
            closes_at_local: "2024-07-29 00:00".into(),
            now: Utc.with_ymd_and_hms(2024, 7, 29, 2, 0, 0).unwrap(),
            previous: Some(Drawn),
            commitments: 2,
            min_witnesses: 2,
        }
    }

    #[test]
    fn a_closed_round_with_its_predecessor_drawn_and_enough_witnesses_freezes() {
        assert_eq!(may_freeze(&facts()), Ok(()));
        assert_eq!(
            may_freeze(&FreezeFacts {
                round: 1,
                previous: None,
                ..facts()
            }),
            Ok(())
        );
    }

    #[test]
    fn each_missing_condition_of_a_freeze_has_its_own_refusal() {
        let open = FreezeFacts {
            now: facts().closes_at - chrono::Duration::seconds(1),
            ..facts()
        };
        assert_eq!(
            may_freeze(&open),
            Err(Refusal::RoundNotClosed {
                round: 2,
                closes_at: "2024-07-29 00:00".into()
            })
        );
        // The window closes at its instant exactly.
        let at_close = FreezeFacts {
            now: facts().closes_at,
            ..facts()
        };
        assert_eq!(may_freeze(&at_close), Ok(()));
        for previous in [Pending, Frozen] {
            let f = FreezeFacts {
                previous: Some(previous),
                ..facts()
            };
            assert_eq!(
                may_freeze(&f),
                Err(Refusal::PreviousRoundNotDrawn { round: 2 })
            );
        }
        let few = FreezeFacts {
            commitments: 1,
            ..facts()
        };
        assert_eq!(
            may_freeze(&few),
            Err(Refusal::NotEnoughCommitments {
                round: 2,
                needed: 2,
                has: 1
            })
        );
        let again = FreezeFacts {
            progress: Frozen,
            ..facts()
        };
        assert_eq!(may_freeze(&again), Err(Refusal::AlreadyFrozen { round: 2 }));
        let drawn = FreezeFacts {
            progress: Drawn,
            ..facts()
        };
        assert_eq!(may_freeze(&drawn), Err(Refusal::AlreadyDrawn { round: 2 }));
    }

    #[test]
    fn commitments_are_taken_until_the_freeze() {
        assert_eq!(may_commit(1, Pending), Ok(()));
        assert_eq!(
            may_commit(1, Frozen),
            Err(Refusal::AlreadyFrozen { round: 1 })
        );
        assert_eq!(
            may_commit(1, Drawn),
            Err(Refusal::AlreadyDrawn { round: 1 })
        );
    }

    #[test]
    fn a_secret_is_revealed_once_between_freeze_and_draw() {
        use WitnessStep::*;
        assert_eq!(may_reveal(1, "公证处", Frozen, Committed), Ok(()));
        assert_eq!(
            may_reveal(1, "公证处", Pending, Committed),
            Err(Refusal::RoundNotFrozen { round: 1 })
        );
        assert_eq!(
            may_reveal(1, "公证处", Drawn, Committed),
            Err(Refusal::AlreadyDrawn { round: 1 })
        );
        assert_eq!(
            may_reveal(1, "公证处", Frozen, Revealed),
            Err(Refusal::AlreadyRevealed {
                round: 1,
                witness: "公证处".into()
            })
        );
        assert_eq!(
            may_reveal(1, "公证处", Frozen, NotCommitted),
            Err(Refusal::NotCommitted {
                round: 1,
                witness: "公证处".into()
            })
        );
    }

    #[test]
    fn a_draw_needs_the_freeze_every_secret_and_the_declared_beacon() {
        let given = |value: &str| crate::domain::draw::beacon::Given {
            value: value.into(),
            signature: String::new(),
        };
        assert_eq!(may_draw(1, Frozen, &[], "", &given("")).unwrap().value, "");
        assert_eq!(
            may_draw(1, Frozen, &[], "lottery 3", &given("07 12"))
                .unwrap()
                .value,
            "07 12"
        );
        // The round's state comes first, whatever the beacon: an unfrozen round is not frozen.
        assert_eq!(
            may_draw(1, Pending, &[], "", &given("something")),
            Err(Refusal::RoundNotFrozen { round: 1 })
        );
        assert_eq!(
            may_draw(1, Drawn, &[], "", &given("")),
            Err(Refusal::AlreadyDrawn { round: 1 })
        );
        assert_eq!(
            may_draw(1, Frozen, &["律师见证人"], "", &given("")),
            Err(Refusal::RevealsMissing {
                round: 1,
                witnesses: vec!["律师见证人".into()]
            })
        );
        assert_eq!(
            may_draw(1, Frozen, &[], "", &given("07 12")),
            Err(Refusal::UnexpectedBeacon { round: 1 })
        );
        assert_eq!(
            may_draw(1, Frozen, &[], "lottery 3", &given("")),
            Err(Refusal::BeaconRequired {
                round: 1,
                source: "lottery 3".into()
            })
        );
    }

    #[test]
    fn earlier_winners_are_entered_only_below_the_win_limit_in_canonical_order() {
        let t = |n: u128| Uuid::from_u128(n);
        let held = vec![(t(9), 0), (t(3), 1), (t(5), 0), (t(1), 2)];
        assert_eq!(entries(held.clone(), 1), vec![t(5), t(9)]);
        assert_eq!(entries(held.clone(), 2), vec![t(3), t(5), t(9)]);
        assert_eq!(entries(held, 3), vec![t(1), t(3), t(5), t(9)]);
        assert!(entries(Vec::new(), 1).is_empty());
        assert_eq!(may_change_tickets(1, RoundProgress::Pending), Ok(()));
        assert_eq!(
            may_change_tickets(1, RoundProgress::Frozen),
            Err(Refusal::AlreadyFrozen { round: 1 })
        );
        // Canonical order is the bytes' order, as the lowercase text sorts.
        let a = Uuid::parse_str("0fffffff-ffff-4fff-bfff-ffffffffffff").unwrap();
        let b = Uuid::parse_str("f0000000-0000-4000-8000-000000000000").unwrap();
        assert_eq!(entries(vec![(b, 0), (a, 0)], 1), vec![a, b]);
    }

    #[test]
    fn unawarded_prizes_roll_over_to_the_next_round() {
        let base = vec![("grand".to_owned(), 30), ("standard".to_owned(), 235)];
        let offered = vec![("grand".to_owned(), 30), ("standard".to_owned(), 240)];
        let awarded: HashMap<String, u32> =
            [("grand".to_owned(), 30), ("standard".to_owned(), 200)].into();
        assert_eq!(
            prizes_with_rollover(&base, &offered, &awarded),
            vec![("grand".to_owned(), 30), ("standard".to_owned(), 275)]
        );
        assert_eq!(prizes_with_rollover(&base, &[], &HashMap::new()), base);
        // A tier that awarded more than offered (impossible, but) never subtracts.
        let over: HashMap<String, u32> = [("grand".to_owned(), 99)].into();
        assert_eq!(prizes_with_rollover(&base, &offered, &over)[0].1, 30);
    }
}
