//! The commands behind the command line, each one short: they wire the
//! library together and print.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use tokio_util::sync::CancellationToken;

use crate::cli::{CheckArgs, Cli, Command, RenderArgs, ServeArgs, SnapshotArgs};
use crate::controller::Settings;
use crate::registry::{Registry, file};
use crate::render::{Target, render};
use crate::state::StateDir;
use crate::vip::Table;
use crate::{index, serve};

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Check(args) => check(args),
        Command::Zonefile(args) => zonefile(args),
        Command::Render(args) => render_entries(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config().map_err(|e| anyhow!(e))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let running = serve::start(config, shutdown.clone()).await?;
        shutdown_on_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
        running.wait().await;
        Ok(())
    })
}

async fn shutdown_on_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let zones = args.zones.checked().map_err(|e| anyhow!(e))?;
    let registry = file::read(&args.file, &zones)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: valid", args.file.display())?;
    let mut exports: BTreeMap<&str, usize> = BTreeMap::new();
    for service in &registry.services {
        for cluster in &service.exported_from {
            *exports.entry(cluster).or_default() += 1;
        }
    }
    writeln!(out, "clusters: {}", registry.clusters.len())?;
    for cluster in &registry.clusters {
        let gateways: Vec<String> = cluster
            .gateways
            .iter()
            .map(|g| format!("{}:{}", g.address, g.port))
            .collect();
        writeln!(
            out,
            "  {:<20} exports {:>5} services through {}",
            cluster.name,
            exports.get(cluster.name.as_str()).unwrap_or(&0),
            gateways.join(", ")
        )?;
    }
    writeln!(out, "services: {}", registry.services.len())?;
    writeln!(out, "hosts: {}", registry.services.len() * zones.len())?;
    for zone in &zones {
        for service in &registry.services {
            writeln!(
                out,
                "  {:<50} from {}",
                service.host(zone),
                service.exported_from.join(", ")
            )?;
        }
    }
    Ok(())
}

/// The registry, settings and allocation table `zonefile` and `render`
/// print from: the table read from the state directory, if one is given,
/// and brought up to date in memory (nothing is written).
fn snapshot(args: &SnapshotArgs) -> anyhow::Result<(Settings, Registry, Table)> {
    let settings = args.serving.settings().map_err(|e| anyhow!(e))?;
    let registry = file::read(&args.registry, &settings.zones)?;
    let mut table = match &args.state_dir {
        Some(dir) => StateDir::open(dir)?.load_table()?,
        None => Default::default(),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let wants = index::wants(&registry, &settings.zones);
    settings.allocator.reconcile(&mut table, &wants, now);
    Ok((settings, registry, table))
}

fn zonefile(args: SnapshotArgs) -> anyhow::Result<()> {
    let (settings, registry, table) = snapshot(&args)?;
    let serial = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as u32;
    let zones = index::zones(
        &registry,
        &settings.zones,
        &settings.allocator,
        &table,
        serial,
        settings.ttl,
    )
    .map_err(|e| anyhow!(e))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for zone in zones.zones() {
        writeln!(out, "; zone {}", zone.origin)?;
        writeln!(out, "{}", zone.soa)?;
        for ns in &zone.ns {
            writeln!(out, "{ns}")?;
        }
        for record in zones.records(zone) {
            writeln!(out, "{record}")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn render_entries(args: RenderArgs) -> anyhow::Result<()> {
    let (settings, registry, table) = snapshot(&args.snapshot)?;
    let target = Target {
        cluster: &args.cluster,
        namespace: &args.namespace,
    };
    let entries = render(
        &registry,
        &settings.zones,
        &settings.allocator,
        &table,
        &target,
    )
    .map_err(|e| anyhow!(e))?;
    let yaml = serde_saphyr::to_string_multiple(&entries).context("cannot write YAML")?;
    let mut out = std::io::stdout().lock();
    out.write_all(yaml.as_bytes())?;
    out.flush()?;
    Ok(())
}
