//! What goes wrong in a runtime, by kind, and the one reading of the engine's errors that
//! decides the kind: callers match on the variant (a missing object is often fine, an engine
//! that does not answer says nothing about the spaces), never on the text.

use std::future::Future;

use bollard::errors::Error as DockerError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine cannot be reached: nothing can be concluded about the containers.
    #[error("{0}")]
    Unavailable(String),
    /// The engine has no such object (container, volume, network, service, node, path...).
    #[error("{message}")]
    NotFound { what: Missing, message: String },
    /// Something that exists is in the way: a name taken, an object in use or being removed,
    /// an update that raced another.
    #[error("{0}")]
    Conflict(String),
    /// No room: no node with the CPU and memory a space reserves, a disk out of space.
    #[error("{0}")]
    NoRoom(String),
    /// The engine refused or failed the operation, or Hangar refuses it; the message says why.
    #[error("{0}")]
    Failed(String),
}

/// What the engine found missing, where a caller acts on which it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A network: the shared spaces network replaced by another server's, or a space's
    /// overlay removed under a start.
    Network,
    /// A device: one a container is given that its host lacks (`/dev/loop-control` on a node
    /// without loop devices), or the device a volume mounts (a disk image whose loop device
    /// went with a reboot).
    Device,
    /// Any other object.
    Object,
}

impl RuntimeError {
    /// Something other than a network is not there; the message says what.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            what: Missing::Object,
            message: message.into(),
        }
    }
}

/// The engine's error as a [`RuntimeError`], `doing` saying what was being done: the engine's
/// refusals by their status (404 not found, 409 conflict) and, where its status says too
/// little, by its words; anything else (no connection, a broken answer) as unreachable.
pub(crate) fn classify(doing: &str, error: DockerError) -> RuntimeError {
    match error {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => {
            let sentence = format!("{doing}: {message}");
            if names_a_missing_device(&message) {
                RuntimeError::NotFound {
                    what: Missing::Device,
                    message: sentence,
                }
            } else if names_a_missing_network(&message) {
                // Docker says so with 404, or with 500 from a start.
                RuntimeError::NotFound {
                    what: Missing::Network,
                    message: sentence,
                }
            } else if status_code == 404 {
                RuntimeError::not_found(sentence)
            } else if status_code == 409 || message.contains("out of sequence") {
                // Swarm answers a service update that raced another with a 500.
                RuntimeError::Conflict(sentence)
            } else if out_of_space(&message) {
                RuntimeError::NoRoom(sentence)
            } else {
                RuntimeError::Failed(sentence)
            }
        }
        other => RuntimeError::Unavailable(format!("{doing}: Docker engine unreachable: {other}")),
    }
}

/// The engine's answer to a lookup, `None` where it has no such object.
pub(crate) fn found<T>(
    doing: &str,
    answer: Result<T, DockerError>,
) -> Result<Option<T>, RuntimeError> {
    match answer {
        Ok(found) => Ok(Some(found)),
        Err(e) => match classify(doing, e) {
            RuntimeError::NotFound { .. } => Ok(None),
            e => Err(e),
        },
    }
}

/// The engine's answer to a removal: an object gone already is as good as removed.
pub(crate) fn removed<T>(doing: &str, answer: Result<T, DockerError>) -> Result<(), RuntimeError> {
    found(doing, answer).map(|_| ())
}

/// Whether the engine answered "not modified": what was asked was already so (a stopped
/// container asked to stop), which is no error at all.
pub(crate) fn unchanged(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 304,
            ..
        }
    )
}

/// A failure the engine reported in its own words `said` (a Swarm task's error), as
/// `message`.
pub(crate) fn reported(message: String, said: &str) -> RuntimeError {
    if names_a_missing_device(said) {
        RuntimeError::NotFound {
            what: Missing::Device,
            message,
        }
    } else if names_a_missing_network(said) {
        RuntimeError::NotFound {
            what: Missing::Network,
            message,
        }
    } else {
        RuntimeError::Failed(message)
    }
}

