//! The `PKCS7/JSON` envelope in which the server hands deployment specifications to host agents
//! (`GetDeploymentSpecification`'s `GenericEnvelope`).
//!
//! [`seal`] wraps the specification JSON in a CMS/PKCS#7 SignedData: content embedded as id-data,
//! SHA-256 digest, content-type and message-digest signed attributes, signer certificate
//! included, PEM-encoded as `-----BEGIN PKCS7-----`. That is what `openssl smime -sign -nodetach
//! -binary -outform PEM` makes, which the official agents read (`OpenSSL::PKCS7.new(payload).data`
//! in v1, signature and digest checked in v2). [`open`] is the agent's side: it checks the
//! structure, the digest and the signature with the embedded certificate and, given a trusted CA,
//! that the CA issued the signer.
//!
//! The server keeps a [`SigningIdentity`]: a CA (whose certificate hosts trust) and a signer it
//! issued. Everything here is pure computation on its arguments: no I/O, no clock.

mod der;
mod error;
mod identity;
mod oid;
mod pem;
mod signed_data;
mod x509;

pub use error::{EnvelopeError, IdentityError};
pub use identity::{CaCertificate, SigningIdentity};

/// The envelope's `Format`.
pub const FORMAT: &str = "PKCS7/JSON";

/// PEM labels of a SignedData: OpenSSL's `pkcs7`/`smime` write `PKCS7`, `openssl cms` writes `CMS`.
const PEM_LABELS: &[&str] = &["PKCS7", "CMS", "PKCS #7 SIGNED DATA"];

/// Seals `content` (the deployment specification JSON) into an envelope `Payload`: PEM of a
/// SignedData signed by `identity`. ECDSA signatures are randomised, so two seals of the same
/// content differ.
pub fn seal(content: &[u8], identity: &SigningIdentity) -> Result<String, EnvelopeError> {
    signed_data::build(content, identity).map(|der| pem::encode("PKCS7", &der))
}

/// Opens an envelope `Payload` (PEM, or bare base64 of the DER) and returns its content once the
/// digest and signature verify, and, with `trust`, the signer certificate was issued by that CA.
///
/// Certificate validity dates and extensions are not checked: the trust is in the one CA.
pub fn open(payload: &str, trust: Option<&CaCertificate>) -> Result<Vec<u8>, EnvelopeError> {
    let der = if payload.trim_start().starts_with("-----BEGIN ") {
        pem::decode_first(payload, PEM_LABELS)
            .map_err(EnvelopeError::NotPkcs7)?
            .ok_or_else(|| EnvelopeError::NotPkcs7("no -----BEGIN PKCS7----- block".into()))?
    } else {
        pem::decode_base64(payload).ok_or_else(|| EnvelopeError::NotPkcs7("neither PEM nor base64".into()))?
    };
    open_der(&der, trust)
}

/// [`open`] for the DER encoding.
pub fn open_der(der: &[u8], trust: Option<&CaCertificate>) -> Result<Vec<u8>, EnvelopeError> {
    signed_data::open(der, trust.map(CaCertificate::certificate))
}
