//! The integration tests: the real server on port 0 over a real SQLite file, driven over HTTP.

mod support;

mod auth;
mod concurrency;
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
