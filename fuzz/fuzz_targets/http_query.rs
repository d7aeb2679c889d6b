//! HTTP query strings as the routes read them: `web::query` (pairs, percent-decoding), the
//! status page's `Filter::parse`, `/probe`'s `parse_query` and target syntax (`Target::parse`,
//! never resolved), and `/reports/sla`'s `ReportRequest::from_query` with the period, grouping
//! and file name it leads to.
#![no_main]

use diemcau::domain::report_format::file_name;
use diemcau::domain::sla::{parse_group_by, parse_period};
use diemcau::probe::target::Target;
use diemcau::web::blackbox::parse_query;
use diemcau::web::query::{pairs, percent_decode, percent_encode};
use diemcau::web::reports::ReportRequest;
use diemcau::web::status::Filter;
use libfuzzer_sys::fuzz_target;

const TZ: &str = "Asia/Ho_Chi_Minh";

fn unreserved_or_escape(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.~%".contains(c)
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };

    // Encoding escapes everything but the unreserved set, and decoding undoes it.
    let encoded = percent_encode(query);
    assert!(encoded.chars().all(unreserved_or_escape), "{encoded:?}");
    assert_eq!(percent_decode(&encoded).as_deref(), Some(query));
    if let Some(decoded) = percent_decode(query) {
        assert_eq!(percent_decode(&percent_encode(&decoded)), Some(decoded));
    }

    let mut all_ok = true;
    for pair in pairs(query) {
        match pair {
            Ok((key, value)) => {
                assert!(!key.contains('&'));
                assert_eq!(percent_decode(&percent_encode(&value)).as_deref(), Some(value.as_str()));
            }
            Err(key) => {
                assert!(!key.contains('&'));
                all_ok = false;
            }
        }
    }
    assert_eq!(Filter::parse(query).is_ok(), all_ok);

    if let Ok((target, _module)) = parse_query(query) {
        // An empty module is the route's 400 ("unknown module"), not the parser's.
        assert!(!target.is_empty());
        let _ = Target::parse(&target);
    }
    if let Ok(t) = Target::parse(query) {
        assert!(!t.host.is_empty());
        assert_ne!(t.port, Some(0));
    }

    if let Ok(request) = ReportRequest::from_query(query, TZ) {
        if let Ok(period) = parse_period(&request.period, TZ) {
            assert!(period.start < period.end);
        }
        if let Ok(by) = parse_group_by(&request.by) {
            let name = file_name(&request.period, &by, request.format);
            // Sent in Content-Disposition: no quote, slash, space or control character.
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{name:?}"
            );
        }
    }
});
