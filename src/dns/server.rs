//! Binding the sockets, and the TCP server: a thin loop that moves bytes
//! between connections and [`respond`]. The UDP workers are in
//! [`super::udp`]. Sockets are bound by the caller (tests bind
//! `127.0.0.1:0`).
//!
//! Why not hickory-server's `Server`: in 0.26.3 it has no cap on TCP
//! connections (design §4 asks for one), spawns a task and copies the packet
//! for every UDP query, logs two INFO lines per query, and emits malformed
//! truncated UDP responses (trailing bytes, OPT dropped; hickory #3633).
//! Owning these loops costs less code than working around all four.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fast;
use super::respond::{MAX_UDP_PAYLOAD, Transport, respond};
use crate::metrics::{Metrics, Via};

pub use super::Published;

/// Limits on TCP clients (RFC 7766 §6.2).
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// Connections served at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// How long a connection may sit between (or inside) messages.
    pub idle_timeout: Duration,
}

/// How long open TCP connections get, after shutdown begins, to finish
/// writing the answers to what they have read.
pub const TCP_DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// Accepts TCP connections on `listener` until `shutdown`, at most
/// `limits.max_connections` at once. On shutdown each connection stops
/// reading, answers what it has read and closes (see [`accept`]).
pub async fn serve_tcp(
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
        Via::Tcp,
        (limits.max_connections, &counted),
        stop,
        move |stream, peer| {
            let (zones, metrics, shutdown) = (zones.clone(), metrics.clone(), shutdown.clone());
            async move {
                let idle = limits.idle_timeout;
                if let Err(e) = connection(stream, &zones, &metrics, idle, &shutdown).await {
                    tracing::debug!(%peer, error = %e, "TCP connection ended");
                }
            }
        },
    )
    .await;
}

/// The accept loop shared by DNS over TCP and the gRPC endpoint (`via`):
/// runs `serve_one` for each connection, at most `cap.0` at once (more are
/// closed as soon as accepted, and counted in `cap.1`'s
/// `globaldns_dns_connections_refused_total`). On `shutdown` it stops accepting and gives the
/// open connections [`TCP_DRAIN_DEADLINE`] to end (each watches `shutdown`
/// itself); the stragglers are then cut.
pub async fn accept<F, Fut>(
    listener: TcpListener,
    via: Via,
    cap: (usize, &Metrics),
    shutdown: CancellationToken,
    mut serve_one: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (max, metrics) = cap;
    let what = if via == Via::Grpc { "gRPC" } else { "TCP" };
    let slots = Arc::new(Semaphore::new(max));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Reap finished connections so the set stays small.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly
                    // rather than spin.
                    tracing::warn!(error = %e, "{what} accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "{what} connection cap reached; closing");
            metrics
                .dns
                .connections_refused(via)
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            continue; // the stream is dropped: closed
        };
        let served = serve_one(stream, peer);
        connections.spawn(async move {
            served.await;
            drop(slot);
        });
    }
    let drained = tokio::time::timeout(TCP_DRAIN_DEADLINE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            left = connections.len(),
            "{what} drain deadline passed; closing the rest"
        );
    }
}

