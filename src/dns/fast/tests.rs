//! The fast path against the general path: for every query the fast path
//! takes, the response bytes must be identical to what [`respond`] writes.

use std::net::IpAddr;

use proptest::prelude::*;

use super::respond as respond_fast;
use super::*;
use crate::dns::respond::{Transport, respond};
use crate::dns::zone::{HostData, ZoneSet, ZoneSetBuilder};

const SERIAL: u32 = 1_700_000_000;

fn zones() -> ZoneSet {
    let mut set = ZoneSetBuilder::new(SERIAL, 30, 8);
    let ns: [IpAddr; 2] = [
        "192.0.2.53".parse().unwrap(),
        "2001:db8::35".parse().unwrap(),
    ];
    set.name_server_addresses(&ns);
    set.zone("global").unwrap();
    let v4: IpAddr = "240.0.195.86".parse().unwrap();
    let v6: IpAddr = "2001:db8::53".parse().unwrap();
    let ports = [("http1", 8000)];
    let many: Vec<IpAddr> = (1..=40)
        .map(|i| IpAddr::from([240, 0, 1, i as u8]))
        .collect();
    // The 40 A records of `many` make 640 bytes: more than 512 without EDNS.
    for (host, addresses, ports) in [
        ("httpbin.bar.global", &[v4][..], &ports[..]),
        ("dual.default.global", &[v4, v6][..], &[][..]),
        ("many.big.global", &many[..], &[][..]),
    ] {
        set.add_host(&HostData {
            host,
            addresses,
            ports,
        })
        .unwrap();
    }
    // A second zone, of two labels.
    set.zone("mesh.internal").unwrap();
    set.add_host(&HostData {
        host: "reviews.default.mesh.internal",
        addresses: &[v4],
        ports: &[],
    })
    .unwrap();
    // A zone in the Multi-Cluster Services form (MCS DNS spec §2).
    set.clusterset_zone("clusterset.local").unwrap();
    set.add_host(&HostData {
        host: "httpbin.bar.svc.clusterset.local",
        addresses: &[v4],
        ports: &ports,
    })
    .unwrap();
    set.build()
}

/// A query in wire form, built byte by byte so every field is ours.
#[derive(Clone, Debug)]
struct Q {
    id: u16,
    flags: [u8; 2],
    name: String,
    qtype: u16,
    qclass: u16,
    /// (payload, version, flags, options)
    edns: Option<(u16, u8, u16, Vec<u8>)>,
}

impl Q {
    fn a(name: &str) -> Self {
        Q {
            id: 0x1234,
            flags: [0x01, 0x00],
            name: name.to_string(),
            qtype: TYPE_A,
            qclass: CLASS_IN,
            edns: None,
        }
    }

    fn typed(mut self, qtype: u16) -> Self {
        self.qtype = qtype;
        self
    }

    fn edns(mut self, payload: u16, flags: u16) -> Self {
        self.edns = Some((payload, 0, flags, Vec::new()));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.id.to_be_bytes());
        b.extend_from_slice(&self.flags);
        let arcount = u16::from(self.edns.is_some());
        for count in [1, 0, 0, arcount] {
            b.extend_from_slice(&u16::to_be_bytes(count));
        }
        for label in self.name.split('.').filter(|l| !l.is_empty()) {
            b.push(label.len() as u8);
            b.extend_from_slice(label.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&self.qtype.to_be_bytes());
        b.extend_from_slice(&self.qclass.to_be_bytes());
        if let Some((payload, version, flags, options)) = &self.edns {
            b.extend_from_slice(&[0, 0, 41]);
            b.extend_from_slice(&payload.to_be_bytes());
            b.extend_from_slice(&[0, *version]);
            b.extend_from_slice(&flags.to_be_bytes());
            b.extend_from_slice(&(options.len() as u16).to_be_bytes());
            b.extend_from_slice(options);
        }
        b
    }
}

fn fast(zones: &ZoneSet, query: &[u8]) -> Option<Vec<u8>> {
    fast_over(zones, query, Transport::Udp)
}

fn fast_over(zones: &ZoneSet, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let mut out = [0u8; 2048];
    let len = respond_fast(zones, query, transport, &mut out)?;
    Some(out[..len].to_vec())
}

fn general(zones: &ZoneSet, query: &[u8]) -> Vec<u8> {
    respond(Some(zones), query, Transport::Udp).expect("the general path answers")
}

/// Asserts the fast path takes `query` and answers it byte for byte as
/// the general path does; returns the response.
fn same(zones: &ZoneSet, q: &Q) -> Vec<u8> {
    let query = q.bytes();
    let fast = fast(zones, &query).unwrap_or_else(|| panic!("fast path declined {q:?}"));
    assert_eq!(fast, general(zones, &query), "{q:?}");
    fast
}

