//! The processes under test: one `neurocards bot` and N `neurocards worker`, each started
//! from this same executable with its own log file, killed and started again by the storm.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// One `bot` and `workers` worker processes sharing `env` (the bot serves `HTTP_ADDR`, where
/// KIE calls back; the workers serve nothing).
pub struct Fleet {
    program: PathBuf,
    env: Vec<(String, String)>,
    logs: PathBuf,
    bot: Child,
    workers: Vec<Worker>,
    started: usize,
}

pub struct Worker {
    pub id: String,
    child: Child,
}

impl Fleet {
    pub fn start(env: Vec<(String, String)>, logs: &Path, workers: usize) -> anyhow::Result<Fleet> {
        let program = std::env::current_exe().context("finding this program to start its parts")?;
        let bot = spawn(&program, "bot", &env, &[], &logs.join("bot.log"))?;
        let mut fleet = Fleet {
            program,
            env,
            logs: logs.to_path_buf(),
            bot,
            workers: Vec::new(),
            started: 0,
        };
        for _ in 0..workers {
            let worker = fleet.spawn_worker()?;
            fleet.workers.push(worker);
        }
        Ok(fleet)
    }

    /// A new worker under a new id: a machine that died is replaced by another, so its jobs
    /// come back only through another worker's judgement that it is dead.
    fn spawn_worker(&mut self) -> anyhow::Result<Worker> {
        self.started += 1;
        let id = format!("chaos-worker-{}", self.started);
        let child = spawn(
            &self.program,
            "worker",
            &self.env,
            &[("WORKER_ID", &id)],
            &self.logs.join(format!("{id}.log")),
        )?;
        Ok(Worker { id, child })
    }

    /// SIGKILLs the worker in `slot` and starts its replacement; returns the dead one's id.
    pub fn kill_and_replace(&mut self, slot: usize) -> anyhow::Result<String> {
        let slot = slot % self.workers.len().max(1);
        let replacement = self.spawn_worker()?;
        let Some(worker) = self.workers.get_mut(slot) else {
            anyhow::bail!("no worker to kill");
        };
        let _ = worker.child.kill();
        let _ = worker.child.wait();
        let dead = std::mem::replace(worker, replacement);
        Ok(dead.id)
    }

    /// Starts again every process that exited by itself (a start refused while the database
    /// was away, say); returns how many.
    pub fn restart_exited(&mut self) -> anyhow::Result<usize> {
        let mut restarted = 0;
        if matches!(self.bot.try_wait(), Ok(Some(_))) {
            self.bot = spawn(
                &self.program,
                "bot",
                &self.env,
                &[],
                &self.logs.join(format!("bot-{}.log", self.started)),
            )?;
            self.started += 1;
            restarted += 1;
        }
        for slot in 0..self.workers.len() {
            if matches!(self.workers[slot].child.try_wait(), Ok(Some(_))) {
                let replacement = self.spawn_worker()?;
                self.workers[slot] = replacement;
                restarted += 1;
            }
        }
        Ok(restarted)
    }

    pub fn workers(&self) -> &[Worker] {
        &self.workers
    }

    /// SIGTERM to every process, then waits for them (they hand their jobs back).
    pub fn stop(mut self) {
        let mut children: Vec<&mut Child> = self.workers.iter_mut().map(|w| &mut w.child).collect();
        children.push(&mut self.bot);
        for child in &children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for child in children {
            let _ = child.wait();
        }
    }
}

fn spawn(
    program: &Path,
    command: &str,
    env: &[(String, String)],
    extra: &[(&str, &str)],
    log: &Path,
) -> anyhow::Result<Child> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("sharing the log file")?;
    let mut process = Command::new(program);
    // Only what the soak sets: an operator's .env or variables must not leak in.
    process
        .arg(command)
        .env_clear()
        .current_dir(log.parent().unwrap_or(Path::new(".")))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    process
        .spawn()
        .with_context(|| format!("starting `{} {command}`", program.display()))
}

impl Drop for Fleet {
    /// A soak that stops on an error leaves no process behind.
    fn drop(&mut self) {
        for child in self
            .workers
            .iter_mut()
            .map(|w| &mut w.child)
            .chain(std::iter::once(&mut self.bot))
        {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
