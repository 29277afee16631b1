//! Domain rules that need neither a database nor Docker: quotas, feature permissions, the host
//! names of apps, and the space lifecycle (which lives in `app`, shared with the pages).

pub mod autostop;
pub mod clock;
pub mod devcontainer;
pub mod features;
pub mod hosts;
pub use app::lifecycle;
pub mod quota;
pub mod repository;
pub mod run_options;
