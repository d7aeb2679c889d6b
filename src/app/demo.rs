//! `diemcau demo`: the daemon against an emulated national network, in one command.
//!
//! The web port is bound first, in the caller's network namespace; then the process moves into a
//! private namespace where the endpoint emulator ([`diemcau_lab`]) answers for every inventory
//! address behind a TUN device, and the daemon probes it. When the process exits, the kernel
//! removes the namespace with its device and routes: nothing is left behind.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::config::inventory_gen::{self, Era, GenerateOptions};
use crate::domain::Endpoint;
use diemcau_lab::{EmulatedEndpoint, Lab, LabOptions, Scenario};

pub struct DemoOptions {
    /// A config of the user's; `None` = embedded probe settings + a generated inventory.
    pub config: Option<PathBuf>,
    /// A scenario TOML; `None` = one generated from the inventory (see [`generated_scenario`]).
    pub scenario: Option<PathBuf>,
    /// Where to write the emulator's ground truth (JSON lines).
    pub truth: Option<PathBuf>,
    /// Web addresses (empty: the config's `[web] listen_address`).
    pub listen: Vec<SocketAddr>,
    /// exporter-toolkit web config (TLS, basic auth).
    pub web_config: Option<PathBuf>,
    pub era: Era,
    pub endpoints: Option<usize>,
}

/// Removes the demo's scratch directory on every exit path.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs until `shutdown` resolves. Must be called while the process is single-threaded.
pub fn run(opts: DemoOptions, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let scratch = Scratch(std::env::temp_dir().join(format!("diemcau-demo-{}", std::process::id())));
    let config_path = match &opts.config {
        Some(p) => p.clone(),
        None => write_generated(&scratch.0, &opts)?,
    };
    let config = Config::load(&config_path)?;
    let addresses = super::boot::listen_addresses(&config, &opts.listen);
    let scenario_text = match &opts.scenario {
        Some(p) => crate::config::file::read_regular_text(p, crate::config::file::MAX_CONFIG_BYTES)
            .with_context(|| format!("reading {}", p.display()))?,
        None => generated_scenario(&config.endpoints),
    };
    let origin = opts
        .scenario
        .as_ref()
        .map_or("<generated scenario>".to_string(), |p| p.display().to_string());
    let scenario = Scenario::from_toml_str(&scenario_text, &origin)?;
    // Host names resolve only after start-up: the emulator answers for literal addresses.
    let emulated: Vec<EmulatedEndpoint> = config.endpoints.iter().filter_map(|e| emulated(e)).collect();
    scenario.validate(&emulated)?;

    let listeners = super::boot::bind(&addresses)?;
    crate::app::netns::enter_private_network()?;
    let lab = Lab::start(
        emulated,
        scenario,
        LabOptions {
            tun_name: "diemcau-lab".into(),
            // Everything but loopback goes to the emulator: the namespace has no other interface.
            v4_routes: vec![(Ipv4Addr::UNSPECIFIED, 1), (Ipv4Addr::new(128, 0, 0, 0), 1)],
            v6_routes: vec![
                (Ipv6Addr::UNSPECIFIED, 1),
                (Ipv6Addr::new(0x8000, 0, 0, 0, 0, 0, 0, 0), 1),
            ],
            truth_path: opts.truth.clone(),
            ..LabOptions::default()
        },
    )
    .context("starting the endpoint emulator (needs root, or user namespaces with /dev/net/tun)")?;
    tracing::info!(
        endpoints = config.endpoints.len(),
        address = %addresses[0],
        "demo network up: open http://{}/ (Ctrl-C stops it)",
        addresses[0]
    );
    let result = super::boot::serve(config, opts.web_config.clone(), listeners, shutdown);
    let stats = lab.stop()?;
    tracing::info!(
        replied = stats.replied,
        dropped_loss = stats.dropped_loss,
        dropped_outage = stats.dropped_outage,
        late_p50_us = stats.late_p50_us,
        "emulator stopped"
    );
    drop(scratch);
    result
}

fn emulated(e: &Endpoint) -> Option<EmulatedEndpoint> {
    Some(EmulatedEndpoint {
        id: e.id.to_string(),
        province: e.labels.province.to_string(),
        district: e.labels.district_or_empty().to_string(),
        commune: e.labels.commune.to_string(),
        carrier: e.labels.carrier.to_string(),
        addr: e.address?,
    })
}

