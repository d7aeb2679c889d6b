//! Real Linux routers for tests: a chain of network namespaces joined by veth pairs,
//!
//! ```text
//! monitor ── core ── province ── area ─┬─ commune0
//!                                      ├─ commune1
//!                                      └─ …
//! ```
//!
//! IPv4 and IPv6, forwarding on in the routers, static routes both ways, so the kernel itself
//! forwards probes and answers ICMP Time Exceeded when their TTL runs out. Faults: cut a
//! link ([`Topology::cut`], `ip link set … down` on one side) and restore it, or drop with
//! nftables in one namespace ([`Topology::nft`]).
//!
//! A cut must be silent, as a dead line is: no "unreachable" from the router before it. So
//! behind every route a router has towards the communes lies a fallback route (metric 4096)
//! into `sink`, a veth whose peer in the same namespace drops every frame (addressed to a
//! MAC it does not have; the neighbour entry is permanent, so nothing is ever resolved). A
//! blackhole route would not do: Linux looks the route up before it checks the TTL, so the
//! router would stop answering Time Exceeded itself. Routes over a link without carrier are
//! ignored (`ignore_routes_with_linkdown`), so cutting either end sends traffic to the sink.
//!
//! Build it from inside a private user+network namespace where the test is root (re-run the
//! test under `unshare -rn` with `rerun_in_namespace`). Each namespace is held by a `sleep`
//! child that unshared its network namespace before exec; nothing else runs there unless a
//! test enters it: [`Topology::command`] (e.g. the daemon: `nsenter -t PID -n`) or
//! [`Topology::in_netns`] (a closure on a thread inside it, e.g. to open a raw socket that
//! then stays in that namespace). Dropping the topology kills the holders, which takes the
//! namespaces and their links away; holders also die with the thread that built them
//! (PR_SET_PDEATHSIG) and after `HOLD` at the latest.
//!
//! Addresses: link `i` of the chain (monitor–core is 0) is 10.200.i.0/30 and
//! fd00:dc:0:i::/64, upstream end .1 / ::1, downstream end .2 / ::2; commune `j`'s link is
//! 10.201.j.0/30 and fd00:dc:1:j::/64, the commune (the endpoint) being .2 / ::2. A router
//! answers Time Exceeded from its upstream address, the one listed in [`Topology::routers`].

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;

/// The sink's gateway: a neighbour that does not exist, with a MAC nobody has.
const SINK_V4: &str = "169.254.0.1";
const SINK_V6: &str = "fe80::5e:1";
const SINK_MAC: &str = "02:00:00:00:5e:01";
/// The longest a holder lives, even if nothing kills it.
const HOLD: Duration = Duration::from_secs(1800);

/// A namespace of the topology and the addresses that stand for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// A router's: the address it answers Time Exceeded from (its upstream side); a
    /// commune's: the endpoint address; the monitor's: its own.
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
}

impl Node {
    pub fn addr(&self, v6: bool) -> IpAddr {
        if v6 { IpAddr::V6(self.v6) } else { IpAddr::V4(self.v4) }
    }
}

struct Holder {
    name: String,
    child: Child,
    /// `ip -batch` lines setting its addresses and routes (replayed by `restore`).
    setup: Vec<String>,
}

/// The running topology. See the module docs.
pub struct Topology {
    holders: Vec<Holder>,
    monitor: Node,
    routers: Vec<Node>,
    communes: Vec<Node>,
}

fn v4(a: u8, b: u8, c: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, a, b, c)
}

fn v6(net: u16, sub: u16, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0xdc, net, sub, 0, 0, 0, host)
}

impl Topology {
    /// monitor → core → province → area → `communes` communes.
    pub fn build(communes: usize) -> Topology {
        Topology::chain(&["core", "province", "area"], communes)
    }

