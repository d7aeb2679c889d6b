//! SIP over UDP through one shared socket per address family.
//!
//! At national scale a socket per probe would mean thousands of ephemeral ports and file
//! descriptors every round; instead every UDP probe sends from the same socket and one receive
//! task per socket hands each response to the probe waiting for its Via branch (the demux
//! table). Responses are also checked against the Call-ID and CSeq before delivery. Anything
//! that does not parse is counted as malformed, anything that parses but answers no pending
//! probe is counted as unmatched; both are dropped.
//!
//! ICMP errors (port or host unreachable) about our datagrams reach an unconnected socket only
//! with `IP_RECVERR`/`IPV6_RECVERR`: the receive task reads them from the socket's error queue
//! (`MSG_ERRQUEUE`) and fails at once every transaction waiting on the datagram's destination
//! (address and port), so a closed port is "refused" without waiting for the timeout. Errors
//! that match no pending transaction are counted and dropped.

use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::message::{self, Framing, Ids, OptionsRequest, Response};
use super::{SipCheck, SipTransport};
use crate::probe::outcome::{Detail, FailureReason, Outcome};

/// RFC 3261 T1: first retransmission interval (an RTT estimate).
pub const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2: cap of the doubling retransmission interval for non-INVITE requests.
pub const T2: Duration = Duration::from_secs(4);

/// Counters and pending probes shared by the receive tasks, the TCP path and the client.
#[derive(Debug, Default)]
pub(crate) struct Demux {
    pending: Mutex<HashMap<String, Waiter>>,
    pub(crate) malformed: AtomicU64,
    pub(crate) unmatched: AtomicU64,
    /// ICMP errors about datagrams no pending transaction sent (late, or not ours).
    pub(crate) unmatched_errors: AtomicU64,
}

#[derive(Debug)]
struct Waiter {
    ids: Ids,
    /// Where the transaction's requests go: ICMP errors are matched on it.
    dest: SocketAddr,
    tx: mpsc::Sender<Reply>,
}

/// What the receive task hands to a waiting transaction.
#[derive(Debug)]
enum Reply {
    Response(Response),
    /// The network refused a request of the transaction (ICMP error).
    Failed(FailureReason),
}

impl Demux {
    /// Handles one received datagram.
    pub(crate) fn dispatch(&self, datagram: &[u8]) {
        let resp = match message::parse_response(datagram, Framing::Datagram) {
            Ok((resp, _)) => resp,
            Err(e) => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, len = datagram.len(), "malformed SIP datagram");
                return;
            }
        };
        let delivered = match self.pending.lock() {
            Ok(table) => resp
                .branch
                .as_deref()
                .and_then(|b| table.get(b))
                .filter(|w| message::matches(&resp, &w.ids))
                // A full channel means the probe already has plenty (retransmitted answers).
                .map(|w| {
                    let _ = w.tx.try_send(Reply::Response(resp));
                })
                .is_some(),
            Err(_) => false,
        };
        if !delivered {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Handles one ICMP error about a datagram sent to `dest`: every transaction waiting on
    /// that address and port fails with `reason`; an error nobody waits for is counted.
    pub(crate) fn dispatch_error(&self, dest: SocketAddr, reason: &FailureReason) {
        let mut delivered = false;
        if let Ok(table) = self.pending.lock() {
            for w in table
                .values()
                .filter(|w| (w.dest.ip(), w.dest.port()) == (dest.ip(), dest.port()))
            {
                let _ = w.tx.try_send(Reply::Failed(reason.clone()));
                delivered = true;
            }
        }
        if !delivered {
            self.unmatched_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%dest, %reason, "ICMP error for no pending SIP transaction");
        }
    }

    fn register(self: &Arc<Self>, ids: &Ids, dest: SocketAddr) -> (Registration, mpsc::Receiver<Reply>) {
        let (tx, rx) = mpsc::channel(4);
        if let Ok(mut table) = self.pending.lock() {
            table.insert(
                ids.branch.clone(),
                Waiter {
                    ids: ids.clone(),
                    dest,
                    tx,
                },
            );
        }
        (
            Registration {
                demux: self.clone(),
                branch: ids.branch.clone(),
            },
            rx,
        )
    }
}

/// Removes the probe's entry from the demux table however the probe ends (also on
/// cancellation), so the table cannot grow with abandoned probes.
struct Registration {
    demux: Arc<Demux>,
    branch: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut table) = self.demux.pending.lock() {
            table.remove(&self.branch);
        }
    }
}

