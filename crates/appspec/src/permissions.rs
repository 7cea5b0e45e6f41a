//! The `permissions` section of a Server AppSpec (Linux only): modes, owners, ACLs and SELinux
//! contexts for what Install creates, checked as the agent checks them.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::diagnostic::{Checker, Position};
use crate::fields::{Fields, Shape, at, no_hint};
use crate::server::Os;
use crate::yaml::{Node, Typed, shorten};

const PERMISSION: Shape = Shape {
    what: "a permissions entry",
    known: &["object", "pattern", "except", "type", "owner", "group", "mode", "acls", "context"],
    case_insensitive: false,
    hint: no_hint,
};

const CONTEXT: Shape = Shape {
    what: "an SELinux context",
    known: &["name", "type", "range", "user", "role"],
    case_insensitive: false,
    hint: no_hint,
};

/// One `permissions` entry (Linux only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    /// A literal path; the entry applies to it and to what Install creates below it.
    pub object: String,
    /// Which children of `object` the entry applies to: `**` (the default) is everything below
    /// it, anything else a `*` glob on the names directly inside it.
    pub pattern: String,
    pub except: Vec<String>,
    /// Which kinds of objects below `object` are changed; by default both.
    #[serde(rename = "type")]
    pub types: Vec<ObjectType>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Mode>,
    /// `None` leaves ACLs alone; `Some` (even empty) sets exactly these entries.
    pub acls: Option<Vec<AclEntry>>,
    pub context: Option<SelinuxContext>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    File,
    Directory,
}

/// A file mode, the bits `chmod` takes (setuid, setgid and sticky included). Shown in octal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mode(pub u32);

impl Mode {
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One ACL entry, checked and normalised as the agent does. `Display` gives the form `setfacl`
/// takes: `[default:]user|group|mask|other:[name]:rwx`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclEntry {
    /// A default ACL entry (`d:`), inherited by what is created in a directory.
    pub default: bool,
    pub tag: AclTag,
    /// The user or group named; empty for `mask`, `other` and default base entries.
    pub name: String,
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclTag {
    User,
    Group,
    Mask,
    Other,
}

impl fmt::Display for AclEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.tag {
            AclTag::User => "user",
            AclTag::Group => "group",
            AclTag::Mask => "mask",
            AclTag::Other => "other",
        };
        let flag = |on: bool, c: char| if on { c } else { '-' };
        write!(
            f,
            "{}{tag}:{}:{}{}{}",
            if self.default { "default:" } else { "" },
            self.name,
            flag(self.read, 'r'),
            flag(self.write, 'w'),
            flag(self.execute, 'x')
        )
    }
}

impl Serialize for AclEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An SELinux file context, applied with `semanage fcontext` and `restorecon`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelinuxContext {
    /// The SELinux user (`-s`); the agent reads it from `name`, not from the guide's `user`.
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub selinux_type: String,
    /// The MLS/MCS range, checked as the agent checks it and kept as written.
    pub range: Option<String>,
}

pub(crate) fn read_permissions(
    entry: Option<(&Node, &Node)>,
    os: Option<(Os, Position)>,
    c: &mut Checker,
) -> Vec<Permission> {
    let Some((key, value)) = entry.filter(|(_, v)| !v.is_null()) else { return Vec::new() };
    let Some(items) = value.as_seq() else {
        c.error(
            value.pos,
            format!(
                "The permissions section must be a list of entries, each with an object (- object: PATH), but it is {}.",
                value.describe()
            ),
        );
        return Vec::new();
    };
    if matches!(os, Some((Os::Windows, _))) && !items.is_empty() {
        c.error(
            key.pos,
            "The deployment failed because the application specification file specifies file permissions, but the deployment is targeting one or more Windows Server instances. Permissions are supported only for Amazon Linux, Ubuntu Server, and Red Hat Enterprise Linux (RHEL) instances. Update the permissions section of the AppSpec file, and then try again.",
        );
        return Vec::new();
    }
    items.iter().filter_map(|item| read_permission(item, c)).collect()
}

const NO_OBJECT: &str = "The deployment failed because a permission listed in the application specification file has no object value. Update the permissions section of the AppSpec file, and then try again.";

