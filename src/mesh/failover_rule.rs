//! The failover policy ([`crate::registry::failover`]) as Istio takes it,
//! for the clients of one cluster (design §5; issue 27 item 2).
//!
//! Istio orders a service's endpoints into Envoy priorities only through a
//! DestinationRule with outlier detection (without it Envoy never leaves
//! priority 0; pilot/pkg/networking/core/loadbalancer/loadbalancer.go,
//! `ApplyLocalityLoadBalancer`). The order a policy gives depends on the
//! client's cluster, and globaldns writes each cluster's objects into
//! that cluster only, so each cluster's endpoints can say their order.
//! How depends on the entry's resolution:
//!
//! - **STATIC** (every endpoint an IP: a cluster without a copy of its own,
//!   gateways given by IP): a service of *n* tiers ([`tiers`]) gets *n − 1*
//!   priority labels, `globaldns.io/failover-1` … `-<n−1>`; an endpoint of
//!   tier *t* carries the first *n − 1 − t* of them (`"true"`). The rule
//!   lists them in `failoverPriority`, each with the value `true` given
//!   (`key=value`, Istio 1.18 and later): Istio puts an endpoint that
//!   matches the first *k* labels at priority *n − 1 − k*
//!   (`applyFailoverPriorityPerLocality`), so tier *t* is priority *t*,
//!   whatever the pods' real localities. The Istio oracle checks it.
//! - **DNS** (the local Service's name is an endpoint, or a gateway given
//!   by name): Istio's `failoverPriority` is not safe there. Before
//!   istio/istio#58674 it was not applied to STRICT_DNS clusters at all;
//!   since, `buildOutboundClusters` hands `applyFailoverPriorityPerLocality`
//!   every endpoint but only the first locality's filtered ones, and istiod
//!   panics on an index out of range (istio/istio#61857) for endpoints in
//!   several localities or outside a gateway's network view, which is
//!   every such host. So these rules order by region, the path Istio has
//!   applied to DNS clusters since 1.1 (`applyLocalityFailover`): the
//!   endpoints keep their clusters' localities, and the rule says
//!   `failover: [{from: <local region>, to: <the next tier's region>}]`.
//!   A client then prefers its own region (the local copy), then that
//!   region, then the others: three tiers at most, and only with the
//!   clusters' `locality` in the registry.
//! - `weights` become endpoint weights: a cluster's weight times the
//!   least common multiple of the gateway counts, divided by its own, so
//!   that a cluster's share does not grow with its gateways;
//! - a service with one tier gets `localityLbSetting.enabled: false`:
//!   "every other exporter, equally", not Istio's default preference for
//!   endpoints in the client's region.
//!
//! `localityLbSetting` is written in `networking.istio.io/v1` (Istio 1.22
//! and later) only: with `v1beta1` and `v1alpha3` the rule carries the
//! outlier detection and weights, and Istio's default locality failover
//! (by the registry's localities) orders the endpoints.
//!
//! A rule is written for each service host whose endpoints come from two
//! sources or more (clusters, or the workloads outside Kubernetes): with
//! one there is nothing to fail over to. Per-cluster names get none.

use std::collections::BTreeMap;
use std::time::Duration;

use compact_str::CompactString;

use super::destination_rule::{
    ClientTls, DestinationRule, DestinationRuleSpec, KIND, LoadBalancer, LocalityLbSetting,
    Outlier, RegionFailover, TrafficPolicy,
};
use super::meta::{Metadata, export_to_all};
use super::workload_entry::WorkloadEntry;
use super::{IstioApiVersion, Target};
use crate::registry::failover::{Defaults, Thresholds};
use crate::registry::{Cluster, Registry, Service};

/// Where a group of a service's endpoints comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source<'s> {
    /// An exporting cluster: its gateways, or the local Service.
    Cluster(&'s str),
    /// The service's workloads outside Kubernetes (`endpoints`).
    Outside,
}

/// The policy of one service, the defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy<'s> {
    pub failover: &'s [CompactString],
    /// `None`: no weights given (each endpoint counts the same).
    pub weights: Option<&'s BTreeMap<CompactString, u32>>,
    pub thresholds: Thresholds,
}

