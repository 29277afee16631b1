//! OOM kills in Hangar's containers, read from the engine's event stream (`oom` events of
//! containers labelled as this installation's).

use std::collections::HashMap;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;

use app::ids::SpaceId;

use super::DockerRuntime;
use crate::runtime::error::classify;
use crate::runtime::labels::{LABEL_INSTALLATION, LABEL_SPACE};
use crate::runtime::{OomStream, RuntimeError};

/// The OOM kills `docker` reports from now on in containers of `installation`.
pub(crate) fn oom_events(docker: &bollard::Docker, installation: &str) -> OomStream {
    let filters: HashMap<&str, Vec<String>> = HashMap::from([
        ("type", vec!["container".to_owned()]),
        ("event", vec!["oom".to_owned()]),
        (
            "label",
            vec![format!("{LABEL_INSTALLATION}={installation}")],
        ),
    ]);
    let options = EventsOptionsBuilder::new().filters(&filters).build();
    docker
        .events(Some(options))
        .filter_map(|event| async move {
            match event {
                Ok(message) => message
                    .actor
                    .and_then(|actor| actor.attributes)
                    .and_then(|mut labels| labels.remove(LABEL_SPACE))
                    .map(|id| Ok(SpaceId::from(id))),
                Err(e) => Some(Err(classify("reading the engine's events", e))),
            }
        })
        .boxed()
}

impl DockerRuntime {
    pub(super) async fn oom_stream(&self) -> Result<OomStream, RuntimeError> {
        let docker = self.client().await?;
        Ok(oom_events(&docker, &self.installation))
    }
}
