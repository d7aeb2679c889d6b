//! Echo request building (into a reused buffer) and reply decoding (through surge-ping's
//! decoders, which handle raw vs ping sockets and the requests quoted inside ICMP errors).

use std::net::{IpAddr, Ipv4Addr};

use pnet_packet::icmp::IcmpTypes;
use pnet_packet::icmpv6::Icmpv6Types;
use surge_ping::{Icmpv4Packet, Icmpv6Packet};

use super::socket::{Family, SocketKind};

/// Payload carried by every echo request: a recognisable marker, so a capture shows who sent it.
pub const PAYLOAD: &[u8; 16] = b"diemcau-probe-v1";
pub const REQUEST_LEN: usize = 8 + PAYLOAD.len();
/// A trace request's payload before its last two bytes, which balance the sequence number.
const TRACE_MARKER: &[u8; 14] = b"diemcau-trace-";

/// Writes an echo request into `buf`. For ping sockets the kernel fills in the identifier and
/// checksum; for raw IPv6 it fills in the checksum.
pub fn build_request(buf: &mut [u8; REQUEST_LEN], family: Family, kind: SocketKind, ident: u16, seq: u16) {
    buf[0] = match family {
        Family::V4 => 8,   // ICMP echo request
        Family::V6 => 128, // ICMPv6 echo request
    };
    buf[1] = 0;
    buf[2..4].copy_from_slice(&[0, 0]);
    buf[4..6].copy_from_slice(&ident.to_be_bytes());
    buf[6..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..].copy_from_slice(PAYLOAD);
    if family == Family::V4 && kind == SocketKind::Raw {
        let sum = pnet_packet::util::checksum(&buf[..], 1);
        buf[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// Writes a trace request: an echo request whose last two payload bytes are the one's
/// complement of its sequence number, so the ICMP checksum is the same for every request to an
/// endpoint (Paris traceroute: load balancers that hash the first transport word, checksum
/// included, send every TTL of a trace down one path). The identifier is the socket's, as for
/// regular requests.
pub fn build_trace_request(buf: &mut [u8; REQUEST_LEN], family: Family, kind: SocketKind, ident: u16, seq: u16) {
    build_request(buf, family, kind, ident, seq);
    buf[8..8 + TRACE_MARKER.len()].copy_from_slice(TRACE_MARKER);
    buf[REQUEST_LEN - 2..].copy_from_slice(&(!seq).to_be_bytes());
    if family == Family::V4 && kind == SocketKind::Raw {
        buf[2..4].copy_from_slice(&[0, 0]);
        let sum = pnet_packet::util::checksum(&buf[..], 1);
        buf[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// What a received ICMP packet means for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An echo reply from `from`.
    Echo { from: IpAddr, ident: u16, seq: u16 },
    /// An ICMP error (unreachable, time exceeded) from `from` about a request we sent to `to`.
    Error {
        from: IpAddr,
        to: IpAddr,
        ident: u16,
        seq: u16,
        /// Time Exceeded (the request's TTL ran out at `from`) rather than Unreachable.
        time_exceeded: bool,
    },
    /// Not ours to handle (e.g. an echo request seen by a raw socket).
    Ignored,
}

/// Decodes a datagram; `Err` means malformed (counted by the caller, never fatal).
pub fn parse(data: &[u8], from: IpAddr, kind: SocketKind) -> Result<Reply, surge_ping::SurgeError> {
    match from {
        IpAddr::V4(src) => {
            let ty = match kind {
                SocketKind::Dgram => socket2::Type::DGRAM,
                SocketKind::Raw => socket2::Type::RAW,
            };
            let p = match Icmpv4Packet::decode(data, ty, src, Ipv4Addr::UNSPECIFIED) {
                Ok(p) => p,
                Err(surge_ping::SurgeError::EchoRequestPacket) => return Ok(Reply::Ignored),
                Err(e) => return Err(e),
            };
            let (ident, seq) = (p.get_identifier().0, p.get_sequence().0);
            Ok(if p.get_icmp_type() == IcmpTypes::EchoReply {
                Reply::Echo { from, ident, seq }
            } else if [IcmpTypes::DestinationUnreachable, IcmpTypes::TimeExceeded].contains(&p.get_icmp_type()) {
                Reply::Error {
                    from,
                    to: IpAddr::V4(p.get_real_dest()),
                    ident,
                    seq,
                    time_exceeded: p.get_icmp_type() == IcmpTypes::TimeExceeded,
                }
            } else {
                Reply::Ignored
            })
        }
        IpAddr::V6(src) => {
            let p = match Icmpv6Packet::decode(data, src) {
                Ok(p) => p,
                Err(surge_ping::SurgeError::EchoRequestPacket) => return Ok(Reply::Ignored),
                Err(e) => return Err(e),
            };
            let (ident, seq) = (p.get_identifier().0, p.get_sequence().0);
            Ok(if p.get_icmpv6_type() == Icmpv6Types::EchoReply {
                Reply::Echo { from, ident, seq }
            } else if [Icmpv6Types::DestinationUnreachable, Icmpv6Types::TimeExceeded].contains(&p.get_icmpv6_type()) {
                Reply::Error {
                    from,
                    to: IpAddr::V6(p.get_real_dest()),
                    ident,
                    seq,
                    time_exceeded: p.get_icmpv6_type() == Icmpv6Types::TimeExceeded,
                }
            } else {
                Reply::Ignored
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnet_packet::icmp;

    #[test]
    fn raw_v4_request_has_valid_checksum() {
        let mut buf = [0u8; REQUEST_LEN];
        build_request(&mut buf, Family::V4, SocketKind::Raw, 0x1234, 7);
        assert_eq!(
            pnet_packet::util::checksum(&buf, 1),
            u16::from_be_bytes([buf[2], buf[3]])
        );
        let packet = icmp::IcmpPacket::new(&buf).unwrap();
        assert_eq!(icmp::checksum(&packet), u16::from_be_bytes([buf[2], buf[3]]));
    }

    #[test]
    fn every_trace_request_to_an_endpoint_has_the_same_checksum() {
        let sum = |seq| {
            let mut buf = [0u8; REQUEST_LEN];
            build_trace_request(&mut buf, Family::V4, SocketKind::Raw, 0x1234, seq);
            let stored = u16::from_be_bytes([buf[2], buf[3]]);
            assert_eq!(pnet_packet::util::checksum(&buf, 1), stored, "valid");
            stored
        };
        let first = sum(0);
        assert!((1..2000).chain([0xfffe, 0xffff]).all(|seq| sum(seq) == first));
    }

    #[test]
    fn a_time_exceeded_names_the_router_and_the_request() {
        // A raw IPv4 read: router 10.0.0.1 → 10.0.0.9, Time Exceeded quoting our request
        // 10.0.0.9 → 10.9.9.9 (TTL 1).
        let mut request = [0u8; REQUEST_LEN];
        build_trace_request(&mut request, Family::V4, SocketKind::Raw, 0x4242, 77);
        let ip = |src: [u8; 4], dst: [u8; 4], ttl: u8, len: usize| {
            let mut h = vec![0x45, 0, 0, len as u8, 0, 0, 0, 0, ttl, 1, 0, 0];
            h.extend(src);
            h.extend(dst);
            h
        };
        let quoted = [ip([10, 0, 0, 9], [10, 9, 9, 9], 1, 20 + REQUEST_LEN), request.to_vec()].concat();
        let mut icmp = vec![11, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend(&quoted);
        let sum = pnet_packet::util::checksum(&icmp, 1);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let data = [ip([10, 0, 0, 1], [10, 0, 0, 9], 64, 20 + icmp.len()), icmp].concat();
        let from: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            parse(&data, from, SocketKind::Raw).unwrap(),
            Reply::Error {
                from,
                to: "10.9.9.9".parse().unwrap(),
                ident: 0x4242,
                seq: 77,
                time_exceeded: true,
            }
        );
    }

    #[test]
    fn dgram_reply_is_decoded() {
        let mut buf = [0u8; REQUEST_LEN];
        build_request(&mut buf, Family::V4, SocketKind::Dgram, 9, 513);
        buf[0] = 0; // turn it into a reply
        let from: IpAddr = "127.0.0.9".parse().unwrap();
        assert_eq!(
            parse(&buf, from, SocketKind::Dgram).unwrap(),
            Reply::Echo {
                from,
                ident: 9,
                seq: 513
            }
        );
    }

    #[test]
    fn garbage_is_an_error_or_ignored_never_a_panic() {
        let from: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let mut x: u32 = 12345;
        for len in 0..200 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            for kind in [SocketKind::Dgram, SocketKind::Raw] {
                let _ = parse(&data, from, kind);
                let _ = parse(&data, v6, kind);
            }
        }
    }
}
