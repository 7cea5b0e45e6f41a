//! Identifiers and secrets: random strings from the operating system's source, UUIDs and
//! deployment ids.

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// `len` random characters of `alphabet`.
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    let bytes = random_bytes::<64>();
    // 64 random bytes cover every length used here; modulo bias is negligible for these alphabets.
    bytes.iter().take(len).map(|b| alphabet[usize::from(*b) % alphabet.len()] as char).collect()
}

pub const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new deployment id: `d-` and nine upper-case letters and digits.
pub fn new_deployment_id() -> String {
    format!("d-{}", random_string(UPPER_ALNUM, 9))
}
