//! A private PostgreSQL cluster for one test: `initdb` and `pg_ctl` in a temporary directory,
//! listening only on a Unix socket there (no TCP at all), trust authentication for the user
//! `diemcau`. As root, the server runs as `nobody` (PostgreSQL refuses root), through setpriv.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Postgres {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
}

/// The directory of `initdb` and `pg_ctl` (Debian keeps them out of PATH), if installed.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

const NOBODY: u32 = 65534;

impl Postgres {
    /// Starts a fresh cluster; `None` (a skip) when PostgreSQL is not installed outside CI.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = server_bin() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is required in CI: apt-get install postgresql (see scripts/test)"
            );
            eprintln!("SKIPPED: PostgreSQL (initdb, pg_ctl) is not installed");
            return None;
        };
        if !super::require_tool("psql") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).expect("chown the cluster dir");
        }
        let pg = Postgres { dir, bin };
        std::fs::create_dir(pg.socket_dir()).expect("socket dir");
        if is_root() {
            std::os::unix::fs::chown(pg.socket_dir(), Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "diemcau",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        pg.start_server();
        Some(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The connection string for `[store] url`.
    pub fn url(&self) -> String {
        format!("host={} user=diemcau dbname=postgres", self.socket_dir().display())
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_server(&self) {
        self.pg_ctl_start("''", "", None);
    }

    /// `pg_ctl start` listening on `listen` (and the Unix socket) with `extra` server options,
    /// inside the network namespace of `netns` when given (as root: the same user namespace).
    fn pg_ctl_start(&self, listen: &str, extra: &str, netns: Option<u32>) {
        let opts = format!(
            "-c listen_addresses={listen} -k {} -c fsync=off -c max_connections=40 {extra}",
            self.socket_dir().display()
        );
        let log = self.dir.path().join("server.log");
        let mut cmd = match netns {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", &pid.to_string(), "-n"]);
                c.args([
                    "setpriv",
                    "--reuid",
                    "65534",
                    "--regid",
                    "65534",
                    "--clear-groups",
                    "--",
                ]);
                c.arg(self.bin.join("pg_ctl"));
                c
            }
            None => self.command("pg_ctl"),
        };
        cmd.args(["-D", path(&self.data_dir()), "-l", path(&log), "-o", &opts])
            .args(["-w", "-t", "60", "start"]);
        self.checked(cmd, &format!("pg_ctl start (namespace of {netns:?})"), Some(&log));
    }

    /// Restarts the server inside the network namespace of `pid` (a daemon's), serving TLS on
    /// 127.0.0.1:5432 there with the given certificate and key, beside its Unix socket; TCP
    /// without TLS is refused (`hostssl` only). False (a skip) when `pid` has a user namespace
    /// of its own (a non-root run: PostgreSQL would run as its root, which it refuses).
    pub fn serve_tls_in(&self, pid: u32, cert_pem: &str, key_pem: &str) -> bool {
        if !is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "serving PostgreSQL inside a daemon's namespace needs root (CI runs as root)"
            );
            eprintln!("SKIPPED: PostgreSQL inside a daemon's namespace needs root");
            return false;
        }
        let data = self.data_dir();
        for (name, text, mode) in [("server.crt", cert_pem, 0o644), ("server.key", key_pem, 0o600)] {
            let file = data.join(name);
            std::fs::write(&file, text).expect("write a TLS file");
            std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).expect("chown a TLS file");
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(mode)).expect("chmod");
        }
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        self.stop_server();
        self.pg_ctl_start("127.0.0.1", "-c ssl=on", Some(pid));
        true
    }

    /// Stops the server (fast: open connections are cut).
    pub fn stop_server(&self) {
        self.run(
            "pg_ctl",
            &["-D", path(&self.data_dir()), "-m", "fast", "-w", "-t", "60", "stop"],
        );
    }

    /// Runs one SQL statement with psql; the rows, `|`-separated, one per line.
    pub fn query(&self, sql: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("psql")
                .args(["-h", path(&self.socket_dir()), "-U", "diemcau", "-d", "postgres"])
                .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
                .output()
                .expect("run psql");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).trim_end().to_string();
            }
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(Instant::now() < deadline, "psql {sql:?} failed: {err}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `tool` of the server's bin directory, as `nobody` when we are root.
    fn command(&self, tool: &str) -> Command {
        if is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "--"]);
            c.arg(self.bin.join(tool));
            c
        } else {
            Command::new(self.bin.join(tool))
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let mut cmd = self.command(tool);
        cmd.args(args);
        self.checked(cmd, &format!("{tool} {args:?}"), None);
    }

    /// Runs `cmd` in the cluster's directory and asserts that it succeeded, showing its output
    /// and the server `log` when given.
    fn checked(&self, mut cmd: Command, what: &str, log: Option<&Path>) {
        let out = cmd
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{what} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log.and_then(|l| std::fs::read_to_string(l).ok()).unwrap_or_default()
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", path(&self.data_dir()), "-m", "immediate", "stop"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// Waits until `d`'s shipper has nothing left to ship and its last round succeeded.
pub fn shipped(d: &mut super::Daemon, what: &str) {
    d.wait_until(Duration::from_secs(60), what, |d| {
        let m = d.metrics();
        m.value("diemcau_store_replica_backlog_rows", &[]) == Some(0.0)
            && m.value("diemcau_store_replica_healthy", &[]) == Some(1.0)
    });
}

/// `d`'s ledger id in the shared ledger.
pub fn ledger_source(d: &super::Daemon) -> String {
    let db = d.dir.path().join("data").join("diemcau.db");
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    conn.query_row("SELECT value FROM ledger_meta WHERE key = 'source'", [], |r| r.get(0))
        .expect("source")
}

/// `sql` over the local ledger, rows as `|`-joined text like psql's.
pub fn local_rows(d: &super::Daemon, sql: &str) -> String {
    let db = d.dir.path().join("data").join("diemcau.db");
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let mut st = conn.prepare(sql).expect("prepare");
    let n = st.column_count();
    let rows = st
        .query_map([], |r| {
            let cells: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i).expect("cell") {
                    rusqlite::types::ValueRef::Null => String::new(),
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    v => v.as_str().unwrap_or_default().to_string(),
                })
                .collect();
            Ok(cells.join("|"))
        })
        .expect("query");
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}
