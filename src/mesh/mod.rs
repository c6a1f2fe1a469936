//! The Istio objects a cluster needs for the served zones (design §5), one
//! file per kind, each rendered by a pure function from the registry and
//! the allocations:
//!
//! - [`service_entry`]: one ServiceEntry per host, its endpoints
//!   ([`workload_entry`]);
//! - [`gateway`]: the east-west gateway's Gateway for `*.<zone>`, when
//!   the cluster exports anything;
//! - [`failover_rule`]: the failover policy as this cluster's clients need
//!   it: priority labels and weights on the endpoints, a DestinationRule
//!   per service host with two sources or more;
//! - [`destination_rule`]: the type, and `*.<zone>` with `ISTIO_MUTUAL`,
//!   when asked for.
//!
//! [`render`] gives them all, as [`Object`]s; `globaldns render` prints
//! them. The rest of the module is the one writer and what it reads back:
//!
//! - [`sync`]: applies the rendered objects (server-side apply, one field
//!   manager) and prunes the owned ones no longer rendered, kind by kind,
//!   judging drift on the fields it owns ([`drift`]);
//! - [`lease`]: only the Lease holder writes;
//! - [`gateway_health`]: the Lease holder probes the remote east-west
//!   gateways; a gateway down is withdrawn from the endpoints it renders;
//! - [`mcs`]: the MCS API's ServiceImports, one per exported service, and
//!   their part of each sync pass;
//! - [`api_version`]: which `networking.istio.io` versions the API server
//!   serves;
//! - [`record`]: the VIPs of the owned ServiceEntries, read back (design
//!   §3); [`dropin`]: the hand-written ServiceEntries' hosts (drop-in mode).

pub mod api_version;
pub mod destination_rule;
pub mod drift;
pub mod dropin;
pub mod failover_rule;
pub mod gateway;
pub mod gateway_health;
pub mod lease;
pub mod mcs;
pub mod meta;
pub mod record;
pub mod service_entry;
pub mod sync;
pub mod workload_entry;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use destination_rule::DestinationRule;
pub use gateway::Gateway;
pub use gateway_health::GatewayKey;
pub use meta::{GROUP, IstioApiVersion, MANAGED_BY, MANAGED_BY_LABEL, Metadata, VersionError};
pub use service_entry::ServiceEntry;

use crate::registry::{Cluster, Registry};
use crate::vip::{Allocator, Table};

/// Whose objects, where, and the choices that shape them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The cluster they are for (`--cluster`): its own exports get the
    /// local endpoint and its Gateway; the others' go through their
    /// gateways.
    pub cluster: String,
    /// Their namespace (`--service-entry-namespace`, default
    /// `istio-system`).
    pub namespace: String,
    /// The local cluster's DNS domain (`--cluster-domain`, default
    /// `cluster.local`): the local endpoint is
    /// `<name>.<namespace>.svc.<domain>`.
    pub cluster_domain: String,
    /// The east-west gateway's pod labels (`--gateway-selector`, default
    /// `istio=eastwestgateway`).
    pub gateway_selector: BTreeMap<String, String>,
    /// Render the `*.<zone>` DestinationRules (`--destination-rules`).
    pub destination_rules: bool,
    /// The `networking.istio.io` version the objects are written in
    /// (`render --istio-api-version`; the sync's discovery).
    pub api_version: IstioApiVersion,
    /// Remote gateways withdrawn from the ServiceEntries' endpoints, as
    /// `(cluster, address, port)`: those the leader's health probes found
    /// down (design §5, gateway health). Empty for `render`.
    pub withdrawn: BTreeSet<GatewayKey>,
}

/// The default of `--cluster-domain`.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// The default of `--gateway-selector`: the label Istio's east-west gateway
/// installs (samples/multicluster/gen-eastwest-gateway.sh) carry.
pub const DEFAULT_GATEWAY_SELECTOR: (&str, &str) = ("istio", "eastwestgateway");

