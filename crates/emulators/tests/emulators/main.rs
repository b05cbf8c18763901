//! Black-box tests of both emulators: KIE over plain HTTP, Telegram through teloxide itself.

mod kie;
mod kie_access;
mod kie_models;
mod kie_veo;
mod telegram;
mod telegram_faults;
mod telegram_payments;
mod telegram_stars;
