//! Where a fault is, from the path to an endpoint: its baseline (traced while it answered) and
//! a trace taken when it fell silent. Pure logic; the TTL-limited requests that produce the
//! traces belong to the probe engine.
//!
//! - `endpoint`: the trace still reaches the last router before the endpoint (the commune's
//!   site: power, equipment, LAN);
//! - `path`: it stops at an intermediate router; the next router of the baseline is the
//!   failing hop;
//! - `monitor`: the hops every path shares (the monitor's gateway and uplink) are silent;
//! - `unknown`: nothing to compare (no baseline, or nothing shared and nothing answered).
//!
//! A router that never answers (rate limiting, "* * *") is no break when a later hop answers:
//! a trace is judged by the furthest hop that answered.

use std::net::IpAddr;

/// What one trace towards an endpoint saw: `hops[t - 1]` answered the request sent with TTL
/// `t` (`None`: nothing came back), and whether the endpoint itself answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub hops: Vec<Option<IpAddr>>,
    pub reached: bool,
}

impl Trace {
    /// The address of the furthest hop that answered.
    pub fn last_hop(&self) -> Option<IpAddr> {
        self.furthest().map(|(_, a)| a)
    }

    /// The hops as the ledger keeps them: `10.0.0.1 * 10.1.0.1` (`*`: nothing answered).
    pub fn hops_text(&self) -> String {
        let words: Vec<String> = self
            .hops
            .iter()
            .map(|h| h.map_or_else(|| "*".to_string(), |a| a.to_string()))
            .collect();
        words.join(" ")
    }

    /// A baseline (a trace that reached its endpoint) from [`Trace::hops_text`]; `None` when a
    /// word is neither `*` nor an address, or there are more hops than any trace has.
    pub fn baseline_from_text(text: &str) -> Option<Trace> {
        let hops = text
            .split_ascii_whitespace()
            .map(|w| if w == "*" { Some(None) } else { w.parse().ok().map(Some) })
            .collect::<Option<Vec<Option<IpAddr>>>>()?;
        (hops.len() <= 64).then_some(Trace { hops, reached: true })
    }

    /// The furthest hop that answered: its index and address.
    fn furthest(&self) -> Option<(usize, IpAddr)> {
        self.hops.iter().enumerate().rev().find_map(|(i, h)| h.map(|a| (i, a)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultDomain {
    Endpoint,
    Path,
    Monitor,
    Unknown,
}

impl FaultDomain {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultDomain::Endpoint => "endpoint",
            FaultDomain::Path => "path",
            FaultDomain::Monitor => "monitor",
            FaultDomain::Unknown => "unknown",
        }
    }
}

/// Where the fault of one silent endpoint lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    pub domain: FaultDomain,
    /// The furthest hop that still answered.
    pub last_hop: Option<IpAddr>,
    /// The baseline's next answering hop after `last_hop`: the element that failed, for a
    /// `path` (or `monitor`) fault; `None` when the route changed or it is the endpoint's site.
    pub failing_hop: Option<IpAddr>,
}

/// How many leading hops every baseline shares: the monitor's own gateway and uplink. A hop
/// counts as shared when every baseline that got an answer there got it from the same router
/// and at least one did (routers rate-limit their errors: one silent answer is no other
/// route); it stops at the shortest baseline. Zero with fewer than two baselines (one path
/// says nothing about what is shared).
pub fn shared_prefix<'a>(baselines: impl IntoIterator<Item = &'a Trace>) -> usize {
    let all: Vec<&Trace> = baselines.into_iter().collect();
    if all.len() < 2 {
        return 0;
    }
    let shortest = all.iter().map(|b| b.hops.len()).min().unwrap_or(0);
    (0..shortest)
        .take_while(|&i| {
            let mut answered = all.iter().filter_map(|b| b.hops[i]);
            answered.next().is_some_and(|first| answered.all(|a| a == first))
        })
        .count()
}

