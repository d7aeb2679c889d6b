//! `diemcau run`: wires config → ICMP engine → monitor → HTTP server, and shuts down cleanly.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::SystemTime;

use anyhow::Context;
use tokio::sync::mpsc;

use super::dns;
use super::report_schedule::{ScheduleSettings, Scheduler};
use crate::config::Config;
use crate::domain::EndpointId;
use crate::domain::{unix_ms, unix_seconds};
use crate::metrics::DaemonMetrics;
use crate::monitor::{Monitor, MonitorSink};
use crate::probe::icmp::{self, EngineController, Replacement, engine};
use crate::store::{Store, StoreConfig, SystemClock};
use crate::web::blackbox::ProbeModules;
use crate::web::reports::ReportContext;
use crate::web::security::WebSecurity;
use crate::web::server::{self, AppState, ReloadRequest};
use std::collections::HashMap;

/// Runs the daemon until `shutdown` resolves. The web `listeners` are already bound (so that
/// callers can bind before entering a private network namespace); every one is served.
pub async fn run(
    config: Config,
    web_config: Option<PathBuf>,
    listeners: Vec<std::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let security = match &web_config {
        Some(p) => WebSecurity::load(p)?,
        None => WebSecurity::none(),
    };
    tracing::info!(web = security.summary(), "web security");
    let web = Arc::new(ArcSwap::from_pointee(security));
    let metrics = Arc::new(DaemonMetrics::new());
    metrics.set_vantage(&config.vantage);
    metrics.set_shard(&config.shard);
    log_share(&config);
    metrics.reload_successful.set(1);
    metrics.reload_success_time.set(unix_seconds(SystemTime::now()));

    let targets = engine_targets(&config);
    let sockets = icmp::open_sockets(&addresses(&targets), config.probe.socket)?;
    let sockets_open = [sockets.v4.is_some(), sockets.v6.is_some()];
    for s in [&sockets.v4, &sockets.v6].into_iter().flatten() {
        tracing::info!(family = s.family.name(), kind = s.kind.name(), "ICMP socket open");
    }
    let monitor = Arc::new(Monitor::new(
        &config.endpoints,
        config.health.clone(),
        &config.checks,
        Arc::new(config.maintenance.windows.clone()),
        metrics.clone(),
    ));
    monitor.refresh_maintenance(SystemTime::now());
    monitor.set_references(&config.references);
    metrics.set_province_centroids(&config.province_centroids, &provinces_of(&config));
    let store = open_store(&config)?;
    metrics.registry.register(Box::new(store.collector()))?;
    let replica = super::shared_ledger::start(&config, &metrics)?;
    store.sync_endpoints(config.endpoints.clone());
    restore_baselines(&monitor, &store);
    monitor.set_recorder(Box::new(Ledger(store.clone())));
    let maintenance_ticker = tokio::spawn({
        let monitor = monitor.clone();
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                monitor.refresh_maintenance(SystemTime::now());
            }
        }
    });
    let engine = engine::start(
        targets,
        &config.probe,
        sockets,
        Box::new(MonitorSink(monitor.clone())),
        metrics.engine.clone(),
    )
    .context("starting the ICMP engine thread")?;
    monitor.configure_paths(&config.paths, super::paths::regular_rate(&config));
    let path_learner = tokio::spawn(super::paths::learn(monitor.clone(), engine.controller()));
    tracing::info!(
        endpoints = config.endpoints.len(),
        host_names = config.hosts.len(),
        interval = ?config.probe.interval,
        packets = config.probe.packets,
        "probing started"
    );

    let mut web_listeners = Vec::with_capacity(listeners.len());
    for listener in listeners {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tracing::info!(address = %listener.local_addr()?, "web server listening");
        web_listeners.push(listener);
    }
    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let sip = crate::probe::sip::SipClient::new()
        .await
        .context("opening the SIP client's UDP sockets")?;
    let probe_slots = Arc::new(tokio::sync::Semaphore::new(crate::web::blackbox::MAX_CONCURRENT_PROBES));
    let modules = Arc::new(ArcSwap::from_pointee(ProbeModules::new(
        &config,
        sip.clone(),
        probe_slots.clone(),
    )));
    let reports = Arc::new(ArcSwap::from_pointee(ReportContext::of(&config, &store)));
    let schedules = Arc::new(ArcSwap::from_pointee(ScheduleSettings::of(&config)));
    let lifecycle = Arc::new(std::sync::atomic::AtomicBool::new(config.web.enable_lifecycle));
    let merged = Arc::new(ArcSwap::from_pointee(crate::web::merged::MergedView::default()));
    let merged_view = tokio::spawn(super::merged_view::refresh(reports.clone(), merged.clone()));
    let app = AppState {
        monitor: monitor.clone(),
        vantage: config.vantage.as_str().into(),
        reload: reload_tx.clone(),
        modules: modules.clone(),
        web: web.clone(),
        reports: reports.clone(),
        lifecycle: lifecycle.clone(),
        api_bodies: Arc::default(),
        merged: merged.clone(),
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(server::serve(web_listeners, app, async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));
    let scheduler = Scheduler::new(reports.clone(), schedules.clone(), Arc::new(SystemClock));
    let mut scheduler = tokio::spawn(scheduler.run(std::time::Duration::from_secs(60), stop_rx.clone()));
    let services = Arc::new(std::sync::Mutex::new(Some(ServiceRunner::start(
        &config, &monitor, &sip, &metrics,
    ))));
    // Host names resolve in the background; their endpoints join the engine through the reloader.
    let (dns_tx, dns_rx) = mpsc::channel::<dns::Changes>(16);
    let (dns_commands, refresher) = dns::spawn(&config, metrics.clone(), dns_tx);
    let reloader = Reloader {
        path: config.source.clone(),
        open_families: [sockets_open[0], sockets_open[1]],
        current: config,
        metrics: metrics.clone(),
        monitor: monitor.clone(),
        engine: engine.controller(),
        services: services.clone(),
        sip,
        modules,
        web,
        web_config,
        store: store.clone(),
        reports,
        schedules,
        lifecycle,
        dns: dns_commands,
        names: HashMap::new(),
    };
    let reloader = tokio::spawn(reloader.run(reload_rx, dns_rx));
    let sighup = tokio::spawn(forward_sighup(reload_tx));

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = server.await;
    // A report being written or mailed gets a moment to finish; the ledger says what is done.
    if tokio::time::timeout(std::time::Duration::from_secs(10), &mut scheduler)
        .await
        .is_err()
    {
        scheduler.abort();
    }
    reloader.abort();
    refresher.abort();
    merged_view.abort();
    sighup.abort();
    let runner = services.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(r) = runner {
        r.stop().await;
    }
    maintenance_ticker.abort();
    path_learner.abort();
    tokio::task::spawn_blocking(move || engine.stop()).await?;
    match tokio::task::spawn_blocking(move || store.shutdown()).await? {
        Ok(()) => tracing::info!("ledger closed"),
        Err(e) => tracing::error!(error = %e, "closing the ledger failed"),
    }
    if let Some(r) = replica {
        // The clean stop just committed goes out now, or at the next start.
        tokio::task::spawn_blocking(move || r.stop(std::time::Duration::from_secs(2))).await?;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn forward_sighup(reload: mpsc::Sender<ReloadRequest>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload through POST /-/reload");
        return;
    };
    while hup.recv().await.is_some() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if reload.send(tx).await.is_err() {
            return;
        }
        let _ = rx.await;
    }
}

