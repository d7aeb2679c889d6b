//! The live merged view across vantages (`[store] url`): what the status page and
//! `/api/v1/merged` show, refreshed in the background from the shared ledger
//! (`crate::app::merged_view`), never read while a request waits.

use serde::Serialize;

use crate::store::replica::read::LiveView;

/// The last read of the merged view.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MergedView {
    /// Whether this instance reads a shared ledger at all.
    pub enabled: bool,
    /// The last successful read, and when it was made (unix ms).
    pub view: Option<LiveView>,
    pub read_ms: Option<i64>,
    /// Why the last read failed, when it did (the view above is then older).
    pub error: Option<String>,
}

/// The status page's section on the merged view, within the page's scope.
#[derive(Debug)]
pub struct Section {
    pub vantages: Vec<VantageLine>,
    /// The moment of the verdict, in Vietnam time ("—" before the first read).
    pub at_text: String,
    /// Why the view is missing or older than it should be.
    pub problem: Option<String>,
    pub down: Vec<Row>,
    pub faults: Vec<Row>,
}

/// One instance of a vantage as the shared ledger knows it.
#[derive(Debug)]
pub struct VantageLine {
    pub vantage: String,
    pub shard: String,
    pub host: String,
    pub live: bool,
    pub seen_text: String,
}

/// An endpoint listed in the section.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub commune: String,
    pub province: String,
    pub carrier: String,
    /// The vantage that alone sees it Down (faults only).
    pub vantage: String,
    pub since_text: String,
}

/// Rows listed at most in each table (the API has the rest).
const MAX_ROWS: usize = 200;

fn row(id: &str, labels: &crate::domain::Labels, vantage: &str, since: i64, now_s: i64) -> Row {
    Row {
        id: id.to_string(),
        commune: labels.commune.to_string(),
        province: labels.province.to_string(),
        carrier: labels.carrier.to_string(),
        vantage: vantage.to_string(),
        since_text: crate::web::status::age_text(u64::try_from(now_s - since).unwrap_or(0)),
    }
}

/// The section for the page's `filter` (province and district narrow it); `None` when this
/// instance reads no shared ledger.
pub fn section(view: &MergedView, filter: &crate::web::status::Filter) -> Option<Section> {
    if !view.enabled {
        return None;
    }
    let now_s = crate::domain::unix_ms(std::time::SystemTime::now()).div_euclid(1000);
    let problem = match (&view.view, &view.error) {
        (_, Some(e)) => Some(format!("không đọc được sổ chung: {e}")),
        (None, None) => Some("đang đọc sổ chung lần đầu".to_string()),
        (Some(_), None) => None,
    };
    let Some(live) = &view.view else {
        return Some(Section {
            vantages: Vec::new(),
            at_text: "—".into(),
            problem,
            down: Vec::new(),
            faults: Vec::new(),
        });
    };
    let vantages = live
        .sources
        .iter()
        .map(|s| VantageLine {
            vantage: s.vantage.clone(),
            shard: format!("{}/{}", s.shard_index, s.shard_count),
            host: s.host.clone(),
            live: s.live,
            seen_text: crate::web::status::age_text(u64::try_from(now_s - s.seen_ms.div_euclid(1000)).unwrap_or(0)),
        })
        .collect();
    let at = jiff::Timestamp::from_second(live.now.at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    Some(Section {
        vantages,
        at_text: crate::web::status::local_time(at),
        problem,
        down: live
            .now
            .down
            .iter()
            .filter(|d| filter.in_scope(&d.labels))
            .take(MAX_ROWS)
            .map(|d| row(&d.id, &d.labels, "", d.since, now_s))
            .collect(),
        faults: live
            .now
            .vantage_faults
            .iter()
            .filter(|f| filter.in_scope(&f.labels))
            .take(MAX_ROWS)
            .map(|f| row(&f.id, &f.labels, &f.vantage, f.since, now_s))
            .collect(),
    })
}
