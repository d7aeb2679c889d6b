//! `[[router]]` and `[monitor]`: parsing, errors at their line, and each endpoint's path.

use std::net::IpAddr;

use super::*;

fn ep(id: &str, province: &str, carrier: &str, addr: &str) -> EmulatedEndpoint {
    EmulatedEndpoint {
        id: id.into(),
        province: province.into(),
        district: String::new(),
        commune: format!("C-{id}"),
        carrier: carrier.into(),
        addr: addr.parse().expect("test addr"),
    }
}

fn endpoints() -> Vec<EmulatedEndpoint> {
    vec![
        ep("DN-1", "Tỉnh Đồng Nai", "VNPT", "198.18.0.1"),
        ep("DN-2", "Tỉnh Đồng Nai", "VNPT", "198.18.0.2"),
        ep("HN-1", "Thành phố Hà Nội", "VNPT", "198.18.0.3"),
        ep("DN-V", "Tỉnh Đồng Nai", "Viettel", "198.18.0.4"),
        ep("DN-6", "Tỉnh Đồng Nai", "VNPT", "2001:2::1"),
    ]
}

const TREE: &str = r#"
[monitor]
outages = [ { start_s = 10, end_s = 20 } ]

[[router]]
name = "core-vnpt"
address = "198.19.0.1"
select = { carrier = "VNPT" }

[[router]]
name = "dongnai-vnpt"
address = "198.19.1.1"
parent = "core-vnpt"
select = { province = "Tỉnh Đồng Nai" }
delay = { kind = "fixed", ms = 4.0 }
outages = [ { start_s = 1, end_s = 2 }, { flap = { period_s = 60, down_s = 5 } } ]
icmp_rate_limit = 10

[[router]]
name = "dongnai-vnpt-2"
address = "198.19.1.2"
parent = "dongnai-vnpt"
select = { ids = ["DN-2"] }
silent = true

[[router]]
name = "core-vnpt-v6"
address = "2001:2:ff::1"
select = { carrier = "VNPT" }
"#;

fn addrs(net: &crate::path::Network, ep: u32) -> Vec<IpAddr> {
    net.path(ep).iter().map(|&r| net.routers[r as usize].addr).collect()
}

#[test]
fn paths_follow_the_deepest_matching_router() {
    let s = Scenario::from_toml_str(TREE, "tree.toml").expect("parse");
    let eps = endpoints();
    s.validate(&eps).expect("valid");
    let net = s.resolve_network(&eps).expect("resolve");
    let ip = |a: &str| -> IpAddr { a.parse().expect("ip") };
    assert_eq!(addrs(&net, 0), [ip("198.19.0.1"), ip("198.19.1.1")]);
    assert_eq!(addrs(&net, 1), [ip("198.19.0.1"), ip("198.19.1.1"), ip("198.19.1.2")]);
    assert_eq!(addrs(&net, 2), [ip("198.19.0.1")], "Hà Nội stops at the core");
    assert!(addrs(&net, 3).is_empty(), "Viettel matches no router");
    assert_eq!(addrs(&net, 4), [ip("2001:2:ff::1")], "IPv6 paths use IPv6 routers");
    let behind: Vec<u32> = net.routers.iter().map(|r| r.endpoints_behind).collect();
    assert_eq!(behind, [3, 2, 1, 1]);
    assert_eq!(net.routers[1].rate_limit, Some(10));
    assert_eq!(net.routers[1].windows.len(), 2);
    assert!(net.routers[2].silent && !net.routers[0].silent);
    assert_eq!(net.monitor.len(), 1);
}

#[test]
fn without_routers_every_path_is_empty() {
    let s = Scenario::from_toml_str("[defaults]\nloss = 0.1\n", "plain.toml").expect("parse");
    let net = s.resolve_network(&endpoints()).expect("resolve");
    assert!(!net.active());
    assert!((0..5).all(|i| net.path(i).is_empty()));
}

