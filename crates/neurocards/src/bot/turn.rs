//! One update's context: who wrote, in which chat and language, and what answers them. Every
//! step of the dialog takes it, so a step's arguments are only what the step is about.

use teloxide::types::{ChatId, InlineKeyboardMarkup, Message};
use teloxide::RequestError;

use super::reply;
use super::state::State;
use super::{BotDialogue, Ctx, HandlerResult, TgBot};
use crate::domain::UserId;
use crate::store::StoreError;
use crate::texts::{text, Lang};

pub struct Turn {
    pub bot: TgBot,
    pub ctx: Ctx,
    pub dialogue: BotDialogue,
    pub chat: ChatId,
    pub user: i64,
    pub lang: Lang,
}

impl Turn {
    pub fn user_id(&self) -> UserId {
        UserId(self.user)
    }

    /// The text `key` in the user's language.
    pub fn text(&self, key: &str, args: &[(&str, &(dyn std::fmt::Display + Sync))]) -> String {
        text(self.lang, key, args)
    }

    pub async fn say(&self, text: &str) -> HandlerResult {
        reply::say(&self.bot, &self.ctx, self.chat, text).await
    }

    /// Sends `text` with buttons; `None` when the user blocked the bot.
    pub async fn say_with(
        &self,
        text: &str,
        markup: InlineKeyboardMarkup,
    ) -> Result<Option<Message>, RequestError> {
        reply::say_with(&self.bot, &self.ctx, self.chat, text, markup).await
    }

    /// Moves the dialog to `state`.
    pub async fn go(&self, state: State) -> HandlerResult {
        self.dialogue.update(state).await?;
        Ok(())
    }

    pub async fn balance(&self) -> Result<i64, StoreError> {
        self.ctx.store.balance(self.user_id()).await
    }
}
