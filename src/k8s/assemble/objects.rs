//! The objects of one view as [`super::Assembler`] keeps them: each
//! ExportedService decoded once per version, and what changed between one
//! listing of the store and the next.

use std::collections::HashMap;
use std::sync::Arc;

use kube::api::DynamicObject;
use rustc_hash::FxBuildHasher;

use super::{key_hash, service_key};
use crate::k8s::merge::McsExport;
use crate::k8s::resources::{ExportedService, MeshCluster};
use crate::k8s::view::decode;

/// One object of a store, decoded.
#[derive(Debug)]
pub(super) struct Decoded {
    pub(super) object: Arc<DynamicObject>,
    pub(super) decoded: Result<Arc<ExportedService>, String>,
    /// [`key_hash`] of its service's key.
    pub(super) hash: u64,
    /// The build that last saw it in the store.
    pub(super) seen: u64,
}

impl Decoded {
    fn new(object: Arc<DynamicObject>, seen: u64) -> Self {
        let decoded = decode::<ExportedService>(&object).map(Arc::new);
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

    pub(super) fn service(&self) -> Option<&Arc<ExportedService>> {
        self.decoded.as_ref().ok()
    }
}

/// What a view said at the last build.
#[derive(Debug, Default)]
pub(super) struct ViewMemo {
    pub(super) local: bool,
    pub(super) clusters: Vec<MeshCluster>,
    pub(super) exports: Vec<McsExport>,
    /// By object name (a view is one namespace).
    pub(super) objects: HashMap<String, Decoded, FxBuildHasher>,
    /// The objects' addresses, in the order the store last listed them.
    /// The objects are kept (in `objects`), so an address is not reused
    /// while it is here: the same address is the same object.
    pub(super) order: Vec<usize>,
}

/// The warning for an ExportedService object that does not decode.
pub(super) fn undecoded(object: &DynamicObject, error: &str) -> String {
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
pub(super) type Change = (Option<Arc<ExportedService>>, Option<Arc<ExportedService>>);

impl ViewMemo {
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
