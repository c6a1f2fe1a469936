//! What every Istio object globaldns writes shares: the API group and
//! version, the ownership label, and the metadata it sets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every kind globaldns writes is served in `networking.istio.io/v1`
/// (since Istio 1.22; v1beta1 and v1alpha3 carry the same fields).
pub const API_VERSION: &str = "networking.istio.io/v1";
/// The label that marks the objects globaldns owns: only these are ever
/// updated or deleted by it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "globaldns";

/// `exportTo` of every ServiceEntry and DestinationRule globaldns writes:
/// every namespace. Istio applies the mesh's `defaultServiceExportTo` /
/// `defaultDestinationRuleExportTo` to objects that set none (push_context.go
/// `initServiceRegistry`); a mesh whose default is `["."]` would then show
/// the objects in `istio-system` to no application sidecar.
pub const EXPORT_TO_ALL: &str = "*";

/// [`EXPORT_TO_ALL`] as the list an object carries.
pub fn export_to_all() -> Vec<String> {
    vec![EXPORT_TO_ALL.to_string()]
}

/// The metadata globaldns sets: name, namespace, and the ownership label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata of an object globaldns owns.
    pub fn owned(name: String, namespace: &str) -> Self {
        Self {
            name,
            namespace: namespace.to_string(),
            labels: BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string())]),
        }
    }
}

/// A host name handed to a resolver, made absolute (a trailing dot) so
/// that a pod's search list (`ndots:5`: up to six suffixes tried first)
/// does not multiply the lookups. An IP address is left as it is.
/// Istio's validation takes such names: its DNS-1123 check lets the last
/// label be empty, "for unambiguous names like `istio.io.`".
pub fn absolute(address: &str) -> String {
    if address.parse::<std::net::IpAddr>().is_ok() || address.ends_with('.') {
        address.to_string()
    } else {
        format!("{address}.")
    }
}
