//! Landfall's control plane: `landfall server`. It opens the store in the data directory,
//! creates the administrator key on first start, and serves the API on one listener.

mod agent_binary;
pub mod agent_updates;
mod agents;
pub mod alarms;
pub mod api;
mod audit;
pub mod auth;
pub mod aws;
mod body;
mod clock;
mod console;
pub mod driver;
mod errors;
pub(crate) mod fleet;
mod http;
mod ids;
mod joining;
mod leases;
pub mod limits;
mod log_limit;
mod metrics;
mod notices;
mod platform;
pub mod proxies;
mod query;
pub mod replicas;
mod s3;
mod server_events;
mod settings;
pub mod sources;
pub mod state;
mod traffic;
pub mod triggers;

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use landfall_api::landfall::Role;
use landfall_store::{PostgresStore, SqliteStore, Store};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::state::{AppState, Clock, InstanceCache, KeyCache, Recent, RevocationWatch, SystemClock};

pub use http::MAX_BODY_BYTES;
pub use landfall_engine::run::Timeouts;

/// The profile name in the credentials file the server writes.
pub const PROFILE: &str = "landfall";

/// A validated server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub store: StoreLocation,
    /// How long a replica's leases last unrenewed (see [`replicas`]).
    pub lease_ttl: Duration,
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// The region ARNs name and the credentials file suggests to clients.
    pub region: String,
    /// How long hosts may take to pick up and to finish lifecycle events.
    pub timeouts: landfall_engine::run::Timeouts,
    /// Where S3 revisions outside the built-in store, and git revisions, come from.
    pub sources: sources::RevisionSources,
    /// Alarms and triggers.
    pub monitoring: MonitoringConfig,
    /// The instance tag whose value is a host's zone (zonal deployments).
    pub zone_tag: String,
    /// The most instances one deployment may target.
    pub max_deployment_instances: usize,
    /// How long a leaving host's termination deployment may run before it leaves anyway.
    pub termination_timeout: std::time::Duration,
    /// The AWS APIs Lambda and ECS deployments drive.
    pub platforms: aws::AwsSettings,
    /// What clients and hosts can make the server hold.
    pub limits: limits::Limits,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: proxies::TrustedProxies,
    /// The agent binary hosts download with the install script (`/agent/install.sh`).
    pub agent_binary: Option<PathBuf>,
}

/// Where the server keeps its state.
#[derive(Clone)]
pub enum StoreLocation {
    /// SQLite in the data directory, with the bundle store and secrets beside it: one server.
    DataDir,
    /// A PostgreSQL database (its URL), shared by any number of servers: secrets are kept in
    /// it and bundles in the external S3 store.
    Postgres(String),
}

/// (The URL may hold a password.)
impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::DataDir => f.write_str("DataDir"),
            StoreLocation::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

/// Where alarms are evaluated and where triggers are delivered.
#[derive(Debug, Clone)]
pub struct MonitoringConfig {
    /// The Prometheus (or compatible) HTTP API alarms are evaluated against.
    pub prometheus_url: Option<String>,
    pub alarm_poll_interval: Duration,
    /// Where triggers whose target is an SNS topic ARN deliver: ARN -> URL.
    pub sns_topics: std::collections::HashMap<String, String>,
    /// The HMAC key triggers are signed with; `None`: `DATA_DIR/trigger-secret`, made on first start.
    pub trigger_secret_file: Option<PathBuf>,
    /// How long an undelivered trigger message is retried.
    pub trigger_expiry: Duration,
    /// Whether deployment groups may name trigger URLs themselves.
    pub trigger_urls_allowed: bool,
    /// Which addresses those URLs may reach.
    pub trigger_addresses: triggers::AddressPolicy,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            prometheus_url: None,
            alarm_poll_interval: Duration::from_secs(10),
            sns_topics: Default::default(),
            trigger_secret_file: None,
            trigger_expiry: Duration::from_secs(24 * 3600),
            trigger_urls_allowed: true,
            trigger_addresses: triggers::AddressPolicy::Public,
        }
    }
}

/// The default instance tag naming a host's zone.
pub const DEFAULT_ZONE_TAG: &str = "zone";

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate_chain: PathBuf,
    pub private_key: PathBuf,
}

/// The address clients use: the listening one, or this machine's name when listening on every
/// interface (`0.0.0.0` is no address to connect to).
fn client_address(address: SocketAddr) -> String {
    if !address.ip().is_unspecified() {
        return address.to_string();
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|name| name.trim().to_owned());
    format!("{}:{}", hostname.ok().filter(|name| !name.is_empty()).as_deref().unwrap_or("localhost"), address.port())
}

