//! globaldns itself (its Deployment, Service and sync Lease) and the
//! cluster DNS that forwards the served zones to it.

use std::net::IpAddr;

use k8s_openapi::jiff::Timestamp;

use super::Finding;
use super::observe::{Observed, Read};
use crate::commands::stub::splice::{corefile_forwards, stub_domain_servers};
use crate::commands::stub::{COREDNS, DNS_NAMESPACE, KUBE_DNS};

fn names(seen: &Observed) -> (String, String) {
    let options = seen.options.as_ref();
    (
        options.map(|o| o.namespace.clone()).unwrap_or_default(),
        options.map(|o| o.name.clone()).unwrap_or_default(),
    )
}

fn unreadable(check: &'static str, object: String, e: &str) -> Finding {
    Finding::fail(
        check,
        object,
        format!("cannot be read: {e}"),
        "run doctor with an administrator's kubeconfig (it reads every namespace)",
    )
}

/// `globaldns.deployment`: the Deployment exists and has ready replicas
/// (every replica answers DNS; one is enough to serve, all are wanted).
pub fn deployment(seen: &Observed) -> Finding {
    const CHECK: &str = "globaldns.deployment";
    let (ns, name) = names(seen);
    let object = format!("Deployment {ns}/{name}");
    let found = match &seen.deployment {
        Err(e) => return unreadable(CHECK, object, e),
        Ok(None) => {
            return Finding::fail(
                CHECK,
                object,
                "does not exist",
                "install globaldns: kubectl apply -k manifests/ (or manifests/file-mode/)",
            );
        }
        Ok(Some(found)) => found,
    };
    let wanted = found.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = found
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let message = format!("{ready}/{wanted} replicas ready");
    if ready == 0 {
        Finding::fail(
            CHECK,
            object,
            message,
            format!(
                "no replica answers DNS: kubectl -n {ns} describe pods -l app.kubernetes.io/name={name}"
            ),
        )
    } else if ready < wanted {
        Finding::warn(
            CHECK,
            object,
            message,
            format!("kubectl -n {ns} describe pods -l app.kubernetes.io/name={name}"),
        )
    } else {
        Finding::pass(CHECK, object, message)
    }
}

/// The ClusterIP of globaldns' Service, when it has one.
pub fn cluster_ip(seen: &Observed) -> Option<IpAddr> {
    let service = seen.service.as_ref().ok()?.as_ref()?;
    service.spec.as_ref()?.cluster_ip.as_deref()?.parse().ok()
}

/// `globaldns.service`: the Service has a ClusterIP (the address the
/// cluster DNS forwards to) and port 53 over UDP and TCP.
pub fn service(seen: &Observed) -> Finding {
    const CHECK: &str = "globaldns.service";
    let (ns, name) = names(seen);
    let object = format!("Service {ns}/{name}");
    let found = match &seen.service {
        Err(e) => return unreadable(CHECK, object, e),
        Ok(None) => {
            return Finding::fail(
                CHECK,
                object,
                "does not exist: the cluster DNS has nothing to forward to",
                "install globaldns: kubectl apply -k manifests/",
            );
        }
        Ok(Some(found)) => found,
    };
    let Some(ip) = cluster_ip(seen) else {
        return Finding::fail(
            CHECK,
            object,
            "has no ClusterIP (headless)",
            "the cluster DNS forwards to one address: recreate it as type ClusterIP",
        );
    };
    let ports = found
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let missing: Vec<&str> = ["UDP", "TCP"]
        .into_iter()
        .filter(|proto| {
            !ports
                .iter()
                .any(|p| p.port == 53 && p.protocol.as_deref().unwrap_or("TCP") == *proto)
        })
        .collect();
    if missing.is_empty() {
        Finding::pass(
            CHECK,
            object,
            format!("ClusterIP {ip}, port 53 UDP and TCP"),
        )
    } else {
        Finding::fail(
            CHECK,
            object,
            format!("ClusterIP {ip} but no port 53/{}", missing.join(", 53/")),
            "DNS needs 53/UDP and 53/TCP (answers that do not fit UDP are retried over TCP)",
        )
    }
}

/// `globaldns.lease`: a replica holds the sync Lease and renewed it within
/// its duration (design §5: only the holder writes the Istio objects).
pub fn lease(seen: &Observed) -> Finding {
    lease_at(seen, Timestamp::now())
}

/// Seconds of clock skew the Lease check forgives.
const LEASE_SKEW: i64 = 5;

