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
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            interval: Duration::from_secs(10),
            packets: 3,
            packet_spacing: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
            socket: SocketPreference::Auto,
        }
    }
}

impl ProbeConfig {
    /// Longest time one round can take: last request sent plus its timeout.
    pub fn round_span(&self) -> Duration {
        self.packet_spacing * self.packets.saturating_sub(1) + self.timeout
    }
}

/// Most echo requests one socket may have waiting for a reply: the ICMP sequence number is 16
/// bits, and sequence numbers must stay unique among requests in flight. Kept below 65,536 so a
/// late reply can never be taken for a newer request.
pub const MAX_IN_FLIGHT_PER_FAMILY: f64 = 60_000.0;

/// Echo requests one round may send (bounded so per-endpoint state stays small).
pub const MAX_PACKETS_PER_ROUND: u32 = 16;
