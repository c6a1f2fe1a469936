//! Gateway health (issue 27 item 3, design §5 "Gateway health"): the leader
//! probes the east-west gateways of every *remote* cluster and withdraws the
//! ones that keep failing, so that a cluster whose API server still answers
//! while its gateway is down stops receiving first connections before every
//! sidecar's outlier detection has noticed on its own. VIPs never move: only
//! the endpoints through a withdrawn gateway go (the rendering's concern).
//!
//! This module owns:
//!
//! - [`Health`]: the pure state machine: probe results in, withdrawals and
//!   returns out, with hysteresis ([`HealthConfig`]'s thresholds);
//! - [`remote_gateways`]: which gateways to probe (pure);
//! - [`probe`]: one probe, a TCP connect or an HTTP/1.1 readiness GET (I/O);
//! - [`run`]: the task that probes every round, logs each change and
//!   publishes the withdrawn set and the status map on `watch` channels.
//!
//! Flags, metrics, the rendering and `explain` read what [`run`] publishes;
//! they are not here.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::future::Future;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::registry::Registry;

pub use crate::metrics::{GatewayKey, GatewayStatus};

fn endpoint(host: &str, port: u16) -> String {
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Probe schedule and thresholds.
///
/// The defaults ([`Default`]) follow the spirit of Kubernetes' probe
/// defaults and of Istio's outlier detection, which both act on
/// *consecutive* results so that one lost packet changes nothing:
///
/// - `interval` 5 s: twice as often as a Kubernetes probe's `periodSeconds`
///   (10 s), so that a dead gateway is withdrawn within about 3 × 5 s + 2 s
///   = 17 s, close to the sync Lease's 15 s takeover;
/// - `timeout` 2 s: Kubernetes' `timeoutSeconds` is 1 s for a pod next
///   door; a gateway in another region is further, and 2 s still covers a
///   handshake whose first SYN was lost (Linux retransmits it after 1 s);
/// - `unhealthy_after` 3: Kubernetes' `failureThreshold`; Istio ejects a
///   host after consecutive errors too (`consecutive5xxErrors`, 5 by
///   default, counted per request rather than per 5 s round);
/// - `healthy_after` 2: Kubernetes' readiness `successThreshold` is 1, but
///   Istio keeps an ejected host out for a `baseEjectionTime`; one pass more
///   than the minimum keeps a gateway that answers every other probe from
///   coming back on each lucky one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthConfig {
    /// Time between the starts of two rounds; must not be zero ([`run`]).
    pub interval: Duration,
    /// Longest one probe may take, connect (and GET) included.
    pub timeout: Duration,
    /// Consecutive failed probes that withdraw an up gateway (0 acts as 1).
    pub unhealthy_after: u32,
    /// Consecutive passed probes that bring a withdrawn gateway back (0
    /// acts as 1).
    pub healthy_after: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            unhealthy_after: 3,
            healthy_after: 2,
        }
    }
}

impl GatewayStatus {
    fn new(now: SystemTime) -> Self {
        Self {
            up: true,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_error: None,
            since: now,
        }
    }
}

/// The pure state machine: feed it probe results, it says what changed. No
/// clock and no I/O: the caller says when each result was had.
#[derive(Clone, Debug)]
pub struct Health {
    config: HealthConfig,
    status: BTreeMap<GatewayKey, GatewayStatus>,
}

