//! What the benchmarks share: their settings from the environment, the machine they ran on
//! (printed with every table), orders placed straight into the store, and `neurocards`
//! processes started and stopped.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use emulators::kie::{KieAccount, KieEmulator};
use emulators::telegram::TelegramEmulator;
use neurocards::catalogue::Catalogue;
use neurocards::domain::generation::GenerationSpec;
use neurocards::domain::{ChatId, Lang, UserId};
use neurocards::store::{NewOrder, Store};

pub fn machine() -> String {
    neurocards::chaos::machine()
}

pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Registers users 1..=`users`, each with one order of `videos_each` videos of the default
/// model on `photo` (a Telegram file id), as the dialog would have placed them.
pub async fn place_orders(
    store: &Store,
    photo: &str,
    users: i64,
    videos_each: i64,
) -> anyhow::Result<()> {
    let spec = default_spec()?;
    for id in 1..=users {
        store
            .register_user(UserId(id), None, "en", videos_each)
            .await?;
        store
            .place_order(&bench_order(id, photo, videos_each, &spec))
            .await?;
    }
    Ok(())
}

/// The built-in catalogue's default model and options.
pub fn default_spec() -> anyhow::Result<GenerationSpec> {
    let (spec, _) = Catalogue::built_in()?
        .default_spec()
        .context("the built-in catalogue has a default option")?;
    Ok(spec)
}

/// User `id`'s order of `videos` videos of `spec` on `photo`, as the dialog places it.
pub fn bench_order(id: i64, photo: &str, videos: i64, spec: &GenerationSpec) -> NewOrder {
    NewOrder {
        user_id: UserId(id),
        chat_id: ChatId(id),
        idempotency_key: None,
        video_count: videos,
        unit_price: 1,
        photo_file_id: photo.to_owned(),
        template_id: None,
        prompt: "a mug".into(),
        generation: spec.clone(),
        language: Lang::En,
    }
}

/// Starts `neurocards <command>` with only `env` for its environment, its output in
/// `<logs>/<name>.log`.
pub fn spawn(
    command: &str,
    env: &[(String, String)],
    logs: &Path,
    name: &str,
) -> anyhow::Result<Child> {
    let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
    Command::new(env!("CARGO_BIN_EXE_neurocards"))
        .arg(command)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(logs)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting neurocards {command}"))
}

/// Asks each process to stop (SIGTERM) and waits for all of them.
pub fn stop(children: &mut [Child]) {
    for child in children.iter() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
    }
    for child in children.iter_mut() {
        let _ = child.wait();
    }
}

/// The environment of a `neurocards` process against the emulators: the database, the two
/// APIs, the KIE keys as `(key, account)`, then `settings`.
pub fn process_env(
    database_url: &str,
    telegram: &TelegramEmulator,
    kie: &KieEmulator,
    keys: &[(String, String)],
    settings: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("BOT_TOKEN".to_owned(), telegram.token()),
        ("TELEGRAM_API_URL".to_owned(), telegram.base_url()),
        ("KIE_API_URL".to_owned(), kie.base_url()),
        ("KIE_UPLOAD_URL".to_owned(), kie.base_url()),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    for (n, (key, account)) in keys.iter().enumerate() {
        env.push((format!("KIE_API_KEY_{}", n + 1), key.clone()));
        env.push((format!("KIE_ACCOUNT_OF_KEY_{}", n + 1), account.clone()));
    }
    env.extend(
        settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone())),
    );
    env
}

/// `count` KIE accounts of one key each: the emulator's accounts, and the `(key, account)`
/// pairs for [`process_env`].
pub fn accounts_of_one_key(prefix: &str, count: usize) -> (Vec<KieAccount>, Vec<(String, String)>) {
    let pairs: Vec<(String, String)> = (0..count)
        .map(|n| (format!("{prefix}-key-{n}"), format!("account-{n}")))
        .collect();
    let accounts = pairs
        .iter()
        .map(|(key, account)| KieAccount {
            name: account.clone(),
            keys: vec![key.clone()],
            credits: 1_000_000_000,
        })
        .collect();
    (accounts, pairs)
}

/// The value at fraction `p` of `sorted`, in milliseconds (0 when empty).
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_millis()
}

/// A port on 127.0.0.1 nobody listens on right now, for a process's HTTP server.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// An SQLite database file `bench.db` in `dir`, as a `DATABASE_URL`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("bench.db").display())
}
