//! The connection to the Docker engine that runs spaces, made again whenever it was lost.

use std::time::Duration;

use bollard::Docker;
use tokio::sync::RwLock;

/// A Docker client that Hangar can start without: it connects on first use and again after
/// the engine (or its socket) went away.
#[derive(Debug)]
pub struct DockerClient {
    host: Option<String>,
    client: RwLock<Option<Docker>>,
}

impl DockerClient {
    /// `host` is `unix:///path/docker.sock` or `tcp://host:port`; `None` is the local engine.
    pub fn new(host: Option<String>) -> Self {
        Self {
            host,
            client: RwLock::new(None),
        }
    }

    fn connect(&self) -> Result<Docker, String> {
        let docker = match &self.host {
            Some(host) => Docker::connect_with_host(host),
            None => Docker::connect_with_local_defaults(),
        };
        docker.map_err(|e| format!("Docker engine unreachable: {e}"))
    }

    /// The client, connecting now if there is none yet.
    pub async fn get(&self) -> Result<Docker, String> {
        if let Some(docker) = self.client.read().await.as_ref() {
            return Ok(docker.clone());
        }
        let docker = self.connect()?;
        *self.client.write().await = Some(docker.clone());
        Ok(docker)
    }

    /// Forgets the client, so the next use connects afresh.
    pub async fn reset(&self) {
        *self.client.write().await = None;
    }

    /// Whether the engine answers a ping within two seconds; the error says why not.
    pub async fn ping(&self) -> Result<(), String> {
        let docker = self.get().await?;
        match tokio::time::timeout(Duration::from_secs(2), docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                self.reset().await;
                Err(format!("Docker engine unreachable: {e}"))
            }
            Err(_) => Err("Docker engine did not answer within 2 s".into()),
        }
    }
}
