//! Kubernetes: the registry as custom resources, watched. Nothing here
//! knows about DNS; the registry is what this module hands on.

pub mod drift;
pub mod dropin;
pub mod lease;
#[cfg(test)]
mod mock;
pub mod record;
pub mod resources;
pub mod stub;
pub mod sync;
pub mod watch;
pub mod watching;
