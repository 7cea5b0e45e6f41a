//! The invariants `docs/architecture.md` states, checked against the code (as rust-analyzer's
//! tidy tests do): which crate may depend on which, which may do I/O, speak HTTP or SQL, that
//! every crate says what it is for and the map names it, and that the server's functions stay
//! short enough to read. A change that breaks one changes the rule here and the document with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each workspace crate and the Landfall crates it may depend on (build dependencies only).
const LAYERS: &[(&str, &[&str])] = &[
    // Pure: the model, its rules and its formats.
    ("landfall-api", &[]),
    ("landfall-sigv4", &[]),
    ("landfall-commands", &[]),
    ("landfall-appspec", &[]),
    ("landfall-envelope", &[]),
    ("landfall-metrics", &[]),
    ("landfall-engine", &["landfall-api"]),
    // I/O.
    ("landfall-store", &["landfall-api", "landfall-engine"]),
    ("landfall-listener", &[]),
    ("landfall-client", &["landfall-api", "landfall-sigv4"]),
    (
        "landfall-server",
        &[
            "landfall-api",
            "landfall-appspec",
            "landfall-client",
            "landfall-commands",
            "landfall-engine",
            "landfall-envelope",
            "landfall-listener",
            "landfall-metrics",
            "landfall-sigv4",
            "landfall-store",
        ],
    ),
    (
        "landfall-agent",
        &[
            "landfall-appspec",
            "landfall-client",
            "landfall-commands",
            "landfall-envelope",
            "landfall-metrics",
            "landfall-sigv4",
        ],
    ),
    ("landfall-router", &["landfall-api", "landfall-client", "landfall-listener"]),
    ("landfall-cli", &["landfall-api", "landfall-appspec", "landfall-client", "landfall-sigv4"]),
    ("landfall-bench", &["landfall-client", "landfall-listener", "landfall-sigv4", "landfall-store"]),
    // The binary puts them together.
    ("landfall", &["*"]),
];

/// Crates that do no I/O: no runtime, no sockets, files, processes or environment.
const PURE: &[&str] = &[
    "landfall-api",
    "landfall-sigv4",
    "landfall-commands",
    "landfall-appspec",
    "landfall-envelope",
    "landfall-metrics",
    "landfall-engine",
];

/// Third-party crates that mean I/O of a kind, and the Landfall crates allowed them.
const CAPABILITIES: &[(&str, &[&str])] = &[
    // SQL: only the store.
    ("sqlx", &["landfall-store"]),
    // Serving HTTP: the server and the router, through the listener; the bench's stand-ins.
    ("hyper", &["landfall-listener", "landfall-server", "landfall-router", "landfall-bench"]),
    ("hyper-util", &["landfall-listener", "landfall-router", "landfall-bench"]),
    // Calling HTTP: the signed client, the server's outgoing calls (AWS APIs, webhooks), the agent.
    ("reqwest", &["landfall-client", "landfall-server", "landfall-agent"]),
    (
        "tokio",
        &[
            "landfall-store",
            "landfall-listener",
            "landfall-server",
            "landfall-agent",
            "landfall-router",
            "landfall-cli",
            "landfall-bench",
            "landfall",
        ],
    ),
];

/// The longest function the server may have, in lines.
const LONGEST_SERVER_FUNCTION: usize = 120;

struct Package {
    manifest: PathBuf,
    description: Option<String>,
    /// Names of its normal (not dev or build) dependencies.
    dependencies: BTreeSet<String>,
}

fn workspace() -> BTreeMap<String, Package> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata answers JSON");
    let mut packages = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("a package list") {
        let dependencies = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        packages.insert(
            package["name"].as_str().unwrap_or_default().to_owned(),
            Package {
                manifest: PathBuf::from(package["manifest_path"].as_str().unwrap_or_default()),
                description: package["description"].as_str().map(str::to_owned),
                dependencies,
            },
        );
    }
    packages
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_crate_stands_in_its_layer() {
    let packages = workspace();
    let layers: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (name, package) in &packages {
        if name == "landfall-fuzz" {
            continue;
        }
        let Some(allowed) = layers.get(name.as_str()) else {
            wrong.push(format!("{name} has no layer: add it to LAYERS and to docs/architecture.md"));
            continue;
        };
        for dependency in package.dependencies.iter().filter(|d| packages.contains_key(*d)) {
            if !allowed.contains(&"*") && !allowed.contains(&dependency.as_str()) {
                wrong.push(format!("{name} depends on {dependency}"));
            }
        }
    }
    assert!(wrong.is_empty(), "dependencies across the layers:\n{}", wrong.join("\n"));
}

