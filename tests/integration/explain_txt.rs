//! `serve --explain-txt`: `TXT _explain.<host>` answers a one-line
//! provenance over real UDP and TCP sockets; without the flag the name is
//! like any other unknown name.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::{BOTH, Options, TestServer, exchange, query};

fn text(answer: &hickory_proto::op::Message) -> String {
    answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_served_host_s_provenance_is_one_txt_line() {
    let server = TestServer::with(Options {
        explain_txt: true,
        ..Options::default()
    })
    .await;
    let a = exchange(
        server.addr,
        &query("httpbin.bar.global.", RecordType::A, true),
        BOTH[0],
    )
    .await;
    let Some(RData::A(vip)) = a.answers.first().map(|r| r.data.clone()) else {
        panic!("no A for httpbin: {a:?}");
    };
    for via in BOTH {
        let asked = query("_Explain.httpbin.bar.global.", RecordType::TXT, true);
        let answer = exchange(server.addr, &asked, via).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.metadata.authoritative);
        assert_eq!(answer.answers[0].ttl, 0, "a provenance is not cached");
        assert_eq!(
            answer.answers[0].name.to_ascii(),
            "_Explain.httpbin.bar.global."
        );
        let line = text(&answer);
        assert!(
            line.starts_with("httpbin.bar.global exported-by=west "),
            "{line}"
        );
        assert!(
            line.contains(&format!(" vip={vip} first-choice=yes")),
            "{line}"
        );
        assert!(line.contains(" registry=current serial="), "{line}");
    }
    let line = text(
        &exchange(
            server.addr,
            &query("_explain.west.httpbin.bar.global.", RecordType::TXT, false),
            BOTH[0],
        )
        .await,
    );
    assert!(line.contains(" per-cluster-of=west"), "{line}");
    let line = text(
        &exchange(
            server.addr,
            &query("_explain.nope.bar.global.", RecordType::TXT, false),
            BOTH[0],
        )
        .await,
    );
    // Not served: said, without listing what the namespace holds.
    assert!(
        line.starts_with("nope.bar.global nxdomain registry="),
        "{line}"
    );
    // A name under a host is NXDOMAIN, and its line says so.
    let line = text(
        &exchange(
            server.addr,
            &query("_explain.httpbin.bar.x.global.", RecordType::TXT, false),
            BOTH[0],
        )
        .await,
    );
    assert!(line.starts_with("httpbin.bar.x.global nxdomain "), "{line}");
    // Other types of the name: NODATA on both paths (the fast path leaves
    // it to the general one), not an NXDOMAIN a cache would apply to TXT.
    for qtype in [RecordType::A, RecordType::AAAA] {
        let answer = exchange(
            server.addr,
            &query("_explain.httpbin.bar.global.", qtype, false),
            BOTH[0],
        )
        .await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NoError,
            "{qtype}"
        );
        assert!(answer.answers.is_empty());
        assert_eq!(answer.authorities.len(), 1, "the SOA");
    }
    // Outside the zones: REFUSED as any other name.
    let answer = exchange(
        server.addr,
        &query("_explain.example.com.", RecordType::TXT, false),
        BOTH[0],
    )
    .await;
    assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn without_the_flag_an_explain_name_is_nxdomain() {
    let server = TestServer::start().await;
    for qtype in [RecordType::TXT, RecordType::A] {
        let answer = exchange(
            server.addr,
            &query("_explain.httpbin.bar.global.", qtype, false),
            BOTH[0],
        )
        .await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NXDomain,
            "{qtype}"
        );
    }
}

#[tokio::test]
async fn explain_queries_beyond_the_rate_are_refused() {
    let server = TestServer::with(Options {
        explain_txt: true,
        ..Options::default()
    })
    .await;
    let asked = query("_explain.httpbin.bar.global.", RecordType::TXT, false);
    let mut refused = 0;
    let started = std::time::Instant::now();
    for _ in 0..2 * globaldns::explain::txt_line::PER_SECOND {
        let answer = exchange(server.addr, &asked, BOTH[0]).await;
        if answer.metadata.response_code == ResponseCode::Refused {
            refused += 1;
        }
    }
    // Within one second, everything past the budget is refused.
    if started.elapsed() < std::time::Duration::from_secs(1) {
        assert_eq!(refused, globaldns::explain::txt_line::PER_SECOND, "refused");
    } else {
        assert!(refused > 0, "none refused");
    }
    // The other names are not limited.
    let a = exchange(
        server.addr,
        &query("httpbin.bar.global.", RecordType::A, false),
        BOTH[1],
    )
    .await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
}
