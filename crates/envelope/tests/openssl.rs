//! Interoperability with OpenSSL, the library the official agent opens envelopes with: what
//! `seal` makes verifies with `openssl smime`/`cms`, and what `openssl smime -sign` makes opens.
//! The `openssl` CLI is required (scripts/test installs it); without it these tests fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use landfall_envelope::{CaCertificate, EnvelopeError, SigningIdentity, open, open_der, seal};

const SPEC: &[u8] = br#"{"DeploymentId":"d-OPENSSL01","DeploymentGroupId":"0b8f5c36-2f0e-4b8e-a1a6-5c3f3e0d7e21","DeploymentGroupName":"dg","ApplicationName":"app","Revision":{"RevisionType":"S3","S3Revision":{"Bucket":"b","Key":"k.tar","BundleType":"tar"}}}"#;

/// A directory of its own for each test, removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique =
            format!("landfall-envelope-{}-{}-{name}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        std::fs::write(self.0.join(name), contents).expect("write a test file");
        name.to_string()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.join(name)).expect("read a test file")
    }

    fn read_text(&self, name: &str) -> String {
        String::from_utf8(self.read(name)).expect("a text file")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl` in `dir`; fails the test clearly when the binary is missing.
fn openssl(dir: &TempDir, args: &[&str]) -> Output {
    match Command::new("openssl").args(args).current_dir(dir.path()).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            panic!("the `openssl` command is required by these tests and was not found (apt-get install openssl)")
        }
        Err(error) => panic!("running openssl {args:?}: {error}"),
    }
}

/// Runs `openssl` and requires success.
fn openssl_ok(dir: &TempDir, args: &[&str]) -> Vec<u8> {
    let output = openssl(dir, args);
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// OpenSSL configuration for the certificates the tests make with `openssl` itself.
const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[signer]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Makes `ca.pem` and a signer (`signer.pem`, `signer.key`) it issued, with OpenSSL only.
/// `key_options` are `openssl genpkey` arguments.
fn openssl_identity(dir: &TempDir, key_options: &[&str]) {
    dir.write("openssl.cnf", OPENSSL_CONFIG);
    for key in ["ca.key", "signer.key"] {
        let mut args = vec!["genpkey", "-out", key];
        args.extend_from_slice(key_options);
        openssl_ok(dir, &args);
    }
    #[rustfmt::skip]
    openssl_ok(dir, &["req", "-config", "openssl.cnf", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=OpenSSL interop CA",
        "-days", "3650", "-extensions", "ca", "-out", "ca.pem"]);
    #[rustfmt::skip]
    openssl_ok(dir, &["req", "-config", "openssl.cnf", "-new", "-key", "signer.key", "-subj", "/CN=OpenSSL interop signer",
        "-out", "signer.csr"]);
    #[rustfmt::skip]
    openssl_ok(dir, &["x509", "-req", "-in", "signer.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "4242",
        "-days", "3650", "-extfile", "openssl.cnf", "-extensions", "signer", "-out", "signer.pem"]);
}

const P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
const P384: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"];
const RSA2048: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];

/// Writes the identity's certificates and key as `ca.pem`, `signer.pem` and `signer.key`.
fn write_identity(dir: &TempDir, identity: &SigningIdentity) {
    dir.write("ca.pem", identity.ca_certificate_pem());
    dir.write("signer.pem", identity.signer_certificate_pem());
    dir.write("signer.key", identity.signer_key_pem());
}

/// `openssl smime -sign` of SPEC with `signer.pem`/`signer.key`, plus `extra` arguments: the
/// bytes it writes.
fn openssl_sign_bytes(dir: &TempDir, extra: &[&str]) -> Vec<u8> {
    dir.write("spec.json", SPEC);
    let mut args =
        vec!["smime", "-sign", "-binary", "-in", "spec.json", "-signer", "signer.pem", "-inkey", "signer.key"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-out", "signed.out"]);
    openssl_ok(dir, &args);
    dir.read("signed.out")
}

/// [`openssl_sign_bytes`] for PEM output.
fn openssl_sign(dir: &TempDir, extra: &[&str]) -> String {
    String::from_utf8(openssl_sign_bytes(dir, extra)).expect("PEM output")
}

/// The way the official agent's envelopes were observed to be made.
const OBSERVED: &[&str] = &["-nodetach", "-outform", "PEM"];

#[test]
fn sealed_envelopes_verify_with_openssl_smime_and_cms() {
    let dir = TempDir::new("seal-verify");
    let identity = SigningIdentity::generate("Landfall interop").unwrap();
    write_identity(&dir, &identity);
    dir.write("x.pem", seal(SPEC, &identity).unwrap());

    let smime = openssl_ok(&dir, &["smime", "-verify", "-inform", "PEM", "-CAfile", "ca.pem", "-in", "x.pem"]);
    assert_eq!(smime, SPEC);
    let cms = openssl_ok(&dir, &["cms", "-verify", "-inform", "PEM", "-CAfile", "ca.pem", "-in", "x.pem"]);
    assert_eq!(cms, SPEC);
    // The chain OpenSSL builds also holds for the certificate on its own.
    let verify = openssl_ok(&dir, &["verify", "-CAfile", "ca.pem", "signer.pem"]);
    assert_eq!(String::from_utf8_lossy(&verify).trim(), "signer.pem: OK");
}

#[test]
fn openssl_pkcs7_reads_the_signer_certificate() {
    let dir = TempDir::new("print-certs");
    let identity = SigningIdentity::generate("Landfall interop").unwrap();
    dir.write("x.pem", seal(SPEC, &identity).unwrap());
    let printed =
        String::from_utf8(openssl_ok(&dir, &["pkcs7", "-inform", "PEM", "-print_certs", "-in", "x.pem"])).unwrap();
    assert!(printed.contains("subject=CN = Landfall interop\n"), "{printed}");
    assert!(printed.contains("issuer=CN = Landfall interop CA\n"), "{printed}");
    assert!(printed.contains(identity.signer_certificate_pem()), "{printed}");
    assert_eq!(printed.matches("-----BEGIN CERTIFICATE-----").count(), 1, "{printed}");
}

#[test]
fn openssl_refuses_a_sealed_envelope_under_another_ca_or_changed() {
    // Controls that the verification above is a real check.
    let dir = TempDir::new("seal-refused");
    let identity = SigningIdentity::generate("Landfall interop").unwrap();
    let other = SigningIdentity::generate("Landfall interop").unwrap();
    dir.write("other-ca.pem", other.ca_certificate_pem());
    dir.write("ca.pem", identity.ca_certificate_pem());
    let payload = seal(SPEC, &identity).unwrap();
    dir.write("x.pem", &payload);
    let refused = openssl(&dir, &["smime", "-verify", "-inform", "PEM", "-CAfile", "other-ca.pem", "-in", "x.pem"]);
    assert!(!refused.status.success(), "openssl accepted a signer from another CA");

    // OpenSSL re-encodes what it parsed; identical bytes mean the envelope is canonical DER.
    let der = openssl_ok(&dir, &["pkcs7", "-inform", "PEM", "-outform", "DER", "-in", "x.pem"]);
    let body: String = payload.lines().filter(|line| !line.starts_with("-----")).collect();
    assert_eq!(der, base64::engine::general_purpose::STANDARD.decode(body).unwrap());
    let mut changed = der.clone();
    let at = changed.windows(11).position(|w| w == b"d-OPENSSL01").unwrap();
    changed[at + 2] = b'X';
    dir.write("changed.der", &changed);
    let refused = openssl(&dir, &["smime", "-verify", "-inform", "DER", "-CAfile", "ca.pem", "-in", "changed.der"]);
    assert!(!refused.status.success(), "openssl accepted changed content");
}

#[test]
fn an_openssl_envelope_made_with_our_identity_opens() {
    let dir = TempDir::new("ours-signed-by-openssl");
    let identity = SigningIdentity::generate("Landfall interop").unwrap();
    write_identity(&dir, &identity);
    let payload = openssl_sign(&dir, OBSERVED);
    assert!(payload.starts_with("-----BEGIN PKCS7-----"), "{payload}");
    assert_eq!(open(&payload, Some(identity.ca_certificate())).unwrap(), SPEC);
    assert_eq!(open(&payload, None).unwrap(), SPEC);
    let other = SigningIdentity::generate("Landfall other").unwrap();
    assert_eq!(open(&payload, Some(other.ca_certificate())), Err(EnvelopeError::UntrustedSigner));
}

/// For each kind of key, an identity made entirely by OpenSSL: its envelopes open, and the
/// identity loads into `SigningIdentity` and seals envelopes OpenSSL verifies.
fn openssl_identity_round_trip(name: &str, key_options: &[&str]) {
    let dir = TempDir::new(name);
    openssl_identity(&dir, key_options);
    let ca = CaCertificate::from_pem(&dir.read_text("ca.pem")).unwrap();
    let payload = openssl_sign(&dir, OBSERVED);
    assert_eq!(open(&payload, Some(&ca)).unwrap(), SPEC, "{name}: openssl's envelope");
    let ours = SigningIdentity::generate("Landfall interop").unwrap();
    assert_eq!(open(&payload, Some(ours.ca_certificate())), Err(EnvelopeError::UntrustedSigner), "{name}");

    let identity =
        SigningIdentity::from_pem(&dir.read_text("ca.pem"), &dir.read_text("signer.pem"), &dir.read_text("signer.key"))
            .unwrap();
    dir.write("x.pem", seal(SPEC, &identity).unwrap());
    let verified = openssl_ok(&dir, &["smime", "-verify", "-inform", "PEM", "-CAfile", "ca.pem", "-in", "x.pem"]);
    assert_eq!(verified, SPEC, "{name}: our envelope under openssl");
}

#[test]
fn openssl_p256_identities_interoperate() {
    openssl_identity_round_trip("p256", P256);
}

#[test]
fn openssl_p384_identities_interoperate() {
    openssl_identity_round_trip("p384", P384);
}

#[test]
fn openssl_rsa_identities_interoperate() {
    openssl_identity_round_trip("rsa2048", RSA2048);
}

#[test]
fn openssl_envelope_variants_open() {
    let dir = TempDir::new("variants");
    openssl_identity(&dir, RSA2048);
    let ca = CaCertificate::from_pem(&dir.read_text("ca.pem")).unwrap();
    for md in ["sha256", "sha384", "sha512"] {
        let payload = openssl_sign(&dir, &["-nodetach", "-outform", "PEM", "-md", md]);
        assert_eq!(open(&payload, Some(&ca)).unwrap(), SPEC, "-md {md}");
    }
    // No signed attributes: the signature covers the content itself.
    let payload = openssl_sign(&dir, &["-nodetach", "-outform", "PEM", "-noattr"]);
    assert_eq!(open(&payload, Some(&ca)).unwrap(), SPEC, "-noattr");
    // DER output, read as DER and as bare base64.
    let der = openssl_sign_bytes(&dir, &["-nodetach", "-outform", "DER"]);
    assert_eq!(open_der(&der, Some(&ca)).unwrap(), SPEC);
    assert_eq!(open(&base64::engine::general_purpose::STANDARD.encode(&der), Some(&ca)).unwrap(), SPEC);
    // `openssl cms` with the signer named by subject key identifier, PEM labelled `CMS`.
    #[rustfmt::skip]
    openssl_ok(&dir, &["cms", "-sign", "-nodetach", "-binary", "-outform", "PEM", "-keyid", "-in", "spec.json",
        "-signer", "signer.pem", "-inkey", "signer.key", "-out", "cms.pem"]);
    let payload = dir.read_text("cms.pem");
    assert!(payload.starts_with("-----BEGIN CMS-----"), "{payload}");
    assert_eq!(open(&payload, Some(&ca)).unwrap(), SPEC, "cms -keyid");
}

#[test]
fn incomplete_openssl_envelopes_are_refused() {
    let dir = TempDir::new("incomplete");
    let identity = SigningIdentity::generate("Landfall interop").unwrap();
    write_identity(&dir, &identity);
    let payload = openssl_sign(&dir, &["-nodetach", "-outform", "PEM", "-nocerts"]);
    assert_eq!(open(&payload, None), Err(EnvelopeError::SignerCertificateMissing), "-nocerts");
    let payload = openssl_sign(&dir, &["-outform", "PEM"]);
    assert_eq!(open(&payload, None), Err(EnvelopeError::DetachedContent), "detached");
    // ring has no ECDSA with SHA-512; say so rather than call the signature bad.
    let payload = openssl_sign(&dir, &["-nodetach", "-outform", "PEM", "-md", "sha512"]);
    assert!(matches!(open(&payload, None), Err(EnvelopeError::Unsupported(_))), "{:?}", open(&payload, None));
    // Streaming makes indefinite-length BER, which is refused with a reason.
    let payload = openssl_sign(&dir, &["-nodetach", "-outform", "PEM", "-stream"]);
    match open(&payload, None) {
        Err(EnvelopeError::NotPkcs7(reason)) => assert!(reason.contains("indefinite-length"), "{reason}"),
        other => panic!("streamed envelope gave {other:?}"),
    }
}
