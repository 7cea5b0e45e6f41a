//! Data-driven cases: `tests/data/valid/NAME.EXT` beside `NAME.expected.json` (the model and the
//! warnings), `tests/data/invalid/NAME.EXT` beside `NAME.expected` (every diagnostic, one a line).
//! The platform is the name's first word (`server-`, `lambda-`, `ecs-`). Adding a case is adding
//! the two files; `LANDFALL_BLESS=1 cargo test -p landfall-appspec` writes the expected files of
//! the cases whose output changed, to review with `git diff`.

use std::path::{Path, PathBuf};

use landfall_appspec::{AppSpec, Diagnostics, Parsed, parse};

use crate::{files_in, platform_named, read, tests_dir};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    files_in(dir).into_iter().filter(|p| !p.to_string_lossy().contains(".expected")).collect()
}

fn stem(path: &Path) -> String {
    let name = path.file_name().expect("file name").to_string_lossy();
    name.rsplit_once('.').map_or(name.to_string(), |(stem, _)| stem.to_string())
}

fn run(path: &Path) -> Result<Parsed<AppSpec>, Diagnostics> {
    let name = stem(path);
    let platform = name
        .split('-')
        .next()
        .and_then(platform_named)
        .unwrap_or_else(|| panic!("{}: the name must start with server-, lambda- or ecs-", path.display()));
    parse(&read(path), platform)
}

/// Serialised straight from the model (not through `serde_json::Value`, which would sort keys),
/// so that the expected file also checks that hooks keep the order of the AppSpec.
fn render_valid(parsed: &Parsed<AppSpec>) -> String {
    #[derive(serde::Serialize)]
    struct Expected<'a> {
        appspec: &'a AppSpec,
        warnings: Vec<String>,
    }
    let warnings = parsed.warnings.iter().map(ToString::to_string).collect();
    serde_json::to_string_pretty(&Expected { appspec: &parsed.appspec, warnings }).expect("JSON") + "\n"
}

fn render_diagnostics(diagnostics: &Diagnostics) -> String {
    diagnostics.to_string() + "\n"
}

/// Compares `actual` with the file at `expected`, or writes it there when blessing.
fn check(expected: &Path, actual: &str, failures: &mut Vec<String>) {
    let bless = std::env::var_os("LANDFALL_BLESS").is_some();
    let wanted = std::fs::read_to_string(expected).ok().map(|t| t.replace("\r\n", "\n"));
    if wanted.as_deref() == Some(actual) {
        return;
    }
    if bless {
        std::fs::write(expected, actual).expect("writing the expected file");
        return;
    }
    failures.push(match wanted {
        None => format!("{} is missing; the output is:\n{actual}", expected.display()),
        Some(wanted) => format!("{}:\n--- expected\n{wanted}--- actual\n{actual}", expected.display()),
    });
}

#[test]
fn valid_cases_give_their_expected_model_and_warnings() {
    let dir = tests_dir().join("data/valid");
    let mut failures = Vec::new();
    let cases = inputs(&dir);
    assert!(cases.len() >= 10, "the valid cases went missing");
    for path in cases {
        let expected = dir.join(format!("{}.expected.json", stem(&path)));
        match run(&path) {
            Ok(parsed) => check(&expected, &render_valid(&parsed), &mut failures),
            Err(problems) => failures.push(format!("{}: refused:\n{problems}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn invalid_cases_give_their_expected_diagnostics() {
    let dir = tests_dir().join("data/invalid");
    let mut failures = Vec::new();
    let cases = inputs(&dir);
    assert!(cases.len() >= 10, "the invalid cases went missing");
    for path in cases {
        let expected = dir.join(format!("{}.expected", stem(&path)));
        match run(&path) {
            Ok(parsed) => failures.push(format!("{}: accepted:\n{}", path.display(), render_valid(&parsed))),
            Err(problems) => check(&expected, &render_diagnostics(&problems), &mut failures),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_expected_file_has_its_input() {
    for dir in ["data/valid", "data/invalid"] {
        let dir = tests_dir().join(dir);
        let stems: Vec<String> = inputs(&dir).iter().map(|p| stem(p)).collect();
        for path in files_in(&dir) {
            let name = path.file_name().expect("file name").to_string_lossy().to_string();
            if let Some(case) = name.strip_suffix(".expected.json").or_else(|| name.strip_suffix(".expected")) {
                assert!(stems.iter().any(|s| s == case), "{} has no input file", path.display());
            }
        }
    }
}
