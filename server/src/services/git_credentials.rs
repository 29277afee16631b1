//! Users' tokens for git hosts and how git in a space gets its owner's, without a token ever
//! being pasted into the space or kept in it.
//!
//! The tokens are kept encrypted with the server's key file (`auth::git_key`); the API lists
//! host, user name and when each was last used, never the token.
//!
//! In a running space, Hangar installs a git credential helper (a shell script) and runs a
//! broker beside it: one exec of Hangar's own whose standard input and output are the only way
//! the helper reaches Hangar (spaces cannot reach Hangar's addresses, and nothing listens for
//! them). The helper hands git's question to the broker through a pair of FIFOs in a folder
//! only the space's user may enter; the broker passes it over the exec to Hangar, which answers
//! with the owner's token for that host. That channel is the credential: it belongs to that
//! one container, so only that space can use it, for its owner's tokens only, and it ends when
//! the space stops (the exec ends with the container). While the space is shared, Hangar
//! answers nothing: a sharee has a shell in the same container as the same user, and could ask
//! the helper as well as the owner could.
//!
//! SSH remotes go through the same channel: git's `core.sshCommand` is Hangar's `ssh` wrapper,
//! which uses an agent forwarded through Hangar's gateway (`ssh -A`) when one holds keys, and
//! otherwise asks the broker for the owner's SSH key for git hosts (made and kept encrypted by
//! Hangar, one per user), loads it into an `ssh-agent` of its own that lives as long as that
//! one `ssh` (the key is never written to the space's disk), and runs `ssh` with it.

use app::api::repos::{GitCredentialDto, GitSshKeyDto, SetGitCredential};
use app::api::users::TokenScope;
use app::ids::{SpaceId, UserId};
use chrono::Utc;
use futures_util::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Set,
};
use tokio::io::AsyncWriteExt;

use crate::auth::git_key::GitKey;
use crate::entities::{git_credential, git_ssh_key, space};
use crate::error::{ApiError, ApiResult};
use crate::runtime::{ExecOutput, ExecRequest};
use crate::services::access::Caller;
use crate::services::{conflict_on_duplicate, new_id, Services};

/// Most hosts a user keeps a token for.
const MAX_PER_USER: u64 = 50;
/// Where the helper and its FIFOs live in a space (per user id of the image's user).
const FOLDER: &str = "/tmp/.hangar-git-$(id -u)";
/// Ends a message on the broker's channel, both ways.
const END: &str = "@@hangar-end@@";

/// A git host as credentials name it: `host` or `host:port`, lowercase.
pub fn host(text: &str) -> ApiResult<String> {
    let host = text.trim().to_ascii_lowercase();
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host.as_str(), None),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if !(name_ok && port_ok) {
        return Err(ApiError::invalid(
            "host",
            "a git host is a name such as github.com, or name:port such as git.example.org:8443",
        ));
    }
    Ok(host)
}

fn ssh_key_dto(model: git_ssh_key::Model) -> GitSshKeyDto {
    GitSshKeyDto {
        public_key: model.public_key,
        fingerprint: model.fingerprint,
        created_at: model.created_at.into(),
        last_used_at: model.last_used_at.map(Into::into),
    }
}

fn dto(model: git_credential::Model) -> GitCredentialDto {
    GitCredentialDto {
        host: model.host,
        username: model.username,
        created_at: model.created_at.into(),
        last_used_at: model.last_used_at.map(Into::into),
    }
}

/// Git's credential helper in a space: hands git's question (with a nonce of its own) to the
/// broker, one question at a time, and prints the answer if it is the one to this question;
/// while no broker answers it (a server restarting), it asks again, for 20 s. Every wait is
/// bounded: without a broker, git goes on without a token.
const HELPER: &str = r#"#!/bin/sh
# Hangar's git credential helper: asks Hangar for the space owner's token of the host.
[ "$1" = get ] || { cat >/dev/null; exit 0; }
d=$(dirname "$0")
asked=$(cat)
nonce="$$-$(date +%s)"
# One question at a time. The lock is the kernel's (flock), let go of when its helper ends,
# however it ends; a helper from before a restart or a killed one leaves nothing held.
# Without flock, a folder is the lock, taken over after 25 s (a question takes 24 s at most).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$d/lock.f" && timeout 25 flock 9 || exit 0
else
  i=0
  while ! mkdir "$d/lock" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 250 ]; then rmdir "$d/lock" 2>/dev/null; mkdir "$d/lock" 2>/dev/null || exit 0; break; fi
    sleep 0.1
  done
  trap 'rmdir "$d/lock"' EXIT
