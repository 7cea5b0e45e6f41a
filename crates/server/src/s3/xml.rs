//! S3's XML: a writer for answers (also the query protocol's, `crate::query`) and a small reader
//! for the few request bodies S3 takes (CompleteMultipartUpload, DeleteObjects,
//! CreateBucketConfiguration).

use std::fmt::Write as _;

pub const NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds a document element by element.
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") }
    }

    /// Opens the root element, in S3's namespace.
    pub fn root(self, name: &str) -> Writer {
        self.root_in(name, NAMESPACE)
    }

    /// Opens the root element in another AWS service's namespace.
    pub fn root_in(mut self, name: &str, namespace: &str) -> Writer {
        let _ = write!(self.out, "<{name} xmlns=\"{namespace}\">");
        self
    }

    pub fn open(&mut self, name: &str) -> &mut Writer {
        let _ = write!(self.out, "<{name}>");
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Writer {
        let _ = write!(self.out, "</{name}>");
        self
    }

    pub fn element(&mut self, name: &str, text: &str) -> &mut Writer {
        let _ = write!(self.out, "<{name}>");
        escape_into(&mut self.out, text);
        let _ = write!(self.out, "</{name}>");
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Keys may hold control characters; a character reference keeps the document parseable
            // by lenient readers (clients that care ask for encoding-type=url).
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n') => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// An element of a parsed document: its local name (namespace prefix dropped), its text, and its
/// child elements.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|child| child.text.as_str())
    }
}

/// Nesting deeper than any S3 request body needs is refused rather than followed.
const MAX_DEPTH: usize = 16;

/// Parses a document into its root element, or None if it is not well-formed XML (as far as
/// this reader checks: tags balance, entities are known). DTDs are refused.
pub fn parse(input: &str) -> Option<Element> {
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let mut rest = input;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<?") {
            rest = &after[after.find("?>")? + 2..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = &after[after.find("-->")? + 3..];
        } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>")?;
            stack.last_mut()?.text.push_str(&after[..end]);
            rest = &after[end + 3..];
        } else if rest.starts_with("<!") {
            return None;
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>')?;
            let name = local_name(after[..end].trim());
            let element = stack.pop()?;
            if element.name != name {
                return None;
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None if root.is_none() => root = Some(element),
                None => return None,
            }
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('<') {
            let end = tag_end(after)?;
            let tag = &after[..end];
            let (tag, self_closing) = match tag.strip_suffix('/') {
                Some(tag) => (tag, true),
                None => (tag, false),
            };
            let name = tag.split(|c: char| c.is_ascii_whitespace()).next().unwrap_or("");
            if name.is_empty() || root.is_some() {
                return None;
            }
            let element = Element { name: local_name(name).to_owned(), ..Element::default() };
            if self_closing {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            } else {
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                stack.push(element);
            }
            rest = &after[end + 1..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = unescape(&rest[..end])?;
            match stack.last_mut() {
                Some(element) => element.text.push_str(&text),
                None if text.trim().is_empty() => {}
                None => return None,
            }
            rest = &rest[end..];
        }
    }
    if !stack.is_empty() {
        return None;
    }
    root
}

fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Where a start tag ends: the first `>` outside a quoted attribute value.
fn tag_end(tag: &str) -> Option<usize> {
    let mut quote = None;
    for (index, c) in tag.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(open), c) if c == open => quote = None,
            (None, '>') => return Some(index),
            _ => {}
        }
    }
    None
}

fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find(';')?;
        let entity = &after[..end];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    entity.strip_prefix('#')?.parse().ok()?
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// `2026-11-22T04:12:11.000Z`, as S3 writes times in XML.
pub fn iso8601(millis: i64) -> String {
    let basic = landfall_sigv4::format_amz_date(millis.div_euclid(1000));
    format!(
        "{}-{}-{}T{}:{}:{}.{:03}Z",
        &basic[0..4],
        &basic[4..6],
        &basic[6..8],
        &basic[9..11],
        &basic[11..13],
        &basic[13..15],
        millis.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_documents() {
        let mut writer = Writer::new().root("Result");
        writer.element("Key", "a<b>&\"c\"\u{1}").close("Result");
        assert_eq!(
            writer.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Result xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Key>a&lt;b&gt;&amp;&quot;c&quot;&#x1;</Key></Result>"
        );
    }

    #[test]
    fn reads_what_botocore_sends() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>&quot;f268&quot;</ETag><PartNumber>1</PartNumber></Part>
<Part><ETag>"14af"</ETag><PartNumber>2</PartNumber><ChecksumCRC32>x/y=</ChecksumCRC32></Part><!-- c --></CompleteMultipartUpload>"#;
        let root = parse(body).unwrap();
        assert_eq!(root.name, "CompleteMultipartUpload");
        let parts: Vec<(&str, &str)> = root
            .children_named("Part")
            .map(|part| (part.child_text("PartNumber").unwrap(), part.child_text("ETag").unwrap()))
            .collect();
        assert_eq!(parts, [("1", "\"f268\""), ("2", "\"14af\"")]);
        let prefixed =
            parse("<s3:Delete xmlns:s3='x'><s3:Object><s3:Key>a&#x41;&#66;</s3:Key></s3:Object><Quiet/></s3:Delete>");
        let prefixed = prefixed.unwrap();
        assert_eq!(prefixed.child("Object").unwrap().child_text("Key"), Some("aAB"));
        assert!(prefixed.child("Quiet").is_some());
    }

    #[test]
    fn refuses_malformed_documents() {
        for bad in [
            "<a><b></a></b>",
            "<a>",
            "<a></a><b></b>",
            "text<a></a>",
            "<a>&bogus;</a>",
            "<!DOCTYPE a><a></a>",
            "<a attr=\"x>y\"",
            &"<a>".repeat(40),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse("<a attr=\"x>y\"></a>").unwrap().name, "a");
    }
}
