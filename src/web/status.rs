//! The duty-room status page (`/status`) and the JSON API behind it (`/api/v1/summary`,
//! `/api/v1/endpoints`): who cannot join right now, national → province → district → commune.
//! Server-side rendered (askama, `templates/status.html` on the shared `templates/base.html`), a
//! few lines of inline JavaScript for the search box, no external requests (the duty room may be
//! offline).

use std::collections::BTreeMap;
use std::time::SystemTime;

use askama::Template;
use serde::Serialize;

use crate::domain::health::State;
use crate::domain::unix_seconds;
use crate::monitor::{EndpointView, MonitorState};

/// Filters from the query string: `province`, `district`, `state`, `q` (search).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub province: Option<String>,
    pub district: Option<String>,
    pub state: Option<String>,
    pub q: Option<String>,
}

impl Filter {
    /// `Err` names a parameter whose value is not valid percent-encoding (a filter that
    /// silently matched everything would mislead more than a 400 does).
    pub fn parse(query: &str) -> Result<Filter, String> {
        let mut f = Filter::default();
        for pair in crate::web::query::pairs(query) {
            let (k, v) = pair.map_err(|k| {
                format!("parameter {k:?} is not valid percent-encoding (write %XX with two hex digits, UTF-8)")
            })?;
            if v.trim().is_empty() {
                continue;
            }
            match k {
                "province" => f.province = Some(v),
                "district" => f.district = Some(v),
                "state" => f.state = Some(v),
                "q" => f.q = Some(v),
                _ => {}
            }
        }
        Ok(f)
    }

    /// Whether labels fall in the filter's scope (province and district).
    pub fn in_scope(&self, l: &crate::domain::Labels) -> bool {
        self.province.as_deref().is_none_or(|p| *l.province == *p)
            && self
                .district
                .as_deref()
                .is_none_or(|d| l.district.as_deref() == Some(d))
    }

    fn matches(&self, v: &EndpointView) -> bool {
        let l = &v.endpoint.labels;
        self.in_scope(l)
            && self.state.as_deref().is_none_or(|s| v.state.as_str() == s)
            && self.q.as_deref().is_none_or(|q| {
                let q = q.to_lowercase();
                [
                    v.endpoint.id.as_str(),
                    &l.province,
                    l.district_or_empty(),
                    &l.commune,
                    &l.carrier,
                ]
                .iter()
                .any(|s| s.to_lowercase().contains(&q))
                    || v.endpoint.address_text().to_lowercase().contains(&q)
            })
    }
}

/// Counts by state.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    pub endpoints: usize,
    pub up: usize,
    pub degraded: usize,
    pub down: usize,
    pub unknown: usize,
    /// Inside a planned maintenance window now (whatever their state).
    pub maintenance: usize,
    /// Reachable, with a conference-quality score below `[quality] poor_mos`.
    pub poor_quality: usize,
    /// Mean conference-quality MOS of the endpoints that have a score.
    pub mos_mean: Option<f64>,
    #[serde(skip)]
    mos_sum: f64,
    #[serde(skip)]
    scored: usize,
}

impl Counts {
    fn add_view(&mut self, v: &EndpointView) {
        self.maintenance += usize::from(v.in_maintenance);
        self.poor_quality += usize::from(v.poor_quality());
        if let Some(mos) = v.mos() {
            self.mos_sum += mos;
            self.scored += 1;
            self.mos_mean = Some(self.mos_sum / self.scored as f64);
        }
        self.add(v.state);
    }

    /// Mean MOS for the page, "—" without a score.
    pub fn mos_text(&self) -> String {
        self.mos_mean.map_or("—".into(), |m| format!("{m:.2}"))
    }

    fn add(&mut self, s: State) {
        self.endpoints += 1;
        match s {
            State::Up => self.up += 1,
            State::Degraded => self.degraded += 1,
            State::Down => self.down += 1,
            State::Unknown => self.unknown += 1,
        }
    }

