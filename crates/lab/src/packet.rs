//! Packet parsing and reply building for the emulator hot path.
//!
//! Parsing borrows the read buffer (etherparse slices, no allocation); replies are
//! written into a caller-provided, reused `Vec<u8>` so steady state allocates nothing.

use std::net::IpAddr;

use etherparse::icmpv4::TimeExceededCode;
use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

use crate::sip;

/// TTL / hop limit of emulated replies (a typical Linux host default).
const REPLY_TTL: u8 = 64;

/// What arrived, reduced to what the emulator needs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind<'a> {
    Echo {
        id: u16,
        seq: u16,
        payload: &'a [u8],
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: &'a [u8],
    },
    Tcp(TcpInfo),
    /// Valid IP but nothing we answer (other ICMP types, MLD, fragments, ...).
    Other,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpInfo {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack_no: u32,
    pub syn: bool,
    pub ack: bool,
    pub rst: bool,
    pub fin: bool,
    pub payload_len: u32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Parsed<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit, as sent (the monitor's kernel does not decrement it).
    pub ttl: u8,
    pub kind: Kind<'a>,
}

/// Parses one raw IP packet as read from the TUN device (no packet-info header).
/// `Err(())` means malformed: the caller counts and drops it.
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed<'_>, ()> {
    let p = SlicedPacket::from_ip(buf).map_err(|_| ())?;
    let (src, dst, ttl, fragmented) = match &p.net {
        Some(NetSlice::Ipv4(v4)) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
            v4.header().ttl(),
            v4.is_payload_fragmented(),
        ),
        Some(NetSlice::Ipv6(v6)) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
            v6.header().hop_limit(),
            v6.is_payload_fragmented(),
        ),
        _ => return Err(()),
    };
    if fragmented {
        return Ok(Parsed {
            src,
            dst,
            ttl,
            kind: Kind::Other,
        });
    }
    let kind = match &p.transport {
        Some(TransportSlice::Icmpv4(icmp)) => match icmp.icmp_type() {
            Icmpv4Type::EchoRequest(h) => Kind::Echo {
                id: h.id,
                seq: h.seq,
                payload: icmp.payload(),
            },
            _ => Kind::Other,
        },
        Some(TransportSlice::Icmpv6(icmp)) => match icmp.icmp_type() {
            Icmpv6Type::EchoRequest(h) => Kind::Echo {
                id: h.id,
                seq: h.seq,
                payload: icmp.payload(),
            },
            _ => Kind::Other,
        },
        Some(TransportSlice::Udp(u)) => Kind::Udp {
            sport: u.source_port(),
            dport: u.destination_port(),
            payload: u.payload(),
        },
        Some(TransportSlice::Tcp(t)) => Kind::Tcp(TcpInfo {
            sport: t.source_port(),
            dport: t.destination_port(),
            seq: t.sequence_number(),
            ack_no: t.acknowledgment_number(),
            syn: t.syn(),
            ack: t.ack(),
            rst: t.rst(),
            fin: t.fin(),
            payload_len: t.payload().len() as u32,
        }),
        _ => Kind::Other,
    };
    Ok(Parsed { src, dst, ttl, kind })
}

/// IP layer of a reply: source and destination swapped relative to the request.
fn reply_ip(req: &Parsed<'_>) -> Option<etherparse::PacketBuilderStep<etherparse::IpHeaders>> {
    match (req.dst, req.src) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(PacketBuilder::ipv4(s.octets(), d.octets(), REPLY_TTL)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(PacketBuilder::ipv6(s.octets(), d.octets(), REPLY_TTL)),
        _ => None,
    }
}

/// Writes an ICMP(v6) echo reply with the same id/seq/payload into `out`.
pub(crate) fn build_echo_reply(req: &Parsed<'_>, id: u16, seq: u16, payload: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let Some(ip) = reply_ip(req) else {
        return false;
    };
    let res = match req.src {
        IpAddr::V4(_) => ip.icmpv4_echo_reply(id, seq).write(out, payload),
        IpAddr::V6(_) => ip.icmpv6_echo_reply(id, seq).write(out, payload),
    };
    res.is_ok()
}

/// Bytes of the invoking packet an ICMPv6 error quotes: as much as fits in the IPv6
/// minimum MTU with the error's own IPv6 (40) and ICMPv6 (8) headers (RFC 4443 §2.4 (c)).
const V6_QUOTE_MAX: usize = 1280 - 40 - 8;

