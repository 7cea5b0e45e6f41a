//! What each subcommand does, on validated settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use landfall_api::landfall::{
    CreateAccessKeyInput, CreateAccessKeyOutput, CreateJoinTokenInput, CreateJoinTokenOutput, DrainInstanceInput,
    DrainInstanceOutput, ListAccessKeysInput, ListAccessKeysOutput, ListJoinTokensInput, ListJoinTokensOutput,
    RegisterInstanceInput, RegisterInstanceOutput, RevokeAccessKeyInput, TARGET_PREFIX,
};
use landfall_api::shapes::Tag;
use landfall_client::{Client, ClientError, ClientSettings, Exception, Overrides};
use landfall_listener::ConnectionLimits;
use landfall_server::aws::AwsSettings;
use landfall_server::limits::{Limits, parse_size};
use landfall_server::proxies::{Network, TrustedProxies};
use landfall_server::sources::{Addressing, ExternalS3, GitSource, RevisionSources, Secret};
use landfall_server::triggers::AddressPolicy;
use landfall_server::{MonitoringConfig, Server, ServerConfig, StoreLocation, Timeouts, TlsFiles};
use landfall_sigv4::Credentials;

use crate::cli::{Args, ClientArgs, Command, DevArgs, InstanceCommand, KeysCommand, ServerArgs, TokenCommand};

/// A failed command: the error and the exit code it maps to.
pub(crate) struct Failure {
    pub error: anyhow::Error,
    pub code: u8,
    /// Already told on standard output (a deployment that failed): nothing more to print.
    pub shown: bool,
}

impl Failure {
    pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure { error: error.into(), code: 2, shown: false }
    }

    pub(crate) fn failed(error: impl Into<anyhow::Error>) -> Failure {
        Failure { error: error.into(), code: 1, shown: false }
    }

    /// Exit with `code` and nothing more to say (the output already told).
    pub(crate) fn shown(code: u8) -> Failure {
        Failure { error: anyhow!("unsuccessful"), code, shown: true }
    }

    /// Exit 0 at once, silently: whoever read the output has stopped reading.
    pub(crate) fn quiet() -> Failure {
        Failure { error: anyhow!("broken pipe"), code: 0, shown: true }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Failure::failed(error)
    }
}

