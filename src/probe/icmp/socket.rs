//! The ICMP sockets: one per address family, shared by every endpoint.
//!
//! A Linux "ping" socket (SOCK_DGRAM, no privilege beyond `net.ipv4.ping_group_range`) is tried
//! first; a raw socket (CAP_NET_RAW) is the fallback. Replies are read in batches with
//! `recvmmsg(2)` and stamped by the kernel (`SO_TIMESTAMPNS`) on arrival, so the RTT does not
//! include the time a reply waits in the socket for the engine's next wake-up.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::settings::SocketPreference;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv4() { Family::V4 } else { Family::V6 }
    }
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// Unprivileged ping socket: the kernel owns the echo identifier and filters replies.
    Dgram,
    /// Raw socket: sees every ICMP packet; IPv4 reads include the IP header.
    Raw,
}

impl SocketKind {
    pub fn name(self) -> &'static str {
        match self {
            SocketKind::Dgram => "dgram (unprivileged ping socket)",
            SocketKind::Raw => "raw (CAP_NET_RAW)",
        }
    }
}

pub struct IcmpSocket {
    pub socket: Socket,
    pub family: Family,
    pub kind: SocketKind,
}

/// Why no ICMP socket could be opened, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open an ICMP socket for {family}: ping socket: {dgram}; raw socket: {raw}.\n\
     To fix, do one of:\n  \
     - allow ping sockets for your group: sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" (now \"{range}\"; your gid is {gid})\n  \
     - give the binary the raw-socket capability: sudo setcap cap_net_raw+ep {exe}\n  \
     - run it as a service with AmbientCapabilities=CAP_NET_RAW (see deploy/systemd/diemcau.service)"
)]
pub struct OpenError {
    pub family: &'static str,
    pub dgram: String,
    pub raw: String,
    pub range: String,
    pub gid: u32,
    pub exe: String,
}

/// Receive buffer: enough for a few ticks of replies at national scale.
const RECV_BUFFER_BYTES: usize = 8 << 20;

pub fn open(family: Family, preference: SocketPreference) -> Result<IcmpSocket, OpenError> {
    let try_kind = |kind| open_kind(family, kind);
    let dgram = match preference {
        SocketPreference::Raw => Err(io::Error::other("not tried (probe.socket = \"raw\")")),
        _ => try_kind(SocketKind::Dgram),
    };
    let dgram_err = match dgram {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    let raw = match preference {
        SocketPreference::Dgram => Err(io::Error::other("not tried (probe.socket = \"dgram\")")),
        _ => try_kind(SocketKind::Raw),
    };
    match raw {
        Ok(s) => Ok(s),
        Err(raw_err) => Err(OpenError {
            family: family.name(),
            dgram: dgram_err.to_string(),
            raw: raw_err.to_string(),
            range: std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|_| "unreadable".into()),
            gid: nix::unistd::getegid().as_raw(),
            exe: std::env::current_exe().map_or_else(|_| "diemcau".into(), |p| p.display().to_string()),
        }),
    }
}

fn open_kind(family: Family, kind: SocketKind) -> io::Result<IcmpSocket> {
    let (domain, protocol) = match family {
        Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let ty = match kind {
        SocketKind::Dgram => Type::DGRAM,
        SocketKind::Raw => Type::RAW,
    };
    let socket = Socket::new(domain, ty, Some(protocol))?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    // Best effort: a bigger buffer only matters at scale, and FORCE needs CAP_NET_ADMIN.
    if nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &RECV_BUFFER_BYTES).is_err() {
        let _ = socket.set_recv_buffer_size(RECV_BUFFER_BYTES);
    }
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
        .map_err(io::Error::from)?;
    if kind == SocketKind::Raw {
        install_type_filter(&socket, family)?;
    }
    Ok(IcmpSocket { socket, family, kind })
}

/// A ping socket of its own for the trace requests of a ping-socket lane: its error queue is
/// on (see [`super::errqueue`]), which the regular lane's socket must not have.
pub fn open_trace(family: Family) -> io::Result<IcmpSocket> {
    let socket = open_kind(family, SocketKind::Dgram)?;
    super::errqueue::enable(&socket.socket, family)?;
    Ok(socket)
}

