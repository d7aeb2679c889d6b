//! SIP (RFC 3261) OPTIONS request builder and strict response parser.
//!
//! The parser reads untrusted bytes from any host that can reach our socket, so it is strict
//! and bounded: CRLF line endings only, no control characters, at most [`MAX_HEADERS`] header
//! fields and [`MAX_MESSAGE`] bytes, exactly one Call-ID / CSeq / From / To, a well-formed top
//! Via, and Content-Length framing (mandatory on streams). It never panics: every index is
//! checked, and the property tests in `tests/probes_sip.rs` feed it random, truncated and
//! mutated bytes. It returns only what matching a response to our request needs.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use rand::Rng;

use super::SipTransport;

/// Largest message accepted (a SIP OPTIONS answer is normally under 2 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Largest number of header fields accepted.
pub const MAX_HEADERS: usize = 100;

/// Why bytes are not (yet) a SIP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Stream framing only: more bytes are needed.
    #[error("incomplete message")]
    Incomplete,
    /// Over [`MAX_MESSAGE`] bytes or [`MAX_HEADERS`] headers.
    #[error("message too large")]
    TooLarge,
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// How the message was delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// UDP: the datagram is the message; Content-Length optional but must not exceed it.
    Datagram,
    /// TCP/TLS: Content-Length is mandatory and delimits the body; more may follow.
    Stream,
}

/// The parts of a SIP response that matching and reporting need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// `branch` parameter of the top Via, if any.
    pub branch: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: String,
    pub content_length: usize,
}

impl Response {
    /// True for 1xx: the transaction goes on, wait for the final response.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }
}

/// Which of the headers we care about a line is, by full or compact name (case-insensitive).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    Via,
    From,
    To,
    CallId,
    CSeq,
    ContentLength,
}

fn known(name: &str) -> Option<Known> {
    let eq = |s: &str| name.eq_ignore_ascii_case(s);
    if eq("via") || eq("v") {
        Some(Known::Via)
    } else if eq("from") || eq("f") {
        Some(Known::From)
    } else if eq("to") || eq("t") {
        Some(Known::To)
    } else if eq("call-id") || eq("i") {
        Some(Known::CallId)
    } else if eq("cseq") {
        Some(Known::CSeq)
    } else if eq("content-length") || eq("l") {
        Some(Known::ContentLength)
    } else {
        None
    }
}

/// RFC 3261 `token` characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Parses one response from the start of `buf`; returns it with the bytes it used.
pub fn parse_response(buf: &[u8], framing: Framing) -> Result<(Response, usize), ParseError> {
    if framing == Framing::Datagram && buf.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    let window = &buf[..buf.len().min(MAX_MESSAGE)];
    let Some(head_len) = find_head_end(window) else {
        return Err(match framing {
            _ if buf.len() >= MAX_MESSAGE => ParseError::TooLarge,
            Framing::Stream => ParseError::Incomplete,
            Framing::Datagram => ParseError::Malformed("no end of headers"),
        });
    };
    let head = std::str::from_utf8(&window[..head_len]).map_err(|_| ParseError::Malformed("headers are not UTF-8"))?;
    if head
        .chars()
        .any(|c| (c.is_control() && c != '\t' && c != '\r' && c != '\n') || c == '\u{7f}')
    {
        return Err(ParseError::Malformed("control character in headers"));
    }
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    if status_line.contains(['\r', '\n']) {
        return Err(ParseError::Malformed("bare CR or LF"));
    }
    let (status, reason) = parse_status_line(status_line)?;

    // Header fields with folded continuation lines joined (RFC 3261 7.3.1).
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in lines {
        if line.contains(['\r', '\n']) {
            return Err(ParseError::Malformed("bare CR or LF"));
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = fields.last_mut() else {
                return Err(ParseError::Malformed("continuation before any header"));
            };
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError::Malformed("header without colon"));
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err(ParseError::Malformed("bad header name"));
        }
        if fields.len() == MAX_HEADERS {
            return Err(ParseError::TooLarge);
        }
        fields.push((name, value.trim().to_owned()));
    }

    let mut via: Option<&str> = None;
    let mut from = 0u8;
    let mut to = 0u8;
    let mut call_id: Option<&str> = None;
    let mut cseq: Option<&str> = None;
    let mut content_length: Option<&str> = None;
    for (name, value) in &fields {
        match known(name) {
            // Only the top (first) Via identifies our transaction.
            Some(Known::Via) => {
                via.get_or_insert(value.as_str());
            }
            Some(Known::From) => from = from.saturating_add(1),
            Some(Known::To) => to = to.saturating_add(1),
            Some(Known::CallId) => single(&mut call_id, value.as_str())?,
            Some(Known::CSeq) => single(&mut cseq, value.as_str())?,
            Some(Known::ContentLength) => single(&mut content_length, value.as_str())?,
            None => {}
        }
    }
    if from != 1 || to != 1 {
        return Err(ParseError::Malformed("need exactly one From and one To"));
    }
    let branch = parse_top_via(via.ok_or(ParseError::Malformed("no Via"))?)?;
    let call_id = call_id.ok_or(ParseError::Malformed("no Call-ID"))?;
    if call_id.is_empty() || call_id.contains([' ', '\t']) {
        return Err(ParseError::Malformed("bad Call-ID"));
    }
    let (cseq_num, cseq_method) = parse_cseq(cseq.ok_or(ParseError::Malformed("no CSeq"))?)?;
    let content_length = match content_length {
        Some(v) => Some(parse_content_length(v)?),
        None if framing == Framing::Stream => {
            return Err(ParseError::Malformed("no Content-Length on a stream"));
        }
        None => None,
    };

    let body_start = head_len + 4;
    let used = match (framing, content_length) {
        (_, Some(cl)) => {
            let end = body_start.checked_add(cl).ok_or(ParseError::TooLarge)?;
            if end > MAX_MESSAGE {
                return Err(ParseError::TooLarge);
            }
            if end > buf.len() {
                return Err(match framing {
                    Framing::Stream => ParseError::Incomplete,
                    Framing::Datagram => ParseError::Malformed("body shorter than Content-Length"),
                });
            }
            // On UDP, bytes past Content-Length are discarded (RFC 3261 18.3).
            match framing {
                Framing::Stream => end,
                Framing::Datagram => buf.len(),
            }
        }
        (_, None) => buf.len(),
    };
    Ok((
        Response {
            status,
            reason: reason.to_owned(),
            branch,
            call_id: call_id.to_owned(),
            cseq: cseq_num,
            cseq_method: cseq_method.to_owned(),
            content_length: content_length.unwrap_or(used.saturating_sub(body_start)),
        },
        used,
    ))
}

