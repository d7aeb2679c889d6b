//! Router tiers (`[[router]]`) and the monitor's uplink (`[monitor]`): parsing, and resolving
//! every endpoint's path.
//!
//! Routers form a forest (`parent` names another router; empty or absent = first hop after
//! the monitor). A router's reach is its own `select` (absent = every endpoint) AND its
//! parent's reach, so the routers an endpoint matches are always closed upwards. They must
//! form one chain: two routers under the same parent (or two first hops) that both match an
//! endpoint are an error, since its path would be ambiguous. The endpoint's path is that
//! chain, first hop first, ending at its deepest matching router; an endpoint that matches
//! no router has an empty path (no hop before it, as before routers existed). Only routers of
//! the endpoint's address family count: a dual-stack router is two `[[router]]` tables, one
//! per family, each with its own tree.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Deserialize;
use toml::Spanned;

use super::decide::{Delay, Window};
use super::parse::{Ctx, OutageRaw, SelectorRaw, line_col};
use super::{DelaySpec, Scenario, ScenarioError, Selector, WindowSpec};
use crate::path::{Network, Router};
use crate::{EmulatedEndpoint, LAB_LOCAL_V4, LAB_LOCAL_V6};

/// A router's delay when the scenario gives none: each hop adds 1 ms to the round trip.
pub(super) const DEFAULT_HOP_DELAY: DelaySpec = DelaySpec::Fixed { ms: 1.0 };
/// Largest `icmp_rate_limit` (Time Exceeded per second); the limiter keeps one timestamp
/// per answer of the last second.
const MAX_RATE_LIMIT: u32 = 100_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouterRaw {
    name: String,
    address: IpAddr,
    #[serde(default)]
    parent: String,
    select: Option<SelectorRaw>,
    delay: Option<DelaySpec>,
    outages: Option<Vec<Spanned<OutageRaw>>>,
    icmp_rate_limit: Option<u32>,
    #[serde(default)]
    silent: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MonitorRaw {
    #[serde(default)]
    outages: Vec<Spanned<OutageRaw>>,
}

/// A checked `[[router]]` table.
#[derive(Debug, Clone)]
pub(super) struct RouterDef {
    line: usize,
    name: String,
    address: IpAddr,
    parent: Option<usize>,
    depth: usize,
    select: Option<Selector>,
    delay: DelaySpec,
    windows: Vec<WindowSpec>,
    icmp_rate_limit: Option<u32>,
    silent: bool,
}

fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "IPv4" } else { "IPv6" }
}

