//! What every watch of globaldns shares: how it retries after an error,
//! and how a stream of changes becomes a few rebuilds.
//!
//! - **Retry** ([`retrying`]): exponential from 250 ms, at most 5 s apart,
//!   with jitter, reset by any success. kube's default (800 ms up to 30 s)
//!   kept a replica blind for up to half a minute after its API server came
//!   back, and a 410 Gone on the resumed watch cost a second full wait.
//!   Here a 410 relists at once: it says only that the watch's
//!   resourceVersion is too old, not that the server is in trouble.
//! - **Debounce** ([`Debounce`]): a rebuild waits until changes have been
//!   quiet for a moment, so a burst (a GitOps sync of 300 objects) is one
//!   rebuild, but never longer than a maximum after the first change it
//!   holds, so a stream of changes (an object patched every 100 ms)
//!   cannot starve it.
//! - **Settled** ([`Settled`]): both put together for a watch of one kind
//!   whose whole set is rebuilt each time (the owned ServiceEntries, the
//!   hand-written ones, the peer Secrets).

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First retry after an error.
pub const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest wait between retries, so a watch resumes within this of the API
/// server's return (plus the server's own answer).
pub const RETRY_MAX: Duration = Duration::from_secs(5);
/// Quiet time that ends a burst of changes.
pub const QUIET: Duration = Duration::from_millis(200);
/// Longest a change waits for its rebuild under a constant stream of others.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// A watcher stream that retries as described in the module docs. Errors
/// still come through (to be logged); the stream never ends by itself.
pub fn retrying<S, K>(stream: S) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let gone = Arc::new(AtomicBool::new(false));
    let progressed = Arc::new(AtomicBool::new(false));
    let (gone_flag, progress_flag) = (gone.clone(), progressed.clone());
    stream
        .inspect(move |event| match event {
            Err(e) => gone_flag.store(is_gone(e), Ordering::Relaxed),
            // The watcher says Init before it sends its list request: not
            // an answer from the server (see Retry::reset).
            Ok(watcher::Event::Init) => {}
            Ok(_) => progress_flag.store(true, Ordering::Relaxed),
        })
        .backoff(Retry {
            gone,
            progressed,
            inner: exponential(),
        })
}

/// Whether `error` is a 410 Gone: the resourceVersion a watch resumed from
/// is no longer in the server's window, and a relist is the cure.
pub fn is_gone(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// Jitter adds up to the wait itself (backon: `d + d × U[0,1)`), so the
/// schedule doubles from half the bounds.
fn exponential() -> kube::runtime::watcher::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(RETRY_MIN / 2)
        .with_max_delay(RETRY_MAX / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

/// Exponential, except right after a 410.
struct Retry {
    gone: Arc<AtomicBool>,
    /// The server answered something since the last reset.
    progressed: Arc<AtomicBool>,
    inner: kube::runtime::watcher::ExponentialBackoff,
}

impl Iterator for Retry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.gone.swap(false, Ordering::Relaxed) {
            return Some(Duration::ZERO);
        }
        self.inner.next()
    }
}

impl Backoff for Retry {
    /// kube resets the backoff on every `Ok` item, and its watcher yields
    /// `Ok(Init)` before each list request: a server that refuses every
    /// list was retried every 125–250 ms, for ever (found with a peer
    /// cluster down at start). Only an answer from the server resets it.
    fn reset(&mut self) {
        if self.progressed.swap(false, Ordering::Relaxed) {
            self.inner.reset();
        }
    }
}

/// When the changes gathered so far are due for a rebuild: [`QUIET`] after
/// the last one, but at most [`MAX_WAIT`] after the first.
#[derive(Debug)]
pub struct Debounce {
    quiet: Duration,
    max_wait: Duration,
    /// The first and the last change not yet rebuilt.
    pending: Option<(Instant, Instant)>,
}

impl Default for Debounce {
    fn default() -> Self {
        Self::new(QUIET, MAX_WAIT)
    }
}

impl Debounce {
    pub fn new(quiet: Duration, max_wait: Duration) -> Self {
        Self {
            quiet,
            max_wait,
            pending: None,
        }
    }

    /// Notes a change now.
    pub fn touch(&mut self) {
        let now = Instant::now();
        self.pending = Some(match self.pending {
            Some((first, _)) => (first, now),
            None => (now, now),
        });
    }

    /// Whether changes wait for a rebuild.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// When the rebuild is due, if changes wait.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending
            .map(|(first, last)| (last + self.quiet).min(first + self.max_wait))
    }

    /// Waits until the rebuild is due (forever when nothing waits), then
    /// forgets the changes: the caller rebuilds.
    pub async fn due(&mut self) {
        match self.deadline() {
            Some(at) => {
                tokio::time::sleep_until(at).await;
                self.pending = None;
            }
            None => std::future::pending().await,
        }
    }
}

