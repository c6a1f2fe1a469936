//! Peer clusters: the other clusters whose API servers globaldns reads
//! (design §2, federated registry). A peer is given by a Secret in
//! globaldns' namespace labelled `globaldns.io/peer: "true"`, holding a
//! kubeconfig (key `kubeconfig`) and naming the cluster (annotation
//! `globaldns.io/cluster`), as `globaldns peer-secret` prints it; or by a
//! kubeconfig file (`--peer-kubeconfig NAME=FILE`).
//!
//! Secrets are watched: a new one adds its peer, a changed one replaces
//! it, a deleted one removes it. A kubeconfig's contents (its token) are
//! never logged: errors name the Secret or file, and say what is wrong
//! with it without quoting it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::watch::Settled;

/// The label that marks a peer Secret.
pub const PEER_LABEL: &str = "globaldns.io/peer";
/// The annotation naming the peer's cluster, as the registry names it.
pub const CLUSTER_ANNOTATION: &str = "globaldns.io/cluster";
/// The key of the kubeconfig in a peer Secret's data.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// A peer cluster, as given.
#[derive(Clone)]
pub struct Peer {
    /// The cluster's name, as the registry names it.
    pub name: String,
    /// Where it came from, for messages (`Secret globaldns/x`, a file).
    pub source: String,
    kubeconfig: Kubeconfig,
    /// A digest of the kubeconfig: a Secret whose content changed is a new
    /// peer (new credentials), one that did not is the same.
    digest: [u8; 32],
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the kubeconfig: it holds the peer's credentials.
        write!(f, "Peer({} from {})", self.name, self.source)
    }
}

impl PartialEq for Peer {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, &self.source, self.digest) == (&other.name, &other.source, other.digest)
    }
}

impl Eq for Peer {}

/// Why a Secret or a file gives no usable peer. Every message but those of
/// the flag itself starts with where the peer came from (`origin`:
/// `Secret globaldns/x`, or the file), and none quotes the kubeconfig,
/// which holds the peer's credentials.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The cluster's name `name` is not a DNS-1123 label; `reason` says
    /// which rule it breaks.
    #[error("{origin}: `{name}` is not a cluster name: {reason}")]
    NotAClusterName {
        origin: String,
        name: String,
        reason: crate::naming::NameError,
    },
    /// The kubeconfig is not a kubeconfig (kube's error is left out: it
    /// may quote the text).
    #[error("{origin}: the kubeconfig does not parse")]
    Unparsable { origin: String },
    /// The kubeconfig parses but lacks what a connection needs: `what`
    /// says what (`has no current-context`, ...).
    #[error("{origin}: the kubeconfig {what}")]
    Incomplete { origin: String, what: &'static str },
    /// kube cannot make a client configuration of the kubeconfig: `kind`
    /// says what is wrong, without kube's text.
    #[error("{origin}: the kubeconfig is not usable: {kind}")]
    Unusable { origin: String, kind: &'static str },
    /// kube cannot make a client of the configuration.
    #[error("{origin}: no client can be made from the kubeconfig")]
    NoClient { origin: String },
    /// The Secret has no [`CLUSTER_ANNOTATION`].
    #[error("{origin}: no annotation {CLUSTER_ANNOTATION} names the cluster")]
    NoClusterName { origin: String },
    /// The Secret's data has no [`KUBECONFIG_KEY`].
    #[error("{origin}: no `{KUBECONFIG_KEY}` in its data")]
    NoKubeconfig { origin: String },
    /// The Secret's kubeconfig is not UTF-8.
    #[error("{origin}: the kubeconfig is not UTF-8 text")]
    NotText { origin: String },
    /// A `--peer-kubeconfig` value `spec` without `=`.
    #[error("`{spec}` is not NAME=FILE")]
    NotNameEqualsFile { spec: String },
    /// The kubeconfig file at `path` cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Peer {
    /// A peer named `name` with the kubeconfig `text`, from `source`.
    /// Errors: the name is not a cluster name, or the kubeconfig does not
    /// parse or names no server ([`PeerError`], naming `source`).
    pub fn new(name: &str, text: &str, source: &str) -> Result<Self, PeerError> {
        crate::naming::dns1123_label(name).map_err(|reason| PeerError::NotAClusterName {
            origin: source.to_string(),
            name: name.to_string(),
            reason,
        })?;
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|_| PeerError::Unparsable {
            origin: source.to_string(),
        })?;
        usable(&kubeconfig).map_err(|what| PeerError::Incomplete {
            origin: source.to_string(),
            what,
        })?;
        Ok(Self {
            name: name.to_string(),
            source: source.to_string(),
            kubeconfig,
            digest: Sha256::digest(text.as_bytes()).into(),
        })
    }

    /// The namespace the kubeconfig's current context names, if it names
    /// one: where the peer's registry resources are read. A context without
    /// one is read in the local `--kube-namespace` (see
    /// [`crate::registry::kube::source::WatchConfig`]), not in `default`, where a peer's
    /// globaldns objects never are.
    pub fn namespace(&self) -> Option<String> {
        let current = self.kubeconfig.current_context.as_deref()?;
        self.kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == current)?
            .context
            .as_ref()?
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
    }

    /// A client for the peer's API server. Errors: kube cannot make a
    /// configuration or a client of the kubeconfig ([`PeerError::Unusable`],
    /// [`PeerError::NoClient`]).
    pub async fn client(&self) -> Result<kube::Client, PeerError> {
        let config = kube::Config::from_custom_kubeconfig(
            self.kubeconfig.clone(),
            &KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| PeerError::Unusable {
            origin: self.source.clone(),
            kind: kind_of(&e),
        })?;
        kube::Client::try_from(config).map_err(|_| PeerError::NoClient {
            origin: self.source.clone(),
        })
    }

    /// The peer a Secret gives, or why it gives none: no cluster name, no
    /// kubeconfig, or one that [`Self::new`] refuses.
    pub fn from_secret(secret: &Secret) -> Result<Self, PeerError> {
        let source = format!(
            "Secret {}/{}",
            secret.metadata.namespace.as_deref().unwrap_or("-"),
            secret.metadata.name.as_deref().unwrap_or("-")
        );
        let name = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CLUSTER_ANNOTATION))
            .ok_or_else(|| PeerError::NoClusterName {
                origin: source.clone(),
            })?;
        let data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(KUBECONFIG_KEY))
            .ok_or_else(|| PeerError::NoKubeconfig {
                origin: source.clone(),
            })?;
        let text = std::str::from_utf8(&data.0).map_err(|_| PeerError::NotText {
            origin: source.clone(),
        })?;
        Self::new(name, text, &source)
    }

    /// A peer from a `NAME=FILE` flag. Errors: the flag is not `NAME=FILE`,
    /// the file cannot be read, or [`Self::new`] refuses it.
    pub fn from_file(spec: &str) -> Result<Self, PeerError> {
        let (name, path) = spec
            .split_once('=')
            .ok_or_else(|| PeerError::NotNameEqualsFile {
                spec: spec.to_string(),
            })?;
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path).map_err(|source| PeerError::Unreadable {
            path: path.clone(),
            source,
        })?;
        Self::new(name, &text, &path.display().to_string())
    }
}

