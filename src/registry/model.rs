//! The registry's data model: clusters, their gateways, and the services each
//! exports. The field names are a contract with users' files (design §2), so
//! every struct refuses unknown fields and keeps the documented spelling.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use thin_vec::ThinVec;

use super::failover::{Defaults, OutlierDetection};

/// Default port of an Istio east-west gateway's mTLS passthrough listener.
pub const DEFAULT_GATEWAY_PORT: u16 = 15443;

/// The whole registry: what every cluster running globaldns agrees on.
///
/// Services are shared (`Arc`): a new version of the registry that changes
/// one service holds the same allocation for every other one as the
/// version before it, and tells an unchanged service by its address alone
/// ([`Arc::ptr_eq`]) before comparing values. The list itself is shared
/// too (`Arc<[…]>`), so that the file source, the shrink brake, the
/// controller, the last-known-good writer and the sync can all hold one
/// version for the price of a pointer (a list each was 0.8 MB at 100,000
/// services); a new version is a new list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    #[serde(default)]
    pub services: Arc<[Arc<Service>]>,
    /// The failover policy of every service that does not give its own,
    /// field by field (design §2; [`super::failover`]).
    #[serde(default, skip_serializing_if = "Defaults::is_empty")]
    pub defaults: Defaults,
}

/// A cluster of the mesh and the gateways through which it is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    pub name: String,
    /// Istio network name, copied into ServiceEntry endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `region/zone[/subzone]`, copied into ServiceEntry endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default)]
    pub gateways: Vec<Gateway>,
}

/// An east-west gateway: an IP address or a DNS name, its port, and
/// optionally the URL its health probes GET instead of connecting to the
/// port (design §2, gateway health).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gateway {
    pub address: String,
    #[serde(default = "default_gateway_port")]
    pub port: u16,
    /// `http://host:port/path` answering 2xx while the gateway is ready
    /// (Istio's gateways serve `http://<pod>:15021/healthz/ready`); without
    /// it, a probe is a TCP connect to `address:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_url: Option<String>,
}

fn default_gateway_port() -> u16 {
    DEFAULT_GATEWAY_PORT
}

/// The clusters a service is exported from: one, almost always, held in
/// place (see [`Service`]).
pub type Clusters = SmallVec<[CompactString; 1]>;

/// A service's ports: one, most often, held in place (see [`Service`]).
pub type Ports = SmallVec<[Port; 1]>;

/// A service exported to the mesh by one or more clusters.
///
/// Laid out for a registry of many services in one allocation each
/// (160 bytes): the usual one cluster and one port are held in place
/// ([`SmallVec`], a [`Port`] in 32 bytes), and the fields that are usually
/// empty (pins, workloads, the failover policy) cost a pointer each
/// ([`ThinVec`], `Option<Box<…>>`). With a `Vec` for each list, a service
/// took three allocations and 280 bytes (28 MB at 100,000 services; 18
/// now).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    pub name: CompactString,
    pub namespace: CompactString,
    /// Clusters that export it; may be empty when it lists `endpoints`.
    #[serde(default, deserialize_with = "shrunk")]
    pub exported_from: Clusters,
    #[serde(deserialize_with = "shrunk")]
    pub ports: Ports,
    /// Addresses the user pins for this service's host in the pin zone
    /// (see [`crate::index::pin_zone`]). They replace the allocated VIP of
    /// their family (design §3).
    #[serde(
        default,
        deserialize_with = "shrunk",
        skip_serializing_if = "ThinVec::is_empty"
    )]
    pub addresses: ThinVec<IpAddr>,
    /// Workloads outside Kubernetes (VMs, bare metal) serving it, reached
    /// directly rather than through a cluster's gateway (design §2).
    #[serde(
        default,
        deserialize_with = "shrunk",
        skip_serializing_if = "ThinVec::is_empty"
    )]
    pub endpoints: ThinVec<Endpoint>,
    /// Clusters in the order a client prefers them after its own
    /// ([`super::failover`]); `None`: the registry's default (`[]` is an
    /// order of its own: every other exporter equally).
    #[serde(
        default,
        deserialize_with = "some_shrunk",
        skip_serializing_if = "Option::is_none"
    )]
    pub failover: Option<ThinVec<CompactString>>,
    /// Cluster → relative share of the calls within its failover tier;
    /// `None`: the registry's default.
    #[serde(
        default,
        deserialize_with = "boxed_unique_keys",
        skip_serializing_if = "Option::is_none"
    )]
    #[allow(clippy::box_collection, reason = "8 bytes a service, not 24")]
    pub weights: Option<Box<BTreeMap<CompactString, u32>>>,
    /// What makes a copy unhealthy; `None`: the registry's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<Box<OutlierDetection>>,
}

