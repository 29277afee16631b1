//! What Hangar reads of a repository's `devcontainer.json` (JSON with comments): the image or
//! the Dockerfile to build, the environment and user, the lifecycle commands, the ports to
//! forward, local features and editor extensions, as a [`Plan`]; and everything else the file
//! asks, each with the reason Hangar does not do it, so that the space page can say so. The
//! template keeps compute, volumes, features and rights: the file widens the rights only where
//! the template lets it set run options ([`super::run_options`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::run_options::{self, RunOptions, RunPolicy};

/// Where a repository's `devcontainer.json` may be, in the order they are tried; after these,
/// the first `.devcontainer/<name>/devcontainer.json` by name.
pub const LOCATIONS: [&str; 2] = [".devcontainer/devcontainer.json", ".devcontainer.json"];

/// Largest `devcontainer.json` (and `devcontainer-feature.json`) read.
pub const FILE_MAX: usize = 256 * 1024;
/// Most local features applied.
pub const FEATURES_MAX: usize = 20;
/// Most ports, environment variables, build arguments and extensions taken from the file.
pub const ITEMS_MAX: usize = 100;

/// A lifecycle command in its three forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// A string: run by `/bin/sh -c`.
    Shell(String),
    /// An array: the program and its arguments, no shell.
    Exec(Vec<String>),
    /// An object: named commands (each a string or an array).
    Named(BTreeMap<String, Command>),
}

impl Command {
    /// The command as a shell script; named ones run one after the other, each announced, and
    /// the script fails when one of them failed.
    pub fn script(&self) -> String {
        match self {
            Command::Shell(text) => text.clone(),
            Command::Exec(words) => words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "),
            Command::Named(commands) => {
                let mut script = String::from("hangar_failed=0\n");
                for (name, command) in commands {
                    script.push_str(&format!(
                        "echo {}\n( {}\n) || hangar_failed=1\n",
                        quote(&format!("[{name}]")),
                        command.script()
                    ));
                }
                script.push_str("exit $hangar_failed\n");
                script
            }
        }
    }
}

/// Quotes a word for `/bin/sh`.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// How the image is built from the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// The Dockerfile, relative to the repository's folder.
    pub dockerfile: String,
    /// The build context, relative to the repository's folder (`""`: the folder itself).
    pub context: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
}

impl Build {
    /// The Dockerfile relative to the context, as the engine wants it.
    pub fn dockerfile_in_context(&self) -> Result<String, String> {
        let inside = if self.context.is_empty() {
            Some(self.dockerfile.as_str())
        } else {
            self.dockerfile
                .strip_prefix(&self.context)
                .and_then(|rest| rest.strip_prefix('/'))
        };
        inside.map(str::to_owned).ok_or_else(|| {
            format!(
                "build.dockerfile ({}) is not inside build.context ({}): Hangar sends the engine the context only; move the Dockerfile into it",
                self.dockerfile,
                if self.context.is_empty() { "." } else { &self.context }
            )
        })
    }
}

/// A feature of the repository's own (`"./features/x"`), installed by its `install.sh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalFeature {
    /// Its folder, relative to the repository's folder.
    pub path: String,
    /// The options given for it in `devcontainer.json` (its own defaults are added when it is
    /// read).
    pub options: BTreeMap<String, String>,
}

/// A forwarded port and its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub port: u16,
    pub label: Option<String>,
}

/// What Hangar does of a `devcontainer.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The file, relative to the repository's folder.
    pub config: String,
    /// An image to run as it is (or to add the features to).
    pub image: Option<String>,
    pub build: Option<Build>,
    pub features: Vec<LocalFeature>,
    pub container_env: BTreeMap<String, String>,
    pub remote_env: BTreeMap<String, String>,
    /// `remoteUser`, else `containerUser`: the space runs as this user.
    pub user: Option<String>,
    pub on_create: Option<Command>,
    pub update_content: Option<Command>,
    pub post_create: Option<Command>,
    pub post_start: Option<Command>,
    pub ports: Vec<Port>,
    /// `customizations.vscode.extensions`, installed into code-server when the image has it.
    pub extensions: Vec<String>,
    /// What the file asks that Hangar does not do, each "`key`: reason".
    pub ignored: Vec<String>,
    /// The run options (`privileged`, `capAdd`, `mounts`, `runArgs`) the space runs with,
    /// because its template allows them.
    #[serde(default)]
    pub run: RunOptions,
    /// What of those is applied, each "`key` …: what it does".
    #[serde(default)]
    pub applied: Vec<String>,
}

