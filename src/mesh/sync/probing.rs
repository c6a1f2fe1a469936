//! The gateway probes while this replica holds the Lease (design §5,
//! gateway health): [`Probing`] starts the prober
//! ([`crate::mesh::gateway_health::run`]) when the replica becomes the
//! holder and stops it when it stops being one, hands it each registry the
//! sync renders, and gives the sync the gateways to withdraw. A new holder
//! starts with every gateway up: it withdraws one only after its own
//! probes fail.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::mesh::GatewayKey;
use crate::mesh::gateway_health::{self, HealthConfig};
use crate::metrics::Metrics;
use crate::registry::Registry;

/// The prober of one replica, running while it leads.
pub(super) struct Probing {
    /// `None`: probes are off (`--no-gateway-probes`).
    config: Option<HealthConfig>,
    local: String,
    metrics: Arc<Metrics>,
    registry: watch::Sender<Option<Arc<Registry>>>,
    /// While probing: the withdrawn gateways, and how to stop.
    running: Option<(watch::Receiver<BTreeSet<GatewayKey>>, CancellationToken)>,
}

impl Probing {
    /// Probes of the gateways of every cluster but `local`, by `config`.
    pub(super) fn new(config: Option<HealthConfig>, local: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            config,
            local: local.to_string(),
            metrics,
            registry: watch::Sender::new(None),
            running: None,
        }
    }

    /// Starts probing when `leader` and not yet probing; stops when not.
    pub(super) fn lead(&mut self, leader: bool, shutdown: &CancellationToken) {
        match (leader, &self.running, self.config) {
            (true, None, Some(config)) => {
                let (withdrawn_tx, withdrawn) = watch::channel(BTreeSet::new());
                let (status_tx, status) = watch::channel(Default::default());
                let stop = shutdown.child_token();
                let current = self.registry.subscribe();
                tokio::spawn(gateway_health::run(
                    config,
                    self.local.clone(),
                    self.registry.subscribe(),
                    // The URL the registry gives now, if any: a GET of it;
                    // else a TCP connect.
                    move |key: &GatewayKey| {
                        current
                            .borrow()
                            .as_deref()
                            .and_then(|r| gateway_health::readiness_url(r, key))
                    },
                    withdrawn_tx,
                    status_tx,
                    stop.clone(),
                ));
                tokio::spawn(report(status, self.metrics.clone(), stop.clone()));
                self.running = Some((withdrawn, stop));
            }
            (false, Some(_), _) => {
                if let Some((_, stop)) = self.running.take() {
                    stop.cancel();
                }
                self.metrics.gateways.status.lock().unwrap().clear();
            }
            _ => {}
        }
    }

    /// Hands the prober the registry the sync is about to render.
    pub(super) fn registry(&self, registry: &Registry) {
        if self.running.is_some() {
            self.registry.send_replace(Some(Arc::new(registry.clone())));
        }
    }

    /// The gateways to withdraw now (none while not probing).
    pub(super) fn withdrawn(&mut self) -> BTreeSet<GatewayKey> {
        match &mut self.running {
            Some((withdrawn, _)) => withdrawn.borrow_and_update().clone(),
            None => BTreeSet::new(),
        }
    }

    /// Resolves when the withdrawn gateways change; never while not
    /// probing.
    pub(super) async fn changed(&mut self) {
        if let Some((withdrawn, _)) = &mut self.running
            && withdrawn.changed().await.is_ok()
        {
            return;
        }
        std::future::pending().await
    }
}

impl Drop for Probing {
    /// The sync loop is over: so is the prober.
    fn drop(&mut self) {
        if let Some((_, stop)) = self.running.take() {
            stop.cancel();
        }
    }
}

