//! globaldns: authoritative DNS and stable virtual IPs for the `.global`
//! names of a multi-cluster Istio mesh.
//!
//! How data flows:
//!
//! ```text
//! registry file ──▶ registry::file ─┐
//! API servers ───▶ registry::kube ─┤ Registry (through registry::brake)
//!                                   ▼
//!                   controller ──▶ vip (allocate) ──▶ state (persist table)
//!                    │ index::zones                └─▶ Table (VIPs)
//!                    ▼                                  │
//!     dns::ZoneSet (immutable, swapped atomically)      ▼
//!                    │                 mesh::render ──▶ mesh::sync ──▶ API server
//!                    ▼                 (ServiceEntries, Gateway, DestinationRules)
//!     dns::udp, dns::server ──▶ dns::fast (common queries, bytes only)
//!                           └─▶ dns::respond ──▶ dns::lookup (the rest)
//! ```
//!
//! - [`registry`]: the model, strict validation with field paths, and its two
//!   sources: the file ([`registry::file`]) and the API servers
//!   ([`registry::kube`]).
//! - [`vip`]: the allocator, pure: hash-preferred slots, quarantine, pins.
//! - [`state`]: the state directory, written atomically.
//! - [`index`]: registry + allocations → the hosts wanted and their zones.
//! - [`controller`]: the single owner of mutable state; publishes snapshots.
//! - [`mesh`]: registry + allocations → the Istio objects a cluster needs
//!   (ServiceEntries, its Gateway, DestinationRules), one file per kind,
//!   and the one writer that keeps the cluster's in step ([`mesh::sync`]).
//! - [`watch`]: what every Kubernetes watch shares.
//! - [`dns`]: zones, lookup, wire-format responder, fast path, UDP and TCP servers.
//! - [`serve`], [`cli`], [`commands`]: the process around them.
//!
//! "design §N" in comments and tests is section N of `docs/design.md`, the
//! behaviour globaldns promises.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod commands;
pub mod controller;
pub mod discovery;
pub mod dns;
pub mod explain;
pub mod fuzzing;
pub mod index;
pub mod logging;
mod mapping;
pub mod mesh;
pub mod metrics;
#[cfg(test)]
mod mock_api;
pub mod naming;
pub mod registry;
pub mod serve;
pub mod state;
pub mod vip;
pub mod watch;
