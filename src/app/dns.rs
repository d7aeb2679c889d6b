//! Keeping the inventory's host names resolved, off the probing path.
//!
//! One task (the refresher) owns a table of every host name in the inventory. It resolves names
//! [`DnsSettings::concurrency`] at a time, each within [`DnsSettings::timeout`], and resolves
//! each again when its answer's TTL runs out (clamped to `min_ttl`..`max_ttl`); a failed name is
//! retried after `min_ttl`. What changes (a new address, a failure, a recovery) goes to the
//! reloader as [`Changes`], which applies it like an inventory reload: an endpoint whose address
//! changed keeps its id, state and counters and is probed at the new address from its next
//! round. Literal addresses never wait for any of this.
//!
//! A name keeps its address while its answers still hold it (round-robin records do not move an
//! endpoint). When resolution fails for want of an answer (timeout, SERVFAIL, no server), a name
//! that resolved before keeps its last good address for `stale_limit` (serve-stale, RFC 8767)
//! and the failure is counted; an authoritative "no such name" or "no address" ends the address
//! at once. A name without an address is not probed: its endpoints stay Unknown with a `dns`
//! reason.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::config::Config;
use crate::config::dns::DnsSettings;
use crate::config::resolve::{Answer, Failure, Resolver};
use crate::domain::{Endpoint, Resolution};
use crate::metrics::DaemonMetrics;

/// What endpoints written as one host name are probed at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub address: Option<IpAddr>,
    pub resolution: Resolution,
}

impl Effective {
    const PENDING: Effective = Effective {
        address: None,
        resolution: Resolution::Pending,
    };

    /// The `status` label of `diemcau_dns_names`.
    fn status(&self) -> &'static str {
        match (&self.resolution, self.address) {
            (Resolution::Pending, _) => "pending",
            (Resolution::Failed(_), Some(_)) => "stale",
            (Resolution::Failed(_), None) => "failed",
            _ => "resolved",
        }
    }
}

/// Names whose [`Effective`] changed, for the reloader.
pub type Changes = Vec<(Arc<str>, Effective)>;

/// The host names of a config, each once.
pub fn host_names(config: &Config) -> Vec<Arc<str>> {
    let mut seen = HashSet::new();
    config
        .endpoints
        .iter()
        .filter_map(|e| e.host.clone())
        .filter(|h| seen.insert(h.clone()))
        .collect()
}

/// The endpoints with the addresses `view` holds for their host names; `None` if none differs.
pub fn with_names(endpoints: &[Arc<Endpoint>], view: &HashMap<Arc<str>, Effective>) -> Option<Vec<Arc<Endpoint>>> {
    let mut changed = false;
    let out = endpoints
        .iter()
        .map(|e| {
            let Some(eff) = e.host.as_ref().and_then(|h| view.get(h)) else {
                return e.clone();
            };
            if e.address == eff.address && e.resolution == eff.resolution {
                return e.clone();
            }
            changed = true;
            Arc::new(Endpoint {
                address: eff.address,
                resolution: eff.resolution.clone(),
                ..(**e).clone()
            })
        })
        .collect();
    changed.then_some(out)
}

/// A message to the refresher.
pub enum Command {
    /// The inventory's names after a (re)load, with the `[dns]` settings: the resolver is built
    /// again (so /etc/resolv.conf and /etc/hosts are read again), new names are resolved at once
    /// and failed ones retried at once.
    Names(Vec<Arc<str>>, DnsSettings),
}

/// One name's place in the table.
#[derive(Debug)]
struct Entry {
    effective: Effective,
    /// When the next lookup is due (`None` while one is in flight).
    due: Option<Instant>,
    last_good: Option<IpAddr>,
    failing_since: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry {
            effective: Effective::PENDING,
            due: Some(now),
            last_good: None,
            failing_since: None,
        }
    }

    /// Folds a lookup's result in; returns when the name is due again.
    fn fold(&mut self, result: &Result<Answer, Failure>, now: Instant, s: &DnsSettings) -> Instant {
        match result {
            Ok(answer) => {
                // Keep the address while the answer still holds it (round robin, several A).
                let address = self
                    .effective
                    .address
                    .filter(|a| answer.addresses.contains(a))
                    .or_else(|| answer.addresses.first().copied());
                self.effective = Effective {
                    address,
                    resolution: Resolution::Resolved,
                };
                self.last_good = address;
                self.failing_since = None;
                now + answer.ttl.clamp(s.min_ttl, s.max_ttl)
            }
            Err(f) => {
                let since = *self.failing_since.get_or_insert(now);
                let stale = !f.kind.authoritative() && now.duration_since(since) < s.stale_limit;
                if f.kind.authoritative() {
                    self.last_good = None;
                }
                self.effective = Effective {
                    address: self.last_good.filter(|_| stale),
                    resolution: Resolution::Failed(f.message.as_str().into()),
                };
                now + s.min_ttl
            }
        }
    }
}

