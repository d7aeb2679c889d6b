use rand::SeedableRng;

use super::decide::{Window, s_to_ns};
use super::*;

fn ep(id: &str, province: &str, carrier: &str, addr: &str) -> EmulatedEndpoint {
    EmulatedEndpoint {
        id: id.into(),
        province: province.into(),
        district: "D".into(),
        commune: "C".into(),
        carrier: carrier.into(),
        addr: addr.parse().expect("test addr"),
    }
}

const EXAMPLE: &str = r#"
[defaults]
delay = { kind = "fixed", ms = 5.0 }
loss = 0.0

[[rule]]
select = { ids = ["HN-00001"] }
delay = { kind = "normal", mean_ms = 40.0, stddev_ms = 8.0 }
loss = 0.2
outages = [ { start_s = 60, end_s = 180 }, { flap = { period_s = 120, down_s = 30 } } ]
never = false
sip = "503"

[[rule]]
select = { province = "HCM", carrier = "VT" }
outages = [ { degrade = { start_s = 0, end_s = 10, loss_from = 0.0, loss_to = 1.0, extra_delay_ms_to = 100 } } ]
sip = "silent"
"#;

#[test]
fn parses_example_and_resolves() {
    let s = Scenario::from_toml_str(EXAMPLE, "ex.toml").expect("parse");
    let eps = vec![
        ep("HN-00001", "HN", "VT", "198.18.0.1"),
        ep("HCM-1", "HCM", "VT", "198.18.0.2"),
        ep("HCM-2", "HCM", "VN", "198.18.0.3"),
    ];
    let (profiles, assign) = s.resolve(&eps).expect("resolve");
    assert_eq!(profiles.len(), 3);
    let p0 = &profiles[assign[0] as usize];
    assert_eq!(p0.sip, SipMode::Unavailable503);
    assert!((p0.loss - 0.2).abs() < 1e-12);
    assert_eq!(p0.windows.len(), 2);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    assert_eq!(p0.decide(s_to_ns(100.0), &mut rng), Decision::Outage);
    assert_eq!(p0.decide(s_to_ns(250.0), &mut rng), Decision::Outage); // flap 240..270
    let p1 = &profiles[assign[1] as usize];
    assert_eq!(p1.sip, SipMode::Silent);
    let p2 = &profiles[assign[2] as usize];
    assert_eq!(p2.decide(0, &mut rng), Decision::Reply { delay_ns: 5_000_000 });
}

#[test]
fn unknown_key_has_line() {
    let text = "# c\n[defaults]\nloss = 2.0\n";
    let msg = Scenario::from_toml_str(text, "d.toml")
        .expect_err("must fail")
        .to_string();
    assert!(msg.starts_with("d.toml:2:"), "{msg}");
    let text = "[defaults]\nloss = 0.1\nlos = 0.2\n";
    let e = Scenario::from_toml_str(text, "f.toml").expect_err("must fail");
    let msg = e.to_string();
    assert!(msg.starts_with("f.toml:3:"), "{msg}");
    let text = "[[rule]]\nselect = { ids = [\"a\"] }\ndelay = { kind = \"fixed\", ms = 1, extra = 2 }\n";
    let msg = Scenario::from_toml_str(text, "g.toml").expect_err("fail").to_string();
    assert!(msg.starts_with("g.toml:3:"), "{msg}");
    let text = "[[rule]]\nselect = { ids = [\"a\"] }\noutages = [ { start_s = 1, end_s = 2, flap = { period_s = 1, down_s = 1 } } ]\n";
    let msg = Scenario::from_toml_str(text, "h.toml").expect_err("fail").to_string();
    assert!(msg.starts_with("h.toml:3:"), "{msg}");
}

#[test]
fn empty_selection_and_unknown_id() {
    let eps = vec![ep("A", "HN", "VT", "198.18.0.1")];
    let s = Scenario::from_toml_str("[[rule]]\nselect = { province = \"XX\" }\nloss = 0.5\n", "r.toml").expect("parse");
    let e = s.validate(&eps).expect_err("empty");
    assert!(matches!(e, ScenarioError::EmptySelection { line: 1, .. }), "{e}");
    let s = Scenario::from_toml_str("\n[[rule]]\nselect = { ids = [\"B\"] }\n", "r.toml").expect("parse");
    let e = s.validate(&eps).expect_err("unknown");
    assert!(matches!(e, ScenarioError::UnknownId { line: 2, .. }), "{e}");
}

#[test]
fn invalid_values() {
    for bad in [
        "[defaults]\nloss = 1.5\n",
        "[defaults]\ndelay = { kind = \"uniform\", min_ms = 5, max_ms = 1 }\n",
        "[defaults]\noutages = [ { flap = { period_s = 10, down_s = 20 } } ]\n",
        "[defaults]\nsip = \"404\"\n",
        "[[rule]]\nselect = {}\n",
    ] {
        assert!(Scenario::from_toml_str(bad, "x").is_err(), "{bad}");
    }
}

#[test]
fn flap_occurrences() {
    let w = Window::Flap {
        start: 10,
        period: 100,
        down: 30,
        end: Some(250),
    };
    assert_eq!(w.occurrence(0), Some((10, 40)));
    assert_eq!(w.occurrence(2), Some((210, 240)));
    assert_eq!(w.occurrence(3), None);
    assert!(w.is_down_at(215) && !w.is_down_at(245) && !w.is_down_at(5));
}
