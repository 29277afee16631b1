//! Domain rules that need neither a database nor Docker: quotas and the space lifecycle.

pub mod lifecycle;
pub mod quota;
