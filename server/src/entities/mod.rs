//! The database tables as sea-orm entities; they never leave the server (DTOs do).

pub mod session;
pub mod user;