impl Plan {
    /// The once-only lifecycle commands, in the order they run, with their names.
    pub fn on_creation(&self) -> Vec<(&'static str, &Command)> {
        [
            ("onCreateCommand", &self.on_create),
            ("updateContentCommand", &self.update_content),
            ("postCreateCommand", &self.post_create),
        ]
        .into_iter()
        .filter_map(|(name, command)| command.as_ref().map(|c| (name, c)))
        .collect()
    }
}

/// Why a key is not applied, for keys Hangar knows and leaves out.
fn ignored_reason(key: &str) -> Option<&'static str> {
    Some(match key {
        "securityOpt" | "init" => "the template decides the space's rights",
        "hostRequirements" => "the template decides the space's compute units",
        "workspaceFolder" | "workspaceMount" => {
            "the repository stays where it was cloned (the space's repository folder)"
        }
        "overrideCommand" => "Hangar keeps its own command in the container",
        "initializeCommand" => "it would run on the machine of the person who opens the space: Hangar never runs a repository's commands outside its space",
        "postAttachCommand" => "Hangar has no editor attaching to the container; use postStartCommand",
        "appPort" => "use forwardPorts: Hangar reaches ports through its proxy, never the host's ports",
        "shutdownAction" => "the space stops by its owner's action or its template's automatic stops",
        "otherPortsAttributes" | "waitFor" | "userEnvProbe" | "updateRemoteUserUID" => {
            "not supported by Hangar"
        }
        _ => return None,
    })
}

/// Keys read without anything to do.
const QUIET: [&str; 2] = ["name", "$schema"];

/// A `devcontainer.json` read: the plan, or why it cannot be used (a sentence for the page).
/// Its run options are applied as far as `policy` (the space's template) allows.
pub fn plan(
    config_path: &str,
    text: &str,
    workspace: &str,
    policy: &RunPolicy,
) -> Result<Plan, String> {
    if text.len() > FILE_MAX {
        return Err(format!(
            "{config_path} is larger than {} KB: Hangar reads devcontainer.json files up to that size",
            FILE_MAX / 1024
        ));
    }
    let parsed: Option<Value> =
        jsonc_parser::parse_to_serde_value(text, &jsonc_parser::ParseOptions::default())
            .map_err(|e| format!("{config_path} is not valid JSON with comments: {e}"))?;
    let Some(Value::Object(root)) = parsed else {
        return Err(format!("{config_path} must hold a JSON object"));
    };
    let folder = parent(config_path);
    let mut plan = Plan {
        config: config_path.to_owned(),
        ..Plan::default()
    };
    for compose in ["dockerComposeFile", "service", "runServices"] {
        if root.contains_key(compose) {
            return Err(format!(
                "{config_path} uses Docker Compose (`{compose}`), which Hangar does not support: give it an `image` or a `build.dockerfile`"
            ));
        }
    }
    let vars = Variables { workspace };
    for (key, value) in &root {
        match key.as_str() {
            "image" => plan.image = Some(string(key, value)?),
            "build" => plan.build = Some(build(value, &folder, &vars)?),
            "dockerFile" | "context" => {}
            "features" => plan.features = features(value, &folder, &mut plan.ignored)?,
            "containerEnv" => plan.container_env = env_map(key, value, &vars)?,
            "remoteEnv" => plan.remote_env = env_map(key, value, &vars)?,
            "remoteUser" => plan.user = Some(user(key, value)?),
            "containerUser" => {
                if !root.contains_key("remoteUser") {
                    plan.user = Some(user(key, value)?);
                }
            }
            "onCreateCommand" => plan.on_create = command(key, value)?,
            "updateContentCommand" => plan.update_content = command(key, value)?,
            "postCreateCommand" => plan.post_create = command(key, value)?,
            "postStartCommand" => plan.post_start = command(key, value)?,
            "forwardPorts" => plan.ports = ports(value, &mut plan.ignored)?,
            "portsAttributes" => {}
            "customizations" => plan.extensions = extensions(value, &mut plan.ignored)?,
            quiet if QUIET.contains(&quiet) => {}
            run if run_options::KEYS.contains(&run) => {}
            other => match ignored_reason(other) {
                Some(reason) => plan.ignored.push(format!("`{other}`: {reason}")),
                None => plan.ignored.push(format!(
                    "`{other}`: not a devcontainer.json key Hangar knows"
                )),
            },
        }
    }
    let run = run_options::read(&root, policy);
    plan.run = run.options;
    plan.applied = run.applied;
    plan.ignored.extend(run.ignored);
    // The legacy top-level `dockerFile` / `context`.
    if plan.build.is_none() {
        if let Some(dockerfile) = root.get("dockerFile") {
            let mut legacy = serde_json::Map::new();
            legacy.insert("dockerfile".into(), dockerfile.clone());
            if let Some(context) = root.get("context") {
                legacy.insert("context".into(), context.clone());
            }
            plan.build = Some(build(&Value::Object(legacy), &folder, &vars)?);
        }
    }
    if let Some(Value::Object(attributes)) = root.get("portsAttributes") {
        for port in &mut plan.ports {
            let label = attributes
                .get(&port.port.to_string())
                .and_then(|a| a.get("label"))
                .and_then(Value::as_str);
            port.label = label.map(|l| l.chars().take(100).collect());
        }
    }
    if plan.image.is_some() && plan.build.is_some() {
        plan.ignored
            .push("`image`: the file also has `build`, which Hangar builds instead".to_owned());
        plan.image = None;
    }
    if plan.image.is_none() && plan.build.is_none() {
        return Err(format!(
            "{config_path} names neither an `image` nor a `build.dockerfile`: add one of them"
        ));
    }
    Ok(plan)
}

