//! Choosing the winners from the seed (DESIGN §4, a contract): ChaCha20 keyed by the seed, the
//! spec's own rejection sampling, a partial Fisher–Yates over the tickets in canonical order.

use super::merkle::Hash;
use crate::domain::random::uniform;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::HashMap;

/// Indices into the canonical ticket array of the `min(n, k)` winners, in rank order.
///
/// The swaps of `for i in 0..k: j = i + uniform(n − i); swap a[i], a[j]` are replayed on a sparse
/// map instead of an array of `n`, so a million tickets cost no more memory than a hundred.
pub fn winners(n: usize, k: usize, seed: &Hash) -> Vec<usize> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let k = k.min(n);
    let mut moved: HashMap<usize, usize> = HashMap::with_capacity(2 * k);
    let mut ranks = Vec::with_capacity(k);
    for i in 0..k {
        let j = i + uniform(&mut rng, (n - i) as u64) as usize;
        let at_i = *moved.get(&i).unwrap_or(&i);
        let at_j = *moved.get(&j).unwrap_or(&j);
        moved.insert(j, at_i);
        ranks.push(at_j);
    }
    ranks
}

/// The tier of each rank: the first `count` ranks go to the first tier, and so on.
pub fn tiers_by_rank(prizes: &[(String, u32)], winners: usize) -> Vec<String> {
    prizes
        .iter()
        .flat_map(|(tier, count)| std::iter::repeat_n(tier.clone(), *count as usize))
        .take(winners)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::random::partial_shuffle;

    #[test]
    fn the_sparse_shuffle_equals_the_array_shuffle() {
        for (n, k) in [
            (0, 5),
            (1, 1),
            (1, 3),
            (5, 5),
            (7, 3),
            (64, 64),
            (100, 30),
            (1000, 265),
        ] {
            let seed = [n as u8; 32];
            let mut a: Vec<usize> = (0..n).collect();
            partial_shuffle(&mut ChaCha20Rng::from_seed(seed), &mut a, k);
            assert_eq!(winners(n, k, &seed), a[..k.min(n)].to_vec(), "n={n} k={k}");
        }
    }

    #[test]
    fn winners_are_distinct_and_never_more_than_the_tickets() {
        assert!(winners(0, 265, &[1; 32]).is_empty());
        assert_eq!(winners(1, 265, &[1; 32]), vec![0]);
        let w = winners(3, 265, &[2; 32]);
        let mut sorted = w.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            vec![0, 1, 2],
            "n < k: everyone wins, in a random order"
        );
        let w = winners(1 << 16, 265, &[3; 32]);
        assert_eq!(w.len(), 265);
        assert_eq!(
            w.iter().collect::<std::collections::HashSet<_>>().len(),
            265
        );
        assert!(w.iter().all(|&i| i < 1 << 16));
    }

    #[test]
    fn tiers_follow_the_draw_order() {
        let prizes = vec![("grand".to_owned(), 1), ("standard".to_owned(), 2)];
        assert_eq!(tiers_by_rank(&prizes, 3), ["grand", "standard", "standard"]);
        assert_eq!(tiers_by_rank(&prizes, 2), ["grand", "standard"]);
        assert_eq!(tiers_by_rank(&prizes, 0), Vec::<String>::new());
    }
}
