//! Pieces shared by signing and verification: canonical request, string to sign, signing key.

use hmac::{Hmac, Mac};
use http::{HeaderMap, Uri};
use sha2::{Digest, Sha256};
use std::fmt;

/// The only algorithm supported (SigV4a, `AWS4-ECDSA-P256-SHA256`, is not).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Payload hash of requests whose body is not signed (S3, presigned URLs).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Payload hash of S3 aws-chunked uploads whose chunks are unsigned but carry a trailing checksum.
pub const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The key that signs every request of one access key, day, region and service. Deriving it costs
/// four HMACs, so a server verifying many requests should cache it (keyed by access key id, date,
/// region and service) and call [`crate::verify_with_key`].
///
/// Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    /// Derives the key: HMAC chain `"AWS4" + secret` → date (`YYYYMMDD`) → region → service →
    /// `"aws4_request"`.
    pub fn derive(secret_access_key: &str, date: &str, region: &str, service: &str) -> Self {
        let mut k_secret = Vec::with_capacity(4 + secret_access_key.len());
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret_access_key.as_bytes());
        let k_date = hmac_sha256(&k_secret, date.as_bytes());
        let k_region = hmac_sha256(&k_date, region.as_bytes());
        let k_service = hmac_sha256(&k_region, service.as_bytes());
        SigningKey(hmac_sha256(&k_service, b"aws4_request"))
    }

    /// Lower-case hex signature of `string_to_sign` (also what S3 uses for POST policies and
    /// chunk signatures).
    pub fn sign(&self, string_to_sign: &[u8]) -> String {
        hex::encode(self.signature_bytes(string_to_sign))
    }

    pub(crate) fn signature_bytes(&self, string_to_sign: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, string_to_sign)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// `date/region/service/aws4_request`.
pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// Appends a header value with leading/trailing spaces and tabs removed and runs of spaces
/// collapsed to one (the SigV4 "trimall").
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != b' ' && b != b'\t');
    let Some(start) = start else { return };
    let end = value.iter().rposition(|&b| b != b' ' && b != b'\t').unwrap_or(start);
    let mut previous_space = false;
    for &b in &value[start..=end] {
        if b == b' ' {
            if previous_space {
                continue;
            }
            previous_space = true;
        } else {
            previous_space = false;
        }
        out.push(b);
    }
}

/// Canonical headers block: `name:value\n` for each of `names`, in the given order, multiple
/// values joined with `,`. Values are bytes: a non-UTF-8 value is signed as sent.
///
/// A missing `host` falls back to the URI's authority, because HTTP/2 carries it in
/// `:authority` rather than a `Host` header. Any other missing header is an error naming it.
pub(crate) fn canonical_headers<S: AsRef<str>>(names: &[S], uri: &Uri, headers: &HeaderMap) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(names.len() * 48);
    for name in names {
        let name = name.as_ref();
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            match uri.authority() {
                Some(authority) if name.eq_ignore_ascii_case("host") => {
                    out.extend_from_slice(authority.as_str().as_bytes());
                }
                _ => return Err(name.to_owned()),
            }
        }
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(&mut out, value.as_bytes());
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// The canonical request: method, canonical URI, canonical query, canonical headers, signed
/// headers and payload hash, separated by newlines.
pub(crate) fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &[u8],
    signed_headers: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        method.len()
            + canonical_uri.len()
            + canonical_query.len()
            + canonical_headers.len()
            + signed_headers.len()
            + payload_hash.len()
            + 5,
    );
    for part in [method, canonical_uri, canonical_query] {
        out.extend_from_slice(part.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(canonical_headers);
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// `AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hex SHA-256 of the canonical request>`.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request))
}

/// Canonical request as text for logs, with session-token values hidden.
pub(crate) fn redacted(canonical_request: &[u8]) -> String {
    let text = String::from_utf8_lossy(canonical_request);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i == 2 {
            // The query line: presigned URLs carry the token as a parameter.
            for (j, pair) in line.split('&').enumerate() {
                if j > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((name, _)) if name == "X-Amz-Security-Token" => {
                        out.push_str(name);
                        out.push_str("=<redacted>");
                    }
                    _ => out.push_str(pair),
                }
            }
        } else if line.get(..21).is_some_and(|p| p.eq_ignore_ascii_case("x-amz-security-token:")) {
            out.push_str("x-amz-security-token:<redacted>");
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// The worked example of the AWS documentation (IAM ListUsers, key of the docs' example secret).
    #[test]
    fn documented_signing_key() {
        let key = SigningKey::derive("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam");
        assert_eq!(hex::encode(key.0), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
        let sts = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
        assert_eq!(key.sign(sts.as_bytes()), "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
        assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
    }

    #[test]
    fn trimall() {
        let mut out = Vec::new();
        push_trimmed(&mut out, b"  a   b \t c  ");
        assert_eq!(out, b"a b \t c");
        out.clear();
        push_trimmed(&mut out, b"   ");
        assert_eq!(out, b"");
    }

    #[test]
    fn headers_block() {
        let mut h = HeaderMap::new();
        h.append("x-multi", HeaderValue::from_static(" one  two "));
        h.append("x-multi", HeaderValue::from_static("three"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let uri: Uri = "https://example.com:8443/x".parse().unwrap();
        let block = canonical_headers(&["content-type", "host", "x-multi"], &uri, &h).unwrap();
        assert_eq!(
            String::from_utf8(block).unwrap(),
            "content-type:text/plain\nhost:example.com:8443\nx-multi:one two,three\n"
        );
        assert_eq!(canonical_headers(&["x-absent"], &uri, &h), Err("x-absent".to_owned()));
        let relative: Uri = "/x".parse().unwrap();
        assert_eq!(canonical_headers(&["host"], &relative, &h), Err("host".to_owned()));
    }

    #[test]
    fn redaction() {
        let creq = b"GET\n/\nX-Amz-Date=1&X-Amz-Security-Token=SECRETTOKEN\nhost:h\nx-amz-security-token:SECRETTOKEN\n\nhost;x-amz-security-token\nUNSIGNED-PAYLOAD";
        let r = redacted(creq);
        assert!(!r.contains("SECRETTOKEN"), "{r}");
        assert!(r.contains("X-Amz-Date=1&X-Amz-Security-Token=<redacted>\nhost:h\n"));
    }
}
