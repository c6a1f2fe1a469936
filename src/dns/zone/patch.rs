//! Patching a [`ZoneSet`]: the set after a change, made from the set
//! before it by taking some hosts out and putting some in. Only the shards
//! their names are in are copied (each a couple of thousand names); every
//! other shard is shared with the set before, which the query path may
//! still be reading: nothing published is ever written to.
//!
//! A patch gives the same set as a full build of the same hosts, or fails
//! and the caller builds whole. It handles the hosts a name belongs to
//! alone (the registry's), and the empty non-terminals above them, which
//! exist while something is below: [`Parents`] counts what is below each.
//! It refuses what only a full build decides: a host sharing a name with
//! another (drop-in mode's hand-written hosts, which a full build places
//! by its rules), a wildcard, a host that is not there to remove.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rustc_hash::FxBuildHasher;

use super::host::HostNames;
use super::names::{Names, Shard, ZoneIndex, hash_key, place};
use super::{HostData, ZoneError, ZoneSet};

/// How many claims each shared name of a set has: each empty non-terminal
/// one per host below it, each apex and name server one for good, each
/// host placed as shared one. A name whose claims drop to none goes.
/// Kept by whoever patches the set, beside it; a failed patch leaves it
/// unusable (build whole, which makes a new one).
#[derive(Debug, Default, Clone)]
pub struct Parents {
    counts: HashMap<Box<[u8]>, u32, FxBuildHasher>,
}

impl Parents {
    pub(super) fn claim(&mut self, key: &[u8]) {
        match self.counts.get_mut(key) {
            Some(count) => *count += 1,
            None => {
                self.counts.insert(key.into(), 1);
            }
        }
    }

    fn release(&mut self, key: &[u8]) {
        if let Some(count) = self.counts.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(key);
            }
        }
    }

    fn count(&self, key: &[u8]) -> u32 {
        self.counts.get(key).copied().unwrap_or(0)
    }
}

/// What changes in one shard.
#[derive(Default)]
struct Edit {
    remove: HashSet<Box<[u8]>, FxBuildHasher>,
    /// Hosts to add, as indexes into the patch's list of added hosts.
    hosts: Vec<usize>,
    /// Empty non-terminals to make, with their zone.
    parents: Vec<(Box<[u8]>, ZoneIndex)>,
}

impl ZoneSet {
    /// This set with the hosts of `removed` (their names and ports as they
    /// were added; their addresses do not matter) taken out and those of
    /// `added` put in: a host that changes is in both. Its serial and
    /// staleness are this set's. Fails, `parents` then spent, where
    /// [`super::ZoneSetBuilder::add_host`] would, or where only a full
    /// build may decide: a removed host shares a name with another
    /// ([`ZoneError::SharedName`]) or is not there
    /// ([`ZoneError::NotInSet`]), an added one is a wildcard
    /// ([`ZoneError::Wildcard`]) or there already
    /// ([`ZoneError::AlreadyInSet`]).
    pub fn patched(
        &self,
        parents: &mut Parents,
        removed: &[HostData<'_>],
        added: &[HostData<'_>],
    ) -> Result<ZoneSet, ZoneError> {
        let count = self.names.shards.len();
        let mut edits: HashMap<usize, Edit> = HashMap::new();
        // Each parent touched: its claims before the patch, and its zone.
        let mut touched: HashMap<Box<[u8]>, (u32, ZoneIndex), FxBuildHasher> = HashMap::default();
        for data in removed {
            let names = HostNames::of(data, &self.zones)?;
            for key in names.own() {
                if parents.count(&key) > 0 {
                    return Err(ZoneError::SharedName {
                        host: data.host.to_string(),
                    });
                }
                if self.node(&key).is_none() {
                    return Err(ZoneError::NotInSet {
                        host: data.host.to_string(),
                    });
                }
            }
            // Its `_tcp` and SRV names go with its node (`names.rs`).
            edit(&mut edits, &names.host, count)
                .remove
                .insert(names.host.clone());
            for parent in &names.parents {
                let before = parents.count(parent);
                touched
                    .entry(parent.clone())
                    .or_insert((before, names.zone));
                parents.release(parent);
            }
        }
        let mut hosts = Vec::with_capacity(added.len());
        for data in added {
            let names = HostNames::of(data, &self.zones)?;
            if names.wildcard {
                return Err(ZoneError::Wildcard {
                    host: data.host.to_string(),
                });
            }
            for parent in &names.parents {
                let before = parents.count(parent);
                touched
                    .entry(parent.clone())
                    .or_insert((before, names.zone));
                parents.claim(parent);
            }
            edit(&mut edits, &names.host, count).hosts.push(hosts.len());
            hosts.push((names, data.addresses));
        }
        for (parent, (before, zone)) in touched {
            match (before, parents.count(&parent)) {
                (1.., 0) => {
                    edit(&mut edits, &parent, count).remove.insert(parent);
                }
                (0, 1..) => edit(&mut edits, &parent, count)
                    .parents
                    .push((parent, zone)),
                _ => {}
            }
        }
        let mut names: Names = self.names.clone();
        for (index, edit) in edits {
            names.shards[index] = rebuild(&self.names.shards[index], &edit, &hosts)?;
        }
        Ok(ZoneSet {
            zones: self.zones.clone(),
            names,
            serial: self.serial,
            stale: AtomicBool::new(self.is_stale()),
            explain: self.explain.clone(),
        })
    }
}

/// The edit of the shard `key` is in.
fn edit<'e>(edits: &'e mut HashMap<usize, Edit>, key: &[u8], count: usize) -> &'e mut Edit {
    edits.entry(place(key, count).0).or_default()
}

