//! Unpacking a revision bundle (tar, tgz, zip) in-process, with path guards.
//!
//! Nothing in a bundle is trusted: an entry whose name is absolute or has a `..` component, a
//! symbolic link whose target is absolute or leaves the destination, a hard link to anything but
//! a regular file already unpacked, and any entry that would be written through a symbolic link
//! are refused, and the whole bundle with them. Every check happens before anything is written
//! for that entry, so a refused bundle has written nothing outside the destination, and the
//! destination itself is removed again.
//!
//! A link's target is judged by where it leads through the links already on disk, not by its
//! text alone: `a/l -> ..` then `e -> a/l/..` reads as `a` but leads to the destination's parent.
//! And since a later link can change where an earlier one leads, every link is checked again
//! once the whole bundle is written. [`resolve_inside`] does the same for every path a revision
//! names (`files:` sources, hook scripts, the AppSpec itself).
//!
//! What a bundle expands to is held to a [`DiskBudget`]: a zip whose entries declare more is
//! refused before anything is written, a tar at the entry that would go past it, and any entry
//! whose content turns out larger than it declared as soon as it does.
//!
//! Modes are kept (as `tar -p` keeps them, setuid bits included), and modification times for
//! tar entries; owners are not: files belong to the agent's user, and `permissions:` in the
//! AppSpec set owners on the installed copies. Device files and FIFOs are skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::disk::{DiskBudget, size_text};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry that would write outside the destination, or through a link.
    #[error("the bundle was refused: {0}")]
    Unsafe(String),
    /// The bundle cannot be read as the format it is.
    #[error("the bundle could not be unpacked: {0}")]
    Corrupt(String),
    /// The bundle is not the type its revision declares.
    #[error("the bundle could not be unpacked: {0}")]
    WrongType(String),
    /// The bundle expands to more than the agent lets a revision take.
    #[error("the bundle was refused: {0}")]
    TooLarge(String),
    #[error("unpacking the bundle failed: {0}")]
    Io(String),
}

/// How a bundle is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleFormat {
    Tar,
    Tgz,
    Zip,
}

impl BundleFormat {
    /// A revision's `bundleType` (`tar`, `tgz`, `zip`); `None` for anything else.
    pub fn from_declared(bundle_type: &str) -> Option<BundleFormat> {
        match bundle_type {
            "tar" => Some(BundleFormat::Tar),
            "tgz" => Some(BundleFormat::Tgz),
            "zip" => Some(BundleFormat::Zip),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BundleFormat::Tar => "tar",
            BundleFormat::Tgz => "tgz",
            BundleFormat::Zip => "zip",
        }
    }

    fn description(self) -> &'static str {
        match self {
            BundleFormat::Tar => "a tar archive",
            BundleFormat::Tgz => "a gzip-compressed tar archive (tgz)",
            BundleFormat::Zip => "a zip archive",
        }
    }

    /// What the bundle's first bytes say it is (`None`: none of the three).
    pub fn detect(bundle: &Path) -> io::Result<Option<BundleFormat>> {
        let mut head = [0u8; 512];
        let mut file = File::open(bundle)?;
        let mut read = 0;
        while read < head.len() {
            match file.read(&mut head[read..])? {
                0 => break,
                n => read += n,
            }
        }
        let head = &head[..read];
        Ok(match head {
            [0x1f, 0x8b, ..] => Some(BundleFormat::Tgz),
            [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Some(BundleFormat::Zip),
            // POSIX and GNU tar headers say "ustar" at 257; an empty archive is all zeros.
            _ if head.get(257..262) == Some(b"ustar") => Some(BundleFormat::Tar),
            _ if head.len() == 512 && head.iter().all(|&b| b == 0) => Some(BundleFormat::Tar),
            _ => None,
        })
    }
}

