//! Istio's Gateway: what lets other clusters reach the
//! services this cluster exports under the served zones (design §5).
//!
//! Istio 1.1–1.7 multicluster installs shipped a Gateway for `*.global`
//! on the east-west (then "multicluster ingress") gateway; since 1.8 the
//! east-west gateway's Gateway covers `*.local` only, and a `.global`
//! request arriving there is reset. So a cluster that exports anything
//! gets one Gateway: on its east-west gateway's pods (selector
//! `--gateway-selector`, default `istio=eastwestgateway`), TLS
//! `AUTO_PASSTHROUGH` (the gateway routes on the SNI the caller's sidecar
//! sets, mTLS end to end), on the port of each of the cluster's gateways
//! (15443 by default), for `*.<zone>` of every served zone.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::meta::Metadata;
use super::{RenderError, Target};
use crate::registry::Registry;

pub const KIND: &str = "Gateway";
/// The one Gateway's name.
pub const NAME: &str = "globaldns-cross-network";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: GatewaySpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewaySpec {
    pub selector: BTreeMap<String, String>,
    pub servers: Vec<Server>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub port: GatewayPort,
    pub tls: ServerTls,
    pub hosts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayPort {
    pub number: u32,
    pub name: String,
    pub protocol: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTls {
    pub mode: String,
}

/// The Gateway `target.cluster` needs, if it exports any service: `None`
/// when it exports nothing (an owned Gateway is then pruned). Fails when
/// the cluster is not in the registry ([`RenderError::UnknownCluster`]).
pub fn gateway(
    registry: &Registry,
    zones: &[String],
    target: &Target,
) -> Result<Option<Gateway>, RenderError> {
    let local = target.local(registry)?;
    let exports = registry
        .services
        .iter()
        .any(|s| s.exported_from.iter().any(|c| *c == local.name));
    if !exports {
        return Ok(None);
    }
    let ports: BTreeSet<u16> = local.gateways.iter().map(|g| g.port).collect();
    let hosts: Vec<String> = zones.iter().map(|z| format!("*.{z}")).collect();
    let servers = ports
        .into_iter()
        .map(|port| Server {
            port: GatewayPort {
                number: u32::from(port),
                name: format!("tls-globaldns-{port}"),
                protocol: "TLS".to_string(),
            },
            tls: ServerTls {
                mode: "AUTO_PASSTHROUGH".to_string(),
            },
            hosts: hosts.clone(),
        })
        .collect();
    Ok(Some(Gateway {
        api_version: target.api_version.api_version().to_string(),
        kind: KIND.to_string(),
        metadata: Metadata::owned(NAME.to_string(), &target.namespace),
        spec: GatewaySpec {
            selector: target.gateway_selector.clone(),
            servers,
        },
    }))
}
