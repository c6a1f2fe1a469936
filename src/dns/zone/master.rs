//! The zones as an RFC 1035 §5 master file (`globaldns zonefile`), for
//! other DNS servers (a BIND or Knot primary whose secondaries transfer
//! it), reviews and diffs.
//!
//! The file opens with a comment recording its SOA serial and the digest
//! of what it holds ([`ZoneSet::digest`]). `zonefile --previous FILE` reads
//! it back, so that printing again follows the server's serial rule
//! ([`ZoneSet::next_serial`]) with no state of its own: the same content
//! keeps the serial, other content gets a greater one, even within the
//! same second (a secondary compares serials only, RFC 1982, and keeps a
//! zone whose serial did not grow).

use std::fmt::Write;

use super::ZoneSet;

/// The start of the header comment.
const HEADER: &str = "; globaldns zonefile: serial ";

/// The master file of `zones` (its serial already set), whose digest is
/// `digest`: the header comment, then each zone's SOA, NS and records.
pub fn master_file(zones: &ZoneSet, digest: u64) -> String {
    let mut out = format!("{HEADER}{}, digest {digest:016x}\n", zones.serial());
    for zone in zones.zones() {
        let _ = writeln!(out, "; zone {}", zone.origin);
        let _ = writeln!(out, "{}", zone.soa);
        for ns in &zone.ns {
            let _ = writeln!(out, "{ns}");
        }
        if let Some(txt) = &zone.dns_version {
            let _ = writeln!(out, "{txt}");
        }
        for record in zones.records(zone) {
            let _ = writeln!(out, "{record}");
        }
    }
    out
}

/// The serial and digest a master file printed by [`master_file`] records
/// in its header; `None` when `text` has no such header.
pub fn recorded(text: &str) -> Option<(u32, u64)> {
    let line = text.lines().find_map(|l| l.strip_prefix(HEADER))?;
    let (serial, digest) = line.split_once(", digest ")?;
    Some((
        serial.trim().parse().ok()?,
        u64::from_str_radix(digest.trim(), 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_read_back() {
        let text =
            "; globaldns zonefile: serial 1796000001, digest 00ab00cd00ef0012\n; zone global.\n";
        assert_eq!(recorded(text), Some((1_796_000_001, 0x00ab_00cd_00ef_0012)));
        assert_eq!(recorded("; zone global.\nglobal. 30 IN SOA ...\n"), None);
        assert_eq!(recorded("; globaldns zonefile: serial x, digest 1\n"), None);
    }

    /// Issue 25: two different registries printed within one second got
    /// the same serial (the clock's), and a secondary of the printed zone
    /// kept the old one. The serial follows the content, as the server's.
    #[test]
    fn the_serial_follows_the_content_not_the_clock() {
        let now = 1_796_000_000;
        assert_eq!(ZoneSet::next_serial(None, 7, now), now as u32);
        // The same content printed again keeps its serial, whenever.
        assert_eq!(
            ZoneSet::next_serial(Some((now as u32, Some(7))), 7, now + 99),
            now as u32
        );
        // Other content in the same second: one more.
        assert_eq!(
            ZoneSet::next_serial(Some((now as u32, Some(7))), 8, now),
            now as u32 + 1
        );
        // Later: the clock, which is ahead.
        assert_eq!(
            ZoneSet::next_serial(Some((now as u32, Some(7))), 8, now + 60),
            now as u32 + 60
        );
        // A last serial whose digest is not known never makes it go back.
        assert_eq!(
            ZoneSet::next_serial(Some((now as u32 + 500, None)), 8, now),
            now as u32 + 501
        );
    }
}
