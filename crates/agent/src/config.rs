//! The agent's configuration: the official `codedeployagent.yml` and the on-premises file it
//! names (`codedeploy.onpremises.yml`), both as `landfall instance register` writes them and as
//! existing hosts have them. [`RawFile`] is a file as read; [`Settings`] the validated result.
//! Unknown keys are ignored, as the official agent ignores them; a bad value is an error that
//! names the file, the line and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use landfall_envelope::CaCertificate;
use landfall_sigv4::Credentials;

use crate::yaml::{self, RawValue};

pub const DEFAULT_CONFIG_FILE: &str = "/etc/codedeploy-agent/conf/codedeployagent.yml";
const DEFAULT_ON_PREMISES_FILE: &str = "/etc/codedeploy-agent/conf/codedeploy.onpremises.yml";
const DEFAULT_ROOT_DIR: &str = "/opt/codedeploy-agent/deployment-root";
const DEFAULT_LOG_DIR: &str = "/var/log/aws/codedeploy-agent/";
const DEFAULT_PID_DIR: &str = "/opt/codedeploy-agent/state/.pid/";
const DEFAULT_PROGRAM_NAME: &str = "codedeploy-agent";
/// The official agent's code default (its shipped file says 1).
const DEFAULT_WAIT_BETWEEN_RUNS_SECS: f64 = 30.0;
const DEFAULT_MAX_REVISIONS: u64 = 5;
/// Longer than the server's 45 s long poll.
const DEFAULT_HTTP_READ_TIMEOUT_SECS: f64 = 80.0;
const DEFAULT_KILL_AGENT_MAX_WAIT_SECS: f64 = 7200.0;

/// A configuration problem: which file, where, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A configuration file as read: every key (without Ruby's leading `:`) with its value and line.
/// A key given twice keeps its last value, as a Ruby hash does.
#[derive(Debug, Clone, Default)]
pub struct RawFile {
    pub path: PathBuf,
    pub entries: BTreeMap<String, (RawValue, usize)>,
}

impl RawFile {
    pub fn read(path: &Path) -> Result<RawFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            file: path.to_owned(),
            line: None,
            key: None,
            message: format!("cannot be read: {error}"),
        })?;
        RawFile::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<RawFile, ConfigError> {
        let entries = yaml::read_flat_mapping(text).map_err(|(line, message)| ConfigError {
            file: path.to_owned(),
            line: Some(line),
            key: None,
            message,
        })?;
        Ok(RawFile {
            path: path.to_owned(),
            entries: entries.into_iter().map(|(key, value, line)| (key, (value, line))).collect(),
        })
    }

    fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            line: self.entries.get(key).map(|(_, line)| *line),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    /// The text of a scalar, `None` when absent, null or empty.
    fn text(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.entries.get(key) {
            None | Some((RawValue::Null, _)) => Ok(None),
            Some((RawValue::Text { text, .. }, _)) if text.trim().is_empty() => Ok(None),
            Some((RawValue::Text { text, .. }, _)) => Ok(Some(text.trim())),
            Some((RawValue::Nested, _)) => Err(self.error(key, "must be a single value, not a list or mapping")),
        }
    }

    fn path(&self, key: &str, default: &str) -> Result<PathBuf, ConfigError> {
        Ok(PathBuf::from(self.text(key)?.unwrap_or(default)))
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.text(key)? {
            None => Ok(default),
            Some(text) => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Ok(true),
                "false" | "no" | "off" => Ok(false),
                _ => Err(self.error(key, format!("must be true or false, not {text:?}"))),
            },
        }
    }

    fn seconds(&self, key: &str, default: f64, minimum: f64, exclusive: bool) -> Result<Duration, ConfigError> {
        let Some(text) = self.text(key)? else { return Ok(Duration::from_secs_f64(default)) };
        let value: f64 = text
            .replace('_', "")
            .parse()
            .map_err(|_| self.error(key, format!("must be a number of seconds, not {text:?}")))?;
        let too_small = if exclusive { value <= minimum } else { value < minimum };
        if !value.is_finite() || too_small || value > 31_536_000.0 {
            let bound = if exclusive { "more than" } else { "at least" };
            return Err(self.error(key, format!("must be {bound} {minimum} seconds (and at most a year), not {text}")));
        }
        Ok(Duration::from_secs_f64(value))
    }

    fn whole_number(&self, key: &str, default: u64, minimum: u64) -> Result<u64, ConfigError> {
        let Some(text) = self.text(key)? else { return Ok(default) };
        match text.replace('_', "").parse::<u64>() {
            Ok(value) if value >= minimum => Ok(value),
            _ => Err(self.error(key, format!("must be a whole number of at least {minimum}, not {text}"))),
        }
    }

    /// A size in bytes, with an optional unit: `1073741824`, `512MiB`, `2GiB`.
    fn size(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        let Some(text) = self.text(key)? else { return Ok(None) };
        let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim();
        let scale: u64 = match text[digits.len()..].trim() {
            "" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => 0,
        };
        match digits.replace('_', "").parse::<u64>().ok().and_then(|n| n.checked_mul(scale)).filter(|n| *n > 0) {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(self.error(key, format!("must be a size such as 1073741824, 512MiB or 2GiB, not {text}"))),
        }
    }

    fn url(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(text) = self.text(key)? else { return Ok(None) };
        let parsed: Result<http::Uri, _> = text.parse();
        match parsed {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
                Ok(Some(text.trim_end_matches('/').to_owned()))
            }
            _ => Err(self.error(key, format!("must be an http:// or https:// URL, not {text:?}"))),
        }
    }
}

