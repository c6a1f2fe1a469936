//! The state directory: the allocation table and the last-known-good
//! registry, each in one JSON file written atomically (temporary file,
//! fsync, rename, fsync of the directory), so a crash at any instant leaves
//! either the old or the new version, never half of one. A change of a
//! few hosts is appended to the table's journal instead of rewriting the
//! table (`state/journal.rs`), and the last-known-good registry is written
//! by a thread of its own after the change is served (`state/writer.rs`).
//!
//! | file | what | read |
//! |---|---|---|
//! | `vips.json` | the allocation table: every host's VIPs and the quarantine | before anything is allocated |
//! | `vips.journal` | the table's changes since `vips.json` was written, one JSON line each | replayed over `vips.json` |
//! | `last-good.json` | the last registry that loaded, its SOA serial and the digest of what was served | at start, to answer before the registry source is read |

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::registry::Registry;
use crate::vip::Table;

mod journal;
mod writer;

pub use journal::Journaled;
pub use writer::LastGoodWriter;

const VIPS: &str = "vips.json";
const JOURNAL: &str = "vips.journal";
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

    /// The allocation table, its journal replayed; empty if there is none
    /// yet.
    pub fn load_table(&self) -> Result<Table, StateError> {
        let mut table: Table = self.load(VIPS)?.unwrap_or_default();
        // The file's hosts are bulk-built packed; hosts the journal
        // inserted one by one leave nodes half full.
        if journal::replay(&self.dir.join(JOURNAL), &mut table)? > 0 {
            table.compact();
        }
        Ok(table)
    }

    /// Writes the whole table, then empties the journal (a crash between
    /// the two replays changes the table already has: each line is the
    /// state a host or the quarantine had, so replaying it again is
    /// harmless).
    pub fn save_table(&self, table: &Table) -> Result<(), StateError> {
        self.save(VIPS, table)?;
        journal::clear(&self.dir.join(JOURNAL))
    }

    /// Appends to the table's journal the state of `hosts` (and of the
    /// quarantine, when `quarantine` says it changed), durably. Returns the
    /// journal's size: [`Self::save_table`] writes the whole table and
    /// empties it.
    pub fn journal_table<'h>(
        &self,
        table: &Table,
        hosts: impl IntoIterator<Item = &'h str>,
        quarantine: bool,
    ) -> Result<Journaled, StateError> {
        journal::append(&self.dir.join(JOURNAL), table, hosts, quarantine)
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
mod tests;
