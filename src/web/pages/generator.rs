//! The generator (`/generator`, the original's mix and match): one accordion section per
//! category with a filter box and multi-select, the character selector with "Random
//! character", the character's fields and outfit, checkpoint, size, seed (random or fixed) and
//! a batch count; the composed prompt refreshed on every change (`POST
//! /generator/preview_prompt`, JSON with each tag's source); Generate; a strip of the
//! generator's recent jobs with live progress; "save as preset". The page's state is kept in
//! the generator preferences (`/api/preferences/generator`). Works without JavaScript (the form
//! posts to `/generator`); `static/js/generator.js` makes it live.

use super::ui::{entry_picker, full_url, thumb_url};
use super::{FormPairs, Page, enc, field, flash_of, page, run, with_flash};
use crate::engine::RANDOM_SENTINEL;
use crate::engine::prompt::FIELD_SECTIONS;
use crate::jobs::request::{self, GenRequest};
use crate::library::category::Category;
use crate::library::command::Command;
use crate::library::projection::Library;
use crate::library::search::natural_key;
use crate::store::event::Source;
use crate::web::guard::csrf_field;
use crate::web::{ApiError, AppState};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The categories the generator mixes in, in accordion order.
pub const MIX: [Category; 6] = [
    Category::Looks,
    Category::Outfits,
    Category::Actions,
    Category::Styles,
    Category::Scenes,
    Category::Detailers,
];
/// Entries listed per section before the filter box is needed.
const LISTED: usize = 120;
/// Most images one Generate makes.
pub const MAX_BATCH: u64 = 16;
/// Recent jobs shown in the strip.
const RECENT: usize = 12;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/generator", get(show).post(post_form))
        .route("/generator/preview_prompt", post(preview_prompt))
        .route("/generator/generate", post(generate))
        .route("/generator/options", get(options))
        .route("/generator/character", get(character_partial))
}

/// The generator's state: what the page shows and what a run makes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenState {
    /// `""` (no character), `__random__`, or a slug.
    pub character: String,
    pub extras: Vec<(Category, String)>,
    pub fields: Option<Vec<String>>,
    pub active_outfit: Option<String>,
    pub checkpoint: Option<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    /// `None`: a new seed every image.
    pub seed: Option<u64>,
    pub batch: u64,
    pub extra_positive: String,
    pub extra_negative: String,
}

fn parse_extra(s: &str) -> Option<(Category, String)> {
    let (c, slug) = s.split_once('/')?;
    let c = Category::parse(c).filter(|c| MIX.contains(c))?;
    crate::library::category::is_slug(slug).then(|| (c, slug.to_string()))
}

