//! The one-line provenance `TXT _explain.<host>` answers (`serve
//! --explain-txt`): the short form of what `explain` prints, as
//! `key=value` words a developer reads off `dig` and a script splits:
//!
//! ```text
//! httpbin.bar.global exported-by=west vip=240.0.195.86 first-choice=yes peers=west:current registry=current serial=1764000000
//! ```
//!
//! `exported-by` (or `per-cluster-of`, or `nxdomain=` with the reason),
//! each `vip` with `first-choice` (`yes`, `pinned`, `no:<first>` when the
//! first choice was taken and another cluster may differ), the state of
//! each exporting peer (`current`, `unreachable-<s>s`, `not-listed`,
//! `dropped`, `no-meshcluster`), `registry=held` while the shrink brake
//! holds a version back, and the zones' SOA serial.

use std::fmt::Write;
use std::sync::Arc;

use tokio::sync::watch;

use super::{per_cluster, why_missing, zone_suffix};
use crate::controller::Allocated;
use crate::dns::explain_txt::Explainer;
use crate::metrics::{Metrics, PeerStatus};
use crate::registry::brake::HeldBack;
use crate::vip::{Allocator, Family, Placement};

/// What the line is made of, read live on each query: the same sources as
/// the admin endpoint's explain.
pub struct TxtExplainer {
    pub allocated: watch::Receiver<Option<Arc<Allocated>>>,
    pub held: watch::Receiver<Option<HeldBack>>,
    pub metrics: Arc<Metrics>,
    pub allocator: Allocator,
}

impl std::fmt::Debug for TxtExplainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxtExplainer")
    }
}

impl Explainer for TxtExplainer {
    fn line(&self, host: &str, serial: u32) -> String {
        let allocated = self.allocated.borrow().clone();
        let held = self.held.borrow().is_some();
        let peers = self.metrics.peers.status.lock().unwrap().clone();
        line(
            serial,
            host,
            allocated.as_deref(),
            &self.allocator,
            held,
            &peers,
        )
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

/// The provenance line of `host` (lower case, no trailing dot), served
/// under SOA serial `serial`.
pub fn line(
    serial: u32,
    host: &str,
    allocated: Option<&Allocated>,
    allocator: &Allocator,
    held: bool,
    peers: &std::collections::BTreeMap<String, PeerStatus>,
) -> String {
    let mut out = host.to_string();
    let Some(allocated) = allocated else {
        out.push_str(" registry=not-loaded");
        return out;
    };
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
            let why = why_missing(host, allocated).replace(' ', "_");
            let _ = write!(out, " nxdomain={why}");
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
