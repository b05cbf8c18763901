//! Prompt templates from `templates.toml`: id, a title per language, the prompt, the model
//! and the model's exact input fields. A default set is built in; `TEMPLATES_FILE` replaces it.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::generation::GenerationSpec;
use crate::texts::Lang;

pub const BUILT_IN: &str = include_str!("../templates.default.toml");

/// The longest prompt KIE takes.
pub const MAX_PROMPT_CHARS: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: String,
    pub title_ru: String,
    pub title_en: String,
    pub prompt: String,
    pub generation: GenerationSpec,
}

impl Template {
    pub fn title(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ru => &self.title_ru,
            Lang::En => &self.title_en,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Templates {
    templates: Vec<Template>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the templates file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// toml's message names the line and column.
    #[error("the templates file {origin} is not valid: {message}")]
    Syntax { origin: String, message: String },
    #[error("the templates file {origin} is not valid: template {index} ({id}): {problem}")]
    Invalid {
        origin: String,
        index: usize,
        id: String,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    template: Vec<RawTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    id: String,
    title: Titles,
    prompt: String,
    model: String,
    #[serde(default)]
    input: Map<String, Value>,
    #[serde(default)]
    prompt_field: Option<String>,
    #[serde(default)]
    image_field: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Titles {
    ru: String,
    en: String,
}

impl Templates {
    pub fn built_in() -> Result<Templates, TemplateError> {
        Templates::parse(BUILT_IN, "(built in)")
    }

    /// The file at `path`, or the built-in set when none is given.
    pub fn load(path: Option<&Path>) -> Result<Templates, TemplateError> {
        match path {
            None => Templates::built_in(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Templates::parse(&text, &path.display().to_string())
            }
        }
    }

    pub fn parse(text: &str, origin: &str) -> Result<Templates, TemplateError> {
        let file: File = toml::from_str(text).map_err(|err| TemplateError::Syntax {
            origin: origin.to_owned(),
            message: err.to_string().trim().to_owned(),
        })?;
        let mut seen = HashSet::new();
        let mut templates = Vec::with_capacity(file.template.len());
        for (index, raw) in file.template.into_iter().enumerate() {
            let invalid = |problem: &str| TemplateError::Invalid {
                origin: origin.to_owned(),
                index: index + 1,
                id: raw.id.clone(),
                problem: problem.to_owned(),
            };
            // The id travels in button data, which Telegram caps at 64 bytes.
            let id_ok = (1..=24).contains(&raw.id.len())
                && raw.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !id_ok {
                return Err(invalid(
                    "the id must be 1 to 24 characters of a-z, 0-9, _ and -",
                ));
            }
            if !seen.insert(raw.id.clone()) {
                return Err(invalid("the id is used twice"));
            }
            if raw.title.ru.trim().is_empty() || raw.title.en.trim().is_empty() {
                return Err(invalid("both titles (ru and en) are needed"));
            }
            if raw.prompt.trim().is_empty() || raw.prompt.chars().count() > MAX_PROMPT_CHARS {
                return Err(invalid("the prompt must be 1 to 10,000 characters"));
            }
            if raw.model.trim().is_empty() {
                return Err(invalid("the model is missing"));
            }
            let defaults = GenerationSpec::default();
            templates.push(Template {
                id: raw.id.clone(),
                title_ru: raw.title.ru.trim().to_owned(),
                title_en: raw.title.en.trim().to_owned(),
                prompt: raw.prompt.trim().to_owned(),
                generation: GenerationSpec {
                    model: raw.model.trim().to_owned(),
                    prompt_field: raw.prompt_field.unwrap_or(defaults.prompt_field),
                    image_field: raw.image_field.unwrap_or(defaults.image_field),
                    input: raw.input,
                },
            });
        }
        if templates.is_empty() {
            return Err(TemplateError::Syntax {
                origin: origin.to_owned(),
                message: "no [[template]] is defined".to_owned(),
            });
        }
        Ok(Templates { templates })
    }

    pub fn all(&self) -> &[Template] {
        &self.templates
    }

    pub fn get(&self, id: &str) -> Option<&Template> {
        self.templates.iter().find(|template| template.id == id)
    }

    /// The model and fields an own prompt is made with: the first template's.
    pub fn own_prompt_generation(&self) -> GenerationSpec {
        self.templates
            .first()
            .map(|template| template.generation.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_set_loads_and_asks_sora_for_vertical_videos() {
        let templates = Templates::built_in().expect("the built-in templates are valid");
        assert!(templates.all().len() >= 3);
        for template in templates.all() {
            assert_eq!(template.generation.model, "sora-2-image-to-video");
            assert_eq!(template.generation.input["aspect_ratio"], "portrait");
            assert!(!template.title(Lang::Ru).is_empty() && !template.title(Lang::En).is_empty());
        }
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let broken = "[[template]]\nid = \"a\"\ntitle = { ru = \"x\", en = \"y\" }\nprompt = \"unterminated\nmodel = \"m\"\n";
        let err = Templates::parse(broken, "templates.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("templates.toml"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn invalid_templates_are_refused_with_the_reason() {
        let cases = [
            ("id = \"Bad Id\"", "the id must be"),
            ("id = \"ok\"\nextra = 1", "unknown field"),
        ];
        for (head, expected) in cases {
            let text = format!(
                "[[template]]\n{head}\ntitle = {{ ru = \"x\", en = \"y\" }}\nprompt = \"p\"\nmodel = \"m\"\n"
            );
            let err = Templates::parse(&text, "t.toml").unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        let twice = "[[template]]\nid = \"a\"\ntitle = { ru = \"x\", en = \"y\" }\nprompt = \"p\"\nmodel = \"m\"\n".repeat(2);
        assert!(Templates::parse(&twice, "t.toml")
            .unwrap_err()
            .to_string()
            .contains("used twice"));
        assert!(Templates::parse("", "t.toml")
            .unwrap_err()
            .to_string()
            .contains("no [[template]]"));
    }

    #[test]
    fn another_model_with_its_own_fields_is_configuration() {
        let text = "[[template]]\nid = \"kling\"\ntitle = { ru = \"К\", en = \"K\" }\nprompt = \"p\"\nmodel = \"kling-2.6/image-to-video\"\ninput = { duration = \"5\", sound = false }\n";
        let templates = Templates::parse(text, "t.toml").expect("valid");
        let body = templates.all()[0]
            .generation
            .create_request("p", "https://i/a.jpg", None);
        assert_eq!(body["model"], "kling-2.6/image-to-video");
        assert_eq!(body["input"]["duration"], "5");
        assert!(body["input"].get("aspect_ratio").is_none());
    }
}
