//! What shapes the Istio objects, for `serve --sync-service-entries` and
//! `render` alike: the cluster domain, the east-west gateway's selector,
//! and whether to write DestinationRules.

use std::collections::BTreeMap;

use clap::Args;

use crate::naming;

/// The flags of [`crate::mesh::Target`] beside the cluster and namespace.
#[derive(Debug, Args)]
pub struct MeshArgs {
    /// The local cluster's DNS domain: its own exports' endpoint is
    /// `<name>.<namespace>.svc.<domain>`.
    #[arg(
        long,
        env = "GLOBALDNS_CLUSTER_DOMAIN",
        value_name = "DOMAIN",
        default_value = crate::mesh::DEFAULT_CLUSTER_DOMAIN,
        value_parser = parse_cluster_domain
    )]
    pub cluster_domain: String,
    /// Labels of the east-west gateway's pods, for the Gateway that accepts
    /// the served zones' traffic: `key=value[,key=value]`.
    #[arg(
        long,
        env = "GLOBALDNS_GATEWAY_SELECTOR",
        value_name = "LABELS",
        default_value = "istio=eastwestgateway",
        value_parser = parse_selector
    )]
    pub gateway_selector: Selector,
    /// Also write a DestinationRule `*.<zone>` with ISTIO_MUTUAL per zone
    /// (for installs with auto mTLS turned off).
    #[arg(long, env = "GLOBALDNS_DESTINATION_RULES")]
    pub destination_rules: bool,
}

/// Pod labels to select, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector(pub BTreeMap<String, String>);

fn parse_selector(text: &str) -> Result<Selector, String> {
    let mut labels = BTreeMap::new();
    for pair in text.split(',') {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("`{pair}` is not key=value"));
        };
        naming::label_key(key).map_err(|e| format!("`{key}` is not a label key: {e}"))?;
        naming::label_value(value).map_err(|e| format!("`{value}` is not a label value: {e}"))?;
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(Selector(labels))
}

fn parse_cluster_domain(text: &str) -> Result<String, String> {
    let domain = text.trim_end_matches('.').to_ascii_lowercase();
    naming::dns1123_subdomain(&domain).map_err(|e| format!("`{text}` is not a DNS domain: {e}"))?;
    Ok(domain)
}

impl MeshArgs {
    /// The render target for `cluster`, objects in `namespace`.
    pub fn target(&self, cluster: &str, namespace: &str) -> crate::mesh::Target {
        crate::mesh::Target {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            cluster_domain: self.cluster_domain.clone(),
            gateway_selector: self.gateway_selector.0.clone(),
            destination_rules: self.destination_rules,
            api_version: Default::default(),
            withdrawn: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_and_domains_are_checked_at_the_door() {
        let selector =
            parse_selector("istio=eastwestgateway,topology.istio.io/network=west").unwrap();
        assert_eq!(selector.0.len(), 2);
        assert!(parse_selector("istio").unwrap_err().contains("key=value"));
        assert!(
            parse_selector("bad key=x")
                .unwrap_err()
                .contains("label key")
        );
        assert_eq!(
            parse_cluster_domain("Corp.Example.").unwrap(),
            "corp.example"
        );
        assert!(parse_cluster_domain("a..b").is_err());
    }
}
