//! The soak's users, acting through the Telegram emulator as people do: they wait for the
//! bot's answer, act again when it does not come, press twice, pay, repeat, block the bot.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use emulators::telegram::{
    Fault, PaymentOutcome, SentKind, SentMessage, TelegramEmulator, TestUser,
};

use super::plan::UserPlan;

/// How long a person waits for the bot's answer before doing the step again.
const PATIENCE: Duration = Duration::from_secs(15);
const TRIES: usize = 3;
const SUMMARY_PATIENCE: Duration = Duration::from_secs(120);
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// What one user did, for the report's comparison with what the database holds.
#[derive(Debug, Clone, Default)]
pub struct Played {
    pub user: i64,
    /// Distinct confirm buttons pressed: the most orders this user can have.
    pub confirms: i64,
    pub paid: bool,
    pub blocked: bool,
    /// Where the user gave up, when the bot never answered a step.
    pub gave_up_at: Option<&'static str>,
}

/// Every user's doings as they happen, so that users still waiting for a summary when the
/// soak ends are counted too, and how many users have orders still to place.
pub struct Tally {
    played: Mutex<BTreeMap<i64, Played>>,
    placing: AtomicUsize,
}

impl Tally {
    pub fn new(users: usize) -> Tally {
        Tally {
            played: Mutex::new(BTreeMap::new()),
            placing: AtomicUsize::new(users),
        }
    }

    /// Users who may still place an order.
    pub fn placing(&self) -> usize {
        self.placing.load(Ordering::SeqCst)
    }

    pub fn played(&self) -> Vec<Played> {
        self.lock().values().cloned().collect()
    }

