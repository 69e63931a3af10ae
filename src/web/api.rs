//! The JSON API under `/api` (design: Interfaces). One generic set of routes serves every
//! category; the category descriptor decides the differences.

use super::{ApiError, AppState};
use crate::handle::{Outcome, Request};
use crate::jobs::request::{self, GenRequest};
use crate::library::category::{Category, is_slug};
use crate::library::command::{Command, Refusal};
use crate::library::models;
use crate::library::projection::{Entry, Library};
use crate::library::settings;
use crate::library::uploads;
use crate::store::event::{Origin, Source};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

type Q = Query<HashMap<String, String>>;
type ApiResult = Result<Response, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .route("/api/health", get(health))
        .route("/api/rescan", post(rescan_all))
        .route("/api/failures", get(failures))
        .route("/api/workflow", get(workflow))
        .route("/api/settings", get(get_settings).put(put_settings))
        .route("/api/settings/comfy/test", post(test_backend))
        .route("/api/default_checkpoint", post(set_default_checkpoint))
        .route("/api/models/checkpoints", get(checkpoint_files))
        .route("/api/loras/{category}", get(loras))
        .route(
            "/api/preferences/{page}",
            get(get_page_prefs).put(put_page_prefs),
        )
        .route("/api/library/{category}", get(list).post(create))
        .route("/api/library/{category}/rescan", post(rescan_category))
        .route("/api/library/{category}/clear_covers", post(clear_covers))
        .route(
            "/api/library/{category}/{slug}",
            get(get_one).put(edit).delete(delete),
        )
        .route("/api/library/{category}/{slug}/clone", post(clone))
        .route(
            "/api/library/{category}/{slug}/default_fields",
            put(default_fields),
        )
        .route(
            "/api/library/{category}/{slug}/preferences",
            get(get_entry_prefs).put(put_entry_prefs),
        )
        .route(
            "/api/library/{category}/{slug}/cover",
            post(upload_cover).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/preview", post(preview))
}

async fn api_not_found(Path(rest): Path<String>) -> ApiError {
    ApiError::not_found(format!("no API route /api/{rest}"))
}

// ---- request helpers -------------------------------------------------------------------

pub fn category(key: &str) -> Result<Category, ApiError> {
    Category::parse(key).ok_or_else(|| {
        let known: Vec<&str> = Category::ALL.iter().map(|c| c.key()).collect();
        ApiError::not_found(format!(
            "unknown category '{key}' (known: {})",
            known.join(" ")
        ))
    })
}

pub(super) fn slug_param(slug: &str) -> Result<&str, ApiError> {
    if is_slug(slug) {
        Ok(slug)
    } else {
        Err(ApiError::not_found(format!(
            "'{slug}' is not a slug (letters, digits and _ only)"
        )))
    }
}

fn q_u64(q: &HashMap<String, String>, key: &str) -> Result<Option<u64>, ApiError> {
    q.get(key)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad(format!("?{key}={v} is not a whole number")))
        })
        .transpose()
}

fn q_bool(q: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("false" | "0" | "") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(v) => Err(ApiError::bad(format!("?{key}={v} must be true or false"))),
    }
}

/// Parses a body that must be one JSON object.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad(
            "the request body is empty; send a JSON object",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad("the request body must be a JSON object")),
        Err(e) => Err(ApiError::bad(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// Like `json_object`, but an empty body is an empty object.
fn optional_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Map::new())
    } else {
        json_object(body)
    }
}

async fn exec(s: &AppState, cmd: Command) -> Result<Outcome, ApiError> {
    Ok(s.handle.run(Origin::Web, Request::Command(cmd)).await?)
}

