//! RFC 6962 Merkle tree: leaf = SHA-256(0x00 ‖ d), node = SHA-256(0x01 ‖ left ‖ right), split at
//! the largest power of two below n; the empty tree hashes to SHA-256 of the empty string.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH over leaf hashes.
pub fn root_of_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(
                &root_of_leaf_hashes(&leaves[..k]),
                &root_of_leaf_hashes(&leaves[k..]),
            )
        }
    }
}

/// MTH over the leaves' data.
pub fn root<D: AsRef<[u8]>>(leaves: &[D]) -> Hash {
    let hashes: Vec<Hash> = leaves.iter().map(|d| leaf_hash(d.as_ref())).collect();
    root_of_leaf_hashes(&hashes)
}

/// PATH(m, D[n]): the audit path of leaf `m`, nearest sibling first.
pub fn audit_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    assert!(m < n, "leaf {m} outside a tree of {n}");
    if n == 1 {
        return Vec::new();
    }
    let k = split(n);
    let (mut path, sibling) = if m < k {
        (
            audit_path(m, &leaves[..k]),
            root_of_leaf_hashes(&leaves[k..]),
        )
    } else {
        (
            audit_path(m - k, &leaves[k..]),
            root_of_leaf_hashes(&leaves[..k]),
        )
    };
    path.push(sibling);
    path
}

/// Checks an audit path (RFC 9162, 2.1.3.2).
pub fn verify_path(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// A Merkle tree kept in memory with the hash of every complete, aligned block of 2^k leaves, so
/// that a root or an audit path costs O(log² n) hashes instead of O(n): for serving proofs of a
/// frozen round many times.
#[derive(Debug, Clone)]
pub struct Tree {
    /// `levels[k][i]` = MTH of leaves `i·2^k .. (i+1)·2^k`; `levels[0]` are the leaf hashes.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("a level");
            let next = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    pub fn size(&self) -> usize {
        self.levels[0].len()
    }

    /// MTH of leaves `a..b`.
    fn mth(&self, a: usize, b: usize) -> Hash {
        let n = b - a;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && a.is_multiple_of(n) {
            let k = n.trailing_zeros() as usize;
            return self.levels[k][a >> k];
        }
        let k = split(n);
        node_hash(&self.mth(a, a + k), &self.mth(a + k, b))
    }

    pub fn root(&self) -> Hash {
        self.mth(0, self.size())
    }

    /// PATH(m, D[n]), nearest sibling first.
    pub fn audit_path(&self, m: usize) -> Vec<Hash> {
        assert!(
            m < self.size(),
            "leaf {m} outside a tree of {}",
            self.size()
        );
        let mut path = Vec::new();
        self.path(m, 0, self.size(), &mut path);
        path
    }

    fn path(&self, m: usize, a: usize, b: usize, out: &mut Vec<Hash>) {
        let n = b - a;
        if n == 1 {
            return;
        }
        let k = split(n);
        if m < a + k {
            self.path(m, a, a + k, out);
            out.push(self.mth(a + k, b));
        } else {
            self.path(m, a + k, b, out);
            out.push(self.mth(a, a + k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> String {
        hex::encode(hex::decode(s).unwrap())
    }

    /// The leaves of RFC 6962's reference tests (certificate-transparency and transparency-dev).
    fn reference_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|x| hex::decode(x).unwrap())
        .collect()
    }

    #[test]
    fn roots_match_the_published_reference_values() {
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = reference_leaves();
        for (n, expected) in roots.iter().enumerate() {
            assert_eq!(
                hex::encode(root(&leaves[..=n])),
                h(expected),
                "tree of {}",
                n + 1
            );
        }
        assert_eq!(
            hex::encode(root::<&[u8]>(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn every_audit_path_verifies_and_a_wrong_one_does_not() {
        for n in 1..=33usize {
            let leaves: Vec<Hash> = (0..n as u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let r = root_of_leaf_hashes(&leaves);
            for m in 0..n {
                let path = audit_path(m, &leaves);
                assert!(
                    verify_path(&leaves[m], m as u64, n as u64, &path, &r),
                    "leaf {m} of {n}"
                );
                if n > 1 {
                    let other = (m + 1) % n;
                    assert!(!verify_path(&leaves[m], other as u64, n as u64, &path, &r));
                    assert!(!verify_path(&leaves[other], m as u64, n as u64, &path, &r));
                }
                let mut wrong_root = r;
                wrong_root[0] ^= 1;
                assert!(!verify_path(
                    &leaves[m],
                    m as u64,
                    n as u64,
                    &path,
                    &wrong_root
                ));
                assert!(
                    !verify_path(&leaves[m], n as u64, n as u64, &path, &r),
                    "index past the end"
                );
            }
        }
    }

    #[test]
    fn the_kept_tree_gives_the_same_roots_and_paths() {
        for n in 0..=70usize {
            let leaves: Vec<Hash> = (0..n as u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let tree = Tree::new(leaves.clone());
            assert_eq!(tree.root(), root_of_leaf_hashes(&leaves), "root of {n}");
            for m in 0..n {
                assert_eq!(
                    tree.audit_path(m),
                    audit_path(m, &leaves),
                    "path of {m} in {n}"
                );
            }
        }
    }

    #[test]
    fn power_of_two_trees_are_perfectly_balanced() {
        let leaves: Vec<Hash> = (0..8u8).map(|i| leaf_hash(&[i])).collect();
        let left = node_hash(
            &node_hash(&leaves[0], &leaves[1]),
            &node_hash(&leaves[2], &leaves[3]),
        );
        let right = node_hash(
            &node_hash(&leaves[4], &leaves[5]),
            &node_hash(&leaves[6], &leaves[7]),
        );
        assert_eq!(root_of_leaf_hashes(&leaves), node_hash(&left, &right));
        assert_eq!(audit_path(0, &leaves).len(), 3);
    }
}
