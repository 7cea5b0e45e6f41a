//! Any bytes as a bundle (tar, tgz or zip, as the first bytes say): unpacked or refused, never
//! written outside the destination, nothing left of a refused one, and every link of an
//! unpacked one leading inside it.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use landfall_agent::archive::{BundleFormat, resolve_inside, unpack};
use landfall_agent::disk::DiskBudget;
use libfuzzer_sys::fuzz_target;

static RUN: AtomicU64 = AtomicU64::new(0);

fn links(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_symlink() {
            found.push(entry.path().strip_prefix(root).unwrap().to_owned());
        } else if kind.is_dir() {
            links(root, &entry.path(), found);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let work = std::env::temp_dir()
        .join(format!("landfall-fuzz-{}-{}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(work.join("outside")).unwrap();
    std::fs::write(work.join("outside/sentinel"), "untouched").unwrap();
    let bundle = work.join("bundle");
    std::fs::write(&bundle, data).unwrap();
    let destination = work.join("archive");
    let budget = DiskBudget { bytes: 64 << 20, entries: 10_000, source: "the fuzzer's limit".into() };
    for declared in [None, Some(BundleFormat::Tar)] {
        match unpack(&bundle, &destination, declared, &budget) {
            Ok(()) => {
                let mut found = Vec::new();
                links(&destination, &destination, &mut found);
                for link in found {
                    assert!(resolve_inside(&destination, &link).is_some(), "{} leads outside", link.display());
                }
            }
            Err(_) => assert!(!destination.exists(), "a refused bundle left files behind"),
        }
        let mut top: Vec<String> = std::fs::read_dir(&work)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "archive")
            .collect();
        top.sort();
        assert_eq!(top, ["bundle", "outside"]);
        assert_eq!(std::fs::read_to_string(work.join("outside/sentinel")).unwrap(), "untouched");
        assert_eq!(std::fs::read_dir(work.join("outside")).unwrap().count(), 1);
    }
    let _ = std::fs::remove_dir_all(&work);
});