/// What `landfall server --check-store` found: the store's schema version and the newest this
/// Landfall knows.
pub async fn check_store(config: &ServerConfig) -> anyhow::Result<String> {
    let (place, status) = match &config.store {
        StoreLocation::DataDir => {
            let path = config.data_dir.join("landfall.db");
            (format!("SQLite store {}", path.display()), SqliteStore::schema_status(&path).await)
        }
        StoreLocation::Postgres(url) => ("PostgreSQL store".to_owned(), PostgresStore::schema_status(url).await),
    };
    let status = match status {
        Ok(status) => status,
        Err(landfall_store::StoreError::NotFound) => bail!("no {place} yet (the server makes it on first start)"),
        Err(error) => bail!("the {place} cannot be read: {error}"),
    };
    let (applied, known) = (status.applied, status.known);
    let place = format!("{place}: schema version {applied}");
    match applied.cmp(&known) {
        std::cmp::Ordering::Equal => Ok(format!("{place}, as this Landfall expects: ok")),
        std::cmp::Ordering::Less => Ok(format!("{place}; this Landfall migrates it to {known} when it starts")),
        std::cmp::Ordering::Greater if status.usable() => Ok(format!(
            "{place}, newer than this Landfall knows ({known}) but made to work with it (a rolling upgrade): ok"
        )),
        std::cmp::Ordering::Greater => {
            bail!(
                "{place}, newer than this Landfall knows ({known}) and not usable by it: upgrade Landfall before starting it"
            )
        }
    }
}

/// A server that has opened its store and bound its listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    endpoint: String,
    credentials_file: PathBuf,
}