/// A workload outside Kubernetes: it becomes an endpoint of the service's
/// ServiceEntry in every cluster (Istio's `WorkloadEntry` fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Endpoint {
    /// IP address or DNS name.
    pub address: String,
    /// Service port name to the port the workload listens on; a port not
    /// listed is the service's own number.
    #[serde(
        default,
        deserialize_with = "unique_keys",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub ports: BTreeMap<String, u32>,
    /// Istio network name, when the workload is on another network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `region/zone[/subzone]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Labels of the workload (for subsets and policies).
    #[serde(
        default,
        deserialize_with = "unique_keys",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Load-balancing weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The workload's service account, when it runs an Istio sidecar: it
    /// is then sent mTLS (`security.istio.io/tlsMode: istio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// A mapping whose keys are all different. A decoder hands a map every
/// entry it reads, and a map keeps the last value of a repeated key: a
/// file with `ports: {http: 8080, http: 9090}` would serve 9090 and say
/// nothing. JSON leaves repeated names to the reader (RFC 8259 §4) and
/// YAML forbids them (YAML 1.2 §3.2.1.1); a registry refuses them both
/// ways, with the key: "duplicate key `http`".
fn unique_keys<'de, D, V>(decoder: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    let mut out = BTreeMap::new();
    for (key, value) in crate::mapping::entries::<D, String, V>(decoder)? {
        match out.entry(key) {
            Entry::Vacant(entry) => {
                entry.insert(value);
            }
            Entry::Occupied(entry) => {
                let key = entry.key();
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{key}`"
                )));
            }
        }
    }
    Ok(out)
}

/// [`unique_keys`], boxed: a field most services leave out costs a
/// pointer (8 bytes where a map costs 24).
#[allow(
    clippy::box_collection,
    reason = "a pointer in every service, see Service"
)]
fn boxed_unique_keys<'de, D, V>(
    decoder: D,
) -> Result<Option<Box<BTreeMap<CompactString, V>>>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    let map: BTreeMap<String, V> = unique_keys(decoder)?;
    Ok(Some(Box::new(
        map.into_iter().map(|(k, v)| (k.into(), v)).collect(),
    )))
}

/// A list decoded without spare room. Decoders grow a list by doubling: a
/// service's one cluster and one port in a `Vec` reserved room for four of
/// each, 35 MB at 100,000 services, held until the whole registry was read
/// (see [`Registry::shrink_to_fit`] for the lists this cannot reach).
fn shrunk<'de, D, L>(decoder: D) -> Result<L, D::Error>
where
    D: serde::Deserializer<'de>,
    L: Deserialize<'de> + Shrink,
{
    let mut list = L::deserialize(decoder)?;
    list.shrink();
    Ok(list)
}

/// [`shrunk`], for a list that may be left out.
fn some_shrunk<'de, D, L>(decoder: D) -> Result<Option<L>, D::Error>
where
    D: serde::Deserializer<'de>,
    L: Deserialize<'de> + Shrink,
{
    shrunk(decoder).map(Some)
}

/// A list that can give back its spare room.
trait Shrink {
    fn shrink(&mut self);
}

impl<A: smallvec::Array> Shrink for SmallVec<A> {
    fn shrink(&mut self) {
        self.shrink_to_fit();
    }
}

impl<T> Shrink for ThinVec<T> {
    fn shrink(&mut self) {
        self.shrink_to_fit();
    }
}

/// A named port of a service.
///
/// The name and the protocol are held in one string, inline while both
/// take 24 bytes or fewer (`http` and `HTTP` take 8), so that a port is 32
/// bytes rather than 56 with a string for each: a service with one port
/// is then one allocation of 160 bytes instead of 192 (3.2 MB at 100,000
/// services). Read and written as its three fields ([`PortFields`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PortFields", into = "PortFields")]
pub struct Port {
    /// The name, then the protocol.
    text: CompactString,
    /// Where the name ends in `text`.
    name_len: u32,
    /// Wider than `u16` so that `70000` is reported as a bad port number by
    /// validation, with its path, instead of as a type error.
    pub number: u32,
}

impl Port {
    pub fn new(name: &str, number: u32, protocol: &str) -> Self {
        Self::of(name, number, protocol).expect("a port name shorter than 4 GiB")
    }

    fn of(name: &str, number: u32, protocol: &str) -> Result<Self, &'static str> {
        let name_len = u32::try_from(name.len()).map_err(|_| "port name too long")?;
        let mut text = CompactString::with_capacity(name.len() + protocol.len());
        text.push_str(name);
        text.push_str(protocol);
        Ok(Self {
            text,
            name_len,
            number,
        })
    }

    pub fn name(&self) -> &str {
        &self.text[..self.name_len as usize]
    }

    pub fn protocol(&self) -> &str {
        &self.text[self.name_len as usize..]
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("name", &self.name())
            .field("number", &self.number)
            .field("protocol", &self.protocol())
            .finish()
    }
}

// A [`Port`] as files and custom resources spell it; its doc line is the
// port's description in the CRD schema.
/// A named port of a service.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Port")]
pub struct PortFields {
    #[schemars(with = "String")]
    pub name: CompactString,
    /// Wider than `u16` so that `70000` is reported as a bad port number by
    /// validation, with its path, instead of as a type error.
    pub number: u32,
    #[schemars(with = "String")]
    pub protocol: CompactString,
}

impl TryFrom<PortFields> for Port {
    type Error = &'static str;

    fn try_from(p: PortFields) -> Result<Self, Self::Error> {
        Self::of(&p.name, p.number, &p.protocol)
    }
}

impl From<Port> for PortFields {
    fn from(p: Port) -> Self {
        Self {
            name: p.name().into(),
            number: p.number,
            protocol: p.protocol().into(),
        }
    }
}

impl schemars::JsonSchema for Port {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        PortFields::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        PortFields::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        PortFields::json_schema(generator)
    }
}

impl Registry {
    /// Drops the spare capacity a decoder leaves in every list: it grows a
    /// list by doubling from four, so a service's one cluster and one port
    /// took room for four of each (352 bytes a service; 35 MB at 100,000).
    pub fn shrink_to_fit(&mut self) {
        self.clusters.shrink_to_fit();
        for cluster in &mut self.clusters {
            cluster.gateways.shrink_to_fit();
        }
        // Only a list and services held nowhere else: a shared service
        // was shrunk when it was decoded.
        let services = Arc::get_mut(&mut self.services).into_iter().flatten();
        for service in services {
            if let Some(service) = Arc::get_mut(service) {
                service.shrink_to_fit();
            }
        }
    }
}

impl Service {
    /// Drops the spare capacity of its lists (see [`Registry::shrink_to_fit`]).
    pub fn shrink_to_fit(&mut self) {
        self.exported_from.shrink_to_fit();
        self.ports.shrink_to_fit();
        self.addresses.shrink_to_fit();
        self.endpoints.shrink_to_fit();
        if let Some(failover) = &mut self.failover {
            failover.shrink_to_fit();
        }
    }

    /// The host of this service in `zone`: `<name>.<namespace>.<zone>`, lower-cased.
    pub fn host(&self, zone: &str) -> CompactString {
        let mut host = compact_str::format_compact!("{}.{}.{}", self.name, self.namespace, zone);
        host.make_ascii_lowercase();
        host
    }

    /// The per-cluster name of this service in `zone` for `cluster`, one of
    /// its exporters: `<cluster>.<name>.<namespace>.<zone>`, lower-cased
    /// (design §2). It reaches that cluster's copy only.
    pub fn cluster_host(&self, cluster: &str, zone: &str) -> CompactString {
        let mut host =
            compact_str::format_compact!("{}.{}.{}.{}", cluster, self.name, self.namespace, zone);
        host.make_ascii_lowercase();
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout the registry's memory figures rest on (see [`Service`]):
    /// one allocation of 160 bytes (184 with its `Arc` counts and malloc's
    /// header) for a service with one cluster and one port, nothing more.
    #[test]
    fn a_service_with_one_cluster_and_one_port_is_one_allocation_of_160_bytes() {
        assert_eq!(std::mem::size_of::<Port>(), 32);
        assert_eq!(std::mem::size_of::<Service>(), 160);
        let service: Service = serde_json::from_str(
            r#"{"name": "a", "namespace": "b", "exportedFrom": ["east"],
                "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}]}"#,
        )
        .unwrap();
        assert!(!service.exported_from.spilled());
        assert!(!service.ports.spilled());
        assert!(service.addresses.is_empty() && service.endpoints.is_empty());
    }

    /// A port is read and written as its three fields, whatever it holds
    /// them in; a field it does not know is refused by name.
    #[test]
    fn a_port_reads_and_writes_as_its_fields() {
        let text = r#"{"name":"grpc-web","number":8080,"protocol":"GRPC-WEB"}"#;
        let port: Port = serde_json::from_str(text).unwrap();
        assert_eq!(
            (port.name(), port.number, port.protocol()),
            ("grpc-web", 8080, "GRPC-WEB")
        );
        assert_eq!(serde_json::to_string(&port).unwrap(), text);
        assert_eq!(port, Port::new("grpc-web", 8080, "GRPC-WEB"));
        assert_ne!(port, Port::new("grpc-we", 8080, "bGRPC-WEB"));
        let err = serde_json::from_str::<Port>(r#"{"name":"a","number":1,"protocol":"TCP","x":1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
    }
}
