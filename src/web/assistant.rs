//! The assistant over HTTP: drafting (`/api/assistant/draft`), reading and accepting drafts,
//! bulk runs (`/api/assistant/bulk_create`, the original's `/<category>/bulk_create`, status,
//! cancel, a live stream), tag autocomplete (`/api/tags/autocomplete`), and the MCP servers
//! over streamable HTTP (`/mcp/tags`, `/mcp/library`).

use super::api::{category, json_object};
use super::{ApiError, AppState};
use crate::assistant::bulk;
use crate::assistant::draft::{self, DraftOutcome, MAX_REQUEST_CHARS};
use crate::assistant::llm::LlmError;
use crate::assistant::projection::{Batch, ItemOutcome};
use crate::assistant::tag_server::MAX_LIMIT;
use crate::assistant::tags::TagKind;
use crate::handle::Request;
use crate::library::category::{Category, DESCRIPTORS};
use crate::library::command::Command;
use crate::store::event::{Draft, Event, Origin, Source, Stored};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

type ApiResult = Result<Response, ApiError>;

pub fn routes(state: &AppState) -> Router<AppState> {
    let mut r = Router::new()
        .route("/api/assistant/draft", post(draft_route))
        .route("/api/assistant/drafts", get(list_drafts))
        .route("/api/assistant/drafts/{id}", get(get_draft))
        .route("/api/assistant/drafts/{id}/accept", post(accept_route))
        .route("/api/assistant/bulk_create", post(bulk_create_api))
        .route("/api/assistant/bulk", get(list_bulk))
        .route("/api/assistant/bulk/{batch}", get(get_bulk))
        .route("/api/assistant/bulk/{batch}/cancel", post(cancel_bulk))
        .route("/api/assistant/stream", get(stream))
        .route("/api/tags/autocomplete", get(autocomplete));
    // The original's per-category route, for every category with a LoRA folder.
    for d in DESCRIPTORS.iter().filter(|d| d.lora_dir.is_some()) {
        let c = d.category;
        r = r.route(
            &format!("/{}/bulk_create", d.key),
            post(move |s: State<AppState>, h: HeaderMap| page_bulk_create(s, h, c)),
        );
    }
    if let Some(svc) = &state.assistant {
        r = r
            .nest_service("/mcp/tags", svc.tags_http())
            .nest_service("/mcp/library", svc.library_http(&state.handle));
    }
    r
}

// ---- errors ------------------------------------------------------------------------------

/// An LLM failure as a response: 400 when the assistant is not set up, otherwise 424 Failed
/// Dependency (the request was fine; the LLM it depends on failed), with `kind` saying how.
pub fn llm_error(e: &LlmError) -> Response {
    let status = match e {
        LlmError::NotConfigured(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::FAILED_DEPENDENCY,
    };
    (
        status,
        Json(json!({"error": e.to_string(), "kind": e.kind()})),
    )
        .into_response()
}

fn service(s: &AppState) -> Result<&crate::assistant::Service, ApiError> {
    s.assistant.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "the assistant is not running in this server".into(),
    })
}

fn id_text(id: u128) -> String {
    ulid::Ulid::from(id).to_string()
}

fn parse_id(s: &str, what: &str) -> Result<u128, ApiError> {
    ulid::Ulid::from_string(s)
        .map(u128::from)
        .map_err(|_| ApiError::not_found(format!("'{s}' is not a {what} id")))
}

// ---- drafting ----------------------------------------------------------------------------

/// A draft request: the category (plural key or singular) and the description.
pub fn draft_input(m: &Map<String, Value>) -> Result<(Category, String), ApiError> {
    let key = m
        .get("category")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("the body needs \"category\" (e.g. \"outfits\")"))?;
    let c = DESCRIPTORS
        .iter()
        .find(|d| d.singular == key)
        .map(|d| d.category)
        .map_or_else(|| category(key), Ok)?;
    let request = m
        .get("request")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::bad("the body needs \"request\": a description of the entry to draft")
        })?;
    if request.chars().count() > MAX_REQUEST_CHARS {
        return Err(ApiError::bad(format!(
            "the request is longer than {MAX_REQUEST_CHARS} characters"
        )));
    }
    Ok((c, request.to_string()))
}