/// Unpacks `bundle` into `destination`, which is emptied first, within `budget`. The bundle
/// must be what the revision `declared` (when it declares a type): a zip registered as tgz is
/// refused with a message that says which it is, rather than failing somewhere in the
/// decompressor. On any error the destination is removed, so no part of a refused bundle stays.
pub fn unpack(
    bundle: &Path,
    destination: &Path,
    declared: Option<BundleFormat>,
    budget: &DiskBudget,
) -> Result<(), ArchiveError> {
    let io_error = |what: &str, error: io::Error| ArchiveError::Io(format!("{what}: {error}"));
    let detected = BundleFormat::detect(bundle).map_err(|e| io_error(&bundle.display().to_string(), e))?;
    let format = match (declared, detected) {
        (Some(declared), Some(detected)) if declared != detected => Err(ArchiveError::WrongType(format!(
            "the revision's bundle type is {}, but the bundle is {}: register it with bundleType {}",
            declared.name(),
            detected.description(),
            detected.name()
        ))),
        (_, Some(format)) => Ok(format),
        // Old (pre-POSIX) tar archives carry no magic: try them as what they claim to be.
        (Some(BundleFormat::Tar), None) => Ok(BundleFormat::Tar),
        (declared, None) => {
            let size = fs::metadata(bundle).map(|m| m.len()).unwrap_or(0);
            let expected = declared.map_or("a tar, tgz or zip archive", BundleFormat::description);
            Err(ArchiveError::Corrupt(format!(
                "the bundle ({size} bytes) is not {expected}: it is corrupt, or not an archive at all"
            )))
        }
    };
    match fs::symlink_metadata(destination) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(destination),
        Ok(_) => fs::remove_file(destination),
        Err(_) => Ok(()),
    }
    .map_err(|e| io_error(&destination.display().to_string(), e))?;
    let format = format?;
    fs::create_dir_all(destination).map_err(|e| io_error(&destination.display().to_string(), e))?;
    let mut extractor = Extractor {
        root: destination.to_owned(),
        directories: Vec::new(),
        budget: budget.clone(),
        written: 0,
        entries: 0,
    };
    let file = File::open(bundle).map_err(|e| io_error(&bundle.display().to_string(), e))?;
    let result = match format {
        BundleFormat::Tar => extractor.tar(tar::Archive::new(io::BufReader::new(file))),
        BundleFormat::Tgz => extractor.tar(tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))),
        BundleFormat::Zip => extractor.zip(file),
    }
    .and_then(|()| extractor.finish());
    if result.is_err() {
        let _ = fs::remove_dir_all(destination);
    }
    result
}

/// The official agent's "Stripping leading directory": when the unpacked revision holds exactly
/// one entry, a directory, and that directory has an entry whose name contains `appspec` (any
/// case), its contents move up one level. Returns whether it did. (Moving up changes where a
/// link with `..` leads: check the links again afterwards.)
pub fn strip_leading_directory(root: &Path) -> io::Result<bool> {
    let entries: Vec<fs::DirEntry> = fs::read_dir(root)?.collect::<Result<_, _>>()?;
    let [only] = entries.as_slice() else { return Ok(false) };
    if !only.file_type()?.is_dir() {
        return Ok(false);
    }
    let has_appspec = fs::read_dir(only.path())?
        .filter_map(Result::ok)
        .any(|entry| entry.file_name().to_string_lossy().to_ascii_lowercase().contains("appspec"));
    if !has_appspec {
        return Ok(false);
    }
    // Renamed first: it may hold an entry of its own name.
    let moving = root.join(format!(".landfall-strip-{}", std::process::id()));
    fs::rename(only.path(), &moving)?;
    for child in fs::read_dir(&moving)? {
        let child = child?;
        fs::rename(child.path(), root.join(child.file_name()))?;
    }
    fs::remove_dir(&moving)?;
    Ok(true)
}

/// Turns an entry name into a path relative to the destination: `.` components dropped,
/// absolute names and `..` refused. `None` for the destination itself (`./`).
fn relative_path(name: &[u8]) -> Result<Option<PathBuf>, ArchiveError> {
    let display = String::from_utf8_lossy(name);
    if name.contains(&0) {
        return Err(ArchiveError::Unsafe(format!("the entry name {display:?} contains a NUL byte")));
    }
    let path = Path::new(std::ffi::OsStr::from_bytes(name));
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(ArchiveError::Unsafe(format!("the entry {display} has an absolute path")));
            }
            Component::ParentDir => {
                return Err(ArchiveError::Unsafe(format!(
                    "the entry {display} has a '..' component, which would write outside the revision directory"
                )));
            }
        }
    }
    Ok((!relative.as_os_str().is_empty()).then_some(relative))
}

