//! Every AuthError case, with the exception name and message a client sees.

use http::{HeaderMap, HeaderValue, Method, Uri};
use landfall_sigv4::{
    AuthError, Authorization, Credentials, RequestParts, SigningKey, SigningParams, VerifyOptions, parse_amz_date,
    parse_authorization, presign, sha256_hex, sign, verify,
};

const AKID: &str = "AKIAEXAMPLEEXAMPLE00";
const SECRET: &str = "notARealSecretKeyJustForLoopbackTesting00";

fn t(amz: &str) -> i64 {
    parse_amz_date(amz).unwrap()
}

struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn new(method: Method, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        Req { method, uri: uri.parse().unwrap(), headers: map, body: body.to_vec() }
    }

    /// A CodeDeploy call signed with Landfall's signer.
    fn signed(service: &str, time: i64) -> Self {
        let mut req = Req::new(
            Method::POST,
            "/",
            &[
                ("host", "127.0.0.1:8443"),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "CodeDeploy_20141006.ListApplications"),
            ],
            b"{}",
        );
        req.sign(service, time);
        req
    }

    fn sign(&mut self, service: &str, time: i64) {
        sign(
            &self.method,
            &self.uri,
            &mut self.headers,
            &self.body,
            &SigningParams { credentials: &Credentials::new(AKID, SECRET), region: "us-east-1", service, time },
        )
        .unwrap();
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers.insert(name, HeaderValue::from_str(value).unwrap());
    }

    fn parse(&self) -> Result<Authorization, AuthError> {
        parse_authorization(&self.uri, &self.headers)
    }

    fn verify_with(&self, now: i64, options: &VerifyOptions<'_>) -> Result<(), AuthError> {
        let auth = self.parse()?;
        verify(
            &auth,
            &RequestParts { method: &self.method, uri: &self.uri, headers: &self.headers, body: &self.body },
            SECRET,
            now,
            options,
        )
    }

    fn verify(&self, service: &str, now: i64) -> Result<(), AuthError> {
        self.verify_with(now, &VerifyOptions::for_service(service).with_region("us-east-1"))
    }
}

fn assert_error(err: &AuthError, exception: &str, message: &str) {
    assert_eq!(err.exception(), exception, "{err:?}");
    assert_eq!(err.message(), message, "{err:?}");
    assert_eq!(err.to_string(), format!("{exception}: {message}"));
}

const INCOMPLETE: &str = "IncompleteSignatureException";
const INVALID: &str = "InvalidSignatureException";

#[test]
fn signed_request_is_accepted() {
    let now = t("20261122T015807Z");
    let req = Req::signed("codedeploy", now);
    assert_eq!(req.verify("codedeploy", now), Ok(()));
    assert_eq!(req.verify_with(now, &VerifyOptions::default()), Ok(()));
}

#[test]
fn missing_authentication_token() {
    for uri in ["/", "/?a=1&X-Amz-Date=20261122T015807Z"] {
        let req = Req::new(Method::GET, uri, &[("host", "h"), ("x-amz-date", "20261122T015807Z")], b"");
        let err = req.parse().unwrap_err();
        assert_eq!(err, AuthError::MissingAuthenticationToken);
        assert_error(&err, "MissingAuthenticationTokenException", "Missing Authentication Token");
        assert_eq!(err.http_status(), 403);
        assert_eq!(err.s3_code(), "AccessDenied");
    }
}

#[test]
fn incomplete_authorization_header() {
    // Not SigV4 at all: every part is reported missing, then the header itself, as AWS does.
    let req = Req::new(Method::GET, "/", &[("authorization", "Bearer abc.def")], b"");
    let err = req.parse().unwrap_err();
    assert_error(
        &err,
        INCOMPLETE,
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=Bearer abc.def",
    );
    assert_eq!(err.http_status(), 400);
    assert_eq!(err.s3_code(), "AuthorizationHeaderMalformed");

    let header = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEEXAMPLE00/20261122/us-east-1/codedeploy/aws4_request, SignedHeaders=host;x-amz-date";
    let req = Req::new(Method::GET, "/", &[("authorization", header), ("x-amz-date", "20261122T015807Z")], b"");
    assert_error(
        &req.parse().unwrap_err(),
        INCOMPLETE,
        &format!("Authorization header requires 'Signature' parameter. Authorization={header}"),
    );

    let header = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEEXAMPLE00/20261122/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=00";
    let req = Req::new(Method::GET, "/", &[("authorization", header), ("host", "h")], b"");
    assert_error(
        &req.parse().unwrap_err(),
        INCOMPLETE,
        &format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={header}"
        ),
    );
}

