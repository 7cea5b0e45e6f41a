//! Real traffic: every POST the official CodeDeploy agent (Ruby SDK) made in one deployment.
//! See tests/data/ruby-agent-v1-trivial-deployment.jsonl (copied from the shared corpus).

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use landfall_sigv4::{
    AuthError, Authorization, Credentials, RequestParts, SigningKey, SigningParams, VerifyOptions, parse_amz_date,
    parse_authorization, sign, verify, verify_with_key,
};

const TRACE: &str = include_str!("data/ruby-agent-v1-trivial-deployment.jsonl");
const ACCESS_KEY: &str = "AKIAEXAMPLEEXAMPLE00";
const SECRET: &str = "notARealSecretKeyJustForLoopbackTesting00";
const SERVICE: &str = "codedeploy-commands";
const REGION: &str = "us-east-1";

/// One recorded request as the server receives it.
#[derive(Clone)]
struct Recorded {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Its own X-Amz-Date, epoch seconds.
    time: i64,
}

impl Recorded {
    fn parts(&self) -> RequestParts<'_> {
        RequestParts { method: &self.method, uri: &self.uri, headers: &self.headers, body: &self.body }
    }

    fn parse(&self) -> Result<Authorization, AuthError> {
        parse_authorization(&self.uri, &self.headers)
    }

    /// Parses and verifies with the given secret and clock.
    fn check(&self, secret: &str, now: i64) -> Result<(), AuthError> {
        let auth = self.parse()?;
        verify(&auth, &self.parts(), secret, now, &VerifyOptions::for_service(SERVICE).with_region(REGION))
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
}

fn posts() -> Vec<Recorded> {
    let mut out = Vec::new();
    for line in TRACE.lines().filter(|l| !l.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        if record["method"] != "POST" {
            continue;
        }
        let mut headers = HeaderMap::new();
        for (name, value) in record["headers"].as_object().unwrap() {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
            );
        }
        let time = parse_amz_date(headers["x-amz-date"].to_str().unwrap()).unwrap();
        out.push(Recorded {
            method: Method::POST,
            uri: record["path"].as_str().unwrap().parse().unwrap(),
            headers,
            body: record["body"].as_str().unwrap().as_bytes().to_vec(),
            time,
        });
    }
    out
}

#[test]
fn trace_has_the_expected_requests() {
    let posts = posts();
    assert_eq!(posts.len(), 61);
    assert_eq!(TRACE.lines().filter(|l| !l.trim().is_empty()).count(), 62);
}

#[test]
fn every_post_verifies_at_its_own_time() {
    for (i, request) in posts().iter().enumerate() {
        let auth = request.parse().unwrap();
        assert_eq!(auth.access_key_id, ACCESS_KEY);
        assert_eq!(auth.service, SERVICE);
        assert_eq!(auth.region, REGION);
        assert_eq!(auth.date, "20261122");
        assert!(!auth.presigned);
        assert_eq!(auth.request_time, request.time);
        assert_eq!(
            auth.signed_headers,
            [
                "content-type",
                "host",
                "x-amz-codedeploy-agent-version",
                "x-amz-content-sha256",
                "x-amz-date",
                "x-amz-target"
            ]
        );
        assert_eq!(request.check(SECRET, request.time), Ok(()), "request {i}");
        // Within the 15 minute window either way.
        assert_eq!(request.check(SECRET, request.time + 15 * 60), Ok(()));
        assert_eq!(request.check(SECRET, request.time - 15 * 60), Ok(()));
    }
}

#[test]
fn cached_key_verifies_every_post() {
    let key = SigningKey::derive(SECRET, "20261122", REGION, SERVICE);
    let options = VerifyOptions::for_service(SERVICE);
    for request in posts() {
        let auth = request.parse().unwrap();
        assert_eq!(verify_with_key(&auth, &request.parts(), &key, request.time, &options), Ok(()));
    }
    let other_day = SigningKey::derive(SECRET, "20261121", REGION, SERVICE);
    let request = &posts()[0];
    let auth = request.parse().unwrap();
    assert!(matches!(
        verify_with_key(&auth, &request.parts(), &other_day, request.time, &options),
        Err(AuthError::SignatureMismatch { .. })
    ));
}

#[test]
fn changed_body_fails() {
    for mut request in posts() {
        // The body no longer matches the signed x-amz-content-sha256.
        let last = request.body.len() - 2;
        request.body[last] ^= 0x01;
        let err = request.check(SECRET, request.time).unwrap_err();
        assert!(matches!(err, AuthError::ContentSha256Mismatch { .. }), "{err:?}");
        assert_eq!(err.exception(), "InvalidSignatureException");

        // Updating the hash header too does not help: it is signed.
        let hash = landfall_sigv4::sha256_hex(&request.body);
        request.set_header("x-amz-content-sha256", &hash);
        assert!(matches!(request.check(SECRET, request.time), Err(AuthError::SignatureMismatch { .. })));

        // Nor does dropping it: it is listed in SignedHeaders.
        request.headers.remove("x-amz-content-sha256");
        assert_eq!(
            request.check(SECRET, request.time),
            Err(AuthError::MissingSignedHeader { name: "x-amz-content-sha256".to_owned() })
        );
    }
}

