//! The run options a repository's `devcontainer.json` may ask for (`privileged`, `capAdd`,
//! `mounts`, `runArgs`), read into [`RunOptions`] when the space's template allows them: what
//! Hangar can apply (its own privileged mode, capabilities from the Linux list, tmpfs mounts,
//! the size of `/dev/shm`), and everything else with the reason it is not applied. Without the
//! template's leave nothing is applied and every key is listed as ignored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every Linux capability, without its `CAP_` prefix (linux/capability.h).
pub const LINUX_CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Capabilities that act on the host's kernel, clock or devices rather than on the space's
/// own namespaces: never granted, whatever the template allows.
const HOST_CAPABILITIES: [(&str, &str); 14] = [
    ("SYS_MODULE", "it loads modules into the host's kernel"),
    ("SYS_RAWIO", "it reaches the host's devices and I/O ports"),
    ("SYS_TIME", "it sets the host's clock"),
    ("SYS_BOOT", "it loads a new kernel on the host"),
    (
        "DAC_READ_SEARCH",
        "it opens the host's files by handle (`open_by_handle_at`), a known way out of a container",
    ),
    (
        "MAC_ADMIN",
        "it changes the host's AppArmor or SELinux policy",
    ),
    (
        "MAC_OVERRIDE",
        "it overrides the host's AppArmor or SELinux policy",
    ),
    ("SYSLOG", "it reads and clears the host's kernel log"),
    ("AUDIT_CONTROL", "it changes the host's audit rules"),
    ("AUDIT_READ", "it reads the host's audit log"),
    ("BPF", "it loads programs into the host's kernel"),
    (
        "PERFMON",
        "it watches the host's kernel and every process on it",
    ),
    ("SYS_PACCT", "it switches the host's process accounting"),
    ("WAKE_ALARM", "it sets the host's wake-up alarms"),
];

/// Most tmpfs mounts applied.
pub const TMPFS_MAX: usize = 10;
/// Most entries of `capAdd`, `mounts` and `runArgs` read (each).
pub const ENTRIES_MAX: usize = 100;
/// Most lines of what was applied, and of what was not.
const LINES_MAX: usize = 200;
/// Longest tmpfs target.
const TARGET_MAX: usize = 255;

/// The reason every run option carries when the space's template does not allow them.
pub const NOT_ALLOWED: &str = "the template does not let devcontainer.json set run options \
     (ask an admin for a template that lets devcontainer.json set run options)";

/// A tmpfs mount a space asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    /// Where it is mounted: an absolute path.
    pub target: String,
    /// The size asked for; the runtime caps it (at the space's memory limit, or 1 GiB).
    #[serde(default)]
    pub size_bytes: Option<u64>,
}

/// What a space runs with on top of its template's rights, as its `devcontainer.json` asked
/// and its template allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// The space's Docker-in-Docker rights (the privileged mode of templates).
    #[serde(default)]
    pub privileged: bool,
    /// Capabilities added, without `CAP_`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub tmpfs: Vec<Tmpfs>,
    /// The size of `/dev/shm` asked for (capped like a tmpfs).
    #[serde(default)]
    pub shm_size_bytes: Option<u64>,
}

impl RunOptions {
    pub fn is_empty(&self) -> bool {
        *self == RunOptions::default()
    }
}

/// What the space's template says about run options, and what they must not collide with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunPolicy {
    /// The template lets `devcontainer.json` set run options.
    pub allowed: bool,
    /// Where the template's volumes are mounted: no tmpfs goes there.
    pub volume_paths: Vec<String>,
}

/// The keys this module reads.
pub const KEYS: [&str; 4] = ["privileged", "capAdd", "mounts", "runArgs"];

/// The run options read from the file's top-level object: what is applied (each "`key` …:
/// what"), and what is not (each "`key` …: reason").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Read {
    pub options: RunOptions,
    pub applied: Vec<String>,
    pub ignored: Vec<String>,
}

