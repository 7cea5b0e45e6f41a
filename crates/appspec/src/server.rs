//! The Server (EC2/on-premises) AppSpec: the `appspec.yml` a host agent reads to install files,
//! set permissions and run hook scripts.
//!
//! Validation reproduces the official agent's (`application_specification/*.rb`): what it refuses
//! is an error, with its message; what it ignores is a warning. Unlike the agent, it does not stop
//! at the first problem.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::Parsed;
use crate::diagnostic::{Checker, Diagnostic, Diagnostics, Position};
use crate::fields::{Fields, Shape, at, no_hint, suggestion};
use crate::permissions::{Permission, read_permissions};
use crate::yaml::{self, Kind, Node, Typed, shorten};

/// A script's timeout when the AppSpec gives none, as in the agent.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;

/// The longest a lifecycle event may run, all its scripts together.
pub const MAX_EVENT_SECONDS: u64 = 3600;

/// The lifecycle events a Server AppSpec can attach scripts to, in the order a deployment with
/// every event (blue/green or load-balanced) runs them.
pub const SERVER_HOOK_EVENTS: [&str; 9] = [
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// Events the agent or the service performs itself: scripts listed under them never run.
const RESERVED_EVENTS: [(&str, &str); 4] = [
    ("DownloadBundle", "BeforeInstall"),
    ("Install", "BeforeInstall or AfterInstall"),
    ("BlockTraffic", "BeforeBlockTraffic or AfterBlockTraffic"),
    ("AllowTraffic", "BeforeAllowTraffic or AfterAllowTraffic"),
];

/// A parsed Server AppSpec. Paths are kept as written (the agent resolves `source` against the
/// revision and checks `destination`); what the agent fills in by default is filled in here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerAppSpec {
    pub os: Os,
    /// Copied during Install, in this order.
    pub files: Vec<FileMapping>,
    /// Applied after the copies, to what Install created. Always empty when `os` is Windows.
    pub permissions: Vec<Permission>,
    pub hooks: Hooks,
    /// The AppSpec's own setting, which wins over the deployment's `fileExistsBehavior`.
    pub file_exists_behavior: Option<FileExistsBehavior>,
    /// Where `os` is written, for [`ServerAppSpec::check_host_os`]'s diagnostic.
    #[serde(skip)]
    pub os_position: Position,
}

impl ServerAppSpec {
    /// The scripts of one lifecycle event, in order; empty when the AppSpec has none for it (the
    /// event is then a no-op that succeeds).
    pub fn scripts(&self, event: &str) -> &[Script] {
        self.hooks.get(event).unwrap_or(&[])
    }

    /// Whether a host running `host` may install this AppSpec. The AppSpec itself is valid for
    /// either OS; the agent refuses one written for another OS (Landfall's agent runs on Linux
    /// only, so a Windows AppSpec fails there with this error rather than at parse time).
    pub fn check_host_os(&self, host: Os) -> Result<(), Diagnostic> {
        if self.os == host {
            return Ok(());
        }
        let advice = match host {
            Os::Linux => {
                "Landfall's agent installs only AppSpec files with os: linux; deploy revisions for Windows to Windows hosts that run the official CodeDeploy agent."
            }
            Os::Windows => "Write os: windows in an AppSpec meant for Windows hosts.",
        };
        Err(Diagnostic::error(
            self.os_position,
            format!(
                "The deployment failed because the application specification file specifies an unsupported operating system ({}). This host runs {}: {advice}",
                self.os,
                host.title()
            ),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Windows,
}

impl Os {
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Windows => "windows",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Os::Linux => "Linux",
            Os::Windows => "Windows",
        }
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `files` entry. `source` is relative to the revision's root (`/` or `\` is all of it);
/// a directory source has its contents copied into `destination`, a file source goes into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileMapping {
    pub source: String,
    pub destination: String,
}

/// What Install does with a file that already exists where it would copy one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FileExistsBehavior {
    /// Fail the deployment.
    Disallow,
    /// Replace the file.
    Overwrite,
    /// Keep the existing file and skip the copy.
    Retain,
}

impl FileExistsBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            FileExistsBehavior::Disallow => "DISALLOW",
            FileExistsBehavior::Overwrite => "OVERWRITE",
            FileExistsBehavior::Retain => "RETAIN",
        }
    }

    fn from_name(name: &str) -> Option<FileExistsBehavior> {
        match name {
            "DISALLOW" => Some(FileExistsBehavior::Disallow),
            "OVERWRITE" => Some(FileExistsBehavior::Overwrite),
            "RETAIN" => Some(FileExistsBehavior::Retain),
            _ => None,
        }
    }
}

