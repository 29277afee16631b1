//! Server configuration from command-line flags and `HANGAR_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser};

use crate::domain::hosts;

/// The heading of the identity provider's flags in `hangar --help`.
const OIDC: &str = "Identity provider (OpenID Connect)";

/// Where the identity provider sends browsers back after a sign-in.
pub const OIDC_CALLBACK_PATH: &str = "/api/v1/auth/oidc/callback";

/// `hangar serve`'s flags alone (the whole command line is `crate::cli::Cli`).
#[derive(Debug, Parser)]
#[command(name = "hangar")]
struct ServeFlags {
    #[command(flatten)]
    serve: Config,
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

    /// What runs spaces: `docker` (the engine at --docker-host) or `swarm` (that engine is a
    /// Swarm manager; each space is a one-replica service, and every node carries a label
    /// `io.hangar.engine=tcp://ADDRESS:2375` saying where its own engine answers).
    #[arg(long, env = "HANGAR_RUNTIME", default_value = "docker")]
    pub runtime: RuntimeKind,

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

    /// Processes (threads included) a space may run per compute unit; spaces of 0 CU get one
    /// unit's worth. A fork bomb stops there instead of exhausting the host.
    #[arg(long, env = "HANGAR_PIDS_PER_CU", default_value_t = 1024, value_parser = clap::value_parser!(i64).range(16..=4_194_304))]
    pub pids_per_cu: i64,

    /// Folder for Hangar's files on the Docker host (the volumes' disk images, under
    /// `volumes/<installation>`). Default: `hangar-data` beside a SQLite database file,
    /// `/var/lib/hangar` with PostgreSQL. Replicas on one host share it.
    #[arg(long, env = "HANGAR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// How volume sizes are enforced: `loop` makes each volume an ext4 filesystem of its size
    /// on a loop device (needs root, on the Docker host; on Swarm, on the space's node through
    /// Hangar's helper image); `off` leaves sizes as bookkeeping only (a space can then fill
    /// the host's disk; start-up and `/readyz` say so).
    #[arg(long, env = "HANGAR_VOLUME_SIZES", default_value = "loop")]
    pub volume_sizes: VolumeSizes,

    /// Let spaces reach the host (its addresses, any port) and 169.254.0.0/16. By default
    /// Hangar installs iptables rules on the spaces network that stop them (needs root).
    #[arg(long, env = "HANGAR_ALLOW_HOST_ACCESS")]
    pub allow_host_access: bool,

    /// Own max_spaces quota of new users (`unlimited` for no limit).
    #[arg(long, env = "HANGAR_DEFAULT_MAX_SPACES", default_value = "3")]
    pub default_max_spaces: Limit,

    /// Own compute-unit quota of new users (`unlimited` for no limit).
    #[arg(long, env = "HANGAR_DEFAULT_COMPUTE_UNITS", default_value = "4")]
    pub default_compute_units: Limit,

    /// Own storage-unit quota (GiB) of new users (`unlimited` for no limit).
    #[arg(long, env = "HANGAR_DEFAULT_STORAGE_UNITS", default_value = "20")]
    pub default_storage_units: Limit,

    /// Own tunnel quota (public links at once) of new users (`unlimited` for no limit).
    #[arg(long, env = "HANGAR_DEFAULT_MAX_TUNNELS", default_value = "3")]
    pub default_max_tunnels: Limit,

    /// Seconds a web terminal session with no viewer stays alive.
    #[arg(long, env = "HANGAR_TERMINAL_IDLE_SECS", default_value_t = 300)]
    pub terminal_idle_secs: u64,

    /// Output a web terminal session keeps above its screen and replays on reattach, in KiB
    /// (whole lines, oldest dropped first; 0 keeps only the screen).
    #[arg(long, env = "HANGAR_TERMINAL_SCROLLBACK_KIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=16384))]
    pub terminal_scrollback_kib: u32,

    /// Address and port of the built-in SSH gateway (`ssh <space>@host`), or `none` to turn
    /// it off.
    #[arg(long, env = "HANGAR_SSH_LISTEN", default_value = "127.0.0.1:2222")]
    pub ssh_listen: Listen,

    /// SSH connections one user may have open at once (on each server).
    #[arg(long, env = "HANGAR_SSH_MAX_SESSIONS_PER_USER", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub ssh_max_sessions_per_user: u32,

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

    /// Failed sign-ins allowed per account and client address within the window; beyond
    /// them that client waits 1 s before its next try, then twice as long after each further
    /// failure (at most the window). Other clients of the account are not held back.
    #[arg(long, env = "HANGAR_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 5)]
    pub login_failures_per_account: u32,

    /// Failed sign-ins allowed per client address (whatever the account) within the window
    /// before answering 429.
    #[arg(long, env = "HANGAR_LOGIN_FAILURES_PER_IP", default_value_t = 20)]
    pub login_failures_per_ip: u32,

