use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::registry::Port;
use crate::registry::kube::merge::McsExport;
use crate::registry::kube::merge::tests::cluster;

const VIEWS: [(&str, bool); 3] = [("east", true), ("west", false), ("north", false)];

fn zones() -> Vec<String> {
    vec!["global".to_string()]
}

fn object(name: &str, spec: Value) -> Arc<DynamicObject> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "globaldns.io/v1alpha1",
            "kind": "ExportedService",
            "metadata": {"name": name, "namespace": "globaldns"},
            "spec": spec,
        }))
        .unwrap(),
    )
}

/// One edit of one view's objects.
#[derive(Clone, Debug)]
struct Edit {
    view: usize,
    slot: usize,
    /// 0..=5: an ExportedService (several shapes), 6: one that does not
    /// decode, 7: gone.
    what: u8,
    service: usize,
    namespace: usize,
    port: u32,
    /// The local view's description of cluster west moves (a whole build).
    move_west: bool,
    /// The stores list their objects in another order from now on.
    reorder: bool,
    /// Made together with the next edit, before the registry is built.
    together: bool,
    /// 0: the view's MCS export of this edit's service is gone; 1: it is
    /// there, with this edit's port; otherwise untouched.
    mcs: u8,
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = (
        (0..3usize, 0..10usize, 0..8u8, 0..4usize, 0..6u8),
        (0..2usize, 0..3u32, 0..30u8, 0..10u8, 0..4u8),
    )
        .prop_map(
            |(
                (view, slot, what, service, mcs),
                (namespace, port, move_west, reorder, together),
            )| Edit {
                view,
                slot,
                what,
                service,
                namespace,
                port,
                move_west: move_west == 0,
                reorder: reorder == 0,
                together: together == 0,
                mcs,
            },
        );
    proptest::collection::vec(edit, 1..40)
}

/// The spec an edit writes.
fn spec(edit: &Edit) -> Value {
    let own = VIEWS[edit.view].0;
    let from: Vec<&str> = match edit.what {
        0 => vec![],
        1 => vec![own],
        2 => vec!["west"],
        3 => vec![own, "east"],
        4 => vec!["ghost"],
        _ => vec![own, "ghost"],
    };
    // Port 0 is refused by validation: the object is skipped.
    let number = [8080, 9090, 0][edit.port as usize];
    let name = ["httpbin", "HTTPBIN", "reviews", "ratings"][edit.service];
    let namespace = ["bar", "foo"][edit.namespace];
    json!({
        "name": name,
        "namespace": namespace,
        "exportedFrom": from,
        "ports": [{"name": "http", "number": number, "protocol": "HTTP"}],
    })
}

struct World {
    objects: [BTreeMap<usize, Arc<DynamicObject>>; 3],
    /// Each view's MCS exports, by namespace and name.
    exports: [BTreeMap<(String, String), McsExport>; 3],
    west_gateway: &'static str,
    /// The stores' order: their objects rotated by this much.
    rotation: usize,
}

impl World {
    fn inputs(&self) -> Vec<ViewInput> {
        VIEWS
            .iter()
            .zip(&self.objects)
            .zip(&self.exports)
            .map(|((&(name, local), objects), exports)| ViewInput {
                cluster: name.to_string(),
                local,
                clusters: match name {
                    "east" => vec![
                        cluster("east", "192.0.2.1"),
                        cluster("west", self.west_gateway),
                    ],
                    "west" => vec![cluster("west", "192.0.2.2")],
                    // A peer describing another cluster: ignored, reported.
                    _ => vec![cluster("north", "192.0.2.3"), cluster("east", "192.0.2.9")],
                },
                exports: {
                    let mut listed: Vec<_> = exports.values().cloned().collect();
                    // Not in the order the view gives them: sorted again.
                    if self.rotation % 2 == 1 {
                        listed.reverse();
                    }
                    listed
                },
                services: {
                    let mut listed: Vec<_> = objects.values().cloned().collect();
                    let by = self.rotation % listed.len().max(1);
                    listed.rotate_left(by);
                    listed
                },
            })
            .collect()
    }

