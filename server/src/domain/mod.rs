//! Domain rules that need neither a database nor Docker: quotas, and the space lifecycle
//! (which lives in `app`, shared with the pages).

pub use app::lifecycle;
pub mod quota;
