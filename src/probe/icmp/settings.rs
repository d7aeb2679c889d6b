//! The ICMP engine's typed settings (the `[probe]` table once validated by `config`) and the
//! limits the engine's design imposes on them.

use std::time::Duration;

/// Which kind of ICMP socket to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketPreference {
    /// Unprivileged ping socket first, raw socket as fallback.
    Auto,
    Dgram,
    Raw,
}

/// How each endpoint is probed.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeConfig {
    /// One round of echo requests per endpoint per interval.
    pub interval: Duration,
    /// Echo requests per round.
    pub packets: u32,
    /// Time between the echo requests of one round.
    pub packet_spacing: Duration,
    /// How long to wait for each reply.
    pub timeout: Duration,
    pub socket: SocketPreference,
    pub confirm: ConfirmConfig,
}

/// Confirmation rounds: right after a regular round that contradicts an endpoint's state, one
/// round of `packets` requests `spacing` apart settles it within seconds instead of intervals.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfirmConfig {
    /// Requests in a confirmation round; 0 turns confirmation off.
    pub packets: u32,
    pub spacing: Duration,
    /// Confirmation packets per second at most, as a fraction of the regular packet rate (with
    /// a floor of [`MIN_CONFIRM_RATE`]): a national event cannot turn into a burst.
    pub budget: f64,
    /// While an endpoint is Down, one request this often between its regular rounds (0 turns
    /// watching off): the recovery is dated to within half of it. Watches spend the same
    /// budget, but only its upper half, so confirmations always find room.
    pub watch_spacing: Duration,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            packets: 10,
            spacing: Duration::from_millis(100),
            budget: 0.1,
            watch_spacing: Duration::from_secs(1),
        }
    }
}

/// Confirmation packets per second always allowed, however small the inventory.
pub const MIN_CONFIRM_RATE: f64 = 200.0;

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            interval: Duration::from_secs(10),
            packets: 3,
            packet_spacing: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
            socket: SocketPreference::Auto,
            confirm: ConfirmConfig::default(),
        }
    }
}

impl ProbeConfig {
    /// Longest time one round can take: last request sent plus its timeout.
    pub fn round_span(&self) -> Duration {
        self.packet_spacing * self.packets.saturating_sub(1) + self.timeout
    }

    /// Longest time a confirmation round can take.
    pub fn confirm_span(&self) -> Duration {
        self.confirm.spacing * self.confirm.packets.saturating_sub(1) + self.timeout
    }

    /// Requests per round the engine keeps room for: a regular or a confirmation round.
    pub fn max_round_packets(&self) -> u32 {
        self.packets.max(self.confirm.packets).min(MAX_PACKETS_PER_ROUND)
    }
}

/// Most echo requests one socket may have waiting for a reply: the ICMP sequence number is 16
/// bits, and sequence numbers must stay unique among requests in flight. Kept below 65,536 so a
/// late reply can never be taken for a newer request.
pub const MAX_IN_FLIGHT_PER_FAMILY: f64 = 60_000.0;

/// Echo requests one round may send (bounded so per-endpoint state stays small).
pub const MAX_PACKETS_PER_ROUND: u32 = 16;
