//! Unpacking bundles: modes, links and the leading-directory strip; and every way a bundle
//! could write outside its destination, refused in tar, tgz and zip alike.

use std::fs;
use std::path::Path;

use landfall_agent::archive::{ArchiveError, BundleFormat, check_links, strip_leading_directory, unpack};
use landfall_agent::disk::DiskBudget;

use crate::support::{Entry, TempDir, mode, tar_bytes, tgz_bytes, tree, write, zip_bytes};

const FORMATS: [BundleFormat; 3] = [BundleFormat::Tar, BundleFormat::Tgz, BundleFormat::Zip];

fn bundle(dir: &TempDir, format: BundleFormat, entries: &[Entry]) -> std::path::PathBuf {
    let bytes = match format {
        BundleFormat::Tar => tar_bytes(entries),
        BundleFormat::Tgz => tgz_bytes(entries),
        BundleFormat::Zip => zip_bytes(entries),
    };
    let path = dir.join("bundle.tar");
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_format_is_told_from_the_content() {
    let dir = TempDir::new("archive");
    let entries = [Entry::File("a", "x", 0o644)];
    for format in FORMATS {
        assert_eq!(BundleFormat::detect(&bundle(&dir, format, &entries)).unwrap(), Some(format));
    }
    let text = dir.join("notes.txt");
    fs::write(&text, "not an archive").unwrap();
    assert_eq!(BundleFormat::detect(&text).unwrap(), None);
}

#[test]
fn a_bundle_of_another_type_than_declared_is_refused_by_name() {
    let dir = TempDir::new("archive");
    let entries = [Entry::File("appspec.yml", "version: 0.0\n", 0o644)];
    for actual in FORMATS {
        for declared in FORMATS.into_iter().filter(|d| *d != actual) {
            let destination = dir.join("archive");
            let error = unpack(&bundle(&dir, actual, &entries), &destination, Some(declared), &DiskBudget::unlimited())
                .unwrap_err();
            assert!(matches!(error, ArchiveError::WrongType(_)), "{error}");
            let message = error.to_string();
            assert!(message.contains("bundle type is"), "{message}");
            assert!(
                message.contains(&format!("register it with bundleType {}", ["tar", "tgz", "zip"][actual as usize])),
                "{message}"
            );
            assert!(!destination.exists());
        }
        // Undeclared, the content decides.
        unpack(&bundle(&dir, actual, &entries), &dir.join("archive"), None, &DiskBudget::unlimited()).unwrap();
    }
}

#[test]
fn something_that_is_no_archive_is_refused() {
    let dir = TempDir::new("archive");
    let path = dir.join("bundle.tar");
    fs::write(&path, "<html>Not Found</html>").unwrap();
    for declared in [Some(BundleFormat::Zip), Some(BundleFormat::Tgz), None] {
        let error = unpack(&path, &dir.join("archive"), declared, &DiskBudget::unlimited()).unwrap_err();
        assert!(matches!(error, ArchiveError::Corrupt(_)), "{error}");
        assert!(error.to_string().contains("(22 bytes) is not a"), "{error}");
    }
    // Declared tar: tried as an old tar without magic, which it is not either.
    let error = unpack(&path, &dir.join("archive"), Some(BundleFormat::Tar), &DiskBudget::unlimited()).unwrap_err();
    assert!(matches!(error, ArchiveError::Corrupt(_)), "{error}");
}

#[test]
fn unpacks_files_directories_modes_and_inside_links() {
    for format in FORMATS {
        let dir = TempDir::new("archive");
        let mut entries = vec![
            Entry::Dir("app/"),
            Entry::File("app/run.sh", "#!/bin/sh\necho hi\n", 0o755),
            Entry::File("app/secret.conf", "k=v\n", 0o640),
            Entry::File("./top.txt", "top\n", 0o644),
            Entry::Symlink("app/current", "run.sh"),
            Entry::Symlink("app/up", "../top.txt"),
        ];
        if !matches!(format, BundleFormat::Zip) {
            entries.push(Entry::HardLink("app/run-again.sh", "app/run.sh"));
        }
        let destination = dir.join("archive");
        unpack(&bundle(&dir, format, &entries), &destination, Some(format), &DiskBudget::unlimited())
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(fs::read_to_string(destination.join("app/run.sh")).unwrap(), "#!/bin/sh\necho hi\n");
        assert_eq!(mode(&destination.join("app/run.sh")), 0o755, "{format:?}");
        assert_eq!(mode(&destination.join("app/secret.conf")), 0o640, "{format:?}");
        assert_eq!(fs::read_link(destination.join("app/current")).unwrap(), Path::new("run.sh"));
        assert_eq!(fs::read_to_string(destination.join("app/up")).unwrap(), "top\n");
        if !matches!(format, BundleFormat::Zip) {
            assert_eq!(fs::read_to_string(destination.join("app/run-again.sh")).unwrap(), "#!/bin/sh\necho hi\n");
            use std::os::unix::fs::MetadataExt as _;
            assert_eq!(fs::metadata(destination.join("app/run.sh")).unwrap().nlink(), 2);
        }
    }
}

#[test]
fn unpacking_empties_the_destination_first() {
    let dir = TempDir::new("archive");
    let destination = dir.join("archive");
    write(&destination.join("stale.txt"), "old");
    unpack(
        &bundle(&dir, BundleFormat::Tar, &[Entry::File("new.txt", "new", 0o644)]),
        &destination,
        None,
        &DiskBudget::unlimited(),
    )
    .unwrap();
    assert_eq!(tree(&destination), vec!["new.txt"]);
}

/// Unpacks `entries` into `<dir>/work/archive` with a sentinel in `<dir>/work/outside`; checks
/// the bundle is refused as unsafe, nothing changed outside the destination, and the
/// destination is gone.
fn assert_refused(format: BundleFormat, entries: &[Entry], reason: &str) {
    let dir = TempDir::new("archive-refused");
    let work = dir.join("work");
    write(&work.join("outside/sentinel"), "untouched");
    let bundle = bundle(&dir, format, entries);
    let before = tree(dir.path());
    let destination = work.join("archive");
    let error = unpack(&bundle, &destination, Some(format), &DiskBudget::unlimited())
        .expect_err(&format!("{format:?} {entries:?} must be refused"));
    assert!(matches!(error, ArchiveError::Unsafe(_)), "{format:?}: {error}");
    assert!(error.to_string().contains(reason), "{format:?}: {error}");
    assert!(!destination.exists(), "{format:?}: the refused bundle's files stay behind");
    assert_eq!(tree(dir.path()), before, "{format:?}: something was written outside the destination");
    assert_eq!(fs::read_to_string(work.join("outside/sentinel")).unwrap(), "untouched");
    assert!(!Path::new("/tmp/landfall-agent-escape").exists());
}

#[test]
fn parent_components_are_refused() {
    for format in FORMATS {
        assert_refused(format, &[Entry::File("ok.txt", "x", 0o644), Entry::File("../x", "evil", 0o644)], "'..'");
        assert_refused(format, &[Entry::File("a/../../outside/sentinel", "evil", 0o644)], "'..'");
    }
}

#[test]
fn absolute_paths_are_refused() {
    for format in FORMATS {
        assert_refused(format, &[Entry::File("/tmp/landfall-agent-escape", "evil", 0o644)], "absolute path");
    }
}

#[test]
fn symlinks_pointing_outside_are_refused() {
    for format in FORMATS {
        assert_refused(format, &[Entry::Symlink("link", "../outside")], "outside the revision directory");
        assert_refused(format, &[Entry::Symlink("a/link", "../../outside/sentinel")], "outside the revision directory");
        assert_refused(format, &[Entry::Symlink("etc", "/etc")], "outside the revision directory");
    }
}

#[test]
fn chains_of_links_are_judged_by_where_they_lead_on_disk() {
    for format in FORMATS {
        // Each link's own text stays inside (`e1` reads as `a`); through `a/l` it leads out.
        let chain = [
            Entry::Dir("a/"),
            Entry::Symlink("a/l", ".."),
            Entry::Symlink("e1", "a/l/.."),
            Entry::Symlink("e2", "e1/.."),
            Entry::File("appspec.yml", "version: 0.0\nos: linux\n", 0o644),
        ];
        assert_refused(format, &chain, "e1 points to a/l/.., which leads outside the revision directory");
        // A later link changes where an earlier one leads: caught once everything is written.
        let later =
            [Entry::Dir("a/"), Entry::Symlink("x", "b/.."), Entry::Symlink("b", "a/l"), Entry::Symlink("a/l", "..")];
        assert_refused(format, &later, "leads outside the revision directory");
    }
}

#[test]
fn links_leading_inside_through_other_links_are_kept() {
    for format in FORMATS {
        let dir = TempDir::new("archive-links-inside");
        let destination = dir.join("archive");
        let entries = [
            Entry::Dir("a/"),
            Entry::Dir("a/b/"),
            Entry::Symlink("a/b/up", ".."),
            Entry::Symlink("top", "a/b/up/b"),
            Entry::File("a/b/file", "x", 0o644),
        ];
        unpack(&bundle(&dir, format, &entries), &destination, Some(format), &DiskBudget::unlimited()).unwrap();
        assert_eq!(fs::read_to_string(destination.join("top/file")).unwrap(), "x");
    }
}

#[test]
fn links_are_judged_again_once_the_leading_directory_is_stripped() {
    for format in FORMATS {
        let dir = TempDir::new("archive-strip-links");
        let destination = dir.join("archive");
        // Inside while under app/; one level up, e1 leads to the revision's parent.
        let entries = [
            Entry::Dir("app/"),
            Entry::Dir("app/a/"),
            Entry::Symlink("app/a/l", ".."),
            Entry::Symlink("app/e1", "a/l/.."),
            Entry::File("app/appspec.yml", "version: 0.0\nos: linux\n", 0o644),
        ];
        unpack(&bundle(&dir, format, &entries), &destination, Some(format), &DiskBudget::unlimited()).unwrap();
        check_links(&destination).unwrap();
        assert!(strip_leading_directory(&destination).unwrap());
        let error = check_links(&destination).unwrap_err();
        assert!(error.to_string().contains("e1 points to a/l/.., which leads outside"), "{error}");
    }
}

/// What unpacking `entries` within `budget` says, with nothing left behind.
fn refused_by_budget(format: BundleFormat, entries: &[Entry], budget: &DiskBudget) -> String {
    let dir = TempDir::new("archive-budget");
    let destination = dir.join("archive");
    let error = unpack(&bundle(&dir, format, entries), &destination, Some(format), budget)
        .expect_err(&format!("{format:?} must be refused"));
    assert!(matches!(error, ArchiveError::TooLarge(_)), "{format:?}: {error}");
    assert!(!destination.exists(), "{format:?}: the refused bundle's files stay behind");
    error.to_string()
}

#[test]
fn bundles_expanding_past_the_budget_are_refused_naming_the_limit() {
    let budget = DiskBudget { bytes: 100, entries: 1000, source: "the test's limit".into() };
    let big = "x".repeat(60);
    let entries = [
        Entry::File("a.txt", Box::leak(big.clone().into_boxed_str()), 0o644),
        Entry::File("b.txt", Box::leak(big.into_boxed_str()), 0o644),
    ];
    // A zip says what it expands to before anything is written.
    let message = refused_by_budget(BundleFormat::Zip, &entries, &budget);
    assert!(
        message.contains("its 2 entries expand to 120 bytes, more than the limit of 100 bytes (the test's limit)"),
        "{message}"
    );
    for format in [BundleFormat::Tar, BundleFormat::Tgz] {
        let message = refused_by_budget(format, &entries, &budget);
        assert!(
            message.contains("expands to more than the limit of 100 bytes (the test's limit): the entry b.txt (60 bytes) would take it to 120 bytes"),
            "{message}"
        );
    }
    // Entries count too (each directory and link is an inode).
    let few = DiskBudget { bytes: 1 << 20, entries: 2, source: "the test's limit".into() };
    for format in FORMATS {
        let message = refused_by_budget(format, &[Entry::Dir("a/"), Entry::Dir("b/"), Entry::Dir("c/")], &few);
        assert!(message.contains("entries"), "{message}");
    }
}

#[test]
fn hard_links_to_anything_outside_are_refused() {
    for format in [BundleFormat::Tar, BundleFormat::Tgz] {
        assert_refused(format, &[Entry::HardLink("passwd", "/etc/passwd")], "hard link");
        assert_refused(format, &[Entry::HardLink("s", "../outside/sentinel")], "hard link");
        // A hard link to a symbolic link could re-aim it from another directory.
        assert_refused(
            format,
            &[
                Entry::Dir("a/"),
                Entry::Dir("a/b/"),
                Entry::Symlink("a/b/up", "../x"),
                Entry::HardLink("moved", "a/b/up"),
            ],
            "hard link",
        );
    }
}

#[test]
fn entries_written_through_a_symlink_are_refused() {
    for format in FORMATS {
        // The link itself points inside, but nothing may be written through it.
        assert_refused(
            format,
            &[Entry::Dir("sub/"), Entry::Symlink("link", "sub"), Entry::File("link/evil.txt", "evil", 0o644)],
            "through the symbolic link link",
        );
        assert_refused(
            format,
            &[Entry::Symlink("up", "."), Entry::File("up/up/evil.txt", "evil", 0o644)],
            "through the symbolic link up",
        );
    }
}

#[test]
fn a_corrupt_bundle_is_an_error_and_leaves_nothing() {
    let dir = TempDir::new("archive");
    let path = dir.join("bundle.tar");
    let mut bytes = tgz_bytes(&[Entry::File("a", "x", 0o644)]);
    bytes.truncate(bytes.len() / 2);
    fs::write(&path, bytes).unwrap();
    let destination = dir.join("archive");
    let error = unpack(&path, &destination, Some(BundleFormat::Tgz), &DiskBudget::unlimited()).unwrap_err();
    assert!(matches!(error, ArchiveError::Corrupt(_)), "{error}");
    assert!(!destination.exists());
}

#[test]
fn a_single_top_directory_holding_the_appspec_is_stripped() {
    for format in FORMATS {
        let dir = TempDir::new("archive-strip");
        let destination = dir.join("archive");
        let entries = [
            Entry::Dir("myapp/"),
            Entry::File("myapp/AppSpec.yml", "version: 0.0\n", 0o644),
            Entry::File("myapp/myapp/inner.txt", "same name as the top", 0o644),
            Entry::File("myapp/.hidden", "h", 0o600),
        ];
        unpack(&bundle(&dir, format, &entries), &destination, Some(format), &DiskBudget::unlimited()).unwrap();
        assert!(strip_leading_directory(&destination).unwrap(), "{format:?}");
        assert_eq!(tree(&destination), vec![".hidden", "AppSpec.yml", "myapp", "myapp/inner.txt"], "{format:?}");
    }
}

#[test]
fn other_layouts_are_not_stripped() {
    let cases: [&[Entry]; 3] = [
        // No appspec inside the directory.
        &[Entry::File("myapp/readme", "x", 0o644)],
        // Two entries at the root.
        &[Entry::File("myapp/appspec.yml", "x", 0o644), Entry::File("other", "x", 0o644)],
        // The only entry is a file.
        &[Entry::File("appspec.yml", "x", 0o644)],
    ];
    for entries in cases {
        let dir = TempDir::new("archive-strip");
        let destination = dir.join("archive");
        unpack(&bundle(&dir, BundleFormat::Tar, entries), &destination, None, &DiskBudget::unlimited()).unwrap();
        let before = tree(&destination);
        assert!(!strip_leading_directory(&destination).unwrap());
        assert_eq!(tree(&destination), before);
    }
}