/// A watch of one kind reflected into a [`Store`], awaited settled state by
/// settled state: the store once the first full list is in, then once
/// after each burst of changes ([`Debounce`]). The watch retries as
/// [`retrying`] does; each error is logged as `watching {what}: {error}`.
pub struct Settled<K>
where
    K: kube::Resource + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    events: BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>,
    listed: bool,
    debounce: Debounce,
    what: String,
}

impl<K> Settled<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    /// Starts watching what `config` selects of `api`; `what` names it in
    /// the log (e.g. "peer Secrets in globaldns").
    pub fn new(
        api: Api<K>,
        config: watcher::Config,
        dyntype: K::DynamicType,
        what: String,
    ) -> Self {
        let writer = reflector::store::Writer::new(dyntype);
        let store = writer.as_reader();
        let events = reflector::reflector(writer, retrying(watcher::watcher(api, config))).boxed();
        Self {
            store,
            events,
            listed: false,
            debounce: Debounce::default(),
            what,
        }
    }

    /// Waits for the next settled state and returns the store as it is
    /// then; `None` once `shutdown` is cancelled or the watch has ended.
    pub async fn next(&mut self, shutdown: &CancellationToken) -> Option<&Store<K>> {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                event = self.events.next() => match event {
                    Some(Ok(watcher::Event::InitDone)) => {
                        self.listed = true;
                        self.debounce.touch();
                    }
                    Some(Ok(_)) => self.debounce.touch(),
                    Some(Err(e)) => tracing::warn!("watching {}: {e}", self.what),
                    None => return None,
                },
                _ = self.debounce.due(), if self.listed => return Some(&self.store),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10: with another object patched every 100 ms, a 200 ms
    /// debounce that restarts on every change never fired. Changes now wait
    /// at most MAX_WAIT.
    #[tokio::test(start_paused = true)]
    async fn a_constant_stream_of_changes_is_rebuilt_every_max_wait() {
        let mut debounce = Debounce::default();
        let start = Instant::now();
        let mut rebuilds = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while start.elapsed() < Duration::from_secs(5) {
            tokio::select! {
                _ = tick.tick() => debounce.touch(),
                _ = debounce.due() => rebuilds.push(start.elapsed()),
            }
        }
        assert!(rebuilds.len() >= 4, "{rebuilds:?}");
        for pair in rebuilds.windows(2) {
            assert!(
                pair[1] - pair[0] <= MAX_WAIT + Duration::from_millis(100),
                "{rebuilds:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_rebuild_after_it_goes_quiet() {
        let mut debounce = Debounce::default();
        assert!(!debounce.is_pending());
        let start = Instant::now();
        for _ in 0..5 {
            debounce.touch();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        debounce.due().await;
        // The last change came at 80 ms; quiet for 200 ms after it.
        assert_eq!(start.elapsed(), Duration::from_millis(280));
        assert!(!debounce.is_pending());
    }

    /// Found with a peer down at start: kube's watcher says `Init` before
    /// each list request, and kube resets the backoff on any `Ok`, so the
    /// retries never grew past 250 ms. Ten refused lists now take the
    /// growing waits (over 5 s of paused time; about 2 s if reset).
    #[tokio::test(start_paused = true)]
    async fn refused_lists_back_off_although_each_begins_with_init() {
        let refused = || {
            let status =
                kube::core::Status::failure("unavailable", "ServiceUnavailable").with_code(503);
            Err::<watcher::Event<()>, _>(watcher::Error::WatchError(Box::new(status)))
        };
        let events =
            futures::stream::iter((0..10).flat_map(move |_| [Ok(watcher::Event::Init), refused()]));
        let start = Instant::now();
        let errors = retrying(events)
            .filter(|e| std::future::ready(e.is_err()))
            .count()
            .await;
        assert_eq!(errors, 10);
        assert!(
            start.elapsed() > Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_410_retries_at_once_and_other_errors_back_off() {
        let gone = Arc::new(AtomicBool::new(false));
        let mut retry = Retry {
            gone: gone.clone(),
            progressed: Arc::new(AtomicBool::new(false)),
            inner: exponential(),
        };
        let first = retry.next().unwrap();
        assert!(first >= RETRY_MIN / 2 && first < RETRY_MIN, "{first:?}");
        gone.store(true, Ordering::Relaxed);
        assert_eq!(retry.next(), Some(Duration::ZERO));
        // Many failures later, the wait stays bounded.
        let longest = (0..50).filter_map(|_| retry.next()).max().unwrap();
        assert!(longest < RETRY_MAX, "{longest:?}");
        let status =
            kube::core::Status::failure("too old resource version", "Expired").with_code(410);
        assert!(is_gone(&watcher::Error::WatchError(Box::new(status))));
    }
}
