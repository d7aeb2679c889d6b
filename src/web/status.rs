//! The duty-room status page (`/status`) and the JSON API behind it (`/api/v1/summary`,
//! `/api/v1/endpoints`): who cannot join right now, national → province → district → commune.
//! Server-side rendered (askama), a few lines of inline JavaScript for the search box, no
//! external requests (the duty room may be offline).

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
    pub fn parse(query: &str) -> Filter {
        let mut f = Filter::default();
        for (k, v) in crate::web::query::pairs(query).flatten() {
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
        f
    }

    fn matches(&self, v: &EndpointView) -> bool {
        let l = &v.endpoint.labels;
        self.province.as_deref().is_none_or(|p| *l.province == *p)
            && self.district.as_deref().is_none_or(|d| *l.district == *d)
            && self.state.as_deref().is_none_or(|s| v.state.as_str() == s)
            && self.q.as_deref().is_none_or(|q| {
                let q = q.to_lowercase();
                [v.endpoint.id.as_str(), &l.province, &l.district, &l.commune, &l.carrier]
                    .iter()
                    .any(|s| s.to_lowercase().contains(&q))
                    || v.endpoint.address.to_string().contains(&q)
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
}

impl Counts {
    fn add_view(&mut self, v: &EndpointView) {
        self.maintenance += usize::from(v.in_maintenance);
        self.add(v.state);
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

#[derive(Debug, Serialize)]
pub struct EndpointRow {
    pub id: String,
    pub province: String,
    pub district: String,
    pub commune: String,
    pub carrier: String,
    pub address: String,
    pub state: &'static str,
    /// Unix seconds of the last state change.
    pub since: Option<f64>,
    pub failing_checks: Vec<String>,
    pub in_maintenance: bool,
    pub rtt_ms: Option<f64>,
    pub loss_ratio: Option<f64>,
}

impl EndpointRow {
    fn of(v: &EndpointView, icmp_decides: bool) -> EndpointRow {
        let l = &v.endpoint.labels;
        EndpointRow {
            id: v.endpoint.id.to_string(),
            province: l.province.to_string(),
            district: l.district.to_string(),
            commune: l.commune.to_string(),
            carrier: l.carrier.to_string(),
            address: v.endpoint.address.to_string(),
            state: v.state.as_str(),
            since: v.last_transition.map(unix_seconds),
            failing_checks: v.failing_checks(icmp_decides).into_iter().map(String::from).collect(),
            in_maintenance: v.in_maintenance,
            rtt_ms: v.last().and_then(|r| r.rtt_avg).map(|r| r * 1e3),
            loss_ratio: v.last().map(|r| r.loss_ratio()),
        }
    }

    /// "12 phút" style age for the page.
    pub fn since_text(&self) -> String {
        let Some(since) = self.since else { return "—".into() };
        let age = (unix_seconds(SystemTime::now()) - since).max(0.0) as u64;
        match age {
            0..=59 => format!("{age} giây"),
            60..=3599 => format!("{} phút", age / 60),
            3600..=86_399 => format!("{} giờ {} phút", age / 3600, age % 3600 / 60),
            _ => format!("{} ngày", age / 86_400),
        }
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
        if self.failing_checks.is_empty() {
            "—".into()
        } else {
            self.failing_checks.join(", ")
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
    pub ready: bool,
    pub national: Counts,
    pub provinces: Vec<GroupRow>,
}

pub fn summary(state: &MonitorState, ready: bool) -> Summary {
    let mut national = Counts::default();
    let mut provinces: BTreeMap<&str, Counts> = BTreeMap::new();
    for v in &state.endpoints {
        national.add_view(v);
        provinces.entry(&v.endpoint.labels.province).or_default().add_view(v);
    }
    Summary {
        generated_at: unix_seconds(SystemTime::now()),
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

/// `/api/v1/endpoints`: endpoints matching the filter, worst first (down, degraded, unknown, up).
pub fn endpoints(state: &MonitorState, filter: &Filter, limit: usize) -> Vec<EndpointRow> {
    let mut rows: Vec<&EndpointView> = state.endpoints.iter().filter(|v| filter.matches(v)).collect();
    rows.sort_by_key(|v| (severity(v.state), std::cmp::Reverse(v.last_transition)));
    rows.into_iter()
        .take(limit)
        .map(|v| EndpointRow::of(v, state.icmp_decides))
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
#[template(
    ext = "html",
    source = r##"<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>Điểm cầu — tình trạng {{ scope }}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:0;background:#f4f6f8;color:#1b1f24}
header{background:#0b3d91;color:#fff;padding:12px 16px}
header h1{font-size:1.25rem;margin:0}
header p{margin:4px 0 0;font-size:.85rem;opacity:.85}
main{padding:12px 16px;max-width:1200px;margin:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:8px;margin-bottom:14px}
.card{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card b{display:block;font-size:1.6rem}
.up b{color:#1a7f37}.degraded b{color:#b35900}.down b{color:#c62828}.unknown b{color:#57606a}
table{width:100%;border-collapse:collapse;background:#fff;border-radius:8px;overflow:hidden;margin-bottom:16px;font-size:.9rem}
th,td{padding:6px 8px;text-align:left;border-bottom:1px solid #e5e8eb}
th{background:#eef1f4;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.s-down td:first-child{border-left:4px solid #c62828}tr.s-degraded td:first-child{border-left:4px solid #b35900}
.badge{display:inline-block;padding:1px 6px;border-radius:10px;font-size:.8rem;color:#fff}
.b-down{background:#c62828}.b-degraded{background:#b35900}.b-unknown{background:#57606a}.b-up{background:#1a7f37}
form{margin:0 0 12px}input[type=search]{width:100%;max-width:420px;padding:8px;font-size:1rem;border:1px solid #c9ced4;border-radius:6px}
a{color:#0b3d91}nav{margin-bottom:10px;font-size:.9rem}
h2{font-size:1.05rem;margin:18px 0 8px}
@media (max-width:640px){.hide-sm{display:none}th,td{padding:5px}}
</style>
</head>
<body>
<header><h1>Giám sát điểm cầu — {{ scope }}</h1>
<p>Cập nhật {{ generated }} · tự làm mới mỗi 30 giây{% if !ready %} · đang chờ vòng đo đầu tiên{% endif %}</p></header>
<main>
<nav><a href="/status">Toàn quốc</a>{% if let Some(p) = province %} › <a href="/status?province={{ p|urlencode }}">{{ p }}</a>{% endif %}{% if let Some(d) = district %} › {{ d }}{% endif %}</nav>
<div class="cards">
<div class="card"><span>Điểm cầu</span><b>{{ counts.endpoints }}</b></div>
<div class="card up"><span>Hoạt động</span><b>{{ counts.up }}</b></div>
<div class="card degraded"><span>Suy giảm</span><b>{{ counts.degraded }}</b></div>
<div class="card down"><span>Mất kết nối</span><b>{{ counts.down }}</b></div>
<div class="card unknown"><span>Chưa rõ</span><b>{{ counts.unknown }}</b></div>
<div class="card"><span>Bảo trì</span><b>{{ counts.maintenance }}</b></div>
</div>
<form method="get" action="/status" role="search">
{% if let Some(p) = province %}<input type="hidden" name="province" value="{{ p }}">{% endif %}
{% if let Some(d) = district %}<input type="hidden" name="district" value="{{ d }}">{% endif %}
<input type="search" id="q" name="q" value="{{ q }}" placeholder="Tìm xã, huyện, tỉnh, nhà mạng…" aria-label="Tìm kiếm">
</form>
<h2>Không tham gia được ({{ problems.len() }})</h2>
<table id="problems"><thead><tr><th>Điểm cầu</th><th class="hide-sm">Huyện</th><th class="hide-sm">Tỉnh</th><th>Nhà mạng</th><th>Trạng thái</th><th>Từ</th><th class="hide-sm">Kiểm tra lỗi</th></tr></thead><tbody>
{% for r in problems %}<tr class="s-{{ r.state }}" data-search="{{ r.id }} {{ r.commune }} {{ r.district }} {{ r.province }} {{ r.carrier }} {{ r.address }}"><td>{{ r.commune }}<br><small>{{ r.district }}, {{ r.province }} · {{ r.id }} · {{ r.address }}</small></td><td class="hide-sm">{{ r.district }}</td><td class="hide-sm">{{ r.province }}</td><td>{{ r.carrier }}</td><td><span class="badge b-{{ r.state }}">{{ r.state_text() }}</span>{% if r.in_maintenance %} <small>bảo trì</small>{% endif %}</td><td>{{ r.since_text() }}</td><td class="hide-sm">{{ r.checks_text() }}</td></tr>
{% endfor %}{% if problems.is_empty() %}<tr><td colspan="7">{% if q.is_empty() %}Không có điểm cầu nào mất kết nối hay suy giảm.{% else %}Không có điểm cầu gặp sự cố nào khớp với «{{ q }}».{% endif %}</td></tr>{% endif %}
</tbody></table>
<h2>{{ group_title }}</h2>
<table id="groups"><thead><tr><th>{{ group_column }}</th><th class="n">Điểm cầu</th><th class="n">Hoạt động</th><th class="n">Suy giảm</th><th class="n">Mất</th><th class="n hide-sm">Chưa rõ</th><th class="n hide-sm">Bảo trì</th><th class="n">Kết nối %</th></tr></thead><tbody>
{% for g in groups %}<tr data-search="{{ g.name }}"><td>{% if let Some(link) = g.link %}<a href="{{ link }}">{{ g.name }}</a>{% else %}{{ g.name }}{% endif %}</td><td class="n">{{ g.counts.endpoints }}</td><td class="n">{{ g.counts.up }}</td><td class="n">{{ g.counts.degraded }}</td><td class="n">{{ g.counts.down }}</td><td class="n hide-sm">{{ g.counts.unknown }}</td><td class="n hide-sm">{{ g.counts.maintenance }}</td><td class="n">{{ g.counts.reachable_pct() }}</td></tr>
{% endfor %}</tbody></table>
<p><small>JSON: <a href="/api/v1/summary">/api/v1/summary</a> · <a href="/api/v1/endpoints">/api/v1/endpoints</a> · <a href="/metrics">/metrics</a></small></p>
</main>
<script>
// Filters the tables as you type; the form still works without JavaScript.
(function(){var q=document.getElementById('q');if(!q)return;q.addEventListener('input',function(){
var t=q.value.toLowerCase();document.querySelectorAll('tr[data-search]').forEach(function(r){
r.style.display=r.getAttribute('data-search').toLowerCase().indexOf(t)<0?'none':'';});});})();
</script>
</body>
</html>
"##
)]
struct StatusPage {
    scope: String,
    generated: String,
    ready: bool,
    province: Option<String>,
    district: Option<String>,
    q: String,
    counts: Counts,
    problems: Vec<EndpointRow>,
    group_title: &'static str,
    group_column: &'static str,
    groups: Vec<PageGroup>,
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
pub fn page(state: &MonitorState, ready: bool, filter: &Filter) -> Result<String, askama::Error> {
    let mut counts = Counts::default();
    let mut groups: BTreeMap<String, (Counts, Option<String>)> = BTreeMap::new();
    let scope_filter = Filter {
        q: None,
        state: None,
        ..filter.clone()
    };
    for v in state.endpoints.iter().filter(|v| scope_filter.matches(v)) {
        counts.add_view(v);
        let l = &v.endpoint.labels;
        let (name, link) = match (&filter.province, &filter.district) {
            (None, _) => (
                l.province.to_string(),
                Some(format!("/status?province={}", urlencode(&l.province))),
            ),
            (Some(p), None) => (
                l.district.to_string(),
                Some(format!(
                    "/status?province={}&district={}",
                    urlencode(p),
                    urlencode(&l.district)
                )),
            ),
            (Some(_), Some(_)) => (format!("{} ({}, {})", l.commune, v.endpoint.id, v.state.as_str()), None),
        };
        let entry = groups.entry(name).or_insert((Counts::default(), link));
        entry.0.add_view(v);
    }
    let problems: Vec<EndpointRow> = endpoints(state, filter, MAX_PROBLEMS)
        .into_iter()
        .filter(|r| r.state == "down" || r.state == "degraded")
        .collect();
    let (group_title, group_column) = match (&filter.province, &filter.district) {
        (None, _) => ("Theo tỉnh/thành phố", "Tỉnh/thành phố"),
        (Some(_), None) => ("Theo quận/huyện", "Quận/huyện"),
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
        ready,
        province: filter.province.clone(),
        district: filter.district.clone(),
        q: filter.q.clone().unwrap_or_default(),
        counts,
        problems,
        group_title,
        group_column,
        groups: sorted_groups(groups),
    }
    .render()
}

pub use crate::web::query::percent_encode as urlencode;

/// Now in Vietnam time (the duty room's clock), e.g. `24/11/2026 22:47:05 (UTC+07:00)`.
fn local_now() -> String {
    let zone = crate::domain::sla::time_zone(crate::domain::sla::DEFAULT_TIME_ZONE).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::now()
        .to_zoned(zone)
        .strftime("%d/%m/%Y %H:%M:%S (UTC%:z)")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_round_trip_with_diacritics() {
        let f = Filter::parse(&format!(
            "province={}&q=C%C3%A1t+L%C3%A1i",
            urlencode("Thành phố Hồ Chí Minh")
        ));
        assert_eq!(f.province.as_deref(), Some("Thành phố Hồ Chí Minh"));
        assert_eq!(f.q.as_deref(), Some("Cát Lái"));
    }
}
