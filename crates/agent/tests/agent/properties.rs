//! Property-based: bundles made of names and link targets drawn from `..`, `.`, `/`, a few names
//! and links between them, in any order. Whether a bundle is refused or unpacked, nothing is
//! written outside the destination, a refused one leaves nothing behind, and every link of an
//! unpacked one leads inside it, through the links on disk. A fixed seed and a bounded number of
//! cases keep the suite fast and a failure reproducible.

use std::path::Path;

use landfall_agent::archive::{ArchiveError, BundleFormat, resolve_inside, unpack};
use landfall_agent::disk::DiskBudget;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::support::{Entry, TempDir, tar_bytes, tree, write};

fn config() -> Config {
    Config { cases: 150, failure_persistence: None, rng_seed: RngSeed::Fixed(0x7a40_1e55), ..Config::default() }
}

/// A path of one to four parts, each a name, `.` or `..`, maybe absolute.
fn path() -> impl Strategy<Value = String> {
    let part = prop::sample::select(vec!["a", "b", "l", "..", ".", "appspec.yml", "outside"]);
    (any::<bool>(), prop::collection::vec(part, 1..4))
        .prop_map(|(absolute, parts)| format!("{}{}", if absolute { "/" } else { "" }, parts.join("/")))
}

fn entry() -> impl Strategy<Value = Entry> {
    let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    prop_oneof![
        2 => path().prop_map(move |name| Entry::File(leak(name), "content", 0o644)),
        1 => path().prop_map(move |name| Entry::Dir(leak(format!("{name}/")))),
        3 => (path(), path()).prop_map(move |(name, target)| Entry::Symlink(leak(name), leak(target))),
        1 => (path(), path()).prop_map(move |(name, target)| Entry::HardLink(leak(name), leak(target))),
    ]
}

/// Every symbolic link under `dir`, relative to `root`.
fn links(root: &Path, dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            found.push(entry.path().strip_prefix(root).unwrap().to_owned());
        } else if kind.is_dir() {
            links(root, &entry.path(), found);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_bundle_reaches_outside_its_destination(entries in prop::collection::vec(entry(), 1..8)) {
        let dir = TempDir::new("archive-property");
        let work = dir.join("work");
        write(&work.join("outside/sentinel"), "untouched");
        let bundle = dir.join("bundle.tar");
        std::fs::write(&bundle, tar_bytes(&entries)).unwrap();
        let destination = work.join("archive");
        let before = tree(&work);
        match unpack(&bundle, &destination, Some(BundleFormat::Tar), &DiskBudget::unlimited()) {
            Ok(()) => {
                let mut found = Vec::new();
                links(&destination, &destination, &mut found);
                for link in found {
                    prop_assert!(resolve_inside(&destination, &link).is_some(), "{:?} leads outside: {:?}", link, entries);
                }
            }
            Err(error) => {
                prop_assert!(matches!(error, ArchiveError::Unsafe(_) | ArchiveError::Corrupt(_)), "{}", error);
                prop_assert!(!destination.exists(), "a refused bundle left {:?}", tree(&destination));
            }
        }
        let outside: Vec<String> = tree(&work).into_iter().filter(|path| !path.starts_with("archive")).collect();
        prop_assert_eq!(outside, before, "written outside the destination: {:?}", entries);
        prop_assert_eq!(std::fs::read_to_string(work.join("outside/sentinel")).unwrap(), "untouched");
        prop_assert!(!Path::new("/outside").exists() && !Path::new("/l").exists());
    }
}
