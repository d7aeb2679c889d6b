//! `diemcau probe`: one round of echo requests, or one attempt of a service check, printed.

use std::net::{IpAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::probe::check::{Check, HttpCheck, SipCheck, SipTransport, TcpCheck};
use crate::probe::icmp::{ProbeConfig, SocketPreference};
use crate::probe::outcome::Detail;

#[derive(Args)]
pub struct ProbeArgs {
    /// IPv4/IPv6 address or host name.
    pub address: String,
    #[arg(long, default_value_t = 3)]
    pub count: u32,
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub spacing: Duration,
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[arg(long, value_enum, default_value = "auto")]
    pub socket: SocketArg,
    /// What to probe: ICMP echo, a TCP connect, an HTTP(S) GET or a SIP OPTIONS request.
    #[arg(long, value_enum, default_value = "icmp")]
    pub kind: KindArg,
    /// Port for tcp/http/sip (defaults: http 80, https 443, sip 5060, sips 5061).
    #[arg(long)]
    pub port: Option<u16>,
    /// http: use TLS.
    #[arg(long)]
    pub https: bool,
    /// http: request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// http, sip over TLS: accept any certificate (self-signed devices).
    #[arg(long)]
    pub insecure: bool,
    /// sip: transport.
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: TransportArg,
    #[arg(long, hide = true)]
    pub private_netns: bool,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum KindArg {
    Icmp,
    Tcp,
    Http,
    Sip,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TransportArg {
    Udp,
    Tcp,
    Tls,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SocketArg {
    Auto,
    Dgram,
    Raw,
}

/// Runs the probe; exit 0 answered, 1 not, 2 on a usage or setup error.
pub fn main(args: ProbeArgs) -> ExitCode {
    let ProbeArgs {
        address,
        count,
        spacing,
        timeout,
        socket,
        kind,
        port,
        https,
        path,
        insecure,
        transport,
        private_netns,
    } = args;
    if kind != KindArg::Icmp {
        let check = match kind {
            KindArg::Tcp => match port {
                Some(port) => Check::Tcp(TcpCheck { port, timeout }),
                None => {
                    eprintln!("--kind tcp needs --port");
                    return ExitCode::from(2);
                }
            },
            KindArg::Http => Check::Http(HttpCheck {
                scheme_https: https,
                port,
                path,
                timeout,
                insecure_skip_verify: insecure,
                ..HttpCheck::default()
            }),
            _ => {
                let transport = match transport {
                    TransportArg::Udp => SipTransport::Udp,
                    TransportArg::Tcp => SipTransport::Tcp,
                    TransportArg::Tls => SipTransport::Tls,
                };
                Check::Sip(SipCheck {
                    transport,
                    port: port.unwrap_or(transport.default_port()),
                    timeout,
                    user: "ping".into(),
                    insecure_skip_verify: insecure,
                })
            }
        };
        return service_probe_cmd(&address, check, private_netns);
    }
    let socket = match socket {
        SocketArg::Auto => SocketPreference::Auto,
        SocketArg::Dgram => SocketPreference::Dgram,
        SocketArg::Raw => SocketPreference::Raw,
    };
    if !(1..=crate::probe::icmp::MAX_PACKETS_PER_ROUND).contains(&count) {
        eprintln!(
            "--count must be from 1 to {}",
            crate::probe::icmp::MAX_PACKETS_PER_ROUND
        );
        return ExitCode::from(2);
    }
    let probe = ProbeConfig {
        interval: Duration::from_secs(3600),
        packets: count,
        packet_spacing: spacing,
        timeout,
        socket,
    };
    probe_cmd(&address, &probe, private_netns)
}

fn resolve(address: &str) -> Option<IpAddr> {
    match address.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => (address, 0).to_socket_addrs().ok()?.next().map(|a| a.ip()),
    }
}

/// `diemcau probe --kind tcp|http|sip`: one attempt, printed; exit 0 success, 1 failure.
fn service_probe_cmd(address: &str, check: Check, private_netns: bool) -> ExitCode {
    let Some(ip) = resolve(address) else {
        eprintln!("{address:?} is neither an IP address nor a host name that resolves");
        return ExitCode::from(2);
    };
    if private_netns && let Err(e) = crate::app::netns::enter_private_network() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        let sip = crate::probe::sip::SipClient::new().await?;
        Ok::<_, std::io::Error>(crate::probe::attempt(&check, ip, &sip).await)
    });
    match outcome {
        Ok(o) => {
            let detail = match &o.detail {
                Detail::Http {
                    status,
                    tls_cert_not_after,
                    redirects,
                } => format!(
                    ", HTTP {status}, {redirects} redirects{}",
                    tls_cert_not_after
                        .map(|t| format!(", certificate valid until {}", humantime::format_rfc3339_seconds(t)))
                        .unwrap_or_default()
                ),
                Detail::Sip { status, reason } => format!(", SIP {status} {reason}"),
                Detail::Tcp | Detail::None => String::new(),
            };
            let verdict = match &o.failure {
                None => "success".to_string(),
                Some(f) => format!("failure ({f})"),
            };
            println!(
                "{ip} {}: {verdict} in {:.3} ms{detail}",
                check.kind(),
                o.duration.as_secs_f64() * 1e3
            );
            if o.success {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("cannot open the SIP client's sockets: {e}");
            ExitCode::from(2)
        }
    }
}

fn probe_cmd(address: &str, probe: &ProbeConfig, private_netns: bool) -> ExitCode {
    let ip = match address.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match (address, 0).to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(a)) => a.ip(),
            _ => {
                eprintln!("{address:?} is neither an IP address nor a host name that resolves");
                return ExitCode::from(2);
            }
        },
    };
    if private_netns && let Err(e) = crate::app::netns::enter_private_network() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    match crate::probe::icmp::oneshot::probe_once(ip, probe) {
        Ok((stats, kind)) => {
            println!(
                "{} (socket: {})",
                crate::probe::icmp::oneshot::describe(ip, &stats),
                kind.name()
            );
            if stats.received > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
