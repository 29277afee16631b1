//! Domain rules that need neither a database nor Docker: quotas, feature permissions, and the
//! space lifecycle (which lives in `app`, shared with the pages).

pub mod features;
pub use app::lifecycle;
pub mod quota;
