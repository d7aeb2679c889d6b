//! SIP over UDP through one shared socket per address family.
//!
//! At national scale a socket per probe would mean thousands of ephemeral ports and file
//! descriptors every round; instead every UDP probe sends from the same socket and one receive
//! task per socket hands each response to the probe waiting for its Via branch (the demux
//! table). Responses are also checked against the Call-ID and CSeq before delivery. Anything
//! that does not parse is counted as malformed, anything that parses but answers no pending
//! probe is counted as unmatched; both are dropped.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
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
}

#[derive(Debug)]
struct Waiter {
    ids: Ids,
    tx: mpsc::Sender<Response>,
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
                    let _ = w.tx.try_send(resp);
                })
                .is_some(),
            Err(_) => false,
        };
        if !delivered {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn register(self: &Arc<Self>, ids: &Ids) -> (Registration, mpsc::Receiver<Response>) {
        let (tx, rx) = mpsc::channel(4);
        if let Ok(mut table) = self.pending.lock() {
            table.insert(ids.branch.clone(), Waiter { ids: ids.clone(), tx });
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
        let (_registration, mut rx) = demux.register(&ids);
        let deadline = tokio::time::Instant::from_std(start + check.timeout);
        let mut interval = T1;
        let mut next_send = tokio::time::Instant::now();
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return fail(FailureReason::Timeout);
            }
            if now >= next_send {
                if let Err(e) = self.socket.send_to(&request, dest).await {
                    return fail(FailureReason::from_io(&e));
                }
                next_send = now + interval;
                interval = (interval * 2).min(T2);
            }
            tokio::select! {
                got = rx.recv() => match got {
                    Some(resp) if resp.is_provisional() => {
                        // Proceeding: the server has it; retransmit only every T2 from now on.
                        interval = T2;
                        next_send = next_send.max(tokio::time::Instant::now() + T2);
                    }
                    Some(resp) => {
                        return Outcome::ok(
                            start.elapsed(),
                            Detail {
                status: Some(resp.status),
                reason: Some(resp.reason),
                ..Detail::default()
            },
                        );
                    }
                    None => return fail(FailureReason::Io("SIP receive task stopped".into())),
                },
                _ = tokio::time::sleep_until(next_send.min(deadline)) => {}
            }
        }
    }
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
        match socket.recv_from(&mut buf).await {
            Ok((n, _from)) => demux.dispatch(buf.get(..n).unwrap_or(&[])),
            Err(e) => {
                // e.g. ICMP errors queued on the socket: not fatal, but do not spin.
                tracing::debug!(error = %e, "SIP UDP receive error");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
