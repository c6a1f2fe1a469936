//! The file source: a registry file read, validated and re-read on change.
//!
//! Change detection polls the file's metadata (device, inode, size, mtime,
//! ctime), following symlinks. That catches both in-place writes and the way
//! Kubernetes updates a mounted ConfigMap: the `..data` symlink is swapped
//! atomically to a new directory, so the resolved file gets a new inode even
//! when its size and mtime happen to match. Polling a few times a second costs
//! one `stat`, and unlike inotify it keeps working when the watched directory
//! is replaced underneath it.
//!
//! A change is read once the metadata has stayed the same for one whole
//! poll interval, so a file caught half-way through an in-place write is not
//! read; or once it has kept changing for [`MAX_WAIT`], so that a file
//! rewritten more often than the interval is still read. What is read
//! anyway half-written is refused by validation, and a half-written file
//! that parses as a much smaller registry is held by the shrink brake
//! ([`super::brake`]); the last good registry keeps serving.
//!
//! A rename (a ConfigMap's `..data` swap, an editor's write-and-rename)
//! gives the path a new inode holding the whole new version at once: it is
//! sent as soon as read. An in-place rewrite keeps the inode, and a writer
//! that stalls at a line boundary (curl, scp, a pipeline) leaves a valid,
//! shorter registry on disk, which the brake lets through when it removes
//! less than its share. So a version rewritten in place that removes any
//! service, or any port of one, from what was last sent waits until the
//! file has stayed unchanged for the in-place settle window
//! (`--in-place-settle`, [`IN_PLACE_SETTLE`]), then goes on to the brake;
//! the complete file, once written, is sent at once.

mod entries;
pub mod reload;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Registry, RegistryError, Service};
use reload::{Loaded, reload};

/// Reads and validates the registry file at `path`.
pub fn read(path: &Path, zones: &[String]) -> Result<Registry, RegistryError> {
    read_next(path, zones, &mut None)
}

/// Reads and validates the registry file at `path`, the next version of
/// the one `loaded` was loaded from: only the entries that changed are
/// decoded and checked ([`reload`]).
fn read_next(
    path: &Path,
    zones: &[String],
    loaded: &mut Option<Loaded>,
) -> Result<Registry, RegistryError> {
    let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let started = std::time::Instant::now();
    let registry = reload(loaded, &text, &path.display().to_string(), zones);
    tracing::debug!(
        path = %path.display(),
        bytes = text.len(),
        ms = started.elapsed().as_millis() as u64,
        "registry parsed and validated"
    );
    registry
}

/// What identifies one version of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

fn fingerprint(path: &Path) -> std::io::Result<Fingerprint> {
    let m = std::fs::metadata(path)?;
    Ok(Fingerprint {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
    })
}

/// Why the file could not be looked at, as far as telling one failure from
/// another goes: the error's kind and OS error code, which decide its text.
/// The same failure on the next poll is not sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Unreadable {
    kind: std::io::ErrorKind,
    os_code: Option<i32>,
}

impl From<&std::io::Error> for Unreadable {
    fn from(error: &std::io::Error) -> Self {
        Self {
            kind: error.kind(),
            os_code: error.raw_os_error(),
        }
    }
}

/// The longest a change waits to settle: a file that keeps changing is read
/// at least this often (at least every second poll with a longer interval).
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// The default of `--in-place-settle`: how long an in-place rewrite that
/// removes something must stay unchanged before it is sent. Longer than a
/// network copy or a pipeline usually pauses, short enough that an
/// intended removal written in place is served within seconds.
pub const IN_PLACE_SETTLE: Duration = Duration::from_secs(10);

/// An in-place rewrite that removes something, waiting to settle.
struct Settling {
    fingerprint: Fingerprint,
    registry: Registry,
    since: Instant,
}

/// Watches a registry file and sends each new version, loaded and validated,
/// or the error that kept it from loading.
pub struct FileWatcher {
    path: PathBuf,
    zones: Vec<String>,
    interval: Duration,
    /// The version last sent (loaded or refused).
    sent: Option<Result<Fingerprint, Unreadable>>,
    /// A version seen once and waiting to be seen unchanged again.
    pending: Option<Fingerprint>,
    /// When the file was first seen changed since the version last sent.
    changing_since: Option<Instant>,
    /// The last version that loaded, to load the next by what changed.
    loaded: Option<Loaded>,
    /// How long an in-place rewrite that removes something must stay
    /// unchanged before it is sent.
    in_place_settle: Duration,
    /// The last registry sent: what an in-place rewrite is compared with.
    served: Option<Registry>,
    /// An in-place rewrite that removes something, until it settles or the
    /// file changes again.
    settling: Option<Settling>,
}

