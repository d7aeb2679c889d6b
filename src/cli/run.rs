//! `diemcau run` and `diemcau check`, and what every long-running command shares: logging,
//! config loading and the shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

use super::LogFormat;

pub(super) fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|e| {
        eprintln!("invalid log level {level:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    // Colours only on a terminal: journald and log files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
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
    listen: Option<SocketAddr>,
    web_config: Option<PathBuf>,
    private_netns: bool,
) -> ExitCode {
    let Some(mut config) = load(config.as_ref()) else {
        return ExitCode::FAILURE;
    };
    if let Some(addr) = listen {
        config.web.listen_address = addr;
    }
    let started = crate::app::boot::bind(config.web.listen_address).and_then(|listener| {
        // Before any thread exists: unshare(CLONE_NEWUSER) refuses multi-threaded processes.
        if private_netns {
            crate::app::netns::enter_private_network()?;
        }
        crate::app::boot::serve(config, web_config, listener, shutdown_signal())
    });
    match started {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diemcau: {e:#}");
            ExitCode::FAILURE
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
        return ExitCode::FAILURE;
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
