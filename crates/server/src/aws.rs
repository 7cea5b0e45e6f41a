//! The AWS APIs that Lambda and ECS deployments drive (Lambda, ECS, Elastic Load Balancing v2),
//! signed with SigV4. Endpoints default to AWS's regional ones and can point anywhere that
//! speaks the same APIs (LocalStack, moto).
//!
//! Calls are made with the server's own platform credentials, or, when the server assumes
//! service roles, as the deployment group's `serviceRoleArn` (STS AssumeRole with the server's
//! credentials, the answer kept until shortly before it expires), as CodeDeploy acts as it.
//!
//! Each service keeps its own protocol: Lambda is REST with JSON bodies, ECS is JSON 1.1 with
//! an `X-Amz-Target`, ELBv2 and STS are the Query protocol answering XML.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Uri};
use landfall_client::signed::{SendError, Signing, send_signed};
use landfall_sigv4::Credentials;
use serde_json::Value;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long assumed role credentials are asked for, and how long before that they are renewed.
const ROLE_SESSION_SECS: u64 = 3600;
const ROLE_RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Where the platform APIs are and who the server is to them.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub region: String,
    /// `None`: no platform credentials configured; Lambda and ECS deployments fail with a
    /// message saying so.
    pub credentials: Option<Credentials>,
    pub lambda: Uri,
    pub ecs: Uri,
    pub elbv2: Uri,
    pub sts: Uri,
    /// Platform calls for a deployment are made as its group's service role.
    pub assume_service_roles: bool,
}

impl AwsSettings {
    /// AWS's own endpoints for `region`, or `endpoint` for every service when given.
    pub fn new(region: &str, credentials: Option<Credentials>, endpoint: Option<&Uri>) -> AwsSettings {
        let regional = |service: &str| -> Uri {
            match endpoint {
                Some(endpoint) => endpoint.clone(),
                None => format!("https://{service}.{region}.amazonaws.com").parse().unwrap_or_default(),
            }
        };
        AwsSettings {
            region: region.to_owned(),
            credentials,
            lambda: regional("lambda"),
            ecs: regional("ecs"),
            elbv2: regional("elasticloadbalancing"),
            sts: regional("sts"),
            assume_service_roles: false,
        }
    }
}

/// A refused or failed call: the service, AWS's error code and its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} {code}: {message}")]
pub struct AwsError {
    pub service: &'static str,
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(service: &'static str, code: impl Into<String>, message: impl Into<String>) -> AwsError {
        AwsError { service, code: code.into(), message: message.into() }
    }
}

pub struct AwsClient {
    pub settings: AwsSettings,
    http: reqwest::Client,
    /// Assumed service roles' credentials, by role ARN, and until when they are used.
    roles: Mutex<HashMap<String, (Credentials, Instant)>>,
}

impl AwsClient {
    pub fn new(settings: AwsSettings) -> anyhow::Result<AwsClient> {
        let http = reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?;
        Ok(AwsClient { settings, http, roles: Mutex::default() })
    }

