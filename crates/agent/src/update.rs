//! `landfall-agent` replacing itself with the binary a server offers (`landfall agent-update`).
//!
//! Between lifecycle events, an offer that came with a poll is opened as a deployment
//! specification is (its signature, under `:landfall_spec_ca_file:` when one is configured),
//! the binary is downloaded beside the running one and checked against the offer's SHA-256, and
//! tried (`--version` must say the offered version). Only then is the running binary kept as
//! `<binary>.previous`, the new one renamed over it (atomically) and executed in place of this
//! process, with the same arguments.
//!
//! A binary that fails before it confirms is rolled back by the agent itself: the swap leaves a
//! state file saying an update is on trial; each start counts itself in it, a start that finds
//! an earlier one already counted (the new binary started and died, and systemd started it
//! again) puts `<binary>.previous` back and runs it, and the first successful poll confirms the
//! update (the state file and the previous binary go).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use landfall_envelope::CaCertificate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest binary downloaded.
const MAX_BINARY_BYTES: u64 = 512 * 1024 * 1024;
/// How long the new binary may take to say its version.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a server offers (sealed).
#[derive(Debug, Deserialize)]
struct Offer {
    version: String,
    sha256: String,
    path: String,
}

/// The update on trial, in the state file.
#[derive(Debug, Serialize, Deserialize)]
struct Trial {
    version: String,
    previous: PathBuf,
    /// How many times a binary started with this update on trial.
    starts: u32,
}

/// This process, as it updates itself.
#[derive(Debug, Clone)]
pub struct SelfUpdate {
    /// The running binary, and the arguments it was started with.
    pub exe: PathBuf,
    pub args: Vec<OsString>,
    /// `<pid_dir>/<program_name>.update`.
    pub state_file: PathBuf,
    /// The server the binary is downloaded from (the command endpoint).
    pub endpoint: String,
    pub spec_ca: Option<CaCertificate>,
}

/// Why an offer was not taken.
#[derive(Debug)]
pub struct Refused {
    pub version: String,
    pub why: String,
}

impl SelfUpdate {
    /// Settles an update on trial as this process starts: counts this start, or, when a start
    /// was counted before and never confirmed, puts the previous binary back and runs it (does
    /// not return then).
    pub fn on_start(&self) -> Result<(), String> {
        let Some(mut trial) = self.trial() else { return Ok(()) };
        if trial.starts == 0 {
            trial.starts = 1;
            return self.write_trial(&trial);
        }
        tracing::warn!(version = %trial.version, "the updated agent did not confirm its update: rolling back");
        std::fs::rename(&trial.previous, &self.exe)
            .map_err(|error| format!("cannot put {} back: {error}", trial.previous.display()))?;
        let _ = std::fs::remove_file(&self.state_file);
        Err(self.exec())
    }

    /// After a successful poll: an update on trial worked, so its state and the previous binary go.
    pub fn confirm(&self) {
        if let Some(trial) = self.trial() {
            let _ = std::fs::remove_file(&trial.previous);
            let _ = std::fs::remove_file(&self.state_file);
            tracing::info!(version = %trial.version, "the agent update is confirmed");
        }
    }

    fn trial(&self) -> Option<Trial> {
        serde_json::from_slice(&std::fs::read(&self.state_file).ok()?).ok()
    }

    fn write_trial(&self, trial: &Trial) -> Result<(), String> {
        let text = serde_json::to_vec(trial).unwrap_or_default();
        std::fs::write(&self.state_file, text)
            .map_err(|error| format!("cannot write {}: {error}", self.state_file.display()))
    }

