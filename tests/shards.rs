//! Shards (`[shard]`): two instances with `count = 2` and the same inventory probe disjoint
//! halves that together cover it; with `replicas = 2` each probes all of it. Every instance
//! says which share it probes (`diemcau_shard_info`, a log line).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Daemon;

const N: usize = 40;

fn inventory() -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    for i in 0..N {
        s.push_str(&format!("S{i:02},Tỉnh Lào Cai,,Xã {i},VNPT,127.0.1.{}\n", i + 1));
    }
    s
}

/// The endpoint ids a daemon exports once all of them are up.
fn probed(d: &mut Daemon) -> BTreeSet<String> {
    d.wait_until(Duration::from_secs(20), "/-/ready", |d| d.get("/-/ready").0 == 200);
    d.metrics()
        .by_endpoint("diemcau_endpoint_up")
        .into_iter()
        .filter(|(_, v)| *v == 1.0)
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn two_shards_split_the_inventory_and_replicas_double_it() {
    let shard = |index: u32, replicas: u32| {
        format!(
            "{}[shard]\ncount = 2\nindex = {index}\nreplicas = {replicas}\n",
            common::fast_config("1s", 2, 1)
        )
    };
    let mut a = Daemon::start(&shard(0, 1), &inventory());
    let mut b = Daemon::start(&shard(1, 1), &inventory());
    let (pa, pb) = (probed(&mut a), probed(&mut b));
    println!("shard 0 probes {}, shard 1 probes {}", pa.len(), pb.len());
    assert!(pa.is_disjoint(&pb), "{pa:?} / {pb:?}");
    assert_eq!(pa.len() + pb.len(), N);
    assert!(
        pa.len() >= 10 && pb.len() >= 10,
        "both get a share: {} / {}",
        pa.len(),
        pb.len()
    );
    assert_eq!(
        a.metrics()
            .value("diemcau_shard_info", &["index=\"0\"", "count=\"2\"", "replicas=\"1\""]),
        Some(1.0)
    );
    assert_eq!(a.metrics().value("diemcau_endpoints", &[]), Some(pa.len() as f64));
    let log = a.stop();
    assert!(
        log.lines().any(|l| l.contains("probing this shard's share")
            && l.contains(&format!("endpoints={}", pa.len()))
            && l.contains(&format!("inventory={N}"))),
        "{}",
        common::tail(&log, 20)
    );
    b.stop();

    let mut both = Daemon::start(&shard(1, 2), &inventory());
    assert_eq!(
        probed(&mut both).len(),
        N,
        "with two replicas of two shards, each probes everything"
    );
    both.stop();
}

/// `--shard I/N` on the command line: the same config (no `[shard]`) gives each instance its
/// share, the same shares as the config keys, and a reload keeps it.
#[test]
fn the_command_line_names_the_share_and_reloads_keep_it() {
    let config = common::fast_config("1s", 2, 1);
    let keyed = |index: u32| {
        format!(
            "{}[shard]\ncount = 2\nindex = {index}\n",
            common::fast_config("1s", 2, 1)
        )
    };
    let mut shares = Vec::new();
    for index in 0..2 {
        let mut d = Daemon::start(&config, &inventory());
        assert_eq!(probed(&mut d).len(), N, "without --shard, everything");
        d.stop();
        d.args
            .extend([std::ffi::OsString::from("--shard"), format!("{index}/2").into()]);
        d.restart();
        let mine = probed(&mut d);
        let (status, body) = common::http(d.port, "POST", "/-/reload", &[]);
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            d.metrics()
                .value("diemcau_shard_info", &[&format!("index=\"{index}\""), "count=\"2\""]),
            Some(1.0),
            "the share survives the reload"
        );
        assert_eq!(d.metrics().value("diemcau_endpoints", &[]), Some(mine.len() as f64));
        d.stop();
        let mut by_key = Daemon::start(&keyed(index), &inventory());
        assert_eq!(
            probed(&mut by_key),
            mine,
            "--shard {index}/2 and shard.index = {index} agree"
        );
        by_key.stop();
        shares.push(mine);
    }
    assert!(shares[0].is_disjoint(&shares[1]));
    assert_eq!(shares[0].len() + shares[1].len(), N);
}
