//! Several clusters without a shared file (issue 15), against real API
//! servers: the suite's cluster is `east`; each test starts a second
//! control plane, `west`, from `KUBEBUILDER_ASSETS` with the manifests as
//! shipped. Each cluster publishes only its own MeshCluster and exports;
//! peers are joined with `globaldns peer-secret | kubectl apply -f -`, as
//! the README writes it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::Value;

use crate::cluster::kubectl;
use crate::process::{Globaldns, eventually};
use crate::suite::{NAMESPACE, Suite};

pub const TESTS: [(&str, crate::Test); 3] = [
    (
        "federation::each_cluster_s_exports_are_answered_in_every_cluster",
        |s| answered_everywhere(s).boxed(),
    ),
    (
        "federation::a_quiet_peer_keeps_its_exports_then_is_dropped_through_the_brake",
        |s| quiet_peer(s).boxed(),
    ),
    (
        "federation::a_deleted_peer_secret_removes_its_exports_through_the_brake",
        |s| deleted_secret(s).boxed(),
    ),
];

/// The second cluster: its own control plane, with globaldns' manifests
/// installed and `cluster: west` in its config (the README's `sed`).
pub struct West {
    pub suite: Suite,
    pub docs: Vec<Value>,
}

impl West {
    pub async fn start(east: &Suite) -> Self {
        let suite = east.second_cluster("west", None).await;
        let mut docs = suite.docs.clone();
        for doc in &mut docs {
            if doc["kind"] == "ConfigMap" && doc["metadata"]["name"] == "globaldns-config" {
                doc["data"]["cluster"] = "west".into();
            }
        }
        Self { suite, docs }
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.suite.env.kubeconfig
    }

    fn stop_apiserver(&self) {
        let envtest = self.suite.env.envtest.as_ref().unwrap();
        tokio::task::block_in_place(|| envtest.lock().unwrap().stop_apiserver());
    }

    fn start_apiserver(&self) {
        let envtest = self.suite.env.envtest.as_ref().unwrap();
        tokio::task::block_in_place(|| envtest.lock().unwrap().start_apiserver())
            .expect("west's API server starts again");
    }
}

/// `globaldns peer-secret --context envtest --cluster NAME | kubectl apply
/// -f -`: the Secret made against the cluster at `read` (its admin
/// kubeconfig, whose context is `envtest`), applied in the one at `into`.
pub fn join_peer(read: &Path, cluster: &str, into: &Path) {
    join_peer_edited(read, cluster, into, |yaml| yaml);
}

