//! The `landfall` binary: parses arguments into validated settings and hands them to the library
//! crates. Exit codes: 0 success, 1 the thing asked failed, 2 usage or input errors.

mod cli;
mod client_commands;
mod commands;
mod dev;

use std::process::ExitCode;

use clap::Parser as _;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let args = cli::Args::parse();
    // The agent and the client commands do one thing at a time: one thread keeps the agent tiny
    // whatever the host's CPU count. The server, the router and `dev` use every core.
    let builder = match args.command {
        cli::Command::Server(_) | cli::Command::Dev(_) | cli::Command::Router(_) => {
            tokio::runtime::Builder::new_multi_thread()
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match { builder }.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("landfall: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.shown {
                eprintln!("landfall: {:#}", failure.error);
            }
            ExitCode::from(failure.code)
        }
    }
}

/// `landfall status | head -1`: Rust ignores SIGPIPE, so printing to a pipe whose reader has
/// gone fails, and `println!` panics on it. Like other command line tools, end quietly instead.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
