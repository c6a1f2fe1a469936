//! The allocation table's journal: a change of a few hosts appends one JSON
//! line per host it touched (the host's leases as they are now, none when
//! it has none left) and, when the quarantine changed, one line with the
//! whole quarantine; then `fdatasync`, before the change is served. At
//! 100,000 hosts that is a few hundred bytes against the 15 MB of the
//! whole table (47 ms to write), and it costs the same at a million.
//!
//! Replaying sets each host and the quarantine to what its last line says,
//! so a line replayed twice is harmless, and a line cut short by a crash
//! (always the last one: lines are only appended) is dropped with the
//! change it began, which was never served. The file is cut back to its
//! last whole line before anything is appended after it.

use std::fs;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StateError;
use crate::vip::{Leases, Released, Table};

/// One line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leases: Option<Leases>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quarantine: Option<Vec<Released>>,
}

/// What an append left: the journal's size, for the caller to decide when
/// to write the whole table instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Journaled {
    pub bytes: u64,
}

/// Applies the journal at `path`, if any, to `table`, and cuts off a last
/// line a crash left unfinished. Returns how many lines it applied.
pub(super) fn replay(path: &Path, table: &mut Table) -> Result<usize, StateError> {
    let read = |source| StateError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(read(e)),
    };
    let mut reader = std::io::BufReader::new(file);
    let mut whole = 0u64;
    let mut applied = 0;
    let mut text = String::new();
    loop {
        text.clear();
        let n = reader.read_line(&mut text).map_err(read)?;
        if n == 0 || !text.ends_with('\n') {
            break;
        }
        let Ok(line) = serde_json::from_str::<Line>(&text) else {
            break;
        };
        apply(table, line);
        applied += 1;
        whole += n as u64;
    }
    let len = fs::metadata(path).map_err(read)?.len();
    if len != whole {
        tracing::warn!(
            path = %path.display(),
            "the allocation journal ends with an unfinished line (a crash while writing it); dropped"
        );
        let file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(whole).and_then(|()| f.sync_all()));
        file.map_err(|source| StateError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(applied)
}

fn apply(table: &mut Table, line: Line) {
    if let Some(host) = line.host {
        match line.leases.filter(|l| !l.is_empty()) {
            Some(leases) => {
                table.hosts.insert(host.into(), leases);
            }
            None => {
                table.hosts.remove(host.as_str());
            }
        }
    }
    if let Some(quarantine) = line.quarantine {
        table.quarantine = quarantine;
    }
}

/// Appends the state of `hosts` in `table` (and the quarantine, when
/// `quarantine` says it changed) to the journal at `path`, durably.
pub(super) fn append<'h>(
    path: &Path,
    table: &Table,
    hosts: impl IntoIterator<Item = &'h str>,
    quarantine: bool,
) -> Result<Journaled, StateError> {
    let write = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for host in hosts {
        let line = Line {
            host: Some(host.to_string()),
            leases: Some(table.hosts.get(host).cloned().unwrap_or_default()),
            quarantine: None,
        };
        serde_json::to_writer(&mut out, &line).map_err(|e| write(e.into()))?;
        out.push(b'\n');
    }
    if quarantine {
        let line = Line {
            host: None,
            leases: None,
            quarantine: Some(table.quarantine.clone()),
        };
        serde_json::to_writer(&mut out, &line).map_err(|e| write(e.into()))?;
        out.push(b'\n');
    }
    let new = !path.exists();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write)?;
    if !out.is_empty() {
        file.write_all(&out).map_err(write)?;
        file.sync_data().map_err(write)?;
    }
    if new {
        // A new file is durable only once its directory entry is.
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write)?;
    }
    let bytes = file.metadata().map_err(write)?.len();
    Ok(Journaled { bytes })
}

/// Empties the journal, durably: the table file now holds everything.
pub(super) fn clear(path: &Path) -> Result<(), StateError> {
    match fs::OpenOptions::new().write(true).open(path) {
        Ok(file) => file
            .set_len(0)
            .and_then(|()| file.sync_all())
            .map_err(|source| StateError::Write {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}