/// Progress of the names added together (at start or by a reload), for the log.
struct Pass {
    started: Instant,
    total: usize,
    resolved: usize,
    failed: usize,
    max_in_flight: usize,
    names: HashSet<Arc<str>>,
    next_report: Instant,
}

/// Failures of a pass logged one by one; the rest are counted in the summary line.
const FAILURES_LOGGED: usize = 20;
/// Progress lines of a long pass, at most one per this.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Changes wait at most this long for others before they go to the reloader.
const COALESCE: Duration = Duration::from_millis(500);

type Lookup = (Arc<str>, Result<Answer, Failure>);

pub struct Refresher {
    settings: DnsSettings,
    resolver: Option<Arc<Resolver>>,
    entries: HashMap<Arc<str>, Entry>,
    schedule: BTreeSet<(Instant, Arc<str>)>,
    in_flight: JoinSet<Lookup>,
    changes: Changes,
    flush_at: Option<Instant>,
    pass: Option<Pass>,
    metrics: Arc<DaemonMetrics>,
    commands: mpsc::UnboundedReceiver<Command>,
    updates: mpsc::Sender<Changes>,
}

/// Starts the refresher on the current runtime with the loaded config's names; it ends when the
/// command sender is dropped or the reloader is gone.
pub fn spawn(
    config: &Config,
    metrics: Arc<DaemonMetrics>,
    updates: mpsc::Sender<Changes>,
) -> (mpsc::UnboundedSender<Command>, tokio::task::JoinHandle<()>) {
    let (tx, commands) = mpsc::unbounded_channel();
    let mut r = Refresher {
        settings: config.dns.clone(),
        resolver: None,
        entries: HashMap::new(),
        schedule: BTreeSet::new(),
        in_flight: JoinSet::new(),
        changes: Vec::new(),
        flush_at: None,
        pass: None,
        metrics,
        commands,
        updates,
    };
    r.set_names(host_names(config), config.dns.clone());
    (tx, tokio::spawn(r.run()))
}

