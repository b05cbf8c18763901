//! Messages from the user: commands, photos (and everything that is not one), prompts.

use teloxide::prelude::*;
use teloxide::types::{MediaKind, MessageKind};

use super::input::{clean_prompt, parse_command, Command, PromptProblem};
use super::keyboards;
use super::reply::{say, say_with};
use super::state::State;
use super::{admin, payments, BotDialogue, Ctx, HandlerResult, TgBot};
use crate::domain::callback::new_nonce;
use crate::domain::image::ImageKind;
use crate::domain::UserId;
use crate::telegram::TelegramError;
use crate::texts::{credits, text, Lang};

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
    let chat = message.chat.id;

    let incoming = incoming(&message);
    if let Incoming::Text(text) = &incoming {
        if let Some(command) = parse_command(text, &ctx.bot_username) {
            return on_command(&bot, &ctx, &dialogue, chat, from.id.0, lang, command).await;
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
            receive_photo(
                &bot, &ctx, &dialogue, chat, lang, state, file_id, size, album,
            )
            .await
        }
        (Incoming::Text(raw), State::AwaitingPrompt { photo, .. }) => {
            receive_prompt(&bot, &ctx, &dialogue, chat, lang, photo, &raw).await
        }
        (Incoming::NotAnImage, State::AwaitingPrompt { .. }) => {
            say(&bot, &ctx, chat, &text(lang, "prompt.not_text", &[])).await
        }
        (Incoming::NotAnImage, _) => {
            say(&bot, &ctx, chat, &text(lang, "hint.not_photo", &[])).await
        }
        (Incoming::Text(_), State::ChoosingTemplate { .. }) => {
            say(&bot, &ctx, chat, &text(lang, "hint.choose_template", &[])).await
        }
        (Incoming::Text(_), State::ChoosingModel { .. }) => {
            say(&bot, &ctx, chat, &text(lang, "hint.choose_model", &[])).await
        }
        (Incoming::Text(_), State::ChoosingCount { .. }) => {
            say(&bot, &ctx, chat, &text(lang, "hint.choose_count", &[])).await
        }
        (Incoming::Text(_), State::Idle | State::AwaitingPhoto) => {
            say(&bot, &ctx, chat, &text(lang, "hint.send_photo", &[])).await
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

#[allow(clippy::too_many_arguments)]
async fn on_command(
    bot: &TgBot,
    ctx: &Ctx,
    dialogue: &BotDialogue,
    chat: ChatId,
    from: u64,
    lang: Lang,
    command: Command,
) -> HandlerResult {
    let user = i64::try_from(from).unwrap_or(i64::MAX);
    match command {
        Command::Start => {
            dialogue.update(State::Idle).await?;
            let balance = ctx.store.balance(UserId(user)).await?;
            let welcome = text(
                lang,
                "menu.welcome",
                &[
                    ("balance", &credits(lang, balance)),
                    ("price", &ctx.cheapest_price_text(lang)),
                ],
            );
            say_with(bot, ctx, chat, &welcome, keyboards::main_menu(lang)).await?;
            Ok(())
        }
        Command::Help => say(bot, ctx, chat, &ctx.help_text(lang)).await,
        Command::Buy => payments::show_packages(bot, ctx, chat, user, lang).await,
        Command::PaySupport => payments::pay_support(bot, ctx, chat, user, lang).await,
        Command::Terms => say(bot, ctx, chat, &ctx.terms(lang)).await,
        Command::Balance => {
            let balance = ctx.store.balance(UserId(user)).await?;
            say(bot, ctx, chat, &ctx.balance_text(lang, balance)).await
        }
        Command::Cancel => {
            dialogue.update(State::Idle).await?;
            say(bot, ctx, chat, &text(lang, "cancel.done", &[])).await?;
            show_menu(bot, ctx, chat, user, lang).await
        }
        // For everyone but the admins these commands do not exist.
        Command::Stats if ctx.is_admin(user) => admin::stats(bot, ctx, chat, lang).await,
        Command::Grant(args) if ctx.is_admin(user) => {
            admin::grant(bot, ctx, chat, user, lang, &args).await
        }
        Command::Refund(args) if ctx.is_admin(user) => {
            admin::refund(bot, ctx, chat, lang, &args).await
        }
        Command::Stats | Command::Grant(_) | Command::Refund(_) | Command::Unknown(_) => {
            say(bot, ctx, chat, &text(lang, "hint.unknown_command", &[])).await
        }
    }
}

pub(super) async fn show_menu(
    bot: &TgBot,
    ctx: &Ctx,
    chat: ChatId,
    user: i64,
    lang: Lang,
) -> HandlerResult {
    let balance = ctx.store.balance(UserId(user)).await?;
    let title = text(lang, "menu.title", &[("balance", &credits(lang, balance))]);
    say_with(bot, ctx, chat, &title, keyboards::main_menu(lang)).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn receive_photo(
    bot: &TgBot,
    ctx: &Ctx,
    dialogue: &BotDialogue,
    chat: ChatId,
    lang: Lang,
    state: State,
    file_id: String,
    size: u64,
    album: Option<String>,
) -> HandlerResult {
    // The rest of an album we already took the first photo of.
    if let (
        Some(album),
        State::ChoosingTemplate {
            album: Some(current),
            ..
        },
    ) = (&album, &state)
    {
        if album == current {
            return Ok(());
        }
    }
    let max_mb = ctx.max_photo_bytes / (1024 * 1024);
    let too_large = |size: u64| {
        let size_mb = format!("{:.1}", size as f64 / (1024.0 * 1024.0));
        text(
            lang,
            "photo.too_large",
            &[("size_mb", &size_mb), ("max_mb", &max_mb)],
        )
    };
    // teloxide reads a missing file_size (optional in the Bot API) as u32::MAX: that size is
    // unknown, and the download below enforces the limit.
    if size > ctx.max_photo_bytes && size != u64::from(u32::MAX) {
        return say(bot, ctx, chat, &too_large(size)).await;
    }
    // Look at the bytes: a file called .jpg may be anything.
    match ctx.telegram.fetch_file(&file_id, ctx.max_photo_bytes).await {
        Ok(bytes) if ImageKind::sniff(&bytes).is_some() => {}
        Ok(_) => return say(bot, ctx, chat, &text(lang, "photo.corrupt", &[])).await,
        Err(TelegramError::TooLarge { size }) => {
            return say(bot, ctx, chat, &too_large(size)).await
        }
        Err(err) => {
            tracing::warn!(chat = chat.0, error = %err, "fetching a photo failed");
            return say(bot, ctx, chat, &text(lang, "photo.unavailable", &[])).await;
        }
    }

    let nonce = new_nonce();
    dialogue
        .update(State::ChoosingTemplate {
            photo: file_id,
            nonce: nonce.clone(),
            album: album.clone(),
        })
        .await?;
    if album.is_some() {
        say(bot, ctx, chat, &text(lang, "photo.album", &[])).await?;
    }
    if ctx.store.has_unfinished_jobs(UserId(chat.0)).await? {
        say(bot, ctx, chat, &text(lang, "photo.order_running", &[])).await?;
    }
    let unavailable = ctx.store.unavailable_models().await?;
    let keyboard = keyboards::templates(lang, &ctx.visible_templates(&unavailable), &nonce);
    say_with(bot, ctx, chat, &text(lang, "photo.received", &[]), keyboard).await?;
    Ok(())
}

async fn receive_prompt(
    bot: &TgBot,
    ctx: &Ctx,
    dialogue: &BotDialogue,
    chat: ChatId,
    lang: Lang,
    photo: String,
    raw: &str,
) -> HandlerResult {
    let max = ctx.own_prompt_limit().await?;
    let prompt = match clean_prompt(raw, max) {
        Ok(prompt) => prompt,
        Err(PromptProblem::Empty) => {
            return say(bot, ctx, chat, &text(lang, "prompt.empty", &[])).await
        }
        Err(PromptProblem::TooLong { length }) => {
            let reason = text(
                lang,
                "prompt.too_long",
                &[("length", &length), ("max", &max)],
            );
            return say(bot, ctx, chat, &reason).await;
        }
    };
    let own = text(lang, "count.own", &[]);
    super::choice::ask_choice(bot, ctx, dialogue, chat, lang, photo, None, prompt, &own).await
}
