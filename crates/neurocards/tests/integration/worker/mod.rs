//! The generation worker against both emulators, on both engines.

mod alerts;
mod broadcast;
mod callbacks;
mod classes;
mod delivery;
mod faults;
mod happy_path;
mod metrics;
mod models;
mod outage;
pub mod rig;
mod scale;
mod takeover;