/// [`join_peer`], the Secret edited by `edit` before it is applied.
fn join_peer_edited(read: &Path, cluster: &str, into: &Path, edit: impl FnOnce(String) -> String) {
    let output = Command::new(env!("CARGO_BIN_EXE_globaldns"))
        .env("KUBECONFIG", read)
        .args(["peer-secret", "--context", "envtest", "--cluster", cluster])
        .output()
        .expect("globaldns runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // The token is the controller manager's to fill in: its log says why not.
        let log = read.with_file_name("kube-controller-manager.log");
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "peer-secret failed: {stderr}\n--- kube-controller-manager (last 40 lines) ---\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let yaml = String::from_utf8(output.stdout).unwrap();
    assert!(
        yaml.contains("globaldns.io/peer: 'true'") || yaml.contains("globaldns.io/peer: \"true\""),
        "{}",
        yaml.lines().take(12).collect::<Vec<_>>().join("\n")
    );
    kubectl(into, &["apply", "-f", "-"], Some(&edit(yaml)))
        .unwrap_or_else(|e| panic!("kubectl apply of the peer Secret: {e}"));
}

/// A peer Secret whose kubeconfig's context names no namespace, as a
/// kubeconfig written by hand often does.
fn without_namespace(yaml: String) -> String {
    let mut secret: Value = serde_saphyr::from_str(&yaml).unwrap();
    let kubeconfig = secret["stringData"]["kubeconfig"].as_str().unwrap();
    let mut config: Value = serde_saphyr::from_str(kubeconfig).unwrap();
    for context in config["contexts"].as_array_mut().unwrap() {
        context["context"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
    }
    secret["stringData"]["kubeconfig"] = serde_saphyr::to_string(&config).unwrap().into();
    serde_saphyr::to_string(&secret).unwrap()
}

fn peer_up(globaldns: &Globaldns, peer: &str) -> f64 {
    globaldns.metric(&format!("globaldns_peer_up{{peer=\"{peer}\"}}"))
}

pub fn wait_peer_up(globaldns: &Globaldns, peer: &str) {
    eventually(
        Duration::from_secs(30),
        &format!("peer {peer} is read"),
        || (peer_up(globaldns, peer) == 1.0).then_some(()),
    );
}

/// How long from now until every one of `servers` answers `host`.
fn time_to_answer(servers: &[&Globaldns], host: &str) -> Duration {
    let start = Instant::now();
    for globaldns in servers {
        eventually(Duration::from_secs(20), &format!("{host} answers"), || {
            matches!(globaldns.resolve(host), Ok(Some(_))).then_some(())
        });
    }
    start.elapsed()
}

/// Issue 15, items 1, 2, 3, 5 and 6: west exports with ExportedServices
/// that leave `exportedFrom` out, east with an MCS ServiceExport; each
/// globaldns reads the other cluster through the Secret `peer-secret`
/// printed. Every export is answered in both clusters within a second
/// (the median of three), with the same VIP, and each cluster's
/// ServiceEntries point at the right place: the other cluster's gateway,
/// or the local Service.
async fn answered_everywhere(suite: &Suite) {
    let west = West::start(suite).await;
    suite.mesh_cluster("east", "192.0.2.10").await;
    west.suite.mesh_cluster("west", "198.51.100.20").await;
    tokio::task::block_in_place(|| {
        // Issue 24: east reads west through a kubeconfig that names no
        // namespace: read in east's own, not in `default`.
        join_peer_edited(
            west.kubeconfig(),
            "west",
            &suite.env.kubeconfig,
            without_namespace,
        );
        join_peer(&suite.env.kubeconfig, "east", west.kubeconfig());
    });
    let east_dns = suite
        .start(&suite.docs, "globaldns-0", "state-e", &[])
        .await;
    let west_dns = west
        .suite
        .start(&west.docs, "globaldns-0", "state-w", &[])
        .await;
    tokio::task::block_in_place(|| {
        wait_peer_up(&east_dns, "west");
        wait_peer_up(&west_dns, "east");
        // Each holds the MeshCluster of its own name where it is read.
        eventually(
            Duration::from_secs(10),
            "west's MeshCluster is seen",
            || (east_dns.metric("globaldns_peer_mesh_cluster{peer=\"west\"}") == 1.0).then_some(()),
        );
    });

    let mut took = Vec::new();
    for name in ["ratings", "reviews", "details"] {
        west.suite.exported_service(name, "default", &[]).await;
        let host = format!("{name}.default.global");
        took.push(tokio::task::block_in_place(|| {
            time_to_answer(&[&east_dns, &west_dns], &host)
        }));
    }
    suite.mcs_export("productpage", &[("http-web", 9080)]).await;
    let host = format!("productpage.{NAMESPACE}.global");
    took.push(tokio::task::block_in_place(|| {
        time_to_answer(&[&west_dns, &east_dns], &host)
    }));
    eprintln!("federation: an export answered in both clusters after {took:?}");
    let mut sorted = took.clone();
    sorted.sort();
    assert!(
        sorted[sorted.len() / 2] < Duration::from_secs(1),
        "exports answered in every cluster after {took:?}"
    );
    tokio::task::block_in_place(|| {
        for host in [
            "ratings.default.global",
            "reviews.default.global",
            "details.default.global",
            "productpage.globaldns.global",
        ] {
            assert_eq!(
                east_dns.resolve(host),
                west_dns.resolve(host),
                "{host}: the same VIP in both clusters"
            );
        }
    });

    // East's ServiceEntries: west's exports through west's gateway, its
    // own MCS export at the local Service, with the Service's port.
    let entries = [
        "details-default-global",
        "productpage-globaldns-global",
        "ratings-default-global",
        "reviews-default-global",
        // Each exporter's per-cluster name's (design §2).
        "west-details-default-global",
        "east-productpage-globaldns-global",
        "west-ratings-default-global",
        "west-reviews-default-global",
    ];
    let east_entries = suite.wait_for_entries(&entries, 30).await;
    let west_entries = west.suite.wait_for_entries(&entries, 30).await;
    let address = |spec: &Value| {
        spec["endpoints"][0]["address"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        address(&east_entries["ratings-default-global"]),
        "198.51.100.20"
    );
    assert_eq!(
        address(&west_entries["ratings-default-global"]),
        "ratings.default.svc.cluster.local."
    );
    assert_eq!(
        address(&west_entries["productpage-globaldns-global"]),
        "192.0.2.10"
    );
    assert_eq!(
        address(&east_entries["productpage-globaldns-global"]),
        "productpage.globaldns.svc.cluster.local."
    );
    let port = &west_entries["productpage-globaldns-global"]["ports"][0];
    assert_eq!(
        (port["number"].as_i64(), port["protocol"].as_str()),
        (Some(9080), Some("HTTP")),
        "{port}"
    );

    // Credentials are never logged.
    let secret = kubectl(
        west.kubeconfig(),
        &[
            "-n",
            NAMESPACE,
            "get",
            "secret",
            "globaldns-reader-token",
            "-o",
            "jsonpath={.data.token}",
        ],
        None,
    )
    .unwrap();
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD
        .decode(secret.trim())
        .unwrap();
    let token = String::from_utf8(token).unwrap();
    assert!(
        !east_dns.log().contains(&token),
        "west's token is in east's log"
    );
}

/// Issue 15, item 4: west's API server stops. East keeps serving west's
/// exports and says the peer is unreachable (metrics, explain); a replica
/// with `--peer-stale-after=3s` drops them after 3 s, and the shrink brake
/// holds that for `--shrink-hold` before they go. A restart meanwhile keeps
/// them. When west is back, both resync by relist: west's exports answer
/// again, and a new one too.
async fn quiet_peer(suite: &Suite) {
    let west = West::start(suite).await;
    suite.mesh_cluster("east", "192.0.2.10").await;
    west.suite.mesh_cluster("west", "198.51.100.20").await;
    west.suite.exported_service("ratings", "default", &[]).await;
    tokio::task::block_in_place(|| join_peer(west.kubeconfig(), "west", &suite.env.kubeconfig));
    let patient = suite
        .start(&suite.docs, "globaldns-0", "state-0", &[])
        .await;
    let hasty = suite
        .start(
            &suite.docs,
            "globaldns-1",
            "state-1",
            &["--peer-stale-after=3s", "--shrink-hold=3s"],
        )
        .await;
    let vip = tokio::task::block_in_place(|| {
        time_to_answer(&[&patient, &hasty], "ratings.default.global");
        patient.resolve("ratings.default.global").unwrap()
    });

    west.stop_apiserver();
    let stopped = Instant::now();
    tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(20), "west is seen unreachable", || {
            (peer_up(&patient, "west") == 0.0).then_some(())
        });
        eventually(
            Duration::from_secs(20),
            "the brake holds west's exports",
            || (hasty.metric("globaldns_registry_held_back") == 1.0).then_some(()),
        );
        assert_eq!(
            hasty.resolve("ratings.default.global"),
            Ok(vip),
            "held: still served"
        );
        eventually(
            Duration::from_secs(20),
            "west's exports are dropped",
            || {
                (hasty.resolve("ratings.default.global")
                    == Err(hickory_proto::op::ResponseCode::NXDomain))
                .then_some(())
            },
        );
        assert!(
            stopped.elapsed() >= Duration::from_secs(6),
            "dropped after {:?}: before stale + hold",
            stopped.elapsed()
        );
        assert_eq!(
            patient.resolve("ratings.default.global"),
            Ok(vip),
            "kept within --peer-stale-after"
        );
        assert!(patient.metric("globaldns_peer_unreachable_seconds{peer=\"west\"}") >= 1.0);
        let (_, explained) = patient.admin_get("/explain?name=ratings.default.global");
        assert!(
            explained.contains("peer west: unreachable for"),
            "{explained}"
        );
    });

    // Restarted while west is down: what west said is in the last-known-good
    // registry, and stands for it once the registry from the API servers
    // is published.
    drop(patient);
    let patient = suite
        .start(&suite.docs, "globaldns-0", "state-0", &[])
        .await;
    tokio::task::block_in_place(|| {
        // Stale (RFC 8914) until the registry from the API servers
        // confirms what the last-known-good one says.
        eventually(
            Duration::from_secs(30),
            "a registry from the API servers",
            || (!patient.stale("ratings.default.global")).then_some(()),
        );
        assert_eq!(
            patient.resolve("ratings.default.global"),
            Ok(vip),
            "kept across the restart"
        );
        assert_eq!(patient.metric("globaldns_registry_held_back"), 0.0);
    });

    west.start_apiserver();
    west.suite.exported_service("reviews", "default", &[]).await;
    tokio::task::block_in_place(|| {
        time_to_answer(&[&patient, &hasty], "reviews.default.global");
        time_to_answer(&[&hasty], "ratings.default.global");
        assert_eq!(peer_up(&patient, "west"), 1.0);
        assert_eq!(
            hasty.resolve("ratings.default.global"),
            Ok(vip),
            "back on its VIP"
        );
    });
}

