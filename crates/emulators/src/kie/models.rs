//! The models KIE lists, each with its input schema as KIE publishes it, and the validation
//! that createTask (Market) and veo/generate apply to a request.
//!
//! The schemas are deliberately strict: a client that sends a field KIE does not know, or a
//! value of the wrong JSON type (`"duration": 5` where KIE wants the string `"5"`), must fail
//! here as it fails at KIE, not pass silently.

use serde_json::{Map, Value};

/// The JSON type KIE expects on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    String,
    Integer,
    Boolean,
    StringList,
    /// Structured options (Kling's `multi_prompt`, `kling_elements`) that the emulator accepts
    /// without looking inside.
    ObjectList,
}

impl Wire {
    fn describe(self) -> &'static str {
        match self {
            Wire::String => "a string",
            Wire::Integer => "an integer",
            Wire::Boolean => "a boolean",
            Wire::StringList => "a list of strings",
            Wire::ObjectList => "a list of objects",
        }
    }

    fn matches(self, value: &Value) -> bool {
        match self {
            Wire::String => value.is_string(),
            // 8.0 is a float to KIE's validator, not an integer.
            Wire::Integer => value.is_i64() || value.is_u64(),
            Wire::Boolean => value.is_boolean(),
            Wire::StringList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            Wire::ObjectList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_object)),
        }
    }
}

/// The values a field accepts, beyond its wire type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Allowed {
    Any,
    /// Non-blank text of at most this many characters.
    Text(usize),
    /// An http(s) URL.
    Url,
    /// Between `min` and `max` http(s) URLs.
    Urls {
        min: usize,
        max: usize,
    },
    OneOf(&'static [&'static str]),
    /// An integer in `min..=max`.
    Range {
        min: i64,
        max: i64,
    },
    /// Between `min` and `max` items.
    Items {
        min: usize,
        max: usize,
    },
}

#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub wire: Wire,
    pub required: bool,
    pub allowed: Allowed,
}

const fn req(name: &'static str, wire: Wire, allowed: Allowed) -> Field {
    Field {
        name,
        wire,
        required: true,
        allowed,
    }
}

const fn opt(name: &'static str, wire: Wire, allowed: Allowed) -> Field {
    Field {
        name,
        wire,
        required: false,
        allowed,
    }
}

/// A check across fields; the error names the fields and says why.
type Rule = fn(&Map<String, Value>, &str) -> Result<(), String>;

#[derive(Debug)]
pub(crate) struct Schema {
    pub id: &'static str,
    pub fields: &'static [Field],
    rules: &'static [Rule],
}

use Allowed::{Any, Items, OneOf, Range, Text, Url, Urls};
use Wire::{Boolean, Integer, ObjectList, StringList};

const STRING: Wire = Wire::String;
const ONE_URL: Allowed = Urls { min: 1, max: 1 };
const RESOLUTIONS_P: Allowed = OneOf(&["480p", "720p", "1080p"]);
const SEEDANCE_ASPECTS: &[&str] = &["1:1", "4:3", "3:4", "16:9", "9:16", "21:9"];

