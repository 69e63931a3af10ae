//! The strengths gallery (`/strengths`): pick an entry with a LoRA, the range of its weight
//! (min, max, step) and optionally a second axis (another slot's LoRA weight), with one fixed
//! seed; the jobs go to the queue and their images fill a grid in weight order as they finish
//! (`/strengths/{sweep}`, live over the event stream with `static/js/strengths.js`). Every sweep
//! is kept (a `strengths_swept` event) and listed, so it can be reopened or run again.

use super::ui::{entry_picker, thumb_url};
use super::{FormPairs, Page, enc, field, flash_of, not_found_page, page, with_flash};
use crate::engine::RANDOM_SENTINEL;
use crate::jobs::projection::JobState;
use crate::library::category::Category;
use crate::library::projection::{Library, Sweep};
use crate::library::search::natural_key;
use crate::web::AppState;
use crate::web::guard::csrf_field;
use crate::web::jobs::{job_of, start_sweep};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Categories whose entries can be swept (their LoRA has a slot).
const SWEPT: [Category; 7] = [
    Category::Characters,
    Category::Looks,
    Category::Outfits,
    Category::Actions,
    Category::Styles,
    Category::Scenes,
    Category::Detailers,
];
/// Categories whose entries can be the second axis (with the character's own LoRA).
const SECOND: [Category; 3] = [Category::Outfits, Category::Actions, Category::Styles];
/// A select longer than this becomes a text field with suggestions.
const LIST_LIMIT: usize = 300;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/strengths", get(show).post(start))
        .route("/strengths/{sweep}", get(sweep_page))
        .route("/strengths/{sweep}/again", post(again))
}

fn has_lora(lib: &Library, c: Category, slug: &str) -> bool {
    lib.get(c, slug)
        .and_then(crate::library::models::lora_name)
        .is_some()
}

/// Entries with a LoRA in `cats`, by category then name: (category, slug, name).
fn with_lora(lib: &Library, cats: &[Category]) -> Vec<(Category, String, String)> {
    let mut out = Vec::new();
    for c in cats {
        let mut list: Vec<(Category, String, String)> = lib
            .shelf(*c)
            .docs
            .values()
            .filter(|e| crate::library::models::lora_name(e).is_some())
            .map(|e| (*c, e.slug.clone(), e.name.clone()))
            .collect();
        list.sort_by_cached_key(|x| natural_key(&x.2));
        out.extend(list);
    }
    out
}

/// A picker of entries with a LoRA (value `category/slug`).
fn lora_picker(
    name: &str,
    id: &str,
    list: &[(Category, String, String)],
    current: Option<&str>,
    extra: &[(&str, &str)],
) -> Markup {
    if list.len() > LIST_LIMIT {
        let list_id = format!("{id}-list");
        return html! {
            input.form-control.form-control-sm #(id) name=(name) value=[current] list=(list_id) placeholder="category/slug";
            datalist #(list_id) {
                @for (c, slug, n) in list.iter().take(LIST_LIMIT) {
                    option value={ (c.key()) "/" (slug) } { (n) }
                }
            }
        };
    }
    html! {
        select.form-select.form-select-sm #(id) name=(name) {
            @for (v, label) in extra {
                option value=(v) selected[current == Some(*v)] { (label) }
            }
            @for c in SWEPT {
                @let mine: Vec<_> = list.iter().filter(|x| x.0 == c).collect();
                @if !mine.is_empty() {
                    optgroup label=(c.desc().title) {
                        @for (cc, slug, n) in mine {
                            @let v = format!("{}/{slug}", cc.key());
                            option value=(v) selected[current == Some(v.as_str())] { (n) }
                        }
                    }
                }
            }
        }
    }
}

fn axes_of(w: &Sweep) -> Value {
    serde_json::from_str(&w.axes).unwrap_or_default()
}

fn axis_text(a: &Value) -> String {
    if a.is_null() {
        return String::new();
    }
    let src = a["source"].as_str().unwrap_or_default();
    format!(
        "{} ({}) {} → {} by {}",
        a["slot"].as_str().unwrap_or_default(),
        if src.is_empty() { "LoRA" } else { src },
        a["min"],
        a["max"],
        a["step"]
    )
}

