//! Is the monitor itself blind? When the monitor's own uplink fails, every endpoint falls silent
//! at once, and counting them Down would charge the carriers for the monitor's cable. With no
//! configuration at all, the evidence is the stream of regular rounds: when nearly all of the
//! last few dozen rounds, across more than one carrier, were silent, the silence is the
//! monitor's, not the endpoints'. Real outages are local (one commune, one router, one carrier
//! in a province) and never silence that share of a national inventory at once.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// Share of recent rounds that must be silent to call the monitor blind.
const BLIND_SHARE: f64 = 0.8;
/// Share of recent rounds that must answer again to call it seeing.
const SEEING_SHARE: f64 = 0.5;
/// Fewer endpoints than this cannot tell a blind monitor from a real outage.
pub const MIN_ENDPOINTS: usize = 8;

#[derive(Clone, Debug)]
struct Sample {
    silent: bool,
    carrier: Arc<str>,
    started: SystemTime,
}

/// A change in the monitor's sight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SightChange {
    /// Blind since the first silent round of the streak.
    Blinded { since: SystemTime },
    /// Seeing again; it was blind over `[since, until)`.
    Restored { since: SystemTime, until: SystemTime },
}

/// The address families, as labels: each has its own uplink (an IPv6 transit can fail while
/// IPv4 works), so each is judged on its own.
pub const FAMILIES: [&str; 2] = ["ipv4", "ipv6"];

/// Index of `addr`'s family in [`FAMILIES`].
pub fn family_index(addr: &IpAddr) -> usize {
    usize::from(addr.is_ipv6())
}

/// The monitor's sight per address family: from the reference addresses where a family has
/// some ([`super::references`]), else from the endpoints' rounds.
#[derive(Clone, Debug, Default)]
pub struct Sight {
    families: [Blindness; 2],
    references: [super::references::ReferenceSight; 2],
    /// Endpoints per family.
    endpoints: [usize; 2],
}

impl Sight {
    /// For `endpoints[f]` endpoints over `carriers[f]` carriers in family `f`.
    pub fn new(endpoints: [usize; 2], carriers: [usize; 2]) -> Sight {
        Sight {
            families: [0, 1].map(|f| Blindness::new(endpoints[f], carriers[f])),
            references: Default::default(),
            endpoints,
        }
    }

    /// Sets `counts[f]` reference addresses for family `f` (their state starts afresh).
    pub fn with_references(mut self, counts: [usize; 2]) -> Sight {
        self.references = counts.map(super::references::ReferenceSight::new);
        self
    }

    /// Folds in a regular round of the `index`-th reference of `family`.
    pub fn observe_reference(
        &mut self,
        family: usize,
        index: usize,
        silent: bool,
        started: SystemTime,
    ) -> Option<SightChange> {
        self.references.get_mut(family)?.observe(index, silent, started)
    }

    /// Keeps each family's sight across an inventory change.
    pub fn resized(&self, endpoints: [usize; 2], carriers: [usize; 2]) -> Sight {
        Sight {
            families: [0, 1].map(|f| self.families[f].resized(endpoints[f], carriers[f])),
            references: self.references.clone(),
            endpoints,
        }
    }

    /// Folds in one regular round of an endpoint of `family` (a family covered by references
    /// is judged by them: the rounds only keep the window current).
    pub fn observe(
        &mut self,
        family: usize,
        silent: bool,
        carrier: &Arc<str>,
        started: SystemTime,
    ) -> Option<SightChange> {
        let change = self.families.get_mut(family)?.observe(silent, carrier, started);
        if self.references[family].covers() { None } else { change }
    }

    pub fn is_blind(&self, family: usize) -> bool {
        match self.references.get(family) {
            Some(r) if r.covers() => r.is_blind(),
            _ => self.families.get(family).is_some_and(Blindness::is_blind),
        }
    }

    /// Blind on every family it has endpoints in: the monitor is cut off altogether.
    pub fn isolated(&self) -> bool {
        let mut present = (0..2).filter(|&f| self.endpoints[f] > 0).peekable();
        present.peek().is_some() && present.all(|f| self.is_blind(f))
    }
}

/// The recent regular rounds of every endpoint, and whether they say the monitor is blind.
#[derive(Clone, Debug, Default)]
pub struct Blindness {
    recent: VecDeque<Sample>,
    /// How many of `recent` are silent (kept up to date rather than counted every round).
    silent: usize,
    window: usize,
    /// Carriers in the whole inventory (one carrier: silence across carriers cannot be asked).
    carriers: usize,
    blind_since: Option<SystemTime>,
}

impl Blindness {
    /// For an inventory of `endpoints` endpoints over `carriers` carriers.
    pub fn new(endpoints: usize, carriers: usize) -> Blindness {
        Blindness {
            recent: VecDeque::new(),
            silent: 0,
            // A tenth of the inventory (at least 8, at most 50 rounds): at a 10 s interval and
            // 300 endpoints the window is the last second of rounds.
            window: if endpoints < MIN_ENDPOINTS {
                0
            } else {
                (endpoints / 10).clamp(MIN_ENDPOINTS, 50)
            },
            carriers,
            blind_since: None,
        }
    }

