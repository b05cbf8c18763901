//! Local fakes of the Telegram Bot API and the KIE API, bound to 127.0.0.1.
//!
//! Both servers are started from tests on a free port (`start`) or as processes by the
//! `neurocards-emulators` binary. Each keeps everything it saw in memory so a test can assert on
//! the calls the code under test made, and each stops when its handle is dropped.

mod gate;
pub mod kie;
mod media;
pub mod netcut;
mod server;
pub mod telegram;
