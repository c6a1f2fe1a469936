//! What the allocator did, one event per change of the table, for logs,
//! metrics and whoever keeps something in step with the table.

use std::fmt;
use std::net::IpAddr;

use super::Family;

/// What a reconcile did, for logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Allocated {
        host: String,
        addr: IpAddr,
        /// The address is the host's first choice (see
        /// [`super::Placement::FirstChoice`]): what another cluster on the
        /// same registry computes too.
        first: bool,
    },
    /// A host took the VIP recorded for it elsewhere (its ServiceEntry,
    /// see [`Allocator::follow`]), giving up `was` if it had another.
    Recorded {
        host: String,
        addr: IpAddr,
        was: Option<IpAddr>,
    },
    /// `host` lost `addr` because the record gives it to `by`.
    Taken {
        host: String,
        addr: IpAddr,
        by: String,
    },
    /// A host took back its own VIP from quarantine.
    Reclaimed {
        host: String,
        addr: IpAddr,
    },
    Released {
        host: String,
        addr: IpAddr,
    },
    /// `host` lost `addr` because `by` pins it.
    Displaced {
        host: String,
        addr: IpAddr,
        by: String,
    },
    /// `host` lost `addr` because it is no longer in the configured range.
    OutOfRange {
        host: String,
        addr: IpAddr,
    },
    /// No free VIP was left for `host`; other hosts are unaffected.
    Exhausted {
        host: String,
        family: Family,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Allocated { host, addr, .. } => write!(f, "allocated {addr} to {host}"),
            Event::Reclaimed { host, addr } => write!(f, "{host} took back {addr} from quarantine"),
            Event::Recorded {
                host,
                addr,
                was: None,
            } => write!(f, "{host} takes {addr}, as its ServiceEntry records"),
            Event::Recorded {
                host,
                addr,
                was: Some(was),
            } => write!(
                f,
                "{host} moves from {was} to {addr}, as its ServiceEntry records (the record wins over this replica's table)"
            ),
            Event::Taken { host, addr, by } => write!(
                f,
                "{host} gave up {addr}: the ServiceEntry of {by} records it"
            ),
            Event::Released { host, addr } => {
                write!(f, "released {addr} of {host} into quarantine")
            }
            Event::Displaced { host, addr, by } => {
                write!(
                    f,
                    "{host} lost {addr} because the registry pins it for {by}"
                )
            }
            Event::OutOfRange { host, addr } => {
                write!(
                    f,
                    "{host} lost {addr} because it is outside the configured VIP range"
                )
            }
            Event::Exhausted { host, family } => {
                write!(f, "no free {family} VIP is left for {host}")
            }
        }
    }
}