impl GenState {
    /// The state kept in the preferences.
    pub fn from_prefs(lib: &Library) -> GenState {
        let Some(m) = lib.preferences.get("generator") else {
            return GenState {
                character: RANDOM_SENTINEL.into(),
                batch: 1,
                ..GenState::default()
            };
        };
        let get = |k: &str| m.get(k).and_then(|v| serde_json::from_str::<Value>(v).ok());
        let text = |k: &str| get(k).and_then(|v| v.as_str().map(String::from));
        let list = |k: &str| {
            get(k).and_then(|v| {
                v.as_array().map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect::<Vec<_>>()
                })
            })
        };
        GenState {
            character: text("character").unwrap_or_else(|| RANDOM_SENTINEL.into()),
            extras: list("extras")
                .unwrap_or_default()
                .iter()
                .filter_map(|e| parse_extra(e))
                .collect(),
            fields: list("fields"),
            active_outfit: text("active_outfit"),
            checkpoint: text("checkpoint"),
            width: get("width").and_then(|v| v.as_u64()),
            height: get("height").and_then(|v| v.as_u64()),
            seed: get("seed").and_then(|v| v.as_u64()),
            batch: get("batch")
                .and_then(|v| v.as_u64())
                .unwrap_or(1)
                .clamp(1, MAX_BATCH),
            extra_positive: text("extra_positive").unwrap_or_default(),
            extra_negative: text("extra_negative").unwrap_or_default(),
        }
    }

    /// The state a posted form describes. Numbers that do not parse are errors.
    pub fn from_form(f: &[(String, String)]) -> Result<GenState, String> {
        let text = |k: &str| {
            field(f, k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        let num = |k: &str| -> Result<Option<u64>, String> {
            match text(k) {
                None => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| format!("{k} must be a whole number (got '{v}')")),
            }
        };
        let fields = field(f, "fields_present").map(|_| {
            f.iter()
                .filter(|(k, _)| k == "fields")
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        });
        let seed = if field(f, "seed_mode") == Some("random") {
            None
        } else {
            num("seed")?
        };
        let mut extras = Vec::new();
        for (k, v) in f {
            if k == "extra" {
                let e = parse_extra(v).ok_or_else(|| format!("'{v}' is not an entry to mix in"))?;
                if !extras.contains(&e) {
                    extras.push(e);
                }
            }
        }
        Ok(GenState {
            character: field(f, "character").unwrap_or_default().trim().to_string(),
            extras,
            fields,
            active_outfit: text("active_outfit"),
            checkpoint: text("checkpoint"),
            width: num("width")?,
            height: num("height")?,
            seed,
            batch: num("batch")?.unwrap_or(1).clamp(1, MAX_BATCH),
            extra_positive: field(f, "extra_positive")
                .unwrap_or_default()
                .trim()
                .to_string(),
            extra_negative: field(f, "extra_negative")
                .unwrap_or_default()
                .trim()
                .to_string(),
        })
    }

    /// The state a JSON body describes (what the script sends).
    pub fn from_json(m: &Map<String, Value>) -> Result<GenState, String> {
        const KEYS: [&str; 11] = [
            "character",
            "extras",
            "fields",
            "active_outfit",
            "checkpoint",
            "width",
            "height",
            "seed",
            "batch",
            "extra_positive",
            "extra_negative",
        ];
        if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!("unknown key \"{k}\" (known: {})", KEYS.join(", ")));
        }
        let text = |k: &str| -> Result<Option<String>, String> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(_) => Err(format!("\"{k}\" must be a string")),
            }
        };
        let num = |k: &str| -> Result<Option<u64>, String> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .map(Some)
                    .ok_or_else(|| format!("\"{k}\" must be a whole number")),
            }
        };
        let mut extras = Vec::new();
        if let Some(v) = m.get("extras").filter(|v| !v.is_null()) {
            for item in v.as_array().ok_or("\"extras\" must be a list")? {
                let e = match item {
                    Value::String(s) => parse_extra(s),
                    Value::Object(o) => match (o.get("category"), o.get("slug")) {
                        (Some(Value::String(c)), Some(Value::String(s))) => {
                            parse_extra(&format!("{c}/{s}"))
                        }
                        _ => None,
                    },
                    _ => None,
                }
                .ok_or_else(|| format!("{item} is not an entry to mix in (category/slug)"))?;
                if !extras.contains(&e) {
                    extras.push(e);
                }
            }
        }
        let fields = match m.get("fields") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_array()
                    .and_then(|a| a.iter().map(|x| x.as_str().map(String::from)).collect())
                    .ok_or("\"fields\" must be a list of strings")?,
            ),
        };
        Ok(GenState {
            character: text("character")?.unwrap_or_default(),
            extras,
            fields,
            active_outfit: text("active_outfit")?.filter(|s| !s.is_empty()),
            checkpoint: text("checkpoint")?.filter(|s| !s.is_empty()),
            width: num("width")?,
            height: num("height")?,
            seed: num("seed")?,
            batch: num("batch")?.unwrap_or(1).clamp(1, MAX_BATCH),
            extra_positive: text("extra_positive")?.unwrap_or_default(),
            extra_negative: text("extra_negative")?.unwrap_or_default(),
        })
    }

    /// The preference values that keep this state.
    pub fn pref_values(&self) -> Vec<(String, Value)> {
        vec![
            ("character".into(), json!(self.character)),
            (
                "extras".into(),
                json!(
                    self.extras
                        .iter()
                        .map(|(c, s)| format!("{}/{s}", c.key()))
                        .collect::<Vec<_>>()
                ),
            ),
            (
                "fields".into(),
                json!(self.fields.clone().unwrap_or_default()),
            ),
            ("active_outfit".into(), json!(self.active_outfit)),
            ("checkpoint".into(), json!(self.checkpoint)),
            ("width".into(), json!(self.width)),
            ("height".into(), json!(self.height)),
            ("seed".into(), json!(self.seed)),
            ("batch".into(), json!(self.batch)),
            ("extra_positive".into(), json!(self.extra_positive)),
            ("extra_negative".into(), json!(self.extra_negative)),
        ]
    }

    /// The generation request (the body of `/api/generate`) with `seed`.
    pub fn request(&self, seed: Option<u64>) -> Map<String, Value> {
        let mut m = Map::new();
        if !self.character.is_empty() {
            m.insert("character".into(), self.character.clone().into());
        }
        if !self.extras.is_empty() {
            m.insert(
                "extras".into(),
                self.extras
                    .iter()
                    .map(|(c, s)| json!({"category": c.key(), "slug": s}))
                    .collect(),
            );
        }
        if let Some(f) = self.fields.as_ref().filter(|f| !f.is_empty()) {
            m.insert("fields".into(), json!(f));
        }
        if let Some(o) = &self.active_outfit {
            m.insert("active_outfit".into(), o.clone().into());
        }
        if let Some(c) = &self.checkpoint {
            m.insert("checkpoint".into(), c.clone().into());
        }
        for (k, v) in [("width", self.width), ("height", self.height)] {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        }
        if let Some(s) = seed {
            m.insert("seed".into(), s.into());
        }
        for (k, v) in [
            ("extra_positive", &self.extra_positive),
            ("extra_negative", &self.extra_negative),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), v.clone().into());
            }
        }
        m
    }
}

