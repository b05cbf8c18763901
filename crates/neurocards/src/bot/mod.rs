//! The Telegram dialog that turns a product photo into an order.
//!
//! ```text
//! /start ─▶ Idle ──photo──▶ ChoosingTemplate ──template──▶ ChoosingCount ──count──▶ order placed ─▶ Idle
//!   ▲        │ "create video"      │ "own prompt"               ▲
//!   │        ▼                     ▼                            │
//!   │   AwaitingPhoto       AwaitingPrompt ──────text───────────┘
//!   └── /cancel at any step; /balance and /help at any step
//! ```
//! The state lives in the database ([`state::DialogStorage`]). Buttons carry the nonce of the
//! step that showed them: a button from an older message is refused as out of date, and the
//! order's idempotency key is derived from the count step's nonce, so no press places a
//! second order.

mod admin;
mod callbacks;
mod choice;
pub mod inbox;
pub mod input;
mod keyboards;
mod messages;
pub mod payments;
mod poller;
mod reply;
pub mod state;
mod steps;
mod turn;

use std::sync::Arc;
use std::time::Duration;

use teloxide::dispatching::dialogue::{self, Dialogue};
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;
use teloxide::types::{Me, User};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use std::collections::HashSet;

use crate::catalogue::Catalogue;
use crate::packages::Packages;
use crate::store::{Store, StoreError};
use crate::telegram::Telegram;
use crate::templates::{Template, Templates};
use crate::texts::Lang;
use state::{DialogStorage, State};

pub type TgBot = Bot;
pub type BotDialogue = Dialogue<State, DialogStorage>;
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;

/// Everything the handlers share.
pub struct BotContext {
    pub store: Store,
    pub catalogue: Arc<Catalogue>,
    pub templates: Arc<Templates>,
    /// Fetches the user's photo to check it is a readable image.
    pub telegram: Telegram,
    pub admin_ids: Vec<i64>,
    pub free_credits: i64,
    pub max_photo_bytes: u64,
    pub bot_username: String,
    /// The credit packages sold for Stars.
    pub packages: Arc<Packages>,
    /// Refunds (an admin's `/refund`, Telegram's refunded_payment), told to the admins.
    pub billing: crate::billing::Billing,
    /// Whom `/paysupport` sends buyers to (`SUPPORT_CONTACT`).
    pub support_contact: Option<String>,
    /// The operator's terms (`TERMS_FILE`); the built-in ones in the user's language when
    /// unset.
    pub terms: Option<String>,
    /// The worker of this process (`run`), woken when an order is placed.
    pub queue: Option<crate::worker::QueueSignal>,
}

pub type Ctx = Arc<BotContext>;

impl BotContext {
    pub fn is_admin(&self, user: i64) -> bool {
        self.admin_ids.contains(&user)
    }

    /// `/terms`: the operator's own, or the built-in ones.
    pub fn terms(&self, lang: Lang) -> String {
        match &self.terms {
            Some(terms) => terms.clone(),
            None => crate::texts::text(lang, "terms.text", &[]),
        }
    }

    /// "Your balance: …; a video costs from …".
    pub fn balance_text(&self, lang: Lang, balance: i64) -> String {
        crate::texts::text(
            lang,
            "balance.text",
            &[
                ("balance", &crate::texts::credits(lang, balance)),
                ("price", &self.cheapest_price_text(lang)),
            ],
        )
    }

    pub fn help_text(&self, lang: Lang) -> String {
        crate::texts::text(
            lang,
            "help.text",
            &[("price", &self.cheapest_price_text(lang))],
        )
    }

    /// The price of the cheapest video on offer, as users read it.
    /// Every text puts it after "from" ("от" in Russian, which takes the genitive).
    pub fn cheapest_price_text(&self, lang: Lang) -> String {
        crate::texts::credits_from(lang, self.catalogue.cheapest_price())
    }

    /// The templates whose model (or its fallback) KIE still serves.
    pub fn visible_templates(&self, unavailable: &HashSet<String>) -> Vec<&Template> {
        self.templates
            .all()
            .iter()
            .filter(|template| {
                self.catalogue
                    .resolve(&template.model, unavailable)
                    .is_some()
            })
            .collect()
    }

    /// The longest own prompt any offered model takes now.
    pub async fn own_prompt_limit(&self) -> Result<usize, StoreError> {
        let unavailable = self.store.unavailable_models().await?;
        let aspect = self
            .templates
            .own_prompt_defaults()
            .map_or(crate::catalogue::DEFAULT_ASPECT, |t| t.aspect.as_str());
        Ok(self
            .catalogue
            .prompt_limit(aspect, &unavailable)
            .unwrap_or(crate::catalogue::MAX_PROMPT_CHARS))
    }

