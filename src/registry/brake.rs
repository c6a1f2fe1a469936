//! The shrink brake (design §2): a registry version that would remove more
//! than a set share of the services served is held back until that same
//! version has been seen, unchanged, for a hold window. A file caught
//! half-written (an in-place rewrite, a slow copy, a writer that stalls
//! past the file watcher's settle window) often parses as a valid *prefix*
//! of itself; published, it would empty most of the zone and every
//! downstream cache would keep the NXDOMAINs. Small edits pass at once.
//!
//! Pure: the caller says what is served and what time it is; the serve
//! loop acts on the decisions. It sits between the registry source (file
//! or Kubernetes) and the controller, so it brakes both alike.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{Registry, Service};

/// How hard the brake holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BrakeConfig {
    /// Largest share of the served services (0 to 1) one version may
    /// remove and still be published at once; 1 turns the brake off.
    pub share: f64,
    /// How long a version that removes more must stay unchanged before it
    /// is published.
    pub hold: Duration,
}

/// A version being held, as reported (metric, explain, log).
#[derive(Clone, Debug, PartialEq)]
pub struct HeldBack {
    /// Services served now that the held version does not have.
    pub removed: usize,
    /// Services served now.
    pub of: usize,
    /// When this version was first seen.
    pub since: Instant,
    /// The brake that holds it.
    pub config: BrakeConfig,
}

impl HeldBack {
    /// When the version is published if nothing else arrives.
    pub fn release_at(&self) -> Instant {
        self.since + self.config.hold
    }
}

impl std::fmt::Display for HeldBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "it would remove {} of the {} services served (more than --shrink-brake {}); \
             it is published once unchanged for {:?}, or dropped if a version removing fewer arrives",
            self.removed, self.of, self.config.share, self.config.hold
        )
    }
}

/// What to do with a version offered to the brake.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Publish it (now).
    Publish(Registry),
    /// Keep serving what is served; the version is held.
    Hold(HeldBack),
}

/// The brake and the version it holds, if any.
#[derive(Debug)]
pub struct Brake {
    config: BrakeConfig,
    held: Option<(Registry, HeldBack)>,
}

impl Brake {
    /// A brake holding nothing yet.
    pub fn new(config: BrakeConfig) -> Self {
        Self { config, held: None }
    }

    /// Decides on `next`, a valid version from the source, while `current`
    /// is served. A held version seen again unchanged keeps its first
    /// sighting time; any other version replaces it.
    pub fn offer(&mut self, current: Option<&Registry>, next: Registry, now: Instant) -> Decision {
        let Some(current) = current.filter(|c| !c.services.is_empty()) else {
            // Nothing to lose: a first load is never held.
            self.held = None;
            return Decision::Publish(next);
        };
        let removed = removed(current, &next);
        let of = current.services.len();
        if removed as f64 <= self.config.share * of as f64 {
            self.held = None;
            return Decision::Publish(next);
        }
        if let Some((held, report)) = &self.held
            && *held == next
        {
            let report = report.clone();
            return match self.release(now) {
                Some(registry) => Decision::Publish(registry),
                None => Decision::Hold(report),
            };
        }
        let report = HeldBack {
            removed,
            of,
            since: now,
            config: self.config,
        };
        self.held = Some((next, report.clone()));
        Decision::Hold(report)
    }

    /// The held version, once it has been unchanged for the hold window.
    pub fn release(&mut self, now: Instant) -> Option<Registry> {
        let (_, report) = self.held.as_ref()?;
        if now < report.release_at() {
            return None;
        }
        self.held.take().map(|(registry, _)| registry)
    }

    /// Forgets the held version: the source moved on to something that is
    /// not it (an invalid version, say), so it is no longer stable.
    pub fn discard(&mut self) {
        self.held = None;
    }

    /// The version held, if any.
    pub fn held(&self) -> Option<&HeldBack> {
        self.held.as_ref().map(|(_, report)| report)
    }
}