/// The values `${…}` in the file may name: the repository's folder in the space.
struct Variables<'a> {
    workspace: &'a str,
}

impl Variables<'_> {
    /// Replaces the variables Hangar knows; `${localEnv:X}` (there is no local machine) is
    /// its default or empty; `${containerEnv:X}` is left for the shell to expand as `${X}`.
    fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &rest[start + 2..start + len];
            match name.split_once(':') {
                None if matches!(name, "localWorkspaceFolder" | "containerWorkspaceFolder") => {
                    out.push_str(self.workspace)
                }
                None if matches!(
                    name,
                    "localWorkspaceFolderBasename" | "containerWorkspaceFolderBasename"
                ) =>
                {
                    out.push_str(self.workspace.rsplit('/').next().unwrap_or_default())
                }
                Some(("localEnv", variable)) => {
                    if let Some((_, default)) = variable.split_once(':') {
                        out.push_str(default);
                    }
                }
                Some(("containerEnv", variable)) => {
                    let variable = variable.split_once(':').map_or(variable, |(v, _)| v);
                    out.push_str(&format!("${{{variable}}}"));
                }
                _ => out.push_str(&rest[start..start + len + 1]),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn string(key: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) if !text.trim().is_empty() && text.len() <= 1000 => {
            Ok(text.trim().to_owned())
        }
        _ => Err(format!(
            "`{key}` must be a non-empty string of at most 1000 characters"
        )),
    }
}

fn user(key: &str, value: &Value) -> Result<String, String> {
    let name = string(key, value)?;
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if !plain || name.len() > 64 {
        return Err(format!(
            "`{key}` must be a user name or uid (letters, digits, `_ - . :`, at most 64)"
        ));
    }
    Ok(name)
}

/// The folder part of a relative path (`""` at the top).
fn parent(path: &str) -> String {
    path.rsplit_once('/')
        .map(|(dir, _)| dir.to_owned())
        .unwrap_or_default()
}

/// `relative` joined to `base` (both relative to the repository's folder), never leaving it.
pub fn join(base: &str, relative: &str) -> Result<String, String> {
    if relative.starts_with('/') {
        return Err(format!(
            "`{relative}` is an absolute path: paths in devcontainer.json are relative to its folder"
        ));
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "`{relative}` points outside the repository: Hangar builds from the repository's files only"
                    ));
                }
            }
            name => parts.push(name),
        }
    }
    Ok(parts.join("/"))
}