async fn show(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let body = {
        let lib = s.handle.library();
        body(&s, &lib, &q)
    };
    page(
        &s,
        &Page {
            title: "Strengths",
            section: Some("strengths"),
            scripts: &[],
            flash: flash_of(&q),
            refresh: None,
        },
        body,
    )
    .into_response()
}

fn body(s: &AppState, lib: &Library, q: &HashMap<String, String>) -> Markup {
    let targets = with_lora(lib, &SWEPT);
    let seconds = with_lora(lib, &SECOND);
    let chosen = q.get("target").map(String::as_str);
    let seed = crate::handle::random_seed();
    let sweeps: Vec<&Sweep> = lib.sweeps.values().rev().take(50).collect();
    html! {
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto { "Strengths" }
            span.small.text-body-secondary { "How strong should a LoRA be? One seed, a row of weights." }
        }
        div.row.g-3 {
            div.col-12.col-lg-6 {
                section.card aria-labelledby="sweep-title" {
                    div.card-header { h2.h6.mb-0 #sweep-title { "New sweep" } }
                    div.card-body {
                        @if targets.is_empty() {
                            p.mb-0 { "No entry names a LoRA yet. Give one a LoRA in its editor first." }
                        } @else {
                            form.controls-sm method="post" action="/strengths" data-strengths-form {
                                (csrf_field(s))
                                div.mb-2 {
                                    label.form-label.small for="sw-target" { "Entry whose LoRA is swept" }
                                    (lora_picker("target", "sw-target", &targets, chosen, &[]))
                                }
                                div.mb-2 {
                                    label.form-label.small for="sw-character" { "Shown on (for outfits, actions, styles, scenes, detailers)" }
                                    (entry_picker(lib, Category::Characters, "character", "sw-character",
                                        Some(q.get("character").map_or(RANDOM_SENTINEL, String::as_str)),
                                        &[(RANDOM_SENTINEL, "Random character (picked once, by the seed)"), ("", "No character")], true))
                                }
                                fieldset.row.g-2.mb-2 {
                                    legend.form-label.small.mb-0 { "Its weight" }
                                    div.col-4 { label.form-label.small for="sw-min" { "From" } input.form-control.form-control-sm #sw-min type="number" name="min" step="any" value="0.2"; }
                                    div.col-4 { label.form-label.small for="sw-max" { "To" } input.form-control.form-control-sm #sw-max type="number" name="max" step="any" value="1"; }
                                    div.col-4 { label.form-label.small for="sw-step" { "Step" } input.form-control.form-control-sm #sw-step type="number" name="step" step="any" min="0.01" value="0.2"; }
                                }
                                fieldset.mb-2.border.rounded.p-2 {
                                    legend.form-label.small.mb-1.float-none.w-auto.px-1 { "Second axis (optional)" }
                                    label.form-label.small for="sw-y" { "Also sweep the weight of" }
                                    (lora_picker("y_with", "sw-y", &seconds, None,
                                        &[("", "— nothing: one row —"), ("character", "the character's LoRA")]))
                                    div.row.g-2.mt-1 {
                                        div.col-4 { label.form-label.small for="sw-ymin" { "From" } input.form-control.form-control-sm #sw-ymin type="number" name="y_min" step="any" value="0.4"; }
                                        div.col-4 { label.form-label.small for="sw-ymax" { "To" } input.form-control.form-control-sm #sw-ymax type="number" name="y_max" step="any" value="1"; }
                                        div.col-4 { label.form-label.small for="sw-ystep" { "Step" } input.form-control.form-control-sm #sw-ystep type="number" name="y_step" step="any" min="0.01" value="0.3"; }
                                    }
                                }
                                div.row.g-2.mb-3 {
                                    div.col-12.col-md-4 {
                                        label.form-label.small for="sw-seed" { "Seed" }
                                        input.form-control.form-control-sm #sw-seed type="number" name="seed" min="0" value=(seed) required
                                            aria-describedby="sw-seed-help";
                                        div.form-text #sw-seed-help { "The same for every image" }
                                    }
                                    div.col-12.col-md-8 {
                                        label.form-label.small for="sw-checkpoint" { "Checkpoint" }
                                        (entry_picker(lib, Category::Checkpoints, "checkpoint", "sw-checkpoint", Some(""), &[("", "Default checkpoint")], false))
                                    }
                                }
                                button.btn.btn-primary type="submit" { "Start the sweep" }
                                span.small.text-body-secondary.ms-2 { "At most 64 images per sweep." }
                            }
                        }
                    }
                }
            }
            div.col-12.col-lg-6 {
                section.card aria-labelledby="past-title" {
                    div.card-header { h2.h6.mb-0 #past-title { "Sweeps" } }
                    @if sweeps.is_empty() {
                        div.card-body { p.small.text-body-secondary.mb-0 { "None yet." } }
                    } @else {
                        ul.list-group.list-group-flush.sweep-list {
                            @for w in &sweeps {
                                @let axes = axes_of(w);
                                @let (c, slug) = &w.target;
                                @let name = lib.get(*c, slug).map_or(slug.clone(), |e| e.name.clone());
                                li.list-group-item.d-flex.flex-wrap.gap-2.align-items-center {
                                    a.me-auto href={ "/strengths/" (ulid::Ulid::from(w.id)) } {
                                        strong { (name) } " "
                                        span.small.text-body-secondary { (c.desc().singular) " · " (w.cells.len()) " images" }
                                    }
                                    span.small.text-body-secondary.w-100 { (axis_text(&axes["x"]))
                                        @if !axes["y"].is_null() { " × " (axis_text(&axes["y"])) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The request a sweep form describes (the body of `/api/strengths`).
fn request_of_form(lib: &Library, f: &[(String, String)]) -> Result<Map<String, Value>, String> {
    let target = field(f, "target").unwrap_or_default().trim();
    let (c, slug) = target
        .split_once('/')
        .and_then(|(c, s)| Category::parse(c).map(|c| (c, s.to_string())))
        .filter(|(c, _)| SWEPT.contains(c))
        .ok_or_else(|| format!("choose the entry whose LoRA is swept (got '{target}')"))?;
    if !has_lora(lib, c, &slug) {
        return Err(format!(
            "the {} '{slug}' names no LoRA to sweep",
            c.desc().singular
        ));
    }
    let num = |k: &str| -> Result<Option<f64>, String> {
        match field(f, k).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("{k} must be a number (got '{v}')")),
        }
    };
    let mut m = Map::new();
    m.insert("category".into(), c.key().into());
    m.insert("slug".into(), slug.into());
    if c.desc().character_selector
        && let Some(ch) = field(f, "character").filter(|v| !v.is_empty())
    {
        m.insert("character".into(), ch.into());
    }
    for (k, v) in [
        ("min", num("min")?),
        ("max", num("max")?),
        ("step", num("step")?),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(seed) = field(f, "seed").map(str::trim).filter(|v| !v.is_empty()) {
        let seed: u64 = seed
            .parse()
            .map_err(|_| format!("the seed must be a whole number (got '{seed}')"))?;
        m.insert("seed".into(), seed.into());
    }
    if let Some(ck) = field(f, "checkpoint").filter(|v| !v.is_empty()) {
        m.insert("checkpoint".into(), ck.into());
    }
    let y_with = field(f, "y_with").unwrap_or_default().trim();
    if !y_with.is_empty() {
        let slot = if y_with == "character" {
            "character".to_string()
        } else {
            let (yc, yslug) = y_with
                .split_once('/')
                .and_then(|(c, s)| Category::parse(c).map(|c| (c, s.to_string())))
                .filter(|(c, _)| SECOND.contains(c))
                .ok_or_else(|| format!("'{y_with}' cannot be the second axis"))?;
            if yc == c {
                return Err("the second axis needs another kind of entry than the first".into());
            }
            m.insert("with".into(), json!({ yc.key(): yslug }));
            yc.desc().singular.to_string()
        };
        m.insert(
            "y".into(),
            json!({"slot": slot, "min": num("y_min")?.unwrap_or(0.0),
                   "max": num("y_max")?.unwrap_or(1.0), "step": num("y_step")?.unwrap_or(0.1)}),
        );
    }
    Ok(m)
}

/// `POST /strengths`: starts a sweep from the form and opens it.
async fn start(State(s): State<AppState>, axum::Form(f): FormPairs) -> Response {
    let back = match field(&f, "target") {
        Some(t) if !t.is_empty() => format!("/strengths?target={}", enc(t)),
        _ => "/strengths".to_string(),
    };
    let m = {
        let lib = s.handle.library();
        request_of_form(&lib, &f)
    };
    let m = match m {
        Ok(m) => m,
        Err(e) => return Redirect::to(&with_flash(&back, false, &e)).into_response(),
    };
    match start_sweep(&s, m).await {
        Ok((sweep, cells)) => Redirect::to(&with_flash(
            &format!("/strengths/{sweep}"),
            true,
            &format!(
                "Queued {} images; they fill the grid as they finish",
                cells.len()
            ),
        ))
        .into_response(),
        Err(e) => Redirect::to(&with_flash(&back, false, &e.message)).into_response(),
    }
}

/// `POST /strengths/{sweep}/again`: the same sweep (same request, seed and axes) once more.
async fn again(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(sweep) = ulid::Ulid::from_string(&id).map(u128::from) else {
        return not_found_page(&s, "There is no such sweep.");
    };
    let m = {
        let lib = s.handle.library();
        let Some(w) = lib.sweeps.get(&sweep) else {
            drop(lib);
            return not_found_page(&s, "There is no such sweep.");
        };
        let mut m: Map<String, Value> = serde_json::from_str(&w.request).unwrap_or_default();
        let axes = axes_of(w);
        for k in ["min", "max", "step"] {
            m.insert(k.into(), axes["x"][k].clone());
        }
        if !axes["y"].is_null() {
            m.insert(
                "y".into(),
                json!({"slot": axes["y"]["slot"], "min": axes["y"]["min"], "max": axes["y"]["max"], "step": axes["y"]["step"]}),
            );
        }
        m
    };
    match start_sweep(&s, m).await {
        Ok((new, cells)) => Redirect::to(&with_flash(
            &format!("/strengths/{new}"),
            true,
            &format!("Queued the sweep again: {} images", cells.len()),
        ))
        .into_response(),
        Err(e) => Redirect::to(&with_flash(&format!("/strengths/{id}"), false, &e.message))
            .into_response(),
    }
}

async fn sweep_page(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Ok(sweep) = ulid::Ulid::from_string(&id).map(u128::from) else {
        return not_found_page(&s, "There is no such sweep.");
    };
    let Some(w) = s.handle.library().sweeps.get(&sweep).cloned() else {
        return not_found_page(&s, "There is no such sweep.");
    };
    let body = grid(&s, &w);
    page(
        &s,
        &Page {
            title: "Strengths sweep",
            section: Some("strengths"),
            scripts: &["strengths.js"],
            flash: flash_of(&q),
            refresh: None,
        },
        body,
    )
    .into_response()
}

/// Sorted distinct values.
fn distinct(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    v
}

fn grid(s: &AppState, w: &Sweep) -> Markup {
    let axes = axes_of(w);
    let request: Value = serde_json::from_str(&w.request).unwrap_or_default();
    let (c, slug) = &w.target;
    let lib = s.handle.library();
    let name = lib.get(*c, slug).map_or(slug.clone(), |e| e.name.clone());
    drop(lib);
    let xs = distinct(w.cells.iter().map(|c| c.x).collect());
    let ys: Vec<Option<f64>> = if w.cells.iter().any(|c| c.y.is_some()) {
        distinct(w.cells.iter().filter_map(|c| c.y).collect())
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None]
    };
    let cell = |x: f64, y: Option<f64>| {
        w.cells.iter().find(|c| {
            (c.x - x).abs() < 1e-9
                && match (c.y, y) {
                    (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                    (None, None) => true,
                    _ => false,
                }
        })
    };
    let id = ulid::Ulid::from(w.id).to_string();
    let jobs: HashMap<u128, crate::jobs::projection::Job> = w
        .cells
        .iter()
        .filter_map(|c| job_of(s, c.job).map(|j| (c.job, j)))
        .collect();
    let done = jobs
        .values()
        .filter(|j| j.state == JobState::Succeeded)
        .count();
    html! {
        nav aria-label="breadcrumb" {
            ol.breadcrumb.small.mb-2 {
                li.breadcrumb-item { a href="/strengths" { "Strengths" } }
                li.breadcrumb-item.active aria-current="page" { (name) }
            }
        }
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-2 {
            h1.h3.mb-0.me-auto {
                a href={ "/" (c.desc().singular) "/" (slug) } { (name) }
                " " span.small.text-body-secondary { "strengths" }
            }
            form method="post" action={ "/strengths/" (id) "/again" } {
                (csrf_field(s))
                button.btn.btn-sm.btn-outline-primary type="submit" title="The same request, seed and weights, once more" { "Run again" }
            }
        }
        p.small.text-body-secondary {
            "Seed " strong { (request["seed"]) }
            " · " (axis_text(&axes["x"]))
            @if !axes["y"].is_null() { " · rows: " (axis_text(&axes["y"])) }
            @if let Some(ch) = request["character"].as_str() {
                " · on " (if ch == RANDOM_SENTINEL { "a random character" } else { ch })
            }
        }
        div.table-responsive {
            table.table.table-sm.align-middle.sweep-grid data-sweep=(id) {
                caption.small { "Images in weight order; each fills in as its job finishes." }
                thead {
                    tr {
                        th scope="col" { @if ys[0].is_some() { (axes["y"]["slot"].as_str().unwrap_or("y")) " ↓ · " } (axes["x"]["slot"].as_str().unwrap_or("x")) " →" }
                        @for x in &xs { th scope="col" data-x=(x) { (x) } }
                    }
                }
                tbody {
                    @for y in &ys {
                        tr {
                            th scope="row" { @match y { Some(v) => { (v) } None => { "weight" } } }
                            @for x in &xs {
                                td {
                                    @if let Some(cl) = cell(*x, *y) {
                                        @let job = jobs.get(&cl.job);
                                        @let jid = ulid::Ulid::from(cl.job).to_string();
                                        @let state = job.map(|j| j.state);
                                        @let image = job.and_then(|j| j.images.first().cloned());
                                        figure.sweep-cell.mb-0 data-job=(jid) data-x=(cl.x) data-y=[cl.y]
                                            data-status=(state.map_or("unknown", |s| s.status())) {
                                            @match image {
                                                Some(img) => {
                                                    a href={ "/gallery/image?path=" (enc(&img)) } {
                                                        img src=(thumb_url(&img, 240)) alt={ "Weight " (cl.x) @if let Some(y) = cl.y { " × " (y) } } loading="lazy" width="160" height="213";
                                                    }
                                                }
                                                None => {
                                                    div.sweep-wait.placeholder-thumb {
                                                        span.small.cell-status { (state.map_or("unknown", |s| s.status())) }
                                                    }
                                                    div.progress.cell-progress role="progressbar" aria-label={ "Progress at " (cl.x) } aria-valuemin="0" aria-valuemax="1" aria-valuenow="0" {
                                                        div.progress-bar.job-bar {}
                                                    }
                                                }
                                            }
                                            figcaption.small.text-center { (cl.x) @if let Some(y) = cl.y { " × " (y) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.small.text-body-secondary #sweep-progress data-total=(w.cells.len()) { (done) " of " (w.cells.len()) " done" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_weights_sort_and_merge_float_noise() {
        assert_eq!(
            distinct(vec![0.6, 0.2, 0.6000000001, 0.4]),
            vec![0.2, 0.4, 0.6]
        );
    }
}
