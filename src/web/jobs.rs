//! Generation and the queue over HTTP: generate (from any page, the generator, presets), batch
//! "missing covers", strengths sweeps, endless generation, job status, cancel, retry, pause,
//! backend health, and a server-sent-event stream of live updates.

use super::api::{category, json_object, resolve_body};
use super::{ApiError, AppState};
use crate::handle::random_seed;
use crate::handle::{NewJob, Request};
use crate::jobs::projection::Job;
use crate::jobs::request::{self, GenRequest};
use crate::library::category::Category;
use crate::library::command::Command;
use crate::store::event::{Event, JobSpec, Origin};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type ApiResult = Result<Response, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/generate", post(generate_route))
        .route("/api/generate_missing", post(generate_missing))
        .route("/api/strengths", post(strengths))
        .route("/api/endless", get(endless_list).post(endless_start))
        .route("/api/endless/{id}", axum::routing::delete(endless_stop))
        .route("/api/queue", get(queue))
        .route("/api/queue/pause", post(pause))
        .route("/api/queue/resume", post(resume))
        .route("/api/queue/{job}/status", get(status))
        .route("/api/jobs", get(list_jobs))
        .route("/api/jobs/{job}", get(get_job))
        .route("/api/jobs/{job}/recipe", get(recipe))
        .route("/api/jobs/{job}/cancel", post(cancel))
        .route("/api/jobs/{job}/retry", post(retry))
        .route("/api/status/comfyui", get(comfy_status))
        .route("/api/stream", get(stream))
}

fn new_id() -> u128 {
    u128::from(ulid::Ulid::generate())
}

fn id_text(id: u128) -> String {
    ulid::Ulid::from(id).to_string()
}

pub fn parse_id(s: &str) -> Result<u128, ApiError> {
    ulid::Ulid::from_string(s)
        .map(u128::from)
        .map_err(|_| ApiError::not_found(format!("'{s}' is not a job id")))
}

fn job_json(s: &AppState, j: &Job) -> Value {
    let waiting = s.live.as_ref().and_then(|l| l.waiting(j.id));
    let progress = s
        .live
        .as_ref()
        .and_then(|l| l.progress(j.id))
        .map(|(node, value, max)| json!({"node": node, "value": value, "max": max}));
    json!({
        "job_id": id_text(j.id),
        "status": j.state.status(),
        "state": j.state,
        "label": j.info.label,
        "target": j.info.target.as_ref().map(|(c, s)| format!("{}/{s}", c.key())),
        "set_cover": j.info.set_cover,
        "attempts": j.attempts,
        "backend": j.backend,
        "prompt_id": j.prompt_id,
        "vanilla": j.vanilla,
        "images": j.images.iter().map(|p| format!("/static/{p}")).collect::<Vec<_>>(),
        "error": j.error,
        "error_node": j.error_node,
        "failures": j.failures,
        "waiting": if j.state == crate::jobs::projection::JobState::Queued { waiting } else { None },
        "progress": progress,
        "requested_at": j.requested_at,
        "updated_at": j.updated_at,
        "batch": j.info.batch.map(id_text),
        "retry_of": j.info.retry_of.map(id_text),
        "endless": j.info.endless.map(id_text),
    })
}

/// Any job as JSON: unfinished ones from memory, finished ones read back from the ledger.
fn find(s: &AppState, id: &str) -> Result<Value, ApiError> {
    let id = parse_id(id)?;
    let j = s
        .handle
        .job(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no job {}", id_text(id))))?;
    Ok(job_json(s, &j))
}

/// Queues jobs; answers once they are durable.
async fn enqueue(s: &AppState, jobs: Vec<NewJob>) -> Result<(), ApiError> {
    s.handle.run(Origin::Web, Request::Enqueue(jobs)).await?;
    Ok(())
}

/// A new job for a resolved request, its recipe also as a value (so the writer stores it
/// compactly without parsing it back).
fn new_job(req: &GenRequest, resolved: request::Resolved, body: &Map<String, Value>) -> NewJob {
    NewJob {
        id: new_id(),
        spec: request::job_spec(req, &resolved, body),
        recipe: Some(Arc::new(resolved.into_recipe())),
    }
}

/// Resolves a request body into a new job.
fn job_for(s: &AppState, body: &Map<String, Value>) -> Result<NewJob, ApiError> {
    let (req, resolved) = resolve_body(s, body)?;
    Ok(new_job(&req, resolved, body))
}

async fn generate_route(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let m = json_object(&body)?;
    let job = job_for(&s, &m)?;
    let id = job.id;
    enqueue(&s, vec![job]).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(json!({"job_id": id_text(id)})),
    )
        .into_response())
}