fn build(value: &Value, folder: &str, vars: &Variables) -> Result<Build, String> {
    let Value::Object(fields) = value else {
        return Err("`build` must be an object with a `dockerfile`".into());
    };
    let dockerfile = match fields
        .get("dockerfile")
        .or_else(|| fields.get("dockerFile"))
    {
        Some(value) => string("build.dockerfile", value)?,
        None => return Err("`build` needs a `dockerfile`".into()),
    };
    let context = match fields.get("context") {
        Some(value) => string("build.context", value)?,
        None => ".".into(),
    };
    let args = match fields.get("args") {
        Some(value) => env_map("build.args", value, vars)?,
        None => BTreeMap::new(),
    };
    let target = fields
        .get("target")
        .map(|t| string("build.target", t))
        .transpose()?;
    Ok(Build {
        dockerfile: join(folder, &dockerfile)?,
        context: join(folder, &context)?,
        args,
        target,
    })
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn env_map(key: &str, value: &Value, vars: &Variables) -> Result<BTreeMap<String, String>, String> {
    let Value::Object(fields) = value else {
        return Err(format!("`{key}` must be an object of names and values"));
    };
    if fields.len() > ITEMS_MAX {
        return Err(format!("`{key}` has more than {ITEMS_MAX} entries"));
    }
    let mut out = BTreeMap::new();
    for (name, value) in fields {
        if !valid_env_name(name) {
            return Err(format!(
                "`{key}.{name}`: a variable name has letters, digits and `_` only"
            ));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => return Err(format!("`{key}.{name}` must be a string")),
        };
        if text.len() > 4096 || text.contains('\0') {
            return Err(format!(
                "`{key}.{name}` is longer than 4096 characters or holds a NUL"
            ));
        }
        out.insert(name.clone(), vars.expand(&text));
    }
    Ok(out)
}

fn command(key: &str, value: &Value) -> Result<Option<Command>, String> {
    fn words(key: &str, items: &[Value]) -> Result<Vec<String>, String> {
        items
            .iter()
            .map(|w| {
                w.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`{key}`: an array command holds strings only"))
            })
            .collect()
    }
    Ok(match value {
        Value::Null => None,
        Value::String(text) if text.trim().is_empty() => None,
        Value::String(text) => Some(Command::Shell(text.clone())),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => Some(Command::Exec(words(key, items)?)),
        Value::Object(named) => {
            let mut commands = BTreeMap::new();
            for (name, value) in named {
                let one = match value {
                    Value::String(text) => Command::Shell(text.clone()),
                    Value::Array(items) => Command::Exec(words(key, items)?),
                    _ => {
                        return Err(format!(
                            "`{key}.{name}` must be a string or an array of strings"
                        ))
                    }
                };
                commands.insert(name.clone(), one);
            }
            (!commands.is_empty()).then_some(Command::Named(commands))
        }
        _ => {
            return Err(format!(
                "`{key}` must be a string, an array of strings or an object of them"
            ))
        }
    })
}

fn ports(value: &Value, ignored: &mut Vec<String>) -> Result<Vec<Port>, String> {
    let Value::Array(items) = value else {
        return Err("`forwardPorts` must be an array of port numbers".into());
    };
    let mut out: Vec<Port> = Vec::new();
    for item in items.iter().take(ITEMS_MAX) {
        match item.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(port) if port > 0 => {
                if !out.iter().any(|p| p.port == port) {
                    out.push(Port { port, label: None });
                }
            }
            _ => ignored.push(format!(
                "`forwardPorts` entry {item}: only ports of the space itself (numbers) are forwarded"
            )),
        }
    }
    Ok(out)
}

