//! What Lambda and ECS AppSpec files share: the service reads them (not the agent), keys match
//! regardless of case, `Resources` names exactly one resource of one type, and `Hooks` lists Lambda
//! functions to invoke at lifecycle events. Problems are the service's `InvalidRevisionException`
//! at CreateDeployment (reference §6.5).

use serde::Serialize;

use crate::diagnostic::{Checker, Position};
use crate::fields::{Fields, Shape, at, capitalise, suggestion};
use crate::yaml::{Node, Typed, shorten};

/// A hook of a Lambda or ECS deployment: the Lambda function invoked at a lifecycle event, which
/// reports back through PutLifecycleEventHookExecutionStatus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleHook {
    /// The event's canonical name (`BeforeAllowTraffic`), whatever case the file used.
    pub event: String,
    /// The function's name or ARN, as written.
    pub function: String,
}

/// What differs between the Lambda and the ECS AppSpec at this level.
pub(crate) struct Kind {
    /// "Lambda" or "ECS", in messages.
    pub platform: &'static str,
    /// The AppSpec as a whole, in messages about its keys.
    pub what: &'static str,
    /// The `Type` its one resource must have.
    pub resource_type: &'static str,
    /// What the resource is, in messages: "the Lambda function to deploy".
    pub resource_what: &'static str,
    pub hook_events: &'static [&'static str],
}

impl Kind {
    /// "A Lambda" or "An ECS", to start a sentence.
    fn article(&self) -> String {
        let an = self.platform.starts_with(['A', 'E', 'I', 'O', 'U']);
        format!("{} {}", if an { "An" } else { "A" }, self.platform)
    }
}

/// The one resource of the AppSpec: its logical name and its `Properties` mapping.
pub(crate) struct Resource<'a> {
    pub name: String,
    pub pos: Position,
    pub properties: &'a [(Node, Node)],
}

fn top_shape(kind: &Kind) -> Shape {
    Shape {
        what: kind.what,
        known: &["version", "Resources", "Hooks"],
        case_insensitive: true,
        hint: |key| {
            let server = ["os", "files", "permissions", "file_exists_behavior"];
            server.iter().any(|k| k.eq_ignore_ascii_case(key)).then(|| {
                format!("'{key}' is a key of EC2/on-premises AppSpec files; Lambda and ECS deployments do not use it.")
            })
        },
    }
}

const RESOURCE: Shape = Shape {
    what: "the resource",
    known: &["Type", "Properties"],
    case_insensitive: true,
    hint: crate::fields::no_hint,
};

/// Reads the parts every Lambda and ECS AppSpec has. Returns the resource (if it could be read)
/// and the hooks; every problem is recorded in `c`.
pub(crate) fn read<'a>(
    root: Option<&'a Node>,
    kind: &Kind,
    c: &mut Checker,
) -> Option<(Option<Resource<'a>>, Vec<LifecycleHook>)> {
    let Some(root) = root.filter(|r| !r.is_null()) else {
        c.error(
            Position::START,
            format!(
                "The AppSpec is empty. {} AppSpec needs a Resources section naming {}.",
                kind.article(),
                kind.resource_what
            ),
        );
        return None;
    };
    let Some(entries) = root.as_map() else {
        c.error(
            root.pos,
            format!(
                "The AppSpec must be a YAML or JSON mapping with version, Resources and Hooks, but it is {}.",
                root.describe()
            ),
        );
        return None;
    };
    let f = Fields::read(entries, &top_shape(kind), c);
    check_version(&f, root.pos, c);
    let resource = read_resources(&f, root.pos, kind, c);
    let hooks = read_hooks(f.entry("Hooks"), kind, c);
    Some((resource, hooks))
}

/// The service's own rules for `version` are not published; the guide says 0.0, which also
/// parses from strings (the Lambda and ECS guides write "0.0"). Anything else is only warned about:
/// course templates with `version: 1` are common and deploy.
fn check_version(f: &Fields, root_pos: Position, c: &mut Checker) {
    let Some((key, value)) = f.entry("version") else {
        c.warning(root_pos, "The AppSpec has no version; write version: 0.0, the only version CodeDeploy defines.");
        return;
    };
    let zero = value.as_scalar().is_some_and(|s| {
        s.as_f64() == Some(0.0) || matches!(s.typed(), Typed::Str if matches!(s.text.trim(), "0.0" | "0"))
    });
    if !zero {
        let shown = if value.is_null() { "empty".to_string() } else { value.describe() };
        c.warning(
            at(key, value),
            format!("The AppSpec version is {shown}, but CodeDeploy defines only version 0.0: write version: 0.0."),
        );
    }
}

