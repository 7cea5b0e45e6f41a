//! The raw command line, as clap parses it. Validation into settings happens in `commands`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "landfall", version, about = "A self-hosted deployment service that speaks AWS CodeDeploy's API")]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane: the CodeDeploy API and Landfall's extensions.
    Server(ServerArgs),
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
}

#[derive(Debug, ClapArgs)]
pub struct AgentArgs {
    /// The agent configuration file, in the official agent's codedeployagent.yml format.
    #[arg(long, value_name = "FILE", default_value = "/etc/codedeploy-agent/conf/codedeployagent.yml")]
    pub config: PathBuf,
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
        /// The agent's log directory on the host.
        #[arg(long, default_value = "/var/log/aws/codedeploy-agent")]
        log_dir: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, ClapArgs)]
pub struct ServerArgs {
    /// Where the store and the administrator credentials live.
    #[arg(long, default_value = "./.landfall")]
    pub data_dir: PathBuf,
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