/// The composed prompt of a state, as the script renders it: prompts, each tag with its
/// source, the dropped tags, warnings, the character picked (for a random one), the LoRAs.
pub fn preview_json(lib: &Library, st: &GenState) -> Result<Value, String> {
    let req = GenRequest::from_json(&st.request(Some(st.seed.unwrap_or(1))))?;
    let r =
        request::resolve(lib, &req, 1, &request::Backend::default()).map_err(|e| e.to_string())?;
    let x = &r.generation.explanation;
    Ok(json!({
        "prompts": r.generation.prompts,
        "tags": {"main": x.main, "negative": x.negative, "face": x.face, "hand": x.hand},
        "removed": x.removed,
        "warnings": r.generation.warnings().collect::<Vec<_>>(),
        "character": r.character,
        "random_character": st.character == RANDOM_SENTINEL,
        "loras": r.generation.report.loras,
        "checkpoint": r.checkpoint,
        "seed": r.seed,
    }))
}

/// The prompt panel (server-rendered: the page's first view and the no-JavaScript path).
fn prompt_panel(lib: &Library, st: &GenState) -> Markup {
    match preview_json(lib, st) {
        Err(e) => html! { div.alert.alert-info.small.mb-0 { (e) } },
        Ok(v) => html! {
            @if v["random_character"] == true {
                @if let Some(ch) = v["character"].as_str() {
                    p.small.text-body-secondary { "Random character — this preview picked "
                        a href={ "/character/" (ch) } { (ch) } "; each image picks anew." }
                }
            }
            @for (label, key) in [("Positive", "main"), ("Negative", "negative"), ("Face", "face"), ("Hand", "hand")] {
                div.mb-2.prompt-block data-kind=(key) {
                    div.small.fw-semibold { (label) }
                    @let tags = v["tags"][key].as_array().cloned().unwrap_or_default();
                    @if tags.is_empty() {
                        span.small.text-body-secondary { "(empty)" }
                    } @else {
                        div.tags {
                            @for t in &tags {
                                @let source = t["source"].as_str().unwrap_or_default();
                                span.tag tabindex="0" title=(source) data-source=(source) {
                                    (t["tag"].as_str().unwrap_or_default())
                                    span.visually-hidden { " (from " (source) ")" }
                                }
                            }
                        }
                    }
                }
            }
            @let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
            @if !warnings.is_empty() {
                ul.small.text-warning.mt-2.mb-0 {
                    @for w in &warnings { li { (w.as_str().unwrap_or_default()) } }
                }
            }
        },
    }
}

/// The options of one accordion section: the chosen ones first, then by name; `q` filters.
fn section_options(
    lib: &Library,
    c: Category,
    st: &GenState,
    q: &str,
) -> (Vec<(String, String, bool)>, usize) {
    let shelf = &lib.shelf(c).docs;
    let chosen: Vec<&String> = st
        .extras
        .iter()
        .filter(|(cc, _)| *cc == c)
        .map(|(_, s)| s)
        .collect();
    let terms: Vec<String> = q
        .to_lowercase()
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut list: Vec<(String, String, bool)> = shelf
        .values()
        .filter(|e| {
            chosen.contains(&&e.slug)
                || terms.iter().all(|t| {
                    e.name.to_lowercase().contains(t.as_str()) || e.slug.contains(t.as_str())
                })
        })
        .map(|e| (e.slug.clone(), e.name.clone(), chosen.contains(&&e.slug)))
        .collect();
    let total = list.len();
    list.sort_by_cached_key(|(_, n, on)| (!*on, natural_key(n)));
    list.truncate(LISTED.max(chosen.len()));
    (list, total)
}

fn options_markup(c: Category, list: &[(String, String, bool)], total: usize) -> Markup {
    html! {
        @for (slug, name, on) in list {
            @let id = format!("x-{}-{slug}", c.key());
            div.form-check.small {
                input.form-check-input type="checkbox" name="extra" value={ (c.key()) "/" (slug) } id=(id) checked[*on];
                label.form-check-label for=(id) { (name) }
            }
        }
        @if list.is_empty() {
            p.small.text-body-secondary.mb-0 { "Nothing matches." }
        }
        @if total > list.len() {
            p.small.text-body-secondary.mb-0.mt-1 { (total - list.len()) " more — narrow it down with the filter" }
        }
    }
}