/// Where the agent finds its signing credentials.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// An IAM user's keys written in the on-premises file.
    Keys(Credentials),
    /// An IAM session: a shared-credentials file (profile `default`), re-read when it changes.
    SharedFile(PathBuf),
}

/// Who the agent is: the host identifier it polls with, and how it signs.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The `iam_user_arn` or `iam_session_arn`: the `HostIdentifier` of every poll.
    pub host_identifier: String,
    pub region: String,
    pub credentials: CredentialSource,
}

impl Identity {
    /// Secret values hook scripts must not see in their environment.
    pub fn secrets(&self) -> Vec<String> {
        match &self.credentials {
            CredentialSource::Keys(keys) => {
                let mut secrets = vec![keys.access_key_id.clone(), keys.secret_access_key.clone()];
                secrets.extend(keys.session_token.clone());
                secrets
            }
            CredentialSource::SharedFile(_) => Vec::new(),
        }
    }
}

/// The validated settings the agent runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_file: PathBuf,
    pub root_dir: PathBuf,
    pub log_dir: PathBuf,
    pub pid_dir: PathBuf,
    pub program_name: String,
    pub verbose: bool,
    /// Deployment directories kept per deployment group (at least 1).
    pub max_revisions: usize,
    /// Pause between polls when the server answers at once with nothing to do.
    pub wait_between_runs: Duration,
    pub http_read_timeout: Duration,
    /// The agent protocol's endpoint (`deploy_control_endpoint`).
    pub command_endpoint: String,
    /// The bundle store's endpoint (`s3_endpoint_override`, else the command endpoint).
    pub s3_endpoint: String,
    pub proxy_uri: Option<String>,
    pub enable_deployments_log: bool,
    /// How long a stopping agent lets the running command finish (`kill_agent_max_wait_time_seconds`).
    pub kill_agent_max_wait: Duration,
    /// `landfall_spec_ca_file`: the CA deployment specifications must be signed under.
    pub spec_ca: Option<CaCertificate>,
    pub identity: Identity,
    /// `landfall_metrics_listen`: where the agent serves `GET /metrics` (none by default).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `landfall_max_bundle_size`: the most a bundle and its unpacked revision may take on disk
    /// (default: the free space of the root directory less a reserve).
    pub max_bundle_size: Option<u64>,
}