impl Target {
    /// The defaults for cluster `cluster`, objects in `namespace`.
    pub fn new(cluster: &str, namespace: &str) -> Self {
        let (key, value) = DEFAULT_GATEWAY_SELECTOR;
        Self {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_string(),
            gateway_selector: BTreeMap::from([(key.to_string(), value.to_string())]),
            destination_rules: false,
            api_version: IstioApiVersion::default(),
            withdrawn: BTreeSet::new(),
        }
    }

    /// The local cluster in `registry`; [`RenderError::UnknownCluster`],
    /// naming the known ones, if it is not there.
    pub fn local<'r>(&self, registry: &'r Registry) -> Result<&'r Cluster, RenderError> {
        registry
            .clusters
            .iter()
            .find(|c| c.name == self.cluster)
            .ok_or_else(|| RenderError::UnknownCluster {
                cluster: self.cluster.clone(),
                known: registry.clusters.iter().map(|c| c.name.clone()).collect(),
            })
    }
}

/// Why the Istio objects of a cluster could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The target's `cluster` is not in the registry, whose clusters are
    /// `known` (in registry order).
    #[error("cluster `{cluster}` is not in the registry (clusters: {})", known.join(", "))]
    UnknownCluster { cluster: String, known: Vec<String> },
}

/// The kinds globaldns writes, in the order it writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    ServiceEntry,
    Gateway,
    DestinationRule,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::ServiceEntry, Kind::Gateway, Kind::DestinationRule];

    /// The kind's name, as in `kind:`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ServiceEntry => service_entry::KIND,
            Kind::Gateway => gateway::KIND,
            Kind::DestinationRule => destination_rule::KIND,
        }
    }

    /// The resource's plural, as in its URL.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::ServiceEntry => "serviceentries",
            Kind::Gateway => "gateways",
            Kind::DestinationRule => "destinationrules",
        }
    }
}

/// One object globaldns writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    ServiceEntry(ServiceEntry),
    Gateway(Gateway),
    DestinationRule(DestinationRule),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::ServiceEntry(_) => Kind::ServiceEntry,
            Object::Gateway(_) => Kind::Gateway,
            Object::DestinationRule(_) => Kind::DestinationRule,
        }
    }

    pub fn metadata(&self) -> &Metadata {
        match self {
            Object::ServiceEntry(o) => &o.metadata,
            Object::Gateway(o) => &o.metadata,
            Object::DestinationRule(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The whole object as JSON, as it is applied.
    pub fn to_value(&self) -> serde_json::Value {
        let value = match self {
            Object::ServiceEntry(o) => serde_json::to_value(o),
            Object::Gateway(o) => serde_json::to_value(o),
            Object::DestinationRule(o) => serde_json::to_value(o),
        };
        value.expect("an Istio object serialises")
    }
}

impl Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Object::ServiceEntry(o) => o.serialize(serializer),
            Object::Gateway(o) => o.serialize(serializer),
            Object::DestinationRule(o) => o.serialize(serializer),
        }
    }
}

/// Every object `target.cluster` needs: the ServiceEntries (registry
/// order, zone by zone), then its Gateway if it exports anything, then the
/// DestinationRules if asked for. Fails when the cluster is not in the
/// registry ([`RenderError::UnknownCluster`]).
pub fn render(
    registry: &Registry,
    zones: &[String],
    per_cluster: bool,
    allocator: &Allocator,
    table: &Table,
    target: &Target,
) -> Result<Vec<Object>, RenderError> {
    let (entries, rules) =
        service_entry::rendered(registry, zones, per_cluster, allocator, table, target)?;
    let mut objects: Vec<Object> = entries.into_iter().map(Object::ServiceEntry).collect();
    objects.extend(gateway::gateway(registry, zones, target)?.map(Object::Gateway));
    objects.extend(rules.into_iter().map(Object::DestinationRule));
    objects.extend(
        destination_rule::destination_rules(zones, target)
            .into_iter()
            .map(Object::DestinationRule),
    );
    Ok(objects)
}

#[cfg(test)]
mod tests;