/// Classifies a trace taken when the endpoint fell silent against its baseline; `shared` is
/// [`shared_prefix`] over every baseline. `None` when the trace reached the endpoint: there is
/// no fault to place (a lost round, or a route that changed: see [`route_changed`]).
pub fn classify(baseline: &Trace, now: &Trace, shared: usize) -> Option<Finding> {
    if now.reached {
        return None;
    }
    let unknown = Finding {
        domain: FaultDomain::Unknown,
        last_hop: None,
        failing_hop: None,
    };
    let Some((index, last)) = now.furthest() else {
        // Nothing answered at all: the monitor's side when every path shares hops that should
        // have answered; otherwise nothing to tell.
        return Some(if shared > 0 {
            Finding {
                domain: FaultDomain::Monitor,
                last_hop: None,
                failing_hop: baseline.hops.first().copied().flatten(),
            }
        } else {
            unknown
        });
    };
    // Where the furthest answering hop sits in the baseline (a changed route may have moved it).
    let at = baseline.hops.iter().position(|h| *h == Some(last));
    let next_in_baseline = |i: usize| baseline.hops.iter().skip(i + 1).find_map(|h| *h);
    let Some(at) = at else {
        return Some(Finding {
            domain: FaultDomain::Path,
            last_hop: Some(last),
            failing_hop: None,
        });
    };
    let domain = if at + 1 < shared.min(baseline.hops.len()) && index < shared {
        FaultDomain::Monitor
    } else if next_in_baseline(at).is_none() {
        // Nothing in the baseline answers after it: it is the last router before the endpoint.
        FaultDomain::Endpoint
    } else {
        FaultDomain::Path
    };
    Some(Finding {
        domain,
        last_hop: Some(last),
        failing_hop: match domain {
            FaultDomain::Endpoint => None,
            _ => next_in_baseline(at),
        },
    })
}

/// Whether a trace that reached the endpoint went another way than its baseline: the
/// routers that answered in both differ. A re-routed path replaces the baseline; it is no fault.
pub fn route_changed(baseline: &Trace, now: &Trace) -> bool {
    now.reached
        && baseline
            .hops
            .iter()
            .zip(&now.hops)
            .any(|(b, n)| b.is_some() && n.is_some() && b != n)
}

/// Endpoints whose paths break at the same element: one incident ("hop 10.2.3.1, 30 communes
/// cannot join"), so a router outage pages once however many districts it spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    pub domain: FaultDomain,
    pub hop: IpAddr,
    /// The endpoints cut off behind it (the caller's indices), ascending.
    pub endpoints: Vec<usize>,
}

