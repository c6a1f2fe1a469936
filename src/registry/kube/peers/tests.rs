use super::*;
use k8s_openapi::ByteString;

const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: west\n  cluster:\n    server: https://127.0.0.1:6443\nusers:\n- name: reader\n  user:\n    token: s3cr3t-t0ken\ncontexts:\n- name: west\n  context:\n    cluster: west\n    user: reader\n    namespace: globaldns\ncurrent-context: west\n";

fn secret(annotation: Option<&str>, data: Option<&str>) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some("peer-west".to_string());
    secret.metadata.namespace = Some("globaldns".to_string());
    if let Some(cluster) = annotation {
        secret.metadata.annotations = Some(
            [(CLUSTER_ANNOTATION.to_string(), cluster.to_string())]
                .into_iter()
                .collect(),
        );
    }
    if let Some(text) = data {
        secret.data = Some(
            [(
                KUBECONFIG_KEY.to_string(),
                ByteString(text.as_bytes().to_vec()),
            )]
            .into_iter()
            .collect(),
        );
    }
    secret
}

#[test]
fn a_peer_secret_gives_its_cluster_and_kubeconfig() {
    let peer = Peer::from_secret(&secret(Some("west"), Some(KUBECONFIG))).unwrap();
    assert_eq!(peer.name, "west");
    assert_eq!(peer.source, "Secret globaldns/peer-west");
    // Debug output never shows the credentials.
    assert!(!format!("{peer:?}").contains("s3cr3t"));
}

/// Issue 15: a peer's credentials are never logged: what is wrong with a
/// Secret is said without quoting it.
#[test]
fn bad_peer_secrets_are_named_without_their_contents() {
    let cases = [
        (
            secret(None, Some(KUBECONFIG)),
            "no annotation globaldns.io/cluster",
        ),
        (secret(Some("west"), None), "no `kubeconfig`"),
        (
            secret(Some("west"), Some("clusters: s3cr3t-t0ken\n")),
            "the kubeconfig does not parse",
        ),
        (
            secret(
                Some("west"),
                Some(&KUBECONFIG.replace("current-context: west\n", "")),
            ),
            "the kubeconfig has no current-context",
        ),
        (
            secret(
                Some("west"),
                Some(&KUBECONFIG.replace(
                    "    server: https://127.0.0.1:6443\n",
                    "    insecure-skip-tls-verify: true\n",
                )),
            ),
            "the kubeconfig gives no server for its cluster",
        ),
        (
            secret(Some("Not A Name"), Some(KUBECONFIG)),
            "is not a cluster name",
        ),
    ];
    for (secret, expected) in cases {
        let error = Peer::from_secret(&secret).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
        assert!(error.starts_with("Secret globaldns/peer-west"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
    }
}

#[test]
fn changes_add_replace_and_remove_peers() {
    let peer = |name: &str, token: &str| {
        Peer::new(name, &KUBECONFIG.replace("s3cr3t-t0ken", token), "test").unwrap()
    };
    let mut current = BTreeMap::new();
    let first = changes(
        &mut current,
        [
            ("west".to_string(), peer("west", "a")),
            ("north".to_string(), peer("north", "a")),
        ]
        .into(),
    );
    assert_eq!(first.len(), 2);
    // The same again: nothing to do.
    let same = changes(
        &mut current,
        [
            ("west".to_string(), peer("west", "a")),
            ("north".to_string(), peer("north", "a")),
        ]
        .into(),
    );
    assert!(same.is_empty(), "{same:?}");
    // West's token changes, north goes.
    let next = changes(
        &mut current,
        [("west".to_string(), peer("west", "b"))].into(),
    );
    let described: Vec<String> = next
        .iter()
        .map(|e| match e {
            PeerEvent::Up(p) => format!("up {}", p.name),
            PeerEvent::Down(n) => format!("down {n}"),
            PeerEvent::Listed => "listed".to_string(),
        })
        .collect();
    assert_eq!(described, ["down north", "up west"]);
}

#[tokio::test]
async fn a_peer_s_client_talks_to_its_server_in_its_namespace() {
    let peer = Peer::new("west", KUBECONFIG, "test").unwrap();
    let client = peer.client().await.unwrap();
    assert_eq!(client.default_namespace(), "globaldns");
}

/// Issue 24: a peer kubeconfig whose context names no namespace was read
/// in `default` (kube's fallback), found nothing, and said nothing. Its
/// namespace is now the context's when it names one; none means the
/// caller reads it in the local namespace.
#[test]
fn a_peer_s_namespace_is_its_context_s_or_none() {
    let peer = Peer::new("west", KUBECONFIG, "test").unwrap();
    assert_eq!(peer.namespace().as_deref(), Some("globaldns"));
    let without = KUBECONFIG.replace("    namespace: globaldns\n", "");
    let peer = Peer::new("west", &without, "test").unwrap();
    assert_eq!(peer.namespace(), None);
    let empty = KUBECONFIG.replace("namespace: globaldns", "namespace: \"\"");
    assert_eq!(Peer::new("west", &empty, "test").unwrap().namespace(), None);
}
