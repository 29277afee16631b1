//! The ways into a space from a developer's own terminal: `hangar ssh` (through the SSH
//! gateway, or over the web terminal's WebSocket when there is none), `hangar ssh-config`,
//! `hangar port-forward` (local ports to ports in a space, over WebSockets) and `hangar cp`
//! (through the file API), all signed with the saved token.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use app::api::spaces::SpaceDto;
use app::api::ssh::SshConfigDto;
use app::error::ErrorBody;
use app::protocol::{TerminalControl, TerminalNotice};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::client::Client;
use super::spaces::find_space;
use super::CliError;
use crate::services::files::archive;

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

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The space: its name, `owner/name` for one shared with you, or its id.
    pub space: String,
    /// `LOCAL:REMOTE` (or one port for both); 0 as the local port picks a free one.
    #[arg(required = true)]
    pub ports: Vec<String>,
    /// The local address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// What to copy: a local path, or `SPACE:/absolute/path` in a space.
    pub source: String,
    /// Where to: a local path, or `SPACE:/absolute/path` (a directory there keeps the name).
    pub target: String,
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

/// The WebSocket URL of an API path of the Hangar at `base`.
fn websocket_url(base: &str, path: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| base.to_owned());
    format!("{rest}{path}")
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket of the API signed with the client's token; a refusal is the server's
/// own message.
async fn open_websocket(client: &Client, path: &str) -> Result<Socket, CliError> {
    let mut request = websocket_url(client.base(), path)
        .into_client_request()
        .map_err(|e| CliError::usage(format!("cannot make the WebSocket request: {e}")))?;
    if let Some(token) = client.token() {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::usage("the saved token is not valid: sign in again"))?;
        request.headers_mut().insert("authorization", value);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = StatusCode::from_u16(response.status().as_u16())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice::<ErrorBody>(body).ok())
                .map_or_else(
                    || format!("Hangar refused the connection ({status})"),
                    |body| body.error.message,
                );
            Err(CliError::from_status(status, message))
        }
        Err(e) => Err(CliError::unreachable(format!(
            "cannot reach Hangar at {}: {e}",
            client.base()
        ))),
    }
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

/// `LOCAL:REMOTE` or `PORT`.
fn port_pair(text: &str) -> Result<(u16, u16), CliError> {
    let bad = || {
        CliError::usage(format!(
            "`{text}` is not a port mapping: give LOCAL:REMOTE (e.g. 8080:80) or one port"
        ))
    };
    let (local, remote) = text.split_once(':').unwrap_or((text, text));
    let local: u16 = local.parse().map_err(|_| bad())?;
    let remote: u16 = remote.parse().map_err(|_| bad())?;
    if remote == 0 {
        return Err(bad());
    }
    Ok((local, remote))
}

/// `hangar port-forward`: listens on local ports and carries each connection to the space's
/// port over its own WebSocket, until interrupted.
pub async fn port_forward(client: &Client, args: ForwardArgs) -> Result<(), CliError> {
    let space = find_space(client, &args.space).await?;
    let pairs = args
        .ports
        .iter()
        .map(|p| port_pair(p))
        .collect::<Result<Vec<_>, _>>()?;
    // One WebSocket first: a refusal (permission, stopped space) is said now, not at the
    // first connection.
    let (_, first_remote) = pairs[0];
    open_websocket(
        client,
        &format!("/api/v1/spaces/{}/ports/{first_remote}/tcp", space.id),
    )
    .await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (local, remote) in pairs {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.address, local))
            .await
            .map_err(|e| {
                CliError::usage(format!(
                    "cannot listen on {}:{local} ({e}): choose another local port",
                    args.address
                ))
            })?;
        let bound = listener
            .local_addr()
            .map_err(|e| CliError::usage(format!("cannot read the local address: {e}")))?;
        outln!("Forwarding {bound} -> {}:{remote}", args.space);
        let client = client.clone();
        let path = format!("/api/v1/spaces/{}/ports/{remote}/tcp", space.id);
        tasks.spawn(async move {
            loop {
                let Ok((connection, _)) = listener.accept().await else {
                    continue;
                };
                let (client, path) = (client.clone(), path.clone());
                tokio::spawn(async move {
                    match open_websocket(&client, &path).await {
                        Ok(socket) => carry(connection, socket).await,
                        Err(e) => eprintln!("hangar: {}", e.message),
                    }
                });
            }
        });
    }
    let _ = tokio::signal::ctrl_c().await;
    tasks.shutdown().await;
    Ok(())
}

