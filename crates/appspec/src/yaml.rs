//! The YAML front end: saphyr-parser's events turned into a small tree whose nodes remember where
//! they start, so that every later problem can point at a line and column.
//!
//! It loads what the official agent's loader (Ruby's Psych, `YAML.load`) loads, the way it loads it:
//! only the first document counts, aliases are refused (Psych 4 refuses them), and plain scalars are
//! typed by YAML 1.1 rules (`yes` is a boolean, `0644` an octal integer), which is what decides, for
//! example, that `version: 0.0` is the number the agent wants and `version: "0.0"` is not. JSON is
//! read as YAML, as Psych reads it (tabs between JSON tokens included).

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

use crate::diagnostic::{Checker, Position};

/// Deeper nesting than any AppSpec needs (ECS goes six levels down) is refused, which also keeps the
/// tree's recursive drop and the validators far from the stack's limit on hostile input.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub pos: Position,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    /// The value with YAML's quoting and folding undone.
    pub text: String,
    /// Quoted, block (`|`, `>`) or tagged `!!str`: always a string, never a number, boolean or null.
    pub quoted: bool,
}

/// What a plain scalar means under the YAML 1.1 rules Psych applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Typed {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

impl Scalar {
    pub(crate) fn typed(&self) -> Typed {
        if self.quoted {
            return Typed::Str;
        }
        let t = self.text.as_str();
        if matches!(t, "" | "~" | "null" | "Null" | "NULL") {
            return Typed::Null;
        }
        let lower = t.to_ascii_lowercase();
        if matches!(lower.as_str(), "yes" | "true" | "on") {
            return Typed::Bool(true);
        }
        if matches!(lower.as_str(), "no" | "false" | "off") {
            return Typed::Bool(false);
        }
        if let Some(i) = yaml11_int(t) {
            return Typed::Int(i);
        }
        if let Some(f) = yaml11_float(t) {
            return Typed::Float(f);
        }
        Typed::Str
    }

    pub(crate) fn is_null(&self) -> bool {
        self.typed() == Typed::Null
    }

    /// The value as a number, if it is one (an integer or a float, not a quoted string).
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self.typed() {
            #[allow(clippy::cast_precision_loss)] // only compared with small values
            Typed::Int(i) => Some(i as f64),
            Typed::Float(f) => Some(f),
            _ => None,
        }
    }
}

/// A YAML 1.1 integer as Psych reads it: decimal, `0x` hexadecimal, `0b` binary and leading-zero
/// octal, with an optional sign and `_` separators.
fn yaml11_int(t: &str) -> Option<i128> {
    let (negative, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(rest) = body.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = body.strip_prefix("0b") {
        (2, rest)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if !digits.starts_with(|c: char| c.is_digit(radix)) {
        return None;
    }
    let cleaned: String = digits.chars().filter(|&c| c != '_').collect();
    let value = i128::from_str_radix(&cleaned, radix).ok()?;
    Some(if negative { -value } else { value })
}

/// A YAML 1.1 float: digits with a decimal point and an optional exponent, or `.inf` / `.nan`.
fn yaml11_float(t: &str) -> Option<f64> {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return Some(if t.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if matches!(t, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.')?;
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !digits(whole) || !digits(fraction) || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    if whole.starts_with('_') {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        if e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    t.replace('_', "").parse().ok()
}

impl Node {
    pub(crate) fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub(crate) fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        self.as_scalar().is_some_and(Scalar::is_null)
    }

    /// The scalar's text, for values that are used as strings (paths, names). Like the agent's
    /// `to_s`, a number or boolean is taken as written.
    pub(crate) fn text(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.text.as_str())
    }

    /// What the node is, for messages such as "must be a list, not a mapping".
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Map(entries) if entries.is_empty() => "an empty mapping".to_string(),
            Kind::Map(_) => "a mapping".to_string(),
            Kind::Seq(items) if items.is_empty() => "an empty list".to_string(),
            Kind::Seq(_) => "a list".to_string(),
            Kind::Scalar(s) => match s.typed() {
                Typed::Null => "empty".to_string(),
                Typed::Bool(_) => format!("the boolean {}", s.text),
                Typed::Int(_) | Typed::Float(_) => format!("the number {}", s.text),
                Typed::Str => format!("the string \"{}\"", shorten(&s.text)),
            },
        }
    }
}

/// Long values (a paragraph of prose) are cut in messages.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    let first_line = text.lines().next().unwrap_or("");
    if first_line.chars().count() > MAX || first_line.len() < text.trim_end().len() {
        let cut: String = first_line.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        first_line.to_string()
    }
}

