//! The registry from the watched clusters' objects, rebuilt by what
//! changed: a change of one ExportedService costs the work of that one
//! service, not of every object the clusters hold.
//!
//! [`crate::registry::kube::merge::merge`] and [`crate::registry::kube::declared::registry_from`] stay
//! the definition of the result. They treat each service (its objects of
//! every view, keyed by lower-case namespace and name, as the merge keys
//! them) apart from every other, given the clusters. So when no cluster
//! or view changed, the registry is the one before with the
//! services of the *dirty* keys (the keys of the objects that changed,
//! before and after) taken out and put back, each computed by running the
//! same two functions on that key's objects alone. An MCS export is keyed
//! the same way (it is a claim on one service), so an export that comes,
//! goes or changes its ports is a dirty key too. Their messages (skips,
//! conflicts) are kept as multisets and changed the same way: a key's part
//! before the change is computed again from its objects as they were, and
//! taken out. Anything else (a cluster, a view coming or going, a
//! remembered peer, many keys at once) is built whole.
//!
//! Decoding is cached too: an object is decoded again only when the store
//! holds a new version of it (a new `Arc`), so a change decodes one object.
//! A property test holds the incremental result to a whole build on random
//! sequences of edits.
//!
//! At 100,000 ExportedServices a change of one object takes 1.7–2.1 s
//! built whole (every object decoded, merged and validated) and 7–17 ms
//! by keys (`cargo run --release --example k8s-change`;
//! docs/benchmarks.md). What is left is linear but small: comparing the
//! store's list with the last one by address, and the registry's list of
//! shared services.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use kube::api::DynamicObject;
use rustc_hash::FxBuildHasher;

use super::declared::registry_from;
use super::declared::{DeclaredCluster, DeclaredService};
use super::merge::{McsExport, View, merge};
use crate::registry::{Registry, Service};

mod keys;
mod objects;

use keys::{add, listed, take};
use objects::{Changes, ViewMemo, undecoded};

/// A service's key, as the merge keys it: lower-case namespace and name.
type Key = (String, String);

/// More dirty keys than this (or than an eighth of the objects) and the
/// registry is built whole: past it, the per-key runs cost more.
const MOST_DIRTY: usize = 1024;

/// What one watched cluster says, as the stores hold it.
#[derive(Clone, Debug)]
pub struct ViewInput {
    /// As [`View::cluster`].
    pub cluster: String,
    pub local: bool,
    /// Its MeshClusters, converted.
    pub clusters: Vec<DeclaredCluster>,
    /// The MCS exports, in any order (the assembler keeps them sorted by
    /// namespace and name).
    pub exports: Vec<McsExport>,
    /// The ExportedService objects, undecoded, as the store shares them:
    /// an object whose `Arc` is the one of the last build is not decoded
    /// again.
    pub services: Vec<Arc<DynamicObject>>,
}

/// The registry the objects describe, and what was said about them.
#[derive(Debug, Default)]
pub struct Assembled {
    pub registry: Registry,
    /// ExportedService objects that do not decode, one message each.
    pub undecoded: Vec<String>,
    /// Objects left out by the merge, and by validation (as
    /// [`crate::registry::kube::declared::FromResources::warnings`]).
    pub warnings: Vec<String>,
    /// Two views disagreeing, sorted.
    pub conflicts: Vec<String>,
    /// As [`crate::registry::kube::declared::FromResources`].
    pub skipped: usize,
    pub dangling_exports: usize,
    /// Built from the dirty keys only.
    pub incremental: bool,
}

/// The last build, and what it takes to build the next by what changed.
#[derive(Debug, Default)]
pub struct Assembler {
    zones: Vec<String>,
    /// By cluster name.
    views: BTreeMap<String, ViewMemo>,
    build: u64,
    /// The last build can be changed by keys: it was built from the
    /// `views` alone (no remembered peer).
    keyed: bool,
    clusters: Vec<crate::registry::Cluster>,
    /// The services in the order [`registry_from`] gives them: by object
    /// name, then key.
    services: BTreeMap<(String, Key), Arc<Service>>,
    warnings: BTreeMap<String, usize>,
    conflicts: BTreeMap<String, usize>,
    skipped: usize,
    dangling_exports: usize,
    /// Tests: build by keys however many changed, so that small worlds
    /// exercise it.
    by_keys_always: bool,
}

fn key_of(namespace: &str, name: &str) -> Key {
    (namespace.to_ascii_lowercase(), name.to_ascii_lowercase())
}