#[test]
fn only_the_crates_allowed_a_capability_use_it() {
    let packages = workspace();
    let mut wrong = Vec::new();
    for (capability, allowed) in CAPABILITIES {
        for (name, package) in &packages {
            if package.dependencies.contains(*capability) && !allowed.contains(&name.as_str()) {
                wrong.push(format!("{name} depends on {capability}"));
            }
        }
    }
    for name in PURE {
        let package = &packages[*name];
        for capability in CAPABILITIES.iter().map(|(c, _)| *c).chain(["nix", "rustix", "libc"]) {
            if package.dependencies.contains(capability) {
                wrong.push(format!("{name} is pure but depends on {capability}"));
            }
        }
        let src = package.manifest.parent().unwrap().join("src");
        for file in sources(&src) {
            let text = std::fs::read_to_string(&file).unwrap();
            for io in ["std::fs", "std::net", "std::process", "std::env", "tokio::"] {
                if text.contains(io) {
                    wrong.push(format!("{} (pure) uses {io}", file.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "capabilities outside their crates:\n{}", wrong.join("\n"));
}

#[test]
fn every_crate_says_what_it_is_for_and_the_map_names_it() {
    let packages = workspace();
    let map = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let mut missing = Vec::new();
    for (name, package) in packages.iter().filter(|(name, _)| name.as_str() != "landfall-fuzz") {
        if package.description.as_deref().is_none_or(|d| d.trim().is_empty()) {
            missing.push(format!("{name} has no description in its Cargo.toml"));
        }
        let folder = package.manifest.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
        if !map.contains(&format!("`crates/{folder}`")) {
            missing.push(format!("docs/architecture.md does not describe crates/{folder}"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Functions longer than `limit` lines in rustfmt-formatted source: (name, lines).
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature = ["fn ", "pub fn ", "async fn ", "pub async fn ", "pub(crate) fn ", "pub(crate) async fn "]
            .iter()
            .find_map(|prefix| trimmed.strip_prefix(prefix));
        let Some(rest) = signature else { continue };
        if line.trim_end().ends_with(';') {
            continue; // a declaration in a trait
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let closing = format!("{indent}}}");
        if let Some(end) = lines[start + 1..].iter().position(|l| *l == closing) {
            let length = end + 2;
            if length > limit {
                long.push((name, length));
            }
        }
    }
    long
}

#[test]
fn the_length_check_finds_long_functions() {
    let body = "    let x = 1;\n".repeat(5);
    let text = format!("pub async fn short() {{\n{body}}}\n\nfn long() {{\n{}}}\n", body.repeat(3));
    assert_eq!(long_functions(&text, 10), [("long".to_owned(), 17)]);
}

#[test]
fn the_servers_functions_read_at_a_glance() {
    let mut long = Vec::new();
    for file in sources(&root().join("crates/server/src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        // Tests may be as long as their scenario.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (name, length) in long_functions(code, LONGEST_SERVER_FUNCTION) {
            long.push(format!("{}: {name} has {length} lines", file.display()));
        }
    }
    assert!(long.is_empty(), "functions over {LONGEST_SERVER_FUNCTION} lines:\n{}", long.join("\n"));
}

#[test]
fn states_and_errors_are_not_compared_as_strings() {
    let mut found = Vec::new();
    let patterns = [".state == \"", ".state != \"", "exception == \"", "StoreError::Conflict"];
    for crate_dir in ["server", "store", "cli", "landfall", "client", "router"] {
        for file in sources(&root().join("crates").join(crate_dir).join("src")) {
            let text = std::fs::read_to_string(&file).unwrap();
            for pattern in patterns.iter().filter(|p| text.contains(**p)) {
                found.push(format!("{}: {pattern}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "typed values compared as strings:\n{}", found.join("\n"));
}

/// The server's modules (by file: `api/common.rs` is `api::common`, `driver/mod.rs` is
/// `driver`) and the modules each names through `crate::` and `super::` paths, tests and
/// comments left out.
fn server_imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("crates/server/src");
    let module_of = |file: &Path| -> String {
        let relative = file.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
            parts.pop();
        }
        parts.join("::")
    };
    let files = sources(&src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let resolve = |path: &str| -> Option<String> {
        let segments: Vec<&str> = path.split("::").collect();
        (1..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|m| modules.contains(m))
    };
    let mut imports = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code: String =
            code.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
        // `super` is the module's parent (in `a/mod.rs` a's parent, in `a/b.rs` a).
        let parent = module.rsplit_once("::").map_or(String::new(), |(parent, _)| parent.to_owned());
        let mut named = BTreeSet::new();
        for (prefix, base) in [("crate::", String::new()), ("super::", parent)] {
            for (at, _) in code.match_indices(prefix) {
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                for path in paths_after(&code[at + prefix.len()..]) {
                    let full = if base.is_empty() { path } else { format!("{base}::{path}") };
                    if let Some(target) = resolve(&full).filter(|t| *t != module) {
                        named.insert(target);
                    }
                }
            }
        }
        imports.insert(module, named);
    }
    imports
}

/// The paths a `use` or an expression names after `crate::`: `a::b`, or each of a group
/// `{a, b::c, d::{e, f}}`.
fn paths_after(text: &str) -> Vec<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect::<String>();
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 1;
        let end = group
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(group.len(), |(i, _)| i);
        let mut paths = Vec::new();
        let (mut depth, mut start) = (0, 0);
        let inner = &group[..end];
        for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    let item = inner[start..i].trim();
                    start = i + 1;
                    match item.split_once("::{") {
                        Some((base, _)) => paths
                            .extend(paths_after(&item[base.len() + 2..]).into_iter().map(|p| format!("{base}::{p}"))),
                        None if !item.is_empty() => paths.push(ident(item).trim_end_matches(':').to_owned()),
                        None => {}
                    }
                }
                _ => {}
            }
        }
        return paths;
    }
    vec![ident(text).trim_end_matches(':').to_owned()]
}

/// Strongly connected components of a graph (Tarjan's algorithm), each as its members.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        components: Vec<Vec<String>>,
    }
    fn visit<'a>(walk: &mut Walk<'a>, node: &'a str) {
        let number = walk.index.len();
        walk.index.insert(node, number);
        walk.low.insert(node, number);
        walk.stack.push(node);
        for next in walk.graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !walk.index.contains_key(next) {
                visit(walk, next);
                let low = walk.low[next].min(walk.low[node]);
                walk.low.insert(node, low);
            } else if walk.stack.contains(&next) {
                let low = walk.index[next].min(walk.low[node]);
                walk.low.insert(node, low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let mut component = Vec::new();
            while let Some(member) = walk.stack.pop() {
                component.push(member.to_owned());
                if member == node {
                    break;
                }
            }
            walk.components.push(component);
        }
    }
    let mut walk =
        Walk { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), components: Vec::new() };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(&mut walk, node);
        }
    }
    walk.components
}

#[test]
fn the_import_reader_reads_groups_and_the_cycle_finder_finds_cycles() {
    assert_eq!(paths_after("api::common::Ctx;"), ["api::common::Ctx"]);
    assert_eq!(
        paths_after("{driver, replicas::{self, lease}, ids::new_uuid};"),
        ["driver", "replicas::self", "replicas::lease", "ids::new_uuid"]
    );
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect();
    let largest = cycles(&graph).into_iter().map(|c| c.len()).max();
    assert_eq!(largest, Some(3));
}

/// The largest import circle the server's files may form (two modules that name each other).
const LARGEST_IMPORT_CIRCLE: usize = 2;

#[test]
fn the_servers_files_import_each_other_in_no_circle_larger_than_two() {
    let imports = server_imports();
    assert!(imports.len() > 40, "expected the server's files, found {}", imports.len());
    let mut circles: Vec<Vec<String>> =
        cycles(&imports).into_iter().filter(|c| c.len() > LARGEST_IMPORT_CIRCLE).collect();
    for circle in &mut circles {
        circle.sort();
    }
    assert!(circles.is_empty(), "import circles in crates/server/src: {circles:?}");
}
