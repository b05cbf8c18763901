//! The parts of a process (the dialog, the worker pool, the HTTP server) live and die
//! together: when one ends while the process is not stopping, the others are stopped and the
//! process exits with an error, so systemd or Docker restarts it instead of leaving a bot that
//! takes orders nobody works on.

use std::time::Duration;

use anyhow::anyhow;
use futures::future::select_all;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub type Part = (&'static str, JoinHandle<anyhow::Result<()>>);

/// Waits for the parts; `stop_within` bounds how long the others may take to stop.
pub async fn supervise(
    shutdown: CancellationToken,
    parts: Vec<Part>,
    stop_within: Duration,
) -> anyhow::Result<()> {
    let (names, handles): (Vec<&'static str>, Vec<_>) = parts.into_iter().unzip();
    if handles.is_empty() {
        return Ok(());
    }
    let (first, index, rest) = select_all(handles).await;
    let name = names.get(index).copied().unwrap_or("a part");
    let stopping = shutdown.is_cancelled();
    let mut failure = match first {
        Ok(Ok(())) if stopping => None,
        Ok(Ok(())) => Some(anyhow!("the {name} stopped unexpectedly")),
        Ok(Err(err)) => Some(err.context(format!("the {name} failed"))),
        Err(err) => Some(anyhow!("the {name} crashed: {err}")),
    };
    if let Some(err) = &failure {
        tracing::error!(part = name, error = %format!("{err:#}"), "a part of the process stopped: stopping the others");
    }
    shutdown.cancel();
    let others: Vec<&'static str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .map(|(_, name)| *name)
        .collect();
    match tokio::time::timeout(stop_within, futures::future::join_all(rest)).await {
        Ok(results) => {
            for (name, result) in others.iter().zip(results) {
                let err = match result {
                    Ok(Ok(())) => continue,
                    Ok(Err(err)) => err.context(format!("the {name} failed")),
                    Err(err) => anyhow!("the {name} crashed: {err}"),
                };
                tracing::error!(part = *name, error = %format!("{err:#}"), "a part of the process failed while stopping");
                failure.get_or_insert(err);
            }
        }
        Err(_) => {
            let err = anyhow!(
                "the {} did not stop within {stop_within:?}",
                others.join(", ")
            );
            tracing::error!(error = %err, "stopping the process");
            failure.get_or_insert(err);
        }
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(
        name: &'static str,
        run: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Part {
        (name, tokio::spawn(run))
    }

    #[tokio::test]
    async fn a_part_that_fails_stops_the_others_and_the_process() {
        let shutdown = CancellationToken::new();
        let waiting = shutdown.clone();
        let result = supervise(
            shutdown.clone(),
            vec![
                part("bot", async move {
                    waiting.cancelled().await;
                    Ok(())
                }),
                part("http server", async {
                    Err(anyhow!("address already in use"))
                }),
            ],
            Duration::from_secs(5),
        )
        .await;
        let err = format!("{:#}", result.expect_err("the process fails"));
        assert!(
            err.contains("http server failed") && err.contains("address already in use"),
            "{err}"
        );
        assert!(shutdown.is_cancelled(), "the bot was told to stop");
    }

    #[tokio::test]
    async fn a_part_that_ends_on_its_own_is_a_failure_too() {
        let shutdown = CancellationToken::new();
        let waiting = shutdown.clone();
        let result = supervise(
            shutdown,
            vec![
                part("worker", async { Ok(()) }),
                part("bot", async move {
                    waiting.cancelled().await;
                    Ok(())
                }),
            ],
            Duration::from_secs(5),
        )
        .await;
        assert!(format!("{:#}", result.expect_err("fails")).contains("worker stopped unexpectedly"));
    }

    #[tokio::test]
    async fn a_requested_stop_ends_cleanly() {
        let shutdown = CancellationToken::new();
        let (a, b) = (shutdown.clone(), shutdown.clone());
        shutdown.cancel();
        let result = supervise(
            shutdown,
            vec![
                part("bot", async move {
                    a.cancelled().await;
                    Ok(())
                }),
                part("worker", async move {
                    b.cancelled().await;
                    Ok(())
                }),
            ],
            Duration::from_secs(5),
        )
        .await;
        assert!(result.is_ok());
    }
}