/// Copies a local connection to a WebSocket and back until either side ends.
async fn carry(connection: tokio::net::TcpStream, socket: Socket) {
    let _ = connection.set_nodelay(true);
    let (mut from_local, mut to_local) = connection.into_split();
    let (mut to_server, mut from_server) = socket.split();
    let up = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from_local.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Message::Binary(bytes::Bytes::copy_from_slice(&buffer[..n]));
                    if to_server.send(frame).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_server.send(Message::Close(None)).await;
    };
    let down = async {
        while let Some(Ok(message)) = from_server.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => break,
                _ => continue,
            };
            if to_local.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = to_local.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// One side of `hangar cp`.
enum Place {
    Local(PathBuf),
    Remote { space: String, path: String },
}

fn place(text: &str) -> Place {
    // `api:/root/x` and `ann/api:/root/x` are in a space; `./a:/b` and `a:b` are local.
    let names_a_space = |space: &str| {
        let mut parts = space.split('/');
        let name = |p: Option<&str>| {
            p.is_some_and(|p| {
                !p.is_empty()
                    && !p.starts_with('.')
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            })
        };
        let first = parts.next();
        let second = parts.next();
        parts.next().is_none() && name(first) && (second.is_none() || name(second))
    };
    match text.split_once(':') {
        Some((space, path)) if names_a_space(space) && path.starts_with('/') => Place::Remote {
            space: space.to_owned(),
            path: path.to_owned(),
        },
        _ => Place::Local(PathBuf::from(text)),
    }
}

fn files_path(space: &SpaceDto, path: &str, extra: &str) -> String {
    let mut query = url_encode(path);
    if !extra.is_empty() {
        query.push('&');
        query.push_str(extra);
    }
    format!("/api/v1/spaces/{}/files?path={query}", space.id)
}

/// Percent-encodes a query value.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn last_name(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

/// `hangar cp`: a file or a directory, into a space or out of one.
pub async fn copy(client: &Client, args: CopyArgs) -> Result<(), CliError> {
    match (place(&args.source), place(&args.target)) {
        (Place::Local(from), Place::Remote { space, path }) => {
            let space = find_space(client, &space).await?;
            upload(client, &space, &from, &path).await
        }
        (Place::Remote { space, path }, Place::Local(to)) => {
            let space = find_space(client, &space).await?;
            download(client, &space, &path, &to).await
        }
        (Place::Local(_), Place::Local(_)) => Err(CliError::usage(
            "one side must be in a space, as SPACE:/absolute/path (e.g. api:/root/notes.txt)",
        )),
        (Place::Remote { .. }, Place::Remote { .. }) => Err(CliError::usage(
            "copy between spaces through your machine: download, then upload",
        )),
    }
}

/// Whether `path` in the space is a directory (false when it is a file or is missing).
async fn remote_is_dir(client: &Client, space: &SpaceDto, path: &str) -> Result<bool, CliError> {
    let response = client
        .request(Method::GET, &files_path(space, path, "list"))
        .send()
        .await
        .map_err(|e| CliError::unreachable(format!("cannot reach Hangar: {e}")))?;
    match response.status() {
        s if s.is_success() => Ok(true),
        // Not a directory, or nothing there: both mean "not a directory".
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => {
            let text = response.text().await.unwrap_or_default();
            match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) if body.error.field.as_deref() == Some("path") => Ok(false),
                // A 404 of the space itself (not the path) names no field.
                Ok(body) => Err(CliError::from_status(
                    StatusCode::NOT_FOUND,
                    body.error.message,
                )),
                Err(_) => Ok(false),
            }
        }
        _ => Err(super::client::error_of(response).await),
    }
}