    /// Share reachable (up or degraded) among known endpoints, percent.
    pub fn reachable_pct(&self) -> String {
        let known = self.up + self.degraded + self.down;
        if known == 0 {
            "—".into()
        } else {
            format!("{:.1}", (self.up + self.degraded) as f64 * 100.0 / known as f64)
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GroupRow {
    pub name: String,
    pub counts: Counts,
}

/// One endpoint as the API and the page show it, borrowed from the monitor's table (no copy of
/// the names: the API serialises thousands of these under the lock).
#[derive(Debug, Serialize)]
pub struct EndpointRow<'a> {
    pub id: &'a str,
    pub province: &'a str,
    /// Absent in the two-tier map (no districts since 1 July 2025).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub district: Option<&'a str>,
    pub commune: &'a str,
    pub carrier: &'a str,
    /// The probed address; `null` while a host name has none (the endpoint is not probed).
    pub address: Option<std::net::IpAddr>,
    /// The host name written in the inventory, for endpoints not written as an IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<&'a str>,
    /// What stops or troubles probing, e.g. `dns: NXDOMAIN (no such name)`; absent when nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub state: &'static str,
    /// Unix seconds of the last state change.
    pub since: Option<f64>,
    pub failing_checks: Vec<&'a str>,
    pub in_maintenance: bool,
    pub rtt_ms: Option<f64>,
    pub loss_ratio: Option<f64>,
    /// Conference-quality MOS over the health window (absent while unknown or down).
    pub mos: Option<f64>,
    /// The E-model rating behind it, on the codec's scale (≤ 93.2 narrowband, ≤ 129 wideband).
    pub r_factor: Option<f64>,
    /// The codec the score assumes.
    pub codec: &'static str,
    /// The score is below `[quality] poor_mos`.
    pub poor_quality: bool,
    /// Where the fault is, for every endpoint that is not Up (the API contract other tools read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// Its baseline path (traced while it answered): one router per TTL, `null` where none
    /// answered; absent until learned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a [Option<std::net::IpAddr>]>,
}

/// Where an endpoint's fault lies: `endpoint` (its site), `path` (a router on the way; the
/// last hop that answered is `last_hop`, the router that failed `failing_hop`), `monitor` (the
/// monitor's own network is cut) or `unknown` (not placed: no trace yet, or no baseline).
#[derive(Debug, Serialize)]
pub struct Fault {
    pub domain: &'static str,
    pub last_hop: Option<std::net::IpAddr>,
    /// The router after `last_hop` on the endpoint's baseline path (absent when none is named).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_hop: Option<std::net::IpAddr>,
    /// Unix seconds: since when (the state's last change).
    pub since: Option<f64>,
}

impl Fault {
    /// "lỗi tại chặng 10.2.3.1 (sau 10.1.0.1)" for the page; nothing while not placed.
    fn text(&self) -> Option<String> {
        let after = self.last_hop.map(|h| format!(" (sau {h})")).unwrap_or_default();
        match (self.domain, self.failing_hop) {
            ("endpoint", _) => Some(format!("lỗi tại điểm cầu{after}")),
            ("path", Some(hop)) => Some(format!("lỗi tại chặng {hop}{after}")),
            ("path", None) => Some(format!("lỗi trên đường truyền{after}")),
            ("monitor", _) => Some("mạng của điểm đo bị cắt".to_string()),
            _ => None,
        }
    }
}

fn fault_of(v: &EndpointView, blind: bool) -> Option<Fault> {
    if v.state == State::Up {
        return None;
    }
    let since = v.last_transition.map(unix_seconds);
    if v.state == State::Unknown && blind && v.last().is_some_and(|r| r.received == 0) {
        return Some(Fault {
            domain: "monitor",
            last_hop: None,
            failing_hop: None,
            since,
        });
    }
    let found = v.path.finding.map(|(f, _)| f);
    Some(Fault {
        domain: found.map_or("unknown", |f| f.domain.as_str()),
        last_hop: found.and_then(|f| f.last_hop),
        failing_hop: found.and_then(|f| f.failing_hop),
        since,
    })
}

impl<'a> EndpointRow<'a> {
    fn of(v: &'a EndpointView, state: &'a MonitorState) -> EndpointRow<'a> {
        let l = &v.endpoint.labels;
        EndpointRow {
            id: v.endpoint.id.as_str(),
            province: &l.province,
            district: l.district.as_deref(),
            commune: &l.commune,
            carrier: &l.carrier,
            address: v.endpoint.address,
            host: v.endpoint.host.as_deref(),
            reason: v.endpoint.dns_problem(),
            state: v.state.as_str(),
            since: v.last_transition.map(unix_seconds),
            failing_checks: v.failing_checks(state.icmp_decides),
            in_maintenance: v.in_maintenance,
            rtt_ms: v.last().and_then(|r| r.rtt_avg).map(|r| r * 1e3),
            loss_ratio: v.last().map(|r| r.loss_ratio()),
            mos: v.mos(),
            r_factor: v.r_factor(),
            codec: state.policy.quality.codec(v.quality.codec).name,
            poor_quality: v.poor_quality(),
            fault: fault_of(v, v.family().is_some_and(|f| state.sight.is_blind(f))),
            path: v.path.baseline.as_ref().map(|b| b.0.hops.as_slice()),
        }
    }

    /// "3.42 · kém" style score for the page.
    pub fn mos_text(&self) -> String {
        match (self.mos, self.poor_quality) {
            (None, _) => "—".into(),
            (Some(m), false) => format!("{m:.2}"),
            (Some(m), true) => format!("{m:.2} · kém"),
        }
    }

    /// "12 phút" style age for the page.
    pub fn since_text(&self) -> String {
        let Some(since) = self.since else { return "—".into() };
        age_text((unix_seconds(SystemTime::now()) - since).max(0.0) as u64)
    }

    /// The state in Vietnamese, for the page (the API keeps the English word).
    pub fn state_text(&self) -> &'static str {
        match self.state {
            "down" => "mất kết nối",
            "degraded" => "suy giảm",
            "up" => "hoạt động",
            _ => "chưa rõ",
        }
    }

