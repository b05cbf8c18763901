//! Watch the worker at work, with nothing real: both emulators on 127.0.0.1, SQLite in a
//! temporary directory, and a few orders, one of which KIE refuses for a content violation.
//! Prints what the user receives as it arrives, then the balance and the ledger.
//!
//! `cargo run --example watch_worker` (add `RUST_LOG=info` to see the worker's own logs).

use std::sync::Arc;
use std::time::Duration;

use emulators::kie::{KieConfig, KieEmulator};
use emulators::telegram::{SentKind, TelegramConfig, TelegramEmulator};
use neurocards::config::{DatabaseUrl, KieKey};
use neurocards::domain::generation::GenerationSpec;
use neurocards::domain::UserId;
use neurocards::kie::{KeyPool, KieClient};
use neurocards::store::{NewOrder, Store, StoreOptions};
use neurocards::telegram::Telegram;
use neurocards::worker::{PollSchedule, Worker, WorkerSettings};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1,
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    neurocards::telemetry::init();
    let kie = KieEmulator::start(KieConfig {
        stage_delay: Duration::from_millis(700),
        ..KieConfig::default()
    })
    .await?;
    let telegram = TelegramEmulator::start(TelegramConfig::default()).await?;
    let dir = tempfile::tempdir()?;
    let url = DatabaseUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("watch.db").display()
    ))?;
    let store = Store::connect(&url, StoreOptions::default()).await?;
    println!(
        "KIE emulator {}  Telegram emulator {}",
        kie.base_url(),
        telegram.base_url()
    );

    let user = UserId(4242);
    store.register_user(user, Some("seller"), "en", 5).await?;
    let prompts = [
        (3, "a ceramic mug turns slowly on a wooden table"),
        (1, "a mug #violation"),
    ];
    for (count, prompt) in prompts {
        let order = store
            .place_order(&NewOrder {
                user_id: user,
                chat_id: user.0,
                idempotency_key: None,
                video_count: count,
                unit_price: 1,
                photo_file_id: telegram.add_file(JPEG.to_vec()),
                template_id: None,
                prompt: prompt.to_owned(),
                generation: GenerationSpec::default().to_json(),
                language: "en".to_owned(),
            })
            .await?;
        println!("order {} placed: {count} × {prompt:?}", order.order_id);
    }

    let keys = [KieKey {
        id: "KIE_API_KEY".into(),
        account: "main".into(),
        secret: SecretString::from("test-key"),
    }];
    let pool = KeyPool::start(&keys, 10, store.clone()).await?;
    let kie_url = url::Url::parse(&kie.base_url())?;
    let client = KieClient::new(kie_url.clone(), kie_url, Duration::from_secs(10))?;
    let bot = Telegram::new(
        &SecretString::from(telegram.token()),
        &url::Url::parse(&telegram.base_url())?,
    )?;
    let settings = WorkerSettings {
        poll: PollSchedule {
            first: Duration::from_millis(300),
            max: Duration::from_secs(1),
        },
        heartbeat_every: Duration::from_millis(500),
        ..WorkerSettings::default()
    };
    let worker = Worker::new(store.clone(), client, pool, bot, settings)?;
    let stop = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&worker).run(stop.clone()));

    let mut shown = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let sent = telegram.sent(user.0);
        for message in &sent[shown..] {
            let text = message
                .text
                .clone()
                .unwrap_or_default()
                .replace('\n', "\n      ");
            match &message.kind {
                SentKind::Video { .. } => println!("bot → user: [video] {text}"),
                _ => println!("bot → user: {text}"),
            }
        }
        shown = sent.len();
        if store.orders_awaiting_summary(10).await?.is_empty()
            && store.queue_stats().await?.held == 0
            && summaries_sent(&sent) == prompts.len()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    running.await??;

    println!("\nbalance: {} credits", store.balance(user).await?);
    for entry in store.ledger(user, 20).await?.iter().rev() {
        println!(
            "  {:+} {} {}",
            entry.delta,
            entry.kind,
            entry.reason.as_deref().unwrap_or("")
        );
    }
    let breaches = store.check_invariants().await?;
    println!(
        "invariants: {}",
        if breaches.is_empty() {
            "all hold"
        } else {
            "BROKEN"
        }
    );
    Ok(())
}

fn summaries_sent(sent: &[emulators::telegram::SentMessage]) -> usize {
    sent.iter()
        .filter(|message| {
            message
                .reply_markup
                .as_ref()
                .is_some_and(|markup| markup.to_string().contains("more:"))
        })
        .count()
}
