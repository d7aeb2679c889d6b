//! Which endpoints one instance probes when several share an inventory: rendezvous (highest
//! random weight) hashing of endpoint ids. Every instance loads the whole inventory and keeps
//! the endpoints whose top-`replicas` shards include its own, so with `count` shards each
//! endpoint is probed by `replicas` instances, and growing from N to N+1 shards moves only the
//! endpoints the new shard wins: about `replicas / (N + 1)` of them.

/// Most shards one inventory can be split into.
pub const MAX_SHARDS: u32 = 1024;

/// Reads `--shard I/N`: shard `I` (0-based) of `N`.
pub fn parse_share(text: &str) -> Result<(u32, u32), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not I/N: write e.g. 0/4 for the first of four shards"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("the shard count {n:?} is not a whole number"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("the shard index {i:?} is not a whole number"))?;
    if !(1..=MAX_SHARDS).contains(&n) {
        return Err(format!("the shard count {n} is not between 1 and {MAX_SHARDS}"));
    }
    if i >= n {
        return Err(format!(
            "the shard index {i} is not below the count {n} (indexes start at 0)"
        ));
    }
    Ok((i, n))
}

/// This instance's share: shard `index` of `count` (0-based, like a StatefulSet ordinal), each
/// endpoint probed by `replicas` shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
    pub replicas: u32,
}

impl Default for Shard {
    /// One instance probing everything.
    fn default() -> Self {
        Shard {
            index: 0,
            count: 1,
            replicas: 1,
        }
    }
}

impl Shard {
    /// Whether this shard probes endpoint `id`.
    pub fn owns(&self, id: &str) -> bool {
        if self.replicas >= self.count {
            return true;
        }
        let mine = weight(id, self.index);
        // Owned when fewer than `replicas` shards weigh more (ties go to the lower index).
        let heavier = (0..self.count)
            .filter(|&s| s != self.index)
            .filter(|&s| {
                let w = weight(id, s);
                w > mine || (w == mine && s < self.index)
            })
            .count();
        heavier < self.replicas as usize
    }

    /// Whether this is the whole inventory (no sharding).
    pub fn is_whole(&self) -> bool {
        self.replicas >= self.count
    }
}

/// The weight of shard `s` for endpoint `id`: the first 8 bytes of SHA-256(id, 0xff, s), a
/// hash that never changes between versions or machines (every instance must agree).
fn weight(id: &str, s: u32) -> u64 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(id.as_bytes());
    ctx.update(&[0xff]);
    ctx.update(&s.to_be_bytes());
    let digest = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("VN{:02}-{i:05}", i % 34)).collect()
    }

    fn owners(id: &str, count: u32, replicas: u32) -> Vec<u32> {
        (0..count)
            .filter(|&index| Shard { index, count, replicas }.owns(id))
            .collect()
    }

    #[test]
    fn every_endpoint_has_exactly_replicas_owners_and_shares_are_even() {
        let ids = ids(10_000);
        for (count, replicas) in [(1, 1), (4, 1), (4, 2), (3, 3), (2, 5)] {
            let mut per_shard = vec![0usize; count as usize];
            for id in &ids {
                let o = owners(id, count, replicas);
                assert_eq!(o.len(), replicas.min(count) as usize, "{id} in {count}×{replicas}");
                for s in o {
                    per_shard[s as usize] += 1;
                }
            }
            let expected = 10_000.0 * f64::from(replicas.min(count)) / f64::from(count);
            for n in per_shard {
                // Binomial spread: 4σ of 10,000 × 1/4 is about 170.
                assert!(
                    (n as f64 - expected).abs() < 200.0,
                    "{n} against {expected} in {count}×{replicas}"
                );
            }
        }
    }

    #[test]
    fn growing_from_four_to_five_shards_moves_about_a_fifth() {
        let ids = ids(10_000);
        for replicas in [1, 2] {
            let moved = ids
                .iter()
                .filter(|id| {
                    let before = owners(id, 4, replicas);
                    let after = owners(id, 5, replicas);
                    // An endpoint moved when a shard that probed it no longer does.
                    before.iter().any(|s| !after.contains(s))
                })
                .count() as f64
                / ids.len() as f64;
            let expected = f64::from(replicas) / 5.0;
            assert!(
                (moved - expected).abs() < 0.02,
                "{moved} moved, expected about {expected} (replicas {replicas})"
            );
            // And no endpoint moves between old shards: only to the new one.
            for id in &ids {
                let (before, after) = (owners(id, 4, replicas), owners(id, 5, replicas));
                assert!(
                    after.iter().all(|s| before.contains(s) || *s == 4),
                    "{id}: {before:?} → {after:?}"
                );
            }
        }
    }

    #[test]
    fn a_share_is_read_as_index_over_count() {
        assert_eq!(parse_share("0/4"), Ok((0, 4)));
        assert_eq!(parse_share("3/4"), Ok((3, 4)));
        assert_eq!(parse_share("0/1"), Ok((0, 1)));
        for (bad, says) in [
            ("4/4", "not below the count 4"),
            ("1/0", "not between 1 and 1024"),
            ("0/1025", "not between 1 and 1024"),
            ("2", "is not I/N"),
            ("a/4", "index \"a\" is not a whole number"),
            ("-1/4", "is not a whole number"),
        ] {
            let e = parse_share(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_weights_never_change() {
        // Pinned: every instance, every version must agree on who probes what.
        assert_eq!(owners("VN01-00001", 4, 1), owners("VN01-00001", 4, 1));
        let pinned: Vec<Vec<u32>> = ["VN01-00001", "VN33-03321", "Xã Ý Yên"]
            .iter()
            .map(|id| owners(id, 4, 1))
            .collect();
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [[u32; 1]; 3] = [[0], [1], [0]];
}