    /// Keeps the sight state across an inventory change.
    pub fn resized(&self, endpoints: usize, carriers: usize) -> Blindness {
        let mut b = Blindness::new(endpoints, carriers);
        b.blind_since = self.blind_since;
        b.recent = self.recent.clone();
        b.recent.truncate(b.window);
        b.silent = b.recent.iter().filter(|s| s.silent).count();
        b
    }

    pub fn is_blind(&self) -> bool {
        self.blind_since.is_some()
    }

    /// Folds in one regular round; returns a change of sight, if any.
    pub fn observe(&mut self, silent: bool, carrier: &Arc<str>, started: SystemTime) -> Option<SightChange> {
        if self.window == 0 {
            return None;
        }
        if self.recent.len() == self.window
            && let Some(oldest) = self.recent.pop_front()
        {
            self.silent -= usize::from(oldest.silent);
        }
        self.silent += usize::from(silent);
        self.recent.push_back(Sample {
            silent,
            carrier: carrier.clone(),
            started,
        });
        if self.recent.len() < self.window {
            return None;
        }
        let share = self.silent as f64 / self.window as f64;
        match self.blind_since {
            None if share >= BLIND_SHARE && self.across_carriers() => {
                let since = self
                    .recent
                    .iter()
                    .filter(|s| s.silent)
                    .map(|s| s.started)
                    .min()
                    .unwrap_or(started);
                self.blind_since = Some(since);
                Some(SightChange::Blinded { since })
            }
            Some(since) if 1.0 - share >= SEEING_SHARE => {
                self.blind_since = None;
                // Seeing since the first answering round of the recovery.
                let until = self
                    .recent
                    .iter()
                    .filter(|s| !s.silent && s.started >= since)
                    .map(|s| s.started)
                    .min()
                    .unwrap_or(started);
                Some(SightChange::Restored { since, until })
            }
            _ => None,
        }
    }

    /// The silent rounds span more than one carrier (or there is only one).
    fn across_carriers(&self) -> bool {
        if self.carriers <= 1 {
            return true;
        }
        let mut silent = self.recent.iter().filter(|s| s.silent).map(|s| &s.carrier);
        let Some(first) = silent.next() else { return false };
        silent.any(|c| c != first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn a_national_silence_across_carriers_blinds_and_answers_restore() {
        let (vnpt, viettel): (Arc<str>, Arc<str>) = ("VNPT".into(), "Viettel".into());
        let mut b = Blindness::new(300, 2);
        let mut clock = 0;
        let mut round = |b: &mut Blindness, silent: bool, i: usize| {
            clock += 33;
            b.observe(silent, if i.is_multiple_of(2) { &vnpt } else { &viettel }, t(clock))
        };
        for i in 0..100 {
            assert_eq!(round(&mut b, false, i), None);
        }
        let mut blinded = None;
        for i in 0..30 {
            if let Some(c) = round(&mut b, true, i) {
                blinded = Some((i, c));
                break;
            }
        }
        let (i, change) = blinded.expect("blinded");
        assert_eq!(i, 23, "80 % of a 30-round window");
        assert_eq!(change, SightChange::Blinded { since: t(101 * 33) });
        assert!(b.is_blind());
        let mut restored = None;
        for i in 0..30 {
            if let Some(c) = round(&mut b, false, i) {
                restored = Some(c);
                break;
            }
        }
        assert!(matches!(restored, Some(SightChange::Restored { .. })));
        assert!(!b.is_blind());
    }

    #[test]
    fn one_carrier_down_or_a_small_inventory_is_never_blindness() {
        let (vnpt, viettel): (Arc<str>, Arc<str>) = ("VNPT".into(), "Viettel".into());
        let mut b = Blindness::new(300, 2);
        for i in 0..200u64 {
            // Every VNPT round silent, every Viettel round answering: 50 %.
            let silent = i.is_multiple_of(2);
            assert_eq!(b.observe(silent, if silent { &vnpt } else { &viettel }, t(i)), None);
        }
        // All silent but only VNPT: a carrier outage, not the monitor.
        for i in 0..100u64 {
            assert_eq!(b.observe(true, &vnpt, t(1000 + i)), None);
        }
        let mut small = Blindness::new(5, 2);
        for i in 0..50u64 {
            assert_eq!(
                small.observe(true, if i % 2 == 0 { &vnpt } else { &viettel }, t(i)),
                None
            );
        }
    }

    #[test]
    fn each_family_is_judged_on_its_own() {
        let carrier: Arc<str> = "VNPT".into();
        let mut sight = Sight::new([300, 300], [1, 1]);
        let mut clock = 0;
        // IPv6 goes silent, IPv4 keeps answering.
        let mut changes = Vec::new();
        for i in 0..200 {
            clock += 10;
            changes.extend(sight.observe(i % 2, i % 2 == 1, &carrier, t(clock)).map(|c| (i % 2, c)));
        }
        assert!(matches!(changes[..], [(1, SightChange::Blinded { .. })]), "{changes:?}");
        assert!(sight.is_blind(1) && !sight.is_blind(0) && !sight.isolated());
        // A monitor with IPv6 endpoints only is isolated when IPv6 is blind.
        let mut only6 = Sight::new([0, 300], [0, 1]);
        for i in 0..100 {
            only6.observe(1, true, &carrier, t(i * 10));
        }
        assert!(only6.isolated());
        assert!(!Sight::new([0, 0], [0, 0]).isolated());
        assert_eq!(family_index(&"2001:2::1".parse().expect("v6")), 1);
    }
}