impl Server {
    /// Opens the data directory and store (creating both, and the administrator key, on first
    /// start) and binds the listener.
    pub async fn start(config: &ServerConfig) -> anyhow::Result<Server> {
        Server::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Server::start`] on a clock of the caller's (tests move time by hand).
    pub async fn start_with_clock(config: &ServerConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Server> {
        create_private_dir(&config.data_dir)?;
        let data_dir = config.data_dir.canonicalize().context("resolving the data directory")?;
        let store: Arc<dyn Store> = match &config.store {
            StoreLocation::DataDir => Arc::new(
                SqliteStore::open(&data_dir.join("landfall.db"))
                    .await
                    .context("opening the store in the data directory")?,
            ),
            StoreLocation::Postgres(url) => {
                Arc::new(PostgresStore::connect(url).await.context("connecting to the PostgreSQL store")?)
            }
        };
        let secrets = Secrets { store: store.as_ref(), data_dir: &data_dir, location: &config.store };
        let account_id = store.init_meta("account_id", &random_account_id()).await?;
        let credentials_file = data_dir.join("credentials");
        bootstrap_admin_key(store.as_ref(), &credentials_file, &config.region).await?;

        let spec_signer = secrets.signer().await?;
        let trigger_secret = match &config.monitoring.trigger_secret_file {
            Some(file) => {
                let secret = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                if secret.trim().len() < 16 {
                    bail!("the trigger secret in {} is shorter than 16 characters", file.display());
                }
                secret.trim().to_owned()
            }
            None => secrets.get("trigger-secret").await?,
        };
        let metrics_token = secrets.get("metrics-token").await?;
        let console_secret = secrets.get("console-secret").await?;
        let tls = config.tls.as_ref().map(load_tls).transpose()?;
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let address = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let revocations = Arc::new(RevocationWatch::default());
        let state = Arc::new(AppState {
            store: store.clone(),
            driver: driver::Driver::new(config.timeouts),
            spec_signer,
            region: config.region.clone(),
            account_id,
            clock: clock.clone(),
            keys: KeyCache::new(Duration::from_secs(5), revocations.clone()),
            instances: InstanceCache::new(Duration::from_secs(5), revocations.clone()),
            revocations,
            specifications: Recent::new(agents::SPECIFICATION_TTL, 1_000),
            objects: s3::ObjectStore::open(&data_dir.join("s3"))
                .context("opening the bundle store in the data directory")?,
            external_bundles: match (&config.store, &config.sources.external_s3) {
                (StoreLocation::Postgres(_), Some(store)) => Some(s3::ExternalBundles {
                    store: store.clone(),
                    client: reqwest::Client::builder()
                        .connect_timeout(Duration::from_secs(10))
                        .build()
                        .context("making the bundle store's HTTP client")?,
                }),
                (StoreLocation::Postgres(_), None) => {
                    bail!("a server on a shared store needs the external S3 store for bundles")
                }
                (StoreLocation::DataDir, _) => None,
            },
            sources: config.sources.clone(),
            agent_sightings: Default::default(),
            fleet_changed: Default::default(),
            fleet_work: Default::default(),
            alarms: alarms::AlarmSettings {
                prometheus_url: config.monitoring.prometheus_url.clone(),
                poll_interval: config.monitoring.alarm_poll_interval,
            },
            triggers: triggers::TriggerSettings {
                secret: trigger_secret.into_bytes(),
                topics: config.monitoring.sns_topics.clone(),
                expiry: config.monitoring.trigger_expiry,
                urls_allowed: config.monitoring.trigger_urls_allowed,
                addresses: config.monitoring.trigger_addresses,
            },
            outbox: Default::default(),
            metrics: Default::default(),
            metrics_token,
            console_secret,
            tls: tls.is_some(),
            sign_ins: Default::default(),
            zone_tag: config.zone_tag.clone(),
            max_deployment_instances: config.max_deployment_instances,
            termination_timeout: config.termination_timeout,
            aws: aws::AwsClient::new(config.platforms.clone()).context("making the platform APIs' HTTP client")?,
            replica: replicas::Replica::new(replica_id(address), config.lease_ttl, store.clone(), clock.clone()),
            limits: config.limits.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            agent_binary: agent_binary::AgentBinary::new(config.agent_binary.clone()),
            agent_updates: Default::default(),
        });
        let endpoint = format!("{scheme}://{}", client_address(address));
        let connections = &state.limits.connections;
        tracing::info!(
            replica = %state.replica.id,
            max_connections = connections.max_connections,
            header_timeout_s = connections.header.as_secs(),
            idle_timeout_s = connections.idle.as_secs(),
            "started"
        );
        Ok(Server { listener, tls, state, endpoint, credentials_file })
    }

    /// The URL clients use, e.g. `http://127.0.0.1:7070`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn credentials_file(&self) -> &Path {
        &self.credentials_file
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The environment lines that point the aws CLI and SDKs at this server.
    pub fn environment_lines(&self) -> String {
        format!(
            "export AWS_ENDPOINT_URL={}\nexport AWS_SHARED_CREDENTIALS_FILE={}\nexport AWS_PROFILE={PROFILE}\n",
            self.endpoint,
            self.credentials_file.display()
        )
    }

    /// Serves until `shutdown` completes, then drains connections and closes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tracing::info!(endpoint = %self.endpoint, "serving");
        // Resumes every deployment that was running when the server last stopped, and keeps
        // checking their timeouts.
        let ticker = tokio::spawn(driver::tick_forever(self.state.clone()));
        let alarms = tokio::spawn(alarms::watch_forever(self.state.clone()));
        let triggers = tokio::spawn(triggers::deliver_forever(self.state.clone()));
        let notices = tokio::spawn(notices::listen_forever(self.state.clone()));
        let leases = tokio::spawn(replicas::renew_forever(self.state.clone()));
        let fleet = tokio::spawn(fleet::watch_forever(self.state.clone()));
        let revocations = tokio::spawn(state::watch_revocations_forever(self.state.clone()));
        let agent_updates = tokio::spawn(agent_updates::watch_forever(self.state.clone()));
        let state = self.state.clone();
        http::serve(self.listener, self.tls, self.state, shutdown).await?;
        for task in [ticker, alarms, triggers, notices, leases, fleet, revocations, agent_updates] {
            task.abort();
        }
        state.replica.release_all().await;
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("creating the data directory {}", dir.display()))
}

fn random_account_id() -> String {
    let digits = b"0123456789";
    let mut id = ids::random_string(digits, 12);
    // Account ids do not start with 0 in practice; keep them looking like real ones.
    id.replace_range(0..1, "1");
    id
}

/// This server's name among the replicas on its store: where it listens, and a random part so a
/// restarted server is a new holder (its predecessor's leases are not its own).
fn replica_id(address: SocketAddr) -> String {
    format!("{}/{}", client_address(address), ids::random_string(b"0123456789abcdefghijklmnopqrstuvwxyz", 8))
}

