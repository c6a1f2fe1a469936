//! Drop-in mode's series (`globaldns_dropin_*`): hosts the registry and
//! hand-written ServiceEntries both claim. Set by the controller.

use std::sync::atomic::AtomicU64;

use super::plain;

/// The series of drop-in mode.
#[derive(Default)]
pub struct DropinSeries {
    pub conflicts: AtomicU64,
    /// Registry hosts Istio 1.30+ routes by a hand-written ServiceEntry for.
    pub istio_prefers_hand_written: AtomicU64,
}

impl DropinSeries {
    /// Writes the series to `out`.
    pub(super) fn render(&self, out: &mut String) {
        plain(
            out,
            &[
                (
                    "globaldns_dropin_conflicts",
                    "gauge",
                    "Hosts claimed by the registry and a hand-written ServiceEntry, or by two hand-written ones.",
                    &self.conflicts,
                ),
                (
                    "globaldns_dropin_istio_prefers_hand_written",
                    "gauge",
                    "Registry hosts a hand-written ServiceEntry claims too, older than globaldns's own, so Istio 1.30+ routes by the hand-written one until it is deleted (shown by explain).",
                    &self.istio_prefers_hand_written,
                ),
            ],
        );
    }
}