/// The library as of `?at=SEQ` or `?at_time=TIME` (RFC 3339 or unix ms: the newest event
/// at or before it), or now (`None`).
pub(super) async fn library_at(
    s: &AppState,
    q: &HashMap<String, String>,
) -> Result<Option<Library>, ApiError> {
    let at = match (q_u64(q, "at")?, q.get("at_time")) {
        (Some(_), Some(_)) => return Err(ApiError::bad("give ?at or ?at_time, not both")),
        (Some(at), None) => at,
        (None, Some(t)) => {
            let ms = crate::history::time::parse(t)
                .map_err(|e| ApiError::bad(format!("?at_time: {e}")))?;
            let h = s.handle.clone();
            tokio::task::spawn_blocking(move || h.ledger().seq_at_time(ms))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?
        }
        (None, None) => return Ok(None),
    };
    if at >= s.handle.library().seq {
        return Ok(None);
    }
    let h = s.handle.clone();
    match tokio::task::spawn_blocking(move || h.library_at(at)).await {
        Ok(Ok(lib)) => Ok(Some(lib)),
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

// ---- entries ---------------------------------------------------------------------------

#[derive(Serialize)]
struct Item<'a> {
    slug: &'a str,
    id: &'a str,
    name: &'a str,
    file: &'a str,
    cover: Option<String>,
    version: u64,
    /// The seq of the last change to the document text.
    content_version: u64,
    /// The cover was made from an older version of the document (`history::stale`).
    stale: bool,
}

fn item<'e>(lib: &Library, e: &'e Entry) -> Item<'e> {
    Item {
        slug: &e.slug,
        id: &e.id,
        name: &e.name,
        file: &e.file,
        cover: e.cover.as_ref().map(|p| format!("/static/{p}")),
        version: e.version,
        content_version: e.content_version,
        stale: crate::history::stale::entry_is_stale(lib, e),
    }
}

pub(super) fn entry_json(lib: &Library, e: &Entry) -> Value {
    let mut v = serde_json::to_value(item(lib, e)).unwrap_or_default();
    if let Value::Object(m) = &mut v {
        m.insert("data".into(), e.data().map_or(Value::Null, Value::Object));
        m.insert("default_fields".into(), json!(e.default_fields));
    }
    v
}

fn list_body(lib: &Library, c: Category) -> Result<Vec<u8>, ApiError> {
    #[derive(Serialize)]
    struct Items<'a> {
        items: Vec<Item<'a>>,
    }
    let items = lib.shelf(c).docs.values().map(|e| item(lib, e)).collect();
    serde_json::to_vec(&Items { items }).map_err(ApiError::internal)
}

/// The current list of a category, serialized once per change of that category.
fn current_list(s: &AppState, c: Category) -> Result<Bytes, ApiError> {
    let lib = s.handle.library();
    let generation = lib.shelf(c).generation;
    let mut cache = s.list_cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((g, bytes)) = cache.get(&c)
        && *g == generation
    {
        return Ok(bytes.clone());
    }
    let bytes = Bytes::from(list_body(&lib, c)?);
    cache.insert(c, (generation, bytes.clone()));
    Ok(bytes)
}

async fn list(State(s): State<AppState>, Path(cat): Path<String>, Query(q): Q) -> ApiResult {
    let c = category(&cat)?;
    let body = match library_at(&s, &q).await? {
        Some(lib) => Bytes::from(list_body(&lib, c)?),
        None => current_list(&s, c)?,
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response())
}

fn one(lib: &Library, c: Category, slug: &str) -> Result<Value, ApiError> {
    lib.get(c, slug)
        .map(|e| entry_json(lib, e))
        .ok_or_else(|| ApiError::not_found(format!("no {} with slug '{slug}'", c.desc().singular)))
}

async fn get_one(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    Query(q): Q,
) -> ApiResult {
    let c = category(&cat)?;
    let slug = slug_param(&slug)?;
    let v = match library_at(&s, &q).await? {
        Some(lib) => one(&lib, c, slug)?,
        None => one(&s.handle.library(), c, slug)?,
    };
    Ok(Json(v).into_response())
}