    /// Registers (or refreshes) whoever writes to the bot; a new user gets the free credits.
    /// The language is the one chosen with `/language`, else Telegram's.
    pub async fn ensure_user(&self, user: &User) -> Result<(i64, Lang), StoreError> {
        let lang_code = user.language_code.as_deref().unwrap_or("ru");
        let lang = Lang::from_code(lang_code);
        let id = crate::domain::UserId(i64::try_from(user.id.0).unwrap_or(i64::MAX));
        let (stored, _) = self
            .store
            .register_user(id, user.username.as_deref(), lang.code(), self.free_credits)
            .await?;
        Ok((stored.credits, Lang::from_code(&stored.language)))
    }
}

/// The whole dialog as one tree.
///
/// Only a user's private chat has a dialog: it is entered after the chat is checked, so a
/// group, a channel or a press outside the presser's own chat never reads or writes one.
pub fn schema() -> UpdateHandler<HandlerError> {
    // Payments first: they are service messages, not a step of the dialog.
    let paid = Update::filter_message()
        .filter_map(|message: Message| message.successful_payment().cloned())
        .endpoint(payments::on_successful_payment);
    let refunded = Update::filter_message()
        .filter_map(|message: Message| match message.kind {
            teloxide::types::MessageKind::RefundedPayment(refund) => Some(refund.refunded_payment),
            _ => None,
        })
        .endpoint(payments::on_refunded_payment);
    let checkout = Update::filter_pre_checkout_query().endpoint(payments::on_pre_checkout);
    let private_messages = Update::filter_message()
        .filter(|message: Message| message.chat.is_private())
        .chain(dialogue::enter::<Update, DialogStorage, State, _>())
        .endpoint(messages::on_message);
    let edited = Update::filter_edited_message()
        .filter(|message: Message| message.chat.is_private())
        .endpoint(messages::on_edited);
    let callbacks = Update::filter_callback_query()
        .branch(
            dptree::filter(callbacks::in_own_chat)
                .chain(dialogue::enter::<Update, DialogStorage, State, _>())
                .endpoint(callbacks::on_callback),
        )
        // Every press is answered, even one with no chat to enter a dialog for.
        .branch(dptree::endpoint(callbacks::on_foreign_callback));
    dptree::entry()
        .inspect(|_: Update| metrics::counter!("neurocards_updates_total").increment(1))
        .branch(checkout)
        .branch(paid)
        .branch(refunded)
        .branch(private_messages)
        .branch(edited)
        .branch(callbacks)
}

/// Every kind of update the bot handles; a checkout left out would never be answered and
/// Telegram would cancel the payment.
pub const ALLOWED_UPDATES: [teloxide::types::AllowedUpdate; 4] = [
    teloxide::types::AllowedUpdate::Message,
    teloxide::types::AllowedUpdate::EditedMessage,
    teloxide::types::AllowedUpdate::CallbackQuery,
    teloxide::types::AllowedUpdate::PreCheckoutQuery,
];

/// Where the bot's updates come from.
enum Source {
    /// `getUpdates`, with teloxide's dispatcher.
    Polling { timeout: Duration },
    /// The durable inbox the webhook fills; `arrived` is woken when it stores an update.
    Inbox {
        settings: inbox::InboxSettings,
        arrived: Arc<Notify>,
    },
}

/// The dialog, ready to run against `bot`'s API.
pub struct BotRunner {
    bot: TgBot,
    me: Me,
    context: Arc<BotContext>,
    source: Source,
}

impl BotRunner {
    /// `bot`: the process's client for the dialog ([`crate::telegram::Telegram::dialog_bot`]); its
    /// messages take their turn in the process's one rate budget. `me`: who the bot is.
    pub fn new(bot: TgBot, me: Me, context: BotContext) -> BotRunner {
        BotRunner {
            bot,
            me,
            context: Arc::new(context),
            source: Source::Polling {
                timeout: Duration::from_secs(25),
            },
        }
    }

    /// Shorter long polls make tests stop faster.
    pub fn with_poll_timeout(mut self, timeout: Duration) -> BotRunner {
        if let Source::Polling { timeout: current } = &mut self.source {
            *current = timeout;
        }
        self
    }

    /// Webhook mode: updates are read from the inbox the webhook fills.
    pub fn from_inbox(mut self, settings: inbox::InboxSettings, arrived: Arc<Notify>) -> BotRunner {
        self.source = Source::Inbox { settings, arrived };
        self
    }

    /// Runs until `shutdown` is cancelled, then finishes the updates in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        match self.source {
            Source::Polling { timeout } => {
                let arrived = Arc::new(Notify::new());
                let polling = tokio::spawn(poller::run(
                    self.bot.clone(),
                    self.context.store.clone(),
                    timeout,
                    Arc::clone(&arrived),
                    shutdown.clone(),
                ));
                inbox::run(
                    self.context,
                    self.bot,
                    self.me,
                    inbox::InboxSettings::default(),
                    arrived,
                    shutdown,
                )
                .await;
                if let Err(err) = polling.await {
                    tracing::error!(error = %err, "the poller stopped abnormally");
                }
            }
            Source::Inbox { settings, arrived } => {
                inbox::run(self.context, self.bot, self.me, settings, arrived, shutdown).await;
            }
        }
    }
}