fn read_permission(item: &Node, c: &mut Checker) -> Option<Permission> {
    let Some(entries) = item.as_map() else {
        let what = if item.is_null() { "empty".to_string() } else { item.describe() };
        c.error(
            item.pos,
            format!("A permissions entry must be a mapping with an object (- object: PATH), but it is {what}."),
        );
        return None;
    };
    let errors_before = c.count_errors();
    let f = Fields::read(entries, &PERMISSION, c);
    let object = match f.value("object") {
        None => {
            c.error(item.pos, NO_OBJECT);
            None
        }
        Some(node) => match node.text().map(str::trim) {
            Some("") => {
                c.error(node.pos, NO_OBJECT);
                None
            }
            Some(object) => {
                if object.contains(['*', '?', '[']) {
                    c.warning(
                        node.pos,
                        format!(
                            "The object {object} contains a wildcard, but an object is a literal path: this entry applies only to a path with exactly this name. Name the directory in object and match files below it with pattern (for example pattern: \"*.sh\")."
                        ),
                    );
                }
                Some(object.to_string())
            }
            None => {
                c.error(node.pos, format!("{NO_OBJECT} The object must be a path, but it is {}.", node.describe()));
                None
            }
        },
    };
    let subject = object.as_deref().unwrap_or("(no object)");
    let pattern = match f.value("pattern") {
        None => "**".to_string(),
        Some(node) => match node.text() {
            Some(p) => p.to_string(),
            None => {
                c.error(
                    node.pos,
                    format!(
                        "The pattern of the permission for {subject} must be a glob such as \"*.sh\", but it is {}.",
                        node.describe()
                    ),
                );
                String::new()
            }
        },
    };
    let except = match f.value("except") {
        None => Vec::new(),
        Some(node) => read_text_list(node, c, || {
            format!("The except of the permission for {subject} must be a list of globs, such as [\"*.log\"]")
        }),
    };
    let types = match f.value("type") {
        None => vec![ObjectType::File, ObjectType::Directory],
        Some(node) => read_types(node, subject, c),
    };
    let owner = name_value(&f, "owner", subject, c);
    let group = name_value(&f, "group", subject, c);
    let mode = f.entry("mode").filter(|(_, v)| !v.is_null()).and_then(|(k, v)| read_mode(k, v, c));
    let acls = f.value("acls").map(|node| read_acls(node, subject, c));
    let context = f.value("context").and_then(|node| read_context(node, subject, c));
    if c.count_errors() > errors_before {
        return None;
    }
    Some(Permission { object: object?, pattern, except, types, owner, group, mode, acls, context })
}

fn name_value(f: &Fields, name: &str, subject: &str, c: &mut Checker) -> Option<String> {
    let node = f.value(name)?;
    match node.text() {
        Some(text) => Some(text.trim().to_string()),
        None => {
            c.error(
                node.pos,
                format!("The {name} of the permission for {subject} must be a name, but it is {}.", node.describe()),
            );
            None
        }
    }
}

/// A list of plain values (globs); `what` starts the message for anything else.
fn read_text_list(node: &Node, c: &mut Checker, what: impl Fn() -> String) -> Vec<String> {
    let Some(items) = node.as_seq() else {
        c.error(node.pos, format!("{}, but it is {}.", what(), node.describe()));
        return Vec::new();
    };
    let mut list = Vec::new();
    for item in items {
        match item.text() {
            Some(text) if !item.is_null() => list.push(text.to_string()),
            _ => c.error(item.pos, format!("{}, but one item is {}.", what(), item.describe())),
        }
    }
    list
}

