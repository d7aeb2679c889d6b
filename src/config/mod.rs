//! Configuration: the TOML file, the inventory CSVs it names, and their validation into typed
//! values. Raw input is read in [`toml_file`] and [`inventory`]; this module turns it into a
//! [`Config`] or a [`LoadError`] listing every problem with file, line and fix.

pub mod checks;
pub mod dns;
pub mod file;

pub mod geo;
pub mod inventory;
pub mod inventory_gen;
pub mod paths;
mod probe_section;
pub mod quality;
pub mod resolve;
pub mod schedule;
mod shard;
pub mod store;
pub mod toml_file;
pub mod vantage;
pub mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use crate::domain::diag::{LoadError, Problem};
use toml::Spanned;

use crate::domain::Endpoint;
use crate::domain::health::{DegradedLimits, HealthPolicy};
use crate::domain::maintenance::MaintenanceWindow;
use toml_file::{RawConfig, position};

/// The config used when `diemcau run` is given no `--config`: the demo inventory on loopback.
pub const EMBEDDED_CONFIG: &str = include_str!("../../examples/diemcau.toml");
/// The demo inventory named by [`EMBEDDED_CONFIG`].
pub const EMBEDDED_INVENTORY: &str = include_str!("../../examples/inventory.csv");

pub use crate::probe::icmp::settings::{ConfirmConfig, MAX_IN_FLIGHT_PER_FAMILY, ProbeConfig, SocketPreference};

pub use web::{ProbeTargets, WebConfig};

/// The SQLite ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSettings {
    pub path: PathBuf,
    pub heartbeat: Duration,
    /// `[store] url` and `ca_file`: the PostgreSQL ledger shared by every vantage (the SQLite
    /// file stays this instance's own ledger and spool).
    pub shared: Option<store::SharedLedger>,
}

/// SLA report settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSettings {
    pub time_zone: String,
    pub targets: crate::domain::sla::Targets,
    /// `[[report.schedule]]`: monthly reports to a directory, optionally mailed.
    pub schedules: Vec<schedule::ReportSchedule>,
    /// `[report.smtp]`.
    pub smtp: Option<schedule::SmtpSettings>,
}

/// Planned maintenance windows; compared by their text so configs stay comparable.
#[derive(Clone, Debug, Default)]
pub struct Maintenance {
    pub raw: Vec<crate::domain::maintenance::RawMaintenance>,
    pub windows: Vec<crate::domain::maintenance::MaintenanceWindow>,
}

impl PartialEq for Maintenance {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

/// What the command line sets over the config file; kept in [`Config`] so reloads keep it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--shard I/N`: this instance's index and the shard count, in place of `[shard] index`,
    /// `count` and `index_from_hostname` (`replicas` still comes from the file).
    pub shard: Option<(u32, u32)>,
}

/// A validated configuration with its resolved inventory.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it came from (`None` for the embedded defaults).
    pub source: Option<PathBuf>,
    /// The command line's settings over the file's (applied again at every reload).
    pub overrides: Overrides,
    pub web: WebConfig,
    pub inventory_files: Vec<PathBuf>,
    pub probe: ProbeConfig,
    pub health: HealthPolicy,
    pub checks: checks::ChecksConfig,
    pub store: StoreSettings,
    pub maintenance: Maintenance,
    pub report: ReportSettings,
    /// Province centroids for dashboard maps: (province, lat, lon).
    pub province_centroids: Vec<(String, f64, f64)>,
    /// `[dns]`: how host names are resolved.
    pub dns: dns::DnsSettings,
    /// `[vantage] name`: where this instance probes from.
    pub vantage: String,
    /// `[vantage] quorum`: how many vantages must see an endpoint Down in the merged view.
    pub quorum: crate::domain::merge::Quorum,
    /// `[paths]`: path tracing, to place faults.
    pub paths: paths::PathsConfig,
    /// `[monitor] references`: addresses whose silence means the monitor is blind.
    pub references: Vec<std::net::IpAddr>,
    /// `[shard]`: the share of the inventory this instance probes (`endpoints` holds only it).
    pub shard: crate::domain::shard::Shard,
    /// Endpoints in the whole inventory, before taking the share.
    pub inventory_endpoints: usize,
    /// Where each inventory host name is written (for `diemcau check`).
    pub hosts: Vec<inventory::HostLine>,
    /// Shared with the monitor's views and the service checks: one copy per endpoint.
    /// Which administrative map each inventory file follows (for `diemcau check`).
    pub inventory_models: Vec<(PathBuf, inventory::MapModel)>,
    pub endpoints: Vec<Arc<Endpoint>>,
}