fn rcode(response: &[u8]) -> u8 {
    response[3] & 0x0F
}

fn ancount(response: &[u8]) -> u16 {
    u16::from_be_bytes([response[6], response[7]])
}

#[test]
fn a_and_aaaa_answers_match_the_general_path() {
    let zones = zones();
    let r = same(&zones, &Q::a("httpbin.bar.global"));
    assert_eq!((rcode(&r), ancount(&r)), (0, 1));
    let r = same(&zones, &Q::a("dual.default.global").typed(TYPE_AAAA));
    assert_eq!((rcode(&r), ancount(&r)), (0, 1));
    let r = same(&zones, &Q::a("reviews.default.mesh.internal"));
    assert_eq!((rcode(&r), ancount(&r)), (0, 1));
    // design §4: the zone's name server resolves (RFC 1035 §3.3.11).
    let r = same(&zones, &Q::a("ns.global"));
    assert_eq!((rcode(&r), ancount(&r)), (0, 1));
    let r = same(&zones, &Q::a("ns.mesh.internal").typed(TYPE_AAAA));
    assert_eq!((rcode(&r), ancount(&r)), (0, 1));
}

#[test]
fn question_case_is_echoed_like_the_general_path() {
    let zones = zones();
    for name in [
        "HTTPBIN.bar.global",
        "HttpBin.BAR.global",
        "reviews.DEFAULT.mesh.internal",
    ] {
        let r = same(&zones, &Q::a(name));
        assert_eq!(&r[13..20], &name.as_bytes()[..7], "{name}");
    }
}

#[test]
fn nodata_and_nxdomain_match_the_general_path() {
    let zones = zones();
    // RFC 2308 §2.2: AAAA for a v4-only host, the apex, an empty non-terminal.
    for q in [
        Q::a("httpbin.bar.global").typed(TYPE_AAAA),
        Q::a("global"),
        Q::a("bar.global"),
        Q::a("default.mesh.internal").typed(TYPE_AAAA),
    ] {
        let r = same(&zones, &q);
        assert_eq!((rcode(&r), ancount(&r)), (0, 0), "{q:?}");
    }
    // RFC 2308 §2.1: names that do not exist, at every depth.
    for q in [
        Q::a("nope.bar.global"),
        Q::a("a.b.c.d.global").typed(TYPE_AAAA),
        Q::a("global.global"),
        Q::a("x.mesh.internal"),
        Q::a("NOPE.Bar.global"),
    ] {
        let r = same(&zones, &q);
        assert_eq!(rcode(&r), 3, "{q:?}");
    }
}

/// A zone in the Multi-Cluster Services form: the fast path answers its
/// hosts' A records (MCS DNS spec §2.3.1), NODATA at the apex, at
/// `svc.<zone>`, at a namespace and at `dns-version.<zone>` (RFC 2308
/// §2.2, RFC 8020 §2), NXDOMAIN for an unknown service and for a
/// per-cluster name, which the form has none of (§2.3.4; RFC 2308 §2.1),
/// all as the general path does; the TXT `dns-version` (§2.2) it leaves
/// to the general path.
#[test]
fn a_clusterset_zone_matches_the_general_path() {
    let zones = zones();
    let r = same(&zones, &Q::a("httpbin.bar.svc.clusterset.local"));
    assert_eq!((rcode(&r), ancount(&r)), (0, 1));
    for name in [
        "clusterset.local",
        "svc.clusterset.local",
        "bar.svc.clusterset.local",
        "dns-version.clusterset.local",
    ] {
        let r = same(&zones, &Q::a(name));
        assert_eq!((rcode(&r), ancount(&r)), (0, 0), "{name}");
    }
    for name in [
        "nope.bar.svc.clusterset.local",
        "west.httpbin.bar.svc.clusterset.local",
        "x.clusterset.local",
    ] {
        let r = same(&zones, &Q::a(name));
        assert_eq!(rcode(&r), 3, "{name}");
    }
    let txt = Q::a("dns-version.clusterset.local").typed(16).bytes();
    assert_eq!(fast(&zones, &txt), None);
    let r = general(&zones, &txt);
    assert_eq!((rcode(&r), ancount(&r)), (0, 1));
}

#[test]
fn edns_answers_match_the_general_path() {
    let zones = zones();
    // RFC 6891 §6.1.3 and §7: OPT echoed with our payload; DO echoed (RFC 3225 §3).
    for (payload, flags) in [
        (1232, 0),
        (4096, 0x8000),
        (512, 0),
        (100, 0x8000),
        (1400, 0x7fff),
    ] {
        same(&zones, &Q::a("httpbin.bar.global").edns(payload, flags));
        same(&zones, &Q::a("nope.bar.global").edns(payload, flags));
        same(
            &zones,
            &Q::a("httpbin.bar.global")
                .typed(TYPE_AAAA)
                .edns(payload, flags),
        );
    }
}

