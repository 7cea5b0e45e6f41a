//! The public API as the host agent and the server use it.

use landfall_appspec::{
    AclTag, Diagnostic, FileExistsBehavior, ObjectType, Os, Platform, Position, Severity, parse, parse_ecs,
    parse_lambda, parse_server,
};

const SPEC: &str = "\
version: 0.0
os: linux
files:
  - source: /
    destination: /srv/app
permissions:
  - object: /srv/app
    mode: 640
    acls: [\"d:u:web:rx\"]
hooks:
  ValidateService:
    - location: check.sh
  ApplicationStop:
    - location: stop.sh
      timeout: 20
      runas: app
  Unknown:
    - location: never.sh
file_exists_behavior: RETAIN
";

#[test]
fn the_server_model_is_ready_for_install_and_hooks() {
    let parsed = parse_server(SPEC).expect("valid");
    let spec = parsed.appspec;
    assert_eq!(spec.os, Os::Linux);
    assert_eq!(spec.files[0].source, "/");
    assert_eq!(spec.files[0].destination, "/srv/app");
    assert_eq!(spec.file_exists_behavior, Some(FileExistsBehavior::Retain));

    let events: Vec<&str> = spec.hooks.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(events, ["ValidateService", "ApplicationStop", "Unknown"], "the order of the file");
    let stop = spec.scripts("ApplicationStop");
    assert_eq!((stop[0].location.as_str(), stop[0].timeout, stop[0].runas.as_deref()), ("stop.sh", 20, Some("app")));
    assert_eq!(spec.scripts("ValidateService")[0].timeout, 3600);
    assert!(spec.scripts("AfterInstall").is_empty());

    let permission = &spec.permissions[0];
    assert_eq!(permission.mode.map(|m| m.bits()), Some(0o640));
    assert_eq!(permission.types, [ObjectType::File, ObjectType::Directory]);
    let acl = &permission.acls.as_ref().expect("acls")[0];
    assert!(acl.default && acl.tag == AclTag::User && acl.name == "web" && acl.read && !acl.write && acl.execute);
    assert_eq!(acl.to_string(), "default:user:web:r-x");

    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("17:3: warning: The lifecycle event 'Unknown'"), "{warnings:?}");
}

#[test]
fn diagnostics_print_as_file_line_column() {
    let problems = parse_server("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - timeout: 0\n").unwrap_err();
    assert_eq!(problems.errors().count(), 2);
    assert_eq!(problems.warnings().count(), 0);
    let first = problems.iter().next().expect("a problem");
    assert_eq!((first.severity, first.line, first.column), (Severity::Error, 5, 7));
    assert_eq!(first.position(), Position { line: 5, column: 7 });
    assert!(first.in_file("appspec.yml").to_string().starts_with("appspec.yml:5:7: error: The deployment failed"));
    let all = problems.in_file("appspec.yml").to_string();
    assert_eq!(all.lines().count(), 2);
    assert!(all.lines().all(|l| l.starts_with("appspec.yml:5:")));
    // Usable as an error value (`?` into anyhow in the binary).
    let boxed: Box<dyn std::error::Error> = Box::new(problems.clone());
    assert_eq!(boxed.to_string(), problems.to_string());
    assert_eq!(
        Diagnostic::warning(Position::START, "w").to_string(),
        "1:1: warning: w",
        "a diagnostic alone shows its position first"
    );
}

#[test]
fn a_linux_host_refuses_a_windows_appspec_at_its_os_line() {
    let spec = parse_server("version: 0.0\n\nos: windows\n").expect("valid for Windows hosts").appspec;
    let refusal = spec.check_host_os(Os::Linux).unwrap_err();
    assert_eq!((refusal.line, refusal.column), (3, 5));
    assert!(refusal.message.contains("unsupported operating system (windows)"), "{refusal}");
    assert!(refusal.message.contains("Landfall's agent installs only AppSpec files with os: linux"), "{refusal}");
    assert_eq!(spec.check_host_os(Os::Windows), Ok(()));
}

#[test]
fn parse_dispatches_on_the_platform() {
    let lambda = "Resources:\n  - f:\n      Type: AWS::Lambda::Function\n      Properties: {Name: f, Alias: a, TargetVersion: 2}\n";
    assert!(parse(lambda, Platform::Lambda).is_ok());
    assert!(parse(lambda, Platform::Ecs).is_err());
    assert!(parse(lambda, Platform::Server).is_err());
    let function = parse_lambda(lambda).expect("valid").appspec.function;
    assert_eq!((function.name.as_str(), function.alias.as_str(), function.target_version), ("f", "a", 2));
    assert_eq!(function.current_version, None);

    let ecs = "Resources:\n  - S:\n      type: aws::ecs::service\n";
    let problems = parse_ecs(ecs).unwrap_err().to_string();
    assert!(problems.contains("has the Type aws::ecs::service"), "type values are exact: {problems}");
}