impl Config {
    /// Loads the config file and every inventory file it names.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        Config::load_with(path, Overrides::default())
    }

    /// [`Config::load`] with the command line's settings over the file's.
    pub fn load_with(path: &Path, overrides: Overrides) -> Result<Config, LoadError> {
        let text = match file::read_regular_text(path, file::MAX_CONFIG_BYTES) {
            Ok(t) => t,
            Err(e) => {
                return Err(LoadError {
                    problems: vec![
                        Problem::at(path, 0, None, "file")
                            .says(format!("cannot be read: {e}"))
                            .fix("pass the path of a readable TOML config with --config"),
                    ],
                });
            }
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let read = |p: &Path| file::read_regular(p, file::MAX_INVENTORY_BYTES);
        load_text_with(path, &text, base, &read, overrides)
    }

    /// The embedded defaults: demo inventory on loopback addresses.
    pub fn embedded() -> Result<Config, LoadError> {
        Config::embedded_with(Overrides::default())
    }

    /// [`Config::embedded`] with the command line's settings over the defaults.
    pub fn embedded_with(overrides: Overrides) -> Result<Config, LoadError> {
        let origin = Path::new("<embedded>/diemcau.toml");
        let read = |p: &Path| {
            if p == Path::new("<embedded>/inventory.csv") {
                Ok(EMBEDDED_INVENTORY.as_bytes().to_vec())
            } else {
                Err(std::io::Error::new(std::io::ErrorKind::NotFound, "not embedded"))
            }
        };
        let mut config = load_text_with(origin, EMBEDDED_CONFIG, Path::new("<embedded>"), &read, overrides)?;
        if config.store.path.starts_with("<embedded>") {
            // No config directory to live beside: a data directory in the working directory.
            config.store.path = PathBuf::from("diemcau-data").join("diemcau.db");
        }
        Ok(config)
    }

    /// Endpoints per province and carrier, for `diemcau check`.
    pub fn summary(&self) -> BTreeMap<(String, String), usize> {
        let mut counts = BTreeMap::new();
        for e in &self.endpoints {
            *counts
                .entry((e.labels.province.to_string(), e.labels.carrier.to_string()))
                .or_insert(0) += 1;
        }
        counts
    }
}

type ReadFile<'a> = dyn Fn(&Path) -> std::io::Result<Vec<u8>> + 'a;

/// Validates config text; inventory files are read through `read` (relative to `base`).
pub fn load_text(file: &Path, text: &str, base: &Path, read: &ReadFile<'_>) -> Result<Config, LoadError> {
    load_text_with(file, text, base, read, Overrides::default())
}

