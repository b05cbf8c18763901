//! Messages the bot sends, edits and deletes.

use bytes::Bytes;
use serde_json::{json, Value};

use super::error::TgError;
use super::faults;
use super::params::{FileParam, Params};
use super::state::{BotMessage, FileKind, StoredFile, TgState};
use super::types;
use super::{SentKind, SentMessage, VideoSource};

/// Stores the message and returns it as the API answers it.
fn keep(
    st: &mut TgState,
    chat_id: i64,
    message: Value,
    kind: SentKind,
    text: Option<String>,
    markup: Option<Value>,
) -> Value {
    let summary = SentMessage {
        message_id: message["message_id"].as_i64().unwrap_or_default(),
        chat_id,
        kind,
        text,
        reply_markup: markup,
        edits: 0,
        deleted: false,
    };
    st.messages.push(BotMessage {
        summary,
        json: message.clone(),
    });
    message
}

/// Adds the text or caption and the inline keyboard to a new message.
fn decorate(message: &mut Value, text_field: &str, text: Option<&str>, markup: Option<&Value>) {
    if let Some(text) = text {
        message[text_field] = json!(text);
    }
    if let Some(markup) = types::inline_markup(markup) {
        message["reply_markup"] = markup;
    }
}

pub(crate) fn send_message(st: &mut TgState, chat_id: i64, p: &Params) -> Result<Value, TgError> {
    let text = p
        .str("text")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| TgError::bad_request("message text is empty"))?;
    if text.chars().count() > 4096 {
        return Err(TgError::bad_request("message is too long"));
    }
    let markup = p.json("reply_markup");
    let mut message = st.bot_message(chat_id);
    decorate(&mut message, "text", Some(&text), markup.as_ref());
    if let Some(entities) = p.json("entities") {
        message["entities"] = entities;
    }
    Ok(keep(
        st,
        chat_id,
        message,
        SentKind::Text,
        Some(text),
        markup,
    ))
}

fn caption(p: &Params) -> Result<Option<String>, TgError> {
    let caption = p.str("caption").filter(|c| !c.is_empty());
    if caption.as_ref().is_some_and(|c| c.chars().count() > 1024) {
        return Err(TgError::bad_request("message caption is too long"));
    }
    Ok(caption)
}

/// Resolves a file parameter into a stored file, as Telegram would after fetching it.
fn resolve(st: &mut TgState, file: FileParam, kind: FileKind<'_>) -> Result<StoredFile, TgError> {
    match file {
        // The emulator does not fetch URLs: the file is known by its URL only.
        FileParam::Url(_) => Ok(st.store_file(kind, Bytes::new())),
        FileParam::FileId(id) => st
            .file(&id)
            .cloned()
            .ok_or_else(|| TgError::bad_request("wrong file identifier/HTTP URL specified")),
        FileParam::Upload(upload) => Ok(st.store_file(kind, upload.bytes)),
    }
}

pub(crate) fn send_video(st: &mut TgState, chat_id: i64, p: &Params) -> Result<Value, TgError> {
    let video = p
        .file("video")
        .ok_or_else(|| TgError::bad_request("there is no video in the request"))?;
    if matches!(video, FileParam::Url(_)) && faults::take_refuse_video_url(&mut st.faults) {
        return Err(TgError::bad_request("failed to get HTTP URL content"));
    }
    let (source, file_name) = match &video {
        FileParam::Url(url) => (VideoSource::Url(url.clone()), None),
        FileParam::FileId(id) => (VideoSource::FileId(id.clone()), None),
        FileParam::Upload(upload) => (
            VideoSource::Upload {
                bytes: upload.bytes.len(),
                file_name: upload.file_name.clone(),
            },
            upload.file_name.clone(),
        ),
    };
    let caption = caption(p)?;
    let file = resolve(st, video, FileKind::Video)?;
    let markup = p.json("reply_markup");
    let mut message = st.bot_message(chat_id);
    message["video"] = types::video(&file.meta, file_name.as_deref());
    decorate(&mut message, "caption", caption.as_deref(), markup.as_ref());
    let kind = SentKind::Video {
        source,
        file_id: file.meta.file_id,
    };
    Ok(keep(st, chat_id, message, kind, caption, markup))
}

