//! The prober at its boundaries: the state machine and the choice of
//! gateways directly (no I/O); `probe` and `run` over loopback sockets on
//! 127.0.0.1 only, in real time (paused time does not drive sockets), every
//! wait bounded.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;
use crate::registry::load_str;

fn key(cluster: &str, address: &str) -> GatewayKey {
    GatewayKey::new(cluster, address, 15443)
}

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

fn config(unhealthy_after: u32, healthy_after: u32) -> HealthConfig {
    HealthConfig {
        unhealthy_after,
        healthy_after,
        ..HealthConfig::default()
    }
}

fn failed() -> Result<(), String> {
    Err("connect to 192.0.2.1:15443: connection refused".to_string())
}

#[test]
fn the_defaults_are_the_documented_ones() {
    let config = HealthConfig::default();
    assert_eq!(config.interval, Duration::from_secs(5));
    assert_eq!(config.timeout, Duration::from_secs(2));
    assert_eq!((config.unhealthy_after, config.healthy_after), (3, 2));
}

/// Issue 27 item 3: withdrawn after `unhealthy_after` failures in a row,
/// back after `healthy_after` passes in a row; `since` marks each change.
#[test]
fn thresholds_withdraw_and_bring_back() {
    let mut health = Health::new(config(3, 2));
    let gw = key("west", "192.0.2.1");
    assert_eq!(health.observe(&gw, Ok(()), at(0)), None);
    assert_eq!(health.status()[&gw].since, at(0), "first seen");
    assert_eq!(health.observe(&gw, failed(), at(5)), None);
    assert_eq!(health.observe(&gw, failed(), at(10)), None);
    assert!(health.withdrawn().is_empty());
    assert_eq!(health.observe(&gw, failed(), at(15)), Some(false));
    assert_eq!(health.withdrawn(), BTreeSet::from([gw.clone()]));
    let status = &health.status()[&gw];
    assert!(!status.up);
    assert_eq!(status.consecutive_failures, 3);
    assert_eq!(status.since, at(15));
    assert_eq!(status.last_error, failed().err());
    // Still failing: nothing more to say.
    assert_eq!(health.observe(&gw, failed(), at(20)), None);
    assert_eq!(health.status()[&gw].since, at(15));
    assert_eq!(health.observe(&gw, Ok(()), at(25)), None);
    assert_eq!(health.observe(&gw, Ok(()), at(30)), Some(true));
    let status = &health.status()[&gw];
    assert!(status.up);
    assert_eq!(status.since, at(30));
    assert_eq!(
        (status.consecutive_failures, status.consecutive_successes),
        (0, 2)
    );
    assert_eq!(status.last_error, failed().err(), "kept after the passes");
    assert!(health.withdrawn().is_empty());
    assert_eq!(health.observe(&gw, Ok(()), at(35)), None);
}

/// A gateway that fails every other probe never fails three in a row: it
/// stays up, and `since` stays at first sight.
#[test]
fn a_flapping_gateway_is_never_withdrawn() {
    let mut health = Health::new(config(3, 2));
    let gw = key("west", "192.0.2.1");
    for round in 0..20 {
        let result = if round % 2 == 0 { failed() } else { Ok(()) };
        assert_eq!(health.observe(&gw, result, at(round)), None, "{round}");
    }
    assert!(health.status()[&gw].up);
    assert_eq!(health.status()[&gw].since, at(0));
    assert!(health.withdrawn().is_empty());
}

/// The other way: once withdrawn, a gateway passing every other probe
/// never passes two in a row, and stays out.
#[test]
fn a_withdrawn_gateway_that_flaps_stays_withdrawn() {
    let mut health = Health::new(config(1, 2));
    let gw = key("west", "192.0.2.1");
    assert_eq!(health.observe(&gw, failed(), at(0)), Some(false));
    for round in 1..20 {
        let result = if round % 2 == 0 { failed() } else { Ok(()) };
        assert_eq!(health.observe(&gw, result, at(round)), None, "{round}");
    }
    assert!(!health.status()[&gw].up);
}

/// A gateway first seen failing starts up, and that failure counts.
#[test]
fn a_new_gateway_starts_up_and_its_first_failure_counts() {
    let mut health = Health::new(config(2, 1));
    let gw = key("west", "gw.west.example.com");
    assert_eq!(health.observe(&gw, failed(), at(7)), None);
    let status = &health.status()[&gw];
    assert!(status.up);
    assert_eq!(status.consecutive_failures, 1);
    assert_eq!(status.since, at(7));
    assert_eq!(health.observe(&gw, failed(), at(8)), Some(false));
}

#[test]
fn thresholds_of_zero_act_as_one() {
    let mut health = Health::new(config(0, 0));
    let gw = key("west", "192.0.2.1");
    assert_eq!(health.observe(&gw, failed(), at(0)), Some(false));
    assert_eq!(health.observe(&gw, Ok(()), at(1)), Some(true));
}