/// Drafts and records a draft (nothing is created). The page and the API share it.
pub async fn make_draft(
    s: &AppState,
    c: Category,
    request: &str,
) -> Result<(u128, DraftOutcome), Response> {
    let svc = service(s).map_err(IntoResponse::into_response)?;
    let (settings, context) = {
        let lib = s.handle.library();
        (lib.settings.clone(), draft::library_context(&lib, c))
    };
    let outcome = svc
        .drafter
        .draft(&settings, c, request, &context, &|_| {})
        .await
        .map_err(|e| llm_error(&e))?;
    let id = u128::from(ulid::Ulid::generate());
    let cmd = Command::RecordDraft {
        draft: id,
        made: Box::new(Draft {
            category: c,
            model: outcome.model.clone(),
            request: request.to_string(),
            tool_calls: serde_json::to_string(&outcome.tool_calls).unwrap_or_else(|_| "[]".into()),
            document: Value::Object(outcome.document.clone()).to_string(),
            batch: None,
            lora: None,
        }),
        create: false,
    };
    s.handle
        .run(Origin::Assistant, Request::Command(cmd))
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok((id, outcome))
}

async fn draft_route(State(s): State<AppState>, body: Bytes) -> Response {
    let (c, request) = match json_object(&body).and_then(|m| draft_input(&m)) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    match make_draft(&s, c, &request).await {
        Err(r) => r,
        Ok((id, o)) => Json(json!({
            "draft_id": id_text(id),
            "category": c.key(),
            "document": o.document,
            "tool_calls": o.tool_calls,
            "model": o.model,
            "requests": o.requests,
            "retries": o.retries,
            "warnings": o.warnings,
        }))
        .into_response(),
    }
}

/// A recorded draft, read back from its event.
pub struct StoredDraft {
    pub id: u128,
    pub seq: u64,
    pub at: u64,
    pub made: Draft,
    /// The entry it became, if accepted.
    pub entry: Option<String>,
}

impl StoredDraft {
    pub fn document(&self) -> Map<String, Value> {
        serde_json::from_str(&self.made.document).unwrap_or_default()
    }

    pub fn tool_calls(&self) -> Value {
        serde_json::from_str(&self.made.tool_calls).unwrap_or_else(|_| json!([]))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "draft_id": id_text(self.id),
            "seq": self.seq,
            "at": self.at,
            "category": self.made.category.key(),
            "model": self.made.model,
            "request": self.made.request,
            "document": self.document(),
            "tool_calls": self.tool_calls(),
            "batch": self.made.batch.map(id_text),
            "lora": self.made.lora,
            "entry": self.entry,
        })
    }
}

pub async fn load_draft(s: &AppState, id: u128) -> Result<StoredDraft, ApiError> {
    let (seq, entry) = s
        .handle
        .library()
        .assistant
        .drafts
        .get(&id)
        .map(|d| (d.seq, d.entry.clone()))
        .ok_or_else(|| ApiError::not_found(format!("no draft {}", id_text(id))))?;
    let h = s.handle.clone();
    let found: Vec<Stored> = tokio::task::spawn_blocking(move || h.ledger().read_after(seq - 1, 1))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    match found.first() {
        Some(st) => match st.event() {
            Event::DraftMade { draft, made } if *draft == id => Ok(StoredDraft {
                id,
                seq,
                at: st.envelope.at,
                made: made.clone(),
                entry,
            }),
            _ => Err(ApiError::internal(format!(
                "seq {seq} is not draft {}",
                id_text(id)
            ))),
        },
        None => Err(ApiError::internal(format!("seq {seq} is missing"))),
    }
}

async fn get_draft(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "draft")?;
    Ok(Json(load_draft(&s, id).await?.to_json()).into_response())
}

async fn list_drafts(State(s): State<AppState>) -> Json<Value> {
    let lib = s.handle.library();
    let mut drafts: Vec<(&u128, &crate::assistant::projection::DraftInfo)> =
        lib.assistant.drafts.iter().collect();
    drafts.sort_by(|a, b| b.0.cmp(a.0));
    let list: Vec<Value> = drafts
        .into_iter()
        .take(100)
        .map(|(id, d)| {
            json!({"draft_id": id_text(*id), "category": d.category.key(), "at": d.at,
                   "entry": d.entry, "batch": d.batch.map(id_text), "lora": d.lora})
        })
        .collect();
    Json(json!({"drafts": list}))
}

/// Accepts a draft, with `doc` replacing the drafted document when given. Returns the slug.
pub async fn accept(
    s: &AppState,
    id: u128,
    doc: Option<Map<String, Value>>,
) -> Result<(String, crate::handle::Outcome), ApiError> {
    let d = load_draft(s, id).await?;
    let c = d.made.category;
    let doc = doc.unwrap_or_else(|| d.document());
    let o = s
        .handle
        .run(
            Origin::Web,
            Request::Command(Command::Create {
                category: c,
                doc,
                source: Source::Assistant {
                    draft_id: id_text(id),
                },
            }),
        )
        .await?;
    let slug = o
        .events
        .iter()
        .find_map(|e| e.event().subject().map(|(_, s)| s.to_string()))
        .ok_or_else(|| ApiError::internal("accept made no entry"))?;
    Ok((slug, o))
}