/// The Market image-to-video models, from KIE's published schemas (docs.kie.ai/market).
static MARKET: &[Schema] = &[
    Schema {
        id: "kling-2.6/image-to-video",
        fields: &[
            req("prompt", STRING, Text(1000)),
            req("image_urls", StringList, ONE_URL),
            req("duration", STRING, OneOf(&["5", "10"])),
            req("sound", Boolean, Any),
        ],
        rules: &[],
    },
    Schema {
        id: "kling-3.0/video",
        fields: &[
            req("prompt", STRING, Text(2500)),
            opt("image_urls", StringList, Urls { min: 1, max: 2 }),
            req(
                "duration",
                STRING,
                OneOf(&[
                    "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
                ]),
            ),
            opt("aspect_ratio", STRING, OneOf(&["16:9", "9:16", "1:1"])),
            req("mode", STRING, OneOf(&["std", "pro"])),
            opt("sound", Boolean, Any),
            opt("multi_shots", Boolean, Any),
            opt("multi_prompt", ObjectList, Items { min: 1, max: 6 }),
            opt("kling_elements", ObjectList, Items { min: 1, max: 4 }),
        ],
        rules: &[kling_3_aspect_without_image],
    },
    Schema {
        id: "bytedance/seedance-1.5-pro",
        fields: &[
            req("prompt", STRING, Text(2500)),
            opt("input_urls", StringList, Urls { min: 0, max: 2 }),
            req("aspect_ratio", STRING, OneOf(SEEDANCE_ASPECTS)),
            opt("resolution", STRING, RESOLUTIONS_P),
            opt("duration", Integer, Range { min: 4, max: 12 }),
            opt("generate_audio", Boolean, Any),
            opt("fixed_lens", Boolean, Any),
        ],
        rules: &[],
    },
    SEEDANCE_2,
    Schema {
        id: "bytedance/seedance-2-fast",
        ..SEEDANCE_2
    },
    HAILUO_2_3,
    Schema {
        id: "hailuo/2-3-image-to-video-pro",
        ..HAILUO_2_3
    },
    Schema {
        id: "wan/2-6-image-to-video",
        fields: &[
            req("prompt", STRING, Text(1500)),
            req("image_urls", StringList, ONE_URL),
            opt("duration", STRING, OneOf(&["5", "10", "15"])),
            opt("resolution", STRING, OneOf(&["720p", "1080p"])),
        ],
        rules: &[],
    },
    Schema {
        id: "wan/2-7-image-to-video",
        fields: &[
            req("prompt", STRING, Text(5000)),
            opt("negative_prompt", STRING, Any),
            req("first_frame_url", STRING, Url),
            opt("last_frame_url", STRING, Url),
            opt("first_clip_url", STRING, Url),
            opt("audio_url", STRING, Url),
            opt("resolution", STRING, OneOf(&["720p", "1080p"])),
            opt("duration", Integer, Range { min: 2, max: 15 }),
            opt("prompt_extend", Boolean, Any),
            opt("watermark", Boolean, Any),
            opt(
                "seed",
                Integer,
                Range {
                    min: 0,
                    max: 2_147_483_647,
                },
            ),
        ],
        rules: &[],
    },
    Schema {
        id: "grok-imagine/image-to-video",
        fields: &[
            req("prompt", STRING, Text(5000)),
            opt("image_urls", StringList, Urls { min: 1, max: 7 }),
            opt("task_id", STRING, Any),
            opt("index", Integer, Range { min: 0, max: 5 }),
            opt("duration", Integer, Range { min: 6, max: 30 }),
            opt("resolution", STRING, OneOf(&["480p", "720p"])),
            opt("mode", STRING, OneOf(&["fun", "normal", "spicy"])),
            opt(
                "aspect_ratio",
                STRING,
                OneOf(&["2:3", "3:2", "1:1", "16:9", "9:16"]),
            ),
        ],
        rules: &[grok_one_image_source],
    },
];

const SEEDANCE_2: Schema = Schema {
    id: "bytedance/seedance-2",
    fields: &[
        req("prompt", STRING, Text(2500)),
        opt("first_frame_url", STRING, Url),
        opt("last_frame_url", STRING, Url),
        opt("reference_image_urls", StringList, Urls { min: 0, max: 9 }),
        opt("reference_video_urls", StringList, Urls { min: 0, max: 3 }),
        opt("reference_audio_urls", StringList, Urls { min: 0, max: 3 }),
        opt("return_last_frame", Boolean, Any),
        opt("generate_audio", Boolean, Any),
        opt("resolution", STRING, RESOLUTIONS_P),
        opt(
            "aspect_ratio",
            STRING,
            OneOf(&["1:1", "4:3", "3:4", "16:9", "9:16", "21:9", "adaptive"]),
        ),
        opt("duration", Integer, Range { min: 4, max: 15 }),
        opt("web_search", Boolean, Any),
    ],
    rules: &[seedance_2_last_needs_first],
};

