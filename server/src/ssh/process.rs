//! A session channel bridged to a process in the space: a login shell (with a terminal when
//! the client asked for one), a command (`ssh host <command>`, through the template's shell,
//! so `rsync` and `git` work), or the space's own SFTP server (`sftp`, and `scp`, which speaks
//! SFTP). Without a terminal, stdout and stderr stay apart (stderr as extended data 1); the
//! exit status goes back; signals and window changes come in. When the client goes, the
//! process and what it started are hung up.

use futures_util::StreamExt;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use app::ids::SpaceId;

use crate::runtime::{ExecControl, ExecOutput, ExecRequest, Runtime, RuntimeError};
use crate::services::activity::Touch;
use crate::terminal::emulator::MAX_ROWS;

/// Where OpenSSH's SFTP server lives on the usual distributions.
const SFTP_SERVERS: &str = "/usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server \
                            /usr/lib/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server";

/// What a session channel runs.
pub enum Command {
    Shell,
    Exec(String),
    Sftp,
}

/// The terminal a client asked for.
pub struct Terminal {
    pub term: String,
    pub cols: u16,
    pub rows: u16,
}

impl Terminal {
    /// Sizes out of range are brought into it (0 means "unknown": the usual 80×24).
    pub fn new(term: &str, cols: u32, rows: u32) -> Self {
        let fit = |n: u32, default: u16| match n {
            0 => default,
            n => u16::try_from(n).unwrap_or(MAX_ROWS).min(MAX_ROWS),
        };
        Self {
            term: term.to_owned(),
            cols: fit(cols, 80),
            rows: fit(rows, 24),
        }
    }
}

/// What the client asks of a running process.
pub enum ProcessRequest {
    Resize(u16, u16),
    Signal(&'static str),
}

/// The process to start: through `/bin/sh`, in the home directory, with the template's shell
/// where it exists (as sshd runs `$SHELL -l` or `$SHELL -c <command>`).
pub fn exec_request(
    shell: &str,
    command: &Command,
    terminal: Option<&Terminal>,
    env: &[String],
) -> ExecRequest {
    let shell = shell.replace('\'', "");
    let script = match command {
        Command::Shell => {
            format!("cd 2>/dev/null; if [ -x '{shell}' ]; then exec '{shell}' -l; else exec /bin/sh -l; fi")
        }
        Command::Exec(_) => format!(
            "cd 2>/dev/null; if [ -x '{shell}' ]; then exec '{shell}' -c \"$1\"; else exec /bin/sh -c \"$1\"; fi"
        ),
        Command::Sftp => format!(
            "cd 2>/dev/null; for s in {SFTP_SERVERS}; do [ -x \"$s\" ] && exec \"$s\"; done; \
             echo 'hangar: this space has no SFTP server: install openssh-sftp-server (Debian, \
             Ubuntu) or openssh (Alpine) in its image' >&2; exit 127"
        ),
    };
    let mut cmd = vec!["/bin/sh".to_owned(), "-c".to_owned(), script];
    if let Command::Exec(line) = command {
        cmd.push("hangar-ssh".to_owned());
        cmd.push(line.clone());
    }
    let mut env: Vec<String> = env.to_vec();
    if let Some(terminal) = terminal {
        // The terminal's own type wins over a TERM sent as an environment variable.
        env.retain(|e| !e.starts_with("TERM="));
        env.push(format!("TERM={}", terminal.term));
    }
    ExecRequest {
        cmd,
        env,
        tty: terminal.is_some(),
        size: terminal.map(|t| (t.cols, t.rows)),
    }
}

/// Answers a session that cannot run anything here: one line on stderr, exit status 1.
pub async fn refuse(channel: Channel<Msg>, reason: String) {
    let line = format!("hangar: {reason}\r\n");
    let _ = channel.extended_data_bytes(1, line.into_bytes()).await;
    let _ = channel.exit_status(1).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
}

/// How a process's output stopped flowing to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Pumped {
    /// The process closed its output.
    Ended,
    /// The client closed the channel or went away.
    Gone,
}

/// Carries a process's output to the channel (stderr as extended data 1, or dropped) until the
/// process closes it or the client goes (`gone` turns true).
pub async fn pump_output(
    output: &mut futures_util::stream::BoxStream<'static, Result<ExecOutput, RuntimeError>>,
    writer: &ChannelWriteHalf<Msg>,
    gone: &mut watch::Receiver<bool>,
    stderr_too: bool,
    activity: &mut Touch,
) -> Pumped {
    loop {
        let chunk = tokio::select! {
            chunk = output.next() => chunk,
            _ = gone.wait_for(|gone| *gone) => return Pumped::Gone,
        };
        activity.touch();
        let sent = match chunk {
            Some(Ok(ExecOutput::Stdout(bytes))) => {
                tokio::select! {
                    sent = writer.data_bytes(bytes) => sent,
                    _ = gone.wait_for(|gone| *gone) => return Pumped::Gone,
                }
            }
            Some(Ok(ExecOutput::Stderr(bytes))) if stderr_too => {
                tokio::select! {
                    sent = writer.extended_data_bytes(1, bytes) => sent,
                    _ = gone.wait_for(|gone| *gone) => return Pumped::Gone,
                }
            }
            Some(Ok(ExecOutput::Stderr(said))) => {
                tracing::debug!(said = %String::from_utf8_lossy(&said), "a process in a space said");
                Ok(())
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "output from a space broke off");
                return Pumped::Ended;
            }
            None => return Pumped::Ended,
        };
        if sent.is_err() {
            return Pumped::Gone;
        }
    }
}