/// A copy of `old` with `edit` applied, sealed.
fn rebuild(
    old: &Shard,
    edit: &Edit,
    added: &[(HostNames, &[IpAddr])],
) -> Result<Arc<Shard>, ZoneError> {
    let names = old.nodes.len() + edit.hosts.len() + edit.parents.len();
    let key_bytes = old.keys.len() + edit.hosts.len() * 48 + edit.parents.len() * 32;
    let ports = old.srv.len() + edit.hosts.len() * 2;
    let mut new = Shard::with_capacity(names, key_bytes, ports);
    for node in &old.nodes {
        let key = old.key(node);
        if edit.remove.contains(key) {
            continue;
        }
        let index = new.insert(key, hash_key(key), node.zone)?;
        new.set_split_addresses(
            index,
            old.v4[node.a.range()].iter().copied(),
            old.v6[node.aaaa.range()].iter().copied(),
        )?;
        let ports = old.ports(node);
        if !ports.is_empty() {
            new.set_ports(index, ports.iter().map(|p| (old.label(p), p.port)))?;
        }
    }
    for &at in &edit.hosts {
        let (names, addresses) = &added[at];
        let hash = hash_key(&names.host);
        if new.find(&names.host, hash).is_some() {
            return Err(ZoneError::AlreadyInSet {
                key: names.host.clone(),
            });
        }
        let host = new.insert(&names.host, hash, names.zone)?;
        new.set_addresses(host, addresses)?;
        if !names.srv.is_empty() {
            new.set_ports(host, names.ports())?;
        }
    }
    for (key, zone) in &edit.parents {
        new.find_or_insert(key, hash_key(key), *zone)?;
    }
    Ok(new.seal())
}

#[cfg(test)]
mod tests {
    use super::super::{ZoneSetBuilder, fqdn, wire};
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A host: its name, addresses and ports.
    type Host = (String, Vec<IpAddr>, Vec<(String, u16)>);

    fn ports(host: &Host) -> Vec<(&str, u16)> {
        host.2.iter().map(|(n, p)| (n.as_str(), *p)).collect()
    }

