//! The integration tests: the real server on port 0, over a SQLite file and over PostgreSQL
//! (most tests run once on each, see `support::both_dbs!`), driven over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod apps_origin;
mod auth;
mod autostop;
mod cli;
mod concurrency;
mod containment;
mod devcontainer;
mod events;
mod files;
mod forms;
mod git_ssh_key;
mod hardening;
mod health;
mod matrix;
mod notifications;
mod oidc;
mod openapi;
mod overview;
mod pages;
mod ports;
mod ports_apps;
mod quota;
mod races;
mod repos;
mod runtime;
mod spaces;
mod ssh;
mod ssh_agent;
mod terminal;
mod terminal_limits;
mod tokens;
mod usage;
mod ws;