fn read_types(node: &Node, subject: &str, c: &mut Checker) -> Vec<ObjectType> {
    let Some(items) = node.as_seq() else {
        let mut message = format!(
            "The type of the permission for {subject} must be a list, such as [file] or [file, directory], but it is {}.",
            node.describe()
        );
        if let Some(t) = node.text().filter(|t| matches!(*t, "file" | "directory")) {
            message.push_str(&format!(" Write type: [{t}]."));
        }
        c.error(node.pos, message);
        return Vec::new();
    };
    let mut types = Vec::new();
    for item in items {
        match item.text().filter(|_| !item.is_null()) {
            Some("file") => types.push(ObjectType::File),
            Some("directory") => types.push(ObjectType::Directory),
            other => c.error(
                item.pos,
                format!(
                    "The deployment failed because the application specification file specifies a permission for an object type not supported for permissions ({}). Update the permissions section of the AppSpec file, and then try again.",
                    other.map_or_else(|| item.describe(), shorten)
                ),
            ),
        }
    }
    types
}

/// The agent pads the mode to three digits and wants at most four octal digits. Psych reads an
/// unquoted `0644` as the octal number 420, so the agent sets mode 420 (or fails, for `0755`,
/// read as 493); Landfall takes the digits as written and warns.
fn read_mode(key: &Node, node: &Node, c: &mut Checker) -> Option<Mode> {
    let Some(scalar) = node.as_scalar() else {
        c.error(
            node.pos,
            format!(
                "The permissions mode must be one to four octal digits, such as 644, but it is {}.",
                node.describe()
            ),
        );
        return None;
    };
    let text = scalar.text.trim();
    if text.is_empty() {
        c.error(at(key, node), "The permissions mode is empty; write one to four octal digits, such as 644.");
        return None;
    }
    if !scalar.quoted
        && matches!(scalar.typed(), Typed::Int(_))
        && text.len() > 1
        && text.starts_with('0')
        && text.chars().all(|ch| ('0'..='7').contains(&ch))
    {
        c.warning(
            node.pos,
            format!(
                "The mode {text} is not quoted. YAML reads an unquoted number with a leading zero as octal, so the official agent would use {} instead; Landfall uses the digits as written. Quote it (mode: \"{text}\") to mean the same on both.",
                u32::from_str_radix(text, 8).unwrap_or(0)
            ),
        );
    }
    let mut mode = text.to_string();
    while mode.chars().count() < 3 {
        mode.insert(0, '0');
    }
    if mode.chars().count() > 4 {
        c.error(
            node.pos,
            format!(
                "The deployment failed because the length of a permissions mode ({}) in the application specification file is invalid. Permissions modes must be between one and four characters long. Update the permissions section of the AppSpec file, and then try again.",
                shorten(&mode)
            ),
        );
        return None;
    }
    if let Some(bad) = mode.chars().find(|ch| !('0'..='7').contains(ch)) {
        c.error(
            node.pos,
            format!(
                "The deployment failed because the permissions mode ({mode}) in the application specification file contains an invalid character ({bad}). Update the permissions section of the AppSpec file, and then try again."
            ),
        );
        return None;
    }
    u32::from_str_radix(&mode, 8).ok().map(Mode)
}

fn read_acls(node: &Node, subject: &str, c: &mut Checker) -> Vec<AclEntry> {
    let texts = read_text_list(node, c, || {
        format!("The acls of the permission for {subject} must be a list of ACL entries, such as [\"u:alice:rw\"]")
    });
    let items = node.as_seq().unwrap_or_default().iter().filter(|i| !i.is_null() && i.text().is_some());
    let mut acls = Vec::new();
    for (text, item) in texts.iter().zip(items) {
        match parse_acl(text.trim()) {
            Ok(entry) => acls.push(entry),
            Err(message) => c.error(item.pos, message),
        }
    }
    acls
}