/// The addresses of `targets` that are known, for opening sockets.
fn addresses(targets: &[Option<std::net::IpAddr>]) -> Vec<std::net::IpAddr> {
    targets.iter().flatten().copied().collect()
}

fn provinces_of(config: &Config) -> std::collections::HashSet<&str> {
    config.endpoints.iter().map(|e| &*e.labels.province).collect()
}

/// Says which share of the inventory this instance probes, when it is not all of it.
fn log_share(config: &Config) {
    let s = config.shard;
    if !s.is_whole() {
        tracing::info!(
            shard = s.index,
            shards = s.count,
            replicas = s.replicas,
            endpoints = config.endpoints.len(),
            inventory = config.inventory_endpoints,
            "probing this shard's share of the inventory"
        );
    }
}

/// Opens the ledger (creating its directory); a database that cannot be opened at start is a
/// configuration problem, so the daemon refuses to start rather than lose history silently.
fn open_store(config: &Config) -> anyhow::Result<Store> {
    let path = &config.store.path;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the ledger directory {}", dir.display()))?;
    }
    let settings = StoreConfig {
        heartbeat: config.store.heartbeat,
        vantage: config.vantage.clone(),
        outbox: config.store.shared.is_some(),
        ..StoreConfig::new(path)
    };
    let store = Store::open(settings, Arc::new(SystemClock))
        .with_context(|| format!("opening the ledger {} (set [store] path)", path.display()))?;
    tracing::info!(path = %path.display(), run = store.run_id(), vantage = %config.vantage, "ledger open");
    Ok(store)
}

