//! Property-based: any request body, JSON made of the API's own field names and values of every
//! kind, or not JSON at all, is decoded into an input shape or refused with a
//! SerializationException that says what is wrong; what decodes goes through the stateless
//! validation of every platform, which answers an AWS exception with a message, never a panic.
//! A fixed seed and a bounded number of cases keep the suite fast and a failure reproducible.

use landfall_api::codec::decode_input;
use landfall_api::error::{ApiError, Exception};
use landfall_api::shapes::{
    ComputePlatform, CreateDeploymentConfigInput, CreateDeploymentInput, DeploymentGroupInfo, DeploymentType,
    RegisterOnPremisesInstanceInput, RevisionLocation,
};
use landfall_api::validate;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    Config { cases: 400, failure_persistence: None, rng_seed: RngSeed::Fixed(0x0a91_d3c0), ..Config::default() }
}

const FIELDS: &[&str] = &[
    "applicationName",
    "deploymentGroupName",
    "deploymentConfigName",
    "revision",
    "revisionType",
    "s3Location",
    "bucket",
    "key",
    "bundleType",
    "eTag",
    "version",
    "gitHubLocation",
    "repository",
    "commitId",
    "string",
    "appSpecContent",
    "content",
    "sha256",
    "description",
    "ignoreApplicationStopFailures",
    "targetInstances",
    "tagFilters",
    "autoScalingGroups",
    "ec2TagSet",
    "autoRollbackConfiguration",
    "enabled",
    "events",
    "updateOutdatedInstancesOnly",
    "fileExistsBehavior",
    "overrideAlarmConfiguration",
    "alarms",
    "name",
    "minimumHealthyHosts",
    "type",
    "value",
    "trafficRoutingConfig",
    "timeBasedCanary",
    "canaryPercentage",
    "canaryInterval",
    "timeBasedLinear",
    "linearPercentage",
    "linearInterval",
    "computePlatform",
    "zonalConfig",
    "firstZoneMonitorDurationInSeconds",
    "monitorDurationInSeconds",
    "minimumHealthyHostsPerZone",
    "serviceRoleArn",
    "onPremisesInstanceTagFilters",
    "onPremisesTagSet",
    "onPremisesTagSetList",
    "Key",
    "Value",
    "Type",
    "ec2TagFilters",
    "triggerConfigurations",
    "triggerName",
    "triggerTargetArn",
    "triggerEvents",
    "alarmConfiguration",
    "ignorePollAlarmFailure",
    "deploymentStyle",
    "deploymentType",
    "deploymentOption",
    "blueGreenDeploymentConfiguration",
    "terminateBlueInstancesOnDeploymentSuccess",
    "action",
    "terminationWaitTimeInMinutes",
    "deploymentReadyOption",
    "actionOnTimeout",
    "waitTimeInMinutes",
    "greenFleetProvisioningOption",
    "loadBalancerInfo",
    "elbInfoList",
    "targetGroupInfoList",
    "targetGroupPairInfoList",
    "targetGroups",
    "prodTrafficRoute",
    "testTrafficRoute",
    "listenerArns",
    "ecsServices",
    "serviceName",
    "clusterName",
    "outdatedInstancesStrategy",
    "terminationHookEnabled",
    "instanceName",
    "iamSessionArn",
    "iamUserArn",
    "tags",
];

/// A JSON value: scalars of every kind (the API's enum words among the strings), lists, and
/// objects keyed by the API's field names or by anything at all.
fn value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let words = prop::sample::select(vec![
        "S3",
        "GitHub",
        "String",
        "AppSpecContent",
        "zip",
        "tgz",
        "tar",
        "YAML",
        "JSON",
        "HOST_COUNT",
        "FLEET_PERCENT",
        "AllAtOnce",
        "TimeBasedCanary",
        "TimeBasedLinear",
        "Server",
        "Lambda",
        "ECS",
        "IN_PLACE",
        "BLUE_GREEN",
        "WITH_TRAFFIC_CONTROL",
        "KEY_ONLY",
        "VALUE_ONLY",
        "KEY_AND_VALUE",
        "DEPLOYMENT_FAILURE",
        "OVERWRITE",
        "arn:aws:iam::123456789012:role/x",
        "arn:aws:sns:us-east-1:123456789012:t",
        "CodeDeployDefault.OneAtATime",
        "",
        "-1",
        "\u{0}",
        "é",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        words.prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let key = prop_oneof![prop::sample::select(FIELDS).prop_map(str::to_owned), ".{0,8}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8).prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A request body: an object of the API's fields (mostly), or any JSON, or any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let object = prop::collection::vec((prop::sample::select(FIELDS), value()), 0..10).prop_map(|entries| {
        let object: serde_json::Map<String, serde_json::Value> =
            entries.into_iter().map(|(key, value)| (key.to_owned(), value)).collect();
        serde_json::to_vec(&object).unwrap()
    });
    prop_oneof![
        6 => object,
        1 => value().prop_map(|value| serde_json::to_vec(&value).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn explained(error: &ApiError) -> bool {
    !error.message.trim().is_empty() && !error.exception.name().is_empty()
}

const PLATFORMS: [ComputePlatform; 3] = [ComputePlatform::Server, ComputePlatform::Lambda, ComputePlatform::Ecs];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_body_is_decoded_or_refused_saying_why(body in body()) {
        fn decoded<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
            match decode_input::<T>(body) {
                Ok(value) => Some(value),
                Err(error) => {
                    assert_eq!(error.exception, Exception::Serialization, "{error}");
                    assert!(explained(&error), "{error:?}");
                    None
                }
            }
        }
        if let Some(input) = decoded::<CreateDeploymentInput>(&body) {
            for platform in &PLATFORMS {
                for kind in [DeploymentType::InPlace, DeploymentType::BlueGreen] {
                    if let Err(error) = validate::create_deployment(&input, platform, &kind) {
                        prop_assert!(explained(&error), "{:?}", error);
                    }
                }
                if let Some(revision) = &input.revision
                    && let Err(error) = validate::revision_location(revision, platform)
                {
                    prop_assert!(explained(&error), "{:?}", error);
                }
            }
        }
        if let Some(group) = decoded::<DeploymentGroupInfo>(&body) {
            for platform in &PLATFORMS {
                if let Err(error) = validate::deployment_group(&group, platform) {
                    prop_assert!(explained(&error), "{:?}", error);
                }
            }
        }
        if let Some(config) = decoded::<CreateDeploymentConfigInput>(&body)
            && let Err(error) = validate::create_deployment_config(&config)
        {
            prop_assert!(explained(&error), "{:?}", error);
        }
        if let Some(registration) = decoded::<RegisterOnPremisesInstanceInput>(&body) {
            if let Err(error) = validate::iam_identity(&registration) {
                prop_assert!(explained(&error), "{:?}", error);
            }
            if let Err(error) = validate::instance_name(&registration.instance_name) {
                prop_assert!(explained(&error), "{:?}", error);
            }
        }
        let _: Option<RevisionLocation> = decoded(&body);
    }
}
