//! design §4: a zone served in the Multi-Cluster Services form
//! (`--clusterset-zone clusterset.local`), over real UDP and TCP sockets,
//! and through the binary's command line. Sections are the MCS DNS
//! specification's (schema 1.0.0, KEP 1645 `specification.md`).

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::support::{BOTH, Options, TestServer, example, exchange, globaldns, query};

/// The host suffixes `serve --clusterset-zone clusterset.local` serves.
fn zones() -> Vec<String> {
    vec!["global".into(), "svc.clusterset.local".into()]
}

async fn server() -> TestServer {
    TestServer::with(Options {
        zones: zones(),
        v6: Some("fd00:5::/64"),
        ..Options::default()
    })
    .await
}

async fn ask(server: &TestServer, name: &str, qtype: RecordType) -> Vec<Message> {
    let mut out = Vec::new();
    for via in BOTH {
        out.push(exchange(server.addr, &query(name, qtype, true), via).await);
    }
    out
}

fn addresses(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn has_soa(m: &Message) -> bool {
    m.authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA && r.name.to_ascii() == "clusterset.local.")
}

/// §2.3.1: `<service>.<ns>.svc.<zone>` A is the ClusterSetIP, the VIP the
/// allocator gives that host (a host of its own, not the pin zone's: the
/// pinned IPv6 address stays with `dual.default.global`), and the VIP the
/// rendered ServiceEntry of that host carries.
#[tokio::test]
async fn a_clusterset_host_answers_with_its_vip() {
    let server = server().await;
    let mcs = ask(&server, "httpbin.bar.svc.clusterset.local.", RecordType::A).await;
    let global = ask(&server, "httpbin.bar.global.", RecordType::A).await;
    for (m, g) in mcs.iter().zip(&global) {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert_eq!(addresses(m).len(), 1, "{m:?}");
        assert_eq!(addresses(m), addresses(&mcs[0]));
        assert_ne!(
            addresses(m),
            addresses(g),
            "every host has a VIP of its own"
        );
    }
    // The pin (`addresses: ['2001:db8::53']`) is the pin zone's only.
    let pinned = ask(&server, "dual.default.global.", RecordType::AAAA).await;
    assert_eq!(
        addresses(&pinned[0]),
        ["2001:db8::53".parse::<IpAddr>().unwrap()]
    );
    let dual = ask(
        &server,
        "dual.default.svc.clusterset.local.",
        RecordType::AAAA,
    )
    .await;
    let [IpAddr::V6(v6)] = addresses(&dual[0])[..] else {
        panic!("{:?}", dual[0]);
    };
    assert_eq!(v6.segments()[..4], [0xfd00, 5, 0, 0], "from --vip-range-v6");

    // design §5: the ServiceEntry of the clusterset host has the same VIP.
    let out = globaldns()
        .args(["render", "--registry"])
        .arg(server.registry_path())
        .arg("--state-dir")
        .arg(server.dir.path().join("state"))
        .args(["--cluster", "east", "--clusterset-zone", "clusterset.local"])
        .args(["--vip-range-v6", "fd00:5::/64"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stdout).unwrap();
    let entry = objects
        .iter()
        .find(|o| o["spec"]["hosts"][0] == "httpbin.bar.svc.clusterset.local")
        .unwrap_or_else(|| panic!("no ServiceEntry of the clusterset host: {stdout}"));
    assert_eq!(
        entry["spec"]["addresses"][0].as_str().unwrap(),
        addresses(&mcs[0])[0].to_string()
    );
}

/// §2.3.2: SRV `_<port>._tcp.<service>.<ns>.svc.<zone>` → the port, with
/// the service's name as target (RFC 2782).
#[tokio::test]
async fn srv_names_each_port() {
    let server = server().await;
    for m in ask(
        &server,
        "_http1._tcp.httpbin.bar.svc.clusterset.local.",
        RecordType::SRV,
    )
    .await
    {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        let [record] = &m.answers[..] else {
            panic!("{m:?}")
        };
        let RData::SRV(srv) = &record.data else {
            panic!("{record:?}")
        };
        assert_eq!(srv.port, 8000);
        assert_eq!(srv.target.to_ascii(), "httpbin.bar.svc.clusterset.local.");
    }
}

/// §2.2: `dns-version.<zone>` TXT is the schema version, `1.0.0`; other
/// types there are NODATA (RFC 2308 §2.2).
#[tokio::test]
async fn dns_version_is_1_0_0() {
    let server = server().await;
    for m in ask(&server, "dns-version.clusterset.local.", RecordType::TXT).await {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        let [record] = &m.answers[..] else {
            panic!("{m:?}")
        };
        let RData::TXT(txt) = &record.data else {
            panic!("{record:?}")
        };
        let text: Vec<&[u8]> = txt.txt_data.iter().map(|t| &t[..]).collect();
        assert_eq!(text, [b"1.0.0"]);
    }
    for m in ask(&server, "DNS-Version.clusterset.local.", RecordType::A).await {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty() && has_soa(&m), "{m:?}");
    }
}

