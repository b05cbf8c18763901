//! `neurocards demo`: the whole system on this machine, with no tokens and no network. Both
//! APIs are emulated on 127.0.0.1, the database is SQLite in a temporary directory, the bot
//! and the worker are the production code, and a scripted user goes through the flow.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use emulators::kie::{KieConfig, KieEmulator};
use emulators::telegram::{
    PaymentOutcome, SentKind, SentMessage, TelegramConfig, TelegramEmulator, TestUser,
};

use crate::app::{App, Overrides, Role};
use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::domain::UserId;

/// The seller's photo: landscape, as phone photos of products often are.
const PHOTO_SIZE: (u32, u32) = (1200, 800);

pub async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let kie = KieEmulator::start(KieConfig {
        stage_delay: Duration::from_millis(400),
        ..KieConfig::default()
    })
    .await
    .context("starting the KIE emulator")?;
    let telegram = TelegramEmulator::start(TelegramConfig::default())
        .await
        .context("starting the Telegram emulator")?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let database = format!("sqlite://{}", dir.path().join("demo.db").display());

    println!("neurocards demo: the bot and the worker against local emulators of Telegram ({}) and KIE ({}),", telegram.base_url(), kie.base_url());
    println!(
        "SQLite in {}. The user starts with no credits and buys a package with Telegram Stars; a 5 s video costs 1 credit, a 10 s one 2.",
        dir.path().display()
    );
    println!(
        "The KIE emulator is told to refuse one video of the order for a content violation.\n"
    );

    let config = demo_config(&database, &telegram, &kie)?;
    // As an operator would: offer the 10 s Kling option too, so the user gets a choice.
    let catalogue = Catalogue::parse(
        &crate::catalogue::BUILT_IN.replacen(
            "price = 2\noffered = false\ninput = { duration = \"10\"",
            "price = 2\ninput = { duration = \"10\"",
            1,
        ),
        "(built in, with Kling 10 s offered)",
    )?;
    // The same assembly as `neurocards run`: one process, one Telegram client.
    let app = App::build_with(
        &config,
        Role::All,
        Overrides {
            catalogue: Some(catalogue),
            ..Overrides::default()
        },
    )
    .await?;
    let store = app.store().clone();
    let stop = app.shutdown();
    let running = tokio::spawn(app.run());

    let user = TestUser::new(1001, "en");
    let mut chat = Conversation::new(&telegram, user.id);
    let result = script(&telegram, &kie, &user, &mut chat).await;
    stop.cancel();
    running.await.context("the demo process")??;
    result?;

    println!(
        "\nBalance: {} credits. Ledger:",
        store.balance(UserId(user.id)).await?
    );
    for entry in store.ledger(UserId(user.id), 20).await?.iter().rev() {
        println!(
            "  {:+3} {:<6} {}",
            entry.delta,
            entry.kind,
            entry.reason.as_deref().unwrap_or("")
        );
    }
    let breaches = store.check_invariants().await?;
    if !breaches.is_empty() {
        bail!("invariants broken: {breaches:?}");
    }
    println!("Invariants: all hold (balances match the ledger, one refund per failed video).");
    let tasks = kie.tasks();
    let model = tasks
        .first()
        .map_or_else(|| "no model".to_owned(), |task| task.model.clone());
    println!(
        "Requests to KIE: {} createTask on {model}, none carrying the bot token.",
        kie.create_task_calls()
    );
    if let Some(url) = tasks
        .first()
        .and_then(|task| task.input["image_urls"][0].as_str())
    {
        let uploaded = reqwest::get(url).await?.bytes().await?;
        let (width, height) = image::load_from_memory(&uploaded)
            .map(|image| (image.width(), image.height()))
            .context("the photo KIE received does not decode")?;
        println!(
            "The photo KIE received: {width}×{height} JPEG, fitted from the {}×{} original \
             (the whole product on a blurred backdrop), since Kling 2.6 takes the video's shape \
             from the photo.",
            PHOTO_SIZE.0, PHOTO_SIZE.1
        );
    }
    if kie
        .requests()
        .iter()
        .any(|request| format!("{request:?}").contains(&telegram.token()))
    {
        bail!("a request to KIE carried the bot token");
    }
    println!("Done in {:.1} s.", started.elapsed().as_secs_f64());
    store.close().await;
    Ok(())
}