    /// Window of the sign-in rate limit, in seconds.
    #[arg(long, env = "HANGAR_LOGIN_WINDOW_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub login_window_secs: u64,

    /// Reverse proxies in front of Hangar, as addresses or CIDRs separated by commas
    /// (`10.0.0.0/8,::1`). A request from one of them is taken to be from the client its
    /// `X-Forwarded-For` names (for the sign-in limits and the log), and to have come over
    /// HTTPS when its `X-Forwarded-Proto` says `https` (the session cookie is then `Secure`).
    /// These headers are ignored from anyone else.
    #[arg(long, env = "HANGAR_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<TrustedProxy>,

    /// Largest WebSocket message (and frame) accepted, in bytes; a bigger one closes the
    /// connection. Browsers send a paste in pieces well below this.
    #[arg(long, env = "HANGAR_WEBSOCKET_MAX_MESSAGE_BYTES", default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=(64 << 20)))]
    pub websocket_max_message_bytes: u64,

    /// Web terminal sessions one user may have open at once (idle ones count until they end).
    #[arg(long, env = "HANGAR_TERMINAL_SESSIONS_PER_USER", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub terminal_sessions_per_user: u32,

    /// Web terminal sessions one space may have open at once, whoever opened them.
    #[arg(long, env = "HANGAR_TERMINAL_SESSIONS_PER_SPACE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub terminal_sessions_per_space: u32,

    /// Live-update streams (`GET /api/v1/events`, one per open page) one user may have open
    /// on this server at once.
    #[arg(long, env = "HANGAR_LIVE_STREAMS_PER_USER", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub live_streams_per_user: u32,

    /// Longest lifetime of an API token, in days: longer ones are refused, and older tokens
    /// stop working once they are this old.
    #[arg(long, env = "HANGAR_TOKEN_MAX_DAYS", default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub token_max_days: i64,

    /// Days a browser session lasts without activity.
    #[arg(long, env = "HANGAR_SESSION_DAYS", default_value_t = 7)]
    pub session_days: i64,

    /// On PostgreSQL, seconds between the heartbeats each server sends on the change channel.
    /// A server that hears nothing on it for three heartbeats takes its listening connection
    /// for stuck (a network that drops packets without closing it), makes a new one and has
    /// its pages fetch afresh.
    #[arg(long, env = "HANGAR_LIVE_HEARTBEAT_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub live_heartbeat_secs: u64,

    /// Address for Prometheus metrics (`GET /metrics`); off when unset. Keep it private: it
    /// is not authenticated.
    #[arg(long, env = "HANGAR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Wildcard domain for the apps of spaces (e.g. `apps.example.com`, with DNS for
    /// `*.apps.example.com` pointing at Hangar): each port of a space is served on an origin of
    /// its own, `{port}--{space}--{owner}.apps.example.com`, signed in through Hangar's own
    /// origin (`--public-url`). The way to serve apps when people reach Hangar from other
    /// machines. When unset and Hangar is reached on this machine only (no --public-url and a
    /// loopback --listen, or a --public-url on localhost), apps get `apps.localhost:<port>`,
    /// which browsers resolve to this machine without any DNS.
    #[arg(long, env = "HANGAR_APPS_DOMAIN")]
    pub apps_domain: Option<String>,

    /// Serve the ports of spaces on Hangar's own origin instead, at
    /// `/spaces/{owner}/{space}/ports/{port}/` (and tunnels at `/t/{secret}/`), when no
    /// --apps-domain is set. RISKY: a page served that way runs on Hangar's origin, so its
    /// scripts act as whoever opens it (see docs/ports.md).
    #[arg(long, env = "HANGAR_PATH_APPS", default_value_t = false, action = clap::ArgAction::Set)]
    pub path_apps: bool,

    /// Largest file upload accepted (a file, a tar or a form), in MiB: a larger one is
    /// refused with 413.
    #[arg(long, env = "HANGAR_MAX_UPLOAD_MIB", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_upload_mib: u64,

    /// Seconds between the passes that stop idle spaces, spaces at their longest run or their
    /// scheduled stop, start scheduled ones and apply retention.
    #[arg(long, env = "HANGAR_AUTOSTOP_INTERVAL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub autostop_interval_secs: u64,

    /// Seconds between samples of every running space's use of CPU, memory, processes and
    /// network (kept a day at this rate, then as hourly points for 90 days).
    #[arg(long, env = "HANGAR_USAGE_INTERVAL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub usage_interval_secs: u64,

    /// Seconds before the first retry of a notification's webhook or email that failed; each
    /// retry after it waits twice as long.
    #[arg(long, env = "HANGAR_NOTIFY_RETRY_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub notify_retry_secs: u64,

