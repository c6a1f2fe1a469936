//! What changed between two versions of the registry, service by service:
//! what the controller reconciles, journals and patches instead of the
//! whole registry.
//!
//! Services are keyed by name and namespace (their host). A new version
//! from the file source shares every unchanged service with the version
//! before it and keeps their order, so the versions are first matched from
//! both ends by pointer ([`Arc::ptr_eq`], then by value for sources that
//! decode afresh, such as the Kubernetes watch), and only what lies between
//! is keyed: a one-service edit costs a walk of two lists of pointers.

use std::collections::HashMap;
use std::sync::Arc;

use crate::registry::Service;

/// The services that differ between two versions.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Delta {
    /// Services gone, and changed ones as they were.
    pub(super) removed: Vec<Arc<Service>>,
    /// Services new, and changed ones as they are.
    pub(super) added: Vec<Arc<Service>>,
}

impl Delta {
    pub(super) fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

fn same(a: &Arc<Service>, b: &Arc<Service>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// The services that differ from `before` to `after`. Each version holds a
/// service (by name and namespace) at most once, as validation makes sure.
pub(super) fn delta(before: &[Arc<Service>], after: &[Arc<Service>]) -> Delta {
    let head = before
        .iter()
        .zip(after)
        .take_while(|(a, b)| same(a, b))
        .count();
    let (before, after) = (&before[head..], &after[head..]);
    let tail = before
        .iter()
        .rev()
        .zip(after.iter().rev())
        .take_while(|(a, b)| same(a, b))
        .count();
    let before = &before[..before.len() - tail];
    let after = &after[..after.len() - tail];
    let mut keyed: HashMap<(&str, &str), &Arc<Service>> = before
        .iter()
        .map(|s| ((s.name.as_str(), s.namespace.as_str()), s))
        .collect();
    let mut delta = Delta::default();
    for service in after {
        match keyed.remove(&(service.name.as_str(), service.namespace.as_str())) {
            Some(old) if same(old, service) => {}
            Some(old) => {
                delta.removed.push(old.clone());
                delta.added.push(service.clone());
            }
            None => delta.added.push(service.clone()),
        }
    }
    delta.removed.extend(keyed.into_values().cloned());
    let key = |s: &Arc<Service>| (s.name.clone(), s.namespace.clone());
    delta.removed.sort_by_key(key);
    delta.added.sort_by_key(key);
    delta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Port;

    fn service(name: &str, port: u32) -> Arc<Service> {
        Arc::new(Service {
            name: name.into(),
            namespace: "ns".into(),
            exported_from: ["west".into()].into(),
            ports: [Port::new("http", port, "HTTP")].into(),
            addresses: Default::default(),
            endpoints: Default::default(),
            failover: None,
            weights: None,
            outlier_detection: None,
        })
    }

    fn names(list: &[Arc<Service>]) -> Vec<(&str, u32)> {
        list.iter()
            .map(|s| (s.name.as_str(), s.ports[0].number))
            .collect()
    }

    #[test]
    fn only_what_differs_is_in_the_delta() {
        let before: Vec<_> = (0..6).map(|i| service(&format!("s{i}"), 80)).collect();
        // s1 changed, s3 gone, s9 new, s4 moved to the end; the rest
        // shared, or decoded afresh (s5).
        let after = vec![
            before[0].clone(),
            service("s1", 81),
            before[2].clone(),
            service("s9", 80),
            service("s5", 80),
            before[4].clone(),
        ];
        let d = delta(&before, &after);
        assert_eq!(names(&d.removed), [("s1", 80), ("s3", 80)]);
        assert_eq!(names(&d.added), [("s1", 81), ("s9", 80)]);
        assert!(delta(&before, &before).is_empty());
        assert_eq!(names(&delta(&[], &before).added).len(), 6);
        assert_eq!(names(&delta(&before, &[]).removed).len(), 6);
    }
}
