//! The steps of the lifecycle's transitions, each a small value of its own: a feature that
//! needs a new step (a repository's clone, an image build, a hook) adds one to a list here
//! instead of growing the driver's loop.

use app::api::templates::Feature;

use super::Work;
use crate::services::Services;

/// One step of a transition.
#[async_trait::async_trait]
pub trait Step: Send + Sync + 'static {
    /// What the step does, for the log.
    fn name(&self) -> &'static str;
    /// Does it. The error is a sentence for the space's `last_error` (the driver says which
    /// transition failed).
    async fn run(&self, services: &Services, work: &mut Work) -> Result<(), String>;
}

/// Until a space runs: every step must succeed, else the start fails, what was made is
/// removed, and the space is stopped with the reason.
pub const START: &[&dyn Step] = &[&RunContainer];

/// Once a space runs, in the background: each step records its own outcome in the space's
/// history, and none stops the space.
pub const STARTED: &[&dyn Step] = &[&LaunchApps, &GitCredentials, &SetUp, &DevContainer];

/// Stopping (also before a restart): the container goes, the volumes stay.
pub const STOP: &[&dyn Step] = &[&RemoveContainer];

/// Deleting: the container and the volumes go.
pub const DELETE: &[&dyn Step] = &[&RemoveContainerAndVolumes];

/// Creates and starts the space's container.
struct RunContainer;

#[async_trait::async_trait]
impl Step for RunContainer {
    fn name(&self) -> &'static str {
        "run the container"
    }

    async fn run(&self, services: &Services, work: &mut Work) -> Result<(), String> {
        let started = services.runtime.start(&work.spec).await;
        let container_id = match started {
            Ok(id) => id,
            // An image built from the repository that cannot start is dropped, and the
            // space starts as its template made it: its work stays reachable.
            Err(e)
                if work.space.devcontainer_image.as_deref() == Some(work.spec.image.as_str()) =>
            {
                let error = e.to_string();
                tracing::info!(space = %work.space.id, %error, "the built image did not start");
                let _ = services.runtime.stop(&work.spec).await;
                services
                    .devcontainer_start_failed(&work.space.id, &error)
                    .await;
                work.spec = crate::services::spaces::template_spec_of(&work.space, &work.owner)
                    .map_err(|e| e.to_string())?;
                services
                    .runtime
                    .start(&work.spec)
                    .await
                    .map_err(|e| e.to_string())?
            }
            Err(e) => return Err(e.to_string()),
        };
        work.container_id = Some(container_id);
        Ok(())
    }
}

/// Starts the apps of the space's template (code-server, the desktop, the VS Code tunnel),
/// as far as the owner is allowed them.
struct LaunchApps;

#[async_trait::async_trait]
impl Step for LaunchApps {
    fn name(&self) -> &'static str {
        "launch the apps"
    }

    async fn run(&self, services: &Services, work: &mut Work) -> Result<(), String> {
        let features =
            crate::services::features::space_features(&work.space).map_err(|e| e.to_string())?;
        let owner = std::slice::from_ref(&work.space.owner_id);
        let allowed = services
            .allowed_features_of(owner)
            .await
            .map_err(|e| e.to_string())?
            .remove(&work.space.owner_id)
            .unwrap_or_default();
        let launched: Vec<Feature> = features.intersection(&allowed).copied().collect();
        for feature in launched {
            services.launch_app(&work.space, feature).await;
        }
        Ok(())
    }
}

/// Git's credential helper in the space and the broker that answers it with the owner's
/// tokens (see `services::git_credentials`), before the setup's clone needs them.
struct GitCredentials;

#[async_trait::async_trait]
impl Step for GitCredentials {
    fn name(&self) -> &'static str {
        "serve git credentials"
    }

    async fn run(&self, services: &Services, work: &mut Work) -> Result<(), String> {
        services.serve_git_credentials(&work.space).await
    }
}

/// The first start's setup: the owner's git identity, the repository's clone, the owner's
/// dotfiles (once per space; see `services::spaces::setup`). After the apps, which need not
/// wait for a clone.
struct SetUp;

#[async_trait::async_trait]
impl Step for SetUp {
    fn name(&self) -> &'static str {
        "set up the space (git identity, repository, dotfiles)"
    }

    async fn run(&self, services: &Services, work: &mut Work) -> Result<(), String> {
        services.set_up_space(&work.space.id).await
    }
}

/// A space made from a repository whose `devcontainer.json` its template applies: the image
/// built at the first start (then a restart onto it), the lifecycle commands after (see
/// `services::spaces::devcontainer`). After the setup, which clones the repository.
struct DevContainer;

#[async_trait::async_trait]
impl Step for DevContainer {
    fn name(&self) -> &'static str {
        "apply devcontainer.json (build, lifecycle commands)"
    }

    async fn run(&self, services: &Services, work: &mut Work) -> Result<(), String> {
        services.devcontainer_after_start(&work.space.id).await
    }
}

/// Stops and removes the container (the volumes stay).
struct RemoveContainer;

#[async_trait::async_trait]
impl Step for RemoveContainer {
    fn name(&self) -> &'static str {
        "remove the container"
    }

    async fn run(&self, services: &Services, work: &mut Work) -> Result<(), String> {
        services
            .runtime
            .stop(&work.spec)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Removes the container and the volumes.
struct RemoveContainerAndVolumes;

#[async_trait::async_trait]
impl Step for RemoveContainerAndVolumes {
    fn name(&self) -> &'static str {
        "remove the container and the volumes"
    }

    async fn run(&self, services: &Services, work: &mut Work) -> Result<(), String> {
        services
            .runtime
            .remove(&work.spec)
            .await
            .map_err(|e| e.to_string())
    }
}
