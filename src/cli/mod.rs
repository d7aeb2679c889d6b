//! The command line: argument definitions and dispatch. Each command lives in its own file and
//! calls into the library; nothing here probes, stores or serves by itself.

mod docs;
mod inventory;
mod logfmt;
mod probe;
mod report;
mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::inventory_gen::Era;
use crate::metrics::build::{LONG_VERSION, SHORT_VERSION};

#[derive(Parser)]
#[command(
    name = "diemcau",
    version = SHORT_VERSION,
    long_version = LONG_VERSION,
    about = "Monitors video-conference endpoints (điểm cầu) by ICMP and exports Prometheus metrics",
    after_long_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The end of `--help` and of the man page.
const AFTER_HELP: &str = "Exit status: 0 success; 1 failure; 2 bad usage; 78 (EX_CONFIG) the config, an inventory, \
the web config or the demo scenario cannot be used (run, demo, check).

Files: /etc/diemcau/diemcau.toml and /etc/diemcau/inventory.csv (Debian package), the SQLite ledger \
in /var/lib/diemcau under systemd.

Documentation: https://github.com/diemcau/diemcau";

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// key=value pairs, one event per line (`text` is accepted for compatibility).
    #[value(alias = "text")]
    Logfmt,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (without --config: the embedded demo inventory on loopback).
    Run {
        /// The TOML config file (default: the embedded demo config).
        #[arg(long, short, visible_alias = "config.file", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Serve on this address instead of [web] listen_address; repeat it to serve on several.
        #[arg(long = "web.listen-address", value_name = "ADDRESS")]
        listen_address: Vec<SocketAddr>,
        #[arg(long = "log.level", default_value = "info", env = "DIEMCAU_LOG")]
        log_level: String,
        #[arg(long = "log.format", value_enum, default_value = "logfmt")]
        log_format: LogFormat,
        /// exporter-toolkit web configuration (TLS, basic auth), as for node_exporter.
        #[arg(long = "web.config.file")]
        web_config_file: Option<PathBuf>,
        /// Probe from a private network namespace of its own (tests, benchmarks, lab); the web
        /// port stays in the caller's namespace.
        #[arg(long)]
        private_netns: bool,
        /// Probe shard I (0-based) of N: replaces [shard] index, count and index_from_hostname.
        #[arg(long, value_name = "I/N", value_parser = crate::domain::shard::parse_share)]
        shard: Option<(u32, u32)>,
    },
    /// The daemon against an emulated national network with realistic faults, in a private
    /// network namespace; the web port opens on this machine (default http://127.0.0.1:9808/).
    Demo {
        /// Probe settings and inventory (default: embedded settings, generated inventory).
        #[arg(long, short, visible_alias = "config.file", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Emulator scenario TOML (default: one generated from the inventory).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Write the emulator's ground truth (JSON lines) here.
        #[arg(long)]
        truth: Option<PathBuf>,
        /// Serve on this address instead of [web] listen_address; repeat it to serve on several.
        #[arg(long = "web.listen-address", value_name = "ADDRESS")]
        listen_address: Vec<SocketAddr>,
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
        #[arg(long = "log.format", value_enum, default_value = "logfmt")]
        log_format: LogFormat,
    },
    /// Validate a config and its inventory; print endpoints per province and carrier (exit 0
    /// valid, 78 not).
    Check {
        /// The TOML config file.
        #[arg(long, short, visible_alias = "config.file", value_name = "FILE")]
        config: PathBuf,
        /// Check as shard I (0-based) of N: count that shard's share, as `run --shard` would.
        #[arg(long, value_name = "I/N", value_parser = crate::domain::shard::parse_share)]
        shard: Option<(u32, u32)>,
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
        /// The TOML config file; its [store] path is the ledger read.
        #[arg(long, short, visible_alias = "config.file", value_name = "FILE")]
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
    /// Write a national-size example inventory (2025: the real 3,321 communes, no districts).
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
        /// Take the communes from this units CSV instead (e.g. a 2021 list with districts:
        /// province_code,province_name,district_name,commune_code,commune_name,…).
        #[arg(long)]
        units: Option<String>,
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// Parses the command line and runs the command; the exit code follows each command's contract.
pub fn main() -> ExitCode {
    // `completions` and `man` are parsed apart, so that neither the help, the completions nor
    // the man pages offer them.
    if let Some(first) = std::env::args_os().nth(1)
        && docs::COMMANDS.iter().any(|c| first == *c)
    {
        return docs::main();
    }
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. } | Command::Demo { .. }) {
        crate::app::boot::default_sighup();
    }
    match cli.command {
        Command::Run {
            config,
            listen_address,
            log_level,
            log_format,
            web_config_file,
            private_netns,
            shard,
        } => {
            run::init_logging(&log_level, log_format);
            let overrides = crate::config::Overrides { shard };
            run::run(config, overrides, listen_address, web_config_file, private_netns)
        }
        Command::Check { config, shard } => run::check(&config, crate::config::Overrides { shard }),
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
                    run::failure(&e)
                }
            }
        }
        Command::Probe(args) => {
            run::init_logging("warn", LogFormat::Logfmt);
            probe::main(args)
        }
        Command::Inventory {
            command:
                InventoryCommand::Generate {
                    era,
                    endpoints,
                    first_address,
                    units,
                    out,
                },
        } => inventory::generate(era, endpoints, first_address, units, out.as_deref()),
    }
}
