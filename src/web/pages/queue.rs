//! The queue (`/queue`): jobs running, waiting (in the order they will run) and finished, each
//! with its progress, backend, attempt, waiting reason or error, and a link to its image;
//! cancel, retry, pause and resume; endless sessions with stop; the ComfyUI backends. Finished
//! jobs can be hidden from view (a preference; nothing is deleted). Live over the event stream
//! with `static/js/queue.js`, which fetches changed rows from `/queue/row/{job}`.

use super::ui::{backend_label, thumb_url};
use super::{FormPairs, Page, field, finish, flash_of, page, run, safe_back};
use crate::jobs::projection::{Job, JobState};
use crate::library::category::Category;
use crate::library::command::Command;
use crate::library::projection::Library;
use crate::web::AppState;
use crate::web::guard::csrf_field;
use crate::web::jobs::{job_of, newest_jobs, parse_id};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Waiting jobs listed (the rest are counted).
const WAITING_SHOWN: usize = 200;
/// Finished jobs listed.
const FINISHED_SHOWN: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/queue", get(show))
        .route("/queue/row/{job}", get(row_partial))
        .route("/queue/pause", post(pause))
        .route("/queue/resume", post(resume))
        .route("/queue/hide_finished", post(hide_finished))
        .route("/queue/{job}/cancel", post(cancel))
        .route("/queue/{job}/retry", post(retry))
        .route("/queue/endless/{id}/stop", post(stop_endless))
}

fn id_text(id: u128) -> String {
    ulid::Ulid::from(id).to_string()
}

fn ago(at_ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let s = now.saturating_sub(at_ms) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// Which section of the page a job belongs in.
pub fn section_of(state: JobState) -> &'static str {
    match state {
        JobState::Submitted => "running",
        JobState::Queued => "waiting",
        _ => "finished",
    }
}

fn badge(state: JobState) -> (&'static str, &'static str) {
    match state {
        JobState::Queued => ("waiting", "text-bg-secondary"),
        JobState::Submitted => ("running", "text-bg-primary"),
        JobState::Succeeded => ("done", "text-bg-success"),
        JobState::Failed => ("failed", "text-bg-danger"),
        JobState::SetAside => ("set aside", "text-bg-warning"),
        JobState::Cancelled => ("cancelled", "text-bg-dark"),
    }
}

