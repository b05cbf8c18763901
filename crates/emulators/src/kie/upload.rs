//! KIE's file upload service (stream, base64, URL) and the serving of uploaded files.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use super::record::{describe_body, RequestIndex};
use super::routes::authorize;
use super::state::{Shared, StoredFile};
use crate::media::{extension, sniff_mime};

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(
            json!({"success": false, "code": 401, "msg": "Authentication failed: Invalid API Key"}),
        ),
    )
        .into_response()
}

fn bad_request(msg: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"success": false, "code": 400, "msg": msg})),
    )
        .into_response()
}

/// Where an upload goes, as the client asked; errors are the message of a 400 answer.
struct Target {
    upload_path: String,
    file_name: Option<String>,
}

impl Target {
    fn from_fields(
        upload_path: Option<String>,
        file_name: Option<String>,
    ) -> Result<Target, &'static str> {
        let upload_path = upload_path
            .filter(|p| !p.is_empty())
            .ok_or("uploadPath is required")?;
        if upload_path.starts_with('/') || upload_path.ends_with('/') {
            return Err("uploadPath must not start or end with /");
        }
        Ok(Target {
            upload_path,
            file_name: file_name.filter(|n| !n.is_empty()),
        })
    }

    fn from_json(body: &Value) -> Result<Target, &'static str> {
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        Target::from_fields(field("uploadPath"), field("fileName"))
    }
}

/// Stores `bytes` and answers like fixtures/kie/upload_ok.json.
fn store(shared: &Shared, target: Target, bytes: Bytes) -> Response {
    let mime = sniff_mime(&bytes);
    // A random name by default, so that two uploads never overwrite each other.
    let file_name = target.file_name.unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{}.{}", &id[..16], extension(mime))
    });
    let file_path = format!("{}/{file_name}", target.upload_path);
    let size = bytes.len();
    shared
        .lock()
        .files
        .insert(file_path.clone(), StoredFile { bytes, mime });
    let uploaded_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    Json(json!({
        "success": true,
        "code": 200,
        "msg": "File uploaded successfully",
        "data": {
            "fileName": file_name,
            "filePath": file_path,
            "downloadUrl": format!("{}/files/{file_path}", shared.base_url),
            "fileSize": size,
            "mimeType": mime,
            "uploadedAt": uploaded_at,
        }
    }))
    .into_response()
}

pub(crate) async fn stream(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if authorize(&shared, req.headers()).is_none() {
        return unauthorized();
    }
    let index = req.extensions().get::<RequestIndex>().copied();
    let mut multipart = match Multipart::from_request(req, &()).await {
        Ok(m) => m,
        Err(_) => return bad_request("the body must be multipart/form-data"),
    };
    let mut file: Option<(Option<String>, Bytes)> = None;
    let mut upload_path = None;
    let mut file_name = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return bad_request("malformed multipart body"),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let original_name = field.file_name().map(str::to_owned);
        let Ok(data) = field.bytes().await else {
            return bad_request("malformed multipart body");
        };
        match name.as_str() {
            "file" => file = Some((original_name, data)),
            "uploadPath" => upload_path = Some(String::from_utf8_lossy(&data).into_owned()),
            "fileName" => file_name = Some(String::from_utf8_lossy(&data).into_owned()),
            _ => {}
        }
    }
    if let Some(index) = index {
        let mut summary = match &file {
            Some((name, data)) => format!(
                "file={} ({} bytes)",
                name.as_deref().unwrap_or(""),
                data.len()
            ),
            None => "file=<missing>".to_owned(),
        };
        if let Some(path) = &upload_path {
            summary.push_str(&format!("; uploadPath={path}"));
        }
        if let Some(name) = &file_name {
            summary.push_str(&format!("; fileName={name}"));
        }
        describe_body(&shared, index, summary);
    }
    let Some((_, data)) = file else {
        return bad_request("file is required");
    };
    match Target::from_fields(upload_path, file_name) {
        Ok(target) => store(&shared, target, data),
        Err(what) => bad_request(what),
    }
}

/// The part both JSON uploads share: the key, a JSON body, and where the file goes.
fn json_request(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, Target), Box<Response>> {
    if authorize(shared, headers).is_none() {
        return Err(Box::new(unauthorized()));
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(bad_request("the body must be JSON")));
    };
    let target = Target::from_json(&body).map_err(|what| Box::new(bad_request(what)))?;
    Ok((body, target))
}

pub(crate) async fn base64(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (body, target) = match json_request(&shared, &headers, &body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let Some(data) = body.get("base64Data").and_then(Value::as_str) else {
        return bad_request("base64Data is required");
    };
    // Both a data URL (`data:image/png;base64,…`) and plain base64 are accepted.
    let encoded = match data.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => data,
    };
    let encoded: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    match engines.iter().find_map(|e| e.decode(&encoded).ok()) {
        Some(bytes) => store(&shared, target, Bytes::from(bytes)),
        None => bad_request("base64Data is not valid base64"),
    }
}

pub(crate) async fn url(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (body, target) = match json_request(&shared, &headers, &body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let Some(file_url) = body.get("fileUrl").and_then(Value::as_str) else {
        return bad_request("fileUrl is required");
    };
    // The emulator must not reach the network: only loopback URLs are fetched.
    let loopback = reqwest::Url::parse(file_url).ok().is_some_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
    });
    if !loopback {
        return bad_request("fileUrl must be an http URL on 127.0.0.1 (emulator)");
    }
    let fetched = match shared.http.get(file_url).send().await {
        Ok(response) if response.status().is_success() => response.bytes().await,
        Ok(response) => {
            return bad_request(&format!(
                "Failed to download file from URL: HTTP {}",
                response.status()
            ))
        }
        Err(error) => Err(error),
    };
    match fetched {
        Ok(bytes) => store(&shared, target, bytes),
        Err(error) => bad_request(&format!(
            "Failed to download file from URL: {}",
            error.without_url()
        )),
    }
}

/// Serves an uploaded file; like KIE's temporary file host it needs no key.
pub(crate) async fn serve(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    let file = shared.lock().files.get(&path).cloned();
    match file {
        Some(file) => ([(CONTENT_TYPE, file.mime)], file.bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
