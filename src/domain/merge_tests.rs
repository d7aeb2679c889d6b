use super::*;

fn i(start: i64, end: i64) -> Interval {
    Interval::new(start, end)
}

/// An endpoint `id` in the inventory over [0, 1000), watched over `monitored`, Down over `down`.
fn seen(id: &str, monitored: &[Interval], down: &[Interval]) -> EndpointHistory {
    EndpointHistory {
        id: id.into(),
        exists: vec![i(0, 1000)],
        monitored: monitored.to_vec(),
        down: down.to_vec(),
        ..EndpointHistory::default()
    }
}

fn vantage(name: &str, histories: Vec<EndpointHistory>) -> (String, Vec<EndpointHistory>) {
    (name.to_string(), histories)
}

#[test]
fn down_needs_every_live_vantage_by_default() {
    let merged = merge(
        &[
            vantage("vnpt", vec![seen("A", &[i(0, 1000)], &[i(100, 300)])]),
            vantage("viettel", vec![seen("A", &[i(0, 1000)], &[i(200, 400)])]),
        ],
        Quorum::All,
    );
    let a = &merged.histories[0];
    assert_eq!(a.down, vec![i(200, 300)], "both saw it Down only over [200, 300)");
    assert_eq!(a.monitored, vec![i(0, 1000)]);
    assert_eq!(
        merged.vantage_faults,
        vec![
            VantageFault {
                endpoint: "A".into(),
                vantage: "viettel".into(),
                span: i(300, 400)
            },
            VantageFault {
                endpoint: "A".into(),
                vantage: "vnpt".into(),
                span: i(100, 200)
            },
        ]
    );
}

#[test]
fn one_of_two_suffices_with_a_quorum_of_one() {
    let merged = merge(
        &[
            vantage("vnpt", vec![seen("A", &[i(0, 1000)], &[i(100, 300)])]),
            vantage("viettel", vec![seen("A", &[i(0, 1000)], &[i(200, 400)])]),
        ],
        Quorum::AtLeast(1),
    );
    assert_eq!(merged.histories[0].down, vec![i(100, 400)]);
    assert!(merged.vantage_faults.is_empty());
}

#[test]
fn a_stopped_vantage_leaves_the_other_to_decide_and_no_unknown_time() {
    // vnpt stopped over [400, 600): viettel alone watched, and its Down counts in full.
    let merged = merge(
        &[
            vantage("vnpt", vec![seen("A", &[i(0, 400), i(600, 1000)], &[])]),
            vantage("viettel", vec![seen("A", &[i(0, 1000)], &[i(450, 550)])]),
        ],
        Quorum::All,
    );
    let a = &merged.histories[0];
    assert_eq!(a.monitored, vec![i(0, 1000)], "no unknown time while one vantage runs");
    assert_eq!(a.down, vec![i(450, 550)]);
}

#[test]
fn unknown_only_when_no_vantage_watched() {
    let merged = merge(
        &[
            vantage("vnpt", vec![seen("A", &[i(0, 300)], &[])]),
            vantage("viettel", vec![seen("A", &[i(200, 500)], &[])]),
        ],
        Quorum::All,
    );
    assert_eq!(merged.histories[0].monitored, vec![i(0, 500)]);
}

#[test]
fn a_quorum_above_the_live_count_asks_all_of_them() {
    // Three vantages, k = 2: while only one watches, its Down is enough.
    let merged = merge(
        &[
            vantage("a", vec![seen("E", &[i(0, 1000)], &[i(0, 100), i(500, 600)])]),
            vantage("b", vec![seen("E", &[i(0, 400)], &[i(0, 50)])]),
            vantage("c", vec![seen("E", &[i(0, 400)], &[])]),
        ],
        Quorum::AtLeast(2),
    );
    let e = &merged.histories[0];
    assert_eq!(e.down, vec![i(0, 50), i(500, 600)]);
    assert_eq!(merged.vantage_faults.len(), 1, "{:?}", merged.vantage_faults);
    assert_eq!(merged.vantage_faults[0].span, i(50, 100));
}

#[test]
fn a_vantage_named_twice_votes_once() {
    // Two instances wrongly share the name "vnpt": their views unite, they never outvote viettel.
    let merged = merge(
        &[
            vantage("vnpt", vec![seen("A", &[i(0, 1000)], &[i(100, 200)])]),
            vantage("vnpt", vec![seen("A", &[i(0, 1000)], &[i(100, 200)])]),
            vantage("viettel", vec![seen("A", &[i(0, 1000)], &[])]),
        ],
        Quorum::AtLeast(2),
    );
    assert!(merged.histories[0].down.is_empty());
    assert_eq!(merged.vantage_faults.len(), 1);
}

#[test]
fn the_place_of_a_merged_fault_comes_from_any_vantage_that_placed_it() {
    let mut a = seen("A", &[i(0, 1000)], &[i(100, 200)]);
    a.down_at_site = vec![i(100, 200)];
    let mut b = seen("A", &[i(0, 1000)], &[i(100, 200), i(300, 400)]);
    b.down_on_path = vec![i(100, 200), i(300, 400)];
    let merged = merge(&[vantage("a", vec![a]), vantage("b", vec![b])], Quorum::AtLeast(1));
    let h = &merged.histories[0];
    assert_eq!(h.down, vec![i(100, 200), i(300, 400)]);
    assert_eq!(h.down_at_site, vec![i(100, 200)]);
    assert_eq!(h.down_on_path, vec![i(300, 400)]);
}

