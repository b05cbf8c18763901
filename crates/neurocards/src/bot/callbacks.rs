//! Button presses. Every callback query is answered; a forged, malformed or stale button
//! answers "this button is out of date" and changes nothing.

use teloxide::prelude::*;
use teloxide::types::MaybeInaccessibleMessage;

use super::choice::{ask_choice, aspect_of, choices, Picked};
use super::keyboards;
use super::messages::show_menu;
use super::reply::{say, say_with};
use super::state::State;
use super::{BotDialogue, Ctx, HandlerResult, TgBot};
use crate::domain::callback::{new_nonce, Callback, MenuItem};
use crate::domain::pricing::order_cost;
use crate::domain::{ChatId as Chat, UserId};
use crate::store::{NewOrder, Resend, StoreError};
use crate::telegram::TelegramError;
use crate::texts::{credits, text, videos, Lang};

pub async fn on_callback(
    bot: TgBot,
    ctx: Ctx,
    dialogue: BotDialogue,
    state: State,
    query: CallbackQuery,
) -> HandlerResult {
    let (_, lang) = ctx.ensure_user(&query.from).await?;
    let chat = match &query.message {
        Some(MaybeInaccessibleMessage::Regular(message)) => Some(message.chat.id),
        Some(MaybeInaccessibleMessage::Inaccessible(message)) => Some(message.chat.id),
        None => None,
    };
    let user = i64::try_from(query.from.id.0).unwrap_or(i64::MAX);
    let decoded = query.data.as_deref().and_then(Callback::decode);
    // Buttons live in the user's private chat with the bot; anything else is forged.
    let (Some(callback), Some(chat)) = (decoded, chat.filter(|chat| chat.0 == user)) else {
        return stale(&bot, &query, lang).await;
    };
    let outcome = handle(&bot, &ctx, &dialogue, state, chat, user, lang, callback).await;
    match outcome {
        Ok(Pressed::Done) => {
            bot.answer_callback_query(query.id.clone()).await?;
            Ok(())
        }
        Ok(Pressed::Stale) => stale(&bot, &query, lang).await,
        Err(err) => {
            // The press is answered even when handling it failed, so the button stops spinning.
            let _ = bot.answer_callback_query(query.id.clone()).await;
            Err(err)
        }
    }
}

/// True for a press on a message of the presser's private chat with the bot, where every
/// button of the bot lives.
pub fn in_own_chat(query: CallbackQuery) -> bool {
    let user = i64::try_from(query.from.id.0).unwrap_or(i64::MAX);
    query
        .message
        .as_ref()
        .is_some_and(|message| message.chat().id.0 == user)
}

/// Any other press (a group, another user's chat, an inline message) is forged or not ours:
/// it is answered as out of date and touches no dialog.
pub async fn on_foreign_callback(bot: TgBot, query: CallbackQuery) -> HandlerResult {
    let lang = Lang::from_code(query.from.language_code.as_deref().unwrap_or("ru"));
    stale(&bot, &query, lang).await
}

enum Pressed {
    Done,
    Stale,
}

