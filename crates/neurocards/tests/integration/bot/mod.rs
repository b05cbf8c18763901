//! The Telegram dialog end to end: a user played through the Telegram emulator, on both
//! engines.

mod bad_input;
mod flow;
mod models;
pub mod rig;
mod unconfirmed;
