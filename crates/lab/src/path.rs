//! The network between the monitor and the endpoints: the monitor's uplink and the routers
//! on each endpoint's path, and what they do to a request with a given IP TTL (IPv6 hop
//! limit).
//!
//! A request to an endpoint whose path is routers R1..Rk, sent with TTL t:
//! - while the monitor's uplink is down, it is dropped (nothing is answered at all);
//! - it passes R1, R2... in turn; a router in an outage window drops it (its hop and
//!   everything behind it are silent);
//! - if t <= k it expires at R_t, which answers ICMP Time Exceeded from its own address
//!   after the delays of R1..R_t, unless it is `silent` or over its `icmp_rate_limit`;
//! - otherwise it reaches the endpoint, whose own profile (delay over the whole path, loss,
//!   outages) decides as it did before routers existed.
//!
//! Like endpoint outages, every window is judged when the request arrives.

use std::collections::VecDeque;
use std::net::IpAddr;

use rand::Rng;

use crate::scenario::{Delay, Window};

const NS_PER_S: u64 = 1_000_000_000;

/// One resolved `[[router]]`.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    pub name: String,
    pub addr: IpAddr,
    pub parent: Option<u32>,
    /// What this hop adds to the round trip of a Time Exceeded from it or behind it.
    pub delay: Delay,
    pub windows: Vec<Window>,
    /// Time Exceeded messages per second (any 1 s window), `None` = unlimited.
    pub rate_limit: Option<u32>,
    /// Never answers Time Exceeded ("* * *") but forwards.
    pub silent: bool,
    /// Endpoints whose path goes through this router.
    pub endpoints_behind: u32,
}

/// What a router did, for its truth line.
#[derive(Debug, Default, Clone)]
pub(crate) struct HopStats {
    /// Requests whose TTL ran out here (answered or not).
    pub expired: u64,
    /// Time Exceeded messages written.
    pub time_exceeded: u64,
    /// Expired requests not answered because of `icmp_rate_limit`.
    pub rate_limited: u64,
    /// Requests dropped here because the router was in an outage window.
    pub dropped_outage: u64,
    /// Send times of the answers of the last second (only with a rate limit).
    recent: VecDeque<u64>,
}

/// What happens to a request on its way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// It reaches the endpoint.
    Reach,
    /// The monitor's uplink is down.
    MonitorDown,
    /// This router (index) is down.
    RouterDown(u32),
    /// The TTL ran out at this router; `Some(delay)` = it answers Time Exceeded after it.
    Expired { router: u32, answer: Option<u64> },
}

/// The resolved network and its runtime state.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub routers: Vec<Router>,
    /// Distinct paths (router indices, first hop first); `paths[0]` is the empty path.
    paths: Vec<Vec<u32>>,
    /// Per endpoint, the index of its path in `paths`.
    ep_path: Vec<u32>,
    /// `[monitor] outages`.
    pub monitor: Vec<Window>,
    pub hops: Vec<HopStats>,
}

impl Network {
    pub(crate) fn new(routers: Vec<Router>, paths: Vec<Vec<u32>>, ep_path: Vec<u32>, monitor: Vec<Window>) -> Network {
        let hops = vec![HopStats::default(); routers.len()];
        Network {
            routers,
            paths,
            ep_path,
            monitor,
            hops,
        }
    }

    /// False when the scenario has neither routers nor monitor outages: every request
    /// reaches its endpoint and [`Network::walk`] need not be called.
    pub(crate) fn active(&self) -> bool {
        !self.routers.is_empty() || !self.monitor.is_empty()
    }

    /// The routers on endpoint `ep`'s path, first hop first.
    pub(crate) fn path(&self, ep: u32) -> &[u32] {
        let id = self.ep_path.get(ep as usize).copied().unwrap_or(0);
        self.paths.get(id as usize).map_or(&[], |p| p.as_slice())
    }