    /// Attempts at delivering a notification by webhook or email before it is given up.
    #[arg(long, env = "HANGAR_NOTIFY_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub notify_attempts: u32,

    /// Let webhooks reach loopback, private and link-local addresses (this machine, the local
    /// network, cloud metadata services). Off: a webhook is only sent to public addresses, so
    /// that users cannot make Hangar call what only it can reach.
    #[arg(long, env = "HANGAR_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// The SMTP server notifications are emailed through; unset: no email.
    #[arg(long, env = "HANGAR_SMTP_HOST")]
    pub smtp_host: Option<String>,

    /// Its port.
    #[arg(long, env = "HANGAR_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,

    /// How the connection is protected: `starttls` (required), `tls` (from the start, as on
    /// port 465) or `none` (a relay on this machine only).
    #[arg(long, env = "HANGAR_SMTP_TLS", default_value = "starttls", value_parser = ["starttls", "tls", "none"])]
    pub smtp_tls: String,

    /// The sender, e.g. `Hangar <hangar@example.com>`.
    #[arg(
        long,
        env = "HANGAR_SMTP_FROM",
        default_value = "Hangar <hangar@localhost>"
    )]
    pub smtp_from: String,

    /// The SMTP user, when the server asks for one.
    #[arg(long, env = "HANGAR_SMTP_USER")]
    pub smtp_user: Option<String>,

    /// Its password (prefer the environment variable: arguments are visible to every user of
    /// the machine).
    #[arg(long, env = "HANGAR_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,

    /// Seconds between writes of the activity seen at the doors to the database.
    #[arg(long, env = "HANGAR_ACTIVITY_FLUSH_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub activity_flush_secs: u64,

    /// Seconds before an automatic stop that the space's users are warned (pages show "Keep
    /// running", terminals a notice); a scheduled stop also waits until the space has been
    /// unused this long.
    #[arg(long, env = "HANGAR_AUTOSTOP_WARNING_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub autostop_warning_secs: u64,

    /// Log format: `text` or `json`.
    #[arg(long, env = "HANGAR_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Sign-in through an OpenID Connect identity provider: its issuer URL, exactly as its
    /// discovery document (`<issuer>/.well-known/openid-configuration`) names it. Needs
    /// --public-url, --oidc-client-id and, at the provider, the redirect URI
    /// `<public URL>/api/v1/auth/oidc/callback`. Off when unset.
    #[arg(long, env = "HANGAR_OIDC_ISSUER_URL", help_heading = OIDC)]
    pub oidc_issuer_url: Option<String>,

    /// The client id Hangar has at the provider.
    #[arg(long, env = "HANGAR_OIDC_CLIENT_ID", help_heading = OIDC)]
    pub oidc_client_id: Option<String>,

    /// The client secret Hangar has at the provider (none for a public client; PKCE is always
    /// used).
    #[arg(long, env = "HANGAR_OIDC_CLIENT_SECRET", hide_env_values = true, help_heading = OIDC)]
    pub oidc_client_secret: Option<String>,

    /// Scopes asked for, separated by commas (`openid` is always asked for). Some providers
    /// send the groups claim only with a scope of its own (e.g. `groups`).
    #[arg(
        long,
        env = "HANGAR_OIDC_SCOPES",
        value_delimiter = ',',
        default_value = "openid,profile,email",
        help_heading = OIDC
    )]
    pub oidc_scopes: Vec<String>,

    /// The provider's name on the sign-in page ("Sign in with <name>").
    #[arg(long, env = "HANGAR_OIDC_PROVIDER_NAME", default_value = "SSO", help_heading = OIDC)]
    pub oidc_provider_name: String,

    /// The claim a new account's username comes from (lowercased, other characters made
    /// `-`, the part before `@` of an email address, cut to 32 characters).
    #[arg(
        long,
        env = "HANGAR_OIDC_USERNAME_CLAIM",
        default_value = "preferred_username",
        help_heading = OIDC
    )]
    pub oidc_username_claim: String,

    /// Accept an email address the provider does not say it verified (`email_verified`).
    #[arg(long, env = "HANGAR_OIDC_ALLOW_UNVERIFIED_EMAIL", help_heading = OIDC)]
    pub oidc_allow_unverified_email: bool,

    /// Email domains allowed to sign in, separated by commas (e.g. `example.com`); any when
    /// unset.
    #[arg(long, env = "HANGAR_OIDC_ALLOWED_DOMAINS", value_delimiter = ',', help_heading = OIDC)]
    pub oidc_allowed_domains: Vec<String>,

    /// Create the account of someone who signs in through the provider for the first time;
    /// `false` lets in only accounts already linked to their provider identity (a signed-in
    /// user links theirs from their profile page).
    #[arg(long, env = "HANGAR_OIDC_AUTO_CREATE", default_value_t = true, action = clap::ArgAction::Set, help_heading = OIDC)]
    pub oidc_auto_create: bool,

    /// The claim listing the person's groups at the provider; empty to leave Hangar's groups
    /// alone. Memberships it gives are replaced at each sign-in; those an admin set by hand
    /// stay.
    #[arg(long, env = "HANGAR_OIDC_GROUPS_CLAIM", default_value = "groups", help_heading = OIDC)]
    pub oidc_groups_claim: String,

    /// Groups claim values and the Hangar group each stands for, `VALUE=GROUP` separated by
    /// `;` (e.g. `cn=devs,ou=groups=developers;admins=operators`: split at the last `=`).
    /// Without a mapping (nor --oidc-group-filter) each value names a Hangar group of the
    /// same name.
    #[arg(long, env = "HANGAR_OIDC_GROUP_MAPPING", value_delimiter = ';', help_heading = OIDC)]
    pub oidc_group_mapping: Vec<GroupMapping>,

    /// A regular expression: groups claim values it matches (whole) name Hangar groups of the
    /// same name, beside the mapped ones; the others are ignored.
    #[arg(long, env = "HANGAR_OIDC_GROUP_FILTER", help_heading = OIDC)]
    pub oidc_group_filter: Option<String>,

    /// Create the Hangar groups the claim names that do not exist yet (with no quota of their
    /// own); without it they are skipped.
    #[arg(long, env = "HANGAR_OIDC_AUTO_CREATE_GROUPS", help_heading = OIDC)]
    pub oidc_auto_create_groups: bool,

    /// The claim that makes an admin, with --oidc-admin-value: then the role follows the
    /// provider at each sign-in (admin when the claim has the value, member otherwise).
    #[arg(long, env = "HANGAR_OIDC_ADMIN_CLAIM", help_heading = OIDC)]
    pub oidc_admin_claim: Option<String>,

    /// The value of --oidc-admin-claim (or one of its values, for a list) that makes an admin.
    #[arg(long, env = "HANGAR_OIDC_ADMIN_VALUE", help_heading = OIDC)]
    pub oidc_admin_value: Option<String>,

    /// How far the provider's clock may be from Hangar's, in seconds (for the ID token's
    /// expiry and issue time).
    #[arg(long, env = "HANGAR_OIDC_CLOCK_SKEW_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=600), help_heading = OIDC)]
    pub oidc_clock_skew_secs: u64,

    /// Who may sign in with a password: `everyone`, or `break-glass`: only the local admin
    /// named by --break-glass-user (everyone else signs in through the provider).
    #[arg(long, env = "HANGAR_PASSWORD_SIGN_IN", default_value = "everyone", help_heading = OIDC)]
    pub password_sign_in: PasswordSignIn,

    /// The local admin who may still sign in with a password under `--password-sign-in
    /// break-glass` (default: --admin-user).
    #[arg(long, env = "HANGAR_BREAK_GLASS_USER", help_heading = OIDC)]
    pub break_glass_user: Option<String>,
}

