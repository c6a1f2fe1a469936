//! Kubernetes: the registry as custom resources, watched (and printed
//! from a file, [`export`]). Nothing here
//! knows about DNS; the registry is what this module hands on.

pub mod drift;
pub mod dropin;
pub mod export;
pub mod lease;
#[cfg(test)]
mod mock;
pub mod record;
pub mod resources;
pub mod stub;
pub mod sync;
pub mod watch;
pub mod watching;