pub async fn run(args: Args) -> Result<(), Failure> {
    match args.command {
        Command::Server(server) => {
            init_logging("info");
            let check = server.check_store;
            let check_platforms = server.check_platforms;
            let config = server_config(*server)?;
            if check_platforms {
                let client = landfall_server::aws::AwsClient::new(config.platforms.clone()).map_err(Failure::failed)?;
                let (lines, all) = landfall_server::aws::check(&client).await;
                for line in &lines {
                    println!("{line}");
                }
                return if all { Ok(()) } else { Err(Failure::failed(anyhow!("a platform API did not answer"))) };
            }
            if check {
                let report = landfall_server::check_store(&config).await.map_err(Failure::failed)?;
                println!("{report}");
                return Ok(());
            }
            serve(config).await
        }
        Command::Dev(dev) => {
            init_dev_logging(&dev).map_err(Failure::failed)?;
            dev_server(dev).await
        }
        Command::Keys(command) => {
            init_logging("warn");
            keys(command).await
        }
        Command::Instance(command) => {
            init_logging("warn");
            instance(command).await
        }
        Command::Agent(args) => agent(args).await,
        Command::Local(args) => local(args).await,
        Command::AgentUpdate(args) => agent_update(args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Args::command(), "landfall", &mut std::io::stdout());
            Ok(())
        }
        Command::Router(args) => {
            init_logging("info");
            router(args).await
        }
        Command::Client(command) => {
            init_logging("warn");
            crate::client_commands::run(command).await
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LANDFALL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person watching: not in files, pipes or the journal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

/// `landfall dev` shows its own progress: the log (info) goes to `DATA_DIR/landfall.log`, and
/// only warnings to the terminal unless `--verbose` (or `LANDFALL_LOG`) asks for more.
fn init_dev_logging(args: &DevArgs) -> anyhow::Result<()> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    std::fs::create_dir_all(&args.data_dir)?;
    let path = args.data_dir.join("landfall.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let terminal = match std::env::var("LANDFALL_LOG") {
        Ok(directives) => tracing_subscriber::EnvFilter::new(directives),
        Err(_) => tracing_subscriber::EnvFilter::new(if args.verbose { "info" } else { "warn" }),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).with_filter(terminal))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .with_filter(tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    Ok(())
}

fn server_config(args: ServerArgs) -> Result<ServerConfig, Failure> {
    let sources = revision_sources(&args)?;
    let monitoring = monitoring_config(&args)?;
    let platforms = platform_settings(&args)?;
    let limits = server_limits(&args)?;
    let trusted_proxies = TrustedProxies(
        args.trusted_proxies
            .iter()
            .map(|text| Network::parse(text).map_err(|why| Failure::usage(anyhow!("--trusted-proxy: {why}"))))
            .collect::<Result<_, _>>()?,
    );
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(certificate_chain), Some(private_key)) => Some(TlsFiles { certificate_chain, private_key }),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        return Err(Failure::usage(anyhow!(
            "listening on {} would send credentials in the clear: give --tls-cert and --tls-key, or listen on 127.0.0.1",
            args.listen
        )));
    }
    if args.region.is_empty() || !args.region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Failure::usage(anyhow!("--region '{}' is not a region name", args.region)));
    }
    if args.agent_pickup_timeout == 0 || args.event_timeout == 0 || args.traffic_timeout == 0 {
        return Err(Failure::usage(anyhow!(
            "--agent-pickup-timeout, --event-timeout and --traffic-timeout must be at least 1 second"
        )));
    }
    let store = match &args.store {
        None => StoreLocation::DataDir,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            if sources.external_s3.is_none() {
                return Err(Failure::usage(anyhow!(
                    "--store on PostgreSQL keeps bundles in an external S3-compatible store: give --external-s3-endpoint (and its credentials)"
                )));
            }
            StoreLocation::Postgres(url.clone())
        }
        // Not echoed: the URL may hold a password.
        Some(_) => return Err(Failure::usage(anyhow!("--store must be a postgres:// URL"))),
    };
    if args.lease_ttl < 2 {
        return Err(Failure::usage(anyhow!("--lease-ttl must be at least 2 seconds")));
    }
    let timeouts = Timeouts {
        pickup_ms: (args.agent_pickup_timeout as i64).saturating_mul(1000),
        event_ms: (args.event_timeout as i64).saturating_mul(1000),
        traffic_ms: (args.traffic_timeout as i64).saturating_mul(1000),
        ..Timeouts::default()
    };
    Ok(ServerConfig {
        data_dir: args.data_dir,
        store,
        lease_ttl: Duration::from_secs(args.lease_ttl),
        listen: args.listen,
        tls,
        region: args.region,
        timeouts,
        sources,
        monitoring,
        platforms,
        zone_tag: args.zone_tag,
        max_deployment_instances: args.max_deployment_instances,
        termination_timeout: std::time::Duration::from_secs(args.termination_timeout),
        limits,
        trusted_proxies,
        agent_binary: args.agent_binary.or_else(agent_binary_beside_this_one),
    })
}

/// `landfall-agent` in the directory of the running `landfall`, where a release puts both.
fn agent_binary_beside_this_one() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.parent()?.join("landfall-agent");
    beside.is_file().then_some(beside)
}

