//! Questions that many tasks of a process ask the database at once, answered in batches:
//! whichever task's turn it is asks for every question waiting, so a contended row lock or
//! a transaction is paid once per batch, not once per question, and the others wait for
//! their answer instead of for the lock.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

pub struct Coalescer<Q, A> {
    waiting: Mutex<Vec<Waiting<Q, A>>>,
    /// Held by the task asking for a batch; the next batch gathers meanwhile.
    asking: tokio::sync::Mutex<()>,
    most_at_once: usize,
}

struct Waiting<Q, A> {
    question: Q,
    answer: oneshot::Sender<A>,
}

impl<Q: Clone, A> Coalescer<Q, A> {
    /// A batch holds at most `most_at_once` questions (at least one).
    pub fn new(most_at_once: usize) -> Coalescer<Q, A> {
        Coalescer {
            waiting: Mutex::new(Vec::new()),
            asking: tokio::sync::Mutex::new(()),
            most_at_once: most_at_once.max(1),
        }
    }

    /// The answer to `question`, asked by this task or by whichever task took it into its
    /// batch. `answer_all` answers a batch in the order of its questions; a question it
    /// leaves unanswered (a shorter list) is asked again. An answer whose asker has gone
    /// meanwhile is dropped: an answer that reserves something (a turn, a slot) must be one
    /// whose loss only costs capacity for a while.
    pub async fn ask<F, Fut>(&self, question: Q, answer_all: F) -> A
    where
        F: Fn(Vec<Q>) -> Fut,
        Fut: Future<Output = Vec<A>>,
    {
        let mut answered = self.wait_for(question.clone());
        loop {
            tokio::select! {
                biased;
                answer = &mut answered => match answer {
                    Ok(answer) => return answer,
                    // The task asking for this question's batch went away (it was
                    // cancelled), or left it unanswered: ask again.
                    Err(_) => answered = self.wait_for(question.clone()),
                },
                _asking = self.asking.lock() => {
                    let batch: Vec<Waiting<Q, A>> = {
                        let mut waiting = lock(&self.waiting);
                        let take = waiting.len().min(self.most_at_once);
                        waiting.drain(..take).collect()
                    };
                    if batch.is_empty() {
                        continue;
                    }
                    let (questions, answers): (Vec<Q>, Vec<oneshot::Sender<A>>) = batch
                        .into_iter()
                        .map(|waiting| (waiting.question, waiting.answer))
                        .unzip();
                    for (answer, given) in answers.into_iter().zip(answer_all(questions).await) {
                        let _ = answer.send(given);
                    }
                }
            }
        }
    }

    fn wait_for(&self, question: Q) -> oneshot::Receiver<A> {
        let (answer, answered) = oneshot::channel();
        lock(&self.waiting).push(Waiting { question, answer });
        answered
    }
}

/// A mutex's guard, also after a panic elsewhere poisoned it: the guarded lists and maps
/// stay consistent between statements, so a poisoned one is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn questions_waiting_together_are_answered_in_one_batch() {
        let coalescer = Arc::new(Coalescer::<u32, u32>::new(100));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(tokio::sync::Notify::new());
        let ask = |question: u32| {
            let coalescer = coalescer.clone();
            let batches = batches.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                coalescer
                    .ask(question, |questions: Vec<u32>| {
                        let batches = batches.clone();
                        let gate = gate.clone();
                        async move {
                            lock(&batches).push(questions.len());
                            // The first batch is held until the others have queued.
                            if questions.len() == 1 {
                                gate.notified().await;
                            }
                            questions.iter().map(|q| q * 10).collect()
                        }
                    })
                    .await
            })
        };
        let first = ask(1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rest: Vec<_> = (2..=20).map(ask).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.notify_one();
        assert_eq!(first.await.unwrap(), 10);
        for (question, task) in (2..=20).zip(rest) {
            assert_eq!(task.await.unwrap(), question * 10);
        }
        assert_eq!(*lock(&batches), vec![1, 19]);
    }

    #[tokio::test]
    async fn a_batch_is_no_larger_than_the_most_at_once() {
        let coalescer = Arc::new(Coalescer::<u32, u32>::new(4));
        let largest = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..30)
            .map(|question| {
                let coalescer = coalescer.clone();
                let largest = largest.clone();
                tokio::spawn(async move {
                    coalescer
                        .ask(question, |questions: Vec<u32>| {
                            largest.fetch_max(questions.len(), Ordering::Relaxed);
                            async move {
                                tokio::task::yield_now().await;
                                questions
                            }
                        })
                        .await
                })
            })
            .collect();
        for (question, task) in (0..30).zip(tasks) {
            assert_eq!(task.await.unwrap(), question);
        }
        let largest = largest.load(Ordering::Relaxed);
        assert!((1..=4).contains(&largest), "{largest}");
    }

    #[tokio::test]
    async fn a_question_left_unanswered_or_whose_asker_went_is_asked_again() {
        let coalescer = Arc::new(Coalescer::<u32, u32>::new(100));
        // The first asker is cancelled in the middle of its batch.
        let stuck = {
            let coalescer = coalescer.clone();
            tokio::spawn(async move {
                coalescer
                    .ask(1, |_questions: Vec<u32>| std::future::pending::<Vec<u32>>())
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let second = {
            let coalescer = coalescer.clone();
            let calls = calls.clone();
            tokio::spawn(async move {
                coalescer
                    .ask(2, |questions: Vec<u32>| {
                        // The first time, the batch is answered short.
                        let short = calls.fetch_add(1, Ordering::Relaxed) == 0;
                        async move {
                            if short {
                                Vec::new()
                            } else {
                                questions.iter().map(|q| q + 100).collect()
                            }
                        }
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        stuck.abort();
        assert_eq!(second.await.unwrap(), 102);
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }
}
