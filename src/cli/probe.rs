//! `diemcau probe`: one round of echo requests, or one attempt of a service check, printed.

use std::net::{IpAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use toml::{Spanned, Value};

use crate::domain::diag::LoadError;
use crate::probe::icmp::settings::ConfirmConfig;
use crate::probe::icmp::{ProbeConfig, SocketPreference};
use crate::probe::params::{Params, RawParams};
use crate::probe::target::{Scheme, Target};
use crate::probe::{Check, KINDS, ProbeContext};

#[derive(Args)]
pub struct ProbeArgs {
    /// IPv4/IPv6 address or host name; for service checks also host:port, [v6]:port, an
    /// http:// or https:// URL, or a sip: or sips: URI (flags win over what the target implies).
    pub address: String,
    #[arg(long, default_value_t = 3)]
    pub count: u32,
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub spacing: Duration,
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[arg(long, value_enum, default_value = "auto")]
    pub socket: SocketArg,
    /// What to probe: icmp (echo), or a service-check kind: tcp (connect), http (GET), sip
    /// (OPTIONS). Default: http for an http(s) URL, sip for a sip(s) URI, icmp otherwise.
    #[arg(long)]
    pub kind: Option<String>,
    /// Port for tcp/http/sip (defaults: http 80, https 443, sip 5060, sips 5061).
    #[arg(long)]
    pub port: Option<u16>,
    /// http: use TLS.
    #[arg(long)]
    pub https: bool,
    /// http: request path.
    #[arg(long)]
    pub path: Option<String>,
    /// http, sip over TLS: accept any certificate (self-signed devices).
    #[arg(long)]
    pub insecure: bool,
    /// http, sip over TLS: PEM file of CA certificates trusted besides the bundled roots.
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_file: Option<String>,
    /// sip: transport.
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,
    /// Any other setting of the kind, as in a [check.NAME] table: --set user=ping.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    #[arg(long, hide = true)]
    pub private_netns: bool,
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
    let target = match Target::parse(&args.address) {
        Ok(t) => t,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let kind = match (&args.kind, target.scheme) {
        (Some(k), _) => k.clone(),
        (None, Some(scheme)) => scheme.kind().to_owned(),
        (None, None) => "icmp".to_owned(),
    };
    if let Err(message) = kind_fits_target(&kind, &target, &args.address) {
        eprintln!("{message}");
        return ExitCode::from(2);
    }
    if kind != "icmp" {
        let check = match service_check(&args, &kind, &target) {
            Ok(check) => check,
            Err(message) => {
                eprint!("{message}");
                return ExitCode::from(2);
            }
        };
        return service_probe_cmd(&target.host, check, args.private_netns);
    }
    let ProbeArgs {
        count,
        spacing,
        timeout,
        socket,
        private_netns,
        ..
    } = args;
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
        confirm: ConfirmConfig {
            packets: 0,
            ..ConfirmConfig::default()
        },
    };
    probe_cmd(&target.host, &probe, private_netns)
}

/// Refuses a target the kind cannot probe as written (a URL's scheme names another kind).
fn kind_fits_target(kind: &str, target: &Target, text: &str) -> Result<(), String> {
    match (kind, target.scheme) {
        ("icmp", None) if target.port.is_none() => Ok(()),
        ("icmp", _) => Err(format!(
            "{text:?} names a port or scheme, which ICMP echo has not: give the address alone, or add --kind {}",
            target.scheme.map_or("tcp|http|sip", Scheme::kind)
        )),
        (_, None) | ("tcp", _) => Ok(()),
        (k, Some(s)) if k == s.kind() => Ok(()),
        (k, Some(s)) => Err(format!(
            "{text:?} is a {} target but --kind is {k:?}: use --kind {} (or tcp), or give host:port",
            s.kind(),
            s.kind()
        )),
    }
}

/// The settings a target implies for `kind`, as `[check.NAME]` values.
fn implied_settings(kind: &str, target: &Target) -> Vec<(&'static str, Value)> {
    let mut implied = Vec::new();
    let port = match (kind, target.scheme) {
        // A TCP connect to a URL goes to the port its scheme implies.
        ("tcp", Some(s)) => Some(target.port.unwrap_or(s.default_port())),
        _ => target.port,
    };
    if let Some(p) = port {
        implied.push(("port", Value::Integer(i64::from(p))));
    }
    match (kind, target.scheme) {
        ("http", Some(s)) => {
            let scheme = if s == Scheme::Https { "https" } else { "http" };
            implied.push(("scheme", Value::String(scheme.into())));
            if let Some(path) = &target.path {
                implied.push(("path", Value::String(path.clone())));
            }
            // Host header and SNI: the name in the URL, as a browser would send them.
            if target.ip().is_none() {
                implied.push(("host", Value::String(target.host.clone())));
            }
        }
        ("sip", Some(s)) => {
            let transport = match (&target.transport, s) {
                (Some(t), _) => Some(t.clone()),
                (None, Scheme::Sips) => Some("tls".to_owned()),
                (None, _) => None,
            };
            if let Some(t) = transport {
                implied.push(("transport", Value::String(t)));
            }
            if let Some(user) = &target.user {
                implied.push(("user", Value::String(user.clone())));
            }
        }
        _ => {}
    }
    implied
}

/// The flags as a `[check.NAME]` table, read by the kind like a config file's. What the target
/// implies goes in first; an explicit flag then wins, with a note when the two differ.
fn service_check(args: &ProbeArgs, kind: &str, target: &Target) -> Result<Check, String> {
    let at = |v: Value| Spanned::new(0..0, v);
    let mut raw = RawParams::new();
    let implied = implied_settings(kind, target);
    for (key, value) in &implied {
        raw.insert((*key).to_owned(), at(value.clone()));
    }
    raw.insert(
        "timeout".into(),
        at(Value::String(humantime::format_duration(args.timeout).to_string())),
    );
    if let Some(port) = args.port {
        raw.insert("port".into(), at(Value::Integer(i64::from(port))));
    }
    if args.https {
        raw.insert("scheme".into(), at(Value::String("https".into())));
    }
    if let Some(path) = &args.path {
        raw.insert("path".into(), at(Value::String(path.clone())));
    }
    if args.insecure {
        raw.insert("insecure_skip_verify".into(), at(Value::Boolean(true)));
    }
    if let Some(ca) = &args.ca_file {
        raw.insert("ca_file".into(), at(Value::String(ca.clone())));
    }
    if let Some(t) = args.transport {
        let name = match t {
            TransportArg::Udp => "udp",
            TransportArg::Tcp => "tcp",
            TransportArg::Tls => "tls",
        };
        raw.insert("transport".into(), at(Value::String(name.into())));
    }
    for setting in &args.settings {
        let Some((key, value)) = setting.split_once('=') else {
            return Err(format!("--set {setting:?}: write KEY=VALUE\n"));
        };
        let value = value
            .parse::<i64>()
            .map(Value::Integer)
            .or_else(|_| value.parse::<bool>().map(Value::Boolean))
            .unwrap_or_else(|_| Value::String(value.to_string()));
        raw.insert(key.trim().to_string(), at(value));
    }
    for (key, value) in &implied {
        if let Some(set) = raw.get(*key).map(Spanned::get_ref)
            && set != value
        {
            eprintln!("note: {key} = {set} (from the flags) wins over {value} implied by the target");
        }
    }
    let mut errors = LoadError::default();
    let file = std::path::Path::new("<command line>");
    let check = Check::from_params(kind, Params::new(&raw, "probe", file, "", &mut errors));
    match check {
        Err(()) => Err(format!(
            "--kind {kind:?} is not a probe kind; use icmp, {}\n",
            KINDS.join(", ")
        )),
        Ok(Some(check)) if errors.is_empty() => Ok(check),
        _ => Err(errors.to_string()),
    }
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
        let ctx = ProbeContext {
            sip: crate::probe::sip::SipClient::new().await?,
        };
        Ok::<_, std::io::Error>(check.attempt(ip, &ctx).await)
    });
    match outcome {
        Ok(o) => {
            let detail = o.detail.describe(check.kind());
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
    let Some(ip) = resolve(address) else {
        eprintln!("{address:?} is neither an IP address nor a host name that resolves");
        return ExitCode::from(2);
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