/// How many services of `current` `next` does not have. Versions keep
/// their order, so the services both have at the same places from either
/// end are passed by with a comparison of names, and only what lies
/// between is looked up: a small edit of a large registry costs a walk,
/// not a set of every name. (A name is in a version once, as validation
/// makes sure, so one passed by at the ends is never between.)
fn removed(current: &Registry, next: &Registry) -> usize {
    fn key(s: &Service) -> (&str, &str) {
        (s.namespace.as_str(), s.name.as_str())
    }
    let (a, b) = (&current.services[..], &next.services[..]);
    let head = a
        .iter()
        .zip(b)
        .take_while(|(x, y)| key(x) == key(y))
        .count();
    let (a, b) = (&a[head..], &b[head..]);
    let tail = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| key(x) == key(y))
        .count();
    let (a, b) = (&a[..a.len() - tail], &b[..b.len() - tail]);
    let kept: HashSet<(&str, &str)> = b.iter().map(|s| key(s)).collect();
    a.iter().filter(|s| !kept.contains(&key(s))).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(services: std::ops::Range<usize>) -> Registry {
        let mut text =
            String::from("clusters: [{name: west, gateways: [{address: 192.0.2.1}]}]\nservices:\n");
        if services.is_empty() {
            text.push_str("  []\n");
        }
        for i in services {
            text.push_str(&format!(
                "  - {{name: s{i}, namespace: ns, exportedFrom: [west], ports: [{{name: http, number: 80, protocol: HTTP}}]}}\n"
            ));
        }
        super::super::load_str(&text, "r.yaml", &["global".to_string()]).unwrap()
    }

    fn brake() -> Brake {
        Brake::new(BrakeConfig {
            share: 0.5,
            hold: Duration::from_secs(30),
        })
    }

    fn published(decision: Decision) -> Option<usize> {
        match decision {
            Decision::Publish(r) => Some(r.services.len()),
            Decision::Hold(_) => None,
        }
    }

    /// Small edits, additions and a first load pass at once; a removal of
    /// more than the share is held.
    #[test]
    fn only_large_removals_are_held() {
        let mut b = brake();
        let now = Instant::now();
        let current = registry(0..10);
        assert_eq!(published(b.offer(None, registry(0..1), now)), Some(1));
        assert_eq!(
            published(b.offer(Some(&current), registry(0..20), now)),
            Some(20)
        );
        assert_eq!(
            published(b.offer(Some(&current), registry(5..15), now)),
            Some(10)
        );
        let Decision::Hold(held) = b.offer(Some(&current), registry(0..4), now) else {
            panic!("6 of 10 removed")
        };
        assert_eq!((held.removed, held.of), (6, 10));
        assert!(held.to_string().contains("remove 6 of the 10"), "{held}");
        assert_eq!(b.held(), Some(&held));
        // A small edit arriving meanwhile is published and drops the held one.
        assert_eq!(
            published(b.offer(Some(&current), registry(0..9), now)),
            Some(9)
        );
        assert_eq!(b.held(), None);
    }

    /// A held version is published once it has been unchanged for the
    /// hold window; seeing it again does not restart the window, a
    /// different version does, and an invalid one in between drops it.
    #[test]
    fn a_held_version_is_published_once_stable() {
        let mut b = brake();
        let t0 = Instant::now();
        let current = registry(0..10);
        assert!(matches!(
            b.offer(Some(&current), registry(0..2), t0),
            Decision::Hold(_)
        ));
        assert_eq!(b.release(t0 + Duration::from_secs(29)), None);
        let again = b.offer(Some(&current), registry(0..2), t0 + Duration::from_secs(20));
        assert!(
            matches!(again, Decision::Hold(ref h) if h.since == t0),
            "{again:?}"
        );
        assert_eq!(
            b.release(t0 + Duration::from_secs(30))
                .map(|r| r.services.len()),
            Some(2)
        );
        assert_eq!(b.held(), None, "released once");

        assert!(matches!(
            b.offer(Some(&current), registry(0..2), t0),
            Decision::Hold(_)
        ));
        let t1 = t0 + Duration::from_secs(25);
        assert!(matches!(
            b.offer(Some(&current), registry(0..3), t1),
            Decision::Hold(_)
        ));
        assert_eq!(
            b.release(t0 + Duration::from_secs(31)),
            None,
            "window restarted"
        );
        assert_eq!(
            published(b.offer(Some(&current), registry(0..3), t1 + Duration::from_secs(30))),
            Some(3)
        );

        assert!(matches!(
            b.offer(Some(&current), registry(0..2), t0),
            Decision::Hold(_)
        ));
        b.discard();
        assert_eq!(b.release(t0 + Duration::from_secs(60)), None);
    }

    /// A share of 1 never holds, not even the removal of everything.
    #[test]
    fn share_one_turns_the_brake_off() {
        let mut b = Brake::new(BrakeConfig {
            share: 1.0,
            hold: Duration::from_secs(30),
        });
        let current = registry(0..10);
        assert_eq!(
            published(b.offer(Some(&current), registry(0..0), Instant::now())),
            Some(0)
        );
    }
}
