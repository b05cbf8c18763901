//! Integration tests. Every test that touches a database runs once on SQLite and once on
//! PostgreSQL (`…::sqlite::…` and `…::postgres::…`).

mod harness;

mod bot;
mod kie_client;
mod process;
mod store;
mod worker;
