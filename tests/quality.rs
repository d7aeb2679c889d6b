//! The conference-quality score end to end: the emulator answers with a programmed delay
//! distribution and loss; the daemon's exported MOS must match the E-model applied to what the
//! emulator actually did (its ground truth), within 0.1 MOS. Also the RTT and jitter summaries
//! against the same truth, and no score for a Down endpoint. Every group is half IPv4, half
//! IPv6 (odd numbers), and each half must score as the truth says on its own.
//!
//! The lab delays each echo reply once (tests/accuracy.rs: a fixed 20 ms delay reads as a 20 ms
//! RTT), so the profile's 150 ms is the round-trip time: 75 ms one way.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Metrics};
use diemcau::domain::emodel::{self, Codec, Network};

/// Normal delay, 150 ms mean; σ chosen so that E|X − Y| (the daemon's jitter, mean absolute
/// difference of consecutive RTTs) is 30 ms: E|X − Y| = 2σ/√π, σ = 15·√π = 26.587 ms.
const SIGMA_MS: f64 = 26.586_807_763_582_737;

const SCENARIO: &str = r#"
[defaults]
delay = { kind = "normal", mean_ms = 150.0, stddev_ms = 26.586807763582737 }
loss = 0.03

[[rule]]
select = { province = "Tỉnh Lai Châu" }
never = true
"#;

/// 30 VNPT endpoints scored as G.722 (the default), 30 Viettel ones as G.711 with concealment,
/// and two that never answer; the odd-numbered ones on IPv6.
fn inventory() -> String {
    let mut s = String::from("id,province,commune,carrier,address\n");
    for i in 0..62u32 {
        let (carrier, province) = match i {
            0..30 => ("VNPT", "Tỉnh Điện Biên"),
            30..60 => ("Viettel", "Tỉnh Điện Biên"),
            _ => ("VNPT", "Tỉnh Lai Châu"),
        };
        let address = match v6(i) {
            false => format!("198.18.1.{}", i + 1),
            true => format!("2001:2::1:{}", i + 1),
        };
        s.push_str(&format!("Q{i:02},{province},Xã Q {i},{carrier},{address}\n"));
    }
    s
}

fn v6(i: u32) -> bool {
    i % 2 == 1
}

/// The address family of endpoint `i`, for messages.
fn family(i: u32) -> &'static str {
    if v6(i) { "IPv6" } else { "IPv4" }
}

/// 16 packets a second, a 40-round window: each score rests on 640 packets.
const CONFIG: &str = "[web]\nlisten_address = \"127.0.0.1:{port}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
[probe]\ninterval = \"1s\"\npackets = 16\npacket_spacing = \"20ms\"\ntimeout = \"500ms\"\n\
[state.degraded]\nwindow = 40\n[quality]\npoor_mos = 3.6\n[quality.carriers]\nViettel = \"g711\"\n";

fn ids(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("endpoint=\"Q{i:02}\"")).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The standard normal tail P(Z > z), by the Abramowitz–Stegun 7.1.26 erfc (error < 1.5e-7).
fn normal_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    0.5 * poly * (-x * x).exp()
}

