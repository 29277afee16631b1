//! What both runtimes share in listing and removing the objects an installation made (for the
//! orphan sweep): which objects it may call its own, and what a removal's outcome means.

use std::collections::HashMap;

use bollard::errors::Error as DockerError;

use super::error::removed;
use super::labels::{labelled, owner_of, Filters, Owner, LABEL_MANAGED, LABEL_SPACE};
use super::{ManagedObject, RuntimeError};

/// The objects an installation lists as its own: those it labelled, and those labelled as
/// Hangar's with no installation at all (made before installations had ids), never another
/// installation's.
pub(crate) struct Listing<'a> {
    installation: &'a str,
    pub found: Vec<ManagedObject>,
}

impl<'a> Listing<'a> {
    pub fn new(installation: &'a str) -> Self {
        Self {
            installation,
            found: Vec::new(),
        }
    }

    /// Keeps the object unless it is another installation's.
    pub fn keep(
        &mut self,
        kind: &str,
        id: String,
        name: String,
        labels: Option<&HashMap<String, String>>,
    ) {
        let unlabelled = match owner_of(labels, self.installation) {
            Owner::Us => false,
            Owner::Nobody => true,
            Owner::AnotherInstallation => return,
        };
        self.found.push(ManagedObject {
            kind: kind.into(),
            id,
            space_id: labels
                .and_then(|l| l.get(LABEL_SPACE))
                .cloned()
                .unwrap_or_default(),
            name,
            unlabelled,
        });
    }
}

/// The filter that lists every object labelled as Hangar's.
pub(crate) fn managed_filter() -> Filters {
    labelled(vec![format!("{LABEL_MANAGED}=true")])
}

/// The outcome of removing `object`: gone already is as good as removed.
pub(crate) fn removed_object(
    object: &ManagedObject,
    answer: Result<(), DockerError>,
) -> Result<(), RuntimeError> {
    removed(&format!("removing {} {}", object.kind, object.name), answer)
}
