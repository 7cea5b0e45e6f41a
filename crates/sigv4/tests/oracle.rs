//! The official `aws-sigv4` crate as an oracle: what it signs, we verify; what we sign, it signs
//! identically.

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign as aws_sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use landfall_sigv4::{
    AuthError, Credentials, RequestParts, SigningParams, VerifyOptions, parse_authorization, presign, sign, verify,
};
use std::time::{Duration, UNIX_EPOCH};

const AKID: &str = "AKIDEXAMPLE0000000001";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2026-11-22T01:58:07Z.
const TIME: i64 = 1_795_312_687;

struct Case {
    name: &'static str,
    method: &'static str,
    /// Absolute URL, path and query already percent-encoded (wire form).
    url: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    service: &'static str,
}

const JSON: &str = "application/x-amz-json-1.1";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "codedeploy json call",
            method: "POST",
            url: "https://codedeploy.us-east-1.amazonaws.com/",
            headers: &[("content-type", JSON), ("x-amz-target", "CodeDeploy_20141006.ListApplications")],
            body: b"{}",
            service: "codedeploy",
        },
        Case {
            name: "commands call on a custom port",
            method: "POST",
            url: "https://127.0.0.1:8444/",
            headers: &[
                ("content-type", JSON),
                ("x-amz-target", "CodeDeployCommandService_v20141006.PollHostCommand"),
                ("x-amz-codedeploy-agent-version", "UNKNOWN_VERSION"),
            ],
            body: br#"{"HostIdentifier":"arn:aws:iam::123456789012:user/test-onprem"}"#,
            service: "codedeploy-commands",
        },
        Case {
            name: "empty body",
            method: "GET",
            url: "https://example.com/",
            headers: &[],
            body: b"",
            service: "codedeploy",
        },
        Case {
            name: "path with spaces and unicode",
            method: "GET",
            url: "https://example.com/a%20b/caf%C3%A9/%E2%82%AC%2Fx",
            headers: &[],
            body: b"",
            service: "codedeploy",
        },
        Case {
            name: "path with dot segments and double slashes",
            method: "GET",
            url: "https://example.com/a/./b/../c//d/",
            headers: &[],
            body: b"",
            service: "codedeploy",
        },
        Case {
            name: "path with reserved characters",
            method: "GET",
            url: "https://example.com/x:y/(z)!*'@,$;=+",
            headers: &[],
            body: b"",
            service: "codedeploy",
        },
        Case {
            name: "repeated and unsorted query keys",
            method: "GET",
            url: "https://example.com/p?b=2&a=3&a=1&C=x&c=&z=%20y&q=a%2Bb&e=%C3%A9&u=~-._",
            headers: &[],
            body: b"",
            service: "codedeploy",
        },
        Case {
            name: "query with plus and empty value",
            method: "GET",
            url: "https://example.com/p?k=a+b&flag&empty=",
            headers: &[],
            body: b"",
            service: "codedeploy",
        },
        Case {
            name: "header values with runs of spaces and repeats",
            method: "POST",
            url: "https://example.com/",
            headers: &[
                ("content-type", "text/plain;   charset=utf-8"),
                ("x-amz-meta-a", "  one   two    three  "),
                ("x-amz-meta-b", "first"),
                ("x-amz-meta-b", "second  value"),
                ("X-Amz-Meta-Mixed-Case", "v"),
                ("my-header", "x    y"),
            ],
            body: b"hello world",
            service: "codedeploy",
        },
        Case {
            name: "s3 get with odd key",
            method: "GET",
            url: "https://bucket.s3.us-east-1.amazonaws.com/dir//sub/./x/../key%20with%20space%2Fslash",
            headers: &[],
            body: b"",
            service: "s3",
        },
        Case {
            name: "s3 get with query",
            method: "GET",
            url: "http://localhost:9000/bucket?list-type=2&prefix=a%2Fb&delimiter=%2F",
            headers: &[],
            body: b"",
            service: "s3",
        },
        Case {
            name: "s3 put",
            method: "PUT",
            url: "https://s3.example.com/bucket/bundle.zip",
            headers: &[("content-type", "application/zip"), ("x-amz-meta-etag", "abc")],
            body: b"PK\x03\x04 not really a zip",
            service: "s3",
        },
    ]
}

fn host_of(uri: &Uri) -> String {
    let default = match uri.scheme_str() {
        Some("https") => Some(443),
        _ => Some(80),
    };
    match uri.port_u16() {
        Some(p) if Some(p) != default => format!("{}:{p}", uri.host().unwrap()),
        _ => uri.host().unwrap().to_owned(),
    }
}