fn service_key(service: &DeclaredService) -> Key {
    key_of(&service.spec.namespace, &service.spec.name)
}

fn export_key(export: &McsExport) -> Key {
    key_of(&export.namespace, &export.name)
}

/// A 64-bit hash of a key, to find a key's objects in one pass.
fn key_hash(key: &Key) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// Merges and validates `views` (the reference: what a whole build is).
fn run(
    views: &[View],
    zones: &[String],
) -> (
    crate::registry::kube::merge::Merged,
    crate::registry::kube::declared::FromResources,
) {
    let merged = merge(views);
    let from = registry_from(&merged.clusters, &merged.services, zones);
    (merged, from)
}

impl Assembler {
    /// The registry of `inputs` and of the `remembered` views (peers not
    /// yet listed, from the last-known-good registry), for `zones`; built
    /// from the keys that changed since the last call when it can be.
    pub fn build(
        &mut self,
        inputs: Vec<ViewInput>,
        remembered: Vec<View>,
        zones: &[String],
    ) -> Assembled {
        let names: BTreeSet<&str> = inputs.iter().map(|i| i.cluster.as_str()).collect();
        if names.len() != inputs.len() {
            return Self::uncached(self, inputs, remembered, zones);
        }
        self.build += 1;
        let build = self.build;
        let mut whole = !self.keyed || !remembered.is_empty() || zones != self.zones;
        whole |= !self
            .views
            .keys()
            .map(String::as_str)
            .eq(names.iter().copied());
        self.views.retain(|name, _| names.contains(name.as_str()));
        // The changed objects' services and exports as they were and as
        // they are, by view.
        let mut changed: BTreeMap<String, Changes> = BTreeMap::new();
        for input in inputs {
            let memo = self.views.entry(input.cluster.clone()).or_default();
            let mut clusters = input.clusters;
            clusters.sort_by(|a, b| a.name.cmp(&b.name));
            whole |= memo.local != input.local || memo.clusters != clusters;
            memo.local = input.local;
            memo.clusters = clusters;
            let changes = changed.entry(input.cluster).or_default();
            memo.update_exports(input.exports, &mut changes.exports);
            memo.update(&input.services, build, &mut changes.services);
        }
        self.zones = zones.to_vec();
        let undecoded = self.undecoded();
        let dirty: BTreeSet<Key> = changed.values().flat_map(Changes::keys).collect();
        let objects: usize = self.views.values().map(|v| v.objects.len()).sum();
        let many = dirty.len() > MOST_DIRTY || dirty.len() * 8 > objects.max(8);
        if whole || (many && !self.by_keys_always) {
            return self.whole(remembered, undecoded);
        }
        self.by_keys(&dirty, &changed, undecoded)
    }

    /// Two inputs for one cluster name (a peer named like the local
    /// cluster): built as they come, every object decoded, nothing kept.
    fn uncached(
        &mut self,
        inputs: Vec<ViewInput>,
        remembered: Vec<View>,
        zones: &[String],
    ) -> Assembled {
        *self = Self::default();
        let mut undecoded = Vec::new();
        let mut views: Vec<View> = inputs
            .into_iter()
            .map(|input| View {
                services: input
                    .services
                    .iter()
                    .filter_map(|object| {
                        objects::decode_service(object)
                            .inspect_err(|e| undecoded.push(objects::undecoded(object, e)))
                            .ok()
                    })
                    .collect(),
                cluster: input.cluster,
                local: input.local,
                clusters: input.clusters,
                exports: input.exports,
            })
            .collect();
        views.extend(remembered);
        let (mut merged, mut from) = run(&views, zones);
        merged.ignored.append(&mut from.warnings);
        merged.conflicts.sort();
        Assembled {
            registry: from.registry,
            undecoded,
            warnings: merged.ignored,
            conflicts: merged.conflicts,
            skipped: from.skipped,
            dangling_exports: from.dangling_exports,
            incremental: false,
        }
    }

    /// Messages of the objects that do not decode, in object name order.
    fn undecoded(&self) -> Vec<String> {
        let mut out: Vec<(&str, &str, String)> = Vec::new();
        for memo in self.views.values() {
            for (name, known) in &memo.objects {
                if let Err(e) = &known.decoded {
                    let namespace = known.object.metadata.namespace.as_deref().unwrap_or("-");
                    out.push((namespace, name, undecoded(&known.object, e)));
                }
            }
        }
        out.sort();
        out.into_iter().map(|(_, _, message)| message).collect()
    }

