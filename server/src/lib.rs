//! Hangar's server: configuration, data model, services, Docker runtime and HTTP wiring.
//! The `hangar` binary is a thin `main` over [`serve`].

pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod entities;
pub mod error;
pub mod http;
pub mod live;
pub mod metrics;
pub mod ops;
pub mod proxy;
pub mod runtime;
pub mod services;
pub mod ssh;
pub mod tar;
pub mod terminal;
pub mod validate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::auth::rate_limit::LoginRateLimiter;
use crate::auth::session_store::DbSessionStore;
use crate::auth::AuthService;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::http::AppState;

/// Opens the database (migrating it), makes the first admin if needed and connects to Docker.
pub async fn build_state(config: Config) -> ApiResult<AppState> {
    build_state_with(config, Arc::new(domain::clock::SystemClock)).await
}

/// [`build_state`] with the clock the rules go by (tests pass one they can move).
pub async fn build_state_with(
    config: Config,
    clock: Arc<dyn domain::clock::Clock>,
) -> ApiResult<AppState> {
    config.check().map_err(ApiError::bad_request)?;
    let db = db::connect(&config.database_url).await?;
    if let Some(password) = bootstrap::ensure_first_admin(&db, &config).await? {
        // Shown once, on purpose: nobody else knows it.
        println!(
            "\n  First admin created: username `{}`, password `{password}`\n  \
             Sign in and change it; it will not be shown again.\n",
            config.admin_user
        );
    }
    bootstrap::ensure_default_template(&db, &config).await?;
    let installation = bootstrap::installation_id(&db).await?;
    tracing::info!(%installation, "installation id (labels every Docker object it makes)");
    let docker = Arc::new(runtime::client::DockerClient::new(
        config.docker_host.clone(),
    ));
    let limiter = LoginRateLimiter::new(
        config.login_failures_per_account,
        config.login_failures_per_ip,
        Duration::from_secs(config.login_window_secs),
    );
    let auth = Arc::new(AuthService::new(db.clone(), limiter).await?);

    let mut leptos_options = leptos::config::get_configuration(None)
        .map_err(|e| ApiError::internal(format!("leptos configuration: {e}")))?
        .leptos_options;
    leptos_options.site_root = config.site_root.to_string_lossy().as_ref().into();
    leptos_options.site_addr = config.listen;

    let config = Arc::new(config);
    let disks = match config.volume_sizes {
        _ if !config.docker_is_local() => Err(
            "the Docker engine is on another machine (--docker-host): loop devices made here \
             would not be the ones its containers see"
                .to_owned(),
        ),
        config::VolumeSizes::Loop => {
            runtime::disks::DiskImages::open(&config.data_dir(), &installation)
        }
        config::VolumeSizes::Off => Err("turned off (--volume-sizes off)".to_owned()),
    };
    let runtime: Arc<dyn runtime::Runtime> = match config.runtime {
        config::RuntimeKind::Docker => Arc::new(runtime::docker::DockerRuntime::new(
            docker.clone(),
            runtime::docker::DockerSettings {
                installation,
                cpus_per_cu: config.cpus_per_cu,
                memory_mib_per_cu: config.memory_mib_per_cu,
                pids_per_cu: config.pids_per_cu,
                disks,
                allow_host_access: config.allow_host_access,
            },
        )),
        config::RuntimeKind::Swarm => Arc::new(runtime::swarm::SwarmRuntime::new(
            docker.clone(),
            runtime::swarm::SwarmSettings {
                installation,
                cpus_per_cu: config.cpus_per_cu,
                memory_mib_per_cu: config.memory_mib_per_cu,
                pids_per_cu: config.pids_per_cu,
                sized_volumes: config.volume_sizes == config::VolumeSizes::Loop,
            },
        )),
    };
    // Re-attaches volumes after a reboot, installs the network rules, and says at start-up
    // what the host cannot enforce.
    runtime.prepare().await;
    let terminals = Arc::new(terminal::TerminalHub::new(
        runtime.clone(),
        Duration::from_secs(config.terminal_idle_secs),
        config.terminal_scrollback_kib as usize * 1024,
        terminal::SessionLimits {
            per_user: config.terminal_sessions_per_user as usize,
            per_space: config.terminal_sessions_per_space as usize,
        },
    ));
    let apps = services::apps::Apps::new(services::apps::tickets::signing_key(&db).await?);
    let mut services = services::Services::new(
        db.clone(),
        auth.clone(),
        config.clone(),
        runtime.clone(),
        terminals,
        apps,
    );
    services.activity = Arc::new(services::activity::Activity::new(clock.clone()));
    services.clock = clock;
    let ssh_gateway = Arc::new(ssh::bind(&services).await?);
    let proxy = Arc::new(proxy::Proxy::new(runtime));
    Ok(AppState {
        proxy,
        ssh_gateway,
        leptos_options,
        api: Arc::new(services.clone()),
        services,
        config,
        db,
        docker,
        auth,
    })
}

