//! The raw command line, as clap parses it. Validation into settings happens in `commands`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "landfall",
    version,
    about = "A self-hosted deployment service that speaks AWS CodeDeploy's API",
    after_help = "Examples:
  landfall dev                                  try it: a server, three local hosts, an example deployed
  landfall server --data-dir /var/lib/landfall  run the control plane
  landfall deploy --app shop --group web ./build --wait
  landfall status
  landfall logs d-ABCDEFGHI --host web-1 --follow

Client commands find the server and credentials as the aws CLI does: AWS_ENDPOINT_URL, then
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a shared credentials file and AWS_PROFILE."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane: the CodeDeploy API and Landfall's extensions.
    Server(Box<ServerArgs>),
    /// Try Landfall out: a local server, local hosts with their agents, and an example
    /// application deployed to them.
    Dev(DevArgs),
    /// Create, list and revoke API access keys (administrator keys only).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Register hosts and write their agent configuration.
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// Run the host agent: poll the server for lifecycle events and carry them out on this host.
    Agent(AgentArgs),
    /// Run a bundle's lifecycle on this host without a server, as a deployment would (the
    /// official agent's codedeploy-local): to check a bundle before deploying it.
    #[command(after_help = "Examples:
  landfall local --bundle-location . --type directory
  landfall local --bundle-location app.tgz --type tgz --events BeforeInstall,AfterInstall
  landfall local --bundle-location app.zip --type zip --agent-configuration-file ./codedeployagent.yml

Exit status: 0 when every event succeeded, 1 when one failed (the ones after it do not run),
2 when the command line or the configuration is wrong (nothing ran).")]
    Local(LocalArgs),
    /// Roll the agent binary the server offers out to a deployment group's hosts (or the
    /// instances named), a few at a time: each agent replaces itself between lifecycle events.
    #[command(after_help = "Examples:
  landfall agent-update --application shop --group web --max-unavailable 2 --wait
  landfall agent-update --instance web-1 --instance web-2

Exit status with --wait: 0 when every host updated, 1 when one failed.")]
    AgentUpdate(AgentUpdateArgs),
    #[command(flatten)]
    Client(ClientCommand),
    /// Route HTTP traffic to a target group's healthy backends (the built-in router): weights,
    /// health checks and draining, as the server says.
    #[command(after_help = "Examples:
  landfall keys create --role router --as-profile router >> ~/.aws/credentials
  AWS_PROFILE=router landfall router --target-group web --listen 0.0.0.0:8080
  AWS_PROFILE=router landfall router --target-group web --haproxy-socket /run/haproxy/admin.sock --haproxy-backend web")]
    Router(RouterArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  landfall completions bash > /etc/bash_completion.d/landfall
  landfall completions zsh > \"${fpath[1]}/_landfall\"")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// The commands people use day to day, against a running server.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Bundle a directory (its appspec.yml checked first), upload it and register it as a
    /// revision of an application.
    #[command(after_help = "Examples:
  landfall push --app shop ./build
  landfall push --app shop ./build --bucket releases --key shop/1.4.2.tgz --output json")]
    Push(PushArgs),
    /// Deploy a directory, a pushed revision or a git commit to a deployment group; with
    /// --wait, follow it live and exit 0 only if it succeeds.
    #[command(after_help = "Examples:
  landfall deploy --app shop --group web ./build --wait
  landfall deploy --app shop --group web --revision s3://landfall-revisions/shop/1a2b3c.tgz
  landfall deploy --app shop --group web --revision github:acme/shop@5f3c2e1... --config CodeDeployDefault.HalfAtATime --wait")]
    Deploy(DeployArgs),
    /// Show one deployment with its hosts (exit 1 unless it succeeded), or the latest deployments.
    #[command(after_help = "Examples:
  landfall status
  landfall status --app shop --group web --limit 5
  landfall status d-ABCDEFGHI --output json")]
    Status(StatusArgs),
    /// Print the whole output of a deployment's hook scripts, per host and lifecycle event.
    #[command(after_help = "Examples:
  landfall logs d-ABCDEFGHI
  landfall logs d-ABCDEFGHI --host web-1 --event ValidateService
  landfall logs d-ABCDEFGHI --follow")]
    Logs(LogsArgs),
    /// Stop a deployment: running hooks finish, nothing new starts.
    #[command(after_help = "Examples:
  landfall stop d-ABCDEFGHI
  landfall stop d-ABCDEFGHI --rollback")]
    Stop(StopArgs),
    /// Redeploy a group's last successful revision (the newest one that differs from its latest
    /// deployment's), or the revision of --to DEPLOYMENT.
    #[command(after_help = "Examples:
  landfall rollback --app shop --group web --wait
  landfall rollback --app shop --group web --to d-ABCDEFGHI")]
    Rollback(RollbackArgs),
    /// List registered hosts with their tags and when their agents last polled.
    Instances(InstancesArgs),
    /// Create, list and delete target groups, and register their targets (administrator keys).
    #[command(subcommand, name = "target-group")]
    TargetGroup(TargetGroupCommand),
    /// Create, list and delete the alarms deployment groups watch (PromQL against the server's
    /// Prometheus).
    #[command(subcommand)]
    Alarm(AlarmCommand),
    /// Create, list and delete host pools: named sets of hosts that deployment groups select
    /// through autoScalingGroups (administrator keys to change them).
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Print a deployment's timeline: waves, host events, alarms, stops, rollbacks.
    #[command(after_help = "Examples:
  landfall events d-ABCDEFGHI
  landfall events d-ABCDEFGHI --follow")]
    Events(EventsArgs),
    /// Show the audit log: every call that changed something, who made it, from where, and how
    /// it ended (administrator keys).
    #[command(after_help = "Examples:
  landfall audit --since 1h
  landfall audit --operation CreateDeployment --key AKIA... --output json")]
    Audit(AuditArgs),
}

