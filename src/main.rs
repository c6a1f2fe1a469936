use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    fixed_mmap_threshold();
    globaldns::logging::init();
    match globaldns::commands::run(globaldns::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("globaldns: {}", globaldns::commands::report(&e));
            ExitCode::FAILURE
        }
    }
}

/// Keeps glibc's mmap threshold where it starts, at 128 KiB (mallopt(3),
/// `M_MMAP_THRESHOLD`). glibc serves a request that large with a mapping of
/// its own, returned to the system when freed, until the first such block
/// is freed: it then raises the threshold to that block's size (up to 32
/// MiB), and later large requests come from the heap, where each one freed
/// leaves a hole that stays resident. A first start at 100,000 services
/// frees tens of MB of working sets between long-lived tables: 6 MB of
/// such holes stayed resident (RSS 60 MB, 54 MB with the threshold fixed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fixed_mmap_threshold() {
    // SAFETY: mallopt only sets a parameter of the allocator; it is called
    // before any other thread exists or anything is allocated by this code.
    let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    debug_assert_eq!(set, 1, "mallopt(M_MMAP_THRESHOLD) refused");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fixed_mmap_threshold() {}
