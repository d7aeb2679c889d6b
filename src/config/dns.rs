//! `[dns]`: how the inventory's host names are resolved. Every key is optional: by default the
//! system's resolver configuration (`/etc/resolv.conf`, and `/etc/hosts`) is used.
//!
//! ```toml
//! [dns]
//! servers = ["10.0.0.53", "127.0.0.1:5353"]   # instead of /etc/resolv.conf (port 53 by default)
//! timeout = "5s"        # deadline of one name's resolution (every server and retry included)
//! min_ttl = "30s"       # re-resolve no sooner than this after an answer (and retry failures after it)
//! max_ttl = "1h"        # re-resolve no later than this, whatever the record's TTL
//! stale_limit = "1d"    # keep probing the last good address this long while the resolver fails
//! concurrency = 32      # names resolved at once
//! prefer = "ipv4"       # a name with A and AAAA records is probed over IPv4 ("ipv6": over IPv6)
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::toml_file::{RawDns, position};

/// Which family a name with both A and AAAA records is probed over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Prefer {
    #[default]
    Ipv4,
    Ipv6,
}

/// The validated `[dns]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsSettings {
    /// Name servers to ask; empty = the system's configuration.
    pub servers: Vec<SocketAddr>,
    /// Deadline of one name's resolution.
    pub timeout: Duration,
    /// Shortest time an answer is used before the name is resolved again; also the retry delay
    /// after a failure.
    pub min_ttl: Duration,
    /// Longest time an answer is used, whatever its TTL.
    pub max_ttl: Duration,
    /// How long a name that resolved before keeps its last good address while resolution fails
    /// (timeouts, SERVFAIL, unreachable servers). Zero: not at all. An authoritative "no such
    /// name" or "no address" answer ends it at once.
    pub stale_limit: Duration,
    /// Names resolved at once.
    pub concurrency: usize,
    pub prefer: Prefer,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            servers: Vec::new(),
            timeout: Duration::from_secs(5),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(3600),
            stale_limit: Duration::from_secs(86_400),
            concurrency: 32,
            prefer: Prefer::Ipv4,
        }
    }
}

/// The port of a server written without one.
pub const DNS_PORT: u16 = 53;

fn server_address(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, DNS_PORT)))
        .filter(|a| !a.ip().is_unspecified() && !a.ip().is_multicast() && a.port() != 0)
}

impl super::Validator<'_> {
    /// Validates `[dns]`; problems go to the config's error list, defaults stand in for them.
    pub(super) fn dns(&mut self, raw: &RawDns) -> DnsSettings {
        let d = DnsSettings::default();
        let secs = Duration::from_secs;
        let mut servers = Vec::new();
        if let Some(list) = &raw.servers {
            if list.get_ref().is_empty() {
                let (l, c) = position(self.text, list);
                self.problem_at(
                    l,
                    c,
                    "dns.servers",
                    "is empty",
                    "name at least one server, or remove the key to use /etc/resolv.conf",
                );
            }
            for s in list.get_ref() {
                match server_address(s.get_ref()) {
                    Some(a) => servers.push(a),
                    None => {
                        let (l, c) = position(self.text, s);
                        self.problem_at(
                            l,
                            c,
                            "dns.servers",
                            &format!("{:?} is not a name server address", s.get_ref()),
                            "write an IP address with an optional port, e.g. \"10.0.0.53\", \"127.0.0.1:5353\" or \"[2001:db8::53]:53\"",
                        );
                    }
                }
            }
        }
        let timeout = self.duration(
            &raw.timeout,
            "dns.timeout",
            d.timeout,
            Duration::from_millis(100),
            secs(60),
        );
        let min_ttl = self.duration(&raw.min_ttl, "dns.min_ttl", d.min_ttl, secs(1), secs(86_400));
        let mut max_ttl = self.duration(&raw.max_ttl, "dns.max_ttl", d.max_ttl, secs(1), secs(7 * 86_400));
        if max_ttl < min_ttl {
            let (l, c) = raw.max_ttl.as_ref().map_or((0, 0), |v| position(self.text, v));
            self.problem_at(
                l,
                c,
                "dns.max_ttl",
                &format!(
                    "{} is shorter than dns.min_ttl ({})",
                    humantime::format_duration(max_ttl),
                    humantime::format_duration(min_ttl)
                ),
                "make dns.max_ttl at least dns.min_ttl",
            );
            max_ttl = min_ttl;
        }
        let stale_limit = self.duration(
            &raw.stale_limit,
            "dns.stale_limit",
            d.stale_limit,
            Duration::ZERO,
            secs(30 * 86_400),
        );
        let concurrency = self.integer(&raw.concurrency, "dns.concurrency", d.concurrency as u32, 1, 1024) as usize;
        let prefer = match &raw.prefer {
            None => d.prefer,
            Some(p) => self
                .parse(
                    p,
                    "dns.prefer",
                    |t| match t.as_str() {
                        "ipv4" => Some(Prefer::Ipv4),
                        "ipv6" => Some(Prefer::Ipv6),
                        _ => None,
                    },
                    "write \"ipv4\" (the default) or \"ipv6\"",
                )
                .unwrap_or_default(),
        };
        DnsSettings {
            servers,
            timeout,
            min_ttl,
            max_ttl,
            stale_limit,
            concurrency,
            prefer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_take_port_53_unless_given() {
        assert_eq!(
            server_address("10.0.0.53"),
            Some(SocketAddr::from(([10, 0, 0, 53], 53)))
        );
        assert_eq!(
            server_address("127.0.0.1:5353"),
            Some(SocketAddr::from(([127, 0, 0, 1], 5353)))
        );
        assert_eq!(server_address("[::1]:53").map(|a| a.is_ipv6()), Some(true));
        assert_eq!(server_address("::1").map(|a| a.port()), Some(53));
        for bad in ["ns1.example.vn", "0.0.0.0", "10.0.0.53:0", "224.0.0.1", ""] {
            assert_eq!(server_address(bad), None, "{bad}");
        }
    }
}
