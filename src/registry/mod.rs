//! The shared registry (design §2): its model, parsing, validation, its
//! two sources, and the shrink brake every source's versions pass:
//!
//! - [`file`]: a registry file, watched (re-reading only the entries that
//!   changed: `file/entries.rs`, `file/reload.rs`);
//! - [`kube`]: the registry's custom resources in the local cluster and
//!   its peers, watched and merged.

pub mod brake;
pub mod error;
pub mod failover;
pub mod file;
pub mod kube;
pub mod locate;
pub mod model;
pub mod parse;
pub mod validate;
mod yaml;

pub use error::{Problem, RegistryError};
pub use model::{Cluster, Endpoint, Gateway, Port, Registry, Service};

/// Parses and validates registry text for serving in `zones`.
pub fn load_str(text: &str, origin: &str, zones: &[String]) -> Result<Registry, RegistryError> {
    let mut registry = parse::parse(text, origin)?;
    registry.shrink_to_fit();
    let mut problems = validate::validate(&registry, zones);
    locate::locate(text, &mut problems);
    RegistryError::unless_problems(origin, problems, registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loaded registry holds no spare capacity: decoders grow every list
    /// from four, which at 100,000 services was 35 MB of slack (JSON and
    /// YAML alike).
    #[test]
    fn a_loaded_registry_is_shrunk_to_fit() {
        let json = r#"{"clusters": [{"name": "west", "gateways": [{"address": "192.0.2.1"}]}],
            "services": [{"name": "a", "namespace": "x", "exportedFrom": ["west"],
                          "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}]}]}"#;
        let yaml = "clusters: [{name: west, gateways: [{address: 192.0.2.1}]}]\nservices:\n  - {name: a, namespace: x, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}\n";
        for text in [json, yaml] {
            let registry = load_str(text, "r", &["global".to_string()]).unwrap();
            assert_eq!(registry.services.len(), 1);
            let service = &registry.services[0];
            assert_eq!(service.exported_from.capacity(), 1);
            assert_eq!(service.ports.capacity(), 1);
            assert_eq!(registry.clusters[0].gateways.capacity(), 1);
        }
    }
}
