//! Endpoint histories for the SLA arithmetic, built from one ledger's rows: the same code for
//! the local SQLite ledger and for each source of the shared PostgreSQL one.

use std::collections::HashMap;

use super::query::{InterruptionRow, OutageRow, RunRow};
use crate::domain::Labels;
use crate::domain::sla::{EndpointHistory, Interval};

/// One stay of an endpoint in the inventory, with its current labels.
pub(crate) struct PresenceRow {
    pub endpoint: String,
    pub from_ms: i64,
    pub to_ms: Option<i64>,
    pub province: String,
    pub district: String,
    pub commune: String,
    pub carrier: String,
    pub address: String,
}

/// What one ledger holds about a period.
pub(crate) struct HistoryRows {
    /// Every run (a run may have started before the period).
    pub runs: Vec<RunRow>,
    /// Pauses meeting the period: from, to (ms) and family (`ipv4`, `ipv6`, or '' for all).
    pub pauses: Vec<(i64, i64, String)>,
    pub presence: Vec<PresenceRow>,
    pub interruptions: Vec<InterruptionRow>,
    pub outages: Vec<OutageRow>,
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// One history per endpoint present in the period, sorted by id (see
/// [`super::StoreReader::histories`]); `run_end` says when each run stopped watching.
pub(crate) fn build(
    rows: HistoryRows,
    period: Interval,
    now_ms: i64,
    run_end: impl Fn(&RunRow) -> i64,
) -> Vec<EndpointHistory> {
    let clip = |s: i64, e: i64| Interval::new(secs(s), secs(e)).intersect(&period);
    let mut ends: HashMap<i64, i64> = HashMap::new();
    let mut monitored = Vec::new();
    for r in &rows.runs {
        let end = run_end(r);
        ends.insert(r.run_id, end);
        monitored.extend(clip(r.started_ms, end));
    }
    // Pauses of every endpoint, and those of one address family (its uplink was cut).
    let (mut paused, mut paused_family): (Vec<Interval>, [Vec<Interval>; 2]) = Default::default();
    for (from, to, family) in &rows.pauses {
        // Rounded outwards: a second the monitor partly missed is not claimed as seen.
        let span = Interval::new(secs(*from), secs(to + 999)).intersect(&period);
        match family.as_str() {
            "ipv4" => paused_family[0].extend(span),
            "ipv6" => paused_family[1].extend(span),
            _ => paused.extend(span),
        }
    }
    use crate::domain::sla::{normalize, subtract_sets};
    let monitored = subtract_sets(&normalize(&monitored), &normalize(&paused));
    // Seen time of an IPv4 endpoint, an IPv6 one, and one written as a host name (either
    // family: both families' pauses apply, unknown time rather than a false charge).
    let both: Vec<Interval> = paused_family.concat();
    let monitored_by = [
        subtract_sets(&monitored, &normalize(&paused_family[0])),
        subtract_sets(&monitored, &normalize(&paused_family[1])),
        subtract_sets(&monitored, &normalize(&both)),
    ];

    let mut by_id: HashMap<String, EndpointHistory> = HashMap::new();
    for p in rows.presence {
        let stay = clip(p.from_ms, p.to_ms.unwrap_or(now_ms.max(p.from_ms)));
        let h = by_id.entry(p.endpoint.clone()).or_insert_with(|| EndpointHistory {
            id: p.endpoint,
            labels: Labels {
                province: p.province.into(),
                district: Some(p.district).filter(|d| !d.is_empty()).map(Into::into),
                commune: p.commune.into(),
                carrier: p.carrier.into(),
            },
            monitored: monitored_by[match p.address.parse::<std::net::IpAddr>() {
                Ok(ip) => crate::domain::blindness::family_index(&ip),
                Err(_) => 2,
            }]
            .clone(),
            ..EndpointHistory::default()
        });
        h.exists.extend(stay);
    }
    for b in rows.interruptions {
        if let Some(h) = by_id.get_mut(&b.endpoint) {
            h.brief.push(secs(b.start_ms));
        }
    }
    for o in rows.outages {
        let Some(h) = by_id.get_mut(&o.endpoint) else {
            continue;
        };
        let end = match o.end_ms {
            Some(e) => e,
            None => ends.get(&o.run_id).copied().unwrap_or(now_ms).max(o.start_ms),
        };
        let span = clip(o.start_ms, end);
        h.down.extend(span);
        match crate::domain::sla_cause::place_of(&o.domain) {
            0 => h.down_at_site.extend(span),
            1 => h.down_on_path.extend(span),
            _ => {}
        }
    }
    let mut out: Vec<EndpointHistory> = by_id.into_values().collect();
    out.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    out
}
