use super::basic_auth::Access;
use super::basic_auth::{ct_eq, decode_base64};
use super::*;

const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn b64(s: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn err(text: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "web.yml", text);
    match WebSecurity::load(&p) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string().replace(&p.display().to_string(), "FILE"),
    }
}

#[test]
fn base64_decoding() {
    assert_eq!(decode_base64(b"").as_deref(), Some(&b""[..]));
    assert_eq!(decode_base64(b"Zg==").as_deref(), Some(&b"f"[..]));
    assert_eq!(decode_base64(b"Zm8=").as_deref(), Some(&b"fo"[..]));
    assert_eq!(decode_base64(b"Zm9v").as_deref(), Some(&b"foo"[..]));
    assert_eq!(decode_base64(b"Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
    assert_eq!(decode_base64(b"+/+/").as_deref(), Some(&[0xfb, 0xff, 0xbf][..]));
    for bad in [&b"Zm9"[..], b"Zg=", b"Z===", b"Zg==Zg==", b"Zm9v!A==", b"Zm-_", b"Zg=a"] {
        assert_eq!(decode_base64(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
    for s in [&b"a"[..], b"ab", b"abc", b"user:p\xc3\xa1ss", &[0, 255, 128, 7]] {
        assert_eq!(decode_base64(b64(s).as_bytes()).as_deref(), Some(s));
    }
}

#[test]
fn basic_header_decoding() {
    let good = format!("Basic {}", b64(b"admin:s3cr:et"));
    assert_eq!(
        decode_basic(good.as_bytes()),
        Some((b"admin".to_vec(), b"s3cr:et".to_vec()))
    );
    let lower = format!("basic  {} ", b64(b"admin:"));
    assert_eq!(decode_basic(lower.as_bytes()), Some((b"admin".to_vec(), Vec::new())));
    assert_eq!(decode_basic(b"Basic not*base64"), None);
    assert_eq!(decode_basic(format!("Basic {}", b64(b"nocolon")).as_bytes()), None);
    assert_eq!(decode_basic(format!("Basic {}", b64(b":password")).as_bytes()), None);
    assert_eq!(decode_basic(format!("Bearer {}", b64(b"a:b")).as_bytes()), None);
    assert_eq!(decode_basic(b"Basic"), None);
    assert_eq!(decode_basic(b""), None);
}

#[test]
fn constant_time_eq() {
    assert!(ct_eq(b"abc", b"abc"));
    assert!(ct_eq(b"", b""));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
    assert!(!ct_eq(b"", b"\0"));
}

#[test]
fn node_exporter_style_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("pw", 4).expect("hash");
    let text = format!(
        "# node_exporter web-config.yml\n\
         tls_server_config:\n\
         http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    \
         Strict-Transport-Security: max-age=31536000; includeSubDomains\n    X-XSS-Protection: \"\"\n\
         rate_limit:\n  interval: 0s\n  burst: 10\n\
         basic_auth_users:\n  prometheus: {hash}\n  alice: '{}'\n",
        hash.replacen("$2b$", "$2y$", 1)
    );
    let p = write(dir.path(), "web-config.yml", &text);
    let sec = WebSecurity::load(&p).expect("loads");
    assert!(sec.tls_acceptor().is_none());
    assert!(sec.auth_required());
    assert_eq!(sec.summary(), "plain HTTP, Basic authentication for 2 users");
    let headers: Vec<(String, String)> = sec
        .response_headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    assert_eq!(
        headers,
        [
            (
                "strict-transport-security".to_owned(),
                "max-age=31536000; includeSubDomains".to_owned()
            ),
            ("x-frame-options".to_owned(), "deny".to_owned())
        ]
    );
}

#[test]
fn empty_file_means_no_security() {
    let dir = tempfile::tempdir().expect("tempdir");
    for text in ["", "# nothing yet\n", "{}\n"] {
        let sec = WebSecurity::load(&write(dir.path(), "w.yml", text)).expect("loads");
        assert!(!sec.auth_required() && sec.tls_acceptor().is_none());
    }
    assert!(!WebSecurity::none().auth_required());
}

#[tokio::test]
async fn authorize_checks_hash_and_caches() {
    let dir = tempfile::tempdir().expect("tempdir");
    // $2y$ as htpasswd writes it: the same algorithm as $2b$.
    let hash = bcrypt::hash("right", 4).expect("hash").replacen("$2b$", "$2y$", 1);
    let p = write(dir.path(), "w.yml", &format!("basic_auth_users:\n  scraper: {hash}\n"));
    let sec = WebSecurity::load(&p).expect("loads");
    let header = |u: &str, pw: &str| HeaderValue::from_str(&format!("Basic {}", b64(format!("{u}:{pw}").as_bytes())));
    let ok = header("scraper", "right").expect("value");
    assert!(!sec.authorize(None).await);
    assert!(!sec.authorize(Some(&header("scraper", "wrong").expect("v"))).await);
    assert!(!sec.authorize(Some(&header("other", "right").expect("v"))).await);
    assert!(!sec.authorize(Some(&HeaderValue::from_static("Basic !!!!"))).await);
    assert!(sec.authorize(Some(&ok)).await);
    assert_eq!(sec.cache.lock().map(|c| c.len()).unwrap_or(0), 1);
    assert!(sec.authorize(Some(&ok)).await);
    let long = "x".repeat(73);
    assert!(!sec.authorize(Some(&header("scraper", &long).expect("v"))).await);
    assert!(WebSecurity::none().authorize(None).await);
}

#[test]
fn decoy_hash_is_well_formed() {
    let sec = WebSecurity::build(
        None,
        vec![("u".into(), bcrypt::hash("p", 5).expect("hash"))],
        vec![],
        String::new(),
    );
    assert!(sec.decoy_hash.starts_with("$2b$05$"));
    assert_eq!(bcrypt::verify("fakepassword", &sec.decoy_hash).ok(), Some(false));
}

#[test]
fn misspelt_key_is_rejected_with_a_hint() {
    assert_eq!(
        err("tls_server_config:\n  cert_fle: server.crt\n  key_file: server.key\n"),
        "web config FILE: tls_server_config.cert_fle: unknown key (line 2, column 3); did you mean `cert_file`? \
         Otherwise use one of the exporter-toolkit keys allowed in tls_server_config: cert, key, client_ca, \
         cert_file, key_file, client_auth_type, client_ca_file, client_allowed_sans, min_version, max_version, \
         cipher_suites, curve_preferences, prefer_server_cipher_suites"
    );
    assert_eq!(
        err("basic_auth_user:\n  a: b\n"),
        "web config FILE: basic_auth_user: unknown key (line 1, column 1); did you mean `basic_auth_users`? \
         Otherwise use one of the exporter-toolkit keys allowed at the top level: tls_server_config, \
         http_server_config, rate_limit, basic_auth_users"
    );
    assert!(err("http_server_config:\n  http3: true\n").contains("http_server_config.http3: unknown key (line 2"));
    assert!(err("rate_limit:\n  bursts: 3\n").contains("rate_limit.bursts: unknown key"));
    assert!(err("tls_server_config:\n  zzz: 1\n").contains("remove it or use one of"));
    assert_eq!(
        err("basic_auth_users:\n  a: x\n  a: y\n"),
        "web config FILE: duplicate key `a` at line 3, column 3; keep only one"
    );
    let syntax = err("tls_server_config: [\n");
    assert!(syntax.starts_with("web config FILE: "), "{syntax}");
}

#[test]
fn bad_hashes_are_rejected() {
    assert_eq!(
        err("basic_auth_users:\n  alice: secret\n"),
        "web config FILE: basic_auth_users.alice: not a bcrypt hash (expected 60 characters like $2y$10$…, \
         found 6 characters); put a bcrypt hash there, e.g. the output of htpasswd -nBC 10 \"\" | tr -d ':\\n'"
    );
    let good = bcrypt::hash("pw", 4).expect("hash");
    let e = err(&format!(
        "basic_auth_users:\n  bob: '{}'\n",
        good.replacen("$2b$", "$2c$", 1)
    ));
    assert!(e.contains("basic_auth_users.bob: unsupported bcrypt version"), "{e}");
    let e = err(&format!(
        "basic_auth_users:\n  bob: '{}'\n",
        good.replacen("$04$", "$99$", 1)
    ));
    assert!(e.contains("cost must be two digits between 04 and 31"), "{e}");
    let e = err(&format!("basic_auth_users:\n  bob: '{}!'\n", &good[..59]));
    assert!(e.contains("outside bcrypt's alphabet"), "{e}");
    assert!(!e.contains(&good[7..59]), "the hash is not repeated: {e}");
    assert!(err("basic_auth_users:\n  'a:b': x\n").contains("cannot contain ':'"));
}

#[test]
fn bad_headers_and_values_are_rejected() {
    assert!(
        err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n").contains(
            "http_server_config.headers.X-Frame-Options: invalid value \"allow\"; use one of deny, sameorigin"
        )
    );
    assert!(
        err("http_server_config:\n  headers:\n    Server: diemcau\n")
            .contains("http_server_config.headers.Server: this header cannot be configured")
    );
    assert!(err("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n").contains("cannot read"));
    assert!(err("tls_server_config:\n  cert_file: a\n").contains("tls_server_config.cert_file: cannot read"));
}

#[test]
fn relative_paths_start_at_the_file_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("conf");
    std::fs::create_dir(&sub).expect("mkdir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    write(&sub, "server.crt", &ck.cert.pem());
    write(&sub, "server.key", &ck.signing_key.serialize_pem());
    let p = write(
        &sub,
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let sec = WebSecurity::load(&p).expect("relative paths resolve next to web.yml");
    assert!(sec.tls_acceptor().is_some());
    assert_eq!(sec.summary(), "TLS (TLS12–TLS13), no authentication");
    // The same file elsewhere no longer finds them, and says where it looked.
    let moved = write(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let e = WebSecurity::load(&moved).expect_err("missing").to_string();
    assert!(e.contains(&dir.path().join("server.crt").display().to_string()), "{e}");
    assert!(e.contains("tls_server_config.cert_file"), "{e}");
    // Inline PEM works too.
    let inline = format!(
        "tls_server_config:\n  cert: |\n{}  key: |\n{}  min_version: TLS13\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n  curve_preferences: [CurveP521, X25519]\n  prefer_server_cipher_suites: false\n",
        indent(&ck.cert.pem()),
        indent(&ck.signing_key.serialize_pem())
    );
    let sec = WebSecurity::load(&write(dir.path(), "inline.yml", &inline)).expect("inline");
    assert_eq!(sec.summary(), "TLS (TLS13), no authentication");
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn tls_options_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    write(dir.path(), "s.crt", &ck.cert.pem());
    write(dir.path(), "s.key", &ck.signing_key.serialize_pem());
    let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).expect("cert");
    write(dir.path(), "other.key", &other.signing_key.serialize_pem());
    let base = "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n";
    let load = |extra: &str| {
        let p = write(dir.path(), "w.yml", &format!("{base}{extra}"));
        WebSecurity::load(&p)
            .map(|s| s.summary().to_owned())
            .map_err(|e| e.to_string())
    };
    let e = |extra: &str| load(extra).expect_err("should fail");
    assert!(e("  min_version: TLS14\n").contains("tls_server_config.min_version: unknown TLS version \"TLS14\""));
    assert!(e("  max_version: TLS11\n").contains("rustls speaks TLS 1.2 and 1.3 only"));
    assert!(e("  min_version: TLS13\n  max_version: TLS12\n").contains("above max_version"));
    assert!(e("  client_auth_type: RequireAnyClientCert\n").contains("is refused; use RequireAndVerifyClientCert"));
    assert!(e("  client_auth_type: Sometimes\n").contains("unknown value \"Sometimes\""));
    assert!(e("  client_auth_type: RequireAndVerifyClientCert\n").contains("set client_ca_file"));
    assert!(e("  client_ca_file: s.crt\n").contains("NoClientCert"));
    assert!(e("  client_allowed_sans: [a]\n").contains("needs client_auth_type: RequireAndVerifyClientCert"));
    assert!(e("  cipher_suites: [TLS_FAKE]\n").contains("unknown cipher suite \"TLS_FAKE\""));
    assert!(e("  curve_preferences: [CurveP521]\n").contains("add X25519"));
    assert!(e("  curve_preferences: [P-256]\n").contains("unknown curve"));
    assert!(e("  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n  max_version: TLS12\n").contains("offered by rustls"));
    assert!(e("  cert: inline\n").contains("both cert_file and cert are set"));
    let mismatch = write(
        dir.path(),
        "w.yml",
        "tls_server_config:\n  cert_file: s.crt\n  key_file: other.key\n",
    );
    let m = WebSecurity::load(&mismatch).expect_err("mismatch").to_string();
    assert!(
        m.contains("tls_server_config.key_file") && m.contains("belongs to the certificate"),
        "{m}"
    );

    assert_eq!(
        load("  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n").as_deref(),
        Ok("TLS (TLS13), no authentication")
    );
    assert_eq!(
        load("  min_version: TLS10\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n").as_deref(),
        Ok("TLS (TLS12–TLS13), no authentication")
    );
    assert_eq!(
        load("  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: s.crt\n").as_deref(),
        Ok("TLS (TLS12–TLS13, client certificates verified if given), no authentication")
    );
    assert_eq!(
        load("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: s.crt\n  client_allowed_sans: [a.b]\n")
            .as_deref(),
        Ok("TLS (TLS12–TLS13, client certificates required with an allowed SAN), no authentication")
    );
    // Only a version and no certificate: plain HTTP, as in the toolkit.
    let p = write(dir.path(), "w.yml", "tls_server_config:\n  min_version: TLS13\n");
    assert!(WebSecurity::load(&p).expect("loads").tls_acceptor().is_none());
}

#[test]
fn unreadable_file_names_the_flag() {
    let e = WebSecurity::load(Path::new("/nonexistent/web.yml"))
        .expect_err("missing")
        .to_string();
    assert!(e.starts_with("web config /nonexistent/web.yml: cannot read it:"), "{e}");
    assert!(e.ends_with("check the path given to --web.config.file"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_passwords_is_answered_busy_and_the_cache_survives_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Cost 10 (~55 ms a check): the 64 requests all arrive while the first checks run.
    let hash = bcrypt::hash("right", 10).expect("hash");
    let p = write(dir.path(), "w.yml", &format!("basic_auth_users:\n  scraper: {hash}\n"));
    let sec = std::sync::Arc::new(WebSecurity::load(&p).expect("loads"));
    let header = |u: &str, pw: &str| HeaderValue::from_str(&format!("Basic {}", b64(format!("{u}:{pw}").as_bytes())));
    let ok = header("scraper", "right").expect("value");
    assert_eq!(sec.access(Some(&ok), LOCAL).await, Access::Granted);

    // 64 wrong passwords at once: no more than MAX_WAITING_CHECKS wait for bcrypt, the rest
    // are told "busy" at once; none is granted.
    let flood: Vec<_> = (0..64)
        .map(|i| {
            let (sec, h) = (sec.clone(), header("scraper", &format!("wrong{i}")).expect("v"));
            tokio::spawn(async move { sec.access(Some(&h), LOCAL).await })
        })
        .collect();
    // Meanwhile the scraper, already verified once, is let in from the cache.
    assert_eq!(sec.access(Some(&ok), LOCAL).await, Access::Granted);
    let mut seen = std::collections::HashMap::new();
    for t in flood {
        *seen.entry(t.await.expect("join")).or_insert(0) += 1;
    }
    println!("64 wrong passwords at once: {seen:?}");
    assert_eq!(seen.get(&Access::Granted), None);
    let refused_at_once = seen
        .iter()
        .filter(|(a, _)| matches!(a, Access::Busy | Access::Backoff(_)))
        .map(|(_, n)| n)
        .sum::<usize>();
    assert!(refused_at_once > 0, "{seen:?}");
    assert!(seen.get(&Access::Denied).copied().unwrap_or(0) >= 1, "{seen:?}");

    // A reload with the same users keeps the verified pairs; a changed user list does not.
    let same = WebSecurity::load(&p).expect("loads").with_cache_of(&sec);
    assert_eq!(same.cache.lock().map(|c| c.len()).unwrap_or(0), 1);
    assert_eq!(same.access(Some(&ok), LOCAL).await, Access::Granted);
    let other_hash = bcrypt::hash("new", 4).expect("hash");
    let q = write(
        dir.path(),
        "v.yml",
        &format!("basic_auth_users:\n  scraper: {other_hash}\n"),
    );
    let changed = WebSecurity::load(&q).expect("loads").with_cache_of(&sec);
    assert_eq!(changed.cache.lock().map(|c| c.len()).unwrap_or(0), 0);
    let elsewhere = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(changed.access(Some(&ok), elsewhere).await, Access::Denied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_failing_waits_and_others_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("right", 4).expect("hash");
    let p = write(dir.path(), "w.yml", &format!("basic_auth_users:\n  scraper: {hash}\n"));
    let sec = WebSecurity::load(&p).expect("loads");
    let header = |pw: &str| HeaderValue::from_str(&format!("Basic {}", b64(format!("scraper:{pw}").as_bytes())));
    let (ok, wrong) = (header("right").expect("v"), header("wrong").expect("v"));
    let attacker: std::net::IpAddr = "192.0.2.66".parse().expect("ip");
    let shared = LOCAL;
    // The scraper behind the attacker's address has logged in once: its pair is remembered.
    assert_eq!(sec.access(Some(&ok), shared).await, Access::Granted);
    let mut answers = Vec::new();
    for _ in 0..12 {
        answers.push(sec.access(Some(&wrong), attacker).await);
        answers.push(sec.access(Some(&wrong), shared).await);
    }
    let waits = |from: usize| {
        answers
            .iter()
            .skip(from)
            .step_by(2)
            .filter(|a| matches!(a, Access::Backoff(_)))
            .count()
    };
    // The free failures and the one that starts the wait are checked; the rest wait.
    assert_eq!(waits(0), 12 - super::backoff::FREE_FAILURES as usize - 1, "{answers:?}");
    assert_eq!(waits(1), 12 - super::backoff::FREE_FAILURES as usize - 1, "{answers:?}");
    // A waiting client's new guesses are refused without a check…
    let guess = header("guess").expect("v");
    assert!(matches!(sec.access(Some(&guess), attacker).await, Access::Backoff(_)));
    // …but a pair already verified is let in: the scraper sharing an address keeps working.
    assert_eq!(sec.access(Some(&ok), shared).await, Access::Granted);
    // The backoff survives a reload.
    let reloaded = WebSecurity::load(&p).expect("loads").with_cache_of(&sec);
    assert!(matches!(
        reloaded.access(Some(&guess), attacker).await,
        Access::Backoff(_)
    ));
    // Another client's first login is checked as usual.
    let other: std::net::IpAddr = "2001:db8::5".parse().expect("ip");
    assert_eq!(sec.access(Some(&ok), other).await, Access::Granted);
}