fn read_resources<'a>(f: &Fields<'a>, root_pos: Position, kind: &Kind, c: &mut Checker) -> Option<Resource<'a>> {
    let Some((key, value)) = f.entry("Resources") else {
        c.error(
            root_pos,
            format!(
                "The AppSpec has no Resources section: it must name {} (Resources: - NAME: {{Type, Properties}}).",
                kind.resource_what
            ),
        );
        return None;
    };
    if value.is_null() {
        c.error(key.pos, format!("The Resources section is empty: it must name {}.", kind.resource_what));
        return None;
    }
    let Some(items) = value.as_seq() else {
        let mut message = format!(
            "Resources must be a list with one entry (- NAME: followed by Type and Properties), but it is {}.",
            value.describe()
        );
        if looks_like_sam(value) {
            message.push_str(" This looks like an AWS SAM or CloudFormation template, not an AppSpec file.");
        }
        c.error(value.pos, message);
        return None;
    };
    let mut resources = Vec::new();
    for item in items {
        match item.as_map() {
            Some(entries) if !entries.is_empty() => resources.extend(entries.iter()),
            _ => {
                let what = if item.is_null() { "empty".to_string() } else { item.describe() };
                c.error(
                    item.pos,
                    format!(
                        "Each entry of Resources must map one resource name to its Type and Properties (- NAME: ...), but this one is {what}."
                    ),
                );
            }
        }
    }
    if resources.is_empty() {
        if items.is_empty() {
            c.error(value.pos, format!("The Resources list is empty: it must name {}.", kind.resource_what));
        }
        return None;
    }
    if resources.len() > 1 {
        let (second, _) = resources[1];
        c.error(
            second.pos,
            format!(
                "{} AppSpec deploys exactly one resource, but Resources lists {}. Deploy each one with its own AppSpec.",
                kind.article(),
                resources.len()
            ),
        );
    }
    let mut first = None;
    for (name_node, body) in resources {
        let resource = read_resource(name_node, body, kind, c);
        if first.is_none() {
            first = Some(resource);
        }
    }
    first.flatten()
}

fn looks_like_sam(resources: &Node) -> bool {
    resources.as_map().unwrap_or_default().iter().any(|(_, body)| {
        body.as_map()
            .unwrap_or_default()
            .iter()
            .any(|(k, v)| k.text() == Some("Type") && v.text().is_some_and(|t| t.starts_with("AWS::")))
    })
}

fn read_resource<'a>(name_node: &'a Node, body: &'a Node, kind: &Kind, c: &mut Checker) -> Option<Resource<'a>> {
    let name = name_node.text().map_or_else(|| name_node.describe(), str::to_string);
    let Some(entries) = body.as_map() else {
        c.error(
            at(name_node, body),
            format!(
                "The resource {name} must be a mapping with Type and Properties, but it is {}.",
                if body.is_null() { "empty".to_string() } else { body.describe() }
            ),
        );
        return None;
    };
    let f = Fields::read(entries, &RESOURCE, c);
    let type_ok = match f.entry("Type") {
        None => {
            c.error(body.pos, format!("The resource {name} has no Type: write Type: {}.", kind.resource_type));
            false
        }
        Some((k, v)) => {
            let text = v.text().filter(|_| !v.is_null()).map(str::trim);
            if text == Some(kind.resource_type) {
                true
            } else {
                let shown = text.map_or_else(|| if v.is_null() { "empty".to_string() } else { v.describe() }, shorten);
                let why = match text {
                    Some("AWS::Serverless::Function") => {
                        " AWS::Serverless::Function is the SAM template type; an AppSpec names the deployed function with Type: AWS::Lambda::Function."
                            .to_string()
                    }
                    Some("AWS::ECS::Service") | Some("AWS::Lambda::Function") => format!(
                        " That is the resource of the other kind of AppSpec, but this deployment is for {}: its resource has Type: {}.",
                        kind.platform, kind.resource_type
                    ),
                    _ => format!(" {} AppSpec's resource has Type: {}.", kind.article(), kind.resource_type),
                };
                c.error(at(k, v), format!("The resource {name} has the Type {shown}.{why}"));
                false
            }
        }
    };
    let properties = match f.entry("Properties") {
        None => {
            c.error(
                body.pos,
                format!("The resource {name} has no Properties: they say which {} to deploy.", kind.resource_what),
            );
            None
        }
        Some((k, v)) => match v.as_map() {
            Some(entries) => Some(entries),
            None => {
                let what = if v.is_null() { "empty".to_string() } else { v.describe() };
                c.error(
                    at(k, v),
                    format!("The Properties of the resource {name} must be a mapping, but they are {what}."),
                );
                None
            }
        },
    };
    let properties = properties?;
    type_ok.then_some(Resource { name, pos: name_node.pos, properties })
}

