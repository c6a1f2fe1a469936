//! Live heap of each part of a snapshot, for a registry file:
//!
//!     cargo run --release --example memprobe -- REGISTRY
//!
//! Builds what `serve` builds (registry, allocation table with IPv4 and
//! IPv6 VIPs, name table) and prints the bytes each holds, counted as glibc
//! malloc chunks (request + 8, rounded up to 16, at least 32), which is what
//! resident memory pays, and the highest it went during each step (what
//! malloc keeps as resident afterwards, mostly). The transient `wants`
//! list is shown and dropped. `(file)` is the part of `registry` the file
//! source keeps to read the next version by what changed; `leased` the
//! index of the addresses in use that a change's allocations probe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use globaldns::vip::{Allocator, DEFAULT_V4_RANGE, Family, Table, VipRange};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn add(bytes: isize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
}

fn chunk(size: usize) -> isize {
    ((size + 8 + 15) & !15).max(32) as isize
}

// SAFETY: every call is passed straight to the system allocator; only a
// counter is updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(chunk(layout.size()));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-chunk(layout.size()));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(chunk(new_size) - chunk(layout.size()));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and prints how much more is live afterwards, and how much
/// more was live at the step's peak.
fn measure<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let value = f();
    let after = LIVE.load(Relaxed);
    let peak = PEAK.load(Relaxed);
    println!(
        "{what:<12} {:>8.1} MB live, {:>8.1} MB at its peak",
        (after - before) as f64 / 1e6,
        (peak - before) as f64 / 1e6
    );
    value
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: memprobe REGISTRY");
    let text = std::fs::read_to_string(&path).expect("registry readable");
    let zones = vec!["global".to_string()];
    let (registry, loaded) = measure("registry", || {
        globaldns::registry::file::reload::load(&text, &path, &zones).expect("a valid registry")
    });
    drop(text);
    let allocator = Allocator {
        v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
        v6: Some(VipRange::new("fd00:6c6f:6261:6c00::/64".parse().unwrap(), Family::V6).unwrap()),
        quarantine: 600,
    };
    let wants = measure("(wants)", || {
        globaldns::index::wants(&registry, &zones, false)
    });
    let mut table = Table::default();
    measure("table", || {
        allocator.reconcile_with(&mut table, &wants, 0, &mut |_| {})
    });
    drop(wants);
    let leased = measure("leased", || globaldns::vip::Leased::of(&table));
    let set = measure("name table", || {
        globaldns::index::zones(&registry, &zones, false, &allocator, &table, &[], 30, &[])
            .expect("a snapshot")
            .zones
    });
    let total = LIVE.load(Relaxed);
    // What the file source keeps to read the next version by what changed
    // (entry hashes and counts; its services are the registry's): part of
    // `registry` above, shown apart by what dropping it frees.
    drop(loaded);
    println!(
        "{:<12} {:>8.1} MB of it",
        "(file)",
        (total - LIVE.load(Relaxed)) as f64 / 1e6
    );
    let _ = &leased;
    println!(
        "{} services, {} names: {:.1} MB live, {:.0} bytes a service",
        registry.services.len(),
        set.len(),
        total as f64 / 1e6,
        total as f64 / registry.services.len().max(1) as f64
    );
}