impl<'s> Policy<'s> {
    /// `service`'s policy: each of its fields, else the default's.
    pub fn of(service: &'s Service, defaults: &'s Defaults) -> Self {
        let failover = match &service.failover {
            Some(own) => &own[..],
            None => &defaults.failover[..],
        };
        let weights = match &service.weights {
            Some(weights) => Some(&**weights),
            None => (!defaults.weights.is_empty()).then_some(&defaults.weights),
        };
        let base = defaults
            .outlier_detection
            .as_ref()
            .map_or(Thresholds::ISTIO, |o| o.resolved(Thresholds::ISTIO));
        let thresholds = service
            .outlier_detection
            .as_ref()
            .map_or(base, |o| o.resolved(base));
        Self {
            failover,
            weights,
            thresholds,
        }
    }

    /// The relative share of `cluster` within its tier: its weight, 1 when
    /// the weights leave it out.
    pub fn weight(&self, cluster: &str) -> u32 {
        self.weights
            .and_then(|w| w.get(cluster).copied())
            .unwrap_or(1)
    }
}

/// The tiers a client in `local` prefers `service`'s copies in, best
/// first, none empty (see the module's header): the local copy, each
/// cluster of `failover` that exports it, then every other source.
pub fn tiers<'s>(
    service: &'s Service,
    local: &str,
    failover: &'s [CompactString],
) -> Vec<Vec<Source<'s>>> {
    let exports = |c: &str| service.exported_from.iter().any(|e| e == c);
    let mut placed: Vec<&str> = Vec::new();
    let mut tiers = Vec::new();
    if let Some(own) = service.exported_from.iter().find(|c| *c == local) {
        placed.push(own);
        tiers.push(vec![Source::Cluster(own)]);
    }
    for cluster in failover {
        if exports(cluster) && !placed.contains(&cluster.as_str()) {
            placed.push(cluster);
            tiers.push(vec![Source::Cluster(cluster)]);
        }
    }
    let mut rest: Vec<Source<'s>> = service
        .exported_from
        .iter()
        .filter(|c| !placed.contains(&c.as_str()))
        .map(|c| Source::Cluster(c))
        .collect();
    if !service.endpoints.is_empty() {
        rest.push(Source::Outside);
    }
    if !rest.is_empty() {
        tiers.push(rest);
    }
    tiers
}

/// A service's sources in the registry: each exporting cluster, and its
/// workloads outside Kubernetes as one. A rule needs two.
pub fn sources(service: &Service) -> usize {
    service.exported_from.len() + usize::from(!service.endpoints.is_empty())
}

/// The prefix of the priority labels: `globaldns.io/failover-<k>`.
pub const PRIORITY_LABEL_PREFIX: &str = "globaldns.io/failover-";

/// How a host's rule orders its endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ordering {
    /// Priority labels and `failoverPriority` (a STATIC entry, `v1`).
    Labels,
    /// Regions: the local one, then `failover` to the next tier's (a DNS
    /// entry; see the module's header).
    Regions,
}

/// One service's policy as seen from the local cluster.
pub(super) struct Plan<'s> {
    tiers: Vec<Vec<Source<'s>>>,
    /// The service's sources in the registry: its exporters, and its
    /// workloads outside Kubernetes as one.
    sources: usize,
    policy: Policy<'s>,
    /// The local cluster's region, and that of the first cluster after it
    /// in the order, when the registry gives them.
    regions: (Option<&'s str>, Option<&'s str>),
}

/// The region of `locality` (`region/zone[/subzone]`), if any.
fn region(locality: Option<&str>) -> Option<&str> {
    locality
        .and_then(|l| l.split('/').next())
        .filter(|r| !r.is_empty())
}

