//! The spine end to end, through the real kernel: the daemon probes loopback addresses from a
//! private network namespace; nftables rules in that namespace drop or thin out its packets.

mod common;

use std::time::Duration;

use common::{Daemon, fast_config, loopback_inventory, require_tool};

const UP: &str = "diemcau_endpoint_up";

#[test]
fn two_thousand_endpoints_come_up_with_labels_intact_and_a_clean_scrape() {
    if !require_tool("promtool") {
        return;
    }
    let mut d = Daemon::start(&fast_config("2s", 3, 2), &loopback_inventory(2000));
    d.wait_until(Duration::from_secs(20), "/-/ready", |d| d.get("/-/ready").0 == 200);
    let m = d.metrics();
    assert_eq!(m.values(UP, &[]).len(), 2000, "every endpoint has an up series");
    assert_eq!(m.sum(UP, &[]), 2000.0, "every endpoint is up");
    assert_eq!(m.value("diemcau_endpoints", &[]), Some(2000.0));
    assert_eq!(m.value("diemcau_ready", &[]), Some(1.0));
    // UTF-8 Vietnamese names come out exactly as written in the inventory.
    assert!(m.0.contains(
        r#"province="Thành phố Hồ Chí Minh",district="Thành phố Thủ Đức",commune="Phường Cát Lái 0",carrier="VNPT""#
    ));
    assert_eq!(
        m.value(
            "diemcau_region_endpoints",
            &[r#"province="Tỉnh Hà Giang""#, r#"carrier="VNPT""#, r#"state="up""#]
        ),
        Some(333.0)
    );
    // RTT on loopback: positive and well under a millisecond.
    let rtts = m.values("diemcau_endpoint_rtt_seconds", &[]);
    assert_eq!(rtts.len(), 2000);
    assert!(rtts.iter().all(|r| *r > 0.0 && *r < 0.05), "{:?}", &rtts[..5]);

    // The scrape is valid Prometheus text, plain and gzip.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scrape.txt");
    std::fs::write(&file, &m.0).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _) = common::http(d.port, "GET", "/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(status, 200);
    d.stop();
}

#[test]
fn dropped_endpoints_go_down_within_n_rounds_and_recover_within_m() {
    if !require_tool("nft") || !require_tool("nsenter") {
        return;
    }
    let interval = Duration::from_secs(1);
    let (down_after, up_after) = (3u32, 2u32);
    let mut d = Daemon::start(&fast_config("1s", down_after, up_after), &loopback_inventory(200));
    d.wait_until(Duration::from_secs(15), "/-/ready", |d| d.get("/-/ready").0 == 200);
    let victims = ["E00005", "E00006", "E00150"];
    d.nft(
        "table inet lab {\n chain out {\n  type filter hook output priority 0; policy accept;\n  \
         ip daddr { 127.1.0.6, 127.1.0.7, 127.1.0.151 } drop\n }\n}\n",
    );
    // N silent rounds, plus up to one round already under way, plus a timeout and a poll.
    let limit = interval * (down_after + 1) + Duration::from_secs(2);
    let took = d.wait_until(limit, "the dropped endpoints to go down", |d| {
        let m = d.metrics();
        victims
            .iter()
            .all(|v| m.value(UP, &[&format!("endpoint=\"{v}\"")]) == Some(0.0))
    });
    eprintln!("down detected after {took:?} (limit {limit:?})");
    let m = d.metrics();
    assert_eq!(m.sum(UP, &[]), 197.0, "only the dropped endpoints are down");
    assert_eq!(m.value("diemcau_endpoint_state", &["endpoint=\"E00005\""]), Some(3.0));
    assert_eq!(
        m.value("diemcau_state_transitions_total", &["from=\"up\"", "to=\"down\""]),
        Some(3.0)
    );

    d.nft("delete table inet lab\n");
    let limit = interval * (up_after + 1) + Duration::from_secs(2);
    let took = d.wait_until(limit, "the endpoints to come back up", |d| {
        d.metrics().sum(UP, &[]) == 200.0
    });
    eprintln!("recovery detected after {took:?} (limit {limit:?})");
    let m = d.metrics();
    assert_eq!(
        m.value("diemcau_endpoint_transitions_total", &["endpoint=\"E00005\""]),
        Some(3.0),
        "unknown→up→down→up/degraded"
    );
    let log = d.stop();
    assert!(
        log.contains("endpoint state changed") && log.contains("E00150"),
        "transitions are logged"
    );
}

#[test]
fn thirty_percent_random_loss_is_measured_and_does_not_take_endpoints_down() {
    if !require_tool("nft") || !require_tool("nsenter") {
        return;
    }
    let mut d = Daemon::start(&fast_config("1s", 3, 2), &loopback_inventory(60));
    d.wait_until(Duration::from_secs(15), "/-/ready", |d| d.get("/-/ready").0 == 200);
    // The 40 endpoints 127.1.0.1–127.1.0.40 lose 30 % of their echo requests.
    d.nft(
        "table inet lab {\n chain out {\n  type filter hook output priority 0; policy accept;\n  \
         ip daddr 127.1.0.1-127.1.0.40 icmp type echo-request numgen random mod 100 < 30 drop\n }\n}\n",
    );
    let lossy: Vec<String> = (0..40).map(|i| format!("endpoint=\"E{i:05}\"")).collect();
    let counters = |m: &common::Metrics| -> (f64, f64) {
        lossy.iter().fold((0.0, 0.0), |(s, r), l| {
            (
                s + m.value("diemcau_endpoint_packets_sent_total", &[l]).unwrap(),
                r + m.value("diemcau_endpoint_packets_received_total", &[l]).unwrap(),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(1500)); // let rounds started before the rule finish
    let (s0, r0) = counters(&d.metrics());
    for _ in 0..20 {
        std::thread::sleep(Duration::from_secs(1));
        let m = d.metrics();
        for l in &lossy {
            assert_eq!(m.value(UP, &[l]), Some(1.0), "{l} went down under 30 % loss");
        }
    }
    let (s1, r1) = counters(&d.metrics());
    let sent = s1 - s0;
    let lost = sent - (r1 - r0);
    // Binomial bound: 30 % ± 4 standard deviations (false failure odds ≈ 6e-5).
    let sd = (sent * 0.3 * 0.7).sqrt();
    eprintln!(
        "sent {sent}, lost {lost}, loss {:.3}, bound ±{:.1}",
        lost / sent,
        4.0 * sd
    );
    assert!(sent > 2000.0, "enough samples: {sent}");
    assert!(
        (lost - 0.3 * sent).abs() < 4.0 * sd,
        "loss {lost}/{sent} outside 30 % ± 4σ"
    );
    d.stop();
}

#[test]
fn two_endpoints_behind_one_address_are_both_measured() {
    let inventory = "id,province,district,commune,carrier,address\n\
        NAT-A,Tỉnh Cà Mau,Huyện Ngọc Hiển,Xã Đất Mũi,VNPT,127.3.0.1\n\
        NAT-B,Tỉnh Cà Mau,Huyện Ngọc Hiển,Xã Viên An,Viettel,127.3.0.1\n\
        V6,Tỉnh Cà Mau,Huyện Ngọc Hiển,Xã Tân Ân,VNPT,::1\n";
    let mut d = Daemon::start(&fast_config("1s", 3, 2), inventory);
    std::thread::sleep(Duration::from_secs(5));
    d.wait_until(Duration::from_secs(5), "/-/ready", |d| d.get("/-/ready").0 == 200);
    let m = d.metrics();
    for id in ["NAT-A", "NAT-B", "V6"] {
        let l = format!("endpoint=\"{id}\"");
        let sent = m.value("diemcau_endpoint_packets_sent_total", &[&l]).unwrap();
        let received = m.value("diemcau_endpoint_packets_received_total", &[&l]).unwrap();
        assert!(sent >= 9.0, "{id}: {sent} sent");
        // A round may be in flight at scrape time: received lags sent by at most one round.
        assert!(received >= sent - 3.0 && received <= sent, "{id}: {received}/{sent}");
        assert_eq!(m.value(UP, &[&l]), Some(1.0), "{id}");
    }
    assert_eq!(
        m.value("diemcau_icmp_packets_rejected_total", &["reason=\"unmatched\""]),
        Some(0.0)
    );
    d.stop();
}