/// Whether a kubeconfig names a current context whose cluster has a
/// server: checked when the peer is given, so a Secret missing these is
/// reported at once rather than at each connection attempt.
fn usable(kubeconfig: &Kubeconfig) -> Result<(), &'static str> {
    let current = kubeconfig
        .current_context
        .as_deref()
        .ok_or("has no current-context")?;
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .ok_or("has no context named by current-context")?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or("has no cluster named by its current context")?;
    if cluster.server.is_none() {
        return Err("gives no server for its cluster");
    }
    Ok(())
}

/// What an error of kube's config is, without its text (which may quote
/// the file).
fn kind_of(error: &kube::config::KubeconfigError) -> &'static str {
    use kube::config::KubeconfigError as E;
    match error {
        E::CurrentContextNotSet => "no current context",
        E::LoadContext(_) | E::LoadClusterOfContext(_) => "its context or cluster is missing",
        E::ParseClusterUrl(_) => "the server URL does not parse",
        _ => "its cluster, user or certificates are not usable",
    }
}

/// A change of the set of peers.
#[derive(Debug)]
pub enum PeerEvent {
    /// A peer to read (new, or with new credentials: it replaces one of
    /// the same name).
    Up(Box<Peer>),
    /// A peer no longer given.
    Down(String),
    /// The peers given at start have all been sent (the Secrets' first
    /// list is in).
    Listed,
}

/// Watches the peer Secrets of `namespace` until `shutdown`, sending the
/// changes of the set of peers. A Secret that does not give a peer is
/// logged (once per version) and ignored.
pub async fn watch_secrets(
    client: kube::Client,
    namespace: String,
    tx: mpsc::Sender<PeerEvent>,
    shutdown: CancellationToken,
) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().labels(&format!("{PEER_LABEL}=true"));
    let what = format!("peer Secrets in {namespace}");
    let mut settled = Settled::new(api, config, (), what);
    // cluster → the digest of its kubeconfig
    let mut current: BTreeMap<String, [u8; 32]> = BTreeMap::new();
    let mut reported = std::collections::BTreeSet::new();
    let mut announced = false;
    while let Some(store) = settled.next(&shutdown).await {
        let mut wanted: BTreeMap<String, Peer> = BTreeMap::new();
        for secret in store.state() {
            match Peer::from_secret(&secret) {
                Ok(peer) => {
                    // Two Secrets naming one cluster: the one whose name
                    // sorts first is used.
                    if let Some(other) = wanted.get(&peer.name) {
                        let (used, unused) = if other.source <= peer.source {
                            (&other.source, &peer.source)
                        } else {
                            (&peer.source, &other.source)
                        };
                        let text = format!(
                            "{used} and {unused} both name peer {}: {used} is used",
                            peer.name
                        );
                        if reported.insert(text.clone()) {
                            tracing::warn!("{text}");
                        }
                        if peer.source > other.source {
                            continue;
                        }
                    }
                    wanted.insert(peer.name.clone(), peer);
                }
                Err(e) => {
                    if reported.insert(e.to_string()) {
                        tracing::warn!("peer not used: {e}");
                    }
                }
            }
        }
        let mut events = changes(&mut current, wanted);
        if !announced {
            announced = true;
            events.push(PeerEvent::Listed);
        }
        for event in events {
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }
}

/// The events that take the set of peers from `current` to `wanted`;
/// `current` (each peer's kubeconfig digest) is brought up to date.
fn changes(
    current: &mut BTreeMap<String, [u8; 32]>,
    wanted: BTreeMap<String, Peer>,
) -> Vec<PeerEvent> {
    let mut events = Vec::new();
    let gone: Vec<String> = current
        .keys()
        .filter(|name| !wanted.contains_key(*name))
        .cloned()
        .collect();
    for name in gone {
        current.remove(&name);
        events.push(PeerEvent::Down(name));
    }
    for (name, peer) in wanted {
        if current.get(&name) != Some(&peer.digest) {
            current.insert(name, peer.digest);
            events.push(PeerEvent::Up(Box::new(peer)));
        }
    }
    events
}

#[cfg(test)]
mod tests;