    fn apply(&mut self, edit: &Edit) {
        self.rotation += usize::from(edit.reorder);
        if edit.move_west {
            self.west_gateway = if self.west_gateway == "192.0.2.2" {
                "192.0.2.7"
            } else {
                "192.0.2.2"
            };
        }
        // A ServiceExport is named after its Service: lower case.
        let service = ["httpbin", "httpbin", "reviews", "ratings"][edit.service];
        let namespace = ["bar", "foo"][edit.namespace];
        let key = (namespace.to_string(), service.to_string());
        match edit.mcs {
            0 => {
                self.exports[edit.view].remove(&key);
            }
            1 => {
                let number = [8080, 9090, 0][edit.port as usize];
                let export = mcs(service, namespace, number);
                self.exports[edit.view].insert(key, export);
            }
            _ => {}
        }
        let objects = &mut self.objects[edit.view];
        let name = format!("object-{}", edit.slot);
        match edit.what {
            7 => {
                objects.remove(&edit.slot);
            }
            6 => {
                objects.insert(edit.slot, object(&name, json!({"namespace": "bar"})));
            }
            _ => {
                objects.insert(edit.slot, object(&name, spec(edit)));
            }
        }
    }
}

fn mcs(name: &str, namespace: &str, port: u32) -> McsExport {
    McsExport {
        name: name.into(),
        namespace: namespace.into(),
        ports: vec![Port::new("http", port, "HTTP")],
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// After any sequence of edits, the registry built by what changed is
    /// the one a whole build of the same objects gives: the same clusters,
    /// services in the same order, the same messages and counts.
    #[test]
    fn a_build_by_keys_is_a_whole_build(edits in edits()) {
        let mut exports: [BTreeMap<_, _>; 3] = Default::default();
        exports[1].insert(("bar".into(), "ratings".into()), mcs("ratings", "bar", 8080));
        let mut world = World { objects: Default::default(), exports, west_gateway: "192.0.2.2", rotation: 0 };
        let mut assembler = Assembler { by_keys_always: true, ..Default::default() };
        let (mut by_keys, mut expected, mut gateway) = (0, 0, None);
        for edit in &edits {
            world.apply(edit);
            if edit.together {
                continue;
            }
            let got = assembler.build(world.inputs(), Vec::new(), &zones());
            let want = Assembler::default().build(world.inputs(), Vec::new(), &zones());
            prop_assert!(!want.incremental);
            // The first build is whole, and so is one after a cluster moved.
            expected += usize::from(gateway == Some(world.west_gateway));
            gateway = Some(world.west_gateway);
            by_keys += usize::from(got.incremental);
            prop_assert_eq!(&got.registry, &want.registry);
            prop_assert_eq!(sorted(got.warnings), sorted(want.warnings));
            prop_assert_eq!(got.conflicts, want.conflicts);
            prop_assert_eq!(got.undecoded, want.undecoded);
            prop_assert_eq!(got.skipped, want.skipped);
            prop_assert_eq!(got.dangling_exports, want.dangling_exports);
        }
        // Every build that could be by keys was.
        prop_assert_eq!(by_keys, expected);
    }
}

/// A change of one object decodes that object alone and shares every other
/// service with the build before.
#[test]
fn one_change_decodes_one_object_and_shares_the_rest() {
    let clusters = vec![cluster("east", "192.0.2.1")];
    let objects: Vec<Arc<DynamicObject>> = (0..100)
        .map(|i| {
            object(
                &format!("svc-{i}"),
                json!({"name": format!("svc-{i}"), "namespace": "bar", "exportedFrom": ["east"],
                       "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}]}),
            )
        })
        .collect();
    let input = |objects: &[Arc<DynamicObject>]| {
        vec![ViewInput {
            cluster: "east".into(),
            local: true,
            clusters: clusters.clone(),
            exports: Vec::new(),
            services: objects.to_vec(),
        }]
    };
    let mut assembler = Assembler::default();
    let first = assembler.build(input(&objects), Vec::new(), &zones());
    assert!(!first.incremental);
    assert_eq!(first.registry.services.len(), 100);

    let mut edited = objects.clone();
    edited[7] = object(
        "svc-7",
        json!({"name": "svc-7", "namespace": "bar", "exportedFrom": ["east"],
               "ports": [{"name": "http", "number": 81, "protocol": "HTTP"}]}),
    );
    let before: Vec<*const DeclaredService> = assembler.views["east"]
        .objects
        .values()
        .filter_map(|d| d.service().map(Arc::as_ptr))
        .collect();
    let second = assembler.build(input(&edited), Vec::new(), &zones());
    assert!(second.incremental);
    let after: Vec<*const DeclaredService> = assembler.views["east"]
        .objects
        .values()
        .filter_map(|d| d.service().map(Arc::as_ptr))
        .collect();
    let redecoded = after.iter().filter(|p| !before.contains(p)).count();
    assert_eq!(redecoded, 1, "only the changed object is decoded again");
    let shared = first
        .registry
        .services
        .iter()
        .zip(second.registry.services.iter())
        .filter(|(a, b)| Arc::ptr_eq(a, b))
        .count();
    assert_eq!(shared, 99, "every other service is the one before");
    let changed = second
        .registry
        .services
        .iter()
        .find(|s| s.name == "svc-7")
        .unwrap();
    assert_eq!(changed.ports[0].number, 81);
}

/// A remembered peer, a cluster's change and a view that goes all build
/// the registry whole.
#[test]
fn what_is_not_a_service_builds_whole() {
    let view = |gateway: &str| ViewInput {
        cluster: "east".into(),
        local: true,
        clusters: vec![cluster("east", gateway)],
        exports: Vec::new(),
        services: vec![object(
            "a",
            json!({"name": "a", "namespace": "bar", "exportedFrom": ["east"],
                   "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}]}),
        )],
    };
    let mut assembler = Assembler::default();
    assert!(
        !assembler
            .build(vec![view("192.0.2.1")], Vec::new(), &zones())
            .incremental
    );
    assert!(
        assembler
            .build(vec![view("192.0.2.1")], Vec::new(), &zones())
            .incremental
    );
    let moved = assembler.build(vec![view("192.0.2.5")], Vec::new(), &zones());
    assert!(!moved.incremental);
    assert_eq!(moved.registry.clusters[0].gateways[0].address, "192.0.2.5");
    let remembered = View {
        cluster: "west".into(),
        ..Default::default()
    };
    assert!(
        !assembler
            .build(vec![view("192.0.2.5")], vec![remembered], &zones())
            .incremental
    );
    // The remembered peer's part is in that build: the next is whole too.
    assert!(
        !assembler
            .build(vec![view("192.0.2.5")], Vec::new(), &zones())
            .incremental
    );
    assert!(
        assembler
            .build(vec![view("192.0.2.5")], Vec::new(), &zones())
            .incremental
    );
    assert!(
        !assembler
            .build(Vec::new(), Vec::new(), &zones())
            .incremental
    );
}

/// A peer named like the local cluster gives two inputs of one name: both
/// are merged, as the views they are, and nothing is kept for the next.
#[test]
fn two_inputs_of_one_name_are_both_merged() {
    let input = |local: bool, gateway: &str, service: &str| ViewInput {
        cluster: "east".into(),
        local,
        clusters: vec![cluster("east", gateway)],
        exports: Vec::new(),
        services: vec![object(
            service,
            json!({"name": service, "namespace": "bar",
                   "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}]}),
        )],
    };
    let inputs = vec![
        input(true, "192.0.2.1", "a"),
        input(false, "192.0.2.2", "b"),
    ];
    let views: Vec<View> = inputs
        .iter()
        .map(|i| View {
            cluster: i.cluster.clone(),
            local: i.local,
            clusters: i.clusters.clone(),
            exports: Vec::new(),
            services: i
                .services
                .iter()
                .map(|o| objects::decode_service(o).unwrap())
                .collect(),
        })
        .collect();
    let (_, want) = run(&views, &zones());
    let mut assembler = Assembler::default();
    for _ in 0..2 {
        let got = assembler.build(inputs.clone(), Vec::new(), &zones());
        assert!(!got.incremental);
        assert_eq!(got.registry, want.registry);
        assert_eq!(got.registry.services.len(), 2, "both views' services");
    }
}
