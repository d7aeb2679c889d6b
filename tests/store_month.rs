//! A month of a 3,000-endpoint inventory driven by an injected clock: runs with a clean restart
//! and a crash, outages across the period's edges and the crash, an endpoint added and one
//! removed mid-month → `histories()` → `sla::compute` → figures checked against plain arithmetic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diemcau::domain::EndpointId;
use diemcau::domain::Labels;
use diemcau::domain::health::State;
use diemcau::domain::sla::{self, Targets};
use diemcau::store::{InventoryRecord, ManualClock, Store, StoreConfig, Transition};

const N: usize = 3_000;
const H: i64 = 3_600;
const D: i64 = 86_400;
const CARRIERS: [&str; 3] = ["VNPT", "Viettel", "MobiFone"];

#[derive(Clone, Copy, Debug)]
enum Ev {
    Start,
    Sync,
    Tr(usize, State, State),
    Stop,
    Crash,
}

fn rank(e: &Ev) -> u8 {
    match e {
        Ev::Start => 0,
        Ev::Sync => 1,
        Ev::Tr(..) => 2,
        Ev::Stop | Ev::Crash => 3,
    }
}

fn id(i: usize) -> String {
    format!("ep-{i:04}")
}

#[test]
fn a_month_of_3000_endpoints_matches_arithmetic() {
    let took = Instant::now();
    let period = sla::month_period(2026, 11, "Asia/Ho_Chi_Minh").expect("period");
    let (p0, p1) = (period.start, period.end);
    assert_eq!(p1 - p0, 30 * D);
    let late = N - 1; // added on day 5
    let (added, removed) = (p0 + 5 * D, p0 + 25 * D); // endpoint 1 removed on day 25
    let (gap1, gap1_end) = (p0 + 10 * D, p0 + 10 * D + 6 * H); // clean stop, 6 h unknown
    let (gap2, gap2_end) = (p0 + 20 * D, p0 + 20 * D + 2 * H); // crash, 2 h unknown
    let run_starts = [p0 - H, gap1_end, gap2_end];
    let now = p1 + H;

    let mut events: Vec<(i64, Ev)> = vec![
        (run_starts[0], Ev::Start),
        (gap1, Ev::Stop),
        (gap1_end, Ev::Start),
        (gap2, Ev::Crash),
        (gap2_end, Ev::Start),
        (added, Ev::Sync),
        (removed, Ev::Sync),
    ];
    let mut expected_down: HashMap<usize, (i64, u64)> = HashMap::new();
    // An outage inside one run: events, and its expected down seconds within the period.
    let outage = |events: &mut Vec<(i64, Ev)>, expected: &mut HashMap<usize, (i64, u64)>, i, s: i64, e: i64| {
        events.push((s, Ev::Tr(i, State::Up, State::Down)));
        events.push((e, Ev::Tr(i, State::Down, State::Up)));
        let x = expected.entry(i).or_default();
        x.0 += e.min(p1) - s.max(p0);
        x.1 += 1;
    };
    // Generic outages: every 7th endpoint, 1–3 outages of 10–59 min, on days 2, 12, 22 (runs only).
    for i in (0..N).step_by(7) {
        for k in 0..(i % 3 + 1) as i64 {
            let s = p0 + (2 + 10 * k) * D + (i % 1000) as i64 * 60;
            outage(&mut events, &mut expected_down, i, s, s + 600 + (i % 50) as i64 * 60);
        }
    }
    // Across the period's start, and across its end (still open at "now").
    outage(&mut events, &mut expected_down, 3, p0 - 1_800, p0 + 1_800);
    events.push((p1 - 2 * H, Ev::Tr(5, State::Up, State::Down)));
    expected_down.insert(5, (2 * H, 1));
    // Across the crash: closed at the last heartbeat; the new run sees it down again for 20 min.
    events.push((gap2 - 3_000, Ev::Tr(9, State::Up, State::Down)));
    events.push((gap2_end + 1_200, Ev::Tr(9, State::Down, State::Up)));
    expected_down.insert(9, (3_000 + 1_200, 2));
    // Before the clean stop; recovered while nobody watched.
    events.push((gap1 - 600, Ev::Tr(11, State::Up, State::Down)));
    expected_down.insert(11, (600, 1));
    // The late endpoint, and the removed one (its outage ends with its removal).
    events.push((added, Ev::Tr(late, State::Unknown, State::Up)));
    outage(&mut events, &mut expected_down, late, added + H, added + H + 900);
    events.push((removed - 300, Ev::Tr(1, State::Up, State::Down)));
    expected_down.insert(1, (300, 1));
    events.sort_by_key(|(t, e)| (*t, rank(e)));

    let in_inventory = |i: usize, t: i64| !(i == late && t < added || i == 1 && t >= removed);
    let inventory = |t: i64| -> Vec<InventoryRecord> {
        (0..N)
            .filter(|&i| in_inventory(i, t))
            .map(|i| InventoryRecord {
                id: id(i).into(),
                labels: Labels {
                    province: format!("Tỉnh P{:02}", i % 63).into(),
                    district: Some(format!("Huyện D{}", i % 700).into()),
                    commune: format!("Xã C{i}").into(),
                    carrier: CARRIERS[i % 3].into(),
                },
                address: format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256),
            })
            .collect()
    };
    let ids: Vec<EndpointId> = (0..N).map(|i| EndpointId(Arc::from(id(i)))).collect();

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StoreConfig {
        batch_interval: Duration::from_millis(20),
        ..StoreConfig::new(dir.path().join("ledger.db"))
    };
    let clock = Arc::new(ManualClock::new(run_starts[0] * 1000));
    let mut store: Option<Store> = None;
    let mut state = vec![State::Unknown; N];
    let down_at_restart = [9usize]; // still down when the third run starts
    let mut transitions = 0u64;
    for (t, ev) in events {
        clock.set(t * 1000);
        match ev {
            Ev::Start => {
                let s = Store::open(cfg.clone(), clock.clone()).expect("open");
                s.sync_inventory(inventory(t));
                for i in (0..N).filter(|&i| in_inventory(i, t)) {
                    let to = if t == gap2_end && down_at_restart.contains(&i) {
                        State::Down
                    } else {
                        State::Up
                    };
                    s.record_transition(rec(&ids[i], State::Unknown, to, t));
                    state[i] = to;
                    transitions += 1;
                }
                store = Some(s);
            }
            Ev::Sync => store.as_ref().expect("running").sync_inventory(inventory(t)),
            Ev::Tr(i, from, to) => {
                assert_eq!(state[i], from, "test timeline for endpoint {i} at {t}");
                store
                    .as_ref()
                    .expect("running")
                    .record_transition(rec(&ids[i], from, to, t));
                state[i] = to;
                transitions += 1;
            }
            Ev::Stop => {
                store.take().expect("running").shutdown().expect("clean stop");
                state.fill(State::Unknown);
            }
            Ev::Crash => {
                let s = store.take().expect("running");
                s.flush().expect("flush before the crash");
                drop(s); // no clean stop
                state.fill(State::Unknown);
            }
        }
    }
    clock.set(now * 1000);
    let store = store.expect("running at the end");
    store.flush().expect("flush");
    let stats = store.stats();
    assert_eq!((stats.records_dropped_total, stats.write_errors_total), (0, 0));
    let reader = store.reader().expect("reader");
    assert_eq!(reader.transition_count().expect("count"), transitions);
    let t = Instant::now();
    let histories = reader.histories(period, now * 1000).expect("histories");
    let histories_took = t.elapsed();
    assert_eq!(histories.len(), N);
    let report = sla::compute(period, &histories, &[sla::GroupKey::Carrier], &Targets::default(), 20);

    // Independent arithmetic.
    let unknown = 6 * H + 2 * H;
    let inventory_s = |i: usize| match i {
        1 => removed - p0,
        i if i == late => p1 - added,
        _ => p1 - p0,
    };
    let (mut sum_inv, mut sum_down, mut sum_outages) = (0, 0, 0);
    for i in 0..N {
        sum_inv += inventory_s(i);
        let (d, n) = expected_down.get(&i).copied().unwrap_or((0, 0));
        sum_down += d;
        sum_outages += n;
    }
    let f = &report.total.figures;
    assert_eq!(f.inventory_s, sum_inv);
    assert_eq!(f.unknown_s, unknown * N as i64);
    assert_eq!(f.eligible_s, sum_inv - unknown * N as i64);
    assert_eq!(f.downtime_s, sum_down);
    assert_eq!(f.outages, sum_outages);
    assert_eq!(report.total.endpoints, N);
    let by_id: HashMap<&str, &sla::EndpointHistory> = histories.iter().map(|h| (h.id.as_str(), h)).collect();
    for i in [0, 1, 3, 5, 7, 9, 11, 14, 2_996, late] {
        let fig = sla::endpoint_figures(period, by_id[id(i).as_str()], &Targets::default()).figures;
        let (d, n) = expected_down.get(&i).copied().unwrap_or((0, 0));
        let eligible = inventory_s(i) - unknown;
        assert_eq!(
            (fig.inventory_s, fig.eligible_s, fig.downtime_s, fig.outages),
            (inventory_s(i), eligible, d, n),
            "endpoint {i}"
        );
        let pct = (eligible - d) as f64 * 100.0 / eligible as f64;
        assert!(
            (fig.availability_pct.expect("eligible time") - pct).abs() < 1e-9,
            "endpoint {i}"
        );
    }
    // Per carrier: endpoints i % 3.
    for (c, carrier) in CARRIERS.iter().enumerate() {
        let g = report
            .groups
            .iter()
            .find(|g| g.labels.carrier.as_deref() == Some(carrier))
            .expect("carrier group");
        let down: i64 = (0..N)
            .filter(|i| i % 3 == c)
            .map(|i| expected_down.get(&i).map_or(0, |x| x.0))
            .sum();
        assert_eq!(g.figures.downtime_s, down, "{carrier}");
    }
    println!(
        "month: {N} endpoints, {transitions} transitions, histories() in {histories_took:?}, whole test {:?}; \
         national availability {:.5}%",
        took.elapsed(),
        f.availability_pct.unwrap_or(f64::NAN)
    );
    store.shutdown().expect("shutdown");
}

fn rec(id: &EndpointId, from: State, to: State, t: i64) -> Transition {
    Transition {
        endpoint: id.clone(),
        from,
        to,
        at_ms: t * 1000,
        reason: "round".into(),
        check: "icmp".into(),
    }
}