    /// monitor → `routers[0]` → … → last router → `communes` communes (names commune0…).
    pub fn chain(routers: &[&str], communes: usize) -> Topology {
        assert!(
            !routers.is_empty() && routers.len() < 200 && communes < 250,
            "topology size"
        );
        let mut names = vec!["monitor".to_string()];
        names.extend(routers.iter().map(|r| r.to_string()));
        names.extend((0..communes).map(|j| format!("commune{j}")));
        assert!(
            names.iter().all(|n| n.len() <= 15),
            "names are interface names: at most 15 bytes"
        );
        let mut topo = Topology {
            holders: Vec::new(),
            monitor: Node {
                name: "monitor".into(),
                v4: v4(200, 0, 1),
                v6: v6(0, 0, 1),
            },
            routers: Vec::new(),
            communes: Vec::new(),
        };
        for name in &names {
            topo.holders.push(Holder {
                name: name.clone(),
                child: hold(),
                setup: Vec::new(),
            });
        }
        let n = routers.len();
        for (i, r) in routers.iter().enumerate() {
            topo.routers.push(Node {
                name: r.to_string(),
                v4: v4(200, i as u8, 2),
                v6: v6(0, i as u16, 2),
            });
        }
        for j in 0..communes {
            topo.communes.push(Node {
                name: format!("commune{j}"),
                v4: v4(201, j as u8, 2),
                v6: v6(1, j as u16, 2),
            });
        }
        for name in &names {
            topo.sysctls(name, name != "monitor" && !name.starts_with("commune"));
        }
        // Links: (upstream, downstream, v4 /30, v6 /64 as (net, sub)).
        let mut links = Vec::new();
        for i in 0..n {
            links.push((
                names[i].clone(),
                names[i + 1].clone(),
                (200u8, i as u8),
                (0u16, i as u16),
            ));
        }
        for j in 0..communes {
            links.push((names[n].clone(), format!("commune{j}"), (201, j as u8), (1, j as u16)));
        }
        for (up, down, (a, b), (net, sub)) in &links {
            run(Command::new("ip").args([
                "link",
                "add",
                down,
                "netns",
                &topo.pid(up).to_string(),
                "type",
                "veth",
                "peer",
                "name",
                up,
                "netns",
                &topo.pid(down).to_string(),
            ]));
            topo.setup(up, &format!("addr replace {}/30 dev {down}", v4(*a, *b, 1)));
            topo.setup(up, &format!("addr replace {}/64 dev {down} nodad", v6(*net, *sub, 1)));
            topo.setup(down, &format!("addr replace {}/30 dev {up}", v4(*a, *b, 2)));
            topo.setup(down, &format!("addr replace {}/64 dev {up} nodad", v6(*net, *sub, 2)));
        }
        // Routes. Everything beyond router i: the chain's links after it and the communes.
        let beyond = |i: usize| -> Vec<String> {
            let mut p: Vec<String> = (i + 1..n).map(|l| format!("{}/24", v4(200, l as u8, 0))).collect();
            p.extend((i + 1..n).map(|l| format!("{}/64", v6(0, l as u16, 0))));
            p.push("10.201.0.0/16".into());
            p.push(format!("{}/48", v6(1, 0, 0)));
            p
        };
        topo.setup("monitor", &format!("route replace 10.200.0.0/16 via {}", v4(200, 0, 2)));
        topo.setup("monitor", &format!("route replace 10.201.0.0/16 via {}", v4(200, 0, 2)));
        topo.setup(
            "monitor",
            &format!("route replace {}/32 via {}", v6(0, 0, 0), v6(0, 0, 2)),
        );
        for (i, r) in routers.iter().enumerate() {
            topo.setup(
                r,
                &format!("neigh replace {SINK_V4} lladdr {SINK_MAC} dev sink nud permanent"),
            );
            topo.setup(
                r,
                &format!("neigh replace {SINK_V6} lladdr {SINK_MAC} dev sink nud permanent"),
            );
            if i > 0 {
                topo.setup(r, &format!("route replace 10.200.0.0/24 via {}", v4(200, i as u8, 1)));
                topo.setup(
                    r,
                    &format!("route replace {}/64 via {}", v6(0, 0, 0), v6(0, i as u16, 1)),
                );
            }
            for prefix in beyond(i) {
                if i + 1 < n {
                    let via = if prefix.contains(':') {
                        v6(0, i as u16 + 1, 2).to_string()
                    } else {
                        v4(200, i as u8 + 1, 2).to_string()
                    };
                    topo.setup(r, &format!("route replace {prefix} via {via}"));
                }
                let sink = if prefix.contains(':') { SINK_V6 } else { SINK_V4 };
                topo.setup(
                    r,
                    &format!("route replace {prefix} via {sink} dev sink onlink metric 4096"),
                );
            }
        }
        for j in 0..communes {
            let c = format!("commune{j}");
            topo.setup(&c, &format!("route replace default via {}", v4(201, j as u8, 1)));
            topo.setup(&c, &format!("route replace default via {}", v6(1, j as u16, 1)));
        }
        // Interfaces up and addresses everywhere first, then the routes whose gateways they make
        // reachable.
        for pass in [false, true] {
            for name in &names {
                let mut lines = Vec::new();
                if !pass {
                    lines.push("link set lo up".to_string());
                    if routers.contains(&name.as_str()) {
                        lines.push("link add sink type veth peer name sink-peer".into());
                        lines.push("link set sink up".into());
                        lines.push("link set sink-peer up".into());
                    }
                    for (up, down, ..) in &links {
                        if up == name {
                            lines.push(format!("link set {down} up"));
                        } else if down == name {
                            lines.push(format!("link set {up} up"));
                        }
                    }
                }
                let h = topo.holder(name);
                lines.extend(h.setup.iter().filter(|l| l.starts_with("route") == pass).cloned());
                ip_batch(topo.pid(name), &lines);
            }
        }
        topo
    }

    pub fn monitor(&self) -> &Node {
        &self.monitor
    }

    /// The routers, first hop first.
    pub fn routers(&self) -> &[Node] {
        &self.routers
    }

