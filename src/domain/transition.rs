//! A change of an endpoint's state: made by the monitor, written by the ledger, read back by
//! reports, one shape all the way.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{EndpointId, State};

/// One state change, as the monitor saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub endpoint: EndpointId,
    pub from: State,
    pub to: State,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The check whose result caused the change ("icmp", a service check's name).
    pub check: Arc<str>,
    /// Free text, e.g. "no echo reply in 3 requests"; becomes the outage's cause on a change
    /// to down.
    pub reason: String,
}

/// Unix milliseconds (negative before 1970: a clock set far back stays ordered).
pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}
