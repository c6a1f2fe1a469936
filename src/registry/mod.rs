//! The shared registry (DESIGN §2): its model, parsing, validation, and the
//! file source that watches it.

pub mod error;
pub mod file;
pub mod model;
pub mod parse;
pub mod validate;

pub use error::{Problem, RegistryError};
pub use model::{Cluster, Gateway, Port, Registry, Service};

/// Parses and validates registry text for serving in `zones`.
pub fn load_str(text: &str, origin: &str, zones: &[String]) -> Result<Registry, RegistryError> {
    let mut registry = parse::parse(text, origin)?;
    // A decoder grows the list by doubling: up to half of it is slack
    // that would stay for as long as this registry is served.
    registry.services.shrink_to_fit();
    let problems = validate::validate(&registry, zones);
    RegistryError::unless_problems(origin, problems, registry)
}
