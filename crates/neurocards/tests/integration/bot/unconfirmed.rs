//! A send whose answer never came: the video is neither sent again on the worker's own nor
//! refunded, and the user can ask for it again from the summary.

use std::time::Duration;

use emulators::telegram::{Fault, SentKind};
use neurocards::store::Engine;

use super::rig::{buttons, text_of, BotRig};

crate::both_engines!(
    a_send_answered_after_the_timeout_is_kept_and_can_be_asked_for_again,
    a_summary_answered_after_the_timeout_is_not_sent_again,
);

async fn a_send_answered_after_the_timeout_is_kept_and_can_be_asked_for_again(engine: Engine) {
    let rig = BotRig::with_worker_timeout(engine, Duration::from_secs(2)).await;
    let user = rig.user(4101, "en", 5).await;
    // Telegram takes the video but answers only after the worker stopped waiting.
    rig.telegram.inject(Fault::LateAnswer {
        method: "SendVideo".to_owned(),
        delay: Duration::from_secs(4),
    });
    let counts = rig.up_to_count(&user).await;
    let before = rig.telegram.sent(user.id).len();
    rig.press(&user, &counts, 0, 1).await;
    let summary = rig
        .wait_for(&user, before, |message| {
            text_of(message).starts_with("Videos made:")
        })
        .await;
    let videos = |rig: &BotRig| {
        rig.telegram
            .sent(user.id)
            .iter()
            .filter(|message| matches!(message.kind, SentKind::Video { .. }))
            .count()
    };
    assert_eq!(
        videos(&rig),
        1,
        "the video arrived once and was not sent again"
    );
    assert!(
        text_of(&summary).contains("Videos made: 1 of 1.")
            && text_of(&summary).contains("Telegram did not confirm the delivery of video 1"),
        "{summary:?}"
    );
    assert_eq!(
        rig.balance(&user).await,
        4,
        "charged: the video may be with the user"
    );
    let (status, unconfirmed, refunds): (String, i64, i64) = sqlx::query_as(
        "SELECT j.status, j.delivery_unconfirmed,
                (SELECT COUNT(*) FROM ledger l WHERE l.job_id = j.id AND l.kind = 'refund')
         FROM jobs j WHERE j.user_id = $1",
    )
    .bind(user.id)
    .fetch_one(rig.store().pool())
    .await
    .expect("the job");
    assert_eq!((status.as_str(), unconfirmed, refunds), ("delivered", 1, 0));

    let again = buttons(&summary)
        .into_iter()
        .position(|(label, _)| label == "Send video 1 again")
        .expect("a send-again button");
    let resent = rig.press(&user, &summary, again, 1).await;
    assert!(
        matches!(resent[0].kind, SentKind::Video { .. }) && text_of(&resent[0]) == "Video 1 of 1",
        "{resent:?}"
    );
    let (unconfirmed, message_id): (i64, Option<i64>) =
        sqlx::query_as("SELECT delivery_unconfirmed, tg_message_id FROM jobs WHERE user_id = $1")
            .bind(user.id)
            .fetch_one(rig.store().pool())
            .await
            .expect("the job");
    assert_eq!(unconfirmed, 0, "confirmed once the user asked and got it");
    assert!(message_id.is_some());
    assert_eq!(rig.balance(&user).await, 4, "sending again is free");
    rig.assert_sound().await;
}

/// The summary is sent at most once: its send got no answer in time (it arrived), and no
/// worker sends it again, though the order stays summarised.
async fn a_summary_answered_after_the_timeout_is_not_sent_again(engine: Engine) {
    let rig = BotRig::with_worker_timeout(engine, Duration::from_secs(2)).await;
    let user = rig.user(4102, "en", 5).await;
    let counts = rig.up_to_count(&user).await;
    let before = rig.telegram.sent(user.id).len();
    rig.press(&user, &counts, 0, 1).await;
    rig.wait_for(&user, before, |message| {
        buttons(message)
            .iter()
            .any(|(_, data)| data.starts_with("cx:"))
    })
    .await;
    // The next sendMessage is the worker's summary: the video comes by sendVideo and the
    // progress by editMessageText.
    rig.telegram.inject(Fault::LateAnswer {
        method: "sendMessage".to_owned(),
        delay: Duration::from_secs(4),
    });
    rig.wait_for(&user, before, |message| {
        text_of(message).starts_with("Videos made:")
    })
    .await;
    // Longer than the late answer and several summary sweeps.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let summaries = rig
        .telegram
        .sent(user.id)
        .iter()
        .filter(|message| text_of(message).starts_with("Videos made:"))
        .count();
    assert_eq!(
        summaries, 1,
        "the summary arrived once and was not sent again"
    );
    let (sent, message_id): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT summary_sent_at, summary_message_id FROM orders WHERE user_id = $1")
            .bind(user.id)
            .fetch_one(rig.store().pool())
            .await
            .expect("the order");
    assert!(sent.is_some(), "the order is summarised");
    assert_eq!(message_id, None, "without a confirmed message");
    rig.assert_sound().await;
}