/// One job's row.
fn row(s: &AppState, lib: &Library, j: &Job, position: Option<usize>) -> Markup {
    let id = id_text(j.id);
    let (mut word, cls) = badge(j.state);
    let waiting = (j.state == JobState::Queued)
        .then(|| s.live.as_ref().and_then(|l| l.waiting(j.id)))
        .flatten();
    let progress = (j.state == JobState::Submitted)
        .then(|| s.live.as_ref().and_then(|l| l.progress(j.id)))
        .flatten();
    if j.state == JobState::Submitted && progress.is_none() {
        // Sent, but ComfyUI has not started it (it waits in ComfyUI's own queue).
        word = "at ComfyUI";
    }
    let target = j.info.target.as_ref().map(|(c, slug)| {
        let name = lib.get(*c, slug).map_or(slug.clone(), |e| e.name.clone());
        (format!("/{}/{slug}", c.desc().singular), name, *c)
    });
    let sweep = j.info.batch.filter(|b| lib.sweeps.contains_key(b));
    html! {
        li.list-group-item.queue-row data-job=(id) data-status=(j.state.status()) data-section=(section_of(j.state)) {
            div.d-flex.flex-wrap.align-items-center.gap-2 {
                span.badge.job-state.(cls) { (word) }
                @if let Some(p) = position { span.small.text-body-secondary title="Place in the queue" { "#" (p) } }
                span.me-auto.queue-what {
                    @match &target {
                        Some((href, name, c)) => {
                            a href=(href) { (name) } " "
                            span.small.text-body-secondary { (c.desc().singular) }
                        }
                        None => { "Generator" }
                    }
                    @if let Some(w) = j.info.label.split_once(" @ ").map(|x| x.1) {
                        " " span.small.text-body-secondary { "@ " (w) }
                    }
                    @if let Some(b) = sweep {
                        " · " a.small href={ "/strengths/" (id_text(b)) } { "sweep" }
                    }
                    @if j.info.endless.is_some() { " · " span.small.text-body-secondary { "endless" } }
                    @if j.info.retry_of.is_some() { " · " span.small.text-body-secondary { "retry" } }
                }
                span.small.text-body-secondary { (ago(j.requested_at)) }
                @if let Some(b) = &j.backend {
                    span.small.text-body-secondary.text-truncate.queue-backend title="Backend" { (b) }
                }
                @if j.attempts > 0 {
                    span.small.text-body-secondary title="Attempts" { "attempt " (j.attempts) }
                }
                @if !j.state.is_terminal() {
                    form method="post" action={ "/queue/" (id) "/cancel" } data-queue-action {
                        (csrf_field(s))
                        input type="hidden" name="back" value="/queue";
                        button.btn.btn-sm.btn-outline-danger type="submit" { "Cancel" }
                    }
                } @else {
                    form method="post" action={ "/queue/" (id) "/retry" } data-queue-action {
                        (csrf_field(s))
                        input type="hidden" name="back" value="/queue";
                        button.btn.btn-sm.btn-outline-secondary type="submit" title="A new job with the same recipe" { "Retry" }
                    }
                }
            }
            @if let Some(w) = &waiting {
                div.small.text-warning.mt-1.queue-waiting { (w) }
            }
            @if j.state == JobState::Submitted {
                @let (node, value, max) = progress.clone().unwrap_or((None, 0, 0));
                div.progress.mt-1.queue-progress role="progressbar" aria-label={ "Progress of " (id) }
                    aria-valuemin="0" aria-valuemax=(max.max(1)) aria-valuenow=(value) {
                    div.progress-bar.job-bar data-value=(value) data-max=(max) {}
                }
                div.small.text-body-secondary.queue-step {
                    @if max > 0 { "Step " (value) " of " (max) @if let Some(n) = node { " · node " (n) } }
                }
            }
            @if matches!(j.state, JobState::Failed | JobState::SetAside) {
                @if let Some(e) = &j.error {
                    div.small.text-danger.mt-1.queue-error { (e) }
                }
            }
            @if !j.images.is_empty() {
                div.d-flex.gap-1.mt-1.queue-images {
                    @for img in &j.images {
                        a href={ "/gallery/image?path=" (super::enc(img)) } {
                            img src=(thumb_url(img, 160)) alt="The job's image" width="48" height="64" loading="lazy";
                        }
                    }
                }
            }
        }
    }
}

async fn show(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let body = body(&s);
    page(
        &s,
        &Page {
            title: "Queue",
            section: Some("queue"),
            scripts: &["queue.js"],
            flash: flash_of(&q),
            refresh: None,
        },
        body,
    )
    .into_response()
}

/// Whether the queue page hides finished jobs (a global preference).
pub fn hides_finished(lib: &Library) -> bool {
    lib.preferences
        .get("global")
        .and_then(|m| m.get("hide_finished"))
        .is_some_and(|v| v == "true")
}

