//! `[probe]`: the ICMP engine's settings, validated.

use std::time::Duration;

use super::toml_file::RawConfig;
use super::{ConfirmConfig, ProbeConfig, SocketPreference, Validator, position};

impl Validator<'_> {
    pub(super) fn probe(&mut self, raw: &RawConfig) -> ProbeConfig {
        let d = ProbeConfig::default();
        let p = &raw.probe;
        let ms = Duration::from_millis;
        let probe = ProbeConfig {
            interval: self.duration(
                &p.interval,
                "probe.interval",
                d.interval,
                ms(100),
                Duration::from_secs(3600),
            ),
            packets: self.integer(
                &p.packets,
                "probe.packets",
                d.packets,
                1,
                crate::probe::icmp::settings::MAX_PACKETS_PER_ROUND,
            ),
            packet_spacing: self.duration(
                &p.packet_spacing,
                "probe.packet_spacing",
                d.packet_spacing,
                ms(1),
                Duration::from_secs(60),
            ),
            timeout: self.duration(&p.timeout, "probe.timeout", d.timeout, ms(1), Duration::from_secs(60)),
            socket: match &p.socket {
                None => SocketPreference::Auto,
                Some(s) => self
                    .parse(
                        s,
                        "probe.socket",
                        |t| match t.as_str() {
                            "auto" => Some(SocketPreference::Auto),
                            "dgram" => Some(SocketPreference::Dgram),
                            "raw" => Some(SocketPreference::Raw),
                            _ => None,
                        },
                        "write \"auto\", \"dgram\" or \"raw\"",
                    )
                    .unwrap_or(SocketPreference::Auto),
            },
            confirm: ConfirmConfig {
                packets: self.integer(
                    &p.confirm_packets,
                    "probe.confirm_packets",
                    d.confirm.packets,
                    0,
                    crate::probe::icmp::settings::MAX_PACKETS_PER_ROUND,
                ),
                spacing: self.duration(
                    &p.confirm_spacing,
                    "probe.confirm_spacing",
                    d.confirm.spacing,
                    ms(1),
                    Duration::from_secs(10),
                ),
                budget: match &p.confirm_budget {
                    None => d.confirm.budget,
                    Some(v) => self
                        .parse(
                            v,
                            "probe.confirm_budget",
                            |r| (0.0..=1.0).contains(r).then_some(*r),
                            "write a fraction of the regular packet rate from 0.0 to 1.0, e.g. 0.1",
                        )
                        .unwrap_or(d.confirm.budget),
                },
                watch_spacing: self.duration(
                    &p.watch_spacing,
                    "probe.watch_spacing",
                    d.confirm.watch_spacing,
                    Duration::ZERO,
                    Duration::from_secs(60),
                ),
            },
        };
        if probe.round_span() >= probe.interval {
            let (l, c) = p.interval.as_ref().map_or((0, 0), |i| position(self.text, i));
            self.problem_at(
                l,
                c,
                "probe.interval",
                &format!(
                    "{} is not longer than one round ({} packets spaced {} plus a {} timeout)",
                    humantime::format_duration(probe.interval),
                    probe.packets,
                    humantime::format_duration(probe.packet_spacing),
                    humantime::format_duration(probe.timeout)
                ),
                "lengthen probe.interval or shorten probe.packet_spacing / probe.timeout",
            );
        }
        probe
    }
}
