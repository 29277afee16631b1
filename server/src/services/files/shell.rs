//! Small POSIX shell programs run inside a space (through [`Runtime::exec`], so any runtime
//! serves them) for what an archive API does not do: listing a directory, free space, making
//! directories, moving a finished upload into place, deleting. They run as the space's user
//! inside its own filesystem, like the user's own shell; paths are given as arguments, never
//! pasted into the program text. They need `sh` and the usual tools (`stat`, `df`, `mv`,
//! `rm`, `mkdir`, `xargs`), which busybox and Debian both have.

use std::time::Duration;

use app::error::ApiError;
use app::ids::SpaceId;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::runtime::{ExecOutput, ExecRequest, Runtime, RuntimeError, UploadStream};

/// Lists a directory ($1), at most $2 + 1 entries: first `<d|f><name>\0` per entry (`d` when
/// it leads to a directory, links followed), an empty record, then one `stat` line per entry
/// in the same order (raw mode in hex, size, modification time), links not followed. Both
/// loops see the same names in the same order unless the directory changes in between.
pub const LIST: &str = r#"
cd -- "$1" || exit 3
max=$(($2 + 1))
n=0
for f in .* *; do
  case $f in .|..) continue ;; esac
  if [ -d "$f" ]; then k=d; elif [ -e "$f" ] || [ -L "$f" ]; then k=f; else continue; fi
  n=$((n + 1)); [ "$n" -gt "$max" ] && break
  printf '%s%s\0' "$k" "$f"
done
printf '\0'
n=0
for f in .* *; do
  case $f in .|..) continue ;; esac
  [ -e "$f" ] || [ -L "$f" ] || continue
  n=$((n + 1)); [ "$n" -gt "$max" ] && break
  printf '%s\0' "$f"
done | xargs -0 -r stat -c '%f %s %Y' --
"#;

/// Free space of the filesystem that holds $1 (or its nearest existing parent), in KiB, as
/// `df -Pk` prints it.
pub const FREE_SPACE: &str = r#"
d=$1
while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done
df -Pk -- "$d"
"#;

/// Makes the directory $1 and its parents.
pub const MAKE_DIR: &str = r#"mkdir -p -- "$1""#;

/// Replaces $2 by the finished upload $1 (a rename: the old file stays whole until then).
pub const PUT_IN_PLACE: &str = r#"
if [ -d "$2" ]; then echo "a directory is at $2" >&2; exit 21; fi
mv -f -- "$1" "$2"
"#;

/// Moves everything in the staging directory $1 into $2, merging directories that exist in
/// both and replacing anything else (a link in the way is replaced, never followed); then
/// removes $1.
pub const MERGE: &str = r#"
merge() {
  for f in "$1"/.* "$1"/*; do
    n=${f##*/}
    case $n in .|..) continue ;; esac
    [ -e "$f" ] || [ -L "$f" ] || continue
    t=$2/$n
    fd=0; td=0
    if [ -d "$f" ] && [ ! -L "$f" ]; then fd=1; fi
    if [ -d "$t" ] && [ ! -L "$t" ]; then td=1; fi
    if [ $fd = 1 ] && [ $td = 1 ]; then
      merge "$f" "$t" || return 1
    else
      if [ $fd = 1 ] || [ $td = 1 ] || [ -L "$t" ]; then rm -rf -- "$t" || return 1; fi
      mv -f -- "$f" "$t" || return 1
    fi
  done
}
merge "$1" "$2" && rm -rf -- "$1"
"#;

/// Writes standard input to the file $1, making its directory first.
pub const WRITE_FILE: &str = r#"
mkdir -p -- "$(dirname -- "$1")" && cat > "$1"
"#;

/// Removes $1 (a link itself, not what it leads to); exit 44 when nothing is there.
pub const REMOVE: &str = r#"
[ -e "$1" ] || [ -L "$1" ] || exit 44
rm -rf -- "$1"
"#;

/// What a program printed and how it ended.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Its error output, or else its exit code, to tell a person.
    pub fn complaint(&self) -> String {
        let said = self.stderr.trim();
        if said.is_empty() {
            format!(
                "it ended with code {}",
                self.code.map_or("unknown".into(), |c| c.to_string())
            )
        } else {
            said.to_owned()
        }
    }
}

/// How long a program here may take, unless an upload feeds it (a merge of a large tree is
/// the slowest).
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// Most error output kept.
const STDERR_LIMIT: usize = 4096;

pub fn runtime_error(context: &str, error: RuntimeError) -> ApiError {
    match error {
        RuntimeError::Unavailable(e) => ApiError::unavailable(format!("{context}: {e}")),
        // Nothing is known of the space's free room here (the caller measures it).
        RuntimeError::NoRoom(e) => ApiError::insufficient_storage(format!("{context}: {e}"), 0),
        refused => ApiError::conflict(format!("{context}: {refused}")),
    }
}

