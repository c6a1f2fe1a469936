//! `globaldns peer-secret`: the Secret that makes a cluster a peer of the
//! others (as `istioctl create-remote-secret` makes a remote secret). Run
//! against the cluster to be read (`--context`), it takes a token of that
//! cluster's `globaldns-reader` ServiceAccount (installed by the manifests:
//! it may only list and watch the registry resources, ServiceExports and
//! Services), and prints a Secret holding a kubeconfig with that token,
//! labelled `globaldns.io/peer: "true"` and naming the cluster, to be
//! applied in every other cluster's globaldns namespace.
//!
//! The token is a long-lived ServiceAccount token Secret
//! (`kubernetes.io/service-account-token`) in the read cluster, made if it
//! is not there: a peer must keep reading without anyone renewing a token.
//! Deleting that Secret revokes every peer Secret made from it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};
use serde_json::json;

use crate::mesh::sync::FIELD_MANAGER;
use crate::registry::kube::peers::{CLUSTER_ANNOTATION, KUBECONFIG_KEY, PEER_LABEL};

/// The ServiceAccount whose token a peer reads with.
pub const READER: &str = "globaldns-reader";

/// What to make the Secret from.
#[derive(Clone, Debug)]
pub struct Request {
    /// The read cluster's name, as the registry names it.
    pub cluster: String,
    /// The kubeconfig context that reaches it (`None`: the current one).
    pub context: Option<String>,
    /// globaldns' namespace, in the read cluster and in the others.
    pub namespace: String,
    /// The API server's URL as the other clusters reach it (`None`: the
    /// context's).
    pub server: Option<String>,
}

/// The peer Secret for `request.cluster`, as YAML.
pub async fn peer_secret(request: &Request) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let options = KubeConfigOptions {
        context: request.context.clone(),
        ..Default::default()
    };
    let kubeconfig = Kubeconfig::read().context("cannot read the kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .context("the kubeconfig context is not usable")?;
    let server = match &request.server {
        Some(url) => {
            url.parse::<http::Uri>()
                .with_context(|| format!("--server {url} is not a URL"))?;
            url.clone()
        }
        None => config.cluster_url.to_string(),
    };
    let client = kube::Client::try_from(config).context("cannot make a client")?;
    let (token, ca) = reader_token(&client, &request.namespace).await?;
    let kubeconfig = reader_kubeconfig(request, &server, &token, &ca);
    let text = serde_saphyr::to_string(&kubeconfig).context("cannot write the kubeconfig")?;
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": format!("globaldns-peer-{}", request.cluster),
            "namespace": request.namespace,
            "labels": {PEER_LABEL: "true"},
            "annotations": {CLUSTER_ANNOTATION: request.cluster},
        },
        "type": "Opaque",
        "stringData": {KUBECONFIG_KEY: text},
    });
    serde_saphyr::to_string(&secret).context("cannot write the Secret")
}

/// The reader's long-lived token and the cluster's CA (PEM), made if
/// missing; waits (30 s) for the token controller to fill it in.
async fn reader_token(client: &kube::Client, namespace: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let name = format!("{READER}-token");
    let wanted = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "annotations": {"kubernetes.io/service-account.name": READER},
        },
        "type": "kubernetes.io/service-account-token",
    });
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&wanted))
        .await
        .map_err(|e| anyhow::anyhow!("cannot make the token Secret {namespace}/{name} (is the {READER} ServiceAccount installed? manifests/): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let secret = api.get(&name).await?;
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        if let (Some(token), Some(ca)) = (data.get("token"), data.get("ca.crt")) {
            let token = String::from_utf8(token.clone())?;
            return Ok((token, ca.clone()));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the token Secret {namespace}/{name} got no token in 30 s (is the token controller running?)"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A kubeconfig of the reader at `server`, its context's namespace the
/// registry resources' one.
fn reader_kubeconfig(request: &Request, server: &str, token: &str, ca_pem: &[u8]) -> Kubeconfig {
    let name = request.cluster.clone();
    let user = format!("{READER}@{name}");
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.clone(),
            cluster: Some(Cluster {
                server: Some(server.trim_end_matches('/').to_string()),
                certificate_authority_data: Some(
                    base64::engine::general_purpose::STANDARD.encode(ca_pem),
                ),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: user.clone(),
            auth_info: Some(AuthInfo {
                token: Some(token.to_string().into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: name.clone(),
            context: Some(Context {
                cluster: name.clone(),
                user: Some(user),
                namespace: Some(request.namespace.clone()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some(name),
        api_version: Some("v1".to_string()),
        kind: Some("Config".to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::kube::peers::Peer;

    /// The kubeconfig in a peer Secret reads back as a peer of that name,
    /// whose client talks to the server in globaldns' namespace.
    #[tokio::test]
    async fn the_kubeconfig_makes_a_peer() {
        let request = Request {
            cluster: "west".to_string(),
            context: None,
            namespace: "globaldns".to_string(),
            server: None,
        };
        let kubeconfig = reader_kubeconfig(
            &request,
            "https://127.0.0.1:6443/",
            "tok3n",
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        );
        let text = serde_saphyr::to_string(&kubeconfig).unwrap();
        assert!(text.contains("server: https://127.0.0.1:6443\n"), "{text}");
        let peer = Peer::new("west", &text, "test").unwrap();
        assert_eq!(peer.name, "west");
    }
}
