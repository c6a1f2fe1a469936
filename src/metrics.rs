//! Prometheus metrics (design §6), counted without a lock or an allocation
//! on the query path: every series is an `AtomicU64` in fixed arrays, and
//! the text exposition is written here on scrape.
//!
//! Not prometheus-client: its `Histogram` takes a mutex on every
//! observation, which the query path must not. The peers' series are in
//! [`federation`].

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

mod federation;
pub use federation::PeerStatus;

/// How a message arrived, for the `transport` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Udp,
    Tcp,
    Grpc,
}

const VIAS: [&str; 3] = ["udp", "tcp", "grpc"];
const QTYPES: [(u16, &str); 7] = [
    (1, "A"),
    (28, "AAAA"),
    (33, "SRV"),
    (6, "SOA"),
    (2, "NS"),
    (255, "ANY"),
    (0, "other"),
];
const RCODES: [&str; 9] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other", "other", "other",
];
/// Header RCODE values 0–5 have their own label; 6–15 share `other`
/// (NOTAUTH for an unknown TSIG key is 9).
const RCODE_SLOTS: usize = 7;
/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.1,
];

/// The reasons a sync write fails, as `globaldns_sync_failures_total`
/// labels them (the order of [`crate::mesh::sync::Reason::ALL`]).
pub const SYNC_FAILURE_REASONS: [&str; 5] =
    ["forbidden", "conflict", "invalid", "unavailable", "other"];

/// Every series globaldns exports.
#[derive(Default)]
pub struct Metrics {
    queries: [[[AtomicU64; RCODE_SLOTS]; QTYPES.len()]; VIAS.len()],
    /// Connections closed as soon as accepted, at the cap, by transport.
    connections_refused: [AtomicU64; VIAS.len()],
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    /// Gauges and counters set by the controller and the sync.
    pub hosts: AtomicU64,
    pub hosts_left_out: AtomicU64,
    pub registry_objects_skipped: AtomicU64,
    pub registry_dangling_exports: AtomicU64,
    /// Conflicts between clusters' views the merge decided (each with its
    /// winner), for explain.
    pub registry_conflicts: AtomicU64,
    pub registry_conflict_detail: std::sync::Mutex<Vec<String>>,
    /// Each peer cluster's state, by name.
    pub peers: std::sync::Mutex<std::collections::BTreeMap<String, PeerStatus>>,
    pub vip_pool_size_v4: AtomicU64,
    pub vip_pool_size_v6: AtomicU64,
    pub vips_allocated_v4: AtomicU64,
    pub vips_allocated_v6: AtomicU64,
    pub vips_quarantined: AtomicU64,
    pub vips_probed: AtomicU64,
    pub vips_followed: AtomicU64,
    pub pins_moved: AtomicU64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub last_reload_seconds: AtomicU64,
    pub registry_held_back: AtomicU64,
    pub sync_passes: AtomicU64,
    pub sync_applied: AtomicU64,
    pub sync_deleted: AtomicU64,
    /// Failed writes by reason, in [`SYNC_FAILURE_REASONS`] order.
    pub sync_failures: [AtomicU64; 5],
    /// Writes that failed in the last pass of this replica (0 when it is
    /// not the Lease holder).
    pub sync_failing: AtomicU64,
    /// What failed in the last pass, in one line (empty when nothing did):
    /// the detail `/readyz?verbose` shows.
    pub sync_detail: std::sync::Mutex<String>,
    pub sync_held_back: AtomicU64,
    pub sync_throttled: AtomicU64,
    pub sync_lease_lost: AtomicU64,
    pub dropin_conflicts: AtomicU64,
    pub dropin_istio_prefers_hand_written: AtomicU64,
}

impl Metrics {
    /// The counter of connections of `via` closed at the connection cap.
    pub fn connections_refused(&self, via: Via) -> &AtomicU64 {
        &self.connections_refused[via as usize]
    }