/// The `hooks` section: lifecycle event name to scripts, in the order of the file. Unknown event
/// names are kept (the agent accepts them; they are warned about and never run).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hooks(Vec<Hook>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hook {
    pub event: String,
    pub scripts: Vec<Script>,
}

impl Hooks {
    pub fn get(&self, event: &str) -> Option<&[Script]> {
        self.0.iter().find(|h| h.event == event).map(|h| h.scripts.as_slice())
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Hook> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds or replaces an event. A repeated event keeps its first place and takes the later
    /// scripts, as a Ruby hash (the agent's) does; returns whether it was repeated.
    fn insert(&mut self, event: String, scripts: Vec<Script>) -> bool {
        match self.0.iter_mut().find(|h| h.event == event) {
            Some(hook) => {
                hook.scripts = scripts;
                true
            }
            None => {
                self.0.push(Hook { event, scripts });
                false
            }
        }
    }
}

impl<'a> IntoIterator for &'a Hooks {
    type Item = &'a Hook;
    type IntoIter = std::slice::Iter<'a, Hook>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for Hooks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|h| (&h.event, &h.scripts)))
    }
}

/// One hook script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    /// Relative to the revision's root, as written (surrounding spaces removed, as the agent does).
    pub location: String,
    /// Seconds before the script is stopped; [`DEFAULT_TIMEOUT_SECONDS`] when not given.
    pub timeout: u64,
    /// The user to run the script as; `None` runs it as the agent's user.
    pub runas: Option<String>,
    /// Run through `sudo` (undocumented, but honoured by the agent).
    pub sudo: bool,
}

/// Parses a Server `appspec.yml`: the model with its warnings, or every problem found.
pub fn parse_server(text: &str) -> Result<Parsed<ServerAppSpec>, Diagnostics> {
    let mut c = Checker::default();
    let spec = match yaml::load(text, &mut c) {
        Ok(root) => read_spec(root.as_ref(), &mut c),
        Err(()) => None,
    };
    c.finish(spec)
}

const EMPTY: &str = "The deployment failed because the application specification file was empty. Make sure your AppSpec file defines at minimum the 'version' and 'os' properties.";

const TOP: Shape = Shape {
    what: "the AppSpec file",
    known: &["version", "os", "files", "permissions", "hooks", "file_exists_behavior"],
    case_insensitive: false,
    hint: top_hint,
};

fn top_hint(key: &str) -> Option<String> {
    match key.to_ascii_lowercase().as_str() {
        "resources" => Some(format!(
            "'{key}' belongs to Lambda and ECS AppSpec files; an EC2/on-premises AppSpec has no use for it."
        )),
        "hooks" if key != "hooks" => {
            Some("Keys are case-sensitive in an EC2/on-premises AppSpec: write 'hooks'.".to_string())
        }
        _ => None,
    }
}

const FILE: Shape =
    Shape { what: "a files entry", known: &["source", "destination"], case_insensitive: false, hint: file_hint };

fn file_hint(key: &str) -> Option<String> {
    Some(
        match key {
            "file_exists_behavior" => "file_exists_behavior belongs at the top level of the AppSpec file, not in a files entry; here it has no effect, so the deployment's own setting (DISALLOW unless the deployment says otherwise) applies.",
            "overwrite" => "To replace files that already exist, set file_exists_behavior: OVERWRITE at the top level of the AppSpec file.",
            "mode" | "owner" | "group" | "acls" => "Set modes, owners and ACLs in the permissions section.",
            _ => return None,
        }
        .to_string(),
    )
}

const SCRIPT: Shape = Shape {
    what: "a hook script",
    known: &["location", "timeout", "runas", "sudo"],
    case_insensitive: false,
    hint: no_hint,
};

