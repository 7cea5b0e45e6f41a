//! Git revisions: one exact commit of a repository on any git server over HTTP(S), fetched with
//! the host's `git` (which speaks every server's protocol versions, proxies and TLS setups) and
//! written as a tar archive, which then unpacks under the same path guards as any bundle.
//!
//! The access token travels in an `Authorization` header given to git through its environment
//! (`GIT_CONFIG_*`), so it never appears on a command line, in a URL, or in a message.

use std::path::Path;
use std::process::Stdio;

use base64::Engine as _;
use tokio::process::Command;

pub struct GitFetch<'a> {
    /// The clone URL, e.g. `https://github.com/owner/repo.git`.
    pub url: &'a str,
    /// A full commit hash.
    pub commit: &'a str,
    pub token: Option<&'a str>,
    /// A scratch directory for the fetch; removed before and after.
    pub work_dir: &'a Path,
}

/// Fetches `fetch.commit` and writes its tree to `to` as a tar archive.
pub async fn fetch_commit(fetch: &GitFetch<'_>, to: &Path) -> Result<(), String> {
    let commit = fetch.commit.trim();
    if !matches!(commit.len(), 40 | 64) || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "commitId {commit:?} is not a full commit hash (40 hexadecimal digits): git revisions name exact commits"
        ));
    }
    let shown_url = without_userinfo(fetch.url);
    let _ = std::fs::remove_dir_all(fetch.work_dir);
    let result = async {
        git(fetch, false, &["init", "--quiet", "--bare"])
            .await
            .map_err(|e| format!("cannot prepare a git fetch: {e}"))?;
        // Most servers hand out any commit by its hash (protocol v2, GitHub, GitLab, Gitea).
        let shallow = git(fetch, true, &["fetch", "--quiet", "--no-tags", "--depth", "1", fetch.url, commit]).await;
        if shallow.is_err() {
            // Some only hand out branch and tag tips: fetch those, then look for the commit.
            let refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"];
            let all = git(fetch, true, &["fetch", "--quiet", fetch.url, refspecs[0], refspecs[1]]).await;
            if let Err(error) = all {
                return Err(format!("cannot fetch {shown_url}: {error}"));
            }
            let object = format!("{commit}^{{commit}}");
            if git(fetch, false, &["cat-file", "-e", &object]).await.is_err() {
                return Err(format!("the commit {commit} is not in {shown_url}"));
            }
        }
        let partial = to.with_extension("part");
        let partial_arg = partial.to_string_lossy().into_owned();
        git(fetch, false, &["archive", "--format=tar", "-o", &partial_arg, commit])
            .await
            .map_err(|error| format!("cannot archive commit {commit} of {shown_url}: {error}"))?;
        std::fs::rename(&partial, to).map_err(|error| format!("cannot write {}: {error}", to.display()))
    }
    .await;
    let _ = std::fs::remove_dir_all(fetch.work_dir);
    result
}

/// Runs one git command in the scratch repository, `authenticated` with the token if there is
/// one. The error is git's own message.
async fn git(fetch: &GitFetch<'_>, authenticated: bool, args: &[&str]) -> Result<(), String> {
    let mut command = Command::new("git");
    command
        .arg("--git-dir")
        .arg(fetch.work_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Nothing from the host's or the agent user's git configuration, and never a prompt.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            command.env_remove(name);
        }
    }
    command
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C");
    if let Some(token) = fetch.token.filter(|t| authenticated && !t.is_empty()) {
        // Basic with the token as password: what GitHub, GitLab, Gitea and Bitbucket accept.
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        command
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {basic}"));
    }
    let output = match command.output().await {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err("git is not installed on this host (git revisions need it)".into());
        }
        Err(error) => return Err(format!("cannot run git: {error}")),
    };
    if output.status.success() {
        return Ok(());
    }
    let mut message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if let Some(token) = fetch.token.filter(|t| !t.is_empty()) {
        message = message.replace(token, "<token>");
    }
    if message.is_empty() {
        message = format!("git {} failed ({})", args[0], output.status);
    }
    Err(message)
}

/// A URL without `user:password@`, for messages.
fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            if path.is_empty() { format!("{scheme}://{host}") } else { format!("{scheme}://{host}/{path}") }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(without_userinfo("https://me:secret@git.example.com/a/b.git"), "https://git.example.com/a/b.git");
        assert_eq!(without_userinfo("http://127.0.0.1:8080/a/b.git"), "http://127.0.0.1:8080/a/b.git");
        assert_eq!(without_userinfo("https://host"), "https://host");
    }
}