#[test]
fn malformed_authorization_parts() {
    let cases = [
        (
            "AWS4-HMAC-SHA256 Credential= AKID/20261122/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=00",
            "'AKID/20261122/us-east-1/codedeploy/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential= AKID/20261122/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=00'."
                .to_owned(),
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/codedeploy, SignedHeaders=host, Signature=00",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKID/20261122/us-east-1/codedeploy'".to_owned(),
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/codedeploy/aws5_request, SignedHeaders=host, Signature=00",
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ".to_owned(),
        ),
        (
            "AWS4-HMAC-SHA512 Credential=AKID/20261122/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=00",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'. Only 'AWS4-HMAC-SHA256' is supported.".to_owned(),
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/codedeploy/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ),
    ];
    for (header, message) in cases {
        let req = Req::new(Method::GET, "/", &[("authorization", header), ("x-amz-date", "20261122T015807Z")], b"");
        let err = req.parse().unwrap_err();
        assert_error(&err, INCOMPLETE, &message);
        assert!(matches!(err, AuthError::Malformed { presigned: false, .. }));
    }

    let header =
        "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=00";
    let req = Req::new(Method::GET, "/", &[("authorization", header), ("x-amz-date", "2026-11-22T01:58:07Z")], b"");
    assert_error(
        &req.parse().unwrap_err(),
        INCOMPLETE,
        "Date must be in ISO-8601 'basic format'. Got '2026-11-22T01:58:07Z'. See http://en.wikipedia.org/wiki/ISO_8601",
    );
    let req = Req::new(Method::GET, "/", &[("authorization", header), ("date", "yesterday")], b"");
    assert_error(
        &req.parse().unwrap_err(),
        INCOMPLETE,
        "Date header must be an HTTP date such as 'Sun, 22 Nov 2026 01:58:07 GMT'. Got 'yesterday'.",
    );
}

/// A request dated by the `Date` header only: the signature covers `date`, and the string to
/// sign uses the ISO-8601 form of that date. The canonical request is written out literally.
#[test]
fn date_header_instead_of_x_amz_date() {
    let canonical_request = format!(
        "GET\n/path\na=1\ndate:Sun, 22 Nov 2026 01:58:07 GMT\nhost:example.com\n\ndate;host\n{}",
        sha256_hex(b"")
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n20261122T015807Z\n20261122/us-east-1/codedeploy/aws4_request\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let signature = SigningKey::derive(SECRET, "20261122", "us-east-1", "codedeploy").sign(string_to_sign.as_bytes());
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20261122/us-east-1/codedeploy/aws4_request, SignedHeaders=date;host, Signature={signature}"
    );
    let req = Req::new(
        Method::GET,
        "/path?a=1",
        &[("host", "example.com"), ("date", "Sun, 22 Nov 2026 01:58:07 GMT"), ("authorization", &authorization)],
        b"",
    );
    let auth = req.parse().unwrap();
    assert_eq!(auth.request_time, t("20261122T015807Z"));
    assert_eq!(req.verify("codedeploy", t("20261122T020000Z")), Ok(()));
    // X-Amz-Date, when present, wins over Date.
    let mut later = req;
    later.set("x-amz-date", "20261122T015808Z");
    assert_eq!(later.parse().unwrap().request_time, t("20261122T015808Z"));
}

#[test]
fn multiple_auth_mechanisms() {
    let mut req = Req::signed("s3", t("20261122T015807Z"));
    req.uri = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256".parse().unwrap();
    let err = req.parse().unwrap_err();
    assert_eq!(err, AuthError::MultipleAuthMechanisms);
    assert_eq!(err.exception(), INCOMPLETE);
    assert_eq!(err.s3_code(), "InvalidArgument");
}

