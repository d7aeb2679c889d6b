//! O(1) endpoint lookup by destination address.
//!
//! Emulated ranges are dense (consecutive addresses in 198.18.0.0/15, 2001:2::/48), so a
//! direct table indexed by `addr - base` is both smaller and faster than hashing. When a
//! family's addresses are too sparse for a table we fall back to a HashMap.

use std::collections::HashMap;
use std::net::IpAddr;

/// Table entry meaning "no endpoint here".
const NONE: u32 = u32::MAX;
/// Largest direct table we build (16 MiB of u32) before falling back to hashing.
const MAX_DIRECT_SPAN: u128 = 1 << 22;

#[derive(Debug)]
enum Part {
    Empty,
    Direct { base: u128, table: Vec<u32> },
    Map(HashMap<u128, u32>),
}

impl Part {
    fn build(entries: &[(u128, u32)]) -> Part {
        let (Some(min), Some(max)) = (entries.iter().map(|e| e.0).min(), entries.iter().map(|e| e.0).max()) else {
            return Part::Empty;
        };
        let span = max - min + 1;
        if span <= MAX_DIRECT_SPAN && span <= (entries.len() as u128) * 8 + 65_536 {
            let mut table = vec![NONE; span as usize];
            for &(a, i) in entries {
                table[(a - min) as usize] = i;
            }
            Part::Direct { base: min, table }
        } else {
            Part::Map(entries.iter().copied().collect())
        }
    }

    #[inline]
    fn get(&self, a: u128) -> Option<u32> {
        match self {
            Part::Empty => None,
            Part::Direct { base, table } => {
                let off = a.checked_sub(*base)?;
                let v = *table.get(usize::try_from(off).ok()?)?;
                (v != NONE).then_some(v)
            }
            Part::Map(m) => m.get(&a).copied(),
        }
    }
}

/// Maps an address to the endpoint's index in the endpoint vector.
#[derive(Debug)]
pub(crate) struct AddrIndex {
    v4: Part,
    v6: Part,
}

impl AddrIndex {
    pub(crate) fn new<'a>(addrs: impl Iterator<Item = &'a IpAddr>) -> AddrIndex {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (i, a) in addrs.enumerate() {
            match a {
                IpAddr::V4(a) => v4.push((u128::from(u32::from(*a)), i as u32)),
                IpAddr::V6(a) => v6.push((u128::from(*a), i as u32)),
            }
        }
        AddrIndex {
            v4: Part::build(&v4),
            v6: Part::build(&v6),
        }
    }

    #[inline]
    pub(crate) fn get(&self, a: IpAddr) -> Option<u32> {
        match a {
            IpAddr::V4(a) => self.v4.get(u128::from(u32::from(a))),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse() {
        let addrs: Vec<IpAddr> = vec![
            "198.18.0.5".parse().expect("ip"),
            "198.18.1.0".parse().expect("ip"),
            "2001:2::1".parse().expect("ip"),
            "2001:db8::1".parse().expect("ip"),
        ];
        let idx = AddrIndex::new(addrs.iter());
        assert!(matches!(idx.v4, Part::Direct { .. }));
        assert!(matches!(idx.v6, Part::Map(_)));
        for (i, a) in addrs.iter().enumerate() {
            assert_eq!(idx.get(*a), Some(i as u32));
        }
        assert_eq!(idx.get("198.18.0.6".parse().expect("ip")), None);
        assert_eq!(idx.get("10.0.0.1".parse().expect("ip")), None);
        assert_eq!(idx.get("255.255.255.255".parse().expect("ip")), None);
        assert_eq!(idx.get("2001:2::2".parse().expect("ip")), None);
    }
}