async fn accept_route(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let id = parse_id(&id, "draft")?;
    let doc = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let m = json_object(&body)?;
        match m.get("document") {
            Some(Value::Object(d)) if m.len() == 1 => Some(d.clone()),
            Some(_) if m.len() == 1 => {
                return Err(ApiError::bad("\"document\" must be a JSON object"));
            }
            _ => Some(m),
        }
    };
    let edited = doc.is_some();
    let (slug, o) = accept(&s, id, doc).await?;
    let c = s
        .handle
        .library()
        .assistant
        .drafts
        .get(&id)
        .map(|d| d.category)
        .ok_or_else(|| ApiError::internal("the draft vanished"))?;
    let lib = s.handle.library();
    let e = lib
        .get(c, &slug)
        .ok_or_else(|| ApiError::internal("the entry vanished"))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "draft_id": id_text(id), "category": c.key(), "slug": e.slug, "id": e.id,
            "name": e.name, "file": e.file, "version": e.version,
            "data": e.data().map_or(Value::Null, Value::Object),
            "edited": edited, "warnings": o.warnings,
        })),
    )
        .into_response())
}

// ---- bulk runs ---------------------------------------------------------------------------

fn batch_json(id: u128, b: &Batch) -> Value {
    let items: Vec<Value> = b
        .loras
        .iter()
        .map(|l| match b.outcomes.get(l) {
            Some(ItemOutcome::Created { draft, slug }) => json!({"lora": l, "status": "created",
                "slug": slug, "draft_id": id_text(*draft)}),
            Some(ItemOutcome::Failed { error }) => {
                json!({"lora": l, "status": "failed", "error": error})
            }
            None if b.cancelled => json!({"lora": l, "status": "cancelled"}),
            None => json!({"lora": l, "status": "pending"}),
        })
        .collect();
    let count = |st: &str| items.iter().filter(|i| i["status"] == st).count();
    json!({
        "batch": id_text(id), "category": b.category.key(), "status": b.status(),
        "total": b.loras.len(), "created": count("created"), "failed": count("failed"),
        "pending": count("pending"), "items": items,
        "started_at": b.started_at, "updated_at": b.updated_at,
    })
}

/// Starts a bulk run over the category's unused LoRA files. Returns the run, or a 400 saying
/// why there is nothing to do.
pub async fn start_bulk(s: &AppState, c: Category) -> Result<(u128, Value), ApiError> {
    service(s)?;
    if c.desc().lora_dir.is_none() {
        return Err(ApiError::bad(format!("{} have no LoRA folder", c.key())));
    }
    let root = s
        .config
        .loras
        .clone()
        .ok_or_else(|| ApiError::bad("no LoRA root is configured (gaze serve --loras DIR)"))?;
    let lib_snapshot = s.handle.clone();
    let loras = tokio::task::spawn_blocking(move || {
        let lib = lib_snapshot.library();
        bulk::unused_loras(&lib, &root, c)
    })
    .await
    .map_err(ApiError::internal)?;
    if loras.is_empty() {
        return Err(ApiError::bad(format!(
            "every LoRA file in {} already has an entry (or is being drafted)",
            c.desc().lora_dir.unwrap_or_default()
        )));
    }
    let batch = u128::from(ulid::Ulid::generate());
    s.handle
        .run(
            Origin::Web,
            Request::Command(Command::StartBulk {
                batch,
                category: c,
                loras,
            }),
        )
        .await?;
    let lib = s.handle.library();
    let b = lib
        .assistant
        .batches
        .get(&batch)
        .ok_or_else(|| ApiError::internal("the run was not recorded"))?;
    Ok((batch, batch_json(batch, b)))
}

async fn bulk_create_api(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let m = json_object(&body)?;
    let key = m
        .get("category")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("the body needs \"category\" (e.g. \"outfits\")"))?;
    let c = category(key)?;
    let (_, v) = start_bulk(&s, c).await?;
    Ok((StatusCode::ACCEPTED, Json(v)).into_response())
}

/// The original's `POST /<category>/bulk_create`: JSON for scripts, a redirect to the run's
/// page for forms.
async fn page_bulk_create(State(s): State<AppState>, headers: HeaderMap, c: Category) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
        || headers.get("x-requested-with").is_some();
    match start_bulk(&s, c).await {
        Ok((_, v)) if wants_json => (StatusCode::ACCEPTED, Json(v)).into_response(),
        Ok((batch, _)) => {
            Redirect::to(&format!("/assistant/bulk/{}", id_text(batch))).into_response()
        }
        Err(e) if wants_json => e.into_response(),
        Err(e) => super::pages::assistant::message_page(&s, e.status, "Bulk create", &e.message),
    }
}

