//! Path traces by the ICMP engine itself, against real kernel routers
//! (`tests/common/topology.rs`: monitor → core → province → area → communes): on a ping socket
//! and on a raw socket, over IPv4 and IPv6, a trace lists the routers in order and reaches the
//! commune; with the province–area link cut it stops after the province and
//! `domain::path::classify` names the area router as the failing hop; with only one commune's
//! own link cut, the trace still gets the area router and the fault is at that commune's site.
//! Every packet stays within the test's own namespaces.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use common::topology::{Node, Topology};
use diemcau::domain::path::{self, FaultDomain, Trace};
use diemcau::domain::{FinishedRound, Followup};
use diemcau::probe::icmp::{
    self, EngineController, EngineHandle, EngineTelemetry, ProbeConfig, RoundSink, SocketKind, SocketPreference, engine,
};

const MARKER: &str = "ENGINE_TRACE_IN_NS";
/// Liveness only: a trace takes about one request timeout (1 s) when hops are silent.
const PATIENCE: Duration = Duration::from_secs(30);

fn inside(test: &str) -> bool {
    common::inside_netns(test, MARKER, &["ip", "nsenter", "sleep"], Duration::from_secs(240))
}

struct Traces(Sender<(usize, Trace)>);

impl RoundSink for Traces {
    fn round(&mut self, _: usize, _: &FinishedRound<'_>) -> Followup {
        Followup::Nothing
    }

    fn trace(&mut self, endpoint: usize, trace: &Trace) {
        let _ = self.0.send((endpoint, trace.clone()));
    }
}

struct Running {
    targets: Vec<IpAddr>,
    handle: EngineHandle,
    control: EngineController,
    traces: Receiver<(usize, Trace)>,
    telemetry: EngineTelemetry,
}

impl Running {
    /// Traces `endpoints` one after the other (a burst of traces would outrun the budget,
    /// which drops what it cannot afford) and waits for each.
    fn trace(&self, endpoints: &[usize]) -> HashMap<usize, Trace> {
        let mut got = HashMap::new();
        for &e in endpoints {
            self.control.trace(vec![(e, self.targets[e])]).expect("engine running");
            let (traced, t) = self
                .traces
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no trace of {e} (got {got:?})"));
            assert_eq!(traced, e, "a trace of another endpoint: {t:?}");
            got.insert(e, t);
        }
        got
    }