/// Ends a process the client no longer waits for: `signal` first (HUP for a session, as a
/// terminal hanging up; the process may clean up), KILL if it is still there a moment later.
pub async fn end_process(
    output: &mut futures_util::stream::BoxStream<'static, Result<ExecOutput, RuntimeError>>,
    control: &dyn ExecControl,
    signal: &str,
) {
    let _ = control.signal(signal).await;
    let drained = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while output.next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let _ = control.signal("KILL").await;
    }
}

/// Runs `request` in the space and bridges it to `channel` until either ends.
pub async fn run(
    runtime: &dyn Runtime,
    space_id: &SpaceId,
    request: ExecRequest,
    channel: Channel<Msg>,
    mut requests: mpsc::Receiver<ProcessRequest>,
    notice: Option<String>,
    mut activity: Touch,
) {
    let tty = request.tty;
    let (mut reader, writer) = channel.split();
    if let Some(notice) = notice {
        let _ = writer.extended_data_bytes(1, notice.into_bytes()).await;
    }
    let exec = match runtime.exec(space_id, request).await {
        Ok(exec) => exec,
        Err(e) => {
            let line = format!("hangar: cannot start a process in the space: {e}\r\n");
            let _ = writer.extended_data_bytes(1, line.into_bytes()).await;
            let _ = writer.exit_status(255).await;
            let _ = writer.eof().await;
            let _ = writer.close().await;
            return;
        }
    };
    let (mut output, mut input, control) = (exec.output, exec.input, exec.control);

    // Client to process: input, end of input, window changes and signals.
    let (gone_tx, mut gone) = watch::channel(false);
    let requests_control = control.clone();
    let mut typed = activity.clone();
    let inbound = tokio::spawn(async move {
        let mut open = true;
        loop {
            tokio::select! {
                message = reader.wait() => match message {
                    Some(ChannelMsg::Data { data }) if open => {
                        typed.touch();
                        if input.write_all(&data).await.is_err() || input.flush().await.is_err() {
                            open = false;
                        }
                    }
                    Some(ChannelMsg::Eof) if open && !tty => {
                        // The process reads the end of its input (a TTY has none).
                        let _ = input.shutdown().await;
                        open = false;
                    }
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                Some(request) = requests.recv() => match request {
                    ProcessRequest::Resize(cols, rows) if tty => {
                        let _ = requests_control.resize(cols, rows).await;
                    }
                    ProcessRequest::Resize(..) => {}
                    ProcessRequest::Signal(name) => {
                        let _ = requests_control.signal(name).await;
                    }
                },
            }
        }
        gone_tx.send_replace(true);
    });

    // Process to client, then its exit status.
    match pump_output(&mut output, &writer, &mut gone, true, &mut activity).await {
        Pumped::Ended => {
            if let Some(code) = exit_code(control.as_ref()).await {
                // Killed by a signal: 128 + its number, as a shell reports it.
                let _ = writer.exit_status(u32::try_from(code).unwrap_or(255)).await;
            }
            let _ = writer.eof().await;
            let _ = writer.close().await;
            // The client closes the channel in turn.
            let abort = inbound.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(5), inbound)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        // The client is gone: so is the session's process, and what it started.
        Pumped::Gone => end_process(&mut output, control.as_ref(), "HUP").await,
    }
}

/// The process's exit code once the runtime knows it (it may lag its output by a moment).
async fn exit_code(control: &dyn ExecControl) -> Option<i64> {
    for _ in 0..20 {
        match control.exit_code().await {
            Ok(Some(code)) => return Some(code),
            Ok(None) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sizes_are_kept_in_range() {
        let t = Terminal::new("xterm", 0, 0);
        assert_eq!((t.cols, t.rows), (80, 24));
        let t = Terminal::new("xterm", 100_000, 5);
        assert_eq!((t.cols, t.rows), (MAX_ROWS, 5));
    }

    #[test]
    fn a_command_runs_through_the_shell_with_its_line_as_an_argument() {
        let line = "echo 'quoted' \"$HOME\"; exit 3";
        let request = exec_request("/bin/ba'sh", &Command::Exec(line.into()), None, &[]);
        assert!(!request.tty);
        assert_eq!(request.cmd.len(), 5);
        assert!(
            request.cmd[2].contains("'/bin/bash' -c \"$1\""),
            "{}",
            request.cmd[2]
        );
        // The line is passed as it is, never pasted into the script.
        assert_eq!(request.cmd[4], line);
        assert!(!request.cmd[2].contains("quoted"));
    }

    #[test]
    fn a_terminal_s_type_wins_over_a_term_variable() {
        let terminal = Terminal::new("xterm-256color", 120, 40);
        let env = vec!["TERM=dumb".to_owned(), "LANG=C.UTF-8".to_owned()];
        let request = exec_request("/bin/sh", &Command::Shell, Some(&terminal), &env);
        assert!(request.tty);
        assert_eq!(request.size, Some((120, 40)));
        assert_eq!(
            request.env,
            vec!["LANG=C.UTF-8".to_owned(), "TERM=xterm-256color".to_owned()]
        );
    }
}
