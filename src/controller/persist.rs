//! Writing the allocation table: whole after a full pass, the touched
//! hosts to the journal after a change (before it is served), and the
//! journal folded into the table file once it has grown (after).

use std::time::{Duration, Instant};

use super::{Controller, Tally};
use crate::dns::ZoneSet;
use crate::dns::zone::Parents;
use crate::registry::Registry;
use crate::state::{StateDir, StateError};
use crate::vip::Table;

/// The journal is folded into the table file once it is larger than this
/// many bytes plus [`JOURNAL_BYTES_PER_HOST`] per host: the table file is
/// about 150 bytes a host, so a change pays for its share of a rewrite.
const JOURNAL_BYTES: u64 = 1 << 20;
const JOURNAL_BYTES_PER_HOST: u64 = 40;

impl Controller {
    /// Writes what the reconcile changed: the whole table after a full
    /// pass, the hosts it touched (and the quarantine) to the journal after
    /// a change. Before the change is served, so no VIP is ever served that
    /// a restart would not find.
    pub(super) fn persist_table(&mut self, full: bool, tally: &Tally) {
        let written = write_table(self.state.as_ref(), &self.table, full, tally);
        self.table_written(written);
    }

    /// A full pass's zones of `registry`, built while the whole table is
    /// written beside them: on two cores a first start at 100,000
    /// services is served ~100 ms sooner. Both only read what the
    /// reconcile left; nothing is served before both are done. Returns the
    /// zones (`None` when they could not be built, which is reported) and
    /// how long the write took (zero when its writer panicked).
    pub(super) fn build_while_writing(
        &mut self,
        registry: &Registry,
        tally: &Tally,
    ) -> (Option<(ZoneSet, Parents)>, Duration) {
        let (written, built) = std::thread::scope(|scope| {
            let state = self.state.as_ref();
            let table = &self.table;
            let writing = scope.spawn(move || {
                let started = Instant::now();
                (write_table(state, table, true, tally), started.elapsed())
            });
            let built = self.zones_of(registry);
            (writing.join(), built)
        });
        let saved = match written {
            Ok((written, took)) => {
                self.table_written(written);
                took
            }
            Err(_) => {
                tracing::error!(
                    "allocation table not saved (VIPs still served): its writer panicked"
                );
                Duration::ZERO
            }
        };
        (self.take_built(built), saved)
    }

    /// Takes note of what [`write_table`] did.
    pub(super) fn table_written(&mut self, written: Option<Result<u64, StateError>>) {
        match written {
            Some(Ok(bytes)) => self.journal_bytes = bytes,
            Some(Err(e)) => {
                tracing::error!("allocation table not saved (VIPs still served): {e}")
            }
            None => {}
        }
    }

    /// Writes the whole table once the journal has grown past its share:
    /// after the change is served, so it delays none.
    pub(super) fn fold_journal(&mut self) {
        let Some(state) = &self.state else { return };
        let limit = JOURNAL_BYTES + JOURNAL_BYTES_PER_HOST * self.table.hosts.len() as u64;
        if self.journal_bytes <= limit {
            return;
        }
        let started = Instant::now();
        match state.save_table(&self.table) {
            Ok(()) => self.journal_bytes = 0,
            Err(e) => tracing::error!("allocation table not saved (its journal still is): {e}"),
        }
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "allocation journal folded into the table"
        );
    }
}

/// Writes what a reconcile changed to `state` (see
/// [`Controller::persist_table`]): `None` when there is nothing to write,
/// else the journal's size after it (0 after a whole table). A function of
/// its inputs alone, so that a full pass can write while it builds the
/// zones.
pub(super) fn write_table(
    state: Option<&StateDir>,
    table: &Table,
    full: bool,
    tally: &Tally,
) -> Option<Result<u64, StateError>> {
    let state = state?;
    if tally.changes == 0 && !tally.quarantine {
        return None;
    }
    Some(if full {
        state.save_table(table).map(|()| 0)
    } else {
        let hosts = tally.hosts.iter().map(String::as_str);
        state
            .journal_table(table, hosts, tally.quarantine)
            .map(|journaled| journaled.bytes)
    })
}
