//! KIE key health (for `admin keys` and for sharing between worker processes) and the
//! per-account create limit shared by every worker process through the database.

use std::time::Duration;

use sqlx::Row;

use super::{Engine, ResultExt, Store, StoreError};
use crate::clock::{millis_of, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Healthy,
    /// Rested after a 429 until `until`.
    Cooling,
    /// Out of rotation after 401/402 until re-enabled.
    Disabled,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Healthy => "healthy",
            KeyState::Cooling => "cooling",
            KeyState::Disabled => "disabled",
        }
    }

    fn parse(text: &str) -> Result<KeyState, StoreError> {
        match text {
            "healthy" => Ok(KeyState::Healthy),
            "cooling" => Ok(KeyState::Cooling),
            "disabled" => Ok(KeyState::Disabled),
            other => Err(StoreError::Corrupt(format!("unknown key state {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHealth {
    pub key_id: String,
    pub account: String,
    pub state: KeyState,
    pub reason: Option<String>,
    pub until: Option<Millis>,
    pub updated_at: Millis,
}

impl KeyHealth {
    pub fn healthy(key_id: &str, account: &str) -> KeyHealth {
        KeyHealth {
            key_id: key_id.to_owned(),
            account: account.to_owned(),
            state: KeyState::Healthy,
            reason: None,
            until: None,
            updated_at: 0,
        }
    }

    pub fn usable_at(&self, now: Millis) -> bool {
        match self.state {
            KeyState::Healthy => true,
            KeyState::Cooling => self.until.is_none_or(|until| until <= now),
            KeyState::Disabled => false,
        }
    }
}

/// What [`Store::take_create_slot`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateSlot {
    /// Create now; settle the slot with this id once KIE has answered.
    Taken(i64),
    Wait(Duration),
}

/// What [`Store::take_create_slots`] gives: the slots taken, and when fewer than wanted,
/// how long to wait before asking again for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSlots {
    pub taken: Vec<i64>,
    pub wait: Duration,
}

/// The longest a create request may be in flight (the KIE client's timeout is shorter).
const IN_FLIGHT_AT_MOST: Duration = Duration::from_secs(120);
const IN_FLIGHT_RECHECK_MS: i64 = 100;
const SLOTS_CLEARED_EVERY_MS: i64 = 1_000;
/// Serialises the slot takers of an account (its one row) and lets the commit skip the flush.
/// A take's outcome: the slots taken, the oldest answered one in the window, and the moment
/// the take counted from.
type SlotCount = (Vec<i64>, Option<i64>, Millis);

impl Store {
    pub async fn save_key_health(&self, health: &KeyHealth) -> Result<(), StoreError> {
        let updated_at = if health.updated_at == 0 {
            self.now()
        } else {
            health.updated_at
        };
        sqlx::query(
            "INSERT INTO kie_keys (id, account, state, reason, until_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET account = excluded.account, state = excluded.state,
                 reason = excluded.reason, until_at = excluded.until_at, updated_at = excluded.updated_at",
        )
        .bind(health.key_id.as_str())
        .bind(health.account.as_str())
        .bind(health.state.as_str())
        .bind(health.reason.as_deref())
        .bind(health.until)
        .bind(updated_at)
        .execute(&self.pool)
        .await
        .context("saving a key's health")?;
        Ok(())
    }

    pub async fn key_health(&self) -> Result<Vec<KeyHealth>, StoreError> {
        const CONTEXT: &str = "reading key health";
        let rows = sqlx::query(
            "SELECT id, account, state, reason, until_at, updated_at FROM kie_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .context(CONTEXT)?;
        rows.iter()
            .map(|row| {
                Ok(KeyHealth {
                    key_id: row.try_get("id").context(CONTEXT)?,
                    account: row.try_get("account").context(CONTEXT)?,
                    state: KeyState::parse(&row.try_get::<String, _>("state").context(CONTEXT)?)?,
                    reason: row.try_get("reason").context(CONTEXT)?,
                    until: row.try_get("until_at").context(CONTEXT)?,
                    updated_at: row.try_get("updated_at").context(CONTEXT)?,
                })
            })
            .collect()
    }

    /// An admin puts a key back into rotation. Returns false for an unknown key.
    /// True when KIE keys are registered and every one is out of rotation (out of credits,
    /// refused): no video can be made until an operator acts, so orders are refused up
    /// front instead of charged and refunded.
    pub async fn generation_paused(&self) -> Result<bool, StoreError> {
        const CONTEXT: &str = "reading key health";
        let row = sqlx::query(
            "SELECT COUNT(*) AS keys,
                    COUNT(CASE WHEN state = 'disabled' THEN 1 END) AS disabled
             FROM kie_keys",
        )
        .fetch_one(&self.pool)
        .await
        .context(CONTEXT)?;
        let keys: i64 = row.try_get("keys").context(CONTEXT)?;
        let disabled: i64 = row.try_get("disabled").context(CONTEXT)?;
        Ok(keys > 0 && disabled == keys)
    }

    pub async fn enable_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE kie_keys SET state = 'healthy', reason = NULL, until_at = NULL, updated_at = $2
             WHERE id = $1",
        )
        .bind(key_id)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .context("enabling a key")?
        .rows_affected();
        Ok(updated > 0)
    }

    /// Takes one createTask slot of `account`: at most `limit` per sliding `window` across
    /// every worker process. Returns the slot (the caller may create now, and calls
    /// [`Store::settle_create_slot`] once KIE has answered) or how long to wait before asking
    /// again.
    pub async fn take_create_slot(
        &self,
        account: &str,
        limit: u32,
        window: Duration,
    ) -> Result<CreateSlot, StoreError> {
        let slots = self.take_create_slots(account, limit, window, 1).await?;
        Ok(match slots.taken.first() {
            Some(&id) => CreateSlot::Taken(id),
            None => CreateSlot::Wait(slots.wait),
        })
    }

    /// Takes up to `wanted` createTask slots of `account` at once, as many as the window
    /// has room for; each is settled on its own once KIE has answered its request.
    pub async fn take_create_slots(
        &self,
        account: &str,
        limit: u32,
        window: Duration,
        wanted: u32,
    ) -> Result<CreateSlots, StoreError> {
        // A slot counts from KIE's answer, which came after KIE counted the request, so our
        // windows already end later than KIE's. The margin covers what differs between the
        // clocks of worker hosts that share an account (NTP keeps them within milliseconds):
        // 1 %, at least 100 ms: a hundred times what NTP usually leaves. It was 10 %, then
        // 2.5 % (at least 250 ms), and each cost its share of the allowed rate
        // (`cargo bench --bench quota`: 0.894, then 0.945). Hosts whose clocks differ more
        // meet KIE's 429, which every create obeys (a cool-down, the job retried).
        let window = window + (window / 100).max(Duration::from_millis(100));
        self.clear_past_create_slots(account, window).await?;
        let (taken, oldest_answered, now) = match self.engine {
            Engine::Postgres => {
                self.take_create_slots_postgres(account, limit, window, wanted)
                    .await?
            }
            Engine::Sqlite => {
                self.take_create_slots_sqlite(account, limit, window, wanted)
                    .await?
            }
        };
        if taken.len() >= usize::try_from(wanted).unwrap_or(usize::MAX) {
            return Ok(CreateSlots {
                taken,
                wait: Duration::ZERO,
            });
        }
        // The oldest answered slot frees first; while every slot waits for KIE's answer, ask
        // again shortly.
        let wait = oldest_answered
            .map(|at| at.saturating_add(millis_of(window)).saturating_sub(now))
            .unwrap_or(IN_FLIGHT_RECHECK_MS)
            .max(1);
        Ok(CreateSlots {
            taken,
            wait: Duration::from_millis(u64::try_from(wait).unwrap_or(1)),
        })
    }

    /// One call of `take_kie_create_slots` (migration 0018), which locks the account's row,
    /// counts and inserts inside the server: the row is held for microseconds instead of
    /// three round trips to this process. The clock is read before the lock is waited for:
    /// an earlier `now` counts a window that starts earlier, so the wait can only make the
    /// count stricter, and a slot's own stamp is replaced by KIE's answer when it settles.
    async fn take_create_slots_postgres(
        &self,
        account: &str,
        limit: u32,
        window: Duration,
        wanted: u32,
    ) -> Result<SlotCount, StoreError> {
        let now = self.now();
        let rows: Vec<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT slot_id, oldest_answered
                 FROM take_kie_create_slots($1, $2, $3, $4, $5, $6)",
        )
        .bind(account)
        .bind(now.saturating_sub(millis_of(window)))
        .bind(now.saturating_sub(millis_of(window + IN_FLIGHT_AT_MOST)))
        .bind(now)
        .bind(i64::from(limit))
        .bind(i64::from(wanted))
        .fetch_all(&self.pool)
        .await
        .context("taking create slots")?;
        let oldest_answered = rows.first().and_then(|(_, oldest)| *oldest);
        let taken = rows.into_iter().filter_map(|(slot, _)| slot).collect();
        Ok((taken, oldest_answered, now))
    }

    /// SQLite's write lock serialises every writer: the account needs no lock of its own.
    async fn take_create_slots_sqlite(
        &self,
        account: &str,
        limit: u32,
        window: Duration,
        wanted: u32,
    ) -> Result<SlotCount, StoreError> {
        const CONTEXT: &str = "taking create slots";
        let mut tx = self.begin_write(CONTEXT).await?;
        // Read the clock only once the database is ours: time spent waiting for the lock
        // must not make the window look emptier than it is.
        let now = self.now();
        let since = now.saturating_sub(millis_of(window));
        // A slot whose request never got an answer (its process died) stops counting after
        // the longest a request can take.
        let abandoned = now.saturating_sub(millis_of(window + IN_FLIGHT_AT_MOST));
        // Counted in the database: with a generous limit the window holds many slots, and
        // only their number and the oldest answered one matter.
        let (in_window, oldest_answered): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(CASE WHEN in_flight = 0 THEN at END)
             FROM kie_creates
             WHERE account = $1 AND at > $3 AND (in_flight <> 0 OR at > $2)",
        )
        .bind(account)
        .bind(since)
        .bind(abandoned)
        .fetch_one(&mut *tx)
        .await
        .context(CONTEXT)?;
        let room = (i64::from(limit) - in_window).clamp(0, i64::from(wanted));
        if room == 0 {
            tx.rollback().await.context(CONTEXT)?;
            return Ok((Vec::new(), oldest_answered, now));
        }
        let mut taken = Vec::with_capacity(usize::try_from(room).unwrap_or(0));
        for _ in 0..room {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO kie_creates (account, at, in_flight) VALUES ($1, $2, 1) RETURNING id",
            )
            .bind(account)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .context(CONTEXT)?;
            taken.push(id);
        }
        tx.commit().await.context(CONTEXT)?;
        Ok((taken, oldest_answered, now))
    }

    /// Deletes the slots past the window, at most once a second per account and process. Outside the
    /// account's lock, and not on every take: the count skips past slots anyway, so they
    /// only need to stay few, and a delete on every create was one more commit per video.
    async fn clear_past_create_slots(
        &self,
        account: &str,
        window: Duration,
    ) -> Result<(), StoreError> {
        let now = self.now();
        {
            let Ok(mut cleared) = self.slots_cleared_at.lock() else {
                return Ok(());
            };
            let last = cleared.entry(account.to_owned()).or_insert(Millis::MIN);
            if now.saturating_sub(*last) < SLOTS_CLEARED_EVERY_MS {
                return Ok(());
            }
            *last = now;
        }
        sqlx::query(
            "DELETE FROM kie_creates
             WHERE account = $1 AND ((in_flight = 0 AND at <= $2) OR at <= $3)",
        )
        .bind(account)
        .bind(now.saturating_sub(millis_of(window)))
        .bind(now.saturating_sub(millis_of(window + IN_FLIGHT_AT_MOST)))
        .execute(&self.pool)
        .await
        .context("clearing past create slots")?;
        Ok(())
    }

    /// KIE has answered the request of slot `id` (whatever it said): the request arrived
    /// before now, so the slot counts from now on.
    pub async fn settle_create_slot(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE kie_creates SET at = $2, in_flight = 0 WHERE id = $1")
            .bind(id)
            .bind(self.now())
            .execute(&self.pool)
            .await
            .context("settling a create slot")?;
        Ok(())
    }
}
