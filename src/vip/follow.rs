//! Following a record of VIPs kept outside the table. In Kubernetes the
//! owned ServiceEntries' `spec.addresses` are that record (design §3): the
//! Lease holder writes them, every replica reads them, and a replica's own
//! state directory is only a cache of it. Following the record is what
//! makes every replica answer one VIP per host, and what keeps a new
//! leader from renumbering: it writes back what it read.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use compact_str::CompactString;

use super::{Allocator, Event, Family, Lease, Released, Table, Want};

/// Recorded VIPs: a host (lower-case) and its addresses.
pub type Record = [(String, Vec<IpAddr>)];

impl Allocator {
    /// Makes `table` agree with `record` for the hosts in `wants`, before
    /// [`Allocator::reconcile`] allocates for the rest. The record wins over
    /// the table:
    ///
    /// - a host whose VIP differs from its recorded one moves to the
    ///   recorded one; the old one goes into quarantine
    ///   ([`Event::Recorded`] with `was`);
    /// - a recorded address another host holds in the table is taken from
    ///   it ([`Event::Taken`]): that host gets its own recorded address, or
    ///   a new one from reconcile;
    /// - a recorded address in quarantine leaves quarantine.
    ///
    /// Left alone: hosts not wanted (their ServiceEntry is about to be
    /// pruned), families the host pins, addresses outside the range or
    /// never handed out, addresses pinned by any host, and an address
    /// recorded for two hosts (the first host in record order keeps it).
    /// Of a host's recorded addresses only the first of each family in
    /// record order counts (two owned objects for one host, or a hand-made
    /// second address): following the same record again moves nothing,
    /// and what is followed does not depend on the table.
    pub fn follow(
        &self,
        table: &mut Table,
        record: &Record,
        wants: &[Want],
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) {
        if record.is_empty() {
            return;
        }
        let wanted: HashMap<&str, &Want> = wants.iter().map(|w| (w.host.as_str(), w)).collect();
        let pinned: HashSet<IpAddr> = wants
            .iter()
            .flat_map(|w| w.pinned.iter().copied())
            .collect();
        let mut holder: HashMap<IpAddr, CompactString> = table
            .hosts
            .iter()
            .flat_map(|(host, leases)| leases.values().map(move |l| (l.addr, host.clone())))
            .collect();
        let mut claimed = HashSet::new();
        let mut first = HashSet::new();
        for (host, addresses) in record {
            let Some(want) = wanted.get(host.as_str()) else {
                continue;
            };
            for addr in addresses {
                let family = Family::of(addr);
                let usable = self
                    .range(family)
                    .is_some_and(|r| r.contains(addr) && !r.excluded(addr));
                if !first.insert((host.as_str(), family))
                    || !usable
                    || want.pins(family)
                    || pinned.contains(addr)
                    || !claimed.insert(*addr)
                {
                    continue;
                }
                let was = table.lease(host, family).map(|l| l.addr);
                if was == Some(*addr) {
                    continue;
                }
                if let Some(other) = holder.get(addr).filter(|o| o.as_str() != host) {
                    if let Some(leases) = table.hosts.get_mut(other) {
                        leases.retain(|_, lease| lease.addr != *addr);
                    }
                    emit(Event::Taken {
                        host: other.to_string(),
                        addr: *addr,
                        by: host.clone(),
                    });
                }
                table.quarantine.retain(|r| r.addr != *addr);
                if let Some(old) = was {
                    table.quarantine.push(Released {
                        addr: old,
                        host: host.clone(),
                        released: now,
                    });
                }
                table
                    .hosts
                    .entry(CompactString::from(host.as_str()))
                    .or_default()
                    .insert(
                        family,
                        Lease {
                            addr: *addr,
                            since: now,
                        },
                    );
                holder.insert(*addr, CompactString::from(host.as_str()));
                emit(Event::Recorded {
                    host: host.clone(),
                    addr: *addr,
                    was,
                });
            }
        }
        table.hosts.retain(|_, leases| !leases.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vip::VipRange;

    fn alloc() -> Allocator {
        Allocator {
            v4: VipRange::new("192.0.2.0/24".parse().unwrap(), Family::V4).unwrap(),
            v6: None,
            quarantine: 600,
        }
    }

    fn want(host: &str) -> Want {
        Want {
            host: host.into(),
            pinned: Vec::new(),
        }
    }

    fn v4(table: &Table, host: &str) -> Option<IpAddr> {
        table.lease(host, Family::V4).map(|l| l.addr)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn follow(a: &Allocator, table: &mut Table, record: &Record, wants: &[Want]) -> Vec<Event> {
        let mut events = Vec::new();
        a.follow(table, record, wants, 100, &mut |e| events.push(e));
        events
    }

    /// Issue 10: a replica whose own table gave a host another VIP than the
    /// one on its ServiceEntry kept its own, so replicas answered different
    /// VIPs, and as leader it rewrote the ServiceEntry. The record wins.
    #[test]
    fn the_record_wins_over_the_table() {
        let a = alloc();
        let mut table = Table::default();
        let wants = vec![want("a.x"), want("b.x")];
        a.reconcile(&mut table, &wants, 0);
        let mine = v4(&table, "a.x").unwrap();
        let recorded = if mine == ip("192.0.2.77") {
            ip("192.0.2.78")
        } else {
            ip("192.0.2.77")
        };
        let events = follow(&a, &mut table, &[("a.x".into(), vec![recorded])], &wants);
        assert_eq!(
            events,
            [Event::Recorded {
                host: "a.x".into(),
                addr: recorded,
                was: Some(mine)
            }]
        );
        assert_eq!(v4(&table, "a.x"), Some(recorded));
        // The address it gave up is held back, not handed to the next host.
        assert!(table.quarantine.iter().any(|r| r.addr == mine));
        // Reconcile keeps what was followed.
        a.reconcile(&mut table, &wants, 200);
        assert_eq!(v4(&table, "a.x"), Some(recorded));
        // Following again changes nothing.
        assert_eq!(
            follow(&a, &mut table, &[("a.x".into(), vec![recorded])], &wants),
            []
        );
    }

    #[test]
    fn a_recorded_address_held_by_another_host_is_taken_from_it() {
        let a = alloc();
        let mut table = Table::default();
        let wants = vec![want("a.x"), want("b.x")];
        a.reconcile(&mut table, &wants, 0);
        let bs = v4(&table, "b.x").unwrap();
        let events = follow(&a, &mut table, &[("a.x".into(), vec![bs])], &wants);
        assert!(events.contains(&Event::Taken {
            host: "b.x".into(),
            addr: bs,
            by: "a.x".into()
        }));
        assert_eq!(v4(&table, "a.x"), Some(bs));
        assert_eq!(v4(&table, "b.x"), None);
        a.reconcile(&mut table, &wants, 200);
        let new_b = v4(&table, "b.x").unwrap();
        assert_ne!(new_b, bs, "b.x gets a VIP of its own");
    }

    #[test]
    fn what_the_record_cannot_give_is_left_alone() {
        let a = alloc();
        let mut table = Table::default();
        let pinned = Want {
            host: "p.x".into(),
            pinned: vec![ip("192.0.2.50")],
        };
        let wants = vec![want("a.x"), want("b.x"), pinned];
        a.reconcile(&mut table, &wants, 0);
        let before = table.clone();
        let record = vec![
            ("gone.x".to_string(), vec![ip("192.0.2.10")]), // not wanted
            ("a.x".to_string(), vec![ip("198.51.100.1")]),  // outside the range
            ("a.x".to_string(), vec![ip("192.0.2.0")]),     // never handed out
            ("b.x".to_string(), vec![ip("192.0.2.50")]),    // pinned by p.x
            ("p.x".to_string(), vec![ip("192.0.2.51")]),    // p.x pins its v4
        ];
        assert_eq!(follow(&a, &mut table, &record, &wants), []);
        assert_eq!(table, before);
    }

    #[test]
    fn one_address_recorded_for_two_hosts_stays_with_the_first() {
        let a = alloc();
        let mut table = Table::default();
        let wants = vec![want("a.x"), want("b.x")];
        let record = vec![
            ("a.x".to_string(), vec![ip("192.0.2.40")]),
            ("b.x".to_string(), vec![ip("192.0.2.40")]),
        ];
        follow(&a, &mut table, &record, &wants);
        assert_eq!(v4(&table, "a.x"), Some(ip("192.0.2.40")));
        assert_eq!(v4(&table, "b.x"), None);
        // Stable: following the same record again moves nothing.
        assert_eq!(follow(&a, &mut table, &record, &wants), []);
    }

    #[test]
    fn a_host_recorded_twice_follows_its_first_address() {
        let a = alloc();
        let mut table = Table::default();
        let wants = vec![want("a.x")];
        let record = vec![
            ("a.x".to_string(), vec![ip("192.0.2.40")]),
            ("a.x".to_string(), vec![ip("192.0.2.41")]),
        ];
        follow(&a, &mut table, &record, &wants);
        assert_eq!(v4(&table, "a.x"), Some(ip("192.0.2.40")));
        // Stable: it does not go back and forth between the two.
        assert_eq!(follow(&a, &mut table, &record, &wants), []);
    }

    #[test]
    fn a_recorded_address_in_quarantine_leaves_it() {
        let a = alloc();
        let mut table = Table::default();
        a.reconcile(&mut table, &[want("old.x")], 0);
        let released = v4(&table, "old.x").unwrap();
        a.reconcile(&mut table, &[], 10);
        assert!(table.quarantine.iter().any(|r| r.addr == released));
        let wants = vec![want("new.x")];
        follow(&a, &mut table, &[("new.x".into(), vec![released])], &wants);
        assert_eq!(v4(&table, "new.x"), Some(released));
        assert!(!table.quarantine.iter().any(|r| r.addr == released));
    }
}
