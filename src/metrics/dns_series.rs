//! The DNS server's series (`globaldns_dns_*`): messages answered by
//! question type, response code and transport; connections refused at the
//! cap; the answer latency histogram. Counted on the query path, so every
//! series is an `AtomicU64` in a fixed array: no lock, no allocation.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::header;

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

/// The series the DNS server counts.
#[derive(Default)]
pub struct DnsSeries {
    queries: [[[AtomicU64; RCODE_SLOTS]; QTYPES.len()]; VIAS.len()],
    /// Connections closed as soon as accepted, at the cap, by transport.
    connections_refused: [AtomicU64; VIAS.len()],
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
}

impl DnsSeries {
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

    /// Writes the series to `out`: a query series only once it counted
    /// one, the refused connections by transport, the histogram.
    pub(super) fn render(&self, out: &mut String) {
        header(
            out,
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
            out,
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
        self.render_latency(out);
    }

    fn render_latency(&self, out: &mut String) {
        header(
            out,
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
    }
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
