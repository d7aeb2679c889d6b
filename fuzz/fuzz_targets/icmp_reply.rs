//! ICMP and ICMPv6 datagrams as the engine reads them (`probe::icmp::packet::parse`): echo
//! replies and errors quoting our request, from ping (dgram) and raw sockets of both families.
//! The first byte picks the family and socket kind; the rest is the datagram. Also checks that
//! a reply to a request built by `build_request` comes back with its identifier and sequence.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use diemcau::probe::icmp::packet::{REQUEST_LEN, Reply, build_request, parse};
use diemcau::probe::icmp::socket::{Family, SocketKind};
use libfuzzer_sys::fuzz_target;

const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));

fuzz_target!(|data: &[u8]| {
    let Some((&selector, datagram)) = data.split_first() else {
        return;
    };
    let from = if selector & 1 == 0 { V4 } else { V6 };
    let kind = if selector & 2 == 0 {
        SocketKind::Dgram
    } else {
        SocketKind::Raw
    };
    if let Ok(Reply::Echo { from: f, .. }) = parse(datagram, from, kind) {
        assert_eq!(f, from);
    }

    // Round trip: our own request, answered.
    let ident = u16::from_be_bytes([data.get(1).copied().unwrap_or(0), data.get(2).copied().unwrap_or(0)]);
    let seq = u16::from_be_bytes([data.get(3).copied().unwrap_or(0), data.get(4).copied().unwrap_or(0)]);
    let family = if from.is_ipv4() { Family::V4 } else { Family::V6 };
    let mut request = [0u8; REQUEST_LEN];
    build_request(&mut request, family, kind, ident, seq);
    let mut reply = request.to_vec();
    reply[0] = if from.is_ipv4() { 0 } else { 129 };
    if from.is_ipv4() && kind == SocketKind::Raw {
        // Raw IPv4 sockets read the IP header too.
        let mut packet = ipv4_header(from, (20 + reply.len()) as u16).to_vec();
        packet.extend_from_slice(&reply);
        reply = packet;
    }
    assert_eq!(parse(&reply, from, kind).ok(), Some(Reply::Echo { from, ident, seq }));
});

fn ipv4_header(source: IpAddr, total_len: u16) -> [u8; 20] {
    let IpAddr::V4(source) = source else { unreachable!() };
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total_len.to_be_bytes());
    h[8] = 64;
    h[9] = 1;
    h[12..16].copy_from_slice(&source.octets());
    h[16..20].copy_from_slice(&[192, 0, 2, 1]);
    h
}
