//! The model catalogue from `models.toml`: which image-to-video models KIE serves, how each
//! takes the photo and its options (with their wire types), its prompt limit, and what each
//! option the operator offers costs in credits. A default is built in; `MODELS_FILE`
//! replaces it. Models are data because KIE retires them without notice.
//!
//! Every option is checked against the model's declared fields when the file is loaded, so a
//! wrongly typed duration (`5` where KIE wants `"5"`) stops the process at start with the
//! line named, instead of refunding every order at run time.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use crate::domain::generation::{GenerationSpec, KieApi, PhotoField};
use crate::texts::Lang;

pub const BUILT_IN: &str = include_str!("../models.default.toml");

/// The longest prompt any KIE model takes.
pub const MAX_PROMPT_CHARS: usize = 10_000;

/// The shape videos are made in unless a template says otherwise.
pub const DEFAULT_ASPECT: &str = "9:16";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireType {
    String,
    Integer,
    Bool,
}

impl WireType {
    fn matches(self, value: &Value) -> bool {
        match self {
            WireType::String => value.is_string(),
            WireType::Integer => value.is_i64() || value.is_u64(),
            WireType::Bool => value.is_boolean(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            WireType::String => "a string",
            WireType::Integer => "an integer",
            WireType::Bool => "a boolean",
        }
    }
}

/// One input field a model takes, as KIE's schema gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    #[serde(rename = "type")]
    pub wire: WireType,
    /// The allowed values; empty means any value of the type (within `min`..`max`).
    #[serde(default)]
    pub values: Vec<Value>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    #[serde(default)]
    pub required: bool,
}

impl FieldSpec {
    /// Why `value` does not fit, if it does not.
    fn problem(&self, value: &Value) -> Option<String> {
        if !self.wire.matches(value) {
            return Some(format!("must be {} (got {value})", self.wire.name()));
        }
        if !self.values.is_empty() && !self.values.contains(value) {
            let allowed: Vec<String> = self.values.iter().map(Value::to_string).collect();
            return Some(format!(
                "must be one of {} (got {value})",
                allowed.join(", ")
            ));
        }
        if let Some(number) = value.as_i64() {
            if self.min.is_some_and(|min| number < min) || self.max.is_some_and(|max| number > max)
            {
                return Some(format!(
                    "must be within {}..{} (got {number})",
                    self.min.map_or(String::new(), |m| m.to_string()),
                    self.max.map_or(String::new(), |m| m.to_string())
                ));
            }
        }
        None
    }
}

/// An option the operator sells: the fields it sets and its price per video.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOption {
    pub id: String,
    pub title_ru: String,
    pub title_en: String,
    /// Credits per video.
    pub price: i64,
    /// Shown to users; an option that is not offered can still be named by a template.
    pub offered: bool,
    pub input: Map<String, Value>,
}

impl ModelOption {
    pub fn title(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ru => &self.title_ru,
            Lang::En => &self.title_en,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub id: String,
    pub title: String,
    pub kie_model: String,
    pub api: KieApi,
    pub photo_field: PhotoField,
    pub photo_max_bytes: u64,
    pub prompt_max_chars: usize,
    /// The field that says the video's shape; `None` when the model takes the photo's.
    pub aspect_field: Option<String>,
    pub aspects: Vec<String>,
    pub fields: BTreeMap<String, FieldSpec>,
    /// Fields sent with every option.
    pub fixed: Map<String, Value>,
    pub options: Vec<ModelOption>,
    /// The model templates use while this one is unavailable.
    pub fallback: Option<String>,
}

impl Model {
    pub fn option(&self, id: &str) -> Option<&ModelOption> {
        self.options.iter().find(|option| option.id == id)
    }

    /// The option a template gets when it names none: the first one offered.
    pub fn default_option(&self) -> Option<&ModelOption> {
        self.options.iter().find(|option| option.offered)
    }