#[test]
fn exported_mos_matches_the_e_model_of_the_emulators_ground_truth() {
    if !common::require_tool("ip") {
        return;
    }
    let mut d = Daemon::start_with_lab(CONFIG, &inventory(), SCENARIO);
    // Once the 40-round window is full: 30 scores per codec, 15 per family.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(46) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let m: Metrics = d.metrics();
    d.stop();
    let mos = |i: u32| {
        m.value("diemcau_endpoint_mos", &[&format!("endpoint=\"Q{i:02}\"")])
            .unwrap_or_else(|| panic!("Q{i:02} ({}) has a MOS", family(i)))
    };

    // No score for endpoints that are down, on either family; their poor-quality counter stays
    // at zero.
    for id in ids(60..62) {
        assert_eq!(m.value("diemcau_endpoint_up", &[&id]), Some(0.0), "{id} is down");
        assert_eq!(m.value("diemcau_endpoint_mos", &[&id]), None, "{id}: no MOS while down");
        assert_eq!(
            m.value("diemcau_endpoint_poor_quality_seconds_total", &[&id]),
            Some(0.0)
        );
    }

    let truth: Vec<serde_json::Value> = std::fs::read_to_string(d.truth_path())
        .expect("the emulator wrote its ground truth")
        .lines()
        .map(|l| serde_json::from_str(l).expect("truth lines are JSON"))
        .collect();
    let of = |i: u32| {
        truth
            .iter()
            .find(|t| t["kind"] == "endpoint" && t["endpoint"] == format!("Q{i:02}"))
            .unwrap_or_else(|| panic!("Q{i:02} in the truth"))
            .clone()
    };
    let f = |t: &serde_json::Value, k: &str| t[k].as_f64().unwrap();

    // The summaries against the truth, per endpoint: mean RTT within 1 ms of the delay the
    // emulator applied, mean jitter within 10 % of its mean consecutive difference.
    for i in 0..60 {
        let t = of(i);
        let id = format!("endpoint=\"Q{i:02}\"");
        let fam = family(i);
        let rtt = m.value("diemcau_endpoint_reply_rtt_seconds_sum", &[&id]).unwrap()
            / m.value("diemcau_endpoint_reply_rtt_seconds_count", &[&id]).unwrap();
        let jitter = m.value("diemcau_endpoint_reply_jitter_seconds_sum", &[&id]).unwrap()
            / m.value("diemcau_endpoint_reply_jitter_seconds_count", &[&id]).unwrap();
        // The count is the replies; a scrape is written family by family, so rounds may have
        // completed between the received counter (written earlier) and the summary.
        assert!(
            m.value("diemcau_endpoint_reply_rtt_seconds_count", &[&id])
                >= m.value("diemcau_endpoint_packets_received_total", &[&id]),
            "{id} ({fam}): the count is the replies"
        );
        let (applied, applied_jitter) = (f(&t, "delay_mean_ms"), f(&t, "mean_abs_consecutive_delay_diff_ms"));
        assert!(
            (rtt * 1e3 - applied).abs() < 1.0,
            "{id} ({fam}): RTT {} ms, applied {applied} ms",
            rtt * 1e3
        );
        // Both are means of |X − Y| over one endpoint's delays, but over different pairs (the
        // daemon's within rounds, the emulator's over every consecutive request), so they differ
        // by sampling: |X − Y| of a normal delay has a relative spread of 0.76, hence 4σ of
        // 4 × 0.76 / √pairs (about 12 % at 600 pairs), and never less than 10 %.
        let pairs = m
            .value("diemcau_endpoint_reply_jitter_seconds_count", &[&id])
            .unwrap_or(1.0);
        let tolerance = (4.0 * 0.76 / pairs.sqrt()).max(0.1);
        assert!(
            (jitter * 1e3 - applied_jitter).abs() < tolerance * applied_jitter,
            "{id} ({fam}): jitter {} ms, applied {applied_jitter} ms ({pairs} pairs, tolerance {:.0} %)",
            jitter * 1e3,
            tolerance * 100.0
        );
    }

    // Per codec and family, 15 endpoints: their mean score against the E-model of what the
    // emulator did for them. A score rests on its 40-round window, the truth on the whole run
    // (about 46 rounds), so they differ by the loss in the 6 rounds outside the window: 96 of
    // 736 packets at 3 %, a σ of 0.24 % of loss, 0.037 MOS per endpoint (around this profile a
    // score moves by 0.15 per 1 % of loss for G.722, 0.12 for G.711). Over 15 endpoints σ is
    // 0.010: the 0.1 tolerance is 10σ, the rest left to what is modelled rather than sampled
    // (late replies from the normal tail; a mean of scores is not the score of the means).
    for (range, codec) in [(0..30, emodel::G722), (30..60, emodel::G711)] {
        for fam in [false, true] {
            let members: Vec<u32> = range.clone().filter(|i| v6(*i) == fam).collect();
            let scores: Vec<f64> = members.iter().map(|i| mos(*i)).collect();
            let expected = expected_mos(&members.iter().map(|i| of(*i)).collect::<Vec<_>>(), &codec);
            check_mos(family(members[0]), &codec, &scores, expected);
        }
    }

    // G.722 with ~4 % effective loss scores below 3.6 (poor): its rounds were counted, on both
    // families.
    for fam in [false, true] {
        let poor: f64 = (0..30u32)
            .filter(|i| v6(*i) == fam)
            .map(|i| {
                m.value(
                    "diemcau_endpoint_poor_quality_seconds_total",
                    &[&format!("endpoint=\"Q{i:02}\"")],
                )
                .unwrap()
            })
            .sum();
        assert!(
            poor > 0.0,
            "{} G.722 endpoints spent time below MOS 3.6",
            if fam { "IPv6" } else { "IPv4" }
        );
    }
    for id in ids(0..60) {
        let s = m.value("diemcau_endpoint_poor_quality_seconds_total", &[&id]).unwrap();
        assert_eq!(s.fract(), 0.0, "{id}: whole 1 s rounds, got {s}");
    }
}

