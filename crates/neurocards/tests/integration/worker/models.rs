//! The model catalogue end to end: every built-in model reaches KIE with exactly the fields
//! its schema takes, options charge and refund their own price, the photo reaches KIE as a
//! vertical picture with the whole product, and a retired model is refunded, alerted once
//! and taken out of the offer.

use std::collections::BTreeSet;
use std::time::Duration;

use emulators::telegram::SentKind;
use neurocards::catalogue::Catalogue;
use neurocards::domain::{ErrorClass, JobStatus};
use neurocards::sample_photo::{product_jpeg, MUG};
use neurocards::store::{Engine, KeyState, StoreOptions};

use super::rig::{fast_config, one_account, Rig, ADMIN_ID, JPEG};

crate::both_engines!(
    an_order_on_each_built_in_model_reaches_kie_with_the_fields_of_its_schema,
    a_ten_second_option_charges_and_refunds_two_credits,
    the_photo_reaching_kie_is_vertical_with_the_whole_product,
    a_paused_model_is_refunded_alerted_once_and_no_longer_offered,
    a_client_refused_by_kies_cdn_is_refunded_and_the_admins_told_what_to_change,
);

fn catalogue() -> Catalogue {
    Catalogue::built_in().expect("the built-in catalogue")
}

async fn an_order_on_each_built_in_model_reaches_kie_with_the_fields_of_its_schema(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let catalogue = catalogue();
    let user = rig.user(601, 100, "en").await;
    let mut orders = Vec::new();
    for model in catalogue.all() {
        let option = &model.options[0];
        let spec = model.spec(option, "9:16");
        let prompt = format!("a mug on a table, made by {}", model.id);
        let placed = rig
            .order_of_spec(user, 1, &prompt, JPEG.to_vec(), spec, option.price)
            .await;
        orders.push((model, option, placed));
    }
    rig.spawn_worker().await;
    for (model, _, placed) in &orders {
        rig.wait_until_summarised(placed.order_id, Duration::from_secs(30))
            .await;
        assert_eq!(
            rig.job_statuses(placed.order_id).await,
            [JobStatus::Delivered],
            "{}",
            model.id
        );
    }
    let tasks = rig.kie.tasks();
    assert_eq!(tasks.len(), catalogue.all().len(), "one task per model");
    for (model, option, _) in &orders {
        let task = tasks
            .iter()
            .find(|task| task.model == model.kie_model)
            .unwrap_or_else(|| panic!("no task for {}", model.kie_model));
        assert_eq!(task.api, model.api.as_str(), "{}", model.id);
        let sent: BTreeSet<&str> = task
            .input
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .filter(|field| !matches!(*field, "model" | "callBackUrl"))
            .collect();
        let mut expected: BTreeSet<&str> = ["prompt", model.photo_field.name()].into();
        expected.extend(model.fixed.keys().map(String::as_str));
        expected.extend(option.input.keys().map(String::as_str));
        expected.extend(model.aspect_field.as_deref());
        assert_eq!(sent, expected, "{}", model.id);
        for (field, value) in option.input.iter().chain(model.fixed.iter()) {
            assert_eq!(&task.input[field], value, "{} {field}", model.id);
        }
        if let Some(field) = &model.aspect_field {
            assert_eq!(task.input[field], "9:16", "{}", model.id);
        }
    }
    assert_eq!(rig.kie.rate_limited(), 0);
    rig.assert_sound().await;
}

async fn a_ten_second_option_charges_and_refunds_two_credits(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let catalogue = catalogue();
    let kling = catalogue.get("kling-2.6").expect("kling");
    let ten = kling.option("10s").expect("a 10 s option");
    assert_eq!(ten.price, 2);
    let user = rig.user(602, 10, "en").await;
    let made = rig
        .order_of_spec(
            user,
            1,
            "a mug turns",
            JPEG.to_vec(),
            kling.spec(ten, "9:16"),
            2,
        )
        .await;
    let refused = rig
        .order_of_spec(
            user,
            2,
            "a mug #violation",
            JPEG.to_vec(),
            kling.spec(ten, "9:16"),
            2,
        )
        .await;
    assert_eq!(refused.balance_after, 10 - 2 - 4, "2 credits a video");
    rig.spawn_worker().await;
    rig.wait_until_summarised(made.order_id, Duration::from_secs(20))
        .await;
    rig.wait_until_summarised(refused.order_id, Duration::from_secs(20))
        .await;
    assert_eq!(rig.store().balance(user).await.unwrap(), 10 - 2);
    for job in &refused.job_ids {
        let details = rig.store().job(*job).await.unwrap().unwrap();
        assert_eq!(details.status, JobStatus::Failed);
        let refunds: Vec<i64> = details.ledger.iter().map(|entry| entry.delta).collect();
        assert_eq!(refunds, [2], "the refund returns what the video cost");
    }
    let task = rig
        .kie
        .tasks()
        .into_iter()
        .find(|task| task.prompt == "a mug turns")
        .expect("the task");
    assert_eq!(task.input["duration"], "10");
    rig.assert_sound().await;
}

