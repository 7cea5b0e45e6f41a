//! The Lambda AppSpec: which function's alias shifts from which version to which, and the Lambda
//! functions to invoke before and after traffic moves.

use serde::Serialize;

use crate::Parsed;
use crate::diagnostic::{Checker, Diagnostics};
use crate::fields::{Fields, Shape, at, capitalise, no_hint};
use crate::service::{self, LifecycleHook, Resource, is_placeholder, string_property, warn_placeholder, whole_number};
use crate::yaml::{self, Node, shorten};

/// The lifecycle events a Lambda deployment can run hooks at.
pub const LAMBDA_HOOK_EVENTS: [&str; 2] = ["BeforeAllowTraffic", "AfterAllowTraffic"];

const KIND: service::Kind = service::Kind {
    what: "the Lambda AppSpec",
    platform: "Lambda",
    resource_type: "AWS::Lambda::Function",
    resource_what: "the Lambda function to deploy",
    hook_events: &LAMBDA_HOOK_EVENTS,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LambdaAppSpec {
    pub function: LambdaFunction,
    /// In the order of the file; at most one per event.
    pub hooks: Vec<LifecycleHook>,
}

/// The function whose alias the deployment moves from `current_version` to `target_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LambdaFunction {
    /// The resource's logical name in the AppSpec (`myLambdaFunction`), for messages.
    pub resource: String,
    pub name: String,
    pub alias: String,
    /// The version the alias points to now. AWS's template calls it optional: without it the
    /// alias's current version is used.
    pub current_version: Option<u64>,
    pub target_version: u64,
}

const PROPERTIES: Shape = Shape {
    what: "the Lambda function's Properties",
    known: &["Name", "Alias", "CurrentVersion", "TargetVersion"],
    case_insensitive: true,
    hint: no_hint,
};

/// Parses a Lambda AppSpec (YAML or JSON): the model with its warnings, or every problem found.
pub fn parse_lambda(text: &str) -> Result<Parsed<LambdaAppSpec>, Diagnostics> {
    let mut c = Checker::default();
    let spec = match yaml::load(text, &mut c) {
        Ok(root) => read_spec(root.as_ref(), &mut c),
        Err(()) => None,
    };
    c.finish(spec)
}

fn read_spec(root: Option<&Node>, c: &mut Checker) -> Option<LambdaAppSpec> {
    let (resource, hooks) = service::read(root, &KIND, c)?;
    let function = read_function(&resource?, c)?;
    Some(LambdaAppSpec { function, hooks })
}

fn read_function(resource: &Resource, c: &mut Checker) -> Option<LambdaFunction> {
    let owner = format!("the Lambda function {}", resource.name);
    let f = Fields::read(resource.properties, &PROPERTIES, c);
    let name =
        string_property(&f, "Name", &owner, Some("give the name of the Lambda function to deploy."), resource.pos, c);
    let alias = string_property(
        &f,
        "Alias",
        &owner,
        Some("give the alias whose traffic the deployment shifts to the target version."),
        resource.pos,
        c,
    );
    for (property, value) in [("Name", &name), ("Alias", &alias)] {
        if let (Some(v), Some(node)) = (value, f.get(property)) {
            warn_placeholder(&format!("The {property} of {owner}"), v, node.pos, c);
        }
    }
    let current_version = f.entry("CurrentVersion").and_then(|(k, v)| version(k, v, "CurrentVersion", c));
    let target_version = match f.entry("TargetVersion") {
        Some((k, v)) => version(k, v, "TargetVersion", c),
        None => {
            c.error(
                resource.pos,
                format!("{} has no TargetVersion: give the function version to shift traffic to.", capitalise(&owner)),
            );
            None
        }
    };
    if let (Some(current), Some(target), Some((_, node))) = (current_version, target_version, f.entry("TargetVersion"))
        && current == target
    {
        c.warning(
            node.pos,
            format!("CurrentVersion and TargetVersion are both {target}: the deployment has no traffic to shift."),
        );
    }
    Some(LambdaFunction {
        resource: resource.name.clone(),
        name: name?,
        alias: alias?,
        current_version,
        target_version: target_version?,
    })
}

/// A published version number of the function: a positive integer, as a number or a string.
fn version(key: &Node, value: &Node, property: &str, c: &mut Checker) -> Option<u64> {
    if let Some(n) = whole_number(value).filter(|n| *n >= 1) {
        return Some(n);
    }
    let shown = match value.text().filter(|_| !value.is_null()) {
        Some(t) => format!("\"{}\"", shorten(t)),
        None if value.is_null() => "empty".to_string(),
        None => value.describe(),
    };
    let mut message = format!(
        "The {property} must be a published version number of the function (a positive integer such as \"3\"), but it is {shown}."
    );
    let text = value.text().unwrap_or_default().trim();
    if text == "$LATEST" {
        message
            .push_str(" $LATEST cannot receive a share of an alias's traffic: publish a version and give its number.");
    } else if is_placeholder(text) {
        message.push_str(" It looks like a template placeholder that was not filled in.");
    }
    c.error(at(key, value), message);
    None
}
