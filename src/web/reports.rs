//! SLA reports from the ledger, for `diemcau report sla` and `/reports/sla`: histories from the
//! store, maintenance windows from the config, math in [`crate::sla`], rendering in
//! [`crate::report`].

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::domain::maintenance::{MaintenanceWindow, ScopeLabels, maintenance_for};
use crate::domain::sla::{self, Targets};
use crate::report::{Format, HtmlOptions, file_name};
use crate::store::{Store, StoreReader, unix_ms};

/// Worst communes listed in a report.
pub const WORST_N: usize = 20;

/// What a report needs besides the ledger (swapped on reload).
#[derive(Clone)]
pub struct ReportContext {
    pub store: Option<Store>,
    pub time_zone: String,
    pub targets: Targets,
    pub maintenance: Arc<Vec<MaintenanceWindow>>,
    /// `[store] url` and `[vantage] quorum`: reports read the merged view of every vantage
    /// from the shared ledger instead of this instance's own.
    pub shared: Option<(crate::config::store::SharedLedger, crate::domain::merge::Quorum)>,
}

impl ReportContext {
    pub fn of(config: &Config, store: &Store) -> ReportContext {
        ReportContext {
            store: Some(store.clone()),
            shared: config.store.shared.clone().map(|u| (u, config.quorum)),
            time_zone: config.report.time_zone.clone(),
            targets: config.report.targets.clone(),
            maintenance: Arc::new(config.maintenance.windows.clone()),
        }
    }
}

/// One report request: `period` (`2026-11` or `FROM..TO`), `by` (`province,carrier`), format.
pub struct ReportRequest {
    pub period: String,
    pub by: String,
    pub format: Format,
}

impl ReportRequest {
    /// From `/reports/sla?period=…&by=…&format=…` (defaults: this month, province+carrier, html).
    pub fn from_query(query: &str, time_zone: &str) -> Result<ReportRequest, String> {
        let mut r = ReportRequest {
            period: current_month(time_zone),
            by: "province,carrier".into(),
            format: Format::Html,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = v
                .replace("%2C", ",")
                .replace("%2c", ",")
                .replace("%2E", ".")
                .replace("%2e", ".");
            match k {
                "period" => r.period = v,
                "by" => r.by = v,
                "format" => r.format = v.parse()?,
                _ => return Err(format!("unknown parameter {k:?}: use period, by and format")),
            }
        }
        Ok(r)
    }
}

/// `YYYY-MM` of now in `time_zone`.
pub fn current_month(time_zone: &str) -> String {
    let zone = sla::time_zone(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let now = jiff::Timestamp::now().to_zoned(zone);
    format!("{:04}-{:02}", now.year(), now.month())
}

/// A rendered report: its bytes, `Content-Type` and a file name
/// (`sla-2026-11-province-carrier.xlsx`).
#[derive(Clone, Debug)]
pub struct Rendered {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub file_name: String,
}

/// Renders a report from a ledger file (the CLI) or a running store (HTTP), as of now.
pub fn render(reader: &StoreReader, ctx: &ReportContext, request: &ReportRequest) -> Result<Rendered, String> {
    render_at(reader, ctx, request, unix_ms(SystemTime::now()))
}

/// Renders a report with `now_ms` as "now" (outages still open and endpoints still in the
/// inventory end there); the scheduled reports pass their clock's time.
pub fn render_at(
    reader: &StoreReader,
    ctx: &ReportContext,
    request: &ReportRequest,
    now_ms: i64,
) -> Result<Rendered, String> {
    let period = sla::parse_period(&request.period, &ctx.time_zone).map_err(|e| e.to_string())?;
    let group_by = sla::parse_group_by(&request.by)?;
    let mut histories = match &ctx.shared {
        Some((url, quorum)) => {
            crate::store::replica::read::merged_histories(url, period, now_ms, *quorum)
                .map_err(|e| e.to_string())?
                .histories
        }
        None => reader.histories(period, now_ms).map_err(|e| e.to_string())?,
    };
    // Group only by levels the inventory has: today's two-tier map has no districts.
    if group_by.contains(&sla::GroupKey::District)
        && !histories.is_empty()
        && histories.iter().all(|h| h.labels.district.is_none())
    {
        return Err(format!(
            "cannot group by district: no endpoint in the ledger for {} has one (the two-tier map \
             of provinces and communes since 1 July 2025); group by province and/or carrier",
            request.period
        ));
    }
    for h in &mut histories {
        h.maintenance = maintenance_for(&ctx.maintenance, &ScopeLabels::from(&*h), period);
    }
    let report = sla::compute(period, &histories, &group_by, &ctx.targets, WORST_N);
    let html = HtmlOptions {
        time_zone: ctx.time_zone.clone(),
        title: None,
    };
    let body = crate::report::render(&report, request.format, &html).map_err(|e| e.to_string())?;
    Ok(Rendered {
        body,
        content_type: request.format.content_type(),
        file_name: file_name(&request.period, &group_by, request.format),
    })
}

/// `diemcau report sla`: reads the ledger named by the config, without a running daemon.
pub fn render_from_config(config: &Config, request: &ReportRequest) -> Result<Rendered, String> {
    let path: &Path = &config.store.path;
    let reader = StoreReader::open(path).map_err(|e| format!("opening the ledger {}: {e}", path.display()))?;
    let ctx = ReportContext {
        store: None,
        shared: config.store.shared.clone().map(|u| (u, config.quorum)),
        time_zone: config.report.time_zone.clone(),
        targets: config.report.targets.clone(),
        maintenance: Arc::new(config.maintenance.windows.clone()),
    };
    render(&reader, &ctx, request)
}
