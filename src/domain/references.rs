//! Reference addresses (`[monitor] references`): hosts that answer whenever the monitor's own
//! network works, e.g. the central bridge or the carriers' core routers. They are probed like
//! endpoints; when every reference of an address family is silent, the monitor is blind on that
//! family, and as long as one answers it is not, whatever the endpoints do. They replace the
//! statistical judgement of [`super::blindness`] for the families they cover (a national carrier
//! outage that silences most communes is then a real outage, not the monitor's cable).

use std::time::SystemTime;

use super::blindness::SightChange;

/// The references of one address family and what their last rounds said.
#[derive(Clone, Debug, Default)]
pub struct ReferenceSight {
    /// Per reference: `Some(start of its current silent streak)` while silent, `None` while it
    /// answers or before its first round.
    silent_since: Vec<Option<SystemTime>>,
    /// Rounds seen per reference (a reference never probed yet says nothing).
    seen: Vec<bool>,
    blind_since: Option<SystemTime>,
}

impl ReferenceSight {
    pub fn new(references: usize) -> ReferenceSight {
        ReferenceSight {
            silent_since: vec![None; references],
            seen: vec![false; references],
            blind_since: None,
        }
    }

    /// Whether references cover this family.
    pub fn covers(&self) -> bool {
        !self.seen.is_empty()
    }

    pub fn is_blind(&self) -> bool {
        self.blind_since.is_some()
    }

    /// Folds in a regular round of reference `index`, begun at `started`.
    pub fn observe(&mut self, index: usize, silent: bool, started: SystemTime) -> Option<SightChange> {
        let slot = self.silent_since.get_mut(index)?;
        *slot = match (silent, *slot) {
            (true, Some(since)) => Some(since),
            (true, None) => Some(started),
            (false, _) => None,
        };
        self.seen[index] = true;
        let all_silent = self.seen.iter().all(|s| *s) && self.silent_since.iter().all(Option::is_some);
        match (self.blind_since, all_silent) {
            (None, true) => {
                let since = self.silent_since.iter().flatten().min().copied().unwrap_or(started);
                self.blind_since = Some(since);
                Some(SightChange::Blinded { since })
            }
            (Some(since), false) => {
                self.blind_since = None;
                Some(SightChange::Restored { since, until: started })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    #[test]
    fn blind_only_when_every_reference_is_silent_and_seeing_when_one_answers() {
        let mut r = ReferenceSight::new(2);
        assert!(r.covers());
        assert_eq!(r.observe(0, true, t(0)), None, "the other has not been heard yet");
        assert_eq!(r.observe(1, false, t(1)), None);
        assert_eq!(r.observe(0, true, t(10)), None, "one silent of two");
        assert_eq!(r.observe(1, true, t(11)), Some(SightChange::Blinded { since: t(0) }));
        assert!(r.is_blind());
        assert_eq!(r.observe(1, true, t(21)), None);
        assert_eq!(
            r.observe(0, false, t(30)),
            Some(SightChange::Restored {
                since: t(0),
                until: t(30)
            })
        );
        assert!(!r.is_blind());
        assert_eq!(r.observe(7, true, t(40)), None, "no such reference");
        assert!(!ReferenceSight::new(0).covers());
    }
}
