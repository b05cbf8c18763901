//! Prompt templates from `templates.toml`: id, a title per language, the prompt, the model
//! of the catalogue it is made with (and optionally which of its options), and the video's
//! aspect. A default set is built in; `TEMPLATES_FILE` replaces it. A template is checked
//! against the catalogue at start: a missing model or a prompt over the model's limit is an
//! error naming the line.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::catalogue::{line_of, valid_aspect, Catalogue, DEFAULT_ASPECT};
use crate::texts::Lang;

pub const BUILT_IN: &str = include_str!("../templates.default.toml");

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: String,
    pub title_ru: String,
    pub title_en: String,
    pub prompt: String,
    /// The catalogue's id of the model.
    pub model: String,
    /// The model's option this template orders when the user has no choice to make; the
    /// model's first offered option when unset.
    pub option: Option<String>,
    /// The video's shape, `W:H`.
    pub aspect: String,
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
    #[error("the templates file {origin} is not valid, line {line}: template {id}: {problem}")]
    Invalid {
        origin: String,
        line: usize,
        id: String,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    template: Vec<Spanned<RawTemplate>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    id: Spanned<String>,
    title: Titles,
    prompt: Spanned<String>,
    model: Spanned<String>,
    #[serde(default)]
    option: Option<Spanned<String>>,
    #[serde(default)]
    aspect: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Titles {
    ru: String,
    en: String,
}

impl Templates {
    pub fn built_in(catalogue: &Catalogue) -> Result<Templates, TemplateError> {
        Templates::parse(BUILT_IN, "(built in)", catalogue)
    }

    /// The file at `path`, or the built-in set when none is given.
    pub fn load(path: Option<&Path>, catalogue: &Catalogue) -> Result<Templates, TemplateError> {
        match path {
            None => Templates::built_in(catalogue),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Templates::parse(&text, &path.display().to_string(), catalogue)
            }
        }
    }

    pub fn parse(
        text: &str,
        origin: &str,
        catalogue: &Catalogue,
    ) -> Result<Templates, TemplateError> {
        let file: File = toml::from_str(text).map_err(|err| TemplateError::Syntax {
            origin: origin.to_owned(),
            message: err.to_string().trim().to_owned(),
        })?;
        let mut seen = HashSet::new();
        let mut templates = Vec::with_capacity(file.template.len());
        for raw in file.template {
            let template_at = raw.span().start;
            let raw = raw.into_inner();
            let id = raw.id.get_ref().clone();
            let invalid = |offset: usize, problem: String| TemplateError::Invalid {
                origin: origin.to_owned(),
                line: line_of(text, offset),
                id: id.clone(),
                problem,
            };
            // The id travels in button data, which Telegram caps at 64 bytes.
            let id_ok = (1..=24).contains(&id.len())
                && id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !id_ok {
                return Err(invalid(
                    raw.id.span().start,
                    "the id must be 1 to 24 characters of a-z, 0-9, _ and -".into(),
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(invalid(raw.id.span().start, "the id is used twice".into()));
            }
            if raw.title.ru.trim().is_empty() || raw.title.en.trim().is_empty() {
                return Err(invalid(
                    template_at,
                    "both titles (ru and en) are needed".into(),
                ));
            }
            let model_name = raw.model.get_ref().trim().to_owned();
            let Some(model) = catalogue.get(&model_name) else {
                return Err(invalid(
                    raw.model.span().start,
                    format!("the model {model_name:?} is not in the model catalogue"),
                ));
            };
            let prompt = raw.prompt.get_ref().trim().to_owned();
            let length = prompt.chars().count();
            if length == 0 || length > model.prompt_max_chars {
                return Err(invalid(
                    raw.prompt.span().start,
                    format!(
                        "the prompt must be 1 to {} characters (the limit of {}), it has {length}",
                        model.prompt_max_chars, model.id
                    ),
                ));
            }
            let option = match &raw.option {
                Some(option) => {
                    if model.option(option.get_ref()).is_none() {
                        return Err(invalid(
                            option.span().start,
                            format!(
                                "the model {} has no option {:?}",
                                model.id,
                                option.get_ref()
                            ),
                        ));
                    }
                    Some(option.get_ref().clone())
                }
                None => {
                    if model.default_option().is_none() {
                        return Err(invalid(
                            raw.model.span().start,
                            format!(
                                "the model {} offers no option: name one with option = \"…\"",
                                model.id
                            ),
                        ));
                    }
                    None
                }
            };
            let aspect = match &raw.aspect {
                Some(aspect) => {
                    let value = aspect.get_ref().trim().to_owned();
                    if !valid_aspect(&value) || !model.supports_aspect(&value) {
                        return Err(invalid(
                            aspect.span().start,
                            format!(
                                "the aspect {value:?} must be W:H and one the model {} makes",
                                model.id
                            ),
                        ));
                    }
                    value
                }
                None => DEFAULT_ASPECT.to_owned(),
            };
            if !model.supports_aspect(&aspect) {
                return Err(invalid(
                    template_at,
                    format!("the model {} does not make {aspect} videos", model.id),
                ));
            }
            templates.push(Template {
                id: id.clone(),
                title_ru: raw.title.ru.trim().to_owned(),
                title_en: raw.title.en.trim().to_owned(),
                prompt,
                model: model.id.clone(),
                option,
                aspect,
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

    /// The model and aspect an own prompt is made with by default: the first template's.
    pub fn own_prompt_defaults(&self) -> Option<&Template> {
        self.templates.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue::built_in().expect("the built-in catalogue is valid")
    }

    #[test]
    fn the_built_in_set_loads_on_a_live_model() {
        let catalogue = catalogue();
        let templates = Templates::built_in(&catalogue).expect("the built-in templates are valid");
        assert!(templates.all().len() >= 3);
        for template in templates.all() {
            assert_eq!(template.model, "kling-2.6");
            assert_eq!(template.aspect, "9:16");
            assert!(!template.title(Lang::Ru).is_empty() && !template.title(Lang::En).is_empty());
        }
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let broken = "[[template]]\nid = \"a\"\ntitle = { ru = \"x\", en = \"y\" }\nprompt = \"unterminated\nmodel = \"m\"\n";
        let err = Templates::parse(broken, "templates.toml", &catalogue())
            .unwrap_err()
            .to_string();
        assert!(err.contains("templates.toml"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    fn one(head: &str, model: &str) -> String {
        format!("[[template]]\n{head}\ntitle = {{ ru = \"x\", en = \"y\" }}\nprompt = \"p\"\nmodel = \"{model}\"\n")
    }

    #[test]
    fn invalid_templates_are_refused_with_the_reason_and_line() {
        let catalogue = catalogue();
        let cases = [
            (one("id = \"Bad Id\"", "kling-2.6"), "the id must be"),
            (one("id = \"ok\"\nextra = 1", "kling-2.6"), "unknown field"),
            (one("id = \"ok\"\ninput = { n_frames = \"10\" }", "kling-2.6"), "unknown field"),
            (one("id = \"ok\"", "sora-2-image-to-video"), "line 5: template ok: the model \"sora-2-image-to-video\" is not in the model catalogue"),
            (one("id = \"ok\"\noption = \"99s\"", "kling-2.6"), "has no option"),
            (one("id = \"ok\"\naspect = \"sideways\"", "kling-2.6"), "the aspect"),
            (one("id = \"ok\"\noption = \"8s\"\naspect = \"4:5\"", "veo-3.1-fast"), "the aspect"),
        ];
        for (text, expected) in cases {
            let err = Templates::parse(&text, "t.toml", &catalogue)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
        let long = format!("[[template]]\nid = \"a\"\ntitle = {{ ru = \"x\", en = \"y\" }}\nprompt = \"{}\"\nmodel = \"kling-2.6\"\n", "x".repeat(1001));
        let err = Templates::parse(&long, "t.toml", &catalogue)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4") && err.contains("1 to 1000"), "{err}");
        let twice = one("id = \"a\"", "kling-2.6").repeat(2);
        assert!(Templates::parse(&twice, "t.toml", &catalogue)
            .unwrap_err()
            .to_string()
            .contains("used twice"));
        assert!(Templates::parse("", "t.toml", &catalogue)
            .unwrap_err()
            .to_string()
            .contains("no [[template]]"));
    }

    #[test]
    fn a_template_may_name_another_model_its_option_and_aspect() {
        let text = one(
            "id = \"veo\"\noption = \"8s\"\naspect = \"16:9\"",
            "veo-3.1-fast",
        );
        let templates = Templates::parse(&text, "t.toml", &catalogue()).expect("valid");
        let template = &templates.all()[0];
        assert_eq!(template.model, "veo-3.1-fast");
        assert_eq!(template.option.as_deref(), Some("8s"));
        assert_eq!(template.aspect, "16:9");
    }
}