    /// The views, with only the services and exports of the keys in
    /// `dirty` (`None`: all of them).
    fn views(&self, dirty: Option<&BTreeSet<Key>>) -> Vec<View> {
        // The hashes first: an object's key is made (lower-cased) only when
        // its hash is a dirty key's.
        let hashes: HashSet<u64, FxBuildHasher> =
            dirty.into_iter().flatten().map(key_hash).collect();
        let take = |hash: u64, key: &dyn Fn() -> Key| {
            dirty.is_none_or(|dirty| hashes.contains(&hash) && dirty.contains(&key()))
        };
        self.views
            .iter()
            .map(|(cluster, memo)| View {
                cluster: cluster.clone(),
                local: memo.local,
                clusters: memo.clusters.clone(),
                services: memo
                    .objects
                    .values()
                    .filter_map(|known| Some((known.hash, known.service()?)))
                    .filter(|(hash, s)| take(*hash, &|| service_key(s)))
                    .map(|(_, s)| s.clone())
                    .collect(),
                exports: memo
                    .exports
                    .iter()
                    .filter(|e| take(key_hash(&export_key(e)), &|| export_key(e)))
                    .cloned()
                    .collect(),
            })
            .collect()
    }

    fn whole(&mut self, remembered: Vec<View>, undecoded: Vec<String>) -> Assembled {
        let mut views = self.views(None);
        self.keyed = remembered.is_empty();
        views.extend(remembered);
        let (merged, from) = run(&views, &self.zones);
        let names: HashMap<Key, &str> = merged
            .services
            .iter()
            .map(|s| (service_key(s), s.name.as_str()))
            .collect();
        self.services = from
            .registry
            .services
            .iter()
            .map(|s| {
                let key = key_of(&s.namespace, &s.name);
                let name = names.get(&key).copied().unwrap_or_default().to_string();
                ((name, key), s.clone())
            })
            .collect();
        self.clusters = from.registry.clusters.clone();
        self.warnings.clear();
        add(&mut self.warnings, &merged.ignored);
        add(&mut self.warnings, &from.warnings);
        self.conflicts.clear();
        add(&mut self.conflicts, &merged.conflicts);
        self.skipped = from.skipped;
        self.dangling_exports = from.dangling_exports;
        self.assembled(undecoded, false)
    }

    /// The last build with the dirty keys' parts replaced.
    fn by_keys(
        &mut self,
        dirty: &BTreeSet<Key>,
        changed: &BTreeMap<String, Changes>,
        undecoded: Vec<String>,
    ) -> Assembled {
        // The dirty keys' objects now; before, the changed ones as they were.
        let now = self.views(Some(dirty));
        let before: Vec<View> = now
            .iter()
            .map(|view| {
                let mut view = view.clone();
                if let Some(changes) = changed.get(&view.cluster) {
                    changes.undo(&mut view);
                }
                view
            })
            .collect();
        let base = keys::base(&now, &self.zones);
        for key in dirty {
            let was = keys::part(&before, key, &base, &self.zones);
            let is = keys::part(&now, key, &base, &self.zones);
            if let Some((name, _)) = was.service {
                self.services.remove(&(name, key.clone()));
            }
            take(&mut self.warnings, &was.warnings);
            take(&mut self.conflicts, &was.conflicts);
            self.skipped = self.skipped.saturating_sub(was.skipped);
            self.dangling_exports = self.dangling_exports.saturating_sub(was.dangling_exports);
            if let Some((name, service)) = is.service {
                self.services.insert((name, key.clone()), service);
            }
            add(&mut self.warnings, &is.warnings);
            add(&mut self.conflicts, &is.conflicts);
            self.skipped += is.skipped;
            self.dangling_exports += is.dangling_exports;
        }
        self.assembled(undecoded, true)
    }

    fn assembled(&self, undecoded: Vec<String>, incremental: bool) -> Assembled {
        let mut registry = Registry {
            clusters: self.clusters.clone(),
            services: self.services.values().cloned().collect(),
            // The resources carry no registry-wide defaults: each
            // ExportedService gives its own policy.
            defaults: Default::default(),
        };
        registry.shrink_to_fit();
        Assembled {
            registry,
            undecoded,
            warnings: listed(&self.warnings),
            conflicts: listed(&self.conflicts),
            skipped: self.skipped,
            dangling_exports: self.dangling_exports,
            incremental,
        }
    }
}

#[cfg(test)]
mod tests;
