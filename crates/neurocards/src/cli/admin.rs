//! `neurocards admin …`: what an operator needs without opening the database.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use clap::Subcommand;

use crate::catalogue::Catalogue;
use crate::clock::Millis;
use crate::config::DatabaseUrl;
use crate::domain::JobStatus;
use crate::domain::{JobId, UserId};
use crate::store::{
    Breach, Engine, JobDetails, KeyHealth, KeyState, LedgerEntry, ModelState, OrderLine, Payment,
    QueueStats, Requeue, Store, StoreError, User,
};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Give credits to a user (a negative number takes them back, never below zero).
    Grant {
        user_id: i64,
        #[arg(allow_negative_numbers = true)]
        credits: i64,
        /// Why, kept in the ledger.
        #[arg(long)]
        reason: Option<String>,
    },
    /// A user's balance and latest ledger rows.
    Balance { user_id: i64 },
    /// Everything about a user: balance, blocked or not, latest orders, payments and
    /// ledger rows.
    User { user_id: i64 },
    /// Hand a job back to the queue now (a stuck worker, a long retry pause): only a queued
    /// job or a generating one whose KIE task is known, so no second task is ever created.
    Requeue { job_id: i64 },
    /// Jobs by status, the oldest waiting job, and the live workers.
    Queue,
    /// Everything known about one job.
    Job { job_id: i64 },
    /// Check the data invariants; exit status 1 when any is broken.
    Check,
    /// KIE keys and their health; `admin keys enable <KEY_ID>` puts a key back in rotation.
    Keys {
        #[command(subcommand)]
        action: Option<KeysAction>,
    },
    /// The model catalogue with each model's state and last error; `admin models enable
    /// <MODEL_ID>` offers a model KIE had retired again.
    Models {
        #[command(subcommand)]
        action: Option<ModelsAction>,
    },
    /// Stars payments: the latest, refunds, and Stars earned per day; `admin payments
    /// reconcile` credits any payment Telegram has and we missed.
    Payments {
        #[command(subcommand)]
        action: Option<super::payments::PaymentsAction>,
    },
    /// Broadcasts: `create --text FILE [--segment all|paid|active-7d|with-balance]
    /// [--button TEXT=URL]` (a draft, tried on the admins), `start <ID>`, `cancel <ID>`,
    /// `status <ID>`.
    Broadcast {
        #[command(subcommand)]
        action: super::broadcast::BroadcastAction,
    },
    /// Promo codes: `create <CODE> <CREDITS> [--uses N] [--expires DATE]`, `list`,
    /// `disable <CODE>`. Users enter them with /promo CODE.
    Promo {
        #[command(subcommand)]
        action: PromoAction,
    },
    /// Copy everything from this database (DATABASE_URL, SQLite) into an empty PostgreSQL
    /// database, then check it. Stop every process first; afterwards point DATABASE_URL at
    /// the new database.
    MigrateTo {
        /// postgres://USER:PASSWORD@HOST/DB (the schema is created there first).
        target_url: String,
    },
    /// Give a payment's Stars back (refundStarPayment) and take its credits back. Refused
    /// when the buyer has spent some, unless --force, which takes what is left.
    RefundPayment {
        charge_id: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PromoAction {
    /// A new code worth CREDITS, for N users (any number without --uses), valid through
    /// DATE (YYYY-MM-DD, UTC; always without --expires).
    Create {
        code: String,
        credits: i64,
        #[arg(long)]
        uses: Option<i64>,
        #[arg(long)]
        expires: Option<String>,
    },
    /// Every code with its uses and state.
    List,
    /// Stop a code from being redeemed.
    Disable { code: String },
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Offer a model again after KIE answered it was unavailable.
    Enable { model_id: String },
}

/// `admin models [enable <id>]`: needs the catalogue, which `run` does not load.
pub async fn models(
    store: &Store,
    catalogue: &Catalogue,
    action: Option<ModelsAction>,
) -> anyhow::Result<ExitCode> {
    match action {
        None => {
            let states = store.model_states().await.context("reading model states")?;
            print!("{}", format_models(catalogue, &states));
            Ok(ExitCode::SUCCESS)
        }
        Some(ModelsAction::Enable { model_id }) => {
            if catalogue.get(&model_id).is_none() {
                eprintln!(
                    "Model {model_id} is not in the catalogue (see `neurocards admin models`)."
                );
                return Ok(ExitCode::FAILURE);
            }
            if store
                .enable_model(&model_id)
                .await
                .context("enabling the model")?
            {
                println!("Model {model_id} is offered again.");
            } else {
                println!("Model {model_id} was already available.");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn format_models(catalogue: &Catalogue, states: &[ModelState]) -> String {
    let mut out = String::new();
    for model in catalogue.all() {
        let state = states.iter().find(|state| state.id == model.id);
        let status = match state {
            Some(state) if !state.is_available() => format!(
                "UNAVAILABLE since {}: {}",
                timestamp(state.changed_at),
                state.reason.as_deref().unwrap_or("(no reason recorded)")
            ),
            _ => "available".to_owned(),
        };
        let _ = writeln!(
            out,
            "{}  {} ({} API, KIE id {}), prompt up to {} characters: {status}",
            model.id,
            model.title,
            model.api.as_str(),
            model.kie_model,
            model.prompt_max_chars
        );
        for option in &model.options {
            let offered = if option.offered {
                "offered"
            } else {
                "not offered"
            };
            let _ = writeln!(
                out,
                "    {:<10} {} credit(s) per video, {offered}: {}",
                option.id, option.price, option.title_en
            );
        }
        if let Some(fallback) = &model.fallback {
            let _ = writeln!(out, "    fallback: {fallback}");
        }
    }
    out
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Put a key taken out of rotation (after 401/402) back in.
    Enable { key_id: String },
}

pub async fn run(store: &Store, command: AdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::Grant {
            user_id,
            credits,
            reason,
        } => {
            let user = UserId(user_id);
            let reason = reason.unwrap_or_else(|| "admin grant (command line)".to_owned());
            match store.grant(user, credits, Some(&reason)).await {
                Ok(balance) => {
                    println!("User {user}: {credits:+} credits ({reason}). Balance now {balance}.");
                    Ok(ExitCode::SUCCESS)
                }
                Err(
                    err @ (StoreError::UnknownUser(_) | StoreError::InsufficientCredits { .. }),
                ) => {
                    eprintln!("Refused: {err}. Nothing was changed.");
                    Ok(ExitCode::FAILURE)
                }
                Err(err) => Err(err).context("granting credits"),
            }
        }
        AdminCommand::Balance { user_id } => {
            let user = UserId(user_id);
            let Some(found) = store.user(user).await.context("reading the user")? else {
                eprintln!("User {user} is not registered.");
                return Ok(ExitCode::FAILURE);
            };
            let ledger = store.ledger(user, 20).await.context("reading the ledger")?;
            print!("{}", format_balance(&found, &ledger));
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::User { user_id } => {
            let user = UserId(user_id);
            let Some(found) = store.user(user).await.context("reading the user")? else {
                eprintln!("User {user} is not registered.");
                return Ok(ExitCode::FAILURE);
            };
            let orders = store
                .orders_of(user, 0, 10)
                .await
                .context("reading orders")?;
            let payments = store
                .payments_of(user, 10)
                .await
                .context("reading payments")?;
            let ledger = store.ledger(user, 10).await.context("reading the ledger")?;
            print!("{}", format_user(&found, &orders, &payments, &ledger));
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Requeue { job_id } => {
            let job = JobId(job_id);
            match store.requeue_job(job).await {
                Ok(outcome) => {
                    let (ok, text) = format_requeue(job, outcome);
                    if ok {
                        println!("{text}");
                        Ok(ExitCode::SUCCESS)
                    } else {
                        eprintln!("{text}");
                        Ok(ExitCode::FAILURE)
                    }
                }
                Err(StoreError::UnknownJob(_)) => {
                    eprintln!("Job {job_id} does not exist.");
                    Ok(ExitCode::FAILURE)
                }
                Err(err) => Err(err).context("requeueing the job"),
            }
        }
        AdminCommand::MigrateTo { target_url } => migrate_to(store, &target_url).await,
        AdminCommand::Promo { action } => promo(store, action).await,
        AdminCommand::Queue => {
            let stats = store.queue_stats().await.context("reading the queue")?;
            print!("{}", format_queue(&stats));
            let money = super::payments::money_figures(store)
                .await
                .context("summing payments")?;
            print!("{money}");
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Job { job_id } => {
            match store.job(JobId(job_id)).await.context("reading the job")? {
                Some(job) => {
                    print!("{}", format_job(&job));
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("Job {job_id} does not exist.");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AdminCommand::Keys { action: None } => {
            let keys = store.key_health().await.context("reading key health")?;
            print!(
                "{}",
                format_keys(
                    &keys,
                    crate::clock::Clock::now_millis(&crate::clock::SystemClock)
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Models { .. } => {
            anyhow::bail!("`admin models` needs the model catalogue: the command line passes it")
        }
        AdminCommand::Payments { action: None } => super::payments::list(store).await,
        AdminCommand::Payments { action: Some(_) }
        | AdminCommand::RefundPayment { .. }
        | AdminCommand::Broadcast { .. } => {
            anyhow::bail!("this command needs Telegram: the command line passes it")
        }
        AdminCommand::Keys {
            action: Some(KeysAction::Enable { key_id }),
        } => {
            if store.enable_key(&key_id).await.context("enabling a key")? {
                println!(
                    "Key {key_id} is back in rotation (workers pick this up within a heartbeat)."
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("Key {key_id} is unknown: a worker registers its keys when it starts.");
                Ok(ExitCode::FAILURE)
            }
        }
        AdminCommand::Check => {
            let breaches = store
                .check_invariants()
                .await
                .context("checking invariants")?;
            print!("{}", format_check(&breaches));
            Ok(if breaches.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

pub fn format_balance(user: &User, ledger: &[LedgerEntry]) -> String {
    let mut out = format!(
        "User {}{}, language {}: {} credits\n",
        user.id,
        handle(user),
        user.language,
        user.credits
    );
    out.push_str(&format_ledger(ledger));
    out
}

/// " (@name)", or nothing for a user without a username.
fn handle(user: &User) -> String {
    user.username
        .as_deref()
        .map(|name| format!(" (@{name})"))
        .unwrap_or_default()
}

fn format_ledger(ledger: &[LedgerEntry]) -> String {
    let mut out = String::new();
    if ledger.is_empty() {
        let _ = writeln!(out, "No ledger rows.");
        return out;
    }
    let _ = writeln!(out, "Latest ledger rows:");
    let _ = writeln!(
        out,
        "  {:<20}  {:>6}  {:<8}  {:<8}  {:<8}  reason",
        "when", "delta", "kind", "order", "job"
    );
    for entry in ledger {
        let _ = writeln!(
            out,
            "  {:<20}  {:>+6}  {:<8}  {:<8}  {:<8}  {}",
            timestamp(entry.created_at),
            entry.delta,
            entry.kind,
            entry
                .order_id
                .map(|id| id.to_string())
                .unwrap_or_else(|| "-".into()),
            entry
                .job_id
                .map(|id| id.to_string())
                .unwrap_or_else(|| "-".into()),
            entry.reason.as_deref().unwrap_or("-"),
        );
    }
    out
}

/// `admin promo create|list|disable`.
async fn promo(store: &Store, action: PromoAction) -> anyhow::Result<ExitCode> {
    match action {
        PromoAction::Create {
            code,
            credits,
            uses,
            expires,
        } => {
            let Some(code) = crate::bot::input::normalize_promo(&code) else {
                eprintln!("A code is 1 to 32 letters, digits, _ or -.");
                return Ok(ExitCode::FAILURE);
            };
            if credits <= 0 || uses.is_some_and(|uses| uses <= 0) {
                eprintln!("CREDITS and --uses must be above zero.");
                return Ok(ExitCode::FAILURE);
            }
            let expires_at = match expires.as_deref().map(end_of_day) {
                Some(Some(at)) => Some(at),
                Some(None) => {
                    eprintln!("--expires takes a date such as 2026-12-31.");
                    return Ok(ExitCode::FAILURE);
                }
                None => None,
            };
            if !store
                .create_promo(&code, credits, uses, expires_at)
                .await
                .context("creating the code")?
            {
                eprintln!("A code {code} exists already.");
                return Ok(ExitCode::FAILURE);
            }
            let uses = uses.map_or("any number of users".to_owned(), |n| format!("{n} users"));
            let until = expires_at.map_or("no end date".to_owned(), |at| {
                format!("until {}", timestamp(at))
            });
            println!(
                "Code {code}: {credits} credits for {uses}, {until}. Users enter /promo {code}."
            );
            Ok(ExitCode::SUCCESS)
        }
        PromoAction::List => {
            let codes = store.promo_codes().await.context("listing codes")?;
            print!("{}", format_promos(&codes, store.now_millis()));
            Ok(ExitCode::SUCCESS)
        }
        PromoAction::Disable { code } => {
            let code = code.trim().to_uppercase();
            if store
                .disable_promo(&code)
                .await
                .context("disabling the code")?
            {
                println!("Code {code} can no longer be redeemed.");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("There is no code {code}.");
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// The moment a code given "until DATE" stops working: the end of that day, UTC.
fn end_of_day(date: &str) -> Option<Millis> {
    let start = humantime::parse_rfc3339(&format!("{}T00:00:00Z", date.trim())).ok()?;
    let millis = start.duration_since(UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(millis).ok().map(|at| at + 24 * 3_600_000)
}

pub fn format_promos(codes: &[crate::store::PromoCode], now: Millis) -> String {
    if codes.is_empty() {
        return "No promo codes.\n".to_owned();
    }
    let mut out = format!(
        "{:<20} {:>8} {:>11}  {:<22} state\n",
        "code", "credits", "used", "valid until"
    );
    for code in codes {
        let used = match code.max_uses {
            Some(max) => format!("{}/{max}", code.used),
            None => code.used.to_string(),
        };
        let until = code.expires_at.map_or("-".to_owned(), timestamp);
        let state = if code.disabled_at.is_some() {
            "disabled"
        } else if code.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else if code.max_uses.is_some_and(|max| code.used >= max) {
            "used up"
        } else {
            "active"
        };
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>11}  {:<22} {state}",
            code.code, code.credits, used, until
        );
    }
    out
}

/// `admin migrate-to`: the copy, its figures, and the target's invariants.
async fn migrate_to(store: &Store, target_url: &str) -> anyhow::Result<ExitCode> {
    let target_url = DatabaseUrl::parse(target_url).context("reading the target URL")?;
    if target_url.engine() != Engine::Postgres {
        eprintln!("The target must be a postgres:// URL.");
        return Ok(ExitCode::FAILURE);
    }
    let target = Store::connect(&target_url, store.options().clone())
        .await
        .with_context(|| format!("opening {}", target_url.redacted()))?;
    let report = match store.copy_into(&target).await {
        Ok(report) => report,
        Err(StoreError::Corrupt(refusal)) => {
            eprintln!("Refused: {refusal}. Nothing was copied.");
            return Ok(ExitCode::FAILURE);
        }
        Err(err) => return Err(err).context("copying the database"),
    };
    println!("Copied into {}:", target_url.redacted());
    for (table, rows) in &report.rows {
        println!("  {table:<16} {rows:>10} rows");
    }
    println!(
        "Users: {}, credits held: {}, ledger sum: {}.",
        report.users, report.credits, report.ledger_sum
    );
    let breaches = target
        .check_invariants()
        .await
        .context("checking the copy")?;
    print!("{}", format_check(&breaches));
    target.close().await;
    if !breaches.is_empty() || report.credits != report.ledger_sum {
        return Ok(ExitCode::FAILURE);
    }
    println!("Now stop using the old database: set DATABASE_URL to the new one and start again.");
    Ok(ExitCode::SUCCESS)
}

/// What `admin requeue` says, and whether the job went back.
pub fn format_requeue(job: JobId, outcome: Requeue) -> (bool, String) {
    match outcome {
        Requeue::Requeued(JobStatus::Generating) => (
            true,
            format!("Job {job} is back in the queue: a worker takes it at once and follows its KIE task (no second task is created)."),
        ),
        Requeue::Requeued(_) => (
            true,
            format!("Job {job} is back in the queue: a worker takes it at once and submits it to KIE."),
        ),
        Requeue::Refused(status @ JobStatus::Submitting) => (
            false,
            format!("Job {job} is {status}: a createTask may have reached KIE without its answer being stored, and requeueing could create a second task. Left as it is; if its worker is gone, it is failed and refunded when taken over."),
        ),
        Requeue::Refused(status @ JobStatus::Delivering) => (
            false,
            format!("Job {job} is {status}: its video may already be in the chat, and requeueing could send it twice. Left as it is."),
        ),
        Requeue::Refused(status) => (
            false,
            format!("Job {job} is {status}: it is finished (a failed video was refunded); place a new order instead."),
        ),
    }
}

pub fn format_user(
    user: &User,
    orders: &[OrderLine],
    payments: &[Payment],
    ledger: &[LedgerEntry],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "User {}{}, language {}, since {}: {} credits",
        user.id,
        handle(user),
        user.language,
        timestamp(user.created_at),
        user.credits
    );
    match user.unreachable_at {
        Some(at) => {
            let _ = writeln!(out, "Blocked the bot: yes, since {}", timestamp(at));
        }
        None => {
            let _ = writeln!(out, "Blocked the bot: no");
        }
    }
    let _ = writeln!(out, "Latest orders:");
    if orders.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for order in orders {
        let _ = writeln!(
            out,
            "  #{:<8} {}  {} videos: {} delivered, {} failed, {} in progress  {}",
            order.id,
            timestamp(order.created_at),
            order.videos,
            order.delivered,
            order.failed,
            order.videos - order.delivered - order.failed,
            order.template.as_deref().unwrap_or("own prompt"),
        );
    }
    let _ = writeln!(out, "Payments:");
    if payments.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for payment in payments {
        let refunded = match (payment.refunded_at, payment.refunded_credits) {
            (Some(at), credits) => format!(
                ", refunded {} ({} credits taken back)",
                timestamp(at),
                credits.unwrap_or(0)
            ),
            (None, _) => String::new(),
        };
        let _ = writeln!(
            out,
            "  {}  {}  {} Stars for {} credits ({}){refunded}",
            timestamp(payment.created_at),
            payment.charge_id,
            payment.stars,
            payment.credits,
            payment.package_id,
        );
    }
    out.push_str(&format_ledger(ledger));
    out
}

pub fn format_queue(stats: &QueueStats) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Jobs by status:");
    for (status, jobs) in &stats.by_status {
        let _ = writeln!(out, "  {:<11} {jobs:>8}", status.as_str());
    }
    let _ = writeln!(out, "Held by workers: {}", stats.held);
    let _ = writeln!(out, "Claimable now:   {}", stats.due);
    let oldest = stats
        .oldest_queued_age
        .map(|age| format!("{} ago", human_duration(age)))
        .unwrap_or_else(|| "none waiting".to_owned());
    let _ = writeln!(out, "Oldest queued:   {oldest}");
    if stats.workers.is_empty() {
        let _ = writeln!(out, "Workers: none registered");
    } else {
        let _ = writeln!(out, "Workers:");
        for worker in &stats.workers {
            let _ = writeln!(
                out,
                "  {:<40} {:<5} heartbeat {} ago, {} jobs held",
                worker.id,
                if worker.alive { "alive" } else { "DEAD" },
                human_duration(worker.heartbeat_age),
                worker.held_jobs,
            );
        }
    }
    out
}

pub fn format_job(job: &JobDetails) -> String {
    let mut out = String::new();
    let opt = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    let when = |value: Option<Millis>| value.map(timestamp).unwrap_or_else(|| "-".to_owned());
    let _ = writeln!(
        out,
        "Job {} (video {} of {} in order {}, user {})",
        job.id, job.seq, job.video_count, job.order_id, job.user_id
    );
    let _ = writeln!(out, "  status:        {}", job.status);
    let _ = writeln!(out, "  attempts:      {} failed and retried", job.attempts);
    let _ = writeln!(out, "  next run:      {}", timestamp(job.run_at));
    let _ = writeln!(out, "  held by:       {}", opt(&job.locked_by));
    let _ = writeln!(out, "  claimed:       {}", when(job.claimed_at));
    let _ = writeln!(out, "  submitted:     {}", when(job.submit_started_at));
    let _ = writeln!(
        out,
        "  KIE task:      {} (key {})",
        opt(&job.kie_task_id),
        opt(&job.kie_key_id)
    );
    let _ = writeln!(
        out,
        "  last error:    {} {}",
        opt(&job.error_class.map(|class| class.as_str().to_owned())),
        opt(&job.error_message)
    );
    let message = job
        .tg_message_id
        .map(|id| id.to_string())
        .unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "  telegram:      message {message}, file {}",
        opt(&job.tg_file_id)
    );
    let _ = writeln!(out, "  template:      {}", opt(&job.template_id));
    let _ = writeln!(out, "  prompt:        {}", job.prompt);
    let _ = writeln!(out, "  created:       {}", timestamp(job.created_at));
    let _ = writeln!(out, "  updated:       {}", timestamp(job.updated_at));
    let _ = writeln!(out, "  finished:      {}", when(job.finished_at));
    for entry in &job.ledger {
        let _ = writeln!(
            out,
            "  ledger:        {:+} {} ({})",
            entry.delta,
            entry.kind,
            entry.reason.as_deref().unwrap_or("-")
        );
    }
    out
}

pub fn format_keys(keys: &[KeyHealth], now: Millis) -> String {
    if keys.is_empty() {
        return "No KIE keys registered yet: a worker registers its keys when it starts.\n"
            .to_owned();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<20} {:<16} {:<9} detail",
        "key", "account", "state"
    );
    for key in keys {
        let state = if key.state == KeyState::Cooling && !key.usable_at(now) {
            "cooling"
        } else if key.state == KeyState::Disabled {
            "DISABLED"
        } else {
            "healthy"
        };
        let mut detail = key.reason.clone().unwrap_or_default();
        if let (KeyState::Cooling, Some(until)) = (key.state, key.until) {
            if until > now {
                detail = format!("until {} ({detail})", timestamp(until));
            }
        }
        let _ = writeln!(
            out,
            "  {:<20} {:<16} {:<9} {detail}",
            key.key_id, key.account, state
        );
    }
    out
}

pub fn format_check(breaches: &[Breach]) -> String {
    if breaches.is_empty() {
        return "All invariants hold: balances match the ledger, every failed job has exactly one refund, \
                no delivered job has one, every order's debit and jobs match its count.\n"
            .to_owned();
    }
    let mut out = format!("{} invariant breaches:\n", breaches.len());
    for breach in breaches {
        let _ = writeln!(out, "  - {breach}");
    }
    out
}

fn timestamp(millis: Millis) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

fn human_duration(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{JobStatus, OrderId};

    #[test]
    fn a_clean_check_says_so_and_a_breach_is_listed() {
        assert!(format_check(&[]).starts_with("All invariants hold"));
        let text = format_check(&[Breach::FailedJobRefundCount {
            job: JobId(7),
            refunds: 0,
        }]);
        assert!(text.contains("1 invariant breaches"));
        assert!(text.contains("job 7: failed with 0 refunds instead of exactly 1"));
        let text = format_check(&[Breach::OrderJobCountMismatch {
            order: OrderId(3),
            video_count: 3,
            jobs: 2,
        }]);
        assert!(text.contains("order 3: 3 videos ordered but 2 jobs exist"));
    }

    #[test]
    fn the_queue_report_lists_every_status_and_the_oldest_job() {
        let stats = QueueStats {
            by_status: JobStatus::ALL.iter().map(|s| (*s, 2)).collect(),
            held: 1,
            due: 3,
            oldest_queued_age: Some(Duration::from_secs(125)),
            workers: Vec::new(),
        };
        let text = format_queue(&stats);
        for status in JobStatus::ALL {
            assert!(text.contains(status.as_str()), "{text}");
        }
        assert!(text.contains("2m 5s ago"), "{text}");
        assert!(text.contains("none registered"), "{text}");
    }
}
