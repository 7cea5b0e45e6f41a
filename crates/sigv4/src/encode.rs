//! URI encoding and the canonical URI / query string of a canonical request.

use std::fmt::Write as _;

/// How the request path becomes the canonical URI.
///
/// Clients put the path on the wire already percent-encoded once; the canonical URI is derived
/// from that wire form, exactly as the AWS SDKs derive it, so that any client that encodes its
/// path in its own way still agrees with the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathEncoding {
    /// Every service except S3: remove `.`/`..` segments, collapse `//`, then URI-encode the
    /// (already encoded) path once more, so that `%` becomes `%25` ("double encoding").
    Double,
    /// S3: the path is used as sent (encoded once), without normalisation, because object keys
    /// may legitimately contain `//`, `./` and `../`.
    Single,
}

impl PathEncoding {
    /// The encoding AWS uses for `service`.
    pub fn for_service(service: &str) -> Self {
        if service == "s3" { PathEncoding::Single } else { PathEncoding::Double }
    }
}

/// Characters that SigV4 never encodes (RFC 3986 unreserved).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn encode_into(out: &mut String, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// URI-encodes `input` the SigV4 way: `A-Za-z0-9-_.~` are kept, every other byte becomes `%XX`
/// (upper-case hex). With `keep_slash`, `/` is kept too (for paths such as S3 object keys).
pub fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    encode_into(&mut out, input.as_bytes(), keep_slash);
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a query-string component: `%XX` escapes and `+` as a space (as the form decoding of
/// the AWS SDKs does). Malformed escapes are kept literally.
fn decode_query_component(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => match (b.get(i + 1).copied().and_then(hex_value), b.get(i + 2).copied().and_then(hex_value)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Decoded `(name, value)` pairs of a query string, in order; empty pairs (`a&&b`) are skipped
/// and a pair without `=` has an empty value.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_query_component(name), decode_query_component(value))
    })
}

/// Canonical query string: every parameter decoded, re-encoded the SigV4 way, sorted by name then
/// value, joined as `name=value` with `&`. `skip` names a parameter to leave out (the
/// `X-Amz-Signature` of a presigned URL, which cannot sign itself).
pub(crate) fn canonical_query(query: Option<&str>, skip: Option<&str>) -> String {
    let Some(query) = query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(name, _)| skip.is_none_or(|s| s.as_bytes() != name.as_slice()))
        .map(|(name, value)| {
            let mut n = String::with_capacity(name.len());
            encode_into(&mut n, &name, false);
            let mut v = String::with_capacity(value.len());
            encode_into(&mut v, &value, false);
            (n, v)
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Removes `.` and `..` segments and empty segments (`//`) from an absolute path, keeping a
/// trailing slash (RFC 3986 section 5.2.4, as AWS applies it).
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

/// Canonical URI of the wire-form `path` (as returned by `http::Uri::path`).
pub(crate) fn canonical_uri(path: &str, encoding: PathEncoding) -> String {
    match encoding {
        PathEncoding::Single if path.is_empty() => "/".to_owned(),
        PathEncoding::Single => path.to_owned(),
        PathEncoding::Double => {
            let normalized = normalize_path(path);
            let mut out = String::with_capacity(normalized.len() + 8);
            encode_into(&mut out, normalized.as_bytes(), true);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("AZaz09-_.~", false), "AZaz09-_.~");
        assert_eq!(uri_encode("a b/c+d=é*", false), "a%20b%2Fc%2Bd%3D%C3%A9%2A");
        assert_eq!(uri_encode("a b/c", true), "a%20b/c");
    }

    #[test]
    fn decoding() {
        assert_eq!(decode_query_component("a%20b+c%2b"), b"a b c+");
        assert_eq!(decode_query_component("%zz%4"), b"%zz%4");
        assert_eq!(decode_query_component("%"), b"%");
        assert_eq!(decode_query_component("%41"), b"A");
        assert_eq!(decode_query_component("x%4"), b"x%4");
        assert_eq!(decode_query_component("%c3%A9"), "é".as_bytes());
    }

    #[test]
    fn query() {
        assert_eq!(canonical_query(None, None), "");
        assert_eq!(canonical_query(Some(""), None), "");
        assert_eq!(canonical_query(Some("b=2&a=3&a=1&c&&d=x+y&e=%7e%41"), None), "a=1&a=3&b=2&c=&d=x%20y&e=~A");
        assert_eq!(canonical_query(Some("X-Amz-Signature=abc&X-Amz-Date=1"), Some("X-Amz-Signature")), "X-Amz-Date=1");
        // Sorting is by encoded bytes: upper case before lower case.
        assert_eq!(canonical_query(Some("b=1&B=2&_=3"), None), "B=2&_=3&b=1");
    }

    #[test]
    fn paths() {
        let d = PathEncoding::Double;
        assert_eq!(canonical_uri("", d), "/");
        assert_eq!(canonical_uri("/", d), "/");
        assert_eq!(canonical_uri("/a/b", d), "/a/b");
        assert_eq!(canonical_uri("/a//b/./c/../d/", d), "/a/b/d/");
        assert_eq!(canonical_uri("/a/b/..", d), "/a/");
        assert_eq!(canonical_uri("/../..", d), "/");
        assert_eq!(canonical_uri("/a/.", d), "/a/");
        assert_eq!(canonical_uri("/a%20b/%C3%A9", d), "/a%2520b/%25C3%25A9");
        assert_eq!(canonical_uri("/a:b", d), "/a%3Ab");
        let s = PathEncoding::Single;
        assert_eq!(canonical_uri("", s), "/");
        assert_eq!(canonical_uri("/b//k/../x%20y", s), "/b//k/../x%20y");
    }
}