fn aws_settings(service: &str) -> SigningSettings {
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    settings
}

fn build_request(case: &Case) -> Request<Vec<u8>> {
    let mut builder = Request::builder().method(case.method).uri(case.url);
    for (name, value) in case.headers {
        builder = builder.header(*name, *value);
    }
    builder.body(case.body.to_vec()).unwrap()
}

/// Signs `request` in place with aws-sigv4 (header form, or query form with `expires`).
fn aws_sign_request(
    request: &mut Request<Vec<u8>>,
    service: &str,
    time: i64,
    token: Option<&str>,
    expires: Option<u64>,
) {
    let credentials = aws_credential_types::Credentials::new(AKID, SECRET, token.map(str::to_owned), None, "test");
    let identity = credentials.into();
    let mut settings = aws_settings(service);
    if let Some(expires) = expires {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(UNIX_EPOCH + Duration::from_secs(time as u64))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> =
        request.headers().iter().map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
    let body = if expires.is_some() { SignableBody::UnsignedPayload } else { SignableBody::Bytes(request.body()) };
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        body,
    )
    .unwrap();
    let (instructions, _signature) = aws_sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(request);
}

/// The request as Landfall's server sees it: origin-form URI plus a Host header.
struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn from(request: &Request<Vec<u8>>) -> Self {
        let mut headers = request.headers().clone();
        if !headers.contains_key("host") {
            headers.insert("host", HeaderValue::from_str(&host_of(request.uri())).unwrap());
        }
        Received {
            method: request.method().clone(),
            uri: request.uri().path_and_query().unwrap().as_str().parse().unwrap(),
            headers,
            body: request.body().clone(),
        }
    }

    fn verify(&self, service: &str, now: i64) -> Result<(), AuthError> {
        let auth = parse_authorization(&self.uri, &self.headers)?;
        verify(
            &auth,
            &RequestParts { method: &self.method, uri: &self.uri, headers: &self.headers, body: &self.body },
            SECRET,
            now,
            &VerifyOptions::for_service(service).with_region("us-east-1"),
        )
    }
}

#[test]
fn we_verify_what_aws_signs() {
    for case in cases() {
        for token in [None, Some("FwoGZXIvYXdzEJr//////////token+/=")] {
            let mut request = build_request(&case);
            aws_sign_request(&mut request, case.service, TIME, token, None);
            let received = Received::from(&request);
            assert_eq!(received.verify(case.service, TIME + 60), Ok(()), "{} (token {token:?})", case.name);

            // The same request, altered, must fail; otherwise this test could not fail.
            let mut altered = Received::from(&request);
            altered.body.push(b'!');
            let mut altered_query = Received::from(&request);
            let pq = altered_query.uri.path_and_query().unwrap().as_str();
            altered_query.uri =
                if pq.contains('?') { format!("{pq}&extra=1") } else { format!("{pq}?extra=1") }.parse().unwrap();
            let mut other_secret = Received::from(&request);
            let mut headers = other_secret.headers.clone();
            let authorization = headers["authorization"].to_str().unwrap().to_owned();
            // Flip the last hex digit of the signature.
            let flipped = match authorization.as_bytes()[authorization.len() - 1] {
                b'0' => '1',
                _ => '0',
            };
            let tampered = format!("{}{flipped}", &authorization[..authorization.len() - 1]);
            headers.insert("authorization", HeaderValue::from_str(&tampered).unwrap());
            other_secret.headers = headers;
            for bad in [altered, altered_query, other_secret] {
                assert!(bad.verify(case.service, TIME).is_err(), "{} accepted after alteration", case.name);
            }
        }
    }
}

