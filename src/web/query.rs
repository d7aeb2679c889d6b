//! URL query strings (`a=1&b=Th%C3%A0nh+ph%E1%BB%91`) for the HTTP routes: one decoder, so every
//! route reads Vietnamese names the same way.

/// Decodes `%XX` escapes and `+` (space); `None` for a bad escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                out.push(u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The query's `key=value` pairs, values decoded (`Err(key)` for an undecodable value).
pub fn pairs(query: &str) -> impl Iterator<Item = Result<(&str, String), &str>> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        percent_decode(v).map(|v| (k, v)).ok_or(k)
    })
}

/// Percent-encodes a value (UTF-8 bytes outside the unreserved set).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
