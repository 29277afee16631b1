//! A space's first start, once it runs: the owner's git identity, the clone of its repository
//! and the owner's dotfiles, each an exec inside the space as its user (the image's), each
//! printing into the space's setup log, which the space page shows live (written at most once
//! a second, each write a live `space` event). It runs once per space: a failed clone leaves
//! the space running with the reason and is tried again only when its owner asks ("Clone
//! again"), never over a folder that exists.

use std::time::{Duration, Instant};

use app::api::repos::{
    ssr::ReposApi, DotfilesSetting, DotfilesStatus, GitCredentialDto, GitSshKeyDto,
    RepositoryInput, RepositoryStatus, SetGitCredential, SetupState,
};
use app::api::spaces::SpaceDto;
use app::ids::SpaceId;
use chrono::Utc;
use futures_util::StreamExt;
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::domain::repository::{self, Repository};
use crate::entities::{space, user};
use crate::error::{ApiError, ApiResult};
use crate::runtime::{ExecOutput, ExecRequest};
use crate::services::access::Caller;
use crate::services::audit::{record, space_target, Outcome};
use crate::services::Services;

/// Longest a clone may take.
const CLONE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Longest the dotfiles' clone and installation may take (the script itself gets
/// [`INSTALL_TIMEOUT_SECS`]).
const DOTFILES_TIMEOUT: Duration = Duration::from_secs(12 * 60);
const INSTALL_TIMEOUT_SECS: u32 = 600;
/// How often the log is written while something prints.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// What git is told so that it never waits for a person: no password prompt, SSH in batch
/// mode trusting a host on first sight (through Hangar's `ssh` wrapper, which gives SSH remotes
/// the owner's key, once `services::git_credentials` installed it: [`NEED_GIT`]).
const GIT_ENV: [&str; 2] = [
    "GIT_TERMINAL_PROMPT=0",
    "GIT_SSH_COMMAND=ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
];

const NEED_GIT: &str = "command -v git >/dev/null 2>&1 || { echo 'git is not installed in this image: use a template whose image has git (apt-get install git)' >&2; exit 127; }\n\
                        cd \"${HOME:-/root}\" 2>/dev/null || cd / || exit 1\n\
                        w=/tmp/.hangar-git-$(id -u)/ssh\n\
                        if [ -x \"$w\" ]; then GIT_SSH_COMMAND=\"$w -o BatchMode=yes\"; export GIT_SSH_COMMAND; fi\n";

/// Clones `$HANGAR_URL` (branch `$HANGAR_BRANCH`, if any) into `~/$HANGAR_FOLDER`, never over
/// something there.
const CLONE_SCRIPT: &str = "if [ -e \"$HANGAR_FOLDER\" ]; then echo \"~/$HANGAR_FOLDER exists already: Hangar does not clone over it\" >&2; exit 17; fi\n\
     mkdir -p -- \"$(dirname -- \"$HANGAR_FOLDER\")\" || exit 1\n\
     set -- git clone --progress\n\
     if [ -n \"$HANGAR_BRANCH\" ]; then set -- \"$@\" --branch \"$HANGAR_BRANCH\"; fi\n\
     exec \"$@\" -- \"$HANGAR_URL\" \"$HANGAR_FOLDER\"\n";

/// Sets git's identity from the profile.
const IDENTITY_SCRIPT: &str = "git config --global user.name \"$HANGAR_GIT_NAME\" || exit 1\n\
     if [ -n \"$HANGAR_GIT_EMAIL\" ]; then git config --global user.email \"$HANGAR_GIT_EMAIL\" || exit 1; fi\n\
     echo \"git identity: $HANGAR_GIT_NAME${HANGAR_GIT_EMAIL:+ <$HANGAR_GIT_EMAIL>}\"\n";

