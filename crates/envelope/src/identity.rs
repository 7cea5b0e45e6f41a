//! The server's signing identity (a CA and a signer it issued) and the CA certificate that
//! openers trust.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, date_time_ymd,
};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};

use crate::der::{self, tag};
use crate::error::IdentityError;
use crate::oid;
use crate::pem;
use crate::x509::{AlgorithmIdentifier, Certificate, Hash, PublicKey};

const CERTIFICATE_LABEL: &str = "CERTIFICATE";
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

fn invalid(what: &'static str, reason: impl Into<String>) -> IdentityError {
    IdentityError::Invalid { what, reason: reason.into() }
}

fn certificate_from_pem(text: &str, what: &'static str) -> Result<Certificate, IdentityError> {
    let der = pem::decode_first(text, &[CERTIFICATE_LABEL])
        .map_err(|reason| invalid(what, reason))?
        .ok_or_else(|| invalid(what, "no -----BEGIN CERTIFICATE----- block"))?;
    Certificate::from_der(&der).map_err(|error| invalid(what, format!("not an X.509 certificate ({error})")))
}

/// A CA certificate that openers trust: an envelope's signer must have been issued by it.
#[derive(Clone, PartialEq, Eq)]
pub struct CaCertificate {
    certificate: Certificate,
}

impl CaCertificate {
    /// The first `CERTIFICATE` block of `pem`.
    pub fn from_pem(pem: &str) -> Result<CaCertificate, IdentityError> {
        Ok(CaCertificate { certificate: certificate_from_pem(pem, "the CA certificate")? })
    }

    pub fn from_der(der: &[u8]) -> Result<CaCertificate, IdentityError> {
        let certificate = Certificate::from_der(der)
            .map_err(|error| invalid("the CA certificate", format!("not an X.509 certificate ({error})")))?;
        Ok(CaCertificate { certificate })
    }

    pub fn der(&self) -> &[u8] {
        &self.certificate.der
    }

    pub fn to_pem(&self) -> String {
        pem::encode(CERTIFICATE_LABEL, &self.certificate.der)
    }

    pub(crate) fn certificate(&self) -> &Certificate {
        &self.certificate
    }
}

impl fmt::Debug for CaCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCertificate").field("der_len", &self.certificate.der.len()).finish_non_exhaustive()
    }
}

/// A private key that seals envelopes.
pub(crate) enum SignerKey {
    Ecdsa { pair: EcdsaKeyPair, hash: Hash },
    Rsa(RsaKeyPair),
}

impl SignerKey {
    /// A PKCS#8 PrivateKeyInfo holding a P-256, P-384 or RSA key.
    fn from_pkcs8(pkcs8: &[u8]) -> Result<SignerKey, IdentityError> {
        let what = "the signer key";
        let unreadable = |reason: String| invalid(what, reason);
        let info = der::read_single(pkcs8, tag::SEQUENCE, "PrivateKeyInfo").map_err(|e| unreadable(e.to_string()))?;
        let mut fields = info.contents();
        let algorithm = fields
            .read(tag::INTEGER, "PrivateKeyInfo version")
            .and_then(|_| AlgorithmIdentifier::read(&mut fields, "PrivateKeyInfo algorithm"))
            .map_err(|e| unreadable(e.to_string()))?;
        let curve = algorithm.parameters.filter(|p| p.tag == tag::OID).map(|p| p.value);
        let rejected = |error: ring::error::KeyRejected| invalid(what, format!("key rejected: {error}"));
        match (algorithm.oid, curve) {
            (oid::EC_PUBLIC_KEY, Some(oid::P256)) => Ok(SignerKey::Ecdsa {
                pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &SystemRandom::new())
                    .map_err(rejected)?,
                hash: Hash::Sha256,
            }),
            (oid::EC_PUBLIC_KEY, Some(oid::P384)) => Ok(SignerKey::Ecdsa {
                pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8, &SystemRandom::new())
                    .map_err(rejected)?,
                hash: Hash::Sha384,
            }),
            (oid::RSA_ENCRYPTION, _) => Ok(SignerKey::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?)),
            (other, _) => Err(invalid(
                what,
                format!("unsupported key algorithm {} (P-256, P-384 or RSA are)", oid::dotted(other)),
            )),
        }
    }

    fn matches(&self, public_key: &PublicKey) -> bool {
        match (self, public_key) {
            (SignerKey::Ecdsa { pair, .. }, PublicKey::P256(key) | PublicKey::P384(key)) => {
                pair.public_key().as_ref() == key.as_slice()
            }
            (SignerKey::Rsa(pair), PublicKey::Rsa(key)) => pair.public().as_ref() == key.as_slice(),
            _ => false,
        }
    }

    pub(crate) fn hash(&self) -> Hash {
        match self {
            SignerKey::Ecdsa { hash, .. } => *hash,
            SignerKey::Rsa(_) => Hash::Sha256,
        }
    }

    /// The SignerInfo's signatureAlgorithm, as OpenSSL writes it for each kind of key.
    pub(crate) fn signature_algorithm(&self) -> Vec<u8> {
        match self {
            SignerKey::Ecdsa { hash: Hash::Sha384, .. } => der::sequence(&[&der::oid(oid::ECDSA_WITH_SHA384)]),
            SignerKey::Ecdsa { .. } => der::sequence(&[&der::oid(oid::ECDSA_WITH_SHA256)]),
            SignerKey::Rsa(_) => der::sequence(&[&der::oid(oid::RSA_ENCRYPTION), &der::encode(tag::NULL, &[])]),
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        match self {
            SignerKey::Ecdsa { pair, .. } => Ok(pair.sign(&rng, message)?.as_ref().to_vec()),
            SignerKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)?;
                Ok(signature)
            }
        }
    }
}

