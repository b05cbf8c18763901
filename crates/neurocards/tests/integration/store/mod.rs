//! The store's conformance suite: every test runs once on SQLite and once on PostgreSQL.

mod alerts;
mod callbacks;
mod check;
mod cli;
mod dialogs;
mod inbox;
mod ledger;
mod models;
mod operator;
mod orders;
mod payments;
mod promo;
mod property;
mod queue;
mod sends;
mod summaries;
mod transfer;
mod workers;
