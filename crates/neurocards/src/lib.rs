//! neurocards: a Telegram bot that turns a product photo into short marketing videos.

pub mod alerts;
pub mod app;
pub mod billing;
pub mod bot;
pub mod catalogue;
pub mod chaos;
pub mod cli;
pub mod clock;
pub mod coalesce;
pub mod config;
pub mod domain;
pub mod http;
pub mod kie;
pub mod metrics;
pub mod packages;
pub mod photo;
pub mod sample_photo;
pub mod store;
pub mod telegram;
pub mod telemetry;
pub mod templates;
pub mod texts;
pub mod worker;
