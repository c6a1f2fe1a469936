//! The CoreDNS `grpc` plugin protocol, so that an `istiocoredns` Corefile
//! with `grpc global 127.0.0.1:8053` works unchanged with globaldns as the
//! sidecar (`--grpc ADDR:PORT`).
//!
//! The protocol is one unary gRPC call, `/coredns.dns.DnsService/Query`,
//! whose request and response are both `message DnsPacket { bytes msg = 1; }`
//! carrying a wire-format DNS message. That is small enough to speak over
//! plain HTTP/2 (the `h2` crate) with the protobuf field encoded here, with
//! no gRPC framework and no protoc. gRPC over cleartext HTTP/2 (h2c, prior
//! knowledge), as the plugin uses without `tls`.
//!
//! Answers are complete (as over TCP): CoreDNS itself truncates what it
//! forwards to UDP clients, and a truncated answer here would send a TCP
//! client back over gRPC to the same truncation.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::respond::{Transport, respond};
use super::server::{Published, TcpLimits, accept};
use crate::metrics::{Metrics, Via};

pub const PATH: &str = "/coredns.dns.DnsService/Query";
/// Largest request accepted: a DNS message is at most 64 KiB.
const MAX_MESSAGE: usize = 65535 + 16;

/// The `msg` field of a DnsPacket. Other fields are skipped, as protobuf
/// readers must; `None` when the bytes are not a well-formed message.
pub fn decode_packet(mut bytes: &[u8]) -> Option<&[u8]> {
    let mut msg = None;
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let (field, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                varint(&mut bytes)?;
            }
            1 => bytes = bytes.get(8..)?,
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                let value = bytes.get(..len)?;
                bytes = &bytes[len..];
                if field == 1 {
                    msg = Some(value);
                }
            }
            5 => bytes = bytes.get(4..)?,
            _ => return None,
        }
    }
    // An absent bytes field is the empty message.
    Some(msg.unwrap_or_default())
}

/// A DnsPacket holding `msg`.
pub fn encode_packet(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 6);
    out.push(0x0A); // field 1, length-delimited
    let mut len = msg.len() as u64;
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(msg);
    out
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// One gRPC message: the 5-byte prefix (not compressed, length) and body.
fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(message.len() + 5);
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.freeze()
}

/// The one message of a unary request body, if it is exactly one,
/// uncompressed, gRPC message.
fn unframe(body: &[u8]) -> Option<&[u8]> {
    let (&compressed, rest) = body.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let message = rest.get(4..4 + len)?;
    (compressed == 0 && rest.len() == 4 + len).then_some(message)
}

/// Accepts gRPC connections until `shutdown`, at most
/// `limits.max_connections` at once (a cap of its own, not shared with DNS
/// over TCP).
pub async fn serve(
    listener: TcpListener,
    zones: Arc<Published>,
    metrics: Arc<Metrics>,
    limits: TcpLimits,
    shutdown: CancellationToken,
) {
    let stop = shutdown.clone();
    let counted = metrics.clone();
    accept(
        listener,
        Via::Grpc,
        (limits.max_connections, &counted),
        stop,
        move |stream, peer| {
            let (zones, metrics, shutdown) = (zones.clone(), metrics.clone(), shutdown.clone());
            async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    result = connection(stream, zones, metrics, limits.idle_timeout) => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "gRPC connection ended");
                        }
                    }
                }
            }
        },
    )
    .await;
}

async fn connection(
    stream: TcpStream,
    zones: Arc<Published>,
    metrics: Arc<Metrics>,
    idle: Duration,
) -> Result<(), h2::Error> {
    let mut connection = h2::server::handshake(stream).await?;
    loop {
        let accepted = match tokio::time::timeout(idle, connection.accept()).await {
            Err(_) => return Ok(()), // idle
            Ok(None) => return Ok(()),
            Ok(Some(accepted)) => accepted?,
        };
        let (request, reply) = accepted;
        let zones = zones.clone();
        let metrics = metrics.clone();
        // Calls on one connection are answered concurrently, as HTTP/2
        // streams are independent.
        tokio::spawn(async move {
            if let Err(e) = call(request, reply, &zones, &metrics).await {
                tracing::debug!(error = %e, "gRPC call failed");
            }
        });
    }
}

async fn call(
    request: Request<h2::RecvStream>,
    mut reply: h2::server::SendResponse<Bytes>,
    zones: &Published,
    metrics: &Metrics,
) -> Result<(), h2::Error> {
    if request.uri().path() != PATH {
        return finish(&mut reply, None, 12, "unknown method"); // UNIMPLEMENTED
    }
    let mut body = request.into_body();
    let mut bytes = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if bytes.len() + chunk.len() > MAX_MESSAGE {
            return finish(&mut reply, None, 8, "message too large"); // RESOURCE_EXHAUSTED
        }
        bytes.extend_from_slice(&chunk);
    }
    let Some(query) = unframe(&bytes).and_then(decode_packet) else {
        return finish(&mut reply, None, 3, "not one DnsPacket"); // INVALID_ARGUMENT
    };
    let started = std::time::Instant::now();
    let snapshot = zones.load();
    match respond(snapshot.as_deref(), query, Transport::Tcp) {
        Some(answer) => {
            metrics
                .dns
                .query(Via::Grpc, query, &answer, started.elapsed());
            finish(&mut reply, Some(&encode_packet(&answer)), 0, "")
        }
        // A message we drop over UDP/TCP (a response, or no header).
        None => finish(&mut reply, None, 3, "not a DNS query"),
    }
}

/// Sends the response headers, the message if any, and the gRPC status.
fn finish(
    reply: &mut h2::server::SendResponse<Bytes>,
    message: Option<&[u8]>,
    status: u32,
    text: &str,
) -> Result<(), h2::Error> {
    let response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .body(())
        .expect("static headers");
    let mut stream = reply.send_response(response, false)?;
    if let Some(message) = message {
        stream.send_data(frame(message), false)?;
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(status));
    if !text.is_empty() {
        trailers.insert("grpc-message", HeaderValue::from_str(text).expect("ASCII"));
    }
    stream.send_trailers(trailers)
}

#[cfg(test)]
mod tests;
