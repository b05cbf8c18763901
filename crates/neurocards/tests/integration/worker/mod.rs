//! The generation worker against both emulators, on both engines.

mod callbacks;
mod classes;
mod delivery;
mod happy_path;
mod models;
pub mod rig;
mod scale;
mod takeover;
