//! The Install command (the official agent's `installer.rb`, step by step):
//!
//! 1. Delete what the previous Install of this deployment group created, listed in
//!    `<group>-cleanup`, in reverse order (files and links removed, directories only when
//!    empty, missing paths ignored), then the list itself. Files of the previous deployment of
//!    the same group therefore never count as "already there".
//! 2. Plan from `files:`: a directory source has its contents (hidden files too) copied into
//!    the destination, a file source goes into it; missing directories are created. A file
//!    already at a destination is handled by `file_exists_behavior` (the AppSpec's, else the
//!    deployment's, else DISALLOW): fail, overwrite or keep (a kept file is not ours to clean).
//!    Then `permissions:` (see [`crate::permissions`]). Any problem fails here, before a copy.
//! 3. Write `<group>-install.json`, then carry the plan out, appending each path to the new
//!    `<group>-cleanup` *before* creating it, so that even an Install cut short is cleaned up
//!    by the next one. Copies keep mode and modification time; links stay links.
//! 4. Write `<group>_last_successful_install`.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use landfall_appspec::{FileExistsBehavior, ServerAppSpec};
use serde_json::json;

use crate::layout::Layout;
use crate::permissions::{self, normalise};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InstallError(pub String);

fn io_error(what: &Path, error: io::Error) -> InstallError {
    InstallError(format!("{}: {error}", what.display()))
}

/// What an Install is asked to do.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    pub layout: Layout,
    pub group_id: String,
    /// `<root>/<group>/<deployment>`; the revision is its `deployment-archive`.
    pub deployment_dir: PathBuf,
    pub appspec: ServerAppSpec,
    /// The deployment's `fileExistsBehavior` (`AgentOverrides`), as the spec carries it.
    pub deployment_file_exists_behavior: Option<String>,
}

/// One step of an Install, as `<group>-install.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Mkdir {
        directory: PathBuf,
    },
    Copy {
        source: PathBuf,
        destination: PathBuf,
    },
    Chmod {
        file: PathBuf,
        mode: u32,
    },
    Chown {
        file: PathBuf,
        owner: Option<String>,
        group: Option<String>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// ACL entries as `setfacl` takes them; `user::MODE`-style base entries are filled in from
    /// the file's mode when applied.
    Setfacl {
        file: PathBuf,
        acl: Vec<String>,
    },
}

impl Instruction {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Instruction::Mkdir { directory } => json!({"type": "mkdir", "directory": directory}),
            Instruction::Copy { source, destination } => {
                json!({"type": "copy", "source": source, "destination": destination})
            }
            Instruction::Chmod { file, mode } => json!({"type": "chmod", "mode": format!("{mode:04o}"), "file": file}),
            Instruction::Chown { file, owner, group, .. } => {
                json!({"type": "chown", "owner": owner, "group": group, "file": file})
            }
            Instruction::Setfacl { file, acl } => json!({"type": "setfacl", "acl": acl, "file": file}),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedKind {
    Directory,
    File,
    Symlink,
}

/// A path the Install creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub path: PathBuf,
    pub kind: CreatedKind,
}

/// Runs an Install. See the module documentation.
pub fn install(request: &InstallRequest) -> Result<Vec<Instruction>, InstallError> {
    let layout = &request.layout;
    let cleanup_file = layout.cleanup_file(&request.group_id);
    remove_previous_install(&cleanup_file)?;

    let behavior = file_exists_behavior(&request.appspec, request.deployment_file_exists_behavior.as_deref())?;
    let archive = request.deployment_dir.join("deployment-archive");
    let mut planner = Planner { behavior, instructions: Vec::new(), planned: HashMap::new(), created: Vec::new() };
    for mapping in &request.appspec.files {
        planner.plan_mapping(&archive, &mapping.source, &mapping.destination)?;
    }
    let mut instructions = planner.instructions;
    instructions.extend(permissions::plan(&request.appspec.permissions, &planner.created)?);

    let listing = json!({"instructions": instructions.iter().map(Instruction::to_json).collect::<Vec<_>>()});
    let install_file = layout.install_file(&request.group_id);
    crate::layout::write_atomically(&install_file, listing.to_string().as_bytes())
        .map_err(|e| io_error(&install_file, e))?;

    let mut cleanup =
        OpenOptions::new().create(true).append(true).open(&cleanup_file).map_err(|e| io_error(&cleanup_file, e))?;
    for instruction in &instructions {
        execute(instruction, &mut cleanup)?;
    }
    cleanup.sync_all().map_err(|e| io_error(&cleanup_file, e))?;
    Layout::write_pointer(&layout.last_successful_file(&request.group_id), &request.deployment_dir)
        .map_err(|e| io_error(&layout.last_successful_file(&request.group_id), e))?;
    Ok(instructions)
}

