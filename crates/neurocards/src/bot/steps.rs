//! The steps of the dialog, whatever update led to them: a message (`messages.rs`) or a
//! button (`callbacks.rs`) decides which step comes, and the step answers and moves the
//! dialog on. Each takes the update's [`Turn`] and what the step is about.

use teloxide::prelude::*;

use super::choice::{aspect_of, choices, Picked};
use super::input::{clean_prompt, PromptProblem};
use super::keyboards;
use super::state::State;
use super::turn::Turn;
use super::{Ctx, HandlerResult};
use crate::domain::callback::new_nonce;
use crate::domain::image::ImageKind;
use crate::domain::pricing::order_cost;
use crate::domain::ChatId as Chat;
use crate::store::{NewOrder, Resend, StoreError};
use crate::telegram::TelegramError;
use crate::texts::{credits, text, videos, Lang};

/// What an order is being made of, before its model and count are chosen.
pub struct Draft {
    pub photo: String,
    /// The template's id; `None` for an own prompt.
    pub template: Option<String>,
    pub prompt: String,
}

/// A photo as the user sent it.
pub struct Photo {
    pub file_id: String,
    pub size: u64,
    pub album: Option<String>,
}

/// The count step's press: everything the order needs.
pub struct Order {
    pub draft: Draft,
    pub nonce: String,
    pub count: i64,
    pub message_id: Option<i32>,
    pub picked: Picked,
}

/// `/start`: the welcome, the balance and the menu.
pub async fn welcome(turn: &Turn) -> HandlerResult {
    turn.go(State::Idle).await?;
    let balance = turn.balance().await?;
    let welcome = turn.text(
        "menu.welcome",
        &[
            ("balance", &credits(turn.lang, balance)),
            ("price", &turn.ctx.cheapest_price_text(turn.lang)),
        ],
    );
    turn.say_with(&welcome, keyboards::main_menu(turn.lang))
        .await?;
    Ok(())
}

pub async fn show_menu(turn: &Turn) -> HandlerResult {
    let balance = turn.balance().await?;
    let title = turn.text("menu.title", &[("balance", &credits(turn.lang, balance))]);
    turn.say_with(&title, keyboards::main_menu(turn.lang))
        .await?;
    Ok(())
}

/// "Create video": waiting for the photo.
pub async fn ask_photo(turn: &Turn) -> HandlerResult {
    turn.go(State::AwaitingPhoto).await?;
    let max_mb = turn.ctx.max_photo_bytes / (1024 * 1024);
    turn.say(&turn.text("photo.ask", &[("max_mb", &max_mb)]))
        .await
}

pub async fn receive_photo(turn: &Turn, state: State, photo: Photo) -> HandlerResult {
    let ctx = &turn.ctx;
    // The rest of an album we already took the first photo of.
    if let (
        Some(album),
        State::ChoosingTemplate {
            album: Some(current),
            ..
        },
    ) = (&photo.album, &state)
    {
        if album == current {
            return Ok(());
        }
    }
    let max_mb = ctx.max_photo_bytes / (1024 * 1024);
    let too_large = |size: u64| {
        let size_mb = format!("{:.1}", size as f64 / (1024.0 * 1024.0));
        turn.text(
            "photo.too_large",
            &[("size_mb", &size_mb), ("max_mb", &max_mb)],
        )
    };
    // teloxide reads a missing file_size (optional in the Bot API) as u32::MAX: that size is
    // unknown, and the download below enforces the limit.
    if photo.size > ctx.max_photo_bytes && photo.size != u64::from(u32::MAX) {
        return turn.say(&too_large(photo.size)).await;
    }
    // Look at the bytes: a file called .jpg may be anything.
    match ctx
        .telegram
        .fetch_file(&photo.file_id, ctx.max_photo_bytes)
        .await
    {
        Ok(bytes) if ImageKind::sniff(&bytes).is_some() => {}
        Ok(_) => return turn.say(&turn.text("photo.corrupt", &[])).await,
        Err(TelegramError::TooLarge { size }) => return turn.say(&too_large(size)).await,
        Err(err) => {
            tracing::warn!(chat = turn.chat.0, error = %err, "fetching a photo failed");
            return turn.say(&turn.text("photo.unavailable", &[])).await;
        }
    }
    if photo.album.is_some() {
        turn.say(&turn.text("photo.album", &[])).await?;
    }
    if ctx.store.has_unfinished_jobs(turn.user_id()).await? {
        turn.say(&turn.text("photo.order_running", &[])).await?;
    }
    show_templates(turn, photo.file_id, photo.album).await
}

