//! The admin endpoint (design §6): /healthz, /readyz (false while
//! draining), and /metrics counting the queries answered.

use std::sync::atomic::Ordering;

use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Options, TestServer, Via, exchange, query};

/// A plain HTTP/1.1 GET: the status code and the body.
pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::with(Options {
        admin: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    })
    .await;
    let admin = server.running().admin.expect("admin endpoint bound");
    assert_eq!(get(admin, "/healthz").await.0, 200);
    assert_eq!(get(admin, "/readyz").await, (200, "ready\n".to_string()));
    assert_eq!(
        get(admin, "/readyz?verbose").await,
        (
            200,
            "[+] registry: published\n[+] draining: no\nready\n".to_string()
        )
    );
    // A failing sync is shown, and does not make the server unready.
    *server.running().metrics.sync.detail.lock().unwrap() =
        "1 write(s) failed in the last sync pass: apply ServiceEntry x (forbidden): 403"
            .to_string();
    let (code, body) = get(admin, "/readyz?verbose").await;
    assert_eq!(code, 200);
    assert!(
        body.contains(
            "[!] sync: 1 write(s) failed in the last sync pass: apply ServiceEntry x (forbidden)"
        ),
        "{body}"
    );

    for _ in 0..3 {
        exchange(
            server.addr,
            &query("httpbin.bar.global.", RecordType::A, false),
            Via::Udp,
        )
        .await;
    }
    exchange(
        server.addr,
        &query("nope.global.", RecordType::A, true),
        Via::Tcp,
    )
    .await;
    let (status, text) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(
            r#"globaldns_dns_queries_total{qtype="A",rcode="NOERROR",transport="udp"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"globaldns_dns_queries_total{qtype="A",rcode="NXDOMAIN",transport="tcp"} 1"#
        )
    );
    assert!(text.contains("globaldns_dns_query_duration_seconds_count 4"));
    // Three services, exported by four (cluster, service) pairs: three
    // hosts and four per-cluster names, each with its IPv4 VIP.
    assert!(text.contains("globaldns_registry_hosts 7"), "{text}");
    assert!(text.contains(r#"globaldns_vip_allocated{family="ipv4"} 7"#));
    assert!(text.contains(r#"globaldns_registry_reloads_total{result="success"} 1"#));

    // design §6: explain, over HTTP and through the command line.
    let (status, text) = get(admin, "/explain?name=HttpBin.bar.global").await;
    assert_eq!(status, 200);
    assert!(text.contains("A: NOERROR 240.0.195.86"), "{text}");
    assert!(
        text.contains("registry: service httpbin in namespace bar, exported from west"),
        "{text}"
    );
    assert!(text.contains("VIP IPv4: 240.0.195.86 since "), "{text}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_globaldns"))
            .args(["explain", "nope.bar.global", "--admin", &admin.to_string()])
            .env_remove("GLOBALDNS_ADMIN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("why NXDOMAIN: no service `nope` in namespace `bar` (it exports: httpbin)"),
        "{stdout}"
    );

    // Shutdown starts by draining: readiness goes false while DNS answers.
    server.running().draining.store(true, Ordering::Relaxed);
    assert_eq!(get(admin, "/readyz").await, (503, "draining\n".to_string()));
    let answer = exchange(
        server.addr,
        &query("httpbin.bar.global.", RecordType::A, false),
        Via::Udp,
    )
    .await;
    assert_eq!(answer.answers.len(), 1, "still answering while draining");
    assert_eq!(get(admin, "/no-such-page").await.0, 404);
}

/// Issue 28 item 4: `serve` has an admin endpoint by default, on a fixed
/// loopback port; a second server on the machine finds it taken and
/// serves DNS without one, with a warning, where an address the user gave
/// stays a clear error. (The taken port here is one the test picked.)
#[tokio::test(flavor = "multi_thread")]
async fn a_taken_default_admin_port_is_skipped_a_given_one_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap();
    let server = TestServer::with(Options {
        admin: Some(at),
        admin_is_default: true,
        explain_txt: false,
        ..Default::default()
    })
    .await;
    assert_eq!(server.running().admin, None, "no admin endpoint");
    let answer = exchange(
        server.addr,
        &query("httpbin.bar.global.", RecordType::A, false),
        Via::Udp,
    )
    .await;
    assert_eq!(answer.answers.len(), 1, "DNS is served all the same");
    let out = crate::support::globaldns()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            &at.to_string(),
        ])
        .arg("--registry")
        .arg(crate::support::example("registry.yaml"))
        .arg("--state-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot listen for the admin endpoint on {at}")),
        "{stderr}"
    );
}