impl Refresher {
    async fn run(mut self) {
        loop {
            self.start_due_lookups(Instant::now());
            let next_due = self.schedule.first().map(|(t, _)| *t);
            // Without a resolver (it could not be built) nothing is started: no busy wake-ups.
            let can_start = self.resolver.is_some() && self.in_flight.len() < self.settings.concurrency;
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    if let Ok((name, result)) = done {
                        self.on_result(name, result, Instant::now());
                    }
                }
                command = self.commands.recv() => match command {
                    Some(Command::Names(names, settings)) => self.set_names(names, settings),
                    None => return,
                },
                _ = sleep_until(next_due.unwrap_or(far)), if next_due.is_some() && can_start => {}
                _ = sleep_until(self.flush_at.unwrap_or(far)), if self.flush_at.is_some() => {}
            }
            self.report_progress(Instant::now());
            let batch_done = self.in_flight.is_empty();
            if !self.changes.is_empty() && (batch_done || self.flush_at.is_some_and(|t| t <= Instant::now())) {
                let changes = std::mem::take(&mut self.changes);
                self.flush_at = None;
                if self.updates.send(changes).await.is_err() {
                    return; // the daemon is stopping
                }
            }
        }
    }

    fn set_names(&mut self, names: Vec<Arc<str>>, settings: DnsSettings) {
        let now = Instant::now();
        let keep: HashSet<&Arc<str>> = names.iter().collect();
        let gone: Vec<Arc<str>> = self.entries.keys().filter(|n| !keep.contains(n)).cloned().collect();
        for name in gone {
            if let Some(e) = self.entries.remove(&name) {
                self.count_status(Some(&e.effective), None);
                if let Some(due) = e.due {
                    self.schedule.remove(&(due, name));
                }
            }
        }
        // Failed names are retried at once: a reload is how an operator says "DNS is fixed".
        let retry: Vec<Arc<str>> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.effective.resolution, Resolution::Failed(_)))
            .map(|(n, _)| n.clone())
            .collect();
        for name in retry {
            self.reschedule(&name, now);
        }
        let added: Vec<Arc<str>> = names.into_iter().filter(|n| !self.entries.contains_key(n)).collect();
        for name in &added {
            self.entries.insert(name.clone(), Entry::new(now));
            self.schedule.insert((now, name.clone()));
            self.count_status(None, Some(&Effective::PENDING));
        }
        // Built again at every (re)load, so a changed /etc/resolv.conf or /etc/hosts is read.
        self.settings = settings;
        self.resolver = None;
        if !self.entries.is_empty() {
            match Resolver::new(&self.settings) {
                Ok(r) => {
                    if let Some(w) = &r.warning {
                        tracing::warn!("{w}");
                    }
                    self.resolver = Some(Arc::new(r));
                }
                Err(e) => tracing::error!(error = %e, "host names cannot be resolved"),
            }
        }
        if !added.is_empty() {
            tracing::info!(
                names = added.len(),
                concurrency = self.settings.concurrency,
                timeout = %humantime::format_duration(self.settings.timeout),
                servers = self.resolver.as_ref().map_or("none", |r| r.source.as_str()),
                "resolving host names; endpoints written as addresses are probed meanwhile"
            );
            let pass = self.pass.get_or_insert_with(|| Pass {
                started: now,
                total: 0,
                resolved: 0,
                failed: 0,
                max_in_flight: 0,
                names: HashSet::new(),
                next_report: now + PROGRESS_EVERY,
            });
            pass.total += added.len();
            pass.names.extend(added);
        }
    }

    /// Makes a waiting name due at `at` (one in flight is rescheduled by its result).
    fn reschedule(&mut self, name: &Arc<str>, at: Instant) {
        let Some(e) = self.entries.get_mut(name) else { return };
        if let Some(due) = e.due {
            self.schedule.remove(&(due, name.clone()));
            e.due = Some(at);
            self.schedule.insert((at, name.clone()));
        }
    }

    fn start_due_lookups(&mut self, now: Instant) {
        let Some(resolver) = self.resolver.clone() else { return };
        while self.in_flight.len() < self.settings.concurrency {
            let Some((due, name)) = self.schedule.first().cloned() else {
                break;
            };
            if due > now {
                break;
            }
            self.schedule.pop_first();
            if let Some(e) = self.entries.get_mut(&name) {
                e.due = None;
            }
            let resolver = resolver.clone();
            self.metrics.dns_resolutions.inc();
            self.in_flight.spawn(async move {
                let result = resolver.lookup(&name).await;
                (name, result)
            });
        }
        if let Some(pass) = &mut self.pass {
            pass.max_in_flight = pass.max_in_flight.max(self.in_flight.len());
        }
    }

    fn on_result(&mut self, name: Arc<str>, result: Result<Answer, Failure>, now: Instant) {
        let Some(entry) = self.entries.get_mut(&name) else {
            return;
        }; // removed meanwhile
        let before = entry.effective.clone();
        let due = entry.fold(&result, now, &self.settings);
        if let Some(old) = entry.due.replace(due) {
            self.schedule.remove(&(old, name.clone()));
        }
        let after = entry.effective.clone();
        self.schedule.insert((due, name.clone()));
        if let Err(f) = &result {
            self.metrics.dns_failures.with_label_values(&[f.kind.label()]).inc();
        }
        let in_pass = self.pass.as_mut().is_some_and(|p| p.names.remove(&name));
        if let Some(pass) = self.pass.as_mut().filter(|_| in_pass) {
            match &result {
                Ok(_) => pass.resolved += 1,
                Err(f) => {
                    pass.failed += 1;
                    if pass.failed <= FAILURES_LOGGED {
                        tracing::warn!(name = %name, reason = %f.message, "host name does not resolve: its endpoints are not probed until it does");
                    }
                }
            }
        }
        if before == after {
            return;
        }
        self.count_status(Some(&before), Some(&after));
        if !in_pass {
            log_change(&name, &before, &after);
        }
        if before.address.is_some() && after.address.is_some() && before.address != after.address {
            self.metrics.dns_address_changes.inc();
        }
        self.changes.push((name, after));
        self.flush_at.get_or_insert(now + COALESCE);
    }

    fn count_status(&self, before: Option<&Effective>, after: Option<&Effective>) {
        if let Some(b) = before {
            self.metrics.dns_names.with_label_values(&[b.status()]).dec();
        }
        if let Some(a) = after {
            self.metrics.dns_names.with_label_values(&[a.status()]).inc();
        }
    }

    fn report_progress(&mut self, now: Instant) {
        let Some(pass) = &mut self.pass else { return };
        let done = pass.resolved + pass.failed;
        let elapsed = humantime::format_duration(Duration::from_millis(
            now.duration_since(pass.started).as_millis() as u64
        ));
        if done >= pass.total {
            tracing::info!(
                names = pass.total,
                resolved = pass.resolved,
                failed = pass.failed,
                max_in_flight = pass.max_in_flight,
                elapsed = %elapsed,
                "host names resolved"
            );
            self.pass = None;
        } else if now >= pass.next_report {
            pass.next_report = now + PROGRESS_EVERY;
            tracing::info!(
                names = pass.total,
                resolved = pass.resolved,
                failed = pass.failed,
                pending = pass.total - done,
                in_flight = self.in_flight.len(),
                elapsed = %elapsed,
                "resolving host names"
            );
        }
    }
}