/// The bounds on what clients and hosts can make the server hold.
fn server_limits(args: &ServerArgs) -> Result<Limits, Failure> {
    let hook_log_bytes =
        parse_size(&args.hook_log_limit).map_err(|why| Failure::usage(anyhow!("--hook-log-limit: {why}")))?;
    if hook_log_bytes < Limits::MIN_HOOK_LOG_BYTES {
        return Err(Failure::usage(anyhow!("--hook-log-limit must be at least 64KiB")));
    }
    if args.header_timeout == 0 || args.idle_timeout == 0 {
        return Err(Failure::usage(anyhow!("--header-timeout and --idle-timeout must be at least 1 second")));
    }
    if args.max_connections == Some(0) {
        return Err(Failure::usage(anyhow!("--max-connections must be at least 1")));
    }
    let mut limits = Limits::for_this_process();
    limits.hook_log_bytes = hook_log_bytes;
    let connections = &mut limits.connections;
    connections.header = Duration::from_secs(args.header_timeout);
    connections.handshake = connections.header;
    connections.idle = Duration::from_secs(args.idle_timeout);
    if let Some(max) = args.max_connections {
        connections.max_connections = max;
    }
    Ok(limits)
}

/// The AWS APIs Lambda and ECS deployments drive, from the flags and the environment.
fn platform_settings(args: &ServerArgs) -> Result<AwsSettings, Failure> {
    let endpoint = |flag: &str, value: &Option<String>| -> Result<Option<http::Uri>, Failure> {
        let Some(url) = value else { return Ok(None) };
        match url.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => Ok(Some(uri)),
            _ => Err(Failure::usage(anyhow!("{flag} '{url}' is not an http(s) URL"))),
        }
    };
    let secret = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    let credentials = match (secret("LANDFALL_AWS_ACCESS_KEY_ID"), secret("LANDFALL_AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(key)) => {
            let mut credentials = Credentials::new(id, key);
            credentials.session_token = secret("LANDFALL_AWS_SESSION_TOKEN");
            Some(credentials)
        }
        (None, None) => None,
        _ => {
            return Err(Failure::usage(anyhow!(
                "LANDFALL_AWS_ACCESS_KEY_ID and LANDFALL_AWS_SECRET_ACCESS_KEY go together"
            )));
        }
    };
    let region = args.aws_region.clone().unwrap_or_else(|| args.region.clone());
    let mut settings =
        AwsSettings::new(&region, credentials, endpoint("--aws-endpoint-url", &args.aws_endpoint_url)?.as_ref());
    if let Some(uri) = endpoint("--lambda-endpoint-url", &args.lambda_endpoint_url)? {
        settings.lambda = uri;
    }
    if let Some(uri) = endpoint("--ecs-endpoint-url", &args.ecs_endpoint_url)? {
        settings.ecs = uri;
    }
    if let Some(uri) = endpoint("--elbv2-endpoint-url", &args.elbv2_endpoint_url)? {
        settings.elbv2 = uri;
    }
    if let Some(uri) = endpoint("--sts-endpoint-url", &args.sts_endpoint_url)? {
        settings.sts = uri;
    }
    settings.assume_service_roles = args.aws_assume_service_role;
    Ok(settings)
}

/// Alarms and triggers, from the flags.
fn monitoring_config(args: &ServerArgs) -> Result<MonitoringConfig, Failure> {
    if let Some(url) = &args.prometheus_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(Failure::usage(anyhow!("--prometheus-url '{url}' is not an http(s) URL")));
    }
    if args.alarm_poll_interval == 0 || args.trigger_expiry == 0 {
        return Err(Failure::usage(anyhow!("--alarm-poll-interval and --trigger-expiry must be at least 1 second")));
    }
    let mut sns_topics = std::collections::HashMap::new();
    for mapping in &args.sns_topics {
        let Some((arn, url)) = mapping.split_once('=').filter(|(arn, url)| {
            arn.starts_with("arn:") && (url.starts_with("http://") || url.starts_with("https://"))
        }) else {
            return Err(Failure::usage(anyhow!(
                "--sns-topic '{mapping}' is not ARN=URL (an arn:... and an http(s) URL)"
            )));
        };
        sns_topics.insert(arn.to_owned(), url.to_owned());
    }
    Ok(MonitoringConfig {
        prometheus_url: args.prometheus_url.clone(),
        alarm_poll_interval: Duration::from_secs(args.alarm_poll_interval),
        sns_topics,
        trigger_secret_file: args.trigger_secret_file.clone(),
        trigger_expiry: Duration::from_secs(args.trigger_expiry),
        trigger_urls_allowed: !args.no_trigger_urls,
        trigger_addresses: if args.trigger_allow_private_addresses {
            AddressPolicy::PrivateToo
        } else {
            AddressPolicy::Public
        },
    })
}

