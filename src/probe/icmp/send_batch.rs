//! Echo requests queued during one wake-up and sent with one `sendmmsg(2)` per socket: a
//! one-packet round at 10,000 endpoints costs one system call per burst, not one per request.
//! Headers, buffers and addresses are set up once and reused, so sending allocates nothing.
//!
//! A trace request carries its TTL (IPv6 hop limit) in a control message of its own
//! (`IP_TTL` / `IPV6_HOPLIMIT`, accepted by Linux on raw and ping sockets alike): it shares
//! the batch with regular requests, which carry none and leave with the socket's default.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use super::packet::REQUEST_LEN;
use super::socket::IcmpSocket;

/// Requests queued at most before a flush.
pub const SEND_BATCH: usize = 64;

/// Room for one control message holding an `int`, aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u8; 32]);

/// What a queued request was for: enough to undo it when it could not be sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    pub endpoint: u32,
    pub seq: u16,
}

pub struct SendBatch {
    headers: Box<[libc::mmsghdr]>,
    iovecs: Box<[libc::iovec]>,
    buffers: Box<[[u8; REQUEST_LEN]]>,
    addresses: Box<[libc::sockaddr_storage]>,
    controls: Box<[Control]>,
    tags: [Tag; SEND_BATCH],
    len: usize,
}

// SAFETY: the raw pointers inside point only into the boxed slices owned by the same struct;
// moving the struct to another thread moves their ownership with it.
unsafe impl Send for SendBatch {}

impl Default for SendBatch {
    fn default() -> Self {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut b = SendBatch {
            headers: (0..SEND_BATCH).map(|_| unsafe { zeroed() }).collect(),
            iovecs: (0..SEND_BATCH)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            buffers: vec![[0u8; REQUEST_LEN]; SEND_BATCH].into_boxed_slice(),
            // SAFETY: as above.
            addresses: (0..SEND_BATCH).map(|_| unsafe { zeroed() }).collect(),
            controls: vec![Control([0; 32]); SEND_BATCH].into_boxed_slice(),
            tags: [Tag::default(); SEND_BATCH],
            len: 0,
        };
        for i in 0..SEND_BATCH {
            b.iovecs[i] = libc::iovec {
                iov_base: b.buffers[i].as_mut_ptr().cast(),
                iov_len: REQUEST_LEN,
            };
            let h = &mut b.headers[i].msg_hdr;
            h.msg_iov = &raw mut b.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_name = (&raw mut b.addresses[i]).cast();
        }
        b
    }
}

impl SendBatch {
    pub fn is_full(&self) -> bool {
        self.len == SEND_BATCH
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The requests queued, in order.
    pub fn tags(&self) -> &[Tag] {
        &self.tags[..self.len]
    }

    /// The buffer of the next request, to build it in place; `None` when full (flush first).
    pub fn next_buffer(&mut self) -> Option<&mut [u8; REQUEST_LEN]> {
        self.buffers.get_mut(self.len)
    }

    /// Queues the request just built in [`SendBatch::next_buffer`] for `to`, with the socket's
    /// default TTL or with `ttl`.
    pub fn push(&mut self, to: IpAddr, tag: Tag, ttl: Option<u8>) {
        if self.is_full() {
            return;
        }
        let i = self.len;
        let storage = &mut self.addresses[i];
        let len = match to {
            IpAddr::V4(v4) => {
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: 0,
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sa) };
                size_of::<libc::sockaddr_in>()
            }
            IpAddr::V6(v6) => {
                let sa = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: 0,
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr { s6_addr: v6.octets() },
                    sin6_scope_id: 0,
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sa) };
                size_of::<libc::sockaddr_in6>()
            }
        };
        self.headers[i].msg_hdr.msg_namelen = len as libc::socklen_t;
        self.headers[i].msg_len = 0;
        self.set_ttl(i, to.is_ipv6(), ttl);
        self.tags[i] = tag;
        self.len += 1;
    }

    /// Sets (or clears) the TTL control message of request `i`.
    fn set_ttl(&mut self, i: usize, v6: bool, ttl: Option<u8>) {
        let h = &mut self.headers[i].msg_hdr;
        let Some(ttl) = ttl else {
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            return;
        };
        let (level, kind) = if v6 {
            (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
        } else {
            (libc::IPPROTO_IP, libc::IP_TTL)
        };
        let value = libc::c_int::from(ttl);
        h.msg_control = self.controls[i].0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE(sizeof int) = 24 fits the 32-byte, 8-aligned buffer just pointed at.
        unsafe {
            h.msg_controllen = libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(h);
            (*cmsg).cmsg_level = level;
            (*cmsg).cmsg_type = kind;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), value);
        }
    }

    /// Sends every queued request; `failed` gets each one the kernel refused, with its error.
    /// Returns how many were sent. The batch is empty afterwards.
    pub fn flush(&mut self, socket: &IcmpSocket, mut failed: impl FnMut(Tag, io::Error)) -> usize {
        let (mut i, mut sent) = (0, 0);
        while i < self.len {
            // SAFETY: headers[i..len] point at live buffers and addresses of the stated lengths.
            let n = unsafe {
                libc::sendmmsg(
                    socket.socket.as_raw_fd(),
                    self.headers[i..].as_mut_ptr(),
                    (self.len - i) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                i += n as usize;
                sent += n as usize;
                // Fewer sent than asked: the next one failed and the kernel dropped its error
                // code (sendmmsg(2)). It is lost, as a failed sendto would be: sending it again
                // would give a dropped packet a second chance the measurement must not see.
                if i < self.len {
                    failed(self.tags[i], io::Error::other("refused by the kernel (sendmmsg)"));
                    i += 1;
                }
            } else {
                // The message at `i` failed (an unreachable destination, a filter, a full
                // buffer): it is lost; go on with the rest.
                failed(self.tags[i], io::Error::last_os_error());
                i += 1;
            }
        }
        self.len = 0;
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TTL control message of queued request `i`: (level, type, value).
    fn ttl_of(b: &SendBatch, i: usize) -> Option<(i32, i32, i32)> {
        let h = &b.headers[i].msg_hdr;
        // SAFETY: the header points at its own control buffer of msg_controllen bytes, or at none.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(h);
            if cmsg.is_null() {
                return None;
            }
            let value = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            Some(((*cmsg).cmsg_level, (*cmsg).cmsg_type, value))
        }
    }

    #[test]
    fn only_trace_requests_carry_a_ttl_and_it_names_their_family() {
        let mut b = SendBatch::default();
        let tag = Tag::default();
        b.push("10.0.0.1".parse().unwrap(), tag, Some(3));
        b.push("fd00::1".parse().unwrap(), tag, Some(16));
        b.push("10.0.0.1".parse().unwrap(), tag, None);
        assert_eq!(ttl_of(&b, 0), Some((libc::IPPROTO_IP, libc::IP_TTL, 3)));
        assert_eq!(ttl_of(&b, 1), Some((libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, 16)));
        assert_eq!(ttl_of(&b, 2), None, "a regular request keeps the default TTL");
        assert_eq!(b.headers[0].msg_hdr.msg_controllen, 24);
    }
}
