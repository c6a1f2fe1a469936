//! The registry `doctor` checks against, read where the cluster's
//! globaldns reads it, with the peers reached on the way; and the findings
//! about it (`globaldns.registry`, `globaldns.cluster`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};

use super::Finding;
use super::observe::{CONFIG, Observed, Options, PeerSeen, Read, container, flag, text};
use crate::registry::Registry;
use crate::registry::kube::assemble::{Assembler, ViewInput};
use crate::registry::kube::cluster_watch::{Changed, ClusterWatch, Kind};
use crate::registry::kube::peers::{PEER_LABEL, Peer};

/// Reads the registry of `seen`'s cluster (and its peers, into
/// `seen.peers`), once the rest is read: nothing when its API server was
/// not reached.
pub async fn read_registry(client: &kube::Client, seen: &mut Observed) {
    let Some(options) = seen.options.clone() else {
        return;
    };
    if seen.api_server.is_err() {
        return;
    }
    let local = seen.cluster.clone().unwrap_or_default();
    let deployment = seen
        .deployment
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .cloned();
    seen.registry = registry(
        client,
        &options,
        &local,
        deployment.as_ref(),
        &mut seen.peers,
    )
    .await;
}

/// The file-mode registry ConfigMap, and its key.
pub const REGISTRY_CONFIGMAP: (&str, &str) = ("globaldns-registry", "registry.yaml");

/// The registry: `--registry`'s file, else the file-mode ConfigMap, else
/// the registry resources of the cluster and of its peers (each peer's
/// outcome is pushed to `peers`).
async fn registry(
    client: &kube::Client,
    options: &Options,
    local: &str,
    deployment: Option<&Deployment>,
    peers: &mut Vec<PeerSeen>,
) -> Read<(Registry, String)> {
    let ns = options.namespace.as_str();
    if let Some(path) = &options.registry {
        let registry = crate::registry::file::read(path, &options.zones).map_err(text)?;
        return Ok((registry, path.display().to_string()));
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mounted = match deployment {
        // What the Deployment runs decides: `--registry kubernetes`, or a
        // file of a mounted ConfigMap.
        Some(deployment) => match registry_of(deployment) {
            Some(Ok((map, key))) => Some((map, key)),
            Some(Err(e)) => return Err(e),
            None => None,
        },
        // No Deployment to ask: file mode's ConfigMap if there is one.
        None => {
            let (map, key) = REGISTRY_CONFIGMAP;
            maps.get_opt(map)
                .await
                .map_err(text)?
                .map(|_| (map.to_string(), key.to_string()))
        }
    };
    if let Some((map, key)) = mounted {
        let origin = format!("ConfigMap {ns}/{map}");
        let found = maps
            .get_opt(&map)
            .await
            .map_err(text)?
            .ok_or_else(|| format!("{origin}, which the Deployment mounts, does not exist"))?;
        let text = found
            .data
            .and_then(|d| d.get(&key).cloned())
            .ok_or_else(|| format!("{origin} has no key {key}"))?;
        let registry =
            crate::registry::load_str(&text, &origin, &options.zones).map_err(|e| e.to_string())?;
        return Ok((registry, origin));
    }
    let mut inputs = vec![
        view(client, ns, local, true, options.timeout)
            .await
            .map_err(|e| format!("the registry resources of {ns}: {e}"))?
            .0,
    ];
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let listed = secrets
        .list(&ListParams::default().labels(&format!("{PEER_LABEL}=true")))
        .await
        .map_err(|e| format!("the peer Secrets of {ns}: {e}"))?;
    for secret in listed.items {
        let name = format!(
            "Secret {ns}/{}",
            secret.metadata.name.as_deref().unwrap_or_default()
        );
        let peer = match Peer::from_secret(&secret) {
            Ok(peer) => peer,
            Err(e) => {
                peers.push(PeerSeen {
                    secret: name,
                    cluster: None,
                    holds_cluster: Err(e.to_string()),
                });
                continue;
            }
        };
        let reached = async {
            let client = peer.client().await.map_err(text)?;
            let namespace = peer.namespace().unwrap_or_else(|| ns.to_string());
            view(&client, &namespace, &peer.name, false, options.timeout).await
        }
        .await;
        let holds_cluster = match reached {
            Ok((input, holds)) => {
                inputs.push(input);
                Ok(holds)
            }
            Err(e) => Err(e),
        };
        peers.push(PeerSeen {
            secret: name,
            cluster: Some(peer.name.clone()),
            holds_cluster,
        });
    }
    let built = Assembler::default().build(inputs, Vec::new(), &options.zones);
    Ok((
        built.registry,
        format!("the registry resources of {ns} and its peers"),
    ))
}

/// Where the Deployment's globaldns reads its registry: `None` for the
/// registry resources (`--registry kubernetes`), else the ConfigMap and
/// key mounted at the file it names; an error when the file is not in a
/// mounted ConfigMap.
fn registry_of(deployment: &Deployment) -> Option<Result<(String, String), String>> {
    let path = flag(deployment, "registry", "GLOBALDNS_REGISTRY")?;
    if path == crate::cli::KUBERNETES {
        return None;
    }
    let path = std::path::Path::new(&path);
    let (dir, file) = (
        path.parent()?,
        path.file_name()?.to_string_lossy().to_string(),
    );
    let spec = deployment.spec.as_ref()?.template.spec.as_ref()?;
    let mount = container(deployment, "globaldns")?
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| std::path::Path::new(&m.mount_path) == dir)?;
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)?;
    let Some(map) = &volume.config_map else {
        return Some(Err(format!(
            "the Deployment reads {} from volume {}, which is not a ConfigMap: give doctor --registry FILE",
            path.display(),
            mount.name
        )));
    };
    // A key mapped to another file name (`items`) is followed.
    let key = map
        .items
        .iter()
        .flatten()
        .find(|i| i.path == file)
        .map_or(file.clone(), |i| i.key.clone());
    Some(Ok((map.name.clone(), key)))
}