/// One shared socket and its receive task.
#[derive(Debug)]
pub(crate) struct UdpSide {
    socket: Arc<UdpSocket>,
    task: JoinHandle<()>,
}

impl Drop for UdpSide {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Socket receive buffer asked for: room for a burst of answers from thousands of endpoints.
const RECV_BUFFER: usize = 4 << 20;

impl UdpSide {
    /// Binds the wildcard address of `v6`'s family on an ephemeral port and starts receiving.
    pub(crate) fn bind(v6: bool, demux: Arc<Demux>) -> std::io::Result<UdpSide> {
        let (domain, addr) = if v6 {
            (Domain::IPV6, SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)))
        } else {
            (Domain::IPV4, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        };
        let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if v6 {
            sock.set_only_v6(true)?;
            setsockopt(&sock, sockopt::Ipv6RecvErr, &true)?;
        } else {
            setsockopt(&sock, sockopt::Ipv4RecvErr, &true)?;
        }
        // Best effort: the kernel caps it at rmem_max, which is fine.
        let _ = sock.set_recv_buffer_size(RECV_BUFFER);
        sock.set_nonblocking(true)?;
        sock.bind(&addr.into())?;
        let socket = Arc::new(UdpSocket::from_std(sock.into())?);
        let task = tokio::spawn(recv_loop(socket.clone(), demux));
        Ok(UdpSide { socket, task })
    }

    pub(crate) fn local_port(&self) -> std::io::Result<u16> {
        Ok(self.socket.local_addr()?.port())
    }

