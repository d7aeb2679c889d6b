//! Half-open intervals of unix seconds, `[start, end)`, and the set operations the SLA
//! arithmetic needs (sets are sorted, merged lists of intervals).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A half-open span of unix seconds, `[start, end)`. An interval whose `end <= start` is empty:
/// such input (a clock that stepped back, a hand-edited row) is ignored rather than rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Interval {
    pub start: i64,
    pub end: i64,
}

impl Interval {
    pub const fn new(start: i64, end: i64) -> Interval {
        Interval { start, end }
    }

    /// Length in seconds; 0 for an empty (or inverted) interval.
    pub fn len(&self) -> i64 {
        self.end.saturating_sub(self.start).max(0)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// The common part, if any.
    pub fn intersect(&self, other: &Interval) -> Option<Interval> {
        let i = Interval::new(self.start.max(other.start), self.end.min(other.end));
        (!i.is_empty()).then_some(i)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |t: i64| match jiff::Timestamp::from_second(t) {
            Ok(ts) => ts.to_string(),
            Err(_) => t.to_string(),
        };
        write!(f, "[{}, {})", show(self.start), show(self.end))
    }
}

/// Sorts, drops empty intervals and merges overlapping or touching ones. Touching outages
/// (`[a, b)` then `[b, c)`) become one outage: the endpoint never answered in between.
pub fn normalize(intervals: &[Interval]) -> Vec<Interval> {
    let mut v: Vec<Interval> = intervals.iter().copied().filter(|i| !i.is_empty()).collect();
    v.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(v.len());
    for i in v {
        match out.last_mut() {
            Some(last) if i.start <= last.end => last.end = last.end.max(i.end),
            _ => out.push(i),
        }
    }
    out
}

/// `a ∩ b` for two normalized sets.
pub fn intersect_sets(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if let Some(x) = a[i].intersect(&b[j]) {
            out.push(x);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// `a − b` for two normalized sets.
pub fn subtract_sets(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut j = 0;
    for &x in a {
        let mut cur = x.start;
        while j < b.len() && b[j].end <= cur {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].start < x.end {
            if b[k].start > cur {
                out.push(Interval::new(cur, b[k].start));
            }
            cur = cur.max(b[k].end);
            k += 1;
        }
        if cur < x.end {
            out.push(Interval::new(cur, x.end));
        }
    }
    out
}

/// Total length in seconds of a normalized set.
pub fn total(set: &[Interval]) -> i64 {
    set.iter().map(Interval::len).sum()
}

/// Seconds of `x` covered by the normalized set `set`.
pub(crate) fn overlap_with(x: Interval, set: &[Interval]) -> i64 {
    let first = set.partition_point(|s| s.end <= x.start);
    set[first..]
        .iter()
        .take_while(|s| s.start < x.end)
        .filter_map(|s| s.intersect(&x))
        .map(|i| i.len())
        .sum()
}