/// The real path of `relative` under `root`, following the symbolic links on disk as the
/// system would: `None` if it leads outside `root` (through `..`, an absolute link, or a link
/// leading out) or through more than 40 links. Parts that do not exist yet are taken as
/// written.
pub fn resolve_inside(root: &Path, relative: &Path) -> Option<PathBuf> {
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: std::collections::VecDeque<std::ffi::OsString> = std::collections::VecDeque::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => pending.push_back(part.to_owned()),
            Component::ParentDir => pending.push_back("..".into()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop()?;
            continue;
        }
        let candidate: PathBuf = std::iter::once(root.as_os_str())
            .chain(resolved.iter().map(|p| p.as_os_str()))
            .chain([part.as_os_str()])
            .collect();
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                let target = fs::read_link(&candidate).ok()?;
                if links > 40 || target.is_absolute() {
                    return None;
                }
                // The link's target continues from the directory holding it.
                for component in target.components().rev() {
                    match component {
                        Component::Normal(name) => pending.push_front(name.to_owned()),
                        Component::ParentDir => pending.push_front("..".into()),
                        Component::CurDir => {}
                        Component::RootDir | Component::Prefix(_) => return None,
                    }
                }
            }
            _ => resolved.push(part),
        }
    }
    Some(resolved.iter().fold(root.to_owned(), |path, part| path.join(part)))
}

struct Extractor {
    root: PathBuf,
    /// Directories and the mode and time they get once everything inside is written.
    directories: Vec<(PathBuf, u32, Option<SystemTime>)>,
    budget: DiskBudget,
    /// Bytes of file content and entries written so far.
    written: u64,
    entries: u64,
}

impl Extractor {
    fn io(&self, what: &Path, error: io::Error) -> ArchiveError {
        ArchiveError::Io(format!("{}: {error}", what.display()))
    }

