//! URL query strings (`a=1&b=Th%C3%A0nh+ph%E1%BB%91`) for the HTTP routes: one decoder, so every
//! route reads Vietnamese names the same way.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Decodes `%XX` escapes and `+` (space); `None` for a bad escape or invalid UTF-8. Stricter
/// than the percent-encoding crate's decoder, which passes `%zz` through: a mistyped escape in a
/// filter must be an error, not a filter that silently matches something else.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let escapes_ok = b
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'%')
        .all(|(i, _)| b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
    if !escapes_ok {
        return None;
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The query's `key=value` pairs, values decoded (`Err(key)` for an undecodable value).
pub fn pairs(query: &str) -> impl Iterator<Item = Result<(&str, String), &str>> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        percent_decode(v).map(|v| (k, v)).ok_or(k)
    })
}

/// Everything but RFC 3986's unreserved characters is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a value (UTF-8 bytes outside the unreserved set).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_diacritics_and_bad_escapes() {
        let name = "Thành phố Hồ Chí Minh";
        assert_eq!(percent_decode(&percent_encode(name)).as_deref(), Some(name));
        assert_eq!(percent_decode("C%C3%A1t+L%C3%A1i").as_deref(), Some("Cát Lái"));
        assert_eq!(percent_decode("%G1"), None);
        assert_eq!(percent_decode("%C3"), None);
        let p: Vec<_> = pairs("a=1&&b=%zz&c").collect();
        assert_eq!(p, vec![Ok(("a", "1".to_string())), Err("b"), Ok(("c", String::new()))]);
    }
}