/// What the server seals envelopes with: a CA certificate (the one hosts trust), a signer
/// certificate the CA issued, and the signer's private key. All three are kept as PEM, the form
/// the server stores; the CA's private key is not kept (see [`SigningIdentity::generate`]).
pub struct SigningIdentity {
    ca_certificate_pem: String,
    signer_certificate_pem: String,
    signer_key_pem: String,
    ca: CaCertificate,
    signer: Certificate,
    key: SignerKey,
}

impl SigningIdentity {
    /// A new identity: an ECDSA P-256 CA named "`common_name` CA" and a P-256 signer named
    /// `common_name` that it issued, both signed with SHA-256 and valid from 1975 to 9999 (the
    /// identity is not rotated on a schedule, and hosts' clocks may be wrong).
    ///
    /// The CA key signs the signer certificate and is then dropped: nothing else needs it, and a
    /// key that is never stored cannot leak. A new signer means a new identity.
    pub fn generate(common_name: &str) -> Result<SigningIdentity, IdentityError> {
        let failed = |error: rcgen::Error| IdentityError::Generate(error.to_string());
        let name = |common_name: String| {
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, common_name);
            name
        };
        let not_after = date_time_ymd(9999, 12, 31);

        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name(format!("{common_name} CA"));
        // Path length 0: the CA issues signers only.
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_after = not_after;
        let ca_certificate = ca_params.self_signed(&ca_key).map_err(failed)?;

        let signer_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut signer_params = CertificateParams::default();
        signer_params.distinguished_name = name(common_name.to_string());
        signer_params.is_ca = IsCa::ExplicitNoCa;
        // No extended key usage: OpenSSL's S/MIME purpose check accepts a leaf without one.
        signer_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        signer_params.use_authority_key_identifier_extension = true;
        signer_params.not_after = not_after;
        let issuer = Issuer::new(ca_params, ca_key);
        let signer_certificate = signer_params.signed_by(&signer_key, &issuer).map_err(failed)?;

        SigningIdentity::from_pem(
            &pem::encode(CERTIFICATE_LABEL, ca_certificate.der()),
            &pem::encode(CERTIFICATE_LABEL, signer_certificate.der()),
            &pem::encode(PRIVATE_KEY_LABEL, signer_key.serialized_der()),
        )
    }

    /// Loads an identity stored as PEM, checking that the key belongs to the signer certificate
    /// and that the CA issued it. The key is PKCS#8 (`PRIVATE KEY`), unencrypted: P-256, P-384
    /// or RSA (2048 to 4096 bits).
    pub fn from_pem(
        ca_certificate_pem: &str,
        signer_certificate_pem: &str,
        signer_key_pem: &str,
    ) -> Result<SigningIdentity, IdentityError> {
        let ca = CaCertificate::from_pem(ca_certificate_pem)?;
        let signer = certificate_from_pem(signer_certificate_pem, "the signer certificate")?;
        let key_der = pem::decode_first(signer_key_pem, &[PRIVATE_KEY_LABEL])
            .map_err(|reason| invalid("the signer key", reason))?
            .ok_or_else(|| invalid("the signer key", "no -----BEGIN PRIVATE KEY----- (PKCS#8) block"))?;
        let key = SignerKey::from_pkcs8(&key_der)?;
        if !key.matches(&signer.public_key) {
            return Err(IdentityError::KeyMismatch);
        }
        signer.check_issued_by(ca.certificate()).map_err(|_| IdentityError::NotIssuedByCa)?;
        Ok(SigningIdentity {
            ca_certificate_pem: ca_certificate_pem.to_string(),
            signer_certificate_pem: signer_certificate_pem.to_string(),
            signer_key_pem: signer_key_pem.to_string(),
            ca,
            signer,
            key,
        })
    }

    /// The CA certificate, to install on hosts as the one they trust.
    pub fn ca_certificate_pem(&self) -> &str {
        &self.ca_certificate_pem
    }

    pub fn signer_certificate_pem(&self) -> &str {
        &self.signer_certificate_pem
    }

    /// The signer's private key (PKCS#8 PEM), to store: never log it.
    pub fn signer_key_pem(&self) -> &str {
        &self.signer_key_pem
    }

    pub fn ca_certificate(&self) -> &CaCertificate {
        &self.ca
    }

    pub(crate) fn signer(&self) -> &Certificate {
        &self.signer
    }

    pub(crate) fn key(&self) -> &SignerKey {
        &self.key
    }
}

impl fmt::Debug for SigningIdentity {
    // The private key stays out of Debug output (and so out of logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("ca", &self.ca)
            .field("signer_certificate_der_len", &self.signer.der.len())
            .field("signer_key", &"<redacted>")
            .finish()
    }
}