fn read_hooks(entry: Option<(&Node, &Node)>, kind: &Kind, c: &mut Checker) -> Vec<LifecycleHook> {
    let mut hooks: Vec<LifecycleHook> = Vec::new();
    let Some((_, value)) = entry.filter(|(_, v)| !v.is_null()) else { return hooks };
    let example = format!("- {}: MyHookFunction", kind.hook_events[0]);
    let Some(items) = value.as_seq() else {
        let mut message = format!(
            "Hooks must be a list of lifecycle events, each naming the Lambda function to invoke ({example}), but it is {}.",
            value.describe()
        );
        if mentions_location(value) {
            message.push_str(&format!(
                " It is written like the hooks of an EC2/on-premises AppSpec (scripts with location, timeout and runas); {} deployments run Lambda functions as hooks, not scripts.",
                kind.platform
            ));
        }
        c.error(value.pos, message);
        return hooks;
    };
    for item in items {
        let Some(entries) = item.as_map() else {
            let what = if item.is_null() { "empty".to_string() } else { item.describe() };
            c.error(
                item.pos,
                format!("Each entry of Hooks must map one lifecycle event to a Lambda function ({example}), but this one is {what}."),
            );
            continue;
        };
        for (key, function) in entries {
            let written = key.text().map_or_else(|| key.describe(), str::to_string);
            let event = kind.hook_events.iter().find(|e| e.eq_ignore_ascii_case(written.trim()));
            let Some(event) = event else {
                let mut message = format!(
                    "'{}' is not a lifecycle event of {} deployments; their hooks can be {}.",
                    shorten(&written),
                    kind.platform,
                    kind.hook_events.join(", ")
                );
                if let Some(close) = suggestion(&written, kind.hook_events) {
                    message.push_str(&format!(" Did you mean {close}?"));
                }
                c.error(key.pos, message);
                continue;
            };
            let name = match function.text().filter(|_| !function.is_null()).map(str::trim) {
                Some("") | None if function.as_scalar().is_some() => {
                    c.error(
                        at(key, function),
                        format!("The hook {event} names no Lambda function: give the name of the function to invoke."),
                    );
                    continue;
                }
                Some(name) => name.to_string(),
                None => {
                    c.error(
                        function.pos,
                        format!("The hook {event} must name a Lambda function, but it is {}.", function.describe()),
                    );
                    continue;
                }
            };
            if hooks.iter().any(|h| h.event == *event) {
                c.error(
                    key.pos,
                    format!("The hook {event} is listed more than once; each lifecycle event takes one function."),
                );
                continue;
            }
            warn_placeholder(&format!("The hook {event}"), &name, function.pos, c);
            hooks.push(LifecycleHook { event: event.to_string(), function: name });
        }
    }
    hooks
}

fn mentions_location(node: &Node) -> bool {
    node.as_map().unwrap_or_default().iter().any(|(_, scripts)| {
        scripts
            .as_seq()
            .unwrap_or_default()
            .iter()
            .any(|s| s.as_map().unwrap_or_default().iter().any(|(k, _)| k.text() == Some("location")))
    })
}

/// Whether a value looks like a template variable left unfilled: `<NAME>`, `{{NAME}}`, `${NAME}`,
/// `$NAME`. Such files are common (CodePipeline and build scripts fill them in); the service can do
/// nothing with the placeholder itself.
pub(crate) fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    (v.starts_with('<') && v.ends_with('>'))
        || v.contains("{{")
        || v.contains("${")
        || v.strip_prefix('$').is_some_and(|rest| {
            rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

pub(crate) fn warn_placeholder(subject: &str, value: &str, pos: Position, c: &mut Checker) {
    if is_placeholder(value) {
        c.warning(
            pos,
            format!(
                "{subject} is {}, which looks like a template placeholder: it must be replaced with a real value before the deployment is created.",
                shorten(value)
            ),
        );
    }
}

/// A required or optional string property: `None` when absent (and, if `required`, an error
/// ending with that advice), an error for anything but a non-empty single value. `owner` names
/// the mapping the way it reads inside a sentence ("the ECS service TargetService").
pub(crate) fn string_property(
    f: &Fields,
    name: &str,
    owner: &str,
    required: Option<&str>,
    owner_pos: Position,
    c: &mut Checker,
) -> Option<String> {
    let Some((key, value)) = f.entry(name) else {
        if let Some(why) = required {
            c.error(owner_pos, format!("{} has no {name}: {why}", capitalise(owner)));
        }
        return None;
    };
    match value.text().filter(|_| !value.is_null()).map(str::trim) {
        Some("") | None if value.as_scalar().is_some() => {
            if required.is_some() || !value.is_null() {
                c.error(at(key, value), format!("The {name} of {owner} is empty."));
            }
            None
        }
        Some(text) => Some(text.to_string()),
        None => {
            c.error(
                value.pos,
                format!("The {name} of {owner} must be a single value, but it is {}.", value.describe()),
            );
            None
        }
    }
}

/// A non-negative whole number, written as a number or as a string of digits.
pub(crate) fn whole_number(node: &Node) -> Option<u64> {
    let scalar = node.as_scalar()?;
    match scalar.typed() {
        Typed::Int(i) => u64::try_from(i).ok(),
        Typed::Str => {
            let t = scalar.text.trim();
            if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised() {
        for p in ["<TASK_DEFINITION>", "{{LAMBDA_ALIAS}}", "${ENV}-fn", "$ECS_TASK_DEFINITION"] {
            assert!(is_placeholder(p), "{p}");
        }
        for v in ["my-function", "arn:aws:lambda:us-east-1:123456789012:function:f", "$LATEST1x-", "a<b>"] {
            assert!(!is_placeholder(v), "{v}");
        }
    }
}