/// Clones the dotfiles into `~/.dotfiles` and installs them the way Codespaces does.
fn dotfiles_script() -> String {
    format!(
        "if [ -e .dotfiles ]; then echo '~/.dotfiles exists already: not cloned again'; \
         else git clone --progress --depth 1 -- \"$HANGAR_URL\" .dotfiles || exit $?; fi\n\
         cd .dotfiles || exit 1\n\
         for script in install.sh install bootstrap.sh bootstrap script/bootstrap setup.sh setup script/setup; do\n\
           if [ -f \"$script\" ]; then\n\
             echo \"running ~/.dotfiles/$script\"\n\
             chmod +x \"$script\" 2>/dev/null\n\
             if command -v timeout >/dev/null 2>&1; then timeout {INSTALL_TIMEOUT_SECS} \"./$script\" </dev/null; \
             else \"./$script\" </dev/null; fi\n\
             code=$?\n\
             if [ $code -eq 124 ]; then echo \"$script did not finish within {INSTALL_TIMEOUT_SECS} s\" >&2; fi\n\
             if [ $code -ne 0 ]; then echo \"$script failed (exit code $code)\" >&2; fi\n\
             exit $code\n\
           fi\n\
         done\n\
         echo 'no install script: linking the dotfiles into the home'\n\
         for file in .[!.]* ..?*; do\n\
           [ -e \"$file\" ] || continue\n\
           case \"$file\" in .git|.gitignore|.gitmodules|.github) continue ;; esac\n\
           ln -sfn \"$HOME/.dotfiles/$file\" \"$HOME/$file\" && echo \"linked ~/$file\"\n\
         done\n\
         exit 0\n"
    )
}

/// Checks a repository given for a space (or a template), within the template's allowed
/// prefixes.
pub fn check_repository(input: &RepositoryInput, prefixes: &[String]) -> ApiResult<Repository> {
    let checked = repository::check(&input.url, input.branch.as_deref(), input.folder.as_deref())
        .map_err(|(field, message)| {
        ApiError::invalid(&format!("repository.{field}"), message)
    })?;
    if !repository::allowed_by(&checked.url, prefixes) {
        return Err(ApiError::invalid(
            "repository.url",
            format!(
                "this template only clones repositories whose URL starts with {}: pick one of those, or another template",
                prefixes
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ));
    }
    Ok(checked)
}

fn state_of(text: Option<&str>) -> SetupState {
    text.and_then(SetupState::parse)
        .unwrap_or(SetupState::Waiting)
}

/// The space's repository and its clone, as pages and the API show them.
pub fn repository_status(space: &space::Model) -> Option<RepositoryStatus> {
    let url = space.repository_url.clone()?;
    Some(RepositoryStatus {
        url,
        branch: space.repository_branch.clone(),
        folder: space.repository_folder.clone().unwrap_or_default(),
        state: state_of(space.clone_state.as_deref()),
        error: space.clone_error.clone(),
    })
}

/// Where terminals start in the space: its repository's folder once cloned (relative to
/// the home).
pub fn workspace_folder(space: &space::Model) -> Option<String> {
    (space.clone_state.as_deref() == Some(SetupState::Cloned.as_str()))
        .then(|| space.repository_folder.clone())
        .flatten()
}

/// The owner's dotfiles as installed in the space.
pub fn dotfiles_status(space: &space::Model) -> Option<DotfilesStatus> {
    Some(DotfilesStatus {
        url: space.dotfiles_url.clone()?,
        state: state_of(space.dotfiles_state.as_deref()),
        error: space.dotfiles_error.clone(),
    })
}

/// The setup's log, written while it grows (at most every [`LOG_EVERY`]) so that the space
/// page follows it. Each write appends what came since the last to the log as it is then, so
/// that several writers at once (a build beside the lifecycle commands) lose nothing.
pub(super) struct LiveLog<'a> {
    services: &'a Services,
    space_id: SpaceId,
    pending: Vec<u8>,
    written: Instant,
}

impl<'a> LiveLog<'a> {
    pub(super) fn new(services: &'a Services, space: &space::Model) -> Self {
        LiveLog {
            services,
            space_id: space.id.clone(),
            pending: Vec::new(),
            written: Instant::now(),
        }
    }

    pub(super) async fn add(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.written.elapsed() >= LOG_EVERY {
            self.write().await;
        }
    }

    pub(super) async fn line(&mut self, line: &str) {
        self.add(format!("{line}\n").as_bytes()).await;
    }

    pub(super) async fn write(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let lock = self.services.setup_logs.of(&self.space_id);
        let _guard = lock.lock().await;
        let found = space::Entity::find_by_id(self.space_id.clone())
            .one(&self.services.db)
            .await;
        let mut text = match found {
            Ok(Some(space)) => space.setup_log.unwrap_or_default(),
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(space = %self.space_id, error = %e, "cannot read the space's setup log");
                return;
            }
        };
        repository::append_log(&mut text, &self.pending);
        self.pending.clear();
        let columns = vec![(space::Column::SetupLog, Expr::value(text))];
        self.services.write_setup(&self.space_id, columns).await;
        self.written = Instant::now();
    }
}