impl Settings {
    /// Reads and validates the agent configuration file and the on-premises file it names.
    pub fn load(config_file: &Path) -> Result<Settings, ConfigError> {
        let config = RawFile::read(config_file)?;
        let on_premises_path = config.path("on_premises_config_file", DEFAULT_ON_PREMISES_FILE)?;
        let on_premises = RawFile::read(&on_premises_path)?;
        let spec_ca = match config.text("landfall_spec_ca_file")? {
            None => None,
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|error| config.error("landfall_spec_ca_file", format!("cannot read {path}: {error}")))?;
                let ca = CaCertificate::from_pem(&pem).map_err(|error| {
                    config.error("landfall_spec_ca_file", format!("{path} is not a PEM CA certificate: {error}"))
                })?;
                Some(ca)
            }
        };
        Settings::from_raw(&config, &on_premises, spec_ca)
    }

    /// Validates files already read.
    pub fn from_raw(
        config: &RawFile,
        on_premises: &RawFile,
        spec_ca: Option<CaCertificate>,
    ) -> Result<Settings, ConfigError> {
        let identity = identity(on_premises)?;
        let command_endpoint = match config.url("deploy_control_endpoint")? {
            Some(url) => url,
            None => format!("https://codedeploy-commands.{}.{}", identity.region, aws_domain(&identity.region)),
        };
        let s3_endpoint = config.url("s3_endpoint_override")?.unwrap_or_else(|| command_endpoint.clone());
        let proxy_uri = match config.text("proxy_uri")? {
            None => None,
            Some(text) => {
                let valid = text.parse::<http::Uri>().is_ok_and(|uri| {
                    matches!(uri.scheme_str(), Some("http" | "https" | "socks5" | "socks5h")) && uri.host().is_some()
                });
                if !valid {
                    return Err(config
                        .error("proxy_uri", format!("must be a proxy URL such as http://host:3128, not {text:?}")));
                }
                Some(text.to_owned())
            }
        };
        let program_name = config.text("program_name")?.unwrap_or(DEFAULT_PROGRAM_NAME).to_owned();
        if !crate::layout::is_safe_component(&program_name) {
            return Err(config.error("program_name", "must be a plain file name"));
        }
        let max_revisions = config.whole_number("max_revisions", DEFAULT_MAX_REVISIONS, 1)?;
        let metrics_listen = match config.text("landfall_metrics_listen")? {
            None => None,
            Some(text) => Some(text.parse().map_err(|_| {
                config.error(
                    "landfall_metrics_listen",
                    format!("must be an address such as 127.0.0.1:9179, not {text:?}"),
                )
            })?),
        };
        Ok(Settings {
            config_file: config.path.clone(),
            root_dir: config.path("root_dir", DEFAULT_ROOT_DIR)?,
            log_dir: config.path("log_dir", DEFAULT_LOG_DIR)?,
            pid_dir: config.path("pid_dir", DEFAULT_PID_DIR)?,
            program_name,
            verbose: config.bool("verbose", false)?,
            max_revisions: usize::try_from(max_revisions).unwrap_or(usize::MAX),
            wait_between_runs: config.seconds("wait_between_runs", DEFAULT_WAIT_BETWEEN_RUNS_SECS, 0.0, false)?,
            http_read_timeout: config.seconds("http_read_timeout", DEFAULT_HTTP_READ_TIMEOUT_SECS, 0.0, true)?,
            command_endpoint,
            s3_endpoint,
            proxy_uri,
            enable_deployments_log: config.bool("enable_deployments_log", true)?,
            kill_agent_max_wait: config.seconds(
                "kill_agent_max_wait_time_seconds",
                DEFAULT_KILL_AGENT_MAX_WAIT_SECS,
                0.0,
                false,
            )?,
            spec_ca,
            identity,
            metrics_listen,
            max_bundle_size: config.size("landfall_max_bundle_size")?,
        })
    }
}