/// Loads the first YAML document of `text`. `Ok(None)` means there is no content at all (an empty
/// file, or only comments). A syntax error is recorded in `checker` and gives `Err(())`. Refused
/// constructs (aliases, anchors, foreign tags) give `Err(())` too, but only once the whole
/// document has been read, so that all of them are reported; the AppSpec itself is not checked
/// then, since an alias's value is missing and checking without it would report phantom problems.
pub(crate) fn load(text: &str, checker: &mut Checker) -> Result<Option<Node>, ()> {
    let mut source = Cow::Borrowed(text);
    let mut fixes = 0;
    loop {
        let mut found = Checker::default();
        let result = read_document(&source, &mut found);
        if let Err(Stop::Syntax(e)) = &result
            && fixes < MAX_TAB_FIXES
            && let Some(fixed) = space_after_colon(&source, e)
        {
            fixes += 1;
            source = Cow::Owned(fixed);
            continue;
        }
        checker.absorb(found);
        return match result {
            Ok(root) => Ok(root),
            Err(Stop::Syntax(e)) => {
                syntax_error(&e, checker);
                Err(())
            }
            Err(Stop::Refused) => Err(()),
        };
    }
}

/// How many `key:<TAB>value` separators one file may have before the parse gives up on them.
const MAX_TAB_FIXES: usize = 64;

/// saphyr-parser refuses a tab right after a mapping's `:` when a value follows on the same line
/// (`os:<TAB>linux`); libyaml, under Psych, accepts it as the separator it is. Replacing that tab
/// with a space keeps the meaning and every position, so the file is read as the agent reads it.
fn space_after_colon(source: &str, e: &ScanError) -> Option<String> {
    if e.info() != "':' must be followed by a valid YAML whitespace" {
        return None;
    }
    let at = source.char_indices().nth(e.marker().index()).map_or(source.len(), |(byte, _)| byte);
    let bytes = source.as_bytes();
    let mut start = at;
    while start > 0 && matches!(bytes[start - 1], b' ' | b'\t') {
        start -= 1;
    }
    if start == 0 || bytes[start - 1] != b':' || bytes.get(start) != Some(&b'\t') {
        return None;
    }
    let mut fixed = source.to_string();
    fixed.replace_range(start..=start, " ");
    Some(fixed)
}

enum Stop {
    Syntax(ScanError),
    /// Refused constructs, already recorded.
    Refused,
}