    /// Traces `e` until it reaches the endpoint (a restored link takes a moment to route).
    fn until_reached(&self, e: usize) -> Trace {
        for _ in 0..50 {
            let t = self.trace(&[e]).remove(&e).expect("asked for it");
            if t.reached {
                return t;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("endpoint {e} never reached again");
    }
}

/// The engine in the monitor's namespace, probing `targets` on sockets of `kind`.
fn start(topo: &Topology, targets: &[IpAddr], kind: SocketPreference) -> Running {
    let (tx, rx) = channel();
    let telemetry = EngineTelemetry::detached();
    let probe = ProbeConfig {
        interval: Duration::from_secs(30),
        socket: kind,
        ..ProbeConfig::default()
    };
    let t = telemetry.clone();
    let handle = topo.in_netns("monitor", || {
        let sockets = icmp::open_sockets(targets, kind).expect("ICMP sockets in the monitor's namespace");
        let opened: Vec<SocketKind> = [&sockets.v4, &sockets.v6]
            .into_iter()
            .flatten()
            .map(|s| s.kind)
            .collect();
        let want = if kind == SocketPreference::Raw {
            SocketKind::Raw
        } else {
            SocketKind::Dgram
        };
        assert!(opened.iter().all(|k| *k == want), "{opened:?}");
        engine::start(
            targets.iter().copied().map(Some).collect(),
            &probe,
            sockets,
            Box::new(Traces(tx)),
            t,
        )
        .expect("engine thread")
    });
    let control = handle.controller();
    Running {
        targets: targets.to_vec(),
        handle,
        control,
        traces: rx,
        telemetry,
    }
}

fn hops(nodes: &[&Node], v6: bool) -> Vec<Option<IpAddr>> {
    nodes.iter().map(|n| Some(n.addr(v6))).collect()
}

#[test]
fn the_engine_traces_kernel_routers_and_a_cut_names_the_failing_hop() {
    if !inside("the_engine_traces_kernel_routers_and_a_cut_names_the_failing_hop") {
        return;
    }
    let topo = Topology::build(3);
    let [core, province, area] = [&topo.routers()[0], &topo.routers()[1], &topo.routers()[2]];
    let communes = topo.communes();
    // Endpoints: the communes over IPv4 (0, 1, 2), then over IPv6 (3, 4, 5).
    let targets: Vec<IpAddr> = [false, true]
        .iter()
        .flat_map(|&v6| communes.iter().map(move |c| c.addr(v6)))
        .collect();
    let v6_of = |e: usize| e >= communes.len();
    let by_family: [Vec<usize>; 2] = [(0..3).collect(), (3..6).collect()];
    let path = |e: usize| hops(&[core, province, area], v6_of(e));
    for kind in [SocketPreference::Dgram, SocketPreference::Raw] {
        let engine = start(&topo, &targets, kind);
        let label = |e: usize| format!("{kind:?} endpoint {e} ({})", targets[e]);

        // Healthy: the three routers in order, then the commune itself.
        let mut baselines = HashMap::new();
        for family in &by_family {
            for (e, t) in engine.trace(family) {
                assert_eq!((&t.hops, t.reached), (&path(e), true), "{}", label(e));
                baselines.insert(e, t);
            }
        }
        let shared = path::shared_prefix(baselines.values());

        // Province–area cut: the trace stops after the province; the area router failed.
        topo.cut("province", "area");
        for family in &by_family {
            for (e, t) in engine.trace(family) {
                let v6 = v6_of(e);
                let mut want = hops(&[core, province], v6);
                want.push(None);
                assert_eq!((&t.hops, t.reached), (&want, false), "{} cut", label(e));
                let f = path::classify(&baselines[&e], &t, shared).expect("a fault to place");
                assert_eq!(
                    (f.last_hop, f.failing_hop),
                    (Some(province.addr(v6)), Some(area.addr(v6))),
                    "{} cut: {f:?}",
                    label(e)
                );
            }
        }
        topo.restore("province", "area");
        for e in 0..targets.len() {
            assert_eq!(engine.until_reached(e).hops, path(e), "{} restored", label(e));
        }

        // Commune 0's own link cut: its trace still gets every router (its site failed);
        // commune 1 is unaffected.
        topo.cut("area", "commune0");
        for (cut, fine) in [(0, 1), (3, 4)] {
            let got = engine.trace(&[cut, fine]);
            let mut want = path(cut);
            want.push(None);
            assert_eq!((&got[&cut].hops, got[&cut].reached), (&want, false), "{}", label(cut));
            let f = path::classify(&baselines[&cut], &got[&cut], shared).expect("a fault to place");
            assert_eq!(
                (f.domain, f.last_hop),
                (FaultDomain::Endpoint, Some(area.addr(v6_of(cut)))),
                "{}",
                label(cut)
            );
            assert_eq!(
                (&got[&fine].hops, got[&fine].reached),
                (&path(fine), true),
                "{}",
                label(fine)
            );
        }
        topo.restore("area", "commune0");
        for e in [0, 3] {
            engine.until_reached(e);
        }

        // Routers' answers to traces are no ICMP errors of regular rounds, and no trace
        // request failed to leave.
        assert_eq!(engine.telemetry.icmp_errors.get(), 0, "{kind:?}");
        assert_eq!(engine.telemetry.send_errors.get(), 0, "{kind:?}");
        engine.handle.stop();
    }
}
