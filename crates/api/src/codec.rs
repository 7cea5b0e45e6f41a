//! Decoding request bodies and encoding responses (AWS JSON 1.1).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Exception};

/// Decodes a request body into an operation's input shape. An empty body counts as `{}`.
/// A body that is not JSON, or whose field has the wrong type, is a `SerializationException`
/// naming the field, as AWS's protocol layer answers.
pub fn decode_input<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    // serde would also accept a JSON array for a struct; the protocol takes objects only.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(Exception::Serialization, "The request body must be a JSON object."));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("The request body is not valid JSON: {inner}")
        } else if path == "." {
            format!("The request body must be a JSON object: {inner}")
        } else {
            format!("Invalid value for field '{path}': {}", describe(&inner))
        };
        ApiError::new(Exception::Serialization, message)
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::new(Exception::Serialization, format!("The request body is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde_json's message without its trailing " at line L column C", which the path replaces.
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_owned(),
        None => text,
    }
}

pub fn encode_output<T: Serialize>(output: &T) -> Vec<u8> {
    // Operations without output (`()`) answer `{}`, as AWS does.
    match serde_json::to_vec(output) {
        Ok(bytes) if bytes != b"null" => bytes,
        _ => b"{}".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::{CreateApplicationInput, ListDeploymentsInput};

    #[test]
    fn empty_body_is_an_empty_object() {
        let input: CreateApplicationInput = decode_input(b"").unwrap();
        assert_eq!(input, CreateApplicationInput::default());
    }

    #[test]
    fn wrong_type_names_the_field() {
        let error = decode_input::<ListDeploymentsInput>(br#"{"createTimeRange": {"start": "soon"}}"#).unwrap_err();
        assert_eq!(error.exception, Exception::Serialization);
        assert!(error.message.contains("createTimeRange.start"), "{}", error.message);
    }

    #[test]
    fn malformed_json_is_a_serialization_error() {
        for body in [&b"{"[..], b"[1]", b"[]", b"\"text\"", b"{\"applicationName\": 1}", b"{} {}"] {
            let error = decode_input::<CreateApplicationInput>(body).unwrap_err();
            assert_eq!(error.exception, Exception::Serialization, "{}", String::from_utf8_lossy(body));
        }
    }
}
