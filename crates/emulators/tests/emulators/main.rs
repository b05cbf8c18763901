//! Black-box tests of both emulators: KIE over plain HTTP, Telegram through teloxide itself.

mod kie;
mod telegram;
