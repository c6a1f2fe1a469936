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

/// The host map is read whole and built at once (not host by host): a
/// file whose hosts are out of order, or name one twice, reads as it did
/// by inserting each in turn: every host, the last value of a repeat.
#[test]
fn a_table_out_of_order_or_with_a_repeat_reads_as_inserted() {
    let dir = tempfile::tempdir().unwrap();
    let lease = |a: u8| format!(r#"{{"v4": {{"addr": "240.0.0.{a}", "since": {a}}}}}"#);
    let text = format!(
        r#"{{"hosts": {{"c.x.global": {}, "a.x.global": {}, "b.x.global": {}, "a.x.global": {}}}}}"#,
        lease(3),
        lease(1),
        lease(2),
        lease(4)
    );
    fs::write(dir.path().join("vips.json"), text).unwrap();
    let table = StateDir::open(dir.path()).unwrap().load_table().unwrap();
    let hosts: Vec<(&str, u64)> = table
        .hosts
        .iter()
        .map(|(host, leases)| (host.as_str(), leases.get(Family::V4).unwrap().since))
        .collect();
    assert_eq!(
        hosts,
        [("a.x.global", 4), ("b.x.global", 2), ("c.x.global", 3)]
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

/// Issue 14: a change is journaled, not written whole; the journal replays
/// over the table at start. A crash can cut the last line short (the
/// change it began was never served): it is dropped, and the file is cut
/// back so that the next line is not glued to it.
#[test]
fn the_journal_replays_over_the_table_and_a_torn_line_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let mut t = table();
    state.save_table(&t).unwrap();
    let lease = |addr: &str| Lease {
        addr: addr.parse().unwrap(),
        since: 50,
    };
    t.hosts
        .entry("c.d.global".into())
        .or_default()
        .insert(Family::V4, lease("240.0.0.8"));
    t.hosts.remove("a.b.global");
    t.quarantine.push(crate::vip::Released {
        addr: "240.0.0.7".parse().unwrap(),
        host: "a.b.global".into(),
        released: 50,
    });
    let journaled = state
        .journal_table(&t, ["c.d.global", "a.b.global"], true)
        .unwrap();
    assert!(journaled.bytes > 0);
    assert_eq!(state.load_table().unwrap(), t);

    let journal = dir.path().join("vips.journal");
    let whole = fs::metadata(&journal).unwrap().len();
    let mut file = fs::OpenOptions::new().append(true).open(&journal).unwrap();
    std::io::Write::write_all(&mut file, b"{\"host\": \"e.f.glo").unwrap();
    assert_eq!(state.load_table().unwrap(), t, "the torn line is dropped");
    assert_eq!(fs::metadata(&journal).unwrap().len(), whole, "and cut off");

    t.hosts
        .entry("e.f.global".into())
        .or_default()
        .insert(Family::V4, lease("240.0.0.9"));
    state.journal_table(&t, ["e.f.global"], false).unwrap();
    assert_eq!(state.load_table().unwrap(), t);

    // Folded: the whole table written, the journal emptied; replaying a
    // journal left over by a crash between the two changes nothing.
    let left_over = fs::read(&journal).unwrap();
    state.save_table(&t).unwrap();
    assert_eq!(fs::metadata(&journal).unwrap().len(), 0);
    assert_eq!(state.load_table().unwrap(), t);
    fs::write(&journal, left_over).unwrap();
    assert_eq!(state.load_table().unwrap(), t);
}

/// An empty last-known-good registry of SOA serial `serial`.
fn version(serial: u32) -> LastGood {
    LastGood {
        serial,
        digest: None,
        zones: Vec::new(),
        registry: Registry::default(),
    }
}

/// The last-known-good registry is written by a thread of its own; a
/// version waiting is replaced by a newer one, and what waits is written
/// when the writer is flushed or dropped.
#[test]
fn the_last_good_writer_writes_the_newest_version() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let writer = LastGoodWriter::start(state.clone());
    writer.submit(version(1));
    writer.submit(version(2));
    writer.flush();
    assert_eq!(state.load_last_good().unwrap().unwrap().serial, 2);
    writer.submit(version(3));
    drop(writer);
    assert_eq!(state.load_last_good().unwrap().unwrap().serial, 3);
}

/// After a write the writer rests (here an hour) before it takes the next
/// version: one handed over meanwhile waits, and `flush` or dropping the
/// writer cuts the rest short and writes it.
#[test]
fn the_last_good_writer_rests_between_writes_unless_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let serial = || state.load_last_good().unwrap().unwrap().serial;
    let writer = LastGoodWriter::resting(state.clone(), |_| std::time::Duration::from_secs(3600));
    writer.submit(version(1));
    writer.flush();
    assert_eq!(serial(), 1, "the first version is written at once");
    writer.submit(version(2));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(serial(), 1, "the next waits while the writer rests");
    writer.flush();
    assert_eq!(serial(), 2);
    writer.submit(version(3));
    drop(writer);
    assert_eq!(serial(), 3, "dropping the writer writes what waits");
}
