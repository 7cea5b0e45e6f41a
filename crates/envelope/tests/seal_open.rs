//! Sealing and opening envelopes, and loading identities, without anything outside this crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use landfall_envelope::{CaCertificate, EnvelopeError, IdentityError, SigningIdentity, open, open_der, seal};

const SPEC: &[u8] = br#"{"DeploymentId":"d-ABCDEFGHI","DeploymentGroupId":"5d1e0d1c-7a33-4c35-9e4c-1b3a5f0e9a11","DeploymentGroupName":"dg","ApplicationName":"app","Revision":{"RevisionType":"S3","S3Revision":{"Bucket":"b","Key":"k.tar","BundleType":"tar"}}}"#;

fn identity(name: &str) -> SigningIdentity {
    SigningIdentity::generate(name).expect("generate an identity")
}

/// The DER inside a sealed PEM payload.
fn der_of(payload: &str) -> Vec<u8> {
    let body: String = payload.lines().filter(|line| !line.starts_with("-----")).collect();
    STANDARD.decode(body).expect("base64 body")
}

fn pem_of(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).unwrap()).collect();
    format!("-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n", lines.join("\n"))
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|window| window == needle).expect("needle in the envelope")
}

#[test]
fn a_sealed_envelope_opens_with_and_without_trust() {
    let identity = identity("Landfall round trip");
    let payload = seal(SPEC, &identity).unwrap();
    assert!(payload.starts_with("-----BEGIN PKCS7-----\n"), "{payload}");
    assert!(payload.ends_with("\n-----END PKCS7-----\n"), "{payload}");
    assert!(payload.lines().all(|line| line.len() <= 64));
    assert_eq!(open(&payload, None).unwrap(), SPEC);
    assert_eq!(open(&payload, Some(identity.ca_certificate())).unwrap(), SPEC);
    let ca = CaCertificate::from_pem(identity.ca_certificate_pem()).unwrap();
    assert_eq!(&ca, identity.ca_certificate());
    assert_eq!(open(&payload, Some(&ca)).unwrap(), SPEC);
}

#[test]
fn empty_and_large_contents_round_trip() {
    let identity = identity("Landfall sizes");
    let large: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for content in [&b""[..], b"{}", &large] {
        let payload = seal(content, &identity).unwrap();
        assert_eq!(open(&payload, Some(identity.ca_certificate())).unwrap(), content);
    }
}

#[test]
fn the_payload_may_be_bare_base64_or_der() {
    let identity = identity("Landfall encodings");
    let payload = seal(SPEC, &identity).unwrap();
    let der = der_of(&payload);
    assert_eq!(open_der(&der, Some(identity.ca_certificate())).unwrap(), SPEC);
    assert_eq!(open(&STANDARD.encode(&der), Some(identity.ca_certificate())).unwrap(), SPEC);
    let wrapped: String = payload.lines().filter(|line| !line.starts_with("-----")).collect::<Vec<_>>().join("\r\n");
    assert_eq!(open(&wrapped, None).unwrap(), SPEC);
    assert_eq!(open(&payload.replace('\n', "\r\n"), None).unwrap(), SPEC);
    // `openssl cms` labels its PEM `CMS`.
    assert_eq!(open(&payload.replace("PKCS7", "CMS"), None).unwrap(), SPEC);
}

#[test]
fn changed_content_is_a_digest_mismatch() {
    let identity = identity("Landfall tamper");
    let mut der = der_of(&seal(SPEC, &identity).unwrap());
    let at = find(&der, b"d-ABCDEFGHI");
    der[at + 2] = b'X';
    assert_eq!(open(&pem_of(&der), None), Err(EnvelopeError::DigestMismatch));
    assert_eq!(open(&pem_of(&der), Some(identity.ca_certificate())), Err(EnvelopeError::DigestMismatch));
}

