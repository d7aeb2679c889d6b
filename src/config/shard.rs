//! `[shard]`: this instance's share of the inventory when several split it (see
//! [`crate::domain::shard`]). `index` is 0-based like a StatefulSet ordinal; with
//! `index_from_hostname = true` it is read from the host name's last `-N` (pod `diemcau-2` →
//! 2), so one manifest serves every replica.

use super::toml_file::RawShard;
use super::{Validator, position};
use crate::domain::shard::{MAX_SHARDS, Shard};

impl Validator<'_> {
    /// `given` is `--shard I/N` (already checked): it replaces the file's index and count.
    pub(super) fn shard(&mut self, raw: &RawShard, given: Option<(u32, u32)>) -> Shard {
        if let Some((index, count)) = given {
            let replicas = self.integer(&raw.replicas, "shard.replicas", 1, 1, count);
            return Shard { index, count, replicas };
        }
        let count = self.integer(&raw.count, "shard.count", 1, 1, MAX_SHARDS);
        let replicas = self.integer(&raw.replicas, "shard.replicas", 1, 1, count.max(1));
        let from_hostname = raw.index_from_hostname.as_ref().is_some_and(|b| *b.get_ref());
        let index = match (&raw.index, from_hostname) {
            (Some(i), true) => {
                let (l, c) = position(self.text, i);
                self.problem_at(
                    l,
                    c,
                    "shard.index",
                    "is given together with shard.index_from_hostname = true",
                    "keep one of the two",
                );
                0
            }
            (Some(_), false) => self.integer(&raw.index, "shard.index", 0, 0, count - 1),
            (None, true) => match ordinal(&super::vantage::host_name().unwrap_or_default()) {
                Some(i) if i < count => i,
                found => {
                    let (l, c) = raw
                        .index_from_hostname
                        .as_ref()
                        .map_or((0, 0), |b| position(self.text, b));
                    let host = super::vantage::host_name().unwrap_or_default();
                    self.problem_at(
                        l,
                        c,
                        "shard.index_from_hostname",
                        &format!(
                            "the host name {host:?} {}",
                            match found {
                                Some(i) => format!("ends in -{i}, not below shard.count ({count})"),
                                None => "does not end in -N".to_string(),
                            }
                        ),
                        "run as a StatefulSet pod (name-0, name-1, …) or set shard.index",
                    );
                    0
                }
            },
            (None, false) if count > 1 => {
                self.problem_at(
                    0,
                    0,
                    "shard.index",
                    &format!("is missing while shard.count is {count}"),
                    "set shard.index (0-based) or shard.index_from_hostname = true",
                );
                0
            }
            (None, false) => 0,
        };
        Shard { index, count, replicas }
    }
}

/// The number after a host name's last `-`: a StatefulSet pod's ordinal.
fn ordinal(host: &str) -> Option<u32> {
    let (_, n) = host.rsplit_once('-')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::ordinal;

    #[test]
    fn a_pod_name_gives_its_ordinal() {
        assert_eq!(ordinal("diemcau-2"), Some(2));
        assert_eq!(ordinal("diemcau-vnpt-hanoi-10"), Some(10));
        assert_eq!(ordinal("diemcau"), None);
        assert_eq!(ordinal("diemcau-"), None);
        assert_eq!(ordinal("diemcau-x1"), None);
    }
}
