//! Settings (`/settings`): the assistant's provider, URL, model and key (the key is write-only:
//! never shown back, never in the ledger; environment variables win and are shown as such),
//! any other assistant setting; ComfyUI backends added, tested and removed at run time (kept in
//! the settings; `--comfy` / `COMFYUI_URL` backends are always there and cannot be removed
//! here); the model folders; gallery preferences (NSFW, thumbnail density); the ledger's file,
//! size, event count and version, and the image index. Forms work without JavaScript;
//! `static/js/settings.js` tests a backend in place.

use super::ui::backend_label;
use super::{FormPairs, Page, field, flash_of, global_pref, page, run, with_flash};
use crate::library::command::Command;
use crate::library::settings::{self, KEYS, PROVIDERS};
use crate::web::AppState;
use crate::web::guard::csrf_field;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", get(show).post(post_assistant))
        .route("/settings/backends", post(post_backends))
        .route("/settings/gallery", post(post_gallery))
}

/// Keys the page edits with their own inputs; every other setting gets a JSON field.
const OWN_INPUTS: [&str; 4] = ["llm_provider", "llm_url", "llm_model", "comfy_backends"];

fn size_text(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        1_048_576..=1_073_741_823 => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", bytes as f64 / 1_073_741_824.0),
    }
}

/// What the page shows that is read from disk.
struct OnDisk {
    ledger_bytes: u64,
    cache_bytes: Option<u64>,
    checkpoints: Option<usize>,
    loras: Option<usize>,
}

fn on_disk(s: &AppState) -> OnDisk {
    let len = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| m.len());
    OnDisk {
        ledger_bytes: len(&s.config.ledger).unwrap_or(0),
        cache_bytes: len(&crate::gallery::Images::cache_path(&s.config.ledger)),
        checkpoints: s
            .config
            .checkpoints
            .as_deref()
            .map(|r| crate::library::models::list_checkpoints(r).len()),
        loras: s.config.loras.as_deref().map(|r| {
            crate::library::category::Category::ALL
                .iter()
                .map(|c| crate::library::models::list_loras(r, *c).len())
                .sum()
        }),
    }
}

async fn show(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let s2 = s.clone();
    let disk = tokio::task::spawn_blocking(move || on_disk(&s2)).await.ok();
    let body = body(&s, disk.as_ref(), &q);
    page(
        &s,
        &Page {
            title: "Settings",
            section: Some("settings"),
            scripts: &["settings.js"],
            flash: flash_of(&q),
            refresh: None,
        },
        body,
    )
    .into_response()
}

