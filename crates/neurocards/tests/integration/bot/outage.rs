//! Long polling through a database outage: what users send while the database is away is
//! kept (stored before Telegram is told it was received) and answered once it is back.

use std::time::Duration;

use emulators::kie::{KieConfig, KieEmulator};
use emulators::netcut::TcpProxy;
use emulators::telegram::{TelegramConfig, TelegramEmulator, TestUser};
use neurocards::app::{App, Overrides, Role};
use neurocards::config::DatabaseUrl;
use neurocards::store::{Engine, Store, StoreOptions};
use tokio_util::sync::CancellationToken;

use crate::harness::TestDb;
use crate::worker::rig::{fast_config, point_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_what_users_send_during_a_database_outage_is_answered_afterwards() {
    let db = TestDb::real_time(Engine::Postgres, StoreOptions::default()).await;
    let direct = url::Url::parse(&db.url()).expect("a database URL");
    let target = tokio::net::lookup_host((
        direct.host_str().unwrap_or("127.0.0.1"),
        direct.port().unwrap_or(5432),
    ))
    .await
    .expect("the database's address")
    .next()
    .expect("an address");
    let proxy = TcpProxy::start(target).await.expect("the proxy");
    let mut through = direct.clone();
    through.set_host(Some("127.0.0.1")).expect("a host");
    through.set_port(Some(proxy.addr().port())).expect("a port");
    let store = Store::connect(
        &DatabaseUrl::parse(through.as_str()).expect("a URL"),
        StoreOptions::default(),
    )
    .await
    .expect("connecting through the proxy");

    let telegram = TelegramEmulator::start(TelegramConfig::default())
        .await
        .expect("the Telegram emulator");
    let kie_config = KieConfig::default();
    let accounts = kie_config.accounts.clone();
    let kie = KieEmulator::start(kie_config)
        .await
        .expect("the KIE emulator");
    let mut config = fast_config();
    point_at(&mut config, &telegram, &kie, &accounts);
    let bot = App::build_with(
        &config,
        Role::Bot,
        Overrides {
            store: Some(store),
            ..Overrides::default()
        },
    )
    .await
    .expect("the bot process")
    .take_bot()
    .expect("a bot");
    let stop = CancellationToken::new();
    let running = tokio::spawn(bot.run(stop.clone()));

    let early = TestUser::new(8801, "en");
    telegram.send_text(&early, "/start");
    assert_eq!(
        telegram
            .wait_for_sent(early.id, 1, Duration::from_secs(20))
            .await
            .len(),
        1,
        "the bot answers before the outage"
    );

    proxy.cut_for(Duration::from_secs(6));
    let users: Vec<TestUser> = (0..5).map(|n| TestUser::new(8810 + n, "en")).collect();
    for user in &users {
        telegram.send_text(user, "/start");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        users.iter().all(|user| telegram.sent(user.id).is_empty()),
        "nothing can be answered while the database is away"
    );
    for user in &users {
        let sent = telegram
            .wait_for_sent(user.id, 1, Duration::from_secs(60))
            .await;
        assert_eq!(
            sent.len(),
            1,
            "user {} was answered once after the outage",
            user.id
        );
    }
    assert_eq!(telegram.pending_updates(), 0);
    stop.cancel();
    running.await.expect("the bot stops");
}