/// The mean of `scores` (one family's endpoints of one codec) against `expected` from the truth.
fn check_mos(family: &str, codec: &Codec, scores: &[f64], expected: f64) {
    let programmed = emodel::score(
        &Network {
            rtt: 0.150,
            jitter: 0.030,
            loss: 0.03 + late_share() * 0.97,
        },
        codec,
    )
    .mos;
    let measured = mean(scores);
    let spread = scores
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    eprintln!(
        "{family} {}: measured MOS {measured:.3} (per endpoint {:.2}..{:.2}, {} scores), expected from the truth {expected:.3}, from the profile {programmed:.3}",
        codec.name,
        spread.0,
        spread.1,
        scores.len()
    );
    assert!(
        (measured - expected).abs() < 0.1,
        "{family} {}: measured {measured}, expected {expected}",
        codec.name
    );
}

/// Share of replies later than the jitter buffer for this profile: the buffer is 2 × jitter
/// = 4σ/√π above the mean, so P(X − μ > 4σ/√π) = P(Z > 2.2568) = 1.20 % for a normal delay.
fn late_share() -> f64 {
    normal_tail(4.0 / std::f64::consts::PI.sqrt())
}

/// The E-model of what the emulator did for these endpoints: mean applied delay as the RTT,
/// mean consecutive difference as the jitter, its drops plus the normal tail beyond the buffer
/// as the loss.
fn expected_mos(truth: &[serde_json::Value], codec: &Codec) -> f64 {
    let f = |t: &serde_json::Value, k: &str| t[k].as_f64().unwrap();
    let rtt = mean(&truth.iter().map(|t| f(t, "delay_mean_ms")).collect::<Vec<_>>()) / 1e3;
    let jitter = mean(
        &truth
            .iter()
            .map(|t| f(t, "mean_abs_consecutive_delay_diff_ms"))
            .collect::<Vec<_>>(),
    ) / 1e3;
    let dropped: f64 = truth.iter().map(|t| f(t, "dropped_loss")).sum();
    let requests: f64 = truth.iter().map(|t| f(t, "echo_requests")).sum();
    // The jitter the emulator applied also gives σ: the tail beyond the buffer follows from it.
    let sigma = jitter * std::f64::consts::PI.sqrt() / 2.0;
    let late = normal_tail(emodel::jitter_buffer_ms(jitter * 1e3) / 1e3 / sigma);
    let lost = dropped / requests;
    assert!(
        (sigma * 1e3 - SIGMA_MS).abs() < 0.1 * SIGMA_MS,
        "applied σ {} ms",
        sigma * 1e3
    );
    eprintln!(
        "  truth: RTT {:.2} ms, jitter {:.2} ms, dropped {:.2} %, late {:.2} %",
        rtt * 1e3,
        jitter * 1e3,
        lost * 100.0,
        late * 100.0
    );
    emodel::score(
        &Network {
            rtt,
            jitter,
            // Late replies are a share of those that came back.
            loss: lost + late * (1.0 - lost),
        },
        codec,
    )
    .mos
}
