//! `hangar doctor`: checks the database, the Docker engine, the templates' images, what the
//! host can enforce (volume sizes, network isolation; on Swarm, each node's network rules and
//! no-new-privileges), the site and the listening address, printing for each what is wrong
//! and what to do.

use sea_orm::{ConnectionTrait, Database, EntityTrait, QueryFilter};

use super::OpsResult;
use crate::config::{Config, RuntimeKind, VolumeSizes};
use crate::entities::template;
use crate::runtime::client::DockerClient;

struct Report {
    problems: usize,
}

impl Report {
    fn pass(&self, what: &str, detail: impl std::fmt::Display) {
        println!("ok    {what}: {detail}");
    }

    fn fail(&mut self, what: &str, detail: impl std::fmt::Display, fix: &str) {
        self.problems += 1;
        println!("FAIL  {what}: {detail}\n      fix: {fix}");
    }
}

pub async fn doctor(config: &Config) -> OpsResult {
    let mut report = Report { problems: 0 };

    // The database answers and is Hangar's (its migrations ran), without changing it.
    let db = match Database::connect(config.database_url.as_str()).await {
        Ok(db) => match db.execute_unprepared("SELECT 1").await {
            Ok(_) => {
                report.pass("database", &config.database_url);
                Some(db)
            }
            Err(e) => {
                report.fail(
                    "database",
                    e,
                    "check the database URL and that the server answers",
                );
                None
            }
        },
        Err(e) => {
            report.fail(
                "database",
                e,
                "give --database-url (sqlite://FILE or postgres://...); a SQLite file is created by `hangar serve` on first start",
            );
            None
        }
    };

    let docker = DockerClient::new(config.docker_host.clone());
    let engine = match docker.ping().await {
        Ok(()) => match docker.get().await {
            Ok(client) => match client.version().await {
                Ok(version) => {
                    report.pass(
                        "Docker engine",
                        format!(
                            "{} (API {})",
                            version.version.unwrap_or_default(),
                            version.api_version.unwrap_or_default()
                        ),
                    );
                    Some(client)
                }
                Err(e) => {
                    report.fail("Docker engine", e, "check the engine's logs");
                    None
                }
            },
            Err(e) => {
                report.fail("Docker engine", e, "check DOCKER_HOST or --docker-host");
                None
            }
        },
        Err(e) => {
            report.fail(
                "Docker engine",
                e,
                "start it (Debian: apt-get install docker.io; dockerd) or point --docker-host at one",
            );
            None
        }
    };

    // Every template people can use names an image the engine has (no registry is needed).
    if let (Some(db), Some(engine)) = (&db, &engine) {
        match template::Entity::find()
            .filter(sea_orm::ColumnTrait::eq(&template::Column::Archived, false))
            .all(db)
            .await
        {
            Ok(templates) => {
                for t in templates {
                    match engine.inspect_image(&t.image).await {
                        Ok(_) => report.pass(&format!("template {}", t.name), &t.image),
                        Err(_) => report.fail(
                            &format!("template {}", t.name),
                            format!("image {} is not on the Docker engine", t.image),
                            "build it (`scripts/images.sh` builds Hangar's own) or load it with `docker load`",
                        ),
                    }
                }
            }
            Err(e) => report.fail(
                "templates",
                e,
                "start `hangar serve` once so that the database is set up",
            ),
        }
    }

    let wasm = config.site_root.join("pkg").join("hangar.wasm");
    if wasm.is_file() {
        report.pass("site", config.site_root.display());
    } else {
        report.fail(
            "site",
            format!("{} is missing", wasm.display()),
            "build it with `cargo xtask build --release` (or `make run`), or set --site-root",
        );
    }

    // What the host can enforce of the limits Hangar promises (`/readyz` says what it does).
    // On Swarm the volumes are on the nodes: each node is checked below.
    let on_this_host = config.runtime != RuntimeKind::Swarm;
    match (
        config.volume_sizes,
        config.docker_is_local(),
        crate::runtime::disks::host_support(),
    ) {
        (VolumeSizes::Off, _, _) => report.pass(
            "volume sizes",
            "not enforced, as asked (--volume-sizes off): a space can fill the host's disk",
        ),
        _ if !on_this_host => {}
        (_, false, _) => report.fail(
            "volume sizes",
            "the Docker engine is on another machine: loop devices made here are not its",
            "run Hangar on the Docker host, or accept unsized volumes with --volume-sizes off",
        ),
        (_, _, Err(why)) => report.fail(
            "volume sizes",
            why,
            "run Hangar as root on the Docker host with util-linux and e2fsprogs (scripts/setup.sh)",
        ),
        _ => report.pass(
            "volume sizes",
            format!(
                "enforced (an ext4 image per volume under {})",
                config.data_dir().display()
            ),
        ),
    }
    if config.allow_host_access {
        report.pass(
            "network isolation",
            "off, as asked (--allow-host-access): spaces may reach the host",
        );
    } else {
        match crate::runtime::firewall::host_support() {
            Ok(()) => report.pass(
                "network isolation",
                "spaces will be kept from the host and 169.254.0.0/16 (iptables)",
            ),
            Err(why) => report.fail(
                "network isolation",
                why,
                "run Hangar as root with iptables installed (scripts/setup.sh), or accept it with --allow-host-access",
            ),
        }
    }

    if config.runtime == RuntimeKind::Swarm && engine.is_some() {
        swarm_nodes(&mut report, config).await;
    }

    match std::net::TcpListener::bind(config.listen) {
        Ok(_) => report.pass("listen address", format!("{} is free", config.listen)),
        Err(e) => report.fail(
            "listen address",
            format!("{}: {e}", config.listen),
            "stop what uses it (perhaps a Hangar already serves there) or choose --listen",
        ),
    }

    if report.problems == 0 {
        println!("Everything Hangar needs is in place.");
        Ok(())
    } else {
        Err(format!(
            "{} problem(s) found: see the fixes above",
            report.problems
        ))
    }
}