/// The external S3-compatible store and the git server, from the flags and, for their secrets,
/// the environment (never the command line, which other local users can read).
fn revision_sources(args: &ServerArgs) -> Result<RevisionSources, Failure> {
    let secret = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    let external_s3 = match &args.external_s3_endpoint {
        None => None,
        Some(endpoint) => {
            let parsed: http::Uri = endpoint
                .parse()
                .ok()
                .filter(|uri: &http::Uri| {
                    matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.host().is_some()
                        && matches!(uri.path(), "" | "/")
                        && uri.query().is_none()
                })
                .ok_or_else(|| {
                    Failure::usage(anyhow!(
                        "--external-s3-endpoint '{endpoint}' is not an endpoint URL like https://s3.example.com:9000"
                    ))
                })?;
            let (Some(access_key_id), Some(secret_access_key)) =
                (secret("LANDFALL_EXTERNAL_S3_ACCESS_KEY_ID"), secret("LANDFALL_EXTERNAL_S3_SECRET_ACCESS_KEY"))
            else {
                return Err(Failure::usage(anyhow!(
                    "--external-s3-endpoint needs LANDFALL_EXTERNAL_S3_ACCESS_KEY_ID and LANDFALL_EXTERNAL_S3_SECRET_ACCESS_KEY in the environment"
                )));
            };
            let addressing =
                if args.external_s3_addressing == "virtual-host" { Addressing::VirtualHost } else { Addressing::Path };
            Some(ExternalS3 {
                endpoint: parsed,
                region: args.external_s3_region.clone(),
                addressing,
                credentials: Credentials::new(access_key_id, secret_access_key),
            })
        }
    };
    let base_url = args.git_base_url.trim_end_matches('/').to_owned();
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        return Err(Failure::usage(anyhow!("--git-base-url '{base_url}' is not an http or https URL")));
    }
    let token = match &args.git_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|error| Failure::usage(anyhow!("cannot read --git-token-file {}: {error}", path.display())))?
                .trim()
                .to_owned(),
        ),
        None => secret("LANDFALL_GIT_TOKEN"),
    }
    .filter(|token| !token.is_empty());
    Ok(RevisionSources { external_s3, git: GitSource { base_url, token: token.map(Secret) } })
}

/// Runs a server until SIGINT or SIGTERM.
async fn serve(config: ServerConfig) -> Result<(), Failure> {
    let shutdown = shutdown_signal().map_err(Failure::failed)?;
    let server = Server::start(&config).await.map_err(Failure::failed)?;
    print!("{}", server.environment_lines());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    server.run(shutdown).await.map_err(Failure::failed)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal sent as soon as the server has printed its address is
/// still a graceful stop.
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutting down");
    })
}

/// Runs the router of one target group (the built-in proxy, or an HAProxy driver) until
/// SIGINT or SIGTERM.
async fn router(args: crate::cli::RouterArgs) -> Result<(), Failure> {
    let client = client(&args.client)?;
    let shutdown = shutdown_signal().map_err(Failure::failed)?;
    let dataplane: std::sync::Arc<dyn landfall_router::Dataplane> = match (args.listen, args.haproxy_socket) {
        (Some(listen), _) => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|error| Failure::failed(anyhow!("binding {listen}: {error}")))?;
            let builtin = landfall_router::builtin::Builtin::new();
            tokio::spawn(std::sync::Arc::clone(&builtin).serve(listener, ConnectionLimits::for_this_process()));
            tracing::info!(target_group = %args.target_group, %listen, "routing");
            builtin
        }
        (None, Some(socket)) => {
            let backend = args.haproxy_backend.unwrap_or_default();
            tracing::info!(target_group = %args.target_group, %socket, %backend, "driving HAProxy");
            std::sync::Arc::new(landfall_router::haproxy::Haproxy::new(&socket, &backend))
        }
        (None, None) => return Err(Failure::usage(anyhow!("give --listen or --haproxy-socket"))),
    };
    landfall_router::run(&args.target_group, client, dataplane, shutdown).await.map_err(Failure::failed)
}