    pub fn checks_text(&self) -> String {
        let mut parts: Vec<String> = self.failing_checks.iter().map(|c| c.to_string()).collect();
        parts.extend(self.reason.clone());
        parts.extend(self.fault.as_ref().and_then(Fault::text));
        if parts.is_empty() {
            "—".into()
        } else {
            parts.join(", ")
        }
    }

    /// "10.0.0.1 › * › 10.2.0.1" for the page: the baseline path, if learned and not empty
    /// (an endpoint on the monitor's own link has no router before it).
    pub fn path_text(&self) -> Option<String> {
        let hops = self.path.filter(|h| !h.is_empty())?;
        let words: Vec<String> = hops.iter().map(|h| h.map_or("*".into(), |a| a.to_string())).collect();
        Some(words.join(" › "))
    }

    /// `10.0.0.5`, `dc.example.vn (10.0.0.5)`, `dc.example.vn (no address)`.
    pub fn address_text(&self) -> String {
        match (&self.host, &self.address) {
            (None, Some(a)) => a.to_string(),
            (Some(h), Some(a)) => format!("{h} ({a})"),
            (Some(h), None) => format!("{h} (no address)"),
            (None, None) => "—".into(),
        }
    }

    pub fn rtt_text(&self) -> String {
        self.rtt_ms.map_or("—".into(), |r| format!("{r:.1} ms"))
    }
}

/// `/api/v1/summary`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub generated_at: f64,
    /// Where this instance probes from (`[vantage] name`).
    pub vantage: String,
    pub ready: bool,
    pub national: Counts,
    pub provinces: Vec<GroupRow>,
}

