//! A client for Landfall's API (CodeDeploy's operations and Landfall's extensions). It finds the
//! server and the caller's credentials the way the aws CLI does, signs each request with SigV4,
//! and turns error answers into [`ClientError::Api`] with the AWS exception name.

pub mod bundle;
mod s3;
mod settings;
pub mod signed;

use http::{HeaderMap, HeaderValue, Method, Uri};
pub use landfall_api::Exception;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use settings::{ClientSettings, Overrides, SettingsError};
use signed::{Signing, send_signed};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error: the exception it named (`None`: one this client does
    /// not know, from a newer server) by its `__type`, and its message.
    #[error("{name}: {message}")]
    Api { exception: Option<Exception>, name: String, message: String },
    /// The bundle store answered with an S3 error code.
    #[error("{code}: {message}")]
    S3 { code: String, message: String },
    /// The server could not be reached or the exchange failed.
    #[error("cannot reach {endpoint}: {message}")]
    Transport { endpoint: String, message: String },
    /// The answer was not what the operation returns.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
    /// A local file could not be read.
    #[error("{0}")]
    Local(String),
}

pub struct Client {
    http: reqwest::Client,
    settings: ClientSettings,
}

impl Client {
    pub fn new(settings: ClientSettings) -> Client {
        let mut builder = reqwest::Client::builder().user_agent(concat!("landfall/", env!("CARGO_PKG_VERSION")));
        // Checked when the settings were resolved.
        let extra = settings.ca_bundle.as_deref().and_then(|pem| reqwest::Certificate::from_pem_bundle(pem).ok());
        for certificate in extra.into_iter().flatten() {
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder.build().unwrap_or_default();
        Client { http, settings }
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Calls `target` (`Prefix.Operation`, as in `X-Amz-Target`) with `input`.
    pub async fn call<I: Serialize, O: DeserializeOwned>(&self, target: &str, input: &I) -> Result<O, ClientError> {
        let body = serde_json::to_vec(input).map_err(|e| ClientError::Decode(e.to_string()))?;
        let endpoint = self.settings.endpoint.trim_end_matches('/');
        let uri: Uri = format!("{endpoint}/").parse().map_err(|_| ClientError::Transport {
            endpoint: endpoint.to_owned(),
            message: "the endpoint is not a valid URL".into(),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
        let target_value =
            HeaderValue::from_str(target).map_err(|_| ClientError::Decode(format!("bad target {target}")))?;
        headers.insert("x-amz-target", target_value);
        let signing =
            Signing { credentials: &self.settings.credentials, region: &self.settings.region, service: "codedeploy" };
        let response = send_signed(&self.http, Method::POST, &uri, headers, body, signing)
            .await
            .map_err(|e| ClientError::Transport { endpoint: endpoint.to_owned(), message: e.to_string() })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Transport { endpoint: endpoint.to_owned(), message: describe(&e) })?;
        if !status.is_success() {
            let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let name = error["__type"].as_str().unwrap_or("UnknownError");
            // `__type` may carry a namespace (`com.amazon...#Name`); the name is what matters.
            let name = name.rsplit('#').next().unwrap_or(name).to_owned();
            let exception = Exception::from_name(&name);
            let message = error["message"].as_str().or(error["Message"].as_str()).unwrap_or("").to_owned();
            let message = if message.is_empty() { format!("HTTP {status}") } else { message };
            return Err(ClientError::Api { exception, name, message });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// An error with its causes (an HTTP client's own message is only the outer layer: the TLS or
/// connection reason is underneath).
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