pub(crate) fn send_photo(st: &mut TgState, chat_id: i64, p: &Params) -> Result<Value, TgError> {
    let photo = p
        .file("photo")
        .ok_or_else(|| TgError::bad_request("there is no photo in the request"))?;
    let caption = caption(p)?;
    let file = resolve(st, photo, FileKind::Photo)?;
    let markup = p.json("reply_markup");
    let mut message = st.bot_message(chat_id);
    let sizes = [file.meta.clone(), file.meta.clone(), file.meta];
    message["photo"] = types::photo_sizes(&sizes);
    decorate(&mut message, "caption", caption.as_deref(), markup.as_ref());
    Ok(keep(st, chat_id, message, SentKind::Photo, caption, markup))
}

pub(crate) fn send_document(st: &mut TgState, chat_id: i64, p: &Params) -> Result<Value, TgError> {
    let document = p
        .file("document")
        .ok_or_else(|| TgError::bad_request("there is no document in the request"))?;
    let file_name = match &document {
        FileParam::Upload(upload) => upload.file_name.clone(),
        _ => None,
    };
    let caption = caption(p)?;
    let extension = file_name
        .as_deref()
        .and_then(|n| n.rsplit_once('.'))
        .map_or("bin", |(_, ext)| ext)
        .to_owned();
    let file = resolve(st, document, FileKind::Document(&extension))?;
    let markup = p.json("reply_markup");
    let mut message = st.bot_message(chat_id);
    message["document"] = types::document(&file.meta, file_name.as_deref(), None);
    decorate(&mut message, "caption", caption.as_deref(), markup.as_ref());
    let kind = SentKind::Other("document".to_owned());
    Ok(keep(st, chat_id, message, kind, caption, markup))
}

/// sendInvoice's limits: the title and description in characters, the payload in bytes.
const MAX_INVOICE_TITLE: usize = 32;
const MAX_INVOICE_DESCRIPTION: usize = 255;
const MAX_INVOICE_PAYLOAD_BYTES: usize = 128;

/// sendInvoice. A title, description or payload outside its limits is refused as Telegram
/// does; INVOICE_PAYLOAD_INVALID is Telegram's text, the title and description texts are the
/// emulator's own in the same style.
pub(crate) fn send_invoice(st: &mut TgState, chat_id: i64, p: &Params) -> Result<Value, TgError> {
    let required = |key: &str| {
        p.str(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| TgError::bad_request(&format!("{key} is empty")))
    };
    let title = p.str("title").unwrap_or_default();
    if !(1..=MAX_INVOICE_TITLE).contains(&title.chars().count()) {
        return Err(TgError::bad_request("INVOICE_TITLE_INVALID"));
    }
    let description = p.str("description").unwrap_or_default();
    if !(1..=MAX_INVOICE_DESCRIPTION).contains(&description.chars().count()) {
        return Err(TgError::bad_request("INVOICE_DESCRIPTION_INVALID"));
    }
    // The payload is measured in bytes, not characters.
    let payload = p.str("payload").unwrap_or_default();
    if !(1..=MAX_INVOICE_PAYLOAD_BYTES).contains(&payload.len()) {
        return Err(TgError::bad_request("INVOICE_PAYLOAD_INVALID"));
    }
    let currency = required("currency")?;
    let prices = p
        .json("prices")
        .and_then(|v| v.as_array().cloned())
        .filter(|prices| !prices.is_empty())
        .ok_or_else(|| TgError::bad_request("prices are empty"))?;
    // Telegram Stars invoices take exactly one price and no provider token; the error texts
    // are the emulator's own, as Telegram's are not documented.
    if currency == "XTR" {
        if prices.len() != 1 {
            return Err(TgError::bad_request(
                "an XTR invoice must have exactly one price",
            ));
        }
        if p.str("provider_token").is_some_and(|t| !t.is_empty()) {
            return Err(TgError::bad_request(
                "an XTR invoice must have an empty provider_token",
            ));
        }
    }
    let amount: i64 = prices
        .iter()
        .map(|price| price.get("amount").and_then(Value::as_i64).unwrap_or(0))
        .sum();
    let markup = p.json("reply_markup");
    let mut message = st.bot_message(chat_id);
    message["invoice"] = json!({
        "title": title,
        "description": description,
        "start_parameter": p.str("start_parameter").unwrap_or_default(),
        "currency": currency,
        "total_amount": amount,
    });
    decorate(&mut message, "caption", None, markup.as_ref());
    let kind = SentKind::Invoice {
        payload,
        currency,
        amount,
    };
    Ok(keep(st, chat_id, message, kind, None, markup))
}

