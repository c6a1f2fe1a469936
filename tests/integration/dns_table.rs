//! Every row of the design §4 table, over real UDP and TCP sockets.

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::support::{BOTH, TestServer, Via, exchange, query};

/// One row: a question and what its answer must be.
struct Case {
    /// What the row checks, and the RFC section that says so.
    what: &'static str,
    name: &'static str,
    qtype: RecordType,
    rcode: ResponseCode,
    aa: bool,
    /// Record types expected in the answer section, in order.
    answer: &'static [RecordType],
    /// Whether the SOA must be in the authority section.
    soa_in_authority: bool,
}

const CASES: &[Case] = &[
    Case {
        what: "A of a known host: its VIP, authoritative (RFC 1035 §4.3.2)",
        name: "httpbin.bar.global.",
        qtype: RecordType::A,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[RecordType::A],
        soa_in_authority: false,
    },
    Case {
        what: "AAAA of a host with an IPv6 address (RFC 3596 §2.1)",
        name: "dual.default.global.",
        qtype: RecordType::AAAA,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[RecordType::AAAA],
        soa_in_authority: false,
    },
    Case {
        what: "AAAA of a host without IPv6 is NODATA, never NXDOMAIN (RFC 2308 §2.2)",
        name: "httpbin.bar.global.",
        qtype: RecordType::AAAA,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
    Case {
        what: "a type the host has no data of (TXT) is NODATA (RFC 2308 §2.2)",
        name: "httpbin.bar.global.",
        qtype: RecordType::TXT,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
    Case {
        what: "SRV _<port>._tcp.<host> (RFC 2782)",
        name: "_http1._tcp.httpbin.bar.global.",
        qtype: RecordType::SRV,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[RecordType::SRV],
        soa_in_authority: false,
    },
    Case {
        what: "SRV of a port the service does not have is NXDOMAIN (RFC 2308 §2.1)",
        name: "_nope._tcp.httpbin.bar.global.",
        qtype: RecordType::SRV,
        rcode: ResponseCode::NXDomain,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
    Case {
        what: "SOA at the apex (RFC 1035 §3.3.13)",
        name: "global.",
        qtype: RecordType::SOA,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[RecordType::SOA],
        soa_in_authority: false,
    },
    Case {
        what: "NS at the apex (RFC 1035 §3.3.11)",
        name: "global.",
        qtype: RecordType::NS,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[RecordType::NS],
        soa_in_authority: false,
    },
    Case {
        what: "A at the apex is NODATA (RFC 2308 §2.2)",
        name: "global.",
        qtype: RecordType::A,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
    Case {
        what: "empty non-terminal is NODATA, not NXDOMAIN (RFC 8020 §2)",
        name: "bar.global.",
        qtype: RecordType::A,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
    Case {
        what: "empty non-terminal between an SRV name and its host (RFC 8020 §2)",
        name: "_tcp.httpbin.bar.global.",
        qtype: RecordType::SRV,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
    Case {
        what: "unknown name inside the zone is NXDOMAIN with the SOA (RFC 2308 §2.1)",
        name: "nothere.bar.global.",
        qtype: RecordType::A,
        rcode: ResponseCode::NXDomain,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
    Case {
        what: "a name below a host is NXDOMAIN (RFC 2308 §2.1)",
        name: "x.httpbin.bar.global.",
        qtype: RecordType::A,
        rcode: ResponseCode::NXDomain,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
    Case {
        what: "name outside every zone is REFUSED, no recursion (RFC 1035 §4.1.1)",
        name: "example.com.",
        qtype: RecordType::A,
        rcode: ResponseCode::Refused,
        aa: false,
        answer: &[],
        soa_in_authority: false,
    },
    Case {
        what: "a zone's parent (the root) is outside every zone (RFC 1035 §4.1.1)",
        name: ".",
        qtype: RecordType::NS,
        rcode: ResponseCode::Refused,
        aa: false,
        answer: &[],
        soa_in_authority: false,
    },
    Case {
        what: "ANY gets one RRset, not all of them (RFC 8482 §4.2)",
        name: "dual.default.global.",
        qtype: RecordType::ANY,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[RecordType::A],
        soa_in_authority: false,
    },
    Case {
        what: "an unknown type (TYPE666) of a known name is NODATA (RFC 3597 §2, RFC 8906 §3.1.2)",
        name: "httpbin.bar.global.",
        qtype: RecordType::Unknown(666),
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
    Case {
        what: "A of a per-cluster name: that cluster's copy, its own VIP (design §2)",
        name: "east.reviews.default.global.",
        qtype: RecordType::A,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[RecordType::A],
        soa_in_authority: false,
    },
    Case {
        what: "SRV of a per-cluster name (RFC 2782; design §2)",
        name: "_http._tcp.west.reviews.default.global.",
        qtype: RecordType::SRV,
        rcode: ResponseCode::NoError,
        aa: true,
        answer: &[RecordType::SRV],
        soa_in_authority: false,
    },
    Case {
        what: "the per-cluster name of a cluster that does not export the service is NXDOMAIN \
               (RFC 2308 §2.1; design §2)",
        name: "east.httpbin.bar.global.",
        qtype: RecordType::A,
        rcode: ResponseCode::NXDomain,
        aa: true,
        answer: &[],
        soa_in_authority: true,
    },
];

fn check(case: &Case, via: Via, reply: &Message) {
    let at = format!("{} over {via:?}", case.what);
    assert_eq!(reply.metadata.response_code, case.rcode, "{at}");
    assert_eq!(reply.metadata.authoritative, case.aa, "{at}: AA");
    assert!(!reply.metadata.recursion_available, "{at}: RA must be 0");
    assert!(!reply.metadata.truncation, "{at}: TC");
    let types: Vec<RecordType> = reply.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, case.answer, "{at}: answer section");
    let soa = reply
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA);
    assert_eq!(soa, case.soa_in_authority, "{at}: SOA in authority");
    if case.soa_in_authority {
        // RFC 2308 §5: the negative TTL is the SOA minimum (and SOA TTL).
        let RData::SOA(s) = &reply.authorities[0].data else {
            unreachable!()
        };
        assert_eq!(s.minimum, 30, "{at}: SOA minimum");
    }
}

#[tokio::test]
async fn every_row_of_the_table_over_udp_and_tcp() {
    let server = TestServer::start().await;
    for case in CASES {
        for via in BOTH {
            for edns in [false, true] {
                let reply = exchange(server.addr, &query(case.name, case.qtype, edns), via).await;
                check(case, via, &reply);
                assert_eq!(
                    reply.edns.is_some(),
                    edns,
                    "{}: OPT echoed iff sent",
                    case.what
                );
            }
        }
    }
}

/// RFC 4343 §4.1: names match case-insensitively, and the answer keeps the
/// question's spelling.
#[tokio::test]
async fn names_match_in_any_case_and_the_case_is_echoed() {
    let server = TestServer::start().await;
    for via in BOTH {
        let reply = exchange(
            server.addr,
            &query("HttpBin.BAR.gLoBaL.", RecordType::A, false),
            via,
        )
        .await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(reply.queries[0].name().to_string(), "HttpBin.BAR.gLoBaL.");
        assert_eq!(reply.answers[0].name.to_string(), "HttpBin.BAR.gLoBaL.");
    }
}

/// The VIP served is the allocator's, from the default range, and SRV
/// carries the port with the host as target and its address as glue.
#[tokio::test]
async fn answers_carry_the_vip_and_the_port() {
    let server = TestServer::start().await;
    let reply = exchange(
        server.addr,
        &query("httpbin.bar.global.", RecordType::A, false),
        Via::Udp,
    )
    .await;
    let RData::A(a) = reply.answers[0].data else {
        panic!()
    };
    assert_eq!(
        a.0.to_string(),
        "240.0.195.86",
        "the documented first choice"
    );
    assert_eq!(reply.answers[0].ttl, 30);

    let reply = exchange(
        server.addr,
        &query("_grpc._tcp.reviews.default.global.", RecordType::SRV, false),
        Via::Udp,
    )
    .await;
    let RData::SRV(srv) = &reply.answers[0].data else {
        panic!()
    };
    assert_eq!(srv.port, 9090);
    assert_eq!(srv.target.to_string(), "reviews.default.global.");
    assert_eq!(reply.additionals.len(), 1, "A glue of the target");
    assert_eq!(
        reply.additionals[0].name.to_string(),
        "reviews.default.global."
    );

    let reply = exchange(
        server.addr,
        &query("dual.default.global.", RecordType::AAAA, false),
        Via::Udp,
    )
    .await;
    let RData::AAAA(aaaa) = reply.answers[0].data else {
        panic!()
    };
    assert_eq!(
        IpAddr::V6(aaaa.0),
        "2001:db8::53".parse::<IpAddr>().unwrap(),
        "pinned address"
    );
}

/// Design §2, §3: each exporter's per-cluster name has a VIP of its own
/// (not the service's, not another cluster's) and SRV records that point
/// at itself; `--no-per-cluster-names` makes them NXDOMAIN.
#[tokio::test]
async fn per_cluster_names_have_their_own_vips_and_can_be_turned_off() {
    async fn a(server: &TestServer, name: &str) -> Message {
        exchange(server.addr, &query(name, RecordType::A, false), Via::Udp).await
    }
    fn vip(reply: &Message) -> String {
        let RData::A(a) = &reply.answers[0].data else {
            panic!("{reply:?}")
        };
        a.0.to_string()
    }
    let server = TestServer::start().await;
    let service = vip(&a(&server, "reviews.default.global.").await);
    let east = vip(&a(&server, "east.reviews.default.global.").await);
    let west = vip(&a(&server, "WEST.reviews.default.global.").await);
    assert!(
        service != east && service != west && east != west,
        "{service} {east} {west}"
    );
    let reply = exchange(
        server.addr,
        &query(
            "_grpc._tcp.east.reviews.default.global.",
            RecordType::SRV,
            false,
        ),
        Via::Tcp,
    )
    .await;
    let RData::SRV(srv) = &reply.answers[0].data else {
        panic!("{reply:?}")
    };
    assert_eq!(
        (srv.port, srv.target.to_string()),
        (9090, "east.reviews.default.global.".to_string())
    );
    drop(server);

    let off = TestServer::with(crate::support::Options {
        per_cluster_names: false,
        ..Default::default()
    })
    .await;
    assert_eq!(vip(&a(&off, "reviews.default.global.").await), service);
    let reply = a(&off, "east.reviews.default.global.").await;
    assert_eq!(reply.response_code, ResponseCode::NXDomain);
}

/// IPv6 VIPs are allocated when, and only when, an IPv6 range is given.
#[tokio::test]
async fn ipv6_vips_come_from_the_v6_range() {
    let server = TestServer::with(crate::support::Options {
        v6: Some("2001:db8:240::/64"),
        ..Default::default()
    })
    .await;
    let reply = exchange(
        server.addr,
        &query("httpbin.bar.global.", RecordType::AAAA, false),
        Via::Udp,
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let RData::AAAA(aaaa) = reply.answers[0].data else {
        panic!("{reply:?}")
    };
    assert!(
        aaaa.0.to_string().starts_with("2001:db8:240:0:"),
        "{}",
        aaaa.0
    );
}

/// Several zones: every service is a host in each (design §2).
#[tokio::test]
async fn every_zone_serves_every_service() {
    let server = TestServer::with(crate::support::Options {
        zones: vec!["global".into(), "region".into()],
        ..Default::default()
    })
    .await;
    let mut vips = Vec::new();
    for name in ["httpbin.bar.global.", "httpbin.bar.region."] {
        let reply = exchange(server.addr, &query(name, RecordType::A, false), Via::Udp).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        vips.push(reply.answers[0].data.clone());
    }
    assert_ne!(vips[0], vips[1], "each host has a VIP of its own");
    let reply = exchange(
        server.addr,
        &query("region.", RecordType::SOA, false),
        Via::Udp,
    )
    .await;
    assert_eq!(reply.answers.len(), 1);
}

/// Before any registry has loaded, and with no last-known-good snapshot,
/// every in-zone query gets SERVFAIL, never NXDOMAIN (design §4).
#[tokio::test]
async fn no_registry_yet_means_servfail() {
    let server = TestServer::with(crate::support::Options {
        registry: None,
        ..Default::default()
    })
    .await;
    for via in BOTH {
        let reply = exchange(
            server.addr,
            &query("httpbin.bar.global.", RecordType::A, false),
            via,
        )
        .await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::ServFail,
            "{via:?}"
        );
    }
}
