//! The history API: the full event log with filters and paging, restore (with its preview)
//! and undelete, an entry's versions and their differences, audits of jobs and images, recipe
//! diffs, running a job again, stale covers, lossless export, and verification.

use super::api::{category, entry_json, json_object, slug_param};
use super::{ApiError, AppState};
use crate::handle::{Request, random_seed};
use crate::history::audit::{self, Again};
use crate::history::{self, View, log, stale};
use crate::library::category::Category;
use crate::library::command::Command;
use crate::library::projection::Library;
use crate::store::event::{Event, JobSpec, Origin, Stored, ulid_text};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

type Q = Query<HashMap<String, String>>;
type ApiResult = Result<Response, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/events", get(events))
        .route("/api/restore", post(restore))
        .route("/api/restore/preview", get(preview_get).post(preview_post))
        .route("/api/deleted", get(deleted))
        .route("/api/deleted/{category}/{slug}/undelete", post(undelete))
        .route("/api/history/{category}/{slug}", get(versions))
        .route("/api/history/{category}/{slug}/diff", get(version_diff))
        .route("/api/audit/jobs/{job}", get(audit_job))
        .route("/api/audit/image", get(audit_image))
        .route("/api/audit/diff", get(audit_diff))
        .route("/api/jobs/{job}/run_again", post(run_again))
        .route("/api/stale", get(stale_list))
        .route("/api/stale/{category}/regenerate", post(regenerate_stale))
        .route("/api/export", get(export))
        .route("/api/verify", get(verify))
}

/// Runs `f` on a blocking thread with the ledger and a copy of the current projection (so
/// long reads never hold the projection's lock).
pub async fn with_view<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(View<'_>) -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    let h = s.handle.clone();
    tokio::task::spawn_blocking(move || {
        let lib = h.library().clone();
        f(View {
            ledger: h.ledger(),
            lib: &lib,
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::bad)
}

fn seq_field(b: &Map<String, Value>, key: &str) -> Result<u64, ApiError> {
    b.get(key).and_then(Value::as_u64).ok_or_else(|| {
        ApiError::bad(format!(
            "the body needs \"{key}\": a seq (a whole number ≥ 0)"
        ))
    })
}

fn q_seq(q: &HashMap<String, String>, key: &str) -> Result<Option<u64>, ApiError> {
    q.get(key)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad(format!("?{key}={v} is not a seq (a whole number ≥ 0)")))
        })
        .transpose()
}

fn job_param(s: &str) -> Result<u128, ApiError> {
    log::parse_job(s).map_err(ApiError::not_found)
}

fn known_seq(s: &AppState, seq: u64) -> Result<(), ApiError> {
    let last = s.handle.ledger().last_seq();
    if seq > last {
        return Err(ApiError::bad(format!(
            "seq {seq} is not in the ledger (it ends at {last})"
        )));
    }
    Ok(())
}

// ---- the log ---------------------------------------------------------------------------

/// An event page as the API gives it: `events` oldest first, with `newer` / `older` cursors.
pub fn page_json(page: &log::Page, last_seq: u64) -> Value {
    json!({
        "events": page.events.iter().map(Stored::to_json).collect::<Vec<_>>(),
        "newer": page.newer.map(|a| json!({"after": a})),
        "older": page.older.map(|b| json!({"before": b})),
        "last_seq": last_seq,
    })
}