impl Ctx<'_> {
    /// Outage windows of a router or the monitor: a degrade ramp has no meaning there.
    fn down_windows(&self, what: &str, list: &[Spanned<OutageRaw>]) -> Result<Vec<WindowSpec>, ScenarioError> {
        list.iter()
            .map(|o| match self.window(o)? {
                WindowSpec::Degrade { .. } => Err(self.invalid(
                    o.span().start,
                    format!("{what} outages are {{start_s, end_s}} or {{flap = {{...}}}}; a degrade has no meaning there (give its endpoints a [[rule]])"),
                )),
                w => Ok(w),
            })
            .collect()
    }

    pub(super) fn monitor(&self, m: Spanned<MonitorRaw>) -> Result<Vec<WindowSpec>, ScenarioError> {
        self.down_windows("[monitor]", &m.get_ref().outages)
    }

    /// Checks every `[[router]]` on its own and the tree they form: unique names and
    /// addresses, known parents of the same family, no cycle.
    pub(super) fn routers(&self, raw: Vec<Spanned<RouterRaw>>) -> Result<Vec<RouterDef>, ScenarioError> {
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut by_addr: HashMap<IpAddr, usize> = HashMap::new();
        let mut offsets = Vec::with_capacity(raw.len());
        let mut defs = Vec::with_capacity(raw.len());
        let mut parents = Vec::with_capacity(raw.len());
        for spanned in raw {
            let off = spanned.span().start;
            let line = line_col(self.text, off).0;
            let r = spanned.into_inner();
            let who = format!("router {:?}", r.name);
            if r.name.trim().is_empty() {
                return Err(self.invalid(off, "router needs a non-empty name"));
            }
            if let Some(&other) = by_name.get(&r.name) {
                return Err(self.invalid(
                    off,
                    format!(
                        "{who}: the name is already used at line {}",
                        line_col(self.text, offsets[other]).0
                    ),
                ));
            }
            let a = r.address;
            if a.is_unspecified()
                || a.is_multicast()
                || a.is_loopback()
                || a == IpAddr::V4(LAB_LOCAL_V4)
                || a == IpAddr::V6(LAB_LOCAL_V6)
            {
                return Err(self.invalid(
                    off,
                    format!(
                        "{who}: address {a} cannot be a router (unspecified, multicast, loopback or the lab's own)"
                    ),
                ));
            }
            if let Some(&other) = by_addr.get(&a) {
                return Err(self.invalid(
                    off,
                    format!(
                        "{who}: address {a} is already router {:?}'s (line {})",
                        defs.get(other).map_or("", |d: &RouterDef| d.name.as_str()),
                        line_col(self.text, offsets[other]).0
                    ),
                ));
            }
            let select = match r.select {
                None => None,
                Some(s) if s.is_empty() => {
                    return Err(self.invalid(
                        off,
                        format!("{who} has an empty select (leave select out to route every endpoint)"),
                    ));
                }
                Some(s) => Some(s.into_selector()),
            };
            let delay = r.delay.unwrap_or(DEFAULT_HOP_DELAY);
            self.check_delay(off, &delay)?;
            let windows = self.down_windows(&who, r.outages.as_deref().unwrap_or(&[]))?;
            if let Some(n) = r.icmp_rate_limit
                && !(1..=MAX_RATE_LIMIT).contains(&n)
            {
                return Err(self.invalid(
                    off,
                    format!("{who}: icmp_rate_limit = {n} must be in 1..={MAX_RATE_LIMIT} per second (silent = true never answers)"),
                ));
            }
            by_name.insert(r.name.clone(), defs.len());
            by_addr.insert(a, defs.len());
            offsets.push(off);
            parents.push(r.parent);
            defs.push(RouterDef {
                line,
                name: r.name,
                address: a,
                parent: None,
                depth: 0,
                select,
                delay,
                windows,
                icmp_rate_limit: r.icmp_rate_limit,
                silent: r.silent,
            });
        }
        for (i, parent) in parents.iter().enumerate() {
            if parent.is_empty() {
                continue;
            }
            let who = format!("router {:?}", defs[i].name);
            let Some(&p) = by_name.get(parent) else {
                return Err(self.invalid(
                    offsets[i],
                    format!("{who}: parent {parent:?} is not the name of any [[router]]"),
                ));
            };
            if defs[p].address.is_ipv4() != defs[i].address.is_ipv4() {
                return Err(self.invalid(
                    offsets[i],
                    format!(
                        "{who} ({}) has parent {parent:?} ({}): a path stays in one address family; give a dual-stack router one [[router]] per family",
                        family(defs[i].address),
                        family(defs[p].address)
                    ),
                ));
            }
            defs[i].parent = Some(p);
        }
        for i in 0..defs.len() {
            let mut chain = vec![i];
            let mut at = defs[i].parent;
            while let Some(p) = at {
                chain.push(p);
                if p == i || chain.len() > defs.len() {
                    let names: Vec<&str> = chain.iter().map(|&c| defs[c].name.as_str()).collect();
                    return Err(self.invalid(
                        offsets[i],
                        format!(
                            "router {:?}: its parents form a cycle ({})",
                            defs[i].name,
                            names.join(" → ")
                        ),
                    ));
                }
                at = defs[p].parent;
            }
            defs[i].depth = chain.len();
        }
        Ok(defs)
    }
}

fn window_ns(w: &WindowSpec) -> Window {
    super::decide::window_ns(w)
}

impl Scenario {
    fn router_error(&self, r: &RouterDef, message: String) -> ScenarioError {
        ScenarioError::Invalid {
            origin: self.origin.clone(),
            line: r.line,
            message: format!("router {:?}: {message}", r.name),
        }
    }