    /// True when the model can make a video of `aspect`: it has a field for it with that
    /// value, or it takes the photo's shape (the photo is fitted before upload).
    pub fn supports_aspect(&self, aspect: &str) -> bool {
        self.aspect_field.is_none() || self.aspects.iter().any(|a| a == aspect)
    }

    /// The frozen request settings of `option` for videos of `aspect`.
    pub fn spec(&self, option: &ModelOption, aspect: &str) -> GenerationSpec {
        let mut input = self.fixed.clone();
        for (name, value) in &option.input {
            input.insert(name.clone(), value.clone());
        }
        if let Some(field) = &self.aspect_field {
            input.insert(field.clone(), Value::from(aspect));
        }
        GenerationSpec {
            model: self.id.clone(),
            kie_model: self.kie_model.clone(),
            api: self.api,
            photo_field: self.photo_field,
            option: option.id.clone(),
            aspect: aspect.to_owned(),
            photo_max_bytes: self.photo_max_bytes,
            input,
        }
    }
}

/// One thing a user can pick: a model and one of its offered options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice<'a> {
    pub model: &'a Model,
    pub option: &'a ModelOption,
}

impl Choice<'_> {
    pub fn price(&self) -> i64 {
        self.option.price
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    models: Vec<Model>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read the models file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// toml's message names the line and column.
    #[error("the models file {origin} is not valid: {message}")]
    Syntax { origin: String, message: String },
    #[error("the models file {origin} is not valid, line {line}: {problem}")]
    Invalid {
        origin: String,
        line: usize,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    model: Vec<Spanned<RawModel>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: Spanned<String>,
    title: String,
    kie_model: String,
    api: KieApi,
    photo_field: Spanned<PhotoField>,
    #[serde(default = "default_photo_max_mb")]
    photo_max_mb: Spanned<u64>,
    prompt_max_chars: Spanned<usize>,
    #[serde(default)]
    aspect_field: Option<String>,
    #[serde(default = "no_aspects")]
    aspects: Spanned<Vec<String>>,
    #[serde(default)]
    fields: BTreeMap<String, FieldSpec>,
    #[serde(default = "no_fields")]
    fixed: Spanned<Map<String, Value>>,
    #[serde(default)]
    fallback: Option<Spanned<String>>,
    #[serde(default)]
    option: Vec<Spanned<RawOption>>,
}

fn no_aspects() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

fn no_fields() -> Spanned<Map<String, Value>> {
    Spanned::new(0..0, Map::new())
}

fn default_photo_max_mb() -> Spanned<u64> {
    Spanned::new(0..0, 10)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    id: Spanned<String>,
    title: Titles,
    price: Spanned<i64>,
    #[serde(default = "yes")]
    offered: bool,
    #[serde(default = "no_fields")]
    input: Spanned<Map<String, Value>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Titles {
    ru: String,
    en: String,
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// Ids travel in button data, which Telegram caps at 64 bytes.
fn valid_id(id: &str, max: usize) -> bool {
    (1..=max).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || b == b'.'
        })
}

/// `W:H` with both terms positive.
pub fn valid_aspect(aspect: &str) -> bool {
    aspect
        .split_once(':')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .is_some_and(|(w, h)| w > 0 && h > 0)
}

pub const MODEL_ID_MAX: usize = 24;
pub const OPTION_ID_MAX: usize = 12;

impl Catalogue {
    pub fn built_in() -> Result<Catalogue, CatalogueError> {
        Catalogue::parse(BUILT_IN, "(built in)")
    }

    /// The file at `path`, or the built-in catalogue when none is given.
    pub fn load(path: Option<&Path>) -> Result<Catalogue, CatalogueError> {
        match path {
            None => Catalogue::built_in(),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| CatalogueError::Read {
                        path: path.display().to_string(),
                        source,
                    })?;
                Catalogue::parse(&text, &path.display().to_string())
            }
        }
    }

    pub fn parse(text: &str, origin: &str) -> Result<Catalogue, CatalogueError> {
        let file: File = toml::from_str(text).map_err(|err| CatalogueError::Syntax {
            origin: origin.to_owned(),
            message: err.to_string().trim().to_owned(),
        })?;
        let invalid = |offset: usize, problem: String| CatalogueError::Invalid {
            origin: origin.to_owned(),
            line: line_of(text, offset),
            problem,
        };
        let mut models = Vec::with_capacity(file.model.len());
        let mut fallbacks = Vec::new();
        let mut seen = HashSet::new();
        for raw in file.model {
            let model_at = raw.span().start;
            let raw = raw.into_inner();
            let id = raw.id.get_ref().clone();
            let at = raw.id.span().start;
            if !valid_id(&id, MODEL_ID_MAX) {
                return Err(invalid(
                    at,
                    format!("model id {id:?} must be 1 to {MODEL_ID_MAX} characters of a-z, 0-9, '.', '_' and '-'"),
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(invalid(at, format!("model id {id:?} is used twice")));
            }
            let model_problem =
                |offset: usize, problem: String| invalid(offset, format!("model {id}: {problem}"));
            if raw.title.trim().is_empty() || raw.kie_model.trim().is_empty() {
                return Err(model_problem(
                    model_at,
                    "title and kie_model are needed".into(),
                ));
            }
            let photo_field = *raw.photo_field.get_ref();
            let veo_field = photo_field == PhotoField::VeoImageUrls;
            if veo_field != (raw.api == KieApi::Veo) {
                return Err(model_problem(
                    raw.photo_field.span().start,
                    "photo_field \"imageUrls\" goes with api \"veo\", and only with it".into(),
                ));
            }
            let photo_max_mb = *raw.photo_max_mb.get_ref();
            if !(1..=50).contains(&photo_max_mb) {
                return Err(model_problem(
                    raw.photo_max_mb.span().start,
                    "photo_max_mb must be 1 to 50".into(),
                ));
            }
            let prompt_max = *raw.prompt_max_chars.get_ref();
            if !(1..=MAX_PROMPT_CHARS).contains(&prompt_max) {
                return Err(model_problem(
                    raw.prompt_max_chars.span().start,
                    format!("prompt_max_chars must be 1 to {MAX_PROMPT_CHARS}"),
                ));
            }
            let aspects = raw.aspects.get_ref().clone();
            if raw.aspect_field.is_some() == aspects.is_empty() {
                return Err(model_problem(
                    raw.aspects.span().start.max(model_at),
                    "aspect_field and aspects go together: both or neither".into(),
                ));
            }
            let reserved: Vec<&str> = ["prompt", "model", "callBackUrl", photo_field.name()]
                .into_iter()
                .chain(raw.aspect_field.as_deref())
                .collect();
            for name in raw.fields.keys() {
                if reserved.contains(&name.as_str()) {
                    return Err(model_problem(
                        model_at,
                        format!("field {name:?} is set by the bot and cannot be declared"),
                    ));
                }
            }
            let check_input = |input: &Spanned<Map<String, Value>>| -> Result<(), CatalogueError> {
                for (name, value) in input.get_ref() {
                    let Some(spec) = raw.fields.get(name) else {
                        return Err(model_problem(
                            input.span().start,
                            format!("input field {name:?} is not among the model's fields"),
                        ));
                    };
                    if let Some(problem) = spec.problem(value) {
                        return Err(model_problem(
                            input.span().start,
                            format!("input field {name:?} {problem}"),
                        ));
                    }
                }
                Ok(())
            };
            check_input(&raw.fixed)?;
            if raw.option.is_empty() {
                return Err(model_problem(
                    model_at,
                    "at least one [[model.option]] is needed".into(),
                ));
            }
            let mut options = Vec::with_capacity(raw.option.len());
            let mut option_ids = HashSet::new();
            for option in raw.option {
                let option_at = option.span().start;
                let option = option.into_inner();
                let option_id = option.id.get_ref().clone();
                if !valid_id(&option_id, OPTION_ID_MAX) || !option_ids.insert(option_id.clone()) {
                    return Err(model_problem(
                        option.id.span().start,
                        format!("option id {option_id:?} must be unique and 1 to {OPTION_ID_MAX} characters of a-z, 0-9, '.', '_' and '-'"),
                    ));
                }
                let price = *option.price.get_ref();
                if price < 1 {
                    return Err(model_problem(
                        option.price.span().start,
                        format!(
                            "option {option_id}: the price must be at least 1 credit, got {price}"
                        ),
                    ));
                }
                if option.title.ru.trim().is_empty() || option.title.en.trim().is_empty() {
                    return Err(model_problem(
                        option_at,
                        format!("option {option_id}: both titles (ru and en) are needed"),
                    ));
                }
                check_input(&option.input)?;
                for (name, spec) in &raw.fields {
                    let set = option.input.get_ref().contains_key(name)
                        || raw.fixed.get_ref().contains_key(name);
                    if spec.required && !set {
                        return Err(model_problem(
                            option_at,
                            format!("option {option_id}: the required field {name:?} is not set (in the option's input or the model's fixed fields)"),
                        ));
                    }
                }
                options.push(ModelOption {
                    id: option_id,
                    title_ru: option.title.ru.trim().to_owned(),
                    title_en: option.title.en.trim().to_owned(),
                    price,
                    offered: option.offered,
                    input: option.input.into_inner(),
                });
            }
            if let Some(fallback) = &raw.fallback {
                fallbacks.push((
                    id.clone(),
                    fallback.get_ref().clone(),
                    fallback.span().start,
                ));
            }
            models.push(Model {
                id,
                title: raw.title.trim().to_owned(),
                kie_model: raw.kie_model.trim().to_owned(),
                api: raw.api,
                photo_field,
                photo_max_bytes: photo_max_mb * 1024 * 1024,
                prompt_max_chars: prompt_max,
                aspect_field: raw.aspect_field,
                aspects,
                fields: raw.fields,
                fixed: raw.fixed.into_inner(),
                options,
                fallback: raw.fallback.map(Spanned::into_inner),
            });
        }
        if models.is_empty() {
            return Err(CatalogueError::Syntax {
                origin: origin.to_owned(),
                message: "no [[model]] is defined".to_owned(),
            });
        }
        for (model, fallback, at) in fallbacks {
            if fallback == model || !seen.contains(&fallback) {
                return Err(invalid(
                    at,
                    format!("model {model}: the fallback {fallback:?} is not another model of the catalogue"),
                ));
            }
        }
        if !models.iter().any(|model| model.default_option().is_some()) {
            return Err(CatalogueError::Syntax {
                origin: origin.to_owned(),
                message: "no option is offered: set offered = true on at least one".to_owned(),
            });
        }
        Ok(Catalogue { models })
    }

    pub fn all(&self) -> &[Model] {
        &self.models
    }

    pub fn get(&self, id: &str) -> Option<&Model> {
        self.models.iter().find(|model| model.id == id)
    }

    /// What a user may pick for a video of `aspect` whose prompt is `prompt_chars` long:
    /// every offered option of every model that is not `unavailable`, `first` model's
    /// options first.
    pub fn choices<'a>(
        &'a self,
        aspect: &str,
        prompt_chars: usize,
        unavailable: &HashSet<String>,
        first: Option<&str>,
    ) -> Vec<Choice<'a>> {
        let usable = |model: &&Model| {
            !unavailable.contains(&model.id)
                && model.supports_aspect(aspect)
                && prompt_chars <= model.prompt_max_chars
        };
        let firsts = self
            .models
            .iter()
            .filter(|model| Some(model.id.as_str()) == first);
        let rest = self
            .models
            .iter()
            .filter(|model| Some(model.id.as_str()) != first);
        firsts
            .chain(rest)
            .filter(usable)
            .flat_map(|model| {
                model
                    .options
                    .iter()
                    .filter(|option| option.offered)
                    .map(move |option| Choice { model, option })
            })
            .collect()
    }

    /// The longest prompt any offered, available model takes: the own-prompt step's limit.
    pub fn prompt_limit(&self, aspect: &str, unavailable: &HashSet<String>) -> Option<usize> {
        self.choices(aspect, 0, unavailable, None)
            .iter()
            .map(|choice| choice.model.prompt_max_chars)
            .max()
    }

    /// The model a template of `model` is made with now: itself, or while it is unavailable
    /// its fallback (when that one is available).
    pub fn resolve<'a>(&'a self, model: &str, unavailable: &HashSet<String>) -> Option<&'a Model> {
        let wanted = self.get(model)?;
        if !unavailable.contains(&wanted.id) {
            return Some(wanted);
        }
        let fallback = self.get(wanted.fallback.as_deref()?)?;
        (!unavailable.contains(&fallback.id)).then_some(fallback)
    }

    /// What an order gets when nobody chose: the first model's first offered option, in the
    /// default aspect.
    pub fn default_spec(&self) -> Option<(GenerationSpec, i64)> {
        self.models.iter().find_map(|model| {
            let option = model.default_option()?;
            Some((model.spec(option, DEFAULT_ASPECT), option.price))
        })
    }

    /// The cheapest price of any offered option: what "you lack credits" compares against.
    pub fn cheapest_price(&self) -> i64 {
        self.models
            .iter()
            .flat_map(|model| model.options.iter())
            .filter(|option| option.offered)
            .map(|option| option.price)
            .min()
            .unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_built_in_catalogue_loads_with_the_live_models() {
        let catalogue = Catalogue::built_in().expect("the built-in catalogue is valid");
        for kie in [
            "kling-2.6/image-to-video",
            "bytedance/seedance-1.5-pro",
            "hailuo/2-3-image-to-video-standard",
            "wan/2-6-image-to-video",
            "veo3_fast",
        ] {
            assert!(
                catalogue.all().iter().any(|model| model.kie_model == kie),
                "{kie} is missing"
            );
        }
        assert!(catalogue
            .all()
            .iter()
            .all(|model| !model.kie_model.starts_with("sora")));
        let kling = catalogue.get("kling-2.6").expect("kling");
        assert_eq!(kling.prompt_max_chars, 1000);
        let default = kling.default_option().expect("an offered option");
        assert_eq!(
            default.price, 1,
            "the default option keeps 1 credit per video"
        );
        let spec = kling.spec(default, DEFAULT_ASPECT);
        assert_eq!(spec.input["duration"], json!("5"));
        assert_eq!(spec.input["sound"], json!(false));
        let veo = catalogue.get("veo-3.1-fast").expect("veo");
        assert_eq!(veo.api, KieApi::Veo);
        assert_eq!(
            veo.spec(&veo.options[0], "9:16").input["aspect_ratio"],
            json!("9:16")
        );
    }

    const ONE: &str = r#"
[[model]]
id = "kling-2.6"
title = "Kling 2.6"
kie_model = "kling-2.6/image-to-video"
api = "market"
photo_field = "image_urls"
prompt_max_chars = 1000
fields.duration = { type = "string", values = ["5", "10"], required = true }
fields.sound = { type = "bool", required = true }
fixed = { sound = false }

[[model.option]]
id = "5s"
title = { ru = "5 с", en = "5 s" }
price = 1
input = { duration = "5" }

[[model.option]]
id = "10s"
title = { ru = "10 с", en = "10 s" }
price = 2
input = { duration = "10" }
"#;

    fn error_of(text: &str) -> String {
        Catalogue::parse(text, "models.toml")
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn options_carry_their_prices_and_wire_types() {
        let catalogue = Catalogue::parse(ONE, "models.toml").expect("valid");
        let choices = catalogue.choices("9:16", 10, &HashSet::new(), None);
        let prices: Vec<(&str, i64)> = choices
            .iter()
            .map(|choice| (choice.option.id.as_str(), choice.price()))
            .collect();
        assert_eq!(prices, [("5s", 1), ("10s", 2)]);
        let spec = choices[1].model.spec(choices[1].option, "9:16");
        assert_eq!(
            spec.input,
            json!({"duration": "10", "sound": false})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert!(catalogue
            .choices("9:16", 1001, &HashSet::new(), None)
            .is_empty());
        let gone: HashSet<String> = ["kling-2.6".to_owned()].into();
        assert!(catalogue.choices("9:16", 10, &gone, None).is_empty());
        assert_eq!(catalogue.prompt_limit("9:16", &HashSet::new()), Some(1000));
    }

    #[test]
    fn a_price_below_one_names_its_line() {
        let text = ONE.replace("price = 2", "price = 0");
        let err = error_of(&text);
        let line = text.lines().position(|l| l == "price = 0").expect("line") + 1;
        assert!(err.contains(&format!("line {line}")), "{err}");
        assert!(err.contains("at least 1 credit"), "{err}");
    }

    #[test]
    fn an_unknown_field_names_its_line() {
        let text = ONE.replace(
            "prompt_max_chars = 1000",
            "prompt_max_chars = 1000\ncolour = \"red\"",
        );
        let err = error_of(&text);
        assert!(err.contains("unknown field"), "{err}");
        assert!(err.contains("line 9"), "{err}");
    }

    #[test]
    fn a_wrongly_typed_or_missing_field_is_refused_at_load() {
        let err =
            error_of(&ONE.replace("input = { duration = \"10\" }", "input = { duration = 10 }"));
        assert!(err.contains("\"duration\" must be a string"), "{err}");
        let err = error_of(&ONE.replace(
            "input = { duration = \"10\" }",
            "input = { duration = \"7\" }",
        ));
        assert!(err.contains("must be one of"), "{err}");
        let err = error_of(&ONE.replace("input = { duration = \"10\" }", "input = {}"));
        assert!(err.contains("required field \"duration\""), "{err}");
        let err = error_of(&ONE.replace(
            "input = { duration = \"10\" }",
            "input = { duration = \"10\", fps = 30 }",
        ));
        assert!(err.contains("\"fps\" is not among"), "{err}");
        let err = error_of(&ONE.replace(
            "photo_field = \"image_urls\"",
            "photo_field = \"imageUrls\"",
        ));
        assert!(err.contains("goes with api \"veo\""), "{err}");
        let err =
            error_of(&ONE.replace("photo_field = \"image_urls\"", "photo_field = \"picture\""));
        assert!(err.contains("unknown variant"), "{err}");
        let err = error_of(&format!("{ONE}\nfallback = \"nowhere\"\n").replace(
            "[[model.option]]\nid = \"5s\"",
            "fallback = \"nowhere\"\n[[model.option]]\nid = \"5s\"",
        ));
        assert!(err.contains("fallback"), "{err}");
    }

    #[test]
    fn a_retired_model_falls_back_when_the_catalogue_names_one() {
        let text = format!(
            "{}\n{}",
            ONE.replace(
                "fixed = { sound = false }",
                "fixed = { sound = false }\nfallback = \"kling-b\""
            ),
            ONE.replace("id = \"kling-2.6\"", "id = \"kling-b\"")
        );
        let catalogue = Catalogue::parse(&text, "models.toml").expect("valid");
        let none = HashSet::new();
        assert_eq!(
            catalogue.resolve("kling-2.6", &none).map(|m| m.id.as_str()),
            Some("kling-2.6")
        );
        let gone: HashSet<String> = ["kling-2.6".to_owned()].into();
        assert_eq!(
            catalogue.resolve("kling-2.6", &gone).map(|m| m.id.as_str()),
            Some("kling-b")
        );
        let both: HashSet<String> = ["kling-2.6".to_owned(), "kling-b".to_owned()].into();
        assert_eq!(catalogue.resolve("kling-2.6", &both), None);
    }

    #[test]
    fn aspects_are_checked() {
        assert!(valid_aspect("9:16"));
        for bad in ["0:16", "9x16", "abc", "9:", ":16", "-9:16"] {
            assert!(!valid_aspect(bad), "{bad}");
        }
    }
}
