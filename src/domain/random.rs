//! Uniform choices from a stream of random 64-bit words, by the draw contract's own rules
//! (DESIGN §4): never a library's range or shuffle helper, whose algorithm may change between
//! versions. The quiz uses the same functions with a generator seeded from the OS.

use rand_core::Rng;

/// A uniform integer in `[0, m)`: draw `x = next_u64()`, reject while `x ≥ floor(2^64 / m)·m`,
/// return `x mod m`. Panics if `m` is 0.
pub fn uniform<R: Rng + ?Sized>(rng: &mut R, m: u64) -> u64 {
    assert!(m > 0, "uniform over an empty range");
    let limit = ((1u128 << 64) / u128::from(m)) * u128::from(m);
    loop {
        let x = rng.next_u64();
        if u128::from(x) < limit {
            return x % m;
        }
    }
}

/// Puts `k` uniformly chosen elements, in uniformly random order, at the front of `items`:
/// for i in 0..k, swap `items[i]` with `items[i + uniform(n − i)]`.
pub fn partial_shuffle<T, R: Rng + ?Sized>(rng: &mut R, items: &mut [T], k: usize) {
    let n = items.len();
    for i in 0..k.min(n) {
        let j = i + uniform(rng, (n - i) as u64) as usize;
        items.swap(i, j);
    }
}

/// A uniformly random permutation of `items`.
pub fn shuffle<T, R: Rng + ?Sized>(rng: &mut R, items: &mut [T]) {
    let n = items.len();
    partial_shuffle(rng, items, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Replays fixed words, to see exactly which ones are rejected.
    struct Words(Vec<u64>);
    impl rand_core::TryRng for Words {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.0.remove(0) as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(self.0.remove(0))
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
            unreachable!()
        }
    }

    #[test]
    fn chacha20_with_the_zero_key_gives_the_published_words() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        assert_eq!(rng.next_u64(), 0x903df1a0ade0b876);
        assert_eq!(rng.next_u64(), 0x28bd8653e56a5d40);
        assert_eq!(rng.next_u64(), 0x1aed8da0b819d2bd);
        assert_eq!(rng.next_u64(), 0xc70d778bccef36a8);
    }

    #[test]
    fn words_at_or_above_the_last_whole_multiple_are_rejected() {
        // m = 3: floor(2^64 / 3)·3 = 2^64 − 1, so only u64::MAX is rejected.
        let mut w = Words(vec![u64::MAX, u64::MAX - 1]);
        assert_eq!(uniform(&mut w, 3), (u64::MAX - 1) % 3);
        // m = 2^63 + 1: the limit is 2^63 + 1; 2^63 + 1 itself is rejected, 7 accepted.
        let m = (1u64 << 63) + 1;
        let mut w = Words(vec![m, 7]);
        assert_eq!(uniform(&mut w, m), 7);
        // A power of two never rejects.
        let mut w = Words(vec![u64::MAX]);
        assert_eq!(uniform(&mut w, 1 << 10), 1023);
        let mut w = Words(vec![12345]);
        assert_eq!(uniform(&mut w, 1), 0);
    }

    #[test]
    fn shuffles_are_permutations_and_all_orders_occur() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..600 {
            let mut v = [0, 1, 2];
            shuffle(&mut rng, &mut v);
            let mut sorted = v;
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2]);
            seen.insert(v);
        }
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn a_partial_shuffle_chooses_k_distinct_items() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let mut v: Vec<u32> = (0..45).collect();
        partial_shuffle(&mut rng, &mut v, 10);
        let chosen: std::collections::HashSet<_> = v[..10].iter().collect();
        assert_eq!(chosen.len(), 10);
        let mut empty: [u8; 0] = [];
        partial_shuffle(&mut rng, &mut empty, 3);
    }
}
