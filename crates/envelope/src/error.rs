//! Errors of sealing, opening and loading identities.

/// Why an envelope could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The payload is not PEM, base64 or DER of a PKCS#7/CMS SignedData (the reason says where).
    #[error("not a PKCS#7 signed envelope: {0}")]
    NotPkcs7(String),
    /// A well-formed SignedData whose content is not embedded.
    #[error("the envelope's content is detached; a deployment specification must be embedded")]
    DetachedContent,
    /// A content type, digest, key or signature algorithm this crate does not handle.
    #[error("unsupported in a PKCS#7 envelope: {0}")]
    Unsupported(String),
    /// No certificate in the envelope matches the signer.
    #[error("the envelope does not include its signer's certificate")]
    SignerCertificateMissing,
    /// The content's digest differs from the signed message-digest attribute.
    #[error("the envelope's content does not match its signed message digest")]
    DigestMismatch,
    /// The signature does not verify with the signer's certificate.
    #[error("the envelope's signature does not verify with its signer's certificate")]
    BadSignature,
    /// The signer's certificate was not issued by the trusted CA.
    #[error("the envelope's signer certificate was not issued by the trusted CA")]
    UntrustedSigner,
    /// Sealing failed: ring's signing can only fail when the system random number generator does.
    #[error("signing the envelope failed (system random number generator)")]
    SigningFailed,
}

/// Why a signing identity or CA certificate could not be generated or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A PEM input is unreadable: `what` names which one.
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// The signer key's public half is not the signer certificate's key.
    #[error("the signer key does not belong to the signer certificate")]
    KeyMismatch,
    /// The signer certificate's issuer is not the CA certificate, or its signature does not verify.
    #[error("the signer certificate was not issued by the CA certificate")]
    NotIssuedByCa,
    /// Generating keys or certificates failed.
    #[error("generating the signing identity failed: {0}")]
    Generate(String),
}