async fn upload(client: &Client, space: &SpaceDto, from: &Path, to: &str) -> Result<(), CliError> {
    let meta = tokio::fs::metadata(from)
        .await
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", from.display())))?;
    let name = from
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let into_dir = to.ends_with('/') || remote_is_dir(client, space, to).await?;
    if meta.is_dir() {
        // The directory arrives as `to/<name>` when `to` is a directory, else as `to`.
        let (dir, top) = if into_dir {
            (to.trim_end_matches('/').to_owned(), name)
        } else {
            let (parent, top) = to
                .trim_end_matches('/')
                .rsplit_once('/')
                .unwrap_or(("", to));
            (parent.to_owned(), top.to_owned())
        };
        let dir = if dir.is_empty() { "/".to_owned() } else { dir };
        let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
        let root = from.to_path_buf();
        let writer = tokio::spawn(async move { write_tar(&root, &top, &sender).await });
        let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        ));
        let sent = client
            .request(Method::POST, &files_path(space, &dir, "create"))
            .header("content-type", "application/x-tar")
            .body(body)
            .send()
            .await;
        let written = writer.await.unwrap_or(Ok(0));
        let response =
            sent.map_err(|e| CliError::unreachable(format!("the upload failed: {e}")))?;
        if !response.status().is_success() {
            return Err(super::client::error_of(response).await);
        }
        let bytes =
            written.map_err(|e| CliError::usage(format!("cannot read {}: {e}", from.display())))?;
        outln!(
            "{} -> {}:{dir} ({bytes} bytes of files)",
            from.display(),
            space.name
        );
        return Ok(());
    }
    let target = if into_dir {
        format!("{}/{name}", to.trim_end_matches('/'))
    } else {
        to.to_owned()
    };
    let file = tokio::fs::File::open(from)
        .await
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", from.display())))?;
    let response = client
        .request(Method::PUT, &files_path(space, &target, ""))
        .header("content-length", meta.len())
        .body(reqwest::Body::from(file))
        .send()
        .await
        .map_err(|e| CliError::unreachable(format!("the upload failed: {e}")))?;
    if !response.status().is_success() {
        return Err(super::client::error_of(response).await);
    }
    outln!(
        "{} -> {}:{target} ({} bytes)",
        from.display(),
        space.name,
        meta.len()
    );
    Ok(())
}

/// Writes a tar of the local directory `root`, its entries under `top/`, into `sender`; the
/// bytes of files written.
async fn write_tar(
    root: &Path,
    top: &str,
    sender: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) -> std::io::Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    let send = |chunk: bytes::Bytes| async move {
        sender
            .send(Ok(chunk))
            .await
            .map_err(|_| std::io::Error::other("the upload ended"))
    };
    let mut total = 0;
    let mut pending = vec![(root.to_path_buf(), top.to_owned())];
    while let Some((dir, name)) = pending.pop() {
        let meta = tokio::fs::metadata(&dir).await?;
        let mode = meta.permissions().mode() & 0o7777;
        send(archive::header(
            &name,
            &archive::EntryKind::Dir,
            0,
            mode,
            mtime(&meta),
        ))
        .await?;
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            let child = format!("{name}/{}", entry.file_name().to_string_lossy());
            let meta = tokio::fs::symlink_metadata(&path).await?;
            if meta.is_dir() {
                pending.push((path, child));
            } else if meta.is_file() {
                let mode = meta.permissions().mode() & 0o7777;
                send(archive::header(
                    &child,
                    &archive::EntryKind::File,
                    meta.len(),
                    mode,
                    mtime(&meta),
                ))
                .await?;
                let mut file = tokio::fs::File::open(&path).await?;
                let mut left = meta.len();
                let mut buffer = vec![0u8; 64 * 1024];
                while left > 0 {
                    let want =
                        usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
                    let n = file.read(&mut buffer[..want]).await?;
                    if n == 0 {
                        return Err(std::io::Error::other(format!(
                            "{} shrank while it was being sent",
                            path.display()
                        )));
                    }
                    send(bytes::Bytes::copy_from_slice(&buffer[..n])).await?;
                    left -= n as u64;
                }
                send(archive::padding(meta.len())).await?;
                total += meta.len();
            } else if meta.file_type().is_symlink() {
                let target = tokio::fs::read_link(&path).await?;
                let kind = archive::EntryKind::Symlink(target.to_string_lossy().into_owned());
                send(archive::header(&child, &kind, 0, 0o777, mtime(&meta))).await?;
            }
            // Devices, FIFOs and sockets are not copied.
        }
    }
    send(bytes::Bytes::from_static(&archive::END_OF_ARCHIVE)).await?;
    Ok(total)
}

