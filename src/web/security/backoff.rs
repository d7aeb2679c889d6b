//! Per-client backoff after failed logins: a client that keeps sending wrong passwords is
//! answered 429 at once, without a bcrypt check, for a time that doubles with each failure. A
//! flood from a few addresses then costs almost nothing, and other clients' logins are checked
//! as usual. Clients are keyed by IPv4 address or IPv6 /64 (a host can take any address of its
//! /64). The table is bounded: when full, entries whose backoff has ended are dropped first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins a client may make before it waits.
pub const FREE_FAILURES: u32 = 5;
/// The first wait, doubled for each further failure, up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// A client quiet this long starts again with a clean slate.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Clients tracked at most.
const CAPACITY: usize = 8_192;

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last: Instant,
    until: Instant,
}

#[derive(Debug, Default)]
pub struct LoginBackoff {
    clients: Mutex<HashMap<IpAddr, Entry>>,
}

/// The key of a client: its IPv4 address, or the /64 of its IPv6 address.
fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

impl LoginBackoff {
    /// How long `ip` must still wait before its login is checked; `None` when it may go on.
    pub fn wait(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let clients = self.clients.lock().ok()?;
        let e = clients.get(&client(ip))?;
        (e.until > now).then(|| e.until - now)
    }

    /// Counts a failed login of `ip`; returns the wait it now has, if any.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut clients = self.clients.lock().ok()?;
        if clients.len() >= CAPACITY && !clients.contains_key(&client(ip)) {
            clients.retain(|_, e| e.until > now && now.duration_since(e.last) < FORGET_AFTER);
            if clients.len() >= CAPACITY {
                // Every slot holds a client in backoff: the oldest make room.
                let mut lasts: Vec<Instant> = clients.values().map(|e| e.last).collect();
                lasts.sort_unstable();
                let cut = lasts[lasts.len() / 2];
                clients.retain(|_, e| e.last > cut);
            }
        }
        let e = clients.entry(client(ip)).or_insert(Entry {
            failures: 0,
            last: now,
            until: now,
        });
        if now.duration_since(e.last) >= FORGET_AFTER {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        let over = e.failures.saturating_sub(FREE_FAILURES);
        if over == 0 {
            return None;
        }
        let wait = FIRST_WAIT.saturating_mul(1u32 << (over - 1).min(16)).min(MAX_WAIT);
        e.until = now + wait;
        Some(wait)
    }

    /// A correct login: `ip` starts again with a clean slate.
    pub fn succeeded(&self, ip: IpAddr) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.remove(&client(ip));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.clients.lock().map_or(0, |c| c.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures_and_a_success_clears_them() {
        let b = LoginBackoff::default();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let t = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(b.failed(ip, t), None);
        }
        assert_eq!(b.wait(ip, t), None);
        assert_eq!(b.failed(ip, t), Some(Duration::from_secs(1)));
        assert_eq!(b.failed(ip, t), Some(Duration::from_secs(2)));
        assert_eq!(b.failed(ip, t), Some(Duration::from_secs(4)));
        assert_eq!(b.wait(ip, t + Duration::from_secs(1)), Some(Duration::from_secs(3)));
        assert_eq!(b.wait(ip, t + Duration::from_secs(4)), None);
        for _ in 0..20 {
            b.failed(ip, t);
        }
        assert_eq!(b.wait(ip, t), Some(MAX_WAIT));
        // Another client is not affected.
        assert_eq!(b.wait("192.0.2.8".parse().expect("ip"), t), None);
        b.succeeded(ip);
        assert_eq!(b.wait(ip, t), None);
        assert_eq!(b.failed(ip, t), None);
    }

    #[test]
    fn an_ipv6_host_cannot_escape_by_changing_address_within_its_64() {
        let b = LoginBackoff::default();
        let t = Instant::now();
        for i in 0..=FREE_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().expect("ip");
            b.failed(ip, t);
        }
        assert!(b.wait("2001:db8:1:2::ffff".parse().expect("ip"), t).is_some());
        assert!(b.wait("2001:db8:1:3::1".parse().expect("ip"), t).is_none());
    }

    #[test]
    fn the_table_stays_bounded() {
        let b = LoginBackoff::default();
        let t = Instant::now();
        for i in 0..(CAPACITY as u32 * 3) {
            let ip = IpAddr::V4((0x0a00_0000 + i).into());
            for _ in 0..=FREE_FAILURES {
                b.failed(ip, t + Duration::from_micros(u64::from(i)));
            }
        }
        assert!(b.len() <= CAPACITY, "{} clients tracked", b.len());
    }
}
