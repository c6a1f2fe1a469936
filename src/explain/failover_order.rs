//! The failover policy in `explain` (design §2, [`crate::mesh::failover_rule`]):
//! for a service served from two sources or more, the order each
//! exporting cluster's clients prefer its copies in, the shares and the
//! outlier-detection thresholds, and where the policy comes from.

use std::fmt::Write;

use crate::mesh::failover_rule::{Policy, Source, sources, tiers};
use crate::registry::Service;
use crate::registry::failover::Defaults;

/// The failover lines of `service` (none when one source serves it).
pub(super) fn lines(out: &mut String, service: &Service, defaults: &Defaults) {
    if sources(service) < 2 {
        return;
    }
    let policy = Policy::of(service, defaults);
    let whose = |own: bool, default_given: bool| match (own, default_given) {
        (true, _) => "the service's",
        (false, true) => "the registry's defaults",
        (false, false) => "none given",
    };
    let _ = writeln!(
        out,
        "failover ({} order, {} weights, {} thresholds):",
        whose(service.failover.is_some(), !defaults.failover.is_empty()),
        whose(service.weights.is_some(), !defaults.weights.is_empty()),
        whose(
            service.outlier_detection.is_some(),
            defaults.outlier_detection.is_some()
        ),
    );
    let mut clients: Vec<&str> = service.exported_from.iter().map(|c| c.as_str()).collect();
    // A client in a cluster without a copy: the order is the same from
    // every such cluster.
    clients.push("");
    for client in clients {
        let order: Vec<String> = tiers(service, client, policy.failover)
            .iter()
            .map(|tier| {
                tier.iter()
                    .map(|source| match source {
                        Source::Cluster(c) if policy.weights.is_some() => {
                            format!("{c} (weight {})", policy.weight(c))
                        }
                        Source::Cluster(c) => c.to_string(),
                        Source::Outside => "the workloads outside Kubernetes".to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" and ")
            })
            .collect();
        let from = if client.is_empty() {
            "from other clusters".to_string()
        } else {
            format!("from {client}")
        };
        let _ = writeln!(out, "  {from}: {}", order.join(", then "));
    }
    let t = policy.thresholds;
    let _ = writeln!(
        out,
        "  a copy is ejected after {} errors in a row (checked every {:?}, out for {:?} at first, at most {}% at once)",
        t.consecutive_5xx_errors, t.interval, t.base_ejection_time, t.max_ejection_percent
    );
}
