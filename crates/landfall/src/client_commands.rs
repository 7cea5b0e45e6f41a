//! The client commands (push, deploy, status, logs, stop, rollback, instances, target-group,
//! alarm, pool, events, audit): their arguments turned into `landfall_cli` requests, and their
//! outcomes into exit codes.

use landfall_cli::deploy::{DeployRequest, RevisionChoice, parse_revision};
use landfall_cli::logs::LogsRequest;
use landfall_cli::push::PushRequest;
use landfall_cli::{InvalidInput, Outcome, Output};
use landfall_client::{Client, ClientError};

use landfall_api::landfall::HealthCheck;

use crate::cli::{AlarmCommand, ClientCommand as Command, PoolCommand, TargetGroupCommand};
use crate::commands::{Failure, client, input_error};

pub async fn run(command: Command) -> Result<(), Failure> {
    let output = Output::detect(command.client_args().json());
    let outcome = match command {
        Command::Push(args) => {
            let request = PushRequest {
                application: args.app,
                directory: args.dir,
                bucket: Some(args.bucket),
                key: args.key,
                description: args.description,
            };
            let pushed = landfall_cli::push::push(&client(&args.client)?, &output, &request).await.map_err(failure)?;
            if output.json {
                output.json(&pushed).map_err(Failure::failed)?;
            } else {
                println!(
                    "pushed {} files ({}) as s3://{}/{} (eTag {})",
                    pushed.files,
                    landfall_cli::push::bytes(pushed.size),
                    pushed.bucket,
                    pushed.key,
                    pushed.etag
                );
            }
            Outcome::Succeeded
        }
        Command::Deploy(args) => {
            let revision = match (args.dir, args.revision) {
                (Some(dir), _) => RevisionChoice::Directory(dir),
                (None, Some(text)) => {
                    RevisionChoice::Location(Box::new(parse_revision(&text).map_err(Failure::usage)?))
                }
                (None, None) => return Err(Failure::usage(anyhow::anyhow!("give a directory or --revision"))),
            };
            let request = DeployRequest {
                application: args.app,
                group: args.group,
                revision,
                config: args.config,
                description: args.description,
                wait: args.wait,
            };
            landfall_cli::deploy::deploy(&client(&args.client)?, &output, request).await.map_err(failure)?
        }
        Command::Status(args) => {
            let client = client(&args.client)?;
            match &args.deployment {
                Some(id) => landfall_cli::status::deployment(&client, &output, id).await.map_err(failure)?,
                None => {
                    landfall_cli::status::latest(
                        &client,
                        &output,
                        args.app.as_deref(),
                        args.group.as_deref(),
                        args.limit,
                    )
                    .await
                    .map_err(failure)?;
                    Outcome::Succeeded
                }
            }
        }
        Command::Logs(args) => {
            let request =
                LogsRequest { deployment_id: args.deployment, host: args.host, event: args.event, follow: args.follow };
            landfall_cli::logs::logs(&client(&args.client)?, &output, &request).await.map_err(failure)?;
            Outcome::Succeeded
        }
        Command::Stop(args) => {
            landfall_cli::deploy::stop(&client(&args.client)?, &output, &args.deployment, args.rollback)
                .await
                .map_err(failure)?;
            Outcome::Succeeded
        }
        Command::Rollback(args) => {
            let client = client(&args.client)?;
            landfall_cli::deploy::rollback(&client, &output, &args.app, &args.group, args.to.as_deref(), args.wait)
                .await
                .map_err(failure)?
        }
        Command::Instances(args) => {
            landfall_cli::instances::instances(&client(&args.client)?, &output, args.all).await.map_err(failure)?;
            Outcome::Succeeded
        }
        Command::TargetGroup(command) => {
            let client = client(command.client_args())?;
            target_group(command, &client, &output).await.map_err(failure)?;
            Outcome::Succeeded
        }
        Command::Alarm(command) => {
            let client = client(command.client_args())?;
            alarm(command, &client, &output).await.map_err(failure)?;
            Outcome::Succeeded
        }
        Command::Pool(command) => {
            let client = client(command.client_args())?;
            pool(command, &client, &output).await.map_err(failure)?;
            Outcome::Succeeded
        }
        Command::Events(args) => {
            landfall_cli::journal::events(&client(&args.client)?, &output, &args.deployment, args.follow)
                .await
                .map_err(failure)?;
            Outcome::Succeeded
        }
        Command::Audit(args) => {
            let since = match &args.since {
                Some(text) => Some(landfall_cli::journal::parse_age(text).ok_or_else(|| {
                    Failure::usage(anyhow::anyhow!("--since '{text}' is not an age such as 30s, 15m, 2h or 7d"))
                })?),
                None => None,
            };
            let query = landfall_cli::journal::AuditQuery {
                since,
                access_key_id: args.key,
                operation: args.operation,
                limit: args.limit.max(1),
            };
            landfall_cli::journal::audit(&client(&args.client)?, &output, query).await.map_err(failure)?;
            Outcome::Succeeded
        }
    };
    match outcome {
        Outcome::Succeeded => Ok(()),
        Outcome::Unsuccessful => Err(Failure::shown(1)),
    }
}