/// Stores a header that may appear only once.
fn single<'a>(slot: &mut Option<&'a str>, value: &'a str) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::Malformed("duplicate header"));
    }
    *slot = Some(value);
    Ok(())
}

/// `SIP/2.0 SP 3DIGIT SP Reason-Phrase`.
fn parse_status_line(line: &str) -> Result<(u16, &str), ParseError> {
    let rest = line
        .strip_prefix("SIP/2.0 ")
        .ok_or(ParseError::Malformed("not a SIP/2.0 status line"))?;
    let code = rest.get(..3).ok_or(ParseError::Malformed("short status"))?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Malformed("status is not 3 digits"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| ParseError::Malformed("status is not 3 digits"))?;
    if !(100..=699).contains(&status) {
        return Err(ParseError::Malformed("status out of range"));
    }
    let reason = match rest.get(3..) {
        Some("") | None => "",
        Some(r) => r
            .strip_prefix(' ')
            .ok_or(ParseError::Malformed("no space after status"))?,
    };
    Ok((status, reason))
}

/// Top Via value: `SIP/2.0/TRANSPORT sent-by *(;param)`; returns the branch parameter.
fn parse_top_via(value: &str) -> Result<Option<String>, ParseError> {
    let first = value.split(',').next().unwrap_or("").trim();
    let (protocol, rest) = first.split_once([' ', '\t']).ok_or(ParseError::Malformed("bad Via"))?;
    let mut parts = protocol.split('/');
    let name = parts.next().unwrap_or("");
    let version = parts.next().unwrap_or("");
    let transport = parts.next().unwrap_or("");
    if !name.trim().eq_ignore_ascii_case("SIP")
        || version.trim() != "2.0"
        || transport.trim().is_empty()
        || !transport.trim().chars().all(is_token_char)
        || parts.next().is_some()
    {
        return Err(ParseError::Malformed("bad Via protocol"));
    }
    let mut params = rest.split(';');
    let sent_by = params.next().unwrap_or("").trim();
    if sent_by.is_empty() || sent_by.contains([' ', '\t']) {
        return Err(ParseError::Malformed("bad Via sent-by"));
    }
    for p in params {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        if k.trim().eq_ignore_ascii_case("branch") {
            let v = v.trim();
            if v.is_empty() {
                return Err(ParseError::Malformed("empty Via branch"));
            }
            return Ok(Some(v.to_owned()));
        }
    }
    Ok(None)
}

