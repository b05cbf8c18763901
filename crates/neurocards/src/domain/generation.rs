//! What a video is made with: the model and the exact input fields it takes, frozen into
//! each order. Switching models is configuration, not code.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const DEFAULT_MODEL: &str = "sora-2-image-to-video";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationSpec {
    pub model: String,
    /// The input field that carries the prompt (`prompt` for every Market model seen).
    #[serde(default = "default_prompt_field")]
    pub prompt_field: String,
    /// The input field that carries the image URL list (`image_urls`; a wrong name fails).
    #[serde(default = "default_image_field")]
    pub image_field: String,
    /// Every other input field, sent as is: aspect ratio, duration, watermark, …
    #[serde(default)]
    pub input: Map<String, Value>,
}

fn default_prompt_field() -> String {
    "prompt".to_owned()
}

fn default_image_field() -> String {
    "image_urls".to_owned()
}

impl Default for GenerationSpec {
    /// Sora 2, vertical, 10 seconds, no watermark.
    fn default() -> Self {
        let mut input = Map::new();
        input.insert("aspect_ratio".into(), Value::from("portrait"));
        input.insert("n_frames".into(), Value::from("10"));
        input.insert("remove_watermark".into(), Value::from(true));
        GenerationSpec {
            model: DEFAULT_MODEL.to_owned(),
            prompt_field: default_prompt_field(),
            image_field: default_image_field(),
            input,
        }
    }
}

impl GenerationSpec {
    pub fn parse(json: &str) -> Result<GenerationSpec, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The body of a createTask request.
    pub fn create_request(
        &self,
        prompt: &str,
        image_url: &str,
        callback_url: Option<&str>,
    ) -> Value {
        let mut input = self.input.clone();
        input.insert(self.prompt_field.clone(), Value::from(prompt));
        input.insert(self.image_field.clone(), Value::from(vec![image_url]));
        let mut body = Map::new();
        body.insert("model".into(), Value::from(self.model.as_str()));
        if let Some(url) = callback_url {
            body.insert("callBackUrl".into(), Value::from(url));
        }
        body.insert("input".into(), Value::Object(input));
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_default_asks_sora_for_a_vertical_ten_second_video() {
        let body = GenerationSpec::default().create_request("a mug", "https://f/a.jpg", None);
        assert_eq!(
            body,
            json!({
                "model": "sora-2-image-to-video",
                "input": {
                    "prompt": "a mug",
                    "image_urls": ["https://f/a.jpg"],
                    "aspect_ratio": "portrait",
                    "n_frames": "10",
                    "remove_watermark": true
                }
            })
        );
    }

    #[test]
    fn another_model_is_only_configuration() {
        let spec = GenerationSpec::parse(
            r#"{"model": "kling-2.6/image-to-video", "input": {"duration": "5", "sound": false}}"#,
        )
        .expect("parses");
        let body = spec.create_request("a mug", "https://f/a.jpg", Some("https://me/kie/callback"));
        assert_eq!(
            body,
            json!({
                "model": "kling-2.6/image-to-video",
                "callBackUrl": "https://me/kie/callback",
                "input": {"prompt": "a mug", "image_urls": ["https://f/a.jpg"], "duration": "5", "sound": false}
            })
        );
        assert_eq!(
            GenerationSpec::parse(&spec.to_json()).expect("round trip"),
            spec
        );
    }
}