fn features(
    value: &Value,
    folder: &str,
    ignored: &mut Vec<String>,
) -> Result<Vec<LocalFeature>, String> {
    let Value::Object(entries) = value else {
        return Err("`features` must be an object of features and their options".into());
    };
    let mut out = Vec::new();
    for (id, options) in entries {
        if !id.starts_with("./") && !id.starts_with("../") {
            ignored.push(format!(
                "feature `{id}`: features from registries are not supported (Hangar builds offline); copy it into the repository and name it `./…`"
            ));
            continue;
        }
        if out.len() == FEATURES_MAX {
            return Err(format!(
                "more than {FEATURES_MAX} local features: Hangar installs at most that many"
            ));
        }
        let mut given = BTreeMap::new();
        match options {
            Value::Object(fields) => {
                for (name, value) in fields {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => {
                            return Err(format!(
                            "feature `{id}`: option `{name}` must be a string, number or boolean"
                        ))
                        }
                    };
                    given.insert(name.clone(), text);
                }
            }
            Value::String(version) => {
                given.insert("version".into(), version.clone());
            }
            Value::Bool(true) | Value::Null => {}
            Value::Bool(false) => continue,
            _ => return Err(format!("feature `{id}`: its options must be an object")),
        }
        out.push(LocalFeature {
            path: join(folder, id)?,
            options: given,
        });
    }
    Ok(out)
}