#[test]
fn changed_content_with_a_recomputed_digest_is_a_bad_signature() {
    let identity = identity("Landfall tamper");
    let mut der = der_of(&seal(SPEC, &identity).unwrap());
    let old_digest = ring::digest::digest(&ring::digest::SHA256, SPEC);
    let at = find(&der, b"d-ABCDEFGHI");
    der[at + 2] = b'X';
    let mut changed = SPEC.to_vec();
    let spec_at = find(&changed, b"d-ABCDEFGHI");
    changed[spec_at + 2] = b'X';
    let new_digest = ring::digest::digest(&ring::digest::SHA256, &changed);
    let digest_at = find(&der, old_digest.as_ref());
    der[digest_at..digest_at + 32].copy_from_slice(new_digest.as_ref());
    assert_eq!(open(&pem_of(&der), None), Err(EnvelopeError::BadSignature));
}

#[test]
fn a_changed_signature_is_a_bad_signature() {
    let identity = identity("Landfall tamper");
    let mut der = der_of(&seal(SPEC, &identity).unwrap());
    // The signature is the last field of the last element: its final byte ends the encoding.
    *der.last_mut().unwrap() ^= 0x01;
    assert_eq!(open(&pem_of(&der), None), Err(EnvelopeError::BadSignature));
    assert_eq!(open(&pem_of(&der), Some(identity.ca_certificate())), Err(EnvelopeError::BadSignature));
}

#[test]
fn a_signer_from_another_ca_is_untrusted() {
    let ours = identity("Landfall CA one");
    let theirs = identity("Landfall CA two");
    let payload = seal(SPEC, &theirs).unwrap();
    assert_eq!(open(&payload, None).unwrap(), SPEC, "the envelope itself is sound");
    assert_eq!(open(&payload, Some(ours.ca_certificate())), Err(EnvelopeError::UntrustedSigner));
}

#[test]
fn a_ca_with_the_same_name_but_another_key_is_untrusted() {
    let ours = identity("Landfall same name");
    let theirs = identity("Landfall same name");
    assert_ne!(ours.ca_certificate_pem(), theirs.ca_certificate_pem());
    let payload = seal(SPEC, &theirs).unwrap();
    assert_eq!(open(&payload, Some(ours.ca_certificate())), Err(EnvelopeError::UntrustedSigner));
}

#[test]
fn what_is_not_a_signed_envelope_is_not_pkcs7() {
    let identity = identity("Landfall garbage");
    let not_pkcs7 = |payload: &str| match open(payload, None) {
        Err(EnvelopeError::NotPkcs7(reason)) => reason,
        other => panic!("{payload:?} gave {other:?}"),
    };
    assert_eq!(not_pkcs7(""), "ContentInfo: missing");
    assert_eq!(not_pkcs7("{\"DeploymentId\":\"d-1\"}"), "neither PEM nor base64");
    assert_eq!(not_pkcs7(identity.ca_certificate_pem()), "no -----BEGIN PKCS7----- block");
    assert!(not_pkcs7("-----BEGIN PKCS7-----\nAAAA\n").contains("no END line"));
    // A certificate relabelled as PKCS7 is DER, but not a ContentInfo.
    let relabelled = identity.ca_certificate_pem().replace("CERTIFICATE", "PKCS7");
    assert!(not_pkcs7(&relabelled).starts_with("ContentInfo"), "{}", not_pkcs7(&relabelled));
    assert_eq!(
        not_pkcs7(&STANDARD.encode([0x30, 0x80, 0, 0])),
        "ContentInfo: indefinite-length (BER) encoding is not supported"
    );
}

#[test]
fn every_truncation_is_an_error() {
    let identity = identity("Landfall truncation");
    let der = der_of(&seal(SPEC, &identity).unwrap());
    for length in 0..der.len() {
        assert!(matches!(open_der(&der[..length], None), Err(EnvelopeError::NotPkcs7(_))), "length {length}");
    }
}

