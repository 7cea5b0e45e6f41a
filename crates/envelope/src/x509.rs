//! The parts of an X.509 certificate that signing and verifying need, and signature verification
//! with ring.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

use crate::der::{self, DerError, Reader, Tlv, tag};
use crate::oid;

/// A digest algorithm this crate computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(crate) fn from_oid(contents: &[u8]) -> Option<Hash> {
        match contents {
            oid::SHA256 => Some(Hash::Sha256),
            oid::SHA384 => Some(Hash::Sha384),
            oid::SHA512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    pub(crate) fn oid(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => oid::SHA256,
            Hash::Sha384 => oid::SHA384,
            Hash::Sha512 => oid::SHA512,
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Hash::Sha256 => &ring::digest::SHA256,
            Hash::Sha384 => &ring::digest::SHA384,
            Hash::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(algorithm, data).as_ref().to_vec()
    }
}

/// A subject public key, as ring takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// The uncompressed point.
    P256(Vec<u8>),
    P384(Vec<u8>),
    /// The DER RSAPublicKey.
    Rsa(Vec<u8>),
    /// A key this crate does not verify with (another curve, Ed25519, ...); named for errors.
    Other(String),
}

/// The kind of key a signature algorithm identifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Ec,
    Rsa,
}

/// How a signature was made: the kind of key and, when the identifier says, the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignatureAlgorithm {
    kind: KeyKind,
    /// `None` for the bare key identifiers (rsaEncryption, id-ecPublicKey) that CMS allows in a
    /// SignerInfo, where the SignerInfo's digest algorithm applies.
    hash: Option<Hash>,
}

impl SignatureAlgorithm {
    pub(crate) fn from_oid(contents: &[u8]) -> Option<SignatureAlgorithm> {
        let (kind, hash) = match contents {
            oid::ECDSA_WITH_SHA256 => (KeyKind::Ec, Some(Hash::Sha256)),
            oid::ECDSA_WITH_SHA384 => (KeyKind::Ec, Some(Hash::Sha384)),
            oid::ECDSA_WITH_SHA512 => (KeyKind::Ec, Some(Hash::Sha512)),
            oid::EC_PUBLIC_KEY => (KeyKind::Ec, None),
            oid::SHA256_WITH_RSA => (KeyKind::Rsa, Some(Hash::Sha256)),
            oid::SHA384_WITH_RSA => (KeyKind::Rsa, Some(Hash::Sha384)),
            oid::SHA512_WITH_RSA => (KeyKind::Rsa, Some(Hash::Sha512)),
            oid::RSA_ENCRYPTION => (KeyKind::Rsa, None),
            _ => return None,
        };
        Some(SignatureAlgorithm { kind, hash })
    }

    pub(crate) fn hash(&self) -> Option<Hash> {
        self.hash
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyError {
    /// The key, algorithm or digest is one this crate does not handle.
    Unsupported(String),
    /// The signature is wrong.
    Bad,
}

impl PublicKey {
    fn from_spki(spki: &Tlv<'_>) -> Result<PublicKey, DerError> {
        let what = "subject public key info";
        let mut fields = spki.contents();
        let algorithm = AlgorithmIdentifier::read(&mut fields, what)?;
        let bits = fields.read(tag::BIT_STRING, what)?;
        fields.finish(what)?;
        let key = match bits.value.split_first() {
            Some((0, key)) => key.to_vec(),
            _ => return Err(DerError::new(what, "the key is not a whole number of bytes")),
        };
        Ok(match (algorithm.oid, algorithm.parameter_oid()) {
            (oid::EC_PUBLIC_KEY, Some(oid::P256)) => PublicKey::P256(key),
            (oid::EC_PUBLIC_KEY, Some(oid::P384)) => PublicKey::P384(key),
            (oid::EC_PUBLIC_KEY, curve) => {
                PublicKey::Other(format!("EC key on curve {}", curve.map_or("(unnamed)".into(), oid::dotted)))
            }
            (oid::RSA_ENCRYPTION, _) => PublicKey::Rsa(key),
            (other, _) => PublicKey::Other(format!("key of algorithm {}", oid::dotted(other))),
        })
    }

    /// Verifies `signature` over `message`, made as `algorithm` says with `hash` as the digest.
    pub(crate) fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        hash: Hash,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        let unsupported = |what: &str| Err(VerifyError::Unsupported(what.to_string()));
        let (verifier, key): (&'static dyn VerificationAlgorithm, &[u8]) = match (self, algorithm.kind, hash) {
            (PublicKey::P256(key), KeyKind::Ec, Hash::Sha256) => (&signature::ECDSA_P256_SHA256_ASN1, key),
            (PublicKey::P256(key), KeyKind::Ec, Hash::Sha384) => (&signature::ECDSA_P256_SHA384_ASN1, key),
            (PublicKey::P384(key), KeyKind::Ec, Hash::Sha256) => (&signature::ECDSA_P384_SHA256_ASN1, key),
            (PublicKey::P384(key), KeyKind::Ec, Hash::Sha384) => (&signature::ECDSA_P384_SHA384_ASN1, key),
            (PublicKey::P256(_) | PublicKey::P384(_), KeyKind::Ec, Hash::Sha512) => {
                return unsupported("ECDSA with SHA-512");
            }
            (PublicKey::Rsa(key), KeyKind::Rsa, hash) => {
                // ring refuses keys under 2048 bits like a bad signature; say which it is.
                if rsa_modulus_bits(key).is_some_and(|bits| bits < 2048) {
                    return unsupported("RSA keys shorter than 2048 bits");
                }
                let verifier: &'static dyn VerificationAlgorithm = match hash {
                    Hash::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Hash::Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Hash::Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                };
                (verifier, key)
            }
            (PublicKey::Other(name), _, _) => return unsupported(name),
            (_, KeyKind::Ec, _) => return unsupported("an ECDSA signature algorithm with a non-EC key"),
            (_, KeyKind::Rsa, _) => return unsupported("an RSA signature algorithm with a non-RSA key"),
        };
        UnparsedPublicKey::new(verifier, key).verify(message, signature).map_err(|_| VerifyError::Bad)
    }
}