/// On first start (a store without access keys): an administrator key, written to `credentials`
/// in the AWS shared-credentials format. Later starts leave both alone. Of several servers
/// starting together on one new database, the one whose key id lands in the store first writes
/// the key (and its credentials file).
async fn bootstrap_admin_key(store: &dyn Store, credentials_file: &Path, region: &str) -> anyhow::Result<()> {
    let existing = store.list_access_keys(&landfall_store::PageRequest { after: None, limit: 1 }).await?;
    if !existing.items.is_empty() {
        return Ok(());
    }
    let now = state::Clock::now(&SystemClock);
    let key = api::keys::new_access_key(Role::Admin, "administrator key created on first start", now);
    if store.init_meta("administrator_key", &key.access_key_id).await? != key.access_key_id {
        return Ok(());
    }
    // The file first: if writing it fails, the store still has no key and the next start retries.
    let contents = format!(
        "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = {region}\n",
        key.access_key_id, key.secret_access_key
    );
    write_private_file(credentials_file, contents.as_bytes())
        .with_context(|| format!("writing {}", credentials_file.display()))?;
    store.create_access_key(&key, api::keys::MAX_ACCESS_KEYS).await?;
    tracing::info!(access_key_id = %key.access_key_id, file = %credentials_file.display(), "created the administrator key");
    Ok(())
}

/// Writes a file only its owner can read, atomically (a temporary file renamed into place).
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Where the server's own secrets live: files in the data directory beside an SQLite store; in
/// the store itself when several servers share it (each must sign and verify alike). Made on
/// first start either way.
struct Secrets<'a> {
    store: &'a dyn Store,
    data_dir: &'a Path,
    location: &'a StoreLocation,
}

impl Secrets<'_> {
    async fn get(&self, name: &str) -> anyhow::Result<String> {
        match self.location {
            StoreLocation::DataDir => load_or_create_secret(&self.data_dir.join(name)),
            StoreLocation::Postgres(_) => {
                let fresh = ids::random_string(b"0123456789abcdef", 40);
                Ok(self.store.init_meta(&format!("secret:{name}"), &fresh).await?)
            }
        }
    }

    async fn signer(&self) -> anyhow::Result<landfall_envelope::SigningIdentity> {
        if let StoreLocation::DataDir = self.location {
            return load_or_create_signer(&self.data_dir.join("spec-signing"));
        }
        let fresh = landfall_envelope::SigningIdentity::generate("Landfall deployment specifications")
            .context("creating the specification signing identity")?;
        let pems = [fresh.ca_certificate_pem(), fresh.signer_certificate_pem(), fresh.signer_key_pem()];
        let kept = self.store.init_meta("secret:spec-signing", &serde_json::to_string(&pems)?).await?;
        let [ca, signer, key]: [String; 3] =
            serde_json::from_str(&kept).context("reading the specification signing identity from the store")?;
        landfall_envelope::SigningIdentity::from_pem(&ca, &signer, &key)
            .context("loading the specification signing identity")
    }
}

/// A random secret kept in `file` (made on first start, readable by the server's user only).
fn load_or_create_secret(file: &Path) -> anyhow::Result<String> {
    if let Ok(secret) = std::fs::read_to_string(file) {
        return Ok(secret.trim().to_owned());
    }
    let secret = ids::random_string(b"0123456789abcdef", 40);
    write_private_file(file, format!("{secret}\n").as_bytes())
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(secret)
}

/// The identity that signs deployment specifications: created on first start, kept in `dir`
/// (the CA certificate there is what hosts can be told to trust).
fn load_or_create_signer(dir: &Path) -> anyhow::Result<landfall_envelope::SigningIdentity> {
    let (ca, signer, key) = (dir.join("ca.pem"), dir.join("signer.pem"), dir.join("signer-key.pem"));
    if key.exists() {
        let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
        return landfall_envelope::SigningIdentity::from_pem(&read(&ca)?, &read(&signer)?, &read(&key)?)
            .context("loading the specification signing identity");
    }
    create_private_dir(dir)?;
    let identity = landfall_envelope::SigningIdentity::generate("Landfall deployment specifications")
        .context("creating the specification signing identity")?;
    write_private_file(&ca, identity.ca_certificate_pem().as_bytes())?;
    write_private_file(&signer, identity.signer_certificate_pem().as_bytes())?;
    // The key last: its presence marks the identity complete.
    write_private_file(&key, identity.signer_key_pem().as_bytes())?;
    Ok(identity)
}

fn load_tls(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let chain_pem = std::fs::read(&files.certificate_chain)
        .with_context(|| format!("reading the certificate chain {}", files.certificate_chain.display()))?;
    let chain = rustls_pemfile::certs(&mut chain_pem.as_slice()).collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        bail!("{} holds no PEM certificate", files.certificate_chain.display());
    }
    let key_pem = std::fs::read(&files.private_key)
        .with_context(|| format!("reading the private key {}", files.private_key.display()))?;
    let Some(key) = rustls_pemfile::private_key(&mut key_pem.as_slice())? else {
        bail!("{} holds no PEM private key", files.private_key.display());
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and private key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