impl Health {
    pub fn new(config: HealthConfig) -> Self {
        Self {
            config,
            status: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Records one probe result for `key` (`Ok(())` passed, `Err(reason)`
    /// failed) at `now`; returns `Some(true)` when the gateway just came
    /// back, `Some(false)` when it was just withdrawn, `None` otherwise.
    /// A gateway never seen before starts up (and `since` is `now`).
    pub fn observe(
        &mut self,
        key: &GatewayKey,
        result: Result<(), String>,
        now: SystemTime,
    ) -> Option<bool> {
        let status = match self.status.get_mut(key) {
            Some(status) => status,
            None => self
                .status
                .entry(key.clone())
                .or_insert(GatewayStatus::new(now)),
        };
        match result {
            Ok(()) => {
                status.consecutive_failures = 0;
                status.consecutive_successes = status.consecutive_successes.saturating_add(1);
                if !status.up && status.consecutive_successes >= self.config.healthy_after.max(1) {
                    status.up = true;
                    status.since = now;
                    return Some(true);
                }
            }
            Err(reason) => {
                status.consecutive_successes = 0;
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                status.last_error = Some(reason);
                if status.up && status.consecutive_failures >= self.config.unhealthy_after.max(1) {
                    status.up = false;
                    status.since = now;
                    return Some(false);
                }
            }
        }
        None
    }

    /// Forgets gateways not in `keys` (the registry no longer lists them):
    /// one listed again later starts afresh, up.
    pub fn retain(&mut self, keys: &BTreeSet<GatewayKey>) {
        self.status.retain(|key, _| keys.contains(key));
    }

    /// The gateways currently withdrawn.
    pub fn withdrawn(&self) -> BTreeSet<GatewayKey> {
        self.status
            .iter()
            .filter(|(_, status)| !status.up)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Every gateway seen (and not forgotten), in key order.
    pub fn status(&self) -> &BTreeMap<GatewayKey, GatewayStatus> {
        &self.status
    }
}

/// The gateways to probe: every gateway of every cluster of `registry`
/// except `local` (its own gateway serves the other clusters, not it).
pub fn remote_gateways(registry: &Registry, local: &str) -> BTreeSet<GatewayKey> {
    registry
        .clusters
        .iter()
        .filter(|cluster| cluster.name != local)
        .flat_map(|cluster| {
            cluster
                .gateways
                .iter()
                .map(|gateway| GatewayKey::new(&cluster.name, &gateway.address, gateway.port))
        })
        .collect()
}

/// The readiness URL `registry` gives the gateway `key`, if any.
pub fn readiness_url(registry: &Registry, key: &GatewayKey) -> Option<String> {
    registry
        .clusters
        .iter()
        .find(|c| c.name == key.cluster)?
        .gateways
        .iter()
        .find(|g| g.address == key.address && g.port == key.port)?
        .readiness_url
        .clone()
}

/// One probe: a TCP connect to `key`'s address and port within `timeout`,
/// or, with `readiness_url`, an HTTP/1.1 GET of it (to the URL's own host
/// and port) that must answer 2xx within `timeout`. A name is resolved by
/// tokio's connect, within the same `timeout`.
///
/// Errors say what failed: `connect to 192.0.2.1:15443: connection
/// refused`, `connect to 192.0.2.1:15443: timed out after 2s`, `GET
/// http://192.0.2.1:15021/healthz/ready: status 503`. Only `http://` URLs
/// are supported; any other is refused (`GET https://…: scheme https is not
/// supported, only http://`) without a connection.
pub async fn probe(
    key: &GatewayKey,
    readiness_url: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    match readiness_url {
        None => {
            let what = format!("connect to {}", key.endpoint());
            let connect = async {
                TcpStream::connect((key.address.as_str(), key.port))
                    .await
                    .map(drop)
                    .map_err(|e| describe_io(&e))
            };
            within(timeout, &what, connect).await
        }
        Some(url) => {
            let what = format!("GET {url}");
            let target = HttpTarget::parse(url).map_err(|e| format!("{what}: {e}"))?;
            within(timeout, &what, get(&target)).await
        }
    }
}

/// `work`'s outcome, its error prefixed with `what`, or a timeout.
async fn within(
    timeout: Duration,
    what: &str,
    work: impl Future<Output = Result<(), String>>,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: timed out after {timeout:?}")),
    }
}

/// An I/O error as a reason: the kinds a probe meets often in their short
/// lowercase words (`connection refused`, not `Connection refused (os error
/// 111)`); any other as the error says it (a failed name lookup).
fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | ConnectionReset | ConnectionAborted | HostUnreachable
        | NetworkUnreachable | AddrNotAvailable | TimedOut => e.kind().to_string(),
        _ => e.to_string(),
    }
}

/// An error and its sources, `: `-separated (hyper's top-level message
/// alone often says only "connection error").
fn describe(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A readiness URL taken apart: where to connect and what to ask.
#[derive(Debug, PartialEq, Eq)]
struct HttpTarget {
    /// To connect to: a name or an IP address, IPv6 without brackets.
    host: String,
    port: u16,
    /// The `Host` header: the URL's host (IPv6 in brackets) and its port
    /// if the URL gives one.
    host_header: String,
    /// The request target: path and query, `/` if the URL has none.
    path: String,
}

impl HttpTarget {
    fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(format!("scheme {other} is not supported, only http://")),
            None => return Err("no scheme, only http:// is supported".to_string()),
        }
        let authority = uri.authority().ok_or("no host")?;
        let host_header = match authority.port() {
            Some(port) => format!("{}:{port}", authority.host()),
            None => authority.host().to_string(),
        };
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Ok(Self {
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
            host_header,
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        })
    }
}

