//! How many hosts two clusters give the same VIP without talking, at a
//! given size, in several ranges (design §3; the reference's sizing
//! advice). One registry of N hosts is allocated through two histories
//! (`globaldns::vip::agreement`); the share of hosts on the same VIP is
//! printed per range.
//!
//! `cargo run --release --example agreement -- [HOSTS] [RANGE...]`
//! (default: 200,000 hosts, the scale benchmark's 100,000 services each
//! exported by one cluster with its per-cluster name; ranges /12, /10,
//! /8, /6).

fn main() {
    let mut args = std::env::args().skip(1);
    let hosts: usize = args
        .next()
        .map(|n| n.parse().expect("HOSTS is a number"))
        .unwrap_or(200_000);
    let mut ranges: Vec<String> = args.collect();
    if ranges.is_empty() {
        ranges = ["240.0.0.0/12", "240.0.0.0/10", "240.0.0.0/8", "240.0.0.0/6"]
            .map(String::from)
            .to_vec();
    }
    for range in &ranges {
        let started = std::time::Instant::now();
        let share = globaldns::vip::agreement::agreement(range, hosts, 0x5eed);
        println!(
            "{hosts} hosts in {range}: {:.3}% on the same VIP ({:.1} s)",
            share * 100.0,
            started.elapsed().as_secs_f64()
        );
    }
}