/// The apex: SOA and NS at `clusterset.local` (RFC 1035 §3.3.13), the
/// empty non-terminals `svc.<zone>` and `<ns>.svc.<zone>` NODATA (RFC
/// 8020 §2), an unknown service, a name beside `svc` and a per-cluster
/// name NXDOMAIN (§2.3.4: a ClusterSetIP service has none; RFC 2308
/// §2.1), a name outside every zone REFUSED.
#[tokio::test]
async fn the_zone_has_its_apex_and_nothing_else() {
    let server = server().await;
    for m in ask(&server, "clusterset.local.", RecordType::SOA).await {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        let [soa] = &m.answers[..] else {
            panic!("{m:?}")
        };
        let RData::SOA(soa) = &soa.data else {
            panic!("{soa:?}")
        };
        assert_eq!(soa.mname.to_ascii(), "ns.clusterset.local.");
    }
    for m in ask(&server, "clusterset.local.", RecordType::NS).await {
        assert_eq!(m.answers.len(), 1, "{m:?}");
    }
    for name in ["svc.clusterset.local.", "bar.svc.clusterset.local."] {
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
            for m in ask(&server, name, qtype).await {
                assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
                assert!(m.answers.is_empty() && has_soa(&m), "{name}: {m:?}");
            }
        }
    }
    for name in [
        "nope.bar.svc.clusterset.local.",
        "west.httpbin.bar.svc.clusterset.local.",
        "httpbin.bar.clusterset.local.",
        "_http1._tcp.west.httpbin.bar.svc.clusterset.local.",
    ] {
        for m in ask(&server, name, RecordType::A).await {
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
            assert!(has_soa(&m), "{name}: {m:?}");
        }
    }
    // The per-cluster names of the other zone are still served.
    for m in ask(&server, "west.httpbin.bar.global.", RecordType::A).await {
        assert_eq!(addresses(&m).len(), 1, "{m:?}");
    }
    for m in ask(&server, "httpbin.bar.svc.cluster.local.", RecordType::A).await {
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    }
}

/// The command line: bad and overlapping values are refused naming the
/// flag; `render` and `zonefile` carry the clusterset hosts, the Gateway
/// accepts them; `stub-config` forwards the zone's apex.
#[test]
fn the_commands_take_the_clusterset_zone() {
    let registry = example("registry.yaml");
    for (flags, said) in [
        (&["--clusterset-zone", "a..b"][..], "--clusterset-zone"),
        (
            &["--clusterset-zone", "global"][..],
            "--clusterset-zone global is also a --zone",
        ),
        (
            &["--zone", "local", "--clusterset-zone", "clusterset.local"][..],
            "nest",
        ),
    ] {
        let out = globaldns()
            .args(["render", "--registry", &registry, "--cluster", "east"])
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{flags:?}");
        assert!(stderr.contains(said), "{flags:?}: {stderr}");
    }

    let out = globaldns()
        .args(["render", "--registry", &registry, "--cluster", "east"])
        .args(["--clusterset-zone", "clusterset.local"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stdout).unwrap();
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"httpbin-bar-svc-clusterset-local"),
        "{names:?}"
    );
    assert!(
        names.contains(&"sleep-foo-svc-clusterset-local"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("west-httpbin-bar-svc")),
        "no per-cluster names in the MCS form: {names:?}"
    );
    let gateway = objects.iter().find(|o| o["kind"] == "Gateway").unwrap();
    let hosts = &gateway["spec"]["servers"][0]["hosts"];
    assert!(
        hosts
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "*.svc.clusterset.local"),
        "{hosts}"
    );

    let out = globaldns()
        .args(["zonefile", "--registry", &registry])
        .args(["--clusterset-zone", "clusterset.local"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("IN SOA ns.clusterset.local. hostmaster.clusterset.local."),
        "{text}"
    );
    assert!(
        text.contains("dns-version.clusterset.local. 30 IN TXT 1.0.0"),
        "{text}"
    );
    assert!(
        text.contains("_http1._tcp.httpbin.bar.svc.clusterset.local. 30 IN SRV 0 0 8000 httpbin.bar.svc.clusterset.local."),
        "{text}"
    );
    assert!(!text.contains("west.httpbin.bar.svc"), "{text}");

    for (target, wiring) in [
        ("coredns", "clusterset.local:53 {"),
        ("kube-dns", r#""clusterset.local": ["10.96.0.53"]"#),
    ] {
        let out = globaldns()
            .args([
                "stub-config",
                "--ip",
                "10.96.0.53",
                "--no-merge",
                "--for",
                target,
            ])
            .args(["--clusterset-zone", "clusterset.local"])
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains(wiring), "{target}: {stdout}");
        assert!(
            !stdout.contains("svc.clusterset.local"),
            "{target}: {stdout}"
        );
    }
}
