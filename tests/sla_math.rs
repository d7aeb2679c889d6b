//! Hand-computed SLA figures. Times are offsets from the start of November 2026 in
//! Asia/Ho_Chi_Minh (P0 = 2026-11-01T00:00+07:00 = 1793466000); the month has 30 days:
//! 30 × 86400 = 2,592,000 s.

use diemcau::domain::Labels;
use diemcau::domain::sla::{
    self, EndpointHistory, GroupKey, Interval, PeriodError, Targets, compute, month_period, parse_period,
};

const P0: i64 = 1_793_466_000; // 2026-10-31T17:00:00Z
const P1: i64 = 1_796_058_000; // 2026-11-30T17:00:00Z
const MONTH: i64 = 2_592_000; // 30 × 86400
const H: i64 = 3600;
const D: i64 = 86_400;
const NOV: Interval = Interval::new(P0, P1);

fn iv(start: i64, end: i64) -> Interval {
    Interval::new(start, end)
}

/// An endpoint in the inventory and monitored for the whole month and beyond, no outage.
fn ep(id: &str, province: &str, carrier: &str) -> EndpointHistory {
    EndpointHistory {
        id: id.into(),
        labels: Labels {
            province: province.into(),
            district: Some("Huyện Mèo Vạc".into()),
            commune: format!("Xã {id}").into(),
            carrier: carrier.into(),
        },
        exists: vec![iv(P0 - 100 * D, P1 + 100 * D)],
        monitored: vec![iv(P0 - 100 * D, P1 + 100 * D)],
        down: vec![],
        maintenance: vec![],
        brief: vec![],
        ..EndpointHistory::default()
    }
}

fn one(h: EndpointHistory) -> sla::EndpointFigures {
    sla::endpoint_figures(NOV, &h, &Targets::default())
}

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("a figure");
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn period_in_ho_chi_minh() {
    assert_eq!(month_period(2026, 11, "Asia/Ho_Chi_Minh").unwrap(), NOV);
    assert_eq!(parse_period("2026-11", "Asia/Ho_Chi_Minh").unwrap(), NOV);
    assert_eq!(NOV.len(), MONTH);
    // December: 31 days, ends 2026-12-31T17:00Z.
    assert_eq!(
        month_period(2026, 12, "Asia/Ho_Chi_Minh").unwrap(),
        iv(P1, 1_798_736_400)
    );
    // Dates are midnights in the zone; TO is excluded: 14 days.
    assert_eq!(
        parse_period("2026-11-01..2026-11-15", "Asia/Ho_Chi_Minh").unwrap(),
        iv(P0, P0 + 14 * D)
    );
    assert_eq!(
        parse_period("2026-11-01T08:00..2026-11-01T17:30:00+07:00", "Asia/Ho_Chi_Minh").unwrap(),
        iv(P0 + 8 * H, P0 + 17 * H + 1800)
    );
    assert!(matches!(
        month_period(2026, 13, "Asia/Ho_Chi_Minh"),
        Err(PeriodError::Month { .. })
    ));
    assert!(matches!(
        parse_period("2026-11-15..2026-11-01", "Asia/Ho_Chi_Minh"),
        Err(PeriodError::Empty { .. })
    ));
    assert!(matches!(
        parse_period("nov", "Asia/Ho_Chi_Minh"),
        Err(PeriodError::Syntax { .. })
    ));
    assert!(matches!(
        month_period(2026, 11, "Asia/Hanoi_Nowhere"),
        Err(PeriodError::TimeZone { .. })
    ));
    // UTC month for comparison: starts 7 h later.
    assert_eq!(month_period(2026, 11, "UTC").unwrap(), iv(P0 + 7 * H, P1 + 7 * H));
}

