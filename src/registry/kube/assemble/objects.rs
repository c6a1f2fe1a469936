//! The objects of one view as [`super::Assembler`] keeps them: each
//! ExportedService decoded once per version, its MCS exports, and what
//! changed between one listing of the stores and the next.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use kube::api::DynamicObject;
use rustc_hash::FxBuildHasher;

use super::{Key, export_key, key_hash, service_key};
use crate::registry::kube::cluster_watch::{ObjectError, decode};
use crate::registry::kube::declared::{DeclaredCluster, DeclaredService};
use crate::registry::kube::merge::{McsExport, View};
use crate::registry::kube::resources::ExportedService;

/// One object of a store, decoded.
#[derive(Debug)]
pub(super) struct Decoded {
    pub(super) object: Arc<DynamicObject>,
    /// Its service, or why it does not decode (kept, to be warned of at
    /// every build while the object stays).
    pub(super) decoded: Result<Arc<DeclaredService>, ObjectError>,
    /// [`key_hash`] of its service's key.
    pub(super) hash: u64,
    /// The build that last saw it in the store.
    pub(super) seen: u64,
}

impl Decoded {
    fn new(object: Arc<DynamicObject>, seen: u64) -> Self {
        let decoded = decode_service(&object);
        let hash = decoded.as_ref().map_or(0, |s| key_hash(&service_key(s)));
        Self {
            object,
            decoded,
            hash,
            seen,
        }
    }

    /// Takes `object`, a new version of this one, and says what changed.
    fn replace(&mut self, object: Arc<DynamicObject>, build: u64, changes: &mut Vec<Change>) {
        let before = std::mem::replace(self, Self::new(object, build));
        changes.push((before.service().cloned(), self.service().cloned()));
    }

    pub(super) fn service(&self) -> Option<&Arc<DeclaredService>> {
        self.decoded.as_ref().ok()
    }
}

/// An ExportedService object converted as the assembler keeps it (the
/// edge: nothing past it sees the Kubernetes object): its name and
/// namespace, the only metadata the merge and validation read (to order it
/// and to name it in messages), and its spec; the store keeps the rest.
/// Errors as [`decode`] does: the field that does not decode.
pub(super) fn decode_service(object: &DynamicObject) -> Result<Arc<DeclaredService>, ObjectError> {
    let service = decode::<ExportedService>(object)?;
    Ok(Arc::new(DeclaredService::from(service)))
}

/// What a view said at the last build.
#[derive(Debug, Default)]
pub(super) struct ViewMemo {
    pub(super) local: bool,
    pub(super) clusters: Vec<DeclaredCluster>,
    pub(super) exports: Vec<McsExport>,
    /// By object name (a view is one namespace).
    pub(super) objects: HashMap<String, Decoded, FxBuildHasher>,
    /// The objects' addresses, in the order the store last listed them.
    /// The objects are kept (in `objects`), so an address is not reused
    /// while it is here: the same address is the same object.
    pub(super) order: Vec<usize>,
}

/// The warning for an ExportedService object that does not decode.
pub(super) fn undecoded(object: &DynamicObject, error: &ObjectError) -> String {
    format!(
        "skipped ExportedService {}/{}: {error}",
        object.metadata.namespace.as_deref().unwrap_or("-"),
        object.metadata.name.as_deref().unwrap_or("-")
    )
}

/// Where an object is: what tells it from another version of it.
fn address(object: &Arc<DynamicObject>) -> usize {
    Arc::as_ptr(object) as usize
}

/// One object's service as it was and as it is (`None`: there was none,
/// or it does not decode).
pub(super) type Change = (Option<Arc<DeclaredService>>, Option<Arc<DeclaredService>>);

/// One MCS export as it was and as it is (`None`: there was none).
pub(super) type ExportChange = (Option<McsExport>, Option<McsExport>);

/// What changed in one view since the last build.
#[derive(Debug, Default)]
pub(super) struct Changes {
    pub(super) services: Vec<Change>,
    pub(super) exports: Vec<ExportChange>,
}

