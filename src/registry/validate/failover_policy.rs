//! The failover policy's checks (design §2, [`crate::registry::failover`]):
//! every cluster a policy names exists (the defaults) or exports the
//! service (a service's own), once; weights within 1 to
//! [`MAX_WEIGHT`]; outlier-detection thresholds Istio accepts.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use compact_str::CompactString;

use super::ClusterNames;
use crate::registry::error::Problem;
use crate::registry::failover::{Defaults, MAX_WEIGHT, OutlierDetection, parse_duration};
use crate::registry::model::Service;

/// The registry-wide defaults: the clusters they name exist.
pub(super) fn validate_defaults(
    defaults: &Defaults,
    clusters: &ClusterNames<'_>,
    problems: &mut Vec<Problem>,
) {
    let known = |c: &str| clusters.contains(c);
    check_order(
        &defaults.failover,
        "defaults.failover",
        &known,
        "unknown cluster",
        problems,
    );
    check_weights(
        &defaults.weights,
        "defaults.weights",
        &known,
        "unknown cluster",
        problems,
    );
    if let Some(outlier) = &defaults.outlier_detection {
        check_outlier(outlier, "defaults.outlierDetection", problems);
    }
}

/// A service's own policy: the clusters it names export it.
pub(super) fn validate_policy(
    service: &Service,
    at: &dyn fmt::Display,
    problems: &mut Vec<Problem>,
) {
    let exports = |c: &str| service.exported_from.iter().any(|e| e == c);
    let why = "the service is not exported from cluster";
    if let Some(order) = &service.failover {
        check_order(order, &format!("{at}.failover"), &exports, why, problems);
    }
    if let Some(weights) = &service.weights {
        if weights.is_empty() {
            problems.push(Problem::new(
                format!("{at}.weights"),
                "no weights given: leave `weights` out (the registry's defaults apply) or name a cluster",
            ));
        }
        check_weights(weights, &format!("{at}.weights"), &exports, why, problems);
    }
    if let Some(outlier) = &service.outlier_detection {
        check_outlier(outlier, &format!("{at}.outlierDetection"), problems);
    }
}

fn check_order(
    order: &[CompactString],
    at: &str,
    named: &dyn Fn(&str) -> bool,
    why: &str,
    problems: &mut Vec<Problem>,
) {
    for (j, cluster) in order.iter().enumerate() {
        if !named(cluster) {
            problems.push(Problem::new(
                format!("{at}[{j}]"),
                format!("{why} `{cluster}`"),
            ));
        }
        if order[..j].contains(cluster) {
            problems.push(Problem::new(
                format!("{at}[{j}]"),
                format!("cluster `{cluster}` is listed twice"),
            ));
        }
    }
}

fn check_weights(
    weights: &BTreeMap<CompactString, u32>,
    at: &str,
    named: &dyn Fn(&str) -> bool,
    why: &str,
    problems: &mut Vec<Problem>,
) {
    for (cluster, weight) in weights {
        if !named(cluster) {
            problems.push(Problem::new(
                format!("{at}.{cluster}"),
                format!("{why} `{cluster}`"),
            ));
        }
        if !(1..=MAX_WEIGHT).contains(weight) {
            problems.push(Problem::new(
                format!("{at}.{cluster}"),
                format!("weight {weight} is outside 1 to {MAX_WEIGHT} (drain a cluster by taking it out of exportedFrom)"),
            ));
        }
    }
}

/// Istio's limits: durations of at least 1 ms, in whole milliseconds
/// (its validation's `ValidateDuration`); a percentage within 0 to 100.
fn check_outlier(outlier: &OutlierDetection, at: &str, problems: &mut Vec<Problem>) {
    for (field, text) in [
        ("interval", &outlier.interval),
        ("baseEjectionTime", &outlier.base_ejection_time),
    ] {
        let Some(text) = text else { continue };
        match parse_duration(text) {
            Ok(d) if d < Duration::from_millis(1) => problems.push(Problem::new(
                format!("{at}.{field}"),
                format!("`{text}` is shorter than 1ms"),
            )),
            Ok(_) => {}
            Err(e) => problems.push(Problem::new(format!("{at}.{field}"), e.to_string())),
        }
    }
    if let Some(percent) = outlier.max_ejection_percent
        && percent > 100
    {
        problems.push(Problem::new(
            format!("{at}.maxEjectionPercent"),
            format!("{percent} is not a percentage (0 to 100)"),
        ));
    }
}
