//! Prometheus metrics (design §6), counted without a lock or an allocation
//! on the query path: every series is an `AtomicU64` in fixed arrays, and
//! the text exposition is written here on scrape.
//!
//! Not prometheus-client: its `Histogram` takes a mutex on every
//! observation, which the query path must not.
//!
//! Each subsystem owns its series, and renders them ([`DnsSeries`],
//! [`RegistrySeries`], [`VipSeries`], [`SyncSeries`], [`DropinSeries`],
//! [`PeerSeries`], [`GatewaySeries`]); [`Metrics`] composes them.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

mod dns_series;
mod dropin_series;
mod gateway_series;
mod peer_series;
mod registry_series;
mod sync_series;
mod vip_series;

pub use dns_series::{DnsSeries, Via};
pub use dropin_series::DropinSeries;
pub use gateway_series::{GatewayKey, GatewaySeries, GatewayStatus};
pub use peer_series::{PeerSeries, PeerStatus};
pub use registry_series::RegistrySeries;
pub use sync_series::{SYNC_FAILURE_REASONS, SyncSeries};
pub use vip_series::VipSeries;

/// Every series globaldns exports, each subsystem's in its own part: the
/// subsystem sets them, and renders them.
#[derive(Default)]
pub struct Metrics {
    pub dns: DnsSeries,
    pub registry: RegistrySeries,
    pub vip: VipSeries,
    pub sync: SyncSeries,
    pub dropin: DropinSeries,
    pub peers: PeerSeries,
    pub gateways: GatewaySeries,
}

impl Metrics {
    /// The Prometheus text exposition (version 0.0.4). The families come
    /// in the order they always have (the sync's failures by reason after
    /// the peers'), the gateways' last (added by issue 27), so that a
    /// scrape is byte for byte what it was before them.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.dns.render(&mut out);
        self.registry.render(&mut out);
        self.vip.render(&mut out);
        self.sync.render(&mut out);
        self.dropin.render(&mut out);
        self.peers.render(&mut out);
        self.sync.render_failures(&mut out);
        self.gateways.render(&mut out);
        out
    }
}

/// The `# HELP` and `# TYPE` lines of family `name`.
pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A series of one value: its name (with its labels, if any), its type and
/// help text (both empty for a further series of the family just written),
/// and its value.
type Plain<'a> = (&'a str, &'a str, &'a str, &'a AtomicU64);