fn committed(s: &AppState, c: Category, slug: &str, o: &Outcome, status: StatusCode) -> ApiResult {
    let mut v = one(&s.handle.library(), c, slug)?;
    if let Value::Object(m) = &mut v
        && !o.warnings.is_empty()
    {
        m.insert("warnings".into(), json!(o.warnings));
    }
    Ok((status, Json(v)).into_response())
}

fn created_slug(o: &Outcome) -> Option<String> {
    o.events
        .iter()
        .find_map(|s| s.event().subject().map(|(_, slug)| slug.to_string()))
}

async fn create(State(s): State<AppState>, Path(cat): Path<String>, body: Bytes) -> ApiResult {
    let c = category(&cat)?;
    let doc = json_object(&body)?;
    let o = exec(
        &s,
        Command::Create {
            category: c,
            doc,
            source: Source::Manual,
        },
    )
    .await?;
    let slug = created_slug(&o).ok_or_else(|| ApiError::internal("create made no event"))?;
    committed(&s, c, &slug, &o, StatusCode::CREATED)
}

async fn edit(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let c = category(&cat)?;
    let slug = slug_param(&slug)?.to_string();
    let doc = json_object(&body)?;
    let o = exec(
        &s,
        Command::Edit {
            category: c,
            slug: slug.clone(),
            doc,
        },
    )
    .await?;
    committed(&s, c, &slug, &o, StatusCode::OK)
}

async fn delete(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    Query(q): Q,
) -> ApiResult {
    let c = category(&cat)?;
    let slug = slug_param(&slug)?.to_string();
    let hard = q_bool(&q, "hard")?;
    let o = exec(
        &s,
        Command::Delete {
            category: c,
            slug: slug.clone(),
            hard,
        },
    )
    .await?;
    Ok(
        Json(json!({"deleted": slug, "hard": hard, "seq": o.last_seq(), "warnings": o.warnings}))
            .into_response(),
    )
}

async fn clone(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let c = category(&cat)?;
    let slug = slug_param(&slug)?.to_string();
    let b = optional_object(&body)?;
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(v)) => Ok(Some(v.clone())),
            Some(_) => Err(ApiError::bad(format!("\"{k}\" must be a string"))),
        }
    };
    let o = exec(
        &s,
        Command::Clone {
            category: c,
            slug,
            new_id: text("id")?,
            new_name: text("name")?,
        },
    )
    .await?;
    let new = created_slug(&o).ok_or_else(|| ApiError::internal("clone made no event"))?;
    committed(&s, c, &new, &o, StatusCode::CREATED)
}

fn string_list(v: Option<&Value>, what: &str) -> Result<Vec<String>, ApiError> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| ApiError::bad(format!("\"{what}\" must be a list of strings")))
            })
            .collect(),
        _ => Err(ApiError::bad(format!(
            "the body needs \"{what}\": a list of strings"
        ))),
    }
}

async fn default_fields(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let c = category(&cat)?;
    let slug = slug_param(&slug)?.to_string();
    let b = json_object(&body)?;
    let fields = string_list(b.get("fields"), "fields")?;
    let o = exec(
        &s,
        Command::SaveDefaultFields {
            category: c,
            slug: slug.clone(),
            fields,
        },
    )
    .await?;
    committed(&s, c, &slug, &o, StatusCode::OK)
}