/// The original's per-page route `POST /<singular>/<slug>/generate` with a JSON body (the
/// pages module routes it, and also takes forms there).
pub async fn page_generate(
    s: &AppState,
    c: Category,
    slug: &str,
    body: &[u8],
) -> Result<String, ApiError> {
    let mut m = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        json_object(body)?
    };
    m.insert("category".into(), c.key().into());
    m.insert("slug".into(), slug.into());
    queue_request(s, &m).await
}

/// Resolves a request and queues it; returns the job id.
pub async fn queue_request(s: &AppState, m: &Map<String, Value>) -> Result<String, ApiError> {
    let job = job_for(s, m)?;
    let id = job.id;
    enqueue(s, vec![job]).await?;
    Ok(id_text(id))
}

/// Starts endless generation of a request; returns the session id.
pub async fn start_endless(s: &AppState, m: Map<String, Value>) -> Result<String, ApiError> {
    // Refuse a request that cannot be resolved now rather than loop on errors.
    resolve_body(s, &m)?;
    let endless = new_id();
    s.handle
        .run(
            Origin::Web,
            Request::Command(Command::StartEndless {
                endless,
                request: Value::Object(m).to_string(),
            }),
        )
        .await?;
    Ok(id_text(endless))
}

/// One job per entry of a category that has no cover; each result becomes the cover.
async fn generate_missing(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let m = json_object(&body)?;
    let c = category(
        m.get("category")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )?;
    let (batch, jobs) = missing_covers(&s, c).await?;
    let ids: Vec<String> = jobs.iter().map(|j| j.0.clone()).collect();
    Ok(Json(json!({"batch": batch, "job_ids": ids})).into_response())
}

/// Queues one cover job per entry of `c` without a cover, sorted by display name (as the
/// original's batches are). Returns the batch id and (job id, slug, name) per job.
pub async fn missing_covers(
    s: &AppState,
    c: Category,
) -> Result<(String, Vec<(String, String, String)>), ApiError> {
    let batch = new_id();
    let mut jobs = Vec::new();
    let mut listed = Vec::new();
    {
        let lib = s.handle.library();
        let mut missing: Vec<_> = lib
            .shelf(c)
            .docs
            .values()
            .filter(|e| e.cover.is_none())
            .collect();
        missing.sort_by_key(|e| e.name.to_lowercase());
        for e in missing {
            let mut req = Map::new();
            req.insert("category".into(), c.key().into());
            req.insert("slug".into(), e.slug.clone().into());
            req.insert("action".into(), "replace".into());
            // Pages of other categories show them on a random character, as the original does.
            if c.desc().character_selector {
                req.insert("character".into(), crate::engine::RANDOM_SENTINEL.into());
            }
            let r = GenRequest::from_json(&req).map_err(ApiError::bad)?;
            let resolved = request::resolve(&lib, &r, random_seed(), &request::Backend::default())?;
            let mut job = new_job(&r, resolved, &req);
            job.spec.batch = Some(batch);
            listed.push((id_text(job.id), e.slug.clone(), e.name.clone()));
            jobs.push(job);
        }
    }
    if !jobs.is_empty() {
        enqueue(s, jobs).await?;
    }
    Ok((id_text(batch), listed))
}

/// One job per weight of the target's LoRA (and, with `y`, per weight of another slot's);
/// everything else fixed, the seed included. The sweep is kept as an event with its jobs.
async fn strengths(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let m = json_object(&body)?;
    let (sweep, cells) = start_sweep(&s, m).await?;
    let ids: Vec<String> = cells.iter().map(|c| c.0.clone()).collect();
    let cells: Vec<Value> = cells
        .iter()
        .map(|(id, x, y)| json!({"job_id": id, "x": x, "y": y}))
        .collect();
    Ok(
        Json(json!({"batch": sweep, "sweep": sweep, "job_ids": ids, "cells": cells}))
            .into_response(),
    )
}

