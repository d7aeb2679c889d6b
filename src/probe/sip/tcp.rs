//! SIP OPTIONS over TCP or TLS: one connection per probe (connection setup is part of what
//! fails on real endpoints, and no long-lived connections to thousands of devices are kept).
//! Responses are framed by Content-Length; the read buffer never exceeds one maximal message
//! plus one read. A malformed message ends the probe (a byte stream cannot be resynchronised).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::message::{self, Framing, Ids, OptionsRequest, ParseError, Response};
use super::udp::Demux;
use super::{SipCheck, SipTransport};
use crate::probe::outcome::{Detail, FailureReason, Outcome};
use crate::probe::tls::{CertSeen, tls_connector, tls_failure};

/// Runs one OPTIONS transaction over a new TCP (or TLS) connection within `check.timeout`.
/// The duration includes connect and handshake.
pub(crate) async fn probe(demux: &Demux, target: IpAddr, check: &SipCheck) -> Outcome {
    let start = Instant::now();
    match tokio::time::timeout(check.timeout, run(demux, target, check)).await {
        Ok(Ok(resp)) => Outcome::ok(
            start.elapsed(),
            Detail {
                status: Some(resp.status),
                reason: Some(resp.reason),
                ..Detail::default()
            },
        ),
        Ok(Err(reason)) => Outcome::fail(start.elapsed(), reason, Detail::default()),
        Err(_) => Outcome::fail(start.elapsed(), FailureReason::Timeout, Detail::default()),
    }
}

async fn run(demux: &Demux, target: IpAddr, check: &SipCheck) -> Result<Response, FailureReason> {
    let dest = SocketAddr::new(target, check.port);
    let tcp = TcpStream::connect(dest).await.map_err(|e| FailureReason::from_io(&e))?;
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().map_err(|e| FailureReason::Io(e.to_string()))?;
    let ids = Ids::random();
    let request = OptionsRequest {
        transport: check.transport,
        user: &check.user,
        target: dest,
        local,
        ids: &ids,
    }
    .to_bytes();
    match check.transport {
        SipTransport::Tls => {
            // SIP endpoints are addressed by IP here, so the certificate is checked against
            // the IP (most device certificates will need `insecure_skip_verify`).
            let connector = tls_connector(
                check.insecure_skip_verify,
                check.ca_file.as_ref(),
                Arc::new(CertSeen::default()),
            )?;
            let stream = connector
                .connect(ServerName::IpAddress(target.into()), tcp)
                .await
                .map_err(|e| tls_failure(&e))?;
            exchange(stream, &request, &ids, demux).await
        }
        _ => exchange(tcp, &request, &ids, demux).await,
    }
}

/// Sends the request and reads responses until the final one for our transaction.
pub(crate) async fn exchange<S>(
    mut stream: S,
    request: &[u8],
    ids: &Ids,
    demux: &Demux,
) -> Result<Response, FailureReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = |e: std::io::Error| FailureReason::from_io(&e);
    stream.write_all(request).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        loop {
            // RFC 5626 keep-alive CRLFs between messages are skipped.
            let skip = buf.chunks(2).take_while(|c| *c == b"\r\n").count() * 2;
            buf.drain(..skip);
            match message::parse_response(&buf, Framing::Stream) {
                Ok((resp, used)) => {
                    buf.drain(..used.min(buf.len()));
                    if !message::matches(&resp, ids) {
                        demux.unmatched.fetch_add(1, Ordering::Relaxed);
                    } else if !resp.is_provisional() {
                        return Ok(resp);
                    }
                }
                Err(ParseError::Incomplete) => break,
                Err(e) => {
                    demux.malformed.fetch_add(1, Ordering::Relaxed);
                    return Err(FailureReason::Protocol(e.to_string()));
                }
            }
        }
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(FailureReason::Protocol(
                "connection closed before a final response".into(),
            ));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
}
