//! Button presses. Every callback query is answered; a forged, malformed or stale button
//! answers "this button is out of date" and changes nothing.

use teloxide::prelude::*;
use teloxide::types::MaybeInaccessibleMessage;

use super::choice::{choices, Picked};
use super::state::State;
use super::steps::{self, Draft, Order};
use super::turn::Turn;
use super::{BotDialogue, Ctx, HandlerResult, TgBot};
use crate::domain::callback::{Callback, MenuItem};
use crate::domain::UserId;
use crate::texts::{text, Lang};

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
    let turn = Turn {
        bot: bot.clone(),
        ctx,
        dialogue,
        chat,
        user,
        lang,
    };
    let outcome = handle(&turn, state, callback).await;
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

/// Which step a press leads to; a press that does not belong to the dialog's current step
/// is stale.
async fn handle(
    turn: &Turn,
    state: State,
    callback: Callback,
) -> Result<Pressed, super::HandlerError> {
    let (bot, ctx, chat, user, lang) = (&turn.bot, &turn.ctx, turn.chat, turn.user, turn.lang);
    match callback {
        Callback::Menu(MenuItem::Create) => steps::ask_photo(turn).await?,
        Callback::Menu(MenuItem::Balance) => {
            let balance = turn.balance().await?;
            turn.say(&ctx.balance_text(lang, balance)).await?;
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
        Callback::Menu(MenuItem::Help) => turn.say(&ctx.help_text(lang)).await?,
        Callback::Language(chosen) => steps::choose_language(turn, chosen).await?,
        Callback::Menu(MenuItem::History) => steps::show_history(turn, 0).await?,
        Callback::HistoryPage(offset) => steps::show_history(turn, offset).await?,
        Callback::CancelOrder(order) => steps::cancel_order(turn, order).await?,
        Callback::StartBroadcast(id) | Callback::DropBroadcast(id) => {
            if !ctx.is_admin(user) {
                return Ok(Pressed::Stale);
            }
            let send = matches!(callback, Callback::StartBroadcast(_));
            let answer = super::admin::broadcast_decided(ctx, lang, id, send).await?;
            turn.say(&answer).await?;
        }
        Callback::Repeat(order) => {
            if !steps::ask_repeat(turn, order).await? {
                return Ok(Pressed::Stale);
            }
        }
        Callback::OpenOrder(order) => {
            if !steps::open_order(turn, order).await? {
                return Ok(Pressed::Stale);
            }
        }
        Callback::MainMenu => {
            turn.go(State::Idle).await?;
            steps::show_menu(turn).await?;
        }
        Callback::SendAgain(job) => {
            let Some(target) = ctx.store.resend_target(job, UserId(user)).await? else {
                return Ok(Pressed::Stale);
            };
            steps::send_again(turn, &target).await?;
        }
        Callback::MakeMore(order) => {
            let Some((owner, photo)) = ctx.store.order_photo(order).await? else {
                return Ok(Pressed::Stale);
            };
            if owner.0 != user {
                return Ok(Pressed::Stale);
            }
            steps::show_templates(turn, photo, None).await?;
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
            let title = template.title(lang).to_owned();
            let draft = Draft {
                photo,
                prompt: template.prompt.clone(),
                template: Some(id),
            };
            steps::ask_choice(turn, draft, &title).await?;
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
            steps::ask_prompt(turn, photo).await?;
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
            let title = steps::template_title(ctx, template.as_deref(), lang);
            let draft = Draft {
                photo,
                template,
                prompt,
            };
            steps::ask_count(turn, draft, &title, Picked { model, option }).await?;
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
            let order = Order {
                draft: Draft {
                    photo,
                    template,
                    prompt,
                },
                nonce,
                count,
                message_id,
                picked: Picked { model, option },
            };
            steps::place(turn, order).await?;
        }
    }
    Ok(Pressed::Done)
}