async fn upload_cover(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    req: axum::extract::Request,
) -> ApiResult {
    let c = category(&cat)?;
    let slug = slug_param(&slug)?.to_string();
    if s.handle.library().get(c, &slug).is_none() {
        return Err(
            Refusal::NotFound(format!("no {} with slug '{slug}'", c.desc().singular)).into(),
        );
    }
    let (parts, body) = req.into_parts();
    let limit = uploads::MAX_IMAGE_BYTES + 64 * 1024;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the upload is larger than {} bytes",
                uploads::MAX_IMAGE_BYTES
            ),
        });
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the upload is larger than {} bytes",
                uploads::MAX_IMAGE_BYTES
            ),
        })?;
    let is_multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let image = if is_multipart {
        let req = axum::extract::Request::from_parts(parts, Body::from(bytes));
        let mut mp = Multipart::from_request(req, &s)
            .await
            .map_err(|e| ApiError::bad(format!("bad multipart body: {e}")))?;
        let mut found = None;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad(format!("bad multipart body: {e}")))?
        {
            if matches!(field.name(), Some("image" | "file")) {
                found = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|e| ApiError::bad(format!("bad multipart body: {e}")))?,
                );
                break;
            }
        }
        found.ok_or_else(|| ApiError::bad("the form has no 'image' or 'file' field"))?
    } else {
        bytes
    };
    let uploads_root = s.config.uploads.clone();
    let slug2 = slug.clone();
    let path =
        tokio::task::spawn_blocking(move || uploads::save_cover(&uploads_root, c, &slug2, &image))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::bad)?;
    let o = exec(
        &s,
        Command::SetCover {
            category: c,
            slug: slug.clone(),
            path,
        },
    )
    .await?;
    committed(&s, c, &slug, &o, StatusCode::OK)
}

async fn clear_covers(State(s): State<AppState>, Path(cat): Path<String>) -> ApiResult {
    let c = category(&cat)?;
    let o = exec(&s, Command::ClearCovers { category: c }).await?;
    Ok(Json(json!({"cleared": c.key(), "events": o.events.len()})).into_response())
}

// ---- sync ------------------------------------------------------------------------------

async fn rescan(s: &AppState, cats: Vec<Category>) -> ApiResult {
    let o = s
        .handle
        .run(Origin::Web, Request::Rescan(cats.clone()))
        .await?;
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for e in &o.events {
        *kinds.entry(e.event().kind()).or_default() += 1;
    }
    let failures = failures_json(&s.handle.library(), &cats);
    Ok(
        Json(json!({"events": o.events.len(), "kinds": kinds, "failures": failures}))
            .into_response(),
    )
}

async fn rescan_all(State(s): State<AppState>) -> ApiResult {
    s.handle.run(Origin::Web, Request::SyncWorkflow).await?;
    rescan(&s, Category::ALL.to_vec()).await
}

async fn rescan_category(State(s): State<AppState>, Path(cat): Path<String>) -> ApiResult {
    let c = category(&cat)?;
    rescan(&s, vec![c]).await
}

fn failures_json(lib: &Library, cats: &[Category]) -> Vec<Value> {
    cats.iter()
        .flat_map(|c| {
            lib.shelf(*c).failures.iter().map(|(file, f)| {
                json!({"category": c.key(), "file": format!("data/{}/{file}", c.desc().dir),
                       "error": f.error, "seq": f.seq})
            })
        })
        .collect()
}

async fn failures(State(s): State<AppState>) -> Json<Value> {
    let lib = s.handle.library();
    Json(json!({
        "failures": failures_json(&lib, &Category::ALL),
        "workflow": lib.workflow_failure.as_ref().map(|f| json!({
            "file": s.config.workflow.display().to_string(), "error": f.error, "seq": f.seq
        })),
    }))
}

/// The workflow template in use: its file, version and text, and its file's last refusal.
async fn workflow(State(s): State<AppState>) -> ApiResult {
    let lib = s.handle.library();
    let Some(w) = &lib.workflow else {
        return Err(ApiError::not_found("no workflow template has been read"));
    };
    Ok(Json(json!({
        "file": s.config.workflow.display().to_string(),
        "version": w.version,
        "template": *w.value(),
        "failure": lib.workflow_failure.as_ref().map(|f| json!({"error": f.error, "seq": f.seq})),
    }))
    .into_response())
}

// ---- models ----------------------------------------------------------------------------