/// An ACL entry as the agent reads it: `[d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]:]name:perms`,
/// where base entries (no name) must be set through `mode` instead.
fn parse_acl(text: &str) -> Result<AclEntry, String> {
    let invalid = || {
        format!(
            "The deployment failed because of a problem with the acls permission settings in the application specification file. Invalid acl entry ({text})."
        )
    };
    let parts: Vec<&str> = text.split(':').rev().collect();
    if !(2..=4).contains(&parts.len()) {
        return Err(invalid());
    }
    let mut default = false;
    let mut tag = None;
    let mut name = String::new();
    if parts.len() == 4 {
        if !matches!(parts[3], "d" | "default") {
            return Err(invalid());
        }
        default = true;
    }
    if parts.len() >= 3 {
        match parts[2] {
            "d" | "default" if !default => default = true,
            "m" | "mask" => tag = Some(AclTag::Mask),
            "o" | "other" => tag = Some(AclTag::Other),
            "g" | "group" => tag = Some(AclTag::Group),
            "u" | "user" => tag = Some(AclTag::User),
            _ => return Err(invalid()),
        }
    }
    match (parts[1], tag) {
        ("m" | "mask", None) => tag = Some(AclTag::Mask),
        ("o" | "other", None) => tag = Some(AclTag::Other),
        ("m" | "mask", Some(_)) => name = "mask".to_string(),
        ("o" | "other", Some(_)) => name = "other".to_string(),
        (other, _) => {
            tag = tag.or(Some(AclTag::User));
            name = other.to_string();
        }
    }
    let tag = tag.unwrap_or(AclTag::User);
    if matches!(tag, AclTag::Mask | AclTag::Other) && !name.is_empty() {
        return Err(invalid());
    }
    if !default && tag != AclTag::Mask && name.is_empty() {
        return Err(format!(
            "The deployment failed because of a problem with the acls permission settings in the application specification file. Use mode to set the base acl entry ({text}). Update the permissions section of the AppSpec file, and then try again."
        ));
    }
    let perms = parts[0];
    let (mut read, mut write, mut execute) = (false, false, false);
    let single_digit = perms.len() == 1 && perms.chars().all(|ch| ('0'..='7').contains(&ch));
    if single_digit {
        let bits = perms.as_bytes()[0] - b'0';
        (read, write, execute) = (bits & 4 != 0, bits & 2 != 0, bits & 1 != 0);
    } else {
        for ch in perms.chars() {
            match ch {
                'r' => read = true,
                'w' => write = true,
                'x' => execute = true,
                '-' => {}
                _ => {
                    return Err(format!(
                        "The deployment failed because the access control list (ACL) named {text} in the application specification file contains an invalid character ({ch}). Correct the ACL in the permissions section of the AppSpec file, and then try again."
                    ));
                }
            }
        }
    }
    Ok(AclEntry { default, tag, name, read, write, execute })
}

fn read_context(node: &Node, subject: &str, c: &mut Checker) -> Option<SelinuxContext> {
    let Some(entries) = node.as_map() else {
        c.error(
            node.pos,
            format!(
                "The context of the permission for {subject} must be a mapping with name, type and range, but it is {}.",
                node.describe()
            ),
        );
        return None;
    };
    let f = Fields::read(entries, &CONTEXT, c);
    if let Some((key, value)) = f.entry("user") {
        let shown = value.text().filter(|_| !value.is_null()).unwrap_or("USER");
        c.warning(
            key.pos,
            format!(
                "The SELinux context key 'user' is ignored: the official agent reads the SELinux user from 'name' (the AppSpec guide's 'user' is never read). Write name: {shown} to set it."
            ),
        );
    }
    if let Some((key, _)) = f.entry("role") {
        c.error(
            key.pos,
            "The deployment failed because the application specification file specifies a role, but roles are not supported. Remove the role from the AppSpec file, and then try again.",
        );
    }
    let name = f.value("name").and_then(|n| n.text()).map(|t| t.trim().to_string());
    let selinux_type = match f.value("type").map(|n| (n, n.text())) {
        Some((_, Some(t))) if !t.trim().is_empty() => Some(t.trim().to_string()),
        Some((n, _)) => {
            context_type_error(n.pos, c);
            None
        }
        None => {
            context_type_error(node.pos, c);
            None
        }
    };
    let range = match f.value("range") {
        None => None,
        Some(n) => match n.text().map(str::trim) {
            Some(range) => match check_range(range) {
                Ok(()) => Some(range.to_string()),
                Err(detail) => {
                    c.error(
                        n.pos,
                        format!(
                            "The deployment failed because of a problem with the SELinux range specified ({}) for the context parameter in the permissions section of the application specification file: {detail}. Make corrections in the permissions section of the AppSpec file, and then try again.",
                            shorten(range)
                        ),
                    );
                    None
                }
            },
            None => {
                c.error(
                    n.pos,
                    format!("The SELinux range must be a single value such as s0, but it is {}.", n.describe()),
                );
                None
            }
        },
    };
    Some(SelinuxContext { name, selinux_type: selinux_type?, range })
}

