//! A space built from its repository's `devcontainer.json` (when its template allows it): once
//! the clone is done, the file is read in the space, the image built through the engine from
//! the repository's files (cached by their content: an unchanged repository is not built
//! again), and the space restarted on it with its volumes; then its once-only lifecycle
//! commands run, and `postStartCommand` at every start. Everything goes to the space's setup
//! log; a failure leaves the space running the template's image with the reason shown.

use std::time::Duration;

use app::api::repos::{BuildState, DeclaredPort, DevContainerStatus, SetupState};
use app::api::spaces::SpaceDto;
use app::ids::SpaceId;
use chrono::Utc;
use futures_util::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::setup::LiveLog;
use super::spec_of;
use crate::domain::devcontainer::{self, quote, Plan};
use crate::domain::lifecycle::AfterStop;
use crate::domain::run_options::RunPolicy;
use crate::entities::{space, template};
use crate::error::{ApiError, ApiResult};
use crate::runtime::{BuildRequest, ExecOutput};
use crate::services::access::Caller;
use crate::services::audit::{record, Outcome};
use crate::services::Services;

/// Longest a build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Largest build context sent to the engine.
const CONTEXT_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Longest each lifecycle command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The repository's image names: `hangar-devcontainer:<content hash>`.
const IMAGE_REPOSITORY: &str = "hangar-devcontainer";

/// Finds the file in the repository's folder: prints the folder's path, then the file's path
/// relative to it (nothing when there is none).
const FIND_SCRIPT: &str = "cd \"$HOME/$HANGAR_FOLDER\" || { echo \"the repository's folder ~/$HANGAR_FOLDER is gone\" >&2; exit 3; }\n\
     pwd\n\
     for f in .devcontainer/devcontainer.json .devcontainer.json .devcontainer/*/devcontainer.json; do\n\
       if [ -f \"$f\" ]; then echo \"$f\"; exit 0; fi\n\
     done\n\
     exit 0\n";

/// A folder of the repository as a tar on the output; the same files give the same bytes where
/// GNU tar is there (names sorted, times and owners left out), which is what the cache hashes.
/// `.git` is left out, and what the folder's `.dockerignore` names, as Docker's client would:
/// patterns from the context's root (`*` within one folder), `**/x` at any depth; its
/// exceptions (`!x`) cannot be expressed to tar and are reported, not applied.
const TAR_SCRIPT: &str = r#"cd "$HOME/$HANGAR_FOLDER/$HANGAR_PATH" || exit 3
if ! tar --version 2>/dev/null | grep -q GNU; then
  [ -f .dockerignore ] && echo 'note: .dockerignore is not applied: the image has no GNU tar' >&2
  exec tar -cf - .
fi
set -- --anchored --no-wildcards-match-slash --exclude=./.git
if [ -f .dockerignore ]; then
  n=0
  while IFS= read -r line || [ -n "$line" ]; do
    line=$(printf '%s' "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
    case "$line" in
    '' | '#'*) continue ;;
    '!'*) echo "note: .dockerignore's exception $line is not applied" >&2; continue ;;
    esac
    n=$((n + 1))
    [ $n -gt 1000 ] && { echo 'note: .dockerignore: only its first 1000 patterns are applied' >&2; break; }
    line=${line#./}; line=${line#/}; line=${line%/}
    case "$line" in
    '**/'*) set -- "$@" --no-anchored --wildcards-match-slash "--exclude=${line#\*\*/}" --anchored --no-wildcards-match-slash ;;
    *'**'*) set -- "$@" --wildcards-match-slash "--exclude=./$line" --no-wildcards-match-slash ;;
    *) set -- "$@" "--exclude=./$line" ;;
    esac
  done <.dockerignore
  echo "applied .dockerignore: $n patterns" >&2
fi
exec tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner "$@" -cf - .
"#;

/// The features' build context: each feature's folder and the Dockerfile that installs them.
const FEATURES_SCRIPT: &str = "set -e\n\
     dir=$(mktemp -d)\n\
     trap 'rm -rf \"$dir\"' EXIT\n\
     i=0\n\
     for path in $HANGAR_FEATURES; do\n\
       if [ ! -f \"$HOME/$HANGAR_FOLDER/$path/install.sh\" ]; then echo \"the local feature $path has no install.sh\" >&2; exit 4; fi\n\
       cp -R \"$HOME/$HANGAR_FOLDER/$path\" \"$dir/feature-$i\"\n\
       i=$((i + 1))\n\
     done\n\
     printf '%s' \"$HANGAR_DOCKERFILE\" > \"$dir/Dockerfile\"\n\
     cd \"$dir\"\n\
     if tar --version 2>/dev/null | grep -q GNU; then\n\
       tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - .\n\
     else tar -cf - .; fi\n";