/// The template buttons for `photo` (a new one, or an order's for "make more").
pub async fn show_templates(turn: &Turn, photo: String, album: Option<String>) -> HandlerResult {
    let nonce = new_nonce();
    turn.go(State::ChoosingTemplate {
        photo,
        nonce: nonce.clone(),
        album,
    })
    .await?;
    let unavailable = turn.ctx.store.unavailable_models().await?;
    let keyboard =
        keyboards::templates(turn.lang, &turn.ctx.visible_templates(&unavailable), &nonce);
    turn.say_with(&turn.text("photo.received", &[]), keyboard)
        .await?;
    Ok(())
}

/// "Own prompt": waiting for the text.
pub async fn ask_prompt(turn: &Turn, photo: String) -> HandlerResult {
    turn.go(State::AwaitingPrompt {
        photo,
        nonce: new_nonce(),
    })
    .await?;
    let max = turn.ctx.own_prompt_limit().await?;
    turn.say(&turn.text("prompt.ask", &[("max", &max)])).await
}

pub async fn receive_prompt(turn: &Turn, photo: String, raw: &str) -> HandlerResult {
    let max = turn.ctx.own_prompt_limit().await?;
    let prompt = match clean_prompt(raw, max) {
        Ok(prompt) => prompt,
        Err(PromptProblem::Empty) => return turn.say(&turn.text("prompt.empty", &[])).await,
        Err(PromptProblem::TooLong { length }) => {
            let reason = turn.text("prompt.too_long", &[("length", &length), ("max", &max)]);
            return turn.say(&reason).await;
        }
    };
    let own = turn.text("count.own", &[]);
    let draft = Draft {
        photo,
        template: None,
        prompt,
    };
    ask_choice(turn, draft, &own).await
}

/// Shows the choice screen, or goes straight to the count when there is one choice.
pub async fn ask_choice(turn: &Turn, draft: Draft, title: &str) -> HandlerResult {
    let unavailable = turn.ctx.store.unavailable_models().await?;
    let offered = choices(
        &turn.ctx,
        draft.template.as_deref(),
        &draft.prompt,
        &unavailable,
    );
    match offered.as_slice() {
        [] => {
            turn.go(State::Idle).await?;
            turn.say(&turn.text("choice.none", &[])).await
        }
        [only] => {
            let picked = Picked::from(only);
            ask_count(turn, draft, title, picked).await
        }
        many => {
            let nonce = new_nonce();
            let keyboard = keyboards::choices(turn.lang, many, &nonce);
            turn.go(State::ChoosingModel {
                photo: draft.photo,
                template: draft.template,
                prompt: draft.prompt,
                nonce,
            })
            .await?;
            let question = turn.text("choice.ask", &[("template", &title)]);
            turn.say_with(&question, keyboard).await?;
            Ok(())
        }
    }
}

/// The template's title in `lang`, or "own prompt".
pub fn template_title(ctx: &Ctx, template: Option<&str>, lang: Lang) -> String {
    template.and_then(|id| ctx.templates.get(id)).map_or_else(
        || text(lang, "count.own", &[]),
        |t| t.title(lang).to_owned(),
    )
}

/// Shows the count buttons with the price of the picked option and the balance.
pub async fn ask_count(turn: &Turn, draft: Draft, title: &str, picked: Picked) -> HandlerResult {
    let Some(option) = turn
        .ctx
        .catalogue
        .get(&picked.model)
        .and_then(|model| model.option(&picked.option))
    else {
        turn.go(State::Idle).await?;
        return turn.say(&turn.text("choice.none", &[])).await;
    };
    let nonce = new_nonce();
    let balance = turn.balance().await?;
    let question = turn.text(
        "count.ask",
        &[
            ("template", &title),
            ("model", &option.title(turn.lang)),
            ("price", &credits(turn.lang, option.price)),
            ("balance", &credits(turn.lang, balance)),
        ],
    );
    let keyboard = keyboards::counts(turn.lang, &nonce, option.price);
    // The state changes first: a press that arrives before the message id is stored still
    // finds the right step.
    let mut state = State::ChoosingCount {
        photo: draft.photo,
        template: draft.template,
        prompt: draft.prompt,
        nonce,
        message_id: None,
        model: picked.model,
        option: picked.option,
    };
    turn.go(state.clone()).await?;
    if let Some(sent) = turn.say_with(&question, keyboard).await? {
        if let State::ChoosingCount { message_id, .. } = &mut state {
            *message_id = Some(sent.id.0);
        }
        turn.go(state).await?;
    }
    Ok(())
}