async fn stale(bot: &TgBot, query: &CallbackQuery, lang: Lang) -> HandlerResult {
    bot.answer_callback_query(query.id.clone())
        .text(text(lang, "callback.stale", &[]))
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    bot: &TgBot,
    ctx: &Ctx,
    dialogue: &BotDialogue,
    state: State,
    chat: ChatId,
    user: i64,
    lang: Lang,
    callback: Callback,
) -> Result<Pressed, super::HandlerError> {
    match callback {
        Callback::Menu(MenuItem::Create) => {
            dialogue.update(State::AwaitingPhoto).await?;
            let max_mb = ctx.max_photo_bytes / (1024 * 1024);
            say(
                bot,
                ctx,
                chat,
                &text(lang, "photo.ask", &[("max_mb", &max_mb)]),
            )
            .await?;
        }
        Callback::Menu(MenuItem::Balance) => {
            let balance = ctx.store.balance(UserId(user)).await?;
            say(bot, ctx, chat, &ctx.balance_text(lang, balance)).await?;
        }
        Callback::Menu(MenuItem::Buy) => {
            super::payments::show_packages(bot, ctx, chat, user, lang).await?;
        }
        Callback::Package(id) => {
            let Some(package) = ctx.packages.get(&id) else {
                return Ok(Pressed::Stale);
            };
            super::payments::send_invoice(bot, ctx, chat, user, lang, package).await?;
        }
        Callback::Menu(MenuItem::Help) => say(bot, ctx, chat, &ctx.help_text(lang)).await?,
        Callback::MainMenu => {
            dialogue.update(State::Idle).await?;
            show_menu(bot, ctx, chat, user, lang).await?;
        }
        Callback::SendAgain(job) => {
            let Some(target) = ctx.store.resend_target(job, UserId(user)).await? else {
                return Ok(Pressed::Stale);
            };
            send_again(ctx, chat, lang, &target).await?;
        }
        Callback::MakeMore(order) => {
            let Some((owner, photo)) = ctx.store.order_photo(order).await? else {
                return Ok(Pressed::Stale);
            };
            if owner.0 != user {
                return Ok(Pressed::Stale);
            }
            let nonce = new_nonce();
            dialogue
                .update(State::ChoosingTemplate {
                    photo,
                    nonce: nonce.clone(),
                    album: None,
                })
                .await?;
            let unavailable = ctx.store.unavailable_models().await?;
            let keyboard = keyboards::templates(lang, &ctx.visible_templates(&unavailable), &nonce);
            say_with(bot, ctx, chat, &text(lang, "photo.received", &[]), keyboard).await?;
        }
        Callback::Template { nonce, id } => {
            let State::ChoosingTemplate {
                photo,
                nonce: current,
                ..
            } = state
            else {
                return Ok(Pressed::Stale);
            };
            let Some(template) = ctx.templates.get(&id).filter(|_| nonce == current) else {
                return Ok(Pressed::Stale);
            };
            let (prompt, title) = (template.prompt.clone(), template.title(lang).to_owned());
            ask_choice(
                bot,
                ctx,
                dialogue,
                chat,
                lang,
                photo,
                Some(id),
                prompt,
                &title,
            )
            .await?;
        }
        Callback::OwnPrompt { nonce } => {
            let State::ChoosingTemplate {
                photo,
                nonce: current,
                ..
            } = state
            else {
                return Ok(Pressed::Stale);
            };
            if nonce != current {
                return Ok(Pressed::Stale);
            }
            dialogue
                .update(State::AwaitingPrompt {
                    photo,
                    nonce: new_nonce(),
                })
                .await?;
            let max = ctx.own_prompt_limit().await?;
            say(bot, ctx, chat, &text(lang, "prompt.ask", &[("max", &max)])).await?;
        }
        Callback::Choice {
            nonce,
            model,
            option,
        } => {
            let State::ChoosingModel {
                photo,
                template,
                prompt,
                nonce: current,
            } = state
            else {
                return Ok(Pressed::Stale);
            };
            if nonce != current {
                return Ok(Pressed::Stale);
            }
            // Only what is offered now: a model retired since the screen was shown is gone.
            let unavailable = ctx.store.unavailable_models().await?;
            let still_offered = choices(ctx, template.as_deref(), &prompt, &unavailable)
                .iter()
                .any(|choice| choice.model.id == model && choice.option.id == option);
            if !still_offered {
                return Ok(Pressed::Stale);
            }
            let title = template_title(ctx, template.as_deref(), lang);
            ask_count(
                bot,
                ctx,
                dialogue,
                chat,
                lang,
                photo,
                template,
                prompt,
                &title,
                Picked { model, option },
            )
            .await?;
        }
        Callback::Count { nonce, count } => {
            let State::ChoosingCount {
                photo,
                template,
                prompt,
                nonce: current,
                message_id,
                model,
                option,
            } = state
            else {
                return Ok(Pressed::Stale);
            };
            if nonce != current {
                return Ok(Pressed::Stale);
            }
            place(
                bot,
                ctx,
                dialogue,
                chat,
                user,
                lang,
                Order {
                    photo,
                    template,
                    prompt,
                    nonce,
                    count,
                    message_id,
                    picked: Picked { model, option },
                },
            )
            .await?;
        }
    }
    Ok(Pressed::Done)
}

