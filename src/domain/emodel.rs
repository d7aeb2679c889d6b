//! The E-model (ITU-T G.107, and its wideband version G.107.1) as used for network planning:
//! a rating R and a MOS for conversational speech, from the delay, jitter and loss an endpoint
//! shows to ICMP echo. Pure arithmetic, no I/O.
//!
//! R = Ro − Is − Id − Ie,eff + A (G.107 clause 7.1, eq. 7-1). The terminal and room parameters
//! (loudness ratings, sidetone, echo losses, noise) take their G.107 clause 7.7 default values;
//! only the network figures vary:
//! - Id from the mouth-to-ear delay Ta = RTT/2 + jitter-buffer delay + packetisation delay, with
//!   T = Ta and Tr = 2·Ta (clause 7.4; Idd with X = log2(Ta/100) beyond 100 ms);
//! - Ie,eff from the share of packets lost or arriving after the jitter buffer (clause 7.5,
//!   eq. 7-29), with the codec's Ie and Bpl.
//!
//! Narrowband codecs are rated on G.107's scale (default R = 93.2) and converted to MOS with
//! Annex B. Wideband codecs are rated on G.107.1's scale (Ro,WB = 129, Is,WB = 0; clauses 7.2,
//! 7.3) and converted with G.107.1 Annex A: R_X = R_WB / 1.29, then the narrowband formula.
//! See docs/quality.md for the limits of an ICMP-derived score.

/// The jitter buffer is sized at this many times the measured jitter (mean absolute difference
/// of consecutive RTTs): a common planning rule for adaptive buffers.
pub const JITTER_BUFFER_FACTOR: f64 = 2.0;
/// Smallest jitter buffer, in ms: real buffers hold at least one packet even on a steady path.
pub const MIN_JITTER_BUFFER_MS: f64 = 20.0;

/// Which rating scale a codec is judged on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Band {
    /// 300–3400 Hz, G.107 (R up to 93.2 with default parameters).
    Narrow,
    /// 50–7000 Hz, G.107.1 (R up to 129).
    Wide,
}

/// A codec's planning values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Codec {
    /// The config spelling (`g711`, `g711-noplc`, `g722`).
    pub name: &'static str,
    pub band: Band,
    /// Equipment impairment factor without loss (Ie, or Ie,WB on the wideband scale).
    pub ie: f64,
    /// Packet-loss robustness factor under random loss.
    pub bpl: f64,
    /// Audio held back before a packet leaves (one 20 ms RTP frame, the usual ptime).
    pub packetisation_ms: f64,
}

/// G.711 with packet-loss concealment (G.711 Appendix I): Ie = 0 and Bpl = 25.1, ITU-T G.113
/// Appendix I (provisional planning values for Ie and Bpl, G.711 with PLC, random loss).
pub const G711: Codec = Codec {
    name: "g711",
    band: Band::Narrow,
    ie: 0.0,
    bpl: 25.1,
    packetisation_ms: 20.0,
};

/// G.711 without concealment: Bpl = 4.3 (G.113 Appendix I, random loss).
pub const G711_NO_PLC: Codec = Codec {
    name: "g711-noplc",
    band: Band::Narrow,
    ie: 0.0,
    bpl: 4.3,
    packetisation_ms: 20.0,
};

/// G.722 at 64 kbit/s with concealment, on the wideband scale: Ie,WB = 13 (G.113 Appendix IV,
/// wideband equipment impairment factors). Bpl,WB = 10 is a provisional planning value for
/// G.722 with its Appendix III/IV concealment: check it against the G.113 edition in force
/// and override it with `[quality.codecs.g722] bpl` (docs/quality.md).
pub const G722: Codec = Codec {
    name: "g722",
    band: Band::Wide,
    ie: 13.0,
    bpl: 10.0,
    packetisation_ms: 20.0,
};

/// The built-in codecs, by config name.
pub const CODECS: [Codec; 3] = [G711, G711_NO_PLC, G722];

/// The built-in codec of that name.
pub fn codec(name: &str) -> Option<Codec> {
    CODECS.iter().find(|c| c.name == name).copied()
}

/// What the network does to packets over a window of rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Network {
    /// Mean round-trip time of the replies, seconds.
    pub rtt: f64,
    /// Mean absolute difference of consecutive RTTs, seconds.
    pub jitter: f64,
    /// Share of packets lost or late for the jitter buffer, 0..1.
    pub loss: f64,
}

/// A rating and its inputs after the model's folding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Transmission rating R on the codec's scale (≤ 93.2 narrowband, ≤ 129 wideband).
    pub r: f64,
    /// Estimated MOS (conversational quality, 1–4.5).
    pub mos: f64,
    /// Mouth-to-ear delay Ta, ms.
    pub delay_ms: f64,
    /// Packet loss Ppl fed to Ie,eff, percent.
    pub loss_pct: f64,
}

