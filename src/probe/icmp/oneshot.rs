//! `diemcau probe ADDRESS`: one round against one address, through the same engine the daemon
//! uses, printed for a terminal.

use std::net::IpAddr;
use std::sync::mpsc;
use std::time::Duration;

use super::settings::ProbeConfig;
use crate::domain::{FinishedRound, Followup, RoundStats};
use crate::probe::icmp::{self, EngineTelemetry, OpenError, RoundSink, SocketKind, engine};

struct Capture(mpsc::Sender<RoundStats>);

impl RoundSink for Capture {
    fn round(&mut self, _: usize, round: &FinishedRound<'_>) -> Followup {
        let _ = self.0.send(*round.stats);
        Followup::Nothing
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OneShotError {
    #[error(transparent)]
    Socket(#[from] OpenError),
    #[error("the probe could not run: {0}")]
    Io(#[from] std::io::Error),
}

/// Sends one round of `probe.packets` echo requests; returns the figures and the socket kind.
pub fn probe_once(address: IpAddr, probe: &ProbeConfig) -> Result<(RoundStats, SocketKind), OneShotError> {
    let sockets = icmp::open_sockets(&[address], probe.socket)?;
    let kind = sockets
        .v4
        .as_ref()
        .or(sockets.v6.as_ref())
        .map_or(SocketKind::Raw, |s| s.kind);
    let mut config = probe.clone();
    // One round only: make the interval longer than the round so no second one starts.
    config.interval = probe.round_span() + Duration::from_secs(3600);
    let (tx, rx) = mpsc::channel();
    let handle = engine::start(
        vec![Some(address)],
        &config,
        sockets,
        Box::new(Capture(tx)),
        EngineTelemetry::detached(),
    )?;
    let stats = rx
        .recv_timeout(probe.round_span() + Duration::from_secs(5))
        .map_err(|_| std::io::Error::other("the engine did not finish the round"))?;
    handle.stop();
    Ok((stats, kind))
}

/// The round as one line for a terminal.
pub fn describe(address: IpAddr, stats: &RoundStats) -> String {
    let ms = |s: Option<f64>| s.map_or("-".to_string(), |v| format!("{:.3}", v * 1e3));
    format!(
        "{address}: {} sent, {} received, {:.0}% loss, rtt min/avg/max {}/{}/{} ms, jitter {} ms",
        stats.sent,
        stats.received,
        stats.loss_ratio() * 100.0,
        ms(stats.rtt_min),
        ms(stats.rtt_avg),
        ms(stats.rtt_max),
        ms(stats.jitter),
    )
}
