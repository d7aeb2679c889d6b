//! The start-up summary: instead of one INFO line per endpoint leaving Unknown (thousands in the
//! first seconds of a national inventory), one line with the counts by state, per province.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{EndpointView, MonitorState};
use crate::domain::health::State;

/// Endpoints by state, in [`State`] order (unknown, up, degraded, down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts([usize; 4]);

impl Counts {
    fn add(&mut self, s: State) {
        self.0[s as usize] += 1;
    }

    pub fn get(&self, s: State) -> usize {
        self.0[s as usize]
    }
}

/// The totals and one text of per-province counts, provinces by name:
/// `Tỉnh Cao Bằng: up 97, down 1; Thành phố Hà Nội: up 120, degraded 2`. Zero counts are left
/// out; a province with no endpoint in any state never appears.
pub fn by_province(views: &[EndpointView]) -> (Counts, String) {
    let mut total = Counts::default();
    let mut provinces: BTreeMap<&str, Counts> = BTreeMap::new();
    for v in views {
        total.add(v.state);
        provinces.entry(&v.endpoint.labels.province).or_default().add(v.state);
    }
    let mut text = String::new();
    for (province, counts) in provinces {
        if !text.is_empty() {
            text.push_str("; ");
        }
        let _ = write!(text, "{province}:");
        let mut first = true;
        for s in [State::Up, State::Degraded, State::Down, State::Unknown] {
            let n = counts.get(s);
            if n > 0 {
                let _ = write!(text, "{} {} {n}", if first { "" } else { "," }, s.as_str());
                first = false;
            }
        }
    }
    (total, text)
}

/// Keeps the count of Unknown endpoints up to date after a change.
pub(super) fn count_unknown(state: &mut MonitorState, change: Option<(State, State)>) {
    match change {
        Some((State::Unknown, _)) => state.unknown = state.unknown.saturating_sub(1),
        Some((_, State::Unknown)) => state.unknown += 1,
        _ => {}
    }
}

/// Logs the one summary line due when the endpoints still Unknown at the ready moment all
/// have a state.
pub(super) fn announce_if_settled(state: &mut MonitorState) {
    if state.announce_settled && state.unknown == 0 {
        state.announce_settled = false;
        let (counts, provinces) = by_province(&state.endpoints);
        tracing::info!(
            endpoints = state.endpoints.len(),
            up = counts.get(State::Up),
            degraded = counts.get(State::Degraded),
            down = counts.get(State::Down),
            provinces = %provinces,
            "every endpoint has a state"
        );
    }
}
