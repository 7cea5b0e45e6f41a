//! The additional checksums S3 accepts with an upload (`x-amz-checksum-<algorithm>`, as a header
//! or as an aws-chunked trailer), computed while the body streams to disk.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crc::{CRC_32_ISCSI, CRC_32_ISO_HDLC, CRC_64_NVME, Crc, Table};
use sha1::Digest as _;

static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);
static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);
static CRC64NVME: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_NVME);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] =
        [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64Nvme, Algorithm::Sha1, Algorithm::Sha256];

    /// The name S3 uses (`x-amz-checksum-algorithm`, `x-amz-sdk-checksum-algorithm`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    /// The header (or trailer) that carries the base64 checksum.
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    pub fn from_header(header: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|algorithm| algorithm.header().eq_ignore_ascii_case(header.trim()))
    }

    /// Decodes a base64 checksum value, checking it has the algorithm's length.
    pub fn decode(self, value: &str) -> Option<Vec<u8>> {
        let bytes = BASE64.decode(value.trim()).ok()?;
        (bytes.len() == self.digest_len()).then_some(bytes)
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Crc32 => Hasher::Crc32(CRC32.digest()),
            Algorithm::Crc32c => Hasher::Crc32c(CRC32C.digest()),
            Algorithm::Crc64Nvme => Hasher::Crc64Nvme(CRC64NVME.digest()),
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(<sha2::Sha256 as sha2::Digest>::new()),
        }
    }
}

pub enum Hasher {
    Crc32(crc::Digest<'static, u32, Table<16>>),
    Crc32c(crc::Digest<'static, u32, Table<16>>),
    Crc64Nvme(crc::Digest<'static, u64, Table<16>>),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(digest) | Hasher::Crc32c(digest) => digest.update(data),
            Hasher::Crc64Nvme(digest) => digest.update(data),
            Hasher::Sha1(digest) => digest.update(data),
            Hasher::Sha256(digest) => sha2::Digest::update(digest, data),
        }
    }

    /// The digest, big-endian for the CRCs (as S3 transmits them).
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc32(digest) | Hasher::Crc32c(digest) => digest.finalize().to_be_bytes().to_vec(),
            Hasher::Crc64Nvme(digest) => digest.finalize().to_be_bytes().to_vec(),
            Hasher::Sha1(digest) => digest.finalize().to_vec(),
            Hasher::Sha256(digest) => sha2::Digest::finalize(digest).to_vec(),
        }
    }
}

pub fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(algorithm: Algorithm, data: &[u8]) -> String {
        let mut hasher = algorithm.hasher();
        // Two updates, to check streaming gives the one-shot answer.
        let (a, b) = data.split_at(data.len() / 2);
        hasher.update(a);
        hasher.update(b);
        base64(&hasher.finish())
    }

    #[test]
    fn known_values() {
        // Values botocore computes for b"hello world".
        assert_eq!(of(Algorithm::Crc32, b"hello world"), "DUoRhQ==");
        assert_eq!(of(Algorithm::Crc32c, b"hello world"), "yZRlqg==");
        assert_eq!(of(Algorithm::Crc64Nvme, b"hello world"), "jSnVw/bqjr4=");
        assert_eq!(of(Algorithm::Sha1, b"hello world"), "Kq5sNclPz7QV2+lfQIuc6R7oRu0=");
        assert_eq!(of(Algorithm::Sha256, b"hello world"), "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
    }

    #[test]
    fn names_and_decoding() {
        assert_eq!(Algorithm::from_name("crc32c"), Some(Algorithm::Crc32c));
        assert_eq!(Algorithm::from_header("X-Amz-Checksum-Sha256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_name("md5"), None);
        assert!(Algorithm::Crc32.decode("DUoRhQ==").is_some());
        assert!(Algorithm::Crc32.decode("DUoRhQDD").is_none());
        assert!(Algorithm::Crc32.decode("not base64!").is_none());
    }
}
