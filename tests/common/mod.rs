//! Shared test harness: run the real `diemcau` binary in private network namespaces, reach its
//! web port from the test, apply nftables rules inside its namespace.
#![allow(dead_code)]

pub mod postgres;
pub mod topology;
pub mod trace;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_diemcau")
}

/// True when the tool exists. Missing tools fail the test in CI (CI=true) and skip it elsewhere.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required in CI: install it (see .ci/run)");
        }
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// The port of the first `web server listening address=…` line of a daemon's log.
pub fn listening_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("web server listening"))?;
    let address = line.split_whitespace().find_map(|w| w.strip_prefix("address="))?;
    address.trim_matches('"').rsplit_once(':')?.1.parse().ok()
}

/// A running daemon in its own network namespace.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The command line after the binary (for [`Daemon::restart`]; empty: not restartable).
    pub args: Vec<std::ffi::OsString>,
}

impl Daemon {
    /// Writes `config` (with `{port}` replaced) and `inventory.csv`, starts the daemon and waits
    /// until it answers /-/healthy.
    pub fn start(config: &str, inventory: &str) -> Daemon {
        Self::spawn(config, inventory, None)
    }

    /// Like [`Daemon::start`], but through `diemcau demo`: the endpoint emulator answers for the
    /// inventory's addresses according to `scenario` and writes its ground truth to
    /// [`Daemon::truth_path`] when the daemon stops.
    pub fn start_with_lab(config: &str, inventory: &str, scenario: &str) -> Daemon {
        Self::spawn(config, inventory, Some(scenario))
    }

    pub fn truth_path(&self) -> PathBuf {
        self.dir.path().join("truth.jsonl")
    }