const HAILUO_2_3: Schema = Schema {
    id: "hailuo/2-3-image-to-video-standard",
    fields: &[
        req("prompt", STRING, Text(1500)),
        req("image_url", STRING, Url),
        opt("duration", STRING, OneOf(&["6", "10"])),
        opt("resolution", STRING, OneOf(&["768P", "1080P"])),
        opt("prompt_optimizer", Boolean, Any),
    ],
    rules: &[hailuo_no_10s_at_1080p],
};

/// Veo 3.1's own API: the top-level body of `POST /api/v1/veo/generate`.
pub(crate) static VEO: Schema = Schema {
    id: "veo3.1",
    fields: &[
        req("prompt", STRING, Text(5000)),
        opt("model", STRING, OneOf(VEO_MODELS)),
        opt("imageUrls", StringList, Urls { min: 1, max: 3 }),
        opt(
            "generationType",
            STRING,
            OneOf(&[
                "TEXT_2_VIDEO",
                "FIRST_AND_LAST_FRAMES_2_VIDEO",
                "REFERENCE_2_VIDEO",
            ]),
        ),
        opt("aspect_ratio", STRING, OneOf(&["16:9", "9:16", "Auto"])),
        opt("callBackUrl", STRING, Url),
        opt("watermark", STRING, Any),
        opt(
            "seeds",
            Integer,
            Range {
                min: 10_000,
                max: 99_999,
            },
        ),
        opt("enableTranslation", Boolean, Any),
        opt("enableFallback", Boolean, Any),
    ],
    rules: &[veo_images_fit_the_generation_type],
};

pub(crate) const VEO_MODELS: &[&str] = &["veo3", "veo3_fast", "veo3_lite"];
/// What KIE uses when `model` is left out.
pub(crate) const VEO_DEFAULT_MODEL: &str = "veo3_fast";

/// The schema of a listed Market model.
pub(crate) fn market_model(id: &str) -> Option<&'static Schema> {
    MARKET.iter().find(|schema| schema.id == id)
}

/// Every listed Market model id.
pub(crate) fn market_ids() -> Vec<&'static str> {
    MARKET.iter().map(|schema| schema.id).collect()
}

/// Validates `fields` against `schema` as KIE does; `prefix` ("input." for the Market) is put
/// before field names in the message. The error says which field fails and why.
pub(crate) fn validate(
    schema: &Schema,
    fields: &Map<String, Value>,
    prefix: &str,
) -> Result<(), String> {
    if let Some(unknown) = fields
        .keys()
        .find(|key| !schema.fields.iter().any(|f| f.name == key.as_str()))
    {
        return Err(format!(
            "{prefix}{unknown} is not a parameter of {}",
            schema.id
        ));
    }
    for field in schema.fields {
        let name = format!("{prefix}{}", field.name);
        // An explicit null is how many clients write "not set".
        let Some(value) = fields.get(field.name).filter(|v| !v.is_null()) else {
            if field.required {
                return Err(format!("{name} is required"));
            }
            continue;
        };
        if !field.wire.matches(value) {
            return Err(format!(
                "{name} must be {} (got {})",
                field.wire.describe(),
                describe(value)
            ));
        }
        check_allowed(&name, field.allowed, value)?;
    }
    schema
        .rules
        .iter()
        .try_for_each(|rule| rule(fields, prefix))
}