/// A gateway the registry no longer lists is forgotten, withdrawn or not;
/// listed again, it starts afresh.
#[test]
fn retain_forgets_what_the_registry_dropped() {
    let mut health = Health::new(config(1, 1));
    let (a, b) = (key("west", "192.0.2.1"), key("north", "192.0.2.2"));
    assert_eq!(health.observe(&a, failed(), at(0)), Some(false));
    assert_eq!(health.observe(&b, Ok(()), at(0)), None);
    health.retain(&BTreeSet::from([b.clone()]));
    assert!(health.withdrawn().is_empty());
    assert_eq!(health.status().keys().collect::<Vec<_>>(), [&b]);
    assert_eq!(health.observe(&a, Ok(()), at(9)), None);
    assert_eq!(health.status()[&a], {
        let mut fresh = GatewayStatus::new(at(9));
        fresh.consecutive_successes = 1;
        fresh
    });
}

#[test]
fn remote_gateways_skips_the_local_cluster() {
    let text = "\
clusters:
  - {name: east, gateways: [{address: 192.0.2.1}]}
  - {name: west, gateways: [{address: 192.0.2.2, port: 15444}, {address: gw.west.example.com}]}
  - {name: north, gateways: [{address: '2001:db8::1'}]}
";
    let registry = load_str(text, "t.yaml", &["global".to_string()]).unwrap();
    let expected = BTreeSet::from([
        GatewayKey::new("west", "192.0.2.2", 15444),
        GatewayKey::new("west", "gw.west.example.com", 15443),
        GatewayKey::new("north", "2001:db8::1", 15443),
    ]);
    assert_eq!(remote_gateways(&registry, "east"), expected);
    assert_eq!(remote_gateways(&registry, "elsewhere").len(), 4);
}

#[test]
fn endpoints_bracket_ipv6() {
    assert_eq!(key("n", "2001:db8::1").endpoint(), "[2001:db8::1]:15443");
    assert_eq!(key("n", "192.0.2.1").endpoint(), "192.0.2.1:15443");
    assert_eq!(
        key("n", "gw.example.com").endpoint(),
        "gw.example.com:15443"
    );
}

#[test]
fn readiness_urls_are_taken_apart() {
    let target = HttpTarget::parse("http://192.0.2.1:15021/healthz/ready?x=1").unwrap();
    assert_eq!(
        target,
        HttpTarget {
            host: "192.0.2.1".to_string(),
            port: 15021,
            host_header: "192.0.2.1:15021".to_string(),
            path: "/healthz/ready?x=1".to_string(),
        }
    );
    let target = HttpTarget::parse("http://[2001:db8::1]").unwrap();
    assert_eq!((target.host.as_str(), target.port), ("2001:db8::1", 80));
    assert_eq!(
        (target.host_header.as_str(), target.path.as_str()),
        ("[2001:db8::1]", "/")
    );
    let refused = HttpTarget::parse("https://gw.example.com/ready").unwrap_err();
    assert_eq!(refused, "scheme https is not supported, only http://");
    assert!(
        HttpTarget::parse("/ready")
            .unwrap_err()
            .contains("no scheme")
    );
    assert!(
        HttpTarget::parse("http://a b")
            .unwrap_err()
            .contains("not a URL")
    );
}

const TIMEOUT: Duration = Duration::from_millis(200);
/// Far above anything loopback takes: only a hang reaches it.
const BOUND: Duration = Duration::from_secs(5);

/// Accepts connections on `listener` and closes them, until aborted
/// (which drops the listener).
fn accept_forever(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    })
}

/// A readiness endpoint on 127.0.0.1:0 answering every request with
/// `status` (`"200 OK"`), or, with `None`, reading it and never answering.
/// Each request's head is sent on the channel.
async fn stand_in(status: Option<&'static str>) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (heads, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                match status {
                    Some(status) => {
                        let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                        let _ = stream.write_all(response.as_bytes()).await;
                    }
                    None => std::future::pending().await,
                }
            });
        }
    });
    (address, received)
}

#[tokio::test]
async fn a_tcp_probe_passes_while_listened_to_and_then_names_the_refusal() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let gw = GatewayKey::new("west", "127.0.0.1", port);
    assert_eq!(probe(&gw, None, TIMEOUT).await, Ok(()));
    drop(listener);
    let error = probe(&gw, None, TIMEOUT).await.unwrap_err();
    assert_eq!(
        error,
        format!("connect to 127.0.0.1:{port}: connection refused")
    );
}

