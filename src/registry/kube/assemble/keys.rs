//! One service key's part of a registry build: the merge and validation
//! run on that key's objects alone, with the clusters' messages (which
//! every run begins with) taken out; and the multisets the parts' messages
//! are added to and taken from.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Key, export_key, run, service_key};
use crate::registry::Service;
use crate::registry::kube::merge::View;

/// How many messages of each kind a run of the clusters alone gives.
#[derive(Debug)]
pub(super) struct Base {
    pub(super) ignored: usize,
    pub(super) warnings: usize,
    pub(super) conflicts: usize,
    pub(super) skipped: usize,
}

/// One run of the merge and validation, the clusters' part taken out.
#[derive(Debug, Default)]
pub(super) struct Part {
    /// The service and its object name.
    pub(super) service: Option<(String, Arc<Service>)>,
    pub(super) warnings: Vec<String>,
    pub(super) conflicts: Vec<String>,
    pub(super) skipped: usize,
    pub(super) dangling_exports: usize,
}

/// The merge and validation of the clusters of `views` alone: how many
/// of each kind of message every run begins with.
pub(super) fn base(views: &[View], zones: &[String]) -> Base {
    let clusters: Vec<View> = views
        .iter()
        .map(|v| View {
            services: Vec::new(),
            exports: Vec::new(),
            ..v.clone()
        })
        .collect();
    let (merged, from) = run(&clusters, zones);
    Base {
        ignored: merged.ignored.len(),
        warnings: from.warnings.len(),
        conflicts: merged.conflicts.len(),
        skipped: from.skipped,
    }
}

/// The merge and validation of `views` restricted to `key`, without
/// the clusters' messages (`base`): the merge and the validation do
/// the clusters before the services, so theirs come first in each list.
pub(super) fn part(views: &[View], key: &Key, base: &Base, zones: &[String]) -> Part {
    let views: Vec<View> = views
        .iter()
        .map(|v| View {
            cluster: v.cluster.clone(),
            local: v.local,
            clusters: v.clusters.clone(),
            services: v
                .services
                .iter()
                .filter(|s| service_key(s) == *key)
                .cloned()
                .collect(),
            exports: v
                .exports
                .iter()
                .filter(|e| export_key(e) == *key)
                .cloned()
                .collect(),
        })
        .collect();
    let (merged, from) = run(&views, zones);
    let name = merged.services.first().map(|s| s.name.clone());
    // Every run has the same clusters as `base`, so its lists begin with
    // at least as many messages.
    let after = |list: &[String], count: usize| list.get(count..).unwrap_or_default().to_vec();
    let mut warnings = after(&merged.ignored, base.ignored);
    warnings.extend(after(&from.warnings, base.warnings));
    Part {
        service: from
            .registry
            .services
            .first()
            .map(|s| (name.unwrap_or_default(), s.clone())),
        warnings,
        conflicts: after(&merged.conflicts, base.conflicts),
        skipped: from.skipped.saturating_sub(base.skipped),
        dangling_exports: from.dangling_exports,
    }
}

pub(super) fn add(set: &mut BTreeMap<String, usize>, items: &[String]) {
    for item in items {
        *set.entry(item.clone()).or_default() += 1;
    }
}

pub(super) fn take(set: &mut BTreeMap<String, usize>, items: &[String]) {
    for item in items {
        if let Some(count) = set.get_mut(item) {
            *count -= 1;
            if *count == 0 {
                set.remove(item);
            }
        }
    }
}

pub(super) fn listed(set: &BTreeMap<String, usize>) -> Vec<String> {
    set.iter()
        .flat_map(|(item, &count)| std::iter::repeat_n(item.clone(), count))
        .collect()
}
