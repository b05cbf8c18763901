//! Messages from the user: commands, photos (and everything that is not one), prompts. Which
//! step a message leads to depends on what it carries and where the dialog stands.

use teloxide::prelude::*;
use teloxide::types::{MediaKind, MessageKind};

use super::input::{parse_command, Command};
use super::reply::say;
use super::state::State;
use super::steps::{self, Photo};
use super::turn::Turn;
use super::{admin, payments, BotDialogue, Ctx, HandlerResult, TgBot};
use crate::domain::UserId;
use crate::texts::{text, Lang};

/// What a message carries, as far as the dialog cares.
enum Incoming {
    Text(String),
    /// A compressed photo, or an image sent as a file.
    Image {
        file_id: String,
        size: u64,
        album: Option<String>,
    },
    /// A file, a sticker, a voice message, a GIF… anything that is not a usable image.
    NotAnImage,
}

fn incoming(message: &Message) -> Incoming {
    let album = message.media_group_id().map(|id| id.0.clone());
    let MessageKind::Common(common) = &message.kind else {
        return Incoming::NotAnImage;
    };
    match &common.media_kind {
        MediaKind::Text(text) => Incoming::Text(text.text.clone()),
        MediaKind::Photo(photo) => match photo
            .photo
            .iter()
            .max_by_key(|size| size.width * size.height)
        {
            Some(largest) => Incoming::Image {
                file_id: largest.file.id.0.clone(),
                size: u64::from(largest.file.size),
                album,
            },
            None => Incoming::NotAnImage,
        },
        MediaKind::Document(document) => {
            let mime = document
                .document
                .mime_type
                .as_ref()
                .map(|mime| mime.essence_str().to_owned());
            match mime.as_deref() {
                Some("image/jpeg" | "image/png" | "image/webp") => Incoming::Image {
                    file_id: document.document.file.id.0.clone(),
                    size: u64::from(document.document.file.size),
                    album,
                },
                _ => Incoming::NotAnImage,
            }
        }
        _ => Incoming::NotAnImage,
    }
}

pub async fn on_message(
    bot: TgBot,
    ctx: Ctx,
    dialogue: BotDialogue,
    state: State,
    message: Message,
) -> HandlerResult {
    let Some(from) = message.from.as_ref() else {
        return Ok(());
    };
    let (_, lang) = ctx.ensure_user(from).await?;
    ctx.store.mark_reachable(UserId(message.chat.id.0)).await?;
    let turn = Turn {
        chat: message.chat.id,
        user: i64::try_from(from.id.0).unwrap_or(i64::MAX),
        lang,
        bot,
        ctx,
        dialogue,
    };

    let incoming = incoming(&message);
    if let Incoming::Text(text) = &incoming {
        if let Some(command) = parse_command(text, &turn.ctx.bot_username) {
            return on_command(&turn, command).await;
        }
    }
    match (incoming, state) {
        (
            Incoming::Image {
                file_id,
                size,
                album,
            },
            state,
        ) => {
            let photo = Photo {
                file_id,
                size,
                album,
            };
            steps::receive_photo(&turn, state, photo).await
        }
        (Incoming::Text(raw), State::AwaitingPrompt { photo, .. }) => {
            steps::receive_prompt(&turn, photo, &raw).await
        }
        (Incoming::NotAnImage, State::AwaitingPrompt { .. }) => {
            turn.say(&turn.text("prompt.not_text", &[])).await
        }
        (Incoming::NotAnImage, _) => turn.say(&turn.text("hint.not_photo", &[])).await,
        (Incoming::Text(_), State::ChoosingTemplate { .. }) => {
            turn.say(&turn.text("hint.choose_template", &[])).await
        }
        (Incoming::Text(_), State::ChoosingModel { .. }) => {
            turn.say(&turn.text("hint.choose_model", &[])).await
        }
        (Incoming::Text(_), State::ChoosingCount { .. }) => {
            turn.say(&turn.text("hint.choose_count", &[])).await
        }
        (Incoming::Text(_), State::Idle | State::AwaitingPhoto) => {
            turn.say(&turn.text("hint.send_photo", &[])).await
        }
    }
}

pub async fn on_edited(bot: TgBot, ctx: Ctx, message: Message) -> HandlerResult {
    let lang = message
        .from
        .as_ref()
        .and_then(|user| user.language_code.as_deref())
        .map(Lang::from_code)
        .unwrap_or(Lang::Ru);
    say(&bot, &ctx, message.chat.id, &text(lang, "hint.edited", &[])).await
}

async fn on_command(turn: &Turn, command: Command) -> HandlerResult {
    let (bot, ctx, chat, user, lang) = (&turn.bot, &turn.ctx, turn.chat, turn.user, turn.lang);
    match command {
        Command::Start(parameter) => {
            steps::welcome(turn).await?;
            steps::arrived_by_invite(turn, &parameter).await
        }
        Command::Invite => steps::show_invite(turn).await,
        Command::Help => turn.say(&ctx.help_text(lang)).await,
        Command::Buy => payments::show_packages(bot, ctx, chat, user, lang).await,
        Command::PaySupport => payments::pay_support(bot, ctx, chat, user, lang).await,
        Command::Terms => turn.say(&ctx.terms(lang)).await,
        Command::Language(args) => steps::ask_language(turn, &args).await,
        Command::History => steps::show_history(turn, 0).await,
        Command::Promo(code) => steps::redeem_promo(turn, &code).await,
        Command::Balance => {
            let balance = turn.balance().await?;
            turn.say(&ctx.balance_text(lang, balance)).await
        }
        Command::Cancel => {
            turn.go(State::Idle).await?;
            turn.say(&turn.text("cancel.done", &[])).await?;
            steps::show_menu(turn).await
        }
        // For everyone but the admins these commands do not exist.
        Command::Stats if ctx.is_admin(user) => admin::stats(bot, ctx, chat, lang).await,
        Command::Grant(args) if ctx.is_admin(user) => {
            admin::grant(bot, ctx, chat, user, lang, &args).await
        }
        Command::Broadcast(args) if ctx.is_admin(user) => {
            admin::broadcast(bot, ctx, chat, lang, &args).await
        }
        Command::Refund(args) if ctx.is_admin(user) => {
            admin::refund(bot, ctx, chat, lang, &args).await
        }
        Command::Stats
        | Command::Grant(_)
        | Command::Refund(_)
        | Command::Broadcast(_)
        | Command::Unknown(_) => turn.say(&turn.text("hint.unknown_command", &[])).await,
    }
}