    /// Decides the fate of a request to endpoint `ep` sent with `ttl`, arriving at `now`
    /// ns after time zero. Draws randomness only for an answered Time Exceeded.
    pub(crate) fn walk<R: Rng>(&mut self, ep: u32, ttl: u8, now: u64, rng: &mut R) -> Verdict {
        if self.monitor.iter().any(|w| w.is_down_at(now)) {
            return Verdict::MonitorDown;
        }
        let id = self.ep_path.get(ep as usize).copied().unwrap_or(0) as usize;
        let Some(path) = self.paths.get(id) else {
            return Verdict::Reach;
        };
        // A TTL of 0 cannot be sent; treat it like 1 (the first router discards it).
        let ttl = usize::from(ttl.max(1));
        for (j, &r) in path.iter().enumerate() {
            let router = &self.routers[r as usize];
            let hop = &mut self.hops[r as usize];
            if router.windows.iter().any(|w| w.is_down_at(now)) {
                hop.dropped_outage += 1;
                return Verdict::RouterDown(r);
            }
            if j + 1 < ttl {
                continue;
            }
            hop.expired += 1;
            if router.silent {
                return Verdict::Expired {
                    router: r,
                    answer: None,
                };
            }
            if let Some(limit) = router.rate_limit {
                while hop.recent.front().is_some_and(|&t| t + NS_PER_S <= now) {
                    hop.recent.pop_front();
                }
                if hop.recent.len() >= limit as usize {
                    hop.rate_limited += 1;
                    return Verdict::Expired {
                        router: r,
                        answer: None,
                    };
                }
                hop.recent.push_back(now);
            }
            let ms: f64 = path[..=j]
                .iter()
                .map(|&h| self.routers[h as usize].delay.sample(rng))
                .sum();
            let delay_ns = (ms.max(0.0) * 1e6) as u64;
            return Verdict::Expired {
                router: r,
                answer: Some(delay_ns),
            };
        }
        Verdict::Reach
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn router(name: &str, parent: Option<u32>) -> Router {
        Router {
            name: name.into(),
            addr: "198.19.0.1".parse().expect("ip"),
            parent,
            delay: Delay::Fixed(2.0),
            windows: Vec::new(),
            rate_limit: None,
            silent: false,
            endpoints_behind: 1,
        }
    }

    #[test]
    fn walk_expires_at_each_hop_then_reaches() {
        let routers = vec![router("a", None), router("b", Some(0)), router("c", Some(1))];
        let mut net = Network::new(routers, vec![Vec::new(), vec![0, 1, 2]], vec![1, 0], Vec::new());
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        for (ttl, want) in [(0u8, 0u32), (1, 0), (2, 1), (3, 2)] {
            let v = net.walk(0, ttl, 0, &mut rng);
            let delay = Some(2_000_000 * (u64::from(want) + 1));
            assert_eq!(
                v,
                Verdict::Expired {
                    router: want,
                    answer: delay
                },
                "ttl {ttl}"
            );
        }
        assert_eq!(net.walk(0, 4, 0, &mut rng), Verdict::Reach);
        assert_eq!(net.walk(1, 1, 0, &mut rng), Verdict::Reach, "empty path");
        assert_eq!(net.hops[0].expired, 2);
    }

    #[test]
    fn outage_silent_rate_limit_and_monitor() {
        let mut routers = vec![router("a", None), router("b", Some(0)), router("c", Some(1))];
        routers[1].windows = vec![Window::Down { start: 100, end: 200 }];
        routers[0].silent = true;
        routers[2].rate_limit = Some(3);
        let monitor = vec![Window::Down {
            start: 5 * NS_PER_S,
            end: 6 * NS_PER_S,
        }];
        let mut net = Network::new(routers, vec![Vec::new(), vec![0, 1, 2]], vec![1], monitor);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        assert_eq!(
            net.walk(0, 1, 150, &mut rng),
            Verdict::Expired {
                router: 0,
                answer: None
            }
        );
        for ttl in [2, 3, 64] {
            assert_eq!(net.walk(0, ttl, 150, &mut rng), Verdict::RouterDown(1));
        }
        assert_eq!(net.walk(0, 64, 200, &mut rng), Verdict::Reach);
        // Three answers in any second, then silence until the oldest is a second old.
        let t0 = NS_PER_S;
        let answered: Vec<bool> = (0..6)
            .map(|i| {
                matches!(
                    net.walk(0, 3, t0 + i * 100, &mut rng),
                    Verdict::Expired { answer: Some(_), .. }
                )
            })
            .collect();
        assert_eq!(answered, [true, true, true, false, false, false]);
        assert!(matches!(
            net.walk(0, 3, t0 + NS_PER_S, &mut rng),
            Verdict::Expired { answer: Some(_), .. }
        ));
        assert_eq!(net.hops[2].rate_limited, 3);
        assert_eq!(net.walk(0, 64, 5 * NS_PER_S, &mut rng), Verdict::MonitorDown);
        assert_eq!(net.walk(0, 1, 5 * NS_PER_S, &mut rng), Verdict::MonitorDown);
    }
}