/// Writes `series` in order, each family's header before its first series.
fn plain(out: &mut String, series: &[Plain]) {
    for (name, kind, help, value) in series {
        if !kind.is_empty() {
            let base = name.split('{').next().unwrap_or(name);
            header(out, base, kind, help);
        }
        let _ = writeln!(out, "{name} {}", value.load(Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::mesh::GatewayKey;
    use crate::mesh::gateway_health::GatewayStatus;

    fn query(qtype: u16) -> Vec<u8> {
        let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 6];
        q.extend_from_slice(b"global");
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn queries_are_counted_by_type_rcode_and_transport() {
        let metrics = Metrics::default();
        let mut nx = query(1);
        nx[2] |= 0x80;
        nx[3] = 3;
        metrics
            .dns
            .query(Via::Udp, &query(1), &nx, Duration::from_micros(30));
        metrics
            .dns
            .query(Via::Udp, &query(1), &nx, Duration::from_micros(30));
        metrics
            .dns
            .query(Via::Grpc, &query(99), &query(99), Duration::from_millis(2));
        metrics
            .dns
            .query(Via::Tcp, &[1, 2], &[], Duration::from_secs(1));
        let text = metrics.render();
        assert!(
            text.contains(
                "globaldns_dns_queries_total{qtype=\"A\",rcode=\"NXDOMAIN\",transport=\"udp\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "globaldns_dns_queries_total{qtype=\"other\",rcode=\"NOERROR\",transport=\"grpc\"} 1"
        ));
        assert!(text.contains(
            "globaldns_dns_queries_total{qtype=\"other\",rcode=\"other\",transport=\"tcp\"} 1"
        ));
        assert!(
            text.contains("globaldns_dns_query_duration_seconds_bucket{le=\"0.00005\"} 2"),
            "{text}"
        );
        assert!(text.contains("globaldns_dns_query_duration_seconds_bucket{le=\"0.0025\"} 3"));
        assert!(text.contains("globaldns_dns_query_duration_seconds_bucket{le=\"+Inf\"} 4"));
        assert!(text.contains("# TYPE globaldns_registry_reloads_total counter"));
        assert!(text.contains("globaldns_registry_reloads_total{result=\"failure\"} 0"));
    }
    /// Issue 26: the exposition is byte for byte what it was before the
    /// series were split by subsystem (`exposition.txt` was written by the
    /// single-struct `render` of commit 257ea61): every series set to a
    /// value of its own, three peers in different states. Issue 27 changed
    /// one help text (`globaldns_registry_hosts`) and appended the
    /// gateways' families, with two gateways, one withdrawn.
    #[test]
    fn the_exposition_is_byte_identical_to_the_recorded_one() {
        let metrics = Metrics::default();
        let mut value = 0;
        let mut next = || {
            value += 1;
            value
        };
        let a = query(1);
        let mut nx = query(28);
        nx[3] = 3;
        metrics
            .dns
            .query(Via::Udp, &a, &a, Duration::from_micros(20));
        metrics
            .dns
            .query(Via::Tcp, &nx, &nx, Duration::from_millis(3));
        metrics
            .dns
            .query(Via::Grpc, &query(33), &query(33), Duration::from_secs(1));
        metrics
            .dns
            .connections_refused(Via::Tcp)
            .store(next(), Relaxed);
        metrics
            .dns
            .connections_refused(Via::Grpc)
            .store(next(), Relaxed);
        for series in [
            &metrics.registry.hosts,
            &metrics.registry.hosts_left_out,
            &metrics.registry.objects_skipped,
            &metrics.registry.dangling_exports,
            &metrics.registry.conflicts,
            &metrics.registry.reloads_ok,
            &metrics.registry.reloads_failed,
            &metrics.registry.last_reload_seconds,
            &metrics.registry.held_back,
            &metrics.vip.pool_size_v4,
            &metrics.vip.pool_size_v6,
            &metrics.vip.allocated_v4,
            &metrics.vip.allocated_v6,
            &metrics.vip.quarantined,
            &metrics.vip.not_first_choice,
            &metrics.vip.followed,
            &metrics.vip.pins_moved,
            &metrics.sync.passes,
            &metrics.sync.applied,
            &metrics.sync.deleted,
            &metrics.sync.failing,
            &metrics.sync.held_back,
            &metrics.sync.throttled,
            &metrics.sync.lease_lost,
            &metrics.dropin.conflicts,
            &metrics.dropin.istio_prefers_hand_written,
        ] {
            series.store(next(), Relaxed);
        }
        for series in &metrics.sync.failures {
            series.store(next(), Relaxed);
        }
        metrics.sync.leader.store(1, Relaxed);
        metrics.peers.status.lock().unwrap().extend([
            (
                "north".to_string(),
                PeerStatus {
                    namespace: "globaldns".to_string(),
                    listed: true,
                    mesh_cluster: true,
                    ..PeerStatus::default()
                },
            ),
            (
                "south".to_string(),
                PeerStatus {
                    namespace: "globaldns".to_string(),
                    listed: true,
                    mesh_cluster: false,
                    error: Some("connection refused".to_string()),
                    unreachable_for: Some(Duration::from_secs(42)),
                    dropped: false,
                },
            ),
            ("west".to_string(), PeerStatus::default()),
        ]);
        let up = |up: bool| GatewayStatus {
            up,
            consecutive_failures: u32::from(!up) * 3,
            consecutive_successes: u32::from(up) * 2,
            last_error: (!up).then(|| "connect: connection refused".to_string()),
            since: std::time::SystemTime::UNIX_EPOCH,
        };
        metrics.gateways.status.lock().unwrap().extend([
            (GatewayKey::new("west", "198.51.100.20", 15443), up(true)),
            (
                GatewayKey::new("west", "gw.west.example.com", 15443),
                up(false),
            ),
        ]);
        let text = metrics.render();
        assert_eq!(text, include_str!("metrics/exposition.txt"));
    }
}