#[test]
fn header_flags_match_the_general_path() {
    let zones = zones();
    for flags2 in [0x00, 0x01, 0x02, 0x04, 0x07] {
        for flags3 in [0x00, 0x10, 0x20, 0x40, 0x80, 0xF0, 0x0F] {
            let mut q = Q::a("httpbin.bar.global");
            q.flags = [flags2, flags3];
            same(&zones, &q);
        }
    }
}

/// RFC 2181 §9 and RFC 6891 §7: an answer that does not fit the UDP limit
/// is cut to header, question and OPT with TC, on this path as on the
/// general one, byte for byte.
#[test]
fn truncated_answers_match_the_general_path() {
    let zones = zones();
    let q = Q::a("many.big.global");
    for (what, q) in [
        ("640 bytes in 512", q.clone()),
        ("in an EDNS 600", q.clone().edns(600, 0x8000)),
        ("in EDNS 100, read as 512", q.clone().edns(100, 0)),
    ] {
        let r = same(&zones, &q);
        assert_eq!(r[2] & 0x02, 0x02, "{what}: TC");
        assert_eq!((rcode(&r), ancount(&r)), (0, 0), "{what}");
        assert!(r.len() <= 512, "{what}: {} bytes", r.len());
    }
    let r = same(&zones, &q.edns(1232, 0));
    assert_eq!(ancount(&r), 40, "fits 1232");
    assert_eq!(r[2] & 0x02, 0, "no TC");
}

/// RFC 8914 §4.4: while the snapshot is the last-known-good one, answers
/// with EDNS carry an Extended DNS Error "Stale Answer" (code 3), on both
/// paths alike; answers without EDNS are unchanged.
#[test]
fn stale_answers_match_the_general_path() {
    let zones = zones();
    zones.set_stale(true);
    for q in [
        Q::a("httpbin.bar.global").edns(1232, 0),
        Q::a("nope.bar.global").edns(1232, 0x8000),
        Q::a("many.big.global").edns(512, 0),
    ] {
        let r = same(&zones, &q);
        assert_eq!(&r[r.len() - 6..], &[0, 15, 0, 2, 0, 3], "{q:?}");
    }
    let plain = same(&zones, &Q::a("httpbin.bar.global"));
    zones.set_stale(false);
    assert_eq!(plain, same(&zones, &Q::a("httpbin.bar.global")));
}

#[test]
fn tcp_answers_match_the_general_path_and_are_never_truncated() {
    let zones = zones();
    // RFC 7766 §8: over TCP the whole answer, whatever the OPT says.
    for q in [
        Q::a("many.big.global"),
        Q::a("many.big.global").edns(512, 0),
        Q::a("HttpBin.bar.global").edns(1232, 0x8000),
        Q::a("nope.bar.global"),
    ] {
        let query = q.bytes();
        let fast = fast_over(&zones, &query, Transport::Tcp).expect("fast path takes it");
        assert_eq!(
            Some(fast),
            respond(Some(&zones), &query, Transport::Tcp),
            "{q:?}"
        );
    }
}

#[test]
fn unusual_queries_go_to_the_general_path() {
    let zones = zones();
    let base = Q::a("httpbin.bar.global");
    let mut declined = vec![
        ("SRV", base.clone().typed(33).bytes()),
        ("ANY", base.clone().typed(255).bytes()),
        ("upper-case zone", Q::a("httpbin.bar.GLOBAL").bytes()),
        ("outside the zones", Q::a("example.com").bytes()),
        ("class CH", {
            let mut q = base.clone();
            q.qclass = 3;
            q.bytes()
        }),
        ("EDNS version 1", {
            let mut q = base.clone();
            q.edns = Some((1232, 1, 0, Vec::new()));
            q.bytes()
        }),
        ("EDNS option", {
            let mut q = base.clone();
            q.edns = Some((1232, 0, 0, vec![0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]));
            q.bytes()
        }),
        ("opcode NOTIFY", {
            let mut q = base.clone();
            q.flags[0] = 0x20;
            q.bytes()
        }),
        ("a response", {
            let mut q = base.clone();
            q.flags[0] = 0x80;
            q.bytes()
        }),
    ];
    let mut trailing = base.bytes();
    trailing.push(0);
    declined.push(("trailing byte", trailing));
    let mut two_questions = base.bytes();
    two_questions[5] = 2;
    declined.push(("QDCOUNT 2", two_questions));
    let mut pointer = base.bytes();
    pointer.truncate(12);
    pointer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    declined.push(("compressed question", pointer));
    declined.push(("short", base.bytes()[..20].to_vec()));
    for (what, query) in declined {
        assert_eq!(fast(&zones, &query), None, "{what}");
    }
}