#[test]
fn outage_crossing_the_period_boundary_counts_in_both_months() {
    let mut h = ep("a", "Tỉnh Hà Giang", "VNPT");
    // Nov 30 22:00 → Dec 1 03:00 local: 2 h in November, 3 h in December.
    h.down = vec![iv(P1 - 2 * H, P1 + 3 * H)];
    let nov = one(h.clone()).figures;
    assert_eq!(nov.downtime_s, 7200);
    assert_eq!(nov.outages, 1);
    // (2,592,000 − 7,200) / 2,592,000 = 99.72222…%
    close(nov.availability_pct, 99.722_222_222_222_22);
    close(nov.mttr_s, 7200.0);

    let dec_period = month_period(2026, 12, "Asia/Ho_Chi_Minh").unwrap();
    let dec = sla::endpoint_figures(dec_period, &h, &Targets::default()).figures;
    assert_eq!(dec.downtime_s, 10_800);
    assert_eq!(dec.outages, 1);
    // (2,678,400 − 10,800) / 2,678,400 = 99.596774…%
    close(dec.availability_pct, 99.596_774_193_548_39);

    // An outage still open at the start of the month counts too.
    let mut h = ep("b", "Tỉnh Hà Giang", "VNPT");
    h.down = vec![iv(P0 - 5 * H, P0 + H)];
    let f = one(h).figures;
    assert_eq!((f.downtime_s, f.outages), (3600, 1));
}

#[test]
fn maintenance_overlapping_an_outage_is_excluded() {
    let mut h = ep("a", "Tỉnh Hà Giang", "VNPT");
    // Outage 10:00–14:00, maintenance 12:00–16:00: 2 h down, 4 h maintenance.
    // Outage day 2 01:00–02:00 lies inside maintenance 00:00–03:00: not counted at all.
    h.down = vec![iv(P0 + 10 * H, P0 + 14 * H), iv(P0 + D + H, P0 + D + 2 * H)];
    h.maintenance = vec![iv(P0 + 12 * H, P0 + 16 * H), iv(P0 + D, P0 + D + 3 * H)];
    let f = one(h).figures;
    assert_eq!(f.maintenance_s, 25_200); // 4 h + 3 h
    assert_eq!(f.downtime_s, 7200);
    assert_eq!(f.outages, 1);
    assert_eq!(f.eligible_s, 2_566_800); // 2,592,000 − 25,200
    assert_eq!(f.up_s, 2_559_600); // 2,566,800 − 7,200
    // 2,559,600 / 2,566,800 = 99.719489…%
    close(f.availability_pct, 99.719_495_091_164_09);
    assert_eq!(f.unknown_s, 0);
}

#[test]
fn unknown_time_during_an_outage_is_excluded() {
    let mut h = ep("a", "Tỉnh Cao Bằng", "Viettel");
    // Daemon down day 5 05:00–07:00; outage 04:00–08:00 → 1 h + 1 h eligible down, 2 h unknown.
    h.monitored = vec![iv(P0 - D, P0 + 5 * D + 5 * H), iv(P0 + 5 * D + 7 * H, P1 + D)];
    h.down = vec![iv(P0 + 5 * D + 4 * H, P0 + 5 * D + 8 * H)];
    let f = one(h.clone()).figures;
    assert_eq!(f.unknown_s, 7200);
    assert_eq!(f.downtime_s, 7200);
    assert_eq!(f.outages, 1); // split by unknown time, still one outage
    assert_eq!(f.eligible_s, 2_584_800); // 2,592,000 − 7,200
    // (2,584,800 − 7,200) / 2,584,800 = 99.721448…%
    close(f.availability_pct, 99.721_448_467_966_57);

    // Maintenance beats unknown: maintenance 06:00–09:00 over daemon-down 05:00–07:00.
    h.maintenance = vec![iv(P0 + 5 * D + 6 * H, P0 + 5 * D + 9 * H)];
    let f = one(h).figures;
    assert_eq!(f.maintenance_s, 10_800); // 06:00–09:00
    assert_eq!(f.unknown_s, 3600); // 05:00–06:00
    assert_eq!(f.downtime_s, 3600); // 04:00–05:00
    assert_eq!(f.eligible_s, 2_577_600); // 2,592,000 − 10,800 − 3,600
    assert_eq!(f.up_s, 2_574_000);
}

