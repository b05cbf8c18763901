//! What the KIE emulator remembers, and the bookkeeping of its limits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::task::Task;
use super::{EmulatedTask, KieConfig, RecordedRequest};

/// State shared by the handlers and the handle. The mutex is never held across an `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<KieState>,
    pub config: KieConfig,
    pub base_url: String,
    /// Fires on shutdown; whatever waits on its own (`#hang`, callbacks) watches it.
    pub cancel: CancellationToken,
    pub http: reqwest::Client,
}

impl Shared {
    pub(crate) fn new(config: KieConfig, base_url: String) -> std::io::Result<Shared> {
        // Callback targets and fetched files are local: an HTTP(S)_PROXY of the environment
        // must not capture them.
        let http = reqwest::Client::builder()
            .no_proxy()
            .user_agent("kie-emulator")
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Shared {
            state: Mutex::new(KieState::new(&config)),
            config,
            base_url,
            cancel: CancellationToken::new(),
            http,
        })
    }

    /// A panic in one handler must not wedge every later request, so poisoning is ignored:
    /// the state is plain data and stays consistent between statements.
    pub(crate) fn lock(&self) -> MutexGuard<'_, KieState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
pub(crate) struct Account {
    pub name: String,
    pub keys: Vec<String>,
    pub credits: i64,
    /// When each accepted create happened, for the sliding window.
    pub creates: Vec<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub bytes: Bytes,
    pub mime: &'static str,
}

/// Why a valid create request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    RateLimited,
    InsufficientCredits,
}

#[derive(Debug)]
pub(crate) struct KieState {
    accounts: Vec<Account>,
    tasks: Vec<Task>,
    task_index: HashMap<String, usize>,
    pub requests: Vec<RecordedRequest>,
    pub create_task_calls: usize,
    pub rate_limited: usize,
    status_queries: HashMap<String, VecDeque<Instant>>,
    prompt_uses: HashMap<String, u32>,
    /// Tasks still to be refused for a content violation, whatever their prompt.
    pub refuse_next: u32,
    pub files: HashMap<String, StoredFile>,
    /// Models retired at run time: their creates answer "temporarily paused".
    paused_models: HashSet<String>,
    counter: u64,
}

impl KieState {
    fn new(config: &KieConfig) -> KieState {
        KieState {
            accounts: config
                .accounts
                .iter()
                .map(|a| Account {
                    name: a.name.clone(),
                    keys: a.keys.clone(),
                    credits: a.credits,
                    creates: Vec::new(),
                })
                .collect(),
            tasks: Vec::new(),
            task_index: HashMap::new(),
            requests: Vec::new(),
            create_task_calls: 0,
            rate_limited: 0,
            status_queries: HashMap::new(),
            prompt_uses: HashMap::new(),
            refuse_next: 0,
            files: HashMap::new(),
            paused_models: HashSet::new(),
            counter: 0,
        }
    }

    /// The name of the account owning `key`.
    pub(crate) fn account_of_key(&self, key: &str) -> Option<String> {
        self.accounts
            .iter()
            .find(|a| a.keys.iter().any(|k| k == key))
            .map(|a| a.name.clone())
    }

    fn account_mut(&mut self, name: &str) -> Option<&mut Account> {
        self.accounts.iter_mut().find(|a| a.name == name)
    }

    pub(crate) fn credits(&self, account: &str) -> Option<i64> {
        self.accounts
            .iter()
            .find(|a| a.name == account)
            .map(|a| a.credits)
    }

    /// Returns false when the account does not exist.
    pub(crate) fn set_credits(&mut self, account: &str, credits: i64) -> bool {
        match self.account_mut(account) {
            Some(a) => {
                a.credits = credits;
                true
            }
            None => false,
        }
    }

    /// Decides on a create for `account`; on acceptance charges it and records the create.
    /// The limit counts accepted creates only, as KIE drops refused requests.
    pub(crate) fn admit_create(
        &mut self,
        account: &str,
        config: &KieConfig,
        now: Instant,
    ) -> Result<(), Refusal> {
        let Some(acc) = self.account_mut(account) else {
            return Err(Refusal::InsufficientCredits);
        };
        let recent = acc
            .creates
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < config.create_window)
            .count();
        if recent >= config.create_limit as usize {
            return Err(Refusal::RateLimited);
        }
        if acc.credits < config.cost_per_task {
            return Err(Refusal::InsufficientCredits);
        }
        acc.credits -= config.cost_per_task;
        acc.creates.push(now);
        Ok(())
    }

    /// Counts a status query of `key` and says whether it is within the per-second limit.
    pub(crate) fn admit_status(&mut self, key: &str, limit: u32, now: Instant) -> bool {
        let window = self.status_queries.entry(key.to_owned()).or_default();
        while window
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            return false;
        }
        window.push_back(now);
        true
    }

    /// `task_<model>_<millis><counter>`; a model id like `kling-2.6/image-to-video` has its
    /// slash replaced, so that the id fits in a URL path segment.
    pub(crate) fn next_task_id(&mut self, model: &str) -> String {
        self.counter += 1;
        let model: String = model
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("task_{model}_{}{}", unix_millis(), self.counter)
    }

    /// `veo_task_<millis><counter>`, like the ids of KIE's Veo docs.
    pub(crate) fn next_veo_task_id(&mut self) -> String {
        self.counter += 1;
        format!("veo_task_{}{}", unix_millis(), self.counter)
    }

    pub(crate) fn pause_model(&mut self, model: &str) {
        self.paused_models.insert(model.to_owned());
    }

    pub(crate) fn is_paused(&self, model: &str) -> bool {
        self.paused_models.contains(model)
    }

    /// How many tasks were created with this exact prompt before; counts this one.
    pub(crate) fn use_prompt(&mut self, prompt: &str) -> u32 {
        let uses = self.prompt_uses.entry(prompt.to_owned()).or_default();
        let previous = *uses;
        *uses += 1;
        previous
    }

    pub(crate) fn insert_task(&mut self, task: Task) {
        self.task_index.insert(task.id.clone(), self.tasks.len());
        self.tasks.push(task);
    }

    pub(crate) fn task(&self, id: &str) -> Option<&Task> {
        self.task_index.get(id).and_then(|i| self.tasks.get(*i))
    }

    pub(crate) fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    pub(crate) fn public_tasks(&self, now: Instant) -> Vec<EmulatedTask> {
        self.tasks.iter().map(|t| t.public(now)).collect()
    }

    pub(crate) fn max_creates_in_window(&self, account: &str, window: Duration) -> usize {
        let Some(acc) = self.accounts.iter().find(|a| a.name == account) else {
            return 0;
        };
        // Creates are pushed in time order, so a two-pointer sweep finds the densest window.
        let times = &acc.creates;
        let mut best = 0;
        let mut start = 0;
        for (end, t) in times.iter().enumerate() {
            while start < end && t.saturating_duration_since(times[start]) >= window {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }
}

pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