fn read_spec(root: Option<&Node>, c: &mut Checker) -> Option<ServerAppSpec> {
    let Some(root) = root.filter(|r| !r.is_null()) else {
        c.error(Position::START, EMPTY);
        return None;
    };
    let Some(entries) = root.as_map() else {
        c.error(
            root.pos,
            format!(
                "The AppSpec file must be a YAML mapping of keys (version, os, files, permissions, hooks), but it is {}.",
                root.describe()
            ),
        );
        c.error(root.pos, version_message("") + " The file has no version key.");
        return None;
    };
    let f = Fields::read(entries, &TOP, c);
    check_version(&f, root.pos, c);
    let os = read_os(&f, root.pos, c);
    let hooks = read_hooks(f.entry("hooks"), c);
    let files = read_files(f.entry("files"), os, c);
    let permissions = read_permissions(f.entry("permissions"), os, c);
    let file_exists_behavior = read_file_exists_behavior(f.entry("file_exists_behavior"), c);
    let (os, os_position) = os?;
    Some(ServerAppSpec { os, files, permissions, hooks, file_exists_behavior, os_position })
}

fn version_message(shown: &str) -> String {
    format!(
        "The deployment failed because an invalid version value ({shown}) was entered in the application specification file. Make sure your AppSpec file specifies \"0.0\" as the version, and then try again."
    )
}

/// The agent compares `version` with the float 0.0, so the numbers `0.0` and `0` pass and the
/// string `"0.0"` does not.
fn check_version(f: &Fields, root_pos: Position, c: &mut Checker) {
    let Some((key, value)) = f.entry("version") else {
        c.error(root_pos, version_message("") + " The file has no version key.");
        return;
    };
    let Some(scalar) = value.as_scalar() else {
        c.error(value.pos, version_message(&value.describe()));
        return;
    };
    if scalar.is_null() {
        c.error(at(key, value), version_message(""));
        return;
    }
    if scalar.as_f64() == Some(0.0) {
        return;
    }
    let mut message = version_message(&shorten(&scalar.text));
    let unquoted = yaml::Scalar { text: scalar.text.trim().to_string(), quoted: false };
    if scalar.quoted && unquoted.as_f64() == Some(0.0) {
        message.push_str(&format!(
            " The version is the quoted string \"{}\", but the agent compares it with the number 0.0: write version: 0.0 without quotes.",
            scalar.text
        ));
    }
    c.error(value.pos, message);
}

fn os_message(shown: &str) -> String {
    format!(
        "The deployment failed because the application specification file specifies an unsupported operating system ({shown}). Specify either \"linux\" or \"windows\" in the os section of the AppSpec file, and then try again."
    )
}

fn read_os(f: &Fields, root_pos: Position, c: &mut Checker) -> Option<(Os, Position)> {
    let Some((key, value)) = f.entry("os") else {
        c.error(root_pos, os_message("") + " The file has no os key.");
        return None;
    };
    let text = value.text().filter(|_| !value.is_null());
    match text {
        Some("linux") => Some((Os::Linux, value.pos)),
        Some("windows") => Some((Os::Windows, value.pos)),
        _ => {
            let shown = text.map_or_else(|| if value.is_null() { String::new() } else { value.describe() }, shorten);
            let mut message = os_message(&shown);
            if let Some(t) = text
                && ["linux", "windows"].iter().any(|os| os.eq_ignore_ascii_case(t.trim()))
            {
                message.push_str(&format!(" The value is case-sensitive: write os: {}.", t.trim().to_lowercase()));
            }
            c.error(at(key, value), message);
            None
        }
    }
}

fn read_file_exists_behavior(entry: Option<(&Node, &Node)>, c: &mut Checker) -> Option<FileExistsBehavior> {
    let (key, value) = entry?;
    if value.is_null() {
        return None;
    }
    let text = value.text().unwrap_or_default();
    if let Some(behavior) = FileExistsBehavior::from_name(text) {
        return Some(behavior);
    }
    let shown = if value.as_scalar().is_some() { shorten(text) } else { value.describe() };
    let mut message = format!(
        "The deployment failed because an invalid option was specified for file_exists_behavior: {shown}. Valid options include OVERWRITE, RETAIN, and DISALLOW."
    );
    if let Some(upper) = FileExistsBehavior::from_name(&text.trim().to_ascii_uppercase()) {
        message.push_str(&format!(" The value is case-sensitive: write {}.", upper.as_str()));
    }
    c.error(at(key, value), message);
    None
}

