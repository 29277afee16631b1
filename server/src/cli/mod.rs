//! The `hangar` command line for developers: a client of the JSON API in the same binary
//! (`hangar login`, `hangar spaces`, `hangar start api`, …). What it learns at sign-in is kept
//! by [`profile`]; every failure is the server's own message and an exit code of its kind.
//! The account, spaces, templates and quota are `spaces`; the ways into a space are `ssh`,
//! `port_forward` and `cp`, the first two over the WebSockets `websocket` opens.

/// `println!` that ends quietly when stdout is a closed pipe (`hangar spaces | head -1`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod autostop;
mod browser_login;
pub mod client;
mod command;
mod cp;
mod port_forward;
pub mod profile;
mod spaces;
mod ssh;
mod unpack;
mod websocket;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Subcommand};

use self::client::Client;
use self::profile::Profile;

pub use command::{Cli, Command};

/// How a command ended, for scripts (`hangar --help` lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The server refused (invalid input, quota, wrong state, conflict, rate limit).
    Failed = 1,
    /// The command was used wrongly, or the local configuration is unusable.
    Usage = 2,
    /// Not signed in, or not allowed.
    SignedOut = 3,
    /// No such space, template or other thing (or not visible to you).
    NotFound = 4,
    /// The server cannot be reached or is not working.
    Unreachable = 5,
}

/// What went wrong, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub exit: Exit,
}

impl CliError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Exit::Failed, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }
    pub fn signed_out(message: impl Into<String>) -> Self {
        Self::new(Exit::SignedOut, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Exit::NotFound, message)
    }
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(Exit::Unreachable, message)
    }
    fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit,
        }
    }
}

pub const EXIT_CODES: &str = "Exit codes: 0 done; 1 the server refused (invalid input, quota, \
state, conflict); 2 wrong usage or unusable local configuration; 3 not signed in or not \
allowed; 4 no such space or template; 5 the server cannot be reached or is failing.";

/// The developer commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Sign in to a Hangar and keep a personal API token in ~/.config/hangar/config.toml
    /// (through the browser where Hangar signs people in through an identity provider).
    Login(spaces::LoginArgs),
    /// Revoke the saved token and forget it.
    Logout,
    /// List your spaces and those shared with you.
    Spaces {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a space from a template.
    Create {
        /// The space's name (lowercase letters, digits and '-').
        name: String,
        /// The template's name (see `hangar templates`).
        #[arg(long, short)]
        template: String,
        /// A repository to clone into it at its first start (https://, ssh:// or
        /// user@host:path).
        #[arg(long)]
        repo: Option<String>,
        /// The repository's branch (default: its default branch).
        #[arg(long, requires = "repo")]
        branch: Option<String>,
        /// The folder to clone into, relative to the home (default: the repository's name).
        #[arg(long, requires = "repo")]
        folder: Option<String>,
    },
    /// List the templates you may create spaces from.
    Templates,
    /// Start a space and wait until it runs.
    Start(spaces::TransitionArgs),
    /// Stop a space and wait until it stopped (its volumes stay).
    Stop(spaces::TransitionArgs),
    /// Restart a space and wait until it runs again.
    Restart(spaces::TransitionArgs),
    /// Delete a space and its volumes (stopping it first if it runs).
    Delete(spaces::TransitionArgs),
    /// Your quota and what you use of it.
    Quota,
    /// Open a shell in a space, or run a command there (through Hangar's SSH gateway, or its
    /// web terminal when the gateway is off): `hangar ssh api`, `hangar ssh api -- make test`.
    Ssh(ssh::SshArgs),
    /// Print `~/.ssh/config` blocks for your spaces (then `ssh hangar-<space>`, scp, rsync…).
    SshConfig,
    /// Forward local ports to ports inside a space: `hangar port-forward api 8080:80 5432`.
    PortForward(port_forward::ForwardArgs),
    /// Copy a file or directory into or out of a space: `hangar cp ./src api:/root/`,
    /// `hangar cp api:/root/out.log .`.
    Cp(cp::CopyArgs),
    /// Keep a running space from its idle stop, now or for a while (for unattended jobs):
    /// `hangar keepalive api --for 2h`.
    Keepalive(autostop::KeepaliveArgs),
    /// Show or change a space's weekly schedule and automatic stops:
    /// `hangar schedule api --set "mon-fri 08:00-18:00"`.
    Schedule(autostop::ScheduleArgs),
    /// Print a shell completion script: `hangar completion bash > ~/.local/share/bash-completion/completions/hangar`.
    Completion {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Runs a developer command and turns its outcome into an exit code and a message on stderr.
pub async fn run(command: ClientCommand) -> ExitCode {
    match dispatch(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hangar: {}", e.message);
            ExitCode::from(e.exit as u8)
        }
    }
}

/// The command run: signing in and out and completions need no saved profile; every other
/// command is signed with it.
async fn dispatch(command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Login(args) => spaces::login(args).await,
        ClientCommand::Logout => spaces::logout().await,
        ClientCommand::Completion { shell } => {
            let mut cli = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cli, "hangar", &mut script);
            let _ = std::io::stdout().write_all(&script);
            Ok(())
        }
        other => {
            let profile = Profile::load()?;
            let client = Client::new(&profile.url, Some(profile.token.clone()))?;
            match other {
                ClientCommand::Spaces { json } => spaces::list_spaces(&client, json).await,
                ClientCommand::Create {
                    name,
                    template,
                    repo,
                    branch,
                    folder,
                } => {
                    let repository = repo.map(|url| app::api::repos::RepositoryInput {
                        url,
                        branch,
                        folder,
                    });
                    spaces::create(&client, name, &template, repository).await
                }
                ClientCommand::Templates => spaces::templates(&client).await,
                ClientCommand::Start(args) => spaces::transition(&client, "start", args).await,
                ClientCommand::Stop(args) => spaces::transition(&client, "stop", args).await,
                ClientCommand::Restart(args) => spaces::transition(&client, "restart", args).await,
                ClientCommand::Delete(args) => spaces::delete(&client, args).await,
                ClientCommand::Quota => spaces::quota(&client).await,
                ClientCommand::Ssh(args) => ssh::ssh(&client, args).await,
                ClientCommand::SshConfig => ssh::ssh_config(&client).await,
                ClientCommand::PortForward(args) => port_forward::port_forward(&client, args).await,
                ClientCommand::Cp(args) => cp::copy(&client, args).await,
                ClientCommand::Keepalive(args) => autostop::keepalive(&client, args).await,
                ClientCommand::Schedule(args) => autostop::schedule(&client, args).await,
                ClientCommand::Login(_)
                | ClientCommand::Logout
                | ClientCommand::Completion { .. } => Ok(()),
            }
        }
    }
}