fn check_allowed(name: &str, allowed: Allowed, value: &Value) -> Result<(), String> {
    match allowed {
        Any => Ok(()),
        Text(max) => {
            let text = value.as_str().unwrap_or_default();
            let length = text.chars().count();
            if text.trim().is_empty() {
                Err(format!("{name} must not be empty"))
            } else if length > max {
                Err(format!(
                    "{name} must be at most {max} characters (got {length})"
                ))
            } else {
                Ok(())
            }
        }
        Url => {
            if is_http_url(value.as_str().unwrap_or_default()) {
                Ok(())
            } else {
                Err(format!("{name} must be an http(s) URL"))
            }
        }
        Urls { min, max } => {
            let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
            check_count(name, items.len(), min, max, "URL")?;
            match items
                .iter()
                .position(|item| !is_http_url(item.as_str().unwrap_or_default()))
            {
                Some(i) => Err(format!("{name}[{i}] must be an http(s) URL")),
                None => Ok(()),
            }
        }
        Items { min, max } => {
            let count = value.as_array().map_or(0, Vec::len);
            check_count(name, count, min, max, "item")
        }
        OneOf(values) => {
            let text = value.as_str().unwrap_or_default();
            if values.contains(&text) {
                Ok(())
            } else {
                let listed: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
                Err(format!(
                    "{name} must be one of {} (got \"{text}\")",
                    listed.join(", ")
                ))
            }
        }
        Range { min, max } => {
            // A u64 beyond i64 is out of every range the schemas hold.
            let number = value.as_i64().unwrap_or(i64::MAX);
            if (min..=max).contains(&number) {
                Ok(())
            } else {
                Err(format!(
                    "{name} must be between {min} and {max} (got {value})"
                ))
            }
        }
    }
}

