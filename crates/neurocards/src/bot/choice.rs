//! After the template (or the own prompt): which model and option the video is made with.
//! The choices are the options the operator offers in the catalogue, of the models KIE
//! still serves, that can make the template's aspect from a prompt of this length. One
//! choice skips the screen; none is answered with an apology and charges nothing.

use std::collections::HashSet;

use super::Ctx;
use crate::catalogue::{Choice, DEFAULT_ASPECT};

/// The model and option a choice stands for, as the dialog stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    pub model: String,
    pub option: String,
}

impl From<&Choice<'_>> for Picked {
    fn from(choice: &Choice<'_>) -> Self {
        Picked {
            model: choice.model.id.clone(),
            option: choice.option.id.clone(),
        }
    }
}

/// The aspect of the template (or of own prompts: the first template's).
pub fn aspect_of(ctx: &Ctx, template: Option<&str>) -> String {
    template
        .and_then(|id| ctx.templates.get(id))
        .or_else(|| ctx.templates.own_prompt_defaults())
        .map_or_else(|| DEFAULT_ASPECT.to_owned(), |t| t.aspect.clone())
}

/// What the user may pick for this template and prompt, the template's model first.
pub fn choices<'a>(
    ctx: &'a Ctx,
    template: Option<&str>,
    prompt: &str,
    unavailable: &HashSet<String>,
) -> Vec<Choice<'a>> {
    let template = template.and_then(|id| ctx.templates.get(id));
    let aspect = aspect_of(ctx, template.map(|t| t.id.as_str()));
    let wanted = template.map(|t| t.model.as_str()).or_else(|| {
        ctx.templates
            .own_prompt_defaults()
            .map(|t| t.model.as_str())
    });
    let resolved = wanted.and_then(|model| ctx.catalogue.resolve(model, unavailable));
    // A template that pins an option of its own model offers exactly that.
    if let (Some(template), Some(model)) = (template, resolved) {
        if let Some(option) = template
            .option
            .as_deref()
            .filter(|_| model.id == template.model)
            .and_then(|id| model.option(id))
        {
            return vec![Choice { model, option }];
        }
    }
    let length = prompt.chars().count();
    let mut offered = ctx.catalogue.choices(
        &aspect,
        length,
        unavailable,
        resolved.map(|model| model.id.as_str()),
    );
    // A fallback the operator offers no option of still stands in for the retired model
    // with its first option, so the template keeps working.
    if let Some(model) = resolved.filter(|model| {
        model.supports_aspect(&aspect)
            && length <= model.prompt_max_chars
            && !offered.iter().any(|choice| choice.model.id == model.id)
    }) {
        if let Some(option) = model.default_option().or_else(|| model.options.first()) {
            offered.insert(0, Choice { model, option });
        }
    }
    offered
}