impl<'s> Plan<'s> {
    /// `service`'s plan for clients in `local`, its policy over the
    /// registry's defaults.
    pub(super) fn new(service: &'s Service, local: &'s Cluster, registry: &'s Registry) -> Self {
        let policy = Policy::of(service, &registry.defaults);
        let tiers = tiers(service, &local.name, policy.failover);
        let locality_of = |name: &str| {
            registry
                .clusters
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.locality.as_deref())
        };
        // The first cluster after the local one whose region is not the
        // local region: a region failover to the local region says nothing.
        let local_region = region(local.locality.as_deref());
        let next = tiers
            .iter()
            .filter_map(|tier| match tier.as_slice() {
                [Source::Cluster(c)] if *c != local.name => region(locality_of(c)),
                _ => None,
            })
            .find(|r| Some(*r) != local_region);
        Self {
            sources: sources(service),
            regions: (local_region, next),
            tiers,
            policy,
        }
    }

    fn tier(&self, source: &Source<'_>) -> usize {
        self.tiers
            .iter()
            .position(|t| t.contains(source))
            .unwrap_or(self.tiers.len())
    }

    /// Gives `endpoints` (each with its source) their priority labels (a
    /// STATIC entry in `v1`) and weights (with `weights`), and says how the
    /// service's DestinationRule orders them; `None`: no rule, as they
    /// come from fewer than two sources.
    pub(super) fn annotate(
        &self,
        endpoints: &mut [(WorkloadEntry, Source<'_>)],
        api_version: IstioApiVersion,
    ) -> Option<Ordering> {
        // Whether there is a rule follows the registry, not the gateways
        // withdrawn now: an outage must not delete and recreate rules.
        if self.sources < 2 {
            return None;
        }
        let dns = endpoints.iter().any(|(e, _)| e.by_name());
        let ordering = if dns {
            Ordering::Regions
        } else {
            Ordering::Labels
        };
        let labels = self.tiers.len() - 1;
        if ordering == Ordering::Labels && api_version == IstioApiVersion::V1 && labels > 0 {
            for (entry, source) in endpoints.iter_mut() {
                let tier = self.tier(source).min(labels);
                for k in 1..=labels - tier {
                    entry
                        .labels
                        .insert(format!("{PRIORITY_LABEL_PREFIX}{k}"), "true".to_string());
                }
            }
        }
        if self.policy.weights.is_some() {
            let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
            for (_, source) in endpoints.iter() {
                if let Source::Cluster(cluster) = source {
                    *counts.entry(cluster).or_default() += 1;
                }
            }
            // Past u32 (gateway counts with a huge common multiple), the
            // shares are kept per gateway rather than wrapped or clamped.
            let common = counts
                .values()
                .try_fold(1u64, |a, b| lcm(a, *b))
                .filter(|c| *c <= u64::from(u32::MAX / crate::registry::failover::MAX_WEIGHT))
                .unwrap_or(1);
            for (entry, source) in endpoints.iter_mut() {
                if let Source::Cluster(cluster) = source {
                    let weight = u64::from(self.policy.weight(cluster)) * common / counts[cluster];
                    entry.weight = Some(u32::try_from(weight.max(1)).unwrap_or(u32::MAX));
                }
            }
        }
        Some(ordering)
    }

    /// The DestinationRule `name` for `host`, ordered by `ordering`: the
    /// outlier detection, and with `v1` the failover priorities or regions;
    /// `ISTIO_MUTUAL` too with `--destination-rules`, since a rule for the
    /// host replaces the zone's `*.<zone>` one.
    pub(super) fn rule(
        &self,
        name: &str,
        host: &str,
        ordering: Ordering,
        target: &Target,
    ) -> DestinationRule {
        let labels = self.tiers.len().saturating_sub(1);
        let locality = (target.api_version == IstioApiVersion::V1).then(|| {
            let mut setting = LocalityLbSetting {
                enabled: labels > 0,
                failover_priority: Vec::new(),
                failover: Vec::new(),
            };
            match ordering {
                _ if labels == 0 => {}
                Ordering::Labels => {
                    setting.failover_priority = (1..=labels)
                        .map(|k| format!("{PRIORITY_LABEL_PREFIX}{k}=true"))
                        .collect();
                }
                // Without the local region Istio would rank the copies by
                // the pods' real region against the registry's: equal is
                // what the docs promise.
                Ordering::Regions if self.regions.0.is_none() => setting.enabled = false,
                Ordering::Regions => {
                    if let (Some(from), Some(to)) = self.regions
                        && from != to
                    {
                        setting.failover = vec![RegionFailover {
                            from: from.to_string(),
                            to: to.to_string(),
                        }];
                    }
                }
            }
            setting
        });
        DestinationRule {
            api_version: target.api_version.api_version().to_string(),
            kind: KIND.to_string(),
            metadata: Metadata::owned(name.to_string(), &target.namespace),
            spec: DestinationRuleSpec {
                host: host.to_string(),
                traffic_policy: TrafficPolicy {
                    tls: target.destination_rules.then(ClientTls::istio_mutual),
                    load_balancer: locality.map(|l| LoadBalancer {
                        locality_lb_setting: l,
                    }),
                    outlier_detection: Some(outlier(self.policy.thresholds, target.api_version)),
                },
                export_to: export_to_all(),
            },
        }
    }
}

/// The thresholds in Istio's words: `consecutive5xxErrors` from
/// `v1beta1` on, `consecutiveErrors` (its 1.1–1.4 name) in `v1alpha3`.
fn outlier(t: Thresholds, api_version: IstioApiVersion) -> Outlier {
    let (consecutive_5xx_errors, consecutive_errors) = match api_version {
        IstioApiVersion::V1alpha3 => (None, Some(t.consecutive_5xx_errors)),
        _ => (Some(t.consecutive_5xx_errors), None),
    };
    Outlier {
        consecutive_5xx_errors,
        consecutive_errors,
        interval: duration(t.interval),
        base_ejection_time: duration(t.base_ejection_time),
        max_ejection_percent: t.max_ejection_percent,
    }
}

/// A duration as protobuf's JSON form writes it: seconds, `s`, and the
/// milliseconds only when there are some (`10s`, `0.250s`).
fn duration(d: Duration) -> String {
    let millis = d.subsec_millis();
    if millis == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}.{millis:03}s", d.as_secs())
    }
}

