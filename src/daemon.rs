//! `diemcau run`: wires config → ICMP engine → monitor → HTTP server, and shuts down cleanly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::metrics::DaemonMetrics;
use crate::monitor::{Monitor, MonitorSink, unix_seconds};
use crate::probe::icmp::{self, engine};
use crate::server::{self, AppState, ReloadRequest};

/// Runs the daemon until `shutdown` resolves. `listener` is already bound (so that callers can
/// bind before entering a private network namespace).
pub async fn run(
    config: Config,
    listener: std::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(DaemonMetrics::new());
    metrics.reload_successful.set(1);
    metrics
        .reload_success_time
        .set(unix_seconds(SystemTime::now()));

    let targets: Vec<_> = config.endpoints.iter().map(|e| e.address).collect();
    let sockets = icmp::open_sockets(&targets, config.probe.socket)?;
    for s in [&sockets.v4, &sockets.v6].into_iter().flatten() {
        tracing::info!(
            family = s.family.name(),
            kind = s.kind.name(),
            "ICMP socket open"
        );
    }
    let monitor = Arc::new(Monitor::new(
        &config.endpoints,
        config.health.clone(),
        metrics.clone(),
    ));
    let engine = engine::start(
        targets,
        &config.probe,
        sockets,
        Box::new(MonitorSink(monitor.clone())),
        metrics.engine.clone(),
    )
    .context("starting the ICMP engine thread")?;
    tracing::info!(
        endpoints = config.endpoints.len(),
        interval = ?config.probe.interval,
        packets = config.probe.packets,
        "probing started"
    );

    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(address = %listener.local_addr()?, "web server listening");
    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let app = AppState {
        monitor: monitor.clone(),
        reload: reload_tx.clone(),
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(server::serve(listener, app, async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));
    let reloader = tokio::spawn(handle_reloads(
        config.source.clone(),
        Arc::new(config),
        metrics.clone(),
        reload_rx,
    ));
    let sighup = tokio::spawn(forward_sighup(reload_tx));

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = server.await;
    reloader.abort();
    sighup.abort();
    tokio::task::spawn_blocking(move || engine.stop()).await?;
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

/// Validates a new config on each request. Applying a changed inventory in place comes with
/// hot reload; until then a changed config is reported as needing a restart.
async fn handle_reloads(
    path: Option<PathBuf>,
    current: Arc<Config>,
    metrics: Arc<DaemonMetrics>,
    mut requests: mpsc::Receiver<ReloadRequest>,
) {
    while let Some(reply) = requests.recv().await {
        let result = match &path {
            None => Err(
                "running on the embedded defaults: there is no config file to reload".to_string(),
            ),
            Some(p) => {
                let p = p.clone();
                match tokio::task::spawn_blocking(move || Config::load(&p)).await {
                    Ok(Ok(new)) if new == *current => Ok(()),
                    Ok(Ok(_)) => Err(
                        "the new config is valid but differs; restart diemcau to apply it"
                            .to_string(),
                    ),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match &result {
            Ok(()) => {
                metrics.reload_successful.set(1);
                metrics
                    .reload_success_time
                    .set(unix_seconds(SystemTime::now()));
                tracing::info!("config reloaded");
            }
            Err(e) => {
                metrics.reload_successful.set(0);
                tracing::error!(error = %e, "config reload failed; the old config stays in force");
            }
        }
        let _ = reply.send(result);
    }
}