pub fn summary(state: &MonitorState, ready: bool, vantage: &str) -> Summary {
    let mut national = Counts::default();
    let mut provinces: BTreeMap<&str, Counts> = BTreeMap::new();
    for v in &state.endpoints {
        national.add_view(v);
        provinces.entry(&v.endpoint.labels.province).or_default().add_view(v);
    }
    Summary {
        generated_at: unix_seconds(SystemTime::now()),
        vantage: vantage.to_string(),
        ready,
        national,
        provinces: provinces
            .into_iter()
            .map(|(n, c)| GroupRow {
                name: n.to_string(),
                counts: c,
            })
            .collect(),
    }
}

/// `/api/v1/endpoints`: endpoints matching the filter, worst first (down, degraded, unknown,
/// up), poor conference quality first within a state.
pub fn endpoints<'a>(state: &'a MonitorState, filter: &Filter, limit: usize) -> Vec<EndpointRow<'a>> {
    let mut rows: Vec<&EndpointView> = state.endpoints.iter().filter(|v| filter.matches(v)).collect();
    rows.sort_by_key(|v| {
        (
            severity(v.state),
            !v.poor_quality(),
            std::cmp::Reverse(v.last_transition),
        )
    });
    rows.into_iter()
        .take(limit)
        .map(|v| EndpointRow::of(v, state))
        .collect()
}

fn severity(s: State) -> u8 {
    match s {
        State::Down => 0,
        State::Degraded => 1,
        State::Unknown => 2,
        State::Up => 3,
    }
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage<'a> {
    scope: String,
    generated: String,
    vantage: &'a str,
    ready: bool,
    province: Option<String>,
    district: Option<String>,
    q: String,
    counts: Counts,
    /// Routers that cut endpoints in scope off, largest first.
    incidents: Vec<crate::web::paths::IncidentRow>,
    problems: Vec<EndpointRow<'a>>,
    /// Up, but with a conference-quality score below `[quality] poor_mos`.
    poor: Vec<EndpointRow<'a>>,
    /// Whether the problems table has a district column: not when no endpoint in scope has a
    /// district (the two-tier map), so no column of blank cells.
    problems_district: bool,
    group_title: &'static str,
    group_column: &'static str,
    groups: Vec<PageGroup>,
    /// Every vantage's merged verdict (with `[store] url`).
    merged: Option<crate::web::merged::Section>,
}

/// Provinces and districts in Vietnamese alphabetical order ("Tỉnh Đắk Lắk" under Đ, after D),
/// ignoring the "Tỉnh"/"Thành phố"/"Huyện" prefixes.
fn sorted_groups(groups: BTreeMap<String, (Counts, Option<String>)>) -> Vec<PageGroup> {
    let mut v: Vec<PageGroup> = groups
        .into_iter()
        .map(|(name, (counts, link))| PageGroup { name, link, counts })
        .collect();
    v.sort_by_cached_key(|g| crate::domain::sla::collation_key(&g.name));
    v
}

struct PageGroup {
    name: String,
    link: Option<String>,
    counts: Counts,
}

/// Problems listed on the page at most (the API has the rest).
const MAX_PROBLEMS: usize = 500;

