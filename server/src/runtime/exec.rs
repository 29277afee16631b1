//! A process inside a space's container through Docker's exec API, on whichever engine runs
//! the container (the Docker runtime's own, or the node a Swarm task runs on): its output,
//! its input, its terminal's size, and signals to it and everything it started.

use std::sync::Arc;

use super::error::classify;
use super::{Exec, ExecControl, ExecOutput, ExecRequest, RuntimeError};

/// Docker swallows its detach keys (Ctrl-P Ctrl-Q by default) from an exec's input. A long
/// sequence nobody types instead: a partial match is passed on once it stops matching.
const DETACH_KEYS: &str = "ctrl-],ctrl-^,ctrl-_,ctrl-],ctrl-^,ctrl-_,ctrl-],ctrl-^";

/// Marks every process an exec starts (its environment is inherited), so that signals can
/// reach them all: Docker has no call to signal an exec.
const EXEC_MARK: &str = "HANGAR_EXEC";

/// An exec on the engine that runs it.
struct DockerExec {
    docker: bollard::Docker,
    id: String,
    container: String,
    /// The value of [`EXEC_MARK`] in its processes' environment.
    mark: String,
}

#[async_trait::async_trait]
impl ExecControl for DockerExec {
    async fn resize(&self, cols: u16, rows: u16) -> Result<(), RuntimeError> {
        self.docker
            .resize_exec(
                &self.id,
                bollard::exec::ResizeExecOptions {
                    height: rows,
                    width: cols,
                },
            )
            .await
            .map_err(|e| classify("resizing the terminal", e))
    }

    async fn exit_code(&self) -> Result<Option<i64>, RuntimeError> {
        let info = self
            .docker
            .inspect_exec(&self.id)
            .await
            .map_err(|e| classify("inspecting the exec", e))?;
        Ok(info.exit_code)
    }

    async fn signal(&self, signal: &str) -> Result<(), RuntimeError> {
        use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
        use futures_util::StreamExt;
        if !super::SIGNALS.contains(&signal) {
            return Err(RuntimeError::Failed(format!("no such signal: {signal}")));
        }
        // Every process of the container whose environment carries the mark.
        let script = format!(
            "for p in /proc/[0-9]*; do tr '\\000' '\\n' < $p/environ 2>/dev/null | grep -qx '{EXEC_MARK}={}' && kill -{signal} ${{p#/proc/}} 2>/dev/null; done; true",
            self.mark
        );
        let exec = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    cmd: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), script]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| classify("signalling a process in the space", e))?;
        let started = self
            .docker
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| classify("signalling a process in the space", e))?;
        if let StartExecResults::Attached { mut output, .. } = started {
            while output.next().await.is_some() {}
        }
        Ok(())
    }
}

/// Starts a process in `container` on the engine `docker` runs (the Docker runtime's own
/// engine, or the node a Swarm task runs on).
pub(crate) async fn exec_in(
    docker: bollard::Docker,
    container: String,
    request: ExecRequest,
) -> Result<Exec, RuntimeError> {
    use bollard::container::LogOutput;
    use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
    use futures_util::StreamExt;
    let mark = uuid::Uuid::new_v4().simple().to_string();
    let mut env = request.env;
    env.push(format!("{EXEC_MARK}={mark}"));
    let exec = docker
        .create_exec(
            &container,
            CreateExecOptions {
                cmd: Some(request.cmd),
                env: Some(env),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(request.tty),
                detach_keys: Some(DETACH_KEYS.to_owned()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| classify("starting a process in the space", e))?;
    let started = docker
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: request.tty,
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| classify("starting a process in the space", e))?;
    let StartExecResults::Attached { output, input } = started else {
        return Err(RuntimeError::Failed(
            "the process in the space did not attach".into(),
        ));
    };
    let control = Arc::new(DockerExec {
        docker,
        id: exec.id,
        container,
        mark,
    });
    if let Some((cols, rows)) = request.size {
        // The process runs either way; a failed resize only leaves the default size.
        let _ = control.resize(cols, rows).await;
    }
    let output = output
        .filter_map(|item| async move {
            match item {
                Ok(LogOutput::StdErr { message }) => Some(Ok(ExecOutput::Stderr(message))),
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(Ok(ExecOutput::Stdout(message)))
                }
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(classify("reading from the space", e))),
            }
        })
        .boxed();
    Ok(Exec {
        output,
        input,
        control,
    })
}