fn read_files(entry: Option<(&Node, &Node)>, os: Option<(Os, Position)>, c: &mut Checker) -> Vec<FileMapping> {
    let mut files = Vec::new();
    let Some((_, value)) = entry.filter(|(_, v)| !v.is_null()) else { return files };
    let Some(items) = value.as_seq() else {
        c.error(
            value.pos,
            format!(
                "The files section must be a list of entries, each with a source and a destination (- source: ...), but it is {}.",
                value.describe()
            ),
        );
        return files;
    };
    for item in items {
        let Some(entries) = item.as_map() else {
            let what = if item.is_null() { "empty".to_string() } else { item.describe() };
            c.error(
                item.pos,
                format!("A files entry must be a mapping with a source and a destination, but it is {what}."),
            );
            continue;
        };
        let f = Fields::read(entries, &FILE, c);
        let source = path_value(&f, "source", "files entry", c);
        let destination = path_value(&f, "destination", "files entry", c);
        // `..` in a path would be resolved by the agent as text, not through the directories
        // on the host: refused where it is written.
        let parent_dir =
            |path: &str| std::path::Path::new(path).components().any(|c| c == std::path::Component::ParentDir);
        if let (Some(Ok(source)), Some((_, node))) = (&source, f.entry("source"))
            && parent_dir(source)
        {
            c.error(
                node.pos,
                format!(
                    "The source {source} has a '..' component: a source is a path inside the revision, without '..'."
                ),
            );
        }
        if let (Some(Ok(destination)), Some((_, node))) = (&destination, f.entry("destination"))
            && parent_dir(destination)
        {
            c.error(
                node.pos,
                format!(
                    "The destination {destination} has a '..' component, which the agent would resolve as text rather than through the host's directories (and links). Write the path without '..'."
                ),
            );
        }
        match (source, destination) {
            (Some(Ok(source)), Some(Ok(destination))) => {
                if let (Some((Os::Linux, _)), Some((_, node))) = (os, f.entry("destination"))
                    && !destination.starts_with('/')
                {
                    c.warning(
                        node.pos,
                        format!(
                            "The destination {destination} is not an absolute path: the agent would resolve it against its own working directory (/ or /opt/codedeploy-agent). Write the full path."
                        ),
                    );
                }
                files.push(FileMapping { source, destination });
            }
            (None, None) => c.error(
                item.pos,
                "The deployment failed because the application specification file has a files entry with neither a source nor a destination. Add both to the files section of the AppSpec file, and then try again.",
            ),
            (None, Some(_)) => c.error(
                item.pos,
                "The deployment failed because the application specification file specifies a destination file, but no source file. Update the files section of the AppSpec file, and then try again.",
            ),
            (Some(Ok(source)), None) => c.error(
                item.pos,
                format!(
                    "The deployment failed because the application specification file specifies only a source file ({source}). Add the name of the destination file to the files section of the AppSpec file, and then try again."
                ),
            ),
            // A value of the wrong kind was reported where it was read.
            (Some(Err(())), _) | (_, Some(Err(()))) => {}
        }
    }
    files
}

/// A value used as a path or a name: absent or null gives `None`; a list or mapping is an error
/// (`Some(Err)`), reported here.
fn path_value(f: &Fields, name: &str, owner: &str, c: &mut Checker) -> Option<Result<String, ()>> {
    let value = f.value(name)?;
    match value.text() {
        Some(text) => Some(Ok(text.to_string())),
        None => {
            c.error(
                value.pos,
                format!("The {name} of a {owner} must be a single value, but it is {}.", value.describe()),
            );
            Some(Err(()))
        }
    }
}

const NO_LOCATION: &str = "The deployment failed because the application specification file specifies a script with no location value. Specify the location in the hooks section of the AppSpec file, and then try again.";

const BAD_TIMEOUT: &str = "The deployment failed because an invalid timeout value was provided for a script in the application specification file. Make corrections in the hooks section of the AppSpec file, and then try again.";

