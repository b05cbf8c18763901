//! Invite links: bound once, never to oneself, and the bonus for both sides on the invited
//! user's first payment only, once however often Telegram repeats it.

use std::time::Duration;

use emulators::telegram::{SentKind, TestUser};
use neurocards::domain::referral::invite_parameter;
use neurocards::domain::UserId;
use neurocards::store::Engine;

use super::rig::{text_of, BotRig};

crate::both_engines!(the_invite_bonus_lands_once_for_each_side_on_the_first_payment_only);

/// `/buy`, the first package's invoice, the checkout and the payment; returns the replies
/// to the payment.
async fn buy(rig: &BotRig, user: &TestUser, charge: &str, replies: usize) -> Vec<String> {
    let screen = rig.say(user, "/buy", 1).await.remove(0);
    let invoice = rig.press(user, &screen, 0, 1).await.remove(0);
    let SentKind::Invoice {
        payload, amount, ..
    } = invoice.kind
    else {
        panic!("an invoice: {invoice:?}");
    };
    let query = rig.telegram.pre_checkout(user, "XTR", amount, &payload);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !rig
        .telegram
        .pre_checkout_answers()
        .iter()
        .any(|answer| answer.query_id == query && answer.ok)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "checkout not accepted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = rig.telegram.sent(user.id).len();
    rig.telegram
        .successful_payment(user, "XTR", amount, &payload, charge);
    rig.replies(user, before, replies)
        .await
        .iter()
        .map(text_of)
        .collect()
}

async fn the_invite_bonus_lands_once_for_each_side_on_the_first_payment_only(engine: Engine) {
    let rig = BotRig::start(engine).await;
    let inviter = rig.user(801, "en", 0).await;
    let link = invite_parameter(UserId(inviter.id));

    // Inviting oneself binds nothing: only the welcome.
    let own = rig.say(&inviter, &format!("/start {link}"), 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.telegram.sent(inviter.id).len(), own.len());

    let friend = TestUser::new(802, "en");
    let arrived = rig.say(&friend, &format!("/start {link}"), 2).await;
    assert!(text_of(&arrived[0]).starts_with("Hi!"), "{arrived:?}");
    assert_eq!(
        text_of(&arrived[1]),
        "You came by a friend's invitation: with your first purchase you both get 3 credits."
    );
    // Another link later binds the friend to nobody else.
    let other = rig.user(803, "en", 0).await;
    rig.say(
        &friend,
        &format!("/start {}", invite_parameter(UserId(other.id))),
        1,
    )
    .await;

    let paid = buy(&rig, &friend, "charge-ref-1", 2).await;
    assert!(paid[0].contains("Your balance: 5 credits"), "{paid:?}");
    assert_eq!(
        paid[1],
        "Invitation bonus: 3 credits added. Your balance: 8 credits."
    );
    let told = rig
        .telegram
        .wait_for_sent(inviter.id, own.len() + 1, Duration::from_secs(10))
        .await;
    assert_eq!(
        text_of(told.last().expect("a message")),
        "A friend you invited made their first purchase: 3 credits added. Your balance: 3 credits."
    );
    assert_eq!(rig.balance(&inviter).await, 3);
    assert_eq!(rig.balance(&friend).await, 8);
    assert_eq!(rig.balance(&other).await, 0);

    // Telegram repeats the payment; the friend pays again: no more bonus.
    let payload = format!("buy:start:{}", friend.id);
    let before = rig.telegram.sent(friend.id).len();
    rig.telegram
        .successful_payment(&friend, "XTR", 100, &payload, "charge-ref-1");
    rig.replies(&friend, before, 1).await;
    let again = buy(&rig, &friend, "charge-ref-2", 1).await;
    assert!(again[0].contains("Your balance: 13 credits"), "{again:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.balance(&inviter).await, 3);
    assert_eq!(rig.balance(&friend).await, 13);

    let invite = rig.say(&inviter, "/invite", 1).await.remove(0);
    let text = text_of(&invite);
    assert!(
        text.contains(&format!("https://t.me/neurocards_test_bot?start={link}")),
        "{text}"
    );
    assert!(
        text.contains("Friends invited: 1, of them paying: 1."),
        "{text}"
    );
    rig.assert_sound().await;
}
