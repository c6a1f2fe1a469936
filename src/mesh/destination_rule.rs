//! Istio's DestinationRule: the type, with only the fields globaldns sets,
//! and the rules `*.<zone>` with `ISTIO_MUTUAL` TLS, one per served zone,
//! when asked for (`--destination-rules`). The per-service rules of the
//! failover policy are [`super::failover`]'s.
//!
//! With Istio's auto mTLS (the default since 1.5) the tlsMode label on the
//! ServiceEntry endpoints is enough. Installs that turn auto mTLS off (or
//! 1.1–1.7 installs whose `*.global` rule was removed) need a rule that
//! says to originate Istio mTLS towards `.global` hosts, as the 1.7
//! multicluster install's own `*.global` DestinationRule did.

use serde::{Deserialize, Serialize};

use super::Target;
use super::meta::{Metadata, export_to_all};

pub const KIND: &str = "DestinationRule";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: DestinationRuleSpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    pub host: String,
    pub traffic_policy: TrafficPolicy,
    /// Always [`super::meta::EXPORT_TO_ALL`]: see [`export_to_all`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<Outlier>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTls {
    pub mode: String,
}

impl ClientTls {
    /// Istio mTLS with the mesh's certificates.
    pub fn istio_mutual() -> Self {
        Self {
            mode: "ISTIO_MUTUAL".to_string(),
        }
    }
}

/// Istio's `LoadBalancerSettings`, the locality part only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub locality_lb_setting: LocalityLbSetting,
}

/// Istio's `LocalityLoadBalancerSetting`: on, with failover priority
/// labels or a region to fail over to, or off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalityLbSetting {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<RegionFailover>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_priority: Vec<String>,
}

/// Istio's `LocalityLoadBalancerSetting.Failover`: clients in region
/// `from` go to region `to` before any other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionFailover {
    pub from: String,
    pub to: String,
}

/// Istio's `OutlierDetection`: counts, durations in protobuf's JSON form
/// (`10s`), a percentage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outlier {
    #[serde(
        default,
        rename = "consecutive5xxErrors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_errors: Option<u32>,
    pub interval: String,
    pub base_ejection_time: String,
    pub max_ejection_percent: u32,
}

/// One rule per zone (`globaldns-<zone with dots as dashes>`), or none
/// when not asked for (owned ones are then pruned).
pub fn destination_rules(zones: &[String], target: &Target) -> Vec<DestinationRule> {
    if !target.destination_rules {
        return Vec::new();
    }
    zones
        .iter()
        .map(|zone| DestinationRule {
            api_version: target.api_version.api_version().to_string(),
            kind: KIND.to_string(),
            metadata: Metadata::owned(
                format!("globaldns-{}", zone.replace('.', "-")),
                &target.namespace,
            ),
            spec: DestinationRuleSpec {
                host: format!("*.{zone}"),
                traffic_policy: TrafficPolicy {
                    tls: Some(ClientTls::istio_mutual()),
                    ..TrafficPolicy::default()
                },
                export_to: export_to_all(),
            },
        })
        .collect()
}
