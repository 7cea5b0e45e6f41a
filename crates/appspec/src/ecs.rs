//! The ECS AppSpec: the service's new task definition, the container and port the load balancer
//! sends traffic to, optional network and capacity settings, and Lambda hooks.

use serde::Serialize;

use crate::Parsed;
use crate::diagnostic::{Checker, Diagnostics, Position};
use crate::fields::{Fields, Shape, at, capitalise, no_hint};
use crate::service::{self, LifecycleHook, Resource, is_placeholder, string_property, warn_placeholder, whole_number};
use crate::yaml::{self, Node, shorten};

/// The lifecycle events an ECS deployment can run hooks at, in the order they happen.
pub const ECS_HOOK_EVENTS: [&str; 5] =
    ["BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"];

const KIND: service::Kind = service::Kind {
    what: "the ECS AppSpec",
    platform: "ECS",
    resource_type: "AWS::ECS::Service",
    resource_what: "the Amazon ECS service to deploy",
    hook_events: &ECS_HOOK_EVENTS,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsAppSpec {
    pub service: EcsService,
    /// In the order of the file; at most one per event.
    pub hooks: Vec<LifecycleHook>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsService {
    /// The resource's logical name in the AppSpec (usually `TargetService`), for messages.
    pub resource: String,
    /// The task definition the replacement task set runs, as written (normally an ARN).
    pub task_definition: String,
    pub load_balancer_info: LoadBalancerInfo,
    /// Fargate platform version; `None` means the service's (LATEST by default).
    pub platform_version: Option<String>,
    /// `None` keeps the service's current network settings.
    pub network_configuration: Option<NetworkConfiguration>,
    /// Empty keeps the service's own strategy.
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

/// Where the load balancer sends traffic: a container of the task definition and its port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadBalancerInfo {
    pub container_name: String,
    pub container_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkConfiguration {
    pub awsvpc_configuration: AwsvpcConfiguration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsvpcConfiguration {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: AssignPublicIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AssignPublicIp {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    /// Tasks that always run on this provider.
    pub base: Option<u32>,
    /// Relative share of the tasks beyond the bases.
    pub weight: Option<u32>,
}

const PROPERTIES: Shape = Shape {
    what: "the ECS service's Properties",
    known: &[
        "TaskDefinition",
        "LoadBalancerInfo",
        "PlatformVersion",
        "NetworkConfiguration",
        "CapacityProviderStrategy",
    ],
    case_insensitive: true,
    hint: no_hint,
};

const LOAD_BALANCER_INFO: Shape = Shape {
    what: "LoadBalancerInfo",
    known: &["ContainerName", "ContainerPort"],
    case_insensitive: true,
    hint: no_hint,
};

const NETWORK: Shape =
    Shape { what: "NetworkConfiguration", known: &["AwsvpcConfiguration"], case_insensitive: true, hint: no_hint };

const AWSVPC: Shape = Shape {
    what: "AwsvpcConfiguration",
    known: &["Subnets", "SecurityGroups", "AssignPublicIp"],
    case_insensitive: true,
    hint: no_hint,
};

const STRATEGY: Shape = Shape {
    what: "a CapacityProviderStrategy entry",
    known: &["CapacityProvider", "Base", "Weight"],
    case_insensitive: true,
    hint: no_hint,
};

/// Parses an ECS AppSpec (YAML or JSON): the model with its warnings, or every problem found.
pub fn parse_ecs(text: &str) -> Result<Parsed<EcsAppSpec>, Diagnostics> {
    let mut c = Checker::default();
    let spec = match yaml::load(text, &mut c) {
        Ok(root) => read_spec(root.as_ref(), &mut c),
        Err(()) => None,
    };
    c.finish(spec)
}

fn read_spec(root: Option<&Node>, c: &mut Checker) -> Option<EcsAppSpec> {
    let (resource, hooks) = service::read(root, &KIND, c)?;
    let service = read_service(&resource?, c)?;
    Some(EcsAppSpec { service, hooks })
}

fn read_service(resource: &Resource, c: &mut Checker) -> Option<EcsService> {
    let owner = format!("the ECS service {}", resource.name);
    let f = Fields::read(resource.properties, &PROPERTIES, c);
    let task_definition = string_property(
        &f,
        "TaskDefinition",
        &owner,
        Some("give the ARN of the task definition to deploy."),
        resource.pos,
        c,
    );
    if let (Some(td), Some(node)) = (&task_definition, f.get("TaskDefinition")) {
        check_task_definition(td, node.pos, c);
    }
    let load_balancer_info = match f.entry("LoadBalancerInfo") {
        None => {
            c.error(
                resource.pos,
                format!(
                    "{} has no LoadBalancerInfo: give the ContainerName and ContainerPort that receive traffic.",
                    capitalise(&owner)
                ),
            );
            None
        }
        Some((k, v)) => read_load_balancer_info(k, v, c),
    };
    let platform_version = string_property(&f, "PlatformVersion", &owner, None, resource.pos, c);
    let network_configuration =
        f.entry("NetworkConfiguration").filter(|(_, v)| !v.is_null()).and_then(|(k, v)| read_network(k, v, c));
    let capacity_provider_strategy = match f.value("CapacityProviderStrategy") {
        None => Some(Vec::new()),
        Some(node) => read_strategy(node, c),
    };
    Some(EcsService {
        resource: resource.name.clone(),
        task_definition: task_definition?,
        load_balancer_info: load_balancer_info?,
        platform_version,
        network_configuration: match f.value("NetworkConfiguration") {
            Some(_) => Some(network_configuration?),
            None => None,
        },
        capacity_provider_strategy: capacity_provider_strategy?,
    })
}

/// The service needs one task definition revision. Whatever else is written there cannot be told
/// from a typo in an ARN without asking ECS, so this only warns.
fn check_task_definition(value: &str, pos: Position, c: &mut Checker) {
    let why = if value == "<TASK_DEFINITION>" {
        "the placeholder that CodePipeline's Amazon ECS blue/green action replaces with the registered task definition's ARN; created as it is, the deployment fails".to_string()
    } else if is_placeholder(value) {
        "a template placeholder (CodePipeline replaces only <TASK_DEFINITION>); it must be replaced with a task definition ARN before the deployment is created".to_string()
    } else if value.contains('*') {
        "a pattern with wildcards, which are not resolved: it must be the ARN of one task definition revision"
            .to_string()
    } else if !value.starts_with("arn:") && value.rsplit('.').next().is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
    {
        "a file name, but it must be a task definition ARN (CodePipeline puts one in place of <TASK_DEFINITION>, not of a file name)".to_string()
    } else if !value.starts_with("arn:") {
        "not a task definition ARN (arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION)".to_string()
    } else {
        return;
    };
    c.warning(pos, format!("The TaskDefinition {} is {why}.", shorten(value)));
}

fn read_load_balancer_info(key: &Node, value: &Node, c: &mut Checker) -> Option<LoadBalancerInfo> {
    let Some(entries) = value.as_map() else {
        let what = if value.is_null() { "empty".to_string() } else { value.describe() };
        c.error(
            at(key, value),
            format!("LoadBalancerInfo must be a mapping with ContainerName and ContainerPort, but it is {what}."),
        );
        return None;
    };
    let f = Fields::read(entries, &LOAD_BALANCER_INFO, c);
    let container_name = string_property(
        &f,
        "ContainerName",
        "LoadBalancerInfo",
        Some("give the name of the container, in the task definition, that receives traffic."),
        value.pos,
        c,
    );
    if let (Some(name), Some(node)) = (&container_name, f.get("ContainerName")) {
        warn_placeholder("The ContainerName", name, node.pos, c);
    }
    let container_port = match f.entry("ContainerPort") {
        None => {
            c.error(value.pos, "LoadBalancerInfo has no ContainerPort: give the container port that receives traffic.");
            None
        }
        Some((k, v)) => {
            let port = whole_number(v).and_then(|n| u16::try_from(n).ok()).filter(|p| *p >= 1);
            if port.is_none() {
                let shown = match v.text().filter(|_| !v.is_null()) {
                    Some(t) if v.as_scalar().is_some_and(|s| s.quoted) => format!("\"{}\"", shorten(t)),
                    Some(t) => shorten(t),
                    None if v.is_null() => "empty".to_string(),
                    None => v.describe(),
                };
                let mut message = format!("The ContainerPort must be a port number (1 to 65535), but it is {shown}.");
                if is_placeholder(v.text().unwrap_or_default()) {
                    message.push_str(" It looks like a template placeholder that was not filled in.");
                }
                c.error(at(k, v), message);
            }
            port
        }
    };
    Some(LoadBalancerInfo { container_name: container_name?, container_port: container_port? })
}

fn read_network(key: &Node, value: &Node, c: &mut Checker) -> Option<NetworkConfiguration> {
    let Some(entries) = value.as_map() else {
        c.error(
            at(key, value),
            format!("NetworkConfiguration must be a mapping with AwsvpcConfiguration, but it is {}.", value.describe()),
        );
        return None;
    };
    let f = Fields::read(entries, &NETWORK, c);
    let Some((k, v)) = f.entry("AwsvpcConfiguration") else {
        c.error(value.pos, "NetworkConfiguration has no AwsvpcConfiguration: give Subnets, SecurityGroups and AssignPublicIp under it.");
        return None;
    };
    let Some(entries) = v.as_map() else {
        let what = if v.is_null() { "empty".to_string() } else { v.describe() };
        c.error(
            at(k, v),
            format!("AwsvpcConfiguration must be a mapping with Subnets, SecurityGroups and AssignPublicIp, but it is {what}."),
        );
        return None;
    };
    let f = Fields::read(entries, &AWSVPC, c);
    let subnets = id_list(&f, "Subnets", v.pos, c);
    let security_groups = id_list(&f, "SecurityGroups", v.pos, c);
    let assign_public_ip = match f.entry("AssignPublicIp") {
        None => {
            c.error(v.pos, missing_network_part("AssignPublicIp"));
            None
        }
        Some((k, node)) => match node.text().filter(|_| !node.is_null()).map(str::trim) {
            Some("ENABLED") => Some(AssignPublicIp::Enabled),
            Some("DISABLED") => Some(AssignPublicIp::Disabled),
            other => {
                let shown = other.map_or_else(
                    || if node.is_null() { "empty".to_string() } else { node.describe() },
                    |t| format!("\"{}\"", shorten(t)),
                );
                c.error(at(k, node), format!("AssignPublicIp must be ENABLED or DISABLED, but it is {shown}."));
                None
            }
        },
    };
    Some(NetworkConfiguration {
        awsvpc_configuration: AwsvpcConfiguration {
            subnets: subnets?,
            security_groups: security_groups?,
            assign_public_ip: assign_public_ip?,
        },
    })
}

fn missing_network_part(name: &str) -> String {
    format!(
        "AwsvpcConfiguration has no {name}: when a network configuration is given, Subnets, SecurityGroups and AssignPublicIp are all required."
    )
}

/// A non-empty list of non-empty ids (subnets, security groups).
fn id_list(f: &Fields, name: &str, owner_pos: Position, c: &mut Checker) -> Option<Vec<String>> {
    let Some((key, value)) = f.entry(name) else {
        c.error(owner_pos, missing_network_part(name));
        return None;
    };
    let Some(items) = value.as_seq().filter(|items| !items.is_empty()) else {
        let what = if value.is_null() { "empty".to_string() } else { value.describe() };
        c.error(at(key, value), format!("{name} must be a list of one or more ids, but it is {what}."));
        return None;
    };
    let mut ids = Vec::new();
    let mut ok = true;
    for item in items {
        match item.text().filter(|_| !item.is_null()).map(str::trim) {
            Some(id) if !id.is_empty() => ids.push(id.to_string()),
            _ => {
                let what =
                    if item.is_null() || item.text() == Some("") { "empty".to_string() } else { item.describe() };
                c.error(item.pos, format!("Each of {name} must be an id, but this one is {what}."));
                ok = false;
            }
        }
    }
    if let Some((id, item)) = ids.iter().zip(items).find(|(id, _)| is_placeholder(id)) {
        warn_placeholder(&format!("One of {name}"), id, item.pos, c);
    }
    ok.then_some(ids)
}

fn read_strategy(node: &Node, c: &mut Checker) -> Option<Vec<CapacityProviderStrategyItem>> {
    let Some(items) = node.as_seq() else {
        c.error(
            node.pos,
            format!(
                "CapacityProviderStrategy must be a list of entries (- CapacityProvider: FARGATE), but it is {}.",
                node.describe()
            ),
        );
        return None;
    };
    let mut strategy = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(entries) = item.as_map() else {
            c.error(
                item.pos,
                format!("A CapacityProviderStrategy entry must be a mapping, but it is {}.", item.describe()),
            );
            ok = false;
            continue;
        };
        let f = Fields::read(entries, &STRATEGY, c);
        let provider = string_property(
            &f,
            "CapacityProvider",
            "a CapacityProviderStrategy entry",
            Some("give the capacity provider's name (FARGATE, FARGATE_SPOT or an Auto Scaling group provider)."),
            item.pos,
            c,
        );
        let base = bounded(&f, "Base", 100_000, c);
        let weight = bounded(&f, "Weight", 1000, c);
        match (provider, base, weight) {
            (Some(capacity_provider), Ok(base), Ok(weight)) => {
                strategy.push(CapacityProviderStrategyItem { capacity_provider, base, weight })
            }
            _ => ok = false,
        }
    }
    ok.then_some(strategy)
}

/// An optional whole number up to `max` (ECS's limits for Base and Weight).
fn bounded(f: &Fields, name: &str, max: u32, c: &mut Checker) -> Result<Option<u32>, ()> {
    let Some((key, value)) = f.entry(name).filter(|(_, v)| !v.is_null()) else { return Ok(None) };
    match whole_number(value).and_then(|n| u32::try_from(n).ok()).filter(|n| *n <= max) {
        Some(n) => Ok(Some(n)),
        None => {
            c.error(
                at(key, value),
                format!("{name} must be a whole number from 0 to {max}, but it is {}.", value.describe()),
            );
            Err(())
        }
    }
}