/// Issue 15, item 4: deleting the peer Secret removes the peer and its
/// exports, through the shrink brake like any mass removal.
async fn deleted_secret(suite: &Suite) {
    let west = West::start(suite).await;
    suite.mesh_cluster("east", "192.0.2.10").await;
    west.suite.mesh_cluster("west", "198.51.100.20").await;
    for name in ["ratings", "reviews"] {
        west.suite.exported_service(name, "default", &[]).await;
    }
    tokio::task::block_in_place(|| join_peer(west.kubeconfig(), "west", &suite.env.kubeconfig));
    let east = suite
        .start(&suite.docs, "globaldns-0", "state-0", &["--shrink-hold=3s"])
        .await;
    tokio::task::block_in_place(|| {
        time_to_answer(&[&east], "ratings.default.global");
        time_to_answer(&[&east], "reviews.default.global");
    });
    suite
        .env
        .kubectl(
            &["-n", NAMESPACE, "delete", "secret", "globaldns-peer-west"],
            None,
        )
        .unwrap();
    tokio::task::block_in_place(|| {
        eventually(
            Duration::from_secs(20),
            "the brake holds the removal",
            || (east.metric("globaldns_registry_held_back") == 2.0).then_some(()),
        );
        assert!(matches!(
            east.resolve("ratings.default.global"),
            Ok(Some(_))
        ));
        eventually(Duration::from_secs(20), "west's exports are gone", || {
            (east.resolve("ratings.default.global")
                == Err(hickory_proto::op::ResponseCode::NXDomain)
                && east.resolve("reviews.default.global")
                    == Err(hickory_proto::op::ResponseCode::NXDomain))
            .then_some(())
        });
        let (_, metrics) = east.admin_get("/metrics");
        assert!(
            !metrics.contains("peer=\"west\""),
            "west is no peer any more"
        );
    });
}
