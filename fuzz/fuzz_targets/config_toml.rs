//! `diemcau.toml` → `Config`, through every validation step of a real load. Inventory and other
//! files named by the config are served from memory: the inventory holds IP literals only, so
//! the load never reaches the resolver (`resolve_hosts` only resolves host names).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

const INVENTORY: &str = diemcau::config::EMBEDDED_INVENTORY;
const CENTROIDS: &str = "province,lat,lon\nThành phố Hồ Chí Minh,10.78,106.70\nThành phố Hà Nội,21.03,105.85\n";

fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.contains("centroid") {
        Ok(CENTROIDS.as_bytes().to_vec())
    } else if name.ends_with(".csv") {
        Ok(INVENTORY.as_bytes().to_vec())
    } else if name.contains("password") {
        Ok(b"fuzz-password\n".to_vec())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not served by the fuzz target",
        ))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new("/nonexistent-diemcau-fuzz/diemcau.toml");
    match diemcau::config::load_text(file, text, Path::new("/nonexistent-diemcau-fuzz"), &read) {
        Ok(config) => {
            // A shard's share of a small inventory may be empty; the inventory never is.
            assert!(config.inventory_endpoints > 0, "a valid config has endpoints");
            assert!(config.endpoints.len() <= config.inventory_endpoints);
            assert!(!config.endpoints.is_empty() || !config.shard.is_whole());
            assert!(
                config.endpoints.iter().all(|e| e.host.is_none()),
                "nothing was resolved"
            );
            assert!(config.probe.round_span() < config.probe.interval);
            assert!(config.probe.packets >= 1);
            let named = config.checks.named.len();
            for e in &config.endpoints {
                assert!(e.checks.iter().all(|&id| usize::from(id) < named));
            }
            assert!((0.0..=1.0).contains(&config.health.degraded.loss_ratio));
        }
        Err(errors) => {
            assert!(!errors.problems.is_empty(), "an error names at least one problem");
            // Rendering every problem must not panic either (it is what `check` prints).
            let _ = errors.to_string();
        }
    }
});
