//! The Kubernetes source of the registry (design §2): the registry as
//! custom resources of globaldns' own API group, read from the local
//! cluster's API server and its peers', and merged into one registry that
//! is validated like a file's.
//!
//! - [`resources`]: the `MeshCluster` and `ExportedService` kinds, and the
//!   registry they describe;
//! - [`declared`]: those objects converted at the edge into our own type;
//! - [`cluster_watch`]: one cluster's objects, watched;
//! - [`peers`]: the peer clusters, from their Secrets;
//! - [`merge`]: the clusters' views into one set of objects, by the rule
//!   every globaldns applies alike;
//! - [`assemble`]: the registry rebuilt by what changed;
//! - [`source`]: the loop that runs them and hands each version on.
//!
//! Nothing here knows about DNS or Istio.

pub mod assemble;
pub mod cluster_watch;
pub mod declared;
pub mod merge;
pub mod peers;
pub mod resources;
pub mod source;
