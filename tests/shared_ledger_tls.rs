//! The shared ledger over TLS, and a shipper that follows its ledger file: a real PostgreSQL
//! serving TLS inside the daemon's own network namespace (127.0.0.1:5432, `hostssl` only),
//! with a certificate signed by the test's CA. The daemon verifies the server against
//! `[store] ca_file`; a CA that did not sign it, and a plain connection, are refused with an
//! error that says why. A deleted ledger file, restored by the writer, is followed by the
//! shipper (which would otherwise read the deleted file's outbox forever and ship nothing).
//! The path to the database cut for a minute, and a database restart, both while endpoints
//! flap, lose nothing and keep the order.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::Daemon;
use common::postgres::{Postgres, ledger_source, local_rows, shipped};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA: its PEM and what signs with it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("CA");
    (cert.pem(), Issuer::new(params, key))
}

/// The database server's certificate (for 127.0.0.1 and localhost) and key.
fn server_cert(issuer: &Issuer<'static, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("params")
        .signed_by(&key, issuer)
        .expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// A CA file in `dir`, and the certificate and key of a server it signed.
fn pki(dir: &Path) -> (std::path::PathBuf, String, String) {
    let (ca_pem, issuer) = ca("diemcau test database CA");
    let (cert_pem, key_pem) = server_cert(&issuer);
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write the CA");
    (ca_file, cert_pem, key_pem)
}

fn config(url: &str, ca_file: &Path) -> String {
    format!(
        "{}[vantage]\nname = \"vnpt-hanoi\"\n[store]\nurl = \"{url}\"\nca_file = \"{}\"\nheartbeat = \"1s\"\n",
        common::fast_config("1s", 2, 1),
        ca_file.display()
    )
}

const TLS_URL: &str = "host=127.0.0.1 port=5432 user=diemcau dbname=postgres sslmode=verify-full";

/// `diemcau report sla` over this month, with `config` and the ledger of `d`, inside the
/// network namespace of `d`.
fn report_in(d: &Daemon, dir: &Path, config: &str) -> Output {
    let file = dir.join("report.toml");
    let ledger = d.dir.path().join("data").join("diemcau.db");
    let config = config
        .replace("{port}", "0")
        .replace("[store]\n", &format!("[store]\npath = \"{}\"\n", ledger.display()));
    std::fs::write(&file, config).expect("write a config");
    std::fs::write(dir.join("inventory.csv"), inventory()).expect("write the inventory");
    let month = jiff::Zoned::now().strftime("%Y-%m").to_string();
    Command::new("nsenter")
        .args([
            "-t",
            &d.child.id().to_string(),
            "-n",
            common::bin(),
            "report",
            "sla",
            "--config",
        ])
        .arg(&file)
        .args(["--period", &month, "--format", "json"])
        .output()
        .expect("run the report")
}

fn inventory() -> String {
    inventory_of(1)
}

fn inventory_of(n: usize) -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    for i in 1..=n {
        s.push_str(&format!("P{i},Tỉnh Lào Cai,,Xã Bản {i},VNPT,127.0.1.{i}\n"));
    }
    s
}

#[test]
fn the_shared_ledger_over_verified_tls_and_a_restored_ledger_file() {
    let Some(pg) = Postgres::start() else { return };
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let (ca_file, cert_pem, key_pem) = pki(pki_dir.path());
    let (other_ca_pem, _) = ca("a CA that signed nothing here");
    let other_ca_file = pki_dir.path().join("other-ca.pem");
    std::fs::write(&other_ca_file, &other_ca_pem).expect("write the other CA");

    let mut d = Daemon::start(&config(TLS_URL, &ca_file), &inventory());
    if !pg.serve_tls_in(d.child.id(), &cert_pem, &key_pem) {
        return;
    }
    shipped(&mut d, "the first shipment over TLS");
    let source = ledger_source(&d);
    assert_eq!(
        pg.query(&format!("SELECT vantage FROM sources WHERE source = '{source}'")),
        "vnpt-hanoi"
    );
    let encrypted = pg.query(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.client_addr = '127.0.0.1' AND s.ssl",
    );
    assert_ne!(encrypted, "0", "the shipper's connection is encrypted");

    // The merged report reads the shared ledger over TLS too; a CA that did not sign the
    // server's certificate, and a plain connection, are refused with the reason.
    let ok = report_in(&d, pki_dir.path(), &config(TLS_URL, &ca_file));
    assert!(
        ok.status.success(),
        "report over TLS: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let wrong = report_in(&d, pki_dir.path(), &config(TLS_URL, &other_ca_file));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && err.contains("UnknownIssuer"),
        "a foreign CA: {err}"
    );
    let plain = format!(
        "{}[store]\nurl = \"host=127.0.0.1 port=5432 user=diemcau dbname=postgres sslmode=disable\"\n",
        common::fast_config("1s", 2, 1)
    );
    let refused = report_in(&d, pki_dir.path(), &plain);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("no encryption"),
        "plain TCP: {err}"
    );

    // The ledger file is deleted under the running daemon: the writer puts a complete copy
    // back, and the shipper follows it to the new file and goes on shipping.
    let db = d.dir.path().join("data").join("diemcau.db");
    let shipped_before: i64 = pg
        .query(&format!("SELECT max(last_seen_ms) FROM runs WHERE source = '{source}'"))
        .parse()
        .expect("last_seen_ms");
    std::fs::remove_file(&db).expect("delete the ledger");
    d.wait_until(Duration::from_secs(30), "the ledger restored", |d| {
        d.metrics().value("diemcau_store_file_replaced_total", &[]) == Some(1.0) && db.exists()
    });
    let restored_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    d.wait_until(
        Duration::from_secs(60),
        "heartbeats shipped from the restored file",
        |_| {
            pg.query(&format!("SELECT max(last_seen_ms) FROM runs WHERE source = '{source}'"))
                .parse::<i64>()
                .is_ok_and(|ms| ms > restored_ms + 3_000)
        },
    );
    assert!(shipped_before < restored_ms);
    assert_eq!(ledger_source(&d), source, "the restored copy is the same ledger");
    let log = d.stop();
    assert!(log.contains("the shipper reopens it"), "{}", common::tail(&log, 20));
}

