//! The AppSpec's `permissions:` (Linux), turned into chmod/chown/setfacl instructions for what
//! this Install created, as the official agent applies them:
//!
//! - `object` naming a file the Install copied: the entry applies to that file; its `type` must
//!   include `file`, its `pattern` be `**` and `except` be empty.
//! - `object` naming a directory (created now or already there): the entry applies to what the
//!   Install created *below* it, not to the directory itself. Pattern `**` matches everything
//!   below; any other pattern is a `*`/`?` glob on the names directly inside `object`; `except`
//!   globs exclude names; `type` picks files, directories or both.
//! - A path may receive permissions from one entry only.
//!
//! Owners and groups are looked up by name (or taken as numeric ids) when the plan is made, so
//! an unknown user fails the Install before anything changes. ACLs are set with `setfacl --set`
//! (the `acl` package's program), base entries taken from the file's mode as the official agent
//! does. SELinux contexts are refused: Landfall's agent does not manage SELinux file contexts.
//! Symbolic links are never followed: they get an owner (`lchown`) but no mode or ACL.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use landfall_appspec::{AclTag, ObjectType, Permission};

use crate::install::{Created, CreatedKind, InstallError, Instruction};

/// The instructions for `permissions` over what an Install created (`created`, in order).
pub fn plan(permissions: &[Permission], created: &[Created]) -> Result<Vec<Instruction>, InstallError> {
    let kinds: HashMap<&Path, CreatedKind> = created.iter().map(|c| (c.path.as_path(), c.kind)).collect();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut instructions = Vec::new();
    for permission in permissions {
        let object = normalise(Path::new(permission.object.trim()));
        if permission.context.is_some() {
            return Err(InstallError(format!(
                "The deployment failed because the permissions entry for {} sets an SELinux context, which Landfall's agent does not support. Remove the context and set it outside the deployment.",
                object.display()
            )));
        }
        let types = if permission.types.is_empty() {
            vec![ObjectType::File, ObjectType::Directory]
        } else {
            permission.types.clone()
        };
        let targets: Vec<(PathBuf, CreatedKind)> = match kinds.get(object.as_path()) {
            Some(kind @ (CreatedKind::File | CreatedKind::Symlink)) => {
                if !types.contains(&ObjectType::File) || permission.pattern != "**" || !permission.except.is_empty() {
                    return Err(InstallError(format!(
                        "The deployment failed because the permissions entry for {} names a file: its type must include file, its pattern must be \"**\" and it cannot have an except list.",
                        object.display()
                    )));
                }
                vec![(object.clone(), *kind)]
            }
            Some(CreatedKind::Directory) => below(&object, permission, &types, created),
            None if object.is_dir() => below(&object, permission, &types, created),
            None => Vec::new(),
        };
        for (path, kind) in targets {
            if !seen.insert(path.clone()) {
                return Err(InstallError(format!(
                    "The deployment failed because the permissions setting for ({}) is specified more than once in the application specification file.",
                    path.display()
                )));
            }
            instructions.extend(for_object(permission, &path, kind)?);
        }
    }
    Ok(instructions)
}

/// What the Install created below `object` that the entry selects.
fn below(
    object: &Path,
    permission: &Permission,
    types: &[ObjectType],
    created: &[Created],
) -> Vec<(PathBuf, CreatedKind)> {
    created
        .iter()
        .filter(|c| c.path != object && c.path.starts_with(object))
        .filter(|c| {
            let name = c.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let matches = if permission.pattern == "**" {
                true
            } else {
                c.path.parent() == Some(object) && glob_matches(&permission.pattern, &name)
            };
            let excepted = permission.except.iter().any(|except| glob_matches(except, &name));
            let wanted = match c.kind {
                CreatedKind::Directory => types.contains(&ObjectType::Directory),
                CreatedKind::File | CreatedKind::Symlink => types.contains(&ObjectType::File),
            };
            matches && !excepted && wanted
        })
        .map(|c| (c.path.clone(), c.kind))
        .collect()
}

fn for_object(permission: &Permission, path: &Path, kind: CreatedKind) -> Result<Vec<Instruction>, InstallError> {
    let mut instructions = Vec::new();
    if kind != CreatedKind::Symlink {
        if let Some(mode) = permission.mode {
            instructions.push(Instruction::Chmod { file: path.to_owned(), mode: mode.bits() });
        }
        if let Some(acls) = &permission.acls {
            if kind == CreatedKind::File && acls.iter().any(|acl| acl.default) {
                return Err(InstallError(format!(
                    "The deployment failed because the permissions section sets a default ACL on the file {}; default ACLs apply to directories only.",
                    path.display()
                )));
            }
            if which_setfacl().is_none() {
                return Err(InstallError(
                    "The deployment failed because the permissions section sets ACLs, which needs the setfacl program (package acl), and it is not installed on this host.".into(),
                ));
            }
            let mut entries: Vec<String> = acls.iter().map(ToString::to_string).collect();
            let has = |tag: AclTag, default: bool| {
                acls.iter().any(|a| a.tag == tag && a.default == default && a.name.is_empty())
            };
            // Base entries come from the mode when the Install applies them; marked here.
            for default in [false, true] {
                if default && !acls.iter().any(|a| a.default) {
                    continue;
                }
                for (tag, word) in [(AclTag::User, "user"), (AclTag::Group, "group"), (AclTag::Other, "other")] {
                    if !has(tag, default) {
                        entries.push(format!("{}{word}::MODE", if default { "default:" } else { "" }));
                    }
                }
            }
            instructions.push(Instruction::Setfacl { file: path.to_owned(), acl: entries });
        }
    }
    if permission.owner.is_some() || permission.group.is_some() {
        let uid = permission.owner.as_deref().map(user_id).transpose()?;
        let gid = permission.group.as_deref().map(group_id).transpose()?;
        instructions.push(Instruction::Chown {
            file: path.to_owned(),
            owner: permission.owner.clone(),
            group: permission.group.clone(),
            uid,
            gid,
        });
    }
    Ok(instructions)
}

fn user_id(name: &str) -> Result<u32, InstallError> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        _ => name.parse().map_err(|_| {
            InstallError(format!(
                "The deployment failed because the owner {name} in the permissions section is not a user on this host."
            ))
        }),
    }
}

fn group_id(name: &str) -> Result<u32, InstallError> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        _ => name.parse().map_err(|_| {
            InstallError(format!(
                "The deployment failed because the group {name} in the permissions section is not a group on this host."
            ))
        }),
    }
}

pub(crate) fn which_setfacl() -> Option<PathBuf> {
    ["/usr/bin/setfacl", "/bin/setfacl", "/usr/local/bin/setfacl"].iter().map(PathBuf::from).find(|p| p.is_file())
}

/// `*` matches any run of characters, `?` one; everything else matches itself.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, n));
                p += 1;
            }
            Some('?') => {
                p += 1;
                n += 1;
            }
            Some(c) if *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    p = star + 1;
                    n = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// A path with `.` removed and `..` applied, and no trailing slash: how the Install keys paths.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("*.sh", "run.sh"));
        assert!(!glob_matches("*.sh", "run.py"));
        assert!(glob_matches("a?c", "abc"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*a*b*", "xxaxxbxx"));
        assert!(!glob_matches("*a*b", "xxaxxbxx"));
        assert!(glob_matches("exact", "exact"));
    }

    #[test]
    fn normalised_paths() {
        assert_eq!(normalise(Path::new("/var/www/./app/")), PathBuf::from("/var/www/app"));
        assert_eq!(normalise(Path::new("/var/www/../x")), PathBuf::from("/var/x"));
    }
}