fi
# Asked again until answered, for 20 s: while a server restarts, the broker it left answers
# nothing and ends, and the next server's broker takes a while to come.
end=$(($(date +%s) + 20))
while [ "$(date +%s)" -lt "$end" ]; do
  if timeout 2 sh -c 'printf "%s\n%s\n" "$1" "$2" >"$3/req"' _ "nonce=$nonce" "$asked" "$d"; then
    left=$((end - $(date +%s))); [ $left -gt 10 ] && left=10; [ $left -lt 1 ] && left=1
    answer=$(timeout $left cat "$d/ans") || answer=''
    if [ "$(printf '%s\n' "$answer" | head -n 1)" = "nonce=$nonce" ]; then
      printf '%s\n' "$answer" | tail -n +2
      exit 0
    fi
  fi
  sleep 0.2
done
"#;

/// git's `ssh` in a space (`core.sshCommand`): an agent forwarded through Hangar's gateway if
/// it holds keys; else the owner's key from Hangar (asked through the helper), in an agent of
/// this one `ssh`'s own; else plain `ssh`. Hosts are trusted on first sight, as the clone does.
const SSH_WRAPPER: &str = r#"#!/bin/sh
# Hangar's ssh for git: SSH remotes get the space owner's SSH key for git hosts, kept by Hangar.
d=$(dirname "$0")
trust='-o StrictHostKeyChecking=accept-new'
if [ -n "$SSH_AUTH_SOCK" ] && ssh-add -l >/dev/null 2>&1; then exec ssh $trust "$@"; fi
command -v ssh-agent >/dev/null 2>&1 || exec ssh $trust "$@"
key=$(printf 'protocol=ssh-key

' | "$d/helper" get)
case "$key" in *'PRIVATE KEY'*) ;; *) exec ssh $trust "$@" ;; esac
sock=$(mktemp -u "$d/agent.XXXXXX")
eval "$(ssh-agent -s -a "$sock")" >/dev/null || exec ssh $trust "$@"
trap 'kill "$SSH_AGENT_PID" 2>/dev/null; rm -f "$sock"' EXIT
trap 'exit 129' HUP INT TERM
printf '%s
' "$key" | ssh-add -q - 2>/dev/null
key=''
ssh $trust "$@"
"#;

/// git's `core.sshCommand` in a space: Hangar's wrapper while it is there (a space's `/tmp`
/// may be emptied while its home, and so this setting, stays), plain `ssh` otherwise.
const SSH_COMMAND: &str = r#"f=/tmp/.hangar-git-$(id -u)/ssh; [ -x "$f" ] || f=ssh; "$f""#;

/// Installs the helper (git's `credential.helper`, globally for the space's user) and its
/// FIFOs, in a folder only that user may enter; ends the broker served before, if any (it
/// would take questions it cannot pass on).
fn install_script() -> String {
    format!(
        r#"command -v git >/dev/null 2>&1 || exit 0
d={FOLDER}
# One broker per space: a previous one (another server's, or one whose server stopped) ends,
# and so does the question it waits for.
old=$(cat "$d/broker" 2>/dev/null)
if [ -n "$old" ] && grep -qs hangar-end "/proc/$old/cmdline"; then
  kill "$old" 2>/dev/null
  timeout 1 sh -c ': >"$1/req"' _ "$d"
fi
# The folder and its FIFOs stay, and each script is replaced whole: git may ask meanwhile (a
# server taking over), and must find the helper and the FIFOs it asks through.
if [ -L "$d" ]; then rm -f "$d" || exit 1; fi
mkdir -p "$d" && [ -O "$d" ] && chmod 700 "$d" || exit 1
for fifo in req ans; do
  [ -p "$d/$fifo" ] || {{ rm -f "$d/$fifo" && mkfifo "$d/$fifo"; }} || exit 1
  chmod 600 "$d/$fifo" || exit 1
done
cat >"$d/helper.new" <<'HELPER'
{HELPER}HELPER
chmod 700 "$d/helper.new" && mv -f "$d/helper.new" "$d/helper" || exit 1
git config --global --get-all credential.helper | grep -qxF "$d/helper" ||
  git config --global --add credential.helper "$d/helper"
cat >"$d/ssh.new" <<'SSH'
{SSH_WRAPPER}SSH
chmod 700 "$d/ssh.new" && mv -f "$d/ssh.new" "$d/ssh" || exit 1
# A command of the user's own stays theirs.
current=$(git config --global --get core.sshCommand)
[ -z "$current" ] || [ "$current" = '{SSH_COMMAND}' ] ||
  exit 0
git config --global core.sshCommand '{SSH_COMMAND}'
"#
    )
}

