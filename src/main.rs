//! The command line. Everything else lives in the library.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use diemcau::config::{Config, ProbeConfig, SocketPreference};
use diemcau::inventory_gen::{self, Era, GenerateOptions};
use diemcau::probe::check::{Check, HttpCheck, SipCheck, SipTransport, TcpCheck};
use diemcau::probe::outcome::Detail;

#[derive(Parser)]
#[command(
    name = "diemcau",
    version,
    about = "Monitors video-conference endpoints (điểm cầu) by ICMP and exports Prometheus metrics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (without --config: the embedded demo inventory on loopback).
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Overrides [web] listen_address.
        #[arg(long = "web.listen-address")]
        listen_address: Option<SocketAddr>,
        #[arg(long = "log.level", default_value = "info", env = "DIEMCAU_LOG")]
        log_level: String,
        #[arg(long = "log.format", value_enum, default_value = "text")]
        log_format: LogFormat,
        /// exporter-toolkit web configuration (TLS, basic auth), as for node_exporter.
        #[arg(long = "web.config.file")]
        web_config_file: Option<PathBuf>,
        /// Probe from a private network namespace of its own (tests, benchmarks, lab); the web
        /// port stays in the caller's namespace.
        #[arg(long)]
        private_netns: bool,
    },
    /// The daemon against an emulated national network with realistic faults, in a private
    /// network namespace; the web port opens on this machine (default http://127.0.0.1:9808/).
    Demo {
        /// Probe settings and inventory (default: embedded settings, generated inventory).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Emulator scenario TOML (default: one generated from the inventory).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Write the emulator's ground truth (JSON lines) here.
        #[arg(long)]
        truth: Option<PathBuf>,
        #[arg(long = "web.listen-address")]
        listen_address: Option<SocketAddr>,
        /// exporter-toolkit web configuration (TLS, basic auth).
        #[arg(long = "web.config.file")]
        web_config_file: Option<PathBuf>,
        /// Era of the generated inventory.
        #[arg(long, value_enum, default_value = "2025")]
        era: Era,
        /// Endpoints in the generated inventory (default: the era's commune count).
        #[arg(long)]
        endpoints: Option<usize>,
        #[arg(long = "log.level", default_value = "info", env = "DIEMCAU_LOG")]
        log_level: String,
        #[arg(long = "log.format", value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Validate a config and its inventory; print endpoints per province and carrier.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Send one round of echo requests to ADDRESS and print the figures (exit 0 answered, 1 not).
    Probe {
        /// IPv4/IPv6 address or host name.
        address: String,
        #[arg(long, default_value_t = 3)]
        count: u32,
        #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
        spacing: Duration,
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        #[arg(long, value_enum, default_value = "auto")]
        socket: SocketArg,
        /// What to probe: ICMP echo, a TCP connect, an HTTP(S) GET or a SIP OPTIONS request.
        #[arg(long, value_enum, default_value = "icmp")]
        kind: KindArg,
        /// Port for tcp/http/sip (defaults: http 80, https 443, sip 5060, sips 5061).
        #[arg(long)]
        port: Option<u16>,
        /// http: use TLS.
        #[arg(long)]
        https: bool,
        /// http: request path.
        #[arg(long, default_value = "/")]
        path: String,
        /// http, sip over TLS: accept any certificate (self-signed devices).
        #[arg(long)]
        insecure: bool,
        /// sip: transport.
        #[arg(long, value_enum, default_value = "udp")]
        transport: TransportArg,
        #[arg(long, hide = true)]
        private_netns: bool,
    },
    /// Reports from the ledger.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Inventory tools.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum KindArg {
    Icmp,
    Tcp,
    Http,
    Sip,
}

#[derive(Clone, Copy, ValueEnum)]
enum TransportArg {
    Udp,
    Tcp,
    Tls,
}

