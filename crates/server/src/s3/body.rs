//! Request bodies: streamed (to a temporary file, or for small XML documents to memory) while
//! their MD5, declared SHA-256 and additional checksum are computed, then checked against what the
//! client declared. Nothing is published until every check has passed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::BodyExt as _;
use hyper::body::Bytes;
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use hyper::{HeaderMap, StatusCode};
use landfall_listener::{BodyError, RequestBody};
use md5::Digest as _;

use super::checksum::{self, Algorithm, Hasher};
use super::chunked::Decoder;
use super::error::{S3Error, S3Result};
use super::objects::TempFile;

/// What the client declared about a body, read from its headers.
pub struct Expect {
    /// The hex SHA-256 of `x-amz-content-sha256` (the signature covered it, not the bytes).
    sha256: Option<String>,
    content_md5: Option<Vec<u8>>,
    /// The additional checksum to compute, and its value when sent as a header.
    checksum: Option<(Algorithm, Option<Vec<u8>>)>,
    /// The checksum promised as an aws-chunked trailer (`x-amz-trailer`).
    trailer: Option<Algorithm>,
    aws_chunked: bool,
    decoded_length: Option<u64>,
    max_size: u64,
}

/// What was received.
pub struct Received {
    pub size: u64,
    pub md5: [u8; 16],
    /// The verified additional checksum, as (algorithm, base64 value).
    pub checksum: Option<(Algorithm, String)>,
}

impl Received {
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim)
}