/// On Swarm: Hangar's helper runs on every node (so its network rules can be installed), and
/// every node gives spaces no-new-privileges.
async fn swarm_nodes(report: &mut Report, config: &Config) {
    use crate::runtime::swarm::{privileges_status, SwarmRuntime, SwarmSettings};
    let runtime = SwarmRuntime::new(
        std::sync::Arc::new(DockerClient::new(config.docker_host.clone())),
        SwarmSettings {
            installation: "doctor".to_owned(),
            cpus_per_cu: config.cpus_per_cu,
            memory_mib_per_cu: config.memory_mib_per_cu,
            pids_per_cu: config.pids_per_cu,
            sized_volumes: config.volume_sizes == VolumeSizes::Loop,
        },
    );
    let nodes = match runtime.check_nodes().await {
        Ok(nodes) => nodes,
        Err(e) => {
            report.fail(
                "swarm nodes",
                e,
                "point --docker-host at a manager of the swarm (docker swarm init)",
            );
            return;
        }
    };
    let mut seen = Vec::new();
    for (name, outcome) in nodes {
        match outcome {
            Ok(facts) => {
                report.pass(
                    &format!("node {name}"),
                    format!(
                        "Docker {}, addresses {}: Hangar's helper installs its network rules",
                        facts.engine_version,
                        facts.addresses.join(", ")
                    ),
                );
                if config.volume_sizes == VolumeSizes::Loop {
                    if facts.loop_devices {
                        report.pass(
                            &format!("volume sizes on {name}"),
                            format!(
                                "enforced (an ext4 image per volume under {}, made by Hangar's \
                                 helper)",
                                crate::runtime::swarm::NODE_VOLUMES
                            ),
                        );
                    } else {
                        report.fail(
                            &format!("volume sizes on {name}"),
                            "its kernel offers no loop devices or no ext4: spaces cannot start there",
                            "load the loop and ext4 modules there, or accept unsized volumes with \
                             --volume-sizes off",
                        );
                    }
                }
                seen.push(facts);
            }
            Err(why) => report.fail(
                &format!("node {name}"),
                why,
                "give the node its io.hangar.engine label and load the hangar/guard image on it \
                 (see docs/swarm.md)",
            ),
        }
    }
    match privileges_status(&seen) {
        Ok(how) => report.pass("no-new-privileges", how),
        Err(why) => report.fail(
            "no-new-privileges",
            why,
            "upgrade the nodes' Docker to 25 or later, or start their dockerd with --no-new-privileges",
        ),
    }
}
