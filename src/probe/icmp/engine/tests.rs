//! The engine with real ICMP sockets, on loopback only (skipped where no ICMP socket can be
//! opened: neither ping sockets allowed nor CAP_NET_RAW).

use std::net::IpAddr;
use std::time::Duration;

use super::super::socket::{self, Family};
use super::{Engine, EngineTelemetry, Sockets, lane_index, wall_ns};
use crate::domain::{FinishedRound, Followup, RoundKind};
use crate::probe::icmp::{ProbeConfig, SocketPreference};

struct Ignore;

impl super::RoundSink for Ignore {
    fn round(&mut self, _: usize, _: &FinishedRound<'_>) -> Followup {
        Followup::Nothing
    }
}

fn loopback_engine() -> Option<Engine> {
    let open = |f| socket::open(f, SocketPreference::Auto).map_err(|e| eprintln!("SKIPPED: {e}"));
    let sockets = Sockets {
        v4: Some(open(Family::V4).ok()?),
        v6: Some(open(Family::V6).ok()?),
    };
    let targets: Vec<Option<IpAddr>> = vec![Some("127.0.0.1".parse().ok()?), Some("::1".parse().ok()?)];
    Some(Engine::new(
        targets,
        &ProbeConfig::default(),
        sockets,
        Box::new(Ignore),
        EngineTelemetry::detached(),
    ))
}

/// A request's RTT runs from when its batch is sent, not from when it was queued earlier in the
/// wake-up: IPv6 requests, sent after the IPv4 batch, would otherwise carry its send time too.
#[test]
fn requests_are_stamped_when_their_batch_goes_out() {
    let Some(mut engine) = loopback_engine() else {
        return;
    };
    for e in 0..2 {
        engine.open_round(e, RoundKind::Regular, 1);
        engine.send_request(e, 0);
    }
    let queued = wall_ns();
    std::thread::sleep(Duration::from_millis(5));
    engine.flush_sends();
    let sent = |family| {
        let lane = engine.lanes[lane_index(family)].as_ref().expect("socket");
        lane.flight.get(0).expect("request in flight").sent_ns
    };
    let (v4, v6) = (sent(Family::V4), sent(Family::V6));
    let after_queueing = Duration::from_millis(5).as_nanos() as u64;
    assert!(v4 >= queued + after_queueing, "IPv4 stamped when queued");
    assert!(v6 >= v4, "IPv6 stamped before the IPv4 batch went out");
}