fn read_document(text: &str, checker: &mut Checker) -> Result<Option<Node>, Stop> {
    let mut lines = Lines { text, index: None };
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder { stack: Vec::new(), root: None };
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(item)) => item,
            Some(Err(e)) => return Err(Stop::Syntax(e)),
        };
        let pos = start_of(&span);
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentStart(_) => {}
            Event::StreamEnd => break,
            Event::DocumentEnd => {
                // Psych's YAML.load reads the first document only; later ones are never looked
                // at, not even for syntax.
                if let Some(Ok((Event::DocumentStart(_), next))) = parser.next_event() {
                    checker.warning(
                        start_of(&next),
                        "Only the first YAML document of an AppSpec file is read; this one and any after it are ignored.",
                    );
                }
                break;
            }
            Event::Alias(_) => {
                let name = lines.word_at(pos, '*');
                checker.error(
                    pos,
                    format!(
                        "The AppSpec file uses the YAML alias *{name}, and aliases are not allowed: the official agent's YAML loader refuses them. Write the value out in full instead."
                    ),
                );
                builder.complete(Node { pos, kind: null_kind() });
            }
            Event::Scalar(value, style, anchor, tag) => {
                check_anchor(&mut lines, pos, anchor, checker);
                let mut quoted = style != ScalarStyle::Plain;
                if let Some(tag) = tag {
                    match core_tag(&tag) {
                        Some("str") => quoted = true,
                        Some(_) => {}
                        None => refuse_tag(&tag, pos, checker),
                    }
                }
                builder.complete(Node { pos, kind: Kind::Scalar(Scalar { text: value.into_owned(), quoted }) });
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                check_anchor(&mut lines, pos, anchor, checker);
                if let Some(tag) = tag
                    && core_tag(tag).is_none()
                {
                    refuse_tag(tag, pos, checker);
                }
                if builder.stack.len() >= MAX_DEPTH {
                    checker.error(
                        pos,
                        format!(
                            "The AppSpec file nests lists and mappings more than {MAX_DEPTH} levels deep; no AppSpec needs that many."
                        ),
                    );
                    return Err(Stop::Refused);
                }
                let is_map = matches!(event, Event::MappingStart(..));
                builder.stack.push(Frame { pos, is_map, items: Vec::new() });
            }
            Event::SequenceEnd | Event::MappingEnd => builder.close(),
        }
    }
    if checker.has_errors() {
        return Err(Stop::Refused);
    }
    Ok(builder.root)
}

fn null_kind() -> Kind {
    Kind::Scalar(Scalar { text: String::new(), quoted: false })
}

fn start_of(span: &Span) -> Position {
    Position { line: span.start.line().max(1), column: span.start.col() + 1 }
}

fn syntax_error(e: &ScanError, checker: &mut Checker) {
    let mark = e.marker();
    let at = Position { line: mark.line().max(1), column: mark.col() + 1 };
    checker.error(at, format!("The AppSpec file is not valid YAML: {}.", e.info()));
}

fn core_tag(tag: &saphyr_parser::Tag) -> Option<&str> {
    if tag.is_yaml_core_schema() { Some(tag.suffix.as_str()) } else { None }
}

fn refuse_tag(tag: &saphyr_parser::Tag, pos: Position, checker: &mut Checker) {
    checker.error(
        pos,
        format!(
            "The AppSpec file uses the YAML tag {tag}, which is not allowed: the official agent's YAML loader refuses application-specific tags. Remove the tag."
        ),
    );
}

fn check_anchor(lines: &mut Lines, pos: Position, anchor: usize, checker: &mut Checker) {
    if anchor != 0 {
        let name = lines.word_at(pos, '&');
        checker.error(
            pos,
            format!(
                "The AppSpec file defines the YAML anchor &{name}; anchors and aliases are not allowed, because the official agent's YAML loader refuses aliases. Remove the anchor and write values out in full."
            ),
        );
    }
}

/// The source's lines, split only if a message needs to quote the text (the parser numbers anchors
/// but does not keep their names).
struct Lines<'t> {
    text: &'t str,
    index: Option<Vec<&'t str>>,
}

impl Lines<'_> {
    /// The name after `sigil` at `pos`: an anchor `&name` or an alias `*name`.
    fn word_at(&mut self, pos: Position, sigil: char) -> String {
        let text = self.text;
        let lines = self.index.get_or_insert_with(|| text.lines().collect());
        let Some(line) = lines.get(pos.line - 1) else { return String::new() };
        let rest: String = line.chars().skip(pos.column - 1).collect();
        let Some(after) = rest.find(sigil).map(|i| &rest[i + sigil.len_utf8()..]) else { return String::new() };
        after.chars().take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}')).collect()
    }
}