#[test]
fn flapping_counts_every_outage() {
    let mut h = ep("a", "Tỉnh Bắc Kạn", "VNPT");
    // 10 outages of 90 s, one an hour.
    h.down = (1..=10).map(|k| iv(P0 + k * H, P0 + k * H + 90)).collect();
    let f = one(h.clone()).figures;
    assert_eq!(f.outages, 10);
    assert_eq!(f.downtime_s, 900); // 10 × 90
    close(f.mttr_s, 90.0); // 900 / 10
    close(f.mtbf_s, 259_110.0); // (2,592,000 − 900) / 10
    // 2,591,100 / 2,592,000 = 99.965277…%
    close(f.availability_pct, 99.965_277_777_777_78);

    // Touching outages are one outage; overlapping rows are not counted twice.
    h.down = vec![
        iv(P0 + H, P0 + H + 30),
        iv(P0 + H + 30, P0 + H + 60),
        iv(P0 + H + 10, P0 + H + 40),
    ];
    let f = one(h).figures;
    assert_eq!((f.outages, f.downtime_s), (1, 60));
}

#[test]
fn endpoint_added_mid_month() {
    let mut h = ep("a", "Tỉnh Tuyên Quang", "VNPT");
    // Added on day 15 at 12:00; an outage from day 15 00:00 to 13:00 only counts its last hour.
    h.exists = vec![iv(P0 + 15 * D + 12 * H, P1 + 100 * D)];
    h.down = vec![iv(P0 + 15 * D, P0 + 15 * D + 13 * H)];
    let f = one(h).figures;
    assert_eq!(f.inventory_s, 1_252_800); // 2,592,000 − (15 × 86,400 + 12 × 3,600)
    assert_eq!(f.eligible_s, 1_252_800);
    assert_eq!(f.downtime_s, 3600);
    // 1,249,200 / 1,252,800 = 99.712643…%
    close(f.availability_pct, 99.712_643_678_160_92);
}

#[test]
fn empty_groups_have_no_availability() {
    let mut later = ep("later", "Tỉnh Lai Châu", "VNPT");
    later.exists = vec![iv(P1 + D, P1 + 2 * D)]; // added after the period
    let mut serviced = ep("serviced", "Tỉnh Điện Biên", "Viettel");
    serviced.maintenance = vec![iv(P0 - D, P1 + D)]; // maintenance all month
    let fine = ep("fine", "Tỉnh Sơn La", "VNPT");
    let r = compute(
        NOV,
        &[later, serviced, fine],
        &[GroupKey::Province],
        &Targets::default(),
        10,
    );
    let g = |name: &str| r.groups.iter().find(|g| g.name == name).expect(name);

    let lai_chau = g("Tỉnh Lai Châu");
    assert_eq!(
        (lai_chau.endpoints, lai_chau.figures.availability_pct, lai_chau.breach),
        (0, None, None)
    );
    let dien_bien = g("Tỉnh Điện Biên");
    assert_eq!((dien_bien.endpoints, dien_bien.endpoints_without_data), (1, 1));
    assert_eq!(
        (dien_bien.figures.availability_pct, dien_bien.figures.maintenance_s),
        (None, MONTH)
    );
    close(g("Tỉnh Sơn La").figures.availability_pct, 100.0);
    assert_eq!(r.total.endpoints, 2);
    assert_eq!(r.worst.len(), 1, "endpoints without data are not ranked");

    let none = compute(NOV, &[], &[], &Targets::default(), 10);
    assert_eq!((none.total.figures.availability_pct, none.total.breach), (None, None));
    assert!(none.groups.is_empty());
}

