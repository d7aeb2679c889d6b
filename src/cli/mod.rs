//! The command line: argument definitions and dispatch. Each command lives in its own file and
//! calls into the library; nothing here probes, stores or serves by itself.

mod inventory;
mod probe;
mod report;
mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::inventory_gen::Era;

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
pub(crate) enum LogFormat {
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
    Probe(probe::ProbeArgs),
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
        /// csv, worst-csv, json, html or xlsx.
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

/// Parses the command line and runs the command; the exit code follows each command's contract.
pub fn main() -> ExitCode {
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
            run::init_logging(&log_level, log_format);
            run::run(config, listen_address, web_config_file, private_netns)
        }
        Command::Check { config } => run::check(&config),
        Command::Report {
            command:
                ReportCommand::Sla {
                    config,
                    period,
                    by,
                    format,
                    out,
                },
        } => report::sla(&config, period, by, &format, out.as_deref()),
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
            run::init_logging(&log_level, log_format);
            let opts = crate::app::demo::DemoOptions {
                config,
                scenario,
                truth,
                listen: listen_address,
                web_config: web_config_file,
                era,
                endpoints,
            };
            match crate::app::demo::run(opts, run::shutdown_signal()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("diemcau demo: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Probe(args) => {
            run::init_logging("warn", LogFormat::Text);
            probe::main(args)
        }
        Command::Inventory {
            command:
                InventoryCommand::Generate {
                    era,
                    endpoints,
                    first_address,
                    out,
                },
        } => inventory::generate(era, endpoints, first_address, out.as_deref()),
    }
}