async fn target_group(command: TargetGroupCommand, client: &Client, output: &Output) -> anyhow::Result<()> {
    use landfall_cli::target_groups;
    match command {
        TargetGroupCommand::Create {
            name,
            router,
            health_path,
            interval,
            timeout,
            healthy_threshold,
            unhealthy_threshold,
            deregistration_delay,
            client: _,
        } => {
            let request = target_groups::CreateRequest {
                name,
                router,
                health_check: HealthCheck {
                    path: health_path,
                    interval_seconds: interval,
                    timeout_seconds: timeout,
                    healthy_threshold,
                    unhealthy_threshold,
                },
                deregistration_delay_seconds: deregistration_delay,
            };
            target_groups::create(client, output, request).await
        }
        TargetGroupCommand::List { client: _ } => target_groups::list(client, output).await,
        TargetGroupCommand::Delete { name, client: _ } => target_groups::delete(client, output, &name).await,
        TargetGroupCommand::Register { name, instance, address, weight, standby, client: _ } => {
            let target = target_groups::Target { instance: &instance, address: &address, weight, standby };
            target_groups::register(client, output, &name, target).await
        }
        TargetGroupCommand::Deregister { name, instance, client: _ } => {
            target_groups::deregister(client, output, &name, &instance).await
        }
    }
}

async fn alarm(command: AlarmCommand, client: &Client, output: &Output) -> anyhow::Result<()> {
    use landfall_cli::alarms;
    match command {
        AlarmCommand::Create { name, query, comparison, threshold, description, client: _ } => {
            let request = alarms::PutRequest { name, query, comparison, threshold, description };
            alarms::put(client, output, request).await
        }
        AlarmCommand::List { no_evaluate, client: _ } => alarms::list(client, output, !no_evaluate).await,
        AlarmCommand::Delete { name, client: _ } => alarms::delete(client, output, &name).await,
    }
}

async fn pool(command: PoolCommand, client: &Client, output: &Output) -> anyhow::Result<()> {
    use landfall_cli::pools;
    match command {
        PoolCommand::Create { name, hosts, client: _ } => pools::create(client, output, &name, hosts).await,
        PoolCommand::Add { name, hosts, client: _ } => pools::change(client, output, true, &name, hosts).await,
        PoolCommand::Remove { name, hosts, client: _ } => pools::change(client, output, false, &name, hosts).await,
        PoolCommand::List { name, client: _ } => pools::list(client, output, name).await,
        PoolCommand::Delete { name, client: _ } => pools::delete(client, output, &name).await,
    }
}

/// An error's exit code: 2 when the request itself was wrong (an API input error, an invalid
/// AppSpec), else 1. A reader that went away (`| head`) is no error at all.
fn failure(error: anyhow::Error) -> Failure {
    if error.downcast_ref::<InvalidInput>().is_some() {
        return Failure::usage(error);
    }
    if error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
        return Failure::quiet();
    }
    match error.downcast::<ClientError>() {
        Ok(client_error) => input_error(client_error),
        Err(other) => Failure::failed(other),
    }
}