#[test]
fn breach_flag_uses_each_carriers_target() {
    let targets = Targets::new(99.5, [("VNPT".to_string(), 99.9)]);
    let mut vnpt = ep("v", "Tỉnh Hà Giang", "VNPT");
    vnpt.down = vec![iv(P0 + D, P0 + D + H)];
    let mut viettel = ep("t", "Tỉnh Hà Giang", "Viettel");
    viettel.down = vec![iv(P0 + D, P0 + D + H)];
    let r = compute(
        NOV,
        &[vnpt, viettel],
        &[GroupKey::Province, GroupKey::Carrier],
        &targets,
        5,
    );
    assert_eq!(r.groups.len(), 2);
    for g in &r.groups {
        // (2,592,000 − 3,600) / 2,592,000 = 99.861111…%
        close(g.figures.availability_pct, 99.861_111_111_111_11);
    }
    let by = |c: &str| {
        r.groups
            .iter()
            .find(|g| g.labels.carrier.as_deref() == Some(c))
            .expect(c)
    };
    assert_eq!((by("VNPT").target_pct, by("VNPT").breach), (99.9, Some(true)));
    assert_eq!((by("Viettel").target_pct, by("Viettel").breach), (99.5, Some(false)));
    assert_eq!(by("VNPT").name, "Tỉnh Hà Giang / VNPT");
    // Mixed carriers: the default target.
    assert_eq!((r.total.target_pct, r.total.breach), (99.5, Some(false)));
    // A province with one carrier takes that carrier's target.
    let p = &r.provinces[0];
    assert_eq!(p.target_pct, 99.5);
    // Carrier names ignore ASCII case.
    assert_eq!(targets.for_carrier("vnpt"), 99.9);
}

#[test]
fn group_totals_are_time_weighted_and_worst_is_ordered() {
    let mut a = ep("a", "Tỉnh Hà Giang", "VNPT");
    a.down = vec![iv(P0 + D, P0 + D + 2 * H)]; // 7,200 s of 2,592,000
    let mut b = ep("b", "Tỉnh Hà Giang", "VNPT");
    b.exists = vec![iv(P0 + 15 * D, P1)]; // 1,296,000 s
    b.down = vec![iv(P0 + 20 * D, P0 + 20 * D + H)]; // same ratio as a, less downtime
    let c = ep("c", "Tỉnh Hà Giang", "VNPT");
    let r = compute(NOV, &[c, b, a], &[GroupKey::District], &Targets::default(), 2);
    let g = &r.groups[0];
    assert_eq!(
        g.labels.province.as_deref(),
        Some("Tỉnh Hà Giang"),
        "district keeps its province"
    );
    assert_eq!(g.figures.eligible_s, 6_480_000); // 2 × 2,592,000 + 1,296,000
    assert_eq!(g.figures.downtime_s, 10_800);
    // (6,480,000 − 10,800) / 6,480,000 = 99.833333…%
    close(g.figures.availability_pct, 99.833_333_333_333_33);
    close(g.figures.mttr_s, 5400.0); // 10,800 / 2
    // a and b tie on availability (99.7222…%); a has more downtime, so it ranks first.
    let ids: Vec<&str> = r.worst.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn interval_sets() {
    let a = sla::normalize(&[iv(5, 10), iv(0, 3), iv(3, 4), iv(8, 12), iv(7, 6)]);
    assert_eq!(a, [iv(0, 4), iv(5, 12)]);
    assert_eq!(
        sla::subtract_sets(&a, &[iv(1, 2), iv(6, 7)]),
        [iv(0, 1), iv(2, 4), iv(5, 6), iv(7, 12)]
    );
    assert_eq!(
        sla::intersect_sets(&a, &[iv(2, 6), iv(11, 20)]),
        [iv(2, 4), iv(5, 6), iv(11, 12)]
    );
    assert_eq!(sla::total(&a), 11);
    assert_eq!(
        sla::parse_group_by("carrier, province").unwrap(),
        [GroupKey::Province, GroupKey::Carrier]
    );
    assert_eq!(sla::parse_group_by("national").unwrap(), []);
    assert!(sla::parse_group_by("commune").is_err());
}

#[test]
fn groups_in_vietnamese_alphabetical_order() {
    let names = [
        "Tỉnh Đồng Tháp",
        "Tỉnh Điện Biên",
        "Thành phố Cần Thơ",
        "Tỉnh Đắk Lắk",
        "Tỉnh Cao Bằng",
        "Thành phố Đà Nẵng",
        "Tỉnh Cà Mau",
        "Tỉnh Đồng Nai",
        "Tỉnh Vĩnh Long",
    ];
    let hs: Vec<EndpointHistory> = names
        .iter()
        .enumerate()
        .map(|(i, p)| ep(&i.to_string(), p, "VNPT"))
        .collect();
    let r = compute(NOV, &hs, &[GroupKey::Province], &Targets::default(), 0);
    let got: Vec<&str> = r.groups.iter().map(|g| g.name.as_str()).collect();
    // Prefixes ignored; a < ă < â, d < đ; tones only break ties.
    assert_eq!(
        got,
        [
            "Tỉnh Cà Mau",
            "Tỉnh Cao Bằng",
            "Thành phố Cần Thơ",
            "Thành phố Đà Nẵng",
            "Tỉnh Đắk Lắk",
            "Tỉnh Điện Biên",
            "Tỉnh Đồng Nai",
            "Tỉnh Đồng Tháp",
            "Tỉnh Vĩnh Long",
        ]
    );
    assert_eq!(r.provinces.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), got);
}