/// The bit length of an RSAPublicKey's modulus, when it parses.
fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Option<usize> {
    let key = der::read_single(rsa_public_key, tag::SEQUENCE, "RSA public key").ok()?;
    let modulus = key.contents().read(tag::INTEGER, "RSA modulus").ok()?;
    let zeros = modulus.value.iter().take_while(|&&byte| byte == 0).count();
    let significant = &modulus.value[zeros..];
    let first = *significant.first()?;
    Some(significant.len() * 8 - first.leading_zeros() as usize)
}

/// An AlgorithmIdentifier: the OID and its optional parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AlgorithmIdentifier<'a> {
    pub(crate) oid: &'a [u8],
    pub(crate) parameters: Option<Tlv<'a>>,
}

impl<'a> AlgorithmIdentifier<'a> {
    pub(crate) fn read(reader: &mut Reader<'a>, what: &'static str) -> Result<Self, DerError> {
        let sequence = reader.read(tag::SEQUENCE, what)?;
        let mut fields = sequence.contents();
        let oid = fields.read(tag::OID, what)?.value;
        let parameters = if fields.is_empty() { None } else { Some(fields.read_any(what)?) };
        fields.finish(what)?;
        Ok(AlgorithmIdentifier { oid, parameters })
    }

    fn parameter_oid(&self) -> Option<&'a [u8]> {
        self.parameters.filter(|parameters| parameters.tag == tag::OID).map(|parameters| parameters.value)
    }
}

/// The fields of a certificate this crate uses, copied out of its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Certificate {
    pub(crate) der: Vec<u8>,
    /// The whole TBSCertificate: what the issuer signed.
    tbs: Vec<u8>,
    /// The whole INTEGER and Name encodings, compared byte for byte with a SignerInfo's
    /// IssuerAndSerialNumber (and the issuer with a CA's subject).
    pub(crate) serial: Vec<u8>,
    pub(crate) issuer: Vec<u8>,
    pub(crate) subject: Vec<u8>,
    pub(crate) public_key: PublicKey,
    pub(crate) subject_key_identifier: Option<Vec<u8>>,
    signature_algorithm: Vec<u8>,
    signature: Vec<u8>,
}

impl Certificate {
    pub(crate) fn from_der(der: &[u8]) -> Result<Certificate, DerError> {
        let what = "certificate";
        let certificate = der::read_single(der, tag::SEQUENCE, what)?;
        let mut fields = certificate.contents();
        let tbs = fields.read(tag::SEQUENCE, what)?;
        let signature_algorithm = AlgorithmIdentifier::read(&mut fields, "certificate signature algorithm")?;
        let signature = fields.read(tag::BIT_STRING, "certificate signature")?;
        fields.finish(what)?;
        let signature = match signature.value.split_first() {
            Some((0, bits)) => bits.to_vec(),
            _ => return Err(DerError::new("certificate signature", "not a whole number of bytes")),
        };

        let what = "TBSCertificate";
        let mut tbs_fields = tbs.contents();
        tbs_fields.read_optional(tag::context_constructed(0), "certificate version")?;
        let serial = tbs_fields.read(tag::INTEGER, "certificate serial number")?;
        AlgorithmIdentifier::read(&mut tbs_fields, "TBSCertificate signature algorithm")?;
        let issuer = tbs_fields.read(tag::SEQUENCE, "certificate issuer")?;
        tbs_fields.read(tag::SEQUENCE, "certificate validity")?;
        let subject = tbs_fields.read(tag::SEQUENCE, "certificate subject")?;
        let spki = tbs_fields.read(tag::SEQUENCE, "subject public key info")?;
        tbs_fields.read_optional(tag::context(1), "issuer unique id")?;
        tbs_fields.read_optional(tag::context(2), "subject unique id")?;
        let extensions = tbs_fields.read_optional(tag::context_constructed(3), "certificate extensions")?;
        tbs_fields.finish(what)?;

        Ok(Certificate {
            der: der.to_vec(),
            tbs: tbs.raw.to_vec(),
            serial: serial.raw.to_vec(),
            issuer: issuer.raw.to_vec(),
            subject: subject.raw.to_vec(),
            public_key: PublicKey::from_spki(&spki)?,
            subject_key_identifier: extensions
                .map(|extensions| subject_key_identifier(&extensions))
                .transpose()?
                .flatten(),
            signature_algorithm: signature_algorithm.oid.to_vec(),
            signature,
        })
    }

