//! The binary's command line: `check`, `zonefile`, `render`, flag errors,
//! and a port in use.

use crate::support::{example, globaldns};

#[test]
fn check_summarises_a_valid_registry() {
    let out = globaldns()
        .args(["check", &example("registry.yaml")])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("valid"));
    assert!(stdout.contains("clusters: 2"));
    assert!(stdout.contains("httpbin.bar.global"));
    // Every example registry the docs point at is valid.
    for name in ["bookinfo.yaml", "vm.yaml", "failover.yaml"] {
        let out = globaldns()
            .args(["check", &example(name)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn check_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "clusters:\n  - name: east\n    gateways: [{address: 192.0.2.1}, {address: 192.0.2.1}]\nservices:\n  - {name: a, namespace: n, exportedFrom: [west], ports: [{name: p, number: 99999, protocol: TCP}]}\n",
    )
    .unwrap();
    let out = globaldns().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("bad.yaml"), "{stderr}");
    assert!(
        stderr.contains("services[0].exportedFrom[0]: unknown cluster `west`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("services[0].ports[0].number: 99999 is not a port number"),
        "{stderr}"
    );
    // Issue 25: a gateway repeated in one cluster, like every other repeat.
    assert!(
        stderr.contains("clusters[0].gateways[1]: gateway 192.0.2.1:15443 is listed twice"),
        "{stderr}"
    );

    let out = globaldns()
        .args(["check", "/nonexistent/registry.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/registry.yaml"), "{stderr}");
    // Issue 13: every error is printed once, its cause once.
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}

/// Issue 13: `--registry FILE` everywhere; `check FILE` still works.
#[test]
fn check_takes_registry_like_every_other_command() {
    let out = globaldns()
        .args(["check", "--registry", &example("registry.yaml")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = globaldns().args(["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a registry is required");
}

/// Issue 13: YAML errors name the file (the parser says `<input>`).
#[test]
fn yaml_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "clusters:\n  - name: east\n   gateways: x\n").unwrap();
    let out = globaldns().arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("<input>"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:4", path.display())),
        "{stderr}"
    );
}

/// Issue 13: a mistyped `--registry` started a server that answered
/// SERVFAIL to everything and created `FILE.state/`. It is an error, unless
/// the state directory has a last-known-good registry to serve.
#[test]
fn serving_a_registry_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("nosuch.yaml");
    let out = globaldns()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "off",
            "--registry",
        ])
        .arg(&registry)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("nosuch.yaml does not exist") && stderr.contains("no last-known-good"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("nosuch.yaml.state").exists(),
        "no state directory is made for it"
    );
}