/// [`load_text`] with the command line's settings over the file's.
pub fn load_text_with(
    file: &Path,
    text: &str,
    base: &Path,
    read: &ReadFile<'_>,
    overrides: Overrides,
) -> Result<Config, LoadError> {
    let mut errors = LoadError::default();
    let Some(raw) = toml_file::parse(file, text, &mut errors) else {
        // Past a syntax or type error nothing else in the file can be trusted.
        return Err(errors);
    };
    let mut v = Validator {
        file,
        text,
        errors: &mut errors,
    };

    let listen_address = match &raw.web.listen_address {
        None => SocketAddr::from(([127, 0, 0, 1], 9808)),
        Some(s) => v
            .parse(
                s,
                "web.listen_address",
                |t| t.parse::<SocketAddr>().ok(),
                "write host:port, e.g. \"127.0.0.1:9808\" or \"[::]:9808\"",
            )
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9808))),
    };
    let probe_targets = match &raw.web.probe_targets {
        None => ProbeTargets::Inventory,
        Some(s) => v
            .parse(
                s,
                "web.probe_targets",
                |t| match t.as_str() {
                    "inventory" => Some(ProbeTargets::Inventory),
                    "any" => Some(ProbeTargets::Any),
                    _ => None,
                },
                "write \"inventory\" (the default) or \"any\"",
            )
            .unwrap_or_default(),
    };
    let probe = v.probe(&raw);
    let mut health = v.health(&raw);
    health.quality = quality::validate(file, text, &raw.quality, probe.interval.as_secs_f64(), v.errors);
    let dns = v.dns(&raw.dns);
    let vantage = v.vantage(&raw.vantage);
    let quorum = v.quorum(&raw.vantage);
    let shard = v.shard(&raw.shard, overrides.shard);
    let paths = v.paths(&raw.paths);
    let references = v.references(&raw.monitor);

    let mut inventory_files = Vec::new();
    let mut rows = Vec::new();
    let checks = checks::validate(file, text, &raw.check, &raw.checks, v.errors);
    let store = v.store(&raw, base);
    let report = v.report(&raw, base, read);
    let province_centroids = match &raw.geo.province_centroids {
        None => Vec::new(),
        Some(p) => {
            let path = base.join(p.get_ref());
            match read(&path) {
                Ok(bytes) => geo::read_centroids(&path, &bytes, v.errors),
                Err(e) => {
                    let (l, c) = position(text, p);
                    v.problem_at(
                        l,
                        c,
                        "geo.province_centroids",
                        &format!("{} cannot be read: {e}", path.display()),
                        "correct the path (relative to the config file) or remove the key",
                    );
                    Vec::new()
                }
            }
        }
    };
    // Each window's problems go to the line of its [[maintenance]] table.
    let mut windows = Vec::new();
    let mut windows_ok = true;
    for (index, window) in raw.maintenance.iter().enumerate() {
        match MaintenanceWindow::from_raw(index, window) {
            Ok(w) => windows.push(w),
            Err(problems) => {
                windows_ok = false;
                let (l, c) = toml_file::array_table_position(text, "maintenance", index).unwrap_or((0, 0));
                for p in problems {
                    v.errors.push(p.placed(v.file, l, Some(c)));
                }
            }
        }
    }
    let maintenance = if windows_ok {
        Maintenance {
            raw: raw.maintenance.clone(),
            windows,
        }
    } else {
        Maintenance::default()
    };
    let mut ctx = inventory::RowContext {
        seen: inventory::SeenIds::new(),
        interner: Default::default(),
        checks: &checks,
    };
    match &raw.inventory.files {
        None => v.problem_at(
            0,
            0,
            "inventory.files",
            "is missing",
            "add [inventory] files = [\"inventory.csv\"] (paths relative to the config file)",
        ),
        Some(files) if files.get_ref().is_empty() => {
            let (l, c) = position(text, files);
            v.problem_at(
                l,
                c,
                "inventory.files",
                "is empty",
                "name at least one inventory CSV file",
            );
        }
        Some(files) => {
            for f in files.get_ref() {
                let path = base.join(f.get_ref());
                match read(&path) {
                    Ok(csv) => rows.push((path.clone(), inventory::read_rows(&path, &csv, &mut ctx, v.errors))),
                    Err(e) => {
                        let (l, c) = position(text, f);
                        v.problem_at(
                            l,
                            c,
                            "inventory.files",
                            &format!("{} cannot be read: {e}", path.display()),
                            "correct the path (relative to the config file) or create the file",
                        );
                    }
                }
                inventory_files.push(path);
            }
        }
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(errors);
    }
    let mut endpoints = Vec::new();
    let mut inventory_models = Vec::new();
    let mut hosts = Vec::new();
    for (path, file_rows) in rows {
        if let Some(model) = inventory::MapModel::of(file_rows.iter().map(|r| &r.labels)) {
            inventory_models.push((path.clone(), model));
        }
        endpoints.extend(inventory::into_endpoints(&path, file_rows, &mut hosts));
    }
    let inventory_endpoints = endpoints.len();
    if !shard.is_whole() {
        endpoints.retain(|e| shard.owns(e.id.as_str()));
    }
    inventory::check_capacity(file, &probe, &endpoints, &mut errors);
    quality::check_names(file, text, &raw.quality, &endpoints, &mut errors);
    errors.sort();
    errors.into_result(Config {
        source: Some(file.to_path_buf()).filter(|p| !p.starts_with("<embedded>")),
        overrides,
        web: WebConfig {
            listen_address,
            probe_targets,
            enable_lifecycle: raw.web.enable_lifecycle.unwrap_or(false),
        },
        inventory_files,
        probe,
        health,
        checks,
        store,
        maintenance,
        report,
        province_centroids,
        dns,
        vantage,
        quorum,
        paths,
        references,
        shard,
        inventory_endpoints,
        hosts,
        inventory_models,
        endpoints,
    })
}

struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    errors: &'a mut LoadError,
}

