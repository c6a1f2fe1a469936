//! Test support: a server started in-process on 127.0.0.1:0 with its own
//! registry file and state directory, and a small DNS client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globaldns::controller::Settings;
use globaldns::dns::server::TcpLimits;
use globaldns::registry::brake::BrakeConfig;
use globaldns::serve::{self, Running, ServeConfig};
use globaldns::vip::{Allocator, Family, VipRange};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// The registry most tests serve: design §2's example plus a dual-stack
/// service with a pinned IPv6 address.
pub const REGISTRY: &str = "\
clusters:
  - name: east
    network: network-east
    gateways:
      - address: 192.0.2.10
  - name: west
    locality: us-west1/us-west1-a
    gateways:
      - address: gw.west.example.com
services:
  - name: httpbin
    namespace: bar
    exportedFrom: [west]
    ports:
      - { name: http1, number: 8000, protocol: HTTP }
  - name: reviews
    namespace: default
    exportedFrom: [east, west]
    ports:
      - { name: http, number: 9080, protocol: HTTP }
      - { name: grpc, number: 9090, protocol: GRPC }
  - name: dual
    namespace: default
    exportedFrom: [east]
    ports:
      - { name: tcp, number: 5000, protocol: TCP }
    addresses: ['2001:db8::53']
";

/// A server under test, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
    running: Option<Running>,
}

pub struct Options {
    pub registry: Option<String>,
    /// Where to listen: 127.0.0.1:0 unless a test must know the port
    /// before the start returns.
    pub listen: SocketAddr,
    pub zones: Vec<String>,
    pub v6: Option<&'static str>,
    pub tcp: TcpLimits,
    pub reload_interval: Duration,
    /// `--in-place-settle`.
    pub in_place_settle: Duration,
    /// Serve the admin endpoint (on 127.0.0.1:0).
    pub admin: Option<std::net::SocketAddr>,
    /// `admin` stands for `serve`'s default address (a port in use is
    /// then a warning, not a failure).
    pub admin_is_default: bool,
    /// The name server's addresses (`ns.<zone>` A/AAAA).
    pub ns_addresses: Vec<std::net::IpAddr>,
    pub brake: BrakeConfig,
    /// Serve per-cluster names (`serve`'s default; off is
    /// `--no-per-cluster-names`).
    pub per_cluster_names: bool,
    /// `--explain-txt`.
    pub explain_txt: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            registry: Some(REGISTRY.to_string()),
            listen: "127.0.0.1:0".parse().unwrap(),
            zones: vec!["global".into()],
            v6: None,
            tcp: TcpLimits {
                max_connections: 64,
                idle_timeout: Duration::from_secs(5),
            },
            reload_interval: Duration::from_millis(20),
            in_place_settle: Duration::from_secs(10),
            admin: None,
            admin_is_default: false,
            explain_txt: false,
            ns_addresses: vec!["192.0.2.53".parse().unwrap()],
            brake: BrakeConfig {
                share: 0.5,
                hold: Duration::from_secs(30),
            },
            per_cluster_names: true,
        }
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if let Some(registry) = &options.registry {
            std::fs::write(dir.path().join("registry.yaml"), registry).unwrap();
        }
        Self::in_dir(dir, options).await
    }

    /// Starts on an existing directory (holding `registry.yaml` and `state/`).
    pub async fn in_dir(dir: tempfile::TempDir, options: Options) -> Self {
        let config = ServeConfig {
            registry: serve::Source::File(dir.path().join("registry.yaml")),
            listen: options.listen,
            state_dir: dir.path().join("state"),
            settings: Settings {
                zones: options.zones,
                per_cluster_names: options.per_cluster_names,
                ttl: 30,
                allocator: Allocator {
                    v4: VipRange::new("240.0.0.0/12".parse().unwrap(), Family::V4).unwrap(),
                    v6: options
                        .v6
                        .map(|r| VipRange::new(r.parse().unwrap(), Family::V6).unwrap()),
                    quarantine: 600,
                },
                ns_addresses: options.ns_addresses,
            },
            reload_interval: options.reload_interval,
            in_place_settle: options.in_place_settle,
            tcp: options.tcp,
            // Two, so every test also runs the SO_REUSEPORT group.
            udp_workers: 2,
            sync: None,
            grpc: None,
            serve_service_entries: false,
            admin: options.admin,
            admin_is_default: options.admin_is_default,
            explain_txt: options.explain_txt,
            drain_delay: Duration::ZERO,
            brake: options.brake,
            cluster: None,
        };
        let shutdown = CancellationToken::new();
        let running = serve::start(config, shutdown.clone())
            .await
            .expect("server starts");
        Self {
            addr: running.addr,
            dir,
            shutdown,
            running: Some(running),
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    pub fn registry_path(&self) -> PathBuf {
        self.dir.path().join("registry.yaml")
    }

    /// Stops the server and hands back its directory, for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await;
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A query message for `name`/`qtype`, with EDNS (payload 1232) if `edns`.
pub fn query(name: &str, qtype: RecordType, edns: bool) -> Message {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.queries
        .push(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.edns = Some(e);
    }
    m
}

/// Sends raw bytes over UDP and returns the raw reply, or `None` after a
/// timeout (the server dropped the message).
pub async fn udp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let len = tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    buf.truncate(len);
    Some(buf)
}

/// Sends raw bytes over a new TCP connection and returns the raw reply.
pub async fn tcp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    write_framed(&mut stream, bytes).await;
    read_framed(&mut stream).await
}

pub async fn write_framed(stream: &mut TcpStream, bytes: &[u8]) {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.unwrap();
}

pub async fn read_framed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Udp,
    Tcp,
}

pub const BOTH: [Via; 2] = [Via::Udp, Via::Tcp];

/// Sends `message` and decodes the reply; panics if there is none.
pub async fn exchange(addr: SocketAddr, message: &Message, via: Via) -> Message {
    let bytes = message.to_vec().unwrap();
    let reply = send(addr, &bytes, via)
        .await
        .unwrap_or_else(|| panic!("no reply over {via:?}"));
    Message::from_vec(&reply).expect("reply decodes")
}

pub async fn send(addr: SocketAddr, bytes: &[u8], via: Via) -> Option<Vec<u8>> {
    match via {
        Via::Udp => udp_raw(addr, bytes).await,
        Via::Tcp => tcp_raw(addr, bytes).await,
    }
}

/// Writes `text` to `path` atomically (as editors and `kubectl` do).
pub fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A loopback address whose port is free for UDP and TCP now, for a test
/// that must know it before the server's start returns.
pub fn free_addr() -> SocketAddr {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The binary, run with none of the environment variables that would
/// change its defaults (a developer's `GLOBALDNS_REGISTRY`, say).
pub fn globaldns() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_globaldns"));
    cmd.env_remove("GLOBALDNS_LOG")
        .env_remove("GLOBALDNS_REGISTRY");
    cmd
}

/// The path of `examples/<name>`.
pub fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}
