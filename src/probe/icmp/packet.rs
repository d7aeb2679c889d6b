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

/// What a received ICMP packet means for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An echo reply from `from`.
    Echo { from: IpAddr, ident: u16, seq: u16 },
    /// An ICMP error (unreachable, time exceeded) about a request we sent to `to`.
    Error { to: IpAddr, ident: u16, seq: u16 },
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
                    to: IpAddr::V4(p.get_real_dest()),
                    ident,
                    seq,
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
                    to: IpAddr::V6(p.get_real_dest()),
                    ident,
                    seq,
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
