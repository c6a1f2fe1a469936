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

use rustc_hash::{FxBuildHasher, FxHashMap};

use super::host::HostNames;
use super::names::{Carrier, NO_SRV, Names, Node, Shard, ZoneIndex, hash_key, place};
use super::{HostData, ZoneSet};

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
    /// staleness are this set's.
    pub fn patched(
        &self,
        parents: &mut Parents,
        removed: &[HostData<'_>],
        added: &[HostData<'_>],
    ) -> Result<ZoneSet, String> {
        let count = self.names.shards.len();
        let mut edits: HashMap<usize, Edit> = HashMap::new();
        // Each parent touched: its claims before the patch, and its zone.
        let mut touched: HashMap<Box<[u8]>, (u32, ZoneIndex), FxBuildHasher> = HashMap::default();
        for data in removed {
            let names = HostNames::of(data, &self.zones)?;
            for key in names.own() {
                if parents.count(key) > 0 {
                    return Err(format!("{} shares a name with another host", data.host));
                }
                if self.node(key).is_none() {
                    return Err(format!("{} is not in the set", data.host));
                }
                edit(&mut edits, key, count).remove.insert(key.into());
            }
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
                return Err(format!("{} is a wildcard", data.host));
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
) -> Result<Arc<Shard>, String> {
    let names = old.nodes.len() + edit.hosts.len() * 3 + edit.parents.len();
    let key_bytes = old.keys.len() + edit.hosts.len() * 64 + edit.parents.len() * 32;
    let mut new = Shard::with_capacity(names, key_bytes);
    // Where each old node went; NO_SRV for those taken out.
    let mut moved = vec![NO_SRV; old.nodes.len()];
    let kept = || {
        old.nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| !edit.remove.contains(old.key(node)))
    };
    // Keys that share bytes in the old arena share them in the new one: a
    // key ends where the key it is the tail of ends (`Carrier`), so the
    // bytes up to each end are copied once, as many as the longest key
    // kept that ends there needs.
    let end = |node: &Node| node.key + u32::from(node.key_len);
    let mut longest: FxHashMap<u32, u8> = FxHashMap::default();
    for (_, node) in kept() {
        let len = longest.entry(end(node)).or_default();
        *len = (*len).max(node.key_len);
    }
    let mut carriers: FxHashMap<u32, Carrier> = FxHashMap::default();
    for (i, node) in kept() {
        let key = old.key(node);
        let carrier = match carriers.get(&end(node)) {
            Some(&carrier) => carrier,
            None => {
                let (to, len) = (end(node) as usize, usize::from(longest[&end(node)]));
                let carrier = new.carry(&old.keys[to - len..to])?;
                carriers.insert(end(node), carrier);
                carrier
            }
        };
        let index = new.insert_in(key, hash_key(key), node.zone, Some(carrier))?;
        new.set_split_addresses(
            index,
            old.v4[node.a.range()].iter().copied(),
            old.v6[node.aaaa.range()].iter().copied(),
        )?;
        moved[i] = index;
    }
    for (i, node) in old.nodes.iter().enumerate() {
        if moved[i] == NO_SRV || node.srv_target == NO_SRV {
            continue;
        }
        let target = moved[node.srv_target as usize];
        if target == NO_SRV {
            return Err(format!("an SRV name lost its host: {:?}", old.key(node)));
        }
        let copy = &mut new.nodes[moved[i] as usize];
        copy.srv_port = node.srv_port;
        copy.srv_target = target;
    }
    for &at in &edit.hosts {
        let (names, addresses) = &added[at];
        let zone = names.zone;
        // The host's first SRV name carries the keys of its names.
        let carrier = names
            .srv
            .first()
            .map(|(key, _)| new.carry(key))
            .transpose()?;
        let fresh = |new: &mut Shard, key: &[u8]| {
            let hash = hash_key(key);
            match new.find(key, hash) {
                Some(_) => Err(format!("{key:?} is in the set already")),
                None => new.insert_in(key, hash, zone, carrier),
            }
        };
        let host = fresh(&mut new, &names.host)?;
        new.set_addresses(host, addresses)?;
        if let Some(tcp) = &names.tcp {
            fresh(&mut new, tcp)?;
        }
        for (key, number) in &names.srv {
            let srv = fresh(&mut new, key)?;
            let node = &mut new.nodes[srv as usize];
            node.srv_port = *number;
            node.srv_target = host;
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
    ) -> Result<ZoneSet, String> {
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

    /// A host's names (`_http._tcp.<host>`, `_tcp.<host>`, `<host>`) hold
    /// its SRV name's key bytes once, in a full build and in a patch.
    #[test]
    fn a_host_and_its_srv_names_hold_one_key() {
        let host = |name: &str| -> Host {
            (
                name.into(),
                vec!["240.0.0.1".parse().unwrap()],
                vec![("http".into(), 80)],
            )
        };
        let (a, b) = (host("s1.bar.global"), host("s2.bar.global"));
        let srv_key = |name: &str| wire(&fqdn(&format!("_http._tcp.{name}")).unwrap()).len();
        let empty = full(&BTreeMap::new(), &["bar.global"]).0.key_bytes();
        let hosts = BTreeMap::from([(a.0.clone(), a.clone())]);
        let (set, mut parents) = full(&hosts, &["bar.global"]);
        assert_eq!(
            set.len(),
            4 + 1 + 3,
            "apexes, name servers, bar, the host's three"
        );
        assert_eq!(set.key_bytes(), empty + srv_key(&a.0));
        let set = patch(&set, &mut parents, &[], std::slice::from_ref(&b)).unwrap();
        assert_eq!(set.key_bytes(), empty + srv_key(&a.0) + srv_key(&b.0));
        let set = patch(&set, &mut parents, &[a], &[]).unwrap();
        assert_eq!(set.key_bytes(), empty + srv_key(&b.0));
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
        let err = patch(&set, &mut parents, std::slice::from_ref(&host), &[]).unwrap_err();
        assert!(err.contains("shares a name"), "{err}");
        // A shared host above registry hosts stays when they go.
        let (set, mut parents) = full(&hosts, &["bar.global"]);
        let set = patch(&set, &mut parents, &[host], &[]).unwrap();
        let (whole, _) = full(&BTreeMap::new(), &["bar.global"]);
        assert_eq!(set.dump(), whole.dump());
    }
}