async fn events(State(s): State<AppState>, Query(q): Q) -> ApiResult {
    let (filter, paging) = log::Filter::from_query(&q).map_err(ApiError::bad)?;
    let h = s.handle.clone();
    let body = tokio::task::spawn_blocking(move || {
        log::query(h.ledger(), &filter, &paging).map(|p| page_json(&p, h.ledger().last_seq()))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(body).into_response())
}

// ---- restore ---------------------------------------------------------------------------

async fn preview(s: &AppState, to_seq: u64) -> ApiResult {
    known_seq(s, to_seq)?;
    let h = s.handle.clone();
    let (event, before) = tokio::task::spawn_blocking(move || h.restore_plan(to_seq))
        .await
        .map_err(ApiError::internal)??;
    let changes = match &event {
        Some(e) => history::restore::summary(&before, e),
        None => history::restore::empty_summary(to_seq),
    };
    Ok(Json(json!({
        "to_seq": to_seq,
        "current_seq": before.seq,
        "empty": event.is_none(),
        "changes": changes,
    }))
    .into_response())
}

async fn preview_get(State(s): State<AppState>, Query(q): Q) -> ApiResult {
    let to_seq = q_seq(&q, "to_seq")?.ok_or_else(|| ApiError::bad("?to_seq=SEQ is required"))?;
    preview(&s, to_seq).await
}

async fn preview_post(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let to_seq = seq_field(&json_object(&body)?, "to_seq")?;
    preview(&s, to_seq).await
}

/// Restores the library to right after `to_seq` (after a rescan, so edits made on disk a
/// moment ago are in the ledger first, never overwritten unseen). Returns the restore's seq
/// (`None`: nothing to change), the library before it, and the changes.
pub async fn do_restore(s: &AppState, to_seq: u64) -> Result<(Option<u64>, Value), ApiError> {
    known_seq(s, to_seq)?;
    s.handle
        .run(Origin::Web, Request::Rescan(Category::ALL.to_vec()))
        .await?;
    let before = s.handle.library().clone();
    let o = s
        .handle
        .run(Origin::Web, Request::Restore { to_seq })
        .await?;
    let restored = o
        .events
        .iter()
        .find(|e| matches!(e.event(), Event::Restored { .. }));
    Ok(match restored {
        Some(e) => (
            Some(e.seq),
            json!({
                "seq": e.seq,
                "to_seq": to_seq,
                "undo": {"to_seq": e.seq - 1},
                "changes": history::restore::summary(&before, e.event()),
                "warnings": o.warnings,
            }),
        ),
        None => (
            None,
            json!({
                "seq": null,
                "to_seq": to_seq,
                "undo": null,
                "changes": history::restore::empty_summary(to_seq),
                "warnings": o.warnings,
            }),
        ),
    })
}

async fn restore(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let to_seq = seq_field(&json_object(&body)?, "to_seq")?;
    let (_, v) = do_restore(&s, to_seq).await?;
    Ok(Json(v).into_response())
}

// ---- deleted entries -------------------------------------------------------------------

fn deleted_json(d: &history::deleted::Deleted) -> Value {
    json!({
        "category": d.category.key(),
        "slug": d.slug,
        "name": d.name,
        "file": format!("data/{}/{}", d.category.desc().dir, d.file),
        "seq": d.seq,
        "at": d.at,
        "origin": d.origin,
        "how": d.how.as_str(),
        "history": format!("/{}/{}/history", d.category.desc().singular, d.slug),
    })
}

async fn deleted(State(s): State<AppState>, Query(q): Q) -> ApiResult {
    let limit = q_seq(&q, "limit")?.unwrap_or(200).clamp(1, 1000) as usize;
    let list = with_view(&s, move |v| history::deleted::list(v.ledger, v.lib, limit)).await?;
    Ok(Json(json!({"deleted": list.iter().map(deleted_json).collect::<Vec<_>>()})).into_response())
}

/// Brings a deleted entry back; returns the undelete's seq.
pub async fn do_undelete(s: &AppState, c: Category, slug: &str) -> Result<u64, ApiError> {
    let o = s
        .handle
        .run(
            Origin::Web,
            Request::Undelete {
                category: c,
                slug: slug.to_string(),
            },
        )
        .await?;
    o.last_seq()
        .ok_or_else(|| ApiError::internal("undelete appended nothing"))
}

async fn undelete(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
) -> ApiResult {
    let c = category(&cat)?;
    let slug = slug_param(&slug)?.to_string();
    let seq = do_undelete(&s, c, &slug).await?;
    let lib = s.handle.library();
    let entry = lib.get(c, &slug).map(|e| entry_json(&lib, e));
    Ok(Json(json!({"undeleted": slug, "seq": seq, "entry": entry})).into_response())
}

// ---- one entry's versions --------------------------------------------------------------

fn version_json(v: &history::entry::Version) -> Value {
    json!({
        "seq": v.seq,
        "at": v.at,
        "time": history::time::format(v.at),
        "origin": v.origin,
        "type": v.kind,
        "name": v.name,
        "text_changed": v.text_changed,
        "removed": v.removed,
        "cover": v.cover.as_ref().map(|p| format!("/static/{p}")),
    })
}

async fn versions(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    Query(q): Q,
) -> ApiResult {
    let c = category(&cat)?;
    let slug = slug_param(&slug)?.to_string();
    if let Some(at) = q_seq(&q, "at")? {
        let h = s.handle.clone();
        let text =
            tokio::task::spawn_blocking(move || history::entry::text_at(h.ledger(), c, &slug, at))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
        return Ok(Json(json!({"seq": at, "text": text})).into_response());
    }
    let before = q_seq(&q, "before")?;
    let limit = q_seq(&q, "limit")?.unwrap_or(100).clamp(1, 10_000) as usize;
    let h = s.handle.clone();
    let (page, jobs, current) = tokio::task::spawn_blocking(move || {
        let page = history::entry::versions(h.ledger(), c, &slug, before, limit)?;
        if page.total == 0 {
            return Err(format!("no {} '{slug}' in the ledger", c.desc().singular));
        }
        let (targets, current) = {
            let lib = h.library();
            let current = lib.get(c, &slug).map(|e| {
                json!({"version": e.version, "content_version": e.content_version,
                       "cover": e.cover.as_ref().map(|p| format!("/static/{p}")),
                       "stale": stale::entry_is_stale(&lib, e)})
            });
            (history::entry::target_jobs(&lib, c, &slug), current)
        };
        let jobs = history::entry::jobs_by_version(h.ledger(), c, &slug, targets)?;
        Ok((page, jobs, current))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::not_found)?;
    Ok(Json(json!({
        "category": c.key(),
        "total": page.total,
        "current": current,
        "items": page.items.iter().map(version_json).collect::<Vec<_>>(),
        "older": page.older.map(|b| json!({"before": b})),
        "jobs": jobs.iter().map(|(v, id, images)| json!({
            "version": v, "job_id": ulid_text(*id),
            "images": images.iter().map(|p| format!("/static/{p}")).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn version_diff(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
    Query(q): Q,
) -> ApiResult {
    let c = category(&cat)?;
    let slug = slug_param(&slug)?.to_string();
    let a = q_seq(&q, "a")?.ok_or_else(|| ApiError::bad("?a=SEQ&b=SEQ are required"))?;
    let b = q_seq(&q, "b")?.ok_or_else(|| ApiError::bad("?a=SEQ&b=SEQ are required"))?;
    known_seq(&s, a.max(b))?;
    let h = s.handle.clone();
    let fields = tokio::task::spawn_blocking(move || {
        history::entry::diff_versions(h.ledger(), c, &slug, a, b)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(json!({"a": a, "b": b, "fields": fields})).into_response())
}

// ---- audit -----------------------------------------------------------------------------

async fn audit_job(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    let id = job_param(&job)?;
    if s.handle.library().jobs.get(id).is_none() {
        return Err(ApiError::not_found(format!("no job {job}")));
    }
    let v = with_view(&s, move |v| audit::audit(&v, id)).await?;
    Ok(Json(v).into_response())
}

fn image_job(lib: &Library, path: &str) -> Result<u128, ApiError> {
    audit::job_of_image(lib, path).map_err(ApiError::not_found)
}

async fn audit_image(State(s): State<AppState>, Query(q): Q) -> ApiResult {
    let path = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ApiError::bad("?path=IMAGE is required (e.g. /static/uploads/…/<job>_0.png)")
        })?
        .clone();
    let id = image_job(&s.handle.library(), &path)?;
    let mut v = with_view(&s, move |v| audit::audit(&v, id)).await?;
    v["image"] = path.into();
    Ok(Json(v).into_response())
}

/// A job named by its id or by one of its images.
fn job_or_image(lib: &Library, text: &str) -> Result<u128, ApiError> {
    match log::parse_job(text) {
        Ok(id) if lib.jobs.get(id).is_some() => Ok(id),
        Ok(_) => Err(ApiError::not_found(format!("no job {text}"))),
        Err(_) => image_job(lib, text),
    }
}

async fn audit_diff(State(s): State<AppState>, Query(q): Q) -> ApiResult {
    let (a, b) = match (q.get("a"), q.get("b")) {
        (Some(a), Some(b)) => (a.clone(), b.clone()),
        _ => return Err(ApiError::bad("?a=&b= are required: job ids or image paths")),
    };
    let (ja, jb) = {
        let lib = s.handle.library();
        (job_or_image(&lib, &a)?, job_or_image(&lib, &b)?)
    };
    let v = with_view(&s, move |v| {
        let ra: Value = serde_json::from_str(&v.job_spec(ja)?.recipe).unwrap_or(Value::Null);
        let rb: Value = serde_json::from_str(&v.job_spec(jb)?.recipe).unwrap_or(Value::Null);
        let mut d = audit::diff_recipes(&ra, &rb);
        d["a"] = ulid_text(ja).into();
        d["b"] = ulid_text(jb).into();
        Ok(d)
    })
    .await?;
    Ok(Json(v).into_response())
}

/// Queues a run of `job` again (exactly, or with today's library); returns the new job.
pub async fn do_run_again(
    s: &AppState,
    job: u128,
    mode: Again,
    action: Option<String>,
) -> Result<u128, ApiError> {
    let spec = with_view(s, move |v| {
        let spec = v.job_spec(job)?;
        audit::again_spec(v.lib, job, &spec, mode, action.as_deref(), random_seed())
    })
    .await?;
    let new_job = u128::from(ulid::Ulid::generate());
    s.handle
        .run(
            Origin::Web,
            Request::Command(Command::Enqueue {
                jobs: vec![(new_job, spec)],
            }),
        )
        .await?;
    Ok(new_job)
}

async fn run_again(State(s): State<AppState>, Path(job): Path<String>, body: Bytes) -> ApiResult {
    let id = job_param(&job)?;
    if s.handle.library().jobs.get(id).is_none() {
        return Err(ApiError::not_found(format!("no job {job}")));
    }
    let b = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        json_object(&body)?
    };
    let mode = match b.get("mode") {
        None | Some(Value::Null) => Again::Exact,
        Some(Value::String(m)) => Again::parse(m)
            .ok_or_else(|| ApiError::bad(format!("\"mode\" '{m}' is not exact or today")))?,
        Some(_) => return Err(ApiError::bad("\"mode\" must be \"exact\" or \"today\"")),
    };
    let action = match b.get("action") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) if a == "preview" || a == "replace" => Some(a.clone()),
        Some(_) => {
            return Err(ApiError::bad(
                "\"action\" must be \"preview\" or \"replace\"",
            ));
        }
    };
    let new_job = do_run_again(&s, id, mode, action).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job_id": ulid_text(new_job), "again_of": job,
                    "mode": if mode == Again::Exact { "exact" } else { "today" }})),
    )
        .into_response())
}

// ---- stale covers ----------------------------------------------------------------------

fn stale_json(lib: &Library, c: Category) -> Vec<Value> {
    stale::stale_entries(lib, c)
        .into_iter()
        .map(|e| {
            json!({
                "category": c.key(), "slug": e.slug, "name": e.name,
                "cover": e.cover.as_ref().map(|p| format!("/static/{p}")),
                "cover_job": e.cover.as_deref().and_then(stale::job_of_image).map(ulid_text),
                "content_version": e.content_version,
                "cover_requested_seq": stale::cover_requested_seq(lib, e),
            })
        })
        .collect()
}

async fn stale_list(State(s): State<AppState>, Query(q): Q) -> ApiResult {
    let cats = match q.get("category").filter(|c| !c.is_empty()) {
        Some(c) => vec![category(c)?],
        None => Category::ALL.to_vec(),
    };
    let lib = s.handle.library();
    let list: Vec<Value> = cats.iter().flat_map(|c| stale_json(&lib, *c)).collect();
    Ok(Json(json!({"stale": list})).into_response())
}

/// The spec that regenerates one stale cover: its cover job run again with today's library
/// as a cover; if that request no longer resolves, a fresh cover request for the entry.
fn regenerate_spec(v: &View<'_>, c: Category, slug: &str, seed: u64) -> Result<JobSpec, String> {
    let job = v
        .lib
        .get(c, slug)
        .and_then(|e| e.cover.as_deref())
        .and_then(stale::job_of_image);
    if let Some(job) = job
        && let Ok(spec) = v.job_spec(job)
        && let Ok(s) = audit::again_spec(v.lib, job, &spec, Again::Today, Some("replace"), seed)
    {
        return Ok(s);
    }
    let mut body = Map::new();
    body.insert("category".into(), c.key().into());
    body.insert("slug".into(), slug.into());
    body.insert("action".into(), "replace".into());
    if !matches!(
        c,
        Category::Characters | Category::Looks | Category::Presets
    ) {
        body.insert("character".into(), crate::engine::RANDOM_SENTINEL.into());
    }
    let req = crate::jobs::request::GenRequest::from_json(&body)?;
    let resolved =
        crate::jobs::request::resolve(v.lib, &req, seed, &crate::jobs::request::Backend::default())
            .map_err(|e| e.to_string())?;
    Ok(crate::jobs::request::job_spec(&req, &resolved, &body))
}

/// Queues one cover job per stale cover of a category, in one batch.
pub async fn do_regenerate(s: &AppState, c: Category) -> Result<Value, ApiError> {
    let batch = u128::from(ulid::Ulid::generate());
    let (jobs, errors) = with_view(s, move |v| {
        let mut jobs = Vec::new();
        let mut errors = Vec::new();
        for e in stale::stale_entries(v.lib, c) {
            match regenerate_spec(&v, c, &e.slug, random_seed()) {
                Ok(mut spec) => {
                    spec.batch = Some(batch);
                    spec.set_cover = true;
                    jobs.push((u128::from(ulid::Ulid::generate()), spec));
                }
                Err(err) => errors.push(json!({"slug": e.slug, "error": err})),
            }
        }
        Ok((jobs, errors))
    })
    .await?;
    let ids: Vec<String> = jobs.iter().map(|(id, _)| ulid_text(*id)).collect();
    if !jobs.is_empty() {
        s.handle
            .run(Origin::Web, Request::Command(Command::Enqueue { jobs }))
            .await?;
    }
    Ok(json!({"batch": ulid_text(batch), "job_ids": ids, "errors": errors}))
}

async fn regenerate_stale(State(s): State<AppState>, Path(cat): Path<String>) -> ApiResult {
    let c = category(&cat)?;
    Ok(Json(do_regenerate(&s, c).await?).into_response())
}

// ---- export and verify -----------------------------------------------------------------

/// Sends what is written to it as body chunks of about 64 KiB.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

async fn export(State(s): State<AppState>, Query(q): Q) -> ApiResult {
    let after = q_seq(&q, "after")?.unwrap_or(0);
    let fields = q.get("fields").is_some_and(|v| v == "true" || v == "1");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let h = s.handle.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter {
            buf: Vec::with_capacity(80 * 1024),
            tx: tx.clone(),
        };
        if let Err(e) = history::archive::export(h.ledger(), after, fields, &mut w) {
            tracing::error!("export failed: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn verify(State(s): State<AppState>) -> ApiResult {
    let h = s.handle.clone();
    let data = s.config.data.clone();
    let report = tokio::task::spawn_blocking(move || {
        let live = h.library().clone();
        history::verify::verify(h.ledger(), &data, Some(&live)).to_json()
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(report).into_response())
}
