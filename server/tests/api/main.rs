//! The integration tests: the real server on port 0, over a SQLite file and over PostgreSQL
//! (most tests run once on each, see `support::both_dbs!`), driven over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth;
mod concurrency;
mod events;
mod files;
mod forms;
mod health;
mod matrix;
mod openapi;
mod pages;
mod quota;
mod runtime;
mod spaces;
mod terminal;
mod tokens;
mod ws;
