//! The `landfall` binary: parses arguments into validated settings and hands them to the library
//! crates. Exit codes: 0 success, 1 the thing asked failed, 2 usage or input errors.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("landfall: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("landfall: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