async fn script(
    telegram: &TelegramEmulator,
    kie: &KieEmulator,
    user: &TestUser,
    chat: &mut Conversation<'_>,
) -> anyhow::Result<()> {
    chat.user_says("/start");
    telegram.send_text(user, "/start");
    let menu = chat.expect_bot(1).await?;

    let buy = menu
        .last()
        .and_then(|message| {
            buttons(message)
                .into_iter()
                .find(|(_, data)| data == "m:buy")
        })
        .context("no buy button in the menu")?;
    chat.user_presses(&buy.0);
    telegram.press_button(user, menu[menu.len() - 1].message_id, &buy.1);
    let packages = chat.expect_bot(1).await?;
    let first = packages
        .last()
        .and_then(|message| button(message, 0))
        .context("no package buttons")?;
    chat.user_presses(&first.0);
    telegram.press_button(user, packages[packages.len() - 1].message_id, &first.1);
    let invoice = chat.expect_bot(1).await?;
    let invoice_id = invoice.last().context("no invoice")?.message_id;
    chat.user_says("[pays the invoice with Telegram Stars]");
    match telegram
        .pay_invoice(user, invoice_id, "demo-charge-1")
        .await
    {
        PaymentOutcome::Paid { .. } => {}
        other => bail!("the payment did not go through: {other:?}"),
    }
    chat.expect_bot(1).await?;

    chat.user_says("[sends a photo of a ceramic mug]");
    telegram.send_photo(
        user,
        crate::sample_photo::product_jpeg(PHOTO_SIZE.0, PHOTO_SIZE.1),
    );
    let templates = chat.expect_bot(1).await?;

    let showcase = templates
        .last()
        .and_then(|message| button(message, 0))
        .context("no template buttons")?;
    chat.user_presses(&showcase.0);
    telegram.press_button(user, templates[templates.len() - 1].message_id, &showcase.1);
    let choices = chat.expect_bot(1).await?;

    let five_seconds = choices
        .last()
        .and_then(|message| button(message, 0))
        .context("no model buttons")?;
    chat.user_presses(&five_seconds.0);
    telegram.press_button(user, choices[choices.len() - 1].message_id, &five_seconds.1);
    let counts = chat.expect_bot(1).await?;

    let three = counts
        .last()
        .and_then(|message| button(message, 1))
        .context("no count buttons")?;
    kie.refuse_next_tasks(1);
    chat.user_presses(&three.0);
    telegram.press_button(user, counts[counts.len() - 1].message_id, &three.1);
    // Accepted, then two videos, one refusal and the summary, as they come.
    let mut after_order = chat.expect_bot(5).await?;
    while !after_order.iter().any(is_summary) {
        after_order = chat.expect_bot(1).await?;
    }

    let summary = telegram
        .sent(user.id)
        .into_iter()
        .rfind(is_summary)
        .context("no summary")?;
    let more = button(&summary, 0).context("no make-more button")?;
    chat.user_presses(&more.0);
    telegram.press_button(user, summary.message_id, &more.1);
    chat.expect_bot(1).await?;

    // Later: the videos again from "My videos", by Telegram's file id (no KIE, no charge).
    chat.user_says("/history");
    telegram.send_text(user, "/history");
    let history = chat.expect_bot(1).await?;
    let page = history.last().context("no history page")?;
    let open = buttons(page)
        .into_iter()
        .find(|(_, data)| data.starts_with("ho:"))
        .context("no order to open in the history")?;
    let created = kie.create_task_calls();
    chat.user_presses(&open.0);
    telegram.press_button(user, page.message_id, &open.1);
    chat.expect_bot(2).await?;
    if kie.create_task_calls() != created {
        bail!("sending videos again from the history reached KIE");
    }
    Ok(())
}

/// What an operator would put in `.env`, pointed at the emulators, with the worker's
/// pauses shortened so the demo takes seconds.
fn demo_config(
    database: &str,
    telegram: &TelegramEmulator,
    kie: &KieEmulator,
) -> anyhow::Result<Config> {
    Ok(Config::from_pairs([
        ("DATABASE_URL", database.to_owned()),
        ("BOT_TOKEN", telegram.token()),
        ("TELEGRAM_API_URL", telegram.base_url()),
        ("KIE_API_URL", kie.base_url()),
        ("KIE_UPLOAD_URL", kie.base_url()),
        ("KIE_API_KEY", "test-key".to_owned()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("POLL_FIRST_INTERVAL", "250ms".to_owned()),
        ("POLL_MAX_INTERVAL", "1s".to_owned()),
        ("HEARTBEAT_EVERY", "500ms".to_owned()),
        ("QUEUE_CHECK_EVERY", "100ms".to_owned()),
        ("TELEGRAM_LONG_POLL", "1s".to_owned()),
    ])?)
}

/// Prints the chat as a person reads it.
struct Conversation<'a> {
    telegram: &'a TelegramEmulator,
    chat_id: i64,
    shown: usize,
}

impl<'a> Conversation<'a> {
    fn new(telegram: &'a TelegramEmulator, chat_id: i64) -> Self {
        Conversation {
            telegram,
            chat_id,
            shown: 0,
        }
    }

    fn user_says(&self, text: &str) {
        println!("user: {text}");
    }

    fn user_presses(&self, label: &str) {
        println!("user: presses [{label}]");
    }

    /// Waits for `count` new bot messages and prints them.
    async fn expect_bot(&mut self, count: usize) -> anyhow::Result<Vec<SentMessage>> {
        let sent = self
            .telegram
            .wait_for_sent(self.chat_id, self.shown + count, Duration::from_secs(20))
            .await;
        if sent.len() < self.shown + count {
            bail!(
                "the bot did not answer in time (last messages: {:?})",
                &sent[self.shown..]
            );
        }
        let new = sent[self.shown..].to_vec();
        for message in &new {
            print_message(message);
        }
        self.shown = sent.len();
        Ok(new)
    }
}

fn print_message(message: &SentMessage) {
    let text = message
        .text
        .clone()
        .unwrap_or_default()
        .replace('\n', "\n     ");
    match &message.kind {
        SentKind::Video { .. } => println!("bot: [video] {text}"),
        SentKind::Invoice {
            amount, currency, ..
        } => println!("bot: [an invoice for {amount} {currency}: {amount} ⭐, with a Pay button]"),
        _ => println!("bot: {text}"),
    }
    let rows = buttons(message);
    if !rows.is_empty() {
        let labels: Vec<String> = rows.iter().map(|(label, _)| format!("[{label}]")).collect();
        println!("     {}", labels.join(" "));
    }
}

fn buttons(message: &SentMessage) -> Vec<(String, String)> {
    message.buttons()
}

fn button(message: &SentMessage, index: usize) -> Option<(String, String)> {
    buttons(message).into_iter().nth(index)
}

fn is_summary(message: &SentMessage) -> bool {
    buttons(message)
        .iter()
        .any(|(_, data)| data.starts_with("more:"))
}