/// Each bad scenario fails with its origin and the line of the offending `[[router]]` (or
/// outage), and a message naming the problem.
#[test]
fn bad_routers_are_reported_at_their_line() {
    let r =
        |name: &str, addr: &str, extra: &str| format!("[[router]]\nname = \"{name}\"\naddress = \"{addr}\"\n{extra}\n");
    let cases = [
        (
            format!("{}{}", r("a", "198.19.0.1", ""), r("a", "198.19.0.2", "")),
            5,
            "already used at line 1",
        ),
        (
            format!("{}{}", r("a", "198.19.0.1", ""), r("b", "198.19.0.1", "")),
            5,
            "address 198.19.0.1 is already router \"a\"'s",
        ),
        (
            r("a", "198.19.0.1", "parent = \"nope\""),
            1,
            "parent \"nope\" is not the name",
        ),
        (
            format!(
                "{}{}",
                r("a", "198.19.0.1", "parent = \"b\""),
                r("b", "198.19.0.2", "parent = \"a\"")
            ),
            1,
            "cycle (a → b → a)",
        ),
        (r("a", "198.19.0.1", "parent = \"a\""), 1, "cycle (a → a)"),
        (
            format!(
                "{}{}",
                r("a", "198.19.0.1", ""),
                r("b", "2001:2:ff::1", "parent = \"a\"")
            ),
            5,
            "one address family",
        ),
        (r("a", "198.19.0.1", "select = {}"), 1, "empty select"),
        (r("a", "198.19.0.1", "icmp_rate_limit = 0"), 1, "icmp_rate_limit = 0"),
        (r("a", "0.0.0.0", ""), 1, "cannot be a router"),
        (r("a", "100.127.255.254", ""), 1, "cannot be a router"),
        (r("", "198.19.0.1", ""), 1, "non-empty name"),
        (
            r(
                "a",
                "198.19.0.1",
                "outages = [\n  { degrade = { start_s = 1, end_s = 2 } } ]",
            ),
            5,
            "degrade has no meaning",
        ),
        (
            "[monitor]\noutages = [ { start_s = 5, end_s = 1 } ]\n".to_string(),
            2,
            "start_s < end_s",
        ),
    ];
    for (text, line, want) in cases {
        let e = Scenario::from_toml_str(&text, "r.toml").expect_err(&text);
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("r.toml:{line}:")), "{msg}\n{text}");
        assert!(msg.contains(want), "{msg} lacks {want:?}\n{text}");
    }
    for (text, want) in [
        (r("a", "198.19.0.1", "adress = \"x\""), "r.toml:4:"),
        (r("a", "198.19.0.999", ""), "r.toml:3:"),
        ("[monitor]\noutage = []\n".to_string(), "r.toml:2:"),
    ] {
        let msg = Scenario::from_toml_str(&text, "r.toml").expect_err(&text).to_string();
        assert!(msg.starts_with(want), "{msg}\n{text}");
    }
}

#[test]
fn bad_paths_are_reported_at_the_router() {
    let eps = endpoints();
    let cases = [
        (
            "[[router]]\nname = \"a\"\naddress = \"198.19.0.1\"\n\n[[router]]\nname = \"b\"\naddress = \"198.19.0.2\"\nselect = { province = \"Tỉnh Đồng Nai\" }\n",
            5,
            "matches both it and router \"a\" (line 1)",
        ),
        (
            "[[router]]\nname = \"a\"\naddress = \"198.19.0.1\"\nselect = { carrier = \"Mobifone\" }\n",
            1,
            "no endpoint's path goes through it",
        ),
        (
            "[[router]]\nname = \"a\"\naddress = \"2001:2:ff::1\"\nselect = { carrier = \"Viettel\" }\n",
            1,
            "IPv6 family match no endpoint",
        ),
        (
            "[[router]]\nname = \"a\"\naddress = \"198.19.0.1\"\nselect = { ids = [\"XX-9\"] }\n",
            1,
            "unknown endpoint id \"XX-9\"",
        ),
        (
            "[[router]]\nname = \"a\"\naddress = \"198.18.0.3\"\n",
            1,
            "endpoint \"HN-1\"'s",
        ),
        (
            "[[router]]\nname = \"a\"\naddress = \"198.19.0.1\"\nselect = { carrier = \"Viettel\" }\n[[router]]\nname = \"b\"\naddress = \"198.19.0.2\"\nparent = \"a\"\nselect = { carrier = \"VNPT\" }\n",
            5,
            "no endpoint's path",
        ),
    ];
    for (text, line, want) in cases {
        let s = Scenario::from_toml_str(text, "p.toml").expect(text);
        let msg = s.validate(&eps).expect_err(text).to_string();
        assert!(msg.starts_with(&format!("p.toml:{line}:")), "{msg}\n{text}");
        assert!(msg.contains(want), "{msg} lacks {want:?}\n{text}");
    }
}
