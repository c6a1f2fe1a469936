//! Logs: structured, to standard error, quiet by default (nothing per
//! query). `GLOBALDNS_LOG` takes a `tracing` filter (e.g. `debug`);
//! `GLOBALDNS_LOG_FORMAT=json` gives one JSON object per line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter =
        EnvFilter::try_from_env("GLOBALDNS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if std::env::var("GLOBALDNS_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
