//! TTL-limited ICMP echo probes over a raw socket (root in a user namespace has CAP_NET_RAW),
//! and what came back: the echo reply, or an ICMP error (Time Exceeded, Destination
//! Unreachable) with the request it quotes taken apart, so a test can tell which probe a
//! router answered and how it saw it.

use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The request an ICMP error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL / hop limit as the router received it (1 when it expired there).
    pub ttl: u8,
    /// The quoted IPv4 header's checksum is right for its contents (always true for IPv6).
    pub header_checksum_ok: bool,
    pub id: u16,
    pub seq: u16,
}

/// One answer to one of our probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    EchoReply { from: IpAddr, seq: u16 },
    TimeExceeded { from: IpAddr, code: u8, quoted: Quoted },
    Unreachable { from: IpAddr, code: u8, quoted: Quoted },
}

impl Answer {
    pub fn from(&self) -> IpAddr {
        match *self {
            Answer::EchoReply { from, .. } | Answer::TimeExceeded { from, .. } | Answer::Unreachable { from, .. } => {
                from
            }
        }
    }

    pub fn seq(&self) -> u16 {
        match *self {
            Answer::EchoReply { seq, .. } => seq,
            Answer::TimeExceeded { quoted, .. } | Answer::Unreachable { quoted, .. } => quoted.seq,
        }
    }
}

/// A raw ICMP (or ICMPv6) socket sending echo requests with identifier `id`.
pub struct Tracer {
    sock: Socket,
    v6: bool,
    id: u16,
}

impl Tracer {
    /// A raw socket in the calling thread's network namespace.
    pub fn new(v6: bool, id: u16) -> Tracer {
        let sock = if v6 {
            Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
        } else {
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        }
        .expect("raw ICMP socket (needs CAP_NET_RAW, e.g. inside unshare -rn)");
        let _ = sock.set_recv_buffer_size(1 << 20);
        Tracer { sock, v6, id }
    }

    /// Sends echo request `seq` to `dst` with IP TTL (IPv6 hop limit) `ttl`.
    pub fn send(&self, dst: IpAddr, ttl: u8, seq: u16) {
        if self.v6 {
            self.sock
                .set_unicast_hops_v6(u32::from(ttl))
                .expect("IPV6_UNICAST_HOPS");
        } else {
            self.sock.set_ttl_v4(u32::from(ttl)).expect("IP_TTL");
        }
        let mut pkt = [0u8; 24];
        pkt[0] = if self.v6 { 128 } else { 8 };
        pkt[4..6].copy_from_slice(&self.id.to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        pkt[8..].copy_from_slice(b"diemcau-traceprb");
        if !self.v6 {
            // The Internet checksum over the message, skipping its own field (16-bit word 1).
            let c = pnet_packet::util::checksum(&pkt, 1);
            pkt[2..4].copy_from_slice(&c.to_be_bytes());
        } // the kernel computes ICMPv6 checksums on raw ICMPv6 sockets
        self.sock
            .send_to(&pkt, &SockAddr::from(SocketAddr::new(dst, 0)))
            .expect("send echo request");
    }

    /// The next answer to one of our probes within `timeout` (other traffic is skipped).
    pub fn recv(&self, timeout: Duration) -> Option<Answer> {
        let deadline = Instant::now() + timeout;
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_micros(100))))
                .expect("read timeout");
            let (n, from) = self.sock.recv_from(&mut buf).ok()?;
            // SAFETY: recv_from initialised the first n bytes.
            let data: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
            let Some(from) = from.as_socket().map(|s| s.ip()) else {
                continue;
            };
            if let Some(a) = self.parse(&data, from) {
                return Some(a);
            }
        }
    }

    /// Sends one probe and waits for its own answer (answers to older probes are skipped).
    pub fn probe(&self, dst: IpAddr, ttl: u8, seq: u16, timeout: Duration) -> Option<Answer> {
        let start = Instant::now();
        self.send(dst, ttl, seq);
        loop {
            let left = timeout.checked_sub(start.elapsed())?;
            let a = self.recv(left)?;
            if a.seq() == seq {
                return Some(a);
            }
        }
    }

    /// Like [`Tracer::probe`], also returning the round trip (user-space stamps).
    pub fn timed_probe(&self, dst: IpAddr, ttl: u8, seq: u16, timeout: Duration) -> Option<(Answer, Duration)> {
        let start = Instant::now();
        self.probe(dst, ttl, seq, timeout).map(|a| (a, start.elapsed()))
    }

    fn parse(&self, data: &[u8], from: IpAddr) -> Option<Answer> {
        let icmp = if self.v6 {
            data
        } else {
            data.get(usize::from(data.first()? & 0x0f) * 4..)?
        };
        let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
        let (echo_reply, time_exceeded, unreachable) = if self.v6 { (129, 3, 1) } else { (0, 11, 3) };
        if ty == echo_reply {
            let id = u16::from_be_bytes([*icmp.get(4)?, *icmp.get(5)?]);
            let seq = u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]);
            return (id == self.id).then_some(Answer::EchoReply { from, seq });
        }
        if ty != time_exceeded && ty != unreachable {
            return None;
        }
        let quoted = self.quoted(icmp.get(8..)?)?;
        if quoted.id != self.id {
            return None;
        }
        Some(if ty == time_exceeded {
            Answer::TimeExceeded { from, code, quoted }
        } else {
            Answer::Unreachable { from, code, quoted }
        })
    }

    fn quoted(&self, q: &[u8]) -> Option<Quoted> {
        let (src, dst, ttl, ok, icmp) = if self.v6 {
            let a = |r: std::ops::Range<usize>| -> Option<IpAddr> {
                Some(IpAddr::from(<[u8; 16]>::try_from(q.get(r)?).ok()?))
            };
            (a(8..24)?, a(24..40)?, *q.get(7)?, true, q.get(40..)?)
        } else {
            let ihl = usize::from(q.first()? & 0x0f) * 4;
            let a = |r: std::ops::Range<usize>| -> Option<IpAddr> {
                Some(IpAddr::from(<[u8; 4]>::try_from(q.get(r)?).ok()?))
            };
            // The stored header checksum (16-bit word 5) matches the header's contents.
            let ok = q.len() >= ihl
                && ihl >= 20
                && pnet_packet::util::checksum(&q[..ihl], 5) == u16::from_be_bytes([q[10], q[11]]);
            (a(12..16)?, a(16..20)?, *q.get(8)?, ok, q.get(ihl..)?)
        };
        let request = if self.v6 { 128 } else { 8 };
        if *icmp.first()? != request {
            return None;
        }
        Some(Quoted {
            src,
            dst,
            ttl,
            header_checksum_ok: ok,
            id: u16::from_be_bytes([*icmp.get(4)?, *icmp.get(5)?]),
            seq: u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]),
        })
    }
}
