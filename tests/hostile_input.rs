//! Loading what a careless or hostile operator points the daemon at: FIFOs, devices, huge
//! files of misspelt keys, a SIGHUP in the first milliseconds, a reload that meets a FIFO.
//! Each case once hung or killed the daemon; each must now end with a clear error and, for the
//! daemon, keep it running and let it stop cleanly.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, bin, fast_config, http, loopback_inventory, terminate};

/// A hang detector, not a speed target: these commands take milliseconds when they work.
const HANG: Duration = Duration::from_secs(60);

/// Runs `diemcau check --config PATH`, killing it (and failing) if it hangs.
fn check(config: &Path) -> Output {
    let mut child = Command::new(bin())
        .args(["check", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn diemcau check");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("diemcau check {} hung", config.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
}

#[test]
fn fifos_and_devices_are_refused_with_the_place_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.fifo");
    mkfifo(&fifo);
    let out = check(&fifo);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("config.fifo") && err.contains("FIFO"), "{err}");

    for (name, inventory) in [
        ("zero", Path::new("/dev/zero").to_path_buf()),
        ("fifo", {
            let p = dir.path().join("inventory.fifo");
            mkfifo(&p);
            p
        }),
    ] {
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!("[inventory]\nfiles = [{:?}]\n", inventory.display().to_string()),
        )
        .unwrap();
        let out = check(&config);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{name}: {err}");
        assert!(
            err.contains("inventory.files") && err.contains("is not a regular file"),
            "{name}: {err}"
        );
    }
}

#[test]
fn thousands_of_unknown_keys_are_reported_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.csv"), loopback_inventory(2)).unwrap();
    let mut text = String::from("[inventory]\nfiles = [\"inventory.csv\"]\n[probe]\n");
    for i in 0..20_000 {
        text.push_str(&format!("intervall_{i} = 1\n"));
    }
    let config = dir.path().join("diemcau.toml");
    std::fs::write(&config, text).unwrap();
    let out = check(&config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    assert!(err.starts_with("101 problems found:"), "{}", common::tail(&err, 3));
    assert!(
        err.contains("diemcau.toml:4:1: probe.intervall_0: unknown key"),
        "{}",
        &err[..300]
    );
    assert!(
        err.contains("19900 more unknown keys not listed"),
        "{}",
        common::tail(&err, 3)
    );
}

#[test]
fn an_early_sighup_neither_kills_nor_stops_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    std::fs::write(
        dir.path().join("diemcau.toml"),
        fast_config("1s", 3, 2).replace("{port}", &port.to_string()),
    )
    .unwrap();
    std::fs::write(dir.path().join("inventory.csv"), loopback_inventory(50)).unwrap();
    let mut child = Command::new(bin())
        .args(["run", "--private-netns", "--config"])
        .arg(dir.path().join("diemcau.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // No program can ignore a signal before its `main` runs: wait until the process shows that
    // it ignores SIGHUP (bit 0 of SigIgn), then send SIGHUPs until the daemon answers.
    let started = Instant::now();
    let ignores_sighup = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                let mask = s.lines().find_map(|l| l.strip_prefix("SigIgn:"))?.trim().to_string();
                u64::from_str_radix(&mask, 16).ok()
            })
            .is_some_and(|m| m & 1 == 1)
    };
    while !ignores_sighup() {
        assert!(child.try_wait().expect("wait").is_none(), "the daemon exited");
        assert!(
            started.elapsed() < HANG,
            "the daemon never set SIGHUP aside during start-up"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut sent = 0;
    while http(port, "GET", "/-/healthy", &[]).0 != 200 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the daemon died after {sent} SIGHUPs: {:?}",
            child.try_wait()
        );
        assert!(started.elapsed() < HANG, "the daemon never answered");
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
        sent += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    println!("{sent} SIGHUPs during start-up");
    assert!(sent > 0);
    // Once running, a SIGHUP reloads (the config is unchanged) and the daemon stays up.
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http(port, "GET", "/-/healthy", &[]).0, 200);
    let status = terminate(&mut child, HANG);
    assert!(status.success(), "{status}");
}

#[test]
fn a_reload_that_meets_a_fifo_fails_and_the_daemon_still_stops() {
    let mut d = Daemon::start(&fast_config("1s", 3, 2), &loopback_inventory(20));
    let inventory = d.dir.path().join("inventory.csv");
    std::fs::remove_file(&inventory).unwrap();
    mkfifo(&inventory);
    let (status, body) = http(d.port, "POST", "/-/reload", &[]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("is not a regular file"), "{body}");
    let (status, body) = d.get("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("diemcau_config_last_reload_successful 0"));
    assert!(
        body.contains("diemcau_endpoints 20"),
        "the old inventory stays in force"
    );
    d.stop();
}

#[test]
fn reload_over_http_needs_the_lifecycle_api_and_sighup_always_works() {
    let config = fast_config("1s", 3, 2).replace("enable_lifecycle = true\n", "");
    let mut d = Daemon::start(&config, &loopback_inventory(10));
    let (status, body) = http(d.port, "POST", "/-/reload", &[]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("enable_lifecycle"), "{body}");
    // SIGHUP reloads: a changed inventory is applied.
    std::fs::write(d.dir.path().join("inventory.csv"), loopback_inventory(12)).unwrap();
    let pid = nix::unistd::Pid::from_raw(d.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    d.wait_until(HANG, "the SIGHUP reload", |d| {
        d.get("/metrics").1.contains("diemcau_endpoints 12")
    });
    d.stop();
}
