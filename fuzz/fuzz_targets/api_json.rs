//! Any request body through the API's decoding and the stateless validation of every platform:
//! a SerializationException or a validated (or refused, with an AWS exception and a message)
//! input, never a panic.
#![no_main]

use landfall_api::codec::decode_input;
use landfall_api::error::Exception;
use landfall_api::shapes::{
    ComputePlatform, CreateDeploymentConfigInput, CreateDeploymentInput, DeploymentGroupInfo, DeploymentType,
};
use landfall_api::validate;
use libfuzzer_sys::fuzz_target;

fn decoded<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    match decode_input::<T>(body) {
        Ok(value) => Some(value),
        Err(error) => {
            assert_eq!(error.exception, Exception::Serialization);
            assert!(!error.message.is_empty());
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let platforms = [ComputePlatform::Server, ComputePlatform::Lambda, ComputePlatform::Ecs];
    if let Some(input) = decoded::<CreateDeploymentInput>(data) {
        for platform in &platforms {
            for kind in [DeploymentType::InPlace, DeploymentType::BlueGreen] {
                if let Err(error) = validate::create_deployment(&input, platform, &kind) {
                    assert!(!error.message.is_empty());
                }
            }
            if let Some(revision) = &input.revision {
                let _ = validate::revision_location(revision, platform);
            }
        }
    }
    if let Some(group) = decoded::<DeploymentGroupInfo>(data) {
        for platform in &platforms {
            if let Err(error) = validate::deployment_group(&group, platform) {
                assert!(!error.message.is_empty());
            }
        }
    }
    if let Some(config) = decoded::<CreateDeploymentConfigInput>(data) {
        let _ = validate::create_deployment_config(&config);
    }
});