fn name_strategy() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "httpbin.bar.global",
        "dual.default.global",
        "many.big.global",
        "bar.global",
        "global",
        "reviews.default.mesh.internal",
        "mesh.internal",
        "nope.global",
        "a.b.httpbin.bar.global",
        "ns.global",
        "global.global",
        "internal",
        "example.com",
        "httpbin.bar.svc.clusterset.local",
        "bar.svc.clusterset.local",
        "svc.clusterset.local",
        "clusterset.local",
        "dns-version.clusterset.local",
        "west.httpbin.bar.svc.clusterset.local",
        "nope.bar.svc.clusterset.local",
        "x.clusterset.local",
    ]);
    (known, prop::collection::vec(any::<bool>(), 32)).prop_map(|(name, upper)| {
        name.chars()
            .zip(upper.into_iter().cycle())
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

proptest! {
    /// Whatever the fast path answers, the general path answers the same.
    #[test]
    fn fast_answers_equal_general_answers(
        name in name_strategy(),
        id in any::<u16>(),
        flags in any::<[u8; 2]>(),
        qtype in prop::sample::select(vec![TYPE_A, TYPE_AAAA, 16, 33, 255]),
        edns in prop::option::of((any::<u16>(), 0u8..2, any::<u16>())),
        stale in any::<bool>(),
    ) {
        let zones = zones();
        zones.set_stale(stale);
        let q = Q {
            id,
            flags,
            name,
            qtype,
            qclass: CLASS_IN,
            edns: edns.map(|(payload, version, flags)| (payload, version, flags, Vec::new())),
        };
        let query = q.bytes();
        if let Some(fast) = fast(&zones, &query) {
            prop_assert_eq!(fast, general(&zones, &query));
        }
        if let Some(fast) = fast_over(&zones, &query, Transport::Tcp) {
            prop_assert_eq!(Some(fast), respond(Some(&zones), &query, Transport::Tcp));
        }
    }

    /// Arbitrary bytes never make the fast path panic, and whatever it
    /// answers matches the general path.
    #[test]
    fn fast_path_survives_garbage(packet in prop::collection::vec(any::<u8>(), 0..80)) {
        let zones = zones();
        if let Some(fast) = fast(&zones, &packet) {
            prop_assert_eq!(Some(fast), respond(Some(&zones), &packet, Transport::Udp));
        }
    }
}

fn wildcard_zones() -> ZoneSet {
    let mut set = ZoneSetBuilder::new(SERIAL, 30, 8);
    set.zone("global").unwrap();
    let one: IpAddr = "240.0.0.1".parse().unwrap();
    let two: IpAddr = "240.0.0.2".parse().unwrap();
    let three: IpAddr = "240.0.0.3".parse().unwrap();
    for (host, addr) in [
        ("*.foo.global", one),
        ("*.bar.foo.global", two),
        ("exact.bar.foo.global", three),
    ] {
        set.add_host(&HostData {
            host,
            addresses: &[addr],
            ports: &[],
        })
        .unwrap();
    }
    set.build()
}

fn a_answer(response: &[u8]) -> Option<String> {
    let message = hickory_proto::op::Message::from_vec(response).unwrap();
    message.answers.first().map(|r| match &r.data {
        hickory_proto::rr::RData::A(a) => a.0.to_string(),
        other => format!("{other:?}"),
    })
}

/// design §4: a wildcard matches any depth below its suffix, never the
/// suffix itself; the most specific wins; an existing name is never
/// covered. Answers echo the question's name and case.
#[test]
fn wildcards_cover_names_below_their_suffix() {
    let zones = wildcard_zones();
    let ask = |name: &str| {
        let query = Q::a(name).bytes();
        let response = general(&zones, &query);
        (
            rcode(&response),
            a_answer(&response),
            fast(&zones, &query).is_some(),
        )
    };
    let one = Some("240.0.0.1".to_string());
    let two = Some("240.0.0.2".to_string());
    assert_eq!(ask("a.foo.global"), (0, one.clone(), false));
    assert_eq!(
        ask("a.b.c.foo.global"),
        (0, one.clone(), false),
        "any depth"
    );
    assert_eq!(
        ask("x.bar.foo.global"),
        (0, two.clone(), false),
        "most specific"
    );
    assert_eq!(ask("y.x.bar.foo.global"), (0, two, false));
    assert_eq!(
        ask("exact.bar.foo.global"),
        (0, Some("240.0.0.3".to_string()), true)
    );
    assert_eq!(
        ask("foo.global"),
        (0, None, true),
        "the suffix itself: NODATA"
    );
    assert_eq!(
        ask("other.global"),
        (3, None, false),
        "outside every wildcard"
    );
    let response = general(&zones, &Q::a("A.Foo.global").bytes());
    let message = hickory_proto::op::Message::from_vec(&response).unwrap();
    assert_eq!(message.answers[0].name.to_ascii(), "A.Foo.global.");
}
