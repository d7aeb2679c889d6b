//! Resolving the inventory's host names, with hickory-resolver on tokio.
//!
//! Loading a config never resolves: an endpoint written as a host name starts without an
//! address ([`crate::domain::Resolution::Pending`]). The daemon resolves names in the
//! background (`app::dns`), `diemcau check` through [`resolve_all`]. Every lookup has a hard
//! deadline ([`DnsSettings::timeout`]); lookups run [`DnsSettings::concurrency`] at a time.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};

use super::dns::{DnsSettings, Prefer};

/// A name's addresses and how long they may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Usable unicast addresses, in the resolver's order (the preferred family only).
    pub addresses: Vec<IpAddr>,
    /// The record's remaining TTL (not yet clamped to `min_ttl`/`max_ttl`).
    pub ttl: Duration,
}

/// Why a name has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The name does not exist (an authoritative answer).
    NxDomain,
    /// The name exists but has no usable A/AAAA record (an authoritative answer).
    NoAddress,
    /// No answer within the deadline.
    Timeout,
    /// Anything else: SERVFAIL, REFUSED, no server reachable, I/O.
    Error,
}

impl FailureKind {
    /// The `reason` label of `diemcau_dns_resolution_failures_total`.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::NxDomain => "nxdomain",
            FailureKind::NoAddress => "no_address",
            FailureKind::Timeout => "timeout",
            FailureKind::Error => "error",
        }
    }

    pub const ALL: [FailureKind; 4] = [
        FailureKind::NxDomain,
        FailureKind::NoAddress,
        FailureKind::Timeout,
        FailureKind::Error,
    ];

    /// The name's own zone said so: the last good address is not served stale.
    pub fn authoritative(self) -> bool {
        matches!(self, FailureKind::NxDomain | FailureKind::NoAddress)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// For people, without the name: "NXDOMAIN (no such name)", "no answer within 5s".
    pub message: String,
}

/// A resolver built from `[dns]`.
pub struct Resolver {
    inner: TokioResolver,
    deadline: Duration,
    /// Where the servers come from, for the log: `/etc/resolv.conf (2 servers)`, `[dns] servers`.
    pub source: String,
    /// Set when the system configuration could not be used (only /etc/hosts then answers).
    pub warning: Option<String>,
}

impl Resolver {
    /// Builds the resolver (a tokio runtime is needed to resolve, not to build). A missing or
    /// empty /etc/resolv.conf is a [`Resolver::warning`], not an error: /etc/hosts still answers.
    pub fn new(settings: &DnsSettings) -> Result<Resolver, String> {
        let (config, mut opts, source, warning) = if settings.servers.is_empty() {
            match hickory_resolver::system_conf::read_system_conf() {
                Ok((config, opts)) => {
                    let n = config.name_servers().len();
                    (config, opts, format!("/etc/resolv.conf ({n} servers)"), None)
                }
                Err(e) => (
                    ResolverConfig::from_name_servers(Vec::new()),
                    ResolverOpts::default(),
                    "none".to_string(),
                    Some(format!(
                        "cannot use /etc/resolv.conf ({e}): only /etc/hosts names resolve; set [dns] servers"
                    )),
                ),
            }
        } else {
            let servers = settings
                .servers
                .iter()
                .map(|s| {
                    let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                    for c in &mut ns.connections {
                        c.port = s.port();
                    }
                    ns
                })
                .collect();
            let source = format!("[dns] servers ({})", settings.servers.len());
            (
                ResolverConfig::from_name_servers(servers),
                ResolverOpts::default(),
                source,
                None,
            )
        };
        // Two tries within the deadline; the deadline itself is enforced in `lookup`.
        opts.timeout = (settings.timeout / 2).max(Duration::from_millis(50));
        opts.attempts = 2;
        opts.ip_strategy = match settings.prefer {
            Prefer::Ipv4 => LookupIpStrategy::Ipv4thenIpv6,
            Prefer::Ipv6 => LookupIpStrategy::Ipv6thenIpv4,
        };
        // The resolver's cache never outlives our own schedule: a name re-resolved at max_ttl
        // gets a fresh answer, and a failure is retried at min_ttl.
        opts.positive_max_ttl = Some(settings.max_ttl);
        opts.negative_max_ttl = Some(settings.min_ttl);
        let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = opts;
        let inner = builder
            .build()
            .map_err(|e| format!("cannot build the DNS resolver: {e}"))?;
        Ok(Resolver {
            inner,
            deadline: settings.timeout,
            source,
            warning,
        })
    }

    /// Resolves one name within the deadline.
    pub async fn lookup(&self, name: &str) -> Result<Answer, Failure> {
        match tokio::time::timeout(self.deadline, self.inner.lookup_ip(name)).await {
            Err(_) => Err(Failure {
                kind: FailureKind::Timeout,
                message: format!("no answer within {}", humantime::format_duration(self.deadline)),
            }),
            Ok(Err(e)) => Err(failure(&e, self.deadline)),
            Ok(Ok(lookup)) => {
                let addresses: Vec<IpAddr> = lookup.iter().filter(|a| usable(*a)).collect();
                if addresses.is_empty() {
                    return Err(Failure {
                        kind: FailureKind::NoAddress,
                        message: "the answer holds no unicast address".into(),
                    });
                }
                Ok(Answer {
                    addresses,
                    ttl: lookup.valid_until().saturating_duration_since(Instant::now()),
                })
            }
        }
    }
}

/// What the inventory accepts as an address (see `inventory::parse_address`).
pub(crate) fn usable(ip: IpAddr) -> bool {
    !(ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]))
}

/// Messages are stable for a given cause (no timings, no ids): a name failing the same way twice
/// is not a change.
fn failure(e: &NetError, deadline: Duration) -> Failure {
    let (kind, message) = if e.is_nx_domain() {
        (FailureKind::NxDomain, "NXDOMAIN (no such name)".to_string())
    } else if e.is_no_records_found() {
        (FailureKind::NoAddress, "no A or AAAA record".to_string())
    } else {
        match e {
            NetError::Timeout => (
                FailureKind::Timeout,
                format!("no answer within {}", humantime::format_duration(deadline)),
            ),
            NetError::Dns(DnsError::ResponseCode(code)) => (FailureKind::Error, format!("the server answered {code}")),
            NetError::NoConnections => (FailureKind::Error, "no name server could be reached".to_string()),
            other => (FailureKind::Error, other.to_string()),
        }
    };
    Failure { kind, message }
}

/// Resolves every name, `concurrency` at a time; results in the order of `names`. For
/// `diemcau check` (the daemon resolves in the background, see `app::dns`).
pub async fn resolve_all(
    resolver: Arc<Resolver>,
    names: &[Arc<str>],
    concurrency: usize,
) -> Vec<Result<Answer, Failure>> {
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let (resolver, slots, name) = (resolver.clone(), slots.clone(), name.clone());
        tasks.spawn(async move {
            let _permit = slots.acquire_owned().await;
            (i, resolver.lookup(&name).await)
        });
    }
    let mut out: Vec<Option<Result<Answer, Failure>>> = vec![None; names.len()];
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, r)) = done {
            out[i] = Some(r);
        }
    }
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Failure {
                    kind: FailureKind::Error,
                    message: "the lookup task failed".into(),
                })
            })
        })
        .collect()
}
