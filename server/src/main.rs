//! The `hangar` command.

use clap::Parser;
use hangar::cli::{Cli, Command};
use hangar::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("HANGAR_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing open requests, spaces keep running");
}

async fn run(mut config: Config) -> Result<(), String> {
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    // The port really listened on (`--listen 127.0.0.1:0` picks one): app addresses and
    // Hangar's own origin name it.
    config.listen = listener.local_addr().map_err(|e| e.to_string())?;
    for warning in config.startup_warnings() {
        tracing::warn!("{warning}");
    }
    if let Some(domain) = config.apps().domain() {
        tracing::info!(
            "apps of spaces open on origins of their own: http(s)://PORT--SPACE--OWNER.{domain}"
        );
    }
    let listen = config.listen;
    let state = hangar::build_state(config)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("Hangar is serving at http://{listen}");
    hangar::serve(state, listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// An operator command's outcome as an exit status.
fn finished(result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hangar: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().into_command() {
        Command::Serve(config) => {
            init_logging(config.log_format);
            match run(config).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("hangar: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Client(command) => hangar::cli::run(command).await,
        Command::Backup { file, database_url } => {
            finished(hangar::ops::backup(&database_url, &file).await)
        }
        Command::Restore { file, database_url } => {
            finished(hangar::ops::restore(&database_url, &file).await)
        }
        Command::Admin(command) => finished(hangar::ops::admin(command).await),
        Command::Doctor(config) => finished(hangar::ops::run_doctor(config).await),
    }
}