/// A device given to a container that its host lacks, or a volume whose device cannot be
/// mounted (Docker's words for both).
fn names_a_missing_device(said: &str) -> bool {
    said.contains("adding custom device")
        || said.contains("error while mounting volume")
        || said.contains("failed to mount local volume")
}

fn names_a_missing_network(said: &str) -> bool {
    said.contains("network") && said.contains("not found")
}

fn out_of_space(said: &str) -> bool {
    let said = said.to_ascii_lowercase();
    said.contains("no space left") || said.contains("quota exceeded")
}

/// Runs `start`, and once more when it failed because a network it was given is gone
/// (another server settled on another spaces network, or a space's overlay was removed under
/// it); `forget` runs before the second attempt, so that it looks the network up afresh.
pub(crate) async fn again_if_network_gone<T, Attempt>(
    mut start: impl FnMut() -> Attempt,
    forget: impl Future<Output = ()>,
) -> Result<T, RuntimeError>
where
    Attempt: Future<Output = Result<T, RuntimeError>>,
{
    match start().await {
        Err(RuntimeError::NotFound {
            what: Missing::Network,
            ..
        }) => {
            forget.await;
            start().await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status_code: u16, message: &str) -> RuntimeError {
        classify(
            "doing",
            DockerError::DockerResponseServerError {
                status_code,
                message: message.to_owned(),
            },
        )
    }

    #[test]
    fn refusals_are_kinds_with_the_same_words() {
        let missing = refusal(404, "No such container: hangar-x");
        assert!(matches!(
            missing,
            RuntimeError::NotFound {
                what: Missing::Object,
                ..
            }
        ));
        assert_eq!(missing.to_string(), "doing: No such container: hangar-x");
        for status in [404, 500] {
            assert!(matches!(
                refusal(status, "network 1f2e not found"),
                RuntimeError::NotFound {
                    what: Missing::Network,
                    ..
                }
            ));
        }
        for words in [
            "error gathering device information while adding custom device \"/dev/loop-control\": no such file or directory",
            "error while mounting volume '/var/lib/docker/volumes/x/_data': failed to mount local volume: no such file or directory",
        ] {
            assert!(matches!(
                refusal(500, words),
                RuntimeError::NotFound {
                    what: Missing::Device,
                    ..
                }
            ));
            assert!(matches!(
                reported(words.to_owned(), words),
                RuntimeError::NotFound {
                    what: Missing::Device,
                    ..
                }
            ));
        }
        assert!(matches!(refusal(409, "in use"), RuntimeError::Conflict(_)));
        assert!(matches!(
            refusal(
                500,
                "rpc error: code = Unknown desc = update out of sequence"
            ),
            RuntimeError::Conflict(_)
        ));
        let full = refusal(500, "write /home/dev/a: No space left on device");
        assert!(matches!(full, RuntimeError::NoRoom(_)));
        assert_eq!(
            full.to_string(),
            "doing: write /home/dev/a: No space left on device"
        );
        assert!(matches!(
            refusal(500, "something else"),
            RuntimeError::Failed(_)
        ));
    }

    #[test]
    fn an_engine_that_does_not_answer_is_unavailable() {
        let error = classify("listing", DockerError::RequestTimeoutError);
        assert!(matches!(error, RuntimeError::Unavailable(_)));
        assert!(error
            .to_string()
            .starts_with("listing: Docker engine unreachable: "));
    }

    #[tokio::test]
    async fn a_start_is_tried_again_once_when_its_network_is_gone() {
        let tries = std::cell::Cell::new(0);
        let forgotten = std::cell::Cell::new(false);
        let start = || async {
            tries.set(tries.get() + 1);
            Err::<(), _>(RuntimeError::NotFound {
                what: Missing::Network,
                message: "network gone".into(),
            })
        };
        let result = again_if_network_gone(start, async { forgotten.set(true) }).await;
        assert!(result.is_err());
        assert_eq!(tries.get(), 2);
        assert!(forgotten.get());

        tries.set(0);
        let start = || async {
            tries.set(tries.get() + 1);
            Err::<(), _>(RuntimeError::not_found("no such container"))
        };
        let _ = again_if_network_gone(start, async {}).await;
        assert_eq!(tries.get(), 1);
    }
}
