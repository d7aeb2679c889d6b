//! Errors read from a ping socket's error queue (`probe::icmp::errqueue::decode`): the control
//! messages the kernel attached (`IP_RECVERR` / `IPV6_RECVERR`: the extended error and the
//! router's address) and the echo request they are about. The first byte picks the family and
//! where the request ends; the rest is the request, then the control messages. Also checks
//! that a well-formed Time Exceeded built from the input decodes to its router.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use diemcau::probe::icmp::errqueue::decode;
use diemcau::probe::icmp::packet::Reply;
use libfuzzer_sys::fuzz_target;

const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let to = if selector & 1 == 0 { V4 } else { V6 };
    let (request, control) = rest.split_at(usize::from(selector >> 1).min(rest.len()));
    match decode(request, to, control) {
        None => {}
        Some(Reply::Error { to: t, .. }) => assert_eq!(t, to),
        Some(other) => panic!("an error queue gave {other:?}"),
    }

    // A Time Exceeded as the kernel writes it, about our request: it names its router.
    let byte = |i: usize| rest.get(i).copied().unwrap_or(0);
    let (level, ty, origin, icmp_type) = match to {
        IpAddr::V4(_) => (libc::SOL_IP, libc::IP_RECVERR, 2u8, 11u8),
        IpAddr::V6(_) => (libc::SOL_IPV6, libc::IPV6_RECVERR, 3, 3),
    };
    let router: IpAddr = match to {
        IpAddr::V4(_) => Ipv4Addr::new(byte(0), byte(1), byte(2), byte(3)).into(),
        IpAddr::V6(_) => Ipv6Addr::from(std::array::from_fn::<u8, 16, _>(byte)).into(),
    };
    let mut err = vec![0u8; 16];
    err[4] = origin;
    err[5] = icmp_type;
    match router {
        IpAddr::V4(a) => {
            let mut sa = vec![0u8; 16];
            sa[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            sa[4..8].copy_from_slice(&a.octets());
            err.extend(sa);
        }
        IpAddr::V6(a) => {
            let mut sa = vec![0u8; 28];
            sa[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            sa[8..24].copy_from_slice(&a.octets());
            err.extend(sa);
        }
    }
    let len = size_of::<libc::cmsghdr>() + err.len();
    let mut cmsg = len.to_ne_bytes().to_vec();
    cmsg.extend(level.to_ne_bytes());
    cmsg.extend(ty.to_ne_bytes());
    cmsg.extend(&err);
    cmsg.resize(len.next_multiple_of(8), 0);
    let mut echo = [0u8; 8];
    echo[0] = if to.is_ipv4() { 8 } else { 128 };
    echo[4..8].copy_from_slice(&[byte(4), byte(5), byte(6), byte(7)]);
    let want = Reply::Error {
        from: router,
        to,
        ident: u16::from_be_bytes([byte(4), byte(5)]),
        seq: u16::from_be_bytes([byte(6), byte(7)]),
        time_exceeded: true,
    };
    assert_eq!(decode(&echo, to, &cmsg), Some(want));
});