fn check_count(name: &str, count: usize, min: usize, max: usize, what: &str) -> Result<(), String> {
    if (min..=max).contains(&count) {
        return Ok(());
    }
    let wanted = if min == max {
        format!("exactly {min}")
    } else {
        format!("{min} to {max}")
    };
    Err(format!("{name} must hold {wanted} {what}s (got {count})"))
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn present<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

fn list_len(fields: &Map<String, Value>, name: &str) -> usize {
    present(fields, name)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    present(fields, name).and_then(Value::as_str)
}

/// Kling 3.0 takes the shape of its frames; without one it must be told the shape.
fn kling_3_aspect_without_image(fields: &Map<String, Value>, p: &str) -> Result<(), String> {
    if list_len(fields, "image_urls") == 0 && present(fields, "aspect_ratio").is_none() {
        return Err(format!(
            "{p}aspect_ratio is required when no {p}image_urls are given"
        ));
    }
    Ok(())
}

fn seedance_2_last_needs_first(fields: &Map<String, Value>, p: &str) -> Result<(), String> {
    if present(fields, "last_frame_url").is_some() && present(fields, "first_frame_url").is_none() {
        return Err(format!("{p}last_frame_url needs {p}first_frame_url"));
    }
    Ok(())
}

fn hailuo_no_10s_at_1080p(fields: &Map<String, Value>, p: &str) -> Result<(), String> {
    if text(fields, "duration") == Some("10") && text(fields, "resolution") == Some("1080P") {
        return Err(format!(
            "{p}duration \"10\" is not available at {p}resolution \"1080P\""
        ));
    }
    Ok(())
}

/// Grok animates either external images or an image it generated before (`task_id`), never
/// both; only the latter allows the "spicy" mode.
fn grok_one_image_source(fields: &Map<String, Value>, p: &str) -> Result<(), String> {
    let images = list_len(fields, "image_urls") > 0;
    let task = present(fields, "task_id").is_some();
    match (images, task) {
        (true, true) => Err(format!(
            "{p}image_urls and {p}task_id cannot be given together"
        )),
        (false, false) => Err(format!("{p}image_urls or {p}task_id is required")),
        (true, false) if text(fields, "mode") == Some("spicy") => Err(format!(
            "{p}mode \"spicy\" is not available with {p}image_urls"
        )),
        _ => Ok(()),
    }
}

fn veo_images_fit_the_generation_type(fields: &Map<String, Value>, _: &str) -> Result<(), String> {
    let images = list_len(fields, "imageUrls");
    let model = text(fields, "model").unwrap_or(VEO_DEFAULT_MODEL);
    match text(fields, "generationType") {
        Some("TEXT_2_VIDEO") if images > 0 => {
            Err("imageUrls must be empty for generationType TEXT_2_VIDEO".to_owned())
        }
        Some("FIRST_AND_LAST_FRAMES_2_VIDEO") if !(1..=2).contains(&images) => Err(format!(
            "imageUrls must hold 1 to 2 URLs for generationType FIRST_AND_LAST_FRAMES_2_VIDEO (got {images})"
        )),
        Some("REFERENCE_2_VIDEO") if images == 0 => Err(
            "imageUrls must hold 1 to 3 URLs for generationType REFERENCE_2_VIDEO (got 0)"
                .to_owned(),
        ),
        Some("REFERENCE_2_VIDEO") if model != "veo3_fast" => Err(format!(
            "model must be \"veo3_fast\" for generationType REFERENCE_2_VIDEO (got \"{model}\")"
        )),
        Some("REFERENCE_2_VIDEO") if text(fields, "aspect_ratio") == Some("Auto") => Err(
            "aspect_ratio must be \"16:9\" or \"9:16\" for generationType REFERENCE_2_VIDEO"
                .to_owned(),
        ),
        Some("REFERENCE_2_VIDEO") => Ok(()),
        _ if images > 2 => Err(format!(
            "imageUrls must hold at most 2 URLs unless generationType is REFERENCE_2_VIDEO (got {images})"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(model: &str, input: Value) -> Result<(), String> {
        let schema = market_model(model).unwrap();
        validate(schema, input.as_object().unwrap(), "input.")
    }

    fn kling(duration: Value) -> Value {
        json!({
            "prompt": "a mug",
            "image_urls": ["https://h/a.jpg"],
            "duration": duration,
            "sound": false,
        })
    }

    #[test]
    fn every_listed_model_has_a_required_non_blank_prompt() {
        for id in market_ids() {
            let schema = market_model(id).unwrap();
            let prompt = schema.fields.iter().find(|f| f.name == "prompt").unwrap();
            assert!(prompt.required, "{id}");
            assert!(matches!(prompt.allowed, Text(_)), "{id}");
        }
    }

    #[test]
    fn kling_wants_the_duration_as_a_string() {
        assert_eq!(check("kling-2.6/image-to-video", kling(json!("5"))), Ok(()));
        assert_eq!(
            check("kling-2.6/image-to-video", kling(json!(5))),
            Err("input.duration must be a string (got the number 5)".to_owned())
        );
        assert_eq!(
            check("kling-2.6/image-to-video", kling(json!("8"))),
            Err(r#"input.duration must be one of "5", "10" (got "8")"#.to_owned())
        );
    }

    #[test]
    fn seedance_wants_the_duration_as_an_integer_and_refuses_a_float() {
        let input =
            |duration: Value| json!({"prompt": "p", "aspect_ratio": "9:16", "duration": duration});
        assert_eq!(check("bytedance/seedance-1.5-pro", input(json!(8))), Ok(()));
        for bad in [json!("8"), json!(8.0), json!(true)] {
            let error = check("bytedance/seedance-1.5-pro", input(bad)).unwrap_err();
            assert!(
                error.starts_with("input.duration must be an integer"),
                "{error}"
            );
        }
        let error = check("bytedance/seedance-1.5-pro", input(json!(13))).unwrap_err();
        assert_eq!(error, "input.duration must be between 4 and 12 (got 13)");
    }

    #[test]
    fn null_is_absent_and_unknown_fields_are_named() {
        let mut input = kling(json!("10"));
        input["sound"] = Value::Null;
        assert_eq!(
            check("kling-2.6/image-to-video", input),
            Err("input.sound is required".to_owned())
        );
        let mut input = kling(json!("10"));
        input["aspect_ratio"] = json!("9:16");
        assert_eq!(
            check("kling-2.6/image-to-video", input),
            Err("input.aspect_ratio is not a parameter of kling-2.6/image-to-video".to_owned())
        );
    }

    #[test]
    fn url_lists_are_counted_and_each_item_must_be_a_url() {
        let mut input = kling(json!("5"));
        input["image_urls"] = json!(["https://h/a.jpg", "https://h/b.jpg"]);
        assert_eq!(
            check("kling-2.6/image-to-video", input.clone()),
            Err("input.image_urls must hold exactly 1 URLs (got 2)".to_owned())
        );
        input["image_urls"] = json!(["file:///etc/passwd"]);
        assert_eq!(
            check("kling-2.6/image-to-video", input.clone()),
            Err("input.image_urls[0] must be an http(s) URL".to_owned())
        );
        input["image_urls"] = json!([1]);
        assert!(check("kling-2.6/image-to-video", input)
            .unwrap_err()
            .contains("must be a list of strings"));
    }

    #[test]
    fn the_prompt_limit_counts_characters_not_bytes() {
        let mut input = kling(json!("5"));
        input["prompt"] = json!("ж".repeat(1000));
        assert_eq!(check("kling-2.6/image-to-video", input.clone()), Ok(()));
        input["prompt"] = json!("ж".repeat(1001));
        assert_eq!(
            check("kling-2.6/image-to-video", input.clone()),
            Err("input.prompt must be at most 1000 characters (got 1001)".to_owned())
        );
        input["prompt"] = json!("   ");
        assert_eq!(
            check("kling-2.6/image-to-video", input),
            Err("input.prompt must not be empty".to_owned())
        );
    }

    #[test]
    fn hailuo_refuses_ten_seconds_at_1080p_only() {
        let input = |duration: &str, resolution: &str| {
            json!({
                "prompt": "p",
                "image_url": "https://h/a.jpg",
                "duration": duration,
                "resolution": resolution,
            })
        };
        let model = "hailuo/2-3-image-to-video-pro";
        assert_eq!(check(model, input("10", "768P")), Ok(()));
        assert_eq!(check(model, input("6", "1080P")), Ok(()));
        assert!(check(model, input("10", "1080P"))
            .unwrap_err()
            .contains("input.duration \"10\""));
    }

    #[test]
    fn cross_field_rules_of_kling_3_seedance_2_and_grok() {
        let kling3 = json!({"prompt": "p", "duration": "5", "mode": "std"});
        assert!(check("kling-3.0/video", kling3)
            .unwrap_err()
            .contains("input.aspect_ratio is required"));

        let seedance = json!({"prompt": "p", "last_frame_url": "https://h/b.jpg"});
        assert_eq!(
            check("bytedance/seedance-2-fast", seedance),
            Err("input.last_frame_url needs input.first_frame_url".to_owned())
        );

        let both = json!({"prompt": "p", "image_urls": ["https://h/a.jpg"], "task_id": "t"});
        assert!(check("grok-imagine/image-to-video", both)
            .unwrap_err()
            .contains("cannot be given together"));
        let spicy = json!({"prompt": "p", "image_urls": ["https://h/a.jpg"], "mode": "spicy"});
        assert!(check("grok-imagine/image-to-video", spicy)
            .unwrap_err()
            .contains("input.mode \"spicy\""));
    }

    #[test]
    fn veo_checks_images_against_the_generation_type() {
        let veo = |body: Value| validate(&VEO, body.as_object().unwrap(), "");
        let image = json!(["https://h/a.jpg"]);
        assert_eq!(
            veo(json!({
                "prompt": "p",
                "model": "veo3_lite",
                "imageUrls": image,
                "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
                "aspect_ratio": "9:16",
            })),
            Ok(())
        );
        assert!(
            veo(json!({"prompt": "p", "imageUrls": image, "generationType": "TEXT_2_VIDEO"}))
                .unwrap_err()
                .contains("TEXT_2_VIDEO")
        );
        assert!(veo(json!({
            "prompt": "p",
            "model": "veo3",
            "imageUrls": image,
            "generationType": "REFERENCE_2_VIDEO",
        }))
        .unwrap_err()
        .starts_with("model must be \"veo3_fast\""));
        assert_eq!(
            veo(json!({"prompt": "p", "aspect_ratio": "1:1"})),
            Err(r#"aspect_ratio must be one of "16:9", "9:16", "Auto" (got "1:1")"#.to_owned())
        );
        assert_eq!(
            veo(json!({"prompt": "p", "aspectRatio": "16:9"})),
            Err("aspectRatio is not a parameter of veo3.1".to_owned())
        );
    }
}