#[derive(Clone, Copy, ValueEnum)]
enum SocketArg {
    Auto,
    Dgram,
    Raw,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Availability per group for a period, planned maintenance and monitor downtime excluded.
    Sla {
        #[arg(long, short)]
        config: PathBuf,
        /// A calendar month (2026-11) in [report] time_zone, or FROM..TO (dates or RFC 3339).
        #[arg(long)]
        period: String,
        /// Grouping: any of province, district, carrier, comma-separated; empty = national.
        #[arg(long, default_value = "province,carrier")]
        by: String,
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum InventoryCommand {
    /// Write a national-size example inventory (real province names, synthetic communes).
    Generate {
        #[arg(long, value_enum, default_value = "2025")]
        era: Era,
        /// Endpoints in all (default: the era's commune count).
        #[arg(long)]
        endpoints: Option<usize>,
        /// First IPv4 address; the rest follow. Keep to loopback (127.0.0.0/8) unless the
        /// addresses exist only in a network namespace of yours.
        #[arg(long, default_value = "127.16.0.1")]
        first_address: std::net::Ipv4Addr,
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Few threads allocate here; one arena each for the engine and the async workers keeps
    // freed scrape buffers from being held in many per-thread arenas.
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            listen_address,
            log_level,
            log_format,
            web_config_file,
            private_netns,
        } => {
            init_logging(&log_level, log_format);
            run(config, listen_address, web_config_file, private_netns)
        }
        Command::Check { config } => check(&config),
        Command::Report {
            command:
                ReportCommand::Sla {
                    config,
                    period,
                    by,
                    format,
                    out,
                },
        } => report_sla(&config, period, by, &format, out.as_deref()),
        Command::Demo {
            config,
            scenario,
            truth,
            listen_address,
            web_config_file,
            era,
            endpoints,
            log_level,
            log_format,
        } => {
            init_logging(&log_level, log_format);
            let opts = diemcau::demo::DemoOptions {
                config,
                scenario,
                truth,
                listen: listen_address,
                web_config: web_config_file,
                era,
                endpoints,
            };
            match diemcau::demo::run(opts, shutdown_signal()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("diemcau demo: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Probe {
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
        } => {
            init_logging("warn", LogFormat::Text);
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
            if !(1..=diemcau::probe::icmp::MAX_PACKETS_PER_ROUND).contains(&count) {
                eprintln!(
                    "--count must be from 1 to {}",
                    diemcau::probe::icmp::MAX_PACKETS_PER_ROUND
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
        Command::Inventory {
            command:
                InventoryCommand::Generate {
                    era,
                    endpoints,
                    first_address,
                    out,
                },
        } => {
            let opts = GenerateOptions {
                era,
                endpoints: endpoints.unwrap_or_else(|| GenerateOptions::default_endpoints(era)),
                first_address,
            };
            let result = match &out {
                Some(path) => std::fs::File::create(path).and_then(|f| {
                    let mut w = std::io::BufWriter::new(f);
                    inventory_gen::generate(&opts, &mut w)?;
                    std::io::Write::flush(&mut w)
                }),
                None => inventory_gen::generate(&opts, &mut std::io::stdout().lock()),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cannot write the inventory: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|e| {
        eprintln!("invalid log level {level:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    // Colours only on a terminal: journald and log files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load(config: Option<&PathBuf>) -> Option<Config> {
    let loaded = match config {
        Some(path) => Config::load(path),
        None => Config::embedded(),
    };
    match loaded {
        Ok(c) => Some(c),
        Err(e) => {
            eprint!("{e}");
            None
        }
    }
}

fn run(
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    web_config: Option<PathBuf>,
    private_netns: bool,
) -> ExitCode {
    let Some(mut config) = load(config.as_ref()) else {
        return ExitCode::FAILURE;
    };
    if let Some(addr) = listen {
        config.web.listen_address = addr;
    }
    let listener = match std::net::TcpListener::bind(config.web.listen_address) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "cannot listen on {}: {e}; choose another [web] listen_address or --web.listen-address",
                config.web.listen_address
            );
            return ExitCode::FAILURE;
        }
    };
    // Before any thread exists: unshare(CLONE_NEWUSER) refuses multi-threaded processes.
    if private_netns && let Err(e) = diemcau::netns::enter_private_network() {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(diemcau::daemon::run(config, web_config, listener, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diemcau: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn report_sla(config: &PathBuf, period: String, by: String, format: &str, out: Option<&std::path::Path>) -> ExitCode {
    let format = match format.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(config) = load(Some(config)) else {
        return ExitCode::FAILURE;
    };
    let request = diemcau::report_http::ReportRequest { period, by, format };
    let started = std::time::Instant::now();
    let (body, _) = match diemcau::report_http::render_from_config(&config, &request) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let written = match out {
        Some(path) => std::fs::write(path, &body),
        None => std::io::Write::write_all(&mut std::io::stdout().lock(), &body),
    };
    match written {
        Ok(()) => {
            if let Some(path) = out {
                eprintln!(
                    "wrote {} ({} bytes) in {:?}",
                    path.display(),
                    body.len(),
                    started.elapsed()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write the report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &PathBuf) -> ExitCode {
    let Some(config) = load(Some(path)) else {
        return ExitCode::FAILURE;
    };
    println!("{}: valid, {} endpoints", path.display(), config.endpoints.len());
    println!("{:<40} {:<10} {:>9}", "province", "carrier", "endpoints");
    for ((province, carrier), n) in config.summary() {
        println!("{province:<40} {carrier:<10} {n:>9}");
    }
    ExitCode::SUCCESS
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
    if private_netns && let Err(e) = diemcau::netns::enter_private_network() {
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
        let sip = diemcau::probe::sip::SipClient::new().await?;
        Ok::<_, std::io::Error>(diemcau::service::attempt(&check, ip, &sip).await)
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
    if private_netns && let Err(e) = diemcau::netns::enter_private_network() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    match diemcau::oneshot::probe_once(ip, probe) {
        Ok((stats, kind)) => {
            println!("{} (socket: {})", diemcau::oneshot::describe(ip, &stats), kind.name());
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