#[test]
fn we_sign_exactly_like_aws() {
    for case in cases() {
        for token in [None, Some("session/token+=")] {
            let mut ours = build_request(&case);
            let credentials = Credentials {
                access_key_id: AKID.to_owned(),
                secret_access_key: SECRET.to_owned(),
                session_token: token.map(str::to_owned),
            };
            let uri = ours.uri().clone();
            let method = ours.method().clone();
            let body = ours.body().clone();
            sign(
                &method,
                &uri,
                ours.headers_mut(),
                &body,
                &SigningParams { credentials: &credentials, region: "us-east-1", service: case.service, time: TIME },
            )
            .unwrap();

            // aws-sigv4 signs every header but a few; give it exactly the headers we signed.
            let mut theirs = build_request(&case);
            theirs.headers_mut().retain_signed();
            theirs.headers_mut().insert("host", ours.headers()["host"].clone());
            aws_sign_request(&mut theirs, case.service, TIME, token, None);

            assert_eq!(ours.headers()["authorization"], theirs.headers()["authorization"], "{}", case.name);
            assert_eq!(ours.headers()["x-amz-date"], theirs.headers()["x-amz-date"]);
            assert_eq!(
                ours.headers().get("x-amz-content-sha256"),
                theirs.headers().get("x-amz-content-sha256"),
                "{}",
                case.name
            );
            // And our own verifier accepts our signature.
            assert_eq!(Received::from(&ours).verify(case.service, TIME), Ok(()), "{}", case.name);
        }
    }
}

/// Keeps only the headers Landfall's signer signs.
trait RetainSigned {
    fn retain_signed(&mut self);
}

impl RetainSigned for HeaderMap {
    fn retain_signed(&mut self) {
        let names: Vec<HeaderName> = self.keys().cloned().collect();
        for name in names {
            let n = name.as_str();
            if !(n == "host" || n == "content-type" || n == "x-amz-target" || n.starts_with("x-amz-")) {
                self.remove(&name);
            }
        }
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        (n == name).then(|| v.to_owned())
    })
}

#[test]
fn presigned_urls_agree() {
    let urls = [
        "https://bucket.s3.us-east-1.amazonaws.com/bundles/app%20v1.zip",
        "https://127.0.0.1:8443/bucket/key/with//slashes.tar.gz?versionId=3%2B4&x-id=GetObject",
        "http://localhost/b/k",
    ];
    for url in urls {
        for token in [None, Some("tok/en+=")] {
            // aws-sigv4 presigns; we verify.
            let mut request = Request::builder().uri(url).body(Vec::new()).unwrap();
            aws_sign_request(&mut request, "s3", TIME, token, Some(3600));
            let received = Received::from(&request);
            assert_eq!(received.verify("s3", TIME + 3600), Ok(()), "{url}");
            assert!(matches!(received.verify("s3", TIME + 3601), Err(AuthError::PresignedUrlExpired { .. })));
            // The signature parameter is not part of what is signed, but everything else is.
            let tampered: Uri =
                received.uri.to_string().replace("X-Amz-Expires=3600", "X-Amz-Expires=7200").parse().unwrap();
            let mut altered = Received::from(&request);
            altered.uri = tampered;
            assert!(matches!(altered.verify("s3", TIME), Err(AuthError::SignatureMismatch { .. })));

            // We presign; aws-sigv4 computes the same signature.
            let credentials = Credentials {
                access_key_id: AKID.to_owned(),
                secret_access_key: SECRET.to_owned(),
                session_token: token.map(str::to_owned),
            };
            let ours = presign(
                &Method::GET,
                &url.parse().unwrap(),
                &SigningParams { credentials: &credentials, region: "us-east-1", service: "s3", time: TIME },
                3600,
            )
            .unwrap();
            assert_eq!(query_param(&ours, "X-Amz-Signature"), query_param(request.uri(), "X-Amz-Signature"), "{url}");
            let ours_request = Request::builder().uri(ours).body(Vec::new()).unwrap();
            assert_eq!(Received::from(&ours_request).verify("s3", TIME + 10), Ok(()), "{url}");
        }
    }
}

/// Only S3 treats the path as already canonical: the same request signed for S3 does not verify
/// with double encoding, and vice versa.
#[test]
fn path_encoding_matters() {
    let case = Case {
        name: "encoded path",
        method: "GET",
        url: "https://example.com/a%20b/./c",
        headers: &[],
        body: b"",
        service: "s3",
    };
    let mut request = build_request(&case);
    aws_sign_request(&mut request, "s3", TIME, None, None);
    let received = Received::from(&request);
    assert_eq!(received.verify("s3", TIME), Ok(()));
    let auth = parse_authorization(&received.uri, &received.headers).unwrap();
    let parts =
        RequestParts { method: &received.method, uri: &received.uri, headers: &received.headers, body: &received.body };
    let double =
        VerifyOptions { path_encoding: landfall_sigv4::PathEncoding::Double, ..VerifyOptions::for_service("s3") };
    assert!(matches!(verify(&auth, &parts, SECRET, TIME, &double), Err(AuthError::SignatureMismatch { .. })));
}