/// The running service-check scheduler; replaced as a whole on reload.
struct ServiceRunner {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServiceRunner {
    fn start(
        config: &Config,
        monitor: &Arc<Monitor>,
        sip: &Arc<crate::probe::sip::SipClient>,
        metrics: &Arc<DaemonMetrics>,
    ) -> ServiceRunner {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(crate::monitor::scheduler::run(
            monitor.clone(),
            Arc::new(config.checks.clone()),
            // Only endpoints with service checks and an address: the rest would be copied for
            // nothing.
            config
                .endpoints
                .iter()
                .filter(|e| !e.checks.is_empty() && e.address.is_some())
                .cloned()
                .collect(),
            sip.clone(),
            metrics.clone(),
            rx,
        ));
        ServiceRunner { stop, task }
    }

    /// Stops scheduling; attempts already running finish and report on their own.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Applies config reloads one at a time: validate first (an invalid config changes nothing and
/// sets `diemcau_config_last_reload_successful` to 0), then switch the engine and the monitor
/// to the new inventory by endpoint id.
struct Reloader {
    path: Option<PathBuf>,
    current: Config,
    metrics: Arc<DaemonMetrics>,
    monitor: Arc<Monitor>,
    engine: EngineController,
    open_families: [bool; 2],
    services: Arc<std::sync::Mutex<Option<ServiceRunner>>>,
    sip: Arc<crate::probe::sip::SipClient>,
    modules: Arc<ArcSwap<ProbeModules>>,
    web: Arc<ArcSwap<WebSecurity>>,
    web_config: Option<PathBuf>,
    store: Store,
    reports: Arc<ArcSwap<ReportContext>>,
    schedules: Arc<ArcSwap<ScheduleSettings>>,
    lifecycle: Arc<std::sync::atomic::AtomicBool>,
    /// The refresher of host names.
    dns: mpsc::UnboundedSender<dns::Command>,
    /// What each host name of the current inventory resolves to, as last heard from the
    /// refresher (a reloaded inventory takes its addresses from here).
    names: HashMap<Arc<str>, dns::Effective>,
}

impl Reloader {
    async fn run(mut self, mut requests: mpsc::Receiver<ReloadRequest>, mut dns: mpsc::Receiver<dns::Changes>) {
        loop {
            let reply = tokio::select! {
                r = requests.recv() => match r {
                    Some(reply) => reply,
                    None => return,
                },
                Some(changes) = dns.recv() => {
                    self.apply_names(changes).await;
                    continue;
                }
            };
            let started = std::time::Instant::now();
            let result = self.reload().await;
            match &result {
                Ok(summary) => {
                    self.metrics.reload_successful.set(1);
                    self.metrics.reload_success_time.set(unix_seconds(SystemTime::now()));
                    tracing::info!(took = ?started.elapsed(), "config reloaded: {summary}");
                }
                Err(e) => {
                    self.metrics.reload_successful.set(0);
                    tracing::error!(error = %e, "config reload failed; the old config stays in force");
                }
            }
            let _ = reply.send(result);
        }
    }

    /// Applies what the refresher found: endpoints whose host name changed address (or lost or
    /// regained one) switch like re-addressed endpoints of a reload.
    async fn apply_names(&mut self, changes: dns::Changes) {
        let names = changes.len();
        self.names.extend(changes);
        let Some(endpoints) = dns::with_names(&self.current.endpoints, &self.names) else {
            return;
        };
        let mut new = self.current.clone();
        new.endpoints = endpoints;
        match self.apply(new).await {
            Ok(summary) => tracing::debug!(names, "host name changes applied: {summary}"),
            Err(e) => tracing::error!(error = %e, "host name changes could not be applied"),
        }
    }