    /// Calls made with the server's own credentials.
    pub fn own(&self) -> AwsSession<'_> {
        AwsSession { client: self, role: None }
    }

    /// Calls for a deployment group whose service role is `role`: made as that role when the
    /// server assumes service roles, with its own credentials otherwise.
    pub fn for_role(&self, role: Option<&str>) -> AwsSession<'_> {
        let role = role.filter(|role| self.settings.assume_service_roles && !role.is_empty());
        AwsSession { client: self, role: role.map(str::to_owned) }
    }

    fn own_credentials(&self, service: &'static str) -> Result<&Credentials, AwsError> {
        self.settings.credentials.as_ref().ok_or_else(|| {
            AwsError::new(
                service,
                "NoCredentials",
                "the server has no platform credentials: set LANDFALL_AWS_ACCESS_KEY_ID and LANDFALL_AWS_SECRET_ACCESS_KEY",
            )
        })
    }

    /// The credentials calls as `role` are signed with (the server's own without one).
    async fn credentials(&self, service: &'static str, role: Option<&str>) -> Result<Credentials, AwsError> {
        let Some(role) = role else { return self.own_credentials(service).cloned() };
        let roles = || self.roles.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((credentials, until)) = roles().get(role)
            && Instant::now() < *until
        {
            return Ok(credentials.clone());
        }
        let assumed = self.assume_role(role).await?;
        let until = Instant::now() + Duration::from_secs(ROLE_SESSION_SECS) - ROLE_RENEW_BEFORE;
        roles().insert(role.to_owned(), (assumed.clone(), until));
        Ok(assumed)
    }

    /// STS AssumeRole of `role` with the server's own credentials.
    async fn assume_role(&self, role: &str) -> Result<Credentials, AwsError> {
        let own = self.own_credentials("sts")?;
        let parameters = [
            ("RoleArn", role.to_owned()),
            ("RoleSessionName", "landfall".to_owned()),
            ("DurationSeconds", ROLE_SESSION_SECS.to_string()),
        ];
        let xml = self.query("sts", "sts", own, &self.settings.sts, "AssumeRole", "2011-06-15", &parameters).await?;
        let field = |name: &str| xml_element(&xml, name).filter(|value| !value.is_empty());
        let (Some(id), Some(secret)) = (field("AccessKeyId"), field("SecretAccessKey")) else {
            return Err(AwsError::new("sts", "InvalidAnswer", format!("AssumeRole of {role} returned no credentials")));
        };
        let mut credentials = Credentials::new(id, secret);
        credentials.session_token = field("SessionToken");
        tracing::info!(role, "service role assumed");
        Ok(credentials)
    }

    /// A Query-protocol call (ELBv2, STS): its action and parameters; the answer's XML.
    #[allow(clippy::too_many_arguments)]
    async fn query(
        &self,
        service: &'static str,
        signing_name: &str,
        credentials: &Credentials,
        endpoint: &Uri,
        action: &str,
        version: &str,
        parameters: &[(&str, String)],
    ) -> Result<String, AwsError> {
        let mut form = format!("Action={action}&Version={version}");
        for (name, value) in parameters {
            form.push('&');
            form.push_str(&landfall_sigv4::uri_encode(name, false));
            form.push('=');
            form.push_str(&landfall_sigv4::uri_encode(value, false));
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        let (status, text) = self
            .send(service, signing_name, credentials, Method::POST, endpoint, "/", headers, form.into_bytes())
            .await?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let code = xml_element(&text, "Code").unwrap_or_else(|| format!("HTTP {status}"));
        Err(AwsError::new(service, code, xml_element(&text, "Message").unwrap_or(text)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        service: &'static str,
        signing_name: &str,
        credentials: &Credentials,
        method: Method,
        endpoint: &Uri,
        path: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(u16, String), AwsError> {
        let base = endpoint.to_string();
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let uri: Uri = url.parse().map_err(|e| AwsError::new(service, "Client", format!("{url}: {e}")))?;
        // Signed at the real time (what AWS checks), whatever clock the server runs on.
        let signing = Signing { credentials, region: &self.settings.region, service: signing_name };
        let answer = send_signed(&self.http, method, &uri, headers, body, signing).await;
        let answer = answer.map_err(|e| match e {
            SendError::Sign(why) => AwsError::new(service, "Client", why),
            SendError::Unreachable(e) => AwsError::new(service, "Unreachable", format!("{url} cannot be reached: {e}")),
        })?;
        let status = answer.status().as_u16();
        let text = answer.text().await.map_err(|e| AwsError::new(service, "Unreachable", e.to_string()))?;
        Ok((status, text))
    }
}

/// Calls made as one identity: the server, or a deployment group's service role.
pub struct AwsSession<'a> {
    client: &'a AwsClient,
    role: Option<String>,
}

impl AwsSession<'_> {
    /// A Lambda REST call: `path` (with its query) under the endpoint, a JSON body or none.
    pub async fn lambda(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, AwsError> {
        let body = body.map(|b| b.to_string()).unwrap_or_default().into_bytes();
        let mut headers = HeaderMap::new();
        if !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let credentials = self.client.credentials("lambda", self.role.as_deref()).await?;
        let endpoint = &self.client.settings.lambda;
        let answer = self.client.send("lambda", "lambda", &credentials, method, endpoint, path, headers, body).await?;
        json_answer("lambda", answer)
    }

    /// An asynchronous Lambda invocation (`X-Amz-Invocation-Type: Event`) of the function at
    /// `path` (`/2015-03-31/functions/NAME/invocations`).
    pub async fn lambda_invoke_event(&self, path: &str, payload: &Value) -> Result<(), AwsError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("x-amz-invocation-type", HeaderValue::from_static("Event"));
        let body = payload.to_string().into_bytes();
        let credentials = self.client.credentials("lambda", self.role.as_deref()).await?;
        let endpoint = &self.client.settings.lambda;
        let answer =
            self.client.send("lambda", "lambda", &credentials, Method::POST, endpoint, path, headers, body).await?;
        json_answer("lambda", answer).map(|_| ())
    }

    /// An ECS call (JSON 1.1) by operation name.
    pub async fn ecs(&self, operation: &str, input: &Value) -> Result<Value, AwsError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
        let target = format!("AmazonEC2ContainerServiceV20141113.{operation}");
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(&target).map_err(|e| AwsError::new("ecs", "Client", e.to_string()))?,
        );
        let body = input.to_string().into_bytes();
        let credentials = self.client.credentials("ecs", self.role.as_deref()).await?;
        let endpoint = &self.client.settings.ecs;
        let answer = self.client.send("ecs", "ecs", &credentials, Method::POST, endpoint, "/", headers, body).await?;
        json_answer("ecs", answer)
    }

    /// An ELBv2 call (Query protocol): its action and parameters; the answer's XML.
    pub async fn elbv2(&self, action: &str, parameters: &[(&str, String)]) -> Result<String, AwsError> {
        let credentials = self.client.credentials("elbv2", self.role.as_deref()).await?;
        let endpoint = &self.client.settings.elbv2;
        self.client
            .query("elbv2", "elasticloadbalancing", &credentials, endpoint, action, "2015-12-01", parameters)
            .await
    }
}

