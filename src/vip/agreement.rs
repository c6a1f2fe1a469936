//! How often two clusters on the same registry give a host the same VIP
//! without talking (design §3): one registry of `n` hosts allocated
//! through two different histories, all at once and in shuffled batches
//! with transient hosts coming and going, and the share of hosts that end
//! on the same VIP. The measurement behind the reference's sizing advice,
//! run by the tests (10,000 hosts) and by `bench/agreement.rs` at any size
//! and range.

use super::{Allocator, Family, Table, VipRange, Want};

/// The share (0 to 1) of `n` hosts on the same IPv4 VIP after the two
/// histories, in `range` (a CIDR; panics on one that is not a VIP range),
/// the shuffles seeded by `seed`.
pub fn agreement(range: &str, n: usize, seed: u64) -> f64 {
    let (hosts, first, second) = histories(range, n, seed);
    let same = hosts
        .iter()
        .filter(|h| v4(&first, h) == v4(&second, h))
        .count();
    same as f64 / n as f64
}

fn v4(table: &Table, host: &str) -> Option<std::net::IpAddr> {
    table.lease(host, Family::V4).map(|l| l.addr)
}

fn want(host: &str) -> Want {
    Want {
        host: host.into(),
        pinned: Vec::new(),
    }
}

/// The batches grow with `n` (up to 700 hosts at 10,000), so that the
/// second history takes as many steps at every size.
fn histories(range: &str, n: usize, seed: u64) -> (Vec<String>, Table, Table) {
    let a = Allocator {
        v4: VipRange::new(range.parse().expect("a CIDR"), Family::V4).expect("a VIP range"),
        v6: None,
        quarantine: 600,
    };
    let hosts: Vec<String> = (0..n)
        .map(|i| format!("service-{i}.team-{}.global", i % 97))
        .collect();

    let mut first = Table::default();
    a.reconcile(
        &mut first,
        &hosts.iter().map(|h| want(h)).collect::<Vec<_>>(),
        0,
    );

    let mut rng = SplitMix(seed);
    let mut order = hosts.clone();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut second = Table::default();
    let mut present: Vec<String> = Vec::new();
    let mut now = 0;
    let mut rest = order.as_slice();
    while !rest.is_empty() {
        let take = (rng.below(700 * n / 10_000) + 1).min(rest.len());
        present.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        // Transient hosts that come and go, taking and releasing VIPs.
        let transient: Vec<String> = (0..rng.below(50))
            .map(|_| format!("tmp-{}.scratch.global", rng.next()))
            .collect();
        let with: Vec<Want> = present.iter().chain(&transient).map(|h| want(h)).collect();
        a.reconcile(&mut second, &with, now);
        now += 60;
        let without: Vec<Want> = present.iter().map(|h| want(h)).collect();
        a.reconcile(&mut second, &without, now);
        now += 60;
    }
    (hosts, first, second)
}

/// SplitMix64: a small seeded generator, so the measurement is repeatable.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
