//! `landfall push`: checks a directory's AppSpec, bundles the directory as a tgz (streamed to a
//! temporary file, so its size does not matter), uploads it to the server's bundle store with a
//! progress bar, and registers it as a revision of the application.

use std::fs::File;
use std::io::{BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use landfall_api::shapes::{
    BundleType, RegisterApplicationRevisionInput, RevisionLocation, RevisionLocationType, S3Location,
};
use landfall_client::Client;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::InvalidInput;
use crate::api::call;
use crate::term::{Output, bar};

/// Where pushed bundles go unless the caller names a bucket.
pub const DEFAULT_BUCKET: &str = "landfall-revisions";

pub struct PushRequest {
    pub application: String,
    pub directory: PathBuf,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub description: Option<String>,
}

/// What was pushed: the revision to deploy.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    pub bucket: String,
    pub key: String,
    #[serde(rename = "eTag")]
    pub etag: String,
    pub size: u64,
    pub files: usize,
    #[serde(skip)]
    pub revision: RevisionLocation,
}

pub async fn push(client: &Client, output: &Output, request: &PushRequest) -> anyhow::Result<Pushed> {
    check_appspec(&request.directory)?;
    let bundle = TempBundle::new();
    let files = write_bundle(&request.directory, &bundle.path)?;
    let digest = sha256_file(&bundle.path)?;
    let bucket = request.bucket.clone().unwrap_or_else(|| DEFAULT_BUCKET.to_owned());
    // Named by content: pushing the same files twice stores one object.
    let key = request.key.clone().unwrap_or_else(|| format!("{}/{}.tgz", request.application, &digest[..16]));
    client.create_bucket(&bucket).await.with_context(|| format!("creating the bucket {bucket}"))?;
    let show = output.terminal;
    let mut progress = |sent: u64, total: u64| {
        if show {
            let percent = (sent * 100).checked_div(total).unwrap_or(100);
            print!("\r{} {percent:>3}%  {} of {}", bar(sent as usize, total as usize, 30), bytes(sent), bytes(total));
            let _ = std::io::stdout().flush();
        }
    };
    let etag = client
        .put_file(&bucket, &key, &bundle.path, &mut progress)
        .await
        .with_context(|| format!("uploading the bundle to s3://{bucket}/{key}"))?;
    if show {
        println!();
    }
    let size = std::fs::metadata(&bundle.path)?.len();
    let revision = RevisionLocation {
        revision_type: Some(RevisionLocationType::S3),
        s3_location: Some(S3Location {
            bucket: Some(bucket.clone()),
            key: Some(key.clone()),
            bundle_type: Some(BundleType::Tgz),
            e_tag: Some(etag.clone()),
            version: None,
        }),
        ..Default::default()
    };
    let input = RegisterApplicationRevisionInput {
        application_name: Some(request.application.clone()),
        description: request.description.clone(),
        revision: Some(revision.clone()),
    };
    call::<_, serde_json::Value>(client, "RegisterApplicationRevision", &input).await?;
    Ok(Pushed { bucket, key, etag, size, files, revision })
}