struct Frame {
    pos: Position,
    is_map: bool,
    items: Vec<Node>,
}

struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
}

impl Builder {
    fn complete(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(frame) => frame.items.push(node),
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
        }
    }

    fn close(&mut self) {
        let Some(frame) = self.stack.pop() else { return };
        let kind = if frame.is_map {
            let mut entries = Vec::with_capacity(frame.items.len() / 2);
            let mut items = frame.items.into_iter();
            while let Some(key) = items.next() {
                let value = items.next().unwrap_or(Node { pos: key.pos, kind: null_kind() });
                entries.push((key, value));
            }
            Kind::Map(entries)
        } else {
            Kind::Seq(frame.items)
        };
        self.complete(Node { pos: frame.pos, kind });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Scalar {
        Scalar { text: text.to_string(), quoted: false }
    }

    #[test]
    fn plain_scalars_are_typed_as_psych_types_them() {
        assert_eq!(scalar("0.0").typed(), Typed::Float(0.0));
        assert_eq!(scalar("0").typed(), Typed::Int(0));
        assert_eq!(scalar("0644").typed(), Typed::Int(0o644));
        assert_eq!(scalar("0x1f").typed(), Typed::Int(31));
        assert_eq!(scalar("3_600").typed(), Typed::Int(3600));
        assert_eq!(scalar("-5").typed(), Typed::Int(-5));
        assert_eq!(scalar("1.5e+3").typed(), Typed::Float(1500.0));
        assert_eq!(scalar(".5").typed(), Typed::Float(0.5));
        assert_eq!(scalar("Yes").typed(), Typed::Bool(true));
        assert_eq!(scalar("off").typed(), Typed::Bool(false));
        assert_eq!(scalar("~").typed(), Typed::Null);
        assert_eq!(scalar("").typed(), Typed::Null);
        assert_eq!(scalar("1.1.1").typed(), Typed::Str);
        assert_eq!(scalar("10s").typed(), Typed::Str);
        assert_eq!(scalar("0889").typed(), Typed::Str);
        assert_eq!(scalar(".").typed(), Typed::Str);
        assert_eq!(scalar("-").typed(), Typed::Str);
        assert_eq!(Scalar { text: "0.0".into(), quoted: true }.typed(), Typed::Str);
    }

    #[test]
    fn nodes_remember_where_they_start() {
        let mut c = Checker::default();
        let root = load("a: 1\nb:\n  - x\n", &mut c).unwrap().unwrap();
        let map = root.as_map().unwrap();
        assert_eq!(map[1].0.pos, Position { line: 2, column: 1 });
        assert_eq!(map[1].1.as_seq().unwrap()[0].pos, Position { line: 3, column: 5 });
    }

    #[test]
    fn aliases_and_anchors_are_refused_by_name() {
        let mut c = Checker::default();
        assert!(load("a: &first x\nb: *first\n", &mut c).is_err());
        let found = c.finish(Some(())).unwrap_err().to_string();
        assert!(found.contains("1:4: error: The AppSpec file defines the YAML anchor &first"), "{found}");
        assert!(found.contains("2:4: error: The AppSpec file uses the YAML alias *first"), "{found}");
    }

    #[test]
    fn a_tab_after_a_colon_separates_as_in_libyaml() {
        let mut c = Checker::default();
        let root = load("os:\tlinux\nhooks:\n  A:\t[x]\nq: \"a:\\tb\"\n", &mut c).unwrap().unwrap();
        let map = root.as_map().unwrap();
        assert_eq!(map[0].1.text(), Some("linux"));
        assert_eq!(map[0].1.pos, Position { line: 1, column: 5 });
        assert_eq!(map[2].1.text(), Some("a:\tb"));
        assert!(!c.has_errors());
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let mut c = Checker::default();
        let text = "[".repeat(100_000);
        assert!(load(&text, &mut c).is_err());
        assert!(c.has_errors());
    }
}
