//! The gateway probes' series (`globaldns_gateway_*`): each remote
//! east-west gateway the Lease holder probes, up or withdrawn (design §5,
//! gateway health). Set from the prober's status after every round. The
//! gateway's name and state are defined here, below the prober
//! ([`crate::mesh::gateway_health`]), as [`super::PeerStatus`] is below the
//! registry watch.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use std::net::Ipv6Addr;
use std::time::SystemTime;

use super::header;

/// One gateway of one cluster, as the registry lists it: `address` is an IP
/// address or a DNS name (resolved at each probe), `port` its TCP port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GatewayKey {
    pub cluster: String,
    pub address: String,
    pub port: u16,
}

impl GatewayKey {
    /// The gateway `address:port` of `cluster`.
    pub fn new(cluster: &str, address: &str, port: u16) -> Self {
        Self {
            cluster: cluster.to_string(),
            address: address.to_string(),
            port,
        }
    }

    /// `address:port`, an IPv6 address in brackets (`[2001:db8::1]:15443`):
    /// how logs and errors name the gateway.
    pub fn endpoint(&self) -> String {
        if self.address.parse::<Ipv6Addr>().is_ok() {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// What is known of one gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayStatus {
    /// Whether it receives traffic (false: withdrawn).
    pub up: bool,
    /// Failed probes in a row, up to the latest (0 after a pass).
    pub consecutive_failures: u32,
    /// Passed probes in a row, up to the latest (0 after a failure).
    pub consecutive_successes: u32,
    /// The reason of the most recent failed probe, kept after later passes
    /// (a gateway that flaps shows why); `None` if none ever failed.
    pub last_error: Option<String>,
    /// When `up` last changed, or when the gateway was first seen.
    pub since: SystemTime,
}

/// Each probed gateway's state, by gateway.
#[derive(Default)]
pub struct GatewaySeries {
    pub status: Mutex<BTreeMap<GatewayKey, GatewayStatus>>,
}

impl GatewaySeries {
    /// One series per probed gateway: whether it is up, and how many are
    /// withdrawn.
    pub(super) fn render(&self, out: &mut String) {
        let status = self.status.lock().unwrap().clone();
        header(
            out,
            "globaldns_gateway_up",
            "gauge",
            "1 while a remote east-west gateway passes its probes, 0 while it is withdrawn from the ServiceEntries' endpoints (only on the Lease holder).",
        );
        for (key, gateway) in &status {
            let _ = writeln!(
                out,
                "globaldns_gateway_up{{cluster=\"{}\",gateway=\"{}\"}} {}",
                key.cluster,
                key.endpoint(),
                u8::from(gateway.up)
            );
        }
        header(
            out,
            "globaldns_gateway_withdrawn",
            "gauge",
            "Remote east-west gateways withdrawn from the ServiceEntries' endpoints because their probes fail.",
        );
        let down = status.values().filter(|g| !g.up).count();
        let _ = writeln!(out, "globaldns_gateway_withdrawn {down}");
    }
}