impl Changes {
    /// The keys of what changed, as it was and as it is: the dirty keys.
    pub(super) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        let services = self
            .services
            .iter()
            .flat_map(|(was, is)| was.iter().chain(is));
        let exports = self
            .exports
            .iter()
            .flat_map(|(was, is)| was.iter().chain(is));
        services
            .map(|s| service_key(s))
            .chain(exports.map(export_key))
    }

    /// `view`, which holds at least the dirty keys' objects as they are,
    /// as it was before these changes.
    pub(super) fn undo(&self, view: &mut View) {
        for (was, is) in &self.services {
            // Object names are unique in a view (one namespace); a changed
            // object's key is dirty, so it is among them.
            let at = is.as_ref().and_then(|is| {
                let name = &is.name;
                view.services.iter().position(|s| s.name == *name)
            });
            if let Some(at) = at {
                view.services.remove(at);
            }
            view.services.extend(was.iter().cloned());
        }
        for (was, is) in &self.exports {
            if let Some(is) = is {
                view.exports.retain(|e| e != is);
            }
            view.exports.extend(was.iter().cloned());
        }
    }
}

/// The order a view's MCS exports are kept in: by namespace, then name.
fn by_name(a: &McsExport, b: &McsExport) -> Ordering {
    (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name))
}

impl ViewMemo {
    /// Takes the view's MCS exports as they are now, and says which
    /// changed in `changes`: one walk of the two sorted lists. (Exports are
    /// named after their Service, so a view has one of a namespace and
    /// name.)
    pub(super) fn update_exports(
        &mut self,
        mut exports: Vec<McsExport>,
        changes: &mut Vec<ExportChange>,
    ) {
        exports.sort_by(by_name);
        let was = std::mem::replace(&mut self.exports, exports);
        let (mut was, mut is) = (was.into_iter().peekable(), self.exports.iter().peekable());
        loop {
            let order = match (was.peek(), is.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => by_name(a, b),
            };
            match order {
                Ordering::Less => changes.push((was.next(), None)),
                Ordering::Greater => changes.push((None, is.next().cloned())),
                Ordering::Equal => {
                    let (a, b) = (was.next(), is.next());
                    if a.as_ref() != b {
                        changes.push((a, b.cloned()));
                    }
                }
            }
        }
    }

    /// Takes the store's objects as they are now, decoding those that are
    /// new or changed, and says what changed in `changes`.
    pub(super) fn update(
        &mut self,
        services: &[Arc<DynamicObject>],
        build: u64,
        changes: &mut Vec<Change>,
    ) {
        // The store lists its objects in the same order while none comes
        // or goes: then a change is an object replaced where it stands, and
        // comparing pointers in order finds it without a lookup per object.
        let replaced: Option<Vec<usize>> = (self.order.len() == services.len()).then(|| {
            (0..services.len())
                .filter(|&i| self.order[i] != address(&services[i]))
                .collect()
        });
        let in_place = replaced.as_ref().is_some_and(|at| {
            at.iter().all(|&i| {
                let name = services[i].metadata.name.as_deref().unwrap_or_default();
                self.objects
                    .get(name)
                    .is_some_and(|known| address(&known.object) == self.order[i])
            })
        });
        if let (true, Some(at)) = (in_place, replaced) {
            for i in at {
                let object = services[i].clone();
                let name = object.metadata.name.as_deref().unwrap_or_default();
                if let Some(known) = self.objects.get_mut(name) {
                    known.replace(object, build, changes);
                }
                self.order[i] = address(&services[i]);
            }
            return;
        }
        for object in services {
            let name = object.metadata.name.as_deref().unwrap_or_default();
            match self.objects.get_mut(name) {
                Some(known) if Arc::ptr_eq(&known.object, object) => known.seen = build,
                Some(known) => known.replace(object.clone(), build, changes),
                None => {
                    let now = Decoded::new(object.clone(), build);
                    changes.push((None, now.service().cloned()));
                    self.objects.insert(name.to_string(), now);
                }
            }
        }
        self.objects.retain(|_, known| {
            let kept = known.seen == build;
            if !kept {
                changes.push((known.service().cloned(), None));
            }
            kept
        });
        self.order = services.iter().map(address).collect();
    }
}