    /// Makes sure every directory above `relative` is a real directory inside the root (creating
    /// missing ones), and returns the entry's absolute path.
    fn prepare_parent(&self, relative: &Path) -> Result<PathBuf, ArchiveError> {
        let mut current = self.root.clone();
        let parent = relative.parent().unwrap_or(Path::new(""));
        for part in parent.iter() {
            current.push(part);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(ArchiveError::Unsafe(format!(
                        "the entry {} would be written through the symbolic link {}",
                        relative.display(),
                        current.strip_prefix(&self.root).unwrap_or(&current).display()
                    )));
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(ArchiveError::Corrupt(format!(
                        "the entry {} is below {}, which the bundle made a file",
                        relative.display(),
                        current.strip_prefix(&self.root).unwrap_or(&current).display()
                    )));
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&current).map_err(|e| self.io(&current, e))?;
                }
                Err(error) => return Err(self.io(&current, error)),
            }
        }
        Ok(self.root.join(relative))
    }

    /// Removes a file or link already at `path` (a later entry of the same name wins, as with
    /// tar); a directory there is an error unless a directory is being written.
    fn clear(&self, path: &Path, relative: &Path) -> Result<(), ArchiveError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => Err(ArchiveError::Corrupt(format!(
                "the entry {} would replace a directory of the same name",
                relative.display()
            ))),
            Ok(_) => fs::remove_file(path).map_err(|e| self.io(path, e)),
            Err(_) => Ok(()),
        }
    }

    /// Counts one more entry, and `size` more bytes, against the budget.
    fn reserve(&mut self, relative: &Path, size: u64) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.budget.entries {
            return Err(ArchiveError::TooLarge(format!(
                "it has more than {} entries, what {} leaves room for (at {})",
                self.budget.entries,
                self.budget.source,
                relative.display()
            )));
        }
        if self.written.saturating_add(size) > self.budget.bytes {
            return Err(ArchiveError::TooLarge(format!(
                "it expands to more than the limit of {}: the entry {} ({}) would take it to {}",
                self.budget.describe(),
                relative.display(),
                size_text(size),
                size_text(self.written.saturating_add(size))
            )));
        }
        self.written += size;
        Ok(())
    }

    fn file(
        &mut self,
        relative: &Path,
        content: &mut dyn Read,
        size: u64,
        mode: u32,
        modified: Option<SystemTime>,
    ) -> Result<(), ArchiveError> {
        self.reserve(relative, size)?;
        let path = self.prepare_parent(relative)?;
        self.clear(&path, relative)?;
        // create_new never follows a link at the path; the mode comes once the content is in.
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(|e| self.io(&path, e))?;
        // Never more than the entry declared: a size that lies is caught as it does.
        let copied = io::copy(&mut content.take(size.saturating_add(1)), &mut file).map_err(|e| self.io(&path, e))?;
        if copied > size {
            return Err(ArchiveError::TooLarge(format!(
                "the entry {} holds more than the {} it declares",
                relative.display(),
                size_text(size)
            )));
        }
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| self.io(&path, e))?;
        if let Some(time) = modified {
            let _ = file.set_modified(time);
        }
        Ok(())
    }

    fn directory(&mut self, relative: &Path, mode: u32, modified: Option<SystemTime>) -> Result<(), ArchiveError> {
        self.reserve(relative, 0)?;
        let path = self.prepare_parent(relative)?;
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(ArchiveError::Unsafe(format!(
                    "the directory entry {} would replace a file or link of the same name",
                    relative.display()
                )));
            }
            Err(_) => fs::create_dir(&path).map_err(|e| self.io(&path, e))?,
        }
        self.directories.push((path, mode & 0o7777, modified));
        Ok(())
    }

    fn symlink(&mut self, relative: &Path, target: &[u8]) -> Result<(), ArchiveError> {
        self.reserve(relative, 0)?;
        let target = Path::new(std::ffi::OsStr::from_bytes(target));
        let leads_to = relative.parent().unwrap_or(Path::new("")).join(target);
        if target.as_os_str().is_empty() || resolve_inside(&self.root, &leads_to).is_none() {
            return Err(outside(relative, target));
        }
        let path = self.prepare_parent(relative)?;
        self.clear(&path, relative)?;
        std::os::unix::fs::symlink(target, &path).map_err(|e| self.io(&path, e))
    }

    fn hard_link(&mut self, relative: &Path, target: &[u8]) -> Result<(), ArchiveError> {
        self.reserve(relative, 0)?;
        let refuse = |why: &str| {
            ArchiveError::Unsafe(format!(
                "the hard link {} to {} {why}",
                relative.display(),
                String::from_utf8_lossy(target)
            ))
        };
        let target_relative = match relative_path(target) {
            Ok(Some(path)) => path,
            Ok(None) | Err(_) => return Err(refuse("points outside the revision directory")),
        };
        // The target's directories must be real ones inside the root, and the target a regular
        // file the bundle already wrote: linking to a link could re-aim it elsewhere.
        let mut current = self.root.clone();
        for part in target_relative.parent().unwrap_or(Path::new("")).iter() {
            current.push(part);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.is_dir() && !meta.file_type().is_symlink() => {}
                _ => return Err(refuse("goes through a symbolic link or a missing directory")),
            }
        }
        let source = self.root.join(&target_relative);
        match fs::symlink_metadata(&source) {
            Ok(meta) if meta.file_type().is_file() => {}
            _ => return Err(refuse("does not name a regular file earlier in the bundle")),
        }
        let path = self.prepare_parent(relative)?;
        if path == source {
            return Ok(());
        }
        self.clear(&path, relative)?;
        fs::hard_link(&source, &path).map_err(|e| self.io(&path, e))
    }

    fn tar<R: Read>(&mut self, mut archive: tar::Archive<R>) -> Result<(), ArchiveError> {
        let corrupt = |error: io::Error| ArchiveError::Corrupt(error.to_string());
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let name = entry.path_bytes().into_owned();
            let header = entry.header();
            let kind = header.entry_type();
            let mode = header.mode().unwrap_or(0o644);
            let modified = header.mtime().ok().map(|secs| UNIX_EPOCH + Duration::from_secs(secs));
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            let Some(relative) = relative_path(&name)? else { continue };
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    self.file(&relative, &mut entry, size, mode, modified)?;
                }
                tar::EntryType::Directory => self.directory(&relative, mode, modified)?,
                tar::EntryType::Symlink => self.symlink(&relative, &link.unwrap_or_default())?,
                tar::EntryType::Link => self.hard_link(&relative, &link.unwrap_or_default())?,
                // pax/GNU headers, devices, FIFOs: nothing to write.
                other => tracing::debug!(entry = %relative.display(), kind = ?other, "bundle entry skipped"),
            }
        }
        Ok(())
    }

    fn zip(&mut self, file: File) -> Result<(), ArchiveError> {
        let corrupt = |error: zip::result::ZipError| ArchiveError::Corrupt(error.to_string());
        let mut archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(corrupt)?;
        // The central directory says what everything expands to: too much is refused at once.
        let mut declared: u64 = 0;
        for index in 0..archive.len() {
            let entry = archive.by_index_raw(index).map_err(corrupt)?;
            declared = declared.saturating_add(entry.size());
        }
        if declared > self.budget.bytes {
            return Err(ArchiveError::TooLarge(format!(
                "its {} entries expand to {}, more than the limit of {}",
                archive.len(),
                size_text(declared),
                self.budget.describe()
            )));
        }
        if archive.len() as u64 > self.budget.entries {
            return Err(ArchiveError::TooLarge(format!(
                "it has {} entries, more than {} leaves room for ({})",
                archive.len(),
                self.budget.source,
                self.budget.entries
            )));
        }
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).map_err(corrupt)?;
            let name = entry.name_raw().to_vec();
            let Some(relative) = relative_path(&name)? else { continue };
            let mode = entry.unix_mode();
            if entry.is_symlink() {
                let mut target = Vec::new();
                entry.read_to_end(&mut target).map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
                self.symlink(&relative, &target)?;
            } else if entry.is_dir() {
                self.directory(&relative, mode.unwrap_or(0o755), None)?;
            } else {
                let size = entry.size();
                self.file(&relative, &mut entry, size, mode.unwrap_or(0o644), None)?;
            }
        }
        Ok(())
    }

    /// Checks every link again (a later link may have changed where an earlier one leads), then
    /// gives directories their modes and times, deepest first, now that nothing more is written
    /// into them.
    fn finish(&mut self) -> Result<(), ArchiveError> {
        check_links(&self.root)?;
        self.directories.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, mode, modified) in &self.directories {
            // A directory must stay writable and searchable by the agent for Install's copies.
            fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o700)).map_err(|e| self.io(path, e))?;
            if let Some(time) = modified
                && let Ok(dir) = File::open(path)
            {
                let _ = dir.set_modified(*time);
            }
        }
        Ok(())
    }
}

