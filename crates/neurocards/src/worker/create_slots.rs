//! The createTask slots this process's jobs wait for, taken per KIE account in batches:
//! every job of the process that waits for a slot of an account is asked for in one call,
//! so the account's shared count (a locked row on PostgreSQL) is taken once per batch
//! instead of once per create, and the jobs queue in the process rather than on the row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::coalesce::{lock, Coalescer};
use crate::store::{CreateSlot, Store};

/// The most slots asked for in one call.
const MOST_AT_ONCE: usize = 500;

/// An answer: a slot or how long to wait, `None` when the database did not answer.
type Answer = Option<CreateSlot>;

pub(crate) struct CreateSlots {
    store: Store,
    limit: u32,
    window: Duration,
    accounts: Mutex<HashMap<String, Arc<Coalescer<(), Answer>>>>,
}

impl CreateSlots {
    pub(crate) fn new(store: Store, limit: u32, window: Duration) -> CreateSlots {
        CreateSlots {
            store,
            limit,
            window,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// A slot of `account` for one create, or how long to wait before asking again. An
    /// answer that reaches a job no longer waiting (its task was aborted) is a slot counted
    /// for nothing until it is abandoned: slower for a while, never over the limit.
    pub(crate) async fn take(&self, account: &str) -> Answer {
        let asks = self.asks_of(account);
        asks.ask((), |asked| self.take_for(account, asked.len()))
            .await
    }

    fn asks_of(&self, account: &str) -> Arc<Coalescer<(), Answer>> {
        lock(&self.accounts)
            .entry(account.to_owned())
            .or_insert_with(|| Arc::new(Coalescer::new(MOST_AT_ONCE)))
            .clone()
    }

    async fn take_for(&self, account: &str, wanted: usize) -> Vec<Answer> {
        let asked = u32::try_from(wanted).unwrap_or(u32::MAX);
        match self
            .store
            .take_create_slots(account, self.limit, self.window, asked)
            .await
        {
            Ok(slots) => answers(slots.taken, slots.wait, wanted),
            Err(err) => {
                tracing::warn!(account, error = %err, "could not take create slots; the jobs wait and ask again");
                vec![None; wanted]
            }
        }
    }
}

/// One answer per asking job: the slots taken first, then the wait for the rest.
fn answers(taken: Vec<i64>, wait: Duration, wanted: usize) -> Vec<Answer> {
    let mut answers: Vec<Answer> = taken
        .into_iter()
        .map(|slot| Some(CreateSlot::Taken(slot)))
        .collect();
    answers.resize(wanted.max(answers.len()), Some(CreateSlot::Wait(wait)));
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slots_taken_go_first_and_the_rest_wait() {
        let wait = Duration::from_millis(700);
        assert_eq!(
            answers(vec![4, 5], wait, 4),
            vec![
                Some(CreateSlot::Taken(4)),
                Some(CreateSlot::Taken(5)),
                Some(CreateSlot::Wait(wait)),
                Some(CreateSlot::Wait(wait)),
            ]
        );
        assert_eq!(
            answers(vec![], wait, 2),
            vec![Some(CreateSlot::Wait(wait)); 2]
        );
        assert_eq!(answers(vec![9], wait, 1), vec![Some(CreateSlot::Taken(9))]);
    }
}