fn body(s: &AppState) -> Markup {
    let hide = hides_finished(&s.handle.library());
    let finished: Vec<Job> = if hide {
        Vec::new()
    } else {
        newest_jobs(s, None, FINISHED_SHOWN * 3)
            .into_iter()
            .filter(|j| j.state.is_terminal())
            .take(FINISHED_SHOWN)
            .collect()
    };
    let lib = s.handle.library();
    let running: Vec<&Job> = lib
        .jobs
        .submitted
        .iter()
        .filter_map(|id| lib.jobs.get(*id))
        .collect();
    let waiting: Vec<&Job> = lib
        .jobs
        .queued
        .iter()
        .take(WAITING_SHOWN)
        .filter_map(|id| lib.jobs.get(*id))
        .collect();
    let more_waiting = lib.jobs.queued.len().saturating_sub(WAITING_SHOWN);
    let backends = s.live.as_ref().map(|l| l.backends()).unwrap_or_default();
    let paused = lib.jobs.paused;
    html! {
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto { "Queue" }
            span #queue-paused.badge.text-bg-warning hidden[!paused] { "paused" }
            form method="post" action=(if paused { "/queue/resume" } else { "/queue/pause" }) data-queue-pause {
                (csrf_field(s))
                button.btn.btn-sm.btn-outline-warning #pause-button type="submit" data-paused=(paused) {
                    (if paused { "Resume the queue" } else { "Pause the queue" })
                }
            }
            form method="post" action="/queue/hide_finished" data-hide-finished {
                (csrf_field(s))
                input type="hidden" name="on" value=(if hide { "0" } else { "1" });
                button.btn.btn-sm.btn-outline-secondary type="submit" aria-pressed=(hide) {
                    (if hide { "Show finished jobs" } else { "Hide finished jobs" })
                }
            }
        }
        section.mb-3 aria-labelledby="backends-title" {
            h2.h6 #backends-title { "ComfyUI backends " a.small.fw-normal href="/settings#backends" { "settings" } }
            ul.list-inline.small.mb-0 #queue-backends {
                @if backends.is_empty() { li.list-inline-item.text-body-secondary { "No reactor is running." } }
                @for b in &backends {
                    li.list-inline-item {
                        span.status-dot.ok[b.healthy].down[!b.healthy] role="img" aria-label=(backend_label(b)) title=(backend_label(b)) {}
                        (b.url)
                        @if b.removed { " (removed: finishing its jobs)" }
                        " · " (b.in_flight) " in flight"
                    }
                }
            }
        }
        @if !lib.jobs.endless.is_empty() {
            section.mb-3 aria-labelledby="endless-title" {
                h2.h6 #endless-title { "Endless generation" }
                ul.list-group {
                    @for (id, req) in &lib.jobs.endless {
                        @let r: Value = serde_json::from_str(req).unwrap_or_default();
                        @let what = match (r["category"].as_str().and_then(Category::parse), r["slug"].as_str()) {
                            (Some(c), Some(slug)) => lib.get(c, slug).map_or(slug.to_string(), |e| e.name.clone()),
                            _ => "Generator".to_string(),
                        };
                        li.list-group-item.d-flex.align-items-center.gap-2 data-endless=(id_text(*id)) {
                            span.spinner-grow.spinner-grow-sm.text-success aria-hidden="true" {}
                            span.me-auto { (what) " " span.small.text-body-secondary { (lib.jobs.endless_open(*id)) " open" } }
                            form method="post" action={ "/queue/endless/" (id_text(*id)) "/stop" } {
                                (csrf_field(s))
                                button.btn.btn-sm.btn-outline-danger type="submit" { "Stop" }
                            }
                        }
                    }
                }
            }
        }
        section.mb-3 aria-labelledby="running-title" {
            h2.h6 #running-title { "Running " span.badge.text-bg-primary data-count="running" { (running.len()) } }
            ul.list-group.queue-list #queue-running data-section="running" {
                @for j in &running { (row(s, &lib, j, None)) }
            }
            p.small.text-body-secondary.queue-empty data-empty="running" hidden[!running.is_empty()] { "Nothing running." }
        }
        section.mb-3 aria-labelledby="waiting-title" {
            h2.h6 #waiting-title { "Waiting " span.badge.text-bg-secondary data-count="waiting" { (lib.jobs.queued.len()) } }
            ul.list-group.queue-list #queue-waiting data-section="waiting" {
                @for (i, j) in waiting.iter().enumerate() { (row(s, &lib, j, Some(i + 1))) }
            }
            p.small.text-body-secondary.queue-empty data-empty="waiting" hidden[!waiting.is_empty()] { "Nothing waiting." }
            @if more_waiting > 0 { p.small.text-body-secondary { "… and " (more_waiting) " more" } }
        }
        section aria-labelledby="finished-title" {
            h2.h6 #finished-title { "Finished" }
            @if hide {
                p.small.text-body-secondary #finished-hidden { "Finished jobs are hidden from this page (they stay in the ledger, and their images in the " a href="/gallery" { "gallery" } ")." }
            } @else {
                ul.list-group.queue-list #queue-finished data-section="finished" {
                    @for j in &finished { (row(s, &lib, j, None)) }
                }
                p.small.text-body-secondary.queue-empty data-empty="finished" hidden[!finished.is_empty()] { "Nothing finished yet." }
            }
        }
    }
}

