//! Building images (from a space's `devcontainer.json`) on the engine: the classic builder, so
//! that a local base image is used as it is; each build step's container on the spaces'
//! network (kept from the host and the metadata address like the spaces) within the space's
//! compute limits; the image labelled as Hangar's so that an operator can prune them.

use std::collections::HashMap;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use super::DockerRuntime;
use crate::runtime::container::compute_limits;
use crate::runtime::error::{classify, found};
use crate::runtime::labels::{LABEL_INSTALLATION, LABEL_MANAGED};
use crate::runtime::{BuildRequest, ImageFacts, RuntimeError};

/// Marks images built for spaces.
pub const LABEL_BUILT: &str = "io.hangar.devcontainer";
/// The period CPU quotas are counted in, µs.
const CPU_PERIOD: i64 = 100_000;

impl DockerRuntime {
    pub(super) async fn build(
        &self,
        request: BuildRequest,
        log: tokio::sync::mpsc::Sender<String>,
    ) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        let network_id = self.spaces_network(&docker).await?;
        // The build's containers are kept from the host like the spaces are.
        let _ = self.guard_network(&docker, &network_id).await;
        let (nano_cpus, memory) = compute_limits(
            request.limits_of.compute_units,
            self.cpus_per_cu,
            self.memory_mib_per_cu,
        );
        let labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_INSTALLATION.to_owned(), self.installation.clone()),
            (LABEL_BUILT.to_owned(), request.limits_of.id.to_string()),
        ]);
        let args: HashMap<String, String> = request.args.clone().into_iter().collect();
        let mut options = BuildImageOptionsBuilder::new()
            .t(&request.tag)
            .dockerfile(&request.dockerfile)
            .buildargs(&args)
            .labels(&labels)
            .rm(true)
            .forcerm(true)
            .networkmode(&network_id);
        if let Some(target) = &request.target {
            options = options.target(target);
        }
        if let Some(memory) = memory {
            options = options.memory(i32::try_from(memory).unwrap_or(i32::MAX));
        }
        if let Some(nano_cpus) = nano_cpus {
            let quota = nano_cpus * CPU_PERIOD / 1_000_000_000;
            options = options
                .cpuperiod(CPU_PERIOD as i32)
                .cpuquota(i32::try_from(quota).unwrap_or(i32::MAX));
        }
        let mut progress = docker.build_image(
            options.build(),
            None,
            Some(bollard::body_try_stream(request.context)),
        );
        while let Some(item) = progress.next().await {
            let info = item.map_err(|e| classify("building the image", e))?;
            if let Some(detail) = info.error_detail {
                let message = detail
                    .message
                    .unwrap_or_else(|| "the build failed without saying why".into());
                return Err(RuntimeError::Failed(message.trim().to_owned()));
            }
            let line = info.stream.or(info.status);
            if let Some(line) = line.filter(|l| !l.is_empty()) {
                // The reader may be gone (the space stopped): the build still finishes.
                let _ = log.send(line).await;
            }
        }
        Ok(())
    }

    pub(super) async fn facts(&self, image: &str) -> Result<Option<ImageFacts>, RuntimeError> {
        let docker = self.client().await?;
        let inspected = docker.inspect_image(image).await;
        let Some(info) = found(&format!("inspecting image `{image}`"), inspected)? else {
            return Ok(None);
        };
        let config = info.config.unwrap_or_default();
        Ok(Some(ImageFacts {
            user: config.user.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
        }))
    }
}
