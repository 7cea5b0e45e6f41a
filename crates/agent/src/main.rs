//! `landfall-agent`: the host agent on its own, for hosts. The `landfall` binary runs the same
//! agent (`landfall agent`) but carries the server, console, store and router with it; this one
//! links only the agent, on the system allocator, one thread. Exit codes as `landfall`'s: 0 after
//! a requested stop, 1 when the agent fails, 2 for usage and configuration errors.

use std::path::PathBuf;
use std::process::ExitCode;

/// Where the official agent keeps its configuration, so a host moves over by swapping binaries.
const DEFAULT_CONFIG: &str = "/etc/codedeploy-agent/conf/codedeployagent.yml";

const USAGE: &str = "\
usage: landfall-agent [--config FILE]
       landfall-agent --version

Runs the Landfall host agent until SIGINT or SIGTERM: the first signal lets a running lifecycle
event finish, a second abandons it.

  --config FILE   the agent configuration, in the official agent's codedeployagent.yml format
                  (default /etc/codedeploy-agent/conf/codedeployagent.yml)
  --version       print the agent's version and exit
  LANDFALL_LOG    a log filter, LEVEL and TARGET=LEVEL comma separated (default: info;
                  the configuration's :verbose: adds landfall_agent=debug)";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Asked {
    Run { config: PathBuf },
    Version,
    Help,
}

fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Asked, String> {
    let mut config = PathBuf::from(DEFAULT_CONFIG);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        match text.as_ref() {
            "--version" | "-V" => return Ok(Asked::Version),
            "--help" | "-h" => return Ok(Asked::Help),
            "--config" => config = args.next().ok_or("--config needs a file")?.into(),
            _ => match text.strip_prefix("--config=") {
                Some(path) => config = PathBuf::from(path),
                None => return Err(format!("unexpected argument {text:?}")),
            },
        }
    }
    Ok(Asked::Run { config })
}

fn main() -> ExitCode {
    let config = match parse(std::env::args_os().skip(1)) {
        Ok(Asked::Run { config }) => config,
        Ok(Asked::Version) => {
            println!("landfall-agent {}", landfall_agent::version());
            return ExitCode::SUCCESS;
        }
        Ok(Asked::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("landfall-agent: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let settings = match landfall_agent::Settings::load(&config) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("landfall-agent: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(if settings.verbose { "info,landfall_agent=debug" } else { "info" });
    // Updates from the server replace this binary and run it again with the same arguments.
    let self_update = match std::env::current_exe() {
        Ok(exe) => Some(landfall_agent::update::SelfUpdate {
            exe,
            args: std::env::args_os().skip(1).collect(),
            state_file: settings.pid_dir.join(format!("{}.update", settings.program_name)),
            endpoint: settings.command_endpoint.clone(),
            spec_ca: settings.spec_ca.clone(),
        }),
        Err(error) => {
            tracing::warn!(%error, "cannot tell where this binary is: updates from the server are off");
            None
        }
    };
    if let Some(updater) = &self_update
        && let Err(error) = updater.on_start()
    {
        eprintln!("landfall-agent: {error}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("landfall-agent: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let ran = runtime.block_on(async {
        let stop = landfall_agent::Stop::on_signals().map_err(|error| error.to_string())?;
        landfall_agent::run(settings, stop, self_update).await.map_err(|error| error.to_string())
    });
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("landfall-agent: {error}");
            ExitCode::from(1)
        }
    }
}

/// Logs to standard error, filtered by `LANDFALL_LOG` (`LEVEL` and `TARGET=LEVEL`, comma
/// separated). The filter is `Targets`, not `EnvFilter`: the latter's regular expressions were a
/// good share of the code an idle agent keeps paged in.
fn init_logging(default: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let from_environment = std::env::var("LANDFALL_LOG").ok();
    let filter = from_environment
        .as_deref()
        .and_then(|directives| directives.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default());
    // Colour only for a person watching: not in files, pipes or the journal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    tracing_subscriber::registry().with(output).with(filter).init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Asked, String> {
        parse(args.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn the_command_line_names_the_configuration_or_asks_for_the_version() {
        assert_eq!(parsed(&[]), Ok(Asked::Run { config: PathBuf::from(DEFAULT_CONFIG) }));
        assert_eq!(parsed(&["--config", "/tmp/a.yml"]), Ok(Asked::Run { config: PathBuf::from("/tmp/a.yml") }));
        assert_eq!(parsed(&["--config=/tmp/b.yml"]), Ok(Asked::Run { config: PathBuf::from("/tmp/b.yml") }));
        assert_eq!(parsed(&["--version"]), Ok(Asked::Version));
        assert_eq!(parsed(&["-h"]), Ok(Asked::Help));
        assert_eq!(parsed(&["--config"]), Err("--config needs a file".to_owned()));
        assert_eq!(parsed(&["start"]), Err("unexpected argument \"start\"".to_owned()));
    }
}
