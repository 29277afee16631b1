//! The metrics that count what exists now, read when scraped.

use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};

use super::Services;
use crate::entities::space;
use app::lifecycle::SpaceState;

impl Services {
    /// Sets the gauges that count what exists now (spaces by state, terminal sessions, SSH
    /// connections, database connections).
    pub async fn refresh_gauges(&self) {
        let services = self;
        let counts: Result<Vec<(SpaceState, i64)>, _> = space::Entity::find()
            .select_only()
            .column(space::Column::State)
            .column_as(
                sea_orm::sea_query::Expr::col(space::Column::Id).count(),
                "n",
            )
            .group_by(space::Column::State)
            .into_tuple()
            .all(&services.db)
            .await;
        if let Ok(counts) = counts {
            for state in SpaceState::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == state)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("hangar_spaces", "state" => state.as_str()).set(n as f64);
            }
        }
        metrics::gauge!("hangar_terminal_sessions").set(services.terminals.session_count() as f64);
        metrics::gauge!("hangar_ssh_sessions").set(services.ssh.count() as f64);
        let (size, idle) = match services.db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => {
                let pool = services.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            sea_orm::DatabaseBackend::Postgres => {
                let pool = services.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        };
        metrics::gauge!("hangar_db_connections", "state" => "open").set(f64::from(size));
        metrics::gauge!("hangar_db_connections", "state" => "idle").set(idle as f64);
    }
}
