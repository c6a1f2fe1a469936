//! The one-line provenance `TXT _explain.<host>` answers (`serve
//! --explain-txt`): the short form of what `explain` prints, as
//! `key=value` words a developer reads off `dig` and a script splits:
//!
//! ```text
//! httpbin.bar.global exported-by=west vip=240.0.195.86 first-choice=yes peers=west:current registry=current serial=1764000000
//! ```
//!
//! `exported-by` (or `per-cluster-of`, `hand-written=<entry>` for a
//! drop-in host, `nxdomain` when the name is not served, never listing
//! what else a namespace holds),
//! each `vip` with `first-choice` (`yes`, `pinned`, `no:<first>` when the
//! first choice was taken and another cluster may differ), the state of
//! each exporting peer (`current`, `unreachable-<s>s`, `not-listed`,
//! `dropped`, `no-meshcluster`), `registry=held` while the shrink brake
//! holds a version back, and the zones' SOA serial.
//!
//! Each line costs a scan of the registry's services, on a DNS worker: at
//! most [`PER_SECOND`] lines a second are written, and queries beyond
//! that are REFUSED, so that a flood of them cannot take the workers.

use std::fmt::Write;
use std::sync::Arc;

use tokio::sync::watch;

use super::{per_cluster, zone_suffix};
use crate::controller::Allocated;
use crate::dns::explain_txt::Explainer;
use crate::metrics::{Metrics, PeerStatus};
use crate::registry::brake::HeldBack;
use crate::vip::{Allocator, Family, Placement};

/// Most lines written a second; queries beyond are REFUSED.
pub const PER_SECOND: u32 = 50;

/// What the line is made of, read live on each query: the same sources as
/// the admin endpoint's explain.
pub struct TxtExplainer {
    allocated: watch::Receiver<Option<Arc<Allocated>>>,
    held: watch::Receiver<Option<HeldBack>>,
    metrics: Arc<Metrics>,
    allocator: Allocator,
    /// The second being counted, and the lines written in it.
    budget: std::sync::Mutex<(std::time::Instant, u32)>,
}

impl TxtExplainer {
    pub fn new(
        allocated: watch::Receiver<Option<Arc<Allocated>>>,
        held: watch::Receiver<Option<HeldBack>>,
        metrics: Arc<Metrics>,
        allocator: Allocator,
    ) -> Self {
        Self {
            allocated,
            held,
            metrics,
            allocator,
            budget: std::sync::Mutex::new((std::time::Instant::now(), 0)),
        }
    }

    /// Takes one line from this second's budget.
    fn take(&self) -> bool {
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if now.duration_since(budget.0) >= std::time::Duration::from_secs(1) {
            *budget = (now, 0);
        }
        budget.1 += 1;
        budget.1 <= PER_SECOND
    }
}

impl std::fmt::Debug for TxtExplainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxtExplainer")
    }
}

impl Explainer for TxtExplainer {
    fn line(&self, host: &str, serial: u32, exists: bool) -> Option<String> {
        if !self.take() {
            return None;
        }
        let allocated = self.allocated.borrow().clone();
        let held = self.held.borrow().is_some();
        let peers = self
            .metrics
            .peers
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Some(line(
            Served { serial, exists },
            host,
            allocated.as_deref(),
            &self.allocator,
            held,
            &peers,
        ))
    }
}

fn peer_state(status: &PeerStatus) -> String {
    if status.dropped {
        "dropped".to_string()
    } else if let Some(for_) = status.unreachable_for {
        format!("unreachable-{}s", for_.as_secs())
    } else if !status.listed {
        "not-listed".to_string()
    } else if !status.mesh_cluster {
        "no-meshcluster".to_string()
    } else {
        "current".to_string()
    }
}

/// What the zones say of the name: their SOA serial, and whether the name
/// is in them.
#[derive(Clone, Copy, Debug)]
pub struct Served {
    pub serial: u32,
    pub exists: bool,
}

/// The provenance line of `host` (lower case, no trailing dot), as
/// `served`.
pub fn line(
    served: Served,
    host: &str,
    allocated: Option<&Allocated>,
    allocator: &Allocator,
    held: bool,
    peers: &std::collections::BTreeMap<String, PeerStatus>,
) -> String {
    let serial = served.serial;
    let mut out = host.to_string();
    let Some(allocated) = allocated else {
        out.push_str(" registry=not-loaded");
        return out;
    };
    if !served.exists {
        out.push_str(" nxdomain");
        return finish(out, serial, held);
    }
    let services = &allocated.registry.services;
    let shared = services
        .iter()
        .find(|s| zone_suffix(host, &s.name, &s.namespace).is_some());
    let per_cluster = services.iter().find_map(|s| per_cluster::of(host, s));
    let (service, exporters): (&crate::registry::Service, Vec<&str>) = match (shared, per_cluster) {
        (Some(service), _) => {
            let from: Vec<&str> = service.exported_from.iter().map(|c| c.as_str()).collect();
            let _ = write!(out, " exported-by={}", words(&from));
            (service, from)
        }
        (None, Some((service, cluster))) => {
            let _ = write!(out, " per-cluster-of={cluster}");
            (service, vec![cluster])
        }
        (None, None) => {
            match allocated.hand_written.iter().find(|h| h.host == host) {
                Some(entry) => {
                    let _ = write!(out, " hand-written={}", entry.source);
                }
                None => out.push_str(" no-service"),
            }
            return finish(out, serial, held);
        }
    };
    for family in [Family::V4, Family::V6] {
        let Some(lease) = allocated.table.lease(host, family) else {
            continue;
        };
        let pinned = service.addresses.contains(&lease.addr);
        let placement = match allocator.placement(host, lease.addr, pinned) {
            Placement::Pinned => "pinned".to_string(),
            Placement::FirstChoice => "yes".to_string(),
            Placement::Probed { first } => format!("no:{first}"),
            Placement::OutOfRange => "out-of-range".to_string(),
        };
        let _ = write!(out, " vip={} first-choice={placement}", lease.addr);
    }
    let states: Vec<String> = exporters
        .iter()
        .filter_map(|c| peers.get(*c).map(|s| format!("{c}:{}", peer_state(s))))
        .collect();
    if !states.is_empty() {
        let _ = write!(out, " peers={}", states.join(","));
    }
    finish(out, serial, held)
}

fn words(list: &[&str]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(",")
    }
}

fn finish(mut out: String, serial: u32, held: bool) -> String {
    let registry = if held { "held" } else { "current" };
    let _ = write!(out, " registry={registry} serial={serial}");
    out
}
