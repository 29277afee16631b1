//! Operators' views of the Docker engine: objects Hangar made that no space owns.

use serde::{Deserialize, Serialize};

/// A Docker object labelled as Hangar's.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerObject {
    /// `container`, `volume`, `network`, or `disk` (a volume's disk image and its loop
    /// device, named by the image's path).
    pub kind: String,
    pub name: String,
    /// What Docker knows it by (a disk: its path).
    pub id: String,
    /// The space its label names (empty when none).
    pub space_id: String,
}

/// What `GET /api/v1/admin/orphans` finds.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrphanReport {
    /// This installation's objects whose space is unknown or deleted: `DELETE
    /// /api/v1/admin/orphans` removes them.
    pub orphans: Vec<DockerObject>,
    /// Hangar objects with no installation label (made before installations had ids) whose
    /// space this installation does not know: they may be another installation's, so they
    /// are removed only one by one, by name (`DELETE /api/v1/admin/unlabelled/{name}`).
    pub unlabelled: Vec<DockerObject>,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{DockerObject, OrphanReport};
    use crate::api::spaces::{AuditEventDto, AuditFilter};
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;

    /// The audit log (admins only).
    #[async_trait::async_trait]
    pub trait AuditApi: Send + Sync + 'static {
        async fn audit_events(
            &self,
            caller: &Caller,
            filter: AuditFilter,
        ) -> ApiResult<Vec<AuditEventDto>>;
    }

    /// Operators' actions on the Docker engine (admins only).
    #[async_trait::async_trait]
    pub trait AdminApi: Send + Sync + 'static {
        async fn orphans(&self, caller: &Caller) -> ApiResult<OrphanReport>;
        async fn remove_orphans(&self, caller: &Caller) -> ApiResult<Vec<DockerObject>>;
        async fn remove_unlabelled(
            &self,
            caller: &Caller,
            name: &str,
        ) -> ApiResult<Vec<DockerObject>>;
    }
}