async fn loras(State(s): State<AppState>, Path(cat): Path<String>) -> ApiResult {
    let c = category(&cat)?;
    let Some(root) = s.config.loras.clone() else {
        return Ok(Json(json!({"loras": [], "root": null})).into_response());
    };
    let list = tokio::task::spawn_blocking(move || models::list_loras(&root, c))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"loras": list, "folder": c.desc().lora_dir})).into_response())
}

async fn checkpoint_files(State(s): State<AppState>) -> ApiResult {
    let Some(root) = s.config.checkpoints.clone() else {
        return Ok(Json(json!({"checkpoints": [], "root": null})).into_response());
    };
    let list = tokio::task::spawn_blocking(move || models::list_checkpoints(&root))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"checkpoints": list})).into_response())
}

// ---- preferences -----------------------------------------------------------------------

fn prefs_json(lib: &Library, scope: &str) -> Value {
    let map: Map<String, Value> = lib
        .preferences
        .get(scope)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap_or(Value::Null)))
                .collect()
        })
        .unwrap_or_default();
    Value::Object(map)
}

async fn put_prefs(s: &AppState, scope: String, body: &[u8]) -> ApiResult {
    let b = json_object(body)?;
    exec(
        s,
        Command::SetPreferences {
            scope: scope.clone(),
            values: b.into_iter().collect(),
        },
    )
    .await?;
    Ok(Json(prefs_json(&s.handle.library(), &scope)).into_response())
}

fn entry_scope(s: &AppState, cat: &str, slug: &str) -> Result<String, ApiError> {
    let c = category(cat)?;
    let slug = slug_param(slug)?;
    one(&s.handle.library(), c, slug)?;
    Ok(format!("{}/{slug}", c.key()))
}

async fn get_entry_prefs(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    Query(q): Q,
) -> ApiResult {
    if let Some(lib) = library_at(&s, &q).await? {
        let c = category(&cat)?;
        let slug = slug_param(&slug)?;
        one(&lib, c, slug)?;
        return Ok(Json(prefs_json(&lib, &format!("{}/{slug}", c.key()))).into_response());
    }
    let scope = entry_scope(&s, &cat, &slug)?;
    Ok(Json(prefs_json(&s.handle.library(), &scope)).into_response())
}

async fn put_entry_prefs(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let scope = entry_scope(&s, &cat, &slug)?;
    put_prefs(&s, scope, &body).await
}

fn page_scope(page: &str) -> Result<String, ApiError> {
    match page {
        "generator" | "global" => Ok(page.to_string()),
        _ => Err(ApiError::not_found(format!(
            "no page '{page}' (generator, global, or use /api/library/{{category}}/{{slug}}/preferences)"
        ))),
    }
}

async fn get_page_prefs(
    State(s): State<AppState>,
    Path(page): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let scope = page_scope(&page)?;
    if let Some(lib) = library_at(&s, &q).await? {
        return Ok(Json(prefs_json(&lib, &scope)).into_response());
    }
    Ok(Json(prefs_json(&s.handle.library(), &scope)).into_response())
}

async fn put_page_prefs(
    State(s): State<AppState>,
    Path(page): Path<String>,
    body: Bytes,
) -> ApiResult {
    let scope = page_scope(&page)?;
    put_prefs(&s, scope, &body).await
}

// ---- settings --------------------------------------------------------------------------

