//! The dialog's state per chat, kept in the database through teloxide's `Storage` trait, so a
//! restart of the bot in the middle of a dialog loses nothing.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use teloxide::dispatching::dialogue::Storage;
use teloxide::types::ChatId;

use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum State {
    /// The main menu: waiting for a photo or a menu button.
    #[default]
    Idle,
    /// "Create video" was pressed.
    AwaitingPhoto,
    ChoosingTemplate {
        photo: String,
        nonce: String,
        /// The album the photo came from: its other photos are ignored.
        album: Option<String>,
    },
    AwaitingPrompt {
        photo: String,
        nonce: String,
    },
    /// The operator offers several models or options: the user picks one.
    ChoosingModel {
        photo: String,
        template: Option<String>,
        prompt: String,
        nonce: String,
    },
    ChoosingCount {
        photo: String,
        template: Option<String>,
        prompt: String,
        nonce: String,
        /// The message with the count buttons, whose keyboard is removed once used.
        message_id: Option<i32>,
        /// The catalogue's model and option the order will be made with.
        model: String,
        option: String,
    },
}

impl State {
    /// The nonce the current step's buttons carry.
    pub fn nonce(&self) -> Option<&str> {
        match self {
            State::ChoosingTemplate { nonce, .. }
            | State::AwaitingPrompt { nonce, .. }
            | State::ChoosingModel { nonce, .. }
            | State::ChoosingCount { nonce, .. } => Some(nonce),
            State::Idle | State::AwaitingPhoto => None,
        }
    }
}

/// teloxide's dialogue storage on the project's database.
pub struct DialogStorage(pub Store);

#[derive(Debug, thiserror::Error)]
pub enum DialogStorageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored dialog does not parse: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl Storage<State> for DialogStorage {
    type Error = DialogStorageError;

    fn remove_dialogue(
        self: Arc<Self>,
        chat_id: ChatId,
    ) -> BoxFuture<'static, Result<(), Self::Error>> {
        Box::pin(async move {
            self.0.remove_dialog(chat_id.0).await?;
            Ok(())
        })
    }

    fn update_dialogue(
        self: Arc<Self>,
        chat_id: ChatId,
        dialogue: State,
    ) -> BoxFuture<'static, Result<(), Self::Error>> {
        Box::pin(async move {
            let json = serde_json::to_string(&dialogue)?;
            self.0.set_dialog(chat_id.0, &json).await?;
            Ok(())
        })
    }

    fn get_dialogue(
        self: Arc<Self>,
        chat_id: ChatId,
    ) -> BoxFuture<'static, Result<Option<State>, Self::Error>> {
        Box::pin(async move {
            match self.0.dialog(chat_id.0).await? {
                // A state written by an older version that no longer parses restarts the
                // dialog instead of locking the user out.
                Some(json) => Ok(Some(serde_json::from_str(&json).unwrap_or_default())),
                None => Ok(None),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_json() {
        let state = State::ChoosingCount {
            photo: "file".into(),
            template: Some("showcase".into()),
            prompt: "p".into(),
            nonce: "0123abcd".into(),
            message_id: Some(7),
            model: "kling-2.6".into(),
            option: "5s".into(),
        };
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.contains("\"step\":\"choosing_count\""), "{json}");
        assert_eq!(serde_json::from_str::<State>(&json).unwrap(), state);
        assert_eq!(state.nonce(), Some("0123abcd"));
        assert_eq!(State::Idle.nonce(), None);
    }
}
