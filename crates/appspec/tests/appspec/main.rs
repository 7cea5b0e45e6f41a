//! The crate's integration tests, one binary: the data-driven cases of `tests/data`, the corpus
//! of real AppSpec files in `tests/corpus`, randomized no-panic checks (mutations of those files,
//! and property-based ones), and the public API.

mod api;
mod corpus;
mod data;
mod properties;
mod robustness;

use std::path::PathBuf;

use landfall_appspec::Platform;

/// Test inputs live beside this binary's sources, inside the repository.
fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The files of a directory, sorted, so that failures come out in a stable order.
fn files_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn platform_named(name: &str) -> Option<Platform> {
    match name {
        "server" => Some(Platform::Server),
        "lambda" => Some(Platform::Lambda),
        "ecs" => Some(Platform::Ecs),
        _ => None,
    }
}
