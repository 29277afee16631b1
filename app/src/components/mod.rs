//! Small components every page uses the same way: times and sizes as people read them.

pub mod size;
pub mod time;
