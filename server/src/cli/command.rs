//! The whole `hangar` command line: serving (the default), the developers' client commands,
//! and the operators' commands that need no running server.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "hangar",
    version,
    about = "Self-hosted cloud development environments on Docker",
    after_help = super::EXIT_CODES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web UI and the JSON API (the default).
    Serve(Config),
    #[command(flatten)]
    Client(super::ClientCommand),
    /// Copy the SQLite database to FILE while Hangar serves (consistent, checked). For
    /// PostgreSQL use pg_dump.
    Backup {
        file: PathBuf,
        #[arg(
            long,
            env = "HANGAR_DATABASE_URL",
            default_value = "sqlite://hangar.db"
        )]
        database_url: String,
    },
    /// Put a backup in place of the SQLite database (stop Hangar first); the replaced
    /// database is kept beside it.
    Restore {
        file: PathBuf,
        #[arg(
            long,
            env = "HANGAR_DATABASE_URL",
            default_value = "sqlite://hangar.db"
        )]
        database_url: String,
    },
    /// Administration that needs no running server.
    #[command(subcommand)]
    Admin(crate::ops::AdminCommand),
    /// Check the database, Docker, the templates' images, the site and the listen address
    /// (same flags as `serve`), and say what to fix.
    Doctor(Config),
}

impl Cli {
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}
