//! CMS SignedData (RFC 5652, compatible with PKCS#7 v1.5 readers): building one around embedded
//! content, and reading and verifying one.
//!
//! ```text
//! ContentInfo ::= SEQUENCE { contentType (signedData), [0] EXPLICIT SignedData }
//! SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo,
//!                           [0] IMPLICIT certificates OPTIONAL, [1] IMPLICIT crls OPTIONAL, signerInfos SET }
//! EncapsulatedContentInfo ::= SEQUENCE { eContentType, [0] EXPLICIT OCTET STRING OPTIONAL }
//! SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] IMPLICIT signedAttrs OPTIONAL,
//!                           signatureAlgorithm, signature OCTET STRING, [1] IMPLICIT unsignedAttrs OPTIONAL }
//! ```

use crate::der::{self, DerError, Tlv, tag};
use crate::error::EnvelopeError;
use crate::identity::SigningIdentity;
use crate::oid;
use crate::x509::{AlgorithmIdentifier, Certificate, Hash, SignatureAlgorithm, VerifyError};

impl From<DerError> for EnvelopeError {
    fn from(error: DerError) -> Self {
        EnvelopeError::NotPkcs7(error.to_string())
    }
}

fn digest_algorithm(hash: Hash) -> Vec<u8> {
    // RFC 5754: SHA-2 identifiers are written without parameters.
    der::sequence(&[&der::oid(hash.oid())])
}

/// A DER ContentInfo holding a SignedData of `content`, signed by `identity`'s signer with the
/// content-type and message-digest signed attributes, the signer certificate included.
pub(crate) fn build(content: &[u8], identity: &SigningIdentity) -> Result<Vec<u8>, EnvelopeError> {
    let signer = identity.signer();
    let key = identity.key();
    let hash = key.hash();
    let digest_algorithm = digest_algorithm(hash);

    let attributes = der::set_of(vec![
        der::sequence(&[&der::oid(oid::CONTENT_TYPE), &der::set_of(vec![der::oid(oid::DATA)])]),
        der::sequence(&[&der::oid(oid::MESSAGE_DIGEST), &der::set_of(vec![der::octet_string(&hash.digest(content))])]),
    ]);
    // The signature covers the attributes' SET OF encoding; the SignerInfo carries the same
    // bytes under the [0] IMPLICIT tag.
    let signature = key.sign(&attributes).map_err(|_| EnvelopeError::SigningFailed)?;
    let mut signed_attributes = attributes;
    signed_attributes[0] = tag::context_constructed(0);

    let issuer_and_serial = der::sequence(&[&signer.issuer, &signer.serial]);
    let signer_info = der::sequence(&[
        &der::small_integer(1),
        &issuer_and_serial,
        &digest_algorithm,
        &signed_attributes,
        &key.signature_algorithm(),
        &der::octet_string(&signature),
    ]);
    let encapsulated = der::sequence(&[
        &der::oid(oid::DATA),
        &der::constructed(tag::context_constructed(0), &[&der::octet_string(content)]),
    ]);
    let signed_data = der::sequence(&[
        // Version 1: id-data content and an issuer-and-serial signer (RFC 5652 §5.1).
        &der::small_integer(1),
        &der::set_of(vec![digest_algorithm.clone()]),
        &encapsulated,
        &der::constructed(tag::context_constructed(0), &[&signer.der]),
        &der::set_of(vec![signer_info]),
    ]);
    Ok(der::sequence(&[&der::oid(oid::SIGNED_DATA), &der::constructed(tag::context_constructed(0), &[&signed_data])]))
}

/// How a SignerInfo names its certificate.
enum SignerId<'a> {
    IssuerAndSerial { issuer: &'a [u8], serial: &'a [u8] },
    SubjectKeyIdentifier(&'a [u8]),
}

impl SignerId<'_> {
    fn matches(&self, certificate: &Certificate) -> bool {
        match self {
            SignerId::IssuerAndSerial { issuer, serial } => {
                certificate.issuer == *issuer && certificate.serial == *serial
            }
            SignerId::SubjectKeyIdentifier(id) => certificate.subject_key_identifier.as_deref() == Some(*id),
        }
    }
}

struct SignerInfo<'a> {
    id: SignerId<'a>,
    digest_algorithm: AlgorithmIdentifier<'a>,
    signed_attributes: Option<Tlv<'a>>,
    signature_algorithm: AlgorithmIdentifier<'a>,
    signature: &'a [u8],
}

