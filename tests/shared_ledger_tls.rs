//! The shared ledger over TLS, and a shipper that follows its ledger file: a real PostgreSQL
//! serving TLS inside the daemon's own network namespace (127.0.0.1:5432, `hostssl` only),
//! with a certificate signed by the test's CA. The daemon verifies the server against
//! `[store] ca_file`; a CA that did not sign it, and a plain connection, are refused with an
//! error that says why. A deleted ledger file, restored by the writer, is followed by the
//! shipper (which would otherwise read the deleted file's outbox forever and ship nothing).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::Daemon;
use common::postgres::{Postgres, ledger_source, shipped};
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
    "id,province,district,commune,carrier,address\nP1,Tỉnh Lào Cai,,Xã Bản Khoang,VNPT,127.0.1.1\n".to_string()
}

#[test]
fn the_shared_ledger_over_verified_tls_and_a_restored_ledger_file() {
    let Some(pg) = Postgres::start() else { return };
    let pki = tempfile::tempdir().expect("temp dir");
    let (ca_pem, issuer) = ca("diemcau test database CA");
    let (other_ca_pem, _) = ca("a CA that signed nothing here");
    let (cert_pem, key_pem) = server_cert(&issuer);
    let ca_file = pki.path().join("ca.pem");
    let other_ca_file = pki.path().join("other-ca.pem");
    std::fs::write(&ca_file, &ca_pem).expect("write the CA");
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
    let ok = report_in(&d, pki.path(), &config(TLS_URL, &ca_file));
    assert!(
        ok.status.success(),
        "report over TLS: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let wrong = report_in(&d, pki.path(), &config(TLS_URL, &other_ca_file));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && err.contains("UnknownIssuer"),
        "a foreign CA: {err}"
    );
    let plain = format!(
        "{}[store]\nurl = \"host=127.0.0.1 port=5432 user=diemcau dbname=postgres sslmode=disable\"\n",
        common::fast_config("1s", 2, 1)
    );
    let refused = report_in(&d, pki.path(), &plain);
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