fn read_hooks(entry: Option<(&Node, &Node)>, c: &mut Checker) -> Hooks {
    let mut hooks = Hooks::default();
    let Some((_, value)) = entry.filter(|(_, v)| !v.is_null()) else { return hooks };
    let Some(entries) = value.as_map() else {
        c.error(
            value.pos,
            format!(
                "The hooks section must map lifecycle event names (such as AfterInstall) to lists of scripts, but it is {}.",
                value.describe()
            ),
        );
        return hooks;
    };
    for (key, scripts_node) in entries {
        let event = match key.text() {
            Some(text) => text.to_string(),
            None => key.describe(),
        };
        check_event_name(key, &event, c);
        let scripts = read_scripts(&event, key, scripts_node, c);
        let explicit: u64 = scripts_node
            .as_seq()
            .unwrap_or_default()
            .iter()
            .zip(&scripts)
            .filter(|(node, _)| node.as_map().is_some_and(|m| m.iter().any(|(k, _)| k.text() == Some("timeout"))))
            .fold(0u64, |sum, (_, s)| sum.saturating_add(s.timeout));
        if explicit > MAX_EVENT_SECONDS {
            c.warning(
                key.pos,
                format!(
                    "The timeouts of the scripts of {event} add up to {explicit} seconds, but a lifecycle event may run for at most {MAX_EVENT_SECONDS} seconds in all: the event can fail before its scripts time out."
                ),
            );
        }
        if hooks.insert(event.clone(), scripts) {
            c.warning(
                key.pos,
                format!(
                    "The lifecycle event {event} appears more than once in hooks; only the scripts of the last one run (as with the official agent)."
                ),
            );
        }
    }
    hooks
}

fn check_event_name(key: &Node, event: &str, c: &mut Checker) {
    if SERVER_HOOK_EVENTS.contains(&event) {
        return;
    }
    if let Some((_, instead)) = RESERVED_EVENTS.iter().find(|(name, _)| *name == event) {
        c.warning(
            key.pos,
            format!(
                "The lifecycle event {event} is carried out by CodeDeploy itself, so scripts listed under it never run. Use {instead} instead."
            ),
        );
        return;
    }
    let mut message = format!(
        "The lifecycle event '{event}' is not one CodeDeploy runs on an instance, so its scripts never run (the official agent accepts the name and ignores it)."
    );
    match suggestion(event, &SERVER_HOOK_EVENTS) {
        Some(close) => message.push_str(&format!(" Did you mean {close}?")),
        None => message.push_str(&format!(" The events are {}.", SERVER_HOOK_EVENTS.join(", "))),
    }
    c.warning(key.pos, message);
}

fn read_scripts(event: &str, key: &Node, value: &Node, c: &mut Checker) -> Vec<Script> {
    let items = match &value.kind {
        Kind::Seq(items) => items,
        _ if value.is_null() => {
            // The agent iterates the value and crashes on nil (NoMethodError), failing the
            // deployment; AWS's own template warns that blank events may fail. Same outcome here,
            // with a message that says why.
            c.error(
                key.pos,
                format!(
                    "The lifecycle event {event} has no scripts: its value is empty. The official agent fails the deployment on an empty event; list at least one script under it (- location: ...), or remove the event."
                ),
            );
            return Vec::new();
        }
        Kind::Map(_) => {
            c.error(
                value.pos,
                format!(
                    "The scripts of {event} must be a list, with a dash before each script (- location: ...), but they are a mapping."
                ),
            );
            return Vec::new();
        }
        Kind::Scalar(_) => {
            c.error(
                value.pos,
                format!(
                    "The scripts of {event} must be a list of scripts, each with a location (- location: ...), but they are {}.",
                    value.describe()
                ),
            );
            return Vec::new();
        }
    };
    items.iter().filter_map(|item| read_script(event, item, c)).collect()
}