    /// Every endpoint's path through the routers, and the monitor's outage windows. Errors:
    /// a router's select names an unknown id or selects nobody, a router owns an endpoint's
    /// address, an endpoint's path is ambiguous (see the module docs).
    pub(crate) fn resolve_network(&self, endpoints: &[EmulatedEndpoint]) -> Result<Network, ScenarioError> {
        let monitor: Vec<Window> = self.monitor.iter().map(window_ns).collect();
        if self.routers.is_empty() {
            return Ok(Network::new(Vec::new(), vec![Vec::new()], Vec::new(), monitor));
        }
        let defs = &self.routers;
        let ids: HashMap<&str, ()> = endpoints.iter().map(|e| (e.id.as_str(), ())).collect();
        for r in defs {
            if let Some(id) = r
                .select
                .as_ref()
                .and_then(|s| s.id_list.iter().find(|id| !ids.contains_key(id.as_str())))
            {
                return Err(self.router_error(r, format!("select names unknown endpoint id {id:?}")));
            }
        }
        let addrs: HashMap<IpAddr, &str> = endpoints.iter().map(|e| (e.addr, e.id.as_str())).collect();
        for r in defs {
            if let Some(id) = addrs.get(&r.address) {
                return Err(self.router_error(r, format!("address {} is endpoint {id:?}'s", r.address)));
            }
        }
        // Parents before children, so a router's reach can use its parent's.
        let mut order: Vec<usize> = (0..defs.len()).collect();
        order.sort_by_key(|&i| defs[i].depth);
        let mut reach = vec![false; defs.len()];
        let mut claimed: HashMap<Option<usize>, usize> = HashMap::new();
        let mut behind = vec![0u32; defs.len()];
        let mut paths: Vec<Vec<u32>> = vec![Vec::new()];
        let mut path_ids: HashMap<Vec<u32>, u32> = HashMap::new();
        let mut ep_path = Vec::with_capacity(endpoints.len());
        let mut path = Vec::new();
        for ep in endpoints {
            claimed.clear();
            let mut deepest: Option<usize> = None;
            for &i in &order {
                let r = &defs[i];
                reach[i] = r.address.is_ipv4() == ep.addr.is_ipv4()
                    && r.parent.is_none_or(|p| reach[p])
                    && r.select.as_ref().is_none_or(|s| s.matches(ep));
                if !reach[i] {
                    continue;
                }
                if let Some(&other) = claimed.get(&r.parent) {
                    return Err(self.router_error(
                        r,
                        format!(
                            "endpoint {:?} matches both it and router {:?} (line {}), which share a parent: make their selects disjoint",
                            ep.id, defs[other].name, defs[other].line
                        ),
                    ));
                }
                claimed.insert(r.parent, i);
                if deepest.is_none_or(|d| defs[d].depth < r.depth) {
                    deepest = Some(i);
                }
            }
            path.clear();
            let mut at = deepest;
            while let Some(i) = at {
                path.push(i as u32);
                behind[i] += 1;
                at = defs[i].parent;
            }
            path.reverse();
            let id = match path_ids.get(&path) {
                Some(&id) => id,
                None => {
                    let id = paths.len() as u32;
                    paths.push(path.clone());
                    path_ids.insert(path.clone(), id);
                    id
                }
            };
            ep_path.push(id);
        }
        if let Some(i) = behind.iter().position(|&b| b == 0) {
            return Err(self.router_error(
                &defs[i],
                format!(
                    "no endpoint's path goes through it (its select, its parents' and its {} family match no endpoint)",
                    family(defs[i].address)
                ),
            ));
        }
        let routers = defs
            .iter()
            .zip(behind)
            .map(|(d, endpoints_behind)| Router {
                name: d.name.clone(),
                addr: d.address,
                parent: d.parent.map(|p| p as u32),
                delay: Delay::from_spec(d.delay),
                windows: d.windows.iter().map(window_ns).collect(),
                rate_limit: d.icmp_rate_limit,
                silent: d.silent,
                endpoints_behind,
            })
            .collect();
        Ok(Network::new(routers, paths, ep_path, monitor))
    }
}

impl RouterDef {
    pub(super) fn address(&self) -> IpAddr {
        self.address
    }
}