    /// One OPTIONS transaction: send, retransmit per timer E until a final response or the
    /// check's timeout.
    pub(crate) async fn probe(&self, demux: &Arc<Demux>, target: IpAddr, check: &SipCheck) -> Outcome {
        let start = Instant::now();
        let fail = |r| Outcome::fail(start.elapsed(), r, Detail::default());
        let dest = SocketAddr::new(target, check.port);
        let local_ip = match local_ip_towards(dest) {
            Ok(ip) => ip,
            Err(e) => return fail(FailureReason::from_io(&e)),
        };
        let local_port = match self.local_port() {
            Ok(p) => p,
            Err(e) => return fail(FailureReason::Io(e.to_string())),
        };
        let ids = Ids::random();
        let request = OptionsRequest {
            transport: SipTransport::Udp,
            user: &check.user,
            target: dest,
            local: SocketAddr::new(local_ip, local_port),
            ids: &ids,
        }
        .to_bytes();
        let (_registration, mut rx) = demux.register(&ids, dest);
        let deadline = tokio::time::Instant::from_std(start + check.timeout);
        let mut interval = T1;
        let mut next_send = tokio::time::Instant::now();
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return fail(FailureReason::Timeout);
            }
            if now >= next_send {
                if let Err(e) = self.send(&request, dest).await {
                    return fail(FailureReason::from_io(&e));
                }
                next_send = now + interval;
                interval = (interval * 2).min(T2);
            }
            tokio::select! {
                got = rx.recv() => match got {
                    Some(Reply::Failed(reason)) => return fail(reason),
                    Some(Reply::Response(resp)) if resp.is_provisional() => {
                        // Proceeding: the server has it; retransmit only every T2 from now on.
                        interval = T2;
                        next_send = next_send.max(tokio::time::Instant::now() + T2);
                    }
                    Some(Reply::Response(resp)) => {
                        let detail = Detail {
                            status: Some(resp.status),
                            reason: Some(resp.reason),
                            ..Detail::default()
                        };
                        return Outcome::ok(start.elapsed(), detail);
                    }
                    None => return fail(FailureReason::Io("SIP receive task stopped".into())),
                },
                _ = tokio::time::sleep_until(next_send.min(deadline)) => {}
            }
        }
    }

    /// Sends one datagram. With `IP_RECVERR` the kernel also reports a pending ICMP error of
    /// an earlier datagram (to any endpoint) through the next send, which then sends nothing:
    /// that error is read from the error queue by the receive task and belongs to another
    /// transaction, so the send is retried. A persistent error is this send's own.
    async fn send(&self, request: &[u8], dest: SocketAddr) -> std::io::Result<()> {
        let mut tries = 0;
        loop {
            match self.socket.send_to(request, dest).await {
                Ok(_) => return Ok(()),
                Err(e) if is_icmp_report(&e) && tries < 3 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Errors the kernel raises from a queued ICMP error (`sk_err`), not from the call itself.
fn is_icmp_report(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
    )
}

/// The local address the kernel would use towards `dest` (for Via and Contact), found by
/// connecting a throwaway UDP socket: no packet is sent.
fn local_ip_towards(dest: SocketAddr) -> std::io::Result<IpAddr> {
    let bind: SocketAddr = if dest.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(bind)?;
    s.connect(dest)?;
    Ok(s.local_addr()?.ip())
}

async fn recv_loop(socket: Arc<UdpSocket>, demux: Arc<Demux>) {
    // One byte more than the limit, so an oversized datagram is seen as such, not truncated
    // into something that parses.
    let mut buf = vec![0u8; message::MAX_MESSAGE + 1];
    loop {
        // One wait for both: tokio's `recv_from` also wakes on (and clears) error readiness,
        // so the queue could be left unread.
        if let Err(e) = socket.ready(Interest::READABLE | Interest::ERROR).await {
            tracing::debug!(error = %e, "SIP UDP socket readiness");
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        drain_errors(&socket, &demux);
        // A bounded batch, so a flood of datagrams cannot hold the worker.
        for _ in 0..256 {
            match socket.try_recv_from(&mut buf) {
                Ok((n, _from)) => demux.dispatch(buf.get(..n).unwrap_or(&[])),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // A queued ICMP error, reported once more; its entry is read from the queue.
                Err(e) if is_icmp_report(&e) => {}
                Err(e) => {
                    // Not fatal, but do not spin.
                    tracing::debug!(error = %e, "SIP UDP receive error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    break;
                }
            }
        }
        tokio::task::yield_now().await;
    }
}

/// Reads the socket's error queue until it is empty, handing each ICMP error on.
fn drain_errors(socket: &UdpSocket, demux: &Demux) {
    loop {
        match socket.try_io(Interest::ERROR, || read_error(socket)) {
            Ok(Some((dest, errno))) => {
                let reason = FailureReason::from_io(&std::io::Error::from_raw_os_error(errno));
                demux.dispatch_error(dest, &reason);
            }
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::debug!(error = %e, "SIP UDP error queue read");
                return;
            }
        }
    }
}

/// One entry of the error queue: the destination of the datagram it is about and the error,
/// when it is an ICMP refusal or unreachable (other entries are consumed and ignored).
fn read_error(socket: &UdpSocket) -> std::io::Result<Option<(SocketAddr, i32)>> {
    // The quoted datagram is not needed: the destination identifies the transactions.
    let mut data = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut cmsg), flags)?;
    let dest = msg.address.and_then(|a| {
        a.as_sockaddr_in()
            .map(|s| SocketAddr::from((s.ip(), s.port())))
            .or_else(|| a.as_sockaddr_in6().map(|s| SocketAddr::from((s.ip(), s.port()))))
    });
    let mut error = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _) = c
            && matches!(e.ee_origin, libc::SO_EE_ORIGIN_ICMP | libc::SO_EE_ORIGIN_ICMP6)
            && is_icmp_report(&std::io::Error::from_raw_os_error(e.ee_errno as i32))
        {
            error = Some(e.ee_errno as i32);
        }
    }
    Ok(dest.zip(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_errors_fail_the_transactions_to_their_destination_only() {
        let demux = Arc::new(Demux::default());
        let closed: SocketAddr = "127.0.0.1:5070".parse().expect("addr");
        let open: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        let (ids_a, ids_b) = (Ids::random(), Ids::random());
        let (_a, mut rx_a) = demux.register(&ids_a, closed);
        let (_b, mut rx_b) = demux.register(&ids_b, open);
        demux.dispatch_error(closed, &FailureReason::Refused);
        assert!(matches!(rx_a.try_recv(), Ok(Reply::Failed(FailureReason::Refused))));
        assert!(rx_b.try_recv().is_err(), "another destination is not touched");
        assert_eq!(demux.unmatched_errors.load(Ordering::Relaxed), 0);
        demux.dispatch_error("127.0.0.1:9".parse().expect("addr"), &FailureReason::Refused);
        assert_eq!(demux.unmatched_errors.load(Ordering::Relaxed), 1);
    }
}
