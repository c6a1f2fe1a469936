use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    globaldns::logging::init();
    match globaldns::commands::run(globaldns::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("globaldns: {}", globaldns::commands::report(&e));
            ExitCode::FAILURE
        }
    }
}
