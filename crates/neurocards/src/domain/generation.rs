//! What a video is made with: the model, the option the user paid for and the exact input
//! fields the model takes, frozen into each order. Which models exist is data (the
//! catalogue); this is the frozen result of one choice, and the one place that knows how a
//! choice becomes a KIE request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The two KIE APIs a model can live behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KieApi {
    /// `jobs/createTask` + `jobs/recordInfo`, shared by every Market model.
    Market,
    /// Veo 3.1's own `veo/generate` + `veo/record-info`.
    Veo,
}

impl KieApi {
    pub fn as_str(self) -> &'static str {
        match self {
            KieApi::Market => "market",
            KieApi::Veo => "veo",
        }
    }
}

/// How a model takes the photo: the field's name, and whether it is a list of URLs or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PhotoField {
    #[serde(rename = "image_urls")]
    ImageUrls,
    #[serde(rename = "image_url")]
    ImageUrl,
    #[serde(rename = "input_urls")]
    InputUrls,
    #[serde(rename = "first_frame_url")]
    FirstFrameUrl,
    /// Veo's top-level `imageUrls`.
    #[serde(rename = "imageUrls")]
    VeoImageUrls,
}

impl PhotoField {
    pub const ALL: [PhotoField; 5] = [
        PhotoField::ImageUrls,
        PhotoField::ImageUrl,
        PhotoField::InputUrls,
        PhotoField::FirstFrameUrl,
        PhotoField::VeoImageUrls,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PhotoField::ImageUrls => "image_urls",
            PhotoField::ImageUrl => "image_url",
            PhotoField::InputUrls => "input_urls",
            PhotoField::FirstFrameUrl => "first_frame_url",
            PhotoField::VeoImageUrls => "imageUrls",
        }
    }

    fn value(self, url: &str) -> Value {
        match self {
            PhotoField::ImageUrl | PhotoField::FirstFrameUrl => Value::from(url),
            PhotoField::ImageUrls | PhotoField::InputUrls | PhotoField::VeoImageUrls => {
                Value::from(vec![url])
            }
        }
    }
}

/// One choice, frozen: everything a worker needs to make the request, whatever the catalogue
/// says later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationSpec {
    /// The catalogue's id of the model (`kling-2.6`).
    pub model: String,
    /// KIE's id of the model (`kling-2.6/image-to-video`, `veo3_fast`).
    pub kie_model: String,
    pub api: KieApi,
    pub photo_field: PhotoField,
    /// The catalogue's id of the option the user chose (`5s`).
    pub option: String,
    /// The shape the photo is fitted to before upload (`9:16`).
    pub aspect: String,
    /// The largest photo the model takes, in bytes.
    pub photo_max_bytes: u64,
    /// Every other field, with its wire type as the model wants it (`"5"` or `5`).
    pub input: Map<String, Value>,
}

/// Orders store the spec as JSON text; reading it back is typed.
impl TryFrom<String> for GenerationSpec {
    type Error = serde_json::Error;

    fn try_from(json: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&json)
    }
}

/// Where a create request goes and what it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub api: KieApi,
    pub body: Value,
}

impl GenerationSpec {
    /// The body of the create request for this choice.
    pub fn create_request(
        &self,
        prompt: &str,
        image_url: &str,
        callback_url: Option<&str>,
    ) -> CreateRequest {
        let body = match self.api {
            KieApi::Market => {
                let mut input = self.input.clone();
                input.insert("prompt".into(), Value::from(prompt));
                input.insert(
                    self.photo_field.name().into(),
                    self.photo_field.value(image_url),
                );
                let mut body = Map::new();
                body.insert("model".into(), Value::from(self.kie_model.as_str()));
                if let Some(url) = callback_url {
                    body.insert("callBackUrl".into(), Value::from(url));
                }
                body.insert("input".into(), Value::Object(input));
                body
            }
            // Veo takes everything at the top level.
            KieApi::Veo => {
                let mut body = self.input.clone();
                body.insert("prompt".into(), Value::from(prompt));
                body.insert("model".into(), Value::from(self.kie_model.as_str()));
                body.insert(
                    self.photo_field.name().into(),
                    self.photo_field.value(image_url),
                );
                if let Some(url) = callback_url {
                    body.insert("callBackUrl".into(), Value::from(url));
                }
                body
            }
        };
        CreateRequest {
            api: self.api,
            body: Value::Object(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kling() -> GenerationSpec {
        let mut input = Map::new();
        input.insert("duration".into(), json!("5"));
        input.insert("sound".into(), json!(false));
        GenerationSpec {
            model: "kling-2.6".into(),
            kie_model: "kling-2.6/image-to-video".into(),
            api: KieApi::Market,
            photo_field: PhotoField::ImageUrls,
            option: "5s".into(),
            aspect: "9:16".into(),
            photo_max_bytes: 10 * 1024 * 1024,
            input,
        }
    }

    #[test]
    fn a_market_model_gets_its_fields_inside_input() {
        let request = kling().create_request("a mug", "https://f/a.jpg", Some("https://me/cb"));
        assert_eq!(request.api, KieApi::Market);
        assert_eq!(
            request.body,
            json!({
                "model": "kling-2.6/image-to-video",
                "callBackUrl": "https://me/cb",
                "input": {"prompt": "a mug", "image_urls": ["https://f/a.jpg"], "duration": "5", "sound": false}
            })
        );
    }

    #[test]
    fn a_single_url_field_gets_a_string_and_veo_gets_everything_at_the_top() {
        let hailuo = GenerationSpec {
            photo_field: PhotoField::ImageUrl,
            ..kling()
        };
        let body = hailuo.create_request("p", "https://f/a.jpg", None).body;
        assert_eq!(body["input"]["image_url"], json!("https://f/a.jpg"));
        assert!(body.get("callBackUrl").is_none());

        let mut input = Map::new();
        input.insert("aspect_ratio".into(), json!("9:16"));
        input.insert(
            "generationType".into(),
            json!("FIRST_AND_LAST_FRAMES_2_VIDEO"),
        );
        let veo = GenerationSpec {
            model: "veo-3.1-fast".into(),
            kie_model: "veo3_fast".into(),
            api: KieApi::Veo,
            photo_field: PhotoField::VeoImageUrls,
            input,
            ..kling()
        };
        let request = veo.create_request("p", "https://f/a.jpg", Some("https://me/cb"));
        assert_eq!(request.api, KieApi::Veo);
        assert_eq!(
            request.body,
            json!({
                "prompt": "p",
                "model": "veo3_fast",
                "imageUrls": ["https://f/a.jpg"],
                "aspect_ratio": "9:16",
                "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
                "callBackUrl": "https://me/cb"
            })
        );
    }

    #[test]
    fn a_spec_round_trips_through_json() {
        let spec = kling();
        let json = serde_json::to_string(&spec).expect("serialises");
        assert_eq!(
            serde_json::from_str::<GenerationSpec>(&json).expect("parses"),
            spec
        );
    }
}