#[test]
fn endpoints_seen_by_one_vantage_only_are_that_vantages_view() {
    // Shards with one replica: each endpoint has one vantage, whose view is the truth.
    let merged = merge(
        &[
            vantage("a", vec![seen("A", &[i(0, 1000)], &[i(10, 20)])]),
            vantage("b", vec![seen("B", &[i(0, 500)], &[])]),
        ],
        Quorum::All,
    );
    let ids: Vec<&str> = merged.histories.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["A", "B"]);
    assert_eq!(merged.histories[0].down, vec![i(10, 20)]);
    assert_eq!(merged.histories[1].monitored, vec![i(0, 500)]);
}

#[test]
fn down_outside_the_watched_time_is_ignored() {
    // A row that claims Down while its vantage was not running (a hand-edited ledger).
    let merged = merge(
        &[vantage("a", vec![seen("A", &[i(0, 100)], &[i(50, 200)])])],
        Quorum::All,
    );
    assert_eq!(merged.histories[0].down, vec![i(50, 100)]);
}

/// Against a second-by-second count on random histories: the merge's Down, watched time and
/// minority faults are exactly what counting the vantages at each second gives.
#[test]
fn the_merge_matches_counting_second_by_second() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let spans = |rng: &mut rand::rngs::StdRng, n: usize| -> Vec<Interval> {
        (0..n)
            .map(|_| {
                let s = rng.random_range(0..200);
                i(s, s + rng.random_range(1..60))
            })
            .collect()
    };
    for case in 0..300 {
        let n = rng.random_range(1..5);
        let vantages: Vec<(String, Vec<EndpointHistory>)> = (0..n)
            .map(|v| {
                let (m, d) = (rng.random_range(1..4), rng.random_range(0..5));
                vantage(
                    &format!("v{v}"),
                    vec![seen("A", &spans(&mut rng, m), &spans(&mut rng, d))],
                )
            })
            .collect();
        let quorum = if case % 2 == 0 {
            Quorum::All
        } else {
            Quorum::AtLeast(rng.random_range(1..4))
        };
        let merged = merge(&vantages, quorum);
        let inside = |set: &[Interval], t: i64| set.iter().any(|x| x.contains(t));
        for t in 0..300 {
            let live = vantages.iter().filter(|(_, h)| inside(&h[0].monitored, t)).count();
            let down: Vec<&str> = vantages
                .iter()
                .filter(|(_, h)| inside(&h[0].monitored, t) && inside(&h[0].down, t))
                .map(|(v, _)| v.as_str())
                .collect();
            let agreed = !down.is_empty() && down.len() >= quorum.needed(live);
            let h = &merged.histories[0];
            assert_eq!(inside(&h.down, t), agreed, "case {case} t {t}: {vantages:?} {quorum:?}");
            assert_eq!(inside(&h.monitored, t), live > 0, "case {case} t {t}");
            for (v, _) in &vantages {
                let fault = merged
                    .vantage_faults
                    .iter()
                    .any(|f| &f.vantage == v && f.span.contains(t));
                assert_eq!(fault, !agreed && down.contains(&v.as_str()), "case {case} t {t} {v}");
            }
        }
    }
}

#[test]
fn the_live_judgement_counts_each_vantage_once_and_dates_the_quorum() {
    let vote = |vantage, down_since| LiveVote { vantage, down_since };
    // Every live vantage must agree by default: one that still reaches it keeps it Up…
    assert_eq!(
        judge_now(&[vote("vnpt", Some(100)), vote("viettel", None)], Quorum::All),
        Now::VantageFaults(vec![("vnpt".into(), 100)])
    );
    // …and when both see it Down, it is Down since the second one did.
    assert_eq!(
        judge_now(&[vote("vnpt", Some(100)), vote("viettel", Some(160))], Quorum::All),
        Now::Down { since: 160 }
    );
    // 2 of 3: Down once two agree, since the second.
    let three = [vote("a", Some(50)), vote("b", None), vote("c", Some(70))];
    assert_eq!(judge_now(&three, Quorum::AtLeast(2)), Now::Down { since: 70 });
    assert_eq!(
        judge_now(&three, Quorum::All),
        Now::VantageFaults(vec![("a".into(), 50), ("c".into(), 70)])
    );
    // Two instances of one vantage are one vote: Down if either is, since the earliest.
    assert_eq!(
        judge_now(
            &[vote("vnpt", Some(90)), vote("vnpt", None), vote("viettel", Some(95))],
            Quorum::All
        ),
        Now::Down { since: 95 }
    );
    assert_eq!(judge_now(&[vote("vnpt", None)], Quorum::All), Now::Up);
    assert_eq!(judge_now(&[], Quorum::All), Now::Up);
}
