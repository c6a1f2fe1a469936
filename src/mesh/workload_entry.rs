//! Istio's `WorkloadEntry` message, as the endpoints of a ServiceEntry:
//! the fields globaldns sets, in Istio's spelling. Its own file because
//! both the ServiceEntries ([`super::service_entry`]) and the failover
//! policy ([`super::failover_rule`], labels and weights) write it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An endpoint of a ServiceEntry (Istio's `WorkloadEntry` message).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntry {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Service port name to endpoint port; empty means the service's own
    /// port numbers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

impl WorkloadEntry {
    /// Whether the address is a host name Envoy resolves (not an IP): one
    /// such endpoint makes the entry's resolution DNS.
    pub fn by_name(&self) -> bool {
        self.address.parse::<std::net::IpAddr>().is_err()
    }
}