#[test]
fn brief_interruptions_are_counted_in_eligible_time_and_are_never_downtime() {
    let mut h = ep("A", "Tỉnh Hà Giang", "VNPT");
    h.maintenance = vec![iv(P0 + 10 * D, P0 + 11 * D)];
    // One in ordinary time, one in maintenance, one before the period.
    h.brief = vec![P0 + D, P0 + 10 * D + 3600, P0 - D];
    let f = sla::endpoint_figures(NOV, &h, &Targets::default()).figures;
    assert_eq!(f.brief_interruptions, 1);
    assert_eq!((f.downtime_s, f.outages), (0, 0));
    assert_eq!(f.availability_pct, Some(100.0));
}

/// Downtime split by where its fault lay (a site, a router on the path, not placed), and a
/// carrier charged only for the path and the unplaced part: the site's hour is excused,
/// excluded from the eligible time like maintenance.
#[test]
fn downtime_is_split_by_fault_place_and_the_carrier_is_charged_per_its_rule() {
    let mut h = ep("S", "Tỉnh Hà Giang", "VNPT");
    let (site, path, unplaced) = (
        iv(P0 + D, P0 + D + H),
        iv(P0 + 2 * D, P0 + 2 * D + 1800),
        iv(P0 + 3 * D, P0 + 3 * D + 600),
    );
    h.down = vec![site, path, unplaced];
    h.down_at_site = vec![site];
    h.down_on_path = vec![path];
    let all = one(h.clone()).figures;
    assert_eq!(
        (
            all.downtime_site_s,
            all.downtime_path_s,
            all.downtime_unplaced_s,
            all.excused_s
        ),
        (H, 1800, 600, 0)
    );
    assert_eq!((all.downtime_s, all.outages, all.eligible_s), (H + 2400, 3, MONTH));

    let mut targets = Targets::default();
    let only_path = sla::Charged::parse(["path", "unknown"]).expect("places");
    targets.charge.carriers.insert("VNPT".into(), only_path);
    let f = sla::endpoint_figures(NOV, &h, &targets).figures;
    assert_eq!((f.downtime_s, f.outages, f.excused_s), (2400, 2, H));
    assert_eq!(f.eligible_s, MONTH - H, "the excused hour leaves the eligible time");
    assert_eq!(
        f.inventory_s,
        f.eligible_s + f.maintenance_s + f.unknown_s + f.excused_s
    );
    close(
        f.availability_pct,
        (MONTH - H - 2400) as f64 * 100.0 / (MONTH - H) as f64,
    );
    // The split itself does not depend on who is charged.
    assert_eq!(
        (f.downtime_site_s, f.downtime_path_s, f.downtime_unplaced_s),
        (H, 1800, 600)
    );
}