/// Serves Hangar on `listener` until `shutdown` completes, then finishes open requests.
/// Spaces keep running: stopping Hangar never stops them.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> ApiResult<()> {
    let sessions = DbSessionStore::new(state.db.clone());
    let cleanup = tokio::spawn(async move {
        let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            if let Err(e) = sessions.delete_expired().await {
                tracing::warn!(error = %e, "could not delete expired sessions");
            }
        }
    });
    // On PostgreSQL, live updates reach the subscribers of every server on the database.
    let fanout = live::postgres::start(
        &state.services.db,
        state.services.notifier.clone(),
        Duration::from_secs(state.config.live_heartbeat_secs),
    )
    .await;
    let reconciler = services::spaces::driver::reconcile::spawn(state.services.clone());
    // Git's credential helper in the spaces that kept running while no server ran, before
    // their git may ask.
    state.services.serve_git_credentials_of_running().await;
    // The identity provider's discovery document, read once at start: a wrong issuer URL or
    // an unreachable provider is in the log at once, not only at the first sign-in.
    if let Some(provider) = state.services.oidc.clone() {
        tokio::spawn(async move {
            match provider.metadata().await {
                Ok(_) => tracing::info!(issuer = %provider.issuer(), "identity provider ready"),
                Err(e) => {
                    tracing::error!(issuer = %provider.issuer(), "sign-in through the identity provider will fail until this is fixed: {}", e.detail)
                }
            }
        });
    }
    // Idle stops, longest runs, schedules and retention; activity written down meanwhile.
    let autostop = services::spaces::autostop::spawn(state.services.clone());
    // What running spaces use, sampled from the engine for the space pages' charts.
    let usage = services::usage::spawn(state.services.clone());
    // The engine's OOM kills, told to the spaces' owners.
    let oom_watch = services::notifications::spawn_oom_watch(state.services.clone());
    // Notifications by webhook and email, retried until delivered or given up.
    let deliveries = services::deliveries::spawn(state.services.clone());
    ssh::spawn(&state.services, &state.ssh_gateway);
    let metrics = match state.config.metrics_listen {
        Some(addr) => Some(
            http::metrics::serve(addr, state.services.clone())
                .await
                .map_err(ApiError::unavailable)?,
        ),
        None => None,
    };
    let services = state.services.clone();
    let state_services = state.services.clone();
    let shutdown = async move {
        shutdown.await;
        services.begin_shutdown();
    };
    let app = http::router(state);
    // Small writes (each server-sent event, each chunk of a streamed page) go out at once
    // instead of waiting for the ACK of the previous one, which a client's delayed ACK holds
    // back for up to 40 ms.
    let listener = listener.tap_io(|connection| {
        if let Err(e) = connection.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| ApiError::internal(format!("server: {e}")));
    cleanup.abort();
    reconciler.abort();
    autostop.abort();
    usage.abort();
    oom_watch.abort();
    deliveries.abort();
    // What was seen since the last flush is not lost with the process.
    if let Err(e) = state_services.flush_activity().await {
        tracing::warn!(error = %e, "could not write the last activity down");
    }
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    if let Some(fanout) = fanout {
        fanout.stop().await;
    }
    result
}