/// Writes a generated national inventory (addresses in 198.18.0.0/15, which exist only inside
/// the demo's namespace) and a config with the embedded probe settings.
fn write_generated(dir: &std::path::Path, opts: &DemoOptions) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let endpoints = opts
        .endpoints
        .unwrap_or_else(|| GenerateOptions::default_endpoints(opts.era));
    if endpoints > 131_000 {
        bail!("at most 131,000 endpoints fit in 198.18.0.0/15");
    }
    let mut csv = Vec::new();
    inventory_gen::generate(
        &GenerateOptions {
            era: opts.era,
            endpoints,
            first_address: Ipv4Addr::new(198, 18, 0, 1),
            units: None,
        },
        &mut csv,
    )?;
    std::fs::write(dir.join("inventory.csv"), csv)?;
    // The embedded config already names "inventory.csv" beside it. The ledger goes to the
    // working directory (not the scratch one) so `diemcau report sla` works after the demo.
    let ledger = std::env::current_dir()?.join("diemcau-data").join("demo.db");
    let ledger = ledger.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");
    let path = dir.join("diemcau.toml");
    std::fs::write(
        &path,
        format!("{}\n[store]\npath = \"{ledger}\"\n", crate::config::EMBEDDED_CONFIG),
    )?;
    Ok(path)
}

fn toml_string(s: &str) -> String {
    format!("{s:?}")
}

/// A realistic fault scenario for any inventory, chosen from its own labels:
/// - every endpoint: 15–25 ms normal delay, 0.2 % loss;
/// - the largest district of the second province: down from minute 2 to minute 12;
/// - one carrier in the third province: degrading from minute 1 to minute 30 (loss to 35 %,
///   +120 ms);
/// - five lossy communes (25 % loss), five flapping ones (down 60 s of every 180 s), and one
///   commune that never answers.
pub fn generated_scenario(endpoints: &[Arc<Endpoint>]) -> String {
    let mut s = String::from(
        "# Generated demo scenario\n[defaults]\ndelay = { kind = \"normal\", mean_ms = 20.0, stddev_ms = 2.5 }\nloss = 0.002\n",
    );
    let mut provinces: Vec<&str> = Vec::new();
    for e in endpoints {
        if !provinces.contains(&&*e.labels.province) {
            provinces.push(&e.labels.province);
        }
    }
    if let Some(p) = provinces.get(1.min(provinces.len().saturating_sub(1))) {
        let mut districts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in endpoints.iter().filter(|e| &*e.labels.province == *p) {
            if let Some(d) = e.labels.district.as_deref() {
                *districts.entry(d).or_default() += 1;
            }
        }
        if districts.is_empty()
            && let Some(e) = endpoints.iter().find(|e| &*e.labels.province == *p)
        {
            // Today's two-tier map has no districts: a carrier's province network goes down.
            let _ = write!(
                s,
                "\n# Carrier outage in one province\n[[rule]]\nselect = {{ province = {}, carrier = {} }}\noutages = [ {{ start_s = 120, end_s = 720 }} ]\n",
                toml_string(p),
                toml_string(&e.labels.carrier)
            );
        }
        if let Some((d, _)) = districts.iter().max_by_key(|(_, n)| **n) {
            let _ = write!(
                s,
                "\n# District-wide outage\n[[rule]]\nselect = {{ province = {}, district = {} }}\noutages = [ {{ start_s = 120, end_s = 720 }} ]\n",
                toml_string(p),
                toml_string(d)
            );
        }
    }
    if let Some(p) = provinces.get(2)
        && let Some(e) = endpoints.iter().find(|e| &*e.labels.province == *p)
    {
        {
            let _ = write!(
                s,
                "\n# Carrier-wide degradation in one province\n[[rule]]\nselect = {{ province = {}, carrier = {} }}\noutages = [ {{ degrade = {{ start_s = 60, end_s = 1800, loss_from = 0.0, loss_to = 0.35, extra_delay_ms_to = 120.0 }} }} ]\n",
                toml_string(p),
                toml_string(&e.labels.carrier)
            );
        }
    }
    let n = endpoints.len();
    let pick = |k: usize| -> Vec<String> {
        (0..k)
            .map(|i| endpoints[(n / 7 + i * (n / 11).max(1)) % n].id.as_str().to_string())
            .collect()
    };
    if n >= 20 {
        let ids = |v: &[String]| v.iter().map(|i| toml_string(i)).collect::<Vec<_>>().join(", ");
        let all = pick(11);
        let _ = write!(
            s,
            "\n# Lossy communes\n[[rule]]\nselect = {{ ids = [{}] }}\nloss = 0.25\n",
            ids(&all[0..5])
        );
        let _ = write!(
            s,
            "\n# Flapping communes\n[[rule]]\nselect = {{ ids = [{}] }}\noutages = [ {{ flap = {{ period_s = 180, down_s = 60 }} }} ]\n",
            ids(&all[5..10])
        );
        let _ = write!(
            s,
            "\n# A commune that never answers\n[[rule]]\nselect = {{ ids = [{}] }}\nnever = true\n",
            ids(&all[10..11])
        );
    }
    s
}