#[test]
fn incomplete_presigned_parameters() {
    let req = Req::new(Method::GET, "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=60", &[("host", "h")], b"");
    let err = req.parse().unwrap_err();
    assert_error(
        &err,
        INCOMPLETE,
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.",
    );
    assert_eq!(err.s3_code(), "AuthorizationQueryParametersError");

    let base = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261122%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261122T015807Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    for (extra, message) in [
        ("&X-Amz-Expires=604801", "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
        ("&X-Amz-Expires=-1", "X-Amz-Expires should be a number; got '-1'."),
    ] {
        let req = Req::new(Method::GET, &format!("{base}{extra}"), &[("host", "h")], b"");
        let err = req.parse().unwrap_err();
        assert_error(&err, INCOMPLETE, message);
        assert!(matches!(err, AuthError::Malformed { presigned: true, .. }));
    }
    let req = Req::new(Method::GET, &format!("{base}&X-Amz-Expires=604800"), &[("host", "h")], b"");
    let auth = req.parse().unwrap();
    assert!(auth.presigned);
    assert_eq!(auth.expires, Some(604_800));
    assert_eq!(auth.access_key_id, "AKID");
    assert_eq!(auth.service, "s3");
}

#[test]
fn wrong_service_region_and_scope_date() {
    let now = t("20261122T015807Z");
    let req = Req::signed("codedeploy-commands", now);
    let err = req.verify("codedeploy", now).unwrap_err();
    assert_error(&err, INVALID, "Credential should be scoped to correct service: 'codedeploy'. ");

    let options = VerifyOptions::for_service("codedeploy-commands").with_region("eu-west-1");
    let err = req.verify_with(now, &options).unwrap_err();
    assert_error(&err, INVALID, "Credential should be scoped to a valid region, not 'us-east-1'. ");
    assert_eq!(
        err.s3_message(),
        "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'"
    );

    let mut req = Req::signed("codedeploy", now);
    let header = req.headers["authorization"].to_str().unwrap().replace("/20261122/", "/20261121/");
    req.set("authorization", &header);
    assert_error(
        &req.verify("codedeploy", now).unwrap_err(),
        INVALID,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261121' != '20261122', from '20261122T015807Z'.",
    );
}

#[test]
fn clock_skew() {
    let now = t("20261122T020703Z");
    let req = Req::signed("codedeploy", t("20261122T010000Z"));
    let err = req.verify("codedeploy", now).unwrap_err();
    assert_error(
        &err,
        INVALID,
        "Signature expired: 20261122T010000Z is now earlier than 20261122T015203Z (20261122T020703Z - 15 min.)",
    );
    assert_eq!(err.s3_code(), "RequestTimeTooSkewed");
    assert_eq!(err.s3_http_status(), 403);

    let req = Req::signed("codedeploy", t("20261122T030000Z"));
    assert_error(
        &req.verify("codedeploy", now).unwrap_err(),
        INVALID,
        "Signature not yet current: 20261122T030000Z is still later than 20261122T022203Z (20261122T020703Z + 15 min.)",
    );

    // Exactly 15 minutes either way is still accepted.
    assert_eq!(Req::signed("codedeploy", now - 900).verify("codedeploy", now), Ok(()));
    assert_eq!(Req::signed("codedeploy", now + 900).verify("codedeploy", now), Ok(()));
}

#[test]
fn presigned_expiry() {
    let signed_at = t("20261122T015807Z");
    let url = presign(
        &Method::GET,
        &"https://h.example/b/k".parse().unwrap(),
        &SigningParams {
            credentials: &Credentials::new(AKID, SECRET),
            region: "us-east-1",
            service: "s3",
            time: signed_at,
        },
        60,
    )
    .unwrap();
    let req = Req::new(Method::GET, url.path_and_query().unwrap().as_str(), &[("host", "h.example")], b"");
    assert_eq!(req.verify("s3", signed_at + 60), Ok(()));
    let err = req.verify("s3", signed_at + 61).unwrap_err();
    assert_error(
        &err,
        INVALID,
        "Signature expired: 20261122T015908Z is now later than 20261122T015907Z (20261122T015807Z + 60 sec.)",
    );
    assert_eq!(err.s3_code(), "AccessDenied");
    assert_eq!(err.s3_message(), "Request has expired");
    assert!(matches!(req.verify("s3", signed_at - 901), Err(AuthError::SignatureNotYetCurrent { .. })));
    // A presigned URL never signs its payload, so services other than S3 refuse it.
    let options = VerifyOptions { service: Some("s3"), ..VerifyOptions::default() };
    assert_eq!(req.verify_with(signed_at, &options), Err(AuthError::UnsignedPayloadNotAllowed));
    assert!(
        presign(
            &Method::GET,
            &"https://h.example/b/k".parse().unwrap(),
            &SigningParams {
                credentials: &Credentials::new(AKID, SECRET),
                region: "us-east-1",
                service: "s3",
                time: signed_at,
            },
            604_801,
        )
        .is_err()
    );
}

#[test]
fn missing_signed_header() {
    let now = t("20261122T015807Z");
    let mut req = Req::signed("codedeploy", now);
    req.headers.remove("x-amz-target");
    let err = req.verify("codedeploy", now).unwrap_err();
    assert_error(&err, INVALID, "Header 'x-amz-target' is listed in SignedHeaders but is not present in the request.");
    // HTTP/2 requests carry the host in the URI authority rather than a Host header.
    let mut req = Req::signed("codedeploy", now);
    req.headers.remove("host");
    assert!(matches!(req.verify("codedeploy", now), Err(AuthError::MissingSignedHeader { .. })));
    req.uri = "https://127.0.0.1:8443/".parse().unwrap();
    assert_eq!(req.verify("codedeploy", now), Ok(()));
}

#[test]
fn payload_hash_header() {
    let now = t("20261122T015807Z");
    // A hash that is not the body's.
    let mut req = Req::new(Method::PUT, "/b/k", &[("host", "h")], b"data");
    req.set("x-amz-content-sha256", &sha256_hex(b"other"));
    req.sign("s3", now);
    let err = req.verify("s3", now).unwrap_err();
    assert_error(&err, INVALID, "The provided 'x-amz-content-sha256' header does not match what was computed.");
    assert_eq!(err.s3_code(), "XAmzContentSHA256Mismatch");

    // Neither a hash nor an unsigned marker.
    let mut req = Req::new(Method::PUT, "/b/k", &[("host", "h")], b"data");
    req.set("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    req.sign("s3", now);
    let err = req.verify("s3", now).unwrap_err();
    assert_eq!(err.exception(), INVALID);
    assert_eq!(err, AuthError::InvalidContentSha256 { value: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned() });
    assert_eq!(err.s3_code(), "InvalidArgument");

    // UNSIGNED-PAYLOAD: accepted by S3 whatever the body, refused elsewhere.
    let mut req = Req::new(Method::PUT, "/b/k", &[("host", "h")], b"data");
    req.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    req.sign("s3", now);
    assert_eq!(req.verify("s3", now), Ok(()));
    req.body = b"anything".to_vec();
    assert_eq!(req.verify("s3", now), Ok(()));
    let mut req = Req::new(Method::POST, "/", &[("host", "h")], b"{}");
    req.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    req.sign("codedeploy", now);
    let err = req.verify("codedeploy", now).unwrap_err();
    assert_eq!(err, AuthError::UnsignedPayloadNotAllowed);
    assert_eq!(err.exception(), INVALID);

    // The S3 signer adds the body hash itself.
    let req = Req::new(Method::PUT, "/b/k", &[("host", "h")], b"data");
    let mut signed = req;
    signed.sign("s3", now);
    assert_eq!(signed.headers["x-amz-content-sha256"], sha256_hex(b"data"));
    assert_eq!(signed.verify("s3", now), Ok(()));
}

#[test]
fn signature_mismatch() {
    let now = t("20261122T015807Z");
    let mut req = Req::signed("codedeploy", now);
    req.body = b"{ }".to_vec();
    let err = req.verify("codedeploy", now).unwrap_err();
    assert_error(
        &err,
        INVALID,
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    );
    let AuthError::SignatureMismatch { canonical_request, string_to_sign } = &err else { panic!("{err:?}") };
    assert_eq!(
        canonical_request,
        &format!(
            "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:127.0.0.1:8443\nx-amz-date:20261122T015807Z\nx-amz-target:CodeDeploy_20141006.ListApplications\n\ncontent-type;host;x-amz-date;x-amz-target\n{}",
            sha256_hex(b"{ }")
        )
    );
    assert_eq!(
        string_to_sign,
        &format!(
            "AWS4-HMAC-SHA256\n20261122T015807Z\n20261122/us-east-1/codedeploy/aws4_request\n{}",
            sha256_hex(canonical_request.as_bytes())
        )
    );
    assert_eq!(err.s3_code(), "SignatureDoesNotMatch");

    // A malformed signature value is just a mismatch.
    let mut req = Req::signed("codedeploy", now);
    let header = req.headers["authorization"].to_str().unwrap();
    let header = format!("{}zz", &header[..header.len() - 2]);
    req.set("authorization", &header);
    assert!(matches!(req.verify("codedeploy", now), Err(AuthError::SignatureMismatch { .. })));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let credentials = Credentials {
        access_key_id: AKID.to_owned(),
        secret_access_key: SECRET.to_owned(),
        session_token: Some("SESSIONTOKEN".to_owned()),
    };
    let debug = format!("{credentials:?}");
    assert!(debug.contains(AKID) && !debug.contains(SECRET) && !debug.contains("SESSIONTOKEN"));
    let key = SigningKey::derive(SECRET, "20261122", "us-east-1", "s3");
    assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");

    // A mismatch with a session token: the token is redacted from the kept canonical request.
    let now = t("20261122T015807Z");
    let mut req = Req::new(Method::GET, "/", &[("host", "h")], b"");
    sign(
        &req.method,
        &req.uri,
        &mut req.headers,
        &req.body,
        &SigningParams { credentials: &credentials, region: "us-east-1", service: "codedeploy", time: now },
    )
    .unwrap();
    assert_eq!(req.verify("codedeploy", now), Ok(()));
    req.uri = "/other".parse().unwrap();
    let err = req.verify("codedeploy", now).unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("x-amz-security-token:<redacted>"), "{text}");
    assert!(!text.contains("SESSIONTOKEN") && !text.contains(SECRET), "{text}");
}

/// Like AWS, parameters may be separated by spaces alone and appear in any order.
#[test]
fn header_parameters_in_any_order_and_separation() {
    let now = t("20261122T015807Z");
    let req = Req::signed("codedeploy", now);
    let header = req.headers["authorization"].to_str().unwrap().to_owned();
    let (scheme, rest) = header.split_once(' ').unwrap();
    let mut parts: Vec<&str> = rest.split(", ").collect();
    parts.reverse();
    for separator in [" ", ",", " ,  "] {
        let mut variant = Req::signed("codedeploy", now);
        variant.set("authorization", &format!("{scheme}  {}", parts.join(separator)));
        assert_eq!(variant.verify("codedeploy", now), Ok(()), "{separator:?}");
    }
}

#[test]
fn request_parts_from_http_request() {
    let now = t("20261122T015807Z");
    let req = Req::signed("codedeploy", now);
    let mut builder = http::Request::builder().method(req.method.clone()).uri(req.uri.clone());
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(req.body.clone()).unwrap();
    let parts = RequestParts::from_request(&request);
    let auth = parse_authorization(parts.uri, parts.headers).unwrap();
    let options = VerifyOptions::for_service("codedeploy");
    assert_eq!(verify(&auth, &parts, SECRET, now, &options), Ok(()));
    assert!(verify(&auth, &parts, "wrong", now, &options).is_err());
}

#[test]
fn a_declared_payload_hash_can_be_taken_as_given() {
    use http::{HeaderMap, Method, Uri};
    use landfall_sigv4::{
        Credentials, RequestParts, SigningKey, SigningParams, VerifyOptions, parse_authorization, sha256_hex, sign,
        verify_with_key,
    };
    let time = 1_795_312_687;
    let uri: Uri = "http://127.0.0.1:7070/bucket/a%20b/key".parse().unwrap();
    let body = b"streamed later";
    let mut headers = HeaderMap::new();
    headers.insert("x-amz-content-sha256", sha256_hex(body).parse().unwrap());
    let credentials = Credentials::new("AKLFEXAMPLE000000000", "secret");
    let params = SigningParams { credentials: &credentials, region: "us-east-1", service: "s3", time };
    sign(&Method::PUT, &uri, &mut headers, body, &params).unwrap();
    let auth = parse_authorization(&uri, &headers).unwrap();
    let key = SigningKey::derive("secret", &auth.date, &auth.region, &auth.service);
    let unread = RequestParts { method: &Method::PUT, uri: &uri, headers: &headers, body: &[] };
    let trusting = VerifyOptions::for_service("s3").with_declared_payload_hash();
    // Without the body: accepted only when the caller takes the declared hash as given.
    assert!(verify_with_key(&auth, &unread, &key, time, &trusting).is_ok());
    assert!(verify_with_key(&auth, &unread, &key, time, &VerifyOptions::for_service("s3")).is_err());
    // The signature still covers the declared hash: another one does not verify.
    let mut other = headers.clone();
    other.insert("x-amz-content-sha256", sha256_hex(b"else").parse().unwrap());
    let changed = RequestParts { method: &Method::PUT, uri: &uri, headers: &other, body: &[] };
    assert!(verify_with_key(&auth, &changed, &key, time, &trusting).is_err());
}
