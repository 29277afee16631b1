//! Server configuration from command-line flags and `HANGAR_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hangar",
    version,
    about = "Self-hosted cloud development environments on Docker",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web UI and the JSON API (the default).
    Serve(Config),
}

impl Cli {
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "HANGAR_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://FILE` (created if missing) or `postgres://...`.
    #[arg(
        long,
        env = "HANGAR_DATABASE_URL",
        default_value = "sqlite://hangar.db"
    )]
    pub database_url: String,

    /// Docker engine to drive: `unix:///path/docker.sock` or `tcp://host:port`; the local
    /// socket when unset.
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// The URL people use to reach Hangar (e.g. `https://hangar.example.com`). Browsers'
    /// Origin headers are checked against it, and an `https` URL makes cookies `Secure`.
    /// When unset, the request's own Host is the expected origin.
    #[arg(long, env = "HANGAR_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Folder of the built site (the wasm, CSS and static files).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// CPUs given to a space per compute unit.
    #[arg(long, env = "HANGAR_CPUS_PER_CU", default_value_t = 1.0)]
    pub cpus_per_cu: f64,

    /// Memory given to a space per compute unit, in MiB.
    #[arg(long, env = "HANGAR_MEMORY_MIB_PER_CU", default_value_t = 1024)]
    pub memory_mib_per_cu: u64,

    /// Own max_spaces quota of new users (`unlimited` for no limit).
    #[arg(long, env = "HANGAR_DEFAULT_MAX_SPACES", default_value = "3")]
    pub default_max_spaces: Limit,

    /// Own compute-unit quota of new users (`unlimited` for no limit).
    #[arg(long, env = "HANGAR_DEFAULT_COMPUTE_UNITS", default_value = "4")]
    pub default_compute_units: Limit,

    /// Own storage-unit quota (GiB) of new users (`unlimited` for no limit).
    #[arg(long, env = "HANGAR_DEFAULT_STORAGE_UNITS", default_value = "20")]
    pub default_storage_units: Limit,

    /// Seconds a web terminal session with no viewer stays alive.
    #[arg(long, env = "HANGAR_TERMINAL_IDLE_SECS", default_value_t = 300)]
    pub terminal_idle_secs: u64,

    /// Port of the built-in SSH gateway.
    #[arg(long, env = "HANGAR_SSH_PORT", default_value_t = 2222)]
    pub ssh_port: u16,

    /// Username of the first admin, created when the database has no user.
    #[arg(long, env = "HANGAR_ADMIN_USER", default_value = "admin")]
    pub admin_user: String,

    /// Password of the first admin; a random one is printed once when unset.
    #[arg(long, env = "HANGAR_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// On first run, create the default template (image `hangar/default:bookworm`, built
    /// locally by `scripts/images.sh`).
    #[arg(long, env = "HANGAR_DEFAULT_TEMPLATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub default_template: bool,

    /// Failed sign-ins allowed per account within the window before answering 429.
    #[arg(long, env = "HANGAR_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 5)]
    pub login_failures_per_account: u32,

    /// Failed sign-ins allowed per client IP within the window before answering 429.
    #[arg(long, env = "HANGAR_LOGIN_FAILURES_PER_IP", default_value_t = 20)]
    pub login_failures_per_ip: u32,

    /// Window of the sign-in rate limit, in seconds.
    #[arg(long, env = "HANGAR_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: u64,

    /// Days a browser session lasts without activity.
    #[arg(long, env = "HANGAR_SESSION_DAYS", default_value_t = 7)]
    pub session_days: i64,

    /// On PostgreSQL, seconds between the heartbeats each server sends on the change channel.
    /// A server that hears nothing on it for three heartbeats takes its listening connection
    /// for stuck (a network that drops packets without closing it), makes a new one and has
    /// its pages fetch afresh.
    #[arg(long, env = "HANGAR_LIVE_HEARTBEAT_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub live_heartbeat_secs: u64,

    /// Largest file upload accepted (a file, a tar or a form), in MiB: a larger one is
    /// refused with 413.
    #[arg(long, env = "HANGAR_MAX_UPLOAD_MIB", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_upload_mib: u64,

    /// Log format: `text` or `json`.
    #[arg(long, env = "HANGAR_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The configuration with every default, as `hangar serve` with no flag sees it
    /// (environment variables still apply).
    pub fn from_env() -> Self {
        let cli = Cli::parse_from(["hangar"]);
        match cli.into_command() {
            Command::Serve(config) => config,
        }
    }

    /// Whether cookies must carry `Secure`: Hangar is reached over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }
}

/// A quota value: a whole number of at least 0, or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<i64>);

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("unlimited") {
            return Ok(Limit(None));
        }
        match text.parse::<i64>() {
            Ok(value) if value >= 0 => Ok(Limit(Some(value))),
            _ => Err(format!(
                "`{text}` is not a quota: give a whole number of at least 0, or `unlimited`"
            )),
        }
    }
}
