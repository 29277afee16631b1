//! `hangar doctor`: checks the database, the Docker engine, the templates' images, the site
//! and the listening address, printing for each what is wrong and what to do.

use sea_orm::{ConnectionTrait, Database, EntityTrait, QueryFilter};

use super::OpsResult;
use crate::config::Config;
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