fn context_type_error(at: Position, c: &mut Checker) {
    c.error(
        at,
        "The deployment failed because the application specification file specifies an invalid context type (the context has no type). Update the permissions section of the AppSpec file, and then try again.",
    );
}

/// An SELinux MLS range as the agent accepts it: `s0[-s3][:c0[.c5](,c7...)]`, categories up to
/// c1023, ascending, without repeats.
fn check_range(range: &str) -> Result<(), String> {
    fn halves(input: &str, on: char) -> Result<Vec<&str>, String> {
        let parts: Vec<&str> = input.splitn(2, on).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("\"{input}\" has an empty part"));
        }
        Ok(parts)
    }
    fn level(text: &str, prefix: char, what: &str) -> Result<u32, String> {
        let digits = text.strip_prefix(prefix).filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        digits
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("the {what} \"{text}\" is not {prefix} followed by a number"))
    }
    fn category(text: &str) -> Result<u32, String> {
        let n = level(text, 'c', "category")?;
        if n > 1023 {
            return Err(format!("the category \"{text}\" is above c1023"));
        }
        Ok(n)
    }
    let parts = halves(range, ':')?;
    let sensitivity = halves(parts[0], '-')?;
    let low = level(sensitivity[0], 's', "sensitivity")?;
    if let Some(high) = sensitivity.get(1)
        && level(high, 's', "sensitivity")? < low
    {
        return Err("the high sensitivity is below the low one".to_string());
    }
    let Some(categories) = parts.get(1) else { return Ok(()) };
    let mut seen = Vec::new();
    for part in categories.trim_end_matches(',').split(',') {
        if part.contains('.') {
            let ends = halves(part, '.')?;
            let (from, to) = (category(ends[0])?, category(ends[1])?);
            if to < from {
                return Err(format!("the category range {part} goes backwards"));
            }
            seen.extend(from..=to);
        } else {
            seen.push(category(part)?);
        }
    }
    seen.sort_unstable();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err("a category is listed more than once".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_entries_are_read_as_the_agent_reads_them() {
        let ok = |t: &str| parse_acl(t).unwrap().to_string();
        assert_eq!(ok("u:bob:rw"), "user:bob:rw-");
        assert_eq!(ok("bob:7"), "user:bob:rwx");
        assert_eq!(ok("g:staff:r-x"), "group:staff:r-x");
        assert_eq!(ok("d:u:bob:r"), "default:user:bob:r--");
        assert_eq!(ok("d:bob:r"), "default:user:bob:r--");
        assert_eq!(ok("m::rx"), "mask::r-x");
        assert_eq!(ok("d:g::r"), "default:group::r--");
        assert!(parse_acl("u::rw").unwrap_err().contains("Use mode to set the base acl entry (u::rw)"));
        assert!(parse_acl("rw").unwrap_err().contains("Invalid acl entry (rw)"));
        assert!(parse_acl("x:y:z:w:v").unwrap_err().contains("Invalid acl entry"));
        assert!(parse_acl("q:bob:rw").unwrap_err().contains("Invalid acl entry"));
        assert!(parse_acl("o:bob:r").unwrap_err().contains("Invalid acl entry"));
        assert!(parse_acl("u:bob:rwz").unwrap_err().contains("invalid character (z)"));
    }

    #[test]
    fn selinux_ranges_are_checked_as_the_agent_checks_them() {
        for good in ["s0", "s0-s3", "s0:c0", "s0-s0:c0.c1023", "s1:c1,c3.c5", "s0:c1,"] {
            assert_eq!(check_range(good), Ok(()), "{good}");
        }
        for bad in ["", "s", "x0", "s3-s1", "s0:", "s0:c1024", "s0:c5.c1", "s0:c1,c1", "s0:c1.c3,c2", ":c1", "s0-"] {
            assert!(check_range(bad).is_err(), "{bad}");
        }
    }
}
