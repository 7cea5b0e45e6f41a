//! Unpacking a revision bundle (tar, tgz, zip) in-process, with path guards.
//!
//! Nothing in a bundle is trusted: an entry whose name is absolute or has a `..` component, a
//! symbolic link whose target is absolute or leaves the destination, a hard link to anything but
//! a regular file already unpacked, and any entry that would be written through a symbolic link
//! are refused, and the whole bundle with them. Every check happens before anything is written
//! for that entry, so a refused bundle has written nothing outside the destination, and the
//! destination itself is removed again.
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

/// Unpacks `bundle` into `destination`, which is emptied first. The bundle must be what the
/// revision `declared` (when it declares a type): a zip registered as tgz is refused with a
/// message that says which it is, rather than failing somewhere in the decompressor. On any
/// error the destination is removed, so no part of a refused bundle stays.
pub fn unpack(bundle: &Path, destination: &Path, declared: Option<BundleFormat>) -> Result<(), ArchiveError> {
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
    let mut extractor = Extractor { root: destination.to_owned(), directories: Vec::new() };
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
/// case), its contents move up one level. Returns whether it did.
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

/// Whether a symbolic link at `link` (relative to the root) pointing to `target` stays inside.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: Vec<&std::ffi::OsStr> = link.parent().map(|p| p.iter().collect()).unwrap_or_default();
    for component in target.components() {
        match component {
            Component::Normal(part) => depth.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

struct Extractor {
    root: PathBuf,
    /// Directories and the mode and time they get once everything inside is written.
    directories: Vec<(PathBuf, u32, Option<SystemTime>)>,
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

    fn file(
        &mut self,
        relative: &Path,
        content: &mut dyn Read,
        mode: u32,
        modified: Option<SystemTime>,
    ) -> Result<(), ArchiveError> {
        let path = self.prepare_parent(relative)?;
        self.clear(&path, relative)?;
        // create_new never follows a link at the path; the mode comes once the content is in.
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(|e| self.io(&path, e))?;
        io::copy(content, &mut file).map_err(|e| self.io(&path, e))?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| self.io(&path, e))?;
        if let Some(time) = modified {
            let _ = file.set_modified(time);
        }
        Ok(())
    }

    fn directory(&mut self, relative: &Path, mode: u32, modified: Option<SystemTime>) -> Result<(), ArchiveError> {
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
        let target = Path::new(std::ffi::OsStr::from_bytes(target));
        if target.as_os_str().is_empty() || !link_stays_inside(relative, target) {
            return Err(ArchiveError::Unsafe(format!(
                "the symbolic link {} points to {}, outside the revision directory",
                relative.display(),
                target.display()
            )));
        }
        let path = self.prepare_parent(relative)?;
        self.clear(&path, relative)?;
        std::os::unix::fs::symlink(target, &path).map_err(|e| self.io(&path, e))
    }

    fn hard_link(&mut self, relative: &Path, target: &[u8]) -> Result<(), ArchiveError> {
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
                    self.file(&relative, &mut entry, mode, modified)?;
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
                self.file(&relative, &mut entry, mode.unwrap_or(0o644), None)?;
            }
        }
        Ok(())
    }

    /// Gives directories their modes and times, deepest first, now that nothing more is written
    /// into them.
    fn finish(&mut self) -> Result<(), ArchiveError> {
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
    fn link_targets() {
        assert!(link_stays_inside(Path::new("a/b/link"), Path::new("../c")));
        assert!(link_stays_inside(Path::new("a/link"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("link"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("a/link"), Path::new("../../c")));
        assert!(!link_stays_inside(Path::new("a/link"), Path::new("/etc")));
        assert!(link_stays_inside(Path::new("a/link"), Path::new("x/../../c")));
        assert!(!link_stays_inside(Path::new("a/link"), Path::new("x/../../../c")));
    }
}