    /// Counts one answered message: its question type (from `query`), its
    /// response code (from `response`), and how long answering took.
    pub fn query(&self, via: Via, query: &[u8], response: &[u8], took: Duration) {
        let qtype = qtype_slot(query);
        let rcode = response.get(3).map_or(RCODE_SLOTS - 1, |b| {
            usize::from(b & 0x0F).min(RCODE_SLOTS - 1)
        });
        self.queries[via as usize][qtype][rcode].fetch_add(1, Relaxed);
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_ns.fetch_add(ns, Relaxed);
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "globaldns_dns_queries_total",
            "counter",
            "DNS messages answered, by question type, response code and transport.",
        );
        for (v, via) in VIAS.iter().enumerate() {
            for (q, (_, qtype)) in QTYPES.iter().enumerate() {
                for (r, rcode) in RCODES.iter().take(RCODE_SLOTS).enumerate() {
                    let n = self.queries[v][q][r].load(Relaxed);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "globaldns_dns_queries_total{{qtype=\"{qtype}\",rcode=\"{rcode}\",transport=\"{via}\"}} {n}"
                        );
                    }
                }
            }
        }
        header(
            &mut out,
            "globaldns_dns_connections_refused_total",
            "counter",
            "TCP and gRPC connections closed as soon as accepted because --tcp-max-connections were open.",
        );
        for via in [Via::Tcp, Via::Grpc] {
            let _ = writeln!(
                out,
                "globaldns_dns_connections_refused_total{{transport=\"{}\"}} {}",
                VIAS[via as usize],
                self.connections_refused(via).load(Relaxed)
            );
        }
        header(
            &mut out,
            "globaldns_dns_query_duration_seconds",
            "histogram",
            "Time from a message read to its answer written to the send buffer.",
        );
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "globaldns_dns_query_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Relaxed);
        let sum = self.latency_sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "globaldns_dns_query_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "globaldns_dns_query_duration_seconds_sum {sum}");
        let _ = writeln!(out, "globaldns_dns_query_duration_seconds_count {count}");

        for (name, kind, help, value) in [
            (
                "globaldns_registry_hosts",
                "gauge",
                "Hosts served (services × zones).",
                &self.hosts,
            ),
            (
                "globaldns_registry_hosts_left_out",
                "gauge",
                "Registry hosts not served because a name derived from them could not be built (each is logged as an error).",
                &self.hosts_left_out,
            ),
            (
                "globaldns_registry_objects_skipped",
                "gauge",
                "Registry resources left out because they do not decode or do not validate (each is logged as a warning).",
                &self.registry_objects_skipped,
            ),
            (
                "globaldns_registry_dangling_exports",
                "gauge",
                "exportedFrom entries of registry resources naming a MeshCluster that does not exist or was left out; the service is served from its other clusters.",
                &self.registry_dangling_exports,
            ),
            (
                "globaldns_registry_conflicts",
                "gauge",
                "Conflicts between clusters' descriptions the merge of a federated registry decided (shown by explain).",
                &self.registry_conflicts,
            ),
            (
                "globaldns_registry_reloads_total{result=\"success\"}",
                "counter",
                "Registry versions published or refused.",
                &self.reloads_ok,
            ),
            (
                "globaldns_registry_reloads_total{result=\"failure\"}",
                "",
                "",
                &self.reloads_failed,
            ),
            (
                "globaldns_registry_last_success_timestamp_seconds",
                "gauge",
                "When a registry was last published (Unix time).",
                &self.last_reload_seconds,
            ),
            (
                "globaldns_registry_held_back",
                "gauge",
                "Services a held-back registry version would remove (0: no version held).",
                &self.registry_held_back,
            ),
            (
                "globaldns_vip_pool_size{family=\"ipv4\"}",
                "gauge",
                "Addresses the VIP range can hand out.",
                &self.vip_pool_size_v4,
            ),
            (
                "globaldns_vip_pool_size{family=\"ipv6\"}",
                "",
                "",
                &self.vip_pool_size_v6,
            ),
            (
                "globaldns_vip_allocated{family=\"ipv4\"}",
                "gauge",
                "VIPs held by hosts.",
                &self.vips_allocated_v4,
            ),
            (
                "globaldns_vip_allocated{family=\"ipv6\"}",
                "",
                "",
                &self.vips_allocated_v6,
            ),
            (
                "globaldns_vip_quarantined",
                "gauge",
                "Released VIPs held back from other hosts.",
                &self.vips_quarantined,
            ),
            (
                "globaldns_vip_not_first_choice",
                "gauge",
                "Hosts on a VIP that is neither their first choice nor pinned: where another cluster on the same registry may have given a different VIP.",
                &self.vips_probed,
            ),
            (
                "globaldns_vip_followed_total",
                "counter",
                "Hosts moved to the VIP their owned ServiceEntry records, away from another this replica had given them.",
                &self.vips_followed,
            ),
            (
                "globaldns_vip_pins_moved_total",
                "counter",
                "Pinned addresses that moved to another host because the pin zone (the served zone that sorts first) changed.",
                &self.pins_moved,
            ),
            (
                "globaldns_sync_passes_total",
                "counter",
                "ServiceEntry sync passes run by the Lease holder.",
                &self.sync_passes,
            ),
            (
                "globaldns_sync_applies_total",
                "counter",
                "ServiceEntries applied.",
                &self.sync_applied,
            ),
            (
                "globaldns_sync_deletes_total",
                "counter",
                "Owned ServiceEntries deleted.",
                &self.sync_deleted,
            ),
            (
                "globaldns_sync_failing",
                "gauge",
                "Writes of Istio objects that failed in this replica's last sync pass (retried with backoff; 0 when all went through).",
                &self.sync_failing,
            ),
            (
                "globaldns_sync_held_back_deletions",
                "gauge",
                "Deletions the brake held back in the last pass.",
                &self.sync_held_back,
            ),
            (
                "globaldns_sync_throttled_total",
                "counter",
                "Writes the API server asked to wait (429) and that were tried again after the wait it gave.",
                &self.sync_throttled,
            ),
            (
                "globaldns_sync_lease_lost_total",
                "counter",
                "Sync passes stopped early because the Lease was lost mid-pass.",
                &self.sync_lease_lost,
            ),
            (
                "globaldns_dropin_conflicts",
                "gauge",
                "Hosts claimed by the registry and a hand-written ServiceEntry, or by two hand-written ones.",
                &self.dropin_conflicts,
            ),
            (
                "globaldns_dropin_istio_prefers_hand_written",
                "gauge",
                "Registry hosts a hand-written ServiceEntry claims too, older than globaldns's own, so Istio 1.30+ routes by the hand-written one until it is deleted (shown by explain).",
                &self.dropin_istio_prefers_hand_written,
            ),
        ] {
            if !kind.is_empty() {
                let base = name.split('{').next().unwrap_or(name);
                header(&mut out, base, kind, help);
            }
            let _ = writeln!(out, "{name} {}", value.load(Relaxed));
        }
        self.render_peers(&mut out);
        header(
            &mut out,
            "globaldns_sync_failures_total",
            "counter",
            "ServiceEntry applies and deletes that failed, by reason (forbidden, conflict, invalid, unavailable, other).",
        );
        for (reason, value) in SYNC_FAILURE_REASONS.iter().zip(&self.sync_failures) {
            let _ = writeln!(
                out,
                "globaldns_sync_failures_total{{reason=\"{reason}\"}} {}",
                value.load(Relaxed)
            );
        }
        out
    }
}

pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The slot of the question's type in `QTYPES`; `other` when the question
/// cannot be read.
fn qtype_slot(query: &[u8]) -> usize {
    let other = QTYPES.len() - 1;
    let mut at = 12;
    while let Some(&len) = query.get(at) {
        if len == 0 {
            let Some(t) = query.get(at + 1..at + 3) else {
                return other;
            };
            let qtype = u16::from_be_bytes([t[0], t[1]]);
            return QTYPES
                .iter()
                .position(|&(code, _)| code == qtype)
                .unwrap_or(other);
        }
        if len & 0xC0 != 0 {
            return other;
        }
        at += 1 + usize::from(len);
    }
    other
}

#[cfg(test)]
mod tests {
    use super::*;

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
        metrics.query(Via::Udp, &query(1), &nx, Duration::from_micros(30));
        metrics.query(Via::Udp, &query(1), &nx, Duration::from_micros(30));
        metrics.query(Via::Grpc, &query(99), &query(99), Duration::from_millis(2));
        metrics.query(Via::Tcp, &[1, 2], &[], Duration::from_secs(1));
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
    /// value of its own, two peers in different states.
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
        metrics.query(Via::Udp, &a, &a, Duration::from_micros(20));
        metrics.query(Via::Tcp, &nx, &nx, Duration::from_millis(3));
        metrics.query(Via::Grpc, &query(33), &query(33), Duration::from_secs(1));
        metrics.connections_refused(Via::Tcp).store(next(), Relaxed);
        metrics.connections_refused(Via::Grpc).store(next(), Relaxed);
        for series in [
            &metrics.hosts,
            &metrics.hosts_left_out,
            &metrics.registry_objects_skipped,
            &metrics.registry_dangling_exports,
            &metrics.registry_conflicts,
            &metrics.reloads_ok,
            &metrics.reloads_failed,
            &metrics.last_reload_seconds,
            &metrics.registry_held_back,
            &metrics.vip_pool_size_v4,
            &metrics.vip_pool_size_v6,
            &metrics.vips_allocated_v4,
            &metrics.vips_allocated_v6,
            &metrics.vips_quarantined,
            &metrics.vips_probed,
            &metrics.vips_followed,
            &metrics.pins_moved,
            &metrics.sync_passes,
            &metrics.sync_applied,
            &metrics.sync_deleted,
            &metrics.sync_failing,
            &metrics.sync_held_back,
            &metrics.sync_throttled,
            &metrics.sync_lease_lost,
            &metrics.dropin_conflicts,
            &metrics.dropin_istio_prefers_hand_written,
        ] {
            series.store(next(), Relaxed);
        }
        for series in &metrics.sync_failures {
            series.store(next(), Relaxed);
        }
        metrics.peers.lock().unwrap().extend([
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
        let text = metrics.render();
        assert_eq!(text, include_str!("metrics/exposition.txt"));
    }
}
