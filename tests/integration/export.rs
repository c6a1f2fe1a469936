//! `globaldns export-resources`: the registry file as registry resources,
//! and the example that is its output.

use crate::support::{example, globaldns};

/// `examples/registry-resources.yaml` is what the command prints for
/// `examples/registry.yaml`, byte for byte (as manifests/crds.yaml is
/// `globaldns crds`): regenerate it with
/// `cargo run -- export-resources --registry examples/registry.yaml > examples/registry-resources.yaml`.
#[test]
fn the_example_resources_are_the_commands_output() {
    let out = globaldns()
        .args(["export-resources", "--registry", &example("registry.yaml")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(example("registry-resources.yaml")).unwrap();
    assert!(
        printed == committed,
        "examples/registry-resources.yaml drifted from `globaldns export-resources`:\n{printed}"
    );
}

#[test]
fn the_namespace_is_taken_and_checked_and_a_bad_registry_is_refused() {
    let out = globaldns()
        .args(["export-resources", "--registry", &example("registry.yaml")])
        .args(["--namespace", "mesh"])
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed.matches("  namespace: mesh\n").count(),
        4,
        "{printed}"
    );

    let out = globaldns()
        .args(["export-resources", "--registry", &example("registry.yaml")])
        .args(["--namespace", "Not_A_Namespace"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--namespace") && stderr.contains("Not_A_Namespace"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "services:\n  - {name: a, namespace: n, exportedFrom: [west], ports: []}\n",
    )
    .unwrap();
    let out = globaldns()
        .args(["export-resources", "--registry"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing printed for an invalid registry"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown cluster `west`"), "{stderr}");
}