    fn spawn(config: &str, inventory: &str, scenario: Option<&str>) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        // Port 0: the daemon binds a free port itself and logs it. Picking one here and
        // passing it on raced with other tests' daemons (one bound it first, answered our
        // health check, and ours exited with "Address already in use").
        let config = config.replace("{port}", "0");
        std::fs::write(dir.path().join("diemcau.toml"), config).unwrap();
        std::fs::write(dir.path().join("inventory.csv"), inventory).unwrap();
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        let config = dir.path().join("diemcau.toml").into_os_string();
        match scenario {
            None => args.extend(["run".into(), "--private-netns".into(), "--config".into(), config]),
            Some(s) => {
                std::fs::write(dir.path().join("scenario.toml"), s).unwrap();
                args.extend(["demo".into(), "--config".into(), config]);
                args.extend(["--scenario".into(), dir.path().join("scenario.toml").into_os_string()]);
                args.extend(["--truth".into(), dir.path().join("truth.jsonl").into_os_string()]);
            }
        }
        args.extend(["--log.level".into(), "info".into()]);
        let child = Self::launch(dir.path(), &args);
        let mut d = Daemon {
            child,
            port: 0,
            dir,
            args,
        };
        d.wait_listening();
        d
    }

    fn launch(dir: &Path, args: &[std::ffi::OsString]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("daemon.log"))
            .unwrap();
        Command::new(bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn diemcau")
    }

    /// Starts the daemon again on the same files (config, inventory, ledger) after
    /// [`Daemon::stop`]; the log goes on in the same file.
    pub fn restart(&mut self) {
        let before = self.log().len();
        self.child = Self::launch(self.dir.path(), &self.args);
        self.port = 0;
        self.wait_until(
            Duration::from_secs(20),
            "the restarted web server's address in the log",
            |d| {
                d.port = listening_port(d.log().get(before..).unwrap_or("")).unwrap_or(0);
                d.port != 0
            },
        );
        self.wait_until(Duration::from_secs(20), "the web port to answer", |d| {
            d.get("/-/healthy").0 == 200
        });
    }

    fn wait_listening(&mut self) {
        let d = self;
        d.wait_until(Duration::from_secs(20), "the web server's address in the log", |d| {
            d.port = listening_port(&d.log()).unwrap_or(0);
            d.port != 0
        });
        d.wait_until(Duration::from_secs(20), "the web port to answer", |d| {
            d.get("/-/healthy").0 == 200
        });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, &[])
    }

    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "GET /metrics");
        Metrics(body)
    }

    /// Polls `cond` every 200 ms; panics with the daemon's log if it stays false.
    pub fn wait_until(&mut self, limit: Duration, what: &str, mut cond: impl FnMut(&mut Daemon) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if cond(self) {
                return start.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "diemcau exited ({status}) while waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            if start.elapsed() > limit {
                panic!(
                    "timed out after {limit:?} waiting for {what}; log tail:\n{}",
                    tail(&self.log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs an nftables script inside the daemon's network namespace.
    pub fn nft(&self, script: &str) {
        nft_in(self.child.id(), script);
    }

    /// SIGTERM, then waits for a clean exit; returns the log. The work directory stays until
    /// the `Daemon` is dropped, so files the daemon wrote at exit can still be read.
    pub fn stop(&mut self) -> String {
        let status = terminate(&mut self.child, Duration::from_secs(10));
        assert!(
            status.success(),
            "diemcau did not exit cleanly on SIGTERM: {status}\n{}",
            self.log()
        );
        // A thread that panics does not change the exit status: its message is the only trace.
        let log = self.log();
        assert!(
            !log.contains("panicked at"),
            "a thread of diemcau panicked:\n{}",
            tail(&log, 40)
        );
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an nftables script in the network namespace of `pid` (entering its user namespace too
/// when it has its own), and asserts that nft accepted it.
pub fn nft_in(pid: u32, script: &str) {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-n"]);
    if !same_user_namespace(pid) {
        cmd.args(["-U", "--preserve-credentials"]);
    }
    let mut child = cmd
        .args(["nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn nsenter nft");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write nft script");
    assert!(child.wait().expect("wait nft").success(), "nft failed:\n{script}");
}

/// Replaces the nftables table `name` in the namespace of `pid` with one output-hook chain
/// holding `rule` (empty: no rule, nothing dropped).
pub fn output_rule_in(pid: u32, name: &str, rule: &str) {
    nft_in(
        pid,
        &format!(
            "table inet {name}\ndelete table inet {name}\ntable inet {name} {{\n chain out {{\n  type filter hook output priority 0;\n  {rule}\n }}\n}}\n"
        ),
    );
}

/// Runs `ip ARGS` in the network namespace of `pid` (entering its user namespace too when it has
/// its own), and asserts that it succeeded.
pub fn ip_in(pid: u32, args: &[&str]) {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-n"]);
    if !same_user_namespace(pid) {
        cmd.args(["-U", "--preserve-credentials"]);
    }
    let status = cmd.arg("ip").args(args).status().expect("spawn nsenter ip");
    assert!(status.success(), "`ip {}` failed: {status}", args.join(" "));
}

/// Makes every address of the IPv6 `prefix` local to the loopback device in the network
/// namespace of `pid`, as 127.0.0.0/8 is for IPv4: the kernel there answers echo requests and
/// TCP connects for all of them, and nothing leaves the namespace.
pub fn ipv6_loopback_prefix(pid: u32, prefix: &str) {
    ip_in(pid, &["-6", "route", "add", "local", prefix, "dev", "lo"]);
}

fn same_user_namespace(pid: u32) -> bool {
    let ours = std::fs::read_link("/proc/self/ns/user").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).ok();
    ours == theirs
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// A minimal HTTP/1.1 client: one request per connection, body read to the end.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(_) => return (0, String::new()),
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (status, String::new());
    };
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A scrape, with lookups by metric name and label matchers.
pub struct Metrics(pub String);

impl Metrics {
    /// Values of every series of `name` whose label set contains all `matchers` (`k="v"`).
    pub fn values(&self, name: &str, matchers: &[&str]) -> Vec<f64> {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (n, labels) = series.split_once('{').unwrap_or((series, ""));
                (n == name && matchers.iter().all(|m| labels.contains(m))).then(|| value.parse().ok())?
            })
            .collect()
    }

    pub fn value(&self, name: &str, matchers: &[&str]) -> Option<f64> {
        self.values(name, matchers).first().copied()
    }

    /// Every series of `name`, keyed by its `endpoint` label (one pass over the scrape).
    pub fn by_endpoint(&self, name: &str) -> std::collections::HashMap<String, f64> {
        let prefix = format!("{name}{{endpoint=\"");
        self.0
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(&prefix)?;
                let (id, _) = rest.split_once('"')?;
                let value = l.rsplit_once(' ')?.1.parse().ok()?;
                Some((id.to_string(), value))
            })
            .collect()
    }

    pub fn sum(&self, name: &str, matchers: &[&str]) -> f64 {
        self.values(name, matchers).iter().sum()
    }
}

/// Inventory lines `id,province,district,commune,carrier,address` for `n` loopback endpoints
/// starting at 127.1.0.1, ids `E00000`…
pub fn loopback_inventory(n: usize) -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    for i in 0..n {
        let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(127, 1, 0, 1)) + i as u32);
        let (province, district, commune) = match i % 3 {
            0 => (
                "Thành phố Hồ Chí Minh",
                "Thành phố Thủ Đức",
                format!("Phường Cát Lái {i}"),
            ),
            1 => ("Thành phố Hà Nội", "Quận Ba Đình", format!("Phường Phúc Xá {i}")),
            _ => ("Tỉnh Hà Giang", "Huyện Đồng Văn", format!("Xã Lũng Cú {i}")),
        };
        let carrier = if i % 2 == 0 { "VNPT" } else { "Viettel" };
        s.push_str(&format!("E{i:05},{province},{district},{commune},{carrier},{ip}\n"));
    }
    s
}