/// Reads `privileged`, `capAdd`, `mounts` and `runArgs` of `root` under `policy`.
pub fn read(root: &Map<String, Value>, policy: &RunPolicy) -> Read {
    let mut reader = Reader {
        policy,
        out: Read::default(),
    };
    for key in KEYS {
        let Some(value) = root.get(key) else {
            continue;
        };
        if !policy.allowed {
            reader.out.ignored.push(format!("`{key}`: {NOT_ALLOWED}"));
            continue;
        }
        match key {
            "privileged" => reader.privileged(value),
            "capAdd" => reader.cap_add(value),
            "mounts" => reader.mounts(value),
            _ => reader.run_args(value),
        }
    }
    reader.out
}

struct Reader<'a> {
    policy: &'a RunPolicy,
    out: Read,
}

impl Reader<'_> {
    fn ignore(&mut self, what: &str, reason: &str) {
        // What the page and the audit log show stays short, whatever the file holds.
        if self.out.ignored.len() < LINES_MAX {
            self.out.ignored.push(format!("{what}: {reason}"));
        }
    }

    fn apply(&mut self, what: &str, effect: &str) {
        if self.out.applied.len() < LINES_MAX {
            self.out.applied.push(format!("{what}: {effect}"));
        }
    }

    fn privileged(&mut self, value: &Value) {
        match value {
            Value::Bool(true) => self.set_privileged("`privileged`"),
            Value::Bool(false) => {}
            _ => self.ignore("`privileged`", "must be true or false"),
        }
    }

    fn set_privileged(&mut self, what: &str) {
        if self.out.options.privileged {
            return;
        }
        self.out.options.privileged = true;
        self.apply(
            what,
            "Docker-in-Docker rights (Hangar's privileged mode: SYS_ADMIN, NET_ADMIN and \
             SYS_PTRACE, no seccomp or AppArmor profile; never the host's devices)",
        );
    }

    fn cap_add(&mut self, value: &Value) {
        let Value::Array(items) = value else {
            self.ignore("`capAdd`", "must be an array of capability names");
            return;
        };
        for item in items.iter().take(ENTRIES_MAX) {
            match item.as_str() {
                Some(name) => self.capability("`capAdd`", name),
                None => self.ignore(&format!("`capAdd` entry {item}"), "not a capability name"),
            }
        }
    }

    fn capability(&mut self, key: &str, asked: &str) {
        let what = format!("{key} {asked}");
        match capability(asked) {
            Ok(name) => {
                if !self.out.options.capabilities.contains(&name) {
                    self.out.options.capabilities.push(name.clone());
                    self.apply(&what, &format!("CAP_{name} added"));
                }
            }
            Err(reason) => self.ignore(&what, &reason),
        }
    }

    fn mounts(&mut self, value: &Value) {
        let Value::Array(items) = value else {
            self.ignore("`mounts`", "must be an array of mounts");
            return;
        };
        for item in items.iter().take(ENTRIES_MAX) {
            let what = format!("`mounts` entry {item}");
            let fields = match item {
                Value::String(text) => mount_fields(text),
                Value::Object(object) => object
                    .iter()
                    .map(|(k, v)| {
                        let text = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), text)
                    })
                    .collect(),
                _ => {
                    self.ignore(&what, "a mount is a string or an object");
                    continue;
                }
            };
            self.mount(&what, &fields);
        }
    }

    /// One mount from its `key=value` fields (Docker's `--mount` names).
    fn mount(&mut self, what: &str, fields: &[(String, String)]) {
        let field = |names: &[&str]| {
            fields
                .iter()
                .find(|(k, _)| names.contains(&k.as_str()))
                .map(|(_, v)| v.clone())
        };
        let kind = field(&["type"]).unwrap_or_else(|| "volume".into());
        match kind.as_str() {
            "tmpfs" => {}
            "bind" => {
                return self.ignore(what, "Hangar never mounts the host's files into a space")
            }
            "volume" => return self.ignore(what, "the template decides the volumes"),
            other => {
                return self.ignore(
                    what,
                    &format!("`type={other}`: Hangar applies only tmpfs mounts"),
                )
            }
        }
        let Some(target) = field(&["target", "destination", "dst"]) else {
            return self.ignore(what, "a tmpfs mount needs a `target`");
        };
        let size = match field(&["tmpfs-size", "size"]).map(|s| size_bytes(&s)) {
            None => None,
            Some(Ok(size)) => Some(size),
            Some(Err(reason)) => return self.ignore(what, &reason),
        };
        self.tmpfs(what, &target, size);
    }

    fn tmpfs(&mut self, what: &str, target: &str, size_bytes: Option<u64>) {
        let target = match tmpfs_target(target) {
            Ok(target) => target,
            Err(reason) => return self.ignore(what, &reason),
        };
        if self
            .policy
            .volume_paths
            .iter()
            .any(|p| same_path(p, &target))
        {
            return self.ignore(what, "a volume of the template is mounted there");
        }
        if self.out.options.tmpfs.iter().any(|t| t.target == target) {
            return self.ignore(what, "another tmpfs is mounted there already");
        }
        if self.out.options.tmpfs.len() == TMPFS_MAX {
            return self.ignore(
                what,
                &format!("Hangar applies at most {TMPFS_MAX} tmpfs mounts"),
            );
        }
        let effect = match size_bytes {
            Some(size) => format!(
                "a tmpfs at {target} of up to {} (at most the space's memory limit, or 1 GiB)",
                app::components::size::bytes_text(size as f64)
            ),
            None => format!("a tmpfs at {target} (as large as the space's memory limit, or 1 GiB)"),
        };
        self.out.options.tmpfs.push(Tmpfs { target, size_bytes });
        self.apply(what, &effect);
    }

    fn run_args(&mut self, value: &Value) {
        let Value::Array(items) = value else {
            self.ignore("`runArgs`", "must be an array of strings");
            return;
        };
        let mut words = Vec::new();
        for item in items.iter().take(ENTRIES_MAX) {
            match item.as_str() {
                Some(word) => words.push(word.trim().to_owned()),
                None => self.ignore(&format!("`runArgs` entry {item}"), "not a string"),
            }
        }
        let mut rest = words.into_iter().peekable();
        while let Some(word) = rest.next() {
            if word.is_empty() {
                continue;
            }
            if !word.starts_with('-') {
                self.ignore(
                    &format!("`runArgs` `{word}`"),
                    "not an option: Hangar reads `--name value` and `--name=value` only",
                );
                continue;
            }
            let (flag, inline) = match word.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (word.clone(), None),
            };
            let takes_value = !SWITCHES.contains(&flag.as_str());
            let value = match inline {
                Some(value) => Some(value),
                None if takes_value => rest.next_if(|next| !next.starts_with('-')),
                None => None,
            };
            let shown = match &value {
                Some(value) if !word.contains('=') => format!("`runArgs` `{flag} {value}`"),
                _ => format!("`runArgs` `{word}`"),
            };
            self.run_arg(&shown, &flag, value.as_deref());
        }
    }

    fn run_arg(&mut self, what: &str, flag: &str, value: Option<&str>) {
        match (flag, value) {
            ("--privileged", None | Some("true")) => self.set_privileged(what),
            ("--privileged", Some("false")) => {}
            ("--privileged", Some(_)) => self.ignore(what, "`--privileged` is true or false"),
            ("--cap-add", Some(names)) => {
                let names = names.split(',').filter(|n| !n.trim().is_empty());
                for name in names.take(ENTRIES_MAX) {
                    self.capability("`runArgs` `--cap-add`", name.trim());
                }
            }
            ("--tmpfs", Some(spec)) => {
                let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
                let size = options
                    .split(',')
                    .find_map(|o| o.trim().strip_prefix("size="))
                    .map(size_bytes)
                    .transpose();
                match size {
                    Ok(size) => self.tmpfs(what, target, size),
                    Err(reason) => self.ignore(what, &reason),
                }
            }
            ("--mount", Some(spec)) => self.mount(what, &mount_fields(spec)),
            ("--shm-size", Some(size)) => match size_bytes(size) {
                Ok(size) => {
                    self.out.options.shm_size_bytes = Some(size);
                    self.apply(
                        what,
                        &format!(
                            "/dev/shm of up to {} (at most the space's memory limit, or 1 GiB)",
                            app::components::size::bytes_text(size as f64)
                        ),
                    );
                }
                Err(reason) => self.ignore(what, &reason),
            },
            ("--cap-add" | "--tmpfs" | "--mount" | "--shm-size", None) => {
                self.ignore(what, "it needs a value")
            }
            _ => self.ignore(what, run_arg_reason(flag)),
        }
    }
}