impl Expect {
    /// Reads the declarations of `headers`; `max_size` is the largest body accepted.
    pub fn from_headers(headers: &HeaderMap, max_size: u64) -> S3Result<Expect> {
        let declared = header(headers, "x-amz-content-sha256").unwrap_or("");
        let sha256 = (declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| declared.to_ascii_lowercase());
        let aws_chunked = declared == landfall_sigv4::STREAMING_UNSIGNED_PAYLOAD_TRAILER
            || header(headers, CONTENT_ENCODING.as_str())
                .is_some_and(|value| value.split(',').any(|coding| coding.trim().eq_ignore_ascii_case("aws-chunked")));

        let decoded_length = match header(headers, "x-amz-decoded-content-length") {
            None => None,
            Some(value) => Some(value.parse::<u64>().map_err(|_| {
                S3Error::invalid_argument(
                    "x-amz-decoded-content-length is not a number",
                    "x-amz-decoded-content-length",
                    value,
                )
            })?),
        };
        let length = if aws_chunked {
            decoded_length
        } else {
            header(headers, CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok())
        };
        if length.is_some_and(|length| length > max_size) {
            return Err(S3Error::entity_too_large(max_size));
        }

        let content_md5 = match header(headers, "content-md5") {
            None => None,
            Some(value) => match BASE64.decode(value) {
                Ok(bytes) if bytes.len() == 16 => Some(bytes),
                _ => {
                    return Err(S3Error::new(
                        StatusCode::BAD_REQUEST,
                        "InvalidDigest",
                        "The Content-MD5 you specified was invalid.",
                    )
                    .with("Content-MD5", value));
                }
            },
        };

        let mut checksum = None;
        for algorithm in Algorithm::ALL {
            let Some(value) = header(headers, algorithm.header()) else { continue };
            if checksum.is_some() {
                return Err(S3Error::invalid_request(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            let bytes = algorithm.decode(value).ok_or_else(|| {
                S3Error::invalid_request(format!("Value for {} header is invalid.", algorithm.header()))
            })?;
            checksum = Some((algorithm, Some(bytes)));
        }
        let trailer = match header(headers, "x-amz-trailer") {
            None => None,
            Some(name) => {
                let algorithm = Algorithm::from_header(name).ok_or_else(|| {
                    S3Error::invalid_request(format!(
                        "The value specified in the x-amz-trailer header is not supported: {name}"
                    ))
                })?;
                if !aws_chunked {
                    return Err(S3Error::invalid_request("x-amz-trailer needs an aws-chunked body"));
                }
                if checksum.is_some() {
                    return Err(S3Error::invalid_request(
                        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                    ));
                }
                Some(algorithm)
            }
        };
        // An algorithm named without a value: S3 computes and keeps the checksum.
        if checksum.is_none() && trailer.is_none() {
            let named =
                header(headers, "x-amz-sdk-checksum-algorithm").or_else(|| header(headers, "x-amz-checksum-algorithm"));
            if let Some(name) = named {
                let algorithm = Algorithm::from_name(name).ok_or_else(|| {
                    S3Error::invalid_argument(
                        "Checksum algorithm provided is unsupported.",
                        "x-amz-checksum-algorithm",
                        name,
                    )
                })?;
                checksum = Some((algorithm, None));
            }
        }
        Ok(Expect { sha256, content_md5, checksum, trailer, aws_chunked, decoded_length, max_size })
    }
}

/// Where a body goes.
pub enum Sink<'a> {
    File(&'a mut TempFile),
    Memory(&'a mut Vec<u8>),
}

impl Sink<'_> {
    async fn write(&mut self, data: &[u8]) -> S3Result<()> {
        match self {
            Sink::File(file) => Ok(file.write(data).await?),
            Sink::Memory(buffer) => {
                buffer.extend_from_slice(data);
                Ok(())
            }
        }
    }
}

struct Digests {
    md5: md5::Md5,
    checksum: Option<Hasher>,
    size: u64,
    max_size: u64,
}

impl Digests {
    fn update(&mut self, data: &[u8]) -> S3Result<()> {
        self.size += data.len() as u64;
        if self.size > self.max_size {
            return Err(S3Error::entity_too_large(self.max_size));
        }
        self.md5.update(data);
        if let Some(checksum) = &mut self.checksum {
            checksum.update(data);
        }
        Ok(())
    }
}

/// Streams `body` into `sink` and checks it against `expect`.
pub async fn receive(mut body: RequestBody, sink: &mut Sink<'_>, expect: &Expect) -> S3Result<Received> {
    let algorithm = expect.checksum.as_ref().map(|(algorithm, _)| *algorithm).or(expect.trailer);
    let mut digests = Digests {
        md5: md5::Md5::new(),
        checksum: algorithm.map(Algorithm::hasher),
        size: 0,
        max_size: expect.max_size,
    };
    let mut sha256 = expect.sha256.as_ref().map(|_| <sha2::Sha256 as sha2::Digest>::new());
    let mut decoder = expect.aws_chunked.then(Decoder::new);
    let mut http_trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| match error {
            BodyError::TimedOut(_) => S3Error::new(
                StatusCode::BAD_REQUEST,
                "RequestTimeout",
                "Your socket connection to the server was not read from or written to within the timeout period.",
            ),
            BodyError::Broken(error) => {
                tracing::debug!(%error, "S3 request body ended early");
                S3Error::incomplete_body()
            }
        })?;
        let mut data: Bytes = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                http_trailers = frame.into_trailers().ok();
                continue;
            }
        };
        if let Some(sha256) = &mut sha256 {
            sha2::Digest::update(sha256, &data);
        }
        match &mut decoder {
            None => {
                digests.update(&data)?;
                sink.write(&data).await?;
            }
            Some(decoder) => {
                while let Some(chunk) = decoder.next(&mut data)? {
                    digests.update(&chunk)?;
                    sink.write(&chunk).await?;
                }
            }
        }
    }
    let chunk_trailers = match decoder {
        Some(decoder) => decoder.finish()?,
        None => Vec::new(),
    };
    if expect.decoded_length.is_some_and(|length| length != digests.size) {
        return Err(S3Error::incomplete_body());
    }

    // The signed SHA-256 first: a body that is not what was signed is refused as such.
    if let (Some(declared), Some(sha256)) = (&expect.sha256, sha256) {
        let computed = hex::encode(sha2::Digest::finalize(sha256));
        if &computed != declared {
            return Err(S3Error::new(
                StatusCode::BAD_REQUEST,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
            .with("ClientComputedContentSHA256", declared)
            .with("S3ComputedContentSHA256", computed));
        }
    }
    let md5: [u8; 16] = digests.md5.finalize().into();
    if let Some(expected) = &expect.content_md5
        && expected.as_slice() != md5
    {
        return Err(S3Error::new(
            StatusCode::BAD_REQUEST,
            "BadDigest",
            "The Content-MD5 you specified did not match what we received.",
        )
        .with("ExpectedDigest", BASE64.encode(expected))
        .with("CalculatedDigest", BASE64.encode(md5)));
    }

    let checksum = match (algorithm, digests.checksum) {
        (Some(algorithm), Some(hasher)) => {
            let expected = match (&expect.checksum, expect.trailer) {
                (Some((_, value)), _) => value.clone(),
                (None, Some(_)) => Some(trailer_value(algorithm, &chunk_trailers, http_trailers.as_ref())?),
                (None, None) => None,
            };
            let computed = hasher.finish();
            if expected.as_ref().is_some_and(|expected| expected != &computed) {
                return Err(S3Error::new(
                    StatusCode::BAD_REQUEST,
                    "BadDigest",
                    format!("The {} you specified did not match the calculated checksum.", algorithm.name()),
                ));
            }
            Some((algorithm, checksum::base64(&computed)))
        }
        _ => None,
    };
    Ok(Received { size: digests.size, md5, checksum })
}

/// The value of the checksum trailer `x-amz-trailer` promised: in the aws-chunked body, or
/// (from clients that send it so) in the HTTP trailers.
fn trailer_value(
    algorithm: Algorithm,
    chunk_trailers: &[(String, String)],
    http: Option<&HeaderMap>,
) -> S3Result<Vec<u8>> {
    let value = chunk_trailers
        .iter()
        .find(|(name, _)| name == algorithm.header())
        .map(|(_, value)| value.as_str())
        .or_else(|| http.and_then(|headers| header(headers, algorithm.header())));
    let value = value.ok_or_else(|| {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "MalformedTrailerError",
            format!("The request promised the trailer {} but did not send it.", algorithm.header()),
        )
    })?;
    algorithm.decode(value).ok_or_else(|| {
        S3Error::invalid_request(format!("Value for {} trailing header is invalid.", algorithm.header()))
    })
}

/// Reads a small request body (an XML document) into memory, with the same checks.
pub async fn read_small(body: RequestBody, headers: &HeaderMap, limit: u64) -> S3Result<Vec<u8>> {
    let expect = Expect::from_headers(headers, limit)?;
    let mut buffer = Vec::new();
    receive(body, &mut Sink::Memory(&mut buffer), &expect).await?;
    Ok(buffer)
}
