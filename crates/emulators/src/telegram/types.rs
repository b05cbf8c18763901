//! Bot API objects as JSON, with every field teloxide requires.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::TestUser;

/// Unix seconds. Never 0: teloxide reads a message dated 0 as inaccessible.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(1)
        .max(1)
}

pub(crate) fn user(u: &TestUser) -> Value {
    let mut v = json!({"id": u.id, "is_bot": false, "first_name": u.first_name});
    if let Some(username) = &u.username {
        v["username"] = json!(username);
    }
    if let Some(language) = &u.language_code {
        v["language_code"] = json!(language);
    }
    v
}

pub(crate) fn bot_user(id: i64, username: &str) -> Value {
    json!({"id": id, "is_bot": true, "first_name": "Neurocards Test Bot", "username": username})
}

/// getMe: teloxide's `Me` fails to parse without the capability booleans.
pub(crate) fn me(id: i64, username: &str) -> Value {
    let mut v = bot_user(id, username);
    for flag in [
        "can_join_groups",
        "can_read_all_group_messages",
        "supports_inline_queries",
        "can_connect_to_business",
        "has_main_web_app",
    ] {
        v[flag] = json!(false);
    }
    v["can_join_groups"] = json!(true);
    v
}

/// The chat with `id`: private with the user when known; negative ids are groups.
pub(crate) fn chat(id: i64, user: Option<&TestUser>) -> Value {
    if id < 0 {
        return json!({"id": id, "type": "group", "title": "Test group"});
    }
    let mut v = json!({"id": id, "type": "private"});
    match user {
        Some(u) => {
            v["first_name"] = json!(u.first_name);
            if let Some(username) = &u.username {
                v["username"] = json!(username);
            }
        }
        None => v["first_name"] = json!(format!("User{id}")),
    }
    v
}

/// A file's identity, as every media object carries it.
#[derive(Debug, Clone)]
pub(crate) struct FileMeta {
    pub file_id: String,
    pub unique_id: String,
    pub size: usize,
}

impl FileMeta {
    fn json(&self) -> Value {
        json!({
            "file_id": self.file_id,
            "file_unique_id": self.unique_id,
            "file_size": self.size,
        })
    }
}

/// Photo sizes, smallest first as Telegram orders them.
pub(crate) fn photo_sizes(files: &[FileMeta]) -> Value {
    const SIDES: [u32; 3] = [90, 320, 1280];
    Value::Array(
        files
            .iter()
            .zip(SIDES)
            .map(|(f, side)| {
                let mut v = f.json();
                v["width"] = json!(side);
                v["height"] = json!(side);
                v
            })
            .collect(),
    )
}

pub(crate) fn video(file: &FileMeta, file_name: Option<&str>) -> Value {
    let mut v = file.json();
    v["width"] = json!(720);
    v["height"] = json!(1280);
    v["duration"] = json!(10);
    v["mime_type"] = json!("video/mp4");
    if let Some(name) = file_name {
        v["file_name"] = json!(name);
    }
    v
}

pub(crate) fn document(file: &FileMeta, file_name: Option<&str>, mime_type: Option<&str>) -> Value {
    let mut v = file.json();
    if let Some(name) = file_name {
        v["file_name"] = json!(name);
    }
    if let Some(mime) = mime_type {
        v["mime_type"] = json!(mime);
    }
    v
}

/// getFile's `File`.
pub(crate) fn file(meta: &FileMeta, path: &str) -> Value {
    let mut v = meta.json();
    v["file_path"] = json!(path);
    v
}

/// The length of `s` in UTF-16 code units, the unit of entity offsets.
pub(crate) fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// A `bot_command` entity for a text starting with `/`.
pub(crate) fn command_entities(text: &str) -> Option<Value> {
    if !text.starts_with('/') {
        return None;
    }
    let command = text.split_whitespace().next().unwrap_or(text);
    Some(json!([{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]))
}

/// Only an inline keyboard is echoed in a Message: teloxide's `Message::reply_markup` is an
/// `InlineKeyboardMarkup` and a reply keyboard there would not parse.
pub(crate) fn inline_markup(markup: Option<&Value>) -> Option<Value> {
    markup
        .filter(|m| m.get("inline_keyboard").is_some())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_entity_covers_only_the_command() {
        assert_eq!(
            command_entities("/start ref_1"),
            Some(json!([{"type": "bot_command", "offset": 0, "length": 6}]))
        );
        assert_eq!(command_entities("hello"), None);
    }

    #[test]
    fn only_inline_keyboards_are_echoed() {
        let inline = json!({"inline_keyboard": []});
        assert_eq!(inline_markup(Some(&inline)), Some(inline.clone()));
        assert_eq!(inline_markup(Some(&json!({"keyboard": []}))), None);
    }
}