fn mtime(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

async fn download(
    client: &Client,
    space: &SpaceDto,
    from: &str,
    to: &Path,
) -> Result<(), CliError> {
    let is_dir = remote_is_dir(client, space, from).await?;
    let local_dir = tokio::fs::metadata(to).await.is_ok_and(|m| m.is_dir());
    let name = last_name(from);
    if is_dir {
        // Into `to/<name>` when `to` is a directory, else into `to` itself.
        let (parent, top) = if local_dir {
            (to.to_path_buf(), name.to_owned())
        } else {
            let parent = to.parent().map(Path::to_path_buf).unwrap_or_default();
            let top = to
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (parent, top)
        };
        let response = client
            .request(Method::GET, &files_path(space, from, "format=tar"))
            .send()
            .await
            .map_err(|e| CliError::unreachable(format!("the download failed: {e}")))?;
        if !response.status().is_success() {
            return Err(super::client::error_of(response).await);
        }
        let stream = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed();
        let bytes = extract(stream, &parent, name, &top).await?;
        outln!(
            "{}:{from} -> {} ({bytes} bytes of files)",
            space.name,
            parent.join(&top).display()
        );
        return Ok(());
    }
    let target = if local_dir {
        to.join(name)
    } else {
        to.to_path_buf()
    };
    let response = client
        .request(Method::GET, &files_path(space, from, ""))
        .send()
        .await
        .map_err(|e| CliError::unreachable(format!("the download failed: {e}")))?;
    if !response.status().is_success() {
        return Err(super::client::error_of(response).await);
    }
    // Whole or nothing: written beside the target, moved into place once complete.
    let partial = partial_name(&target);
    let written = save(response, &partial).await;
    match written {
        Ok(bytes) => {
            tokio::fs::rename(&partial, &target)
                .await
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", target.display())))?;
            outln!(
                "{}:{from} -> {} ({bytes} bytes)",
                space.name,
                target.display()
            );
            Ok(())
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e)
        }
    }
}

fn partial_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.hangar-partial"))
}

async fn save(response: reqwest::Response, path: &Path) -> Result<u64, CliError> {
    let cannot =
        |e: std::io::Error| CliError::usage(format!("cannot write {}: {e}", path.display()));
    let mut file = tokio::fs::File::create(path).await.map_err(cannot)?;
    let mut stream = response.bytes_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| CliError::unreachable(format!("the download was cut: {e}")))?;
        file.write_all(&chunk).await.map_err(cannot)?;
        total += chunk.len() as u64;
    }
    file.flush().await.map_err(cannot)?;
    Ok(total)
}