    fn datas<'a>(hosts: &'a [Host], ports: &'a [Vec<(&'a str, u16)>]) -> Vec<HostData<'a>> {
        hosts
            .iter()
            .zip(ports)
            .map(|(h, p)| HostData {
                host: &h.0,
                addresses: &h.1,
                ports: p,
            })
            .collect()
    }

    fn patch(
        set: &ZoneSet,
        parents: &mut Parents,
        removed: &[Host],
        added: &[Host],
    ) -> Result<ZoneSet, ZoneError> {
        let removed_ports: Vec<_> = removed.iter().map(ports).collect();
        let added_ports: Vec<_> = added.iter().map(ports).collect();
        set.patched(
            parents,
            &datas(removed, &removed_ports),
            &datas(added, &added_ports),
        )
    }

    /// A full build of `hosts` in the zones `global` and `mesh`, with the
    /// hand-written `shared` hosts.
    fn full(hosts: &BTreeMap<String, Host>, shared: &[&str]) -> (ZoneSet, Parents) {
        let mut b = ZoneSetBuilder::new(1, 30, hosts.len() * 4);
        b.name_server_addresses(&["192.0.2.53".parse().unwrap()]);
        b.zone("global").unwrap().zone("mesh").unwrap();
        for host in hosts.values() {
            b.add_host(&HostData {
                host: &host.0,
                addresses: &host.1,
                ports: &ports(host),
            })
            .unwrap();
        }
        for host in shared {
            b.add_shared_host(&HostData {
                host,
                addresses: &["192.0.2.99".parse().unwrap()],
                ports: &[],
            })
            .unwrap();
        }
        b.build_with_parents()
    }

    fn host() -> impl Strategy<Value = Host> {
        let name = (
            0..12u8,
            prop::sample::select(vec!["a", "b", "ns", "bar"]),
            prop::sample::select(vec!["global", "mesh"]),
        )
            .prop_map(|(i, ns, zone)| format!("s{i}.{ns}.{zone}"));
        let addresses = prop::collection::vec(
            prop::sample::select(vec!["240.0.0.1", "240.0.0.2", "fd00::1", "fd00::2"]),
            0..3,
        )
        .prop_map(|a| a.iter().map(|a| a.parse().unwrap()).collect());
        let ports = prop::collection::btree_map(
            prop::sample::select(vec!["http", "grpc", "tcp"]),
            1..100u16,
            0..3,
        )
        .prop_map(|p| p.into_iter().map(|(n, p)| (n.to_string(), p)).collect());
        (name, addresses, ports)
    }

    proptest! {
        /// Every set reached by patches is the full build of its hosts:
        /// the same names with the same data, the same digest. Edits put a
        /// host (adding it, or changing the one of that name) or remove
        /// one; namespace `ns` shares its name with the name server.
        #[test]
        fn a_patched_set_is_the_full_build(
            start in prop::collection::vec(host(), 0..16),
            edits in prop::collection::vec((prop::option::of(host()), 0..64usize), 1..24),
        ) {
            let mut hosts: BTreeMap<String, Host> =
                start.into_iter().map(|h| (h.0.clone(), h)).collect();
            let (mut set, mut parents) = full(&hosts, &[]);
            for (put, at) in edits {
                let (removed, added): (Vec<Host>, Vec<Host>) = match put {
                    Some(host) => {
                        let before = hosts.insert(host.0.clone(), host.clone());
                        (before.into_iter().collect(), vec![host])
                    }
                    None => {
                        let Some(name) = hosts.keys().nth(at % hosts.len().max(1)).cloned()
                        else {
                            continue;
                        };
                        (vec![hosts.remove(&name).unwrap()], Vec::new())
                    }
                };
                set = patch(&set, &mut parents, &removed, &added).unwrap();
                let (whole, _) = full(&hosts, &[]);
                prop_assert_eq!(set.dump(), whole.dump());
                prop_assert_eq!(set.digest(), whole.digest());
                prop_assert_eq!(set.len(), whole.len());
                // A patch shares key bytes as a full build does.
                prop_assert_eq!(set.key_bytes(), whole.key_bytes());
            }
        }
    }

    /// A host's `_tcp` and SRV names are held by its node: the key arena
    /// has the host's key and its SRV name's first label, no more, in a
    /// full build and in a patch; the names are there all the same.
    #[test]
    fn a_host_s_srv_names_are_held_by_its_node() {
        let host = |name: &str| -> Host {
            (
                name.into(),
                vec!["240.0.0.1".parse().unwrap()],
                vec![("http".into(), 80)],
            )
        };
        let (a, b) = (host("s1.bar.global"), host("s2.bar.global"));
        let own = |name: &str| wire(&fqdn(name).unwrap()).len() + b"\x05_http".len();
        let empty = full(&BTreeMap::new(), &["bar.global"]).0.key_bytes();
        let hosts = BTreeMap::from([(a.0.clone(), a.clone())]);
        let (set, mut parents) = full(&hosts, &["bar.global"]);
        assert_eq!(
            set.len(),
            4 + 1 + 3,
            "apexes, name servers, bar, the host's three"
        );
        assert_eq!(set.key_bytes(), empty + own(&a.0));
        let set = patch(&set, &mut parents, &[], std::slice::from_ref(&b)).unwrap();
        assert_eq!(set.key_bytes(), empty + own(&a.0) + own(&b.0));
        for name in ["_tcp.s2.bar.global", "_http._tcp.s2.bar.global"] {
            assert!(set.node(&wire(&fqdn(name).unwrap())).is_some(), "{name}");
        }
        let set = patch(&set, &mut parents, &[a], &[]).unwrap();
        assert_eq!(set.key_bytes(), empty + own(&b.0));
        for name in ["_tcp.s1.bar.global", "_http._tcp.s1.bar.global"] {
            assert!(set.node(&wire(&fqdn(name).unwrap())).is_none(), "{name}");
        }
    }

    /// A name a hand-written host shares is a full build's to decide: the
    /// patch refuses it rather than guess.
    #[test]
    fn a_shared_name_is_refused() {
        let host: Host = (
            "s1.bar.global".into(),
            vec!["240.0.0.1".parse().unwrap()],
            vec![("http".into(), 80)],
        );
        let hosts = BTreeMap::from([(host.0.clone(), host.clone())]);
        let (set, mut parents) = full(&hosts, &["x.s1.bar.global"]);
        let err = patch(&set, &mut parents, std::slice::from_ref(&host), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("shares a name"), "{err}");
        // A shared host above registry hosts stays when they go.
        let (set, mut parents) = full(&hosts, &["bar.global"]);
        let set = patch(&set, &mut parents, &[host], &[]).unwrap();
        let (whole, _) = full(&BTreeMap::new(), &["bar.global"]);
        assert_eq!(set.dump(), whole.dump());
    }
}
