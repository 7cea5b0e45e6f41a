//! The agent's files under `root_dir`, named exactly as the official agent names them (note the
//! mix of `-cleanup`/`-install.json` and `_last_successful_install`/`_most_recent_install`), so a
//! host moved from the official agent keeps its last successful revision and cleanup list.
//!
//! ```text
//! <root>/<group-id>/<deployment-id>/{bundle.tar, deployment-archive/, logs/scripts.log}
//! <root>/deployment-instructions/{<group>-cleanup, <group>-install.json,
//!                                 <group>_last_successful_install, <group>_most_recent_install}
//! <root>/deployment-logs/codedeploy-agent-deployments.log
//! <root>/ongoing-deployment/<deployment-id>
//! ```

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn group_dir(&self, group_id: &str) -> PathBuf {
        self.root.join(group_id)
    }

    pub fn deployment_dir(&self, group_id: &str, deployment_id: &str) -> PathBuf {
        self.group_dir(group_id).join(deployment_id)
    }

    pub fn instructions_dir(&self) -> PathBuf {
        self.root.join("deployment-instructions")
    }

    pub fn cleanup_file(&self, group_id: &str) -> PathBuf {
        self.instructions_dir().join(format!("{group_id}-cleanup"))
    }

    pub fn install_file(&self, group_id: &str) -> PathBuf {
        self.instructions_dir().join(format!("{group_id}-install.json"))
    }

    pub fn last_successful_file(&self, group_id: &str) -> PathBuf {
        self.instructions_dir().join(format!("{group_id}_last_successful_install"))
    }

    pub fn most_recent_file(&self, group_id: &str) -> PathBuf {
        self.instructions_dir().join(format!("{group_id}_most_recent_install"))
    }

    pub fn deployments_log(&self) -> PathBuf {
        self.root.join("deployment-logs").join("codedeploy-agent-deployments.log")
    }

    pub fn ongoing_dir(&self) -> PathBuf {
        self.root.join("ongoing-deployment")
    }

    pub fn tracking_file(&self, deployment_id: &str) -> PathBuf {
        self.ongoing_dir().join(deployment_id)
    }

    /// The deployment directory a pointer file (`_last_successful_install`,
    /// `_most_recent_install`) names, if the file exists and is not empty.
    pub fn read_pointer(file: &Path) -> Option<PathBuf> {
        let text = std::fs::read_to_string(file).ok()?;
        let path = text.trim();
        (!path.is_empty()).then(|| PathBuf::from(path))
    }

    /// Writes a pointer file (creating `deployment-instructions/`) atomically: a crash leaves
    /// the old pointer or the new one, never half of one.
    pub fn write_pointer(file: &Path, deployment_dir: &Path) -> io::Result<()> {
        write_atomically(file, deployment_dir.to_string_lossy().as_bytes())
    }
}

/// A deployment's own directories.
#[derive(Debug, Clone)]
pub struct DeploymentDirs {
    pub dir: PathBuf,
}

impl DeploymentDirs {
    pub fn new(dir: PathBuf) -> DeploymentDirs {
        DeploymentDirs { dir }
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle.tar")
    }

    pub fn archive(&self) -> PathBuf {
        self.dir.join("deployment-archive")
    }

    pub fn scripts_log(&self) -> PathBuf {
        self.dir.join("logs").join("scripts.log")
    }
}

/// Writes `contents` to a temporary file beside `path`, then renames it into place.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, path)
}

/// Whether an identifier from the server can name a directory: one path component, not `.` or
/// `..`. The group and deployment ids become directory names under `root_dir`.
pub fn is_safe_component(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains('/') && !id.contains('\0')
}