/// Runs `script` with `args` in the space, feeding it `input` when given; keeps at most
/// `stdout_limit` bytes of its output (more is an error: nothing here prints much).
pub async fn run(
    runtime: &dyn Runtime,
    space_id: &SpaceId,
    script: &str,
    args: &[&str],
    input: Option<UploadStream>,
    stdout_limit: usize,
) -> Result<Ran, ApiError> {
    let mut cmd = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "hangar".to_owned(),
    ];
    cmd.extend(args.iter().map(|a| (*a).to_owned()));
    let exec = runtime
        .exec(
            space_id,
            ExecRequest {
                cmd,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| runtime_error("cannot run a program in the space", e))?;
    let (mut output, mut stdin, control) = (exec.output, exec.input, exec.control);
    let streaming = input.is_some();
    let feed = async move {
        let mut fed = Ok(());
        if let Some(mut input) = input {
            while let Some(chunk) = input.next().await {
                let written = match chunk {
                    Ok(chunk) => stdin.write_all(&chunk).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    fed = Err(e);
                    break;
                }
            }
        }
        // Always: the program ends once its input does (a cut-short input is caught below).
        let _ = stdin.shutdown().await;
        fed
    };
    let collect = async {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(item) = output.next().await {
            match item.map_err(|e| runtime_error("reading from the space", e))? {
                ExecOutput::Stdout(bytes) => {
                    if stdout.len() + bytes.len() > stdout_limit {
                        return Err(ApiError::conflict(format!(
                            "the listing is over {stdout_limit} bytes: the directory is too large to list"
                        )));
                    }
                    stdout.extend_from_slice(&bytes);
                }
                ExecOutput::Stderr(bytes) => {
                    let room = STDERR_LIMIT.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&bytes[..room.min(bytes.len())]);
                }
            }
        }
        Ok::<_, ApiError>((stdout, stderr))
    };
    let both = async {
        tokio::pin!(feed);
        tokio::pin!(collect);
        let mut fed: Option<std::io::Result<()>> = None;
        loop {
            tokio::select! {
                result = &mut feed, if fed.is_none() => fed = Some(result),
                // The program ended (perhaps before reading all its input).
                output = &mut collect => return (fed, output),
            }
        }
    };
    // A program fed by an upload lasts as long as the upload (which the client paces and the
    // access watch can cut); the others are quick.
    let (fed, output) = if streaming {
        both.await
    } else {
        tokio::time::timeout(TIMEOUT, both).await.map_err(|_| {
            ApiError::unavailable(format!(
                "a program in the space took over {} s: try again",
                TIMEOUT.as_secs()
            ))
        })?
    };
    let (stdout, stderr) = output?;
    // The engine records the exit code a moment after the output ends.
    let mut code = None;
    for _ in 0..50 {
        code = control
            .exit_code()
            .await
            .map_err(|e| runtime_error("reading how a program in the space ended", e))?;
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ran = Ran {
        code,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    if let Some(Err(e)) = fed {
        if ran.ok() {
            return Err(ApiError::conflict(format!("the upload was cut short: {e}")));
        }
    }
    Ok(ran)
}

/// Free bytes of the filesystem holding `dir` (or its nearest existing parent).
pub async fn free_bytes(
    runtime: &dyn Runtime,
    space_id: &SpaceId,
    dir: &str,
) -> Result<u64, ApiError> {
    let ran = run(runtime, space_id, FREE_SPACE, &[dir], None, 64 * 1024).await?;
    let text = String::from_utf8_lossy(&ran.stdout);
    parse_df(&text).filter(|_| ran.ok()).ok_or_else(|| {
        ApiError::conflict(format!(
            "cannot tell the free space in the space ({}): its image needs `df`",
            ran.complaint()
        ))
    })
}

/// The free bytes in `df -Pk` output (header, then one line per filesystem).
pub fn parse_df(text: &str) -> Option<u64> {
    let line = text.lines().filter(|l| !l.trim().is_empty()).nth(1)?;
    let available: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    available.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn df_output_gives_free_bytes() {
        let busybox = "Filesystem           1024-blocks    Used Available Capacity Mounted on\noverlay               61255492 30119016  27994956  52% /\n";
        assert_eq!(parse_df(busybox), Some(27_994_956 * 1024));
        let coreutils = "Filesystem     1024-blocks  Used Available Capacity Mounted on\ntmpfs                 8192     4      8188       1% /data\n";
        assert_eq!(parse_df(coreutils), Some(8188 * 1024));
        assert_eq!(parse_df("df: /x: No such file or directory\n"), None);
    }
}