/// What an exec printed, apart, and how it ended.
struct Captured {
    stdout: Vec<u8>,
    stderr: String,
    code: Option<i64>,
}

fn state_of(space: &space::Model) -> Option<BuildState> {
    space
        .devcontainer_state
        .as_deref()
        .and_then(BuildState::parse)
}

fn plan_of(space: &space::Model) -> Option<Plan> {
    space
        .devcontainer_plan
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
}

/// The space's `devcontainer.json` as pages and the API show it.
pub fn devcontainer_status(space: &space::Model) -> Option<DevContainerStatus> {
    let state = state_of(space)?;
    let plan = plan_of(space);
    Some(DevContainerStatus {
        state,
        error: space.devcontainer_error.clone(),
        config: plan.as_ref().map(|p| p.config.clone()),
        image: space.devcontainer_image.clone(),
        ignored: plan.as_ref().map(|p| p.ignored.clone()).unwrap_or_default(),
        applied: plan.as_ref().map(|p| p.applied.clone()).unwrap_or_default(),
        ports: plan
            .map(|p| {
                p.ports
                    .into_iter()
                    .map(|p| DeclaredPort {
                        port: p.port,
                        label: p.label,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// What the space runs with its `devcontainer.json` applied: the image built last (kept when
/// a rebuild fails, dropped when it cannot start), the file's environment over the
/// template's (never Hangar's own variables), its user, and its run options where the space's
/// template allowed them when it was made.
pub fn apply(space: &space::Model, spec: &mut crate::runtime::SpaceSpec) {
    let (Some(image), Some(plan)) = (&space.devcontainer_image, plan_of(space)) else {
        return;
    };
    spec.image = image.clone();
    for (name, value) in plan.container_env.into_iter().chain(plan.remote_env) {
        if !name.starts_with("HANGAR_") {
            spec.env.insert(name, value);
        }
    }
    spec.user = plan.user;
    if space.devcontainer_run_options {
        let run = plan.run;
        spec.privileged |= run.privileged;
        spec.cap_add = run.capabilities;
        spec.tmpfs = run.tmpfs;
        spec.shm_size_bytes = run.shm_size_bytes;
    }
}

/// What the space's template lets its `devcontainer.json` set (its snapshot), and where its
/// volumes are.
fn run_policy(space: &space::Model) -> Result<RunPolicy, String> {
    let volumes: Vec<app::api::templates::VolumeSpec> =
        crate::services::from_json(&space.volumes, "space volumes").map_err(|e| e.message)?;
    Ok(RunPolicy {
        allowed: space.devcontainer_run_options,
        volume_paths: volumes.into_iter().map(|v| v.mount_path).collect(),
    })
}

/// `${NAME}` in `text` replaced by `env`'s value (empty when it has none).
fn resolve(text: &str, env: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + len];
        out.push_str(env.get(name).map(String::as_str).unwrap_or_default());
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

impl Services {
    async fn set_build_state(&self, space_id: &SpaceId, state: BuildState, error: Option<String>) {
        let columns = vec![
            (
                space::Column::DevcontainerState,
                Expr::value(state.as_str()),
            ),
            (space::Column::DevcontainerError, Expr::value(error)),
        ];
        self.write_setup(space_id, columns).await;
    }

    /// Runs `script` in the space and keeps what it printed (stdout up to `limit` bytes).
    async fn capture(
        &self,
        space_id: &SpaceId,
        script: &str,
        env: Vec<String>,
        limit: usize,
    ) -> Result<Captured, String> {
        let mut exec = self.start_script(space_id, script.to_owned(), env).await?;
        let mut out = Captured {
            stdout: Vec::new(),
            stderr: String::new(),
            code: None,
        };
        let read = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(chunk) = exec.output.next().await {
                match chunk {
                    Ok(ExecOutput::Stdout(bytes)) => {
                        if out.stdout.len() + bytes.len() > limit {
                            return Err(format!("it printed more than {limit} bytes"));
                        }
                        out.stdout.extend_from_slice(&bytes);
                    }
                    Ok(ExecOutput::Stderr(bytes)) => {
                        crate::domain::repository::append_log(&mut out.stderr, &bytes)
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        })
        .await;
        read.map_err(|_| "it did not finish within a minute".to_owned())??;
        out.code = self.exit_code_of(exec.control.clone()).await?;
        Ok(out)
    }

    /// Streams a tar of `path` (in the repository's folder) out of the space into `file`,
    /// hashing it; returns its hash.
    async fn spool_tar(
        &self,
        space_id: &SpaceId,
        script: &str,
        env: Vec<String>,
        file: &std::path::Path,
        log: &mut LiveLog<'_>,
    ) -> Result<String, String> {
        let mut exec = self
            .start_script(space_id, script.to_owned(), env)
            .await
            .map_err(|e| format!("reading the build's files: {e}"))?;
        let mut out = tokio::fs::File::create(file)
            .await
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut said = String::new();
        let copied = tokio::time::timeout(BUILD_TIMEOUT, async {
            while let Some(chunk) = exec.output.next().await {
                match chunk.map_err(|e| e.to_string())? {
                    ExecOutput::Stdout(bytes) => {
                        size += bytes.len() as u64;
                        if size > CONTEXT_MAX {
                            return Err(format!(
                                "the build's files are larger than {} GiB: make the build context smaller",
                                CONTEXT_MAX >> 30
                            ));
                        }
                        hasher.update(&bytes);
                        out.write_all(&bytes)
                            .await
                            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
                    }
                    ExecOutput::Stderr(bytes) => {
                        crate::domain::repository::append_log(&mut said, &bytes);
                        log.add(&bytes).await;
                    }
                }
            }
            out.flush().await.map_err(|e| e.to_string())
        })
        .await;
        copied.map_err(|_| "reading the build's files took too long".to_owned())??;
        match self.exit_code_of(exec.control.clone()).await? {
            Some(0) => Ok(format!("{:x}", hasher.finalize())),
            _ => Err(format!(
                "could not read the build's files: {}",
                said.lines().last().unwrap_or("tar failed")
            )),
        }
    }

    async fn exit_code_of(
        &self,
        control: std::sync::Arc<dyn crate::runtime::ExecControl>,
    ) -> Result<Option<i64>, String> {
        // The engine may take a moment to record the exit code once the output ended.
        for _ in 0..20 {
            let code = control.exit_code().await.map_err(|e| e.to_string())?;
            if code.is_some() {
                return Ok(code);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(None)
    }

    /// Builds `tag` from the tar in `file` unless the engine has it already; the build's lines
    /// go to the log.
    async fn build_cached(
        &self,
        space: &space::Model,
        tag: &str,
        dockerfile: String,
        build: Option<&devcontainer::Build>,
        file: &std::path::Path,
        log: &mut LiveLog<'_>,
    ) -> Result<(), String> {
        if self
            .runtime
            .image_facts(tag)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            log.line(&format!("unchanged since the last build: using {tag}"))
                .await;
            return Ok(());
        }
        log.line(&format!("building {tag}")).await;
        self.set_build_state(&space.id, BuildState::Building, None)
            .await;
        let reader = tokio::fs::File::open(file)
            .await
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let context = futures_util::stream::unfold(reader, |mut reader| async move {
            let mut buffer = bytes::BytesMut::with_capacity(256 * 1024);
            match tokio::io::AsyncReadExt::read_buf(&mut reader, &mut buffer).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(buffer.freeze()), reader)),
                Err(e) => Some((Err(e), reader)),
            }
        })
        .boxed();
        let owner = self
            .find_user(&space.owner_id)
            .await
            .map_err(|e| e.to_string())?
            .username;
        let request = BuildRequest {
            tag: tag.to_owned(),
            dockerfile,
            args: build.map(|b| b.args.clone()).unwrap_or_default(),
            target: build.and_then(|b| b.target.clone()),
            context,
            limits_of: spec_of(space, &owner).map_err(|e| e.to_string())?,
        };
        let (sender, mut lines) = tokio::sync::mpsc::channel::<String>(64);
        let building = self.runtime.build_image(request, sender);
        tokio::pin!(building);
        let built = tokio::time::timeout(BUILD_TIMEOUT, async {
            loop {
                tokio::select! {
                    done = &mut building => {
                        while let Ok(line) = lines.try_recv() {
                            log.add(line.as_bytes()).await;
                        }
                        return done;
                    }
                    Some(line) = lines.recv() => log.add(line.as_bytes()).await,
                }
            }
        })
        .await;
        match built {
            Err(_) => Err(format!(
                "the build did not finish within {} minutes",
                BUILD_TIMEOUT.as_secs() / 60
            )),
            Ok(Err(e)) => Err(format!("the build failed: {e}")),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads the file, builds the image and restarts the space on it; the outcome is recorded
    /// on the space. True when the space restarts.
    async fn build_devcontainer(&self, space: &space::Model, log: &mut LiveLog<'_>) -> bool {
        let spool = self
            .config
            .data_dir()
            .join("builds")
            .join(format!("{}.tar", space.id));
        let outcome = self.read_and_build(space, &spool, log).await;
        let _ = tokio::fs::remove_file(&spool).await;
        let _ = tokio::fs::remove_file(spool.with_extension("features.tar")).await;
        log.write().await;
        let target = self.audit_target_of(space).await;
        match outcome {
            Ok(None) => {
                log.line("no devcontainer.json in the repository: the template's image is used")
                    .await;
                log.write().await;
                self.set_build_state(&space.id, BuildState::Absent, None)
                    .await;
                false
            }
            Ok(Some((plan, image))) => {
                let plan_json = serde_json::to_string(&plan).unwrap_or_default();
                let columns = vec![
                    (
                        space::Column::DevcontainerState,
                        Expr::value(BuildState::Built.as_str()),
                    ),
                    (
                        space::Column::DevcontainerError,
                        Expr::value(None::<String>),
                    ),
                    (space::Column::DevcontainerPlan, Expr::value(plan_json)),
                    (space::Column::DevcontainerImage, Expr::value(image.clone())),
                    (
                        space::Column::DevcontainerCreatedAt,
                        Expr::value(None::<chrono::DateTime<Utc>>),
                    ),
                ];
                self.write_setup(&space.id, columns).await;
                record(
                    &self.db,
                    None,
                    "space.build",
                    &target,
                    Outcome::Success,
                    json!({"config": plan.config, "image": image, "ignored": plan.ignored,
                           "applied": plan.applied}),
                )
                .await;
                log.line(&format!(
                    "restarting the space on {image} (the volumes stay)"
                ))
                .await;
                log.write().await;
                self.restart_on_new_image(&space.id).await
            }
            Err(mut error) => {
                if space.devcontainer_image.is_some() {
                    error.push_str(" (the space keeps the image built before)");
                }
                log.line(&format!("devcontainer.json not applied: {error}"))
                    .await;
                log.write().await;
                self.set_build_state(&space.id, BuildState::Failed, Some(error.clone()))
                    .await;
                record(
                    &self.db,
                    None,
                    "space.build",
                    &target,
                    Outcome::Failed,
                    json!({"error": error}),
                )
                .await;
                false
            }
        }
    }

    /// Restarts a running space so that it runs its new image.
    async fn restart_on_new_image(&self, space_id: &SpaceId) -> bool {
        let Ok(Some(current)) = space::Entity::find_by_id(space_id.clone())
            .one(&self.db)
            .await
        else {
            return false;
        };
        if !current.state.is_running() {
            // Stopped meanwhile: its next start uses the image.
            return false;
        }
        match self.begin_stop(&current, AfterStop::Restart).await {
            Ok(_) => {
                self.drive(space_id.clone());
                true
            }
            Err(e) => {
                tracing::info!(space = %space_id, error = %e, "no restart onto the built image");
                false
            }
        }
    }

    /// The plan and the image the space is to run; None when the repository has no file.
    async fn read_and_build(
        &self,
        space: &space::Model,
        spool: &std::path::Path,
        log: &mut LiveLog<'_>,
    ) -> Result<Option<(Plan, String)>, String> {
        let Some(folder) = space.repository_folder.clone() else {
            return Ok(None);
        };
        let folder_env = format!("HANGAR_FOLDER={folder}");
        let found = self
            .capture(&space.id, FIND_SCRIPT, vec![folder_env.clone()], 8192)
            .await?;
        if found.code != Some(0) {
            return Err(found.stderr.trim().to_owned());
        }
        let listing = String::from_utf8_lossy(&found.stdout).into_owned();
        let mut lines = listing.lines();
        let workspace = lines.next().unwrap_or_default().to_owned();
        let Some(config) = lines.next().map(str::to_owned) else {
            return Ok(None);
        };
        log.line(&format!("reading ~/{folder}/{config}")).await;
        let text = self
            .read_repository_file(&space.id, &folder, &config)
            .await?
            .ok_or_else(|| format!("{config} vanished while it was read"))?;
        let mut plan = devcontainer::plan(&config, &text, &workspace, &run_policy(space)?)?;
        for applied in &plan.applied {
            log.line(&format!("applied (the template allows it): {applied}"))
                .await;
        }
        for ignored in &plan.ignored {
            log.line(&format!("ignored: {ignored}")).await;
        }
        // The base: the image named, or the one built from the Dockerfile.
        let mut image = match (&plan.build, &plan.image) {
            (Some(build), _) => {
                let dockerfile = build.dockerfile_in_context()?;
                if let Some(parent) = spool.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(|e| format!("cannot make {}: {e}", parent.display()))?;
                }
                let env = vec![folder_env.clone(), format!("HANGAR_PATH={}", build.context)];
                let hash = self
                    .spool_tar(&space.id, TAR_SCRIPT, env, spool, log)
                    .await?;
                let recipe =
                    json!({"dockerfile": dockerfile, "args": build.args, "target": build.target});
                let tag = format!(
                    "{IMAGE_REPOSITORY}:{}",
                    &format!("{:x}", Sha256::digest(format!("{hash}{recipe}")))[..20]
                );
                self.build_cached(space, &tag, dockerfile, Some(build), spool, log)
                    .await?;
                tag
            }
            (None, Some(image)) => image.clone(),
            (None, None) => return Err(format!("{config} names no image")),
        };
        if !plan.features.is_empty() {
            let facts = self
                .runtime
                .image_facts(&image)
                .await
                .map_err(|e| e.to_string())?;
            let base_user = facts.map(|f| f.user).unwrap_or_default();
            let mut installs = Vec::new();
            for feature in &plan.features {
                let description = self
                    .read_repository_file(
                        &space.id,
                        &folder,
                        &format!("{}/devcontainer-feature.json", feature.path),
                    )
                    .await?;
                installs.push(devcontainer::feature_env(feature, description.as_deref())?);
            }
            let dockerfile = devcontainer::features_dockerfile(&image, Some(&base_user), &installs);
            let paths: Vec<String> = plan.features.iter().map(|f| f.path.clone()).collect();
            let env = vec![
                folder_env.clone(),
                format!("HANGAR_FEATURES={}", paths.join(" ")),
                format!("HANGAR_DOCKERFILE={dockerfile}"),
            ];
            let file = spool.with_extension("features.tar");
            log.line(&format!("local features: {}", paths.join(", ")))
                .await;
            let hash = self
                .spool_tar(&space.id, FEATURES_SCRIPT, env, &file, log)
                .await?;
            let tag = format!(
                "{IMAGE_REPOSITORY}:{}",
                &format!("{:x}", Sha256::digest(format!("{hash}{image}")))[..20]
            );
            self.build_cached(space, &tag, "Dockerfile".into(), None, &file, log)
                .await?;
            image = tag;
        }
        // `${containerEnv:X}` in remoteEnv: the image's value of X (or the file's containerEnv).
        let mut known: std::collections::BTreeMap<String, String> = self
            .runtime
            .image_facts(&image)
            .await
            .ok()
            .flatten()
            .map(|f| {
                f.env
                    .iter()
                    .filter_map(|e| e.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        known.extend(plan.container_env.clone());
        for value in plan.remote_env.values_mut() {
            *value = resolve(value, &known);
        }
        Ok(Some((plan, image)))
    }

    /// A file of the repository (path relative to its folder); None when absent.
    async fn read_repository_file(
        &self,
        space_id: &SpaceId,
        folder: &str,
        path: &str,
    ) -> Result<Option<String>, String> {
        let script = "f=\"$HOME/$HANGAR_FOLDER/$HANGAR_PATH\"; [ -f \"$f\" ] || exit 44; exec head -c $HANGAR_MAX -- \"$f\"";
        let env = vec![
            format!("HANGAR_FOLDER={folder}"),
            format!("HANGAR_PATH={path}"),
            format!("HANGAR_MAX={}", devcontainer::FILE_MAX + 1),
        ];
        let read = self
            .capture(space_id, script, env, devcontainer::FILE_MAX + 1)
            .await?;
        match read.code {
            Some(0) => String::from_utf8(read.stdout)
                .map(Some)
                .map_err(|_| format!("{path} is not UTF-8 text")),
            Some(44) => Ok(None),
            _ => Err(format!("cannot read {path}: {}", read.stderr.trim())),
        }
    }

    /// Runs a lifecycle command in the repository's folder; its error names it.
    async fn run_lifecycle(
        &self,
        space: &space::Model,
        name: &str,
        command: &devcontainer::Command,
        log: &mut LiveLog<'_>,
    ) -> Result<(), String> {
        let folder = space.repository_folder.clone().unwrap_or_default();
        log.line(&format!("$ {name}")).await;
        let script = format!(
            "cd \"$HOME\"/{} || exit 3\n{}\n",
            quote(&folder),
            command.script()
        );
        self.run_logged(&space.id, script, Vec::new(), log, COMMAND_TIMEOUT)
            .await
            .map_err(|e| format!("{name} failed: {e}"))
    }

    /// After every start of a space made from a repository: builds from its
    /// `devcontainer.json` the first time (then restarts it), runs the once-only lifecycle
    /// commands in a new container of the built image, and `postStartCommand`.
    pub async fn devcontainer_after_start(&self, space_id: &SpaceId) -> Result<(), String> {
        let Some(space) = space::Entity::find_by_id(space_id.clone())
            .one(&self.db)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let cloned = space.clone_state.as_deref() == Some(SetupState::Cloned.as_str());
        if space.repository_url.is_none() || !cloned {
            return Ok(());
        }
        match state_of(&space) {
            None => {
                if !self.template_allows(&space).await {
                    return Ok(());
                }
                let claimed = self.claim_build(space_id, true).await?;
                if !claimed {
                    return Ok(());
                }
                let mut log = LiveLog::new(self, &space);
                self.build_devcontainer(&space, &mut log).await;
            }
            Some(BuildState::Reading | BuildState::Building) => {
                // The space stopped (or Hangar restarted) during the build.
                self.set_build_state(
                    space_id,
                    BuildState::Failed,
                    Some("the space stopped (or Hangar restarted) during the build: choose “Rebuild”".into()),
                )
                .await;
            }
            // A failed rebuild keeps the image built before, with its commands.
            Some(BuildState::Built | BuildState::Failed | BuildState::Absent) => {
                if space.devcontainer_image.is_some() {
                    self.run_lifecycle_commands(&space).await;
                }
            }
        }
        Ok(())
    }

    async fn template_allows(&self, space: &space::Model) -> bool {
        let Some(template_id) = &space.template_id else {
            return false;
        };
        matches!(
            template::Entity::find_by_id(template_id.clone()).one(&self.db).await,
            Ok(Some(t)) if t.devcontainer
        )
    }

    /// Marks the space as reading its file, once (of two racing, one wins): from never looked
    /// (`first`) or from a finished build (a rebuild).
    async fn claim_build(&self, space_id: &SpaceId, first: bool) -> Result<bool, String> {
        let mut update = space::Entity::update_many()
            .col_expr(
                space::Column::DevcontainerState,
                Expr::value(BuildState::Reading.as_str()),
            )
            .col_expr(
                space::Column::DevcontainerError,
                Expr::value(None::<String>),
            )
            .filter(space::Column::Id.eq(space_id.clone()));
        update = if first {
            update.filter(space::Column::DevcontainerState.is_null())
        } else {
            update.filter(space::Column::DevcontainerState.is_in([
                BuildState::Built.as_str(),
                BuildState::Failed.as_str(),
                BuildState::Absent.as_str(),
            ]))
        };
        let claimed = update.exec(&self.db).await.map_err(|e| e.to_string())?;
        if claimed.rows_affected == 1 {
            self.space_changed(space_id).await;
        }
        Ok(claimed.rows_affected == 1)
    }

    /// In a space running its built image: the once-only commands (and the editor's
    /// extensions) in a new container, then `postStartCommand`.
    async fn run_lifecycle_commands(&self, space: &space::Model) {
        let Some(plan) = plan_of(space) else {
            return;
        };
        let mut log = LiveLog::new(self, space);
        if space.devcontainer_created_at.is_none() {
            // Claimed once: of two starts racing here, one runs them.
            let claimed = space::Entity::update_many()
                .col_expr(
                    space::Column::DevcontainerCreatedAt,
                    Expr::value(Utc::now()),
                )
                .filter(space::Column::Id.eq(space.id.clone()))
                .filter(space::Column::DevcontainerCreatedAt.is_null())
                .exec(&self.db)
                .await;
            if !matches!(claimed, Ok(r) if r.rows_affected == 1) {
                return;
            }
            for (name, command) in plan.on_creation() {
                if let Err(error) = self.run_lifecycle(space, name, command, &mut log).await {
                    // As the spec says: what follows a failed command does not run.
                    log.line(&error).await;
                    log.write().await;
                    let columns = vec![(space::Column::DevcontainerError, Expr::value(error))];
                    self.write_setup(&space.id, columns).await;
                    return;
                }
            }
            self.install_extensions(space, &plan, &mut log).await;
        }
        if let Some(command) = &plan.post_start {
            if let Err(error) = self
                .run_lifecycle(space, "postStartCommand", command, &mut log)
                .await
            {
                log.line(&error).await;
                let columns = vec![(space::Column::DevcontainerError, Expr::value(error))];
                self.write_setup(&space.id, columns).await;
            }
        }
        log.write().await;
    }

    /// `customizations.vscode.extensions`, into code-server where the image has it.
    async fn install_extensions(&self, space: &space::Model, plan: &Plan, log: &mut LiveLog<'_>) {
        if plan.extensions.is_empty() {
            return;
        }
        let list: Vec<String> = plan.extensions.iter().map(|e| quote(e)).collect();
        let script = format!(
            "if ! command -v code-server >/dev/null 2>&1; then echo 'code-server is not in this image: the extensions are not installed'; exit 0; fi\n\
             for extension in {}; do code-server --install-extension \"$extension\" || echo \"could not install $extension\"; done\n",
            list.join(" ")
        );
        log.line("$ install the editor's extensions").await;
        if let Err(error) = self
            .run_logged(&space.id, script, Vec::new(), log, COMMAND_TIMEOUT)
            .await
        {
            log.line(&format!("the extensions were not installed: {error}"))
                .await;
        }
    }

    /// Records that the space's built image could not start, so that it starts on the
    /// template's image from now on (until a rebuild).
    pub async fn devcontainer_start_failed(&self, space_id: &SpaceId, error: &str) {
        let columns = vec![
            (space::Column::DevcontainerState, Expr::value(BuildState::Failed.as_str())),
            (space::Column::DevcontainerImage, Expr::value(None::<String>)),
            (
                space::Column::DevcontainerError,
                Expr::value(format!(
                    "the built image did not start ({error}): the space runs the template's image; fix devcontainer.json and choose “Rebuild”"
                )),
            ),
        ];
        self.write_setup(space_id, columns).await;
    }

    /// Reads the repository's `devcontainer.json` again, builds (unless unchanged) and
    /// restarts the space on the image, its volumes kept; the once-only commands run again in
    /// the new container.
    pub async fn rebuild_space(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpaceDto> {
        let space = self.managed_space(caller, id).await?;
        if space.repository_url.is_none() {
            return Err(ApiError::conflict(
                "this space was not made from a repository: there is no devcontainer.json to build",
            ));
        }
        if !self.template_allows(&space).await {
            return Err(ApiError::conflict(
                "its template does not build spaces from devcontainer.json: an admin can allow it on the template",
            ));
        }
        if !space.state.is_running() {
            return Err(ApiError::conflict(
                "the space is not running: start it, then choose “Rebuild”",
            ));
        }
        if space.clone_state.as_deref() != Some(SetupState::Cloned.as_str()) {
            return Err(ApiError::conflict(
                "the repository is not cloned yet: wait for the clone (or choose “Clone again”)",
            ));
        }
        let claimed = self
            .claim_build(id, state_of(&space).is_none())
            .await
            .map_err(ApiError::internal)?;
        if !claimed {
            return Err(ApiError::conflict(
                "a build is under way already: wait for it",
            ));
        }
        let services = self.clone();
        let building = space.clone();
        tokio::spawn(async move {
            let mut log = LiveLog::new(&services, &building);
            log.line("$ rebuild from devcontainer.json").await;
            services.build_devcontainer(&building, &mut log).await;
        });
        let (space, role) = self.visible_space(caller, id).await?;
        self.space_dto(caller, space, role).await
    }
}