/// `docker run` options that take no value (the others take the next word when it is not an
/// option itself).
const SWITCHES: [&str; 14] = [
    "--privileged",
    "--init",
    "--rm",
    "-i",
    "-t",
    "-it",
    "-ti",
    "--interactive",
    "--tty",
    "-d",
    "--detach",
    "--read-only",
    "--no-healthcheck",
    "--oom-kill-disable",
];

/// Why a `docker run` option Hangar does not apply is left out.
fn run_arg_reason(flag: &str) -> &'static str {
    match flag {
        "--network" | "--net" | "--network-alias" | "--net-alias" | "--ip" | "--ip6"
        | "--mac-address" | "--link" => "a space stays on Hangar's network",
        "-v" | "--volume" | "--volumes-from" => {
            "Hangar never mounts the host's files into a space, and the template decides the volumes"
        }
        "--device" | "--device-cgroup-rule" | "--gpus" => {
            "Hangar never gives a space the host's devices"
        }
        "-p" | "--publish" | "-P" | "--publish-all" | "--expose" => {
            "use forwardPorts: Hangar reaches ports through its proxy, never the host's ports"
        }
        "--pid" | "--ipc" | "--uts" | "--userns" | "--cgroupns" | "--cgroup-parent" => {
            "a space keeps its own namespaces"
        }
        "--security-opt" | "--cap-drop" | "--sysctl" | "--ulimit" => {
            "the template decides the space's rights"
        }
        "-m" | "--memory" | "--memory-swap" | "--memory-reservation" | "--cpus" | "-c"
        | "--cpu-shares" | "--cpuset-cpus" | "--pids-limit" | "--kernel-memory" => {
            "the template decides the space's compute units"
        }
        "-u" | "--user" => "use remoteUser or containerUser",
        "-e" | "--env" | "--env-file" => "use containerEnv or remoteEnv",
        "--init" => "Hangar keeps its own command in the container",
        "--runtime" | "--isolation" | "--platform" => "the host decides how containers run",
        _ => "not a run option Hangar applies (it applies --privileged, --cap-add, --tmpfs, --mount type=tmpfs and --shm-size)",
    }
}