/// What the client needs to know of the provider and of itself (its `Debug` hides the
/// secret).
#[derive(Clone)]
pub struct OidcSettings {
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
    /// Where the provider sends browsers back: Hangar's callback.
    pub redirect_url: String,
    /// How far the provider's clock may be from Hangar's.
    pub clock_skew: std::time::Duration,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<secret>"),
            )
            .field("scopes", &self.scopes)
            .field("redirect_url", &self.redirect_url)
            .field("clock_skew", &self.clock_skew)
            .finish()
    }
}

/// Who may sign in with a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PasswordSignIn {
    /// Every active account.
    Everyone,
    /// Only the break-glass local admin.
    BreakGlass,
}

/// One entry of --oidc-group-mapping: a groups claim value and the Hangar group it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMapping {
    pub claim: String,
    pub group: String,
}

impl std::str::FromStr for GroupMapping {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text.rsplit_once('=') {
            Some((claim, group)) if !claim.trim().is_empty() && !group.trim().is_empty() => {
                Ok(GroupMapping {
                    claim: claim.trim().to_owned(),
                    group: group.trim().to_owned(),
                })
            }
            _ => Err(format!(
                "`{text}` is not a group mapping: give VALUE=GROUP (the claim's value, then \
                 the Hangar group's name)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VolumeSizes {
    /// An ext4 image of the volume's size on a loop device.
    Loop,
    /// Not enforced.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// One Docker engine.
    Docker,
    /// A Docker Swarm, through its manager.
    Swarm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The configuration `hangar serve ARGS…` would use (`args[0]` is the program name).
    pub fn from_args<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        ServeFlags::parse_from(args).serve
    }

    /// Where Hangar keeps its files on the Docker host (see `--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        let database = self.database_url.as_str();
        match database
            .strip_prefix("sqlite://")
            .or_else(|| database.strip_prefix("sqlite:"))
        {
            Some(file) => {
                let file = file.split('?').next().unwrap_or_default();
                let beside = std::path::Path::new(file)
                    .parent()
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                beside.join("hangar-data")
            }
            None => PathBuf::from("/var/lib/hangar"),
        }
    }