/// `GET /queue/row/{job}`: one row (the script moves it to its section).
async fn row_partial(State(s): State<AppState>, Path(job): Path<String>) -> Response {
    let id = match parse_id(&job) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let Some(j) = job_of(&s, id) else {
        return crate::web::ApiError::not_found(format!("no job {job}")).into_response();
    };
    let lib = s.handle.library();
    let position = (j.state == JobState::Queued)
        .then(|| lib.jobs.queued.iter().position(|x| *x == id).map(|p| p + 1))
        .flatten();
    row(&s, &lib, &j, position).into_response()
}

async fn pause_to(s: &AppState, headers: &HeaderMap, paused: bool) -> Response {
    let r = run(s, Command::PauseQueue { paused }).await.map(|_| {
        (
            if paused {
                "The queue is paused"
            } else {
                "The queue runs again"
            }
            .to_string(),
            json!({"paused": paused}),
        )
    });
    finish(headers, "/queue", r)
}

async fn pause(State(s): State<AppState>, headers: HeaderMap) -> Response {
    pause_to(&s, &headers, true).await
}

async fn resume(State(s): State<AppState>, headers: HeaderMap) -> Response {
    pause_to(&s, &headers, false).await
}

async fn hide_finished(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let on = field(&f, "on") != Some("0");
    let r = run(
        &s,
        Command::SetPreferences {
            scope: "global".into(),
            values: vec![("hide_finished".into(), Value::Bool(on))],
        },
    )
    .await
    .map(|_| {
        (
            if on {
                "Finished jobs are hidden"
            } else {
                "Finished jobs are shown"
            }
            .to_string(),
            json!({"hide_finished": on}),
        )
    });
    finish(&headers, "/queue", r)
}

async fn cancel(
    State(s): State<AppState>,
    Path(job): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let back = safe_back(field(&f, "back"), "/queue");
    let r = async {
        let id = parse_id(&job).map_err(|e| (e.status, e.message))?;
        run(&s, Command::CancelJob { job: id }).await?;
        Ok(("Cancelled".to_string(), json!({"job_id": job})))
    }
    .await;
    finish(&headers, &back, r)
}

async fn retry(
    State(s): State<AppState>,
    Path(job): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let back = safe_back(field(&f, "back"), "/queue");
    let r = async {
        let id = parse_id(&job).map_err(|e| (e.status, e.message))?;
        if job_of(&s, id).is_none() {
            return Err((StatusCode::NOT_FOUND, format!("no job {job}")));
        }
        let h = s.handle.clone();
        let spec = tokio::task::spawn_blocking(move || h.job_spec(id))
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
        let new_job = u128::from(ulid::Ulid::generate());
        run(
            &s,
            Command::RetryJob {
                job: id,
                new_job,
                spec: Box::new(spec),
            },
        )
        .await?;
        Ok((
            "Queued again as a new job".to_string(),
            json!({"job_id": id_text(new_job), "retry_of": job}),
        ))
    }
    .await;
    finish(&headers, &back, r)
}

async fn stop_endless(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let r = async {
        let endless = parse_id(&id).map_err(|e| (e.status, e.message))?;
        run(&s, Command::StopEndless { endless }).await?;
        Ok((
            "Endless generation stopped".to_string(),
            json!({"stopped": id}),
        ))
    }
    .await;
    finish(&headers, "/queue", r)
}
