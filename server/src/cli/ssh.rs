//! `hangar ssh` (through the SSH gateway, or over the web terminal's WebSocket when there is
//! none) and `hangar ssh-config`.

use std::io::IsTerminal;
use std::path::PathBuf;

use app::api::spaces::SpaceDto;
use app::api::ssh::SshConfigDto;
use app::protocol::{TerminalControl, TerminalNotice};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::client::Client;
use super::spaces::find_space;
use super::websocket::open_websocket;
use super::CliError;

#[derive(Debug, Args)]
pub struct SshArgs {
    /// The space: its name, `owner/name` for one shared with you, or its id.
    pub space: String,
    /// A command to run instead of a login shell (after `--` when it has options).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A private key for ssh (`ssh -i`).
    #[arg(long, short = 'i')]
    pub identity: Option<PathBuf>,
    /// An option for ssh (`ssh -o Name=value`); may be repeated.
    #[arg(long = "option", short = 'o')]
    pub options: Vec<String>,
}

/// `hangar ssh-config`: `Host` blocks for `~/.ssh/config`.
pub async fn ssh_config(client: &Client) -> Result<(), CliError> {
    let config: SshConfigDto = client.get("/api/v1/me/ssh-config").await?;
    outln!("{}", config.text.trim_end());
    Ok(())
}

/// `hangar ssh`: runs OpenSSH's `ssh` against the gateway as the space's login, or opens the
/// web terminal's shell here when the gateway is off.
pub async fn ssh(client: &Client, args: SshArgs) -> Result<(), CliError> {
    let space = find_space(client, &args.space).await?;
    let config: SshConfigDto = client.get("/api/v1/me/ssh-config").await?;
    if !config.enabled {
        if !args.command.is_empty() {
            return Err(CliError::failed(
                "this Hangar has no SSH gateway (--ssh-listen none), and running a command \
                 needs it: run `hangar ssh` without one for a shell, or ask an admin to turn \
                 the gateway on",
            ));
        }
        return terminal_shell(client, &space).await;
    }
    let host = config
        .hosts
        .iter()
        .find(|h| h.space_id == space.id)
        .ok_or_else(|| {
            CliError::failed(format!(
                "space `{}` offers no SSH (its template lacks the ssh feature): use `hangar ssh` \
                 on another space, or the web terminal",
                args.space
            ))
        })?;
    let mut command = std::process::Command::new("ssh");
    command.arg("-p").arg(config.port.to_string());
    if let Some(identity) = &args.identity {
        command.arg("-i").arg(identity);
    }
    for option in &args.options {
        command.arg("-o").arg(option);
    }
    command.arg(format!("{}@{}", host.user, config.host));
    if !args.command.is_empty() {
        command.arg("--").args(&args.command);
    }
    // ssh takes over this process: its terminal, its signals and its exit status.
    use std::os::unix::process::CommandExt;
    let error = command.exec();
    Err(CliError::usage(format!(
        "cannot run ssh ({error}): install the OpenSSH client (Debian: apt install openssh-client)"
    )))
}

/// Puts the local terminal in raw mode while it lives (keys go to the space as typed).
struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    fn enable() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// The local terminal's size (cols, rows), 80×24 when it is not a terminal.
fn terminal_size() -> (u16, u16) {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .filter(|size| size.ws_col > 0 && size.ws_row > 0)
        .map_or((80, 24), |size| (size.ws_col, size.ws_row))
}

/// A shell in the space over the web terminal's WebSocket, until it exits (its exit code is
/// this command's).
async fn terminal_shell(client: &Client, space: &SpaceDto) -> Result<(), CliError> {
    let (cols, rows) = terminal_size();
    let path = format!(
        "/api/v1/spaces/{}/terminal?session={}&cols={cols}&rows={rows}",
        space.id,
        uuid::Uuid::new_v4()
    );
    let socket = open_websocket(client, &path).await?;
    let (mut to_server, mut from_server) = socket.split();
    let raw = RawMode::enable();
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let mut resized =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut input = vec![0u8; 16 * 1024];
    let mut input_open = true;
    let outcome = loop {
        tokio::select! {
            read = stdin.read(&mut input), if input_open => match read {
                Ok(0) | Err(_) => input_open = false,
                Ok(n) => {
                    let frame = Message::Binary(bytes::Bytes::copy_from_slice(&input[..n]));
                    if to_server.send(frame).await.is_err() {
                        break Err(CliError::unreachable("the connection to Hangar was lost"));
                    }
                }
            },
            Some(()) = async { match resized.as_mut() { Some(s) => s.recv().await, None => None } } => {
                let (cols, rows) = terminal_size();
                if let Ok(text) = serde_json::to_string(&TerminalControl::Resize { cols, rows }) {
                    let _ = to_server.send(Message::Text(text.into())).await;
                }
            }
            message = from_server.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    if stdout.write_all(&data).await.is_err() || stdout.flush().await.is_err() {
                        break Ok(0);
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<TerminalNotice>(&text) {
                    Ok(TerminalNotice::Exit { code }) => break Ok(code),
                    Ok(TerminalNotice::Error { message }) => break Err(CliError::failed(message)),
                    // On its own line, the terminal being raw.
                    Ok(TerminalNotice::Notice { message }) => eprint!("\r\n{message}\r\n"),
                    Err(_) => {}
                },
                Some(Ok(Message::Close(_))) | None => break Ok(0),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(CliError::unreachable(format!("the connection to Hangar was lost: {e}"))),
            },
        }
    };
    drop(raw);
    match outcome {
        Ok(0) => Ok(()),
        Ok(code) => std::process::exit(i32::try_from(code).unwrap_or(1)),
        Err(e) => Err(e),
    }
}
