//! Expected values: each one hand-computed from the equation named beside it (the arithmetic was
//! done separately, in double precision, outside this crate) or read from the recommendation.

use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn default_parameters_give_r_93_2_and_mos_4_41() {
    // G.107 clause 7.7: "using the default values for all parameters … R = 93.2"; Annex B maps
    // it to MOS 4.41. Unrounded: Ro = 94.7688, Is = 1.4136, Id(T = 0) = Idle = 0.1490.
    let b = Terminal::DEFAULT.base();
    assert!(close(b.ro, 94.7688, 1e-4), "Ro {}", b.ro);
    assert!(close(b.is, 1.4136, 1e-4), "Is {}", b.is);
    let id0 = Terminal::DEFAULT.listener_echo(&b, 0.0) + Terminal::DEFAULT.talker_echo(&b, 0.0);
    let r = b.ro - b.is - id0;
    assert!(close(r, 93.2062, 1e-4), "R {r}");
    assert!(close(mos_from_r(r), 4.41, 0.005), "MOS {}", mos_from_r(r));
}

#[test]
fn pure_delay_impairment_at_150_200_300_ms() {
    // G.107 clause 7.4, Idd with X = log2(Ta/100): Idd = 25{(1+X⁶)^⅙ − 3(1+(X/3)⁶)^⅙ + 2}.
    // 150 ms: X = 0.58496 → 0.1635; 200 ms: X = 1 → 25(2^⅙ − 3(1+3⁻⁶)^⅙ + 2) = 3.0444;
    // 300 ms: X = 1.58496 → 14.7607. Up to 100 ms there is none.
    assert_eq!(absolute_delay(100.0), 0.0);
    assert!(close(absolute_delay(150.0), 0.1635, 1e-4));
    assert!(close(absolute_delay(200.0), 3.0444, 1e-4));
    assert!(close(absolute_delay(300.0), 14.7607, 1e-4));
}

#[test]
fn whole_delay_impairment_with_default_echo_losses() {
    // Id = Idte(T = Ta) + Idle(Tr = 2Ta) + Idd(Ta), default TELR 65 dB and WEPL 110 dB:
    // 150 ms: 2.8118 + 0.8407 + 0.1635 = 3.8161 (R = 89.54, MOS 4.33);
    // 200 ms: 3.5708 + 0.9353 + 3.0444 = 7.5505 (R = 85.80, MOS 4.22);
    // 300 ms: 4.8339 + 1.0943 + 14.7607 = 20.6889 (R = 72.67, MOS 3.72).
    for (ta, id, mos) in [
        (150.0, 3.8161, 4.3275),
        (200.0, 7.5505, 4.2232),
        (300.0, 20.6889, 3.7194),
    ] {
        assert!(
            close(delay_impairment(ta), id, 2e-4),
            "Id({ta}) = {}",
            delay_impairment(ta)
        );
        let b = Terminal::DEFAULT.base();
        let r = b.ro - b.is - delay_impairment(ta);
        assert!(close(mos_from_r(r), mos, 2e-4), "MOS({ta}) = {}", mos_from_r(r));
    }
}

#[test]
fn g711_with_plc_under_random_loss() {
    // G.107 eq. 7-29 with G.113 Appendix I's G.711 + PLC values Ie = 0, Bpl = 25.1, BurstR = 1:
    // 95·Ppl/(Ppl + 25.1) = 3.6398 at 1 %, 7.0111 at 2 %, 15.7807 at 5 %.
    for (ppl, want) in [(1.0, 3.6398), (2.0, 7.0111), (5.0, 15.7807)] {
        assert!(close(ie_eff(G711.ie, ppl, G711.bpl, 1.0), want, 1e-4), "{ppl} %");
    }
    // Without concealment (Bpl = 4.3) the same 2 % costs 30.1587.
    assert!(close(ie_eff(0.0, 2.0, G711_NO_PLC.bpl, 1.0), 30.1587, 1e-4));
    // Bursty loss hurts more: BurstR = 2 at 2 % gives 95·2/(1 + 25.1) = 7.2797.
    assert!(close(ie_eff(0.0, 2.0, 25.1, 2.0), 7.2797, 1e-4));
    assert_eq!(ie_eff(13.0, 0.0, 10.0, 1.0), 13.0);
}