/// Sends the emulator does not model: recorded as `SentKind::Other(method)` with a text body,
/// so that teloxide still gets a Message it can parse.
pub(crate) fn send_other(
    st: &mut TgState,
    chat_id: i64,
    method: &str,
    p: &Params,
) -> Result<Value, TgError> {
    let text = p.str("caption").or_else(|| p.str("text"));
    let mut message = st.bot_message(chat_id);
    message["text"] = json!(text.clone().unwrap_or_else(|| format!("<{method}>")));
    let kind = SentKind::Other(method.to_owned());
    Ok(keep(st, chat_id, message, kind, text, None))
}

const NOT_MODIFIED: &str = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";

/// The target of an edit; `None` for an inline message, which the emulator does not track.
fn edit_target<'a>(st: &'a mut TgState, p: &Params) -> Result<Option<&'a mut BotMessage>, TgError> {
    if p.str("inline_message_id").is_some() {
        return Ok(None);
    }
    let (Some(chat_id), Some(message_id)) = (p.i64("chat_id"), p.i64("message_id")) else {
        return Err(TgError::bad_request("message to edit not found"));
    };
    st.message_mut(chat_id, message_id)
        .map(Some)
        .ok_or_else(|| TgError::bad_request("message to edit not found"))
}

/// Telegram drops the inline keyboard of an edited message unless the edit repeats it.
fn apply_edit(
    message: &mut BotMessage,
    field: &str,
    text: Option<String>,
    markup: Option<Value>,
) -> Value {
    if let Some(text) = &text {
        message.json[field] = json!(text);
        message.summary.text = Some(text.clone());
    }
    match types::inline_markup(markup.as_ref()) {
        Some(inline) => message.json["reply_markup"] = inline,
        None => {
            if let Some(object) = message.json.as_object_mut() {
                object.remove("reply_markup");
            }
        }
    }
    message.summary.reply_markup = markup;
    message.summary.edits += 1;
    message.json["edit_date"] = json!(types::now_unix());
    message.json.clone()
}

pub(crate) fn edit_text(st: &mut TgState, p: &Params) -> Result<Value, TgError> {
    let text = p
        .str("text")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| TgError::bad_request("message text is empty"))?;
    let markup = p.json("reply_markup");
    let Some(message) = edit_target(st, p)? else {
        return Ok(json!(true));
    };
    if message.summary.kind != SentKind::Text {
        return Err(TgError::bad_request(
            "there is no text in the message to edit",
        ));
    }
    if message.summary.text.as_deref() == Some(text.as_str())
        && message.summary.reply_markup == markup
    {
        return Err(TgError::bad_request(NOT_MODIFIED));
    }
    Ok(apply_edit(message, "text", Some(text), markup))
}

pub(crate) fn edit_caption(st: &mut TgState, p: &Params) -> Result<Value, TgError> {
    let caption = caption(p)?;
    let markup = p.json("reply_markup");
    let Some(message) = edit_target(st, p)? else {
        return Ok(json!(true));
    };
    if message.summary.kind == SentKind::Text {
        return Err(TgError::bad_request(
            "there is no caption in the message to edit",
        ));
    }
    if message.summary.text == caption && message.summary.reply_markup == markup {
        return Err(TgError::bad_request(NOT_MODIFIED));
    }
    if caption.is_none() {
        if let Some(object) = message.json.as_object_mut() {
            object.remove("caption");
        }
        message.summary.text = None;
    }
    Ok(apply_edit(message, "caption", caption, markup))
}

