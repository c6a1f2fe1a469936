//! Answering DNS: the zone data of a snapshot, the pure lookup over it, the
//! wire-format responder, the byte-level fast path for common queries, and
//! the UDP and TCP servers around them. Nothing
//! here knows about registries or Kubernetes; the [`zone::ZoneSet`] is the
//! only thing this module shares with the rest.

pub mod explain_txt;
pub mod fast;
pub mod grpc;
pub mod header;
pub mod lookup;
pub mod respond;
pub mod server;
pub mod skim;
pub mod udp;
pub mod zone;

pub use respond::{Transport, respond};
pub use zone::ZoneSet;

/// The snapshot the servers answer from; `None` until the first load. The
/// controller stores a new one; every server reads it, lock-free.
pub type Published = arc_swap::ArcSwapOption<ZoneSet>;