/// AppSpec `file_exists_behavior`, else the deployment's, else DISALLOW.
fn file_exists_behavior(appspec: &ServerAppSpec, deployment: Option<&str>) -> Result<FileExistsBehavior, InstallError> {
    if let Some(behavior) = appspec.file_exists_behavior {
        return Ok(behavior);
    }
    match deployment.map(str::trim) {
        None | Some("") | Some("DISALLOW") => Ok(FileExistsBehavior::Disallow),
        Some("OVERWRITE") => Ok(FileExistsBehavior::Overwrite),
        Some("RETAIN") => Ok(FileExistsBehavior::Retain),
        Some(other) => Err(InstallError(format!(
            "The deployment's fileExistsBehavior {other} is not DISALLOW, OVERWRITE or RETAIN."
        ))),
    }
}

/// Step 1: deletes what the previous Install of the group created, newest first.
pub fn remove_previous_install(cleanup_file: &Path) -> Result<(), InstallError> {
    let text = match fs::read(cleanup_file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(cleanup_file, error)),
    };
    for line in text.lines().rev() {
        if line.is_empty() {
            continue;
        }
        if let Some(path) = line.strip_prefix("semanage\0") {
            tracing::warn!(path, "an SELinux context from an earlier install is left in place");
            continue;
        }
        let path = Path::new(line);
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                // Only if empty: something else may have been put there since.
                let _ = fs::remove_dir(path);
            }
            Ok(_) => fs::remove_file(path).map_err(|e| io_error(path, e))?,
            Err(_) => {}
        }
    }
    fs::remove_file(cleanup_file).map_err(|e| io_error(cleanup_file, e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Directory,
    File,
    Kept,
}

struct Planner {
    behavior: FileExistsBehavior,
    instructions: Vec<Instruction>,
    planned: HashMap<PathBuf, Planned>,
    created: Vec<Created>,
}

impl Planner {
    fn plan_mapping(&mut self, archive: &Path, source: &str, destination: &str) -> Result<(), InstallError> {
        let source_text = source.trim();
        let relative = source_text.trim_start_matches(['/', '\\']);
        if Path::new(relative).components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(InstallError(format!(
                "The deployment failed because the files section's source {source_text} leaves the revision ('..')."
            )));
        }
        // Through the links on disk, too (the bundle's links were checked when it was unpacked;
        // this holds for every revision source).
        if crate::archive::resolve_inside(archive, Path::new(relative)).is_none() {
            return Err(InstallError(format!(
                "The deployment failed because the files section's source {source_text} leads outside the revision \
                 through a symbolic link."
            )));
        }
        let source_path = if relative.is_empty() { archive.to_owned() } else { archive.join(relative) };
        let destination = Path::new(destination.trim());
        if !destination.is_absolute() {
            return Err(InstallError(format!(
                "The deployment failed because the files section's destination {} is not an absolute path.",
                destination.display()
            )));
        }
        let destination = normalise(destination);
        let source_meta = fs::symlink_metadata(&source_path).map_err(|_| {
            InstallError(format!(
                "The deployment failed because the files section's source {source_text} does not exist in the revision."
            ))
        })?;
        // The destination and every missing directory above it.
        let mut ancestors: Vec<&Path> = destination.ancestors().collect();
        ancestors.reverse();
        for directory in ancestors.into_iter().skip(1) {
            self.plan_directory(directory)?;
        }
        if source_meta.is_dir() {
            self.plan_tree(&source_path, &destination)
        } else {
            let name = source_path.file_name().map(PathBuf::from).unwrap_or_default();
            self.plan_file(&source_path, &destination.join(name), source_meta.file_type().is_symlink())
        }
    }

    fn plan_tree(&mut self, source: &Path, destination: &Path) -> Result<(), InstallError> {
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(source)
            .map_err(|e| io_error(source, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| io_error(source, e))?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let kind = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
            let target = destination.join(entry.file_name());
            if kind.is_dir() {
                self.plan_directory(&target)?;
                self.plan_tree(&entry.path(), &target)?;
            } else {
                self.plan_file(&entry.path(), &target, kind.is_symlink())?;
            }
        }
        Ok(())
    }

    fn plan_directory(&mut self, directory: &Path) -> Result<(), InstallError> {
        match self.planned.get(directory) {
            Some(Planned::Directory) => return Ok(()),
            Some(Planned::File | Planned::Kept) => {
                return Err(InstallError(format!(
                    "The deployment failed because the files section puts both a file and a directory at {}.",
                    directory.display()
                )));
            }
            None => {}
        }
        match fs::metadata(directory) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(InstallError(format!(
                    "The deployment failed because a file already exists at {}, where a directory is needed.",
                    directory.display()
                )));
            }
            Err(_) => {
                self.instructions.push(Instruction::Mkdir { directory: directory.to_owned() });
                self.created.push(Created { path: directory.to_owned(), kind: CreatedKind::Directory });
            }
        }
        self.planned.insert(directory.to_owned(), Planned::Directory);
        Ok(())
    }

    fn plan_file(&mut self, source: &Path, destination: &Path, is_symlink: bool) -> Result<(), InstallError> {
        match self.planned.get(destination) {
            Some(Planned::Directory) => {
                return Err(InstallError(format!(
                    "The deployment failed because the files section copies {} onto {}, a directory it creates.",
                    source.display(),
                    destination.display()
                )));
            }
            Some(Planned::File | Planned::Kept) => {
                return Err(InstallError(format!(
                    "The deployment failed because the files section copies two files to the same destination: {}",
                    destination.display()
                )));
            }
            None => {}
        }
        if let Ok(meta) = fs::symlink_metadata(destination) {
            if meta.is_dir() {
                return Err(InstallError(format!(
                    "The deployment failed because {} is a directory, and the files section would replace it with a file.",
                    destination.display()
                )));
            }
            match self.behavior {
                FileExistsBehavior::Disallow => {
                    return Err(InstallError(format!(
                        "The deployment failed because a specified file already exists at this location: {}",
                        destination.display()
                    )));
                }
                FileExistsBehavior::Retain => {
                    self.planned.insert(destination.to_owned(), Planned::Kept);
                    return Ok(());
                }
                FileExistsBehavior::Overwrite => {}
            }
        }
        self.instructions.push(Instruction::Copy { source: source.to_owned(), destination: destination.to_owned() });
        let kind = if is_symlink { CreatedKind::Symlink } else { CreatedKind::File };
        self.created.push(Created { path: destination.to_owned(), kind });
        self.planned.insert(destination.to_owned(), Planned::File);
        Ok(())
    }
}

