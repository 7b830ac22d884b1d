//! The weekly draw (DESIGN §4, a contract outsiders re-implement): the entry snapshot and its
//! Merkle root, witness commitments, the seed, and the choice of winners.

pub mod beacon;
pub mod merkle;
pub mod record;
pub mod seed;
pub mod select;

use merkle::{leaf_hash, root_of_leaf_hashes, Hash};
use uuid::Uuid;

pub const ALGORITHM: &str = "campaign-draw/v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ticket {0} appears more than once")]
pub struct DuplicateTicket(pub Uuid);

/// Sorts tickets into canonical order (ascending 16 bytes = ascending lowercase hyphenated text)
/// and refuses duplicates.
pub fn canonical(mut tickets: Vec<Uuid>) -> Result<Vec<Uuid>, DuplicateTicket> {
    tickets.sort_unstable();
    if let Some(pair) = tickets.windows(2).find(|w| w[0] == w[1]) {
        return Err(DuplicateTicket(pair[0]));
    }
    Ok(tickets)
}

/// The leaf hashes of tickets in canonical order.
pub fn leaf_hashes(tickets: &[Uuid]) -> Vec<Hash> {
    tickets.iter().map(|t| leaf_hash(t.as_bytes())).collect()
}

/// `entries_root`: the Merkle root over the tickets' 16-byte values.
pub fn entries_root(tickets: &[Uuid]) -> Hash {
    root_of_leaf_hashes(&leaf_hashes(tickets))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Winner {
    pub rank: u32,
    pub ticket: Uuid,
    pub tier: String,
}

/// A reserve (DESIGN §4b): the ranks after the winners, from the same shuffle, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserve {
    pub rank: u32,
    pub ticket: Uuid,
}

/// Everything a draw computes from its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawResult {
    pub entries_root: Hash,
    pub seed: Hash,
    pub winners: Vec<Winner>,
    pub reserves: Vec<Reserve>,
}

/// Runs a draw over tickets already in canonical order, without reserves. `witnesses` are
/// (name, secret) in any order; `prizes` are (tier, count) in draw order.
pub fn draw(
    campaign_id: &str,
    round: u32,
    tickets: &[Uuid],
    witnesses: &[(String, Vec<u8>)],
    beacon: &str,
    prizes: &[(String, u32)],
) -> DrawResult {
    draw_with_reserves(campaign_id, round, tickets, witnesses, beacon, prizes, 0)
}