#[test]
fn no_single_byte_change_yields_other_content() {
    let identity = identity("Landfall bit flips");
    let der = der_of(&seal(b"{\"a\":1}", &identity).unwrap());
    let mut accepted = 0;
    for index in 0..der.len() {
        for flip in [0x01, 0x80] {
            let mut changed = der.clone();
            changed[index] ^= flip;
            // With trust, a change either fails or leaves the returned content as it was (the
            // few fields no signature covers, such as the SignedData's digest algorithm list).
            if let Ok(content) = open_der(&changed, Some(identity.ca_certificate())) {
                assert_eq!(content, b"{\"a\":1}", "byte {index} ^ {flip:#x}");
                accepted += 1;
            }
        }
    }
    // The uncovered bytes: the SignedData version (1), its digest algorithm list's contents (13)
    // and the SignerInfo version (1), each changed two ways.
    assert!(accepted <= 30, "{accepted} changes were accepted");
}

#[test]
fn an_identity_reloads_from_its_pem() {
    let generated = identity("Landfall reload");
    let reloaded = SigningIdentity::from_pem(
        generated.ca_certificate_pem(),
        generated.signer_certificate_pem(),
        generated.signer_key_pem(),
    )
    .unwrap();
    assert_eq!(reloaded.ca_certificate_pem(), generated.ca_certificate_pem());
    assert_eq!(reloaded.signer_certificate_pem(), generated.signer_certificate_pem());
    assert_eq!(reloaded.signer_key_pem(), generated.signer_key_pem());
    let payload = seal(SPEC, &reloaded).unwrap();
    assert_eq!(open(&payload, Some(generated.ca_certificate())).unwrap(), SPEC);
    assert!(generated.ca_certificate_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(generated.signer_key_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
}

#[test]
fn mismatched_identity_parts_are_refused() {
    let one = identity("Landfall one");
    let two = identity("Landfall two");
    let same_name = identity("Landfall one");
    let load = |ca: &SigningIdentity, cert: &SigningIdentity, key: &SigningIdentity| {
        SigningIdentity::from_pem(ca.ca_certificate_pem(), cert.signer_certificate_pem(), key.signer_key_pem())
    };
    assert_eq!(load(&one, &one, &two).unwrap_err(), IdentityError::KeyMismatch);
    assert_eq!(load(&one, &two, &two).unwrap_err(), IdentityError::NotIssuedByCa);
    assert_eq!(load(&one, &same_name, &same_name).unwrap_err(), IdentityError::NotIssuedByCa);
}

#[test]
fn unreadable_identity_parts_say_which() {
    let one = identity("Landfall unreadable");
    let what = |result: Result<SigningIdentity, IdentityError>| match result {
        Err(IdentityError::Invalid { what, .. }) => what,
        other => panic!("{other:?}"),
    };
    let (ca, cert, key) = (one.ca_certificate_pem(), one.signer_certificate_pem(), one.signer_key_pem());
    assert_eq!(what(SigningIdentity::from_pem("", cert, key)), "the CA certificate");
    assert_eq!(what(SigningIdentity::from_pem(ca, key, key)), "the signer certificate");
    assert_eq!(what(SigningIdentity::from_pem(ca, cert, cert)), "the signer key");
    let bad_key = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
    assert_eq!(what(SigningIdentity::from_pem(ca, cert, bad_key)), "the signer key");
    assert!(CaCertificate::from_der(b"not DER").is_err());
    assert_eq!(CaCertificate::from_der(one.ca_certificate().der()).unwrap(), *one.ca_certificate());
}

#[test]
fn debug_output_leaves_the_private_key_out() {
    let identity = identity("Landfall debug");
    let debug = format!("{identity:?}");
    let key_body: String = identity.signer_key_pem().lines().filter(|line| !line.starts_with("-----")).collect();
    assert!(debug.contains("<redacted>"), "{debug}");
    for line in identity.signer_key_pem().lines().filter(|line| !line.starts_with("-----")) {
        assert!(!debug.contains(line), "{debug}");
    }
    assert!(!debug.contains(&key_body[..16]));
}

#[test]
fn each_identity_has_its_own_keys() {
    let one = identity("Landfall same");
    let two = identity("Landfall same");
    assert_ne!(one.signer_key_pem(), two.signer_key_pem());
    assert_ne!(one.signer_certificate_pem(), two.signer_certificate_pem());
}
