//! Any request as the verifier sees it: an Authorization header, an x-amz-date, a path and query,
//! and a body, split out of the input. Parsing and verifying answer an error (or, by chance, a
//! verdict), never panic.
#![no_main]

use http::{HeaderMap, HeaderValue, Method, Uri};
use landfall_sigv4::{RequestParts, VerifyOptions, parse_authorization, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.splitn(4, '\n');
    let (authorization, date, target, body) =
        (fields.next().unwrap_or(""), fields.next().unwrap_or(""), fields.next().unwrap_or("/"), fields.next().unwrap_or(""));
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(authorization) {
        headers.insert("authorization", value);
    }
    if let Ok(value) = HeaderValue::from_str(date) {
        headers.insert("x-amz-date", value);
    }
    headers.insert("host", HeaderValue::from_static("landfall.example"));
    let Ok(uri) = target.parse::<Uri>() else { return };
    for service in ["codedeploy", "s3"] {
        match parse_authorization(&uri, &headers) {
            Ok(auth) => {
                let parts = RequestParts { method: &Method::PUT, uri: &uri, headers: &headers, body: body.as_bytes() };
                let _ = verify(&auth, &parts, "secret", 1_795_312_687, &VerifyOptions::for_service(service));
            }
            Err(error) => assert!(!error.message().is_empty()),
        }
    }
});