fn extensions(value: &Value, ignored: &mut Vec<String>) -> Result<Vec<String>, String> {
    let Value::Object(tools) = value else {
        return Err("`customizations` must be an object".into());
    };
    let mut out = Vec::new();
    for (tool, settings) in tools {
        if tool != "vscode" {
            ignored.push(format!(
                "`customizations.{tool}`: Hangar applies only `customizations.vscode.extensions`"
            ));
            continue;
        }
        let Value::Object(settings) = settings else {
            continue;
        };
        for (key, value) in settings {
            if key != "extensions" {
                ignored.push(format!(
                    "`customizations.vscode.{key}`: Hangar applies only the extensions"
                ));
                continue;
            }
            let Value::Array(items) = value else {
                return Err("`customizations.vscode.extensions` must be an array".into());
            };
            for item in items.iter().take(ITEMS_MAX) {
                let id = item.as_str().unwrap_or_default();
                let plain = id.contains('.')
                    && id.len() <= 200
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
                if plain {
                    out.push(id.to_owned());
                } else {
                    ignored.push(format!(
                        "extension {item}: not an extension id (`publisher.name`)"
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// How a local feature is installed: its `install.sh`'s variables and the environment it
/// gives the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureInstall {
    pub options: BTreeMap<String, String>,
    pub container_env: BTreeMap<String, String>,
}

/// A local feature's options as its `install.sh` gets them: the file's defaults, then the
/// options given, each named in capitals with `_` for anything else.
pub fn feature_env(
    feature: &LocalFeature,
    description: Option<&str>,
) -> Result<FeatureInstall, String> {
    let mut options = BTreeMap::new();
    let mut container_env = BTreeMap::new();
    if let Some(text) = description {
        let parsed: Option<Value> =
            jsonc_parser::parse_to_serde_value(text, &jsonc_parser::ParseOptions::default())
                .map_err(|e| {
                    format!(
                        "{}/devcontainer-feature.json is not valid JSON: {e}",
                        feature.path
                    )
                })?;
        if let Some(Value::Object(defined)) = parsed.as_ref().and_then(|p| p.get("options")) {
            for (name, option) in defined {
                if let Some(default) = option.get("default") {
                    let text = match default {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    options.insert(name.clone(), text);
                }
            }
        }
        if let Some(env) = parsed.as_ref().and_then(|p| p.get("containerEnv")) {
            let vars = Variables { workspace: "" };
            container_env = env_map("containerEnv", env, &vars)?;
        }
    }
    options.extend(feature.options.clone());
    let env = options
        .into_iter()
        .map(|(name, value)| {
            let name: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            (name, value)
        })
        .filter(|(name, _)| valid_env_name(name))
        .collect();
    Ok(FeatureInstall {
        options: env,
        container_env,
    })
}

/// The Dockerfile that adds local features to `base`: each folder copied in and its
/// `install.sh` run as root with its options, then back to the image's user.
pub fn features_dockerfile(base: &str, user: Option<&str>, features: &[FeatureInstall]) -> String {
    let mut file = format!("FROM {base}\nUSER root\n");
    for (i, install) in features.iter().enumerate() {
        let (options, container_env) = (&install.options, &install.container_env);
        file.push_str(&format!("COPY feature-{i}/ /tmp/hangar-features/{i}/\n"));
        let assignments: Vec<String> = options
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        file.push_str(&format!(
            "RUN cd /tmp/hangar-features/{i} && chmod +x install.sh && {} ./install.sh\n",
            assignments.join(" ")
        ));
        for (name, value) in container_env {
            file.push_str(&format!(
                "ENV {name}={}\n",
                serde_json::Value::String(value.clone())
            ));
        }
    }
    file.push_str("RUN rm -rf /tmp/hangar-features\n");
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        file.push_str(&format!("USER {user}\n"));
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACE: &str = "/root/project";
    /// A template that allows no run options.
    const NONE: RunPolicy = RunPolicy {
        allowed: false,
        volume_paths: Vec::new(),
    };

    #[test]
    fn reads_a_file_with_comments_and_trailing_commas() -> Result<(), String> {
        let text = r#"{
            // the image
            "name": "demo",
            "build": { "dockerfile": "Dockerfile", "context": "..", "args": {"V": "1"}, },
            "containerEnv": { "WHERE": "${containerWorkspaceFolder}" },
            "remoteEnv": { "PATH": "${containerEnv:PATH}:/opt/bin", "L": "${localEnv:HOME:none}" },
            "remoteUser": "dev",
            "postCreateCommand": ["touch", "a b"],
            "postStartCommand": { "one": "echo 1", "two": ["echo", "2"] },
            "forwardPorts": [8000, 8000, "db:5432"],
            "portsAttributes": { "8000": { "label": "web" } },
            "features": { "./features/hello": { "greeting": "hi" }, "ghcr.io/x/y:1": {} },
            "customizations": { "vscode": { "extensions": ["rust-lang.rust-analyzer"], "settings": {} } },
            "privileged": true,
            "frobnicate": 1,
        }"#;
        let plan = plan(".devcontainer/devcontainer.json", text, WORKSPACE, &NONE)?;
        let build = plan.build.clone().ok_or("no build")?;
        assert_eq!(build.dockerfile, ".devcontainer/Dockerfile");
        assert_eq!(build.context, "");
        assert_eq!(build.dockerfile_in_context()?, ".devcontainer/Dockerfile");
        assert_eq!(build.args["V"], "1");
        assert_eq!(plan.container_env["WHERE"], WORKSPACE);
        assert_eq!(plan.remote_env["PATH"], "${PATH}:/opt/bin");
        assert_eq!(plan.remote_env["L"], "none");
        assert_eq!(plan.user.as_deref(), Some("dev"));
        assert_eq!(
            plan.post_create.as_ref().map(Command::script).as_deref(),
            Some("'touch' 'a b'")
        );
        assert!(plan
            .post_start
            .as_ref()
            .map(Command::script)
            .is_some_and(|s| s.contains("( 'echo' '2'\n) || hangar_failed=1")));
        assert_eq!(
            plan.ports,
            vec![Port {
                port: 8000,
                label: Some("web".into())
            }]
        );
        assert_eq!(plan.features.len(), 1);
        assert_eq!(plan.features[0].path, ".devcontainer/features/hello");
        assert_eq!(plan.extensions, vec!["rust-lang.rust-analyzer".to_owned()]);
        let ignored = plan.ignored.join("\n");
        for expected in [
            "`privileged`",
            "`frobnicate`",
            "ghcr.io/x/y:1",
            "db:5432",
            "customizations.vscode.settings",
        ] {
            assert!(ignored.contains(expected), "{expected} not in {ignored}");
        }
        Ok(())
    }

    #[test]
    fn refuses_what_it_cannot_build() {
        let compose = r#"{"dockerComposeFile": "compose.yml", "service": "app"}"#;
        assert!(plan(".devcontainer.json", compose, WORKSPACE, &NONE)
            .unwrap_err()
            .contains("Docker Compose"));
        assert!(
            plan(".devcontainer.json", r#"{"name": "x"}"#, WORKSPACE, &NONE)
                .unwrap_err()
                .contains("neither an `image` nor")
        );
        assert!(plan(".devcontainer.json", "{ nope", WORKSPACE, &NONE)
            .unwrap_err()
            .contains("not valid JSON"));
        let outside = r#"{"build": {"dockerfile": "../../Dockerfile"}}"#;
        assert!(
            plan(".devcontainer/devcontainer.json", outside, WORKSPACE, &NONE)
                .unwrap_err()
                .contains("outside the repository")
        );
        let bad_env = r#"{"image": "x", "containerEnv": {"A B": "1"}}"#;
        assert!(plan(".devcontainer.json", bad_env, WORKSPACE, &NONE).is_err());
    }

    #[test]
    fn the_legacy_dockerfile_key_builds_from_the_files_folder() -> Result<(), String> {
        let text = r#"{"dockerFile": "Dockerfile"}"#;
        let plan = plan(".devcontainer/devcontainer.json", text, WORKSPACE, &NONE)?;
        let build = plan.build.ok_or("no build")?;
        assert_eq!(build.dockerfile, ".devcontainer/Dockerfile");
        assert_eq!(build.context, ".devcontainer");
        assert_eq!(build.dockerfile_in_context()?, "Dockerfile");
        let outside = Build {
            dockerfile: "Dockerfile".into(),
            context: ".devcontainer".into(),
            args: BTreeMap::new(),
            target: None,
        };
        assert!(outside.dockerfile_in_context().is_err());
        Ok(())
    }

    #[test]
    fn feature_options_take_defaults_and_become_capitals() -> Result<(), String> {
        let feature = LocalFeature {
            path: ".devcontainer/features/hello".into(),
            options: BTreeMap::from([("greeting".into(), "hi".into())]),
        };
        let description = r#"{"id": "hello", "options": {"greeting": {"type": "string", "default": "hello"}, "the-name": {"type": "string", "default": "world"}}, "containerEnv": {"HELLO": "1"}}"#;
        let install = feature_env(&feature, Some(description))?;
        assert_eq!(install.options["GREETING"], "hi");
        assert_eq!(install.options["THE_NAME"], "world");
        assert_eq!(install.container_env["HELLO"], "1");
        let file = features_dockerfile("base:1", Some("dev"), &[install]);
        assert!(file.starts_with("FROM base:1\nUSER root\nCOPY feature-0/"));
        assert!(file.contains("GREETING='hi' THE_NAME='world' ./install.sh"));
        assert!(file.contains("ENV HELLO=\"1\""));
        assert!(file.ends_with("USER dev\n"));
        Ok(())
    }

    #[test]
    fn run_options_are_kept_only_where_the_template_allows_them() -> Result<(), String> {
        let text = r#"{"image": "x", "capAdd": ["SYS_PTRACE"], "securityOpt": ["seccomp=unconfined"],
                       "mounts": ["type=tmpfs,target=/scratch"], "runArgs": ["--network=host"]}"#;
        let allowing = RunPolicy {
            allowed: true,
            volume_paths: vec!["/root".into()],
        };
        let applied = plan(".devcontainer.json", text, WORKSPACE, &allowing)?;
        assert_eq!(applied.run.capabilities, ["SYS_PTRACE"]);
        assert_eq!(applied.run.tmpfs.len(), 1);
        assert_eq!(applied.applied.len(), 2, "{:?}", applied.applied);
        let ignored = applied.ignored.join("\n");
        assert!(
            ignored.contains("`securityOpt`: the template decides"),
            "{ignored}"
        );
        assert!(ignored.contains("--network=host"), "{ignored}");
        let refused = plan(".devcontainer.json", text, WORKSPACE, &NONE)?;
        assert!(refused.run.is_empty());
        assert!(refused.applied.is_empty());
        assert_eq!(refused.ignored.len(), 4, "{:?}", refused.ignored);
        // Plans stored before run options existed still read.
        let stored = r#"{"config": ".devcontainer.json", "image": "x", "build": null, "features": [],
            "container_env": {}, "remote_env": {}, "user": null, "on_create": null,
            "update_content": null, "post_create": null, "post_start": null, "ports": [],
            "extensions": [], "ignored": []}"#;
        let old: Plan = serde_json::from_str(stored).map_err(|e| e.to_string())?;
        assert!(old.run.is_empty() && old.applied.is_empty());
        let again: Plan =
            serde_json::from_str(&serde_json::to_string(&applied).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        assert_eq!(again, applied);
        Ok(())
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