/// Records `path` in the cleanup list; done before the path is created.
fn record(cleanup: &mut File, path: &Path) -> Result<(), InstallError> {
    let mut line = path.as_os_str().to_string_lossy().into_owned();
    line.push('\n');
    cleanup.write_all(line.as_bytes()).map_err(|e| io_error(path, e))
}

fn execute(instruction: &Instruction, cleanup: &mut File) -> Result<(), InstallError> {
    match instruction {
        Instruction::Mkdir { directory } => {
            record(cleanup, directory)?;
            match fs::create_dir(directory) {
                Err(error) if error.kind() != io::ErrorKind::AlreadyExists => Err(io_error(directory, error)),
                _ => Ok(()),
            }
        }
        Instruction::Copy { source, destination } => {
            record(cleanup, destination)?;
            copy_entry(source, destination)
        }
        Instruction::Chmod { file, mode } => {
            fs::set_permissions(file, fs::Permissions::from_mode(*mode)).map_err(|e| io_error(file, e))
        }
        Instruction::Chown { file, uid, gid, .. } => {
            std::os::unix::fs::lchown(file, *uid, *gid).map_err(|e| io_error(file, e))
        }
        Instruction::Setfacl { file, acl } => set_acl(file, acl),
    }
}

/// Copies a file (content, mode, modification time) or re-creates a link, replacing whatever
/// file or link is at `destination` without following it. The copy is made under a temporary
/// name beside the destination and renamed over it, so a reader never sees half a file and an
/// existing file or link is replaced in one step.
fn copy_entry(source: &Path, destination: &Path) -> Result<(), InstallError> {
    let meta = fs::symlink_metadata(source).map_err(|e| io_error(source, e))?;
    let temporary = temporary_beside(destination);
    let made = if meta.file_type().is_symlink() {
        let target = fs::read_link(source).map_err(|e| io_error(source, e))?;
        std::os::unix::fs::symlink(target, &temporary).map_err(|e| io_error(destination, e))
    } else {
        copy_contents(source, &meta, &temporary).map_err(|e| io_error(destination, e))
    };
    let placed = made.and_then(|()| fs::rename(&temporary, destination).map_err(|e| io_error(destination, e)));
    if placed.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    placed
}

