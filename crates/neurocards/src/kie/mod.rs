//! Everything about the KIE API: the client, the wire format, the error classifier, and the
//! keys with their health and rate limits.

pub mod classify;
pub mod client;
pub mod keys;
pub mod wire;

pub use client::{KieClient, KieFailure};
pub use keys::{KeyHandle, KeyPool};