/// Raw sockets see every ICMP packet on the host (our own echo requests on loopback too): let the
/// kernel pass only echo replies and the errors that answer a request.
fn install_type_filter(socket: &Socket, family: Family) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    let rc = match family {
        Family::V4 => {
            // ICMP_FILTER (linux/icmp.h): a set bit drops that type.
            let pass: u32 = (1 << 0) | (1 << 3) | (1 << 11); // echo reply, unreachable, time exceeded
            let mask: u32 = !pass;
            // SAFETY: valid fd, pointer to a live u32 of the size given.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_RAW,
                    1,
                    (&raw const mask).cast(),
                    size_of::<u32>() as libc::socklen_t,
                )
            }
        }
        Family::V6 => {
            // ICMP6_FILTER (netinet/icmp6.h): 256 bits, a set bit blocks that type.
            let mut filter = [u32::MAX; 8];
            for ty in [129u32, 1, 3] {
                filter[(ty >> 5) as usize] &= !(1 << (ty & 31));
            }
            // SAFETY: valid fd, pointer to a live [u32; 8] of the size given.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_ICMPV6,
                    1,
                    filter.as_ptr().cast(),
                    size_of::<[u32; 8]>() as libc::socklen_t,
                )
            }
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl IcmpSocket {
    pub fn send_to(&self, packet: &[u8], to: IpAddr) -> io::Result<usize> {
        self.socket.send_to(packet, &SockAddr::from(SocketAddr::new(to, 0)))
    }
}

/// One received datagram as handed to the engine.
pub struct Datagram<'a> {
    pub from: IpAddr,
    pub data: &'a [u8],
    /// Kernel receive time, nanoseconds since the Unix epoch (0 if the kernel gave none).
    pub received_ns: u64,
}

pub const BATCH: usize = 64;
const BUFFER: usize = 512;
const CONTROL: usize = 64;

/// Preallocated `recvmmsg` state: headers, buffers, addresses and control space are set up once
/// and reused for every batch, so receiving allocates nothing.
pub struct RecvBatch {
    headers: Box<[libc::mmsghdr]>,
    iovecs: Box<[libc::iovec]>,
    buffers: Box<[[u8; BUFFER]]>,
    addresses: Box<[libc::sockaddr_storage]>,
    controls: Box<[[u8; CONTROL]]>,
}

// SAFETY: the raw pointers inside point only into the boxed slices owned by the same struct;
// moving the struct to another thread moves their ownership with it.
unsafe impl Send for RecvBatch {}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        // SAFETY: all-zero is a valid value for these plain C structs and byte arrays.
        let zeroed_slice = |n| -> Box<[libc::mmsghdr]> { (0..n).map(|_| unsafe { zeroed() }).collect() };
        let mut batch = RecvBatch {
            headers: zeroed_slice(BATCH),
            iovecs: (0..BATCH)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            buffers: vec![[0u8; BUFFER]; BATCH].into_boxed_slice(),
            // SAFETY: as above.
            addresses: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            controls: vec![[0u8; CONTROL]; BATCH].into_boxed_slice(),
        };
        for i in 0..BATCH {
            batch.iovecs[i] = libc::iovec {
                iov_base: batch.buffers[i].as_mut_ptr().cast(),
                iov_len: BUFFER,
            };
            let h = &mut batch.headers[i].msg_hdr;
            h.msg_iov = &raw mut batch.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_name = (&raw mut batch.addresses[i]).cast();
            h.msg_control = batch.controls[i].as_mut_ptr().cast();
        }
        batch
    }

    /// Reads up to [`BATCH`] datagrams without blocking and hands each to `f`. Returns how many
    /// were read (0 when the socket is empty).
    pub fn receive(&mut self, socket: &IcmpSocket, mut f: impl FnMut(Datagram<'_>)) -> io::Result<usize> {
        for h in self.headers.iter_mut() {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_controllen = CONTROL;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points at live buffers of the lengths it states (set up in new()).
        let n = unsafe {
            libc::recvmmsg(
                socket.socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for i in 0..n {
            let len = (self.headers[i].msg_len as usize).min(BUFFER);
            let Some(from) = socket_address(&self.addresses[i]) else {
                continue;
            };
            let received_ns = kernel_timestamp(&self.headers[i].msg_hdr);
            f(Datagram {
                from,
                data: &self.buffers[i][..len],
                received_ns,
            });
        }
        Ok(n)
    }
}

pub(super) fn socket_address(storage: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            // SAFETY: ss_family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

fn kernel_timestamp(msg: &libc::msghdr) -> u64 {
    // SAFETY: msg was filled by recvmmsg; CMSG_* walk only within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let mut ts = MaybeUninit::<libc::timespec>::uninit();
                std::ptr::copy_nonoverlapping(
                    libc::CMSG_DATA(cmsg),
                    ts.as_mut_ptr().cast::<u8>(),
                    size_of::<libc::timespec>(),
                );
                let ts = ts.assume_init();
                return ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    0
}
