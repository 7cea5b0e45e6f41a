//! The little ASN.1 DER this crate needs: a reader of definite-length TLVs that never panics on
//! input, and a writer. Only low tag numbers (< 31) occur in the structures read here.

use std::fmt;

/// Tag bytes (class, constructed bit and number together) of the types used here.
pub(crate) mod tag {
    pub(crate) const BOOLEAN: u8 = 0x01;
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const BIT_STRING: u8 = 0x03;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const NULL: u8 = 0x05;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;

    /// `[n]` context-specific, primitive (IMPLICIT tagging of a primitive type).
    pub(crate) const fn context(number: u8) -> u8 {
        0x80 | number
    }

    /// `[n]` context-specific, constructed (EXPLICIT tagging, or IMPLICIT of a constructed type).
    pub(crate) const fn context_constructed(number: u8) -> u8 {
        0xA0 | number
    }
}

/// What went wrong reading DER, and in which part of the structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerError {
    pub(crate) what: &'static str,
    pub(crate) problem: &'static str,
}

impl DerError {
    pub(crate) fn new(what: &'static str, problem: &'static str) -> Self {
        DerError { what, problem }
    }
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.problem)
    }
}

/// One element: its tag, its value (contents octets) and its whole encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) value: &'a [u8],
    pub(crate) raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over the elements inside this (constructed) element.
    pub(crate) fn contents(&self) -> Reader<'a> {
        Reader::new(self.value)
    }
}

/// Reads consecutive elements from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element, whatever its tag.
    pub(crate) fn read_any(&mut self, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let truncated = DerError::new(what, "truncated");
        let (&tag, after_tag) = self.rest.split_first().ok_or(truncated.clone())?;
        if tag & 0x1F == 0x1F {
            return Err(DerError::new(what, "high tag numbers are not supported"));
        }
        let (&first, mut after_length) = after_tag.split_first().ok_or(truncated.clone())?;
        let length = if first < 0x80 {
            usize::from(first)
        } else if first == 0x80 {
            // BER's indefinite length; the envelopes read here are DER (OpenSSL writes DER for
            // PEM output unless told to stream).
            return Err(DerError::new(what, "indefinite-length (BER) encoding is not supported"));
        } else {
            let count = usize::from(first & 0x7F);
            if count > 4 {
                return Err(DerError::new(what, "length too large"));
            }
            if after_length.len() < count {
                return Err(truncated);
            }
            let (bytes, rest) = after_length.split_at(count);
            after_length = rest;
            bytes.iter().fold(0usize, |length, &byte| (length << 8) | usize::from(byte))
        };
        if after_length.len() < length {
            return Err(truncated);
        }
        let header = self.rest.len() - after_length.len();
        let raw = &self.rest[..header + length];
        let value = &after_length[..length];
        self.rest = &after_length[length..];
        Ok(Tlv { tag, value, raw })
    }

    /// The next element, which must have the given tag.
    pub(crate) fn read(&mut self, expected: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        match self.peek_tag() {
            Some(found) if found == expected => self.read_any(what),
            Some(_) => Err(DerError::new(what, "unexpected tag")),
            None => Err(DerError::new(what, "missing")),
        }
    }

    /// The next element if it has the given tag (an OPTIONAL field).
    pub(crate) fn read_optional(&mut self, expected: u8, what: &'static str) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(expected) { self.read_any(what).map(Some) } else { Ok(None) }
    }

    /// Fails if anything is left: every structure read here is read to its end.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), DerError> {
        if self.rest.is_empty() { Ok(()) } else { Err(DerError::new(what, "unexpected trailing data")) }
    }
}

/// Reads exactly one element of the given tag from `data`, with nothing after it.
pub(crate) fn read_single<'a>(data: &'a [u8], expected: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
    let mut reader = Reader::new(data);
    let tlv = reader.read(expected, what)?;
    reader.finish(what)?;
    Ok(tlv)
}

/// One element with the given tag and contents.
pub(crate) fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    let length = contents.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|&&byte| byte == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// A constructed element whose contents are the given encodings, in order.
pub(crate) fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    encode(tag, &parts.concat())
}

pub(crate) fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    constructed(tag::SEQUENCE, parts)
}

/// A SET OF: DER orders the elements by their encodings.
pub(crate) fn set_of(mut elements: Vec<Vec<u8>>) -> Vec<u8> {
    elements.sort();
    encode(tag::SET, &elements.concat())
}

pub(crate) fn oid(contents: &[u8]) -> Vec<u8> {
    encode(tag::OID, contents)
}

pub(crate) fn octet_string(contents: &[u8]) -> Vec<u8> {
    encode(tag::OCTET_STRING, contents)
}

pub(crate) fn small_integer(value: u8) -> Vec<u8> {
    // Values up to 127 are one contents octet; this crate writes only versions.
    debug_assert!(value < 0x80);
    encode(tag::INTEGER, &[value])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_written_in_the_shortest_form() {
        assert_eq!(encode(tag::OCTET_STRING, &[7; 3]), [&[0x04, 0x03][..], &[7; 3]].concat());
        assert_eq!(&encode(tag::OCTET_STRING, &[0; 0x7F])[..2], &[0x04, 0x7F]);
        assert_eq!(&encode(tag::OCTET_STRING, &[0; 0x80])[..3], &[0x04, 0x81, 0x80]);
        assert_eq!(&encode(tag::OCTET_STRING, &[0; 0x1234])[..4], &[0x04, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn what_is_written_reads_back() {
        let inner = octet_string(b"hello");
        let outer = sequence(&[&small_integer(1), &inner]);
        let seq = read_single(&outer, tag::SEQUENCE, "outer").unwrap();
        let mut reader = seq.contents();
        let version = reader.read(tag::INTEGER, "version").unwrap();
        assert_eq!(version.value, [1]);
        let octets = reader.read(tag::OCTET_STRING, "octets").unwrap();
        assert_eq!(octets.value, b"hello");
        assert_eq!(octets.raw, &inner[..]);
        reader.finish("outer").unwrap();
        let long = octet_string(&[0xAB; 300]);
        assert_eq!(read_single(&long, tag::OCTET_STRING, "long").unwrap().value, &[0xAB; 300][..]);
    }

    #[test]
    fn set_of_sorts_its_elements() {
        let set = set_of(vec![vec![0x04, 0x01, 0x02], vec![0x04, 0x01, 0x01]]);
        assert_eq!(set, [0x31, 0x06, 0x04, 0x01, 0x01, 0x04, 0x01, 0x02]);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let cases: &[(&[u8], &str)] = &[
            (&[], "missing"),
            (&[0x30], "truncated"),
            (&[0x30, 0x05, 0x01], "truncated"),
            (&[0x30, 0x80, 0x00, 0x00], "indefinite-length (BER) encoding is not supported"),
            (&[0x30, 0x85, 1, 1, 1, 1, 1], "length too large"),
            (&[0x30, 0x82, 0x01], "truncated"),
            (&[0x1F, 0x01, 0x00], "unexpected tag"),
            (&[0x04, 0x00], "unexpected tag"),
            (&[0x30, 0x00, 0x00], "unexpected trailing data"),
        ];
        for (input, problem) in cases {
            let error = read_single(input, tag::SEQUENCE, "x").unwrap_err();
            assert_eq!(error.problem, *problem, "{input:02x?}");
        }
        let error = Reader::new(&[0x1F, 0x01, 0x00]).read_any("x").unwrap_err();
        assert_eq!(error.problem, "high tag numbers are not supported");
    }
}