#[tokio::test]
async fn a_readiness_probe_asks_for_the_url_and_wants_2xx() {
    let (address, mut heads) = stand_in(Some("200 OK")).await;
    let gw = key("west", "192.0.2.1"); // the URL, not the key, is asked
    let url = format!("http://{address}/healthz/ready");
    assert_eq!(probe(&gw, Some(&url), TIMEOUT).await, Ok(()));
    let head = heads.recv().await.unwrap();
    assert!(
        head.starts_with("GET /healthz/ready HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.to_lowercase()
            .contains(&format!("host: {address}\r\n")),
        "{head}"
    );

    let (address, _heads) = stand_in(Some("503 Service Unavailable")).await;
    let url = format!("http://{address}/healthz/ready");
    let error = probe(&gw, Some(&url), TIMEOUT).await.unwrap_err();
    assert_eq!(error, format!("GET {url}: status 503"));
}

#[tokio::test]
async fn a_readiness_probe_names_what_failed() {
    let gw = key("west", "192.0.2.1");
    let error = probe(&gw, Some("https://127.0.0.1:1/ready"), TIMEOUT).await;
    assert_eq!(
        error.unwrap_err(),
        "GET https://127.0.0.1:1/ready: scheme https is not supported, only http://"
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{address}/ready");
    let error = probe(&gw, Some(&url), TIMEOUT).await.unwrap_err();
    assert_eq!(
        error,
        format!("GET {url}: connect to {address}: connection refused")
    );
}

/// A peer that accepts and never answers costs the timeout, no more.
#[tokio::test]
async fn a_silent_peer_times_out_within_the_timeout() {
    let (address, mut heads) = stand_in(None).await;
    let gw = key("west", "192.0.2.1");
    let url = format!("http://{address}/ready");
    let started = Instant::now();
    let error = probe(&gw, Some(&url), TIMEOUT).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(error, format!("GET {url}: timed out after 200ms"));
    assert!(took >= TIMEOUT && took < TIMEOUT * 5, "{took:?}");
    assert!(heads.recv().await.is_some(), "the request was sent");
}

/// Binds 127.0.0.1:`port` again, allowing the address to be reused (the
/// kernel may still hold the old listener's closed connections).
fn rebind(port: u16) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap();
    socket.listen(128).unwrap()
}

async fn bounded<T>(what: &str, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, work)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {BOUND:?}"))
}

/// Issue 27 item 3 end to end, in real time: a remote gateway that stops
/// listening is withdrawn (sent on the watch), and comes back once it
/// listens again; the local cluster's gateway is never probed.
#[tokio::test]
async fn run_withdraws_a_silent_gateway_and_brings_it_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepting = accept_forever(listener);
    let text = format!(
        "clusters:\n  - {{name: east, gateways: [{{address: 127.0.0.1, port: 1}}]}}\n  \
         - {{name: west, gateways: [{{address: 127.0.0.1, port: {port}}}]}}\n"
    );
    let registry = load_str(&text, "t.yaml", &["global".to_string()]).unwrap();
    let (_registry_tx, registry_rx) = watch::channel(Some(Arc::new(registry)));
    let (withdrawn_tx, mut withdrawn_rx) = watch::channel(BTreeSet::new());
    let (status_tx, mut status_rx) = watch::channel(BTreeMap::new());
    let shutdown = CancellationToken::new();
    let config = HealthConfig {
        interval: Duration::from_millis(50),
        timeout: TIMEOUT,
        unhealthy_after: 2,
        healthy_after: 1,
    };
    let task = tokio::spawn(run(
        config,
        "east".to_string(),
        registry_rx,
        |_: &GatewayKey| None,
        withdrawn_tx,
        status_tx,
        shutdown.clone(),
    ));
    let west = GatewayKey::new("west", "127.0.0.1", port);

    let passing = |s: &BTreeMap<GatewayKey, GatewayStatus>| {
        s.get(&west).is_some_and(|g| g.consecutive_successes >= 3)
    };
    bounded("three passes", status_rx.wait_for(passing))
        .await
        .unwrap();
    assert_eq!(
        status_rx.borrow().keys().collect::<Vec<_>>(),
        [&west],
        "east is local"
    );
    assert!(withdrawn_rx.borrow().is_empty());

    accepting.abort();
    let _ = accepting.await; // the listener is dropped
    let withdrawn = |w: &BTreeSet<GatewayKey>| w.contains(&west);
    bounded("withdrawn", withdrawn_rx.wait_for(withdrawn))
        .await
        .unwrap();
    let down = |s: &BTreeMap<GatewayKey, GatewayStatus>| s.get(&west).is_some_and(|g| !g.up);
    let status = bounded("status", status_rx.wait_for(down))
        .await
        .unwrap()
        .clone();
    let reason = status[&west].last_error.clone().unwrap();
    assert!(
        reason.starts_with(&format!("connect to 127.0.0.1:{port}: ")),
        "{reason}"
    );

    let accepting = accept_forever(rebind(port));
    bounded("back", withdrawn_rx.wait_for(BTreeSet::is_empty))
        .await
        .unwrap();
    assert!(status_rx.borrow()[&west].up);

    shutdown.cancel();
    bounded("shutdown", task).await.unwrap();
    accepting.abort();
}