/// Renders `/status` for the filter: national → provinces, province → districts, district →
/// communes.
pub fn page<'a>(
    state: &'a MonitorState,
    ready: bool,
    filter: &Filter,
    vantage: &'a str,
    merged: &crate::web::merged::MergedView,
) -> Result<String, askama::Error> {
    let mut counts = Counts::default();
    let mut groups: BTreeMap<String, (Counts, Option<String>)> = BTreeMap::new();
    let mut any_district = false;
    let scope_filter = Filter {
        q: None,
        state: None,
        ..filter.clone()
    };
    for v in state.endpoints.iter().filter(|v| scope_filter.matches(v)) {
        counts.add_view(v);
        let l = &v.endpoint.labels;
        let commune_row = || (format!("{} ({}, {})", l.commune, v.endpoint.id, v.state.as_str()), None);
        let (name, link) = match (&filter.province, &filter.district, l.district.as_deref()) {
            (None, _, _) => (
                l.province.to_string(),
                Some(format!("/status?province={}", urlencode(&l.province))),
            ),
            (Some(p), None, Some(d)) => (
                d.to_string(),
                Some(format!("/status?province={}&district={}", urlencode(p), urlencode(d))),
            ),
            // The two-tier map skips the missing level: a province lists its communes.
            (Some(_), None, None) | (Some(_), Some(_), _) => commune_row(),
        };
        any_district |= l.district.is_some();
        let entry = groups.entry(name).or_insert((Counts::default(), link));
        entry.0.add_view(v);
    }
    let (problems, poor): (Vec<EndpointRow>, Vec<EndpointRow>) = endpoints(state, filter, MAX_PROBLEMS)
        .into_iter()
        .filter(|r| r.state == "down" || r.state == "degraded" || r.reason.is_some() || r.poor_quality)
        .partition(|r| r.state != "up" || r.reason.is_some());
    let (group_title, group_column) = match (&filter.province, &filter.district) {
        (None, _) => ("Theo tỉnh/thành phố", "Tỉnh/thành phố"),
        (Some(_), None) if any_district => ("Theo quận/huyện", "Quận/huyện"),
        (Some(_), None) => ("Theo xã/phường", "Xã/phường"),
        (Some(_), Some(_)) => ("Theo xã/phường", "Xã/phường"),
    };
    let scope = match (&filter.province, &filter.district) {
        (None, _) => "toàn quốc".to_string(),
        (Some(p), None) => p.clone(),
        (Some(p), Some(d)) => format!("{d}, {p}"),
    };
    StatusPage {
        scope,
        generated: local_now(),
        vantage,
        ready,
        province: filter.province.clone(),
        district: filter.district.clone(),
        q: filter.q.clone().unwrap_or_default(),
        counts,
        problems_district: any_district,
        incidents: crate::web::paths::incidents(state)
            .into_iter()
            .filter(|i| filter.province.as_ref().is_none_or(|p| i.provinces.contains(p)))
            .collect(),
        problems,
        poor,
        group_title,
        group_column,
        groups: sorted_groups(groups),
        merged: crate::web::merged::section(merged, filter),
    }
    .render()
}

pub use crate::web::query::percent_encode as urlencode;

/// "12 phút" style age of something `age` seconds old.
pub(crate) fn age_text(age: u64) -> String {
    match age {
        0..=59 => format!("{age} giây"),
        60..=3599 => format!("{} phút", age / 60),
        3600..=86_399 => format!("{} giờ {} phút", age / 3600, age % 3600 / 60),
        _ => format!("{} ngày", age / 86_400),
    }
}

/// Now in Vietnam time (the duty room's clock), e.g. `24/11/2026 22:47:05 (UTC+07:00)`.
fn local_now() -> String {
    local_time(jiff::Timestamp::now())
}

/// `t` in Vietnam time, e.g. `24/11/2026 22:47:05 (UTC+07:00)`.
pub(crate) fn local_time(t: jiff::Timestamp) -> String {
    let zone = crate::domain::sla::time_zone(crate::domain::sla::DEFAULT_TIME_ZONE).unwrap_or(jiff::tz::TimeZone::UTC);
    t.to_zoned(zone).strftime("%d/%m/%Y %H:%M:%S (UTC%:z)").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_round_trip_with_diacritics() {
        let f = Filter::parse(&format!(
            "province={}&q=C%C3%A1t+L%C3%A1i",
            urlencode("Thành phố Hồ Chí Minh")
        ))
        .unwrap();
        assert_eq!(f.province.as_deref(), Some("Thành phố Hồ Chí Minh"));
        assert_eq!(f.q.as_deref(), Some("Cát Lái"));
        let e = Filter::parse("q=%zz").unwrap_err();
        assert!(e.contains("\"q\""), "{e}");
    }
}
