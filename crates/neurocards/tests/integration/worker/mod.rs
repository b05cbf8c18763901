//! The generation worker against both emulators, on both engines.

mod classes;
mod delivery;
mod happy_path;
mod rig;
mod scale;
mod takeover;