/// Unpacks a tar whose entries sit under `name/` into `parent/top/`, with the checks the
/// server applies to uploads (no absolute names, no `..`, no links out); the file bytes.
async fn extract(
    stream: crate::runtime::UploadStream,
    parent: &Path,
    name: &str,
    top: &str,
) -> Result<u64, CliError> {
    let mut input = archive::Input::new(stream);
    let mut checker = archive::Checker::new(1_000_000);
    let mut total = 0u64;
    let bad = |e: String| CliError::failed(format!("the archive from the space was refused: {e}"));
    while let Some(entry) = archive::next_entry(&mut input)
        .await
        .map_err(|e| bad(e.to_string()))?
    {
        let size = entry.size;
        let Some(entry) = checker.check(entry).map_err(bad)? else {
            input
                .skip(size + archive::padding_of(size) as u64)
                .await
                .map_err(|e| bad(e.to_string()))?;
            continue;
        };
        let relative = entry
            .path
            .strip_prefix(name)
            .map(|rest| rest.trim_start_matches('/'))
            .ok_or_else(|| bad(format!("{} is outside {name}", entry.path)))?;
        let local = if relative.is_empty() {
            parent.join(top)
        } else {
            parent.join(top).join(relative)
        };
        let cannot =
            |e: std::io::Error| CliError::usage(format!("cannot write {}: {e}", local.display()));
        match &entry.kind {
            archive::EntryKind::Dir => tokio::fs::create_dir_all(&local).await.map_err(cannot)?,
            archive::EntryKind::File => {
                if let Some(dir) = local.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(cannot)?;
                }
                let mut file = tokio::fs::File::create(&local).await.map_err(cannot)?;
                let mut left = entry.size;
                while left > 0 {
                    let max = usize::try_from(left.min(64 * 1024)).unwrap_or(64 * 1024);
                    let Some(chunk) = input.chunk(max).await.map_err(|e| bad(e.to_string()))?
                    else {
                        return Err(bad("it ended inside a file".into()));
                    };
                    file.write_all(&chunk).await.map_err(cannot)?;
                    left -= chunk.len() as u64;
                }
                file.flush().await.map_err(cannot)?;
                input
                    .skip(archive::padding_of(entry.size) as u64)
                    .await
                    .map_err(|e| bad(e.to_string()))?;
                total += entry.size;
            }
            archive::EntryKind::Symlink(target) => {
                let _ = tokio::fs::remove_file(&local).await;
                tokio::fs::symlink(target, &local).await.map_err(cannot)?;
            }
            // The checker let through only links to files earlier in the archive.
            archive::EntryKind::HardLink(earlier) => {
                let earlier = earlier
                    .strip_prefix(name)
                    .map(|rest| parent.join(top).join(rest.trim_start_matches('/')))
                    .ok_or_else(|| bad(format!("{earlier} is outside {name}")))?;
                let _ = tokio::fs::remove_file(&local).await;
                tokio::fs::hard_link(&earlier, &local)
                    .await
                    .map_err(cannot)?;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn places_in_spaces_are_named_with_a_colon_and_an_absolute_path() {
        assert!(
            matches!(place("api:/root/a"), Place::Remote { ref space, ref path } if space == "api" && path == "/root/a")
        );
        assert!(
            matches!(place("ann/api:/root"), Place::Remote { ref space, .. } if space == "ann/api")
        );
        assert!(matches!(place("./api:/root"), Place::Local(_)));
        assert!(matches!(place("/tmp/api:/root"), Place::Local(_)));
        assert!(matches!(place("./notes:old"), Place::Local(_)));
        assert!(matches!(place("notes.txt"), Place::Local(_)));
        assert!(matches!(place("api:relative"), Place::Local(_)));
    }

    #[test]
    fn port_mappings_read_local_then_remote() {
        assert_eq!(port_pair("8080:80").unwrap(), (8080, 80));
        assert_eq!(port_pair("5432").unwrap(), (5432, 5432));
        assert_eq!(port_pair("0:22").unwrap(), (0, 22));
        assert!(port_pair("8080:0").is_err());
        assert!(port_pair("web").is_err());
    }

    #[test]
    fn websocket_urls_follow_the_scheme() {
        assert_eq!(websocket_url("http://h:3000", "/x"), "ws://h:3000/x");
        assert_eq!(websocket_url("https://h", "/x"), "wss://h/x");
    }
}