impl FileWatcher {
    /// A watcher of `path` polling every `interval`; an in-place rewrite
    /// that removes a service or a port waits `in_place_settle`.
    pub fn new(
        path: PathBuf,
        zones: Vec<String>,
        interval: Duration,
        in_place_settle: Duration,
    ) -> Self {
        Self {
            path,
            zones,
            interval,
            sent: None,
            pending: None,
            changing_since: None,
            loaded: None,
            in_place_settle,
            served: None,
            settling: None,
        }
    }

    /// Reads the file now, without waiting for it to settle: used at start.
    pub fn load_now(&mut self) -> Result<Registry, RegistryError> {
        match fingerprint(&self.path) {
            Ok(fp) => {
                self.sent = Some(Ok(fp));
                let loaded = read_next(&self.path, &self.zones, &mut self.loaded);
                self.served = loaded.as_ref().ok().cloned();
                loaded
            }
            Err(source) => {
                self.sent = Some(Err(Unreadable::from(&source)));
                Err(RegistryError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }

    /// One poll: returns a load result when a settled new version is there.
    pub fn poll(&mut self) -> Option<Result<Registry, RegistryError>> {
        self.poll_at(Instant::now())
    }

    /// [`Self::poll`] as of `now`: a new version is read once it is seen
    /// unchanged on a second poll, or once the file has kept changing for
    /// [`MAX_WAIT`] (at least two intervals); one rewritten in place that
    /// removes something is sent once unchanged for the settle window.
    pub fn poll_at(&mut self, now: Instant) -> Option<Result<Registry, RegistryError>> {
        match fingerprint(&self.path) {
            Ok(fp) => {
                if let Some(settling) = &self.settling {
                    if settling.fingerprint != fp {
                        // The writer went on: the next version decides.
                        self.settling = None;
                    } else if now.duration_since(settling.since) < self.in_place_settle {
                        return None;
                    } else {
                        let registry = self.settling.take()?.registry;
                        tracing::info!(
                            path = %self.path.display(),
                            "the in-place rewrite stayed unchanged for {:?}: sent on",
                            self.in_place_settle
                        );
                        self.served = Some(registry.clone());
                        return Some(Ok(registry));
                    }
                }
                if self.sent.as_ref() == Some(&Ok(fp)) {
                    self.pending = None;
                    self.changing_since = None;
                    return None;
                }
                let since = *self.changing_since.get_or_insert(now);
                let overdue = now.duration_since(since) >= MAX_WAIT.max(self.interval * 2);
                if self.pending != Some(fp) && !overdue {
                    self.pending = Some(fp);
                    return None;
                }
                self.pending = None;
                self.changing_since = None;
                let in_place =
                    matches!(self.sent, Some(Ok(last)) if (last.dev, last.ino) == (fp.dev, fp.ino));
                self.sent = Some(Ok(fp));
                let registry = match read_next(&self.path, &self.zones, &mut self.loaded) {
                    Ok(registry) => registry,
                    Err(e) => return Some(Err(e)),
                };
                if in_place
                    && let Some(dropped) = self.served.as_ref().and_then(|s| dropped(s, &registry))
                {
                    tracing::info!(
                        path = %self.path.display(),
                        "the file was rewritten in place and this version removes {dropped}: \
                         it is sent once unchanged for {:?} (--in-place-settle), as a writer may \
                         have stalled half-way",
                        self.in_place_settle
                    );
                    self.settling = Some(Settling {
                        fingerprint: fp,
                        registry,
                        since: now,
                    });
                    return None;
                }
                self.served = Some(registry.clone());
                Some(Ok(registry))
            }
            Err(source) => {
                self.pending = None;
                self.changing_since = None;
                let seen = Some(Err(Unreadable::from(&source)));
                if self.sent == seen {
                    return None;
                }
                self.sent = seen;
                Some(Err(RegistryError::Read {
                    path: self.path.clone(),
                    source,
                }))
            }
        }
    }

    /// Polls until `shutdown`, sending every result to `tx`.
    pub async fn run(
        mut self,
        tx: mpsc::Sender<Result<Registry, RegistryError>>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Some(result) = self.poll()
                && tx.send(result).await.is_err()
            {
                return;
            }
        }
    }
}

/// What `next` drops of `served`: a service it no longer lists, or a port
/// (name and number) a service no longer has; the first and how many in
/// all, `None` when it drops nothing. Services `next` shares with `served`
/// (the same `Arc`, as a reload keeps unchanged entries) are passed by.
fn dropped(served: &Registry, next: &Registry) -> Option<String> {
    let by_key: std::collections::HashMap<(&str, &str), &Service> = next
        .services
        .iter()
        .map(|s| ((s.namespace.as_str(), s.name.as_str()), s.as_ref()))
        .collect();
    let mut first = None;
    let mut count = 0usize;
    for service in served.services.iter() {
        let key = (service.namespace.as_str(), service.name.as_str());
        match by_key.get(&key) {
            None => {
                count += 1;
                first.get_or_insert_with(|| format!("service {}.{}", key.1, key.0));
            }
            Some(kept) if std::ptr::eq(*kept, service.as_ref()) => {}
            Some(kept) => {
                for port in &service.ports {
                    let still = kept
                        .ports
                        .iter()
                        .any(|p| p.name() == port.name() && p.number == port.number);
                    if !still {
                        count += 1;
                        first.get_or_insert_with(|| {
                            format!("port {} of service {}.{}", port.name(), key.1, key.0)
                        });
                    }
                }
            }
        }
    }
    first.map(|first| match count {
        1 => first,
        n => format!("{first} and {} more", n - 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const GOOD: &str = "clusters:\n  - name: west\n    gateways: [{address: 192.0.2.1}]\nservices:\n  - {name: httpbin, namespace: bar, exportedFrom: [west], ports: [{name: http, number: 80, protocol: HTTP}]}\n";

    fn zones() -> Vec<String> {
        vec!["global".into()]
    }

    /// A watcher of `path` polling every `ms` milliseconds, its in-place
    /// settle window `settle`.
    fn watcher(path: &Path, ms: u64, settle: Duration) -> FileWatcher {
        FileWatcher::new(
            path.to_path_buf(),
            zones(),
            Duration::from_millis(ms),
            settle,
        )
    }

    /// Writes `text` to `path` by rename, as editors and ConfigMaps do.
    fn rename_over(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, path).unwrap();
    }

    /// Writes `text` into `path` in place: the same inode, truncated.
    fn in_place(path: &Path, text: &str) {
        use std::io::Write;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    const TWO: &str = "clusters:\n  - name: west\n    gateways: [{address: 192.0.2.1}]\nservices:\n  - name: httpbin\n    namespace: bar\n    exportedFrom: [west]\n    ports:\n      - {name: http, number: 80, protocol: HTTP}\n      - {name: grpc, number: 90, protocol: GRPC}\n  - {name: reviews, namespace: bar, exportedFrom: [west], ports: [{name: http, number: 9080, protocol: HTTP}]}\n";

    /// The names (and port counts) a result holds.
    fn held(result: Option<Result<Registry, RegistryError>>) -> Option<Vec<(String, usize)>> {
        let registry = result?.unwrap();
        Some(
            registry
                .services
                .iter()
                .map(|s| (s.name.to_string(), s.ports.len()))
                .collect(),
        )
    }

    /// Issue 25: a file rewritten in place that stalls at a line boundary
    /// is a valid, shorter registry; it was sent, and the brake let a
    /// small cut through. A version rewritten in place that removes a
    /// service, or a port, waits until the file has been unchanged for the
    /// settle window; the complete file, once written, is sent at once and
    /// the cut one never is.
    #[test]
    fn an_in_place_rewrite_that_removes_something_waits_to_settle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.yaml");
        fs::write(&path, TWO).unwrap();
        let settle = Duration::from_secs(5);
        let mut w = watcher(&path, 100, settle);
        w.load_now().unwrap();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);

        // Cut after the first port of httpbin: reviews and a port gone.
        let cut = TWO.find("      - {name: grpc").unwrap();
        in_place(&path, &TWO[..cut]);
        assert!(w.poll_at(ms(0)).is_none(), "first sight waits a poll");
        assert!(w.poll_at(ms(100)).is_none(), "removes: waits to settle");
        assert!(w.poll_at(ms(4000)).is_none(), "still within the window");
        // The writer goes on: the complete file is sent at once.
        in_place(&path, TWO);
        assert!(w.poll_at(ms(4100)).is_none());
        assert_eq!(
            held(w.poll_at(ms(4200))),
            Some(vec![("httpbin".into(), 2), ("reviews".into(), 1)])
        );
        assert!(w.poll_at(ms(20_000)).is_none(), "the cut version never is");

        // A removal of one port alone, left as it is: sent after the window.
        in_place(
            &path,
            &TWO.replace("      - {name: grpc, number: 90, protocol: GRPC}\n", ""),
        );
        assert!(w.poll_at(ms(20_100)).is_none());
        assert!(w.poll_at(ms(20_200)).is_none(), "a port removed: waits");
        assert!(w.poll_at(ms(25_100)).is_none());
        assert_eq!(
            held(w.poll_at(ms(25_200))),
            Some(vec![("httpbin".into(), 1), ("reviews".into(), 1)]),
            "unchanged for the window: sent"
        );
    }

    /// What removes nothing, and anything renamed over the file (a whole
    /// new version at once), is sent as soon as it is read.
    #[test]
    fn additions_in_place_and_renames_are_sent_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.yaml");
        fs::write(&path, GOOD).unwrap();
        let mut w = watcher(&path, 100, IN_PLACE_SETTLE);
        w.load_now().unwrap();
        let t0 = Instant::now();
        in_place(&path, TWO);
        assert!(w.poll_at(t0).is_none());
        assert_eq!(
            held(w.poll_at(t0)).map(|s| s.len()),
            Some(2),
            "an addition in place"
        );
        rename_over(&path, GOOD);
        assert!(w.poll_at(t0).is_none());
        assert_eq!(
            held(w.poll_at(t0)).map(|s| s.len()),
            Some(1),
            "a removal by rename"
        );
    }

    #[test]
    fn a_change_is_read_once_it_has_settled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.yaml");
        fs::write(&path, GOOD).unwrap();
        let mut w = watcher(&path, 10, IN_PLACE_SETTLE);
        assert!(w.load_now().is_ok());
        assert!(w.poll().is_none(), "unchanged file");

        rename_over(&path, &GOOD.replace("httpbin", "httpbin2"));
        assert!(w.poll().is_none(), "first sight of a change waits");
        let r = w.poll().expect("settled change is read").unwrap();
        assert_eq!(r.services[0].name, "httpbin2");
        assert!(w.poll().is_none(), "read once");
    }

    #[test]
    fn bad_versions_are_reported_once_and_recovery_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.yaml");
        fs::write(&path, GOOD).unwrap();
        let mut w = watcher(&path, 10, IN_PLACE_SETTLE);
        w.load_now().unwrap();

        fs::remove_file(&path).unwrap();
        let err = w.poll().expect("deletion is reported").unwrap_err();
        assert!(err.to_string().contains("registry.yaml"), "{err}");
        assert!(w.poll().is_none(), "reported once");

        fs::write(&path, "services: [").unwrap();
        assert!(w.poll().is_none());
        assert!(w.poll().unwrap().is_err(), "garbage is refused");

        fs::write(&path, GOOD).unwrap();
        assert!(w.poll().is_none());
        assert!(w.poll().unwrap().is_ok(), "recovery is read");
    }

