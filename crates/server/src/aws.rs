//! The AWS APIs that Lambda and ECS deployments drive (Lambda, ECS, Elastic Load Balancing v2),
//! called with the server's own platform credentials, signed with SigV4. Endpoints default to
//! AWS's regional ones and can point anywhere that speaks the same APIs (LocalStack, moto).
//!
//! Each service keeps its own protocol: Lambda is REST with JSON bodies, ECS is JSON 1.1 with
//! an `X-Amz-Target`, ELBv2 is the Query protocol answering XML.

use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Uri};
use landfall_sigv4::{Credentials, SigningParams, sign};
use serde_json::Value;

/// How long one call may take.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
}

impl AwsClient {
    pub fn new(settings: AwsSettings) -> anyhow::Result<AwsClient> {
        let http = reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?;
        Ok(AwsClient { settings, http })
    }

    /// A Lambda REST call: `path` (with its query) under the endpoint, a JSON body or none.
    pub async fn lambda(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, AwsError> {
        let body = body.map(|b| b.to_string()).unwrap_or_default().into_bytes();
        let mut headers = HeaderMap::new();
        if !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let answer = self.send("lambda", "lambda", method, &self.settings.lambda, path, headers, body).await?;
        json_answer("lambda", answer)
    }

    /// An asynchronous Lambda invocation (`X-Amz-Invocation-Type: Event`) of the function at
    /// `path` (`/2015-03-31/functions/NAME/invocations`).
    pub async fn lambda_invoke_event(&self, path: &str, payload: &Value) -> Result<(), AwsError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("x-amz-invocation-type", HeaderValue::from_static("Event"));
        let body = payload.to_string().into_bytes();
        let answer = self.send("lambda", "lambda", Method::POST, &self.settings.lambda, path, headers, body).await?;
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
        let answer = self.send("ecs", "ecs", Method::POST, &self.settings.ecs, "/", headers, body).await?;
        json_answer("ecs", answer)
    }

    /// An ELBv2 call (Query protocol): its action and parameters; the answer's XML.
    pub async fn elbv2(&self, action: &str, parameters: &[(&str, String)]) -> Result<String, AwsError> {
        let mut form = format!("Action={action}&Version=2015-12-01");
        for (name, value) in parameters {
            form.push('&');
            form.push_str(&landfall_sigv4::uri_encode(name, false));
            form.push('=');
            form.push_str(&landfall_sigv4::uri_encode(value, false));
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        let answer = self
            .send("elbv2", "elasticloadbalancing", Method::POST, &self.settings.elbv2, "/", headers, form.into_bytes())
            .await?;
        let (status, text) = answer;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let code = xml_element(&text, "Code").unwrap_or_else(|| format!("HTTP {status}"));
        Err(AwsError::new("elbv2", code, xml_element(&text, "Message").unwrap_or(text)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        service: &'static str,
        signing_name: &str,
        method: Method,
        endpoint: &Uri,
        path: &str,
        mut headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(u16, String), AwsError> {
        let Some(credentials) = &self.settings.credentials else {
            return Err(AwsError::new(
                service,
                "NoCredentials",
                "the server has no platform credentials: set LANDFALL_AWS_ACCESS_KEY_ID and LANDFALL_AWS_SECRET_ACCESS_KEY",
            ));
        };
        let base = endpoint.to_string();
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let uri: Uri = url.parse().map_err(|e| AwsError::new(service, "Client", format!("{url}: {e}")))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let params = SigningParams { credentials, region: &self.settings.region, service: signing_name, time: now };
        sign(&method, &uri, &mut headers, &body, &params)
            .map_err(|e| AwsError::new(service, "Client", e.to_string()))?;
        let answer = self
            .http
            .request(method, url.as_str())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| AwsError::new(service, "Unreachable", format!("{url} cannot be reached: {e}")))?;
        let status = answer.status().as_u16();
        let text = answer.text().await.map_err(|e| AwsError::new(service, "Unreachable", e.to_string()))?;
        Ok((status, text))
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
    let lambda = client.lambda(Method::GET, "/2015-03-31/functions/?MaxItems=1", None).await.map(|_| ());
    let ecs = client.ecs("ListClusters", &serde_json::json!({"maxResults": 1})).await.map(|_| ());
    let elbv2 = client.elbv2("DescribeLoadBalancers", &[("PageSize", "1".into())]).await.map(|_| ());
    let settings = &client.settings;
    let mut all = true;
    let mut lines = Vec::new();
    for (name, endpoint, result) in
        [("Lambda", &settings.lambda, lambda), ("ECS", &settings.ecs, ecs), ("ELBv2", &settings.elbv2, elbv2)]
    {
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