/// Copies the prober's status into the metrics after each round, until
/// `stop`; then clears it.
async fn report(
    mut status: watch::Receiver<
        std::collections::BTreeMap<GatewayKey, gateway_health::GatewayStatus>,
    >,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = status.borrow_and_update().clone();
                *metrics.gateways.status.lock().unwrap() = now;
            }
        }
    }
    metrics.gateways.status.lock().unwrap().clear();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// East (local) and west, west's one gateway given by `west_gateway`
    /// (a YAML flow mapping), probed every 50 ms, withdrawn after 2
    /// failures.
    fn two_clusters(west_gateway: &str) -> (Registry, HealthConfig) {
        let text = format!(
            "clusters:
  - name: east
    gateways: [{{address: 127.0.0.2}}]
  - name: west
    gateways: [{west_gateway}]
services: []
"
        );
        let registry = crate::registry::load_str(&text, "t.yaml", &["global".into()]).unwrap();
        let config = HealthConfig {
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(200),
            unhealthy_after: 2,
            healthy_after: 1,
        };
        (registry, config)
    }

    /// The glue between the sync and the prober: nothing is probed until
    /// the replica leads; then a loopback gateway that stops listening is
    /// withdrawn (the sync is woken, the metrics say so), and giving up the
    /// Lease forgets it all.
    #[tokio::test]
    async fn probes_run_while_leading_and_their_withdrawals_wake_the_sync() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (registry, config) = two_clusters(&format!("{{address: 127.0.0.1, port: {port}}}"));
        let metrics = Arc::new(Metrics::default());
        let shutdown = CancellationToken::new();
        let mut probing = Probing::new(Some(config), "east", metrics.clone());
        probing.registry(&registry);
        assert!(probing.withdrawn().is_empty());

        probing.lead(true, &shutdown);
        probing.registry(&registry);
        let key = GatewayKey::new("west", "127.0.0.1", port);
        let seen = tokio::time::timeout(Duration::from_secs(5), async {
            while !metrics.gateways.status.lock().unwrap().contains_key(&key) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(seen.is_ok(), "west's gateway is probed");
        assert!(
            !metrics
                .gateways
                .status
                .lock()
                .unwrap()
                .keys()
                .any(|k| k.cluster == "east"),
            "the local cluster's gateways are not probed"
        );

        drop(listener);
        tokio::time::timeout(Duration::from_secs(5), probing.changed())
            .await
            .expect("the withdrawal wakes the sync");
        assert_eq!(probing.withdrawn(), BTreeSet::from([key.clone()]));
        assert!(!metrics.gateways.status.lock().unwrap()[&key].up);

        probing.lead(false, &shutdown);
        assert!(probing.withdrawn().is_empty());
        assert!(metrics.gateways.status.lock().unwrap().is_empty());
        shutdown.cancel();
    }

    /// A gateway whose registry entry gives a readiness URL is judged by
    /// it, not by its port: here the port accepts connections, the URL
    /// answers 503, and the gateway is withdrawn.
    #[tokio::test]
    async fn a_readiness_url_in_the_registry_decides_over_the_port() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = port_listener.local_addr().unwrap().port();
        let ready = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ready_address = ready.local_addr().unwrap();
        let answering = tokio::spawn(async move {
            // The gateway's port stays open (a TCP probe would pass).
            let _open = port_listener;
            loop {
                let Ok((mut stream, _)) = ready.accept().await else {
                    return;
                };
                let mut buffer = [0u8; 1024];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let (registry, config) = two_clusters(&format!(
            "{{address: 127.0.0.1, port: {port}, readinessUrl: 'http://{ready_address}/healthz/ready'}}"
        ));
        let metrics = Arc::new(Metrics::default());
        let shutdown = CancellationToken::new();
        let mut probing = Probing::new(Some(config), "east", metrics.clone());
        probing.lead(true, &shutdown);
        probing.registry(&registry);
        tokio::time::timeout(Duration::from_secs(5), probing.changed())
            .await
            .expect("the 503 withdraws the gateway");
        let key = GatewayKey::new("west", "127.0.0.1", port);
        assert_eq!(probing.withdrawn(), BTreeSet::from([key.clone()]));
        let status = metrics.gateways.status.lock().unwrap()[&key].clone();
        assert_eq!(
            status.last_error.as_deref(),
            Some(format!("GET http://{ready_address}/healthz/ready: status 503").as_str())
        );
        shutdown.cancel();
        answering.abort();
    }
}