/// The LoRA slot a second sweep axis names.
pub fn slot_named(name: &str) -> Option<crate::engine::LoraSlot> {
    use crate::engine::LoraSlot;
    match name {
        "character" => Some(LoraSlot::Character),
        "outfit" => Some(LoraSlot::Outfit),
        "action" => Some(LoraSlot::Action),
        "style" => Some(LoraSlot::Style),
        _ => None,
    }
}

fn slot_name(slot: crate::engine::LoraSlot) -> &'static str {
    use crate::engine::LoraSlot;
    match slot {
        LoraSlot::Character => "character",
        LoraSlot::Outfit => "outfit",
        LoraSlot::Action => "action",
        LoraSlot::Style => "style",
    }
}

/// Starts a strengths sweep from a request body (a generation request plus `min`, `max`,
/// `step` and optionally `y: {slot, min, max, step}`). Returns the sweep id and each cell's
/// (job id, x, y).
#[allow(clippy::type_complexity)]
pub async fn start_sweep(
    s: &AppState,
    mut m: Map<String, Value>,
) -> Result<(String, Vec<(String, f64, Option<f64>)>), ApiError> {
    let num = |v: Option<Value>, k: &str, default: f64| -> Result<f64, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| ApiError::bad(format!("\"{k}\" must be a number"))),
        }
    };
    let x = (
        num(m.remove("min"), "min", 0.0)?,
        num(m.remove("max"), "max", 1.0)?,
        num(m.remove("step"), "step", 0.1)?,
    );
    let y = match m.remove("y") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut a)) => {
            let slot = a
                .remove("slot")
                .and_then(|v| v.as_str().and_then(slot_named))
                .ok_or_else(|| {
                    ApiError::bad("\"y.slot\" must be one of character, outfit, action, style")
                })?;
            Some((
                slot,
                (
                    num(a.remove("min"), "y.min", 0.0)?,
                    num(a.remove("max"), "y.max", 1.0)?,
                    num(a.remove("step"), "y.step", 0.1)?,
                ),
            ))
        }
        Some(_) => {
            return Err(ApiError::bad(
                "\"y\" must be an object {slot, min, max, step}",
            ));
        }
    };
    // One fixed seed for every cell, kept in the sweep's request so it can be run again.
    if m.get("seed").is_none_or(Value::is_null) {
        m.insert("seed".into(), random_seed().into());
    }
    let req = GenRequest::from_json(&m).map_err(ApiError::bad)?;
    let target = req.target.clone().ok_or_else(|| {
        ApiError::bad("a strengths sweep needs a target (\"category\" and \"slug\")")
    })?;
    let sweep = new_id();
    let (jobs, cells, axes) = {
        let lib = s.handle.library();
        let grid = request::resolve_grid(
            &lib,
            &req,
            random_seed(),
            &request::Backend::default(),
            x,
            y,
        )?;
        let source = |slot: crate::engine::LoraSlot| {
            grid.first().and_then(|(_, _, r)| {
                r.generation
                    .report
                    .loras
                    .iter()
                    .find(|l| l.slot == slot)
                    .map(|l| (l.source.clone(), l.name.clone()))
            })
        };
        let axis = |slot: crate::engine::LoraSlot, (min, max, step): (f64, f64, f64)| {
            let (src, name) = source(slot).unwrap_or_default();
            json!({"slot": slot_name(slot), "source": src, "lora": name, "min": min, "max": max, "step": step})
        };
        let x_slot = request::sweep_slot(&req);
        let axes = json!({
            "x": x_slot.map(|sl| axis(sl, x)),
            "y": y.map(|(sl, r)| axis(sl, r)),
        });
        let mut jobs = Vec::new();
        let mut cells = Vec::new();
        for (wx, wy, resolved) in grid {
            let mut spec = request::job_spec(&req, &resolved, &m);
            spec.batch = Some(sweep);
            spec.set_cover = false;
            spec.label = match wy {
                Some(wy) => format!("{} @ {wx} × {wy}", spec.label),
                None => format!("{} @ {wx}", spec.label),
            };
            let id = new_id();
            cells.push(crate::store::event::SweepCell {
                job: id,
                x: wx,
                y: wy,
            });
            jobs.push((id, spec));
        }
        (jobs, cells, axes)
    };
    let listed: Vec<(String, f64, Option<f64>)> =
        cells.iter().map(|c| (id_text(c.job), c.x, c.y)).collect();
    s.handle
        .run(
            Origin::Web,
            Request::Command(Command::StartSweep {
                sweep,
                target,
                request: Value::Object(m).to_string(),
                axes: axes.to_string(),
                cells,
                jobs,
            }),
        )
        .await?;
    Ok((id_text(sweep), listed))
}

