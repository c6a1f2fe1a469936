//! Failover policy (design §2; issue 27 item 2): which clusters a client
//! prefers after its own, in what shares, and what makes a copy
//! "unhealthy". Per service (`failover`, `weights`, `outlierDetection`),
//! each field falling back to the registry-wide `defaults` when the
//! service leaves it out.
//!
//! What a policy means is relative to the cluster a client runs in (the
//! cluster `render --cluster` writes for), as
//! `tiers` in [`crate::mesh::failover_rule`] spells out:
//!
//! 1. the local copy, when the local cluster exports the service;
//! 2. each cluster of `failover` in its order (the local one and clusters
//!    that do not export the service are passed over);
//! 3. every other exporter, and the workloads outside Kubernetes, together.
//!
//! Without a policy that is "the local copy first, every other exporter
//! next, equally". Within a tier, `weights` (cluster → relative share, 1 by
//! default) split the calls. How Istio is told is the rendering's concern
//! ([`crate::mesh::failover_rule`]).

use std::collections::BTreeMap;
use std::time::Duration;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Largest weight a cluster may be given: far above any share a person
/// writes. A weight is multiplied by the least common multiple of the
/// exporters' gateway counts; when that product could pass 32 bits
/// (Envoy's sums), the render keeps the weights per gateway instead.
pub const MAX_WEIGHT: u32 = 10_000;

/// The registry-wide default policy (`defaults:` at the top of a registry
/// file). Each field applies to the services that leave it out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Defaults {
    /// Clusters in the order they are preferred after the local one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<CompactString>,
    /// Cluster → relative share of the calls within its tier.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<CompactString, u32>,
    /// What makes a copy unhealthy, field by field over Istio's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
}

impl Defaults {
    /// No default policy at all (the field is then left out of a file).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The outlier-detection thresholds (Istio's `OutlierDetection`, a subset):
/// every field optional, each unset one taking Istio's documented default
/// ([`OutlierDetection::resolved`]). Durations are written `250ms`, `10s`,
/// `1m` or `1h`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Errors in a row (5xx, or a failed connection) that eject a copy.
    #[serde(
        default,
        rename = "consecutive5xxErrors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors: Option<u32>,
    /// How often the proxy sweeps for copies to eject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// How long an ejected copy stays out, the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<String>,
    /// Most copies that may be ejected at once, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
}

/// Outlier detection with every value set: what is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub consecutive_5xx_errors: u32,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
}

impl Thresholds {
    /// Istio's defaults (DestinationRule reference, `OutlierDetection`):
    /// 5 errors in a row, a sweep every 10 s, 30 s out; but up to 100% of
    /// the hosts ejected, not Istio's 10%. Envoy counts ejections across
    /// the whole cluster, every priority together, so with 10% a client
    /// whose own copy is out could never eject the next tier and move on
    /// to the one after: failover needs every tier to be ejectable.
    pub const ISTIO: Self = Self {
        consecutive_5xx_errors: 5,
        interval: Duration::from_secs(10),
        base_ejection_time: Duration::from_secs(30),
        max_ejection_percent: 100,
    };
}

impl OutlierDetection {
    /// The thresholds this gives over `base`; a duration that does not
    /// parse (validation refuses those) keeps `base`'s.
    pub fn resolved(&self, base: Thresholds) -> Thresholds {
        let duration = |text: &Option<String>, or: Duration| {
            text.as_deref()
                .and_then(|t| parse_duration(t).ok())
                .unwrap_or(or)
        };
        Thresholds {
            consecutive_5xx_errors: self
                .consecutive_5xx_errors
                .unwrap_or(base.consecutive_5xx_errors),
            interval: duration(&self.interval, base.interval),
            base_ejection_time: duration(&self.base_ejection_time, base.base_ejection_time),
            max_ejection_percent: self
                .max_ejection_percent
                .unwrap_or(base.max_ejection_percent),
        }
    }
}

/// Why a duration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration (try 250ms, 30s, 10m or 1h)")]
    NotADuration(String),
    #[error("`{text}` has unknown unit `{unit}` (use ms, s, m or h)")]
    UnknownUnit { text: String, unit: String },
    #[error("`{0}` is too long")]
    TooLong(String),
}

/// A duration written as a whole number and a unit, `ms`, `s`, `m` or
/// `h` (a bare number is seconds): the form of every duration globaldns
/// reads, in flags and in the registry.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| DurationError::NotADuration(s.to_string()))?;
    let millis = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => {
            return Err(DurationError::UnknownUnit {
                text: s.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| DurationError::TooLong(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_flags_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(
            parse_duration("1d").unwrap_err().to_string(),
            "`1d` has unknown unit `d` (use ms, s, m or h)"
        );
        assert!(parse_duration("soon").is_err());
    }
}
