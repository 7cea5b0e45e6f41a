//! Property-based: any text, and any document shaped like an AppSpec (its keys, with values of
//! every kind), is parsed into a model or refused with well-placed errors, by every platform's
//! parser, the same way twice, never with a panic. A fixed seed and a bounded number of cases
//! keep the suite fast and a failure reproducible (proptest shrinks it to a small input).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::robustness::{PIECES, check};

fn config() -> Config {
    Config { cases: 300, failure_persistence: None, rng_seed: RngSeed::Fixed(0xa995_bec5), ..Config::default() }
}

/// YAML's own punctuation, words, and any character at all.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(PIECES).prop_map(str::to_owned),
        "[a-zA-Z0-9_/.-]{1,10}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

const KEYS: &[&str] = &[
    "version",
    "os",
    "files",
    "source",
    "destination",
    "hooks",
    "location",
    "timeout",
    "runas",
    "sudo",
    "permissions",
    "object",
    "pattern",
    "except",
    "owner",
    "group",
    "mode",
    "acls",
    "context",
    "type",
    "file_exists_behavior",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
    "Resources",
    "TargetService",
    "Type",
    "Properties",
    "Name",
    "Alias",
    "CurrentVersion",
    "TargetVersion",
    "TaskDefinition",
    "LoadBalancerInfo",
    "ContainerName",
    "ContainerPort",
    "PlatformVersion",
    "NetworkConfiguration",
    "AwsvpcConfiguration",
    "Subnets",
    "SecurityGroups",
    "AssignPublicIp",
    "CapacityProviderStrategy",
    "Base",
    "Weight",
    "myFunction",
    "AWS::Lambda::Function",
    "AWS::ECS::Service",
];

/// A YAML value in flow style (JSON is YAML): scalars of every kind, lists, and mappings keyed
/// by AppSpec's own words.
fn value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        prop::sample::select(KEYS).prop_map(|word| format!("\"{word}\"")),
        any::<i64>().prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "0.0",
            "0",
            "1.5",
            "true",
            "false",
            "null",
            "\"linux\"",
            "\"0644\"",
            "\"/srv/app\"",
            "\"\""
        ])
        .prop_map(str::to_owned),
        "\"[ -~&&[^\"\\\\]]{0,12}\"",
    ];
    scalar.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|items| format!("[{}]", items.join(", "))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                let entries: Vec<String> = entries.iter().map(|(key, value)| format!("\"{key}\": {value}")).collect();
                format!("{{{}}}", entries.join(", "))
            }),
        ]
    })
}

/// A top-level mapping in block style: `key: value` lines.
fn document() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYS), value()), 0..8)
        .prop_map(|entries| entries.iter().map(|(key, value)| format!("{key}: {value}\n")).collect())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_parsed_or_refused_with_well_placed_errors(text in text()) {
        check(&text);
    }

    #[test]
    fn any_appspec_shaped_document_is_parsed_or_refused_with_well_placed_errors(document in document()) {
        check(&document);
    }
}