/// A config for fast tests: one round per `interval`, three packets.
pub fn fast_config(interval: &str, down_after: u32, up_after: u32) -> String {
    format!(
        "[web]\nlisten_address = \"127.0.0.1:{{port}}\"\nenable_lifecycle = true\n[inventory]\nfiles = [\"inventory.csv\"]\n\
         [probe]\ninterval = \"{interval}\"\npackets = 3\npacket_spacing = \"100ms\"\ntimeout = \"500ms\"\n\
         [state]\ndown_after = {down_after}\nup_after = {up_after}\n"
    )
}

pub fn path_of(p: &Path) -> PathBuf {
    p.to_path_buf()
}

/// Re-executes test `test` of the current test binary under `unshare FLAGS` (e.g. `-rm` for a
/// private mount namespace, `-rn` for a network one) with `marker=1` set, so the test can tell
/// its inner run. False when that cannot be done here: skipped locally, a failure in CI.
pub fn rerun_in_namespace(flags: &str, test: &str, marker: &str, tools: &[&str], limit: Duration) -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    for tool in ["unshare"].iter().chain(tools) {
        if !require_tool(tool) {
            return false;
        }
    }
    let usable = Command::new("unshare").args([flags, "true"]).status();
    if !usable.as_ref().is_ok_and(|s| s.success()) {
        assert!(!ci, "CI=true but `unshare {flags}` fails: {usable:?}");
        eprintln!("SKIPPED: `unshare {flags}` unavailable ({usable:?})");
        return false;
    }
    let mut child = Command::new("unshare")
        .arg(flags)
        .arg(std::env::current_exe().expect("current_exe"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(marker, "1")
        .spawn()
        .expect("spawn unshare");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{test} did not finish in {limit:?} inside the namespace");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{test} failed inside the namespace: {status}");
    true
}

/// True inside the private user+network namespace (`marker` set): run the test's body. Outside,
/// re-runs `test` there (see [`rerun_in_namespace`]) and returns false.
pub fn inside_netns(test: &str, marker: &str, tools: &[&str], limit: Duration) -> bool {
    if std::env::var_os(marker).is_some() {
        return true;
    }
    rerun_in_namespace("-rn", test, marker, tools, limit);
    false
}

/// SIGTERM, then waits for the exit (at most `limit`, else panics) and returns its status.
pub fn terminate(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(started.elapsed() < limit, "no clean stop within {limit:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` under `sh -c` with `stdin` fed to it (an nftables script, say); panics if it fails.
pub fn sh(cmd: &str, stdin: &str) {
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let status = child.wait().expect("wait");
    assert!(status.success(), "`{cmd}` failed: {status}");
}
