//! Object identifiers, as the contents octets of their DER encoding (what is compared and written).

/// id-data, 1.2.840.113549.1.7.1
pub(crate) const DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
/// id-signedData, 1.2.840.113549.1.7.2
pub(crate) const SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
/// id-contentType (signed attribute), 1.2.840.113549.1.9.3
pub(crate) const CONTENT_TYPE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03];
/// id-messageDigest (signed attribute), 1.2.840.113549.1.9.4
pub(crate) const MESSAGE_DIGEST: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04];

/// id-sha256, 2.16.840.1.101.3.4.2.1
pub(crate) const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-sha384, 2.16.840.1.101.3.4.2.2
pub(crate) const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
/// id-sha512, 2.16.840.1.101.3.4.2.3
pub(crate) const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

/// id-ecPublicKey, 1.2.840.10045.2.1
pub(crate) const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// prime256v1 (P-256), 1.2.840.10045.3.1.7
pub(crate) const P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// secp384r1 (P-384), 1.3.132.0.34
pub(crate) const P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
/// ecdsa-with-SHA256, 1.2.840.10045.4.3.2
pub(crate) const ECDSA_WITH_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
/// ecdsa-with-SHA384, 1.2.840.10045.4.3.3
pub(crate) const ECDSA_WITH_SHA384: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03];
/// ecdsa-with-SHA512, 1.2.840.10045.4.3.4
pub(crate) const ECDSA_WITH_SHA512: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x04];

/// rsaEncryption, 1.2.840.113549.1.1.1
pub(crate) const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
/// sha256WithRSAEncryption, 1.2.840.113549.1.1.11
pub(crate) const SHA256_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
/// sha384WithRSAEncryption, 1.2.840.113549.1.1.12
pub(crate) const SHA384_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0C];
/// sha512WithRSAEncryption, 1.2.840.113549.1.1.13
pub(crate) const SHA512_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0D];

/// id-ce-subjectKeyIdentifier, 2.5.29.14
pub(crate) const SUBJECT_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1D, 0x0E];

/// The dotted form of an OID's contents octets, for error messages. Falls back to hex when the
/// encoding is not a valid OID.
pub(crate) fn dotted(contents: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut current: u64 = 0;
    for (index, &byte) in contents.iter().enumerate() {
        if current > (u64::MAX >> 7) {
            return hex(contents);
        }
        current = (current << 7) | u64::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (current / 40).min(2);
                arcs.push(first);
                arcs.push(current - first * 40);
            } else {
                arcs.push(current);
            }
            current = 0;
        } else if index + 1 == contents.len() {
            return hex(contents);
        }
    }
    if arcs.is_empty() {
        return hex(contents);
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("0x{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a dotted OID independently of the constants above, to check them.
    fn encode(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u64> = dotted.split('.').map(|arc| arc.parse().unwrap()).collect();
        let mut out = Vec::new();
        let mut push = |mut value: u64| {
            let mut groups = vec![(value & 0x7F) as u8];
            value >>= 7;
            while value > 0 {
                groups.push(0x80 | (value & 0x7F) as u8);
                value >>= 7;
            }
            out.extend(groups.iter().rev());
        };
        push(arcs[0] * 40 + arcs[1]);
        arcs[2..].iter().for_each(|&arc| push(arc));
        out
    }

    #[test]
    fn constants_encode_their_dotted_names() {
        let table: &[(&[u8], &str)] = &[
            (DATA, "1.2.840.113549.1.7.1"),
            (SIGNED_DATA, "1.2.840.113549.1.7.2"),
            (CONTENT_TYPE, "1.2.840.113549.1.9.3"),
            (MESSAGE_DIGEST, "1.2.840.113549.1.9.4"),
            (SHA256, "2.16.840.1.101.3.4.2.1"),
            (SHA384, "2.16.840.1.101.3.4.2.2"),
            (SHA512, "2.16.840.1.101.3.4.2.3"),
            (EC_PUBLIC_KEY, "1.2.840.10045.2.1"),
            (P256, "1.2.840.10045.3.1.7"),
            (P384, "1.3.132.0.34"),
            (ECDSA_WITH_SHA256, "1.2.840.10045.4.3.2"),
            (ECDSA_WITH_SHA384, "1.2.840.10045.4.3.3"),
            (ECDSA_WITH_SHA512, "1.2.840.10045.4.3.4"),
            (RSA_ENCRYPTION, "1.2.840.113549.1.1.1"),
            (SHA256_WITH_RSA, "1.2.840.113549.1.1.11"),
            (SHA384_WITH_RSA, "1.2.840.113549.1.1.12"),
            (SHA512_WITH_RSA, "1.2.840.113549.1.1.13"),
            (SUBJECT_KEY_IDENTIFIER, "2.5.29.14"),
        ];
        for (constant, name) in table {
            assert_eq!(*constant, &encode(name)[..], "{name}");
            assert_eq!(dotted(constant), *name);
        }
    }

    #[test]
    fn dotted_shows_invalid_encodings_in_hex() {
        assert_eq!(dotted(&[0x2A, 0x86]), "0x2a86");
        assert_eq!(dotted(&[]), "0x");
        assert_eq!(dotted(&[0xFF; 12]), "0xffffffffffffffffffffffff");
    }
}