pub(crate) fn edit_reply_markup(st: &mut TgState, p: &Params) -> Result<Value, TgError> {
    let markup = p.json("reply_markup");
    let Some(message) = edit_target(st, p)? else {
        return Ok(json!(true));
    };
    if message.summary.reply_markup == markup {
        return Err(TgError::bad_request(NOT_MODIFIED));
    }
    Ok(apply_edit(message, "text", None, markup))
}

pub(crate) fn delete(st: &mut TgState, p: &Params) -> Result<Value, TgError> {
    let not_found = || TgError::bad_request("message to delete not found");
    let (Some(chat_id), Some(message_id)) = (p.i64("chat_id"), p.i64("message_id")) else {
        return Err(not_found());
    };
    let message = st.message_mut(chat_id, message_id).ok_or_else(not_found)?;
    message.summary.deleted = true;
    Ok(json!(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(title: &str, description: &str, payload: &str) -> Value {
        json!({
            "chat_id": 7,
            "title": title,
            "description": description,
            "payload": payload,
            "currency": "XTR",
            "prices": [{"label": "pack", "amount": 50}],
        })
    }

    /// The error description sendInvoice answers, or `None` when the invoice is sent.
    fn refusal(params: Value) -> Option<String> {
        let mut st = TgState::new(1, "bot".to_owned());
        let sent = send_invoice(&mut st, 7, &Params::from_json(params));
        sent.err().map(|e| e.description)
    }

    #[test]
    fn an_invoice_payload_is_1_to_128_bytes() {
        assert_eq!(refusal(invoice("t", "d", &"p".repeat(128))), None);
        // 64 two-byte characters are 128 bytes; one more is too many.
        assert_eq!(refusal(invoice("t", "d", &"я".repeat(64))), None);
        let invalid = Some("Bad Request: INVOICE_PAYLOAD_INVALID".to_owned());
        assert_eq!(refusal(invoice("t", "d", &"я".repeat(65))), invalid);
        assert_eq!(refusal(invoice("t", "d", &"p".repeat(129))), invalid);
        assert_eq!(refusal(invoice("t", "d", "")), invalid);
        let mut missing = invoice("t", "d", "p");
        missing.as_object_mut().unwrap().remove("payload");
        assert_eq!(refusal(missing), invalid);
    }

    #[test]
    fn an_invoice_title_is_1_to_32_characters() {
        assert_eq!(refusal(invoice(&"т".repeat(32), "d", "p")), None);
        let invalid = Some("Bad Request: INVOICE_TITLE_INVALID".to_owned());
        assert_eq!(refusal(invoice(&"т".repeat(33), "d", "p")), invalid);
        assert_eq!(refusal(invoice("", "d", "p")), invalid);
    }

    #[test]
    fn an_invoice_description_is_1_to_255_characters() {
        assert_eq!(refusal(invoice("t", &"д".repeat(255), "p")), None);
        let invalid = Some("Bad Request: INVOICE_DESCRIPTION_INVALID".to_owned());
        assert_eq!(refusal(invoice("t", &"д".repeat(256), "p")), invalid);
        assert_eq!(refusal(invoice("t", "", "p")), invalid);
    }

    #[test]
    fn a_stars_invoice_has_one_price_and_no_provider_token() {
        let mut two_prices = invoice("t", "d", "p");
        two_prices["prices"] = json!([{"label": "a", "amount": 1}, {"label": "b", "amount": 2}]);
        assert!(refusal(two_prices).is_some());
        let mut with_token = invoice("t", "d", "p");
        with_token["provider_token"] = json!("tok");
        assert!(refusal(with_token).is_some());
        let mut empty_token = invoice("t", "d", "p");
        empty_token["provider_token"] = json!("");
        assert_eq!(refusal(empty_token), None);
    }
}
