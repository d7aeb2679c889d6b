//! The emulator's scenario TOML (`diemcau_lab::Scenario::from_toml_str`), then its resolution
//! against a fixed set of endpoints (selectors, ids, profiles, delay distributions).
#![no_main]

use std::sync::LazyLock;

use diemcau_lab::{EmulatedEndpoint, Scenario, ScenarioError};
use libfuzzer_sys::fuzz_target;

static ENDPOINTS: LazyLock<Vec<EmulatedEndpoint>> = LazyLock::new(|| {
    let ep = |id: &str, province: &str, district: &str, commune: &str, carrier: &str, addr: &str| EmulatedEndpoint {
        id: id.into(),
        province: province.into(),
        district: district.into(),
        commune: commune.into(),
        carrier: carrier.into(),
        addr: addr.parse().expect("address"),
    };
    vec![
        ep("VN07-00012", "Tỉnh Lào Cai", "Cụm 3", "Xã Bản Lầu", "VNPT", "10.7.0.12"),
        ep(
            "VN07-00013",
            "Tỉnh Lào Cai",
            "Cụm 3",
            "Xã Bản Phiệt",
            "Viettel",
            "10.7.0.13",
        ),
        ep("HN-1", "Thành phố Hà Nội", "", "Phường Phúc Xá", "VNPT", "2001:db8::1"),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Scenario::from_toml_str(text, "fuzz.toml") {
        Ok(scenario) => match scenario.validate(&ENDPOINTS) {
            Ok(()) => {}
            Err(e @ (ScenarioError::EmptySelection { .. } | ScenarioError::UnknownId { .. })) => {
                assert!(e.to_string().starts_with("fuzz.toml:"));
            }
            Err(e) => panic!("validation can only fail on a selector: {e}"),
        },
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.toml:"), "{e}");
        }
    }
});
