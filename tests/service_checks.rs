//! Service checks in the daemon against the endpoint emulator: an endpoint whose ICMP is up but
//! whose SIP is dead is reported as such, and its state follows the checks that decide it;
//! /probe answers with blackbox_exporter's metric names. Every endpoint has an IPv6 twin (its
//! id with `-6`, in 2001:2::/48) that must fare exactly the same.

mod common;

use std::time::Duration;

use common::{Daemon, http};

const INVENTORY: &str = "id,province,district,commune,carrier,address,checks
SIP-OK,Tỉnh Lào Cai,Huyện Bát Xát,Xã A Mú Sung,VNPT,198.18.0.1,
SIP-DEAD,Tỉnh Lào Cai,Huyện Bát Xát,Xã Y Tý,VNPT,198.18.0.2,
SIP-503,Tỉnh Lào Cai,Huyện Bát Xát,Xã Trịnh Tường,Viettel,198.18.0.3,
TCP-ONLY,Tỉnh Lào Cai,Huyện Bát Xát,Xã Quang Kim,Viettel,198.18.0.4,web;h323
SIP-OK-6,Tỉnh Lào Cai,Huyện Bát Xát,Xã A Mú Sung,VNPT,2001:2::1,
SIP-DEAD-6,Tỉnh Lào Cai,Huyện Bát Xát,Xã Y Tý,VNPT,2001:2::2,
SIP-503-6,Tỉnh Lào Cai,Huyện Bát Xát,Xã Trịnh Tường,Viettel,2001:2::3,
TCP-ONLY-6,Tỉnh Lào Cai,Huyện Bát Xát,Xã Quang Kim,Viettel,2001:2::4,web;h323
";

/// The id suffix of each family's endpoints: IPv4, IPv6.
const FAMILIES: [&str; 2] = ["", "-6"];

const SCENARIO: &str = r#"
[defaults]
delay = { kind = "fixed", ms = 2.0 }
[[rule]]
select = { ids = ["SIP-DEAD", "SIP-DEAD-6"] }
sip = "silent"
[[rule]]
select = { ids = ["SIP-503", "SIP-503-6"] }
sip = "503"
"#;

fn config(decide: &str) -> String {
    format!(
        r#"[web]
listen_address = "127.0.0.1:{{port}}"
enable_lifecycle = true
[inventory]
files = ["inventory.csv"]
[probe]
interval = "1s"
packets = 3
packet_spacing = "100ms"
timeout = "500ms"
[state]
down_after = 3
up_after = 2
[check.sip]
kind = "sip"
transport = "udp"
timeout = "600ms"
[check.web]
kind = "tcp"
port = 80
timeout = "500ms"
[check.h323]
kind = "tcp"
port = 1720
timeout = "500ms"
[checks]
default = ["icmp", "sip"]
decide = {decide}
interval = "1s"
"#
    )
}

fn check(id: &str, name: &str) -> [String; 2] {
    [format!("endpoint=\"{id}\""), format!("check=\"{name}\"")]
}