/// Groups path and monitor findings by their failing hop, largest incident first (ties by
/// hop). A fault at an endpoint's own site, or without a named hop, is no shared incident.
pub fn incidents(findings: impl IntoIterator<Item = (usize, Finding)>) -> Vec<Incident> {
    let mut by_hop: std::collections::BTreeMap<(IpAddr, bool), Vec<usize>> = Default::default();
    for (endpoint, f) in findings {
        if let (FaultDomain::Path | FaultDomain::Monitor, Some(hop)) = (f.domain, f.failing_hop) {
            by_hop
                .entry((hop, f.domain == FaultDomain::Monitor))
                .or_default()
                .push(endpoint);
        }
    }
    let mut out: Vec<Incident> = by_hop
        .into_iter()
        .map(|((hop, monitor), mut endpoints)| {
            endpoints.sort_unstable();
            Incident {
                domain: if monitor {
                    FaultDomain::Monitor
                } else {
                    FaultDomain::Path
                },
                hop,
                endpoints,
            }
        })
        .collect();
    out.sort_by(|a, b| b.endpoints.len().cmp(&a.endpoints.len()).then(a.hop.cmp(&b.hop)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// A trace from hop names ("-" for silence).
    fn trace(hops: &[&str], reached: bool) -> Trace {
        Trace {
            hops: hops.iter().map(|h| (*h != "-").then(|| ip(h))).collect(),
            reached,
        }
    }

    // monitor gateway 10.0.0.1 → core 10.1.0.1 → province 10.2.0.1 → area 10.3.0.1 → commune.
    const GW: &str = "10.0.0.1";
    const CORE: &str = "10.1.0.1";
    const PROVINCE: &str = "10.2.0.1";
    const AREA: &str = "10.3.0.1";

    fn baseline() -> Trace {
        trace(&[GW, CORE, PROVINCE, AREA], true)
    }

    #[test]
    fn shared_hops_are_the_common_prefix_of_every_baseline() {
        let other = trace(&[GW, CORE, "10.2.9.1", "10.3.9.1"], true);
        assert_eq!(shared_prefix([&baseline(), &other]), 2);
        assert_eq!(shared_prefix([&baseline()]), 0, "one path says nothing");
        // A gateway that rate-limited one trace's error is still shared; one nobody heard is not.
        let silent_gateway = trace(&["-", CORE, PROVINCE], true);
        assert_eq!(shared_prefix([&baseline(), &silent_gateway, &other]), 2);
        assert_eq!(shared_prefix([&silent_gateway, &silent_gateway.clone()]), 0);
        let next_door = trace(&[GW], true);
        assert_eq!(
            shared_prefix([&baseline(), &next_door]),
            1,
            "no further than the shortest"
        );
    }

    #[test]
    fn the_site_the_path_and_the_monitor_are_told_apart() {
        let b = baseline();
        let site = classify(&b, &trace(&[GW, CORE, PROVINCE, AREA, "-"], false), 2).expect("a fault");
        assert_eq!(
            (site.domain, site.last_hop, site.failing_hop),
            (FaultDomain::Endpoint, Some(ip(AREA)), None)
        );
        let router = classify(&b, &trace(&[GW, CORE, "-", "-"], false), 2).expect("a fault");
        assert_eq!(
            (router.domain, router.last_hop, router.failing_hop),
            (FaultDomain::Path, Some(ip(CORE)), Some(ip(PROVINCE)))
        );
        let uplink = classify(&b, &trace(&[GW, "-", "-", "-"], false), 2).expect("a fault");
        assert_eq!(
            (uplink.domain, uplink.failing_hop),
            (FaultDomain::Monitor, Some(ip(CORE)))
        );
        let cable = classify(&b, &trace(&["-", "-", "-", "-"], false), 2).expect("a fault");
        assert_eq!((cable.domain, cable.last_hop), (FaultDomain::Monitor, None));
        // With nothing shared (one path known), silence says nothing.
        let alone = classify(&b, &trace(&["-", "-"], false), 0).expect("a fault");
        assert_eq!(alone.domain, FaultDomain::Unknown);
    }

    #[test]
    fn a_silent_router_is_no_break_when_later_hops_answer() {
        let b = trace(&[GW, CORE, "-", AREA], true);
        let f = classify(&b, &trace(&[GW, CORE, "-", AREA, "-"], false), 2).expect("a fault");
        assert_eq!(f.domain, FaultDomain::Endpoint, "{f:?}");
        // Breaking behind the silent router names the next router that does answer.
        let f = classify(&b, &trace(&[GW, CORE, "-", "-"], false), 2).expect("a fault");
        assert_eq!((f.domain, f.failing_hop), (FaultDomain::Path, Some(ip(AREA))));
    }

    #[test]
    fn a_reached_endpoint_is_no_fault_and_a_new_route_replaces_the_baseline() {
        let b = baseline();
        assert_eq!(classify(&b, &b, 2), None);
        let rerouted = trace(&[GW, CORE, "10.2.7.1", AREA], true);
        assert!(route_changed(&b, &rerouted));
        assert!(
            !route_changed(&b, &trace(&[GW, "-", PROVINCE, AREA], true)),
            "silence is no new route"
        );
        // Broken on a route the baseline never saw: a path fault without a named hop.
        let f = classify(&b, &trace(&[GW, CORE, "10.2.7.1", "-"], false), 2).expect("a fault");
        assert_eq!(
            (f.domain, f.last_hop, f.failing_hop),
            (FaultDomain::Path, Some(ip("10.2.7.1")), None)
        );
    }

    #[test]
    fn baselines_keep_their_hops_through_the_ledger_text() {
        let b = trace(&[GW, "-", "2001:db8::1", AREA], true);
        assert_eq!(b.hops_text(), "10.0.0.1 * 2001:db8::1 10.3.0.1");
        assert_eq!(Trace::baseline_from_text(&b.hops_text()), Some(b));
        assert_eq!(Trace::baseline_from_text(""), Some(trace(&[], true)));
        assert_eq!(Trace::baseline_from_text("10.0.0.1 nonsense"), None);
        assert_eq!(Trace::baseline_from_text(&"* ".repeat(65)), None);
    }

    #[test]
    fn endpoints_behind_one_router_are_one_incident() {
        let b = baseline();
        let other_province = trace(&[GW, CORE, "10.2.9.1", "10.3.9.1"], true);
        let behind_province = trace(&[GW, CORE, "-", "-"], false);
        let mut findings = Vec::new();
        for e in 0..30 {
            findings.push((e, classify(&b, &behind_province, 2).expect("a fault")));
        }
        // Another province's commune lost its own site, and one on the other province broke
        // at its area router.
        findings.push((
            30,
            classify(&b, &trace(&[GW, CORE, PROVINCE, AREA, "-"], false), 2).expect("a fault"),
        ));
        findings.push((
            31,
            classify(&other_province, &trace(&[GW, CORE, "10.2.9.1", "-"], false), 2).expect("a fault"),
        ));
        let found = incidents(findings);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].hop, found[0].endpoints.len()), (ip(PROVINCE), 30));
        assert_eq!((found[1].hop, found[1].endpoints.clone()), (ip("10.3.9.1"), vec![31]));
        assert!(found.iter().all(|i| i.domain == FaultDomain::Path));
    }
}
