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
    let registry = parse::parse(text, origin)?;
    let problems = validate::validate(&registry, zones);
    RegistryError::unless_problems(origin, problems, registry)
}
