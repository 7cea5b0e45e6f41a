//! The agent's side of the command protocol (`CodeDeployCommandService_v20141006`, AWS JSON 1.1,
//! SigV4 service `codedeploy-commands`), behind the [`CommandService`] trait so the poll loop can
//! be driven by a fake in tests; and the HTTP plumbing (proxy, CA bundles, signing) it shares
//! with the bundle download.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, Uri};
use landfall_client::signed::{Signing, send_signed};
use landfall_commands::{
    AckDiagnostics, CommandOperation, CompleteDiagnostics, Envelope, FORMAT_JSON, FORMAT_LOG,
    GetDeploymentSpecificationInput, GetDeploymentSpecificationOutput, HostCommand, LogChunk, PollHostCommandInput,
    PollHostCommandOutput, PostHostCommandUpdateInput, PutHostCommandAcknowledgementInput,
    PutHostCommandAcknowledgementOutput, PutHostCommandCompleteInput, SERVICE, TARGET_PREFIX,
};
use landfall_sigv4::Credentials;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{CredentialSource, Identity, Settings, read_shared_credentials};

/// Why a call to the server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The server answered with an error (`__type`, `message`): the request itself is refused.
    #[error("{exception}: {message}")]
    Api { status: u16, exception: String, message: String },
    /// No answer: connection refused, timeout, TLS failure...
    #[error("{0}")]
    Transport(String),
    /// An answer that is not what the protocol says.
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// The credentials could not be read.
    #[error("{0}")]
    Credentials(String),
}

impl ServiceError {
    /// Errors worth retrying: the request may not have reached the server.
    pub fn is_transient(&self) -> bool {
        match self {
            ServiceError::Transport(_) => true,
            ServiceError::Api { status, exception, .. } => *status >= 500 || exception.contains("Throttl"),
            ServiceError::Decode(_) | ServiceError::Credentials(_) => false,
        }
    }
}

/// The five agent operations. Futures need not be `Send`: the agent runs on one thread.
#[allow(async_fn_in_trait)]
pub trait CommandService {
    async fn poll(&self, host_identifier: &str) -> Result<Option<HostCommand>, ServiceError>;
    async fn specification(
        &self,
        execution_id: &str,
        host_identifier: &str,
    ) -> Result<GetDeploymentSpecificationOutput, ServiceError>;
    /// Returns the `CommandStatus` the server answered, if any.
    async fn acknowledge(&self, command_id: &str, is_noop: bool) -> Result<Option<String>, ServiceError>;
    async fn update(&self, command_id: &str, chunk: &LogChunk) -> Result<(), ServiceError>;
    async fn complete(
        &self,
        command_id: &str,
        status: &str,
        diagnostics: &CompleteDiagnostics,
    ) -> Result<(), ServiceError>;
    /// The agent update the server offered with the last poll (sealed), if any.
    fn update_offer(&self) -> Option<String> {
        None
    }
    /// Says, with every poll from now on, that the agent refused to update to `version`.
    fn refuse_update(&self, _version: &str, _why: &str) {}
}

/// Signs requests with the instance's credentials. Session credentials are read from their file
/// and re-read whenever the file changes (the official agent re-reads them every 30 minutes).
#[derive(Debug)]
pub struct Signer {
    identity: Identity,
    cached: Mutex<Option<(Option<SystemTime>, Credentials)>>,
}

impl Signer {
    pub fn new(identity: Identity) -> Signer {
        Signer { identity, cached: Mutex::new(None) }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn credentials(&self) -> Result<Credentials, ServiceError> {
        match &self.identity.credentials {
            CredentialSource::Keys(keys) => Ok(keys.clone()),
            CredentialSource::SharedFile(path) => {
                let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                let mut cached = self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some((when, credentials)) = cached.as_ref()
                    && *when == modified
                    && modified.is_some()
                {
                    return Ok(credentials.clone());
                }
                let credentials = read_shared_credentials(path).map_err(ServiceError::Credentials)?;
                *cached = Some((modified, credentials.clone()));
                Ok(credentials)
            }
        }
    }

    /// Sends a request to `uri` signed for `service` with the host's credentials.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        method: Method,
        uri: &Uri,
        headers: HeaderMap,
        body: Vec<u8>,
        service: &str,
    ) -> Result<reqwest::Response, ServiceError> {
        let credentials = self.credentials()?;
        let signing = Signing { credentials: &credentials, region: &self.identity.region, service };
        send_signed(http, method, uri, headers, body, signing)
            .await
            .map_err(|error| ServiceError::Transport(error.to_string()))
    }
}