/// The same two checks over requests made up at random (a fixed seed and a bounded number of
/// cases, so the suite stays fast and a failure reproduces): paths, queries, headers and bodies
/// of every shape both implementations must agree on.
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::*;

    fn config() -> Config {
        Config { cases: 200, failure_persistence: None, rng_seed: RngSeed::Fixed(0x5167_4e05), ..Config::default() }
    }

    /// A path segment or query word as a person would type it, percent-encoded for the wire.
    fn word() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ._~!$'()*+,;=:@é€/-]{0,8}".prop_map(|raw| landfall_sigv4::uri_encode(&raw, true))
    }

    fn wire_url() -> impl Strategy<Value = String> {
        (prop::collection::vec(word(), 0..4), prop::collection::vec((word(), word()), 0..4), any::<bool>()).prop_map(
            |(segments, query, trailing_slash)| {
                let mut url = format!("https://example.com/{}", segments.join("/"));
                if trailing_slash && !segments.is_empty() {
                    url.push('/');
                }
                if !query.is_empty() {
                    let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    url.push('?');
                    url.push_str(&pairs.join("&"));
                }
                url
            },
        )
    }

    fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("x-(amz-meta|test)-[a-z]{1,6}", "[ -~]{0,24}"), 0..4)
    }

    fn request(method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Request<Vec<u8>> {
        let mut builder = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(body.to_vec()).unwrap()
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn what_aws_signs_we_verify_and_a_changed_body_we_refuse(
            method in prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD"]),
            url in wire_url(),
            headers in headers(),
            body in prop::collection::vec(any::<u8>(), 0..200),
            service in prop::sample::select(vec!["codedeploy", "codedeploy-commands", "s3"]),
        ) {
            let mut signed = request(method, &url, &headers, &body);
            aws_sign_request(&mut signed, service, TIME, None, None);
            let received = Received::from(&signed);
            prop_assert_eq!(received.verify(service, TIME + 30), Ok(()), "{} {}", method, url);
            let mut altered = Received::from(&signed);
            altered.body.push(b'!');
            prop_assert!(altered.verify(service, TIME).is_err());
        }

        #[test]
        fn we_sign_as_aws_signs(
            method in prop::sample::select(vec!["GET", "PUT", "POST"]),
            url in wire_url(),
            headers in headers(),
            body in prop::collection::vec(any::<u8>(), 0..200),
            service in prop::sample::select(vec!["codedeploy", "s3"]),
        ) {
            let mut ours = request(method, &url, &headers, &body);
            let credentials =
                Credentials { access_key_id: AKID.to_owned(), secret_access_key: SECRET.to_owned(), session_token: None };
            let (uri, method_value) = (ours.uri().clone(), ours.method().clone());
            sign(
                &method_value,
                &uri,
                ours.headers_mut(),
                &body,
                &SigningParams { credentials: &credentials, region: "us-east-1", service, time: TIME },
            )
            .unwrap();
            let mut theirs = request(method, &url, &headers, &body);
            theirs.headers_mut().retain_signed();
            theirs.headers_mut().insert("host", ours.headers()["host"].clone());
            aws_sign_request(&mut theirs, service, TIME, None, None);
            prop_assert_eq!(&ours.headers()["authorization"], &theirs.headers()["authorization"], "{}", url);
            prop_assert_eq!(Received::from(&ours).verify(service, TIME), Ok(()));
        }

        #[test]
        fn any_authorization_is_answered_with_an_error_not_a_panic(
            authorization in "(AWS4-HMAC-SHA256 )?[ -~]{0,160}",
            query in "[ -~]{0,80}",
        ) {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&authorization) {
                headers.insert("authorization", value);
            }
            headers.insert("x-amz-date", HeaderValue::from_static("20261122T015807Z"));
            let uri: Uri = format!("/?{}", landfall_sigv4::uri_encode(&query, false)).parse().unwrap_or_else(|_| Uri::from_static("/"));
            if let Ok(auth) = parse_authorization(&uri, &headers) {
                let parts = RequestParts { method: &Method::POST, uri: &uri, headers: &headers, body: b"" };
                let verified = verify(&auth, &parts, SECRET, TIME, &VerifyOptions::for_service("codedeploy"));
                prop_assert!(verified.is_err());
            } else if let Err(error) = parse_authorization(&uri, &headers) {
                prop_assert!(!error.message().is_empty());
            }
        }
    }
}