/// The character's fields (by section, with their values) and outfit choice.
fn character_fields(lib: &Library, st: &GenState) -> Markup {
    if st.character.is_empty() {
        return html! { p.small.text-body-secondary.mb-0 { "No character: only the mixed-in entries make the prompt." } };
    }
    let chosen = st.fields.clone().filter(|f| !f.is_empty());
    let e = lib.get(Category::Characters, &st.character);
    let v = e.map(|e| e.value());
    let outfits: Vec<String> = v
        .as_ref()
        .and_then(|v| v.get("wardrobe").and_then(Value::as_object))
        .map(|w| {
            if w.values().any(Value::is_object) {
                w.keys().cloned().collect()
            } else {
                vec!["default".to_string()]
            }
        })
        .unwrap_or_default();
    let defaults = e.map(|e| e.default_fields.clone()).unwrap_or_default();
    let active = st
        .active_outfit
        .clone()
        .filter(|o| outfits.contains(o))
        .or_else(|| outfits.iter().find(|o| *o == "default").cloned())
        .or_else(|| outfits.first().cloned());
    let value_of = |section: &str, key: &str| -> String {
        let Some(v) = &v else { return String::new() };
        let x = match section {
            "wardrobe" => {
                let w = v.get("wardrobe");
                let nested = w
                    .and_then(Value::as_object)
                    .is_some_and(|m| m.values().any(Value::is_object));
                if nested {
                    w.and_then(|w| w.get(active.as_deref().unwrap_or("default")))
                        .and_then(|o| o.get(key))
                } else {
                    w.and_then(|w| w.get(key))
                }
            }
            "special" if key == "name" => v.get("character_name"),
            "special" => v.get("tags"),
            _ => v.get(section).and_then(|s| s.get(key)),
        };
        match x {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    };
    html! {
        @if st.character != RANDOM_SENTINEL && !outfits.is_empty() {
            div.mb-2 {
                label.form-label.small for="gen-outfit" { "Outfit" }
                select.form-select.form-select-sm #gen-outfit name="active_outfit" {
                    @for o in &outfits {
                        option value=(o) selected[active.as_deref() == Some(o.as_str())] { (o) }
                    }
                }
            }
        }
        fieldset.fields {
            legend.small.fw-semibold.mb-1 { "Character fields in the prompt" }
            input type="hidden" name="fields_present" value="1";
            @if st.character == RANDOM_SENTINEL {
                p.small.text-body-secondary.mb-1 { "A random character: the ticked fields are used for whichever is picked." }
            }
            div.row.row-cols-1.row-cols-sm-2.g-2 {
                @for (section, keys) in FIELD_SECTIONS {
                    @let shown: Vec<(&str, String)> = keys.iter().map(|k| (*k, value_of(section, k)))
                        .filter(|(_, val)| st.character == RANDOM_SENTINEL || !val.trim().is_empty()).collect();
                    @if !shown.is_empty() {
                        div.col {
                            div.field-group.border.rounded.p-2.h-100 {
                                div.small.fw-semibold.mb-1.text-capitalize { (section) }
                                @for (k, val) in &shown {
                                    @let name = format!("{section}::{k}");
                                    @let id = format!("gf-{section}-{k}");
                                    @let on = match &chosen { Some(c) => c.contains(&name), None => defaults.is_empty() || defaults.contains(&name) };
                                    div.form-check.small {
                                        input.form-check-input type="checkbox" name="fields" value=(name) id=(id) checked[on];
                                        label.form-check-label for=(id) {
                                            span.fw-medium { (k) } " "
                                            span.text-body-secondary.field-value { (val) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A job of the strip: its id, status, and image once it has one.
struct Recent {
    job: Option<String>,
    status: &'static str,
    image: Option<String>,
    at: u64,
}

/// The generator's newest jobs: those still running (from the jobs projection) and its newest
/// images (from the image index, which keeps every finished one).
fn recent(s: &AppState) -> Vec<Recent> {
    let mut out: Vec<Recent> = Vec::new();
    {
        let lib = s.handle.library();
        for id in lib.jobs.queued.iter().chain(&lib.jobs.submitted) {
            if let Some(j) = lib.jobs.get(*id).filter(|j| j.info.target.is_none()) {
                out.push(Recent {
                    job: Some(ulid::Ulid::from(j.id).to_string()),
                    status: j.state.status(),
                    image: None,
                    at: j.requested_at / 1000,
                });
            }
        }
    }
    let ix = s.images.current();
    let f = crate::gallery::index::Filter {
        category: Some(None),
        ..Default::default()
    };
    let (ids, _) = ix.page(&f, &[], 0, RECENT);
    for id in ids {
        let r = ix.rows[id as usize];
        out.push(Recent {
            job: r.job().map(|j| ulid::Ulid::from(j).to_string()),
            status: "done",
            image: Some(ix.path_of(&r)),
            at: u64::from(r.at),
        });
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.at));
    out.truncate(RECENT);
    out
}

fn recent_strip(list: &[Recent]) -> Markup {
    html! {
        div.gen-recent.d-flex.gap-2.overflow-auto #gen-recent aria-live="polite" {
            @if list.is_empty() {
                p.small.text-body-secondary.mb-0.gen-recent-empty { "Nothing generated here yet." }
            }
            @for r in list {
                figure.gen-job.mb-0 data-job=[r.job.as_deref()] data-status=(r.status) {
                    @if let Some(img) = &r.image {
                        a href={ "/gallery/image?path=" (enc(img)) "&category=none" } {
                            img src=(thumb_url(img, 160)) data-full=(full_url(img)) alt="A generated image" width="96" height="128" loading="lazy";
                        }
                    } @else {
                        div.gen-job-wait.placeholder-thumb {
                            span.small { (r.status) }
                        }
                        div.progress.gen-job-progress role="progressbar" aria-label="Progress" aria-valuemin="0" aria-valuemax="1" aria-valuenow="0" {
                            div.progress-bar.job-bar {}
                        }
                    }
                }
            }
        }
    }
}

async fn show(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let s2 = s.clone();
    let q2 = q.clone();
    let body = match tokio::task::spawn_blocking(move || body(&s2, &q2)).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    page(
        &s,
        &Page {
            title: "Generator",
            section: Some("generator"),
            scripts: &["generator.js"],
            flash: flash_of(&q),
            refresh: None,
        },
        body,
    )
    .into_response()
}

/// The generator page's content. Blocking (the strip reads the image index).
pub fn body(s: &AppState, q: &HashMap<String, String>) -> Markup {
    let list = recent(s);
    let lib = s.handle.library();
    let st = GenState::from_prefs(&lib);
    let mix_count = |c: Category| st.extras.iter().filter(|(x, _)| *x == c).count();
    html! {
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto { "Generator" }
            span.small.text-body-secondary { "Mix entries of any kind, on a character or none" }
        }
        form.controls-sm #gen-form method="post" action="/generator" data-generator {
            (csrf_field(s))
            div.row.g-3 {
                div.col-12.col-lg-5 {
                    section.card.mb-3 aria-labelledby="mix-title" {
                        div.card-header.d-flex.align-items-center {
                            h2.h6.mb-0.me-auto #mix-title { "Mix in" }
                            span.small.text-body-secondary #mix-count { (st.extras.len()) " chosen" }
                        }
                        div.accordion.accordion-flush #mix {
                            @for c in MIX {
                                @let d = c.desc();
                                @let filter = q.get(&format!("f_{}", d.key)).cloned().unwrap_or_default();
                                @let (opts, total) = section_options(&lib, c, &st, &filter);
                                @let open = !filter.is_empty();
                                div.accordion-item data-mix=(d.key) {
                                    h3.accordion-header {
                                        button.accordion-button.collapsed[!open] type="button" data-bs-toggle="collapse"
                                            data-bs-target={ "#mix-" (d.key) } aria-expanded=(open) aria-controls={ "mix-" (d.key) } {
                                            span { (d.title) }
                                            span.badge.text-bg-primary.mix-badge data-mix-count=(d.key) hidden[mix_count(c) == 0] { (mix_count(c)) }
                                        }
                                    }
                                    div.accordion-collapse.collapse.show[open] id={ "mix-" (d.key) } data-bs-parent="#mix" {
                                        div.accordion-body.py-2 {
                                            div.input-group.input-group-sm.mb-2 {
                                                label.visually-hidden for={ "filter-" (d.key) } { "Filter " (d.title) }
                                                input.form-control #{ "filter-" (d.key) } type="search" name={ "f_" (d.key) } value=(filter)
                                                    placeholder={ "Filter " (d.title.to_lowercase()) } data-mix-filter=(d.key);
                                                button.btn.btn-outline-secondary.no-js-only type="submit" name="op" value="filter" { "Filter" }
                                            }
                                            div.mix-options data-mix-options=(d.key) {
                                                (options_markup(c, &opts, total))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    section.card.mb-3 aria-labelledby="char-title" {
                        div.card-header { h2.h6.mb-0 #char-title { "Character" } }
                        div.card-body {
                            div.mb-2 {
                                label.visually-hidden for="gen-character" { "Character" }
                                (entry_picker(&lib, Category::Characters, "character", "gen-character",
                                    Some(st.character.as_str()),
                                    &[(RANDOM_SENTINEL, "Random character"), ("", "No character")], true))
                            }
                            div #gen-character-fields { (character_fields(&lib, &st)) }
                        }
                    }
                }
                div.col-12.col-lg-7 {
                    section.card.mb-3 aria-labelledby="opts-title" {
                        div.card-header { h2.h6.mb-0 #opts-title { "Image" } }
                        div.card-body {
                            div.row.g-2.mb-2 {
                                div.col-12.col-md-6 {
                                    label.form-label.small for="gen-checkpoint" { "Checkpoint" }
                                    (entry_picker(&lib, Category::Checkpoints, "checkpoint", "gen-checkpoint",
                                        Some(st.checkpoint.as_deref().unwrap_or("")), &[("", "Default checkpoint")], false))
                                }
                                div.col-6.col-md-3 {
                                    label.form-label.small for="gen-width" { "Width" }
                                    input.form-control.form-control-sm #gen-width type="number" name="width" min="64" max="8192" step="8"
                                        placeholder="832" value=[st.width];
                                }
                                div.col-6.col-md-3 {
                                    label.form-label.small for="gen-height" { "Height" }
                                    input.form-control.form-control-sm #gen-height type="number" name="height" min="64" max="8192" step="8"
                                        placeholder="1216" value=[st.height];
                                }
                            }
                            div.row.g-2.mb-2.align-items-end {
                                fieldset.col-12.col-md-7 {
                                    legend.form-label.small.mb-1 { "Seed" }
                                    div.d-flex.align-items-center.gap-2 {
                                        div.form-check.form-check-inline.small.mb-0 {
                                            input.form-check-input #seed-random type="radio" name="seed_mode" value="random" checked[st.seed.is_none()];
                                            label.form-check-label for="seed-random" { "Random" }
                                        }
                                        div.form-check.form-check-inline.small.mb-0 {
                                            input.form-check-input #seed-fixed type="radio" name="seed_mode" value="fixed" checked[st.seed.is_some()];
                                            label.form-check-label for="seed-fixed" { "Fixed" }
                                        }
                                        label.visually-hidden for="gen-seed" { "Seed value" }
                                        input.form-control.form-control-sm #gen-seed type="number" name="seed" min="0"
                                            placeholder="seed" value=[st.seed];
                                    }
                                }
                                div.col-12.col-md-5 {
                                    label.form-label.small for="gen-batch" { "Images per run" }
                                    input.form-control.form-control-sm #gen-batch type="number" name="batch" min="1" max=(MAX_BATCH) value=(st.batch);
                                }
                            }
                            div.row.g-2.mb-3 {
                                div.col-md-6 {
                                    label.form-label.small for="extra-positive" { "Extra positive" }
                                    textarea.form-control.form-control-sm #extra-positive name="extra_positive" rows="2" data-tag-autocomplete { (st.extra_positive) }
                                }
                                div.col-md-6 {
                                    label.form-label.small for="extra-negative" { "Extra negative" }
                                    textarea.form-control.form-control-sm #extra-negative name="extra_negative" rows="2" data-tag-autocomplete { (st.extra_negative) }
                                }
                            }
                            div.d-flex.flex-wrap.gap-2 {
                                button.btn.btn-primary type="submit" name="op" value="generate" data-gen-generate { "Generate" }
                                button.btn.btn-outline-secondary.no-js-only type="submit" name="op" value="preview" { "Update prompt" }
                            }
                            div.input-group.input-group-sm.mt-2.save-preset {
                                label.input-group-text for="preset-name" { "Save as a preset" }
                                input.form-control #preset-name name="preset_name" placeholder="Preset name";
                                button.btn.btn-outline-secondary type="submit" name="op" value="save_preset" { "Save preset" }
                            }
                        }
                    }
                    section.card.mb-3 aria-labelledby="recent-title" {
                        div.card-header.d-flex.align-items-center {
                            h2.h6.mb-0.me-auto #recent-title { "Recent" }
                            a.small href="/gallery?category=none" { "all generator images" }
                        }
                        div.card-body.py-2 { (recent_strip(&list)) }
                    }
                    section.card aria-labelledby="gprompt-title" {
                        div.card-header.d-flex.align-items-center {
                            h2.h6.mb-0.me-auto #gprompt-title { "Composed prompt" }
                            span.small.text-body-secondary { "Hover or focus a tag to see where it came from" }
                        }
                        div.card-body #gen-prompt aria-live="polite" { (prompt_panel(&lib, &st)) }
                    }
                }
            }
        }
    }
}

/// Keeps a state in the generator preferences.
async fn keep(s: &AppState, st: &GenState) -> Result<(), (StatusCode, String)> {
    run(
        s,
        Command::SetPreferences {
            scope: "generator".into(),
            values: st.pref_values(),
        },
    )
    .await
    .map(|_| ())
}

/// Queues a run: `batch` jobs (fixed seeds count up from the chosen one). Returns the job ids.
pub async fn queue_run(
    s: &AppState,
    st: &GenState,
) -> Result<(Option<String>, Vec<String>), ApiError> {
    let batch = (st.batch > 1).then(|| u128::from(ulid::Ulid::generate()));
    let mut jobs = Vec::new();
    {
        let lib = s.handle.library();
        for i in 0..st.batch {
            let seed = match st.seed {
                Some(x) => x.wrapping_add(i),
                None => crate::handle::random_seed(),
            };
            let m = st.request(Some(seed));
            let req = GenRequest::from_json(&m).map_err(ApiError::bad)?;
            let resolved = request::resolve(&lib, &req, seed, &request::Backend::default())?;
            let mut spec = request::job_spec(&req, &resolved, &m);
            spec.batch = batch;
            jobs.push((u128::from(ulid::Ulid::generate()), spec));
        }
    }
    let ids: Vec<String> = jobs
        .iter()
        .map(|(id, _)| ulid::Ulid::from(*id).to_string())
        .collect();
    s.handle
        .run(
            crate::store::event::Origin::Web,
            crate::handle::Request::Command(Command::Enqueue { jobs }),
        )
        .await?;
    Ok((batch.map(|b| ulid::Ulid::from(b).to_string()), ids))
}

/// A preset document from the generator's state: the character, the first mixed-in entry of
/// each kind (presets have one slot per kind), the rest of the settings. Returns the names of
/// the entries that did not fit.
pub fn preset_doc(lib: &Library, st: &GenState, name: &str) -> (Map<String, Value>, Vec<String>) {
    let mut doc = Map::new();
    doc.insert("preset_name".into(), name.into());
    let character = match st.character.as_str() {
        "" => Value::Null,
        RANDOM_SENTINEL => RANDOM_SENTINEL.into(),
        slug => lib
            .get(Category::Characters, slug)
            .map_or(Value::Null, |e| e.id.clone().into()),
    };
    doc.insert("character".into(), character);
    let mut left_out = Vec::new();
    for (key, c) in [
        ("look", Category::Looks),
        ("outfit", Category::Outfits),
        ("action", Category::Actions),
        ("style", Category::Styles),
        ("scene", Category::Scenes),
        ("detailer", Category::Detailers),
    ] {
        let mut mine = st.extras.iter().filter(|(x, _)| *x == c);
        let first = mine
            .next()
            .and_then(|(_, slug)| lib.get(c, slug))
            .map_or(Value::Null, |e| e.id.clone().into());
        for (_, slug) in mine {
            left_out.push(lib.get(c, slug).map_or(slug.clone(), |e| e.name.clone()));
        }
        doc.insert(key.into(), first);
    }
    doc.insert("checkpoint".into(), json!(st.checkpoint));
    doc.insert(
        "fields".into(),
        json!(st.fields.clone().unwrap_or_default()),
    );
    doc.insert("active_outfit".into(), json!(st.active_outfit));
    doc.insert("extra_positive".into(), json!(st.extra_positive));
    doc.insert("extra_negative".into(), json!(st.extra_negative));
    doc.insert("width".into(), json!(st.width));
    doc.insert("height".into(), json!(st.height));
    doc.insert("seed".into(), json!(st.seed));
    doc.insert("tags".into(), json!([]));
    (doc, left_out)
}

/// `POST /generator`: the page's form (no JavaScript): keep the state, then update the prompt,
/// filter a section, generate, or save a preset.
async fn post_form(State(s): State<AppState>, axum::Form(f): FormPairs) -> Response {
    let st = match GenState::from_form(&f) {
        Ok(st) => st,
        Err(e) => return Redirect::to(&with_flash("/generator", false, &e)).into_response(),
    };
    if let Err((_, e)) = keep(&s, &st).await {
        return Redirect::to(&with_flash("/generator", false, &e)).into_response();
    }
    let filters: Vec<String> = MIX
        .iter()
        .filter_map(|c| {
            field(&f, &format!("f_{}", c.key()))
                .filter(|v| !v.trim().is_empty())
                .map(|v| format!("f_{}={}", c.key(), enc(v.trim())))
        })
        .collect();
    let back = if filters.is_empty() {
        "/generator".to_string()
    } else {
        format!("/generator?{}", filters.join("&"))
    };
    match field(&f, "op") {
        Some("generate") => match queue_run(&s, &st).await {
            Ok((_, ids)) => Redirect::to(&with_flash(
                "/generator#recent-title",
                true,
                &format!("Queued {} image(s)", ids.len()),
            ))
            .into_response(),
            Err(e) => Redirect::to(&with_flash(&back, false, &e.message)).into_response(),
        },
        Some("save_preset") => {
            let name = field(&f, "preset_name")
                .unwrap_or_default()
                .trim()
                .to_string();
            if name.is_empty() {
                return Redirect::to(&with_flash(&back, false, "give the preset a name"))
                    .into_response();
            }
            let (doc, left_out) = {
                let lib = s.handle.library();
                preset_doc(&lib, &st, &name)
            };
            match run(
                &s,
                Command::Create {
                    category: Category::Presets,
                    doc,
                    source: Source::Manual,
                },
            )
            .await
            {
                Ok(o) => {
                    let slug = o
                        .events
                        .iter()
                        .find_map(|e| e.event().subject().map(|(_, s)| s.to_string()))
                        .unwrap_or_default();
                    let mut msg = format!("Saved the preset '{name}'");
                    if !left_out.is_empty() {
                        msg.push_str(&format!(
                            " (a preset holds one entry per kind; left out: {})",
                            left_out.join(", ")
                        ));
                    }
                    Redirect::to(&with_flash(&format!("/preset/{slug}"), true, &msg))
                        .into_response()
                }
                Err((_, e)) => Redirect::to(&with_flash(&back, false, &e)).into_response(),
            }
        }
        _ => Redirect::to(&back).into_response(),
    }
}

/// `POST /generator/preview_prompt`: the composed prompt of a state (JSON body, or the page's
/// form) with each tag's source. Nothing is stored.
async fn preview_prompt(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let st = match state_of_body(&headers, &body) {
        Ok(st) => st,
        Err(e) => return ApiError::bad(e).into_response(),
    };
    let lib = s.handle.library();
    match preview_json(&lib, &st) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"error": e})),
        )
            .into_response(),
    }
}

/// A state from a JSON body or an urlencoded form.
fn state_of_body(headers: &HeaderMap, body: &[u8]) -> Result<GenState, String> {
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs: Vec<(String, String)> = crate::web::form::pairs(body)?;
        return GenState::from_form(&pairs);
    }
    let m = crate::web::api::json_object(body).map_err(|e| e.message)?;
    GenState::from_json(&m)
}

/// `POST /generator/generate`: keeps the state and queues a run → `{"job_ids", "batch"}`.
async fn generate(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let st = match state_of_body(&headers, &body) {
        Ok(st) => st,
        Err(e) => return ApiError::bad(e).into_response(),
    };
    if let Err((status, e)) = keep(&s, &st).await {
        return ApiError { status, message: e }.into_response();
    }
    match queue_run(&s, &st).await {
        Ok((batch, ids)) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"job_ids": ids, "batch": batch})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /generator/options?category=&q=&selected=a,b`: one section's list (the filter box).
async fn options(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(c) = q
        .get("category")
        .and_then(|c| Category::parse(c))
        .filter(|c| MIX.contains(c))
    else {
        return ApiError::not_found("no such section of the generator").into_response();
    };
    let st = GenState {
        extras: q
            .get("selected")
            .map(|v| {
                v.split(',')
                    .filter(|x| crate::library::category::is_slug(x))
                    .map(|x| (c, x.to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        ..GenState::default()
    };
    let lib = s.handle.library();
    let (list, total) = section_options(&lib, c, &st, q.get("q").map_or("", |v| v.trim()));
    options_markup(c, &list, total).into_response()
}

/// `GET /generator/character?slug=`: the fields and outfit choice for a character.
async fn character_partial(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lib = s.handle.library();
    let mut st = GenState::from_prefs(&lib);
    let slug = q.get("slug").cloned().unwrap_or_default();
    if slug != st.character {
        st.fields = None;
        st.active_outfit = None;
    }
    st.character = slug;
    character_fields(&lib, &st).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forms_and_json_describe_the_same_state() {
        let form = GenState::from_form(&pairs(&[
            ("character", "tifa_lockhart"),
            ("extra", "outfits/victorian_maid"),
            ("extra", "styles/watercolor"),
            ("extra", "outfits/victorian_maid"),
            ("fields_present", "1"),
            ("fields", "identity::hair"),
            ("seed_mode", "fixed"),
            ("seed", "42"),
            ("batch", "3"),
            ("width", "640"),
            ("extra_positive", " sunset "),
        ]))
        .unwrap();
        let json = GenState::from_json(
            &json!({"character": "tifa_lockhart",
                    "extras": ["outfits/victorian_maid", {"category": "styles", "slug": "watercolor"}],
                    "fields": ["identity::hair"], "seed": 42, "batch": "3", "width": 640,
                    "extra_positive": "sunset"})
            .as_object()
            .cloned()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(form, json);
        assert_eq!(form.extras.len(), 2, "the same entry once");
        let req = form.request(Some(7));
        assert_eq!(req["seed"], 7);
        assert_eq!(
            req["extras"][1],
            json!({"category": "styles", "slug": "watercolor"})
        );
        assert!(GenRequest::from_json(&req).is_ok());
        let random =
            GenState::from_form(&pairs(&[("seed_mode", "random"), ("seed", "5")])).unwrap();
        assert_eq!(random.seed, None, "a random seed ignores the number");
        assert_eq!(random.batch, 1);
        let big = GenState::from_form(&pairs(&[("batch", "500")])).unwrap();
        assert_eq!(big.batch, MAX_BATCH);
    }

    #[test]
    fn bad_input_is_explained() {
        for (body, word) in [
            (json!({"nope": 1}), "unknown key"),
            (json!({"extras": "outfits/x"}), "list"),
            (json!({"extras": ["characters/tifa"]}), "mix in"),
            (json!({"extras": ["outfits/../x"]}), "mix in"),
            (json!({"seed": -1}), "seed"),
            (json!({"fields": "identity::hair"}), "fields"),
            (json!({"character": 3}), "character"),
        ] {
            let e = GenState::from_json(body.as_object().unwrap()).unwrap_err();
            assert!(e.contains(word), "{body}: {e}");
        }
        assert!(
            GenState::from_form(&pairs(&[("width", "wide")]))
                .unwrap_err()
                .contains("width")
        );
        assert!(GenState::from_form(&pairs(&[("extra", "nope")])).is_err());
    }
}
