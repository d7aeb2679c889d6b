//! `diemcau run` and `diemcau check`, and what every long-running command shares: logging,
//! config loading and the shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, Overrides};
use crate::domain::diag::LoadError;
use crate::web::security::WebConfigError;

use super::LogFormat;

/// EX_CONFIG (sysexits.h): a config, inventory, web config or scenario that cannot be used.
/// The systemd unit does not restart on it (`RestartPreventExitStatus=78`).
pub(super) const EX_CONFIG: u8 = 78;

pub(super) fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|e| {
        eprintln!("invalid log level {level:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Logfmt => builder.event_format(super::logfmt::Logfmt).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The exit status for a failed `run` or `demo`: 78 when a file the user gave is at fault, so a
/// service manager stops restarting into the same error; 1 otherwise.
pub(super) fn failure(e: &anyhow::Error) -> ExitCode {
    let config = e
        .chain()
        .any(|c| c.is::<LoadError>() || c.is::<WebConfigError>() || c.is::<diemcau_lab::ScenarioError>());
    if config {
        ExitCode::from(EX_CONFIG)
    } else {
        ExitCode::FAILURE
    }
}

pub(super) fn load(config: Option<&PathBuf>, overrides: Overrides) -> Option<Config> {
    let loaded = match config {
        Some(path) => Config::load_with(path, overrides),
        None => Config::embedded_with(overrides),
    };
    match loaded {
        Ok(c) => Some(c),
        Err(e) => {
            eprint!("{e}");
            None
        }
    }
}

pub(super) fn run(
    config: Option<PathBuf>,
    overrides: Overrides,
    listen: Vec<SocketAddr>,
    web_config: Option<PathBuf>,
    private_netns: bool,
) -> ExitCode {
    let Some(config) = load(config.as_ref(), overrides) else {
        return ExitCode::from(EX_CONFIG);
    };
    let addresses = crate::app::boot::listen_addresses(&config, &listen);
    let started = crate::app::boot::bind(&addresses).and_then(|listeners| {
        // Before any thread exists: unshare(CLONE_NEWUSER) refuses multi-threaded processes.
        if private_netns {
            crate::app::netns::enter_private_network()?;
        }
        crate::app::boot::serve(config, web_config, listeners, shutdown_signal())
    });
    match started {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diemcau: {e:#}");
            failure(&e)
        }
    }
}

pub(super) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

pub(super) fn check(path: &PathBuf, overrides: Overrides) -> ExitCode {
    let Some(config) = load(Some(path), overrides) else {
        return ExitCode::from(EX_CONFIG);
    };
    println!("{}: valid, {} endpoints", path.display(), config.endpoints.len());
    let s = config.shard;
    if !s.is_whole() {
        println!(
            "shard {} of {} (0-based; each endpoint probed by {} shard(s)): {} of the inventory's {} endpoints",
            s.index,
            s.count,
            s.replicas,
            config.endpoints.len(),
            config.inventory_endpoints
        );
    }
    for (file, model) in &config.inventory_models {
        println!("{}: {}", file.display(), model.describe());
    }
    let warnings = unresolved_names(&config);
    if !warnings.is_empty() {
        let n = warnings.len();
        println!("{n} warning{}:", if n == 1 { "" } else { "s" });
        for w in warnings {
            println!("{w}");
        }
    }
    println!("{:<40} {:<10} {:>9}", "province", "carrier", "endpoints");
    for ((province, carrier), n) in config.summary() {
        println!("{province:<40} {carrier:<10} {n:>9}");
    }
    ExitCode::SUCCESS
}

/// Resolves every inventory host name (as the daemon would at start, with `[dns]`): each one
/// that does not resolve is a warning at its file and line, since the daemon loads such an
/// endpoint and only leaves it unprobed until its name resolves.
fn unresolved_names(config: &Config) -> Vec<crate::domain::diag::Problem> {
    use crate::config::resolve::{Resolver, resolve_all};
    use crate::domain::diag::Problem;
    if config.hosts.is_empty() {
        return Vec::new();
    }
    let resolver = match Resolver::new(&config.dns) {
        Ok(r) => std::sync::Arc::new(r),
        Err(e) => {
            eprintln!("warning: {e}");
            return Vec::new();
        }
    };
    if let Some(w) = &resolver.warning {
        eprintln!("warning: {w}");
    }
    let mut names: Vec<std::sync::Arc<str>> = config.hosts.iter().map(|h| h.name.clone()).collect();
    names.sort();
    names.dedup();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warning: cannot start a runtime to resolve host names: {e}");
            return Vec::new();
        }
    };
    let results = runtime.block_on(resolve_all(resolver, &names, config.dns.concurrency));
    let failed: std::collections::HashMap<&str, String> = names
        .iter()
        .zip(results)
        .filter_map(|(n, r)| Some((&**n, r.err()?.message)))
        .collect();
    config
        .hosts
        .iter()
        .filter_map(|h| {
            let why = failed.get(&*h.name)?;
            Some(
                Problem::at(&h.file, h.line, None, "address")
                    .says(format!(
                        "host name {:?} does not resolve ({why}); the endpoint is loaded but not probed until it resolves",
                        h.name
                    ))
                    .fix("correct the name, add it to DNS or /etc/hosts, or write the IP address"),
            )
        })
        .collect()
}
