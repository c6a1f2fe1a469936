//! Registry plus allocations in, published data out: the hosts the registry
//! asks for ([`wants`]) and the DNS zones that answer for them ([`zones`]).
//! Pure functions; the [`crate::controller`] calls them on every change.

use std::net::IpAddr;

use crate::dns::ZoneSet;
use crate::dns::zone::{HostData, ZoneSetBuilder};
use crate::registry::{Registry, Service};
use crate::vip::{Allocator, Table, Want};

/// The hosts `registry` defines in `zones`, each with its pins. Pins apply
/// to the host in the first zone only: every host needs an address of its
/// own, or two ServiceEntries would claim one VIP.
pub fn wants(registry: &Registry, zones: &[String]) -> Vec<Want> {
    let mut wants = Vec::with_capacity(registry.services.len() * zones.len());
    for (i, zone) in zones.iter().enumerate() {
        wants.extend(registry.services.iter().map(|s| want(s, i, zone)));
    }
    wants
}

fn want(service: &Service, zone_index: usize, zone: &str) -> Want {
    Want {
        host: service.host(zone),
        pinned: if zone_index == 0 {
            service.addresses.clone()
        } else {
            Vec::new()
        },
    }
}

/// The zones that answer for `registry`, with the addresses `table` holds.
pub fn zones(
    registry: &Registry,
    zones: &[String],
    allocator: &Allocator,
    table: &Table,
    serial: u32,
    ttl: u32,
) -> Result<ZoneSet, String> {
    let mut set = ZoneSetBuilder::new(serial, ttl, registry.services.len() * zones.len());
    for zone in zones {
        set.zone(zone)?;
    }
    for (i, zone) in zones.iter().enumerate() {
        for service in &registry.services {
            let want = want(service, i, zone);
            let addresses: Vec<IpAddr> = allocator.addresses(table, &want);
            let ports: Vec<(String, u16)> = service
                .ports
                .iter()
                .filter_map(|p| Some((p.name.clone(), u16::try_from(p.number).ok()?)))
                .collect();
            set.add_host(&HostData {
                host: &want.host,
                addresses: &addresses,
                ports: &ports,
            })?;
        }
    }
    Ok(set.build())
}