/// `CSeq: 1*DIGIT LWS Method`, the number below 2^31.
fn parse_cseq(value: &str) -> Result<(u32, &str), ParseError> {
    let (num, method) = value.split_once([' ', '\t']).ok_or(ParseError::Malformed("bad CSeq"))?;
    let method = method.trim();
    if num.is_empty()
        || num.len() > 10
        || !num.bytes().all(|b| b.is_ascii_digit())
        || method.is_empty()
        || !method.chars().all(is_token_char)
    {
        return Err(ParseError::Malformed("bad CSeq"));
    }
    let n: u32 = num.parse().map_err(|_| ParseError::Malformed("bad CSeq"))?;
    if n >= 1 << 31 {
        return Err(ParseError::Malformed("CSeq out of range"));
    }
    Ok((n, method))
}

fn parse_content_length(value: &str) -> Result<usize, ParseError> {
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Malformed("bad Content-Length"));
    }
    let n: usize = value.parse().map_err(|_| ParseError::Malformed("bad Content-Length"))?;
    if n > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    Ok(n)
}

/// Random identifiers for one request. The branch carries the RFC 3261 magic cookie so that
/// proxies treat it as a globally unique transaction id; 64 random bits make collisions and
/// blind spoofing of a matching response negligible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub branch: String,
    pub from_tag: String,
    pub call_id: String,
}

impl Ids {
    pub fn random() -> Ids {
        let mut rng = rand::rng();
        Ids {
            branch: format!("z9hG4bK{:016x}", rng.random::<u64>()),
            from_tag: format!("{:08x}", rng.random::<u32>()),
            call_id: format!("{:016x}{:08x}@diemcau", rng.random::<u64>(), rng.random::<u32>()),
        }
    }
}

/// Everything an OPTIONS request says.
#[derive(Debug, Clone)]
pub struct OptionsRequest<'a> {
    pub transport: SipTransport,
    /// Request-URI user; characters outside RFC 3261 `user` are %-escaped, so a configured
    /// value can never inject a header.
    pub user: &'a str,
    pub target: SocketAddr,
    /// Our address as the target sees it (Via, Contact).
    pub local: SocketAddr,
    pub ids: &'a Ids,
}

/// An IP address as a SIP host: IPv6 in brackets.
fn sip_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c) {
            out.push(c);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.is_empty() {
        out.push_str("ping");
    }
    out
}

impl OptionsRequest<'_> {
    /// The request bytes, CRLF-terminated, no body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let user = escape_user(self.user);
        let target = sip_host(self.target.ip());
        let tport = self.target.port();
        let local = sip_host(self.local.ip());
        let lport = self.local.port();
        let Ids {
            branch,
            from_tag,
            call_id,
        } = self.ids;
        let mut s = String::with_capacity(512);
        let _ = write!(
            s,
            "OPTIONS sip:{user}@{target}:{tport} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local}:{lport};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:diemcau@{local}>;tag={from_tag}\r\n\
             To: <sip:{user}@{target}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Contact: <sip:diemcau@{local}:{lport}>\r\n\
             Accept: application/sdp\r\n\
             User-Agent: diemcau/{version}\r\n\
             Content-Length: 0\r\n\r\n",
            transport = self.transport.via_token(),
            version = env!("CARGO_PKG_VERSION"),
        );
        s.into_bytes()
    }
}

/// Whether `resp` answers the request identified by `ids` (Via branch, Call-ID and CSeq).
pub fn matches(resp: &Response, ids: &Ids) -> bool {
    resp.branch.as_deref() == Some(ids.branch.as_str())
        && resp.call_id == ids.call_id
        && resp.cseq == 1
        && resp.cseq_method == "OPTIONS"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        Ids {
            branch: "z9hG4bKabc".into(),
            from_tag: "t1".into(),
            call_id: "c1@diemcau".into(),
        }
    }

    #[test]
    fn request_is_well_formed() {
        let ids = ids();
        let req = OptionsRequest {
            transport: SipTransport::Udp,
            user: "ping me\r\nX: y",
            target: "[::1]:5060".parse().unwrap(),
            local: "[::1]:40000".parse().unwrap(),
            ids: &ids,
        };
        let s = String::from_utf8(req.to_bytes()).unwrap();
        assert!(s.starts_with("OPTIONS sip:ping%20me%0D%0AX%3A%20y@[::1]:5060 SIP/2.0\r\n"));
        assert!(s.contains("Via: SIP/2.0/UDP [::1]:40000;branch=z9hG4bKabc;rport\r\n"));
        assert!(s.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn compact_forms_and_folding_parse() {
        let msg = "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 1.2.3.4:5;rport=5;BRANCH=z9hG4bKabc\r\n\
                   f: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\n ;tag=2\r\ni: c1@diemcau\r\n\
                   CSEQ: 1 OPTIONS\r\nl: 0\r\n\r\n";
        let (r, used) = parse_response(msg.as_bytes(), Framing::Stream).unwrap();
        assert_eq!(used, msg.len());
        assert!(matches(&r, &ids()));
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
    }
}
