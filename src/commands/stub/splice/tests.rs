use super::*;

fn zones() -> Vec<String> {
    vec!["global".to_string()]
}

const BLOCK: &str = "global:53 {\n    errors\n    cache 30\n    forward . 10.96.0.53\n}\n";

#[test]
fn stub_domains_keep_other_domains_and_replace_the_zone() {
    let merged = stub_domains(
        Some(r#"{"acme.local": ["1.2.3.4"], "GLOBAL.": ["10.0.0.9"], "corp": ["10.1.1.1", "10.1.1.2:5353"]}"#),
        &zones(),
        "10.96.0.53",
    )
    .unwrap();
    assert_eq!(
        merged,
        r#"{"acme.local": ["1.2.3.4"], "corp": ["10.1.1.1", "10.1.1.2:5353"], "global": ["10.96.0.53"]}"#
    );
    assert_eq!(
        stub_domains(None, &zones(), "10.96.0.53").unwrap(),
        r#"{"global": ["10.96.0.53"]}"#
    );
    assert_eq!(
        stub_domains(Some("  \n"), &zones(), "10.96.0.53").unwrap(),
        r#"{"global": ["10.96.0.53"]}"#
    );
}

#[test]
fn stub_domains_that_do_not_parse_are_refused_not_dropped() {
    for bad in ["{not json", r#"["global"]"#, r#"{"a": "1.2.3.4"}"#] {
        let err = stub_domains(Some(bad), &zones(), "10.96.0.53").unwrap_err();
        assert!(matches!(err, MergeError::StubDomains(_)), "{bad}: {err}");
    }
}

const COREFILE: &str = "\
.:53 {
    errors
    health {
        lameduck 5s
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
    }
    forward . /etc/resolv.conf
    cache 30
}
# the mesh, by hand
global:53 {
    forward . 10.0.0.9
}
acme.local:53 {
    forward . 1.2.3.4 # a comment with a brace {
}
";

#[test]
fn the_zones_block_is_replaced_in_place_and_the_rest_kept() {
    let merged = corefile(COREFILE, &zones(), BLOCK).unwrap();
    let expected = COREFILE.replace("global:53 {\n    forward . 10.0.0.9\n}\n", BLOCK);
    assert_eq!(merged, expected);
    // Merging twice changes nothing more.
    assert_eq!(corefile(&merged, &zones(), BLOCK).unwrap(), merged);
}

#[test]
fn without_a_block_for_the_zone_the_block_is_added_at_the_end() {
    let only_default = "\
.:53 {
    forward . /etc/resolv.conf
}";
    assert_eq!(
        corefile(only_default, &zones(), BLOCK).unwrap(),
        format!("{only_default}\n{BLOCK}")
    );
    assert_eq!(corefile("", &zones(), BLOCK).unwrap(), BLOCK);
}

/// Keys that name the zone on another port or transport are other servers;
/// a block serving the zone among others keeps the others.
#[test]
fn only_keys_serving_the_zone_on_port_53_are_taken_over() {
    let text = "\
global:5353 {
    whoami
}
tls://global {
    whoami
}
dns://global:53 mesh.example:53 {
    forward . 10.0.0.9
}
";
    let merged = corefile(text, &zones(), BLOCK).unwrap();
    assert_eq!(
        merged,
        format!(
            "global:5353 {{\n    whoami\n}}\ntls://global {{\n    whoami\n}}\n{}\nmesh.example:53 {{\n    forward . 10.0.0.9\n}}\n",
            BLOCK.trim_end()
        )
    );
}

#[test]
fn a_corefile_that_does_not_balance_is_refused() {
    for (bad, says) in [
        (".:53 {\n    errors\n", "not closed"),
        (".:53 {\n}\n}\n", "line 3"),
        ("{\n}\n", "without a server key"),
    ] {
        let err = corefile(bad, &zones(), BLOCK).unwrap_err().to_string();
        assert!(err.contains(says), "{bad:?}: {err}");
    }
}

#[test]
fn the_forward_of_a_zone_s_block_is_read_back() {
    let text = ".:53 {\n    forward . /etc/resolv.conf\n}\nglobal:53 other:53 {\n    cache 30\n    forward . 10.0.0.10:53 dns://10.0.0.11 { # two\n        max_fails 2\n    }\n}\n";
    assert_eq!(
        corefile_forwards(text, "global").unwrap(),
        Some(vec!["10.0.0.10:53".to_string(), "10.0.0.11".to_string()])
    );
    assert_eq!(corefile_forwards(text, "region").unwrap(), None);
    assert_eq!(
        corefile_forwards("global {\n    whoami\n}\n", "global").unwrap(),
        Some(vec![])
    );
    assert!(corefile_forwards("global {\n", "global").is_err());
    assert_eq!(
        corefile_forwards("global:53 {\n    forward Global. 10.0.0.12\n}\n", "global").unwrap(),
        Some(vec!["10.0.0.12".to_string()])
    );
}

#[test]
fn the_servers_of_a_stub_domain_are_read_back() {
    let text = r#"{"Global.": ["10.0.0.10"], "acme.local": ["1.2.3.4"]}"#;
    assert_eq!(
        stub_domain_servers(text, "global").unwrap(),
        Some(vec!["10.0.0.10".to_string()])
    );
    assert_eq!(stub_domain_servers(text, "region").unwrap(), None);
    assert_eq!(stub_domain_servers("", "global").unwrap(), None);
    assert!(stub_domain_servers("[1]", "global").is_err());
}