async fn the_photo_reaching_kie_is_vertical_with_the_whole_product(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let user = rig.user(603, 5, "en").await;
    // A landscape photo, as sellers often send: Kling 2.6 would make a landscape video of it.
    let placed = rig
        .order_with_photo(user, 1, "a mug", product_jpeg(900, 600))
        .await;
    rig.spawn_worker().await;
    rig.wait_until_summarised(placed.order_id, Duration::from_secs(20))
        .await;
    let task = rig.kie.tasks().pop().expect("a task");
    let url = task.input["image_urls"][0]
        .as_str()
        .expect("an image URL")
        .to_owned();
    assert!(url.ends_with(".jpg"), "{url}");
    let bytes = reqwest::get(&url)
        .await
        .expect("the emulator serves the upload")
        .bytes()
        .await
        .expect("the uploaded photo");
    assert_eq!(
        image::guess_format(&bytes).ok(),
        Some(image::ImageFormat::Jpeg)
    );
    let uploaded = image::load_from_memory(&bytes)
        .expect("the upload decodes")
        .to_rgb8();
    let (width, height) = uploaded.dimensions();
    assert_eq!(width * 16, height * 9, "9:16, got {width}x{height}");
    let near = |pixel: &image::Rgb<u8>, want: [u8; 3], tolerance: u8| {
        pixel
            .0
            .iter()
            .zip(want)
            .all(|(got, want)| got.abs_diff(want) <= tolerance)
    };
    assert!(
        near(uploaded.get_pixel(width / 2, height / 2), MUG.0, 20),
        "the centre is the product: {:?}",
        uploaded.get_pixel(width / 2, height / 2)
    );
    // The 3:2 photo is fitted to the full width: its top edge (the backdrop) and bottom edge
    // (the table) are both inside the picture, so nothing of the product was cropped.
    let fitted_height = width * 2 / 3;
    let top = (height - fitted_height) / 2;
    let backdrop = [200, 180, 150];
    let table = [120, 84, 60];
    assert!(
        near(uploaded.get_pixel(4, top + 6), backdrop, 30),
        "{:?}",
        uploaded.get_pixel(4, top + 6)
    );
    assert!(
        near(
            uploaded.get_pixel(width - 5, top + fitted_height - 6),
            table,
            30
        ),
        "{:?}",
        uploaded.get_pixel(width - 5, top + fitted_height - 6)
    );
    rig.assert_sound().await;
}

async fn a_paused_model_is_refunded_alerted_once_and_no_longer_offered(engine: Engine) {
    let mut rig = Rig::start(engine).await;
    let catalogue = catalogue();
    rig.kie.pause_model("kling-2.6/image-to-video");
    let user = rig.user(604, 5, "en").await;
    let placed = rig.order(user, 3, "a mug on a podium").await;
    rig.spawn_worker().await;
    rig.wait_until_summarised(placed.order_id, Duration::from_secs(20))
        .await;
    assert_eq!(
        rig.job_statuses(placed.order_id).await,
        [JobStatus::Failed; 3]
    );
    assert_eq!(rig.store().balance(user).await.unwrap(), 5, "all refunded");
    for job in &placed.job_ids {
        let details = rig.store().job(*job).await.unwrap().unwrap();
        assert_eq!(details.error_class, Some(ErrorClass::ModelUnavailable));
    }
    let alerts: Vec<String> = rig
        .telegram
        .sent(ADMIN_ID)
        .iter()
        .filter(|message| matches!(message.kind, SentKind::Text))
        .filter_map(|message| message.text.clone())
        .collect();
    assert_eq!(alerts.len(), 1, "one alert, not one per video: {alerts:?}");
    assert!(alerts[0].contains("kling-2.6"), "{}", alerts[0]);
    assert!(
        alerts[0].contains("admin models enable kling-2.6"),
        "{}",
        alerts[0]
    );
    let unavailable = rig.store().unavailable_models().await.unwrap();
    assert!(unavailable.contains("kling-2.6"), "{unavailable:?}");
    assert!(
        catalogue
            .choices("9:16", 10, &unavailable, None)
            .iter()
            .all(|choice| choice.model.id != "kling-2.6"),
        "no longer offered"
    );
    assert_eq!(
        catalogue
            .resolve("kling-2.6", &unavailable)
            .map(|model| model.id.as_str()),
        Some("seedance-1.5-pro"),
        "templates move to the fallback"
    );
    assert!(rig.store().enable_model("kling-2.6").await.unwrap());
    assert!(rig.store().unavailable_models().await.unwrap().is_empty());
    rig.assert_sound().await;
}

async fn a_client_refused_by_kies_cdn_is_refunded_and_the_admins_told_what_to_change(
    engine: Engine,
) {
    let kie = emulators::kie::KieConfig {
        refused_user_agents: vec!["neurocards".to_owned()],
        ..one_account()
    };
    let mut rig = Rig::with(engine, kie, fast_config(), StoreOptions::default()).await;
    let user = rig.user(605, 5, "en").await;
    let placed = rig.order(user, 2, "a mug").await;
    rig.spawn_worker().await;
    rig.wait_until_summarised(placed.order_id, Duration::from_secs(20))
        .await;
    assert_eq!(
        rig.job_statuses(placed.order_id).await,
        [JobStatus::Failed; 2]
    );
    assert_eq!(rig.store().balance(user).await.unwrap(), 5, "refunded");
    let mut told = 0;
    for id in &placed.job_ids {
        let job = rig.store().job(*id).await.unwrap().unwrap();
        assert_eq!(job.error_class, Some(ErrorClass::Billing));
        // The first refusal says what to change; a job that found the key already out of
        // rotation says so instead.
        if job
            .error_message
            .as_deref()
            .is_some_and(|message| message.contains("KIE_USER_AGENT"))
        {
            told += 1;
        }
    }
    assert!(told >= 1, "the operator's fix is in the job's error");
    let keys = rig.store().key_health().await.unwrap();
    assert!(
        keys.iter().all(|key| key.state == KeyState::Disabled),
        "{keys:?}"
    );
    let alerts: Vec<String> = rig
        .telegram
        .sent(ADMIN_ID)
        .iter()
        .filter_map(|message| message.text.clone())
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("set KIE_USER_AGENT"), "{}", alerts[0]);
    assert_eq!(rig.kie.tasks().len(), 0, "nothing was created");
    rig.assert_sound().await;
}