/// The broker: each question the helper writes goes out, ended by [`END`]; the answer comes
/// in, ended likewise, and goes back to the helper if it still waits (5 s at most). Its exec
/// outlives the server that started it, so once that server's end of the channel is gone, it
/// ends at the next question (answering it with nothing, which the helper asks again).
fn broker_script() -> String {
    format!(
        r#"d={FOLDER}
[ -p "$d/req" ] || exit 0
echo $$ >"$d/broker"
while :; do
  cat "$d/req" || exit 1
  echo '{END}'
  answer=''
  ended=1
  while IFS= read -r line; do
    [ "$line" = '{END}' ] && {{ ended=0; break; }}
    answer="$answer$line
"
  done
  # Hangar's end of the channel is gone (its server stopped): an answer without the nonce
  # sends the helper asking again, of the next server's broker; this one ends.
  if [ $ended = 1 ]; then
    timeout 5 sh -c ': >"$1/ans"' _ "$d"
    exit 0
  fi
  timeout 5 sh -c 'printf "%s" "$1" >"$2/ans"' _ "$answer" "$d"
done
"#
    )
}

/// git's question, `key=value` lines.
fn field<'a>(question: &'a str, key: &str) -> Option<&'a str> {
    question
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

impl Services {
    pub(crate) fn git_key(&self) -> ApiResult<GitKey> {
        GitKey::in_dir(&self.config.data_dir()).map_err(|e| {
            tracing::error!(error = %e, "the git credentials' key");
            ApiError::unavailable(format!("git tokens cannot be kept now: {e}"))
        })
    }

    /// Installs the helper in a running space and serves it until the space stops (in the
    /// background); the space's git then asks for its owner's tokens.
    pub async fn serve_git_credentials(&self, space: &space::Model) -> Result<(), String> {
        let install = ExecRequest {
            cmd: vec!["/bin/sh".into(), "-c".into(), install_script()],
            ..Default::default()
        };
        let mut exec = self
            .runtime
            .exec(&space.id, install)
            .await
            .map_err(|e| e.to_string())?;
        while exec.output.next().await.is_some() {}
        let broker = ExecRequest {
            cmd: vec!["/bin/sh".into(), "-c".into(), broker_script()],
            ..Default::default()
        };
        let exec = self
            .runtime
            .exec(&space.id, broker)
            .await
            .map_err(|e| e.to_string())?;
        let services = self.clone();
        let (space_id, owner) = (space.id.clone(), space.owner_id.clone());
        // It ends with the space, or with this server (whose next start serves it again).
        let ended = services.shutdown_signal();
        tokio::spawn(async move {
            tokio::select! {
                () = services.broker(exec, &space_id, &owner) => {}
                () = ended => {}
            }
        });
        Ok(())
    }