/// What a local run (`landfall local`) takes from the agent configuration: where deployments go
/// and what is kept. No identity and no endpoints: nothing is fetched from a server.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub root_dir: PathBuf,
    pub max_revisions: usize,
    pub enable_deployments_log: bool,
    pub max_bundle_size: Option<u64>,
}

impl LocalSettings {
    /// Reads `config_file`, or the official path if it exists, or takes the defaults.
    pub fn load(config_file: Option<&Path>) -> Result<LocalSettings, ConfigError> {
        let config = match config_file {
            Some(path) => RawFile::read(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => RawFile::read(Path::new(DEFAULT_CONFIG_FILE))?,
            None => RawFile::parse(Path::new(DEFAULT_CONFIG_FILE), "")?,
        };
        let max_revisions = config.whole_number("max_revisions", DEFAULT_MAX_REVISIONS, 1)?;
        Ok(LocalSettings {
            root_dir: config.path("root_dir", DEFAULT_ROOT_DIR)?,
            max_revisions: usize::try_from(max_revisions).unwrap_or(usize::MAX),
            enable_deployments_log: config.bool("enable_deployments_log", true)?,
            max_bundle_size: config.size("landfall_max_bundle_size")?,
        })
    }
}

/// The domain of AWS endpoints in a region, as the official agent picks it without IMDS.
fn aws_domain(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region == "eusc-de-east-1" {
        "amazonaws.eu"
    } else {
        "amazonaws.com"
    }
}

fn identity(file: &RawFile) -> Result<Identity, ConfigError> {
    let whole_file =
        |message: &str| ConfigError { file: file.path.clone(), line: None, key: None, message: message.into() };
    let region = file.text("region")?.ok_or_else(|| whole_file("region is missing"))?;
    if !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(file.error("region", format!("is not a region name: {region:?}")));
    }
    let user_arn = file.text("iam_user_arn")?;
    let session_arn = file.text("iam_session_arn")?;
    let (host_identifier, credentials) = match (user_arn, session_arn) {
        (Some(_), Some(_)) => {
            return Err(whole_file(
                "gives both iam_user_arn and iam_session_arn; an instance is registered with one of them, keep that one",
            ));
        }
        (None, None) => {
            return Err(whole_file(
                "gives neither iam_user_arn (with aws_access_key_id and aws_secret_access_key) nor iam_session_arn (with aws_credentials_file)",
            ));
        }
        (Some(arn), None) => {
            let key = |name: &str| {
                file.text(name)?.ok_or_else(|| whole_file(&format!("{name} is missing (iam_user_arn needs it)")))
            };
            let credentials = Credentials::new(key("aws_access_key_id")?, key("aws_secret_access_key")?);
            (arn, CredentialSource::Keys(credentials))
        }
        (None, Some(arn)) => {
            let path = file
                .text("aws_credentials_file")?
                .ok_or_else(|| whole_file("aws_credentials_file is missing (iam_session_arn needs it)"))?;
            (arn, CredentialSource::SharedFile(PathBuf::from(path)))
        }
    };
    if !host_identifier.starts_with("arn:") {
        let key = if user_arn.is_some() { "iam_user_arn" } else { "iam_session_arn" };
        return Err(file.error(key, format!("is not an ARN: {host_identifier:?}")));
    }
    Ok(Identity { host_identifier: host_identifier.to_owned(), region: region.to_owned(), credentials })
}

/// Reads the `default` profile of an AWS shared-credentials file.
pub fn read_shared_credentials(path: &Path) -> Result<Credentials, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut in_default = false;
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_default = section.trim() == "default";
            continue;
        }
        if in_default && let Some((key, value)) = line.split_once('=') {
            values.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    let get = |key: &str| {
        values.get(key).cloned().ok_or_else(|| format!("{} has no {key} in its [default] profile", path.display()))
    };
    let mut credentials = Credentials::new(get("aws_access_key_id")?, get("aws_secret_access_key")?);
    credentials.session_token = values.get("aws_session_token").cloned();
    Ok(credentials)
}