/// Jitter-buffer depth for a measured jitter, ms.
pub fn jitter_buffer_ms(jitter_ms: f64) -> f64 {
    (JITTER_BUFFER_FACTOR * jitter_ms).max(MIN_JITTER_BUFFER_MS)
}

/// Mouth-to-ear delay Ta: half the RTT, the jitter buffer and the codec's packetisation, ms.
pub fn mouth_to_ear_ms(rtt_ms: f64, jitter_ms: f64, codec: &Codec) -> f64 {
    rtt_ms / 2.0 + jitter_buffer_ms(jitter_ms) + codec.packetisation_ms
}

/// The RTT above which a reply would miss its playout time: the mean RTT plus the buffer (all
/// delay variation is taken to fall on the direction being listened to, the cautious reading
/// of a round-trip figure), seconds.
pub fn late_after(mean_rtt: f64, jitter: f64) -> f64 {
    mean_rtt + jitter_buffer_ms(jitter * 1e3) / 1e3
}

/// Scores a network window for a codec.
pub fn score(net: &Network, codec: &Codec) -> Score {
    let delay_ms = mouth_to_ear_ms(net.rtt * 1e3, net.jitter * 1e3, codec);
    let loss_pct = (net.loss.clamp(0.0, 1.0)) * 100.0;
    let id = delay_impairment(delay_ms);
    let ie_eff = ie_eff(codec.ie, loss_pct, codec.bpl, 1.0);
    let (r, mos) = match codec.band {
        Band::Narrow => {
            let d = Terminal::DEFAULT.base();
            let r = d.ro - d.is - id - ie_eff + A_DEFAULT;
            (r, mos_from_r(r))
        }
        Band::Wide => {
            let r = RO_WB - IS_WB - id - ie_eff + A_DEFAULT;
            (r, mos_from_r_wb(r))
        }
    };
    Score {
        r,
        mos,
        delay_ms,
        loss_pct,
    }
}

/// Advantage factor A: 0 for wired access (G.107 clause 7.6, Table 2).
pub const A_DEFAULT: f64 = 0.0;
/// Basic signal-to-noise ratio on the wideband scale (G.107.1 clause 7.2).
pub const RO_WB: f64 = 129.0;
/// Simultaneous impairment on the wideband scale with default terminals (G.107.1 clause 7.3).
pub const IS_WB: f64 = 0.0;
/// Wideband R scale over narrowband R scale (G.107.1 Annex A: R_X = R_WB / 1.29).
pub const WB_SCALE: f64 = 1.29;

/// Effective equipment impairment factor under random or bursty loss (G.107 clause 7.5,
/// eq. 7-29; G.107.1 clause 7.5 keeps the constant 95): Ie + (95 − Ie)·Ppl/(Ppl/BurstR + Bpl).
pub fn ie_eff(ie: f64, ppl_pct: f64, bpl: f64, burst_r: f64) -> f64 {
    if ppl_pct <= 0.0 || ppl_pct.is_nan() {
        return ie;
    }
    ie + (95.0 - ie) * ppl_pct / (ppl_pct / burst_r + bpl)
}

/// MOS from a narrowband R (G.107 Annex B, eq. B-4): 1 + 0.035R + R(R − 60)(100 − R)·7·10⁻⁶
/// for 0 < R < 100; 1 below, 4.5 above.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// MOS from a wideband R (G.107.1 Annex A): R_X = R_WB / 1.29 through the narrowband formula.
pub fn mos_from_r_wb(r_wb: f64) -> f64 {
    mos_from_r(r_wb / WB_SCALE)
}

/// Delay impairment Id = Idte + Idle + Idd for a mouth-to-ear delay Ta (ms), with default
/// terminals and the planning convention T = Ta, Tr = 2·Ta (G.107 clause 7.4).
pub fn delay_impairment(ta_ms: f64) -> f64 {
    let t = Terminal::DEFAULT;
    let b = t.base();
    t.talker_echo(&b, ta_ms) + t.listener_echo(&b, 2.0 * ta_ms) + absolute_delay(ta_ms)
}

/// Idd, the impairment of pure delay (G.107 clause 7.4): 0 up to 100 ms, beyond it
/// 25·{(1 + X⁶)^(1/6) − 3·(1 + (X/3)⁶)^(1/6) + 2} with X = log2(Ta/100) (mT = 100 ms, sT = 1).
pub fn absolute_delay(ta_ms: f64) -> f64 {
    if ta_ms <= 100.0 {
        return 0.0;
    }
    let x = (ta_ms / 100.0).log2();
    25.0 * ((1.0 + x.powi(6)).powf(1.0 / 6.0) - 3.0 * (1.0 + (x / 3.0).powi(6)).powf(1.0 / 6.0) + 2.0)
}

