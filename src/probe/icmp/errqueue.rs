//! ICMP errors on a ping socket. The kernel hands a ping (SOCK_DGRAM) socket no ICMP error as
//! a packet: with `IP_RECVERR` / `IPV6_RECVERR` on, each one that quotes a request of this
//! socket is queued on its error queue (`MSG_ERRQUEUE`): the payload is our request as sent,
//! the name its destination, and an `IP_RECVERR` control message carries the ICMP type and
//! the router that sent it (`SO_EE_OFFENDER`).
//!
//! Verified on Linux 6.18 (raw and ping, IPv4 and IPv6): a queued error also sets the
//! socket's pending error, which fails the socket's next send or read once (EHOSTUNREACH).
//! Only the engine's trace sockets turn this on, never the socket regular rounds use, and
//! they drain the queue before each send.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use super::packet::Reply;
use super::socket::{Family, IcmpSocket};

const SO_EE_ORIGIN_ICMP: u8 = 2;
const SO_EE_ORIGIN_ICMP6: u8 = 3;
/// `struct sock_extended_err`: errno, origin, type, code, pad, info, data; the offender's
/// address follows it.
const EXTENDED_ERR_LEN: usize = 16;
/// Errors read per call at most: the rest wait for the next wake-up.
const MAX_PER_CALL: usize = 256;

/// Turns the error queue on for `socket`.
pub fn enable(socket: &socket2::Socket, family: Family) -> io::Result<()> {
    let (level, name) = match family {
        Family::V4 => (libc::SOL_IP, libc::IP_RECVERR),
        Family::V6 => (libc::SOL_IPV6, libc::IPV6_RECVERR),
    };
    let on: libc::c_int = 1;
    // SAFETY: valid fd, pointer to a live c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads the queued errors without blocking; `f` gets each one that decodes as an ICMP error
/// quoting an echo request (`Some`) or not (`None`, to count). Returns how many were read.
pub fn drain(socket: &IcmpSocket, mut f: impl FnMut(Option<Reply>)) -> usize {
    let mut read = 0;
    while read < MAX_PER_CALL {
        let mut data = [0u8; 512];
        let mut control = [0u64; 32];
        // SAFETY: all-zero is a valid sockaddr_storage and msghdr.
        let mut name: libc::sockaddr_storage = unsafe { zeroed() };
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&raw mut name).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 32]>();
        // SAFETY: msg points at live buffers of the lengths it states.
        let n = unsafe {
            libc::recvmsg(
                socket.socket.as_raw_fd(),
                &raw mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            break; // EAGAIN: empty
        }
        read += 1;
        let len = (n as usize).min(data.len());
        let control_len = msg.msg_controllen.min(size_of::<[u64; 32]>());
        // SAFETY: the kernel wrote control_len bytes of the u64 buffer.
        let control = unsafe { std::slice::from_raw_parts(control.as_ptr().cast::<u8>(), control_len) };
        let to = super::socket::socket_address(&name);
        f(to.and_then(|to| decode(&data[..len], to, control)));
    }
    read
}

/// One queued error: `request` our echo request as sent to `to`, `control` the control
/// messages that came with it.
pub fn decode(request: &[u8], to: IpAddr, control: &[u8]) -> Option<Reply> {
    let (level, ty) = match to {
        IpAddr::V4(_) => (libc::SOL_IP, libc::IP_RECVERR),
        IpAddr::V6(_) => (libc::SOL_IPV6, libc::IPV6_RECVERR),
    };
    let err = control_messages(control).find(|(l, t, _)| *l == level && *t == ty)?.2;
    let (origin, icmp_type) = (*err.get(4)?, *err.get(5)?);
    let time_exceeded = match (to, origin) {
        (IpAddr::V4(_), SO_EE_ORIGIN_ICMP) => match icmp_type {
            11 => true,
            3 => false,
            _ => return None,
        },
        (IpAddr::V6(_), SO_EE_ORIGIN_ICMP6) => match icmp_type {
            3 => true,
            1 => false,
            _ => return None,
        },
        _ => return None, // a local error (origin LOCAL): nothing came back from the path
    };
    let from = offender(err.get(EXTENDED_ERR_LEN..)?)?;
    let echo_request = if to.is_ipv4() { 8 } else { 128 };
    if *request.first()? != echo_request {
        return None;
    }
    let word = |i: usize| Some(u16::from_be_bytes([*request.get(i)?, *request.get(i + 1)?]));
    Some(Reply::Error {
        from,
        to,
        ident: word(4)?,
        seq: word(6)?,
        time_exceeded,
    })
}

/// The `sockaddr_in` / `sockaddr_in6` after the extended error.
fn offender(sa: &[u8]) -> Option<IpAddr> {
    let family = i32::from(u16::from_ne_bytes([*sa.first()?, *sa.get(1)?]));
    if family == libc::AF_INET {
        Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(sa.get(4..8)?).ok()?)))
    } else if family == libc::AF_INET6 {
        Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(sa.get(8..24)?).ok()?)))
    } else {
        None
    }
}

