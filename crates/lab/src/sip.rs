//! Minimal, strict SIP OPTIONS handling over UDP.
//!
//! Only what a prober needs: recognise `OPTIONS ... SIP/2.0`, copy the dialog-identifying
//! headers (Via, From, To, Call-ID, CSeq) into a response and add a To-tag. Anything that
//! does not look like a well-formed request is rejected (counted as malformed) rather
//! than guessed at, since the emulator must never crash or answer nonsense on garbage.
//! Parsing borrows the datagram; the response is written into a reused buffer.

use std::io::Write;

/// Largest datagram we are willing to parse (a SIP OPTIONS is a few hundred bytes).
const MAX_REQUEST: usize = 4096;
/// Via headers copied at most (proxies add one each; probers send one).
const MAX_VIA: usize = 8;

/// Response status line chosen by the endpoint's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok200,
    Unavailable503,
}

/// Why a UDP payload to the SIP port was not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Not SIP, truncated, missing mandatory headers, bad encoding...
    Malformed,
    /// A valid SIP request but not OPTIONS (or a response): ignored.
    NotOptions,
}

/// The borrowed pieces of an OPTIONS request that the response copies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptionsRequest<'a> {
    via: [&'a str; MAX_VIA],
    via_count: usize,
    from: &'a str,
    to: &'a str,
    call_id: &'a str,
    cseq: &'a str,
}

fn header_is(name: &str, long: &str, compact: Option<&str>) -> bool {
    name.eq_ignore_ascii_case(long) || compact.is_some_and(|c| name.eq_ignore_ascii_case(c))
}

/// Parses a SIP OPTIONS request.
pub(crate) fn parse_options(payload: &[u8]) -> Result<OptionsRequest<'_>, Reject> {
    if payload.is_empty() || payload.len() > MAX_REQUEST {
        return Err(Reject::Malformed);
    }
    let text = std::str::from_utf8(payload).map_err(|_| Reject::Malformed)?;
    if text.bytes().any(|b| b == 0) {
        return Err(Reject::Malformed);
    }
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or(Reject::Malformed)?;
    if request_line.starts_with("SIP/2.0 ") {
        return Err(Reject::NotOptions); // a response, not a request
    }
    let mut parts = request_line.split(' ');
    let (method, uri, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(uri), Some(version), None) = (method, uri, version, parts.next()) else {
        return Err(Reject::Malformed);
    };
    if version != "SIP/2.0" || uri.is_empty() || method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Reject::Malformed);
    }
    if method != "OPTIONS" {
        return Err(Reject::NotOptions);
    }
    let mut req = OptionsRequest {
        via: [""; MAX_VIA],
        via_count: 0,
        from: "",
        to: "",
        call_id: "",
        cseq: "",
    };
    let mut ended = false;
    for line in lines {
        if line.is_empty() {
            ended = true;
            break;
        }
        if line.bytes().any(|b| b == b'\r' || (b < 0x20 && b != b'\t')) {
            return Err(Reject::Malformed);
        }
        let (name, value) = line.split_once(':').ok_or(Reject::Malformed)?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || value.is_empty() {
            // Folded (continuation) lines and empty values are not supported: reject.
            return Err(Reject::Malformed);
        }
        let slot = if header_is(name, "Via", Some("v")) {
            if req.via_count == MAX_VIA {
                return Err(Reject::Malformed);
            }
            req.via[req.via_count] = value;
            req.via_count += 1;
            continue;
        } else if header_is(name, "From", Some("f")) {
            &mut req.from
        } else if header_is(name, "To", Some("t")) {
            &mut req.to
        } else if header_is(name, "Call-ID", Some("i")) {
            &mut req.call_id
        } else if header_is(name, "CSeq", None) {
            &mut req.cseq
        } else {
            continue;
        };
        if !slot.is_empty() {
            return Err(Reject::Malformed); // duplicated single-valued header
        }
        *slot = value;
    }
    if !ended || req.via_count == 0 || req.from.is_empty() || req.to.is_empty() || req.call_id.is_empty() {
        return Err(Reject::Malformed);
    }
    let mut cseq = req.cseq.split_ascii_whitespace();
    match (cseq.next(), cseq.next(), cseq.next()) {
        (Some(n), Some("OPTIONS"), None) if n.parse::<u32>().is_ok() => {}
        _ => return Err(Reject::Malformed),
    }
    Ok(req)
}

/// Writes the response into `out` (cleared first). `tag` makes the To-tag unique per endpoint.
pub(crate) fn write_response(req: &OptionsRequest<'_>, status: Status, tag: u32, out: &mut Vec<u8>) {
    out.clear();
    let status_line = match status {
        Status::Ok200 => "SIP/2.0 200 OK",
        Status::Unavailable503 => "SIP/2.0 503 Service Unavailable",
    };
    // Writes into a Vec cannot fail; ignore the io::Result.
    let _ = write!(out, "{status_line}\r\n");
    for via in &req.via[..req.via_count] {
        let _ = write!(out, "Via: {via}\r\n");
    }
    let _ = write!(out, "From: {}\r\n", req.from);
    let has_tag = req.to.as_bytes().windows(5).any(|w| w.eq_ignore_ascii_case(b";tag="));
    if has_tag {
        let _ = write!(out, "To: {}\r\n", req.to);
    } else {
        let _ = write!(out, "To: {};tag=lab{tag:08x}\r\n", req.to);
    }
    let _ = write!(
        out,
        "Call-ID: {}\r\nCSeq: {}\r\nServer: diemcau-lab\r\nContent-Length: 0\r\n\r\n",
        req.call_id, req.cseq
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = "OPTIONS sip:ep@198.18.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 100.127.255.254:5062;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:probe@lab>;tag=abc\r\nTo: <sip:ep@198.18.0.1>\r\nCall-ID: 42@lab\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn answers_options() {
        let r = parse_options(REQ.as_bytes()).expect("valid");
        let mut out = Vec::new();
        write_response(&r, Status::Ok200, 0xbeef, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP 100.127.255.254:5062;branch=z9hG4bK1\r\n"));
        assert!(text.contains("To: <sip:ep@198.18.0.1>;tag=lab0000beef\r\n"));
        assert!(text.contains("Call-ID: 42@lab\r\nCSeq: 1 OPTIONS\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse_options(b"").err(), Some(Reject::Malformed));
        assert_eq!(parse_options(b"\xff\xfe").err(), Some(Reject::Malformed));
        assert_eq!(
            parse_options(b"OPTIONS sip:x SIP/2.0\r\n").err(),
            Some(Reject::Malformed)
        );
        let invite = REQ.replacen("OPTIONS sip", "INVITE sip", 1);
        assert_eq!(parse_options(invite.as_bytes()).err(), Some(Reject::NotOptions));
        let no_callid = REQ.replace("Call-ID: 42@lab\r\n", "");
        assert_eq!(parse_options(no_callid.as_bytes()).err(), Some(Reject::Malformed));
        let dup = REQ.replace("CSeq: 1 OPTIONS\r\n", "CSeq: 1 OPTIONS\r\nCSeq: 2 OPTIONS\r\n");
        assert_eq!(parse_options(dup.as_bytes()).err(), Some(Reject::Malformed));
        let resp = "SIP/2.0 200 OK\r\n\r\n";
        assert_eq!(parse_options(resp.as_bytes()).err(), Some(Reject::NotOptions));
        let mut big = REQ.as_bytes().to_vec();
        big.resize(MAX_REQUEST + 1, b'a');
        assert_eq!(parse_options(&big).err(), Some(Reject::Malformed));
    }
}
