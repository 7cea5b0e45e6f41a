//! Any bytes, as text, through the three AppSpec parsers: a model or diagnostics with positions
//! inside the text, never a panic.
#![no_main]

use landfall_appspec::{Platform, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.split(['\n', '\r']).count().max(1);
    for platform in [Platform::Server, Platform::Lambda, Platform::Ecs] {
        match parse(&text, platform) {
            Ok(parsed) => assert!(!parsed.warnings.has_errors()),
            Err(problems) => {
                assert!(problems.has_errors());
                assert!(problems.iter().all(|d| d.line >= 1 && d.column >= 1 && d.line <= lines + 1));
            }
        }
    }
});
