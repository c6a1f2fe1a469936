//! What every Istio object globaldns writes shares: the API group and
//! version, the ownership label, and the metadata it sets.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The API group of every kind globaldns writes.
pub const GROUP: &str = "networking.istio.io";

/// A version of `networking.istio.io` the objects are written in. The
/// three carry the same fields (Istio's CRDs give them one schema); which
/// an API server serves depends on the Istio release whose CRDs it holds
/// (manifests/charts/base/files/crd-all.gen.yaml of each release):
///
/// | version | served by Istio |
/// |---|---|
/// | `v1` | 1.22 and later |
/// | `v1beta1` | 1.5 and later |
/// | `v1alpha3` | 1.1 and later |
///
/// `render` takes one as `--istio-api-version`; `sync` asks the API
/// server's discovery and writes the newest it serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IstioApiVersion {
    #[default]
    V1,
    V1beta1,
    V1alpha3,
}

impl IstioApiVersion {
    /// Every version, the newest first: the order discovery prefers them in.
    pub const NEWEST_FIRST: [Self; 3] = [Self::V1, Self::V1beta1, Self::V1alpha3];

    /// The version alone, as in a URL: `v1beta1`.
    pub fn version(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V1beta1 => "v1beta1",
            Self::V1alpha3 => "v1alpha3",
        }
    }

    /// Group and version, as in `apiVersion:`: `networking.istio.io/v1beta1`.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::V1 => "networking.istio.io/v1",
            Self::V1beta1 => "networking.istio.io/v1beta1",
            Self::V1alpha3 => "networking.istio.io/v1alpha3",
        }
    }

    /// The oldest Istio release that serves this version.
    pub fn since(self) -> &'static str {
        match self {
            Self::V1 => "1.22",
            Self::V1beta1 => "1.5",
            Self::V1alpha3 => "1.1",
        }
    }
}

impl fmt::Display for IstioApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.version())
    }
}

/// Why text is not an [`IstioApiVersion`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// `text` names none of the versions globaldns knows.
    #[error("`{text}` is not a networking.istio.io version (v1, v1beta1, v1alpha3)")]
    Unknown { text: String },
}

impl FromStr for IstioApiVersion {
    type Err = VersionError;

    /// `v1`, `v1beta1` or `v1alpha3`, with or without the group.
    fn from_str(s: &str) -> Result<Self, VersionError> {
        let version = s.strip_prefix("networking.istio.io/").unwrap_or(s);
        Self::NEWEST_FIRST
            .into_iter()
            .find(|v| v.version() == version)
            .ok_or_else(|| VersionError::Unknown {
                text: s.to_string(),
            })
    }
}
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