#[test]
fn mos_from_r_follows_annex_b_and_its_limits() {
    assert_eq!(mos_from_r(-5.0), 1.0);
    assert_eq!(mos_from_r(f64::NAN), 1.0);
    assert_eq!(mos_from_r(100.0), 4.5);
    // 1 + 0.035·50 + 50·(−10)·50·7e-6 = 2.575
    assert!(close(mos_from_r(50.0), 2.575, 1e-12));
}

#[test]
fn wideband_r_goes_through_r_x_before_the_mos_formula() {
    // G.107.1 Annex A: R_X = R_WB/1.29. Ie,WB = 13 with no other impairment: R = 116,
    // R_X = 89.9225 → MOS 4.3371; R = 121 → 4.4206; R = 88 → 3.5123; R = 129 → 4.5.
    assert!(close(mos_from_r_wb(116.0), 4.3371, 1e-4));
    assert!(close(mos_from_r_wb(121.0), 4.4206, 1e-4));
    assert!(close(mos_from_r_wb(88.0), 3.5123, 1e-4));
    assert_eq!(mos_from_r_wb(129.0), 4.5);
    // G.107.1 keeps 95 in Ie,eff: Ie,WB = 20, Bpl = 4.3 at 2 % → 43.8095, R 85.19, MOS 3.4062.
    let ie = ie_eff(20.0, 2.0, 4.3, 1.0);
    assert!(close(ie, 43.8095, 1e-4));
    assert!(close(mos_from_r_wb(RO_WB - ie), 3.4062, 1e-4));
}

#[test]
fn mouth_to_ear_delay_folds_in_the_buffer_and_the_packet() {
    // RTT 150 ms → 75 ms one way; jitter 30 ms → buffer 60 ms; one 20 ms packet.
    assert!(close(mouth_to_ear_ms(150.0, 30.0, &G722), 155.0, 1e-9));
    // A steady path keeps the smallest buffer.
    assert!(close(
        mouth_to_ear_ms(20.0, 0.0, &G711),
        10.0 + MIN_JITTER_BUFFER_MS + 20.0,
        1e-9
    ));
    assert!(close(late_after(0.150, 0.030), 0.210, 1e-12));
}

#[test]
fn a_whole_score_for_each_band() {
    let net = Network {
        rtt: 0.150,
        jitter: 0.030,
        loss: 0.042,
    };
    // Ta = 155 ms: Id = 2.8917 + 0.8509 + 0.2583 = 4.0009 (T = 155, Tr = 310).
    assert!(close(delay_impairment(155.0), 4.0009, 1e-4));
    // Wideband G.722: Ie,eff = 13 + 82·4.2/(4.2 + 10) = 37.2535; R = 129 − 4.0009 − 37.2535.
    let s = score(&net, &G722);
    assert!(close(s.delay_ms, 155.0, 1e-9));
    assert!(close(s.loss_pct, 4.2, 1e-9));
    assert!(close(s.r, 87.7456, 1e-3), "R {}", s.r);
    assert!(close(s.mos, 3.5028, 1e-3), "MOS {}", s.mos);
    // Narrowband G.711 + PLC: Ie,eff = 95·4.2/29.3 = 13.6177; R = 93.3553 − 4.0009 − 13.6177.
    let s = score(&net, &G711);
    assert!(close(s.r, 75.7366, 1e-3), "R {}", s.r);
    assert!(close(s.mos, 3.8532, 1e-3), "MOS {}", s.mos);
    // Nothing wrong at all: the top of each scale less the buffer's and packet's delay
    // (Ta = 40 ms, Id = 1.10 at T = 30 ms… 40 ms): MOS ≈ 4.49 wideband, 4.39 narrowband.
    let clean = Network {
        rtt: 0.0,
        jitter: 0.0,
        loss: 0.0,
    };
    assert!(score(&clean, &G711).mos > 4.35);
    assert!(score(&clean, &G722).mos > 4.3);
}

#[test]
fn codecs_by_name() {
    assert_eq!(codec("g722"), Some(G722));
    assert_eq!(codec("g711"), Some(G711));
    assert_eq!(codec("g711-noplc"), Some(G711_NO_PLC));
    assert_eq!(codec("opus"), None);
}