    async fn reload(&mut self) -> Result<String, String> {
        let Some(path) = self.path.clone() else {
            return Err("running on the embedded defaults: there is no config file to reload".into());
        };
        let overrides = self.current.overrides;
        let mut new = tokio::task::spawn_blocking(move || Config::load_with(&path, overrides))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        // Names already resolved keep their addresses; new ones resolve in the background.
        let names = dns::host_names(&new);
        let known: std::collections::HashSet<&Arc<str>> = names.iter().collect();
        self.names.retain(|n, _| known.contains(n));
        if let Some(endpoints) = dns::with_names(&new.endpoints, &self.names) {
            new.endpoints = endpoints;
        }
        let _ = self.dns.send(dns::Command::Names(names, new.dns.clone()));
        if new.vantage != self.current.vantage {
            // The vantage is the identity of the run in the ledger: one name per run.
            tracing::warn!(
                running = %self.current.vantage,
                configured = %new.vantage,
                "vantage.name changed: it takes effect at the next restart"
            );
            new.vantage.clone_from(&self.current.vantage);
        }
        // Validated with the config (a bad web config fails the whole reload), applied last.
        let security = match &self.web_config {
            Some(p) => Some(
                WebSecurity::load(p)
                    .map_err(|e| e.to_string())?
                    .with_cache_of(&self.web.load()),
            ),
            None => None,
        };
        if new == self.current {
            let web = security.is_some();
            if let Some(security) = security {
                self.web.store(Arc::new(security));
            }
            return Ok(if web {
                "web config reloaded, no other change".into()
            } else {
                "no change".into()
            });
        }
        if new.web.listen_address != self.current.web.listen_address {
            tracing::warn!("web.listen_address changed: it takes effect at the next restart");
        }
        if new.probe.socket != self.current.probe.socket {
            tracing::warn!("probe.socket changed: it takes effect at the next restart");
        }
        let share = new.shard;
        let summary = self.apply(new).await?;
        self.metrics.set_shard(&share);
        if let Some(security) = security {
            self.web.store(Arc::new(security));
        }
        Ok(summary)
    }

    /// Switches the engine, the monitor, the ledger's inventory, the service checks and the web
    /// routes to `new` by endpoint id.
    async fn apply(&mut self, new: Config) -> Result<String, String> {
        self.lifecycle
            .store(new.web.enable_lifecycle, std::sync::atomic::Ordering::Relaxed);
        let index: HashMap<&EndpointId, usize> = self
            .current
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (&e.id, i))
            .collect();
        let carried_from: Vec<Option<usize>> = new.endpoints.iter().map(|e| index.get(&e.id).copied()).collect();
        let (mut unchanged, mut changed) = (0, 0);
        for (e, from) in new.endpoints.iter().zip(&carried_from) {
            if let Some(o) = from {
                if self.current.endpoints[*o] == *e {
                    unchanged += 1
                } else {
                    changed += 1
                }
            }
        }
        let added = carried_from.iter().filter(|c| c.is_none()).count();
        let removed = self.current.endpoints.len() - unchanged - changed;
        let targets = engine_targets(&new);
        let mut carried_from = carried_from;
        // The references follow the endpoints; one at an unchanged address keeps its place.
        let old_base = self.current.endpoints.len();
        carried_from.extend(new.references.iter().map(|r| {
            self.current
                .references
                .iter()
                .position(|o| o == r)
                .map(|i| old_base + i)
        }));
        let new_sockets =
            icmp::open_missing_sockets(&addresses(&targets), self.current.probe.socket, self.open_families)
                .map_err(|e| e.to_string())?;
        self.open_families[0] |= new_sockets.v4.is_some();
        self.open_families[1] |= new_sockets.v6.is_some();