/// Any job by id, finished or not. The pages read jobs through here (and `newest_jobs`), so
/// they follow wherever the jobs projection keeps finished jobs: unfinished ones in memory,
/// finished ones read back from their events in the ledger.
pub fn job_of(s: &AppState, id: u128) -> Option<Job> {
    match s.handle.job(id) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!("could not read job {}: {e}", id_text(id));
            None
        }
    }
}

/// The newest `limit` jobs, newest first, with the status word `status` (any with `None`);
/// finished ones read back from the ledger on one snapshot.
pub fn newest_jobs(s: &AppState, status: Option<&str>, limit: usize) -> Vec<Job> {
    match s.handle.newest_jobs(status, limit) {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!("could not read the newest jobs: {e}");
            Vec::new()
        }
    }
}

async fn endless_start(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let m = json_object(&body)?;
    let id = start_endless(&s, m).await?;
    Ok(Json(json!({"endless_id": id})).into_response())
}

async fn endless_stop(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let endless = parse_id(&id)?;
    s.handle
        .run(
            Origin::Web,
            Request::Command(Command::StopEndless { endless }),
        )
        .await?;
    Ok(Json(json!({"stopped": id})).into_response())
}

async fn endless_list(State(s): State<AppState>) -> Json<Value> {
    let lib = s.handle.library();
    let list: Vec<Value> = lib
        .jobs
        .endless
        .iter()
        .map(|(id, r)| {
            json!({"endless_id": id_text(*id), "request": serde_json::from_str::<Value>(r).unwrap_or(Value::Null),
                   "open_jobs": lib.jobs.endless_open(*id)})
        })
        .collect();
    Json(json!({"endless": list}))
}

async fn status(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    let j = find(&s, &job)?;
    let mut out = json!({
        "status": j["status"],
        "job_id": j["job_id"],
        "result": {"images": j["images"]},
        "error": j["error"],
        "waiting": j["waiting"],
        "progress": j["progress"],
        "attempts": j["attempts"],
    });
    if j["state"] == "SetAside" {
        out["set_aside"] = true.into();
    }
    Ok(Json(out).into_response())
}

async fn get_job(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    Ok(Json(find(&s, &job)?).into_response())
}

async fn recipe(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    let id = parse_id(&job)?;
    let spec = job_spec(&s, id).await?;
    let recipe: Value = serde_json::from_str(&spec.recipe).unwrap_or(Value::Null);
    let request: Value = serde_json::from_str(&spec.request).unwrap_or(Value::Null);
    Ok(Json(json!({"job_id": job, "recipe": recipe, "request": request})).into_response())
}

async fn list_jobs(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let limit = match q.get("limit") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad(format!("?limit={v} is not a whole number")))?,
        None => 100,
    }
    .clamp(1, 1000);
    let want = q.get("status").map(String::as_str);
    let jobs: Vec<Value> = s
        .handle
        .newest_jobs(want, limit)
        .map_err(ApiError::internal)?
        .iter()
        .map(|j| job_json(&s, j))
        .collect();
    let lib = s.handle.library();
    Ok(Json(json!({
        "jobs": jobs,
        "paused": lib.jobs.paused,
        "pending": lib.jobs.queued.len(),
        "running": lib.jobs.submitted.len(),
    }))
    .into_response())
}

async fn queue(State(s): State<AppState>) -> Json<Value> {
    let lib = s.handle.library();
    Json(json!({
        "paused": lib.jobs.paused,
        "pending": lib.jobs.queued.iter().map(|id| id_text(*id)).collect::<Vec<_>>(),
        "running": lib.jobs.submitted.iter().map(|id| id_text(*id)).collect::<Vec<_>>(),
    }))
}

