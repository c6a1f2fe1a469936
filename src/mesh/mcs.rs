//! The Multi-Cluster Services API's side of the federation (KEP-1645,
//! `sigs.k8s.io/mcs-api`): what globaldns writes of it, beside the Istio
//! objects of [`crate::mesh`].
//!
//! - [`service_import`]: for every service exported anywhere in the
//!   federation, a `ServiceImport` of its name in its namespace, type
//!   `ClusterSetIP`, whose `ips` are the service's globaldns VIPs: the same
//!   in every cluster, without a coordinator (design §3, §5);
//! - [`import_sync`]: the pass that keeps them in step (server-side apply of
//!   the spec and of the status, pruning by the ownership label, the
//!   deletion brake), in whichever version of the API the API server
//!   serves;
//! - [`export_status`]: the conditions (`Valid`, `Ready`, `Conflict`) of
//!   the local cluster's ServiceExports, from what the merge decided.
//!
//! What globaldns reads of the API (ServiceExports, as a registry source)
//! is in [`crate::registry::kube`].

pub mod export_status;
pub mod import_sync;
pub mod service_import;

pub use crate::registry::kube::cluster_watch::{MCS_GROUP as GROUP, MCS_VERSIONS};
pub use service_import::{ServiceImport, service_imports};