#[test]
fn flags_read_their_environment_variables() {
    let out = globaldns()
        .args(["serve", "--registry", "r.yaml"])
        .env("GLOBALDNS_VIP_RANGE", "10.0.0.0/33")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--vip-range") && stderr.contains("10.0.0.0/33"),
        "{stderr}"
    );

    let help = globaldns().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for var in [
        "GLOBALDNS_REGISTRY",
        "GLOBALDNS_LISTEN",
        "GLOBALDNS_ZONE",
        "GLOBALDNS_VIP_RANGE",
        "GLOBALDNS_VIP_RANGE_V6",
        "GLOBALDNS_STATE_DIR",
        "GLOBALDNS_TTL",
    ] {
        assert!(help.contains(var), "{var} missing from --help");
    }
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = globaldns()
        .args([
            "serve",
            "--admin",
            "off",
            "--registry",
            &example("registry.yaml"),
            "--listen",
            &addr,
        ])
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn zonefile_prints_the_served_records() {
    let out = globaldns()
        .args(["zonefile", "--registry", &example("registry.yaml")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("httpbin.bar.global. 30 IN A 240.0.195.86"),
        "{text}"
    );
    assert!(
        text.contains("IN SOA ns.global. hostmaster.global."),
        "{text}"
    );
    assert!(
        text.contains("_http1._tcp.httpbin.bar.global. 30 IN SRV 0 0 8000 httpbin.bar.global."),
        "{text}"
    );
    // The NS target's glue (RFC 1034 §4.2.1), so that other servers load
    // the zone without a "missing glue" warning: 127.0.0.1 by default.
    assert!(text.contains("global. 30 IN NS ns.global."), "{text}");
    assert!(text.contains("ns.global. 30 IN A 127.0.0.1"), "{text}");
    let out = globaldns()
        .args(["zonefile", "--registry", &example("registry.yaml")])
        .args(["--ns-address", "192.0.2.53", "--ns-address", "2001:db8::53"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ns.global. 30 IN A 192.0.2.53"), "{text}");
    assert!(
        text.contains("ns.global. 30 IN AAAA 2001:db8::53"),
        "{text}"
    );
    assert!(!text.contains("127.0.0.1"), "{text}");
}

/// design §5 through the binary: `render` prints one YAML document per
/// object, ready for `kubectl apply -f -`: a ServiceEntry per host (the
/// VIPs those a server on the same state directory gives), then the
/// cluster's Gateway, as it exports a service.
#[test]
fn render_prints_the_objects_of_a_cluster() {
    let out = globaldns()
        .args([
            "render",
            "--registry",
            &example("registry.yaml"),
            "--cluster",
            "east",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stdout).unwrap();
    let names: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("ServiceEntry", "httpbin-bar-global"),
            ("ServiceEntry", "west-httpbin-bar-global"),
            ("ServiceEntry", "sleep-foo-global"),
            ("ServiceEntry", "east-sleep-foo-global"),
            ("Gateway", "globaldns-cross-network")
        ]
    );
    assert_eq!(objects[0]["spec"]["addresses"][0], "240.0.195.86");
    assert_eq!(objects[0]["metadata"]["namespace"], "istio-system");

    let out = globaldns()
        .args([
            "render",
            "--registry",
            &example("registry.yaml"),
            "--cluster",
            "north",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr.contains("cluster `north` is not in the registry (clusters: east, west)"),
        "{stderr}"
    );
}

/// design §6: the DNS wiring is printed by globaldns, for kube-dns and for
/// CoreDNS, for every served zone.
#[test]
fn stub_config_prints_the_wiring_for_every_zone() {
    let out = globaldns()
        .args([
            "stub-config",
            "--ip",
            "10.96.0.53",
            "--zone",
            "global",
            "--zone",
            "region",
            "--for",
            "coredns",
            "--no-merge",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("global:53 {\n    errors\n    cache 30\n    forward . 10.96.0.53\n}"));
    assert!(stdout.contains("region:53 {"));
    // `.global` is a signed TLD: what a validating resolver needs.
    assert!(stdout.contains("domain-insecure: \"global\""), "{stdout}");
    let out = globaldns()
        .args([
            "stub-config",
            "--ip",
            "10.96.0.53",
            "--for",
            "kube-dns",
            "--no-merge",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(r#"{"global": ["10.96.0.53"]}"#), "{stdout}");
    let out = globaldns()
        .args(["stub-config", "--service", "no-slash"])
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr.contains("--service `no-slash` is not NAMESPACE/NAME"),
        "{stderr}"
    );
}

/// Issue 13: the wiring is merged into the cluster's ConfigMaps, here given
/// as files the way `kubectl get -o yaml` writes them; without them and
/// without an API server, stub-config says how to go on instead of
/// printing a ConfigMap that would replace the cluster's stubDomains.
#[test]
fn stub_config_merges_into_the_configmaps_given() {
    let dir = tempfile::tempdir().unwrap();
    let kube_dns = dir.path().join("kube-dns.yaml");
    std::fs::write(
        &kube_dns,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-dns\n  namespace: kube-system\n  resourceVersion: \"42\"\ndata:\n  stubDomains: |\n    {\"acme.local\": [\"1.2.3.4\"]}\n",
    )
    .unwrap();
    let coredns = dir.path().join("coredns.yaml");
    std::fs::write(
        &coredns,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns\n  namespace: kube-system\ndata:\n  Corefile: |\n    .:53 {\n        forward . /etc/resolv.conf\n    }\n",
    )
    .unwrap();
    let out = globaldns()
        .args(["stub-config", "--ip", "10.96.0.53", "--kube-dns-configmap"])
        .arg(&kube_dns)
        .arg("--coredns-configmap")
        .arg(&coredns)
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(r#"{"acme.local": ["1.2.3.4"], "global": ["10.96.0.53"]}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("    .:53 {\n        forward . /etc/resolv.conf\n    }\n    global:53 {\n"),
        "{stdout}"
    );
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stdout).unwrap();
    assert_eq!(docs.len(), 2);

    // The wrong ConfigMap for the flag is refused.
    let out = globaldns()
        .args([
            "stub-config",
            "--ip",
            "10.96.0.53",
            "--for",
            "kube-dns",
            "--kube-dns-configmap",
        ])
        .arg(&coredns)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("holds ConfigMap `coredns`, not `kube-dns`"),
        "{stderr}"
    );

    // No API server and nothing given: an error that says what to give.
    let out = globaldns()
        .args(["stub-config", "--ip", "10.96.0.53", "--for", "kube-dns"])
        .env("KUBECONFIG", "/nonexistent")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--kube-dns-configmap") && stderr.contains("--no-merge"),
        "{stderr}"
    );
}