    /// Serves git's credential helper again in the spaces that run at this server's start
    /// (their brokers ended with the previous server), all at once, for 30 s at most.
    pub async fn serve_git_credentials_of_running(&self) {
        let running = space::Entity::find()
            .filter(space::Column::State.eq(crate::domain::lifecycle::SpaceState::Running))
            .all(&self.db)
            .await;
        let running = match running {
            Ok(running) => running,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the running spaces for git's credentials");
                return;
            }
        };
        let served = futures_util::future::join_all(running.iter().map(|space| async move {
            if let Err(e) = self.serve_git_credentials(space).await {
                tracing::warn!(space = %space.id, error = %e, "git's credential helper is not served in this space");
            }
        }));
        if tokio::time::timeout(std::time::Duration::from_secs(30), served)
            .await
            .is_err()
        {
            tracing::warn!(
                "git's credential helper was not served again in every running space within 30 s"
            );
        }
    }

    async fn broker(&self, mut exec: crate::runtime::Exec, space_id: &SpaceId, owner: &UserId) {
        let mut pending = String::new();
        while let Some(chunk) = exec.output.next().await {
            let Ok(ExecOutput::Stdout(bytes)) = chunk else {
                continue;
            };
            pending.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(at) = pending.find(&format!("{END}\n")) {
                let question: String = pending.drain(..at + END.len() + 1).collect();
                let answer = self.answer_git(space_id, owner, &question).await;
                let nonce = field(&question, "nonce").unwrap_or_default();
                let reply = format!("nonce={nonce}\n{answer}{END}\n");
                if exec.input.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                let _ = exec.input.flush().await;
            }
        }
        tracing::debug!(space = %space_id, "the git credential broker ended");
    }

    /// The owner's token for the host git asks about, as `username=`/`password=` lines; nothing
    /// while the space is shared, for a protocol without credentials, or a host without one.
    async fn answer_git(&self, space_id: &SpaceId, owner: &UserId, question: &str) -> String {
        if !matches!(self.space_is_shared(space_id).await, Ok(false)) {
            tracing::info!(space = %space_id, "no git token given: the space is shared (or its shares cannot be read)");
            return String::new();
        }
        match field(question, "protocol") {
            Some("https" | "http") => {}
            Some("ssh-key") => return self.answer_ssh_key(space_id, owner).await,
            _ => return String::new(),
        }
        let Some(asked) = field(question, "host").and_then(|h| host(h).ok()) else {
            return String::new();
        };
        let found = git_credential::Entity::find()
            .filter(git_credential::Column::UserId.eq(owner.clone()))
            .filter(git_credential::Column::Host.eq(asked.clone()))
            .one(&self.db)
            .await;
        let Ok(Some(saved)) = found else {
            return String::new();
        };
        let token = match self.open_sealed(&saved.secret) {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(space = %space_id, host = %asked, error = %e, "a git token could not be read");
                return String::new();
            }
        };
        let _ = git_credential::Entity::update_many()
            .col_expr(git_credential::Column::LastUsedAt, Expr::value(Utc::now()))
            .filter(git_credential::Column::Id.eq(saved.id.clone()))
            .exec(&self.db)
            .await;
        format!("username={}\npassword={token}\n", saved.username)
    }

    /// The owner's SSH key for git hosts (OpenSSH private key lines), if Hangar made one.
    async fn answer_ssh_key(&self, space_id: &SpaceId, owner: &UserId) -> String {
        let found = git_ssh_key::Entity::find_by_id(owner.clone())
            .one(&self.db)
            .await;
        let Ok(Some(saved)) = found else {
            return String::new();
        };
        let key = match self.open_sealed(&saved.secret) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(space = %space_id, error = %e, "the SSH key for git could not be read");
                return String::new();
            }
        };
        let _ = git_ssh_key::Entity::update_many()
            .col_expr(git_ssh_key::Column::LastUsedAt, Expr::value(Utc::now()))
            .filter(git_ssh_key::Column::UserId.eq(owner.clone()))
            .exec(&self.db)
            .await;
        // OpenSSH's encoding ends with a newline, which ends the answer's last line.
        key
    }

    /// What was sealed with the server's key file, in the clear.
    fn open_sealed(&self, sealed: &str) -> Result<String, String> {
        self.git_key().map_err(|e| e.message)?.open(sealed)
    }

    pub(crate) async fn find_git_ssh_key(
        &self,
        caller: &Caller,
    ) -> ApiResult<Option<GitSshKeyDto>> {
        let found = git_ssh_key::Entity::find_by_id(caller.id().clone())
            .one(&self.db)
            .await?;
        Ok(found.map(ssh_key_dto))
    }

    /// A new ed25519 key for the caller's git hosts, replacing the one made before (which git
    /// hosts then refuse: the caller adds the new public key).
    pub(crate) async fn new_git_ssh_key(&self, caller: &Caller) -> ApiResult<GitSshKeyDto> {
        use russh::keys::ssh_key::LineEnding;
        use russh::keys::HashAlg;

        caller.require_scope(TokenScope::Credentials)?;
        let mut key = crate::auth::ed25519::fresh();
        key.set_comment(format!("hangar:{}", caller.user.username));
        let private = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| ApiError::internal(format!("encoding an SSH key: {e}")))?;
        let public = key.public_key();
        let public_key = public
            .to_openssh()
            .map_err(|e| ApiError::internal(format!("encoding an SSH key: {e}")))?;
        let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
        let secret = self.git_key()?.seal(&private).map_err(ApiError::internal)?;
        let saved = git_ssh_key::Model {
            user_id: caller.id().clone(),
            public_key,
            fingerprint,
            secret,
            created_at: Utc::now(),
            last_used_at: None,
        };
        git_ssh_key::Entity::insert(saved.clone().into_active_model().reset_all())
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(git_ssh_key::Column::UserId)
                    .update_columns([
                        git_ssh_key::Column::PublicKey,
                        git_ssh_key::Column::Fingerprint,
                        git_ssh_key::Column::Secret,
                        git_ssh_key::Column::CreatedAt,
                        git_ssh_key::Column::LastUsedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(ssh_key_dto(saved))
    }

    pub(crate) async fn remove_git_ssh_key(&self, caller: &Caller) -> ApiResult<()> {
        caller.require_scope(TokenScope::Credentials)?;
        let removed = git_ssh_key::Entity::delete_by_id(caller.id().clone())
            .exec(&self.db)
            .await?;
        if removed.rows_affected == 0 {
            return Err(ApiError::not_found("SSH key for git"));
        }
        Ok(())
    }

    pub(crate) async fn list_git_credentials(
        &self,
        caller: &Caller,
    ) -> ApiResult<Vec<GitCredentialDto>> {
        use sea_orm::QueryOrder;
        let found = git_credential::Entity::find()
            .filter(git_credential::Column::UserId.eq(caller.id().clone()))
            .order_by_asc(git_credential::Column::Host)
            .all(&self.db)
            .await?;
        Ok(found.into_iter().map(dto).collect())
    }

    pub(crate) async fn save_git_credential(
        &self,
        caller: &Caller,
        host_text: &str,
        input: SetGitCredential,
    ) -> ApiResult<GitCredentialDto> {
        caller.require_scope(TokenScope::Credentials)?;
        let host = host(host_text)?;
        let printable = |t: &str| t.chars().all(|c| c.is_ascii_graphic());
        if input.token.is_empty() || input.token.len() > 1000 || !printable(&input.token) {
            return Err(ApiError::invalid(
                "token",
                "the token has 1 to 1000 printable characters, without blanks",
            ));
        }
        let username = input.username.unwrap_or_else(|| "git".into());
        if username.is_empty() || username.len() > 100 || !printable(&username) {
            return Err(ApiError::invalid(
                "username",
                "the user name has 1 to 100 printable characters, without blanks",
            ));
        }
        let secret = self
            .git_key()?
            .seal(&input.token)
            .map_err(ApiError::internal)?;
        let mine = git_credential::Column::UserId.eq(caller.id().clone());
        let existing = git_credential::Entity::find()
            .filter(mine.clone())
            .filter(git_credential::Column::Host.eq(host.clone()))
            .one(&self.db)
            .await?;
        let saved = match existing {
            Some(existing) => {
                let mut model: git_credential::ActiveModel = existing.into();
                model.username = Set(username);
                model.secret = Set(secret);
                model.created_at = Set(Utc::now());
                model.last_used_at = Set(None);
                model.update(&self.db).await?
            }
            None => {
                let count = git_credential::Entity::find()
                    .filter(mine)
                    .count(&self.db)
                    .await?;
                if count >= MAX_PER_USER {
                    return Err(ApiError::conflict(format!(
                        "you keep tokens for {MAX_PER_USER} git hosts already: remove one first"
                    )));
                }
                git_credential::ActiveModel {
                    id: Set(new_id()),
                    user_id: Set(caller.id().clone()),
                    host: Set(host.clone()),
                    username: Set(username),
                    secret: Set(secret),
                    created_at: Set(Utc::now()),
                    last_used_at: Set(None),
                }
                .insert(&self.db)
                .await
                .map_err(|e| {
                    conflict_on_duplicate(e, || {
                        format!("a token for {host} was saved meanwhile: save again")
                    })
                })?
            }
        };
        Ok(dto(saved))
    }

    pub(crate) async fn remove_git_credential(
        &self,
        caller: &Caller,
        host_text: &str,
    ) -> ApiResult<()> {
        caller.require_scope(TokenScope::Credentials)?;
        let host = host(host_text)?;
        let removed = git_credential::Entity::delete_many()
            .filter(git_credential::Column::UserId.eq(caller.id().clone()))
            .filter(git_credential::Column::Host.eq(host))
            .exec(&self.db)
            .await?;
        if removed.rows_affected == 0 {
            return Err(ApiError::not_found("git credential"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_names_with_an_optional_port() -> Result<(), ApiError> {
        assert_eq!(host(" GitHub.com ")?, "github.com");
        assert_eq!(host("10.254.1.2:8080")?, "10.254.1.2:8080");
        for bad in [
            "",
            "a b",
            "x:0",
            "x:99999",
            "-x.org",
            "x..org",
            "https://github.com",
        ] {
            assert!(host(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn questions_are_read_by_key() {
        let question = "nonce=1-2\nprotocol=https\nhost=github.com\n\n";
        assert_eq!(field(question, "host"), Some("github.com"));
        assert_eq!(field(question, "path"), None);
    }
}
