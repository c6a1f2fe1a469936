//! Kubernetes: the registry as custom resources, watched (and printed
//! from a file, [`export`]). Nothing here
//! knows about DNS; the registry is what this module hands on.

pub mod assemble;
pub mod discovery;
pub mod drift;
pub mod dropin;
pub mod export;
pub mod lease;
pub mod merge;
#[cfg(test)]
mod mock;
pub mod peer_secret;
pub mod peers;
pub mod record;
pub mod resources;
pub mod stub;
pub mod sync;
pub mod view;
pub mod watch;
pub mod watching;
