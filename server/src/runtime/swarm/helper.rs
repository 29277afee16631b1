//! Running one of Hangar's short-lived helper containers on a node, through that node's engine,
//! to its end: the guard ([`super::guard`]) and the disks ([`super::disks`]) both work this way,
//! from Hangar's own image ([`GUARD_IMAGE`]), never a template's.

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::GUARD_IMAGE;
use crate::runtime::error::{classify, Missing};
use crate::runtime::RuntimeError;

/// How many of the helper's last lines an error quotes.
const QUOTED_LINES: usize = 20;

/// Creates, starts and waits for the helper `body` on `engine` (node `node`), then removes it;
/// answers what it wrote. `what` names its task in errors ("install the node's network rules").
pub(super) async fn run_to_end(
    engine: &Docker,
    node: &str,
    body: ContainerCreateBody,
    what: &str,
) -> Result<String, RuntimeError> {
    let name = format!(
        "hangar-helper-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let created = match engine
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| classify(&format!("creating the helper to {what} on node {node}"), e))
    {
        Ok(created) => created,
        Err(RuntimeError::NotFound {
            what: Missing::Object,
            ..
        }) => {
            return Err(RuntimeError::Failed(format!(
                "node {node} has no image {GUARD_IMAGE}, Hangar's own helper for its network \
                 rules and sized volumes: build it with `scripts/images.sh guard` and load it \
                 there (`docker save {GUARD_IMAGE} | docker -H <the node's engine> load`)"
            )))
        }
        Err(e) => return Err(e),
    };
    let outcome = async {
        engine
            .start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| classify(&format!("starting the helper to {what}"), e))?;
        let mut waiting = engine.wait_container(
            &created.id,
            Some(WaitContainerOptionsBuilder::new().build()),
        );
        let code = match waiting.next().await {
            Some(Ok(done)) => done.status_code,
            // A non-zero exit comes as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(classify(&format!("waiting for the helper to {what}"), e)),
            None => -1,
        };
        let mut said = String::new();
        let mut logs = engine.logs(
            &created.id,
            Some(
                LogsOptionsBuilder::new()
                    .stdout(true)
                    .stderr(true)
                    .tail("200")
                    .build(),
            ),
        );
        while let Some(Ok(line)) = logs.next().await {
            said.push_str(&line.to_string());
        }
        if code == 0 {
            return Ok(said);
        }
        let tail: Vec<&str> = said.lines().rev().take(QUOTED_LINES).collect();
        Err(RuntimeError::Failed(format!(
            "the helper could not {what} on node {node} (exit {code}): {}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n").trim()
        )))
    }
    .await;
    let _ = engine
        .remove_container(
            &created.id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    outcome
}
