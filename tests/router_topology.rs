//! Real kernel routers (`tests/common/topology.rs`): monitor → core → province → area →
//! communes, each a network namespace. From the monitor's namespace, TTL-limited echo
//! requests must get the kernel's Time Exceeded from each hop in order and echo replies from
//! the communes; a cut link silences exactly the hops behind it until it is restored; an
//! nftables drop in one router hides that hop only.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::topology::{Node, Topology};
use common::trace::{Answer, Tracer};

const MARKER: &str = "ROUTER_TOPOLOGY_IN_NS";
/// Kernel answers within microseconds here; an unanswered probe waits this long.
const WAIT: Duration = Duration::from_millis(200);

fn inside(test: &str) -> bool {
    common::inside_netns(
        test,
        MARKER,
        &["ip", "nsenter", "nft", "sleep"],
        Duration::from_secs(90),
    )
}

/// What answers TTL 1..=hops+1 towards `dst`, as the addresses that answered (None: silence).
/// Checks that every answer quotes our request as sent to `dst`.
fn trace(tracer: &Tracer, me: IpAddr, dst: IpAddr, hops: usize, seq: &mut u16) -> Vec<Option<IpAddr>> {
    (1..=hops as u8 + 1)
        .map(|ttl| {
            *seq += 1;
            let a = tracer.probe(dst, ttl, *seq, WAIT)?;
            match a {
                Answer::TimeExceeded { code, quoted, .. } => {
                    assert_eq!(code, 0, "{a:?}");
                    assert_eq!((quoted.src, quoted.dst, quoted.ttl), (me, dst, 1), "{a:?}");
                    assert!(quoted.header_checksum_ok, "{a:?}");
                    assert_eq!(quoted.seq, *seq);
                }
                Answer::EchoReply { .. } => {}
                Answer::Unreachable { .. } => panic!("ttl {ttl} to {dst}: {a:?} (a cut must be silent)"),
            }
            Some(a.from())
        })
        .collect()
}

fn addrs(nodes: &[&Node], v6: bool) -> Vec<Option<IpAddr>> {
    nodes.iter().map(|n| Some(n.addr(v6))).collect()
}

#[test]
fn kernel_routers_answer_hop_by_hop_and_a_cut_silences_what_is_behind_it() {
    if !inside("kernel_routers_answer_hop_by_hop_and_a_cut_silences_what_is_behind_it") {
        return;
    }
    let topo = Topology::build(3);
    let routers = topo.routers();
    assert_eq!(
        routers.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["core", "province", "area"]
    );
    let (core, province, area) = (&routers[0], &routers[1], &routers[2]);
    let mut seq = 0u16;
    for v6 in [false, true] {
        let tracer = topo.in_netns("monitor", || Tracer::new(v6, 0x7090));
        let me = topo.monitor().addr(v6);
        let all = |c: &Node| addrs(&[core, province, area, c], v6);
        // Healthy: every hop in order, then the commune itself.
        for c in topo.communes() {
            assert_eq!(
                trace(&tracer, me, c.addr(v6), 3, &mut seq),
                all(c),
                "v6={v6} {}",
                c.name
            );
        }
        // Province → area cut: core and province still answer; area and the communes are silent.
        topo.cut("province", "area");
        for c in topo.communes() {
            let mut want = addrs(&[core, province], v6);
            want.extend([None, None]);
            assert_eq!(
                trace(&tracer, me, c.addr(v6), 3, &mut seq),
                want,
                "v6={v6} cut, {}",
                c.name
            );
        }
        // Restored: back once the kernel has the link and routes again (bounded wait).
        topo.restore("province", "area");
        let c0 = &topo.communes()[0];
        let back = (0..50).any(|_| {
            seq += 1;
            let ok = tracer.probe(c0.addr(v6), 64, seq, WAIT).is_some();
            if !ok {
                std::thread::sleep(Duration::from_millis(100));
            }
            ok
        });
        assert!(back, "v6={v6}: {} unreachable after the link was restored", c0.name);
        for c in topo.communes() {
            assert_eq!(
                trace(&tracer, me, c.addr(v6), 3, &mut seq),
                all(c),
                "v6={v6} restored, {}",
                c.name
            );
        }
    }
    // A router that drops its own Time Exceeded (nftables in its namespace) is a "* * *" hop;
    // the hops behind it still answer.
    topo.nft(
        "province",
        "table inet quiet {\n  chain out {\n    type filter hook output priority 0;\n    icmp type time-exceeded drop\n    icmpv6 type time-exceeded drop\n  }\n}\n",
    );
    for v6 in [false, true] {
        let tracer = topo.in_netns("monitor", || Tracer::new(v6, 0x7091));
        let me = topo.monitor().addr(v6);
        let c = &topo.communes()[1];
        let got = trace(&tracer, me, c.addr(v6), 3, &mut seq);
        assert_eq!(
            got,
            [Some(core.addr(v6)), None, Some(area.addr(v6)), Some(c.addr(v6))],
            "v6={v6}"
        );
    }
    // A command inside the monitor's namespace sees the same network (how a daemon runs there).
    let out = topo
        .command("monitor", "ip")
        .args(["-4", "route", "get", &topo.communes()[2].v4.to_string()])
        .output()
        .expect("ip route get");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&format!("via {}", core.v4)),
        "{text}"
    );
}
