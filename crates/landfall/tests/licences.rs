//! Every dependency is under a licence Landfall may ship: permissive ones only, never GPL or AGPL.
//! Reads `cargo metadata` for the whole workspace (build and dev dependencies included).

use std::process::Command;

/// Permissive licences. Unicode-3.0 (Unicode data tables), CDLA-Permissive-2.0 (the root
/// certificate list) and BSL-1.0 / Unlicense / CC0-1.0 (public-domain-like) are permissive too.
const ALLOWED: &[&str] = &[
    "MIT",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "MPL-2.0",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "CDLA-Permissive-2.0",
    "BSL-1.0",
    "Unlicense",
    "CC0-1.0",
];

/// Whether an SPDX expression (as crates write them: `A OR B`, `A/B`, `A AND B`, parentheses)
/// can be satisfied with allowed licences only.
fn acceptable(expression: &str) -> bool {
    let normalised = expression.replace(['(', ')'], " ").replace('/', " OR ");
    normalised
        .split(" OR ")
        .any(|alternative| alternative.split(" AND ").all(|licence| ALLOWED.contains(&licence.trim())))
}

#[test]
fn the_rules_read_expressions_as_cargo_writes_them() {
    assert!(acceptable("MIT OR Apache-2.0"));
    assert!(acceptable("Apache-2.0/MIT"));
    assert!(acceptable("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(acceptable("MIT OR Apache-2.0 OR LGPL-2.1-or-later"));
    assert!(!acceptable("GPL-3.0-only"));
    assert!(!acceptable("AGPL-3.0-or-later OR SSPL-1.0"));
    assert!(!acceptable("MIT AND GPL-2.0-only"));
}

#[test]
fn every_dependency_has_an_allowed_licence() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata answers JSON");
    let packages = metadata["packages"].as_array().expect("a package list");
    assert!(packages.len() > 50, "expected the whole dependency graph, got {} packages", packages.len());
    let refused: Vec<String> = packages
        .iter()
        .filter_map(|package| {
            let licence = package["license"].as_str().unwrap_or("");
            (!acceptable(licence)).then(|| format!("{} {}: {licence:?}", package["name"], package["version"]))
        })
        .collect();
    assert!(refused.is_empty(), "dependencies under licences Landfall may not ship:\n{}", refused.join("\n"));
}