/// Every transition and outage of `d`'s ledger is in the shared one, same ids, same order.
fn nothing_lost(pg: &Postgres, d: &Daemon, when: &str) -> usize {
    let src = ledger_source(d);
    let transitions = "SELECT id, run_id, endpoint, from_state, to_state, at_ms FROM transitions";
    let outages = "SELECT id, endpoint, start_ms, end_ms, end_reason FROM outages";
    let mut rows = 0;
    for (what, sql) in [("transitions", transitions), ("outages", outages)] {
        let mine = local_rows(d, &format!("{sql} ORDER BY id"));
        let shared = pg.query(&format!("{sql} WHERE source = '{src}' ORDER BY id"));
        assert_eq!(shared, mine, "{what} {when}");
        rows += mine.lines().count();
    }
    rows
}

/// Endpoints 1–8 of `d` lose their echo requests and get them back every 3 s, for `seconds`;
/// `midway` runs once halfway through.
fn flap(d: &Daemon, seconds: u64, midway: impl FnOnce()) {
    let mut midway = Some(midway);
    for k in 0..seconds / 3 {
        let rule = if k % 2 == 0 {
            "ip daddr 127.0.1.1-127.0.1.8 icmp type echo-request drop"
        } else {
            ""
        };
        common::output_rule_in(d.child.id(), "flap", rule);
        if k == seconds / 6
            && let Some(f) = midway.take()
        {
            f();
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    common::output_rule_in(d.child.id(), "flap", "");
}

#[test]
fn a_minute_cut_off_from_the_database_and_a_restart_under_load_lose_nothing() {
    let Some(pg) = Postgres::start() else { return };
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let (ca_file, cert_pem, key_pem) = pki(pki_dir.path());
    let mut d = Daemon::start(&config(TLS_URL, &ca_file), &inventory_of(10));
    if !pg.serve_tls_in(d.child.id(), &cert_pem, &key_pem) {
        return;
    }
    shipped(&mut d, "the first shipment");

    // The path to the database is cut (packets dropped, connections hang) for a minute while
    // endpoints flap: the records wait in the outbox.
    common::output_rule_in(d.child.id(), "db", "tcp dport 5432 drop");
    flap(&d, 60, || {});
    let m = d.metrics();
    assert_eq!(
        m.value("diemcau_store_replica_healthy", &[]),
        Some(0.0),
        "unhealthy while cut off"
    );
    let waiting = m.value("diemcau_store_replica_backlog_rows", &[]).unwrap_or(0.0);
    assert!(waiting > 0.0, "the outbox holds the minute's rows");
    common::output_rule_in(d.child.id(), "db", "");
    shipped(&mut d, "the minute's backlog replayed");
    let after_cut = nothing_lost(&pg, &d, "after a minute cut off");

    // The database restarts while endpoints flap.
    flap(&d, 30, || assert!(pg.serve_tls_in(d.child.id(), &cert_pem, &key_pem)));
    d.wait_until(Duration::from_secs(30), "every endpoint up again", |d| {
        d.metrics()
            .by_endpoint("diemcau_endpoint_up")
            .values()
            .all(|v| *v == 1.0)
    });
    shipped(&mut d, "shipped after the restart");
    let after_restart = nothing_lost(&pg, &d, "after a restart under load");
    assert!(
        after_restart > after_cut && after_cut > 20,
        "rows: {after_cut}, then {after_restart}"
    );
    let log = d.stop();
    assert!(
        log.contains("shared ledger unreachable or failing"),
        "{}",
        common::tail(&log, 20)
    );
}
