//! Reading the keys of one YAML mapping against the keys it may have: known keys are looked up,
//! duplicates and unknown keys become warnings (the official agent and service ignore them, so a
//! misspelt key silently does nothing there).

use crate::diagnostic::{Checker, Position};
use crate::yaml::Node;

/// The keys one kind of mapping takes.
pub(crate) struct Shape {
    /// The mapping, as messages name it: "the AppSpec file", "a files entry".
    pub what: &'static str,
    pub known: &'static [&'static str],
    /// Lambda and ECS AppSpec keys are matched regardless of case (the guide spells them in lower
    /// case, SAM and most examples in PascalCase); Server keys are exact, as the agent reads them.
    pub case_insensitive: bool,
    /// Extra advice for an unknown key, e.g. where the key belongs instead.
    pub hint: fn(&str) -> Option<String>,
}

pub(crate) fn no_hint(_: &str) -> Option<String> {
    None
}

/// The known keys found in one mapping. Entries keep the mapping's own key node, for positions.
pub(crate) struct Fields<'a> {
    found: Vec<(&'static str, &'a Node, &'a Node)>,
}

impl<'a> Fields<'a> {
    /// Reads `entries` against `shape`, recording warnings for duplicate and unknown keys. As Psych
    /// does, the last of duplicate keys wins.
    pub(crate) fn read(entries: &'a [(Node, Node)], shape: &Shape, c: &mut Checker) -> Fields<'a> {
        let mut found: Vec<(&'static str, &'a Node, &'a Node)> = Vec::new();
        for (key, value) in entries {
            let text = key.text().unwrap_or("");
            let known = shape
                .known
                .iter()
                .copied()
                .find(|k| if shape.case_insensitive { k.eq_ignore_ascii_case(text) } else { *k == text });
            let Some(name) = known.filter(|_| key.as_scalar().is_some()) else {
                unknown_key(key, text, shape, c);
                continue;
            };
            if let Some(slot) = found.iter_mut().find(|(n, ..)| *n == name) {
                c.warning(
                    key.pos,
                    format!(
                        "The key {text} appears more than once in {}; only the last one is used (as the official agent does).",
                        shape.what
                    ),
                );
                *slot = (name, key, value);
            } else {
                found.push((name, key, value));
            }
        }
        Fields { found }
    }

    /// The value of a known key, if present (possibly null).
    pub(crate) fn get(&self, name: &str) -> Option<&'a Node> {
        self.entry(name).map(|(_, v)| v)
    }

    /// The key node and value of a known key.
    pub(crate) fn entry(&self, name: &str) -> Option<(&'a Node, &'a Node)> {
        self.found.iter().find(|(n, ..)| *n == name).map(|&(_, k, v)| (k, v))
    }

    /// The value of a known key, treating a null value (`key:` with nothing after it) as absent,
    /// the way the agent's `hash['key'].nil?` checks do.
    pub(crate) fn value(&self, name: &str) -> Option<&'a Node> {
        self.get(name).filter(|v| !v.is_null())
    }
}

fn unknown_key(key: &Node, text: &str, shape: &Shape, c: &mut Checker) {
    let shown = if key.as_scalar().is_some() { format!("'{text}'") } else { format!("({})", key.describe()) };
    let mut message = format!("{} has the unknown key {shown}, which is ignored.", capitalise(shape.what));
    if let Some(hint) = (shape.hint)(text) {
        message.push(' ');
        message.push_str(&hint);
    } else if let Some(close) = suggestion(text, shape.known) {
        if close.eq_ignore_ascii_case(text) {
            message.push_str(&format!(" Keys are case-sensitive: write '{close}'."));
        } else {
            message.push_str(&format!(" Did you mean '{close}'?"));
        }
    }
    c.warning(key.pos, message);
}

pub(crate) fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely misspelling: equal when
/// case, spaces, dashes and underscores are ignored, or within a small edit distance.
pub(crate) fn suggestion<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let norm = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    let w = norm(word);
    if w.is_empty() {
        return None;
    }
    if let Some(same) = candidates.iter().find(|c| norm(c) == w) {
        return Some(same);
    }
    let limit = (w.chars().count() / 4).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(&w, &norm(c)), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb { diagonal } else { 1 + diagonal.min(above).min(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Where a problem with a key's value points: at the value, or at the key when the value is empty
/// (an empty value has no text of its own to point at).
pub(crate) fn at(key: &Node, value: &Node) -> Position {
    if value.is_null() && value.as_scalar().is_some_and(|s| s.text.is_empty()) { key.pos } else { value.pos }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_spacing_case_and_typos() {
        let events = ["BeforeInstall", "AfterInstall", "ApplicationStart"];
        assert_eq!(suggestion("Before Install", &events), Some("BeforeInstall"));
        assert_eq!(suggestion("afterinstall", &events), Some("AfterInstall"));
        assert_eq!(suggestion("AplicationStart", &events), Some("ApplicationStart"));
        assert_eq!(suggestion("Deploy", &events), None);
        assert_eq!(suggestion("", &events), None);
    }
}