/// The count was pressed: the order is placed (once, however many presses) and charged.
pub async fn place(turn: &Turn, order: Order) -> HandlerResult {
    let ctx = &turn.ctx;
    let Some((model, option)) = ctx.catalogue.get(&order.picked.model).and_then(|model| {
        model
            .option(&order.picked.option)
            .map(|option| (model, option))
    }) else {
        turn.go(State::Idle).await?;
        return turn.say(&turn.text("choice.none", &[])).await;
    };
    if ctx.store.generation_paused().await? {
        // Every KIE key is out of rotation: charging now would only refund later. The step
        // stays, so the same button works once a key is back.
        return turn.say(&turn.text("order.paused", &[])).await;
    }
    let aspect = aspect_of(ctx, order.draft.template.as_deref());
    let unit_price = option.price;
    let lang = turn.lang;
    let new_order = NewOrder {
        user_id: turn.user_id(),
        chat_id: Chat(turn.chat.0),
        // Every press of this step's buttons maps to one key: one order, however many presses.
        idempotency_key: Some(format!("{}:{}", turn.chat.0, order.nonce)),
        video_count: order.count,
        unit_price,
        photo_file_id: order.draft.photo,
        template_id: order.draft.template,
        prompt: order.draft.prompt,
        generation: model.spec(option, &aspect),
        language: lang,
    };
    match ctx.store.place_order(&new_order).await {
        Ok(placed) => {
            turn.go(State::Idle).await?;
            if let Some(message_id) = order.message_id {
                // The used count buttons disappear; a failure here changes nothing that matters.
                let _ = turn
                    .bot
                    .edit_message_reply_markup(turn.chat, teloxide::types::MessageId(message_id))
                    .await;
            }
            if placed.newly_placed {
                if let Some(queue) = &ctx.queue {
                    queue.jobs_queued();
                }
                metrics::counter!("neurocards_orders_total").increment(1);
                let ahead = ctx.store.jobs_ahead_of(placed.order_id).await?;
                let cost = order_cost(order.count, unit_price)?;
                let accepted = turn.text(
                    "order.accepted",
                    &[
                        ("videos", &videos(lang, order.count)),
                        ("cost", &credits(lang, cost)),
                        ("balance", &credits(lang, placed.balance_after)),
                        ("ahead", &ahead),
                    ],
                );
                let sent = turn
                    .say_with(&accepted, keyboards::cancel_order(lang, placed.order_id))
                    .await?;
                if let Some(sent) = sent {
                    // The workers edit it as the order moves.
                    ctx.store
                        .set_accepted_message(placed.order_id, i64::from(sent.id.0))
                        .await?;
                }
            }
            Ok(())
        }
        Err(StoreError::InsufficientCredits {
            balance, needed, ..
        }) => {
            let short = turn.text(
                "count.short",
                &[
                    ("videos", &videos(lang, order.count)),
                    ("needed", &credits(lang, needed)),
                    ("balance", &credits(lang, balance)),
                ],
            );
            turn.say_with(&short, keyboards::buy(lang)).await?;
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

/// Sends a delivered video again: by Telegram's file id when known (free and instant), else
/// by KIE's link while it lasts.
pub async fn send_again(turn: &Turn, target: &Resend) -> HandlerResult {
    let ctx = &turn.ctx;
    let chat = turn.chat.0;
    let caption = crate::texts::video_caption(turn.lang, target.seq, target.video_count);
    let sent = match (&target.file_id, &target.result_url) {
        (Some(file_id), _) => ctx.telegram.send_video_file(chat, file_id, &caption).await,
        (None, Some(url)) => ctx.telegram.send_video_url(chat, url, &caption).await,
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
                .send_text(chat, &turn.text("again.gone", &[]), None)
                .await?;
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// `/language`: the picker, or the choice itself when the command names one.
pub async fn ask_language(turn: &Turn, args: &str) -> HandlerResult {
    match args.trim().to_ascii_lowercase().as_str() {
        "ru" | "русский" => choose_language(turn, Lang::Ru).await,
        "en" | "english" => choose_language(turn, Lang::En).await,
        _ => {
            turn.say_with(&turn.text("language.ask", &[]), keyboards::languages())
                .await?;
            Ok(())
        }
    }
}

/// Stores the user's language; from now on every text, the summaries and alerts included,
/// is in it, whatever Telegram's language says.
pub async fn choose_language(turn: &Turn, lang: Lang) -> HandlerResult {
    turn.ctx
        .store
        .choose_language(turn.user_id(), lang.code())
        .await?;
    let chosen = text(lang, "language.chosen", &[]);
    turn.say_with(&chosen, keyboards::main_menu(lang)).await?;
    Ok(())
}

/// Orders per page of "My videos".
const HISTORY_PAGE: i64 = 5;

/// "My videos": the user's orders from the `offset`-th, newest first, each with its date,
/// template or prompt, model and how its videos stand.
pub async fn show_history(turn: &Turn, offset: i64) -> HandlerResult {
    let offset = offset.max(0);
    let mut orders = turn
        .ctx
        .store
        .orders_of(turn.user_id(), offset, HISTORY_PAGE + 1)
        .await?;
    if orders.is_empty() && offset == 0 {
        return turn.say(&turn.text("history.empty", &[])).await;
    }
    let more = i64::try_from(orders.len()).unwrap_or(0) > HISTORY_PAGE;
    orders.truncate(usize::try_from(HISTORY_PAGE).unwrap_or(5));
    let mut lines = vec![turn.text("history.title", &[])];
    let mut buttons = Vec::new();
    for order in &orders {
        let date = super::payments::utc_date(order.created_at);
        let what = match order
            .template
            .as_deref()
            .and_then(|id| turn.ctx.templates.get(id))
        {
            Some(template) => template.title(turn.lang).to_owned(),
            None => shortened(&order.prompt, 40),
        };
        let status = if order.delivered + order.failed < order.videos {
            turn.text(
                "history.running",
                &[("made", &order.delivered), ("total", &order.videos)],
            )
        } else {
            turn.text(
                "history.done",
                &[("made", &order.delivered), ("total", &order.videos)],
            )
        };
        lines.push(turn.text(
            "history.line",
            &[
                ("id", &order.id),
                ("date", &date),
                ("what", &what),
                ("model", &order.model.as_deref().unwrap_or("—")),
                ("status", &status),
            ],
        ));
        let open = (order.delivered > 0)
            .then(|| turn.text("history.open", &[("id", &order.id), ("date", &date)]));
        buttons.push((order.id, open));
    }
    let newer = (offset > 0).then(|| (offset - HISTORY_PAGE).max(0));
    let older = more.then_some(offset + HISTORY_PAGE);
    let keyboard = keyboards::history(turn.lang, &buttons, newer, older);
    turn.say_with(&lines.join("\n"), keyboard).await?;
    Ok(())
}

/// An order opened from "My videos": its delivered videos again, by Telegram's file id when
/// it is known (no KIE request, no charge), else by the result link while it lives.
pub async fn open_order(turn: &Turn, order: crate::domain::OrderId) -> Result<bool, StoreError> {
    let videos = turn.ctx.store.order_videos(order, turn.user_id()).await?;
    if videos.is_empty() {
        return Ok(false);
    }
    for video in &videos {
        if let Err(err) = send_again(turn, video).await {
            tracing::warn!(order = %order, job = %video.job_id, error = %err, "a video from the history could not be sent");
        }
    }
    Ok(true)
}

/// At most `max` characters, with an ellipsis when cut.
fn shortened(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{}…", head.trim_end())
    } else {
        head
    }
}

/// Wrong promo codes a user may enter within [`PROMO_MISS_WINDOW`] before they must wait.
const PROMO_MAX_MISSES: i64 = 5;
const PROMO_MISS_WINDOW: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// `/promo CODE`: the code's credits, once per user; a wrong code is answered the same
/// whether it never existed, expired or is used up.
pub async fn redeem_promo(turn: &Turn, args: &str) -> HandlerResult {
    if args.trim().is_empty() {
        return turn.say(&turn.text("promo.usage", &[])).await;
    }
    // Something that cannot be a code is looked up as one that does not exist: it counts
    // as a wrong try all the same.
    let code = super::input::normalize_promo(args).unwrap_or_else(|| "-".to_owned());
    let outcome = turn
        .ctx
        .store
        .redeem_promo(turn.user_id(), &code, PROMO_MAX_MISSES, PROMO_MISS_WINDOW)
        .await?;
    let reply = match outcome {
        crate::store::Redemption::Credited { credits, balance } => turn.text(
            "promo.credited",
            &[
                ("credits", &crate::texts::credits(turn.lang, credits)),
                ("balance", &crate::texts::credits(turn.lang, balance)),
            ],
        ),
        crate::store::Redemption::AlreadyRedeemed => turn.text("promo.already", &[]),
        crate::store::Redemption::NotValid => turn.text("promo.not_valid", &[]),
        crate::store::Redemption::TooManyTries => turn.text("promo.too_many", &[]),
    };
    turn.say(&reply).await
}

/// `/start ref_…`: a user who has paid nothing yet is bound to the inviter the link names
/// (never to themselves, never a second time) and told about the bonus to come.
pub async fn arrived_by_invite(turn: &Turn, parameter: &str) -> HandlerResult {
    let Some(inviter) = crate::domain::referral::inviter_of(parameter) else {
        return Ok(());
    };
    let bonus = turn.ctx.store.options().referral_bonus;
    if bonus <= 0
        || !turn
            .ctx
            .store
            .bind_referrer(turn.user_id(), inviter)
            .await?
    {
        return Ok(());
    }
    tracing::info!(user = turn.user, inviter = %inviter, "a user arrived by an invite link");
    turn.say(&turn.text("invite.arrived", &[("bonus", &credits(turn.lang, bonus))]))
        .await
}

/// `/invite`: the user's link and how many friends came and paid.
pub async fn show_invite(turn: &Turn) -> HandlerResult {
    let stats = turn.ctx.store.referral_stats(turn.user_id()).await?;
    let link = format!(
        "https://t.me/{}?start={}",
        turn.ctx.bot_username,
        crate::domain::referral::invite_parameter(turn.user_id())
    );
    let bonus = turn.ctx.store.options().referral_bonus;
    let key = if bonus > 0 {
        "invite.text"
    } else {
        "invite.text_no_bonus"
    };
    turn.say(&turn.text(
        key,
        &[
            ("link", &link),
            ("bonus", &credits(turn.lang, bonus)),
            ("invited", &stats.invited),
            ("paying", &stats.paying),
        ],
    ))
    .await
}

/// "Repeat": the same photo, template or prompt, model, option and count, shown with
/// today's price; one press on the confirm button places it, through the count step's own
/// path (its nonce makes the order's key: a double press places one order).
pub async fn ask_repeat(
    turn: &Turn,
    order: crate::domain::OrderId,
) -> Result<bool, super::HandlerError> {
    let Some(source) = turn.ctx.store.repeat_source(order, turn.user_id()).await? else {
        return Ok(false);
    };
    let unavailable = turn.ctx.store.unavailable_models().await?;
    let offered = choices(
        &turn.ctx,
        source.template.as_deref(),
        &source.prompt,
        &unavailable,
    )
    .into_iter()
    .find(|choice| choice.model.id == source.model && choice.option.id == source.option);
    let Some(choice) = offered else {
        turn.say(&turn.text("repeat.gone", &[])).await?;
        return Ok(true);
    };
    let unit = choice.option.price;
    let cost = order_cost(unit, source.count).unwrap_or(i64::MAX);
    let title = template_title(&turn.ctx, source.template.as_deref(), turn.lang);
    let balance = turn.balance().await?;
    let question = turn.text(
        "repeat.ask",
        &[
            ("order", &order),
            ("videos", &videos(turn.lang, source.count)),
            ("template", &title),
            ("model", &choice.option.title(turn.lang)),
            ("cost", &credits(turn.lang, cost)),
            ("balance", &credits(turn.lang, balance)),
        ],
    );
    let nonce = new_nonce();
    let keyboard = keyboards::confirm_repeat(turn.lang, &nonce, source.count, cost);
    let mut state = State::ChoosingCount {
        photo: source.photo,
        template: source.template,
        prompt: source.prompt,
        nonce,
        message_id: None,
        model: source.model,
        option: source.option,
    };
    turn.go(state.clone()).await?;
    if let Some(sent) = turn.say_with(&question, keyboard).await? {
        if let State::ChoosingCount { message_id, .. } = &mut state {
            *message_id = Some(sent.id.0);
        }
        turn.go(state).await?;
    }
    Ok(true)
}

/// "Cancel" under "order accepted": the videos not yet at KIE are cancelled and refunded at
/// once; those already being made go on and arrive.
pub async fn cancel_order(
    turn: &Turn,
    order: crate::domain::OrderId,
) -> Result<(), super::HandlerError> {
    let cancelled = turn.ctx.store.cancel_pending(order, turn.user_id()).await?;
    let reply = if cancelled.seqs.is_empty() {
        turn.text("cancel.nothing", &[])
    } else {
        tracing::info!(order = %order, videos = cancelled.seqs.len(), "videos cancelled by the user");
        let count = i64::try_from(cancelled.seqs.len()).unwrap_or(i64::MAX);
        turn.text(
            "cancel.videos",
            &[
                ("videos", &videos(turn.lang, count)),
                ("credits", &credits(turn.lang, cancelled.credits)),
                ("balance", &credits(turn.lang, cancelled.balance)),
            ],
        )
    };
    turn.say(&reply).await
}