    pub fn communes(&self) -> &[Node] {
        &self.communes
    }

    fn holder(&self, name: &str) -> &Holder {
        self.holders
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no namespace {name:?} in the topology"))
    }

    fn setup(&mut self, name: &str, line: &str) {
        let h = self.holders.iter_mut().find(|h| h.name == name).expect("namespace");
        h.setup.push(line.to_string());
    }

    /// The pid holding namespace `name` ("monitor", a router's name, "communeN").
    pub fn pid(&self, name: &str) -> u32 {
        self.holder(name).child.id()
    }

    /// `program` to run inside namespace `name`'s network namespace (via nsenter); add
    /// arguments and spawn it as usual.
    pub fn command(&self, name: &str, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid(name).to_string(), "-n"]);
        if !same_user_namespace(self.pid(name)) {
            cmd.args(["-U", "--preserve-credentials"]);
        }
        cmd.arg("--").arg(program);
        cmd
    }

    /// Runs `f` on a thread inside namespace `name`: a socket it opens stays there.
    pub fn in_netns<T: Send>(&self, name: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/proc/{}/ns/net", self.pid(name));
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).expect("setns into the namespace");
                f()
            })
            .join()
            .expect("thread inside the namespace")
        })
    }

    /// Cuts the link from `a` to its neighbour `b`: `ip link set b down` in `a` (the
    /// interface to a neighbour is named after it).
    pub fn cut(&self, a: &str, b: &str) {
        ip_batch(self.pid(a), &[format!("link set {b} down")]);
    }

    /// Brings the link between `a` and `b` back: both ends up, then their addresses and
    /// routes again (the kernel removes routes through an interface that goes down).
    pub fn restore(&self, a: &str, b: &str) {
        for (x, y) in [(a, b), (b, a)] {
            let mut lines = vec![format!("link set {y} up")];
            lines.extend(self.holder(x).setup.iter().cloned());
            ip_batch(self.pid(x), &lines);
        }
    }

    /// Loads an nftables script in namespace `name`; asserts nft accepted it.
    pub fn nft(&self, name: &str, script: &str) {
        let mut child = self
            .command(name, "nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write the nft script");
        assert!(
            child.wait().expect("wait nft").success(),
            "nft in {name} failed:\n{script}"
        );
    }

    /// Forwarding and instant ICMP errors in routers; in every namespace, routes over a
    /// link without carrier are ignored (so the blackhole behind them applies) and IPv6
    /// addresses survive a link going down. Set before the links exist, so `default` applies.
    fn sysctls(&self, name: &str, router: bool) {
        let mut set = vec![
            ("ipv4/conf/all/ignore_routes_with_linkdown", "1"),
            ("ipv4/conf/default/ignore_routes_with_linkdown", "1"),
            ("ipv6/conf/all/ignore_routes_with_linkdown", "1"),
            ("ipv6/conf/default/ignore_routes_with_linkdown", "1"),
            ("ipv6/conf/all/keep_addr_on_down", "1"),
            ("ipv6/conf/default/keep_addr_on_down", "1"),
            ("ipv6/conf/default/accept_dad", "0"),
        ];
        if router {
            set.extend([
                ("ipv4/ip_forward", "1"),
                ("ipv6/conf/all/forwarding", "1"),
                ("ipv6/conf/default/forwarding", "1"),
                ("ipv4/icmp_ratelimit", "0"),
                ("ipv6/icmp/ratelimit", "0"),
            ]);
        }
        if name == "monitor" {
            // ICMP (ping) sockets for group 0, the only group mapped in `unshare -r`.
            set.push(("ipv4/ping_group_range", "0 0"));
        }
        self.in_netns(name, || {
            for (key, value) in set {
                let path = format!("/proc/sys/net/{key}");
                std::fs::write(&path, value).unwrap_or_else(|e| panic!("{name}: {path} = {value}: {e}"));
            }
        });
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for h in &mut self.holders {
            let _ = h.child.kill();
            let _ = h.child.wait();
        }
    }
}

/// A `sleep` in a network namespace of its own, killed when the calling thread ends.
fn hold() -> Child {
    let mut cmd = Command::new("sleep");
    cmd.arg(HOLD.as_secs().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: only async-signal-safe system calls (prctl, unshare) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
            Ok(())
        });
    }
    cmd.spawn()
        .expect("spawn a namespace holder (needs CAP_SYS_ADMIN: run inside unshare -rn)")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ip -batch -` in `pid`'s network namespace; asserts every line succeeded.
fn ip_batch(pid: u32, lines: &[String]) {
    let mut child = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip", "-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nsenter ip");
    let script = lines.join("\n") + "\n";
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write ip batch");
    let out = child.wait_with_output().expect("wait ip");
    assert!(
        out.status.success(),
        "ip -batch in {pid} failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn same_user_namespace(pid: u32) -> bool {
    let ours = std::fs::read_link("/proc/self/ns/user").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).ok();
    ours == theirs
}
