//! neurocards: a Telegram bot that turns a product photo into short marketing videos.

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod store;
pub mod telemetry;