fn env_override(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The settings as `GET /api/settings` shows them (the key only as `llm_key_set`).
pub fn settings_json(s: &AppState) -> Value {
    settings_json_of(s, &s.handle.library())
}

fn settings_json_of(s: &AppState, lib: &Library) -> Value {
    let mut m: Map<String, Value> = serde_json::from_str(&lib.settings).unwrap_or_default();
    let mut overridden = Vec::new();
    for (env, key) in [("GAZE_LLM_URL", "llm_url"), ("GAZE_LLM_MODEL", "llm_model")] {
        if let Some(v) = env_override(env) {
            m.insert(key.into(), Value::String(v));
            overridden.push(key);
        }
    }
    let key_set = env_override("GAZE_LLM_KEY").is_some() && {
        overridden.push("llm_key");
        true
    } || settings::read_key(&settings::secret_path(&s.config.ledger)).is_some();
    m.insert("llm_key_set".into(), Value::Bool(key_set));
    m.insert("overridden_by_env".into(), json!(overridden));
    m.insert("default_checkpoint".into(), json!(lib.default_checkpoint));
    // The backends of the command line and environment: always there, not editable here.
    m.insert("comfy_from_flags".into(), json!(s.config.comfy));
    Value::Object(m)
}

/// `POST /api/settings/comfy/test` with `{"url"}`: what a ComfyUI at that URL says it is.
async fn test_backend(body: Bytes) -> ApiResult {
    let b = json_object(&body)?;
    let url = b
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("the body needs \"url\": a ComfyUI base URL"))?;
    let url = settings::backend_url(url).map_err(ApiError::bad)?;
    Ok(Json(crate::jobs::reactor::probe(&url).await).into_response())
}

async fn get_settings(State(s): State<AppState>, Query(q): Q) -> ApiResult {
    match library_at(&s, &q).await? {
        Some(lib) => Ok(Json(settings_json_of(&s, &lib)).into_response()),
        None => Ok(Json(settings_json(&s)).into_response()),
    }
}

async fn put_settings(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let patch = json_object(&body)?;
    Ok(Json(apply_settings(&s, &patch).await?).into_response())
}

/// Applies a partial settings change (the LLM key to its file, the rest as an event) and
/// returns the settings as they are now.
pub async fn apply_settings(s: &AppState, patch: &Map<String, Value>) -> Result<Value, ApiError> {
    let current = s.handle.library().settings.clone();
    let (merged, key) = settings::merge(&current, patch).map_err(ApiError::bad)?;
    if let Some(k) = &key {
        let path = settings::secret_path(&s.config.ledger);
        let k = k.clone();
        tokio::task::spawn_blocking(move || settings::write_key(&path, k.as_deref()))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    }
    exec(
        s,
        Command::ChangeSettings {
            settings: merged,
            llm_key_changed: key.is_some(),
        },
    )
    .await?;
    Ok(settings_json(s))
}

async fn set_default_checkpoint(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let b = json_object(&body)?;
    let path = match b.get("checkpoint_path") {
        Some(Value::String(p)) => Some(p.clone()),
        Some(Value::Null) => None,
        _ => {
            return Err(ApiError::bad(
                "the body needs \"checkpoint_path\": a checkpoint's path, or null",
            ));
        }
    };
    exec(&s, Command::SetDefaultCheckpoint { path }).await?;
    Ok(Json(json!({"default_checkpoint": s.handle.library().default_checkpoint})).into_response())
}

// ---- generation ------------------------------------------------------------------------

/// Reads a generation request body and resolves it against the current library.
pub fn resolve_body(
    s: &AppState,
    body: &Map<String, Value>,
) -> Result<(GenRequest, request::Resolved), ApiError> {
    let req = GenRequest::from_json(body).map_err(ApiError::bad)?;
    let resolved = request::resolve(
        &s.handle.library(),
        &req,
        crate::handle::random_seed(),
        &request::Backend::default(),
    )?;
    Ok((req, resolved))
}

async fn preview(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let (_, resolved) = resolve_body(&s, &json_object(&body)?)?;
    Ok(Json(resolved.preview()).into_response())
}

// ---- ledger ----------------------------------------------------------------------------

async fn health(State(s): State<AppState>) -> Json<Value> {
    let lib = s.handle.library();
    let failures: usize = Category::ALL
        .iter()
        .map(|c| lib.shelf(*c).failures.len())
        .sum();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "seq": lib.seq,
        "documents": lib.document_count(),
        "sync_failures": failures,
        "workflow_version": lib.workflow.as_ref().map(|w| w.version),
    }))
}