/// Terminal and connection parameters of G.107 clause 7.7 (Table 3) that the rating uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Terminal {
    /// Send and receive loudness ratings, dB.
    pub slr: f64,
    pub rlr: f64,
    /// Sidetone masking rating and listener sidetone rating, dB.
    pub stmr: f64,
    pub lstr: f64,
    /// D-factor of the handset, send side.
    pub ds: f64,
    /// Talker echo loudness rating, weighted echo path loss, dB.
    pub telr: f64,
    pub wepl: f64,
    /// Quantizing distortion units.
    pub qdu: f64,
    /// Circuit noise (dBm0p), noise floor at the receive side (dBmp), room noise (dB(A)).
    pub nc: f64,
    pub nfor: f64,
    pub ps: f64,
    pub pr: f64,
}

/// The T-independent terms: noise No, Ro and the part of Is that does not depend on delay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Base {
    pub no: f64,
    pub ro: f64,
    /// Is = Iolr + Ist + Iq (clause 7.3), with Ist at T = 0 (it changes by < 10⁻⁶ for T > 50 ms
    /// with the default TELR).
    pub is: f64,
}

impl Terminal {
    /// G.107 clause 7.7, Table 3 default values.
    pub const DEFAULT: Terminal = Terminal {
        slr: 8.0,
        rlr: 2.0,
        stmr: 15.0,
        lstr: 18.0,
        ds: 3.0,
        telr: 65.0,
        wepl: 110.0,
        qdu: 1.0,
        nc: -70.0,
        nfor: -64.0,
        ps: 35.0,
        pr: 35.0,
    };

    /// No, Ro and Is (G.107 clauses 7.2 and 7.3).
    pub fn base(&self) -> Base {
        let olr = self.slr + self.rlr;
        // Noise sources at the 0 dBr point: send-side room noise, receive-side room noise (with
        // the listener sidetone), the receive noise floor and the circuit noise (clause 7.2).
        let nos = self.ps - self.slr - self.ds - 100.0 + 0.004 * (self.ps - olr - self.ds - 14.0).powi(2);
        let pre = self.pr + 10.0 * (1.0 + 10f64.powf((10.0 - self.lstr) / 10.0)).log10();
        let nor = self.rlr - 121.0 + pre + 0.008 * (pre - 35.0).powi(2);
        let nfo = self.nfor + self.rlr;
        let no = 10.0
            * (10f64.powf(self.nc / 10.0) + 10f64.powf(nos / 10.0) + 10f64.powf(nor / 10.0) + 10f64.powf(nfo / 10.0))
                .log10();
        let ro = 15.0 - 1.5 * (self.slr + no);
        // Is = Iolr + Ist + Iq (clause 7.3).
        let xolr = olr + 0.2 * (64.0 + no - self.rlr);
        let iolr = 20.0 * ((1.0 + (xolr / 8.0).powi(8)).powf(1.0 / 8.0) - xolr / 8.0);
        let stmro = -10.0 * (10f64.powf(-self.stmr / 10.0) + 10f64.powf(-self.telr / 10.0)).log10();
        let ist = 12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
            - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
            - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
            + 29.0;
        let q = 37.0 - 15.0 * self.qdu.log10();
        let g = 1.07 + 0.258 * q + 0.0602 * q * q;
        let y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
        let z = 46.0 / 30.0 - g / 40.0;
        let iq = 15.0 * (1.0 + 10f64.powf(y) + 10f64.powf(z)).log10();
        Base {
            no,
            ro,
            is: iolr + ist + iq,
        }
    }

    /// Idte, talker echo, for a mean one-way delay T in ms (clause 7.4; STMR between 9 and
    /// 20 dB, so neither sidetone correction applies).
    pub fn talker_echo(&self, base: &Base, t_ms: f64) -> f64 {
        let roe = -1.5 * (base.no - self.rlr);
        let terv =
            self.telr - 40.0 * ((1.0 + t_ms / 10.0) / (1.0 + t_ms / 150.0)).log10() + 6.0 * (-0.3 * t_ms * t_ms).exp();
        let re = 80.0 + 2.5 * (terv - 14.0);
        let d = roe - re;
        (d / 2.0 + (d * d / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t_ms).exp())
    }

    /// Idle, listener echo, for a round-trip delay Tr in ms (clause 7.4).
    pub fn listener_echo(&self, base: &Base, tr_ms: f64) -> f64 {
        let rle = 10.5 * (self.wepl + 7.0) * (tr_ms + 1.0).powf(-0.25);
        let d = base.ro - rle;
        d / 2.0 + (d * d / 4.0 + 169.0).sqrt()
    }
}

#[cfg(test)]
#[path = "emodel_tests.rs"]
mod tests;