#[test]
fn sip_decides_state_when_configured_and_probe_speaks_blackbox() {
    if !common::require_tool("ip") || !common::require_tool("promtool") {
        return;
    }
    let mut d = Daemon::start_with_lab(&config(r#"["icmp", "sip"]"#), INVENTORY, SCENARIO);
    let v = |m: &common::Metrics, name: &str, l: &[String]| {
        m.value(name, &l.iter().map(String::as_str).collect::<Vec<_>>())
    };
    d.wait_until(Duration::from_secs(20), "check states to settle", |d| {
        let m = d.metrics();
        FAMILIES.iter().all(|f| {
            v(&m, "diemcau_endpoint_check_up", &check(&format!("SIP-DEAD{f}"), "sip")) == Some(0.0)
                && v(&m, "diemcau_endpoint_check_up", &check(&format!("SIP-OK{f}"), "sip")) == Some(1.0)
                && v(&m, "diemcau_endpoint_check_up", &check(&format!("TCP-ONLY{f}"), "h323")) == Some(0.0)
        })
    });
    let m = d.metrics();
    for f in FAMILIES {
        let id = |name: &str| format!("{name}{f}");
        let up = |name: &str| m.value("diemcau_endpoint_up", &[&format!("endpoint=\"{}\"", id(name))]);
        let of = |metric: &str, name: &str, check_name: &str| v(&m, metric, &check(&id(name), check_name));
        // ICMP answers for the dead-SIP endpoint, but SIP decides: it is down.
        assert!(
            m.value(
                "diemcau_endpoint_rtt_seconds",
                &[&format!("endpoint=\"{}\"", id("SIP-DEAD"))]
            )
            .is_some(),
            "{}: ICMP answers",
            id("SIP-DEAD")
        );
        assert_eq!(up("SIP-DEAD"), Some(0.0), "{}", id("SIP-DEAD"));
        assert_eq!(up("SIP-OK"), Some(1.0), "{}", id("SIP-OK"));
        // Any SIP response proves the stack alive; the status is exported.
        assert_eq!(up("SIP-503"), Some(1.0), "{}", id("SIP-503"));
        assert_eq!(
            of("diemcau_endpoint_check_status_code", "SIP-503", "sip"),
            Some(503.0),
            "{}",
            id("SIP-503")
        );
        assert_eq!(
            of("diemcau_endpoint_check_status_code", "SIP-OK", "sip"),
            Some(200.0),
            "{}",
            id("SIP-OK")
        );
        // Per-row checks: an open port up, a closed one down, neither deciding.
        assert_eq!(
            of("diemcau_endpoint_check_up", "TCP-ONLY", "web"),
            Some(1.0),
            "{}",
            id("TCP-ONLY")
        );
        assert_eq!(up("TCP-ONLY"), Some(1.0), "{}", id("TCP-ONLY"));
        // The failing checks have failed (three times at least), the others never.
        for (name, check_name, failing) in [
            ("SIP-DEAD", "sip", true),
            ("TCP-ONLY", "h323", true),
            ("SIP-OK", "sip", false),
            ("SIP-503", "sip", false),
            ("TCP-ONLY", "web", false),
        ] {
            let failures = of("diemcau_endpoint_check_failures_total", name, check_name).unwrap_or(-1.0);
            assert!(
                if failing { failures >= 3.0 } else { failures == 0.0 },
                "{} {check_name}: {failures} failures",
                id(name)
            );
        }
        assert!(m.0.contains(&format!(
            "diemcau_endpoint_check_duration_seconds{{endpoint=\"{}\",province=\"Tỉnh Lào Cai\"",
            id("SIP-OK")
        )));
    }
    // Why they failed, on both families: every SIP failure a timeout, every h323 one a refusal.
    for (check_name, reason) in [("sip", "timeout"), ("h323", "refused")] {
        let all = m.sum("diemcau_check_failures_total", &[&format!("check=\"{check_name}\"")]);
        let with_reason = m.sum(
            "diemcau_check_failures_total",
            &[&format!("check=\"{check_name}\""), &format!("reason=\"{reason}\"")],
        );
        assert!(with_reason >= 6.0, "{check_name}: {with_reason} failures by {reason}");
        assert_eq!(all, with_reason, "{check_name}: every failure is a {reason}");
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scrape.txt"), &m.0).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "promtool check metrics < {}",
            dir.path().join("scrape.txt").display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // blackbox_exporter's multi-target pattern, on both families: a bare IPv6 address, or one in
    // brackets before a port (percent-encoded in the query).
    let probe = |q: &str| http(d.port, "GET", &format!("/probe?{q}"), &[]);
    for (addr, protocol, open, close) in [("198.18.0.", 4, "", ""), ("2001:2::", 6, "%5B", "%5D")] {
        let with_port = |host: u8, port: u16| format!("{open}{addr}{host}{close}%3A{port}");
        let (s, body) = probe(&format!("target={addr}1&module=icmp"));
        assert_eq!(s, 200);
        assert!(
            body.contains("\nprobe_success 1\n")
                && body.contains("probe_icmp_duration_seconds{phase=\"rtt\"}")
                && body.contains(&format!("\nprobe_ip_protocol {protocol}\n")),
            "{body}"
        );
        let (_, body) = probe(&format!("target={addr}2&module=sip"));
        assert!(body.contains("\nprobe_success 0\n"), "{addr}2: {body}");
        let (_, body) = probe(&format!("target={addr}3&module=sip"));
        assert!(
            body.contains("probe_sip_status_code 503") && body.contains("\nprobe_success 1\n"),
            "{addr}3: {body}"
        );
        let (_, body) = probe(&format!("target={}&module=h323", with_port(4, 80)));
        assert!(
            body.contains("\nprobe_success 1\n"),
            "the port in the target overrides the module's: {body}"
        );
        let (_, body) = probe(&format!("target={}&module=web", with_port(4, 1720)));
        assert!(body.contains("\nprobe_success 0\n"), "a closed port: {body}");
    }
    // An IPv6 address in brackets without a port is the address.
    let (_, body) = probe("target=%5B2001%3A2%3A%3A1%5D&module=icmp");
    assert!(body.contains("\nprobe_success 1\n"), "[2001:2::1]: {body}");
    assert_eq!(probe("target=198.18.0.4&module=nope").0, 400);
    assert_eq!(probe("module=icmp").0, 400);

    // /probe is no open door: only the inventory's addresses (probe_targets = "inventory", the
    // default), never a broadcast or multicast address, and a bounded number at once.
    for (target, status) in [
        ("198.18.9.9", 403),
        ("198.18.0.1%3A22", 200),
        ("127.0.0.1%3A9808", 403),
        ("0.0.0.0", 400),
        ("255.255.255.255", 400),
        ("224.0.0.1", 400),
        ("%5Bff02%3A%3A1%5D%3A5060", 400),
        ("2001%3A2%3A%3A99", 403),
        ("%5B2001%3A2%3A%3A1%5D%3A22", 200),
        ("%5B%3A%3A1%5D%3A9808", 403),
        ("%3A%3A", 400),
        ("ff02%3A%3A1", 400),
    ] {
        let (s, body) = probe(&format!("target={target}&module=h323"));
        assert_eq!(s, status, "target {target}: {body}");
    }
    let start = std::sync::Arc::new(std::sync::Barrier::new(40));
    let port = d.port;
    let burst: Vec<_> = (0..40)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                http(port, "GET", "/probe?target=198.18.0.2&module=sip", &[]).0
            })
        })
        .collect();
    let statuses: Vec<u16> = burst.into_iter().map(|t| t.join().expect("join")).collect();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    let served = statuses.iter().filter(|s| **s == 200).count();
    println!("40 concurrent /probe requests: {served} served, {busy} answered 503");
    assert_eq!(busy + served, 40, "{statuses:?}");
    assert!(busy > 0 && served > 0, "{statuses:?}");

    // Reload: only ICMP decides now, so the endpoints with dead SIP are up, their SIP still down.
    std::fs::write(
        d.dir.path().join("diemcau.toml"),
        config(r#"["icmp"]"#).replace("{port}", &d.port.to_string()),
    )
    .unwrap();
    let (s, body) = http(d.port, "POST", "/-/reload", &[]);
    assert_eq!(s, 200, "{body}");
    d.wait_until(Duration::from_secs(10), "SIP-DEAD and SIP-DEAD-6 to be up", |d| {
        let m = d.metrics();
        FAMILIES
            .iter()
            .all(|f| m.value("diemcau_endpoint_up", &[&format!("endpoint=\"SIP-DEAD{f}\"")]) == Some(1.0))
    });
    let m = d.metrics();
    for f in FAMILIES {
        assert_eq!(
            v(&m, "diemcau_endpoint_check_up", &check(&format!("SIP-DEAD{f}"), "sip")),
            Some(0.0)
        );
    }
    d.stop();
}