/// Checks that every symbolic link under `root` leads inside it, through the links on disk.
pub fn check_links(root: &Path) -> Result<(), ArchiveError> {
    check_links_below(root, root)
}

fn check_links_below(root: &Path, dir: &Path) -> Result<(), ArchiveError> {
    let io_error = |path: &Path, error: io::Error| ArchiveError::Io(format!("{}: {error}", path.display()));
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io_error(&path, e))?;
        if kind.is_dir() {
            check_links_below(root, &path)?;
        } else if kind.is_symlink() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            if resolve_inside(root, relative).is_none() {
                let target = fs::read_link(&path).unwrap_or_default();
                return Err(outside(relative, &target));
            }
        }
    }
    Ok(())
}

fn outside(link: &Path, target: &Path) -> ArchiveError {
    ArchiveError::Unsafe(format!(
        "the symbolic link {} points to {}, which leads outside the revision directory",
        link.display(),
        target.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(relative_path(b"./a/./b").unwrap(), Some(PathBuf::from("a/b")));
        assert_eq!(relative_path(b"./").unwrap(), None);
        assert!(matches!(relative_path(b"/etc/passwd"), Err(ArchiveError::Unsafe(_))));
        assert!(matches!(relative_path(b"a/../../x"), Err(ArchiveError::Unsafe(_))));
        assert!(matches!(relative_path(b"a/../b"), Err(ArchiveError::Unsafe(_))));
    }

    #[test]
    fn paths_resolve_through_the_links_on_disk() {
        let root = std::env::temp_dir().join(format!("landfall-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("a/b")).unwrap();
        let link = |at: &str, to: &str| std::os::unix::fs::symlink(to, root.join(at)).unwrap();
        link("a/up", "..");
        link("a/b/c", "../../a");
        link("chain", "a/up/..");
        link("loop1", "loop2");
        link("loop2", "loop1");
        let inside = |path: &str| resolve_inside(&root, Path::new(path));
        assert_eq!(inside("a/b/file"), Some(root.join("a/b/file")));
        assert_eq!(inside("a/up/a/b"), Some(root.join("a/b")));
        assert_eq!(inside("a/b/c/b/../x"), Some(root.join("a/x")));
        assert_eq!(inside("a/../x"), Some(root.join("x")));
        // Lexically `chain` is `a`; through the link `a/up` it is the root's parent.
        assert_eq!(inside("chain"), None);
        assert_eq!(inside("chain/etc/passwd"), None);
        assert_eq!(inside("a/up/.."), None);
        assert_eq!(inside("../x"), None);
        assert_eq!(inside("/etc"), None);
        assert_eq!(inside("loop1"), None);
        fs::remove_dir_all(&root).unwrap();
    }
}