/// (level, type, data) of each control message in `buf`, walked by hand so a short or
/// inconsistent buffer ends the walk instead of reading past it.
fn control_messages(buf: &[u8]) -> impl Iterator<Item = (i32, i32, &[u8])> {
    const HEADER: usize = size_of::<libc::cmsghdr>();
    const ALIGN: usize = size_of::<usize>();
    let mut at = 0;
    std::iter::from_fn(move || {
        let header = buf.get(at..at + HEADER)?;
        let len = usize::from_ne_bytes(header[..ALIGN].try_into().ok()?);
        let level = i32::from_ne_bytes(header[ALIGN..ALIGN + 4].try_into().ok()?);
        let ty = i32::from_ne_bytes(header[ALIGN + 4..ALIGN + 8].try_into().ok()?);
        let data = buf.get(at + HEADER..at.checked_add(len)?)?;
        at += len.checked_next_multiple_of(ALIGN)?.max(HEADER);
        Some((level, ty, data))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let len = size_of::<libc::cmsghdr>() + data.len();
        let mut b = len.to_ne_bytes().to_vec();
        b.extend(level.to_ne_bytes());
        b.extend(ty.to_ne_bytes());
        b.extend(data);
        b.resize(len.next_multiple_of(8), 0);
        b
    }

    /// What the kernel queued for a Time Exceeded from 10.9.0.2 (captured on Linux 6.18).
    fn v4_time_exceeded(origin: u8, ty: u8) -> Vec<u8> {
        let mut err = vec![113, 0, 0, 0, origin, ty, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        err.extend((libc::AF_INET as u16).to_ne_bytes());
        err.extend([0, 0, 10, 9, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut control = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &[0; 16]);
        control.extend(cmsg(libc::SOL_IP, libc::IP_RECVERR, &err));
        control
    }

    fn request(ty: u8) -> Vec<u8> {
        let mut r = vec![ty, 0, 0x6d, 0xbf, 0x2c, 0xa0, 0, 7];
        r.extend(b"diemcau-probe-v1");
        r
    }

    #[test]
    fn a_queued_time_exceeded_names_the_router_and_the_request() {
        let to: IpAddr = "10.7.0.5".parse().unwrap();
        assert_eq!(
            decode(&request(8), to, &v4_time_exceeded(SO_EE_ORIGIN_ICMP, 11)),
            Some(Reply::Error {
                from: "10.9.0.2".parse().unwrap(),
                to,
                ident: 0x2ca0,
                seq: 7,
                time_exceeded: true,
            })
        );
        let unreachable = decode(&request(8), to, &v4_time_exceeded(SO_EE_ORIGIN_ICMP, 3));
        assert!(matches!(
            unreachable,
            Some(Reply::Error {
                time_exceeded: false,
                ..
            })
        ));
    }

    #[test]
    fn an_ipv6_error_reads_its_own_level_and_offender() {
        let mut err = vec![113, 0, 0, 0, SO_EE_ORIGIN_ICMP6, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        err.extend((libc::AF_INET6 as u16).to_ne_bytes());
        err.extend([0; 6]);
        err.extend("fd09::2".parse::<Ipv6Addr>().unwrap().octets());
        err.extend([0; 4]);
        let to: IpAddr = "fd07::5".parse().unwrap();
        let control = cmsg(libc::SOL_IPV6, libc::IPV6_RECVERR, &err);
        let got = decode(&request(128), to, &control);
        assert!(
            matches!(got, Some(Reply::Error { from, time_exceeded: true, seq: 7, .. }) if from == "fd09::2".parse::<IpAddr>().unwrap()),
            "{got:?}"
        );
    }

    #[test]
    fn local_errors_other_types_and_truncated_buffers_are_not_hops() {
        let to: IpAddr = "10.7.0.5".parse().unwrap();
        let local = v4_time_exceeded(1, 0);
        assert_eq!(decode(&request(8), to, &local), None);
        assert_eq!(decode(&request(8), to, &v4_time_exceeded(SO_EE_ORIGIN_ICMP, 5)), None);
        assert_eq!(decode(&request(0), to, &v4_time_exceeded(SO_EE_ORIGIN_ICMP, 11)), None);
        let full = v4_time_exceeded(SO_EE_ORIGIN_ICMP, 11);
        for cut in 0..full.len() {
            let _ = decode(&request(8), to, &full[..cut]);
            let _ = decode(&request(8)[..cut.min(24)], to, &full);
        }
        // A length field that points past the buffer ends the walk.
        let mut lying = full.clone();
        lying[..8].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert_eq!(decode(&request(8), to, &lying), None);
    }
}
