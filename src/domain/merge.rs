//! Merged truth across vantages: several instances (vantages, e.g. one inside each carrier)
//! probe the same endpoint, and each keeps its own history. At every moment an endpoint is
//! Down when a quorum of the vantages then watching it saw it Down; the moment is unknown only
//! when no vantage was watching. Down seen by fewer than the quorum is not the endpoint's
//! outage: the endpoint answered the others, so the fault lay on those vantages' own paths.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Labels;
use super::interval::{Interval, intersect_sets, normalize, subtract_sets};
use super::sla::EndpointHistory;

/// How many of the vantages watching an endpoint must see it Down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quorum {
    /// Every vantage watching it (the default: one vantage that still reaches it keeps it Up).
    #[default]
    All,
    /// At least `k` of them (all of them when fewer than `k` are watching).
    AtLeast(u32),
}

impl Quorum {
    /// The votes needed when `live` vantages watch.
    fn needed(self, live: usize) -> usize {
        match self {
            Quorum::All => live,
            Quorum::AtLeast(k) => live.min(k as usize),
        }
    }
}

/// Time one vantage alone (or a minority) saw an endpoint Down while the quorum reached it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VantageFault {
    pub endpoint: String,
    pub vantage: String,
    pub span: Interval,
}

/// The merged histories (one per endpoint, sorted by id) and the minority faults.
#[derive(Debug, Default)]
pub struct Merged {
    pub histories: Vec<EndpointHistory>,
    pub vantage_faults: Vec<VantageFault>,
}

/// Merges each vantage's histories (`(vantage, histories)`; a vantage named twice counts once:
/// its histories are united first, so a duplicated instance never doubles a vote).
pub fn merge(per_vantage: &[(String, Vec<EndpointHistory>)], quorum: Quorum) -> Merged {
    // endpoint → vantage → its histories (all the vantage's sources).
    let mut by_endpoint: BTreeMap<&str, BTreeMap<&str, Vec<&EndpointHistory>>> = BTreeMap::new();
    for (vantage, histories) in per_vantage {
        for h in histories {
            by_endpoint
                .entry(&h.id)
                .or_default()
                .entry(vantage)
                .or_default()
                .push(h);
        }
    }
    let mut merged = Merged::default();
    for (id, vantages) in by_endpoint {
        let views: Vec<(&str, View)> = vantages.iter().map(|(v, hs)| (*v, View::of(hs))).collect();
        let (down, faults) = vote(&views, quorum);
        for (vantage, spans) in faults {
            for span in spans {
                merged.vantage_faults.push(VantageFault {
                    endpoint: id.to_string(),
                    vantage: vantage.to_string(),
                    span,
                });
            }
        }
        merged.histories.push(combine(&vantages, &views, down));
    }
    merged
}

/// One vantage's view of one endpoint: when it watched it, and when it saw it Down.
struct View {
    watched: Vec<Interval>,
    down: Vec<Interval>,
}

impl View {
    fn of(histories: &[&EndpointHistory]) -> View {
        let exists = normalize(
            &histories
                .iter()
                .flat_map(|h| h.exists.iter().copied())
                .collect::<Vec<_>>(),
        );
        let monitored = normalize(
            &histories
                .iter()
                .flat_map(|h| h.monitored.iter().copied())
                .collect::<Vec<_>>(),
        );
        let watched = intersect_sets(&exists, &monitored);
        let down = normalize(
            &histories
                .iter()
                .flat_map(|h| h.down.iter().copied())
                .collect::<Vec<_>>(),
        );
        View {
            down: intersect_sets(&down, &watched),
            watched,
        }
    }
}

