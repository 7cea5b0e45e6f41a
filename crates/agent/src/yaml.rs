//! The agent's configuration files are flat YAML mappings (`:root_dir: /opt/...`). This reads
//! one into its keys and scalar values, remembering each key's line for error messages. Keys
//! written as Ruby symbols (`:key`) and plain keys (`key`) are the same key.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    /// Nothing after the key, `~` or `null`.
    Null,
    /// A scalar; `quoted` when it was written in quotes or as a block (always a string then).
    Text { text: String, quoted: bool },
    /// A list or mapping: no key the agent reads takes one.
    Nested,
}

impl RawValue {
    fn from_scalar(text: String, style: ScalarStyle) -> RawValue {
        let quoted = style != ScalarStyle::Plain;
        if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
            RawValue::Null
        } else {
            RawValue::Text { text, quoted }
        }
    }
}

/// A key, its value and the line (from 1) the key is on.
pub type Entry = (String, RawValue, usize);

/// Reads the top-level mapping of the first document. An empty document is an empty mapping.
/// Errors carry the line they point at.
pub fn read_flat_mapping(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut parser = Parser::new_from_str(text);
    let mut entries = Vec::new();
    // Depth of the collection being read: 0 outside the top mapping, 1 inside it.
    let mut depth = 0usize;
    let mut pending_key: Option<(String, usize)> = None;
    let mut seen_top = false;
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(item)) => item,
            Some(Err(error)) => {
                return Err((error.marker().line().max(1), format!("not valid YAML: {}", error.info())));
            }
        };
        let line = span.start.line().max(1);
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentStart(_) => {}
            Event::StreamEnd | Event::DocumentEnd => break,
            Event::Alias(_) => {
                if depth == 1 {
                    take_value(&mut pending_key, &mut entries, RawValue::Nested, line)?;
                }
            }
            Event::Scalar(value, style, _, _) => match depth {
                0 if value.trim().is_empty() || RawValue::from_scalar(value.to_string(), style) == RawValue::Null => {
                    seen_top = true;
                }
                0 => return Err((line, "must be a mapping of settings (key: value)".into())),
                1 => match pending_key.take() {
                    Some((key, key_line)) => {
                        entries.push((key, RawValue::from_scalar(value.into_owned(), style), key_line))
                    }
                    None => pending_key = Some((value.trim_start_matches(':').to_owned(), line)),
                },
                _ => {}
            },
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                match depth {
                    0 if seen_top => {}
                    0 if matches!(event, Event::SequenceStart(..)) => {
                        return Err((line, "must be a mapping of settings (key: value), not a list".into()));
                    }
                    0 => seen_top = true,
                    1 => take_value(&mut pending_key, &mut entries, RawValue::Nested, line)?,
                    _ => {}
                }
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
        }
    }
    Ok(entries)
}

fn take_value(
    pending_key: &mut Option<(String, usize)>,
    entries: &mut Vec<Entry>,
    value: RawValue,
    line: usize,
) -> Result<(), (usize, String)> {
    match pending_key.take() {
        Some((key, key_line)) => {
            entries.push((key, value, key_line));
            Ok(())
        }
        None => Err((line, "a key must be a plain name, not a list or mapping".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> RawValue {
        RawValue::Text { text: s.into(), quoted: false }
    }

    #[test]
    fn reads_symbol_and_plain_keys() {
        let entries =
            read_flat_mapping("---\n:root_dir: '/opt/x'\nmax_revisions: 5\n:proxy_uri:\n:plugins:\n  - a\n:z: 1\n")
                .unwrap();
        assert_eq!(
            entries,
            vec![
                ("root_dir".into(), RawValue::Text { text: "/opt/x".into(), quoted: true }, 2),
                ("max_revisions".into(), text("5"), 3),
                ("proxy_uri".into(), RawValue::Null, 4),
                ("plugins".into(), RawValue::Nested, 5),
                ("z".into(), text("1"), 7),
            ]
        );
    }

    #[test]
    fn empty_documents_and_errors() {
        assert_eq!(read_flat_mapping("").unwrap(), vec![]);
        assert_eq!(read_flat_mapping("---\n# nothing\n").unwrap(), vec![]);
        assert!(read_flat_mapping("just a string").is_err());
        assert!(read_flat_mapping("- a\n- b\n").is_err());
        let (line, message) = read_flat_mapping("a: 1\nb: 'open\n").unwrap_err();
        assert!(line >= 2 && message.contains("not valid YAML"), "{line} {message}");
    }
}
