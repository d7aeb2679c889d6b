//! The runtime side: resolved profiles and the per-packet decision (outage, loss or reply
//! after a delay).

use rand::Rng;
use rand_distr::{Distribution, Normal};

use super::{DelaySpec, ProfilePatch, SipMode, WindowSpec};

const NS_PER_S: f64 = 1e9;
const NS_PER_MS: f64 = 1e6;

pub(super) fn s_to_ns(s: f64) -> u64 {
    (s * NS_PER_S).round().max(0.0) as u64
}

/// Delay distribution ready for sampling (Normal pre-built so the hot path only draws).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Delay {
    Fixed(f64),
    Uniform(f64, f64),
    Normal(Normal<f64>),
}

impl Delay {
    pub(crate) fn from_spec(spec: DelaySpec) -> Delay {
        match spec {
            DelaySpec::Fixed { ms } => Delay::Fixed(ms),
            DelaySpec::Uniform { min_ms, max_ms } => Delay::Uniform(min_ms, max_ms),
            DelaySpec::Normal { mean_ms, stddev_ms } => match Normal::new(mean_ms, stddev_ms) {
                Ok(n) => Delay::Normal(n),
                // Only reachable with a non-finite stddev, which parsing rejects.
                Err(_) => Delay::Fixed(mean_ms),
            },
        }
    }

    /// One draw in ms (a normal draw may be negative: callers clamp the sum at 0).
    pub(crate) fn sample<R: Rng>(&self, rng: &mut R) -> f64 {
        match *self {
            Delay::Fixed(ms) => ms,
            Delay::Uniform(lo, hi) => {
                if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
                }
            }
            Delay::Normal(n) => n.sample(rng),
        }
    }
}

/// A scenario window in nanoseconds since time zero.
pub(super) fn window_ns(w: &WindowSpec) -> Window {
    match *w {
        WindowSpec::Down { start_s, end_s } => Window::Down {
            start: s_to_ns(start_s),
            end: s_to_ns(end_s),
        },
        WindowSpec::Flap {
            period_s,
            down_s,
            start_s,
            end_s,
        } => Window::Flap {
            start: s_to_ns(start_s),
            period: s_to_ns(period_s).max(1),
            down: s_to_ns(down_s),
            end: end_s.map(s_to_ns),
        },
        WindowSpec::Degrade {
            start_s,
            end_s,
            loss_from,
            loss_to,
            extra_delay_ms_to,
        } => Window::Degrade {
            start: s_to_ns(start_s),
            end: s_to_ns(end_s),
            loss_from,
            loss_to,
            extra_ms: extra_delay_ms_to,
        },
    }
}

/// Window in nanoseconds since scenario time zero.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Window {
    Down {
        start: u64,
        end: u64,
    },
    Flap {
        start: u64,
        period: u64,
        down: u64,
        end: Option<u64>,
    },
    Degrade {
        start: u64,
        end: u64,
        loss_from: f64,
        loss_to: f64,
        extra_ms: f64,
    },
}

impl Window {
    /// The k-th occurrence `[start, end)` of this window, `None` past the last one.
    /// Used by the truth writer to report windows exactly as the hot path applies them.
    pub(crate) fn occurrence(&self, k: u64) -> Option<(u64, u64)> {
        match *self {
            Window::Down { start, end } | Window::Degrade { start, end, .. } => (k == 0).then_some((start, end)),
            Window::Flap {
                start,
                period,
                down,
                end,
            } => {
                let s = start.checked_add(period.checked_mul(k)?)?;
                let e = s.checked_add(down)?;
                match end {
                    Some(limit) if s >= limit => None,
                    Some(limit) => Some((s, e.min(limit))),
                    None => Some((s, e)),
                }
            }
        }
    }

    pub(crate) fn is_degrade(&self) -> bool {
        matches!(self, Window::Degrade { .. })
    }

    pub(crate) fn is_down_at(&self, t: u64) -> bool {
        match *self {
            Window::Down { start, end } => t >= start && t < end,
            Window::Flap {
                start,
                period,
                down,
                end,
            } => t >= start && end.is_none_or(|e| t < e) && (t - start) % period < down,
            Window::Degrade { .. } => false,
        }
    }
}

/// Outcome of the per-packet decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    Outage,
    Loss,
    Reply { delay_ns: u64 },
}

/// A fully resolved endpoint behaviour.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub(crate) delay: Delay,
    pub(crate) loss: f64,
    pub(crate) windows: Vec<Window>,
    pub(crate) never: bool,
    pub(crate) sip: SipMode,
}

impl Profile {
    pub(super) fn from_patch(p: &ProfilePatch) -> Profile {
        let delay = Delay::from_spec(p.delay.unwrap_or(DelaySpec::Fixed { ms: 0.0 }));
        let windows = p.windows.as_deref().unwrap_or(&[]).iter().map(window_ns).collect();
        Profile {
            delay,
            loss: p.loss.unwrap_or(0.0),
            windows,
            never: p.never.unwrap_or(false),
            sip: p.sip.unwrap_or_default(),
        }
    }

    /// Decides what happens to a request arriving at `t` ns after time zero.
    /// Outage wins over loss; degrade loss combines with base loss as independent drops.
    pub(crate) fn decide<R: Rng>(&self, t: u64, rng: &mut R) -> Decision {
        if self.never || self.windows.iter().any(|w| w.is_down_at(t)) {
            return Decision::Outage;
        }
        let mut loss = self.loss;
        let mut extra_ms = 0.0;
        for w in &self.windows {
            if let Window::Degrade {
                start,
                end,
                loss_from,
                loss_to,
                extra_ms: to,
            } = *w
                && t >= start
                && t < end
            {
                let f = (t - start) as f64 / (end - start) as f64;
                let l = loss_from + (loss_to - loss_from) * f;
                loss = 1.0 - (1.0 - loss) * (1.0 - l);
                extra_ms += to * f;
            }
        }
        if loss > 0.0 && rng.random::<f64>() < loss {
            return Decision::Loss;
        }
        let base = self.delay.sample(rng);
        let ms = (base + extra_ms).max(0.0);
        Decision::Reply {
            delay_ns: (ms * NS_PER_MS) as u64,
        }
    }
}