fn lease_at(seen: &Observed, now: Timestamp) -> Finding {
    const CHECK: &str = "globaldns.lease";
    let (ns, name) = names(seen);
    let object = format!("Lease {ns}/{name}");
    let fix = format!(
        "no replica writes the Istio objects: are the pods running with --sync-service-entries? kubectl -n {ns} logs deploy/{name}"
    );
    let spec = match &seen.lease {
        Err(e) => return unreadable(CHECK, object, e),
        Ok(None) => {
            return Finding::fail(CHECK, object, "does not exist: no replica ever led", fix);
        }
        Ok(Some(lease)) => lease.spec.clone().unwrap_or_default(),
    };
    let holder = spec.holder_identity.unwrap_or_default();
    let (Some(renewed), false) = (spec.renew_time, holder.is_empty()) else {
        return Finding::fail(CHECK, object, "held by nobody", fix);
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let age = now.duration_since(renewed.0).as_secs();
    // Clock skew between this machine and the holder's node is forgiven
    // up to a few seconds.
    if age > duration + LEASE_SKEW {
        Finding::fail(
            CHECK,
            object,
            format!("held by {holder}, last renewed {age}s ago (it expires after {duration}s)"),
            fix,
        )
    } else {
        Finding::pass(
            CHECK,
            object,
            format!("held by {holder}, renewed {age}s ago"),
        )
    }
}

/// Whether a server as written in the wiring (`IP`, `IP:port`,
/// `[IPv6]:port`) is `ip` on port 53.
fn is(server: &str, ip: IpAddr) -> bool {
    if let Ok(addr) = server.parse::<std::net::SocketAddr>() {
        return addr.ip() == ip && addr.port() == 53;
    }
    server.trim_matches(['[', ']']).parse::<IpAddr>() == Ok(ip)
}

/// What one ConfigMap says of `zone`: `None` when it does not wire it.
fn wired(
    map: &Read<Option<k8s_openapi::api::core::v1::ConfigMap>>,
    key: &str,
    zone: &str,
) -> Result<Option<Vec<String>>, String> {
    let map = match map {
        Ok(Some(map)) => map,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    let Some(text) = map.data.as_ref().and_then(|d| d.get(key)) else {
        return Ok(None);
    };
    let read = if key == "Corefile" {
        corefile_forwards(text, zone)
    } else {
        stub_domain_servers(text, zone)
    };
    read.map_err(|e| format!("does not parse: {e}"))
}

/// Whether the Corefile pulls in files doctor cannot see (`import`, as AKS'
/// `coredns-custom` and k3s' `*.server` files are read).
fn imports(map: &Read<Option<k8s_openapi::api::core::v1::ConfigMap>>) -> bool {
    let Ok(Some(map)) = map else {
        return false;
    };
    map.data
        .as_ref()
        .and_then(|d| d.get("Corefile"))
        .is_some_and(|c| c.lines().any(|l| l.trim_start().starts_with("import ")))
}

/// `dns.wiring`, per served zone: the kube-dns `stubDomains` entry or the
/// CoreDNS server block for it exists and forwards to globaldns'
/// ClusterIP (what `globaldns stub-config` prints).
pub fn wiring(seen: &Observed) -> Vec<Finding> {
    const CHECK: &str = "dns.wiring";
    let zones = seen
        .options
        .as_ref()
        .map(|o| o.zones.clone())
        .unwrap_or_default();
    // The DNS zones (an MCS zone's apex, not its `svc.` host suffix).
    let zones: Vec<&str> = zones.iter().map(|z| crate::naming::dns_zone(z)).collect();
    let fix = "globaldns stub-config | kubectl apply -f -  (merges the zones into the cluster's ConfigMaps)";
    let Some(ip) = cluster_ip(seen) else {
        return vec![Finding::fail(
            CHECK,
            "cluster DNS",
            "cannot be checked: globaldns' Service has no ClusterIP to forward to",
            "fix globaldns.service first",
        )];
    };
    if let (Err(a), Err(_)) = (&seen.kube_dns, &seen.coredns) {
        return vec![unreadable(
            CHECK,
            format!("ConfigMaps {DNS_NAMESPACE}/{KUBE_DNS}, {DNS_NAMESPACE}/{COREDNS}"),
            a,
        )];
    }
    let mut out = Vec::new();
    for zone in &zones {
        let sources = [
            (
                format!("ConfigMap {DNS_NAMESPACE}/{COREDNS}"),
                wired(&seen.coredns, "Corefile", zone),
            ),
            (
                format!("ConfigMap {DNS_NAMESPACE}/{KUBE_DNS}"),
                wired(&seen.kube_dns, "stubDomains", zone),
            ),
        ];
        let mut right = None;
        let mut wrong = Vec::new();
        for (object, read) in sources {
            match read {
                Err(e) => out.push(Finding::fail(
                    CHECK,
                    object,
                    e,
                    "run doctor with an administrator's kubeconfig, or fix the ConfigMap by hand (stub-config refuses to merge into one that does not parse)",
                )),
                Ok(None) => {}
                Ok(Some(servers)) if servers.iter().any(|s| is(s, ip)) => right = Some(object),
                Ok(Some(servers)) => wrong.push((object, servers)),
            }
        }
        match (right, wrong.first()) {
            (Some(object), None) => out.push(Finding::pass(
                CHECK,
                object,
                format!("{zone} is forwarded to {ip}"),
            )),
            (Some(object), Some((other, servers))) => out.push(Finding::warn(
                CHECK,
                object,
                format!(
                    "{zone} is forwarded to {ip}, but {other} forwards it to {}",
                    servers.join(" ")
                ),
                fix,
            )),
            (None, Some((object, servers))) => out.push(Finding::fail(
                CHECK,
                object.clone(),
                format!(
                    "{zone} is forwarded to {}, not to globaldns' ClusterIP {ip}",
                    if servers.is_empty() {
                        "nowhere".to_string()
                    } else {
                        servers.join(" ")
                    }
                ),
                fix,
            )),
            (None, None) if imports(&seen.coredns) => out.push(Finding::warn(
                CHECK,
                format!("ConfigMap {DNS_NAMESPACE}/{COREDNS}"),
                format!("no block for {zone} in the Corefile, which imports other files doctor cannot see"),
                "check the imported server blocks forward the zone to globaldns' ClusterIP, or apply stub-config's block",
            )),
            (None, None) => out.push(Finding::fail(
                CHECK,
                format!("ConfigMap {DNS_NAMESPACE}/{COREDNS} or {KUBE_DNS}"),
                format!("{zone} is not forwarded to globaldns: pods get NXDOMAIN for its names"),
                fix,
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests;