fn log_change(name: &str, before: &Effective, after: &Effective) {
    let show = |a: Option<IpAddr>| a.map_or("none".to_string(), |a| a.to_string());
    match (&after.resolution, before.address, after.address) {
        (Resolution::Resolved, Some(old), Some(new)) if old != new => {
            tracing::info!(name, from = %old, to = %new, "host name resolves to a new address: probing it from the next round");
        }
        (Resolution::Resolved, _, _) => {
            tracing::info!(name, address = %show(after.address), "host name resolves again");
        }
        (Resolution::Failed(why), _, Some(kept)) => {
            tracing::warn!(name, reason = %why, address = %kept, "host name does not resolve: probing its last good address");
        }
        (Resolution::Failed(why), _, None) => {
            tracing::warn!(name, reason = %why, "host name does not resolve: its endpoints are no longer probed");
        }
        (Resolution::Pending | Resolution::Literal, _, _) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::resolve::FailureKind;

    fn ok(addresses: &[&str], ttl_s: u64) -> Result<Answer, Failure> {
        Ok(Answer {
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            ttl: Duration::from_secs(ttl_s),
        })
    }

    fn fail(kind: FailureKind) -> Result<Answer, Failure> {
        Err(Failure {
            kind,
            message: kind.label().into(),
        })
    }

    fn settings() -> DnsSettings {
        DnsSettings {
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(3600),
            stale_limit: Duration::from_secs(600),
            ..DnsSettings::default()
        }
    }

    #[test]
    fn ttl_is_clamped_and_a_held_address_is_kept() {
        let (s, t0) = (settings(), Instant::now());
        let mut e = Entry::new(t0);
        assert_eq!(e.fold(&ok(&["10.0.0.1", "10.0.0.2"], 5), t0, &s), t0 + s.min_ttl);
        assert_eq!(e.effective.address, Some("10.0.0.1".parse().unwrap()));
        // Round robin: the same records in another order move nothing.
        assert_eq!(e.fold(&ok(&["10.0.0.2", "10.0.0.1"], 86_400), t0, &s), t0 + s.max_ttl);
        assert_eq!(e.effective.address, Some("10.0.0.1".parse().unwrap()));
        e.fold(&ok(&["10.0.0.9"], 60), t0, &s);
        assert_eq!(e.effective.address, Some("10.0.0.9".parse().unwrap()));
        assert_eq!(e.effective.resolution, Resolution::Resolved);
    }

    #[test]
    fn resolver_failures_serve_the_last_address_until_the_stale_limit() {
        let (s, t0) = (settings(), Instant::now());
        let mut e = Entry::new(t0);
        e.fold(&ok(&["10.0.0.1"], 60), t0, &s);
        let due = e.fold(&fail(FailureKind::Timeout), t0 + Duration::from_secs(60), &s);
        assert_eq!(due, t0 + Duration::from_secs(90), "retried after min_ttl");
        assert_eq!(e.effective.address, Some("10.0.0.1".parse().unwrap()));
        assert!(matches!(e.effective.resolution, Resolution::Failed(_)));
        assert_eq!(e.effective.status(), "stale");
        e.fold(&fail(FailureKind::Error), t0 + Duration::from_secs(600), &s);
        assert_eq!(
            e.effective.address,
            Some("10.0.0.1".parse().unwrap()),
            "540 s of failure < 600"
        );
        e.fold(&fail(FailureKind::Timeout), t0 + Duration::from_secs(660), &s);
        assert_eq!(e.effective.address, None, "600 s of failure: no longer probed");
        assert_eq!(e.effective.status(), "failed");
        e.fold(&ok(&["10.0.0.1"], 60), t0 + Duration::from_secs(700), &s);
        assert_eq!(e.effective.status(), "resolved");
    }

    #[test]
    fn an_authoritative_no_ends_the_address_at_once() {
        let (s, t0) = (settings(), Instant::now());
        for kind in [FailureKind::NxDomain, FailureKind::NoAddress] {
            let mut e = Entry::new(t0);
            e.fold(&ok(&["10.0.0.1"], 60), t0, &s);
            e.fold(&fail(kind), t0 + Duration::from_secs(1), &s);
            assert_eq!(e.effective.address, None, "{kind:?}");
            e.fold(&fail(FailureKind::Timeout), t0 + Duration::from_secs(2), &s);
            assert_eq!(e.effective.address, None, "no last good address after {kind:?}");
        }
    }

    #[test]
    fn a_never_resolved_name_has_no_address() {
        let (s, t0) = (settings(), Instant::now());
        let mut e = Entry::new(t0);
        assert_eq!(e.effective.status(), "pending");
        e.fold(&fail(FailureKind::Timeout), t0, &s);
        assert_eq!(e.effective.address, None);
        assert_eq!(e.effective.status(), "failed");
    }
}