/// [`draw`], with up to `reserves` ranks after the winners (DESIGN §4b): the selection loop runs
/// for k' = min(n, prizes + reserves) instead of k = min(n, prizes), so the winners are exactly
/// those of [`draw`] and the reserves the next ranks of the same shuffle.
pub fn draw_with_reserves(
    campaign_id: &str,
    round: u32,
    tickets: &[Uuid],
    witnesses: &[(String, Vec<u8>)],
    beacon: &str,
    prizes: &[(String, u32)],
    reserves: u32,
) -> DrawResult {
    let root = entries_root(tickets);
    let seed = seed::seed(
        campaign_id,
        round,
        tickets.len() as u64,
        &root,
        witnesses,
        beacon,
    );
    let k: u32 = prizes.iter().map(|(_, c)| *c).sum();
    let mut chosen = select::winners(tickets.len(), k.saturating_add(reserves) as usize, &seed);
    let behind = chosen.split_off(chosen.len().min(k as usize));
    let tiers = select::tiers_by_rank(prizes, chosen.len());
    let winners: Vec<Winner> = chosen
        .into_iter()
        .zip(tiers)
        .enumerate()
        .map(|(i, (index, tier))| Winner {
            rank: i as u32 + 1,
            ticket: tickets[index],
            tier,
        })
        .collect();
    let reserves = behind
        .into_iter()
        .enumerate()
        .map(|(i, index)| Reserve {
            rank: (winners.len() + i) as u32 + 1,
            ticket: tickets[index],
        })
        .collect();
    DrawResult {
        entries_root: root,
        seed,
        winners,
        reserves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reserves take the ranks after the winners from the same shuffle, and change nothing of
    /// the winners (the selection loop only runs further).
    #[test]
    fn reserves_are_the_next_ranks_of_the_same_shuffle() {
        use crate::domain::random::partial_shuffle;
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        let tickets: Vec<Uuid> = (0..50u128).map(Uuid::from_u128).collect();
        let prizes = vec![("grand".to_owned(), 3), ("standard".to_owned(), 7)];
        let witnesses = vec![("notary".to_owned(), vec![7; 32])];
        let plain = draw("c", 2, &tickets, &witnesses, "b", &prizes);
        let with = draw_with_reserves("c", 2, &tickets, &witnesses, "b", &prizes, 5);
        assert_eq!(
            (with.winners.clone(), with.seed),
            (plain.winners, plain.seed)
        );
        assert!(plain.reserves.is_empty());
        let mut a: Vec<usize> = (0..50).collect();
        partial_shuffle(&mut ChaCha20Rng::from_seed(with.seed), &mut a, 15);
        let expected: Vec<Reserve> = (10..15)
            .map(|i| Reserve {
                rank: i as u32 + 1,
                ticket: tickets[a[i]],
            })
            .collect();
        assert_eq!(with.reserves, expected);
        // Fewer entries than prizes and reserves: everyone is a winner or a reserve, once.
        let few = draw_with_reserves("c", 2, &tickets[..12], &witnesses, "b", &prizes, 5);
        assert_eq!((few.winners.len(), few.reserves.len()), (10, 2));
        assert_eq!(few.reserves[0].rank, 11);
        let none = draw_with_reserves("c", 2, &tickets[..4], &witnesses, "b", &prizes, 5);
        assert_eq!((none.winners.len(), none.reserves.len()), (4, 0));
    }

    fn worked_example_tickets() -> Vec<Uuid> {
        (1..=7)
            .map(|n| Uuid::parse_str(&format!("00000000-0000-4000-8000-00000000000{n}")).unwrap())
            .collect()
    }

    fn worked_example_witnesses() -> Vec<(String, Vec<u8>)> {
        // Given in the wrong order on purpose: the seed sorts them.
        vec![
            ("operator".into(), vec![0x22; 32]),
            ("notary".into(), vec![0x11; 32]),
        ]
    }

    /// DESIGN §4's worked example, the contract's known answer.
    #[test]
    fn the_worked_example_gives_the_published_root_seed_and_winners() {
        let tickets = canonical(worked_example_tickets().into_iter().rev().collect()).unwrap();
        let prizes = vec![("grand".to_owned(), 1), ("standard".to_owned(), 2)];
        let result = draw(
            "hengyang-2024",
            3,
            &tickets,
            &worked_example_witnesses(),
            "",
            &prizes,
        );
        assert_eq!(
            hex::encode(result.entries_root),
            "d06b98d91471e89208b5bc8f79497b922e8f6d0c292a7b481688b06ea7518a10"
        );
        assert_eq!(
            hex::encode(seed::commitment("hengyang-2024", 3, "notary", &[0x11; 32])),
            "586fef0a6c3cb2f3e7b9036c82ce589f64a64f76322a5f842ad0bea42e80d25e"
        );
        assert_eq!(
            hex::encode(result.seed),
            "6012d3956bc9d860f892ac3bd09a1ecd383b7dcb51a74fc851457dc46249115f"
        );
        let winners: Vec<(u32, String, &str)> = result
            .winners
            .iter()
            .map(|w| (w.rank, w.ticket.to_string(), w.tier.as_str()))
            .collect();
        assert_eq!(
            winners,
            vec![
                (1, "00000000-0000-4000-8000-000000000002".into(), "grand"),
                (2, "00000000-0000-4000-8000-000000000003".into(), "standard"),
                (3, "00000000-0000-4000-8000-000000000005".into(), "standard"),
            ]
        );
    }

    #[test]
    fn canonical_order_is_byte_order_and_duplicates_are_refused() {
        let a = Uuid::parse_str("0f000000-0000-4000-8000-000000000000").unwrap();
        let b = Uuid::parse_str("a0000000-0000-4000-8000-000000000000").unwrap();
        assert_eq!(canonical(vec![b, a]).unwrap(), vec![a, b]);
        assert!(a.to_string() < b.to_string(), "byte order is text order");
        assert_eq!(canonical(vec![a, b, a]), Err(DuplicateTicket(a)));
    }

    #[test]
    fn draws_of_any_size_give_min_n_k_winners() {
        let prizes = vec![("grand".to_owned(), 30), ("standard".to_owned(), 235)];
        for n in [0usize, 1, 2, 100, 265, 266, 1024, 5000] {
            let tickets = canonical((0..n).map(|_| Uuid::new_v4()).collect()).unwrap();
            let r = draw("t", 1, &tickets, &[], "", &prizes);
            assert_eq!(r.winners.len(), n.min(265), "n={n}");
            let distinct: std::collections::HashSet<_> =
                r.winners.iter().map(|w| w.ticket).collect();
            assert_eq!(distinct.len(), r.winners.len());
            assert_eq!(
                r.winners.iter().filter(|w| w.tier == "grand").count(),
                n.min(30)
            );
            if n == 0 {
                assert_eq!(r.entries_root, merkle::empty_root());
            }
        }
    }

    #[test]
    fn the_beacon_and_every_secret_change_the_seed() {
        let tickets = worked_example_tickets();
        let base = draw(
            "hengyang-2024",
            3,
            &tickets,
            &worked_example_witnesses(),
            "",
            &[],
        )
        .seed;
        assert_ne!(
            draw(
                "hengyang-2024",
                3,
                &tickets,
                &worked_example_witnesses(),
                "x",
                &[]
            )
            .seed,
            base
        );
        let mut w = worked_example_witnesses();
        w[0].1[0] ^= 1;
        assert_ne!(draw("hengyang-2024", 3, &tickets, &w, "", &[]).seed, base);
        assert_ne!(
            draw(
                "hengyang-2024",
                4,
                &tickets,
                &worked_example_witnesses(),
                "",
                &[]
            )
            .seed,
            base
        );
    }
}
