//! Identifiers, kept apart by type so a job id is never passed where a user id belongs.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A Telegram user id; it is also the user's primary key.
    UserId
);
id_type!(
    /// A Telegram chat; for this bot, the user's private chat with it.
    ChatId
);
id_type!(OrderId);
id_type!(JobId);