    /// Whether `issuer` issued this certificate: names match and its key verifies the signature.
    pub(crate) fn check_issued_by(&self, issuer: &Certificate) -> Result<(), VerifyError> {
        if self.issuer != issuer.subject {
            return Err(VerifyError::Bad);
        }
        let algorithm = SignatureAlgorithm::from_oid(&self.signature_algorithm).ok_or_else(|| {
            VerifyError::Unsupported(format!(
                "certificate signature algorithm {}",
                oid::dotted(&self.signature_algorithm)
            ))
        })?;
        // Certificates always name the digest with the algorithm.
        let hash = algorithm
            .hash()
            .ok_or_else(|| VerifyError::Unsupported("a certificate signed with a bare key OID".into()))?;
        issuer.public_key.verify(algorithm, hash, &self.tbs, &self.signature)
    }
}

/// The subjectKeyIdentifier extension's key id, if the certificate has one.
fn subject_key_identifier(extensions: &Tlv<'_>) -> Result<Option<Vec<u8>>, DerError> {
    let what = "certificate extensions";
    let list = der::read_single(extensions.value, tag::SEQUENCE, what)?;
    let mut items = list.contents();
    while !items.is_empty() {
        let extension = items.read(tag::SEQUENCE, "certificate extension")?;
        let mut fields = extension.contents();
        let id = fields.read(tag::OID, "certificate extension")?;
        fields.read_optional(tag::BOOLEAN, "certificate extension")?;
        let value = fields.read(tag::OCTET_STRING, "certificate extension")?;
        fields.finish("certificate extension")?;
        if id.value == oid::SUBJECT_KEY_IDENTIFIER {
            let key_id = der::read_single(value.value, tag::OCTET_STRING, "subject key identifier")?;
            return Ok(Some(key_id.value.to_vec()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_algorithms_name_their_digest_or_leave_it_to_the_signer_info() {
        let ecdsa = SignatureAlgorithm::from_oid(oid::ECDSA_WITH_SHA384).unwrap();
        assert_eq!(ecdsa.hash(), Some(Hash::Sha384));
        assert_eq!(SignatureAlgorithm::from_oid(oid::RSA_ENCRYPTION).unwrap().hash(), None);
        assert_eq!(SignatureAlgorithm::from_oid(oid::SHA256), None);
    }

    #[test]
    fn unsupported_keys_and_mismatched_algorithms_say_so() {
        let rsa = SignatureAlgorithm::from_oid(oid::SHA256_WITH_RSA).unwrap();
        let ecdsa = SignatureAlgorithm::from_oid(oid::ECDSA_WITH_SHA256).unwrap();
        let p256 = PublicKey::P256(vec![4; 65]);
        assert!(matches!(p256.verify(rsa, Hash::Sha256, b"m", b"s"), Err(VerifyError::Unsupported(_))));
        assert!(matches!(p256.verify(ecdsa, Hash::Sha512, b"m", b"s"), Err(VerifyError::Unsupported(_))));
        assert_eq!(p256.verify(ecdsa, Hash::Sha256, b"m", b"s"), Err(VerifyError::Bad));
        let other = PublicKey::Other("Ed25519".into());
        assert_eq!(other.verify(ecdsa, Hash::Sha256, b"m", b"s"), Err(VerifyError::Unsupported("Ed25519".into())));
    }

    #[test]
    fn rsa_modulus_length_ignores_the_sign_octet() {
        let mut modulus = vec![0x00, 0x80];
        modulus.extend([0u8; 127]);
        let key = der::sequence(&[&der::encode(tag::INTEGER, &modulus), &der::encode(tag::INTEGER, &[1, 0, 1])]);
        assert_eq!(rsa_modulus_bits(&key), Some(1024));
        let short = PublicKey::Rsa(key);
        let rsa = SignatureAlgorithm::from_oid(oid::RSA_ENCRYPTION).unwrap();
        assert!(matches!(short.verify(rsa, Hash::Sha256, b"m", b"s"), Err(VerifyError::Unsupported(_))));
    }
}