/// The HTTP client of both the command service and the bundle download: the configured proxy
/// (or the `http_proxy`/`https_proxy`/`no_proxy` environment when none is configured, and
/// `no_proxy` with one), the read timeout, and the CA bundles named by `AWS_CA_BUNDLE` or
/// `SSL_CERT_FILE` on top of the built-in public roots.
pub fn http_client(settings: &Settings) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(format!("landfall-agent/{}", crate::version()))
        .read_timeout(settings.http_read_timeout)
        .connect_timeout(std::time::Duration::from_secs(20))
        .pool_max_idle_per_host(1);
    if let Some(proxy_uri) = &settings.proxy_uri {
        let proxy = reqwest::Proxy::all(proxy_uri)
            .map_err(|error| format!("proxy_uri {proxy_uri}: {error}"))?
            .no_proxy(reqwest::NoProxy::from_env());
        builder = builder.proxy(proxy);
    }
    for variable in ["AWS_CA_BUNDLE", "SSL_CERT_FILE"] {
        let Some(path) = std::env::var_os(variable).map(PathBuf::from) else { continue };
        let pem = std::fs::read(&path).map_err(|error| format!("{variable}={}: {error}", path.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|error| format!("{variable}={}: not a PEM bundle: {error}", path.display()))?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|error| format!("cannot build the HTTP client: {error}"))
}

pub(crate) use landfall_client::describe;

/// The command service over HTTP.
#[derive(Debug, Clone)]
pub struct HttpCommandService {
    http: reqwest::Client,
    endpoint: Uri,
    signer: Arc<Signer>,
    /// What the agent says it is, in `x-amz-codedeploy-agent-version`.
    agent_version: HeaderValue,
    /// The update offered with the last poll, and the refusal every poll repeats.
    offered: Arc<Mutex<Option<String>>>,
    refused: Arc<Mutex<Option<HeaderValue>>>,
}

/// The header an offered agent update comes in, and the one a refusal goes back in.
const OFFER_HEADER: &str = "x-landfall-agent-update";
const REFUSED_HEADER: &str = "x-landfall-agent-update-refused";

impl HttpCommandService {
    /// `updates_itself`: whether this agent takes the updates a server offers (`landfall-agent`
    /// does; `landfall agent` inside the `landfall` binary says it does not).
    pub fn new(
        http: reqwest::Client,
        endpoint: &str,
        signer: Arc<Signer>,
        updates_itself: bool,
    ) -> Result<HttpCommandService, String> {
        let endpoint: Uri = format!("{}/", endpoint.trim_end_matches('/'))
            .parse()
            .map_err(|error| format!("{endpoint} is not a URL: {error}"))?;
        let version =
            format!("landfall-agent/{}{}", crate::version(), if updates_itself { "" } else { " (in landfall)" });
        let agent_version = HeaderValue::from_str(&version).map_err(|error| format!("agent version: {error}"))?;
        Ok(HttpCommandService {
            http,
            endpoint,
            signer,
            agent_version,
            offered: Arc::default(),
            refused: Arc::default(),
        })
    }

