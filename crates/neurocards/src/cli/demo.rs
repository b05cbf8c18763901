//! `neurocards demo`: the whole system on this machine, with no tokens and no network. Both
//! APIs are emulated on 127.0.0.1, the database is SQLite in a temporary directory, the bot
//! and the worker are the production code, and a scripted user goes through the flow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use emulators::kie::{KieConfig, KieEmulator};
use emulators::telegram::{SentKind, SentMessage, TelegramConfig, TelegramEmulator, TestUser};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::bot::{BotContext, BotRunner};
use crate::catalogue::Catalogue;
use crate::config::{DatabaseUrl, KieKey};
use crate::domain::UserId;
use crate::kie::{KeyPool, KieClient};
use crate::store::{Store, StoreOptions};
use crate::telegram::Telegram;
use crate::templates::Templates;
use crate::worker::{PollSchedule, Worker, WorkerSettings};

/// The seller's photo: landscape, as phone photos of products often are.
const PHOTO_SIZE: (u32, u32) = (1200, 800);
const FREE_CREDITS: i64 = 5;

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
    let url = DatabaseUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("demo.db").display()
    ))?;
    let store = Store::connect(&url, StoreOptions::default()).await?;

    println!("neurocards demo: the bot and the worker against local emulators of Telegram ({}) and KIE ({}),", telegram.base_url(), kie.base_url());
    println!(
        "SQLite in {}. New users get {FREE_CREDITS} free credits; a 5 s video costs 1 credit, a 10 s one 2.",
        dir.path().display()
    );
    println!(
        "The KIE emulator is told to refuse one video of the order for a content violation.\n"
    );

    let token = SecretString::from(telegram.token());
    let api = url::Url::parse(&telegram.base_url())?;
    let stop = CancellationToken::new();
    // One Telegram client for the whole process, as in `neurocards run`: one rate budget.
    let shared = Telegram::new(&token, &api)?;
    let worker = demo_worker(&store, &kie, shared.clone()).await?;
    let working = tokio::spawn(Arc::clone(&worker).run(stop.clone()));
    // As an operator would: offer the 10 s Kling option too, so the user gets a choice.
    let catalogue = Catalogue::parse(
        &crate::catalogue::BUILT_IN.replacen(
            "price = 2\noffered = false\ninput = { duration = \"10\"",
            "price = 2\ninput = { duration = \"10\"",
            1,
        ),
        "(built in, with Kling 10 s offered)",
    )?;
    let bot = BotRunner::new(
        shared.throttled(),
        BotContext {
            store: store.clone(),
            templates: Arc::new(Templates::built_in(&catalogue)?),
            catalogue: Arc::new(catalogue),
            telegram: shared,
            admin_ids: Vec::new(),
            free_credits: FREE_CREDITS,
            max_photo_bytes: 10 * 1024 * 1024,
            bot_username: "neurocards_test_bot".to_owned(),
        },
    )
    .with_poll_timeout(Duration::from_secs(1));
    let chatting = tokio::spawn(bot.run(stop.clone()));

    let user = TestUser::new(1001, "en");
    let mut chat = Conversation::new(&telegram, user.id);
    let result = script(&telegram, &kie, &user, &mut chat).await;
    stop.cancel();
    let _ = chatting.await;
    working.await.context("the worker task")??;
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
    Ok(())
}

async fn demo_worker(
    store: &Store,
    kie: &KieEmulator,
    telegram: Telegram,
) -> anyhow::Result<Arc<Worker>> {
    let keys = [KieKey {
        id: "KIE_API_KEY".into(),
        account: "main".into(),
        secret: SecretString::from("test-key"),
    }];
    let pool = KeyPool::start(&keys, 10, store.clone()).await?;
    let kie_url = url::Url::parse(&kie.base_url())?;
    let client = KieClient::new(kie_url.clone(), kie_url, Duration::from_secs(10))?;
    let settings = WorkerSettings {
        poll: PollSchedule {
            first: Duration::from_millis(250),
            max: Duration::from_secs(1),
        },
        heartbeat_every: Duration::from_millis(500),
        idle_wait: Duration::from_millis(100),
        ..WorkerSettings::default()
    };
    Ok(Worker::new(
        store.clone(),
        client,
        pool,
        telegram,
        settings,
    )?)
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