fn lcm(a: u64, b: u64) -> Option<u64> {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    (a / gcd(a, b)).checked_mul(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn names<'s>(tiers: &[Vec<Source<'s>>]) -> Vec<Vec<&'s str>> {
        tiers
            .iter()
            .map(|t| {
                t.iter()
                    .map(|s| match s {
                        Source::Cluster(c) => *c,
                        Source::Outside => "outside",
                    })
                    .collect()
            })
            .collect()
    }

    const THREE: &str = "{name: a, namespace: b, exportedFrom: [east, west, south], ports: [{name: http, number: 80, protocol: HTTP}]}";

    /// Without a policy: the local copy, then every other exporter
    /// together; a client in a cluster without a copy has one tier.
    #[test]
    fn without_a_policy_the_local_copy_comes_first_then_the_others_equally() {
        let s = service(THREE);
        assert_eq!(
            names(&tiers(&s, "east", &[])),
            [vec!["east"], vec!["west", "south"]]
        );
        assert_eq!(
            names(&tiers(&s, "north", &[])),
            [vec!["east", "west", "south"]]
        );
    }

    /// The order goes after the local copy; the local cluster and
    /// clusters that do not export the service are passed over; what the
    /// order leaves out comes last, with the workloads outside Kubernetes.
    #[test]
    fn the_failover_order_follows_the_local_copy() {
        let s = service(
            "{name: a, namespace: b, exportedFrom: [east, west, south, north], ports: [{name: http, number: 80, protocol: HTTP}], endpoints: [{address: 192.0.2.9}]}",
        );
        let order: Vec<CompactString> = ["east", "nowhere", "south", "west"]
            .map(CompactString::from)
            .to_vec();
        assert_eq!(
            names(&tiers(&s, "east", &order)),
            [
                vec!["east"],
                vec!["south"],
                vec!["west"],
                vec!["north", "outside"]
            ]
        );
        assert_eq!(
            names(&tiers(&s, "west", &order)),
            [
                vec!["west"],
                vec!["east"],
                vec!["south"],
                vec!["north", "outside"]
            ]
        );
    }

    /// A service's own fields win, field by field; the others come from
    /// the defaults; thresholds merge field by field over Istio's.
    #[test]
    fn a_services_fields_win_over_the_defaults_field_by_field() {
        let defaults: Defaults = serde_saphyr::from_str(
            "{failover: [west], weights: {west: 3}, outlierDetection: {interval: 2s, consecutive5xxErrors: 2}}",
        )
        .unwrap();
        let own = service(
            "{name: a, namespace: b, exportedFrom: [east, west], ports: [{name: http, number: 80, protocol: HTTP}], failover: [east], outlierDetection: {consecutive5xxErrors: 7}}",
        );
        let policy = Policy::of(&own, &defaults);
        assert_eq!(policy.failover, ["east"]);
        assert_eq!(policy.weight("west"), 3);
        assert_eq!(policy.weight("east"), 1);
        assert_eq!(
            policy.thresholds,
            Thresholds {
                consecutive_5xx_errors: 7,
                interval: Duration::from_secs(2),
                ..Thresholds::ISTIO
            }
        );
        let bare = service(THREE);
        let none = Defaults::default();
        let policy = Policy::of(&bare, &none);
        assert!(policy.failover.is_empty() && policy.weights.is_none());
        assert_eq!(policy.thresholds, Thresholds::ISTIO);
    }
}
