//! The command-line conventions of Prometheus exporters, on the real binary: `--version` with the
//! git revision and compiler, `--config.file` as an alias of `--config`, exit status 78
//! (EX_CONFIG) for an unusable config, repeatable `--web.listen-address`, `--log.format logfmt`
//! (JSON logs are read by tests/ledger_faults.rs), and the generated shell completions and man
//! pages, which must match the copies the Debian package ships (deploy/debian/).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn diemcau(args: &[&str]) -> Output {
    Command::new(common::bin()).args(args).output().expect("run diemcau")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A directory with `diemcau.toml` (`config`) and a two-endpoint loopback `inventory.csv`.
fn config_dir(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.csv"), common::loopback_inventory(2)).unwrap();
    let path = dir.path().join("diemcau.toml");
    std::fs::write(&path, config).unwrap();
    (dir, path)
}

const VALID: &str = "[inventory]\nfiles = [\"inventory.csv\"]\n[store]\npath = \"data/diemcau.db\"\n";
const UNKNOWN_KEY: &str = "[inventory]\nfiles = [\"inventory.csv\"]\n[probe]\nintervall = \"10s\"\n";

#[test]
fn version_names_the_release_the_git_revision_and_the_compiler() {
    let long = diemcau(&["--version"]);
    assert!(long.status.success());
    let long = String::from_utf8(long.stdout).unwrap();
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines[0], format!("diemcau {}", env!("CARGO_PKG_VERSION")), "{long}");
    let revision = lines[1].strip_prefix("revision: ").expect("a revision line");
    assert!(
        revision == "unknown" || (revision.len() >= 7 && revision.chars().all(|c| c.is_ascii_hexdigit())),
        "{long}"
    );
    assert!(lines[2].starts_with("rustc: rustc 1."), "{long}");
    let short = String::from_utf8(diemcau(&["-V"]).stdout).unwrap();
    assert!(
        short.starts_with(&format!(
            "diemcau {} (revision {revision}, rustc 1.",
            env!("CARGO_PKG_VERSION")
        )),
        "{short}"
    );
}

#[test]
fn config_file_is_an_alias_of_config() {
    let (_dir, path) = config_dir(VALID);
    for flag in ["--config", "--config.file", "-c"] {
        let out = diemcau(&["check", flag, path.to_str().unwrap()]);
        assert!(out.status.success(), "check {flag}: {}", text(&out));
        assert!(text(&out).contains("valid, 2 endpoints"), "{}", text(&out));
    }
    let equals = format!("--config.file={}", path.display());
    assert!(diemcau(&["check", &equals]).status.success());
}

