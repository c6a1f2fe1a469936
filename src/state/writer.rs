//! The last-known-good registry, written by a thread of its own: after a
//! change is served, the controller hands the version over and goes on;
//! a version still waiting when a newer one comes is replaced by it, so
//! a burst of changes costs one write. At 100,000 services a write takes
//! about 80 ms, which no longer sits between one change and the next.
//!
//! After each write the thread rests [`REST`] times as long as the write
//! took (at most [`MOST_REST`]) before it takes the next version, so that
//! it uses at most a quarter of a core however often the registry changes:
//! at a million services a write takes about a second, and a stream of
//! edits kept one of two cores busy writing versions that the next edit
//! replaced. The file then lags the served registry by up to four writes'
//! time (about 0.3 s at 100,000 services, 4 s at a million).
//!
//! The file is written atomically as before, so a crash leaves the last
//! version written, whole: at worst one older than the one served, which
//! is what answers until the registry source is read again (design §4).
//! Dropping the writer writes what waits at once, then stops the thread;
//! [`LastGoodWriter::flush`] cuts a rest short too.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{LastGood, StateDir};

/// What the thread and its owner share.
#[derive(Default)]
struct Slot {
    /// The newest version not yet written.
    waiting: Option<LastGood>,
    /// A version is being written.
    writing: bool,
    stop: bool,
    /// Callers of [`LastGoodWriter::flush`] waiting: no rest.
    flushing: usize,
}

/// How many times as long as a write the thread rests after it.
pub const REST: u32 = 3;
/// The longest rest.
pub const MOST_REST: Duration = Duration::from_secs(30);

/// The rest after a write that took `write`.
fn rest_after(write: Duration) -> Duration {
    write.saturating_mul(REST).min(MOST_REST)
}

/// The thread writing the last-known-good registry.
pub struct LastGoodWriter {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl LastGoodWriter {
    /// Starts the thread writing into `state`.
    pub fn start(state: StateDir) -> Self {
        Self::resting(state, rest_after)
    }

    /// Starts the thread writing into `state`, resting `rest(write)` after
    /// a write that took `write`.
    pub(crate) fn resting(state: StateDir, rest: fn(Duration) -> Duration) -> Self {
        let shared = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("globaldns-last-good".into())
            .spawn(move || run(&state, &theirs, rest))
            .inspect_err(|e| tracing::error!("cannot start the last-known-good writer: {e}"))
            .ok();
        Self { shared, thread }
    }

    /// Hands `last_good` over, replacing a version still waiting.
    pub fn submit(&self, last_good: LastGood) {
        let (slot, wake) = &*self.shared;
        slot.lock().unwrap_or_else(PoisonError::into_inner).waiting = Some(last_good);
        wake.notify_all();
    }

    /// Waits until every version handed over is written, cutting the
    /// thread's rest short.
    pub fn flush(&self) {
        let (slot, wake) = &*self.shared;
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        slot.flushing += 1;
        wake.notify_all();
        while self.thread.is_some() && (slot.waiting.is_some() || slot.writing) {
            slot = wake.wait(slot).unwrap_or_else(PoisonError::into_inner);
        }
        slot.flushing -= 1;
    }
}

impl Drop for LastGoodWriter {
    fn drop(&mut self) {
        {
            let (slot, wake) = &*self.shared;
            slot.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
            wake.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(state: &StateDir, shared: &(Mutex<Slot>, Condvar), rest: fn(Duration) -> Duration) {
    let (slot, wake) = shared;
    let mut rested_until = Instant::now();
    loop {
        let last_good = {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                let now = Instant::now();
                if now < rested_until && !slot.stop && slot.flushing == 0 {
                    slot = wake
                        .wait_timeout(slot, rested_until - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                }
                if let Some(last_good) = slot.waiting.take() {
                    slot.writing = true;
                    break last_good;
                }
                if slot.stop {
                    return;
                }
                slot = wake.wait(slot).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let started = std::time::Instant::now();
        if let Err(e) = state.save_last_good(&last_good) {
            tracing::error!("last-known-good registry not saved: {e}");
        }
        let took = started.elapsed();
        rested_until = Instant::now() + rest(took);
        tracing::debug!(
            ms = took.as_millis() as u64,
            serial = last_good.serial,
            "last-known-good registry saved"
        );
        drop(last_good);
        slot.lock().unwrap_or_else(PoisonError::into_inner).writing = false;
        wake.notify_all();
    }
}