/// Runs the host agent until SIGINT or SIGTERM: the first signal lets a running lifecycle event
/// finish, a second abandons it. A bad configuration is a usage error (exit 2).
async fn agent(args: crate::cli::AgentArgs) -> Result<(), Failure> {
    let settings = landfall_agent::Settings::load(&args.config).map_err(Failure::usage)?;
    init_logging(if settings.verbose { "info,landfall_agent=debug" } else { "info" });
    let stop = landfall_agent::Stop::on_signals().map_err(Failure::failed)?;
    landfall_agent::run(settings, stop, None).await.map_err(Failure::failed)
}

/// `landfall agent-update`: starts a rollout and, with --wait, follows it.
async fn agent_update(args: crate::cli::AgentUpdateArgs) -> Result<(), Failure> {
    use landfall_api::landfall::{
        ListAgentUpdatesInput, ListAgentUpdatesOutput, StartAgentUpdateInput, StartAgentUpdateOutput,
    };
    if args.group.is_none() && args.instances.is_empty() {
        return Err(Failure::usage(anyhow!("name --application and --group, or --instance NAME")));
    }
    let client = client(&args.client)?;
    let input = StartAgentUpdateInput {
        application_name: args.application.clone(),
        deployment_group_name: args.group.clone(),
        instance_names: (!args.instances.is_empty()).then(|| args.instances.clone()),
        max_unavailable: Some(args.max_unavailable),
    };
    let started: StartAgentUpdateOutput =
        client.call(&format!("{TARGET_PREFIX}.StartAgentUpdate"), &input).await.map_err(input_error)?;
    if !args.client.json() {
        println!(
            "rollout {}: {} host(s) to update to landfall-agent {}, {} at a time",
            started.rollout_id,
            started.instance_names.len(),
            started.version,
            args.max_unavailable
        );
        for skipped in &started.skipped {
            println!("  {} left out: {}", skipped.instance_name, skipped.reason);
        }
    }
    if !args.wait {
        return if args.client.json() { print_json(&started) } else { Ok(()) };
    }
    let mut said = std::collections::HashMap::new();
    loop {
        let input = ListAgentUpdatesInput { rollout_id: Some(started.rollout_id.clone()) };
        let listed: ListAgentUpdatesOutput =
            client.call(&format!("{TARGET_PREFIX}.ListAgentUpdates"), &input).await.map_err(Failure::failed)?;
        for update in &listed.updates {
            if !args.client.json()
                && said.insert(update.instance_name.clone(), update.status.clone()).as_ref() != Some(&update.status)
            {
                let why = update.message.as_deref().map(|why| format!(": {why}")).unwrap_or_default();
                println!("  {} {}{why}", update.instance_name, update.status);
            }
        }
        if listed.updates.iter().all(|update| matches!(update.status.as_str(), "Succeeded" | "Failed")) {
            if args.client.json() {
                print_json(&listed)?;
            }
            let failed = listed.updates.iter().filter(|update| update.status == "Failed").count();
            return match failed {
                0 => Ok(()),
                failed => Err(Failure::failed(anyhow!("{failed} host(s) did not update"))),
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `landfall local`: prints each event and its output as it runs; exit 1 when an event failed.
async fn local(args: crate::cli::LocalArgs) -> Result<(), Failure> {
    use landfall_agent::local::{self, LocalDeployment, LocalFailure};
    let settings = landfall_agent::config::LocalSettings::load(args.agent_configuration_file.as_deref())
        .map_err(Failure::usage)?;
    init_logging("warn");
    let deployment = LocalDeployment {
        bundle_location: args.bundle_location,
        bundle_type: args.bundle_type,
        file_exists_behavior: args.file_exists_behavior,
        deployment_group_id: args.deployment_group,
        deployment_group_name: args.deployment_group_name,
        application_name: args.application_name,
        events: args.events,
        appspec_filename: args.appspec_filename,
    };
    let stop = landfall_agent::Stop::on_signals().map_err(Failure::failed)?;
    let mut print = |line: &str| println!("{line}");
    match local::deploy(&settings, &deployment, stop, &mut print).await {
        Ok(()) => {
            println!("Successfully deployed your bundle locally");
            Ok(())
        }
        Err(LocalFailure::Usage(message)) => Err(Failure::usage(anyhow!(message))),
        Err(LocalFailure::Event(event, failure)) => {
            Err(Failure::failed(anyhow!("{event} failed (error code {}): {}", failure.code as i64, failure.message)))
        }
    }
}

async fn dev_server(args: DevArgs) -> Result<(), Failure> {
    if args.hosts == 0 || args.hosts > 20 {
        return Err(Failure::usage(anyhow!("--hosts must be from 1 to 20")));
    }
    let config = ServerConfig {
        data_dir: args.data_dir,
        store: StoreLocation::DataDir,
        lease_ttl: landfall_server::replicas::DEFAULT_LEASE_TTL,
        listen: args.listen,
        tls: None,
        region: "us-east-1".into(),
        timeouts: Timeouts::default(),
        sources: RevisionSources::default(),
        monitoring: MonitoringConfig::default(),
        zone_tag: landfall_server::DEFAULT_ZONE_TAG.into(),
        max_deployment_instances: landfall_server::api::deployments::DEFAULT_MAX_INSTANCES_PER_DEPLOYMENT,
        termination_timeout: std::time::Duration::from_secs(600),
        platforms: AwsSettings::new("us-east-1", None, None),
        limits: Limits::for_this_process(),
        trusted_proxies: Default::default(),
        agent_binary: None,
    };
    crate::dev::run(config, args.hosts).await
}

pub(crate) fn client(args: &ClientArgs) -> Result<Client, Failure> {
    let overrides = Overrides { endpoint: args.endpoint_url.clone(), profile: args.profile.clone() };
    let settings = ClientSettings::from_env(&overrides).map_err(Failure::usage)?;
    Ok(Client::new(settings))
}

async fn keys(command: KeysCommand) -> Result<(), Failure> {
    let target = |op: &str| format!("{TARGET_PREFIX}.{op}");
    match command {
        KeysCommand::Create { role, instance, description, as_profile, client: args } => {
            let input =
                CreateAccessKeyInput { role: Some(role), description: Some(description), instance_name: instance };
            let client = client(&args)?;
            let output: CreateAccessKeyOutput =
                client.call(&target("CreateAccessKey"), &input).await.map_err(input_error)?;
            let key = &output.access_key;
            let secret = key.secret_access_key.as_deref().unwrap_or_default();
            match as_profile {
                Some(profile) => println!(
                    "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {secret}\nregion = {}",
                    key.access_key_id,
                    client.settings().region
                ),
                None if args.json() => print_json(&output)?,
                None => println!(
                    "access key id:     {}\nsecret access key: {secret}\nrole:              {}",
                    key.access_key_id, key.role
                ),
            }
        }
        KeysCommand::List { client: args } => {
            let client = client(&args)?;
            let mut token = None;
            let mut keys = Vec::new();
            loop {
                let output: ListAccessKeysOutput =
                    client.call(&target("ListAccessKeys"), &ListAccessKeysInput { next_token: token }).await?;
                keys.extend(output.access_keys);
                token = output.next_token;
                if token.is_none() {
                    break;
                }
            }
            if args.json() {
                print_json(&keys)?;
            } else {
                println!("{:<22} {:<10} {:<8} DESCRIPTION", "ACCESS KEY ID", "ROLE", "STATUS");
                for key in keys {
                    println!("{:<22} {:<10} {:<8} {}", key.access_key_id, key.role, key.status, key.description);
                }
            }
        }
        KeysCommand::Revoke { access_key_id, client: args } => {
            let input = RevokeAccessKeyInput { access_key_id: Some(access_key_id.clone()) };
            client(&args)?
                .call::<_, serde_json::Value>(&target("RevokeAccessKey"), &input)
                .await
                .map_err(input_error)?;
            if args.json() {
                print_json(&serde_json::json!({"accessKeyId": access_key_id, "status": "Revoked"}))?;
            } else {
                println!("revoked {access_key_id}");
            }
        }
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    landfall_cli::Output::detect(true).json(value).map_err(Failure::failed)
}

async fn instance(command: InstanceCommand) -> Result<(), Failure> {
    match command {
        InstanceCommand::Register { name, tags, agent_config_dir, root_dir, log_dir, agent_endpoint, client: args } => {
            let tags = tags_of(&tags)?;
            let client = client(&args)?;
            let input = RegisterInstanceInput { instance_name: Some(name.clone()), tags: Some(tags) };
            let target = format!("{TARGET_PREFIX}.RegisterInstance");
            let output: RegisterInstanceOutput = client.call(&target, &input).await.map_err(input_error)?;
            let files = AgentFiles {
                endpoint: agent_endpoint.unwrap_or_else(|| client.settings().endpoint.clone()),
                registration: &output,
                root_dir: &root_dir,
                log_dir: &log_dir,
            };
            files.write(&agent_config_dir).map_err(Failure::failed)?;
            println!("registered {} ({})", output.instance_name, output.instance_arn);
            println!("agent configuration: {}", agent_config_dir.join("codedeployagent.yml").display());
            println!(
                "start the agent:     landfall agent --config {}",
                agent_config_dir.join("codedeployagent.yml").display()
            );
        }
        InstanceCommand::Token(command) => join_token(command).await?,
        InstanceCommand::Drain { name, wait, client: args } => {
            let client = client(&args)?;
            let input = DrainInstanceInput { instance_name: Some(name.clone()) };
            let target = format!("{TARGET_PREFIX}.DrainInstance");
            let output: DrainInstanceOutput = client.call(&target, &input).await.map_err(input_error)?;
            for id in &output.deployment_ids {
                println!("termination deployment {id} started");
            }
            if !output.waiting_for_deployment_ids.is_empty() {
                println!(
                    "{name} leaves once deployment {} is done with it",
                    output.waiting_for_deployment_ids.join(", ")
                );
            }
            if output.left {
                println!("{name} has left: deregistered (no deployment group had to stop it first)");
            } else if output.deployment_ids.is_empty() && output.waiting_for_deployment_ids.is_empty() {
                println!("{name} is leaving");
            }
            if wait && !output.left {
                landfall_cli::instances::wait_until_deregistered(&client, &name).await.map_err(Failure::failed)?;
                println!("{name} has left: deregistered");
            }
        }
    }
    Ok(())
}

/// `--tag KEY=VALUE` arguments as tags.
fn tags_of(tags: &[String]) -> Result<Vec<Tag>, Failure> {
    tags.iter()
        .map(|tag| match tag.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok(Tag { key: Some(key.into()), value: Some(value.into()) }),
            _ => Err(Failure::usage(anyhow!("--tag '{tag}' is not KEY=VALUE"))),
        })
        .collect()
}

async fn join_token(command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::Create { tags, ttl, description, client: args } => {
            let ttl_seconds = duration_seconds(&ttl).map_err(|why| Failure::usage(anyhow!("--ttl: {why}")))?;
            let input = CreateJoinTokenInput {
                tags: Some(tags_of(&tags)?),
                ttl_seconds: Some(ttl_seconds),
                description: (!description.is_empty()).then_some(description),
            };
            let client = client(&args)?;
            let output: CreateJoinTokenOutput =
                client.call(&format!("{TARGET_PREFIX}.CreateJoinToken"), &input).await.map_err(input_error)?;
            if args.json() {
                return print_json(&output);
            }
            let token = &output.join_token;
            println!("{}", output.token);
            println!(
                "join token {}: one host, until {}{}",
                token.token_id,
                landfall_cli::status::utc(token.expire_time.0 / 1000),
                if token.tags.is_empty() { String::new() } else { format!(", tags {}", tags.join(" ")) }
            );
            println!(
                "on the host: curl -fsS {}/agent/install.sh | sh -s -- --token {}",
                client.settings().endpoint.trim_end_matches('/'),
                output.token
            );
        }
        TokenCommand::List { client: args } => {
            let output: ListJoinTokensOutput = client(&args)?
                .call(&format!("{TARGET_PREFIX}.ListJoinTokens"), &ListJoinTokensInput {})
                .await
                .map_err(input_error)?;
            if args.json() {
                return print_json(&output);
            }
            for token in &output.join_tokens {
                let tags: Vec<String> = token
                    .tags
                    .iter()
                    .map(|tag| format!("{}={}", tag.key.as_deref().unwrap_or(""), tag.value.as_deref().unwrap_or("")))
                    .collect();
                println!(
                    "{}  {:7}  expires {}  {}{}",
                    token.token_id,
                    token.status,
                    landfall_cli::status::utc(token.expire_time.0 / 1000),
                    tags.join(" "),
                    token.instance_name.as_ref().map(|name| format!("  used by {name}")).unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// `90`, `90s`, `15m`, `1h` or `7d` in seconds.
fn duration_seconds(text: &str) -> Result<i64, String> {
    let (digits, scale) = match text.char_indices().last() {
        Some((at, 's')) => (&text[..at], 1),
        Some((at, 'm')) => (&text[..at], 60),
        Some((at, 'h')) => (&text[..at], 3600),
        Some((at, 'd')) => (&text[..at], 86_400),
        _ => (text, 1),
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'{text}' is not a duration such as 90s, 15m, 1h or 7d"))
}

/// The official agent's two configuration files for a registered instance.
pub(crate) struct AgentFiles<'a> {
    pub(crate) endpoint: String,
    pub(crate) registration: &'a RegisterInstanceOutput,
    pub(crate) root_dir: &'a Path,
    pub(crate) log_dir: &'a Path,
}

impl AgentFiles<'_> {
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let on_premises = dir.join("codedeploy.onpremises.yml");
        write_private(&on_premises, &self.registration.on_premises_file())?;
        // Quoted YAML strings: paths and URLs may hold ':' or '#'.
        let quote = |value: &str| format!("'{}'", value.replace('\'', "''"));
        let agent_text = format!(
            "---\n:log_aws_wire: false\n:log_dir: {}\n:pid_dir: {}\n:program_name: codedeploy-agent\n:root_dir: {}\n\
             :verbose: false\n:wait_between_runs: 1\n:max_revisions: 5\n:on_premises_config_file: {}\n\
             :deploy_control_endpoint: {}\n:s3_endpoint_override: {}\n",
            quote(&self.log_dir.display().to_string()),
            quote(&self.root_dir.join("../state/.pid").display().to_string()),
            quote(&self.root_dir.display().to_string()),
            quote(&on_premises.display().to_string()),
            quote(&self.endpoint),
            quote(&self.endpoint),
        );
        write_private(&dir.join("codedeployagent.yml"), &agent_text)
    }
}

/// Writes a file only its owner can read (it may hold a secret).
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// Input the server refused (a bad role, an unknown key) is a usage error (exit 2); other
/// failures are failures of the command (exit 1).
pub(crate) fn input_error(error: ClientError) -> Failure {
    match &error {
        ClientError::Api { exception: Some(exception), .. }
            if exception.name().starts_with("Invalid")
                || exception.name().ends_with("DoesNotExistException")
                || matches!(exception, Exception::InstanceNotRegistered | Exception::DescriptionTooLong) =>
        {
            Failure::usage(error)
        }
        _ => Failure::failed(error),
    }
}
