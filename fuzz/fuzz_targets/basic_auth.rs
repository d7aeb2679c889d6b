//! The `Authorization: Basic …` header (`web::security::decode_basic`), hand-written: scheme,
//! base64, the user:password split.
#![no_main]

use base64::Engine as _;
use diemcau::web::security::decode_basic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((user, _password)) = decode_basic(data) {
        assert!(!user.is_empty() && !user.contains(&b':'));
    }

    // Round trip: the input as the credentials of a well-formed header.
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let scheme = if data.first().is_some_and(|b| b & 1 == 1) {
        "bAsIc "
    } else {
        "Basic "
    };
    let header = format!("{scheme}{encoded}");
    let expected = match data.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => Some((data[..colon].to_vec(), data[colon + 1..].to_vec())),
        _ => None,
    };
    assert_eq!(decode_basic(header.as_bytes()), expected);
});
