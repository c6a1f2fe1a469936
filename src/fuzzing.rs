//! The checks the fuzz targets (`fuzz/`) run on every input, shared with
//! `tests/fuzz_corpus.rs`, which replays the saved corpus in `cargo test`.
//! Each check panics on a broken property; libFuzzer reports the input.

use std::net::IpAddr;
use std::sync::OnceLock;

use hickory_proto::op::Message;

use crate::dns::fast;
use crate::dns::respond::{Transport, respond};
use crate::dns::zone::{HostData, ZoneSet, ZoneSetBuilder};

/// A snapshot with every kind of name: IPv4 and IPv6 hosts, SRV names,
/// empty non-terminals, a wildcard, two zones.
pub fn zones() -> &'static ZoneSet {
    static ZONES: OnceLock<ZoneSet> = OnceLock::new();
    ZONES.get_or_init(|| {
        let mut set = ZoneSetBuilder::new(1, 30, 8);
        set.zone("global").expect("valid zone");
        set.zone("mesh.internal").expect("valid zone");
        let v4: IpAddr = "240.0.195.86".parse().expect("address");
        let v6: IpAddr = "fd00::1".parse().expect("address");
        let many: Vec<IpAddr> = (1..=60u8).map(|i| IpAddr::from([240, 0, 1, i])).collect();
        let ports = [("http", 8000)];
        for (host, addresses, ports) in [
            ("httpbin.bar.global", vec![v4, v6], &ports[..]),
            ("*.ext.global", vec![v4], &[][..]),
            ("many.big.global", many, &[][..]),
            ("reviews.default.mesh.internal", vec![v4], &ports[..]),
        ] {
            set.add_host(&HostData {
                host,
                addresses: &addresses,
                ports,
            })
            .expect("valid host");
        }
        set.build()
    })
}

/// Any bytes as a query: no panic; every response is a readable DNS
/// message; where the fast path answers, its bytes equal the general path's.
pub fn check_query(zones: &ZoneSet, data: &[u8]) {
    for transport in [Transport::Udp, Transport::Tcp] {
        let general = respond(Some(zones), data, transport);
        if let Some(bytes) = &general {
            assert!(
                Message::from_vec(bytes).is_ok(),
                "unreadable response {bytes:?} to {data:?}"
            );
        }
        let mut out = [0u8; 2048];
        if let Some(len) = fast::respond(zones, data, transport, &mut out) {
            assert_eq!(
                Some(&out[..len]),
                general.as_deref(),
                "fast and general paths differ on {data:?}"
            );
        }
    }
    let _ = respond(None, data, Transport::Udp);
}

/// Any text as a registry: accepted or refused with problems, no panic.
pub fn check_registry(text: &str) {
    let zones = ["global".to_string(), "mesh.internal".to_string()];
    if let Ok(registry) = crate::registry::load_str(text, "fuzz", &zones) {
        // A valid registry also builds its snapshot.
        // Per-cluster names on: validation must make them fit too.
        let wants = crate::index::wants(&registry, &zones, true);
        let allocator = crate::vip::Allocator {
            v4: crate::vip::VipRange::new(
                crate::vip::DEFAULT_V4_RANGE.parse().expect("range"),
                crate::vip::Family::V4,
            )
            .expect("range"),
            v6: None,
            quarantine: 600,
        };
        let mut table = crate::vip::Table::default();
        allocator.reconcile(&mut table, &wants, 0);
        let built = crate::index::zones(&registry, &zones, true, &allocator, &table, &[], 30, &[])
            .expect("a valid registry builds");
        // Validation checks every derived name, so no host is left out.
        assert_eq!(built.left_out, Vec::<String>::new());
    }
}