#[test]
fn a_bad_config_exits_with_ex_config_from_run_demo_and_check() {
    let (dir, bad) = config_dir(UNKNOWN_KEY);
    let bad = bad.to_str().unwrap();
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap();
    for args in [
        vec!["check", "--config.file", bad],
        vec!["check", "--config", missing],
        vec!["run", "--config.file", bad],
        vec!["run", "--config", missing, "--log.format", "text"],
        vec!["demo", "--config.file", bad],
    ] {
        let out = diemcau(&args);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("problem"), "{args:?}: {}", text(&out));
    }
    // A web config that cannot be used is a config problem too; it is read before any probing.
    let (dir, good) = config_dir(VALID);
    std::fs::write(dir.path().join("web.yml"), "tls_server_config:\n  cert_fil: x\n").unwrap();
    let out = diemcau(&[
        "run",
        "--config.file",
        good.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.config.file",
        dir.path().join("web.yml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("web config"), "{}", text(&out));
    // Usage errors keep clap's 2.
    assert_eq!(diemcau(&["run", "--log.format", "xml"]).status.code(), Some(2));
}

#[test]
fn the_daemon_serves_every_listen_address_and_logs_logfmt() {
    let (dir, config) = config_dir(VALID);
    let (a, b) = (common::free_port(), common::free_port());
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut child = Command::new(common::bin())
        .args(["run", "--private-netns", "--log.format", "logfmt", "--config.file"])
        .arg(&config)
        .args(["--web.listen-address", &format!("127.0.0.1:{a}")])
        .args(["--web.listen-address", &format!("[::1]:{b}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while common::http(a, "GET", "/-/healthy", &[]).0 != 200 {
        assert!(
            child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline,
            "the daemon did not answer on 127.0.0.1:{a}:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let v6 = std::net::TcpStream::connect(("::1", b)).map(|mut s| {
        use std::io::{Read, Write};
        s.write_all(b"GET /-/healthy HTTP/1.0\r\n\r\n").unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    });
    let (_, metrics) = common::http(a, "GET", "/metrics", &[]);
    let status = common::terminate(&mut child, Duration::from_secs(10));
    let log = read_log();
    assert!(status.success(), "{status}: {log}");
    assert!(
        v6.as_ref()
            .is_ok_and(|r| r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200")),
        "{v6:?}"
    );

    let version = String::from_utf8(diemcau(&["--version"]).stdout).unwrap();
    let revision = version.lines().nth(1).unwrap().trim_start_matches("revision: ");
    let info = metrics
        .lines()
        .find(|l| l.starts_with("diemcau_build_info{"))
        .expect("diemcau_build_info");
    assert!(info.contains(&format!("revision=\"{revision}\"")), "{info}");
    assert!(
        info.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    assert!(info.contains("rustversion=\"1.") && info.ends_with("} 1"), "{info}");

    // Every line is logfmt: ts, level, target, then key=value pairs (quoted when needed).
    for line in log.lines() {
        assert!(is_logfmt(line), "not logfmt: {line}\n{log}");
        assert!(
            line.starts_with("ts=") && line.contains(" level=") && line.contains(" target="),
            "{line}"
        );
    }
    for address in [format!("127.0.0.1:{a}"), format!("[::1]:{b}")] {
        assert!(
            log.contains(&format!("msg=\"web server listening\" address={address}")),
            "{log}"
        );
    }
}

/// `key=value( key=value)*`, values bare (no space, quote or `=`) or quoted with escapes.
fn is_logfmt(line: &str) -> bool {
    let mut rest = line;
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { return false };
        let key = &rest[..eq];
        if key.is_empty() || key.contains([' ', '"']) {
            return false;
        }
        rest = &rest[eq + 1..];
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(end) = end else { return false };
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            if rest[..end].contains(['"', '=']) {
                return false;
            }
            rest = &rest[end..];
        }
        if let Some(next) = rest.strip_prefix(' ') {
            rest = next;
        } else if !rest.is_empty() {
            return false;
        }
    }
    true
}

#[test]
fn completions_are_generated_and_match_the_packaged_copies() {
    for (shell, file, marker) in [
        ("bash", "diemcau.bash", "complete -F _diemcau"),
        ("zsh", "_diemcau", "#compdef diemcau"),
        ("fish", "diemcau.fish", "complete -c diemcau"),
    ] {
        let out = diemcau(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains(marker) && script.contains("config.file"),
            "{shell}: {script:.300}"
        );
        let packaged = root().join("deploy/debian/completions").join(file);
        assert_eq!(
            std::fs::read_to_string(&packaged).unwrap_or_default(),
            script,
            "{} is stale: cargo run -- completions {shell} > {}",
            packaged.display(),
            packaged.display()
        );
    }
    // The hidden commands stay out of the user's help.
    let help = String::from_utf8(diemcau(&["--help"]).stdout).unwrap();
    assert!(!help.contains("completions") && !help.contains("\n  man "), "{help}");
}

#[test]
fn man_pages_are_generated_and_match_the_packaged_copies() {
    let out = diemcau(&["man"]);
    assert!(out.status.success(), "{}", text(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(".TH diemcau 1 ") && page.contains("diemcau\\-run(1)"),
        "{page:.600}"
    );
    assert!(page.contains("EX_CONFIG"), "the exit statuses are documented: {page}");

    let dir = tempfile::tempdir().unwrap();
    let out = diemcau(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let packaged = root().join("deploy/debian/man");
    let stale = format!(
        "{} is stale: rm -r {0} && cargo run -- man --out-dir {0}",
        packaged.display()
    );
    assert_eq!(names(dir.path()), names(&packaged), "{stale}");
    assert!(names(dir.path()).contains(&"diemcau-run.1".to_string()));
    for name in names(dir.path()) {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&name)).unwrap(),
            std::fs::read_to_string(packaged.join(&name)).unwrap(),
            "{name}: {stale}"
        );
    }
    assert_eq!(std::fs::read_to_string(packaged.join("diemcau.1")).unwrap(), page);
}
