//! Allocations per query, counted by a global allocator that counts per
//! thread. The fast path (and the UDP worker around it) must not allocate
//! at all; the general path's count is printed for docs/benchmarks.md.
//!
//! A test binary of its own, as it replaces the global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use globaldns::dns::fast;
use globaldns::dns::respond::{Transport, respond};
use globaldns::dns::udp;
use globaldns::dns::zone::{HostData, ZoneSet, ZoneSetBuilder};
use tokio_util::sync::CancellationToken;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn zones() -> ZoneSet {
    let mut set = ZoneSetBuilder::new(1, 30, 100);
    set.zone("global").unwrap();
    // A zone in the Multi-Cluster Services form takes the same path.
    set.clusterset_zone("clusterset.local").unwrap();
    for i in 0..100u8 {
        let addr = IpAddr::from([240, 0, 0, i + 1]);
        set.add_host(&HostData {
            host: &format!("svc{i}.ns.{}", zone_of(i.into())),
            addresses: &[addr],
            ports: &[],
        })
        .unwrap();
    }
    set.build()
}

/// The host suffix of query `i`: every fourth in the clusterset zone.
fn zone_of(i: u16) -> &'static str {
    if i % 4 == 3 {
        "svc.clusterset.local"
    } else {
        "global"
    }
}

/// The benchmark's mix: A hits, AAAA for known names (NODATA), unknown
/// names (NXDOMAIN); with and without EDNS.
fn queries() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..100u16 {
        let zone = zone_of(i);
        let (name, qtype) = match i % 10 {
            8 => (format!("svc{i}.ns.{zone}"), 28u16),
            9 => (format!("unknown{i}.ns.{zone}"), 1),
            _ => (format!("svc{i}.ns.{zone}"), 1),
        };
        let mut q = i.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(i % 2 == 0)]);
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
        if i % 2 == 0 {
            q.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
        }
        out.push(q);
    }
    out
}

#[test]
fn the_fast_path_does_not_allocate() {
    let zones = zones();
    let queries = queries();
    let mut out = [0u8; 1232];
    let before = allocations();
    for query in &queries {
        assert!(fast::respond(&zones, query, Transport::Udp, &mut out).is_some());
    }
    assert_eq!(allocations() - before, 0);

    let before = allocations();
    for query in &queries {
        respond(Some(&zones), query, Transport::Udp).unwrap();
    }
    let general = (allocations() - before) as f64 / queries.len() as f64;
    println!("general path: {general:.1} allocations per query");
    assert!(general > 0.0, "the counter counts");
}

/// Serves `count` rounds of the query mix through a real UDP worker and
/// returns the allocations made on the worker's thread.
fn worker_allocations(rounds: usize) -> u64 {
    let published = Arc::new(ArcSwapOption::from_pointee(zones()));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(udp::SHUTDOWN_POLL)).unwrap();
    let addr = socket.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let worker = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || {
            udp::serve(socket, published, Default::default(), shutdown);
            allocations()
        })
    };
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1500];
    // One query first, so that both runs include whatever the first
    // query of a thread sets up (arc-swap's per-thread slot).
    let queries = queries();
    for query in std::iter::once(&queries[0]).chain(queries.iter().cycle().take(rounds)) {
        client.send_to(query, addr).unwrap();
        let (len, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(buf[..2], query[..2], "answer to the query sent");
        assert!(len > 12);
    }
    shutdown.cancel();
    worker.join().unwrap()
}

#[test]
fn a_udp_worker_does_not_allocate_per_query() {
    // The first worker of the process also sets up arc-swap's global slot
    // list (a node that later threads reuse): not part of either count.
    worker_allocations(0);
    let base = worker_allocations(0);
    let loaded = worker_allocations(2_000);
    assert_eq!(
        loaded,
        base,
        "2,000 fast-path queries allocated {} times",
        loaded as i64 - base as i64
    );
}