/// The last thing a failed script said, as the reason.
fn reason(said: &str, code: Option<i64>) -> String {
    let lines: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(2)..].join(" ");
    match (tail.is_empty(), code) {
        (false, _) => tail,
        (true, Some(code)) => format!("it ended with exit code {code} and said nothing"),
        (true, None) => "it ended without an exit code (the space stopped?)".into(),
    }
}

impl Services {
    /// Starts `script` under `/bin/sh` in the running space with `env` (no terminal).
    pub(super) async fn start_script(
        &self,
        space_id: &SpaceId,
        script: String,
        env: Vec<String>,
    ) -> Result<crate::runtime::Exec, String> {
        let request = ExecRequest {
            cmd: vec!["/bin/sh".into(), "-c".into(), script],
            env,
            ..Default::default()
        };
        self.runtime
            .exec(space_id, request)
            .await
            .map_err(|e| format!("could not run it in the space: {e}"))
    }

    /// Runs `script` in the running space with `env`, its output going to `log`; the error is
    /// what it said last (or that the image lacks git, or the time ran out).
    pub(super) async fn run_logged(
        &self,
        space_id: &SpaceId,
        script: String,
        env: Vec<String>,
        log: &mut LiveLog<'_>,
        limit: Duration,
    ) -> Result<(), String> {
        let env = GIT_ENV.iter().map(|e| (*e).to_owned()).chain(env).collect();
        let mut exec = self.start_script(space_id, script, env).await?;
        // This run's own output, for its reason.
        let mut said = String::new();
        let ran = tokio::time::timeout(limit, async {
            while let Some(chunk) = exec.output.next().await {
                if let Ok(ExecOutput::Stdout(bytes) | ExecOutput::Stderr(bytes)) = chunk {
                    repository::append_log(&mut said, &bytes);
                    log.add(&bytes).await;
                }
            }
        })
        .await;
        if ran.is_err() {
            return Err(format!(
                "it did not finish within {} minutes",
                limit.as_secs() / 60
            ));
        }
        // The engine may take a moment to record the exit code once the output ended.
        let mut code = None;
        for _ in 0..20 {
            code = exec.control.exit_code().await.map_err(|e| e.to_string())?;
            if code.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match code {
            Some(0) => Ok(()),
            other => Err(reason(&said, other)),
        }
    }

    /// Writes columns of the space's setup and tells its live views.
    pub(super) async fn write_setup(
        &self,
        space_id: &SpaceId,
        columns: Vec<(space::Column, SimpleExpr)>,
    ) {
        let mut update = space::Entity::update_many();
        for (column, value) in columns {
            update = update.col_expr(column, value);
        }
        let written = update
            .filter(space::Column::Id.eq(space_id.clone()))
            .exec(&self.db)
            .await;
        if let Err(e) = written {
            tracing::warn!(space = %space_id, error = %e, "cannot record the space's setup");
        }
        self.space_changed(space_id).await;
    }

    async fn set_clone_state(&self, space_id: &SpaceId, state: SetupState, error: Option<String>) {
        let columns = vec![
            (space::Column::CloneState, Expr::value(state.as_str())),
            (space::Column::CloneError, Expr::value(error)),
        ];
        self.write_setup(space_id, columns).await;
    }

    async fn set_dotfiles_state(
        &self,
        space_id: &SpaceId,
        url: &str,
        state: SetupState,
        error: Option<String>,
    ) {
        let columns = vec![
            (space::Column::DotfilesUrl, Expr::value(url)),
            (space::Column::DotfilesState, Expr::value(state.as_str())),
            (space::Column::DotfilesError, Expr::value(error)),
        ];
        self.write_setup(space_id, columns).await;
    }

    /// The clone of the space's repository, recorded as it goes.
    async fn clone_repository(&self, space: &space::Model, owner: &str, log: &mut LiveLog<'_>) {
        let (Some(url), Some(folder)) = (&space.repository_url, &space.repository_folder) else {
            return;
        };
        self.set_clone_state(&space.id, SetupState::Cloning, None)
            .await;
        log.line(&format!("$ git clone {url} ~/{folder}")).await;
        let env = vec![
            format!("HANGAR_URL={url}"),
            format!("HANGAR_FOLDER={folder}"),
            format!(
                "HANGAR_BRANCH={}",
                space.repository_branch.as_deref().unwrap_or_default()
            ),
        ];
        let outcome = self
            .run_logged(
                &space.id,
                format!("{NEED_GIT}{CLONE_SCRIPT}"),
                env,
                log,
                CLONE_TIMEOUT,
            )
            .await;
        log.write().await;
        let (state, outcome, details) = match outcome {
            Ok(()) => (
                SetupState::Cloned,
                Outcome::Success,
                json!({"url": url, "folder": folder}),
            ),
            Err(error) => {
                tracing::info!(space = %space.id, %error, "the repository's clone failed");
                let details = json!({"url": url, "folder": folder, "error": error});
                (SetupState::Failed, Outcome::Failed, details)
            }
        };
        let error = details["error"].as_str().map(str::to_owned);
        self.set_clone_state(&space.id, state, error).await;
        let target = space_target(owner, &space.name);
        record(&self.db, None, "space.clone", &target, outcome, details).await;
    }

    /// The owner's git identity from the profile (`git config --global`); a failure is only
    /// logged.
    async fn set_identity(&self, space: &space::Model, owner: &user::Model, log: &mut LiveLog<'_>) {
        let identity = vec![
            format!("HANGAR_GIT_NAME={}", owner.display_name),
            format!("HANGAR_GIT_EMAIL={}", owner.email),
        ];
        if let Err(error) = self
            .run_logged(
                &space.id,
                format!("{NEED_GIT}{IDENTITY_SCRIPT}"),
                identity,
                log,
                Duration::from_secs(30),
            )
            .await
        {
            log.line(&format!("the git identity was not set: {error}"))
                .await;
        }
    }

    /// The owner's dotfiles, recorded as they go.
    async fn install_dotfiles(
        &self,
        space: &space::Model,
        owner: &user::Model,
        log: &mut LiveLog<'_>,
    ) {
        let Some(url) = owner.dotfiles_url.clone() else {
            return;
        };
        self.set_dotfiles_state(&space.id, &url, SetupState::Cloning, None)
            .await;
        log.line(&format!("$ install the dotfiles of {url} (~/.dotfiles)"))
            .await;
        let outcome = self
            .run_logged(
                &space.id,
                format!("{NEED_GIT}{}", dotfiles_script()),
                vec![format!("HANGAR_URL={url}")],
                log,
                DOTFILES_TIMEOUT,
            )
            .await;
        log.write().await;
        let (state, error) = match outcome {
            Ok(()) => (SetupState::Cloned, None),
            Err(error) => (SetupState::Failed, Some(error)),
        };
        self.set_dotfiles_state(&space.id, &url, state, error).await;
    }

    /// The first start's setup of a space that now runs: once per space (a second start
    /// finds it done). What an interrupted one was doing is recorded as failed.
    pub async fn set_up_space(&self, space_id: &SpaceId) -> Result<(), String> {
        let found = space::Entity::find_by_id(space_id.clone())
            .one(&self.db)
            .await
            .map_err(|e| e.to_string())?;
        let Some(space) = found else {
            return Ok(());
        };
        let interrupted = "the space stopped (or Hangar restarted) while it ran";
        if space.clone_state.as_deref() == Some(SetupState::Cloning.as_str()) {
            self.set_clone_state(
                space_id,
                SetupState::Failed,
                Some(format!("{interrupted}: choose “Clone again”")),
            )
            .await;
        }
        if let (Some(url), true) = (
            &space.dotfiles_url,
            space.dotfiles_state.as_deref() == Some(SetupState::Cloning.as_str()),
        ) {
            self.set_dotfiles_state(space_id, url, SetupState::Failed, Some(interrupted.into()))
                .await;
        }
        if space.set_up_at.is_some() {
            return Ok(());
        }
        // Claimed once: of two starts racing here, one sets it up.
        let claimed = space::Entity::update_many()
            .col_expr(space::Column::SetUpAt, Expr::value(Utc::now()))
            .filter(space::Column::Id.eq(space_id.clone()))
            .filter(space::Column::SetUpAt.is_null())
            .exec(&self.db)
            .await
            .map_err(|e| e.to_string())?;
        if claimed.rows_affected == 0 {
            return Ok(());
        }
        let owner = self
            .find_user(&space.owner_id)
            .await
            .map_err(|e| e.to_string())?;
        let mut log = LiveLog::new(self, &space);
        // The identity first (the dotfiles may change it), the repository before the dotfiles
        // (their scripts may expect it), as Codespaces does.
        self.set_identity(&space, &owner, &mut log).await;
        self.clone_repository(&space, &owner.username, &mut log)
            .await;
        self.install_dotfiles(&space, &owner, &mut log).await;
        log.write().await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ReposApi for Services {
    async fn rebuild(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpaceDto> {
        self.rebuild_space(caller, id).await
    }

    async fn clone_again(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpaceDto> {
        let space = self.managed_space(caller, id).await?;
        if space.repository_url.is_none() {
            return Err(ApiError::conflict(
                "this space was not made from a repository: there is nothing to clone",
            ));
        }
        if !space.state.is_running() {
            return Err(ApiError::conflict(
                "the space is not running: start it, then choose “Clone again”",
            ));
        }
        match state_of(space.clone_state.as_deref()) {
            SetupState::Failed => {}
            SetupState::Cloned => {
                return Err(ApiError::conflict(
                    "the repository was cloned already: Hangar does not clone over existing work",
                ))
            }
            SetupState::Cloning | SetupState::Waiting => {
                return Err(ApiError::conflict(
                    "the clone is under way (or waits for the space's first start): wait for it",
                ))
            }
        }
        // Claimed once: two clicks start one clone.
        let claimed = space::Entity::update_many()
            .col_expr(
                space::Column::CloneState,
                Expr::value(SetupState::Cloning.as_str()),
            )
            .col_expr(space::Column::CloneError, Expr::value(None::<String>))
            .filter(space::Column::Id.eq(id.clone()))
            .filter(space::Column::CloneState.eq(SetupState::Failed.as_str()))
            .exec(&self.db)
            .await?;
        if claimed.rows_affected == 0 {
            return Err(ApiError::conflict("the clone is under way already"));
        }
        let owner = self.find_user(&space.owner_id).await?;
        let services = self.clone();
        let cloned = space.clone();
        tokio::spawn(async move {
            let mut log = LiveLog::new(&services, &cloned);
            services
                .clone_repository(&cloned, &owner.username, &mut log)
                .await;
        });
        let (space, role) = self.visible_space(caller, id).await?;
        self.space_dto(caller, space, role).await
    }

    async fn dotfiles(&self, caller: &Caller) -> ApiResult<DotfilesSetting> {
        let user = self.find_user(caller.id()).await?;
        Ok(DotfilesSetting {
            url: user.dotfiles_url,
        })
    }

    async fn set_dotfiles(
        &self,
        caller: &Caller,
        input: DotfilesSetting,
    ) -> ApiResult<DotfilesSetting> {
        let url = input
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(repository::url)
            .transpose()
            .map_err(|e| ApiError::invalid("url", e))?;
        user::Entity::update_many()
            .col_expr(user::Column::DotfilesUrl, Expr::value(url.clone()))
            .filter(user::Column::Id.eq(caller.id().clone()))
            .exec(&self.db)
            .await?;
        self.users_changed(vec![caller.id().clone()]);
        Ok(DotfilesSetting { url })
    }

    async fn git_credentials(&self, caller: &Caller) -> ApiResult<Vec<GitCredentialDto>> {
        self.list_git_credentials(caller).await
    }

    async fn set_git_credential(
        &self,
        caller: &Caller,
        host: &str,
        input: SetGitCredential,
    ) -> ApiResult<GitCredentialDto> {
        self.save_git_credential(caller, host, input).await
    }

    async fn delete_git_credential(&self, caller: &Caller, host: &str) -> ApiResult<()> {
        self.remove_git_credential(caller, host).await
    }

    async fn git_ssh_key(&self, caller: &Caller) -> ApiResult<Option<GitSshKeyDto>> {
        self.find_git_ssh_key(caller).await
    }

    async fn make_git_ssh_key(&self, caller: &Caller) -> ApiResult<GitSshKeyDto> {
        self.new_git_ssh_key(caller).await
    }

    async fn delete_git_ssh_key(&self, caller: &Caller) -> ApiResult<()> {
        self.remove_git_ssh_key(caller).await
    }
}