    /// A file rewritten on every poll never settles; it is still read once
    /// it has kept changing for MAX_WAIT, and again MAX_WAIT later.
    #[test]
    fn a_file_that_never_settles_is_read_after_the_maximum_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.yaml");
        fs::write(&path, GOOD).unwrap();
        let interval = Duration::from_millis(250);
        let mut w = FileWatcher::new(path.clone(), zones(), interval, IN_PLACE_SETTLE);
        w.load_now().unwrap();
        let t0 = Instant::now();
        let mut read_at = Vec::new();
        for i in 0..12u32 {
            // A new size every time: a different version on every poll.
            let text = GOOD.replace("httpbin", &format!("httpbin{}", "x".repeat(i as usize + 1)));
            rename_over(&path, &text);
            if let Some(result) = w.poll_at(t0 + interval * i) {
                assert!(result.is_ok());
                read_at.push(i);
            }
        }
        // Polls 0..=3 see the change begin; poll 4 is 1 s in.
        assert_eq!(
            read_at,
            [4, 9],
            "read every MAX_WAIT while it keeps changing"
        );
    }

    /// Kubernetes updates a ConfigMap volume by writing a new timestamped
    /// directory and renaming a `..data` symlink over the old one.
    #[test]
    fn configmap_symlink_swap_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let v1 = root.join("..2026_11_22_00_00_00.1");
        fs::create_dir(&v1).unwrap();
        fs::write(v1.join("registry.yaml"), GOOD).unwrap();
        std::os::unix::fs::symlink(v1.file_name().unwrap(), root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/registry.yaml", root.join("registry.yaml")).unwrap();

        let mut w = FileWatcher::new(
            root.join("registry.yaml"),
            zones(),
            Duration::from_millis(10),
            IN_PLACE_SETTLE,
        );
        assert_eq!(w.load_now().unwrap().services[0].name, "httpbin");

        // Same size as the first version, so only the inode tells them apart.
        let v2 = root.join("..2026_11_22_00_01_00.2");
        fs::create_dir(&v2).unwrap();
        fs::write(v2.join("registry.yaml"), GOOD.replace("httpbin", "httpbun")).unwrap();
        std::os::unix::fs::symlink(v2.file_name().unwrap(), root.join("..data_tmp")).unwrap();
        fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        fs::remove_dir_all(&v1).unwrap();

        assert!(w.poll().is_none());
        assert_eq!(w.poll().unwrap().unwrap().services[0].name, "httpbun");
    }
}