    /// Whether the Docker engine runs on this machine (so that loop devices and iptables
    /// rules made here are the ones its containers see).
    pub fn docker_is_local(&self) -> bool {
        self.docker_host
            .as_deref()
            .is_none_or(|host| host.starts_with("unix://"))
    }

    /// Settings that do not fit together, with what to do about it.
    /// Email settings that cannot work are refused at start, not at the first notification.
    fn check_smtp(&self) -> Result<(), String> {
        if self.smtp_host.is_none() {
            return Ok(());
        }
        if self.smtp_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "--smtp-from `{}` is not an address: give e.g. `Hangar <hangar@example.com>`",
                self.smtp_from
            ));
        }
        if self.smtp_user.is_some() != self.smtp_password.is_some() {
            return Err("--smtp-user and --smtp-password go together: give both or neither".into());
        }
        Ok(())
    }

    pub fn check(&self) -> Result<(), String> {
        if let Some(domain) = &self.apps_domain {
            let valid = !domain.is_empty()
                && !domain.starts_with('.')
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
            if !valid {
                return Err(format!(
                    "--apps-domain `{domain}` is not a domain: give e.g. `apps.example.com` \
                     (without `*.` or a scheme)"
                ));
            }
            if self.hangar_origin().is_none() {
                return Err(
                    "--apps-domain needs --public-url: apps sign in through Hangar's \
                            own origin, which must be known"
                        .into(),
                );
            }
        }
        if let (AppsServed::Domain(domain), Some(own)) = (self.apps(), self.own_host()) {
            if hosts::is_under(&own, &domain) {
                return Err(format!(
                    "Hangar's own address `{own}` is under the apps domain `{domain}`: every \
                     request would go to an app. Give an apps domain beside Hangar's (e.g. \
                     hangar.example.com and apps.example.com)"
                ));
            }
        }
        self.check_smtp()?;
        self.check_oidc()
    }

    /// The OIDC settings, when sign-in through a provider is configured.
    pub fn oidc(&self) -> Option<OidcSettings> {
        let issuer = self.oidc_issuer_url.as_deref()?.trim();
        let client_id = self.oidc_client_id.as_deref()?.trim();
        let public = self.public_url.as_deref()?.trim_end_matches('/');
        Some(OidcSettings {
            issuer_url: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: self
                .oidc_client_secret
                .clone()
                .filter(|secret| !secret.is_empty()),
            scopes: self
                .oidc_scopes
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            redirect_url: format!("{public}{OIDC_CALLBACK_PATH}"),
            clock_skew: std::time::Duration::from_secs(self.oidc_clock_skew_secs),
        })
    }

    /// The local admin who may sign in with a password whatever --password-sign-in says.
    pub fn break_glass_user(&self) -> &str {
        self.break_glass_user.as_deref().unwrap_or(&self.admin_user)
    }

    fn check_oidc(&self) -> Result<(), String> {
        let Some(issuer) = self.oidc_issuer_url.as_deref() else {
            if self.password_sign_in == PasswordSignIn::BreakGlass {
                return Err(
                    "--password-sign-in break-glass needs --oidc-issuer-url: without an \
                            identity provider nobody but the break-glass admin could sign in"
                        .into(),
                );
            }
            return Ok(());
        };
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(format!(
                "--oidc-issuer-url `{issuer}` is not a URL: give the provider's issuer, e.g. \
                 https://login.example.com/realms/company"
            ));
        }
        if self
            .oidc_client_id
            .as_deref()
            .is_none_or(|id| id.trim().is_empty())
        {
            return Err(
                "--oidc-issuer-url needs --oidc-client-id (HANGAR_OIDC_CLIENT_ID): the \
                        client id Hangar was given at the provider"
                    .into(),
            );
        }
        if self.public_url.is_none() {
            return Err(
                "--oidc-issuer-url needs --public-url: the provider sends browsers \
                        back to <public URL>/api/v1/auth/oidc/callback"
                    .into(),
            );
        }
        if let Some(filter) = &self.oidc_group_filter {
            regex::Regex::new(filter).map_err(|e| {
                format!("--oidc-group-filter `{filter}` is not a regular expression: {e}")
            })?;
        }
        if self.oidc_admin_claim.is_some() != self.oidc_admin_value.is_some() {
            return Err(
                "--oidc-admin-claim and --oidc-admin-value go together: give both (e.g. \
                        --oidc-admin-claim groups --oidc-admin-value hangar-admins) or neither"
                    .into(),
            );
        }
        Ok(())
    }

    /// The host and port of `--public-url` (the scheme's port when it names none).
    fn public_authority(&self) -> Option<(String, u16)> {
        let uri: http::Uri = self.public_url.as_deref()?.trim().parse().ok()?;
        let host = uri.host()?.to_ascii_lowercase();
        let https = uri.scheme_str() == Some("https");
        Some((host, uri.port_u16().unwrap_or(if https { 443 } else { 80 })))
    }

    /// The `host[:port]` people reach Hangar at, as far as the configuration says.
    fn own_host(&self) -> Option<String> {
        match &self.public_url {
            Some(url) => url
                .trim()
                .split_once("://")
                .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
                .map(str::to_ascii_lowercase),
            None => Some(self.listen.to_string()),
        }
    }

    /// Whether people reach Hangar on this machine only: no `--public-url` and a loopback
    /// `--listen`, or a `--public-url` on `localhost` or a loopback address.
    pub fn is_local(&self) -> bool {
        match &self.public_url {
            Some(_) => self
                .public_authority()
                .is_some_and(|(host, _)| hosts::is_loopback(&host)),
            None => self.listen.ip().is_loopback(),
        }
    }

    /// Hangar's own origin (`http://127.0.0.1:3000`), where a browser signs in to an app:
    /// `--public-url`, or the listening address when that is this machine's.
    pub fn hangar_origin(&self) -> Option<String> {
        match &self.public_url {
            Some(url) => Some(url.trim().trim_end_matches('/').to_owned()),
            None if self.listen.ip().is_loopback() => Some(format!("http://{}", self.listen)),
            None => None,
        }
    }

    /// How the ports of spaces (and tunnels) are served: on origins of their own under
    /// `--apps-domain`; else by path with `--path-apps true`; else, on a Hangar reached on
    /// this machine only, on origins under `apps.localhost` (which browsers resolve to this
    /// machine by themselves); else not at all.
    pub fn apps(&self) -> AppsServed {
        if let Some(domain) = &self.apps_domain {
            return AppsServed::Domain(domain.clone());
        }
        if self.path_apps {
            return AppsServed::Path;
        }
        if !self.is_local() {
            return AppsServed::Off;
        }
        let port = self
            .public_authority()
            .map_or(self.listen.port(), |(_, port)| port);
        let scheme_port = if self.secure_cookies() { 443 } else { 80 };
        AppsServed::Domain(if port == scheme_port {
            LOCAL_APPS_DOMAIN.to_owned()
        } else {
            format!("{LOCAL_APPS_DOMAIN}:{port}")
        })
    }

    /// Whether cookies must carry `Secure`: Hangar is reached over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }

    /// Whether `ip` is one of the trusted reverse proxies.
    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|proxy| proxy.0.contains(&ip))
    }

    /// What an operator should hear about this configuration at start-up.
    pub fn startup_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.listen.ip().is_loopback() && self.public_url.is_none() {
            warnings.push(format!(
                "Hangar listens on {} without --public-url: session cookies are not marked \
                 Secure (unless a --trusted-proxies proxy forwards HTTPS) and cross-origin \
                 checks trust each request's Host header. Set --public-url (HANGAR_PUBLIC_URL) \
                 to the address people use, e.g. https://hangar.example.com",
                self.listen
            ));
        }
        match self.apps() {
            AppsServed::Path => warnings.push(
                "RISK: apps of spaces are served by path on Hangar's own origin \
                 (--path-apps true). A page served from a space runs with the session of \
                 whoever opens it: whoever can write in a space (a sharee, say) can act as its \
                 owner, an admin included, once the owner opens that page (others get it \
                 sandboxed). Leave --path-apps off: on one machine apps then open at \
                 apps.localhost; for a team give --apps-domain with wildcard DNS"
                    .to_owned(),
            ),
            AppsServed::Off => warnings.push(
                "apps of spaces and public links are off: Hangar is reached from other \
                 machines and has no --apps-domain. To serve them, give --apps-domain \
                 apps.example.com (HANGAR_APPS_DOMAIN) with a wildcard DNS record for \
                 *.apps.example.com pointing at Hangar (and at its reverse proxy and \
                 certificate), beside --public-url"
                    .to_owned(),
            ),
            AppsServed::Domain(_) => {}
        }
        warnings
    }
}

