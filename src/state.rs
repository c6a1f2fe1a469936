//! The state directory: the allocation table and the last-known-good
//! registry, each in one JSON file written atomically (temporary file,
//! fsync, rename, fsync of the directory), so a crash at any instant leaves
//! either the old or the new version, never half of one.
//!
//! | file | what | read |
//! |---|---|---|
//! | `vips.json` | the allocation table: every host's VIPs and the quarantine | before anything is allocated |
//! | `last-good.json` | the last registry that loaded, its SOA serial and the digest of what was served | at start, to answer before the registry source is read |

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::registry::Registry;
use crate::vip::Table;

const VIPS: &str = "vips.json";
const LAST_GOOD: &str = "last-good.json";

/// The last registry that loaded and was served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastGood {
    pub serial: u32,
    /// The digest of what was served under `serial`
    /// ([`crate::dns::ZoneSet::digest`]): a restart that would serve the
    /// same keeps the serial. Absent in files of earlier versions.
    #[serde(default)]
    pub digest: Option<u64>,
    /// The zones it was served in: at start, where its pins were, to tell
    /// when they move (see [`crate::index::pin_zone`]). Absent in files of
    /// earlier versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    pub registry: Registry,
}

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is corrupt ({source}); it was moved to {}", path.display(), moved.display())]
    Corrupt {
        path: PathBuf,
        moved: PathBuf,
        source: serde_json::Error,
    },
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Uses `dir`, creating it if needed.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        fs::create_dir_all(dir).map_err(|source| StateError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Whether `dir` holds a last-known-good registry, without creating
    /// anything.
    pub fn has_last_good(dir: &Path) -> bool {
        dir.join(LAST_GOOD).is_file()
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The allocation table; empty if there is none yet.
    pub fn load_table(&self) -> Result<Table, StateError> {
        let mut table: Table = self.load(VIPS)?.unwrap_or_default();
        table.compact();
        Ok(table)
    }

    pub fn save_table(&self, table: &Table) -> Result<(), StateError> {
        self.save(VIPS, table)
    }

    pub fn load_last_good(&self) -> Result<Option<LastGood>, StateError> {
        self.load(LAST_GOOD)
    }

    pub fn save_last_good(&self, last_good: &LastGood) -> Result<(), StateError> {
        self.save(LAST_GOOD, last_good)
    }

    /// Reads `name`. A file that does not decode is moved aside (never
    /// deleted: it is evidence) and reported, and the caller starts afresh.
    fn load<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StateError> {
        let path = self.dir.join(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Some(value)),
            Err(source) => {
                let moved = self.dir.join(format!("{name}.corrupt"));
                fs::rename(&path, &moved).map_err(|source| StateError::Write {
                    path: moved.clone(),
                    source,
                })?;
                Err(StateError::Corrupt {
                    path,
                    moved,
                    source,
                })
            }
        }
    }

    fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let path = self.dir.join(name);
        write_atomically(&path, |out| {
            serde_json::to_writer_pretty(out, value).map_err(std::io::Error::from)
        })
        .map_err(|source| StateError::Write { path, source })
    }
}

/// Writes to `path` what `write` produces, so that readers see the old or
/// the new file. Streamed through a buffer: at 100,000 hosts the JSON is
/// tens of megabytes, which need not be held in memory at once.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state")
    ));
    let mut out = std::io::BufWriter::with_capacity(1 << 16, fs::File::create(&tmp)?);
    write(&mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    // The rename is durable only once the directory entry is.
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vip::{Family, Lease};

    fn table() -> Table {
        let mut t = Table::default();
        t.hosts.entry("a.b.global".into()).or_default().insert(
            Family::V4,
            Lease {
                addr: "240.0.0.7".parse().unwrap(),
                since: 42,
            },
        );
        t
    }

    #[test]
    fn the_table_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        assert_eq!(
            state.load_table().unwrap(),
            Table::default(),
            "empty at first"
        );
        state.save_table(&table()).unwrap();
        let again = StateDir::open(state.path()).unwrap();
        assert_eq!(again.load_table().unwrap(), table());
        assert!(!state.path().join(".vips.json.tmp").exists());
    }

    /// The state file is kept across upgrades: the table as earlier
    /// versions wrote it (hosts mapped to a `v4`/`v6` map) still loads,
    /// and is written back the same way.
    #[test]
    fn a_table_written_by_earlier_versions_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let earlier = r#"{
  "hosts": {
    "a.b.global": {
      "v4": {
        "addr": "240.0.0.7",
        "since": 42
      },
      "v6": {
        "addr": "fd00::7",
        "since": 43
      }
    }
  },
  "quarantine": [
    {
      "addr": "240.0.0.9",
      "host": "gone.b.global",
      "released": 40
    }
  ]
}"#;
        fs::write(dir.path().join("vips.json"), earlier).unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let table = state.load_table().unwrap();
        let leases = &table.hosts["a.b.global"];
        assert_eq!(leases.get(Family::V4).unwrap().since, 42);
        assert_eq!(
            leases.get(Family::V6).unwrap().addr,
            "fd00::7".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(table.quarantine.len(), 1);
        state.save_table(&table).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("vips.json")).unwrap(),
            earlier
        );
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        fs::write(dir.path().join("vips.json"), b"{\"hosts\": {\"a\": ").unwrap();
        let err = state.load_table().unwrap_err();
        assert!(err.to_string().contains("vips.json is corrupt"), "{err}");
        assert!(dir.path().join("vips.json.corrupt").exists());
        assert_eq!(
            state.load_table().unwrap(),
            Table::default(),
            "starts afresh"
        );
    }

    #[test]
    fn a_stale_temporary_file_is_ignored() {
        // A crash between write and rename leaves only the temporary file.
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        state.save_table(&table()).unwrap();
        fs::write(dir.path().join(".vips.json.tmp"), b"{\"hos").unwrap();
        assert_eq!(state.load_table().unwrap(), table());
        state.save_table(&Table::default()).unwrap();
        assert_eq!(state.load_table().unwrap(), Table::default());
    }
}
