//! `diemcau run` and `diemcau check`, and what every long-running command shares: logging,
//! config loading and the shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
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

pub(super) fn load(config: Option<&PathBuf>) -> Option<Config> {
    let loaded = match config {
        Some(path) => Config::load(path),
        None => Config::embedded(),
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
    listen: Vec<SocketAddr>,
    web_config: Option<PathBuf>,
    private_netns: bool,
) -> ExitCode {
    let Some(config) = load(config.as_ref()) else {
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

pub(super) fn check(path: &PathBuf) -> ExitCode {
    let Some(config) = load(Some(path)) else {
        return ExitCode::from(EX_CONFIG);
    };
    println!("{}: valid, {} endpoints", path.display(), config.endpoints.len());
    for (file, model) in &config.inventory_models {
        println!("{}: {}", file.display(), model.describe());
    }
    println!("{:<40} {:<10} {:>9}", "province", "carrier", "endpoints");
    for ((province, carrier), n) in config.summary() {
        println!("{province:<40} {carrier:<10} {n:>9}");
    }
    ExitCode::SUCCESS
}