/// The merged Down set and, per vantage, the spans it saw Down without a quorum.
fn vote<'a>(views: &[(&'a str, View)], quorum: Quorum) -> (Vec<Interval>, Vec<(&'a str, Vec<Interval>)>) {
    let mut cuts: Vec<i64> = views
        .iter()
        .flat_map(|(_, v)| v.watched.iter().chain(&v.down))
        .flat_map(|i| [i.start, i.end])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut down = Vec::new();
    let mut faults: Vec<(&str, Vec<Interval>)> = views.iter().map(|(v, _)| (*v, Vec::new())).collect();
    // One cursor per set: pieces come in order, so each set is walked once.
    let mut at = vec![(0usize, 0usize); views.len()];
    let mut saw_down = Vec::with_capacity(views.len());
    for w in cuts.windows(2) {
        let piece = Interval::new(w[0], w[1]);
        let (mut live, mut votes) = (0, 0);
        saw_down.clear();
        for (i, (_, view)) in views.iter().enumerate() {
            // Every boundary is a cut, so a set covers the whole piece when it covers its start.
            if covers(&view.watched, &mut at[i].0, piece.start) {
                live += 1;
            }
            if covers(&view.down, &mut at[i].1, piece.start) {
                votes += 1;
                saw_down.push(i);
            }
        }
        if votes == 0 {
            continue;
        }
        if votes >= quorum.needed(live) {
            down.push(piece);
        } else {
            for &i in &saw_down {
                faults[i].1.push(piece);
            }
        }
    }
    let faults = faults.into_iter().map(|(v, spans)| (v, normalize(&spans))).collect();
    (normalize(&down), faults)
}

/// Whether the normalized `set` contains `t`, moving `cursor` forward (`t` never decreases).
fn covers(set: &[Interval], cursor: &mut usize, t: i64) -> bool {
    while *cursor < set.len() && set[*cursor].end <= t {
        *cursor += 1;
    }
    set.get(*cursor).is_some_and(|i| i.start <= t)
}

/// The merged history: labels of the first vantage, everything watched by any vantage, Down
/// where the quorum agreed (placed at the site or on the path when any vantage placed it so).
fn combine(
    vantages: &BTreeMap<&str, Vec<&EndpointHistory>>,
    views: &[(&str, View)],
    down: Vec<Interval>,
) -> EndpointHistory {
    let all: Vec<&EndpointHistory> = vantages.values().flatten().copied().collect();
    let union = |pick: fn(&EndpointHistory) -> &Vec<Interval>| -> Vec<Interval> {
        normalize(&all.iter().flat_map(|h| pick(h).iter().copied()).collect::<Vec<_>>())
    };
    let watched: Vec<Interval> = views.iter().flat_map(|(_, v)| v.watched.iter().copied()).collect();
    let site = intersect_sets(&down, &union(|h| &h.down_at_site));
    let path = subtract_sets(&intersect_sets(&down, &union(|h| &h.down_on_path)), &site);
    let mut brief: Vec<i64> = all.iter().flat_map(|h| h.brief.iter().copied()).collect();
    brief.sort_unstable();
    brief.dedup();
    EndpointHistory {
        id: all[0].id.clone(),
        labels: all[0].labels.clone(),
        exists: union(|h| &h.exists),
        monitored: normalize(&watched),
        down,
        down_at_site: site,
        down_on_path: path,
        maintenance: union(|h| &h.maintenance),
        brief,
    }
}

/// The merged verdict at one moment (the live view of every vantage).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MergedAt {
    /// The moment (unix seconds).
    pub at: i64,
    /// Endpoints Down by quorum then, sorted by id.
    pub down: Vec<DownAt>,
    /// Endpoints a minority of vantages saw Down then (their own paths' fault), by endpoint.
    pub vantage_faults: Vec<FaultAt>,
}

/// An endpoint Down by quorum since `since` (unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DownAt {
    pub id: String,
    #[serde(flatten)]
    pub labels: Labels,
    pub since: i64,
}

/// An endpoint `vantage` alone (or with too few others) has seen Down since `since`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultAt {
    pub id: String,
    #[serde(flatten)]
    pub labels: Labels,
    pub vantage: String,
    pub since: i64,
}

/// One instance's live view of one endpoint it watches: since when it sees it Down (`None`:
/// not Down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveVote<'a> {
    pub vantage: &'a str,
    pub down_since: Option<i64>,
}

/// The verdict now on one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Now {
    /// Not Down for the quorum, and no vantage sees it Down.
    Up,
    /// Down by quorum since the moment the quorum was reached.
    Down { since: i64 },
    /// Down for too few vantages: each of them, and since when (their own paths' fault).
    VantageFaults(Vec<(String, i64)>),
}

/// Judges one endpoint from the votes of the live instances watching it, as [`merge`] does
/// over time: a vantage with several instances counts once, Down when any of them sees it Down
/// (since the earliest).
pub fn judge_now(votes: &[LiveVote<'_>], quorum: Quorum) -> Now {
    let mut by_vantage: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    for v in votes {
        let slot = by_vantage.entry(v.vantage).or_insert(None);
        *slot = match (*slot, v.down_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let mut starts: Vec<i64> = by_vantage.values().flatten().copied().collect();
    if starts.is_empty() {
        return Now::Up;
    }
    starts.sort_unstable();
    let needed = quorum.needed(by_vantage.len()).max(1);
    if starts.len() >= needed {
        return Now::Down {
            since: starts[needed - 1],
        };
    }
    Now::VantageFaults(
        by_vantage
            .into_iter()
            .filter_map(|(v, s)| s.map(|s| (v.to_string(), s)))
            .collect(),
    )
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