#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// Create an alarm, or replace the one of that name: in ALARM while any sample of the
    /// PromQL query compares with the threshold.
    #[command(after_help = "Examples:
  landfall alarm create http-errors --query 'sum(rate(http_errors_total[1m]))' --threshold 1
  landfall alarm create low-traffic --query 'sum(rate(http_requests_total[5m]))' --comparison '<' --threshold 10
A deployment group watches it when its alarmConfiguration names it:
  aws deploy update-deployment-group ... --alarm-configuration enabled=true,alarms=[{name=http-errors}]
A name that is no Landfall alarm is taken as a Prometheus alerting rule, in ALARM while it fires.")]
    Create {
        name: String,
        /// The PromQL expression (an instant vector or a scalar).
        #[arg(long)]
        query: String,
        /// >, >=, < or <= (or GreaterThanThreshold, ...).
        #[arg(long, default_value = ">")]
        comparison: String,
        #[arg(long, allow_negative_numbers = true)]
        threshold: f64,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the alarms and their state now.
    List {
        /// Do not evaluate them (no Prometheus queries).
        #[arg(long)]
        no_evaluate: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete an alarm.
    Delete {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

impl AlarmCommand {
    pub fn client_args(&self) -> &ClientArgs {
        match self {
            AlarmCommand::Create { client, .. }
            | AlarmCommand::List { client, .. }
            | AlarmCommand::Delete { client, .. } => client,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Create a host pool, with the registered hosts given as its first members.
    #[command(after_help = "Examples:
  landfall pool create web-pool web-1 web-2
A deployment group selects the pool's hosts when its autoScalingGroups names it:
  aws deploy update-deployment-group ... --auto-scaling-groups web-pool
A host added later gets the group's current revision as soon as its agent polls.")]
    Create {
        name: String,
        /// Registered hosts to put in it.
        hosts: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add registered hosts to a pool: each group naming it deploys its revision to them.
    Add {
        name: String,
        #[arg(required = true)]
        hosts: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Take hosts out of a pool: the groups naming it leave them out of their next deployments
    /// (to stop a host's application first, use landfall instance drain).
    Remove {
        name: String,
        #[arg(required = true)]
        hosts: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the pools (or one), their hosts and the deployment groups that name them.
    List {
        name: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a pool no deployment group names.
    Delete {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

impl PoolCommand {
    pub fn client_args(&self) -> &ClientArgs {
        match self {
            PoolCommand::Create { client, .. }
            | PoolCommand::Add { client, .. }
            | PoolCommand::Remove { client, .. }
            | PoolCommand::List { client, .. }
            | PoolCommand::Delete { client, .. } => client,
        }
    }
}

#[derive(Debug, ClapArgs)]
pub struct EventsArgs {
    /// The deployment id (d-...).
    pub deployment: String,
    /// Keep printing new entries until the deployment is over.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct AuditArgs {
    /// Only calls at most this old: 30s, 15m, 2h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// Only calls made with this access key.
    #[arg(long)]
    pub key: Option<String>,
    /// Only this operation (CreateDeployment, Landfall.PutAlarm, ...).
    #[arg(long)]
    pub operation: Option<String>,
    /// At most this many records, the newest.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct RouterArgs {
    /// The target group to route to.
    #[arg(long)]
    pub target_group: String,
    /// Serve the traffic here with the built-in proxy (HTTP/1.1 and cleartext HTTP/2).
    #[arg(long, required_unless_present = "haproxy_socket", conflicts_with = "haproxy_socket")]
    pub listen: Option<SocketAddr>,
    /// Drive a running HAProxy instead, through its runtime API: a stats socket at admin level
    /// (a unix socket path, or HOST:PORT).
    #[arg(long, requires = "haproxy_backend", value_name = "SOCKET")]
    pub haproxy_socket: Option<String>,
    /// The HAProxy backend the target group's servers go into (it sets `option httpchk`).
    #[arg(long, value_name = "BACKEND")]
    pub haproxy_backend: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum TargetGroupCommand {
    /// Create a target group.
    #[command(after_help = "Examples:
  landfall target-group create web --health-path /health --deregistration-delay 10")]
    Create {
        name: String,
        /// builtin (landfall router) or haproxy.
        #[arg(long, default_value = "builtin")]
        router: String,
        /// The path the router GETs on each target; 2xx and 3xx are healthy.
        #[arg(long, default_value = "/")]
        health_path: String,
        /// Seconds between health checks.
        #[arg(long, default_value_t = 2)]
        interval: u32,
        /// Seconds a health check may take.
        #[arg(long, default_value_t = 2)]
        timeout: u32,
        /// Consecutive passes that make a target healthy.
        #[arg(long, default_value_t = 2)]
        healthy_threshold: u32,
        /// Consecutive failures that make it unhealthy.
        #[arg(long, default_value_t = 2)]
        unhealthy_threshold: u32,
        /// Seconds a target leaving rotation keeps its requests in flight.
        #[arg(long, default_value_t = 5)]
        deregistration_delay: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List target groups with their targets and what their routers report.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a target group.
    Delete {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add an instance's backend to a target group (or change its address or weight).
    #[command(after_help = "Examples:
  landfall target-group register web web-1 10.0.0.5:8080
  landfall target-group register web green-1 10.0.0.9:8080 --standby")]
    Register {
        name: String,
        /// The registered instance the backend runs on.
        instance: String,
        /// HOST:PORT the router connects to.
        address: String,
        /// Relative share of the traffic (0 to 1000).
        #[arg(long, default_value_t = 100)]
        weight: u32,
        /// Register out of rotation: the backend serves only once a deployment's AllowTraffic
        /// puts it in (a blue/green replacement host).
        #[arg(long)]
        standby: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove an instance's backend from a target group.
    Deregister {
        name: String,
        instance: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

impl ClientCommand {
    pub fn client_args(&self) -> &ClientArgs {
        match self {
            ClientCommand::Push(args) => &args.client,
            ClientCommand::Deploy(args) => &args.client,
            ClientCommand::Status(args) => &args.client,
            ClientCommand::Logs(args) => &args.client,
            ClientCommand::Stop(args) => &args.client,
            ClientCommand::Rollback(args) => &args.client,
            ClientCommand::Instances(args) => &args.client,
            ClientCommand::TargetGroup(command) => command.client_args(),
            ClientCommand::Alarm(command) => command.client_args(),
            ClientCommand::Pool(command) => command.client_args(),
            ClientCommand::Events(args) => &args.client,
            ClientCommand::Audit(args) => &args.client,
        }
    }
}

impl TargetGroupCommand {
    pub fn client_args(&self) -> &ClientArgs {
        match self {
            TargetGroupCommand::Create { client, .. }
            | TargetGroupCommand::List { client }
            | TargetGroupCommand::Delete { client, .. }
            | TargetGroupCommand::Register { client, .. }
            | TargetGroupCommand::Deregister { client, .. } => client,
        }
    }
}

#[derive(Debug, ClapArgs)]
pub struct PushArgs {
    /// The application the revision belongs to.
    #[arg(long)]
    pub app: String,
    /// The directory to bundle; its top holds appspec.yml.
    pub dir: PathBuf,
    /// The bucket of the server's bundle store to upload to.
    #[arg(long, default_value = landfall_cli::push::DEFAULT_BUCKET)]
    pub bucket: String,
    /// The object key (default: APP/<content hash>.tgz).
    #[arg(long)]
    pub key: Option<String>,
    /// A description kept with the revision.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct DeployArgs {
    /// The application.
    #[arg(long)]
    pub app: String,
    /// The deployment group to deploy to.
    #[arg(long)]
    pub group: String,
    /// A directory to push and deploy.
    #[arg(conflicts_with = "revision", required_unless_present = "revision")]
    pub dir: Option<PathBuf>,
    /// A revision instead of a directory: s3://BUCKET/KEY or github:OWNER/REPO@COMMIT.
    #[arg(long)]
    pub revision: Option<String>,
    /// The deployment configuration (default: the group's).
    #[arg(long)]
    pub config: Option<String>,
    /// A description kept with the deployment (and the pushed revision).
    #[arg(long)]
    pub description: Option<String>,
    /// Follow the deployment until it ends; exit 0 only if it succeeds.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct StatusArgs {
    /// A deployment id; without one, the latest deployments.
    pub deployment: Option<String>,
    /// Only this application's deployments (with --group).
    #[arg(long, requires = "group")]
    pub app: Option<String>,
    /// Only this deployment group's deployments (with --app).
    #[arg(long, requires = "app")]
    pub group: Option<String>,
    /// How many of the latest deployments to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct LogsArgs {
    /// The deployment id (d-...).
    pub deployment: String,
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only this lifecycle event (e.g. ApplicationStart).
    #[arg(long)]
    pub event: Option<String>,
    /// Keep printing output as it arrives, until the deployment ends.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct StopArgs {
    /// The deployment id (d-...).
    pub deployment: String,
    /// Roll the hosts it reached back to the last successful revision.
    #[arg(long)]
    pub rollback: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct RollbackArgs {
    /// The application.
    #[arg(long)]
    pub app: String,
    /// The deployment group to roll back.
    #[arg(long)]
    pub group: String,
    /// Redeploy this deployment's revision instead.
    #[arg(long)]
    pub to: Option<String>,
    /// Follow the rollback until it ends; exit 0 only if it succeeds.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct InstancesArgs {
    /// Include deregistered instances.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct AgentArgs {
    /// The agent configuration file, in the official agent's codedeployagent.yml format.
    #[arg(long, value_name = "FILE", default_value = "/etc/codedeploy-agent/conf/codedeployagent.yml")]
    pub config: PathBuf,
}

#[derive(Debug, ClapArgs)]
pub struct AgentUpdateArgs {
    /// The deployment group's application (with --group).
    #[arg(long, requires = "group", conflicts_with = "instances")]
    pub application: Option<String>,
    /// The deployment group whose hosts update.
    #[arg(long, requires = "application")]
    pub group: Option<String>,
    /// An instance to update; repeatable.
    #[arg(long = "instance", value_name = "NAME")]
    pub instances: Vec<String>,
    /// How many hosts may be updating at once.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub max_unavailable: u32,
    /// Follow the rollout until every host is done.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, ClapArgs)]
pub struct LocalArgs {
    /// The bundle: a directory, or a zip, tgz or tar file.
    #[arg(long, short = 'l', default_value = ".", value_name = "PATH")]
    pub bundle_location: PathBuf,
    /// What the bundle is: directory, zip, tgz or tar.
    #[arg(long = "type", short = 't', default_value = "directory", value_name = "TYPE")]
    pub bundle_type: String,
    /// What to do with files already at a destination that no earlier deployment put there:
    /// DISALLOW, OVERWRITE or RETAIN (default: the AppSpec's file_exists_behavior, else DISALLOW).
    #[arg(long, short = 'b', value_name = "BEHAVIOR")]
    pub file_exists_behavior: Option<String>,
    /// The directory under the deployment root the deployment goes in: a deployment group id,
    /// to deploy over what a real deployment of that group installed.
    #[arg(long, short = 'g', default_value = landfall_agent::local::DEFAULT_DEPLOYMENT_GROUP, value_name = "ID")]
    pub deployment_group: String,
    /// DEPLOYMENT_GROUP_NAME in the hooks' environment.
    #[arg(long, short = 'd', default_value = landfall_agent::local::DEFAULT_DEPLOYMENT_GROUP_NAME, value_name = "NAME")]
    pub deployment_group_name: String,
    /// APPLICATION_NAME in the hooks' environment (default: the bundle's name, dots made dashes).
    #[arg(long, short = 'a', value_name = "NAME")]
    pub application_name: Option<String>,
    /// The lifecycle events to run, comma-separated, in order; DownloadBundle and Install run
    /// first unless named. Default: every event in CodeDeploy's order.
    #[arg(long, short = 'e', value_delimiter = ',', value_name = "EVENTS")]
    pub events: Vec<String>,
    /// The agent configuration to take :root_dir:, :max_revisions: and the rest from (default:
    /// /etc/codedeploy-agent/conf/codedeployagent.yml if it exists).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub agent_configuration_file: Option<PathBuf>,
    /// The AppSpec file's name in the bundle.
    #[arg(long, value_name = "NAME")]
    pub appspec_filename: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Register an on-premises instance, issue its agent key, and write the agent's two
    /// configuration files (codedeployagent.yml and codedeploy.onpremises.yml) into a directory.
    Register {
        /// The instance name (letters, digits and +=,.@_-; not starting with i-).
        name: String,
        /// A tag for the instance, KEY=VALUE; repeatable.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Where to write the configuration files (created if missing).
        #[arg(long)]
        agent_config_dir: PathBuf,
        /// The agent's deployment root on the host.
        #[arg(long, default_value = "/opt/codedeploy-agent/deployment-root")]
        root_dir: PathBuf,
        /// The log directory written into the configuration, for the official agent (landfall
        /// agent logs to standard error, so to the journal under systemd).
        #[arg(long, default_value = "/var/log/aws/codedeploy-agent")]
        log_dir: PathBuf,
        /// The server URL the agent should use, when the host reaches the server at another
        /// address than this command does (default: this command's endpoint).
        #[arg(long, value_name = "URL")]
        agent_endpoint: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Join tokens: a host registers itself with one through the install script
    /// (curl -fsS SERVER/agent/install.sh | sh -s -- --token TOKEN).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Take a host out of its deployment groups cleanly: each group that deployed to it runs a
    /// termination deployment (BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic,
    /// ApplicationStop), then the instance is deregistered.
    Drain {
        name: String,
        /// Wait until the host has left (deregistered).
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a single-use join token, and print it with the line a host installs with.
    Create {
        /// A tag the host that uses the token gets, KEY=VALUE; repeatable.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// How long the token can be used: seconds, or a number with s, m, h or d (at most 7d).
        #[arg(long, default_value = "1h", value_name = "DURATION")]
        ttl: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The join tokens kept: unused, used (and by which instance) or expired.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, ClapArgs)]
pub struct ServerArgs {
    /// Where the store and the administrator credentials live (with --store, only the
    /// credentials file the first server writes).
    #[arg(long, default_value = "./.landfall")]
    pub data_dir: PathBuf,
    /// A PostgreSQL database to keep everything in instead of DATA_DIR, shared by any number of
    /// servers: postgres://USER:PASSWORD@HOST:PORT/DATABASE. Bundles then go to the external S3
    /// store (--external-s3-endpoint), which this mode needs.
    #[arg(long, env = "LANDFALL_STORE", value_name = "URL", hide_env_values = true)]
    pub store: Option<String>,
    /// How long a server's hold on a deployment (and on alarm polling and trigger delivery)
    /// lasts without renewal: how soon the other servers take over the work of one that died.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub lease_ttl: u64,
    /// Address to listen on. Anything but loopback needs --tls-cert and --tls-key.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// PEM certificate chain for HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The region ARNs name and clients are told to use.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Seconds a host's agent has to pick up a lifecycle event before the host fails.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub agent_pickup_timeout: u64,
    /// Seconds a lifecycle event may run on a host (its scripts' own timeouts are shorter).
    #[arg(long, default_value_t = 3900, value_name = "SECONDS")]
    pub event_timeout: u64,
    /// Seconds AllowTraffic waits for an instance to pass its target groups' health checks.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub traffic_timeout: u64,
    /// An S3-compatible store (AWS S3, MinIO, Ceph, Garage...) for S3 revisions whose bucket is
    /// not in Landfall's own store, e.g. https://s3.eu-west-1.amazonaws.com. Its credentials come
    /// from LANDFALL_EXTERNAL_S3_ACCESS_KEY_ID and LANDFALL_EXTERNAL_S3_SECRET_ACCESS_KEY; agents
    /// get presigned URLs, never the credentials.
    #[arg(long, env = "LANDFALL_EXTERNAL_S3_ENDPOINT", value_name = "URL")]
    pub external_s3_endpoint: Option<String>,
    /// The external store's region (its signatures name it).
    #[arg(long, env = "LANDFALL_EXTERNAL_S3_REGION", default_value = "us-east-1")]
    pub external_s3_region: String,
    /// How the external store's objects are addressed: path (ENDPOINT/BUCKET/KEY) or
    /// virtual-host (BUCKET.ENDPOINT/KEY).
    #[arg(long, env = "LANDFALL_EXTERNAL_S3_ADDRESSING", default_value = "path", value_parser = ["path", "virtual-host"])]
    pub external_s3_addressing: String,
    /// Where GitHub revisions (repository OWNER/REPO, commitId) are fetched from: any git server
    /// over HTTP(S), as BASE/OWNER/REPO.git. A token for it comes from LANDFALL_GIT_TOKEN or
    /// --git-token-file.
    #[arg(long, env = "LANDFALL_GIT_BASE_URL", default_value = "https://github.com", value_name = "URL")]
    pub git_base_url: String,
    /// A file holding the git server's access token (sent by agents as an HTTP header).
    #[arg(long, value_name = "FILE")]
    pub git_token_file: Option<PathBuf>,
    /// The Prometheus (or compatible) HTTP API that deployment groups' alarms are evaluated
    /// against, e.g. http://127.0.0.1:9090.
    #[arg(long, env = "LANDFALL_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// How often the alarms of running deployments are evaluated.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub alarm_poll_interval: u64,
    /// Where triggers naming an SNS topic deliver: ARN=URL (repeatable).
    #[arg(long = "sns-topic", value_name = "ARN=URL")]
    pub sns_topics: Vec<String>,
    /// A file holding the key trigger messages are signed with (HMAC-SHA256); by default
    /// DATA_DIR/trigger-secret, made on first start.
    #[arg(long, value_name = "FILE")]
    pub trigger_secret_file: Option<PathBuf>,
    /// How long an undelivered trigger message is retried before it is given up on.
    #[arg(long, default_value_t = 86_400, value_name = "SECONDS")]
    pub trigger_expiry: u64,
    /// Refuse trigger targets that are URLs: only the SNS topic ARNs --sns-topic maps are
    /// delivered to (so only the server's operator decides where the server sends requests).
    #[arg(long)]
    pub no_trigger_urls: bool,
    /// Let trigger URLs that deployment groups name reach this host (loopback) and private
    /// networks. (Link-local addresses, where cloud metadata services answer, stay refused; the
    /// URLs --sns-topic maps are not checked.)
    #[arg(long)]
    pub trigger_allow_private_addresses: bool,
    /// Check the store (it can be read; its schema version against this Landfall's) and exit:
    /// 0 if a server could start on it, 1 if not.
    #[arg(long)]
    pub check_store: bool,
    /// The instance tag whose value is a host's zone, for zonal deployment configurations.
    #[arg(long, default_value = landfall_server::DEFAULT_ZONE_TAG, value_name = "KEY")]
    pub zone_tag: String,
    /// The region of the AWS APIs Lambda and ECS deployments drive (default: --region). Their
    /// credentials come from LANDFALL_AWS_ACCESS_KEY_ID, LANDFALL_AWS_SECRET_ACCESS_KEY and
    /// optionally LANDFALL_AWS_SESSION_TOKEN.
    #[arg(long, env = "LANDFALL_AWS_REGION", value_name = "REGION")]
    pub aws_region: Option<String>,
    /// One endpoint for Lambda, ECS and ELBv2 instead of AWS's regional ones (LocalStack, moto...).
    #[arg(long, env = "LANDFALL_AWS_ENDPOINT_URL", value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
    /// The Lambda API's endpoint, if not --aws-endpoint-url's.
    #[arg(long, env = "LANDFALL_LAMBDA_ENDPOINT_URL", value_name = "URL")]
    pub lambda_endpoint_url: Option<String>,
    /// The ECS API's endpoint, if not --aws-endpoint-url's.
    #[arg(long, env = "LANDFALL_ECS_ENDPOINT_URL", value_name = "URL")]
    pub ecs_endpoint_url: Option<String>,
    /// The Elastic Load Balancing v2 API's endpoint, if not --aws-endpoint-url's.
    #[arg(long, env = "LANDFALL_ELBV2_ENDPOINT_URL", value_name = "URL")]
    pub elbv2_endpoint_url: Option<String>,
    /// The STS API's endpoint (for --aws-assume-service-role), if not --aws-endpoint-url's.
    #[arg(long, env = "LANDFALL_STS_ENDPOINT_URL", value_name = "URL")]
    pub sts_endpoint_url: Option<String>,
    /// Make each deployment's Lambda, ECS and ELBv2 calls as its deployment group's
    /// serviceRoleArn (STS AssumeRole with the server's platform credentials), as CodeDeploy acts
    /// as the service role; without it, the server's own credentials make them.
    #[arg(long, env = "LANDFALL_AWS_ASSUME_SERVICE_ROLE")]
    pub aws_assume_service_role: bool,
    /// Call each platform API once with the configured credentials (Lambda, ECS, ELBv2) and exit:
    /// 0 if all answer, 1 if not.
    #[arg(long)]
    pub check_platforms: bool,
    /// The most instances one deployment may target (CodeDeploy's quota is 1,000).
    #[arg(long, default_value_t = landfall_server::api::deployments::DEFAULT_MAX_INSTANCES_PER_DEPLOYMENT, value_name = "COUNT")]
    pub max_deployment_instances: usize,
    /// Seconds a leaving host's termination deployment (landfall instance drain) may run before
    /// the host is deregistered anyway.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub termination_timeout: u64,
    /// How much of each lifecycle event's hook output the server keeps: the first quarter and
    /// the last three quarters, with a line saying how much was left out between (at least
    /// 64KiB).
    #[arg(long, default_value = "4MiB", value_name = "SIZE")]
    pub hook_log_limit: String,
    /// How long a client may take to send a request's head (and a new connection its first
    /// request, and a TLS handshake).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_timeout: u64,
    /// How long a connection may stay open with no request in flight, a request body may pause,
    /// and a response may wait for the client to read it. (A request in flight, such as an
    /// agent's long poll, is never cut.)
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub idle_timeout: u64,
    /// A proxy or load balancer in front of the server (an address or a network, repeatable):
    /// from it, the client's address is read from X-Forwarded-For (for sign-in throttling and
    /// the audit log). From anyone else that header is ignored.
    #[arg(long = "trusted-proxy", value_name = "ADDRESS[/PREFIX]")]
    pub trusted_proxies: Vec<String>,
    /// The agent binary hosts download with the install script (GET /agent/install.sh).
    /// Default: landfall-agent beside this executable, if it is there.
    #[arg(long, value_name = "PATH")]
    pub agent_binary: Option<PathBuf>,
    /// The most connections open at once; past it, the one idle longest is closed to make room.
    /// Default: half of the open-file limit (raised to its hard limit at start) after a reserve.
    #[arg(long, value_name = "COUNT")]
    pub max_connections: Option<usize>,
}

#[derive(Debug, ClapArgs)]
pub struct DevArgs {
    #[arg(long, default_value = "./.landfall-dev")]
    pub data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// How many local hosts (each with its own agent) to deploy the example to.
    #[arg(long, default_value_t = 3)]
    pub hosts: usize,
    /// Print the server's log here too (it always goes to DATA_DIR/landfall.log).
    #[arg(long)]
    pub verbose: bool,
}

/// How client subcommands find the server, beyond the environment.
#[derive(Debug, Clone, ClapArgs)]
pub struct ClientArgs {
    /// The server's URL (default: AWS_ENDPOINT_URL).
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// The credentials profile (default: AWS_PROFILE, then "default").
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// How to print: text for people, json (one document) for scripts.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

impl ClientArgs {
    pub fn json(&self) -> bool {
        self.output == "json"
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an access key and print it with its secret (shown only this once).
    Create {
        /// admin, deployer (everything but keys and instances), read-only, or instance (an
        /// agent's key; needs --instance).
        #[arg(long)]
        role: String,
        /// For --role instance: the registered instance the key is for.
        #[arg(long)]
        instance: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Print the key as a shared-credentials profile of this name instead.
        #[arg(long)]
        as_profile: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List access keys (never their secrets).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke an access key at once.
    Revoke {
        access_key_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}
