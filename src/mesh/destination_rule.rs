//! Istio's DestinationRule `*.<zone>` with `ISTIO_MUTUAL`
//! TLS, one per served zone, when asked for (`--destination-rules`).
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficPolicy {
    pub tls: ClientTls,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTls {
    pub mode: String,
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
                    tls: ClientTls {
                        mode: "ISTIO_MUTUAL".to_string(),
                    },
                },
                export_to: export_to_all(),
            },
        })
        .collect()
}