/// Writes the ICMP Time Exceeded (v4 type 11 code 0, v6 type 3 code 0) that router `from`
/// sends back to the request's source when the request's TTL runs out there. It quotes the
/// request as that router received it (TTL / hop limit 1): IPv4 the whole header and the
/// first 8 bytes of the payload (RFC 792), IPv6 as much as fits in 1280 bytes (RFC 4443).
/// `raw` is the request exactly as read from the device; false if it cannot be built.
pub(crate) fn build_time_exceeded(
    raw: &[u8],
    req: &Parsed<'_>,
    from: IpAddr,
    quote: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    quote.clear();
    match (from, req.src) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            let ihl = usize::from(raw.first().map_or(0, |b| b & 0x0f)) * 4;
            let total = raw
                .get(2..4)
                .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                .min(raw.len());
            if ihl < 20 || total < ihl {
                return false;
            }
            quote.extend_from_slice(&raw[..(ihl + 8).min(total)]);
            quote[8] = quote[8].min(1);
            quote[10..12].copy_from_slice(&[0, 0]);
            let sum = ipv4_checksum(&quote[..ihl]);
            quote[10..12].copy_from_slice(&sum.to_be_bytes());
            PacketBuilder::ipv4(from.octets(), to.octets(), REPLY_TTL)
                .icmpv4(Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit))
                .write(out, quote)
                .is_ok()
        }
        (IpAddr::V6(from), IpAddr::V6(to)) => {
            if raw.len() < 40 {
                return false;
            }
            quote.extend_from_slice(&raw[..raw.len().min(V6_QUOTE_MAX)]);
            quote[7] = quote[7].min(1);
            PacketBuilder::ipv6(from.octets(), to.octets(), REPLY_TTL)
                .icmpv6(Icmpv6Type::TimeExceeded(
                    etherparse::icmpv6::TimeExceededCode::HopLimitExceeded,
                ))
                .write(out, quote)
                .is_ok()
        }
        _ => false,
    }
}

/// The IPv4 header checksum (RFC 791) of `header` with its checksum field zeroed.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes a UDP datagram from the request's destination back to its source.
pub(crate) fn build_udp_reply(req: &Parsed<'_>, sport: u16, dport: u16, payload: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let Some(ip) = reply_ip(req) else {
        return false;
    };
    ip.udp(dport, sport).write(out, payload).is_ok()
}

/// What to answer to a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpAction {
    SynAck,
    RstAck,
    Rst,
    Ignore,
}

/// Minimal stateless TCP: SYN to an open port gets SYN-ACK, SYN to a closed port gets
/// RST-ACK, the handshake's final ACK (and RSTs) are ignored, anything else is reset so
/// the client's socket does not hang.
pub(crate) fn tcp_action(t: &TcpInfo, open: bool) -> TcpAction {
    if t.rst {
        TcpAction::Ignore
    } else if t.syn && !t.ack {
        if open { TcpAction::SynAck } else { TcpAction::RstAck }
    } else if t.ack && !t.syn && !t.fin && t.payload_len == 0 {
        TcpAction::Ignore
    } else if t.ack {
        TcpAction::Rst
    } else {
        TcpAction::RstAck
    }
}

/// Builds the TCP reply for `action`. `isn` is our initial sequence number for SYN-ACKs.
pub(crate) fn build_tcp_reply(req: &Parsed<'_>, t: &TcpInfo, action: TcpAction, isn: u32, out: &mut Vec<u8>) -> bool {
    out.clear();
    let Some(ip) = reply_ip(req) else {
        return false;
    };
    let seg_len = t.payload_len + u32::from(t.syn) + u32::from(t.fin);
    let res = match action {
        TcpAction::SynAck => ip
            .tcp(t.dport, t.sport, isn, 65535)
            .syn()
            .ack(t.seq.wrapping_add(1))
            .write(out, &[]),
        TcpAction::RstAck => ip
            .tcp(t.dport, t.sport, 0, 0)
            .rst()
            .ack(t.seq.wrapping_add(seg_len))
            .write(out, &[]),
        TcpAction::Rst => ip.tcp(t.dport, t.sport, t.ack_no, 0).rst().write(out, &[]),
        TcpAction::Ignore => return false,
    };
    res.is_ok()
}

