//! Least privilege: diemcau runs as an unprivileged user with only CAP_NET_RAW, or with nothing
//! but ping sockets, says which ICMP socket it got, and explains what to do when it has neither.
//! Each case runs the real binary as user `nobody` (65534) through `setpriv`, which needs root;
//! the daemon case also proves `diemcau run` logs the socket kind at start.

mod common;

use std::process::Command;

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

fn as_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the privilege tests switch users with setpriv and must run as root in CI");
    }
    eprintln!("SKIPPED: not root");
    false
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("spawn");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn without_privileges_it_says_exactly_what_to_do() {
    if !as_root() || !common::require_tool("setpriv") {
        return;
    }
    // A private network namespace whose ping_group_range excludes everyone ("1 0", the default).
    let (code, text) = run(Command::new("unshare").args(["-n", "sh", "-c"]).arg(format!(
        "echo '1 0' > /proc/sys/net/ipv4/ping_group_range && ip link set lo up && exec setpriv {} {} probe 127.0.0.1",
        NOBODY.join(" "),
        common::bin()
    )));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("cannot open an ICMP socket for IPv4"), "{text}");
    assert!(
        text.contains("sysctl -w net.ipv4.ping_group_range=\"0 2147483647\""),
        "{text}"
    );
    assert!(text.contains("setcap cap_net_raw+ep"), "{text}");
    assert!(text.contains("your gid is 65534"), "{text}");
}

#[test]
fn ping_sockets_alone_are_enough() {
    if !as_root() || !common::require_tool("setpriv") {
        return;
    }
    let (code, text) = run(Command::new("unshare").args(["-n", "sh", "-c"]).arg(format!(
        "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range && ip link set lo up && exec setpriv {} {} probe 127.0.0.1",
        NOBODY.join(" "),
        common::bin()
    )));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("3 received") && text.contains("socket: dgram"), "{text}");
}

#[test]
fn cap_net_raw_alone_is_enough_and_the_daemon_names_its_socket() {
    if !as_root() || !common::require_tool("setpriv") {
        return;
    }
    let caps = ["--inh-caps=+net_raw", "--ambient-caps=+net_raw"];
    let (code, text) = run(Command::new("unshare").args(["-n", "sh", "-c"]).arg(format!(
        "echo '1 0' > /proc/sys/net/ipv4/ping_group_range && ip link set lo up && exec setpriv {} {} {} probe 127.0.0.1",
        NOBODY.join(" "),
        caps.join(" "),
        common::bin()
    )));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("socket: raw (CAP_NET_RAW)"), "{text}");

    // The daemon as nobody with CAP_NET_RAW: it starts, logs the socket kind, and stops cleanly.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.csv"), common::loopback_inventory(5)).unwrap();
    std::fs::write(
        dir.path().join("diemcau.toml"),
        "[web]\nlisten_address = \"127.0.0.1:0\"\n[inventory]\nfiles = [\"inventory.csv\"]\n[store]\npath = \"data/diemcau.db\"\n",
    )
    .unwrap();
    // nobody must be able to write the ledger directory.
    std::fs::create_dir(dir.path().join("data")).unwrap();
    nix::unistd::chown(&dir.path().join("data"), Some(65534.into()), Some(65534.into())).unwrap();
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    let (code, text) = run(Command::new("unshare").args(["-n", "sh", "-c"]).arg(format!(
        "echo '1 0' > /proc/sys/net/ipv4/ping_group_range && ip link set lo up && \
         exec timeout -s TERM 4 setpriv {} {} {} run --config {}",
        NOBODY.join(" "),
        caps.join(" "),
        common::bin(),
        dir.path().join("diemcau.toml").display()
    )));
    assert!(
        text.contains("ICMP socket open") && text.contains("raw (CAP_NET_RAW)"),
        "{text}"
    );
    assert!(text.contains("stopped"), "exit {code}: {text}");
}