async fn list_bulk(State(s): State<AppState>) -> Json<Value> {
    let lib = s.handle.library();
    let runs: Vec<Value> = lib
        .assistant
        .batches
        .iter()
        .rev()
        .take(50)
        .map(|(id, b)| batch_json(*id, b))
        .collect();
    Json(json!({"runs": runs, "current": s.assistant.as_ref().and_then(|a| a.progress.current())}))
}

pub fn bulk_status(s: &AppState, id: u128) -> Result<Value, ApiError> {
    let lib = s.handle.library();
    let b = lib
        .assistant
        .batches
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no bulk run {}", id_text(id))))?;
    let mut v = batch_json(id, b);
    let current = s
        .assistant
        .as_ref()
        .and_then(|a| a.progress.current())
        .filter(|c| c.batch == id_text(id));
    v["current"] = json!(current);
    Ok(v)
}

async fn get_bulk(State(s): State<AppState>, Path(batch): Path<String>) -> ApiResult {
    let id = parse_id(&batch, "bulk run")?;
    Ok(Json(bulk_status(&s, id)?).into_response())
}

async fn cancel_bulk(State(s): State<AppState>, Path(batch): Path<String>) -> ApiResult {
    let id = parse_id(&batch, "bulk run")?;
    s.handle
        .run(
            Origin::Web,
            Request::Command(Command::CancelBulk { batch: id }),
        )
        .await?;
    Ok(Json(bulk_status(&s, id)?).into_response())
}

/// The bulk run a committed event changes, if any.
fn batch_of(s: &AppState, e: &Event) -> Option<u128> {
    match e {
        Event::BulkStarted { batch, .. }
        | Event::BulkItemFailed { batch, .. }
        | Event::BulkCancelled { batch } => Some(*batch),
        Event::DraftMade { made, .. } => made.batch,
        Event::DocumentCreated {
            source: Source::Assistant { draft_id },
            ..
        } => {
            let id = ulid::Ulid::from_string(draft_id).ok().map(u128::from)?;
            s.handle.library().assistant.drafts.get(&id)?.batch
        }
        _ => None,
    }
}

/// Server-sent events: `bulk` (a run's status after each change) and `progress` (what the
/// worker is doing now).
async fn stream(State(s): State<AppState>) -> impl IntoResponse {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SseEvent>();
    let mut events = s.handle.subscribe();
    let mut progress = s.assistant.as_ref().map(|a| a.progress.subscribe());
    let state = s.clone();
    tokio::spawn(async move {
        loop {
            let sent = tokio::select! {
                r = events.recv() => match r {
                    Ok(batch) => {
                        let mut ok = true;
                        let mut seen = Vec::new();
                        for e in batch.iter() {
                            if let Some(b) = batch_of(&state, e.event()).filter(|b| !seen.contains(b)) {
                                seen.push(b);
                                if let Ok(v) = bulk_status(&state, b) {
                                    ok &= tx.send(SseEvent::default().event("bulk").data(v.to_string())).is_ok();
                                }
                            }
                        }
                        ok
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(_) => false,
                },
                r = async { match progress.as_mut() { Some(p) => p.recv().await.ok(), None => std::future::pending().await } } => match r {
                    Some(c) => tx.send(SseEvent::default().event("progress").data(json!(c).to_string())).is_ok(),
                    None => true,
                },
                _ = tx.closed() => false,
            };
            if !sent {
                break;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|e| (Ok::<_, std::convert::Infallible>(e), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

// ---- tags --------------------------------------------------------------------------------

/// `GET /api/tags/autocomplete?q=&limit=&category=`: completions of the tag being typed.
async fn autocomplete(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let svc = service(&s)?;
    let text = q.get("q").map(String::as_str).unwrap_or_default();
    if text.chars().count() > 200 {
        return Err(ApiError::bad("?q= is longer than 200 characters"));
    }
    let limit = match q.get("limit") {
        None => 10,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad(format!("?limit={l} is not a whole number")))?
            .clamp(1, MAX_LIMIT),
    };
    let kind =
        TagKind::parse_filter(q.get("category").map(String::as_str)).map_err(ApiError::bad)?;
    let tags = if text.trim().is_empty() {
        Vec::new()
    } else {
        svc.index.search(text, limit, kind)
    };
    Ok((
        [(header::CACHE_CONTROL, "private, max-age=300")],
        Json(json!({"q": text, "tags": tags})),
    )
        .into_response())
}