/// Builds the SIP response datagram for an OPTIONS request.
#[allow(clippy::too_many_arguments)] // hot path: borrowed pieces, no intermediate struct
pub(crate) fn build_sip_reply(
    req: &Parsed<'_>,
    sport: u16,
    dport: u16,
    request: &sip::OptionsRequest<'_>,
    status: sip::Status,
    tag: u32,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> bool {
    sip::write_response(request, status, tag, scratch);
    build_udp_reply(req, sport, dport, scratch, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_roundtrip_v4_v6() {
        for (s, d) in [("100.127.255.254", "198.18.0.7"), ("fd00:1ab::1", "2001:2::7")] {
            let (s, d): (IpAddr, IpAddr) = (s.parse().expect("ip"), d.parse().expect("ip"));
            let mut req = Vec::new();
            match (s, d) {
                (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64)
                    .icmpv4_echo_request(7, 9)
                    .write(&mut req, b"hello"),
                (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64)
                    .icmpv6_echo_request(7, 9)
                    .write(&mut req, b"hello"),
                _ => unreachable!(),
            }
            .expect("build");
            let p = parse(&req).expect("parse");
            let Kind::Echo { id, seq, payload } = p.kind else {
                panic!("not echo")
            };
            assert_eq!((id, seq, payload), (7, 9, &b"hello"[..]));
            let mut out = Vec::new();
            assert!(build_echo_reply(&p, id, seq, payload, &mut out));
            let r = SlicedPacket::from_ip(&out).expect("reply parses");
            match r.transport {
                Some(TransportSlice::Icmpv4(i)) => {
                    assert!(matches!(i.icmp_type(), Icmpv4Type::EchoReply(h) if h.id == 7 && h.seq == 9));
                    assert_eq!(i.header().icmp_type.calc_checksum(i.payload()), i.checksum());
                }
                Some(TransportSlice::Icmpv6(i)) => {
                    assert!(matches!(i.icmp_type(), Icmpv6Type::EchoReply(h) if h.id == 7 && h.seq == 9));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn time_exceeded_quotes_the_request_v4_v6() {
        let big = [0xabu8; 1400];
        for (s, d, r, payload) in [
            ("100.127.255.254", "198.18.0.7", "198.19.0.1", &b"diemcau-lab-probe"[..]),
            ("fd00:1ab::1", "2001:2::7", "2001:2:ff::1", &big[..]),
        ] {
            let (s, d, r): (IpAddr, IpAddr, IpAddr) =
                (s.parse().expect("ip"), d.parse().expect("ip"), r.parse().expect("ip"));
            let mut req = Vec::new();
            match (s, d) {
                (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 3)
                    .icmpv4_echo_request(0x4242, 17)
                    .write(&mut req, payload),
                (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 3)
                    .icmpv6_echo_request(0x4242, 17)
                    .write(&mut req, payload),
                _ => unreachable!(),
            }
            .expect("build");
            let p = parse(&req).expect("parse");
            assert_eq!(p.ttl, 3);
            let (mut quote, mut out) = (Vec::new(), Vec::new());
            assert!(build_time_exceeded(&req, &p, r, &mut quote, &mut out));
            let te = SlicedPacket::from_ip(&out).expect("time exceeded parses");
            let quoted = match te.transport {
                Some(TransportSlice::Icmpv4(i)) => {
                    assert_eq!(
                        i.icmp_type(),
                        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit)
                    );
                    assert_eq!(i.header().icmp_type.calc_checksum(i.payload()), i.checksum());
                    assert_eq!(i.payload().len(), 20 + 8, "IPv4 header + 8 bytes");
                    i.payload().to_vec()
                }
                Some(TransportSlice::Icmpv6(i)) => {
                    assert!(matches!(i.icmp_type(), Icmpv6Type::TimeExceeded(_)));
                    assert_eq!(i.payload().len(), 1232, "as much as fits in 1280");
                    assert_eq!(out.len(), 1280);
                    i.payload().to_vec()
                }
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(te.net.as_ref().map(|n| n.is_ipv4()), Some(r.is_ipv4()));
            // The quoted request: the router received it with TTL 1, otherwise unchanged.
            let (src, dst, ttl) = if s.is_ipv4() {
                let h = etherparse::Ipv4Header::from_slice(&quoted).expect("quoted header").0;
                assert_eq!(h.header_checksum, h.calc_header_checksum(), "quoted IPv4 checksum");
                (IpAddr::from(h.source), IpAddr::from(h.destination), h.time_to_live)
            } else {
                let h = etherparse::Ipv6Header::from_slice(&quoted).expect("quoted header").0;
                (IpAddr::from(h.source), IpAddr::from(h.destination), h.hop_limit)
            };
            assert_eq!((src, dst, ttl), (s, d, 1));
            let icmp_at = if s.is_ipv4() { 20 } else { 40 };
            assert_eq!(
                &quoted[icmp_at + 4..icmp_at + 8],
                &[0x42, 0x42, 0, 17],
                "id and sequence"
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x45, 0, 0, 200, 1, 2, 3]).is_err());
        assert!(parse(&[0x60; 10]).is_err());
        assert!(parse(&[0xff; 64]).is_err());
    }

    #[test]
    fn tcp_actions() {
        let base = TcpInfo {
            sport: 1,
            dport: 2,
            seq: 10,
            ack_no: 0,
            syn: true,
            ack: false,
            rst: false,
            fin: false,
            payload_len: 0,
        };
        assert_eq!(tcp_action(&base, true), TcpAction::SynAck);
        assert_eq!(tcp_action(&base, false), TcpAction::RstAck);
        let ack = TcpInfo {
            syn: false,
            ack: true,
            ..base
        };
        assert_eq!(tcp_action(&ack, true), TcpAction::Ignore);
        let fin = TcpInfo { fin: true, ..ack };
        assert_eq!(tcp_action(&fin, true), TcpAction::Rst);
        let rst = TcpInfo { rst: true, ..ack };
        assert_eq!(tcp_action(&rst, true), TcpAction::Ignore);
    }

    /// Mutation fuzzing: truncated / bit-flipped versions of valid requests must never
    /// panic in parsing, SIP parsing or reply building.
    #[test]
    fn mutated_packets_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(99);
        let sip = b"OPTIONS sip:a@198.18.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\nFrom: <sip:p@l>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let (s4, d4) = ([100, 127, 255, 254], [198, 18, 0, 1]);
        let (s6, d6) = ([0xfd; 16], [0x20; 16]);
        let mut seeds: Vec<Vec<u8>> = Vec::new();
        let mut v = Vec::new();
        let _ = PacketBuilder::ipv4(s4, d4, 64)
            .icmpv4_echo_request(1, 2)
            .write(&mut v, b"abc");
        seeds.push(std::mem::take(&mut v));
        let _ = PacketBuilder::ipv6(s6, d6, 64)
            .icmpv6_echo_request(1, 2)
            .write(&mut v, b"abc");
        seeds.push(std::mem::take(&mut v));
        let _ = PacketBuilder::ipv4(s4, d4, 64).udp(5062, 5060).write(&mut v, sip);
        seeds.push(std::mem::take(&mut v));
        let _ = PacketBuilder::ipv6(s6, d6, 64).udp(5062, 5060).write(&mut v, sip);
        seeds.push(std::mem::take(&mut v));
        let _ = PacketBuilder::ipv4(s4, d4, 64)
            .tcp(40000, 80, 1, 1000)
            .syn()
            .write(&mut v, &[]);
        seeds.push(std::mem::take(&mut v));
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        for i in 0..50_000 {
            let mut pkt = seeds[i % seeds.len()].clone();
            for _ in 0..rng.random_range(1..4) {
                let pos = rng.random_range(0..pkt.len());
                pkt[pos] = rng.random();
            }
            if rng.random_bool(0.3) {
                let cut = rng.random_range(0..pkt.len());
                pkt.truncate(cut);
            }
            let Ok(p) = parse(&pkt) else { continue };
            let from: IpAddr = if p.src.is_ipv4() {
                [198, 19, 0, 1].into()
            } else {
                [0x20; 16].into()
            };
            build_time_exceeded(&pkt, &p, from, &mut scratch, &mut out);
            match p.kind {
                Kind::Echo { id, seq, payload } => {
                    build_echo_reply(&p, id, seq, payload, &mut out);
                }
                Kind::Udp { sport, dport, payload } => {
                    if let Ok(r) = sip::parse_options(payload) {
                        build_sip_reply(&p, sport, dport, &r, sip::Status::Ok200, 1, &mut scratch, &mut out);
                    }
                }
                Kind::Tcp(t) => {
                    build_tcp_reply(&p, &t, tcp_action(&t, true), 5, &mut out);
                }
                Kind::Other => {}
            }
        }
    }
}