    /// Takes an offer: returns `Ok(())` when there is nothing to do (this version already),
    /// never returns when it updated (the new binary runs in this process), and says why not
    /// otherwise.
    pub async fn take(&self, http: &reqwest::Client, sealed: &str) -> Result<(), Refused> {
        let opened = landfall_envelope::open(sealed, self.spec_ca.as_ref());
        let offer: Offer = match opened.map(|json| serde_json::from_slice(&json)) {
            Ok(Ok(offer)) => offer,
            Ok(Err(error)) => return Err(refused("?", format!("the offer is not valid: {error}"))),
            Err(error) => return Err(refused("?", format!("the offer's signature was refused: {error}"))),
        };
        if offer.version == crate::version() {
            return Ok(());
        }
        let fail = |why: String| refused(&offer.version, why);
        if !offer.path.starts_with("/agent/") {
            return Err(fail(format!("the offer names {} instead of a path under /agent/", offer.path)));
        }
        tracing::info!(version = %offer.version, "updating the agent");
        let new = sibling(&self.exe, "new");
        let url = format!("{}{}", self.endpoint.trim_end_matches('/'), offer.path);
        download(http, &url, &new, &offer.sha256).await.map_err(&fail)?;
        try_binary(&new, &offer.version).await.map_err(|why| {
            let _ = std::fs::remove_file(&new);
            fail(why)
        })?;
        let previous = sibling(&self.exe, "previous");
        let _ = std::fs::remove_file(&previous);
        std::fs::hard_link(&self.exe, &previous)
            .or_else(|_| std::fs::copy(&self.exe, &previous).map(|_| ()))
            .map_err(|error| fail(format!("cannot keep the running binary as {}: {error}", previous.display())))?;
        let trial = Trial { version: offer.version.clone(), previous: previous.clone(), starts: 0 };
        self.write_trial(&trial).map_err(&fail)?;
        std::fs::rename(&new, &self.exe)
            .map_err(|error| fail(format!("cannot replace {}: {error}", self.exe.display())))?;
        tracing::info!(version = %offer.version, "agent replaced; running the new binary");
        let why = self.exec();
        // Still here: the new binary could not be executed. Put the old one back.
        let _ = std::fs::rename(&previous, &self.exe);
        let _ = std::fs::remove_file(&self.state_file);
        Err(fail(why))
    }

    /// Runs the binary at `exe` in place of this process; returns only why it could not.
    fn exec(&self) -> String {
        let to_c = |text: &std::ffi::OsStr| CString::new(text.as_bytes()).map_err(|error| error.to_string());
        let path = match to_c(self.exe.as_os_str()) {
            Ok(path) => path,
            Err(error) => return error,
        };
        let args: Result<Vec<CString>, String> =
            std::iter::once(self.exe.as_os_str()).chain(self.args.iter().map(OsString::as_os_str)).map(to_c).collect();
        match args {
            Ok(args) => match nix::unistd::execv(&path, &args) {
                Err(errno) => format!("cannot run {}: {errno}", self.exe.display()),
            },
            Err(error) => error,
        }
    }
}

fn refused(version: &str, why: String) -> Refused {
    Refused { version: version.to_owned(), why }
}

/// `<binary>.<suffix>` beside the binary (the same file system, so a rename is atomic).
fn sibling(exe: &Path, suffix: &str) -> PathBuf {
    let mut name = exe.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    exe.with_file_name(name)
}

/// Downloads `url` to `to`, checking its size and SHA-256.
async fn download(http: &reqwest::Client, url: &str, to: &Path, sha256: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut response = http.get(url).send().await.map_err(|error| format!("cannot download {url}: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("downloading {url} answered {}", response.status()));
    }
    let mut file = std::fs::File::create(to).map_err(|error| format!("cannot write {}: {error}", to.display()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|error| format!("downloading {url}: {error}"))? {
        size += chunk.len() as u64;
        if size > MAX_BINARY_BYTES {
            return Err(format!("the binary at {url} is larger than {MAX_BINARY_BYTES} bytes"));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(|error| format!("cannot write {}: {error}", to.display()))?;
    }
    file.sync_all().map_err(|error| format!("cannot write {}: {error}", to.display()))?;
    let got = hex::encode(hasher.finalize());
    if got != sha256 {
        let _ = std::fs::remove_file(to);
        return Err(format!("the binary downloaded has SHA-256 {got}, the offer says {sha256}"));
    }
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))
        .map_err(|error| format!("cannot make {} executable: {error}", to.display()))
}

/// Whether the binary at `path` runs here and says it is `version`.
async fn try_binary(path: &Path, version: &str) -> Result<(), String> {
    let run = tokio::process::Command::new(path).arg("--version").kill_on_drop(true).output();
    let output = match tokio::time::timeout(TRIAL_TIMEOUT, run).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return Err(format!("the new binary does not run here: {error}")),
        Err(_) => return Err(format!("the new binary did not say its version within {} s", TRIAL_TIMEOUT.as_secs())),
    };
    let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || said != format!("landfall-agent {version}") {
        return Err(format!(
            "the new binary did not start as landfall-agent {version} ({}, said {said:?})",
            output.status
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_stay_in_the_binarys_directory() {
        assert_eq!(
            sibling(Path::new("/usr/local/bin/landfall-agent"), "new"),
            Path::new("/usr/local/bin/landfall-agent.new")
        );
    }
}
