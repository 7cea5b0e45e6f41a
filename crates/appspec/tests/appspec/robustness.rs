//! The parser never panics, whatever the input: corpus and test files mutated at random (with a
//! fixed seed, so a failure is reproducible) and a few hostile inputs go through all three parsers,
//! and every answer is well formed.

use std::panic::{AssertUnwindSafe, catch_unwind};

use landfall_appspec::{Diagnostic, Platform, parse};

use crate::{files_in, read, tests_dir};

const PLATFORMS: [Platform; 3] = [Platform::Server, Platform::Lambda, Platform::Ecs];

/// xorshift64*: small, deterministic and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Pieces that mean something to YAML, so that mutations reach the parser's corners.
pub(crate) const PIECES: &[&str] = &[
    ":",
    ": ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "*b ",
    "!!str ",
    "!!int ",
    "!t ",
    "!<tag:x> ",
    "'",
    "\"",
    "\\",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "  ",
    "    ",
    "? ",
    "|",
    "|-\n",
    ">",
    ">+\n",
    "#",
    "%YAML 1.2\n",
    "%TAG ! tag:x:\n",
    "---\n",
    "...\n",
    "\u{feff}",
    "é",
    "€",
    "\u{1F600}",
    "0x",
    "0o7",
    "-1",
    "0644",
    ".inf",
    "~",
    "null",
    "yes",
    "0.0",
    "\"0.0\"",
    "version: 0.0\n",
    "os: linux\n",
    "hooks:\n",
    "  A:\n",
    "    - location: x\n",
    "\0",
    "\u{85}",
    "\u{2028}",
    "\"\\u12\"",
    "'''",
    "<<: ",
    "=",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(7) {
            0 => {
                let end = (at + rng.below(12)).min(chars.len());
                chars.drain(at..end);
            }
            1 | 2 => {
                let piece = PIECES[rng.below(PIECES.len())];
                chars.splice(at..at, piece.chars());
            }
            3 => chars.truncate(at),
            4 => {
                if at < chars.len() {
                    chars[at] = char::from_u32(rng.below(0x250) as u32).unwrap_or('?');
                }
            }
            5 => {
                // Duplicate a line somewhere else: repeated keys, misplaced indentation.
                let text: String = chars.iter().collect();
                let lines: Vec<&str> = text.split('\n').collect();
                let line = lines[rng.below(lines.len())].to_string();
                let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                out.insert(rng.below(out.len() + 1), line);
                chars = out.join("\n").chars().collect();
            }
            _ => {
                // Re-indent a line by a random amount.
                let text: String = chars.iter().collect();
                let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
                let i = rng.below(lines.len());
                let trimmed = lines[i].trim_start().to_string();
                lines[i] = " ".repeat(rng.below(9)) + &trimmed;
                chars = lines.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

/// Parses with every platform, turning a panic into a failure that shows the input.
pub(crate) fn check(text: &str) {
    for platform in PLATFORMS {
        let result = catch_unwind(AssertUnwindSafe(|| parse(text, platform)));
        let Ok(result) = result else { panic!("{platform:?} parser panicked on {text:?}") };
        let lines = text.split(['\n', '\r']).count().max(1);
        let well_placed = |d: &Diagnostic| d.line >= 1 && d.column >= 1 && d.line <= lines + 1;
        match &result {
            Ok(parsed) => {
                assert!(!parsed.warnings.has_errors(), "{platform:?}: accepted with errors: {text:?}");
                assert!(parsed.warnings.iter().all(well_placed), "{platform:?}: {}\n{text:?}", parsed.warnings);
            }
            Err(problems) => {
                assert!(problems.has_errors(), "{platform:?}: refused without an error: {text:?}");
                assert!(problems.iter().all(well_placed), "{platform:?}: {problems}\n{text:?}");
            }
        }
        assert_eq!(result, parse(text, platform), "{platform:?}: not deterministic on {text:?}");
    }
}

fn seeds() -> Vec<String> {
    let mut texts = Vec::new();
    let tests = tests_dir();
    for dir in ["corpus/server", "corpus/lambda", "corpus/ecs", "data/valid", "data/invalid"] {
        for path in files_in(&tests.join(dir)) {
            if !path.to_string_lossy().contains(".expected") {
                texts.push(read(&path));
            }
        }
    }
    texts
}

#[test]
fn mutated_files_never_make_the_parser_panic() {
    let mut rng = Rng(0x5EED_1A2D_FA11_0001);
    let seeds = seeds();
    assert!(seeds.len() > 58);
    for seed in &seeds {
        check(seed);
        for _ in 0..40 {
            check(&mutate(seed, &mut rng));
        }
    }
}

#[test]
fn hostile_inputs_are_answered_not_crashed_on() {
    let deep_block: String = (0..5000).map(|i| format!("{}- a:\n", " ".repeat(i % 200))).collect();
    let inputs = [
        "[".repeat(100_000),
        "{".repeat(100_000),
        "- ".repeat(50_000),
        "a:\n".repeat(3000),
        deep_block,
        format!("version: 0.0\nos: linux\nhooks:\n  X:\n    - location: {}\n", "y".repeat(200_000)),
        (0..3000).map(|i| format!("k{i}: &a{i} v\n")).collect(),
        "\0\0\0".to_string(),
        "\u{feff}".to_string(),
        "\r".to_string(),
        "\"\\".to_string(),
        "? [a, b]\n: c\n".to_string(),
        "version: 0.0\nos: linux\nhooks:\n  ? [a]\n  : []\n".to_string(),
        "%YAML 1.1\n%YAML 1.1\n---\n".to_string(),
        "!!binary aGVsbG8=".to_string(),
    ];
    for input in &inputs {
        check(input);
    }
}