fn body(s: &AppState, disk: Option<&OnDisk>, q: &HashMap<String, String>) -> Markup {
    let v = crate::web::api::settings_json(s);
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let env: Vec<String> = v["overridden_by_env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let key_set = v["llm_key_set"] == true;
    let lib = s.handle.library();
    let runtime = settings::backends(&lib.settings);
    let live = s.live.as_ref().map(|l| l.backends()).unwrap_or_default();
    let status_of = |url: &str| live.iter().find(|b| b.url == url).cloned();
    let nsfw = global_pref(s, "nsfw").unwrap_or_else(|| "blur".into());
    let density = global_pref(s, "density").unwrap_or_else(|| "comfortable".into());
    let others: Vec<(&str, &str)> = KEYS
        .iter()
        .filter(|(k, _)| !OWN_INPUTS.contains(k))
        .copied()
        .collect();
    let built = s.images.built.lock().ok().and_then(|b| b.clone());
    let (images, pending) = {
        let ix = s.images.current();
        (ix.len(), ix.prompts_pending())
    };
    let provider = text("llm_provider");
    html! {
        h1.h3.mb-3 { "Settings" }
        div.row.g-3 {
            div.col-12.col-xl-6 {
                section.card.mb-3 #assistant aria-labelledby="assistant-title" {
                    div.card-header { h2.h6.mb-0 #assistant-title { "Assistant (LLM)" } }
                    div.card-body {
                        form method="post" action="/settings" data-settings-form {
                            (csrf_field(s))
                            div.mb-2 {
                                label.form-label.small for="s-provider" { "Provider" }
                                select.form-select.form-select-sm #s-provider name="llm_provider" {
                                    option value="" selected[provider.is_empty()] { "— not set —" }
                                    @for p in PROVIDERS {
                                        option value=(p) selected[provider == p] { (p) }
                                    }
                                }
                            }
                            @for (k, label, kind) in [("llm_url", "URL (OpenAI-compatible)", "url"), ("llm_model", "Model", "text")] {
                                @let overridden = env.iter().any(|e| e == k);
                                div.mb-2 {
                                    label.form-label.small for={ "s-" (k) } { (label) }
                                    input.form-control.form-control-sm id={ "s-" (k) } type=(kind) name=(k) value=(text(k))
                                        disabled[overridden] autocomplete="off";
                                    @if overridden {
                                        div.form-text { "Set by " code { (if k == "llm_url" { "GAZE_LLM_URL" } else { "GAZE_LLM_MODEL" }) } ", which wins over this setting." }
                                    }
                                }
                            }
                            div.mb-2 {
                                label.form-label.small for="s-key" { "API key" }
                                input.form-control.form-control-sm #s-key type="password" name="llm_key" value=""
                                    autocomplete="new-password" disabled[env.iter().any(|e| e == "llm_key")]
                                    placeholder=(if key_set { "a key is set — type a new one to replace it" } else { "no key set" });
                                div.form-text #key-state data-key-set=(key_set) {
                                    @if env.iter().any(|e| e == "llm_key") {
                                        "Set by " code { "GAZE_LLM_KEY" } "."
                                    } @else if key_set {
                                        "A key is set. It is never shown again and never enters the ledger (it lives in "
                                        code { "llm_key.secret" } " beside it)."
                                    } @else {
                                        "No key is set."
                                    }
                                }
                                @if key_set && !env.iter().any(|e| e == "llm_key") {
                                    div.form-check.small {
                                        input.form-check-input #s-forget type="checkbox" name="forget_key" value="1";
                                        label.form-check-label for="s-forget" { "Forget the key" }
                                    }
                                }
                            }
                            @for (k, what) in &others {
                                @let val = lib_setting(&lib.settings, k);
                                div.mb-2 {
                                    label.form-label.small for={ "s-" (k) } { (k) }
                                    textarea.form-control.form-control-sm.font-monospace id={ "s-" (k) } name={ "x_" (k) } rows="2" { (val) }
                                    div.form-text { (what) " (JSON, or plain text)" }
                                }
                            }
                            button.btn.btn-primary.btn-sm type="submit" { "Save" }
                        }
                    }
                }
                section.card.mb-3 #gallery aria-labelledby="gallery-title" {
                    div.card-header { h2.h6.mb-0 #gallery-title { "Galleries" } }
                    div.card-body {
                        form.row.g-2.align-items-end method="post" action="/settings/gallery" {
                            (csrf_field(s))
                            div.col-6 {
                                label.form-label.small for="s-nsfw" { "NSFW entries and their images" }
                                select.form-select.form-select-sm #s-nsfw name="nsfw" {
                                    option value="show" selected[nsfw == "show"] { "Shown" }
                                    option value="blur" selected[nsfw == "blur"] { "Blurred" }
                                    option value="hide" selected[nsfw == "hide"] { "Hidden" }
                                }
                            }
                            div.col-6 {
                                label.form-label.small for="s-density" { "Image gallery thumbnails" }
                                select.form-select.form-select-sm #s-density name="density" {
                                    option value="compact" selected[density == "compact"] { "Compact (more per row)" }
                                    option value="comfortable" selected[density == "comfortable"] { "Comfortable" }
                                    option value="large" selected[density == "large"] { "Large" }
                                }
                            }
                            div.col-12 { button.btn.btn-primary.btn-sm type="submit" { "Save" } }
                        }
                    }
                }
            }
            div.col-12.col-xl-6 {
                section.card.mb-3 #backends aria-labelledby="backends-title" {
                    div.card-header { h2.h6.mb-0 #backends-title { "ComfyUI backends" } }
                    div.card-body {
                        p.small.text-body-secondary { "A job goes to a healthy backend with the fewest jobs. Backends given with "
                            code { "--comfy" } " or " code { "COMFYUI_URL" } " are always there; the others are added here, at once, and kept in the settings." }
                        ul.list-group.mb-3 #backend-list {
                            @for url in &s.config.comfy {
                                (backend_item(s, url, status_of(url), false))
                            }
                            @for url in runtime.iter().filter(|u| !s.config.comfy.contains(u)) {
                                (backend_item(s, url, status_of(url), true))
                            }
                        }
                        form method="post" action="/settings/backends" data-backend-form {
                            (csrf_field(s))
                            label.form-label.small for="s-backend" { "Add a backend" }
                            div.input-group.input-group-sm {
                                input.form-control #s-backend type="url" name="url" placeholder="http://192.168.1.20:8188"
                                    value=[q.get("url")] required;
                                button.btn.btn-outline-secondary type="submit" name="op" value="test" data-test-backend { "Test" }
                                button.btn.btn-primary type="submit" name="op" value="add" { "Add" }
                            }
                            div.small.mt-2 #test-result aria-live="polite" {}
                        }
                    }
                }
                section.card.mb-3 #models aria-labelledby="models-title" {
                    div.card-header { h2.h6.mb-0 #models-title { "Model folders" } }
                    div.card-body.small {
                        dl.row.mb-0 {
                            dt.col-sm-4 { "Checkpoints" }
                            dd.col-sm-8 {
                                @match &s.config.checkpoints {
                                    Some(p) => { code { (p.display()) } @if let Some(n) = disk.and_then(|d| d.checkpoints) { " · " (n) " files" } }
                                    None => { "not set (" code { "--checkpoints" } ", " code { "GAZE_CHECKPOINTS" } ")" }
                                }
                            }
                            dt.col-sm-4 { "LoRAs" }
                            dd.col-sm-8 {
                                @match &s.config.loras {
                                    Some(p) => { code { (p.display()) } @if let Some(n) = disk.and_then(|d| d.loras) { " · " (n) " files" } }
                                    None => { "not set (" code { "--loras" } ", " code { "GAZE_LORAS" } ")" }
                                }
                            }
                            dt.col-sm-4 { "Workflow template" }
                            dd.col-sm-8 {
                                code { (s.config.workflow.display()) }
                                @if let Some(w) = &lib.workflow { " · version " (w.version) }
                            }
                            dt.col-sm-4 { "Images" }
                            dd.col-sm-8 { code { (s.config.uploads.display()) } }
                        }
                    }
                }
                section.card #ledger aria-labelledby="ledger-title" {
                    div.card-header { h2.h6.mb-0 #ledger-title { "Ledger" } }
                    div.card-body.small {
                        dl.row.mb-0 {
                            dt.col-sm-4 { "File" }
                            dd.col-sm-8 { code #ledger-path { (s.config.ledger.display()) } }
                            dt.col-sm-4 { "Size" }
                            dd.col-sm-8 #ledger-size { (size_text(disk.map_or(0, |d| d.ledger_bytes))) }
                            dt.col-sm-4 { "Events" }
                            dd.col-sm-8 #ledger-events { (s.handle.ledger().last_seq()) }
                            dt.col-sm-4 { "Event schema" }
                            dd.col-sm-8 { "version " (crate::store::event::SCHEMA_V1) }
                            dt.col-sm-4 { "GAZE" }
                            dd.col-sm-8 { "version " (env!("CARGO_PKG_VERSION")) }
                            dt.col-sm-4 { "Image index" }
                            dd.col-sm-8 {
                                (images) " images"
                                @if pending > 0 { " · " (pending) " waiting for their prompt words" }
                                @if let Some(b) = &built {
                                    " · built in " (format!("{:.0}", b.took.as_secs_f64() * 1000.0)) " ms "
                                    (if b.from_cache { "from its cache" } else { "from the ledger" })
                                }
                                @if let Some(n) = disk.and_then(|d| d.cache_bytes) { " · cache " (size_text(n)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A setting's current value as the page's JSON field shows it.
fn lib_setting(settings: &str, key: &str) -> String {
    let v: Value = serde_json::from_str(settings).unwrap_or_default();
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(x) => serde_json::to_string_pretty(x).unwrap_or_default(),
    }
}

fn backend_item(
    s: &AppState,
    url: &str,
    status: Option<crate::jobs::reactor::BackendStatus>,
    removable: bool,
) -> Markup {
    html! {
        li.list-group-item.d-flex.flex-wrap.align-items-center.gap-2 data-backend=(url) {
            @match &status {
                Some(b) => { span.status-dot.ok[b.healthy].down[!b.healthy] role="img" aria-label=(backend_label(b)) title=(backend_label(b)) {} }
                None => { span.status-dot.unknown role="img" aria-label="Not checked yet" title="Not checked yet" {} }
            }
            code.me-auto.text-break { (url) }
            @if let Some(b) = &status {
                span.small.text-body-secondary {
                    @if b.healthy {
                        "healthy"
                        @if let Some(v) = &b.version { " · ComfyUI " (v) }
                        @if b.impact_pack == Some(false) { " · no Impact Pack (no face/hand detailers)" }
                    } @else {
                        (b.error.as_deref().unwrap_or("down"))
                    }
                    " · " (b.in_flight) " in flight"
                }
            }
            @if removable {
                form method="post" action="/settings/backends" {
                    (csrf_field(s))
                    input type="hidden" name="url" value=(url);
                    button.btn.btn-sm.btn-outline-danger type="submit" name="op" value="remove"
                        title="It takes no new jobs and finishes the ones it holds" { "Remove" }
                }
            } @else {
                span.badge.text-bg-secondary title="Given on the command line or in COMFYUI_URL" { "from the command line" }
            }
        }
    }
}

/// `POST /settings`: the assistant's settings. An empty key field keeps the key.
async fn post_assistant(State(s): State<AppState>, axum::Form(f): FormPairs) -> Response {
    let mut patch = Map::new();
    for k in ["llm_provider", "llm_url", "llm_model"] {
        if let Some(v) = field(&f, k) {
            let v = v.trim();
            if k == "llm_provider" && v.is_empty() {
                continue;
            }
            if k == "llm_url" && v.is_empty() {
                continue;
            }
            patch.insert(k.into(), Value::String(v.to_string()));
        }
    }
    if field(&f, "forget_key") == Some("1") {
        patch.insert("llm_key".into(), Value::Null);
    } else if let Some(key) = field(&f, "llm_key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        patch.insert("llm_key".into(), Value::String(key.to_string()));
    }
    for (k, _) in KEYS.iter().filter(|(k, _)| !OWN_INPUTS.contains(k)) {
        if let Some(v) = field(&f, &format!("x_{k}")) {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            let value =
                serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
            patch.insert((*k).to_string(), value);
        }
    }
    match crate::web::api::apply_settings(&s, &patch).await {
        Ok(_) => Redirect::to(&with_flash("/settings#assistant", true, "Saved")).into_response(),
        Err(e) => {
            Redirect::to(&with_flash("/settings#assistant", false, &e.message)).into_response()
        }
    }
}

/// `POST /settings/backends`: `op=add|remove|test` with `url`.
async fn post_backends(State(s): State<AppState>, axum::Form(f): FormPairs) -> Response {
    let raw = field(&f, "url").unwrap_or_default().to_string();
    let url = match settings::backend_url(&raw) {
        Ok(u) => u,
        Err(e) => {
            return Redirect::to(&with_flash("/settings#backends", false, &e)).into_response();
        }
    };
    let mut list = settings::backends(&s.handle.library().settings);
    let msg = match field(&f, "op") {
        Some("test") => {
            let p = crate::jobs::reactor::probe(&url).await;
            let back = format!("/settings?url={}#backends", super::enc(&url));
            return if p.ok {
                Redirect::to(&with_flash(
                    &back,
                    true,
                    &format!(
                        "{url} answers: ComfyUI {}{}",
                        p.version.as_deref().unwrap_or("(version unknown)"),
                        match p.impact_pack {
                            Some(false) => ", without the Impact Pack (no face/hand detailers)",
                            _ => "",
                        }
                    ),
                ))
                .into_response()
            } else {
                Redirect::to(&with_flash(
                    &back,
                    false,
                    &format!("{url} does not answer: {}", p.error.unwrap_or_default()),
                ))
                .into_response()
            };
        }
        Some("add") => {
            if s.config.comfy.contains(&url) || list.contains(&url) {
                return Redirect::to(&with_flash(
                    "/settings#backends",
                    false,
                    &format!("{url} is already a backend"),
                ))
                .into_response();
            }
            list.push(url.clone());
            format!("Added {url}: it takes jobs as soon as it answers")
        }
        Some("remove") => {
            if s.config.comfy.contains(&url) {
                return Redirect::to(&with_flash(
                    "/settings#backends",
                    false,
                    "a backend from --comfy or COMFYUI_URL cannot be removed here",
                ))
                .into_response();
            }
            if !list.contains(&url) {
                return Redirect::to(&with_flash(
                    "/settings#backends",
                    false,
                    &format!("{url} is not in the settings"),
                ))
                .into_response();
            }
            list.retain(|u| *u != url);
            format!("Removed {url}: it finishes the jobs it holds and takes no new ones")
        }
        _ => {
            return Redirect::to(&with_flash(
                "/settings#backends",
                false,
                "no such operation",
            ))
            .into_response();
        }
    };
    let mut patch = Map::new();
    patch.insert("comfy_backends".into(), json!(list));
    match crate::web::api::apply_settings(&s, &patch).await {
        Ok(_) => Redirect::to(&with_flash("/settings#backends", true, &msg)).into_response(),
        Err(e) => {
            Redirect::to(&with_flash("/settings#backends", false, &e.message)).into_response()
        }
    }
}

/// `POST /settings/gallery`: NSFW mode and thumbnail density (global preferences).
async fn post_gallery(State(s): State<AppState>, axum::Form(f): FormPairs) -> Response {
    let values: Vec<(String, Value)> = ["nsfw", "density"]
        .iter()
        .filter_map(|k| field(&f, k).map(|v| (k.to_string(), Value::from(v))))
        .collect();
    match run(
        &s,
        Command::SetPreferences {
            scope: "global".into(),
            values,
        },
    )
    .await
    {
        Ok(_) => Redirect::to(&with_flash("/settings#gallery", true, "Saved")).into_response(),
        Err((_, e)) => Redirect::to(&with_flash("/settings#gallery", false, &e)).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size_text(12), "12 B");
        assert_eq!(size_text(2048), "2.0 KiB");
        assert_eq!(size_text(5 * 1_048_576 + 1), "5.0 MiB");
        assert_eq!(size_text(3 * 1_073_741_824), "3.00 GiB");
    }

    #[test]
    fn settings_values_show_as_text_or_json() {
        let s = r#"{"llm_model":"m","mcp_servers":[{"name":"x","url":"http://a"}]}"#;
        assert_eq!(lib_setting(s, "llm_model"), "m");
        assert!(lib_setting(s, "mcp_servers").contains("\"name\": \"x\""));
        assert_eq!(lib_setting(s, "nope"), "");
    }
}