fn read_script(event: &str, item: &Node, c: &mut Checker) -> Option<Script> {
    let Some(entries) = item.as_map() else {
        let what = if item.is_null() { "empty".to_string() } else { item.describe() };
        c.error(
            item.pos,
            format!("A script of {event} must be a mapping with a location (- location: PATH), but it is {what}."),
        );
        return None;
    };
    let f = Fields::read(entries, &SCRIPT, c);
    let location = match f.value("location") {
        None => {
            c.error(item.pos, NO_LOCATION);
            None
        }
        Some(node) => match node.text().map(str::trim) {
            Some("") => {
                c.error(node.pos, NO_LOCATION);
                None
            }
            Some(location) => {
                if location.contains(char::is_whitespace) {
                    c.warning(
                        node.pos,
                        format!(
                            "The script location '{location}' contains a space. A location names a script file in the revision, not a command line: the agent looks for a file with exactly this name and fails with \"Script does not exist at specified location\" if there is none."
                        ),
                    );
                }
                Some(location.to_string())
            }
            None => {
                c.error(node.pos, format!("{NO_LOCATION} The location must be a path, but it is {}.", node.describe()));
                None
            }
        },
    };
    let timeout = match f.value("timeout") {
        None => Some(DEFAULT_TIMEOUT_SECONDS),
        Some(node) => read_timeout(node, c),
    };
    let runas = match f.entry("runas") {
        Some((key, node)) if !node.is_null() => match node.text().map(str::trim) {
            Some("") => {
                c.warning(at(key, node), "The runas value is empty, so the script runs as the agent's user.");
                None
            }
            Some(user) => Some(user.to_string()),
            None => {
                c.error(node.pos, format!("The runas of a script must be a user name, but it is {}.", node.describe()));
                None
            }
        },
        _ => None,
    };
    let sudo = match f.value("sudo") {
        None => false,
        Some(node) => match node.as_scalar().map(yaml::Scalar::typed) {
            Some(Typed::Bool(on)) => on,
            _ => {
                c.warning(
                    node.pos,
                    format!(
                        "sudo should be true or false, but it is {}; like the official agent, Landfall takes any other value as true.",
                        node.describe()
                    ),
                );
                true
            }
        },
    };
    Some(Script { location: location?, timeout: timeout?, runas, sudo })
}

/// The agent takes `timeout.to_i`: numbers are truncated, strings read up to their first
/// non-digit, and anything that is not positive afterwards is refused.
fn read_timeout(node: &Node, c: &mut Checker) -> Option<u64> {
    let refuse = |c: &mut Checker, why: String| {
        c.error(node.pos, format!("{BAD_TIMEOUT} The timeout must be a positive number of seconds, but it is {why}."));
        None
    };
    let Some(scalar) = node.as_scalar() else { return refuse(c, node.describe()) };
    let seconds: i128 = match scalar.typed() {
        Typed::Int(i) => i,
        Typed::Float(f) if f.is_finite() => {
            #[allow(clippy::cast_possible_truncation)] // truncation is the agent's to_i
            let whole = f.trunc() as i128;
            if whole >= 1 && f.fract() != 0.0 {
                c.warning(
                    node.pos,
                    format!("The timeout {} is read as {whole} seconds: the agent drops the fraction.", scalar.text),
                );
            }
            whole
        }
        Typed::Str => {
            let read = ruby_to_i(&scalar.text);
            if read >= 1 && scalar.text.trim() != read.to_string() {
                c.warning(
                    node.pos,
                    format!(
                        "The timeout \"{}\" is read as {read} seconds, the number it starts with (as the official agent reads it). Write a plain number of seconds.",
                        shorten(&scalar.text)
                    ),
                );
            }
            read
        }
        _ => 0,
    };
    if seconds < 1 {
        return refuse(c, node.describe());
    }
    Some(u64::try_from(seconds).unwrap_or(u64::MAX))
}

/// Ruby's `String#to_i`: leading blanks, an optional sign, then digits (single `_` allowed
/// between them); 0 when there are none.
fn ruby_to_i(text: &str) -> i128 {
    let t = text.trim_start();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut value: i128 = 0;
    let mut last_was_digit = false;
    for c in body.chars() {
        match c {
            '0'..='9' => {
                value = value.saturating_mul(10).saturating_add(i128::from(c as u8 - b'0'));
                last_was_digit = true;
            }
            '_' if last_was_digit => last_was_digit = false,
            _ => break,
        }
    }
    if negative { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_to_i_reads_the_leading_number() {
        assert_eq!(ruby_to_i("300"), 300);
        assert_eq!(ruby_to_i(" 10s"), 10);
        assert_eq!(ruby_to_i("1_000"), 1000);
        assert_eq!(ruby_to_i("-5"), -5);
        assert_eq!(ruby_to_i("timeout-in-seconds"), 0);
        assert_eq!(ruby_to_i("99999999999999999999999999999999999999999999"), i128::MAX);
    }
}