        let (applied_tx, applied_rx) = tokio::sync::oneshot::channel();
        let monitor = self.monitor.clone();
        let endpoints = new.endpoints.clone();
        let policy = new.health.clone();
        let checks = new.checks.clone();
        let maintenance = Arc::new(new.maintenance.windows.clone());
        let references = new.references.clone();
        let replacement = Replacement {
            targets,
            carried_from,
            probe: new.probe.clone(),
            new_sockets,
            on_applied: Box::new(move |carried| {
                let carried = &carried[..endpoints.len().min(carried.len())];
                monitor.set_references(&references);
                monitor.apply_reload(&endpoints, carried, policy, &checks, maintenance);
                let _ = applied_tx.send(());
            }),
        };
        self.engine.replace(replacement).map_err(|e| e.to_string())?;
        applied_rx
            .await
            .map_err(|_| "the probe engine stopped during the reload".to_string())?;
        self.monitor
            .configure_paths(&new.paths, super::paths::regular_rate(&new));
        self.store.sync_endpoints(new.endpoints.clone());
        self.reports.store(Arc::new(ReportContext::of(&new, &self.store)));
        self.schedules.store(Arc::new(ScheduleSettings::of(&new)));
        let old = self.services.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(r) = old {
            r.stop().await;
        }
        let runner = ServiceRunner::start(&new, &self.monitor, &self.sip, &self.metrics);
        *self.services.lock().unwrap_or_else(|p| p.into_inner()) = Some(runner);
        let slots = self.modules.load().slots.clone();
        self.modules
            .store(Arc::new(ProbeModules::new(&new, self.sip.clone(), slots)));
        self.current = new;
        Ok(format!(
            "{unchanged} unchanged, {changed} changed, {added} added, {removed} removed"
        ))
    }
}

/// What the engine probes: every endpoint's address (by index), then the reference addresses.
fn engine_targets(config: &Config) -> Vec<Option<std::net::IpAddr>> {
    let mut targets: Vec<_> = config.endpoints.iter().map(|e| e.address).collect();
    targets.extend(config.references.iter().copied().map(Some));
    targets
}

/// Baselines kept by earlier runs, so a restart does not learn every path again; a ledger
/// that cannot be read for them only costs the learning.
fn restore_baselines(monitor: &Monitor, store: &Store) {
    let rows = crate::store::StoreReader::open(store.path()).and_then(|r| r.baselines());
    match rows {
        Ok(rows) => {
            let restored = monitor.restore_baselines(
                rows.iter()
                    .map(|r| (r.endpoint.as_str(), r.address.as_str(), r.hops.as_str(), r.learned_ms)),
            );
            tracing::info!(restored, kept = rows.len(), "baseline paths restored from the ledger");
        }
        Err(e) => tracing::warn!(error = %e, "reading the baseline paths from the ledger failed; learning them again"),
    }
}

/// The monitor's history into the ledger (never blocks: the store queues).
struct Ledger(Store);

impl crate::monitor::Recorder for Ledger {
    fn transition(&self, t: &crate::domain::Transition) {
        self.0.record_transition(t.clone());
    }

    fn stall(&self, stall: &icmp::Stall) {
        self.0
            .record_pause(unix_ms(stall.from), unix_ms(stall.to), "engine_stall", "");
    }

    fn brief_interruption(&self, endpoint: &EndpointId, from: SystemTime, to: SystemTime) {
        self.0.record_interruption(endpoint.clone(), unix_ms(from), unix_ms(to));
    }

    fn blind(&self, family: &'static str, from: SystemTime, to: SystemTime) {
        self.0
            .record_pause(unix_ms(from), unix_ms(to), "monitor_isolated", family);
    }

    fn fault(&self, endpoint: &EndpointId, finding: &crate::domain::path::Finding) {
        self.0.record_fault(crate::store::FaultNote {
            endpoint: endpoint.clone(),
            domain: finding.domain.as_str(),
            failing_hop: finding.failing_hop.map(|h| h.to_string()).unwrap_or_default(),
        });
    }

    fn baseline(
        &self,
        endpoint: &EndpointId,
        address: std::net::IpAddr,
        trace: &crate::domain::path::Trace,
        learned: SystemTime,
    ) {
        self.0.record_baseline(crate::store::BaselineNote {
            endpoint: endpoint.clone(),
            address: address.to_string(),
            hops: trace.hops_text(),
            learned_ms: unix_ms(learned),
        });
    }
}