impl Validator<'_> {
    fn problem_at(&mut self, line: usize, column: usize, field: &str, message: &str, fix: &str) {
        let column = (line > 0).then_some(column);
        self.errors
            .push(Problem::at(self.file, line, column, field).says(message).fix(fix));
    }

    fn parse<T, U>(&mut self, value: &Spanned<T>, field: &str, f: impl Fn(&T) -> Option<U>, fix: &str) -> Option<U>
    where
        T: std::fmt::Debug,
    {
        let out = f(value.get_ref());
        if out.is_none() {
            let (l, c) = position(self.text, value);
            self.problem_at(l, c, field, &format!("{:?} is not valid", value.get_ref()), fix);
        }
        out
    }

    fn duration(
        &mut self,
        value: &Option<Spanned<String>>,
        field: &str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        let Some(value) = value else { return default };
        let (l, c) = position(self.text, value);
        match humantime::parse_duration(value.get_ref()) {
            Err(_) => {
                self.problem_at(
                    l,
                    c,
                    field,
                    &format!("{:?} is not a duration", value.get_ref()),
                    "write a duration with a unit, e.g. \"10s\", \"250ms\", \"1m\"",
                );
                default
            }
            Ok(d) if d < min || d > max => {
                self.problem_at(
                    l,
                    c,
                    field,
                    &format!("{:?} is out of range", value.get_ref()),
                    &format!(
                        "choose a value from {} to {}",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                );
                default
            }
            Ok(d) => d,
        }
    }

    fn integer(&mut self, value: &Option<Spanned<i64>>, field: &str, default: u32, min: u32, max: u32) -> u32 {
        let Some(value) = value else { return default };
        let n = *value.get_ref();
        if n < i64::from(min) || n > i64::from(max) {
            let (l, c) = position(self.text, value);
            self.problem_at(
                l,
                c,
                field,
                &format!("{n} is out of range"),
                &format!("choose a whole number from {min} to {max}"),
            );
            return default;
        }
        n as u32
    }

    fn report(&mut self, raw: &RawConfig, base: &Path, read: &ReadFile<'_>) -> ReportSettings {
        let r = &raw.report;
        let time_zone = match &r.time_zone {
            None => crate::domain::sla::DEFAULT_TIME_ZONE.to_string(),
            Some(tz) => {
                if crate::domain::sla::time_zone(tz.get_ref()).is_err() {
                    let (l, c) = position(self.text, tz);
                    self.problem_at(
                        l,
                        c,
                        "report.time_zone",
                        &format!("{:?} is not a known time zone", tz.get_ref()),
                        "write an IANA name such as \"Asia/Ho_Chi_Minh\"",
                    );
                }
                tz.get_ref().clone()
            }
        };
        let mut pct = |v: &Spanned<f64>, field: &str| -> f64 {
            let x = *v.get_ref();
            if !(0.0..=100.0).contains(&x) {
                let (l, c) = position(self.text, v);
                self.problem_at(
                    l,
                    c,
                    field,
                    &format!("{x} is not a percentage"),
                    "write a target such as 99.5",
                );
            }
            x
        };
        let default = r
            .default_target
            .as_ref()
            .map_or(crate::domain::sla::DEFAULT_TARGET_PCT, |v| {
                pct(v, "report.default_target")
            });
        let carriers: Vec<(String, f64)> = r
            .targets
            .iter()
            .flatten()
            .map(|(carrier, v)| (carrier.clone(), pct(v, &format!("report.targets.{carrier}"))))
            .collect();
        let (schedules, smtp) = schedule::validate(self.file, self.text, base, read, r, self.errors);
        let mut targets = crate::domain::sla::Targets::new(default, carriers);
        let mut charged = |v: &Spanned<Vec<String>>, field: &str| {
            self.parse(
                v,
                field,
                |names| crate::domain::sla_cause::Charged::parse(names.iter().map(String::as_str)).ok(),
                "list fault places among \"endpoint\" (the commune's site), \"path\" (a router on the way) and \"unknown\" (not placed), e.g. [\"path\", \"unknown\"]",
            )
            .unwrap_or_default()
        };
        if let Some(v) = &r.charge {
            targets.charge.default = charged(v, "report.charge");
        }
        for (carrier, v) in r.charge_by_carrier.iter().flatten() {
            let c = charged(v, &format!("report.charge_by_carrier.{carrier}"));
            targets.charge.carriers.insert(carrier.clone(), c);
        }
        ReportSettings {
            time_zone,
            targets,
            schedules,
            smtp,
        }
    }

    fn health(&mut self, raw: &RawConfig) -> HealthPolicy {
        let d = HealthPolicy::default();
        let s = &raw.state;
        let g = &s.degraded;
        let loss_ratio = match &g.loss_ratio {
            None => d.degraded.loss_ratio,
            Some(v) => self
                .parse(
                    v,
                    "state.degraded.loss_ratio",
                    |r| (0.0..=1.0).contains(r).then_some(*r),
                    "write a ratio from 0.0 to 1.0, e.g. 0.2 for 20 %",
                )
                .unwrap_or(d.degraded.loss_ratio),
        };
        let max = Duration::from_secs(60);
        HealthPolicy {
            down_after: self.integer(&s.down_after, "state.down_after", d.down_after, 1, 1000),
            up_after: self.integer(&s.up_after, "state.up_after", d.up_after, 1, 1000),
            degraded: DegradedLimits {
                loss_ratio,
                rtt: self.duration(&g.rtt, "state.degraded.rtt", d.degraded.rtt, Duration::ZERO, max),
                jitter: self.duration(
                    &g.jitter,
                    "state.degraded.jitter",
                    d.degraded.jitter,
                    Duration::ZERO,
                    max,
                ),
                window: self.integer(&g.window, "state.degraded.window", d.degraded.window, 1, 100),
            },
            quality: d.quality,
        }
    }
}