impl<'a> SignerInfo<'a> {
    fn read(tlv: &Tlv<'a>) -> Result<Self, DerError> {
        let what = "SignerInfo";
        let mut fields = tlv.contents();
        fields.read(tag::INTEGER, "SignerInfo version")?;
        let id = match fields.peek_tag() {
            Some(tag::SEQUENCE) => {
                let sid = fields.read(tag::SEQUENCE, "SignerInfo issuerAndSerialNumber")?;
                let mut parts = sid.contents();
                let issuer = parts.read(tag::SEQUENCE, "SignerInfo issuer")?.raw;
                let serial = parts.read(tag::INTEGER, "SignerInfo serial number")?.raw;
                parts.finish("SignerInfo issuerAndSerialNumber")?;
                SignerId::IssuerAndSerial { issuer, serial }
            }
            Some(t) if t == tag::context(0) => {
                SignerId::SubjectKeyIdentifier(fields.read(tag::context(0), "SignerInfo subjectKeyIdentifier")?.value)
            }
            _ => return Err(DerError::new("SignerInfo signer identifier", "unexpected tag")),
        };
        let digest_algorithm = AlgorithmIdentifier::read(&mut fields, "SignerInfo digest algorithm")?;
        let signed_attributes = fields.read_optional(tag::context_constructed(0), "SignerInfo signed attributes")?;
        let signature_algorithm = AlgorithmIdentifier::read(&mut fields, "SignerInfo signature algorithm")?;
        let signature = fields.read(tag::OCTET_STRING, "SignerInfo signature")?.value;
        fields.read_optional(tag::context_constructed(1), "SignerInfo unsigned attributes")?;
        fields.finish(what)?;
        Ok(SignerInfo { id, digest_algorithm, signed_attributes, signature_algorithm, signature })
    }
}

/// The one value of the one attribute of type `wanted` among the signed attributes.
fn single_attribute_value<'a>(attributes: &Tlv<'a>, wanted: &[u8], name: &str) -> Result<Tlv<'a>, EnvelopeError> {
    let mut found = None;
    let mut items = attributes.contents();
    while !items.is_empty() {
        let attribute = items.read(tag::SEQUENCE, "signed attribute")?;
        let mut fields = attribute.contents();
        let kind = fields.read(tag::OID, "signed attribute type")?;
        let values = fields.read(tag::SET, "signed attribute values")?;
        fields.finish("signed attribute")?;
        if kind.value != wanted {
            continue;
        }
        let mut values = values.contents();
        let value = values.read_any("signed attribute value")?;
        if found.is_some() || !values.is_empty() {
            return Err(EnvelopeError::NotPkcs7(format!("the {name} signed attribute must have exactly one value")));
        }
        found = Some(value);
    }
    found.ok_or_else(|| EnvelopeError::NotPkcs7(format!("the signed attributes lack {name}")))
}

/// Checks one signer's digest and signature over `content`, and returns its certificate.
fn verify_signer<'c>(
    info: &SignerInfo<'_>,
    certificates: &'c [Certificate],
    content_type: &[u8],
    content: &[u8],
) -> Result<&'c Certificate, EnvelopeError> {
    let certificate =
        certificates.iter().find(|c| info.id.matches(c)).ok_or(EnvelopeError::SignerCertificateMissing)?;
    let digest_hash = Hash::from_oid(info.digest_algorithm.oid).ok_or_else(|| {
        EnvelopeError::Unsupported(format!("digest algorithm {}", oid::dotted(info.digest_algorithm.oid)))
    })?;
    let algorithm = SignatureAlgorithm::from_oid(info.signature_algorithm.oid).ok_or_else(|| {
        EnvelopeError::Unsupported(format!("signature algorithm {}", oid::dotted(info.signature_algorithm.oid)))
    })?;

    let signed_message = match &info.signed_attributes {
        Some(attributes) => {
            let declared_type = single_attribute_value(attributes, oid::CONTENT_TYPE, "content-type")?;
            if declared_type.tag != tag::OID || declared_type.value != content_type {
                return Err(EnvelopeError::NotPkcs7(
                    "the content-type attribute differs from the content's type".into(),
                ));
            }
            let digest = single_attribute_value(attributes, oid::MESSAGE_DIGEST, "message-digest")?;
            if digest.tag != tag::OCTET_STRING {
                return Err(EnvelopeError::NotPkcs7("the message-digest attribute is not an OCTET STRING".into()));
            }
            if digest.value != digest_hash.digest(content).as_slice() {
                return Err(EnvelopeError::DigestMismatch);
            }
            // Signed over as a SET OF: the same bytes under the universal SET tag.
            let mut message = attributes.raw.to_vec();
            message[0] = tag::SET;
            message
        }
        // Without signed attributes the signature is over the content itself.
        None => content.to_vec(),
    };
    let signature_hash = algorithm.hash().unwrap_or(digest_hash);
    match certificate.public_key.verify(algorithm, signature_hash, &signed_message, info.signature) {
        Ok(()) => Ok(certificate),
        Err(VerifyError::Bad) => Err(EnvelopeError::BadSignature),
        Err(VerifyError::Unsupported(what)) => Err(EnvelopeError::Unsupported(what)),
    }
}

