//! A space's use of CPU, memory, processes and network, read from the engine's stats (one
//! reading: the engine measures the CPU over about a second itself).

use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt;

use app::ids::SpaceId;

use super::DockerRuntime;
use crate::runtime::error::found;
use crate::runtime::labels::container_name;
use crate::runtime::{RuntimeError, SpaceStats};

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The stats as Hangar keeps them; None for a container that does not run.
pub(crate) fn space_stats_of(
    stats: &bollard::models::ContainerStatsResponse,
) -> Option<SpaceStats> {
    let cpu = stats.cpu_stats.as_ref()?;
    let before = stats.precpu_stats.as_ref();
    let total = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let cpu_delta = total(Some(cpu)).saturating_sub(total(before));
    let system_delta = cpu
        .system_cpu_usage
        .unwrap_or(0)
        .saturating_sub(before.and_then(|b| b.system_cpu_usage).unwrap_or(0));
    let cpus = f64::from(cpu.online_cpus.unwrap_or(1).max(1));
    let cpu_millis = if system_delta == 0 {
        0
    } else {
        (cpu_delta as f64 / system_delta as f64 * cpus * 1000.0).round() as i64
    };
    let memory = stats.memory_stats.as_ref();
    let used = memory.and_then(|m| m.usage).unwrap_or(0);
    // As `docker stats`: the page cache the kernel can take back is not the space's.
    let cache = memory
        .and_then(|m| m.stats.as_ref())
        .and_then(|s| {
            s.get("inactive_file")
                .or_else(|| s.get("total_inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    let limit = memory
        .and_then(|m| m.limit)
        // No limit reads as the machine's memory; an absurd value means none.
        .filter(|l| *l > 0 && *l < u64::MAX / 2);
    let (rx, tx) = stats
        .networks
        .as_ref()
        .map(|n| {
            n.values().fold((0u64, 0u64), |(rx, tx), i| {
                (
                    rx.saturating_add(i.rx_bytes.unwrap_or(0)),
                    tx.saturating_add(i.tx_bytes.unwrap_or(0)),
                )
            })
        })
        .unwrap_or_default();
    Some(SpaceStats {
        cpu_millis,
        memory_bytes: as_i64(used.saturating_sub(cache)),
        memory_limit_bytes: limit.map(as_i64),
        pids: as_i64(
            stats
                .pids_stats
                .as_ref()
                .and_then(|p| p.current)
                .unwrap_or(0),
        ),
        net_rx_bytes: as_i64(rx),
        net_tx_bytes: as_i64(tx),
    })
}

/// One reading of container `name`'s stats from `docker`; None when it has no such container.
pub(crate) async fn container_stats(
    docker: &bollard::Docker,
    name: &str,
) -> Result<Option<SpaceStats>, RuntimeError> {
    let options = StatsOptionsBuilder::new()
        .stream(false)
        .one_shot(false)
        .build();
    let mut stream = docker.stats(name, Some(options));
    let Some(read) = stream.next().await else {
        return Ok(None);
    };
    let Some(stats) = found("reading the space's stats", read)? else {
        return Ok(None);
    };
    Ok(space_stats_of(&stats))
}

impl DockerRuntime {
    pub(super) async fn space_stats(
        &self,
        space_id: &SpaceId,
    ) -> Result<Option<SpaceStats>, RuntimeError> {
        let docker = self.client().await?;
        container_stats(&docker, &container_name(space_id)).await
    }
}
