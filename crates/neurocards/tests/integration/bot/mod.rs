//! The Telegram dialog end to end: a user played through the Telegram emulator, on both
//! engines.

mod bad_input;
mod broadcast;
mod cancel;
mod flow;
mod history;
mod language;
mod models;
mod outage;
mod payments;
mod promo;
mod referrals;
mod repeat;
pub mod rig;
mod unconfirmed;
mod webhook;
