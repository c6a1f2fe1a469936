//! The UDP server: one blocking thread per socket, each socket bound to the
//! same address with `SO_REUSEPORT` so the kernel spreads clients over them.
//!
//! A worker takes up to [`BATCH`] datagrams with one `recvmmsg`, answers
//! each from the snapshot loaded once for the batch (the fast path first,
//! then the general path), and sends the answers with one `sendmmsg`.
//! Buffers and message headers are allocated once per worker: a query the
//! fast path answers costs no allocation, no lock and no task switch.
//!
//! Why threads and not tokio tasks: a UDP worker never waits on anything
//! but its socket, so an async runtime adds a wake-up and a poll per batch
//! and nothing in return. The threads wake every [`SHUTDOWN_POLL`] to see
//! whether the server is stopping.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use tokio_util::sync::CancellationToken;

use super::Published;
use super::fast;
use super::respond::{Transport, malformed, respond};
use crate::metrics::{Metrics, Via};

/// Datagrams taken per `recvmmsg` call. Knot DNS uses 10 to 64; past 32
/// the gain on loopback is within noise.
pub const BATCH: usize = 32;

/// Room for one query. Queries are far smaller; a datagram that does not
/// fit is answered FORMERR from its header (it is not a query we serve).
const QUERY_BUFFER: usize = 4096;

/// Room for one fast-path answer: never more than the EDNS cap.
const ANSWER_BUFFER: usize = super::respond::MAX_UDP_PAYLOAD as usize;

/// How often a worker blocked in `recvmmsg` looks at the shutdown token.
pub const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// The answer to one datagram of a batch.
enum Reply {
    /// Written by the fast path into the worker's answer buffer.
    Fast(usize),
    /// Built by the general path.
    General(Vec<u8>),
    /// Nothing to send (a response, or too short to have a header).
    Drop,
}

/// Serves `socket` (blocking, as [`super::server::bind`] makes it) until
/// `shutdown`, waking every [`SHUTDOWN_POLL`] to look.
pub fn serve(
    socket: std::net::UdpSocket,
    zones: Arc<Published>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    if let Err(e) = socket.set_read_timeout(Some(SHUTDOWN_POLL)) {
        tracing::error!("UDP worker not started: its socket takes no read timeout: {e}");
        return;
    }
    let fd = socket.as_raw_fd();
    let mut queries = vec![0u8; BATCH * QUERY_BUFFER];
    let mut answers = vec![0u8; BATCH * ANSWER_BUFFER];
    let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut received: [(usize, bool, Option<SockaddrStorage>); BATCH] = [(0, false, None); BATCH];
    let mut replies: Vec<Reply> = (0..BATCH).map(|_| Reply::Drop).collect();
    let mut peers: [Option<SockaddrStorage>; BATCH] = [None; BATCH];

    while !shutdown.is_cancelled() {
        let count = {
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] = queries
                .chunks_exact_mut(QUERY_BUFFER)
                .map(|chunk| [IoSliceMut::new(chunk)])
                .collect::<ArrayCollector<_>>()
                .0;
            match recvmmsg(
                fd,
                &mut recv_headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(messages) => {
                    let mut count = 0;
                    for (slot, message) in received.iter_mut().zip(messages) {
                        *slot = (
                            message.bytes,
                            message.flags.contains(MsgFlags::MSG_TRUNC),
                            message.address,
                        );
                        count += 1;
                    }
                    count
                }
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => {
                    // ICMP errors from earlier sends surface here; they
                    // concern one peer, not the socket.
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            }
        };

        let snapshot = zones.load();
        let snapshot = snapshot.as_deref();
        for (i, &(len, truncated, _)) in received[..count].iter().enumerate() {
            let started = Instant::now();
            let query = &queries[i * QUERY_BUFFER..][..len];
            let answer = &mut answers[i * ANSWER_BUFFER..][..ANSWER_BUFFER];
            replies[i] = if truncated {
                // Cut short by the kernel: not a query we can read.
                malformed(query).map_or(Reply::Drop, Reply::General)
            } else if let Some(len) =
                snapshot.and_then(|z| fast::respond(z, query, Transport::Udp, answer))
            {
                Reply::Fast(len)
            } else {
                respond(snapshot, query, Transport::Udp).map_or(Reply::Drop, Reply::General)
            };
            let response: &[u8] = match &replies[i] {
                Reply::Fast(len) => &answers[i * ANSWER_BUFFER..][..*len],
                Reply::General(bytes) => bytes,
                Reply::Drop => continue,
            };
            metrics
                .dns
                .query(Via::Udp, query, response, started.elapsed());
        }

        // Gather the replies to send, in order, skipping the dropped ones.
        let mut sending = 0;
        let mut slices: [[IoSlice<'_>; 1]; BATCH] = [[IoSlice::new(&[])]; BATCH];
        for (i, reply) in replies[..count].iter().enumerate() {
            let bytes: &[u8] = match reply {
                Reply::Fast(len) => &answers[i * ANSWER_BUFFER..][..*len],
                Reply::General(bytes) => bytes,
                Reply::Drop => continue,
            };
            slices[sending] = [IoSlice::new(bytes)];
            peers[sending] = received[i].2;
            sending += 1;
        }
        send_all(fd, &mut send_headers, &slices[..sending], &peers[..sending]);
        for reply in &mut replies[..count] {
            *reply = Reply::Drop; // frees general-path buffers now
        }
    }
}

/// Sends every reply, resuming after a partial `sendmmsg` and skipping a
/// datagram the kernel refuses (one bad peer must not cost the others).
fn send_all(
    fd: i32,
    headers: &mut MultiHeaders<SockaddrStorage>,
    slices: &[[IoSlice<'_>; 1]],
    peers: &[Option<SockaddrStorage>],
) {
    let mut from = 0;
    while from < slices.len() {
        match sendmmsg(
            fd,
            headers,
            &slices[from..],
            &peers[from..],
            [],
            MsgFlags::empty(),
        ) {
            Ok(sent) => from += sent.count().max(1),
            Err(Errno::EINTR) => {}
            Err(e) => {
                let peer = peers[from].map(|p| p.to_string());
                tracing::debug!(peer, error = %e, "UDP send failed");
                from += 1;
            }
        }
    }
}

/// Collects exactly [`BATCH`] items into an array without allocating.
struct ArrayCollector<T>([T; BATCH]);

impl<T> FromIterator<T> for ArrayCollector<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        ArrayCollector(std::array::from_fn(|_| {
            iter.next().expect("one buffer per batch slot")
        }))
    }
}