/// A JSON answer, or the error it carries (`__type` or `code`, and `message` in any casing).
fn json_answer(service: &'static str, (status, text): (u16, String)) -> Result<Value, AwsError> {
    let value: Value =
        if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let field =
        |names: &[&str]| names.iter().find_map(|name| value.get(*name).and_then(Value::as_str)).map(str::to_owned);
    let code = field(&["__type", "code", "Type"])
        .map(|code| code.rsplit('#').next().unwrap_or(&code).to_owned())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = field(&["message", "Message", "errorMessage"]).unwrap_or(text);
    Err(AwsError::new(service, code, message))
}

/// The text of the first `<name>` element (enough for the Query protocol's errors and ids).
pub fn xml_element(xml: &str, name: &str) -> Option<String> {
    xml_elements(xml, name).into_iter().next()
}

/// The texts of every `<name>` element, in document order (the Query protocol's lists of
/// flat members).
pub fn xml_elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open).map(|i| i + open.len()) {
        let Some(end) = rest[start..].find(&close).map(|i| i + start) else { break };
        found.push(rest[start..end].trim().to_owned());
        rest = &rest[end + close.len()..];
    }
    found
}

/// What `landfall server --check-platforms` found: one line per service, and whether all answered.
pub async fn check(client: &AwsClient) -> (Vec<String>, bool) {
    let session = client.own();
    let lambda = session.lambda(Method::GET, "/2015-03-31/functions/?MaxItems=1", None).await.map(|_| ());
    let ecs = session.ecs("ListClusters", &serde_json::json!({"maxResults": 1})).await.map(|_| ());
    let elbv2 = session.elbv2("DescribeLoadBalancers", &[("PageSize", "1".into())]).await.map(|_| ());
    let settings = &client.settings;
    let mut checks =
        vec![("Lambda", &settings.lambda, lambda), ("ECS", &settings.ecs, ecs), ("ELBv2", &settings.elbv2, elbv2)];
    if settings.assume_service_roles {
        // Service roles are assumed through STS with these credentials.
        let sts = match client.own_credentials("sts") {
            Ok(own) => client.query("sts", "sts", own, &settings.sts, "GetCallerIdentity", "2011-06-15", &[]).await,
            Err(error) => Err(error),
        };
        checks.push(("STS", &settings.sts, sts.map(|_| ())));
    }
    let mut all = true;
    let mut lines = Vec::new();
    for (name, endpoint, result) in checks {
        match result {
            Ok(()) => lines.push(format!("{name} at {endpoint} ({}): ok", settings.region)),
            Err(error) => {
                all = false;
                lines.push(format!("{name} at {endpoint} ({}): {}: {}", settings.region, error.code, error.message));
            }
        }
    }
    (lines, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_default_to_the_region_and_one_override_serves_all() {
        let aws = AwsSettings::new("eu-west-1", None, None);
        assert_eq!(aws.lambda.to_string(), "https://lambda.eu-west-1.amazonaws.com/");
        assert_eq!(aws.elbv2.to_string(), "https://elasticloadbalancing.eu-west-1.amazonaws.com/");
        let local: Uri = "http://127.0.0.1:5000".parse().unwrap();
        let aws = AwsSettings::new("us-east-1", None, Some(&local));
        assert_eq!((aws.lambda.clone(), aws.ecs.clone(), aws.elbv2.clone()), (local.clone(), local.clone(), local));
    }

    #[test]
    fn errors_are_read_from_every_protocol() {
        let json = r#"{"__type":"com.amazonaws#ResourceNotFoundException","message":"Function not found"}"#;
        let error = json_answer("lambda", (404, json.into())).unwrap_err();
        assert_eq!((error.code.as_str(), error.message.as_str()), ("ResourceNotFoundException", "Function not found"));
        let lambda = r#"{"Type":"User","Message":"Alias not found"}"#;
        assert_eq!(json_answer("lambda", (404, lambda.into())).unwrap_err().message, "Alias not found");
        assert_eq!(json_answer("ecs", (200, String::new())).unwrap(), Value::Null);
        let xml = "<ErrorResponse><Error><Code>ListenerNotFound</Code><Message>One or more listeners not found</Message></Error></ErrorResponse>";
        assert_eq!(xml_element(xml, "Code").as_deref(), Some("ListenerNotFound"));
        assert_eq!(xml_element(xml, "Missing"), None);
        let list = "<TargetGroups><member><TargetGroupName>blue</TargetGroupName></member>\
                    <member><TargetGroupName>green</TargetGroupName></member></TargetGroups>";
        assert_eq!(xml_elements(list, "TargetGroupName"), ["blue", "green"]);
    }
}
