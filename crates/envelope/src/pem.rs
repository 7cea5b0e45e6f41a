//! PEM (RFC 7468): base64 of DER between `-----BEGIN <label>-----` and `-----END <label>-----`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// PEM text with 64-character lines, as OpenSSL writes it.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 output is ASCII, so splitting its bytes keeps whole characters.
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The first block in `text` whose label is one of `labels`: `Ok(None)` when there is none,
/// an error when that block is not well-formed. Blocks with other labels are skipped, so a file
/// may hold a key and certificates together.
pub(crate) fn decode_first(text: &str, labels: &[&str]) -> Result<Option<Vec<u8>>, String> {
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|rest| rest.strip_suffix("-----")) else {
            continue;
        };
        if !labels.contains(&label) {
            continue;
        }
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        loop {
            match lines.next() {
                None => return Err(format!("the {label} block has no END line")),
                Some(line) if line == end => break,
                Some(line) if line.contains(':') => {
                    return Err(format!("the {label} block has headers (encrypted keys are not supported)"));
                }
                Some(line) => body.push_str(line),
            }
        }
        return STANDARD.decode(body).map(Some).map_err(|error| format!("the {label} block is not base64: {error}"));
    }
    Ok(None)
}

/// Base64 with any whitespace (line breaks) removed.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips_with_64_character_lines() {
        let der: Vec<u8> = (0..=255).collect();
        let text = encode("PKCS7", &der);
        assert!(text.starts_with("-----BEGIN PKCS7-----\n"));
        assert!(text.ends_with("\n-----END PKCS7-----\n"));
        assert!(text.lines().all(|line| line.len() <= 64));
        assert_eq!(decode_first(&text, &["PKCS7"]).unwrap(), Some(der.clone()));
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(decode_first(&crlf, &["PKCS7"]).unwrap(), Some(der));
    }

    #[test]
    fn decode_first_picks_the_wanted_label() {
        let text = format!("{}{}", encode("PRIVATE KEY", b"key"), encode("CERTIFICATE", b"cert"));
        assert_eq!(decode_first(&text, &["CERTIFICATE"]).unwrap(), Some(b"cert".to_vec()));
        assert_eq!(decode_first(&text, &["PKCS7"]).unwrap(), None);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        assert!(decode_first("-----BEGIN PKCS7-----\nAAAA\n", &["PKCS7"]).unwrap_err().contains("no END line"));
        let bad = "-----BEGIN PKCS7-----\n!!!!\n-----END PKCS7-----\n";
        assert!(decode_first(bad, &["PKCS7"]).unwrap_err().contains("not base64"));
        let encrypted = "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n-----END PRIVATE KEY-----\n";
        assert!(decode_first(encrypted, &["PRIVATE KEY"]).unwrap_err().contains("headers"));
    }

    #[test]
    fn bare_base64_may_be_wrapped() {
        assert_eq!(decode_base64("AAEC\nAw==\n"), Some(vec![0, 1, 2, 3]));
        assert_eq!(decode_base64("not base64!"), None);
    }
}