/// The AppSpec at the directory's root must parse and validate, as the agent will check it:
/// a mistake shows here, with its line and column, not on the first host.
fn check_appspec(directory: &Path) -> anyhow::Result<()> {
    let invalid = |message: String| anyhow::Error::new(InvalidInput(message));
    if !directory.is_dir() {
        return Err(invalid(format!("{} is not a directory", directory.display())));
    }
    let Some(path) = ["appspec.yml", "appspec.yaml"].iter().map(|name| directory.join(name)).find(|p| p.is_file())
    else {
        return Err(invalid(format!(
            "{} has no appspec.yml at its top: every revision needs one",
            directory.display()
        )));
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.display().to_string();
    match landfall_appspec::parse_server(&text) {
        Ok(parsed) => {
            // Warnings (an unknown hook name, say) would otherwise show only in the host's log.
            for warning in parsed.warnings.warnings() {
                eprintln!("{}", warning.in_file(&name));
            }
            Ok(())
        }
        Err(problems) => {
            let listed: Vec<String> = problems.errors().map(|d| d.in_file(&name).to_string()).collect();
            Err(invalid(format!("the AppSpec file is not valid:\n{}", listed.join("\n"))))
        }
    }
}

/// Writes `directory` as a tgz to `to` (paths relative to the directory; links kept as links;
/// `.git` left out). Returns how many entries it holds.
fn write_bundle(directory: &Path, to: &Path) -> anyhow::Result<usize> {
    let file = BufWriter::new(File::create(to).with_context(|| format!("creating {}", to.display()))?);
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut archive = tar::Builder::new(encoder);
    archive.follow_symlinks(false);
    let mut count = 0;
    let mut pending = vec![directory.to_owned()];
    while let Some(dir) = pending.pop() {
        let mut entries: Vec<_> =
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let relative = path.strip_prefix(directory).unwrap_or(&path);
            if relative == Path::new(".git") {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                archive.append_dir(relative, &path)?;
                pending.push(path);
            } else {
                archive.append_path_with_name(&path, relative).with_context(|| format!("adding {}", path.display()))?;
            }
            count += 1;
        }
    }
    let mut encoder = archive.into_inner()?;
    encoder.flush()?;
    encoder.finish()?.flush()?;
    Ok(count)
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A byte count as people read it.
pub fn bytes(count: u64) -> String {
    match count {
        c if c >= 1 << 30 => format!("{:.1} GiB", c as f64 / (1u64 << 30) as f64),
        c if c >= 1 << 20 => format!("{:.1} MiB", c as f64 / (1u64 << 20) as f64),
        c if c >= 1 << 10 => format!("{:.1} KiB", c as f64 / 1024.0),
        c => format!("{c} B"),
    }
}

/// A bundle file in the temporary directory, removed when dropped.
struct TempBundle {
    path: PathBuf,
}

impl TempBundle {
    fn new() -> TempBundle {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        TempBundle { path: std::env::temp_dir().join(format!("landfall-push-{}-{nanos}.tgz", std::process::id())) }
    }
}

impl Drop for TempBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("landfall-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_directory_is_bundled_with_its_modes_and_links_but_not_git() {
        let dir = scratch("bundle");
        let app = dir.join("app");
        std::fs::create_dir_all(app.join("scripts")).unwrap();
        std::fs::create_dir_all(app.join(".git")).unwrap();
        std::fs::write(app.join(".git/HEAD"), "ref").unwrap();
        std::fs::write(app.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        std::fs::write(app.join("scripts/start.sh"), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(app.join("scripts/start.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("scripts/start.sh", app.join("run")).unwrap();
        let out = dir.join("b.tgz");
        assert_eq!(write_bundle(&app, &out).unwrap(), 4);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&out).unwrap()));
        let mut seen: Vec<(String, u32, bool)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap() & 0o777,
                    e.header().entry_type().is_symlink(),
                )
            })
            .collect();
        seen.sort();
        let names: Vec<&str> = seen.iter().map(|(n, ..)| n.as_str()).collect();
        assert_eq!(names, ["appspec.yml", "run", "scripts", "scripts/start.sh"]);
        assert!(seen.iter().any(|(n, mode, _)| n == "scripts/start.sh" && *mode == 0o755));
        assert!(seen.iter().any(|(n, _, link)| n == "run" && *link));
    }

    #[test]
    fn a_bad_appspec_is_refused_before_anything_is_uploaded() {
        let dir = scratch("appspec");
        let error = check_appspec(&dir).unwrap_err().to_string();
        assert!(error.contains("has no appspec.yml"), "{error}");
        std::fs::write(dir.join("appspec.yml"), "version: 0.0\nos: windows-ish\n").unwrap();
        let error = check_appspec(&dir).unwrap_err().to_string();
        assert!(error.contains("appspec.yml:2:5: error:"), "{error}");
        std::fs::write(dir.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        check_appspec(&dir).unwrap();
    }
}