/// One GET on a connection of its own, closed after the response's head:
/// the status is all a probe reads.
async fn get(target: &HttpTarget) -> Result<(), String> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| {
            let to = endpoint(&target.host, target.port);
            format!("connect to {to}: {}", describe_io(&e))
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| describe(&e))?;
    let request = http::Request::get(target.path.as_str())
        .header(http::header::HOST, target.host_header.as_str())
        .header(http::header::USER_AGENT, "globaldns-gateway-health")
        .header(http::header::CONNECTION, "close")
        .body(String::new())
        .map_err(|e| describe(&e))?;
    // The connection is driven here, in this task, rather than spawned: it
    // lives exactly as long as the probe (and its timeout). It may end in
    // the same poll that hands the response over (`connection: close`), so
    // its end is not a failure: the response, or why there is none, is.
    let mut send = std::pin::pin!(sender.send_request(request));
    let response = tokio::select! {
        response = &mut send => response.map_err(|e| describe(&e))?,
        closed = connection => match send.await {
            Ok(response) => response,
            Err(e) => return Err(closed.err().map_or_else(|| describe(&e), |c| describe(&c))),
        },
    };
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status {}", status.as_u16()))
    }
}

/// The prober task: every `config.interval` (the first round at once),
/// probes every remote gateway of the latest registry in `registry` (all
/// of one round concurrently, each within `config.timeout`), feeds them to
/// a [`Health`], and logs each change (`warn` when a gateway is withdrawn,
/// `info` when it is back, naming cluster, `address:port` and the last
/// error). When the withdrawn set changes it is sent on `withdrawn`; after
/// each round the status map is sent on `status` if it changed. Gateways
/// the registry stops listing are forgotten. Until a registry is known
/// (`None`), rounds probe nothing. `readiness` gives a gateway's readiness
/// URL, if it has one ([`probe`]). Ends when `shutdown` is cancelled, even
/// in the middle of a round.
///
/// # Panics
///
/// If `config.interval` is zero (tokio's interval refuses it).
pub async fn run(
    config: HealthConfig,
    local: String,
    registry: watch::Receiver<Option<Arc<Registry>>>,
    readiness: impl Fn(&GatewayKey) -> Option<String> + Send + 'static,
    withdrawn: watch::Sender<BTreeSet<GatewayKey>>,
    status: watch::Sender<BTreeMap<GatewayKey, GatewayStatus>>,
    shutdown: CancellationToken,
) {
    let mut health = Health::new(config);
    let mut ticks = tokio::time::interval(config.interval);
    // A round that overran its interval is followed by a full interval, not
    // by a burst of rounds that would hammer the gateways.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let current = registry.borrow().clone();
        let keys = current
            .map(|registry| remote_gateways(&registry, &local))
            .unwrap_or_default();
        health.retain(&keys);
        let probes = keys.iter().map(|key| {
            let url = readiness(key);
            async move { (key, probe(key, url.as_deref(), config.timeout).await) }
        });
        let results = tokio::select! {
            _ = shutdown.cancelled() => return,
            results = futures::future::join_all(probes) => results,
        };
        let now = SystemTime::now();
        for (key, result) in results {
            let change = health.observe(key, result, now);
            log_change(key, change, &health);
        }
        publish(&withdrawn, health.withdrawn());
        publish(&status, health.status().clone());
    }
}

/// Sends `value` if it differs from what `sender` holds: readers wake only
/// on a change.
fn publish<T: PartialEq>(sender: &watch::Sender<T>, value: T) {
    sender.send_if_modified(|held| {
        let changed = *held != value;
        if changed {
            *held = value;
        }
        changed
    });
}

fn log_change(key: &GatewayKey, change: Option<bool>, health: &Health) {
    let Some(status) = health.status().get(key) else {
        return;
    };
    let last_error = status.last_error.as_deref().unwrap_or("none");
    match change {
        Some(false) => tracing::warn!(
            cluster = %key.cluster,
            gateway = %key.endpoint(),
            reason = last_error,
            "east-west gateway withdrawn after {} failed probes in a row",
            status.consecutive_failures,
        ),
        Some(true) => tracing::info!(
            cluster = %key.cluster,
            gateway = %key.endpoint(),
            last_error,
            "east-west gateway back after {} passed probes in a row",
            status.consecutive_successes,
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests;