    async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        operation: CommandOperation,
        input: &I,
    ) -> Result<O, ServiceError> {
        let body = serde_json::to_vec(input).map_err(|error| ServiceError::Decode(error.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
        let target = format!("{TARGET_PREFIX}.{}", operation.name());
        headers.insert("x-amz-target", HeaderValue::from_str(&target).expect("operation names are ASCII"));
        headers.insert("x-amz-codedeploy-agent-version", self.agent_version.clone());
        if operation == CommandOperation::PollHostCommand
            && let Some(refused) = lock(&self.refused).clone()
        {
            headers.insert(REFUSED_HEADER, refused);
        }
        let response = self.signer.send(&self.http, Method::POST, &self.endpoint, headers, body, SERVICE).await?;
        let status = response.status();
        if operation == CommandOperation::PollHostCommand {
            let offer = response.headers().get(OFFER_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned);
            *lock(&self.offered) = offer;
        }
        let bytes = response.bytes().await.map_err(|error| ServiceError::Transport(describe(&error)))?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &bytes));
        }
        let text = if bytes.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { &bytes[..] };
        serde_json::from_slice(text).map_err(|error| ServiceError::Decode(format!("{}: {error}", operation.name())))
    }
}

/// An AWS JSON error answer: `{"__type": "...#Name", "message": "..."}`.
fn api_error(status: u16, body: &[u8]) -> ServiceError {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let exception = value["__type"].as_str().unwrap_or("HTTP error");
    let exception = exception.rsplit('#').next().unwrap_or(exception).to_owned();
    let message = value["message"]
        .as_str()
        .or_else(|| value["Message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
    ServiceError::Api { status, exception, message }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CommandService for HttpCommandService {
    fn update_offer(&self) -> Option<String> {
        lock(&self.offered).take()
    }

    fn refuse_update(&self, version: &str, why: &str) {
        // A header carries visible ASCII only.
        let text: String = format!("{version} {why}")
            .chars()
            .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
            .take(300)
            .collect();
        *lock(&self.refused) = HeaderValue::from_str(&text).ok();
    }

    async fn poll(&self, host_identifier: &str) -> Result<Option<HostCommand>, ServiceError> {
        let input = PollHostCommandInput { host_identifier: Some(host_identifier.to_owned()) };
        let output: PollHostCommandOutput = self.call(CommandOperation::PollHostCommand, &input).await?;
        Ok(output.host_command)
    }

    async fn specification(
        &self,
        execution_id: &str,
        host_identifier: &str,
    ) -> Result<GetDeploymentSpecificationOutput, ServiceError> {
        let input = GetDeploymentSpecificationInput {
            deployment_execution_id: Some(execution_id.to_owned()),
            host_identifier: Some(host_identifier.to_owned()),
        };
        self.call(CommandOperation::GetDeploymentSpecification, &input).await
    }

    async fn acknowledge(&self, command_id: &str, is_noop: bool) -> Result<Option<String>, ServiceError> {
        let payload = serde_json::to_string(&AckDiagnostics { is_command_noop: is_noop }).unwrap_or_default();
        let input = PutHostCommandAcknowledgementInput {
            host_command_identifier: Some(command_id.to_owned()),
            diagnostics: Some(Envelope { format: FORMAT_JSON.into(), payload }),
        };
        let output: PutHostCommandAcknowledgementOutput =
            self.call(CommandOperation::PutHostCommandAcknowledgement, &input).await?;
        Ok(output.command_status)
    }

    async fn update(&self, command_id: &str, chunk: &LogChunk) -> Result<(), ServiceError> {
        let payload = serde_json::to_string(chunk).unwrap_or_default();
        let input = PostHostCommandUpdateInput {
            host_command_identifier: Some(command_id.to_owned()),
            estimated_completion_time: None,
            diagnostics: Some(Envelope { format: FORMAT_LOG.into(), payload }),
        };
        let _: serde_json::Value = self.call(CommandOperation::PostHostCommandUpdate, &input).await?;
        Ok(())
    }

    async fn complete(
        &self,
        command_id: &str,
        status: &str,
        diagnostics: &CompleteDiagnostics,
    ) -> Result<(), ServiceError> {
        let payload = serde_json::to_string(diagnostics).unwrap_or_default();
        let input = PutHostCommandCompleteInput {
            host_command_identifier: Some(command_id.to_owned()),
            command_status: Some(status.to_owned()),
            diagnostics: Some(Envelope { format: FORMAT_JSON.into(), payload }),
        };
        let _: serde_json::Value = self.call(CommandOperation::PutHostCommandComplete, &input).await?;
        Ok(())
    }
}
