//! AppSpec files: the model, the parser and the validation, with line-and-column diagnostics.
//!
//! Three kinds of AppSpec exist, one per compute platform: the Server one (`appspec.yml` in an
//! EC2/on-premises bundle, read by the host agent), and the Lambda and ECS ones (YAML or JSON, read
//! by the service when a deployment is created). Each `parse_*` function takes the file's text and
//! returns the model with its warnings, or every problem found (errors and warnings, in file
//! order). The crate does no I/O: callers read the file and name it when they print diagnostics.
//!
//! What is accepted follows the official agent (for Server files) and the service (for Lambda and
//! ECS files), with messages reusing their wording where it is known; the places where Landfall
//! decides on its own are listed in the crate's README.md.
//!
//! ```
//! let text = "version: 0.0\nos: linux\nfiles:\n  - source: /\n";
//! let problems = landfall_appspec::parse_server(text).unwrap_err();
//! assert_eq!(
//!     problems.in_file("appspec.yml").to_string(),
//!     "appspec.yml:4:5: error: The deployment failed because the application specification file \
//!      specifies only a source file (/). Add the name of the destination file to the files section \
//!      of the AppSpec file, and then try again."
//! );
//! ```

mod diagnostic;
mod ecs;
mod fields;
mod lambda;
mod permissions;
mod server;
mod service;
mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, Position, Severity};
pub use ecs::{
    AssignPublicIp, AwsvpcConfiguration, CapacityProviderStrategyItem, ECS_HOOK_EVENTS, EcsAppSpec, EcsService,
    LoadBalancerInfo, NetworkConfiguration, parse_ecs,
};
pub use lambda::{LAMBDA_HOOK_EVENTS, LambdaAppSpec, LambdaFunction, parse_lambda};
pub use permissions::{AclEntry, AclTag, Mode, ObjectType, Permission, SelinuxContext};
pub use server::{
    DEFAULT_TIMEOUT_SECONDS, FileExistsBehavior, FileMapping, Hook, Hooks, MAX_EVENT_SECONDS, Os, SERVER_HOOK_EVENTS,
    Script, ServerAppSpec, parse_server,
};
pub use service::LifecycleHook;

use serde::Serialize;

/// A parsed AppSpec and the warnings about it (ignored keys, hooks that never run, values that
/// look like unfilled placeholders...). Warnings never stop a deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parsed<T> {
    pub appspec: T,
    pub warnings: Diagnostics,
}

/// The compute platform an AppSpec is written for: it decides which of the three formats the
/// text must follow. Kept local (rather than the API's enum) so that this crate stands alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// EC2/on-premises: the `appspec.yml` of a bundle, read by the host agent.
    Server,
    Lambda,
    Ecs,
}

/// Any of the three kinds, for callers that hold the platform as a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppSpec {
    Server(ServerAppSpec),
    Lambda(LambdaAppSpec),
    Ecs(EcsAppSpec),
}

/// Parses `text` as the AppSpec of `platform`: the model with its warnings, or every problem.
pub fn parse(text: &str, platform: Platform) -> Result<Parsed<AppSpec>, Diagnostics> {
    fn wrap<T>(result: Result<Parsed<T>, Diagnostics>, f: fn(T) -> AppSpec) -> Result<Parsed<AppSpec>, Diagnostics> {
        result.map(|p| Parsed { appspec: f(p.appspec), warnings: p.warnings })
    }
    match platform {
        Platform::Server => wrap(parse_server(text), AppSpec::Server),
        Platform::Lambda => wrap(parse_lambda(text), AppSpec::Lambda),
        Platform::Ecs => wrap(parse_ecs(text), AppSpec::Ecs),
    }
}