/// Serves one TCP connection: length-prefixed messages (RFC 1035 §4.2.2),
/// answered in order, as many as the client sends (RFC 7766 §6.2.1).
///
/// Reads take whatever has arrived; every complete message in it is
/// answered (fast path first) and the answers go out in one write, so a
/// client that pipelines queries costs a read and a write per burst, not per
/// query. The idle timeout runs from the last complete message: a client
/// that trickles a message byte by byte gets no longer than an idle one.
async fn connection(
    mut stream: TcpStream,
    zones: &Published,
    metrics: &Metrics,
    idle: Duration,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    /// Read size; a larger message grows the buffer to fit.
    const READ_CHUNK: usize = 16 * 1024;
    stream.set_nodelay(true)?;
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut output: Vec<u8> = Vec::new();
    let mut answer = [0u8; MAX_UDP_PAYLOAD as usize];
    let mut deadline = Instant::now() + idle;
    loop {
        input.reserve(READ_CHUNK);
        let read = tokio::select! {
            // Shutting down: what was read has been answered; stop here.
            _ = shutdown.cancelled() => return Ok(()),
            read = tokio::time::timeout_at(deadline, stream.read_buf(&mut input)) => match read {
                Err(_) => return Ok(()), // idle: close quietly
                Ok(read) => read?,
            },
        };
        if read == 0 {
            return Ok(()); // the client closed; a partial message is dropped
        }
        let mut used = 0;
        {
            let snapshot = zones.load();
            let snapshot = snapshot.as_deref();
            while let Some(prefix) = input.get(used..used + 2) {
                let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
                let Some(message) = input.get(used + 2..used + 2 + len) else {
                    break;
                };
                used += 2 + len;
                let started = std::time::Instant::now();
                let fast =
                    snapshot.and_then(|z| fast::respond(z, message, Transport::Tcp, &mut answer));
                match fast {
                    Some(n) => {
                        frame(&mut output, &answer[..n]);
                        metrics
                            .dns
                            .query(Via::Tcp, message, &answer[..n], started.elapsed());
                    }
                    None => {
                        if let Some(response) = respond(snapshot, message, Transport::Tcp) {
                            frame(&mut output, &response);
                            metrics
                                .dns
                                .query(Via::Tcp, message, &response, started.elapsed());
                        }
                    }
                }
            }
        }
        if used > 0 {
            input.drain(..used);
            deadline = Instant::now() + idle;
        }
        if !output.is_empty() {
            within(idle, stream.write_all(&output)).await?;
            output.clear();
        }
    }
}

/// Appends `message` with its two-byte length prefix.
fn frame(output: &mut Vec<u8>, message: &[u8]) {
    // Answers are bounded far below 64 KiB: an answer is at most a few
    // hundred records of a few dozen bytes.
    let Ok(len) = u16::try_from(message.len()) else {
        return;
    };
    output.extend_from_slice(&len.to_be_bytes());
    output.extend_from_slice(message);
}

async fn within<T>(
    limit: Duration,
    io: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(limit, io)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client too slow"))?
}

/// Receive buffer asked for UDP sockets. The kernel default (about 208 KiB)
/// overflows at a few hundred queries in flight; the kernel caps the request
/// at `net.core.rmem_max`, which is fine.
const UDP_RECV_BUFFER: usize = 4 << 20;

/// A blocking UDP socket for a UDP worker, in the `SO_REUSEPORT` group of
/// `addr` when `shared`.
fn udp_socket(addr: SocketAddr, shared: bool) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(UDP_RECV_BUFFER) {
        tracing::debug!(error = %e, "UDP receive buffer left at the default");
    }
    if shared {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// The sockets of one listening address: a UDP socket per worker, all on
/// one port, and the TCP listener on the same port number.
pub struct Sockets {
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: TcpListener,
}

impl Sockets {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Binds `udp_workers` UDP sockets and a TCP listener on one address. With
/// port 0, the kernel picks a UDP port and TCP is bound to the same number
/// (retrying if TCP has it taken).
///
/// `SO_REUSEPORT` would let a second process of the same user join our
/// UDP group silently and take a share of the queries. So the port is
/// first bound alone, without the option: if anything holds it, that fails
/// with "address in use" as a plain bind would.
pub async fn bind(addr: SocketAddr, udp_workers: usize) -> std::io::Result<Sockets> {
    const ATTEMPTS: usize = 20;
    let shared = udp_workers > 1;
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let probe = udp_socket(addr, false)?;
        let bound = probe.local_addr()?;
        let tcp = match TcpListener::bind(bound).await {
            Ok(tcp) => tcp,
            Err(e) if addr.port() == 0 => {
                last_error = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let udp = if shared {
            drop(probe);
            // Between the probe's close and these binds another socket may
            // take the port; with a kernel-picked port, pick again.
            match (0..udp_workers)
                .map(|_| udp_socket(bound, true))
                .collect::<std::io::Result<Vec<_>>>()
            {
                Ok(udp) => udp,
                Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                    last_error = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            vec![probe]
        };
        return Ok(Sockets { udp, tcp });
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free port")))
}