fn copy_contents(source: &Path, meta: &fs::Metadata, to: &Path) -> io::Result<()> {
    let mut input = File::open(source)?;
    // create_new: never writes through something already at the temporary name.
    let mut output = OpenOptions::new().write(true).create_new(true).open(to)?;
    io::copy(&mut input, &mut output)?;
    output.set_permissions(meta.permissions())?;
    if let Ok(modified) = meta.modified() {
        let _ = output.set_modified(modified);
    }
    Ok(())
}

/// A name beside `path` that no other copy (of this or another agent) uses.
fn temporary_beside(path: &Path) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.landfall-{}-{count}", std::process::id()))
}

fn set_acl(file: &Path, entries: &[String]) -> Result<(), InstallError> {
    let mode = fs::metadata(file).map_err(|e| io_error(file, e))?.permissions().mode();
    let bits = |shift: u32| {
        let b = (mode >> shift) & 0o7;
        format!(
            "{}{}{}",
            if b & 4 != 0 { 'r' } else { '-' },
            if b & 2 != 0 { 'w' } else { '-' },
            if b & 1 != 0 { 'x' } else { '-' }
        )
    };
    let spec: Vec<String> = entries
        .iter()
        .map(|entry| {
            entry
                .replace("user::MODE", &format!("user::{}", bits(6)))
                .replace("group::MODE", &format!("group::{}", bits(3)))
                .replace("other::MODE", &format!("other::{}", bits(0)))
        })
        .collect();
    let setfacl = permissions::which_setfacl()
        .ok_or_else(|| InstallError("setfacl (package acl) is not installed on this host".into()))?;
    let output = std::process::Command::new(setfacl)
        .arg("--set")
        .arg(spec.join(","))
        .arg(file)
        .output()
        .map_err(|e| io_error(file, e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(InstallError(format!(
            "setfacl --set {} {} failed: {}",
            spec.join(","),
            file.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_replace_in_one_step_even_when_racing() {
        let dir = std::env::temp_dir().join(format!("landfall-install-race-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (a, b, destination) = (dir.join("a"), dir.join("b"), dir.join("index.html"));
        fs::write(&a, "from a").unwrap();
        fs::write(&b, "from b").unwrap();
        // Two hosts sharing a directory install the same file at once: each copy lands whole.
        let racers: Vec<_> = [a, b]
            .into_iter()
            .map(|source| {
                let destination = destination.clone();
                std::thread::spawn(move || (0..200).try_for_each(|_| copy_entry(&source, &destination)))
            })
            .collect();
        for racer in racers {
            racer.join().unwrap().unwrap();
        }
        assert!(matches!(fs::read_to_string(&destination).unwrap().as_str(), "from a" | "from b"));
        // A link at the destination is replaced, not written through.
        let outside = dir.join("outside");
        fs::write(&outside, "untouched").unwrap();
        fs::remove_file(&destination).unwrap();
        std::os::unix::fs::symlink(&outside, &destination).unwrap();
        copy_entry(&dir.join("a"), &destination).unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "untouched");
        assert_eq!(fs::read_to_string(&destination).unwrap(), "from a");
        assert!(!fs::symlink_metadata(&destination).unwrap().file_type().is_symlink());
        let leftovers = fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(leftovers, 0, "no temporary file stays behind");
        fs::remove_dir_all(&dir).unwrap();
    }
}
