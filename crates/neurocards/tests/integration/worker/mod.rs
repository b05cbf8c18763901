//! The generation worker against both emulators, on both engines.

mod classes;
mod delivery;
mod happy_path;
pub mod rig;
mod scale;
mod takeover;
