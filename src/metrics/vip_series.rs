//! The VIP pool's series (`globaldns_vip_*`), set by the controller after
//! each allocation pass.

use std::sync::atomic::AtomicU64;

use super::plain;

/// The series of the VIP allocator's state.
#[derive(Default)]
pub struct VipSeries {
    pub pool_size_v4: AtomicU64,
    pub pool_size_v6: AtomicU64,
    pub allocated_v4: AtomicU64,
    pub allocated_v6: AtomicU64,
    pub quarantined: AtomicU64,
    /// Hosts on a VIP that is neither their first choice nor pinned.
    pub not_first_choice: AtomicU64,
    pub followed: AtomicU64,
    pub pins_moved: AtomicU64,
}

impl VipSeries {
    /// Writes the series to `out`.
    pub(super) fn render(&self, out: &mut String) {
        plain(
            out,
            &[
                (
                    "globaldns_vip_pool_size{family=\"ipv4\"}",
                    "gauge",
                    "Addresses the VIP range can hand out.",
                    &self.pool_size_v4,
                ),
                (
                    "globaldns_vip_pool_size{family=\"ipv6\"}",
                    "",
                    "",
                    &self.pool_size_v6,
                ),
                (
                    "globaldns_vip_allocated{family=\"ipv4\"}",
                    "gauge",
                    "VIPs held by hosts.",
                    &self.allocated_v4,
                ),
                (
                    "globaldns_vip_allocated{family=\"ipv6\"}",
                    "",
                    "",
                    &self.allocated_v6,
                ),
                (
                    "globaldns_vip_quarantined",
                    "gauge",
                    "Released VIPs held back from other hosts.",
                    &self.quarantined,
                ),
                (
                    "globaldns_vip_not_first_choice",
                    "gauge",
                    "Hosts on a VIP that is neither their first choice nor pinned: where another cluster on the same registry may have given a different VIP.",
                    &self.not_first_choice,
                ),
                (
                    "globaldns_vip_followed_total",
                    "counter",
                    "Hosts moved to the VIP their owned ServiceEntry records, away from another this replica had given them.",
                    &self.followed,
                ),
                (
                    "globaldns_vip_pins_moved_total",
                    "counter",
                    "Pinned addresses that moved to another host because the pin zone (the served zone that sorts first) changed.",
                    &self.pins_moved,
                ),
            ],
        );
    }
}