/// A capability name (any case, with or without `CAP_`) as Docker takes it, or why not.
pub fn capability(asked: &str) -> Result<String, String> {
    let upper = asked.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if name == "ALL" {
        return Err("name the capabilities one by one: Hangar never adds them all".into());
    }
    if !LINUX_CAPABILITIES.contains(&name) {
        return Err("not a Linux capability".into());
    }
    if let Some((_, why)) = HOST_CAPABILITIES.iter().find(|(cap, _)| *cap == name) {
        return Err(format!("{why}: Hangar never grants it"));
    }
    if name == "SYS_ADMIN" {
        // The kernel takes it for BPF, perf and the kernel log too, which are refused above.
        return Err(
            "it carries most of the kernel's rights (mounts, BPF, perf): ask for `privileged`, \
             which the template decides"
                .into(),
        );
    }
    Ok(name.to_owned())
}

/// The `key=value` fields of a mount string (Docker's `--mount` syntax); a bare word is a
/// flag (`readonly`).
fn mount_fields(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter(|f| !f.trim().is_empty())
        .map(|field| match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_owned()),
            None => (field.trim().to_ascii_lowercase(), "true".to_owned()),
        })
        .collect()
}

/// The target of a tmpfs: an absolute path of plain parts, outside the kernel's own file
/// systems; trailing slashes dropped.
pub fn tmpfs_target(target: &str) -> Result<String, String> {
    let target = target.trim();
    if !target.starts_with('/') || target.len() > TARGET_MAX {
        return Err(format!(
            "the target must be an absolute path of at most {TARGET_MAX} characters"
        ));
    }
    let parts: Vec<&str> = target.split('/').filter(|p| !p.is_empty()).collect();
    let plain = parts.iter().all(|p| *p != "." && *p != "..")
        && target
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, ',' | ':' | '\\'));
    if !plain {
        return Err("the target must be a plain path (no `..`, `,`, `:` or spaces)".into());
    }
    match parts.first() {
        None => Err("a tmpfs cannot hide the whole file system".into()),
        Some(&("proc" | "sys" | "dev")) => Err(format!(
            "/{} belongs to the kernel and the engine (for /dev/shm use --shm-size)",
            parts[0]
        )),
        Some(_) => Ok(format!("/{}", parts.join("/"))),
    }
}

fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A size as Docker writes them: bytes, or a number with `b`, `k`, `m` or `g` (any case, an
/// optional trailing `b` or `ib`); binary units.
pub fn size_bytes(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let unit = unit.trim();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return Err(format!("`{text}` is not a size (such as 64m or 1g)")),
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("`{text}` is not a size (such as 64m or 1g)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_json(text: &str, allowed: bool) -> Read {
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let root = value.as_object().cloned().unwrap_or_default();
        let policy = RunPolicy {
            allowed,
            volume_paths: vec!["/root".into()],
        };
        read(&root, &policy)
    }

    const ASKING: &str = r#"{
        "privileged": true,
        "capAdd": ["SYS_PTRACE", "cap_net_admin", "SYS_MODULE", "FLY", "ALL"],
        "mounts": [
            "type=tmpfs,target=/scratch",
            {"type": "tmpfs", "target": "/cache/", "tmpfs-size": "64m"},
            "source=/etc,target=/host-etc,type=bind",
            "source=data,target=/data,type=volume",
            "type=tmpfs,target=/root",
            "type=tmpfs,target=/proc/x",
            "type=tmpfs,target=../x"
        ],
        "runArgs": ["--cap-add=NET_ADMIN", "--cap-add", "SYS_NICE", "--network=host",
                    "--network", "bridge", "--tmpfs", "/tmp/t:size=1g,mode=1777",
                    "--shm-size=256m", "--device", "/dev/kvm", "--init", "-v", "/:/host"]
    }"#;

    #[test]
    fn with_the_templates_leave_what_can_be_applied_is() {
        let read = read_json(ASKING, true);
        let options = &read.options;
        assert!(options.privileged);
        assert_eq!(
            options.capabilities,
            ["SYS_PTRACE", "NET_ADMIN", "SYS_NICE"]
        );
        assert_eq!(
            options.tmpfs,
            vec![
                Tmpfs {
                    target: "/scratch".into(),
                    size_bytes: None
                },
                Tmpfs {
                    target: "/cache".into(),
                    size_bytes: Some(64 << 20)
                },
                Tmpfs {
                    target: "/tmp/t".into(),
                    size_bytes: Some(1 << 30)
                },
            ]
        );
        assert_eq!(options.shm_size_bytes, Some(256 << 20));
        let applied = read.applied.join("\n");
        for expected in ["`privileged`", "CAP_SYS_PTRACE", "/scratch", "--shm-size"] {
            assert!(applied.contains(expected), "{expected} not in {applied}");
        }
        let ignored = read.ignored.join("\n");
        for expected in [
            "SYS_MODULE: it loads modules into the host's kernel: Hangar never grants it",
            "FLY: not a Linux capability",
            "ALL: name the capabilities one by one",
            "/host-etc,type=bind\": Hangar never mounts the host's files into a space",
            "type=volume\": the template decides the volumes",
            "target=/root\": a volume of the template is mounted there",
            "/proc/x\": /proc belongs to the kernel",
            "../x\": the target must be an absolute path",
            "`runArgs` `--network=host`: a space stays on Hangar's network",
            "`runArgs` `--network bridge`: a space stays on Hangar's network",
            "`runArgs` `--device /dev/kvm`: Hangar never gives a space the host's devices",
            "`runArgs` `--init`: Hangar keeps its own command",
            "`runArgs` `-v /:/host`: Hangar never mounts the host's files",
        ] {
            assert!(ignored.contains(expected), "{expected} not in {ignored}");
        }
        // NET_ADMIN asked twice is added once.
        assert_eq!(applied.matches("CAP_NET_ADMIN").count(), 1, "{applied}");
    }

    #[test]
    fn without_the_templates_leave_nothing_is_applied_and_all_is_listed() {
        let read = read_json(ASKING, false);
        assert!(read.options.is_empty());
        assert!(read.applied.is_empty());
        assert_eq!(read.ignored.len(), 4, "{:?}", read.ignored);
        for line in &read.ignored {
            assert!(line.contains("ask an admin for a template"), "{line}");
        }
    }

    #[test]
    fn capabilities_are_checked_against_the_linux_list() {
        assert_eq!(capability("sys_ptrace").as_deref(), Ok("SYS_PTRACE"));
        assert_eq!(capability("CAP_NET_RAW").as_deref(), Ok("NET_RAW"));
        assert!(capability("CAP_SYS_RAWIO").is_err());
        assert!(capability("NET_FLY").is_err());
        assert_eq!(LINUX_CAPABILITIES.len(), 41);
        for (host, _) in HOST_CAPABILITIES {
            assert!(LINUX_CAPABILITIES.contains(&host), "{host}");
        }
    }

    #[test]
    fn sizes_and_targets_are_read_as_docker_writes_them() {
        assert_eq!(size_bytes("64m"), Ok(64 << 20));
        assert_eq!(size_bytes("1G"), Ok(1 << 30));
        assert_eq!(size_bytes("2gb"), Ok(2 << 30));
        assert_eq!(size_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(size_bytes("4096"), Ok(4096));
        assert!(size_bytes("lots").is_err());
        assert!(size_bytes("0").is_err());
        assert!(size_bytes("99999999999999999999g").is_err());
        assert_eq!(tmpfs_target("/a/b/").as_deref(), Ok("/a/b"));
        assert!(tmpfs_target("/").is_err());
        assert!(tmpfs_target("/dev/shm").is_err());
        assert!(tmpfs_target("/a/../etc").is_err());
        assert!(tmpfs_target("/a b").is_err());
        assert!(tmpfs_target("relative").is_err());
    }

    #[test]
    fn at_most_so_many_tmpfs_mounts() {
        let mounts: Vec<String> = (0..TMPFS_MAX + 3)
            .map(|i| format!("\"type=tmpfs,target=/t{i}\""))
            .collect();
        let text = format!("{{\"mounts\": [{}]}}", mounts.join(","));
        let read = read_json(&text, true);
        assert_eq!(read.options.tmpfs.len(), TMPFS_MAX);
        assert_eq!(read.ignored.len(), 3, "{:?}", read.ignored);
    }

    #[test]
    fn privileged_false_is_not_privileged_and_sys_admin_asks_for_privileged() {
        let read = read_json(
            r#"{"runArgs": ["--privileged=false", "--cap-add=SYS_ADMIN"]}"#,
            true,
        );
        assert!(!read.options.privileged, "{:?}", read.applied);
        assert!(read.options.capabilities.is_empty(), "{:?}", read.applied);
        assert!(
            read.ignored
                .iter()
                .any(|i| i.contains("ask for `privileged`")),
            "{:?}",
            read.ignored
        );
        let read = read_json(r#"{"runArgs": ["--privileged=maybe"]}"#, true);
        assert!(!read.options.privileged);
        assert_eq!(read.ignored.len(), 1, "{:?}", read.ignored);
    }

    #[test]
    fn a_huge_list_is_read_in_part_and_reported_in_part() {
        let names = vec!["NOPE"; 100_000].join(",");
        let read = read_json(&format!(r#"{{"runArgs": ["--cap-add={names}"]}}"#), true);
        assert_eq!(read.ignored.len(), ENTRIES_MAX);
        let asked: Vec<String> = (0..1000).map(|i| format!("--nope{i}")).collect();
        let text = serde_json::json!({ "runArgs": asked }).to_string();
        assert!(read_json(&text, true).ignored.len() <= LINES_MAX);
    }
}