async fn pause_to(s: &AppState, paused: bool) -> ApiResult {
    s.handle
        .run(
            Origin::Web,
            Request::Command(Command::PauseQueue { paused }),
        )
        .await?;
    Ok(Json(json!({"paused": paused})).into_response())
}

async fn pause(State(s): State<AppState>) -> ApiResult {
    pause_to(&s, true).await
}

async fn resume(State(s): State<AppState>) -> ApiResult {
    pause_to(&s, false).await
}

async fn cancel(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    let id = parse_id(&job)?;
    s.handle
        .run(
            Origin::Web,
            Request::Command(Command::CancelJob { job: id }),
        )
        .await?;
    Ok(Json(find(&s, &job)?).into_response())
}

/// A job's full spec, read from its request event in the ledger.
async fn job_spec(s: &AppState, id: u128) -> Result<JobSpec, ApiError> {
    if s.handle.library().jobs.state_of(id).is_none() {
        return Err(ApiError::not_found(format!("no job {}", id_text(id))));
    }
    let h = s.handle.clone();
    tokio::task::spawn_blocking(move || h.job_spec(id))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn retry(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    let id = parse_id(&job)?;
    let spec = job_spec(&s, id).await?;
    let new_job = new_id();
    s.handle
        .run(
            Origin::Web,
            Request::Command(Command::RetryJob {
                job: id,
                new_job,
                spec: Box::new(spec),
            }),
        )
        .await?;
    Ok(Json(json!({"job_id": id_text(new_job), "retry_of": job})).into_response())
}

async fn comfy_status(State(s): State<AppState>) -> Json<Value> {
    let backends = s.live.as_ref().map(|l| l.backends()).unwrap_or_default();
    let online = backends.iter().any(|b| b.healthy);
    Json(
        json!({"online": online, "status": if online { "online" } else { "offline" }, "backends": backends}),
    )
}

/// Live updates: job state changes from the ledger and progress from the reactor.
async fn stream(State(s): State<AppState>) -> impl IntoResponse {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SseEvent>();
    let mut events = s.handle.subscribe();
    let mut live = s.live.as_ref().map(|l| l.subscribe());
    let state = s.clone();
    tokio::spawn(async move {
        loop {
            let sent = tokio::select! {
                r = events.recv() => match r {
                    Ok(batch) => {
                        let mut ok = true;
                        for e in batch.iter() {
                            if let Some(delta) = job_delta(&state, e.event()) {
                                ok &= tx.send(SseEvent::default().event("job").data(delta.to_string())).is_ok();
                            }
                        }
                        ok
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(_) => false,
                },
                r = async { match live.as_mut() { Some(l) => l.recv().await.ok(), None => std::future::pending().await } } => match r {
                    Some(ev) => {
                        let kind = match &ev {
                            crate::jobs::reactor::LiveEvent::Progress { .. } => "progress",
                            crate::jobs::reactor::LiveEvent::Waiting { .. } => "waiting",
                            crate::jobs::reactor::LiveEvent::Backends { .. } => "backends",
                        };
                        tx.send(SseEvent::default().event(kind).data(serde_json::to_string(&ev).unwrap_or_default())).is_ok()
                    }
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

/// A small delta for a job event: the job's new status. A finished job is no longer held in
/// memory; it is read back from the ledger (where its last event already is).
fn job_delta(s: &AppState, e: &Event) -> Option<Value> {
    if let Event::QueuePaused { paused } = e {
        return Some(json!({"paused": paused}));
    }
    let id = e.job()?;
    let held = s.handle.library().jobs.get(id).cloned();
    let j = match held {
        Some(j) => j,
        None => s.handle.job(id).ok()??,
    };
    Some(
        json!({"job_id": id_text(id), "status": j.state.status(), "kind": e.kind(),
                "images": j.images.iter().map(|p| format!("/static/{p}")).collect::<Vec<_>>(),
                "error": j.error,
                "target": j.info.target.as_ref().map(|(c, s)| format!("{}/{s}", c.key())),
                "set_cover": j.info.set_cover,
                "endless": j.info.endless.map(id_text)}),
    )
}