    fn update(&self, user: i64, change: impl FnOnce(&mut Played)) {
        let mut played = self.lock();
        let entry = played.entry(user).or_insert_with(|| Played {
            user,
            ..Played::default()
        });
        change(entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, Played>> {
        self.played.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub async fn play(
    telegram: &TelegramEmulator,
    plan: &UserPlan,
    photo: &[u8],
    order_patience: Duration,
    tally: &Tally,
) {
    let language = if plan.id % 2 == 0 { "ru" } else { "en" };
    let mut chat = Chat {
        telegram,
        user: TestUser::new(plan.id, language),
        used: HashSet::new(),
        tally,
        placing: true,
    };
    tally.update(plan.id, |_| {});
    if let Err(step) = chat.play(plan, photo, order_patience).await {
        tally.update(plan.id, |played| played.gave_up_at = Some(step));
    }
    chat.done_placing();
}

struct Chat<'a> {
    telegram: &'a TelegramEmulator,
    user: TestUser,
    /// Buttons already pressed or answered, by their callback data: a step looks only for
    /// buttons it has not seen, so an old keyboard is never taken for the bot's answer.
    used: HashSet<String>,
    tally: &'a Tally,
    placing: bool,
}

impl Chat<'_> {
    fn done_placing(&mut self) {
        if std::mem::take(&mut self.placing) {
            self.tally.placing.fetch_sub(1, Ordering::SeqCst);
        }
    }

    async fn play(
        &mut self,
        plan: &UserPlan,
        photo: &[u8],
        order_patience: Duration,
    ) -> Result<(), &'static str> {
        let menu = self
            .step("start", &["m:buy"], |chat| {
                chat.telegram.send_text(&chat.user, "/start");
            })
            .await?;
        if plan.buys_stars {
            let paid = self.buy(&menu).await?;
            self.tally.update(plan.id, |played| played.paid = paid);
        }
        // A person whose step went unanswered (lost to a fault, or pressed on a keyboard
        // that had just gone out of date) starts again from the photo; nothing is ordered
        // before the confirm press.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.up_to_confirm(plan, photo).await {
                Ok(()) => break,
                Err(step) if attempt >= 3 || step == "order" => return Err(step),
                Err(_) => {}
            }
        }
        if plan.blocks_bot {
            self.done_placing();
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.telegram.inject(Fault::Blocked {
                chat_id: self.user.id,
            });
            self.tally.update(plan.id, |played| played.blocked = true);
            return Ok(());
        }
        if !plan.repeats {
            self.done_placing();
        }
        // A repeater gives up repeating when the summary is long in coming (it may have gone
        // out unconfirmed and never arrived).
        let patience = if plan.repeats {
            order_patience.min(SUMMARY_PATIENCE)
        } else {
            order_patience
        };
        let summary = self.wait_for(&["rp:"], patience).await.ok_or("summary")?;
        if plan.repeats {
            // Once: a repeat of a retired model is answered with a refusal, not a button.
            self.press_once(&summary);
            let confirm = self.wait_for(&["c:"], PATIENCE).await.ok_or("repeat")?;
            self.confirm(&confirm, plan).await?;
            self.done_placing();
            self.wait_for(&["rp:"], order_patience)
                .await
                .ok_or("second summary")?;
        }
        Ok(())
    }

    /// From the photo to the confirm press.
    async fn up_to_confirm(&mut self, plan: &UserPlan, photo: &[u8]) -> Result<(), &'static str> {
        let templates = self
            .step("photo", &["t:", "o:"], |chat| {
                chat.telegram.send_photo(&chat.user, photo.to_vec());
            })
            .await?;
        let next = match plan.own_prompt {
            None => {
                self.press(&templates, "t:", &["ch:", "c:"], "template")
                    .await?
            }
            Some(marker) => {
                let own = self.button_of(&templates, "o:").ok_or("own prompt")?;
                self.press_once(&own);
                tokio::time::sleep(Duration::from_millis(500)).await;
                let prompt = format!("A ceramic mug turning slowly on a wooden table {marker}");
                self.step("prompt", &["ch:", "c:"], |chat| {
                    chat.telegram.send_text(&chat.user, &prompt);
                })
                .await?
            }
        };
        let counts = self.choose(next, plan).await?;
        self.confirm(&counts, plan).await
    }

    /// The choice screen, when the bot shows one: the plan's pick, or the first option when
    /// the bot refuses it (a model retired meanwhile) and shows the choices again.
    async fn choose(
        &mut self,
        screen: (i64, String),
        plan: &UserPlan,
    ) -> Result<(i64, String), &'static str> {
        let mut screen = screen;
        for round in 0..3 {
            if !screen.1.starts_with("ch:") {
                return Ok(screen);
            }
            let choices = self.buttons_of(&screen, "ch:");
            let index = if round == 0 {
                plan.id as usize % choices.len().max(1)
            } else {
                0
            };
            let pick = choices.get(index).cloned().ok_or("choice")?;
            self.press_once(&pick);
            if let Some(next) = self.wait_for(&["c:", "ch:"], PATIENCE).await {
                screen = next;
            }
        }
        Err("choice")
    }

    /// Presses the count (or confirm) button, twice at once when the plan says so, and
    /// again (the same button: the same order) until the order is accepted.
    async fn confirm(
        &mut self,
        screen: &(i64, String),
        plan: &UserPlan,
    ) -> Result<(), &'static str> {
        let suffix = format!(":{}", plan.count);
        let buttons = self.buttons_of(screen, "c:");
        let button = buttons
            .iter()
            .find(|(_, data)| data.ends_with(&suffix))
            .or(buttons.first())
            .cloned()
            .ok_or("count")?;
        self.tally.update(plan.id, |played| played.confirms += 1);
        if plan.double_press {
            self.press_once(&button);
        }
        // Accepted ("order accepted" with its cancel button), or already summarised when
        // the acceptance was lost or edited before we looked.
        let (_, seen) = self.press_until(&button, &["cx:", "rp:"], "order").await?;
        if seen.starts_with("rp:") {
            self.used.remove(&seen);
        }
        Ok(())
    }

    async fn buy(&mut self, menu: &(i64, String)) -> Result<bool, &'static str> {
        let packages = self.press_until(menu, &["pkg:"], "buy").await?;
        let package = self.button_of(&packages, "pkg:").ok_or("package")?;
        self.press_once(&package);
        let invoice = self
            .find(PATIENCE, |message| {
                matches!(message.kind, SentKind::Invoice { .. }).then_some(message.message_id)
            })
            .await
            .ok_or("invoice")?;
        let charge = format!("chaos-charge-{}", self.user.id);
        Ok(matches!(
            self.telegram
                .pay_invoice(&self.user, invoice, &charge)
                .await,
            PaymentOutcome::Paid { .. }
        ))
    }

    /// Does `act` until the bot shows a new button starting with one of `expect`.
    async fn step(
        &mut self,
        name: &'static str,
        expect: &[&str],
        act: impl Fn(&Self),
    ) -> Result<(i64, String), &'static str> {
        for _ in 0..TRIES {
            act(self);
            if let Some(found) = self.wait_for(expect, PATIENCE).await {
                return Ok(found);
            }
        }
        Err(name)
    }

    /// Presses the first button of `screen` starting with `prefix`, then waits as `step`.
    async fn press(
        &mut self,
        screen: &(i64, String),
        prefix: &str,
        expect: &[&str],
        name: &'static str,
    ) -> Result<(i64, String), &'static str> {
        let button = self.button_of(screen, prefix).ok_or(name)?;
        self.press_until(&button, expect, name).await
    }

    async fn press_until(
        &mut self,
        button: &(i64, String),
        expect: &[&str],
        name: &'static str,
    ) -> Result<(i64, String), &'static str> {
        let (message, data) = button.clone();
        self.used.insert(data.clone());
        self.step(name, expect, move |chat| {
            chat.telegram.press_button(&chat.user, message, &data);
        })
        .await
    }

    fn press_once(&mut self, (message, data): &(i64, String)) {
        self.used.insert(data.clone());
        self.telegram.press_button(&self.user, *message, data);
    }

    /// The newest unseen button starting with one of `prefixes`, as (message id, data); the
    /// button is marked seen.
    async fn wait_for(&mut self, prefixes: &[&str], timeout: Duration) -> Option<(i64, String)> {
        let used = &self.used;
        let found = self
            .find(timeout, |message| {
                message
                    .buttons()
                    .into_iter()
                    .map(|(_, data)| data)
                    .find(|data| {
                        prefixes.iter().any(|prefix| data.starts_with(prefix))
                            && !used.contains(data)
                    })
                    .map(|data| (message.message_id, data))
            })
            .await?;
        self.used.insert(found.1.clone());
        Some(found)
    }

    /// Looks at the chat, newest message first, until `pick` finds something or `timeout`.
    async fn find<T>(
        &self,
        timeout: Duration,
        pick: impl Fn(&SentMessage) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self
                .telegram
                .sent(self.user.id)
                .iter()
                .rev()
                .filter(|message| !message.deleted)
                .find_map(&pick);
            if found.is_some() || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    fn buttons_of(&self, (message, _): &(i64, String), prefix: &str) -> Vec<(i64, String)> {
        self.telegram
            .sent(self.user.id)
            .into_iter()
            .filter(|sent| sent.message_id == *message)
            .flat_map(|sent| sent.buttons())
            .filter(|(_, data)| data.starts_with(prefix))
            .map(|(_, data)| (*message, data))
            .collect()
    }

    fn button_of(&self, screen: &(i64, String), prefix: &str) -> Option<(i64, String)> {
        self.buttons_of(screen, prefix).into_iter().next()
    }
}
