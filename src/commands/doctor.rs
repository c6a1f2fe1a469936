//! `globaldns doctor`: checks the path a `.global` call takes through one
//! cluster, or several, and says what to fix (design §6).
//!
//! `explain` answers for one name from globaldns' own view; `doctor` looks
//! at the cluster around it, as an administrator's kubeconfig sees it:
//!
//! - globaldns itself: its Deployment ready, its Service's ClusterIP, the
//!   sync Lease held and fresh ([`install_check`]);
//! - the cluster DNS: a kube-dns `stubDomains` entry or a CoreDNS server
//!   block forwarding every served zone to that ClusterIP, what
//!   `stub-config` prints ([`install_check`]);
//! - Istio: the `networking.istio.io` versions served; for an exporting
//!   cluster, the `*.<zone>` AUTO_PASSTHROUGH Gateway, its running pods and
//!   the Service exposing the gateway port ([`gateway_check`]); the
//!   ServiceEntries the registry asks for, their ports and endpoints
//!   ([`mesh_check`]);
//! - leftovers that break upgrades: `tcp_cluster_rewrite` EnvoyFilters,
//!   `.global` DNS search namespaces in the injector's values, hand-written
//!   ServiceEntries Istio 1.30+ prefers to globaldns's, a VIP range inside
//!   Istio's own ([`leftover_check`]);
//! - the Istio network label against the registry, the peers, and across
//!   the clusters given: one root of trust, one VIP per host
//!   ([`peer_check`]);
//! - the Multi-Cluster Services face: ServiceExports not Ready and why, a
//!   ServiceImport per service, one ClusterSetIP across the clusters given
//!   ([`mcs_check`]).
//!
//! Everything is read first ([`observe`]), then judged by pure functions,
//! so each check is tested on objects written in the test.

pub mod finding;
pub mod gateway_check;
pub mod install_check;
pub mod leftover_check;
pub mod mcs_check;
pub mod mesh_check;
pub mod observe;
pub mod peer_check;
pub mod registry_read;

use std::io::Write;

use anyhow::{Context, anyhow};

use super::report as commands_report;

pub use finding::{Finding, Status};
pub use observe::{Observed, Options};

/// Every check of one cluster, in the order the table prints them.
pub fn check_cluster(seen: &Observed) -> Vec<Finding> {
    let mut out = Vec::new();
    match &seen.api_server {
        Ok(version) => out.push(Finding::pass(
            "cluster.api-server",
            "API server",
            version.clone(),
        )),
        Err(e) => {
            let mut unreachable = Finding::fail(
                "cluster.api-server",
                "API server",
                format!("not reached: {e}; nothing else was checked"),
                "check the context's server address, credentials (an expired login or exec plugin) and network path",
            );
            unreachable.context = seen.context.clone();
            return vec![unreachable];
        }
    }
    out.push(install_check::deployment(seen));
    out.push(install_check::service(seen));
    out.push(install_check::lease(seen));
    out.extend(install_check::wiring(seen));
    out.extend(registry_read::registry_finding(seen));
    out.push(registry_read::cluster_finding(seen));
    out.push(mesh_check::versions(seen));
    out.extend(gateway_check::gateway(seen));
    out.extend(mesh_check::service_entries(seen));
    out.extend(leftover_check::envoy_filters(seen));
    out.extend(leftover_check::dns_search(seen));
    out.extend(leftover_check::hand_written(seen));
    out.extend(leftover_check::vip_range(seen));
    out.extend(peer_check::network(seen));
    out.extend(peer_check::peers(seen));
    out.extend(mcs_check::service_exports(seen));
    out.extend(mcs_check::service_imports(seen));
    for finding in &mut out {
        finding.context = seen.context.clone();
    }
    out
}

/// Every check of every cluster, then those across them (when more than
/// one is given).
pub fn check_all(seen: &[Observed]) -> Vec<Finding> {
    let mut out: Vec<Finding> = seen.iter().flat_map(check_cluster).collect();
    if seen.len() > 1 {
        out.extend(peer_check::root_of_trust(seen));
        out.extend(peer_check::vip_agreement(seen));
        out.extend(mcs_check::cluster_set_ip_agreement(seen));
    }
    out
}

/// Runs `doctor`: reads every cluster given, prints the findings, and fails
/// (exit 1) when a check failed.
pub fn run(args: crate::cli::DoctorArgs) -> anyhow::Result<()> {
    let zones = args.zones.checked().map_err(|e| anyhow!(e))?;
    if args.cluster.is_some() && args.contexts.len() > 1 {
        return Err(anyhow!(
            "--cluster names one cluster: give it with one --context (with several, each cluster's name is read from its ConfigMap globaldns-config)"
        ));
    }
    let options = Options {
        namespace: args.namespace.clone(),
        name: args.name.clone(),
        istio_namespace: args.istio_namespace.clone(),
        zones,
        per_cluster_names: !args.zones.no_per_cluster_names,
        cluster: args.cluster.clone(),
        registry: args.registry.clone(),
        target: args.mesh.target("", &args.istio_namespace),
        timeout: args.timeout.0,
    };
    let contexts: Vec<Option<String>> = if args.contexts.is_empty() {
        vec![None]
    } else {
        args.contexts.iter().cloned().map(Some).collect()
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let seen = runtime.block_on(async {
        let mut seen = Vec::new();
        for context in &contexts {
            let name = context.clone().unwrap_or_else(|| "current".to_string());
            match observe::client_for(context.as_deref(), options.timeout).await {
                Ok(client) => {
                    let mut one = Observed::read(&client, &name, &options).await;
                    registry_read::read_registry(&client, &mut one).await;
                    mcs_check::read_mcs(&client, &mut one).await;
                    seen.push(one);
                }
                Err(e) => {
                    // One unusable context (a typo, an expired exec
                    // login) is its finding; the others are still read.
                    let mut unusable = Observed::unread(&name);
                    unusable.api_server = Err(commands_report(&e));
                    seen.push(unusable);
                }
            }
        }
        anyhow::Ok(seen)
    })?;
    let findings = check_all(&seen);
    let text = match args.output {
        crate::cli::DoctorOutput::Table => finding::table(&findings),
        crate::cli::DoctorOutput::Json => finding::json(&findings) + "\n",
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
    if failed > 0 {
        return Err(anyhow!("{failed} check(s) failed"));
    }
    Ok(())
}