/// Sends a delivered video again: by Telegram's file id when known (free and instant), else
/// by KIE's link while it lasts.
async fn send_again(ctx: &Ctx, chat: ChatId, lang: Lang, target: &Resend) -> HandlerResult {
    let caption = crate::texts::video_caption(lang, target.seq, target.video_count);
    let sent = match (&target.file_id, &target.result_url) {
        (Some(file_id), _) => {
            ctx.telegram
                .send_video_file(chat.0, file_id, &caption)
                .await
        }
        (None, Some(url)) => ctx.telegram.send_video_url(chat.0, url, &caption).await,
        (None, None) => Err(TelegramError::FileRefused("no link is stored".into())),
    };
    match sent {
        Ok(video) => {
            ctx.store
                .confirm_delivery(target.job_id, video.message_id, video.file_id.as_deref())
                .await?;
        }
        Err(err @ (TelegramError::FileRefused(_) | TelegramError::Other(_))) => {
            tracing::warn!(job = %target.job_id, error = %err, "a video could not be sent again");
            ctx.telegram
                .send_text(chat.0, &text(lang, "again.gone", &[]), None)
                .await?;
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// The template's title in `lang`, or "own prompt".
pub(super) fn template_title(ctx: &Ctx, template: Option<&str>, lang: Lang) -> String {
    template.and_then(|id| ctx.templates.get(id)).map_or_else(
        || text(lang, "count.own", &[]),
        |t| t.title(lang).to_owned(),
    )
}

/// Shows the count buttons with the price of the picked option and the balance.
#[allow(clippy::too_many_arguments)]
pub(super) async fn ask_count(
    bot: &TgBot,
    ctx: &Ctx,
    dialogue: &BotDialogue,
    chat: ChatId,
    lang: Lang,
    photo: String,
    template: Option<String>,
    prompt: String,
    title: &str,
    picked: Picked,
) -> HandlerResult {
    let Some(option) = ctx
        .catalogue
        .get(&picked.model)
        .and_then(|model| model.option(&picked.option))
    else {
        dialogue.update(State::Idle).await?;
        return say(bot, ctx, chat, &text(lang, "choice.none", &[])).await;
    };
    let nonce = new_nonce();
    let balance = ctx.store.balance(UserId(chat.0)).await?;
    let question = text(
        lang,
        "count.ask",
        &[
            ("template", &title),
            ("model", &option.title(lang)),
            ("price", &credits(lang, option.price)),
            ("balance", &credits(lang, balance)),
        ],
    );
    let keyboard = keyboards::counts(lang, &nonce, option.price);
    // The state changes first: a press that arrives before the message id is stored still
    // finds the right step.
    let mut state = State::ChoosingCount {
        photo,
        template,
        prompt,
        nonce,
        message_id: None,
        model: picked.model,
        option: picked.option,
    };
    dialogue.update(state.clone()).await?;
    if let Some(sent) = say_with(bot, ctx, chat, &question, keyboard).await? {
        if let State::ChoosingCount { message_id, .. } = &mut state {
            *message_id = Some(sent.id.0);
        }
        dialogue.update(state).await?;
    }
    Ok(())
}

struct Order {
    photo: String,
    template: Option<String>,
    prompt: String,
    nonce: String,
    count: i64,
    message_id: Option<i32>,
    picked: Picked,
}

async fn place(
    bot: &TgBot,
    ctx: &Ctx,
    dialogue: &BotDialogue,
    chat: ChatId,
    user: i64,
    lang: Lang,
    order: Order,
) -> HandlerResult {
    let Some((model, option)) = ctx.catalogue.get(&order.picked.model).and_then(|model| {
        model
            .option(&order.picked.option)
            .map(|option| (model, option))
    }) else {
        dialogue.update(State::Idle).await?;
        return say(bot, ctx, chat, &text(lang, "choice.none", &[])).await;
    };
    let aspect = aspect_of(ctx, order.template.as_deref());
    let unit_price = option.price;
    let new_order = NewOrder {
        user_id: UserId(user),
        chat_id: Chat(chat.0),
        // Every press of this step's buttons maps to one key: one order, however many presses.
        idempotency_key: Some(format!("{}:{}", chat.0, order.nonce)),
        video_count: order.count,
        unit_price,
        photo_file_id: order.photo,
        template_id: order.template,
        prompt: order.prompt,
        generation: model.spec(option, &aspect),
        language: lang,
    };
    match ctx.store.place_order(&new_order).await {
        Ok(placed) => {
            dialogue.update(State::Idle).await?;
            if let Some(message_id) = order.message_id {
                // The used count buttons disappear; a failure here changes nothing that matters.
                let _ = bot
                    .edit_message_reply_markup(chat, teloxide::types::MessageId(message_id))
                    .await;
            }
            if placed.newly_placed {
                let ahead = ctx.store.jobs_ahead_of(placed.order_id).await?;
                let cost = order_cost(order.count, unit_price)?;
                let accepted = text(
                    lang,
                    "order.accepted",
                    &[
                        ("videos", &videos(lang, order.count)),
                        ("cost", &credits(lang, cost)),
                        ("balance", &credits(lang, placed.balance_after)),
                        ("ahead", &ahead),
                    ],
                );
                say(bot, ctx, chat, &accepted).await?;
            }
            Ok(())
        }
        Err(StoreError::InsufficientCredits {
            balance, needed, ..
        }) => {
            let short = text(
                lang,
                "count.short",
                &[
                    ("videos", &videos(lang, order.count)),
                    ("needed", &credits(lang, needed)),
                    ("balance", &credits(lang, balance)),
                ],
            );
            say_with(bot, ctx, chat, &short, keyboards::buy(lang)).await?;
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}