/// Reads a DER ContentInfo, verifies every signer, checks each signer certificate against
/// `trust` when given, and returns the embedded content.
pub(crate) fn open(der: &[u8], trust: Option<&Certificate>) -> Result<Vec<u8>, EnvelopeError> {
    let content_info = der::read_single(der, tag::SEQUENCE, "ContentInfo")?;
    let mut fields = content_info.contents();
    let content_type = fields.read(tag::OID, "ContentInfo content type")?;
    if content_type.value != oid::SIGNED_DATA {
        return Err(EnvelopeError::NotPkcs7(format!(
            "content type {} is not signedData",
            oid::dotted(content_type.value)
        )));
    }
    let explicit = fields.read(tag::context_constructed(0), "ContentInfo content")?;
    fields.finish("ContentInfo")?;
    let signed_data = der::read_single(explicit.value, tag::SEQUENCE, "SignedData")?;

    let mut fields = signed_data.contents();
    fields.read(tag::INTEGER, "SignedData version")?;
    fields.read(tag::SET, "SignedData digest algorithms")?;
    let encapsulated = fields.read(tag::SEQUENCE, "EncapsulatedContentInfo")?;
    let certificate_set = fields.read_optional(tag::context_constructed(0), "SignedData certificates")?;
    fields.read_optional(tag::context_constructed(1), "SignedData crls")?;
    let signer_infos = fields.read(tag::SET, "SignedData signer infos")?;
    fields.finish("SignedData")?;

    let mut encapsulated_fields = encapsulated.contents();
    let content_type = encapsulated_fields.read(tag::OID, "encapsulated content type")?.value;
    let explicit_content = encapsulated_fields.read_optional(tag::context_constructed(0), "encapsulated content")?;
    encapsulated_fields.finish("EncapsulatedContentInfo")?;
    if content_type != oid::DATA {
        return Err(EnvelopeError::Unsupported(format!(
            "content type {} (only id-data is)",
            oid::dotted(content_type)
        )));
    }
    let explicit_content = explicit_content.ok_or(EnvelopeError::DetachedContent)?;
    let content = der::read_single(explicit_content.value, tag::OCTET_STRING, "encapsulated content")?.value;

    let mut certificates = Vec::new();
    if let Some(set) = certificate_set {
        let mut items = set.contents();
        while !items.is_empty() {
            let item = items.read_any("SignedData certificate")?;
            // Other CertificateChoices (attribute certificates, ...) cannot be signers.
            if item.tag == tag::SEQUENCE {
                certificates.push(Certificate::from_der(item.raw)?);
            }
        }
    }

    let mut signers = signer_infos.contents();
    if signers.is_empty() {
        return Err(EnvelopeError::NotPkcs7("the SignedData has no signer".into()));
    }
    while !signers.is_empty() {
        let info = SignerInfo::read(&signers.read(tag::SEQUENCE, "SignerInfo")?)?;
        let certificate = verify_signer(&info, &certificates, content_type, content)?;
        if let Some(ca) = trust {
            certificate.check_issued_by(ca).map_err(|_| EnvelopeError::UntrustedSigner)?;
        }
    }
    Ok(content.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a built envelope's SignedData into its top-level fields, to rebuild it altered.
    fn signed_data_fields(envelope: &[u8]) -> Vec<Vec<u8>> {
        let content_info = der::read_single(envelope, tag::SEQUENCE, "x").unwrap();
        let mut fields = content_info.contents();
        fields.read(tag::OID, "x").unwrap();
        let explicit = fields.read(tag::context_constructed(0), "x").unwrap();
        let signed_data = der::read_single(explicit.value, tag::SEQUENCE, "x").unwrap();
        let mut items = signed_data.contents();
        let mut out = Vec::new();
        while !items.is_empty() {
            out.push(items.read_any("x").unwrap().raw.to_vec());
        }
        out
    }

    fn rebuild(fields: &[Vec<u8>]) -> Vec<u8> {
        let parts: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        let signed_data = der::sequence(&parts);
        der::sequence(&[&der::oid(oid::SIGNED_DATA), &der::constructed(tag::context_constructed(0), &[&signed_data])])
    }

    fn identity() -> SigningIdentity {
        SigningIdentity::generate("unit test").unwrap()
    }

    #[test]
    fn the_built_structure_has_the_expected_fields() {
        let identity = identity();
        let envelope = build(b"{}", &identity).unwrap();
        let fields = signed_data_fields(&envelope);
        assert_eq!(fields.len(), 5, "version, digests, content, certificates, signer infos");
        assert_eq!(fields[0], [0x02, 0x01, 0x01]);
        assert_eq!(fields[1], der::set_of(vec![digest_algorithm(Hash::Sha256)]));
        let content = der::sequence(&[
            &der::oid(oid::DATA),
            &der::constructed(tag::context_constructed(0), &[&der::octet_string(b"{}")]),
        ]);
        assert_eq!(fields[2], content);
        assert_eq!(fields[3], der::constructed(tag::context_constructed(0), &[&identity.signer().der]));
        assert_eq!(open(&envelope, Some(identity.ca_certificate().certificate())).unwrap(), b"{}");
    }

    #[test]
    fn an_envelope_without_certificates_lacks_its_signer() {
        let envelope = build(b"{}", &identity()).unwrap();
        let mut fields = signed_data_fields(&envelope);
        fields.remove(3);
        assert_eq!(open(&rebuild(&fields), None), Err(EnvelopeError::SignerCertificateMissing));
    }

    #[test]
    fn an_envelope_without_content_is_detached() {
        let envelope = build(b"{}", &identity()).unwrap();
        let mut fields = signed_data_fields(&envelope);
        fields[2] = der::sequence(&[&der::oid(oid::DATA)]);
        assert_eq!(open(&rebuild(&fields), None), Err(EnvelopeError::DetachedContent));
    }

    #[test]
    fn an_envelope_without_signers_is_refused() {
        let envelope = build(b"{}", &identity()).unwrap();
        let mut fields = signed_data_fields(&envelope);
        fields[4] = der::set_of(vec![]);
        assert_eq!(open(&rebuild(&fields), None), Err(EnvelopeError::NotPkcs7("the SignedData has no signer".into())));
    }

    #[test]
    fn every_signer_must_verify() {
        let identity = identity();
        let envelope = build(b"{}", &identity).unwrap();
        let mut fields = signed_data_fields(&envelope);
        let signer_infos = der::read_single(&fields[4], tag::SET, "x").unwrap();
        let good = signer_infos.contents().read(tag::SEQUENCE, "x").unwrap().raw.to_vec();
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 0x01;
        fields[4] = der::set_of(vec![good.clone(), bad]);
        assert_eq!(open(&rebuild(&fields), None), Err(EnvelopeError::BadSignature));
        fields[4] = der::set_of(vec![good.clone(), good]);
        assert_eq!(open(&rebuild(&fields), None).unwrap(), b"{}");
    }

    #[test]
    fn other_content_types_are_unsupported() {
        let envelope = build(b"{}", &identity()).unwrap();
        let mut fields = signed_data_fields(&envelope);
        fields[2] = der::sequence(&[
            &der::oid(oid::SIGNED_DATA),
            &der::constructed(tag::context_constructed(0), &[&der::octet_string(b"{}")]),
        ]);
        let error = open(&rebuild(&fields), None).unwrap_err();
        assert_eq!(error, EnvelopeError::Unsupported("content type 1.2.840.113549.1.7.2 (only id-data is)".into()));
    }

    #[test]
    fn a_content_info_of_another_type_is_not_pkcs7() {
        let data = der::sequence(&[&der::oid(oid::DATA), &der::constructed(0xA0, &[&der::octet_string(b"x")])]);
        let error = open(&data, None).unwrap_err();
        assert_eq!(error, EnvelopeError::NotPkcs7("content type 1.2.840.113549.1.7.1 is not signedData".into()));
    }
}
