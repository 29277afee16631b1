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

impl DockerRuntime {
    pub(super) async fn oom_stream(&self) -> Result<OomStream, RuntimeError> {
        let docker = self.client().await?;
        let filters: HashMap<&str, Vec<String>> = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("event", vec!["oom".to_owned()]),
            (
                "label",
                vec![format!("{LABEL_INSTALLATION}={}", self.installation)],
            ),
        ]);
        let options = EventsOptionsBuilder::new().filters(&filters).build();
        let events = docker.events(Some(options)).filter_map(|event| async move {
            match event {
                Ok(message) => message
                    .actor
                    .and_then(|actor| actor.attributes)
                    .and_then(|mut labels| labels.remove(LABEL_SPACE))
                    .map(|id| Ok(SpaceId::from(id))),
                Err(e) => Some(Err(classify("reading the engine's events", e))),
            }
        });
        Ok(events.boxed())
    }
}
