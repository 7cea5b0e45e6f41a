//! Decoding of `Content-Encoding: aws-chunked` bodies with unsigned chunks
//! (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`): `hex-size[;ext]\r\n data \r\n ... 0\r\n` then trailer
//! lines (`x-amz-checksum-crc32:...`) and an empty line.

use hyper::body::Bytes;

use super::error::{S3Error, S3Result};

/// Longest size or trailer line accepted.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

pub struct Decoder {
    state: State,
    line: Vec<u8>,
    trailers: Vec<(String, String)>,
}

fn malformed(what: &str) -> S3Error {
    S3Error::invalid_request(format!("The aws-chunked request body is malformed: {what}."))
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder { state: State::Size, line: Vec::new(), trailers: Vec::new() }
    }

    /// The next decoded bytes in `input` (which is advanced past them), or None once `input`
    /// is used up.
    pub fn next(&mut self, input: &mut Bytes) -> S3Result<Option<Bytes>> {
        while !input.is_empty() {
            match self.state {
                State::Data(remaining) => {
                    let take = remaining.min(input.len() as u64);
                    let data = input.split_to(take as usize);
                    self.state = if take == remaining { State::DataEnd } else { State::Data(remaining - take) };
                    return Ok(Some(data));
                }
                State::Size => {
                    let Some(line) = self.take_line(input)? else { continue };
                    let size = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(size).ok().map(str::trim).filter(|s| !s.is_empty() && s.len() <= 16);
                    let size = size
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or_else(|| malformed("bad chunk size"))?;
                    self.state = if size == 0 { State::Trailer } else { State::Data(size) };
                }
                State::DataEnd => {
                    let Some(line) = self.take_line(input)? else { continue };
                    if !line.is_empty() {
                        return Err(malformed("a chunk is longer than its size"));
                    }
                    self.state = State::Size;
                }
                State::Trailer => {
                    let Some(line) = self.take_line(input)? else { continue };
                    if line.is_empty() {
                        self.state = State::Done;
                        continue;
                    }
                    let line = String::from_utf8(line).map_err(|_| malformed("a trailer is not UTF-8"))?;
                    let (name, value) = line.split_once(':').ok_or_else(|| malformed("a trailer has no ':'"))?;
                    if self.trailers.len() >= 16 {
                        return Err(malformed("too many trailers"));
                    }
                    self.trailers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
                State::Done => {
                    if input.iter().any(|b| !b.is_ascii_whitespace()) {
                        return Err(malformed("data after the last chunk"));
                    }
                    input.clear();
                }
            }
        }
        Ok(None)
    }

    /// The trailers, once the whole body has been fed; IncompleteBody if it stopped early.
    pub fn finish(self) -> S3Result<Vec<(String, String)>> {
        match self.state {
            State::Done => Ok(self.trailers),
            // Tolerated: a body that ends after its last trailer line without the empty line.
            State::Trailer if self.line.is_empty() => Ok(self.trailers),
            _ => Err(S3Error::incomplete_body()),
        }
    }

    /// A complete line (without its `\r\n` or `\n`), or None if `input` ends first (the part
    /// read is kept for the next call).
    fn take_line(&mut self, input: &mut Bytes) -> S3Result<Option<Vec<u8>>> {
        let end = input.iter().position(|&b| b == b'\n');
        let taken = input.split_to(end.map_or(input.len(), |end| end + 1));
        self.line.extend_from_slice(&taken);
        if self.line.len() > MAX_LINE {
            return Err(malformed("a line is too long"));
        }
        if end.is_none() {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Trailers = Vec<(String, String)>;

    /// Feeds `body` in pieces of `step` bytes.
    fn decode(body: &[u8], step: usize) -> S3Result<(Vec<u8>, Trailers)> {
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for piece in body.chunks(step) {
            let mut input = Bytes::copy_from_slice(piece);
            while let Some(data) = decoder.next(&mut input)? {
                out.extend_from_slice(&data);
            }
        }
        Ok((out, decoder.finish()?))
    }

    #[test]
    fn decodes_what_botocore_sends() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for step in [1, 2, 3, 7, body.len()] {
            let (data, trailers) = decode(body, step).unwrap();
            assert_eq!(data, b"hello world");
            assert_eq!(trailers, [("x-amz-checksum-crc32".to_owned(), "DUoRhQ==".to_owned())]);
        }
        let (data, trailers) = decode(b"3;chunk-signature=abc\r\nabc\r\n0\r\n\r\n", 4).unwrap();
        assert_eq!((data.as_slice(), trailers.len()), (&b"abc"[..], 0));
        assert!(decode(b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n", 5).is_ok());
    }

    #[test]
    fn refuses_malformed_and_truncated_bodies() {
        for (body, code) in [
            (&b"5\r\nhello world\r\n0\r\n\r\n"[..], "InvalidRequest"),
            (b"zz\r\nhello\r\n", "InvalidRequest"),
            (b"5\r\nhel", "IncompleteBody"),
            (b"5\r\nhello\r\n", "IncompleteBody"),
            (b"0\r\nno-colon\r\n\r\n", "InvalidRequest"),
            (b"0\r\n\r\nextra", "InvalidRequest"),
        ] {
            let error = decode(body, 3).unwrap_err();
            assert_eq!(error.code, code, "{}", String::from_utf8_lossy(body));
        }
        assert!(decode(&[b'1'; 5000], 100).is_err());
    }
}
