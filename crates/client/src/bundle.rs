//! Revision bundles: a gzip-compressed tar of an application's files, as the agent unpacks them.

use std::io::Write as _;

/// One file of a bundle: its path inside the bundle, contents and Unix mode.
pub struct BundleFile<'a> {
    pub path: &'a str,
    pub contents: &'a [u8],
    pub mode: u32,
}

/// A `.tgz` bundle of `files` (directories are implied by the paths).
pub fn tar_gz(files: &[BundleFile<'_>]) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(encoder);
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.contents.len() as u64);
        header.set_mode(file.mode);
        header.set_mtime(0);
        header.set_cksum();
        archive.append_data(&mut header, file.path, file.contents)?;
    }
    let mut encoder = archive.into_inner()?;
    encoder.flush()?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn bundles_keep_paths_contents_and_modes() {
        let files = [
            BundleFile { path: "appspec.yml", contents: b"version: 0.0\nos: linux\n", mode: 0o644 },
            BundleFile { path: "scripts/start.sh", contents: b"#!/bin/sh\n", mode: 0o755 },
        ];
        let bundle = tar_gz(&files).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bundle.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), entry.header().mode().unwrap(), contents));
        }
        assert_eq!(seen[0], ("appspec.yml".into(), 0o644, files[0].contents.to_vec()));
        assert_eq!(seen[1], ("scripts/start.sh".into(), 0o755, files[1].contents.to_vec()));
    }
}