/// One cluster's registry objects, listed (the watches' first lists, then
/// dropped), and whether it holds the MeshCluster `cluster`. Errors: the
/// first failed request, or no complete list within `timeout`.
async fn view(
    client: &kube::Client,
    namespace: &str,
    cluster: &str,
    local: bool,
    timeout: Duration,
) -> Result<(ViewInput, bool), String> {
    let (watch, mut events) = ClusterWatch::start(client, namespace);
    let mut listed: BTreeMap<&'static str, bool> = BTreeMap::new();
    let waited = tokio::time::timeout(timeout, async {
        while let Some(event) = events.next().await {
            match event {
                Changed::Listed(kind) => {
                    listed.insert(kind.name(), true);
                }
                Changed::Mcs(false) => {
                    listed.insert(Kind::ServiceExport.name(), true);
                    listed.insert(Kind::KubeService.name(), true);
                }
                Changed::Error(kind, e) => return Err(format!("{}: {e}", kind.name())),
                _ => {}
            }
            if listed.len() == 4 {
                return Ok(());
            }
        }
        Err("the watch ended".to_string())
    })
    .await;
    match waited {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(format!("no answer within {timeout:?}")),
    }
    let mut warnings = Vec::new();
    let input = watch.input(cluster, local, &mut warnings);
    Ok((input, watch.holds_cluster(cluster)))
}

/// `globaldns.cluster`: which cluster this is, as the registry names it;
/// the checks of the Gateway, the ServiceEntries and the network need it.
pub fn cluster_finding(seen: &Observed) -> Finding {
    const CHECK: &str = "globaldns.cluster";
    let fix = format!(
        "give doctor --cluster NAME, or set the key `cluster` of ConfigMap {CONFIG} as the Deployment reads it"
    );
    match (&seen.cluster, &seen.registry) {
        (Err(e), _) => Finding::fail(
            CHECK,
            "cluster name",
            format!("unknown: {e}; the Gateway, ServiceEntry and network checks are skipped"),
            fix,
        ),
        (Ok(name), Ok((registry, origin)))
            if !registry.clusters.iter().any(|c| &c.name == name) =>
        {
            Finding::fail(
                CHECK,
                format!("cluster {name}"),
                format!(
                    "not in the registry ({origin} has {}): globaldns renders nothing for it",
                    registry
                        .clusters
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                fix,
            )
        }
        (Ok(name), _) => {
            Finding::pass(CHECK, format!("cluster {name}"), "as the registry names it")
        }
    }
}

/// The registry as a finding: where it was read, or why it could not be.
pub fn registry_finding(seen: &Observed) -> Option<Finding> {
    Some(match &seen.registry {
        Ok((registry, origin)) => Finding::pass(
            "globaldns.registry",
            origin.clone(),
            format!(
                "{} cluster(s), {} service(s)",
                registry.clusters.len(),
                registry.services.len()
            ),
        ),
        Err(e) => Finding::fail(
            "globaldns.registry",
            "registry",
            format!("cannot be read: {e}"),
            "the checks of the ServiceEntries and the Gateway need it: fix it, or give --registry FILE",
        ),
    })
}

#[cfg(test)]
mod tests;
