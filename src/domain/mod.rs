//! The vocabulary and the rules, with no I/O: endpoints and labels, round figures, the health
//! state machine, maintenance windows, SLA arithmetic, report periods and Vietnamese collation.
//! Every other layer speaks these types; this layer imports from none of them.

pub mod blindness;
pub mod collation;
pub mod damper;
pub mod diag;
pub mod emodel;
pub mod endpoint;
pub mod health;
pub mod interval;
pub mod maintenance;
pub mod merge;
pub mod path;
pub mod period;
pub mod quality;
pub mod references;
pub mod report_format;
pub mod round;
pub mod shard;
pub mod sla;
pub mod sla_cause;
pub mod transition;

pub use endpoint::{Endpoint, EndpointId, Labels, Resolution};
pub use health::State;
pub use round::{FinishedRound, Followup, RoundKind, RoundStats};
pub use transition::{Transition, unix_ms};

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds, for timestamps in metrics and APIs.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