/// The parent of apps' origins on a Hangar reached on this machine only.
pub const LOCAL_APPS_DOMAIN: &str = "apps.localhost";

/// How the ports of spaces (their apps) and tunnels are served ([`Config::apps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppsServed {
    /// Each on an origin of its own under this domain (`name[:port]`): `--apps-domain`, or
    /// `apps.localhost:<port>` on a Hangar reached on this machine only.
    Domain(String),
    /// By path on Hangar's own origin (`--path-apps true`).
    Path,
    /// Not at all.
    Off,
}

impl AppsServed {
    /// The apps domain, when apps have origins of their own.
    pub fn domain(&self) -> Option<&str> {
        match self {
            AppsServed::Domain(domain) => Some(domain),
            _ => None,
        }
    }
}

/// A trusted reverse proxy: an address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(pub ipnet::IpNet);

impl std::str::FromStr for TrustedProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        text.parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(TrustedProxy)
            .map_err(|_| {
                format!("`{text}` is not an address or a CIDR block (such as 10.0.0.0/8 or ::1)")
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["hangar"];
        all.extend_from_slice(args);
        Config::from_args(all)
    }

    #[test]
    fn trusted_proxies_take_addresses_and_blocks() {
        let config = config(&["--trusted-proxies", "10.0.0.0/8, 192.168.1.5,::1"]);
        assert!(config.is_trusted_proxy("10.1.2.3".parse().unwrap()));
        assert!(config.is_trusted_proxy("192.168.1.5".parse().unwrap()));
        assert!(!config.is_trusted_proxy("192.168.1.6".parse().unwrap()));
        assert!(config.is_trusted_proxy("::1".parse().unwrap()));
        assert!(
            ServeFlags::try_parse_from(["hangar", "--trusted-proxies", "10.0.0.0/99"]).is_err()
        );
    }

    #[test]
    fn warns_when_reachable_from_elsewhere_without_a_public_url() {
        assert!(config(&[]).startup_warnings().is_empty());
        let exposed = config(&["--listen", "0.0.0.0:3000"]).startup_warnings();
        assert!(exposed[0].contains("--public-url"), "{exposed:?}");
        let named = config(&[
            "--listen",
            "0.0.0.0:3000",
            "--public-url",
            "https://hangar.example.com",
            "--apps-domain",
            "apps.example.com",
        ]);
        assert!(named.startup_warnings().is_empty());
    }

    #[test]
    fn apps_get_origins_of_their_own_under_localhost_on_one_machine() {
        let local = config(&[]);
        assert!(local.is_local());
        assert_eq!(
            local.apps(),
            AppsServed::Domain("apps.localhost:3000".into())
        );
        assert_eq!(
            local.hangar_origin().as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(local.public_url, None, "no public URL is made up");
        assert!(local.check().is_ok());
        // The port people use, when a public URL on this machine names it.
        let mapped = config(&["--public-url", "http://localhost:8080/"]);
        assert_eq!(
            mapped.apps(),
            AppsServed::Domain("apps.localhost:8080".into())
        );
        assert_eq!(
            mapped.hangar_origin().as_deref(),
            Some("http://localhost:8080")
        );
        let v6 = config(&["--listen", "[::1]:4000"]);
        assert_eq!(v6.hangar_origin().as_deref(), Some("http://[::1]:4000"));
        assert_eq!(v6.apps(), AppsServed::Domain("apps.localhost:4000".into()));
        assert_eq!(
            config(&["--public-url", "http://127.0.0.1"]).apps(),
            AppsServed::Domain("apps.localhost".into())
        );
    }

    #[test]
    fn apps_by_path_only_when_asked_for_and_said_to_be_risky() {
        let path = config(&["--path-apps", "true"]);
        assert_eq!(path.apps(), AppsServed::Path);
        let warned = path.startup_warnings();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("RISK") && warned[0].contains("--path-apps"));
        // An apps domain wins.
        let both = config(&["--path-apps", "true", "--apps-domain", "apps.test"]);
        assert_eq!(both.apps(), AppsServed::Domain("apps.test".into()));
        assert!(both.check().is_ok(), "local: Hangar's origin is known");
    }

    #[test]
    fn apps_are_off_when_reached_from_elsewhere_without_an_apps_domain() {
        for args in [
            &["--listen", "0.0.0.0:3000"][..],
            &["--public-url", "https://hangar.example.com"][..],
            &[
                "--listen",
                "127.0.0.1:3000",
                "--public-url",
                "https://hangar.example.com",
            ][..],
        ] {
            let remote = config(args);
            assert!(!remote.is_local(), "{args:?}");
            assert_eq!(remote.apps(), AppsServed::Off, "{args:?}");
            let warned = remote.startup_warnings();
            assert!(
                warned
                    .iter()
                    .any(|w| w.contains("apps of spaces and public links are off")
                        && w.contains("--apps-domain")),
                "{warned:?}"
            );
        }
        // An apps domain needs Hangar's own origin when it cannot be derived.
        let unknown = config(&[
            "--listen",
            "0.0.0.0:3000",
            "--apps-domain",
            "apps.example.com",
        ]);
        assert!(unknown.check().unwrap_err().contains("--public-url"));
        // Hangar's own host under the apps domain would never reach Hangar.
        let inside = config(&[
            "--public-url",
            "https://hangar.apps.example.com",
            "--apps-domain",
            "apps.example.com",
        ]);
        assert!(inside
            .check()
            .unwrap_err()
            .contains("under the apps domain"));
    }

    #[test]
    fn the_data_dir_is_beside_a_sqlite_file_and_fixed_for_postgres() {
        let at = |url: &str| config(&["--database-url", url]).data_dir();
        assert_eq!(
            at("sqlite:///srv/h/hangar.db"),
            PathBuf::from("/srv/h/hangar-data")
        );
        assert_eq!(
            at("sqlite:///srv/h/h.db?mode=rwc"),
            PathBuf::from("/srv/h/hangar-data")
        );
        assert_eq!(at("sqlite://hangar.db"), PathBuf::from("./hangar-data"));
        assert_eq!(at("postgres://db/hangar"), PathBuf::from("/var/lib/hangar"));
        let chosen = config(&["--data-dir", "/data", "--database-url", "sqlite://x.db"]);
        assert_eq!(chosen.data_dir(), PathBuf::from("/data"));
    }

    #[test]
    fn only_a_unix_socket_is_a_local_engine() {
        assert!(config(&["--docker-host", "unix:///var/run/docker.sock"]).docker_is_local());
        assert!(!config(&["--docker-host", "tcp://10.0.0.2:2375"]).docker_is_local());
    }

    #[test]
    fn the_hardening_defaults() {
        let defaults = config(&[]);
        assert_eq!(defaults.pids_per_cu, 1024);
        assert_eq!(defaults.volume_sizes, VolumeSizes::Loop);
        assert!(!defaults.allow_host_access);
        assert!(config(&["--allow-host-access"]).allow_host_access);
        assert!(ServeFlags::try_parse_from(["hangar", "--pids-per-cu", "3"]).is_err());
    }

    #[test]
    fn an_identity_provider_needs_its_client_and_the_public_url() {
        let issuer = ["--oidc-issuer-url", "https://id.example.com"];
        let no_client = config(&issuer).check().unwrap_err();
        assert!(no_client.contains("--oidc-client-id"), "{no_client}");
        let mut args = issuer.to_vec();
        args.extend(["--oidc-client-id", "hangar"]);
        let no_public = config(&args).check().unwrap_err();
        assert!(no_public.contains("--public-url"), "{no_public}");
        args.extend(["--public-url", "https://hangar.example.com/"]);
        assert_eq!(config(&args).check(), Ok(()));
        let settings = config(&args).oidc().unwrap();
        assert_eq!(
            settings.redirect_url,
            "https://hangar.example.com/api/v1/auth/oidc/callback"
        );
        let lonely = config(&["--password-sign-in", "break-glass"])
            .check()
            .unwrap_err();
        assert!(lonely.contains("--oidc-issuer-url"), "{lonely}");
        assert_eq!(config(&[]).break_glass_user(), "admin");
    }

    #[test]
    fn email_settings_that_cannot_work_are_refused_at_start() {
        let host = ["--smtp-host", "mail.example.com"];
        assert_eq!(config(&host).check(), Ok(()));
        let mut bad_from = host.to_vec();
        bad_from.extend(["--smtp-from", "not an address"]);
        assert!(config(&bad_from)
            .check()
            .unwrap_err()
            .contains("--smtp-from"));
        let mut lonely_user = host.to_vec();
        lonely_user.extend(["--smtp-user", "hangar"]);
        assert!(config(&lonely_user)
            .check()
            .unwrap_err()
            .contains("--smtp-password"));
        // Without a host, nothing is sent: nothing to check.
        assert_eq!(config(&["--smtp-from", "not an address"]).check(), Ok(()));
    }

    #[test]
    fn group_mappings_split_at_the_last_equals_sign() {
        let mapped = config(&[
            "--oidc-group-mapping",
            "cn=devs,ou=groups=developers;admins = operators",
        ]);
        assert_eq!(
            mapped.oidc_group_mapping,
            [
                GroupMapping {
                    claim: "cn=devs,ou=groups".into(),
                    group: "developers".into()
                },
                GroupMapping {
                    claim: "admins".into(),
                    group: "operators".into()
                },
            ]
        );
        assert!(ServeFlags::try_parse_from(["hangar", "--oidc-group-mapping", "devs"]).is_err());
    }

    #[test]
    fn the_runtime_is_docker_unless_swarm_is_asked_for() {
        assert_eq!(config(&[]).runtime, RuntimeKind::Docker);
        assert_eq!(config(&["--runtime", "swarm"]).runtime, RuntimeKind::Swarm);
        assert!(ServeFlags::try_parse_from(["hangar", "--runtime", "kubernetes"]).is_err());
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

/// An address to listen on, or `none` for a listener that is turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("none") {
            return Ok(Listen(None));
        }
        text.parse().map(|addr| Listen(Some(addr))).map_err(|_| {
            format!("`{text}` is not an address to listen on: give IP:PORT (e.g. 127.0.0.1:2222), or `none`")
        })
    }
}