#[test]
fn changed_signed_header_fails() {
    for original in posts() {
        for (name, value) in [
            ("x-amz-target", "CodeDeployCommandService_v20141006.PutHostCommandComplete "),
            ("x-amz-target", "CodeDeployCommandService_v20141006.Other"),
            ("content-type", "application/json"),
            ("host", "127.0.0.1:8445"),
            ("x-amz-codedeploy-agent-version", "1.8.1"),
        ] {
            let mut request = original.clone();
            if request.headers[name] == value.trim() {
                continue;
            }
            request.set_header(name, value);
            let err = request.check(SECRET, request.time).unwrap_err();
            assert!(matches!(err, AuthError::SignatureMismatch { .. }), "{name}: {err:?}");
        }
        // Extra spaces inside a signed value are canonicalised away, so they do not matter...
        let mut request = original.clone();
        let target = request.headers["x-amz-target"].to_str().unwrap().to_owned();
        request.set_header("x-amz-target", &format!("  {target}  "));
        assert_eq!(request.check(SECRET, request.time), Ok(()));
        // ...and neither do unsigned headers.
        let mut request = original.clone();
        request.set_header("user-agent", "something else");
        request.set_header("accept", "text/html");
        assert_eq!(request.check(SECRET, request.time), Ok(()));
        // But the method and the path are signed.
        let mut request = original.clone();
        request.method = Method::PUT;
        assert!(request.check(SECRET, request.time).is_err());
        let mut request = original.clone();
        request.uri = "/x".parse().unwrap();
        assert!(request.check(SECRET, request.time).is_err());
    }
}

#[test]
fn changed_secret_fails() {
    let request = &posts()[0];
    let wrong = "notARealSecretKeyJustForLoopbackTesting01";
    let err = request.check(wrong, request.time).unwrap_err();
    let AuthError::SignatureMismatch { canonical_request, string_to_sign } = &err else { panic!("{err:?}") };
    assert!(canonical_request.starts_with("POST\n/\n\ncontent-type:application/x-amz-json-1.1\n"));
    assert!(
        string_to_sign
            .starts_with("AWS4-HMAC-SHA256\n20261122T015807Z\n20261122/us-east-1/codedeploy-commands/aws4_request\n")
    );
    assert_eq!(err.exception(), "InvalidSignatureException");
    // The secret never appears in the error.
    for text in [format!("{err:?}"), err.to_string(), err.message()] {
        assert!(!text.contains(wrong) && !text.contains(SECRET), "{text}");
    }
}

#[test]
fn sixteen_minutes_later_fails() {
    for request in posts() {
        let err = request.check(SECRET, request.time + 16 * 60).unwrap_err();
        assert!(matches!(err, AuthError::SignatureExpired { .. }), "{err:?}");
        let err = request.check(SECRET, request.time - 16 * 60).unwrap_err();
        assert!(matches!(err, AuthError::SignatureNotYetCurrent { .. }), "{err:?}");
    }
    let request = &posts()[0];
    assert_eq!(
        request.check(SECRET, request.time + 15 * 60 + 1).unwrap_err().message(),
        "Signature expired: 20261122T015807Z is now earlier than 20261122T015808Z (20261122T021308Z - 15 min.)"
    );
}

#[test]
fn wrong_service_is_rejected() {
    let request = &posts()[0];
    let auth = request.parse().unwrap();
    let err =
        verify(&auth, &request.parts(), SECRET, request.time, &VerifyOptions::for_service("codedeploy")).unwrap_err();
    assert_eq!(err.exception(), "InvalidSignatureException");
    assert_eq!(err.message(), "Credential should be scoped to correct service: 'codedeploy'. ");
}

/// Landfall's own signer, given the agent's headers and time, produces the agent's exact
/// Authorization header.
#[test]
fn own_signer_reproduces_the_agent_signatures() {
    let credentials = Credentials::new(ACCESS_KEY, SECRET);
    for request in posts() {
        let mut headers = request.headers.clone();
        let original = headers.remove("authorization").unwrap();
        sign(
            &request.method,
            &request.uri,
            &mut headers,
            &request.body,
            &SigningParams { credentials: &credentials, region: REGION, service: SERVICE, time: request.time },
        )
        .unwrap();
        assert_eq!(headers["authorization"], original);
        assert_eq!(headers["x-amz-date"], request.headers["x-amz-date"]);
    }
}
