//! An entry's page (`/<singular>/<slug>`): cover and latest preview side by side, the fields as
//! checkboxes, the character selector and page slots, extra prompts, checkpoint, size and seed
//! (kept per page as preferences), Generate / Generate and replace cover / Endless, the live job
//! panel (queue position, progress, waiting reason, the image, "replace cover from preview"),
//! the composed prompt with every tag's source and the dropped tags, and per-category panels:
//! the wardrobe, a look's character and a character's looks, a preset's slots, a checkpoint's
//! settings. Also the actions posted from the page (upload, NSFW, defaults, presets, outfits).

use super::ui::{entry_picker, full_url, thumb_url};
use super::{FormPairs, Page, field, finish, flash_of, not_found_page, page, run};
use crate::engine::RANDOM_SENTINEL;
use crate::jobs::projection::{Job, JobState};
use crate::jobs::request::{self, GenRequest};
use crate::library::category::{Category, Kind, WARDROBE_KEYS};
use crate::library::command::Command;
use crate::library::projection::{Entry, Library};
use crate::store::event::Source;
use crate::web::AppState;
use crate::web::guard::csrf_field;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Character fields a secondary page adds when it names its own selection (the engine's
/// `ensure_character_fields` picks the filled ones of these when no selection is sent).
const CHARACTER_FIELDS: [&str; 12] = [
    "special::name",
    "defaults::expression",
    "identity::base_specs",
    "identity::hair",
    "identity::eyes",
    "identity::hands",
    "identity::arms",
    "identity::torso",
    "identity::pelvis",
    "identity::legs",
    "identity::feet",
    "identity::extra",
];

/// The selectable fields of a character (the engine's `FIELD_SECTIONS`), by section.
const CHARACTER_SECTIONS: [(&str, &str, &[&str]); 6] = [
    (
        "identity",
        "Identity",
        &[
            "base_specs",
            "hair",
            "eyes",
            "hands",
            "arms",
            "torso",
            "pelvis",
            "legs",
            "feet",
            "extra",
        ],
    ),
    ("defaults", "Defaults", &["expression", "pose", "scene"]),
    ("wardrobe", "Wardrobe", &WARDROBE_KEYS),
    (
        "styles",
        "Styles",
        &[
            "aesthetic",
            "primary_color",
            "secondary_color",
            "tertiary_color",
        ],
    ),
    ("special", "Special", &["name", "tags"]),
    ("lora", "LoRA", &["lora_triggers"]),
];

/// A page's kept state (the preferences of scope `<category>/<slug>`).
#[derive(Default, Debug, Clone)]
pub struct Prefs {
    pub fields: Option<Vec<String>>,
    pub character: Option<String>,
    pub action: Option<String>,
    pub extra_positive: String,
    pub extra_negative: String,
    pub checkpoint: Option<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub seed: Option<u64>,
    pub active_outfit: Option<String>,
}

pub fn scope(c: Category, slug: &str) -> String {
    format!("{}/{slug}", c.key())
}

pub fn prefs(lib: &Library, c: Category, slug: &str) -> Prefs {
    let Some(m) = lib.preferences.get(&scope(c, slug)) else {
        return Prefs::default();
    };
    let get = |k: &str| m.get(k).and_then(|v| serde_json::from_str::<Value>(v).ok());
    let text = |k: &str| get(k).and_then(|v| v.as_str().map(String::from));
    Prefs {
        fields: get("fields").and_then(|v| {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
        }),
        character: text("character"),
        action: text("action"),
        extra_positive: text("extra_positive").unwrap_or_default(),
        extra_negative: text("extra_negative").unwrap_or_default(),
        checkpoint: text("checkpoint"),
        width: get("width").and_then(|v| v.as_u64()),
        height: get("height").and_then(|v| v.as_u64()),
        seed: get("seed").and_then(|v| v.as_u64()),
        active_outfit: text("active_outfit"),
    }
}

/// The generation request a page's state describes (the body of `/api/generate`).
pub fn request_of(
    c: Category,
    slug: &str,
    p: &Prefs,
    wardrobe_keys_all: bool,
) -> Map<String, Value> {
    let d = c.desc();
    let mut m = Map::new();
    m.insert("category".into(), c.key().into());
    m.insert("slug".into(), slug.into());
    if d.character_selector
        && let Some(ch) = p.character.as_deref().filter(|x| !x.is_empty())
    {
        m.insert("character".into(), ch.into());
    }
    if d.page_slots.contains(&Category::Actions)
        && let Some(a) = p.action.as_deref().filter(|x| !x.is_empty())
    {
        m.insert("with".into(), json!({"actions": a}));
    }
    match (c, &p.fields) {
        (Category::Characters, Some(f)) => {
            m.insert("fields".into(), json!(f));
        }
        (Category::Outfits, Some(f)) if !wardrobe_keys_all => {
            let mut all: Vec<String> = f.clone();
            all.extend(CHARACTER_FIELDS.iter().map(|s| s.to_string()));
            m.insert("fields".into(), json!(all));
        }
        _ => {}
    }
    if c == Category::Characters
        && let Some(o) = &p.active_outfit
    {
        m.insert("active_outfit".into(), o.clone().into());
    }
    if !p.extra_positive.is_empty() {
        m.insert("extra_positive".into(), p.extra_positive.clone().into());
    }
    if !p.extra_negative.is_empty() {
        m.insert("extra_negative".into(), p.extra_negative.clone().into());
    }
    if let Some(ck) = &p.checkpoint {
        m.insert("checkpoint".into(), ck.clone().into());
    }
    for (k, v) in [("width", p.width), ("height", p.height), ("seed", p.seed)] {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    m
}

/// Reads the page's generation form: the state to keep, and whether every wardrobe box of an
/// outfit page was ticked. Numbers that do not parse are errors.
pub fn prefs_from_form(c: Category, f: &[(String, String)]) -> Result<(Prefs, bool), String> {
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
    let fields: Option<Vec<String>> = field(f, "fields_present").map(|_| {
        f.iter()
            .filter(|(k, _)| k == "fields")
            .map(|(_, v)| v.clone())
            .collect()
    });
    let all_wardrobe = fields.as_ref().is_none_or(|list| {
        WARDROBE_KEYS
            .iter()
            .all(|k| list.contains(&format!("wardrobe::{k}")))
    });
    let p = Prefs {
        fields,
        character: if c.desc().character_selector {
            Some(field(f, "character").unwrap_or_default().to_string())
        } else {
            None
        },
        action: text("slot_actions"),
        extra_positive: field(f, "extra_positive")
            .unwrap_or_default()
            .trim()
            .to_string(),
        extra_negative: field(f, "extra_negative")
            .unwrap_or_default()
            .trim()
            .to_string(),
        checkpoint: text("checkpoint"),
        width: num("width")?,
        height: num("height")?,
        seed: num("seed")?,
        active_outfit: None,
    };
    Ok((p, all_wardrobe))
}

/// The preference values a page's form sets.
fn pref_values(c: Category, p: &Prefs) -> Vec<(String, Value)> {
    let mut v = vec![
        ("extra_positive".to_string(), json!(p.extra_positive)),
        ("extra_negative".to_string(), json!(p.extra_negative)),
        ("checkpoint".to_string(), json!(p.checkpoint)),
        ("width".to_string(), json!(p.width)),
        ("height".to_string(), json!(p.height)),
        ("seed".to_string(), json!(p.seed)),
    ];
    if let Some(f) = &p.fields {
        v.push(("fields".into(), json!(f)));
    }
    if c.desc().character_selector {
        // "" is "no character" (kept, so the page shows it again); null is the default.
        v.push(("character".into(), json!(p.character)));
    }
    if c.desc().page_slots.contains(&Category::Actions) {
        v.push(("action".into(), json!(p.action)));
    }
    v
}

/// Reads a posted generation form, keeps its state, and returns the request it describes.
async fn form_request(
    s: &AppState,
    c: Category,
    slug: &str,
    f: &[(String, String)],
) -> Result<Map<String, Value>, (StatusCode, String)> {
    let (mut p, all) = prefs_from_form(c, f).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    run(
        s,
        Command::SetPreferences {
            scope: scope(c, slug),
            values: pref_values(c, &p),
        },
    )
    .await?;
    p.active_outfit = prefs(&s.handle.library(), c, slug).active_outfit;
    let mut m = request_of(c, slug, &p, all);
    if let Some(a) = field(f, "action").filter(|a| *a == "replace" || *a == "preview") {
        m.insert("action".into(), a.into());
    }
    Ok(m)
}

fn missing(s: &AppState, c: Category, slug: &str) -> Response {
    not_found_page(s, &format!("There is no {} '{slug}'.", c.desc().singular))
}

/// `GET /<plural>/<slug>` (the guide's form) → the singular page.
pub async fn plural_redirect(c: Category, Path(slug): Path<String>) -> Response {
    Redirect::permanent(&format!("/{}/{}", c.desc().singular, slug)).into_response()
}

/// The newest job of this page that produced images: (job, first image).
pub fn latest_preview<'l>(lib: &'l Library, c: Category, slug: &str) -> Option<(u128, &'l str)> {
    lib.jobs.preview(c, slug).map(|p| (p.job, p.image.as_str()))
}

/// Whether `img` (relative to the static root) was made by a job of this page. Finished jobs
/// are read back from the ledger by the job id their file names start with.
fn made_here(s: &AppState, lib: &Library, c: Category, slug: &str, img: &str) -> bool {
    let here = |j: &Job| {
        j.info
            .target
            .as_ref()
            .is_some_and(|t| t.0 == c && t.1 == slug)
            && j.images.iter().any(|i| i == img)
    };
    if lib.jobs.jobs.values().any(here) || latest_preview(lib, c, slug).is_some_and(|p| p.1 == img)
    {
        return true;
    }
    let name = img.rsplit('/').next().unwrap_or_default();
    let Some(id) = name
        .split('_')
        .next()
        .and_then(|id| ulid::Ulid::from_string(id).ok())
    else {
        return false;
    };
    s.handle
        .job_from_ledger(u128::from(id))
        .ok()
        .flatten()
        .is_some_and(|j| here(&j))
}

/// The newest unfinished job of this page, if any.
fn job_in_flight(lib: &Library, c: Category, slug: &str) -> Option<u128> {
    lib.jobs
        .queued
        .iter()
        .chain(&lib.jobs.submitted)
        .filter(|id| {
            lib.jobs.get(**id).is_some_and(|j| {
                j.info
                    .target
                    .as_ref()
                    .is_some_and(|t| t.0 == c && t.1 == slug)
                    && j.info.endless.is_none()
            })
        })
        .max()
        .copied()
}

/// Active endless sessions whose request targets this page.
fn endless_here(lib: &Library, c: Category, slug: &str) -> Vec<u128> {
    lib.jobs
        .endless
        .iter()
        .filter(|(_, r)| {
            serde_json::from_str::<Value>(r).is_ok_and(|v| {
                v.get("category").and_then(Value::as_str) == Some(c.key())
                    && v.get("slug").and_then(Value::as_str) == Some(slug)
            })
        })
        .map(|(id, _)| *id)
        .collect()
}

/// Outfits by name, in file order.
type Outfits = Vec<(String, Map<String, Value>)>;

/// The wardrobe of a character: (outfit name → fields) in file order, or the flat legacy map
/// as `default`; and whether it is the nested format.
fn outfits(v: &Value) -> (Outfits, bool) {
    let Some(w) = v.get("wardrobe").and_then(Value::as_object) else {
        return (Vec::new(), false);
    };
    if w.values().any(Value::is_object) {
        (
            w.iter()
                .filter_map(|(k, v)| v.as_object().map(|o| (k.clone(), o.clone())))
                .collect(),
            true,
        )
    } else {
        (vec![("default".to_string(), w.clone())], false)
    }
}

/// The outfit in effect: the kept one if it exists, else `default`, else the first.
fn active_outfit(list: &[(String, Map<String, Value>)], kept: Option<&str>) -> Option<String> {
    kept.filter(|k| list.iter().any(|(n, _)| n == k))
        .or_else(|| {
            list.iter()
                .find(|(n, _)| n == "default")
                .map(|(n, _)| n.as_str())
        })
        .or_else(|| list.first().map(|(n, _)| n.as_str()))
        .map(String::from)
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

pub async fn show(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (body, title, refresh) = {
        let lib = s.handle.library();
        let Some(e) = lib.get(c, &slug) else {
            drop(lib);
            return missing(&s, c, &slug);
        };
        let job = q
            .get("job")
            .and_then(|j| crate::web::jobs::parse_id(j).ok())
            .filter(|id| lib.jobs.state_of(*id).is_some())
            .or_else(|| job_in_flight(&lib, c, &slug));
        let refresh = job
            .and_then(|id| lib.jobs.get(id))
            .is_some_and(|j| !j.state.is_terminal())
            && q.contains_key("job");
        (entry_body(&s, &lib, c, e, job), e.name.clone(), refresh)
    };
    page_of(&s, c, &title, &q, body, refresh)
}

fn page_of(
    s: &AppState,
    c: Category,
    title: &str,
    q: &HashMap<String, String>,
    body: Markup,
    refresh: bool,
) -> Response {
    page(
        s,
        &Page {
            title,
            section: Some(c.key()),
            scripts: &["entry.js"],
            flash: flash_of(q),
            refresh: refresh.then_some(3),
        },
        body,
    )
    .into_response()
}

/// The entry page's content (also what the page benchmark renders).
pub fn entry_body(
    s: &AppState,
    lib: &Library,
    c: Category,
    e: &Entry,
    job: Option<u128>,
) -> Markup {
    let d = c.desc();
    let v = e.value();
    let p = prefs(lib, c, &e.slug);
    let base = format!("/{}/{}", d.singular, e.slug);
    let nsfw = super::gallery::is_nsfw(&v);
    let preview = latest_preview(lib, c, &e.slug);
    let endless = endless_here(lib, c, &e.slug);
    html! {
        nav aria-label="breadcrumb" {
            ol.breadcrumb.small.mb-2 {
                li.breadcrumb-item { a href={ "/" (d.key) } { (d.title) } }
                li.breadcrumb-item.active aria-current="page" { (e.name) }
            }
        }
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3.entry-head {
            h1.h3.mb-0.me-auto {
                (e.name)
                @if nsfw { " " span.badge.text-bg-danger.align-middle { "NSFW" } }
                @if e.favourite { " " span.text-warning.align-middle title="Favourite" aria-label="Favourite" { "★" } }
                " " (super::history::stale_badge(lib, c, e))
            }
            form method="post" action={ (base) "/favourite" } data-favourite {
                (csrf_field(s))
                input type="hidden" name="on" value=(if e.favourite { "0" } else { "1" });
                input type="hidden" name="back" value=(base);
                button.btn.btn-sm.btn-outline-warning.fav-btn.on[e.favourite] type="submit" aria-pressed=(e.favourite) {
                    (if e.favourite { "★ Starred" } else { "☆ Star" })
                }
            }
            form method="post" action={ (base) "/nsfw" } {
                (csrf_field(s))
                input type="hidden" name="on" value=(if nsfw { "0" } else { "1" });
                button.btn.btn-sm.btn-outline-danger type="submit" aria-pressed=(nsfw)
                    title="Kept as the tag \"nsfw\" in the document's tags" {
                    (if nsfw { "Unmark NSFW" } else { "Mark NSFW" })
                }
            }
            a.btn.btn-sm.btn-outline-secondary href={ (base) "/edit" } { "Edit" }
            a.btn.btn-sm.btn-outline-secondary href={ (base) "/edit#raw" } { "Raw JSON" }
            a.btn.btn-sm.btn-outline-secondary href={ (base) "/history" } { "History" }
            @if d.clonable {
                form method="post" action={ (base) "/clone" } {
                    (csrf_field(s))
                    button.btn.btn-sm.btn-outline-secondary type="submit" { "Clone" }
                }
            }
            a.btn.btn-sm.btn-outline-danger href={ "/resource/" (d.key) "/" (e.slug) "/delete" }
                data-bs-toggle="modal" data-bs-target="#delete-modal" { "Delete" }
        }
        div.row.g-3 {
            div.col-12.col-lg-5 {
                (images(s, c, e, preview, &base))
                (category_panels(s, lib, c, e, &v, &p, &base))
            }
            div.col-12.col-lg-7 {
                (generation_form(s, lib, c, e, &v, &p, &base, &endless))
                (job_panel(s, lib, job, &base))
                section.card.mt-3 #prompt aria-labelledby="prompt-title" {
                    div.card-header.d-flex.align-items-center {
                        h2.h6.mb-0.me-auto #prompt-title { "Composed prompt" }
                        span.small.text-body-secondary { "Hover or focus a tag to see where it came from" }
                    }
                    div.card-body #prompt-body aria-live="polite" {
                        (prompt_panel(lib, c, &e.slug, &p))
                    }
                }
            }
        }
        div.modal.fade #delete-modal tabindex="-1" aria-labelledby="delete-title" aria-hidden="true" {
            div.modal-dialog {
                div.modal-content {
                    (super::edit::delete_dialog(s, lib, c, e, true))
                }
            }
        }
    }
}

fn images(
    s: &AppState,
    c: Category,
    e: &Entry,
    preview: Option<(u128, &str)>,
    base: &str,
) -> Markup {
    let d = c.desc();
    html! {
        section.card.mb-3 aria-label="Cover and latest preview" {
            div.card-body {
                div.row.g-2.images {
                    figure.col-6.mb-0 {
                        @if let Some(cover) = &e.cover {
                            a href=(full_url(cover)) { img.img-fluid.rounded.entry-img #cover-img src=(thumb_url(cover, 512)) data-full=(full_url(cover)) alt={ "Cover of " (e.name) }; }
                        } @else {
                            div.placeholder-thumb.rounded.entry-img #cover-img { span { "No cover" } }
                        }
                        figcaption.small.text-body-secondary.mt-1 { "Cover" }
                    }
                    figure.col-6.mb-0 #preview-figure {
                        @if let Some((_, img)) = preview {
                            a href=(full_url(img)) { img.img-fluid.rounded.entry-img #preview-img src=(thumb_url(img, 512)) data-full=(full_url(img)) alt={ "Latest preview of " (e.name) }; }
                        } @else {
                            div.placeholder-thumb.rounded.entry-img #preview-img { span { "No preview yet" } }
                        }
                        figcaption.small.text-body-secondary.mt-1 { "Latest preview" }
                    }
                }
                form.mt-2.replace-cover method="post" action={ (base) "/replace_cover_from_preview" } data-replace-cover {
                    (csrf_field(s))
                    input type="hidden" name="image" value=[preview.map(|p| p.1)] data-preview-path;
                    button.btn.btn-sm.btn-outline-primary type="submit" disabled[preview.is_none()] {
                        "Replace cover from preview"
                    }
                }
                form.mt-2.upload-form method="post" action={ (base) "/upload" } enctype="multipart/form-data" data-upload
                    data-api={ "/api/library/" (d.key) "/" (e.slug) "/cover" } {
                    (csrf_field(s))
                    div.drop-zone.rounded.p-2.text-center.small data-drop-zone {
                        label.form-label.mb-1 for="cover-file" { "Upload a cover (PNG, JPEG, WebP, GIF) — or drop an image here" }
                        input.form-control.form-control-sm #cover-file type="file" name="image" accept="image/png,image/jpeg,image/webp,image/gif" required;
                    }
                    button.btn.btn-sm.btn-secondary.mt-1.no-js-only type="submit" { "Upload" }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn generation_form(
    s: &AppState,
    lib: &Library,
    c: Category,
    e: &Entry,
    v: &Value,
    p: &Prefs,
    base: &str,
    endless: &[u128],
) -> Markup {
    let d = c.desc();
    html! {
        section.card aria-labelledby="gen-title" {
            div.card-header {
                h2.h6.mb-0 #gen-title {
                    @if c == Category::Presets { "Generate from this preset" } @else { "Generate" }
                }
            }
            div.card-body {
                form #gen-form method="post" action={ (base) "/generate" } data-gen-form
                    data-preview-url={ (base) "/preview" } data-category=(c.key()) data-slug=(e.slug) {
                    (csrf_field(s))
                    @if d.character_selector {
                        div.mb-2 {
                            label.form-label.small for="gen-character" { "Character" }
                            (entry_picker(lib, Category::Characters, "character", "gen-character",
                                Some(p.character.as_deref().unwrap_or(RANDOM_SENTINEL)),
                                &[(RANDOM_SENTINEL, "Random character"), ("", "No character")], true))
                        }
                    }
                    @for slot in d.page_slots {
                        div.mb-2 {
                            @let id = format!("gen-slot-{}", slot.key());
                            label.form-label.small for=(id) { (slot.desc().title.trim_end_matches('s')) }
                            (entry_picker(lib, *slot, &format!("slot_{}", slot.key()), &id,
                                Some(p.action.as_deref().unwrap_or("")),
                                &[("", "None"), (RANDOM_SENTINEL, "Random")], true))
                        }
                    }
                    (field_checkboxes(c, e, v, p))
                    div.row.g-2.mb-2 {
                        div.col-md-6 {
                            label.form-label.small for="extra-positive" { "Extra positive" }
                            textarea.form-control.form-control-sm #extra-positive name="extra_positive" rows="2" data-tag-autocomplete { (p.extra_positive) }
                        }
                        div.col-md-6 {
                            label.form-label.small for="extra-negative" { "Extra negative" }
                            textarea.form-control.form-control-sm #extra-negative name="extra_negative" rows="2" data-tag-autocomplete { (p.extra_negative) }
                        }
                    }
                    div.row.g-2.mb-3 {
                        @if c != Category::Checkpoints {
                            div.col-12.col-md-5 {
                                label.form-label.small for="gen-checkpoint" { "Checkpoint" }
                                (entry_picker(lib, Category::Checkpoints, "checkpoint", "gen-checkpoint",
                                    Some(p.checkpoint.as_deref().unwrap_or("")), &[("", "Default checkpoint")], false))
                            }
                        }
                        div.col-4.col-md-2 {
                            label.form-label.small for="gen-width" { "Width" }
                            input.form-control.form-control-sm #gen-width type="number" name="width" min="64" max="8192" step="8"
                                placeholder="832" value=[p.width];
                        }
                        div.col-4.col-md-2 {
                            label.form-label.small for="gen-height" { "Height" }
                            input.form-control.form-control-sm #gen-height type="number" name="height" min="64" max="8192" step="8"
                                placeholder="1216" value=[p.height];
                        }
                        div.col-4.col-md-3 {
                            label.form-label.small for="gen-seed" { "Seed" }
                            input.form-control.form-control-sm #gen-seed type="number" name="seed" min="0" placeholder="random" value=[p.seed];
                        }
                    }
                    div.d-flex.flex-wrap.gap-2 {
                        button.btn.btn-primary type="submit" name="action" value="preview" data-generate { "Generate" }
                        button.btn.btn-outline-primary type="submit" name="action" value="replace" data-generate {
                            "Generate and replace cover"
                        }
                        @if endless.is_empty() {
                            button.btn.btn-outline-secondary type="submit" formaction={ (base) "/endless" } name="op" value="start" data-endless-start {
                                "Endless: start"
                            }
                        }
                        button.btn.btn-outline-secondary.no-js-only type="submit" formaction={ (base) "/preview" } {
                            "Update prompt"
                        }
                        @if c == Category::Characters {
                            button.btn.btn-outline-secondary type="submit" formaction={ (base) "/save_defaults" } data-save-defaults {
                                "Save as defaults"
                            }
                        }
                    }
                    div.input-group.input-group-sm.mt-2.save-preset {
                        label.input-group-text for="preset-name" { "Save these selections as a preset" }
                        input.form-control #preset-name name="preset_name" placeholder="Preset name";
                        button.btn.btn-outline-secondary type="submit" formaction={ (base) "/save_preset" } { "Save preset" }
                    }
                }
                @for id in endless {
                    form.mt-2.d-flex.align-items-center.gap-2 method="post" action={ (base) "/endless" } data-endless-stop {
                        (csrf_field(s))
                        input type="hidden" name="op" value="stop";
                        input type="hidden" name="id" value=(ulid::Ulid::from(*id).to_string());
                        span.spinner-grow.spinner-grow-sm.text-success aria-hidden="true" {}
                        span.small { "Endless generation is running for this page" }
                        button.btn.btn-sm.btn-outline-danger type="submit" { "Endless: stop" }
                    }
                }
            }
        }
    }
}

/// The fields a page can choose: a character's selectable fields (the wardrobe by outfit, the
/// active one marked), or an outfit's wardrobe keys. Other pages list their document instead.
fn field_checkboxes(c: Category, e: &Entry, v: &Value, p: &Prefs) -> Markup {
    match c {
        Category::Characters => {
            let chosen: Vec<String> = p
                .fields
                .clone()
                .filter(|f| !f.is_empty())
                .or_else(|| (!e.default_fields.is_empty()).then(|| e.default_fields.clone()))
                .unwrap_or_default();
            let all = chosen.is_empty();
            let (list, _) = outfits(v);
            let active = active_outfit(&list, p.active_outfit.as_deref());
            let wardrobe = list
                .iter()
                .find(|(n, _)| Some(n) == active.as_ref())
                .map(|(_, m)| m.clone())
                .unwrap_or_default();
            html! {
                fieldset.mb-2.fields {
                    legend.small.fw-semibold.mb-1 { "Fields in the prompt" }
                    input type="hidden" name="fields_present" value="1";
                    div.row.row-cols-1.row-cols-sm-2.g-2 {
                        @for (section, title, keys) in CHARACTER_SECTIONS {
                            @let values: Vec<(&str, String)> = keys.iter().map(|k| {
                                let val = match section {
                                    "wardrobe" => text_of(wardrobe.get(*k)),
                                    "special" if *k == "name" => e.name.clone(),
                                    "special" => text_of(v.get("tags")),
                                    _ => text_of(v.get(section).and_then(|x| x.get(*k))),
                                };
                                (*k, val)
                            }).filter(|(_, val)| !val.trim().is_empty()).collect();
                            @if !values.is_empty() {
                                div.col {
                                    div.field-group.border.rounded.p-2.h-100 {
                                        div.small.fw-semibold.mb-1 {
                                            (title)
                                            @if section == "wardrobe" {
                                                @if let Some(a) = &active { " — outfit " span.badge.text-bg-primary { (a) } }
                                            }
                                        }
                                        @for (k, val) in &values {
                                            @let name = format!("{section}::{k}");
                                            @let id = format!("fld-{section}-{k}");
                                            div.form-check.small {
                                                input.form-check-input type="checkbox" name="fields" value=(name) id=(id)
                                                    checked[all || chosen.contains(&name)];
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
        Category::Outfits => {
            let chosen: Option<&Vec<String>> = p.fields.as_ref().filter(|f| !f.is_empty());
            let w = v.get("wardrobe").and_then(Value::as_object);
            html! {
                fieldset.mb-2.fields {
                    legend.small.fw-semibold.mb-1 { "Wardrobe fields in the prompt" }
                    input type="hidden" name="fields_present" value="1";
                    @for k in WARDROBE_KEYS {
                        @let val = text_of(w.and_then(|w| w.get(k)));
                        @if !val.trim().is_empty() {
                            @let name = format!("wardrobe::{k}");
                            @let id = format!("fld-wardrobe-{k}");
                            div.form-check.small {
                                input.form-check-input type="checkbox" name="fields" value=(name) id=(id)
                                    checked[chosen.is_none_or(|c| c.contains(&name))];
                                label.form-check-label for=(id) {
                                    span.fw-medium { (k) } " " span.text-body-secondary.field-value { (val) }
                                }
                            }
                        }
                    }
                    @for k in WARDROBE_KEYS {
                        @let val = text_of(w.and_then(|w| w.get(k)));
                        @if val.trim().is_empty() {
                            input type="hidden" name="fields" value={ "wardrobe::" (k) };
                        }
                    }
                }
            }
        }
        _ => html! {},
    }
}

fn job_panel(s: &AppState, lib: &Library, job: Option<u128>, base: &str) -> Markup {
    // A finished job is read back from the ledger (the projection keeps only its id).
    let finished = job
        .filter(|id| lib.jobs.get(*id).is_none())
        .and_then(|id| s.handle.job_from_ledger(id).ok().flatten());
    let j = job.and_then(|id| lib.jobs.get(id)).or(finished.as_ref());
    let position = j.and_then(|j| {
        (j.state == JobState::Queued)
            .then(|| {
                lib.jobs
                    .queued
                    .iter()
                    .position(|id| *id == j.id)
                    .map(|p| p + 1)
            })
            .flatten()
    });
    let waiting = j.and_then(|j| s.live.as_ref().and_then(|l| l.waiting(j.id)));
    let progress = j.and_then(|j| s.live.as_ref().and_then(|l| l.progress(j.id)));
    html! {
        section.card.mt-3.job-panel #job aria-labelledby="job-title"
            data-job=[j.map(|j| ulid::Ulid::from(j.id).to_string())] data-base=(base) {
            div.card-header.d-flex.align-items-center {
                h2.h6.mb-0.me-auto #job-title { "Job" }
                span.badge.text-bg-secondary #job-status {
                    (j.map_or("idle", |j| j.state.status()))
                }
            }
            div.card-body {
                p.small.mb-2 #job-line aria-live="polite" {
                    @match j {
                        None => { "Nothing generating. Press Generate." }
                        Some(j) => {
                            @match j.state {
                                JobState::Queued => {
                                    "Waiting in the queue"
                                    @if let Some(p) = position { " — position " (p) }
                                    @if lib.jobs.paused { " (the queue is paused)" }
                                }
                                JobState::Submitted => { "Running" }
                                JobState::Succeeded => { "Done" }
                                JobState::Cancelled => { "Cancelled" }
                                _ => { "Failed: " (j.error.as_deref().unwrap_or("unknown error")) }
                            }
                        }
                    }
                }
                div.alert.alert-warning.py-1.px-2.small #job-waiting hidden[waiting.is_none()] {
                    (waiting.unwrap_or_default())
                }
                @let (pv, pm, node) = progress.map_or((0, 0, None), |(n, v, m)| (v, m, n));
                div.progress #job-progress role="progressbar" aria-label="Generation progress"
                    aria-valuemin="0" aria-valuemax=(pm.max(1)) aria-valuenow=(pv) {
                    div.progress-bar.job-bar data-value=(pv) data-max=(pm) {}
                }
                p.small.text-body-secondary.mt-1.mb-0 #job-step {
                    @if pm > 0 { "Step " (pv) " of " (pm) @if let Some(n) = node { " · node " (n) } }
                }
                div #job-result.mt-2 {
                    @if let Some(j) = j.filter(|j| j.state == JobState::Succeeded) {
                        @for img in &j.images {
                            a href=(full_url(img)) { img.img-fluid.rounded.result-img src=(thumb_url(img, 512)) data-full=(full_url(img)) alt="Generated image"; }
                        }
                    }
                }
            }
        }
    }
}

/// The composed prompt for the page's kept state, each tag with its source, and the tags that
/// were dropped with why.
pub fn prompt_panel(lib: &Library, c: Category, slug: &str, p: &Prefs) -> Markup {
    let all = p.fields.as_ref().is_none_or(|list| {
        WARDROBE_KEYS
            .iter()
            .all(|k| list.contains(&format!("wardrobe::{k}")))
    });
    let mut m = request_of(c, slug, p, all);
    // A fixed seed keeps the preview (and a random character pick) stable between refreshes.
    m.entry("seed").or_insert(json!(1));
    let resolved = GenRequest::from_json(&m)
        .map_err(|e| e.to_string())
        .and_then(|r| {
            request::resolve(lib, &r, 1, &request::Backend::default()).map_err(|e| e.to_string())
        });
    match resolved {
        Err(e) => {
            html! { div.alert.alert-danger.small.mb-0 { "This selection cannot be generated: " (e) } }
        }
        Ok(r) => {
            let x = &r.generation.explanation;
            let kinds = [
                ("Positive", &x.main),
                ("Negative", &x.negative),
                ("Face", &x.face),
                ("Hand", &x.hand),
            ];
            html! {
                @if let Some(ch) = &r.character {
                    @if m.get("character").and_then(Value::as_str) == Some(RANDOM_SENTINEL) {
                        p.small.text-body-secondary { "Random character — this preview picked "
                            a href={ "/character/" (ch) } { (ch) } "; each generation picks anew." }
                    }
                }
                @for (label, tags) in kinds {
                    div.mb-2.prompt-block {
                        div.small.fw-semibold { (label) }
                        @if tags.is_empty() {
                            span.small.text-body-secondary { "(empty)" }
                        } @else {
                            div.tags {
                                @for t in tags.iter() {
                                    span.tag tabindex="0" title=(t.source) data-source=(t.source) {
                                        (t.tag)
                                        span.visually-hidden { " (from " (t.source) ")" }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !x.removed.is_empty() {
                    details.small.mt-2 {
                        summary { (x.removed.len()) " tag(s) dropped" }
                        ul.mb-0.removed {
                            @for r in &x.removed {
                                li {
                                    code { (r.tag) } " — "
                                    (match r.reason {
                                        crate::engine::RemovalKind::Duplicate => "duplicate",
                                        crate::engine::RemovalKind::Outranked => "a stronger weight wins",
                                        crate::engine::RemovalKind::CrossCancelled => "cancelled by the other side",
                                    })
                                    " (" (r.source) "; " (r.detail) ")"
                                }
                            }
                        }
                    }
                }
                @let warnings: Vec<&str> = r.generation.warnings().collect();
                @if !warnings.is_empty() {
                    ul.small.text-warning.mt-2.mb-0 {
                        @for w in warnings { li { (w) } }
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn category_panels(
    s: &AppState,
    lib: &Library,
    c: Category,
    e: &Entry,
    v: &Value,
    p: &Prefs,
    base: &str,
) -> Markup {
    html! {
        @match c {
            Category::Characters => {
                (wardrobe_panel(s, v, p, base))
                (looks_of(lib, e))
            }
            Category::Looks => {
                @let id = v.get("character_id").and_then(Value::as_str).unwrap_or_default();
                section.card.mb-3 aria-label="Character" {
                    div.card-body.small {
                        "Character: "
                        @match lib.get(Category::Characters, &Category::Characters.slug_of(id)) {
                            Some(ch) if !id.is_empty() => { a href={ "/character/" (ch.slug) } { (ch.name) } }
                            _ if id.is_empty() => { "none" }
                            _ => { span.text-warning { (id) " (not in the library)" } }
                        }
                    }
                }
                (document_table(c, v))
            }
            Category::Presets => { (preset_slots(lib, v)) }
            Category::Checkpoints => {
                section.card.mb-3 aria-labelledby="ck-title" {
                    div.card-header.d-flex.align-items-center {
                        h2.h6.mb-0.me-auto #ck-title { "Settings" }
                        a.btn.btn-sm.btn-outline-secondary href={ (base) "/edit" } { "Edit settings" }
                    }
                    div.card-body {
                        (document_table(c, v))
                        form method="post" action="/set_default_checkpoint" {
                            (csrf_field(s))
                            input type="hidden" name="checkpoint_path" value=(e.id);
                            input type="hidden" name="back" value=(base);
                            @if lib.default_checkpoint.as_deref() == Some(e.id.as_str()) {
                                span.badge.text-bg-success { "The default checkpoint" }
                            } @else {
                                button.btn.btn-sm.btn-outline-primary type="submit" { "Make this the default checkpoint" }
                            }
                        }
                    }
                }
            }
            _ => { (document_table(c, v)) }
        }
    }
}

/// The document's known fields, read-only, by section.
fn document_table(c: Category, v: &Value) -> Markup {
    html! {
        section.card.mb-3 aria-label="What this entry adds" {
            div.card-body.small {
                dl.row.mb-0.doc-table {
                    @for sec in c.desc().schema {
                        @for f in sec.fields {
                            @let val = match sec.key {
                                Some(k) => v.get(k).and_then(|x| x.get(f.key)),
                                None => v.get(f.key),
                            };
                            @let shown = match f.kind {
                                Kind::Lora => val.and_then(|l| l.get("lora_name")).map(|n| {
                                    let w = l_weight(val);
                                    format!("{} @ {w}", text_of(Some(n)))
                                }).filter(|t| !t.starts_with(" @")),
                                _ => Some(text_of(val)).filter(|t| !t.trim().is_empty()),
                            };
                            @if let Some(t) = shown {
                                dt.col-sm-4.text-body-secondary { (f.label) }
                                dd.col-sm-8.mb-1 { (t) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn l_weight(l: Option<&Value>) -> String {
    l.and_then(|l| l.get("lora_weight"))
        .map(|w| w.to_string())
        .unwrap_or_else(|| "1.0".into())
}

fn wardrobe_panel(s: &AppState, v: &Value, p: &Prefs, base: &str) -> Markup {
    let (list, nested) = outfits(v);
    let active = active_outfit(&list, p.active_outfit.as_deref());
    html! {
        section.card.mb-3.wardrobe aria-labelledby="wardrobe-title" {
            div.card-header { h2.h6.mb-0 #wardrobe-title { "Wardrobe" } }
            ul.list-group.list-group-flush {
                @for (name, fields) in &list {
                    @let is_active = active.as_deref() == Some(name.as_str());
                    li.list-group-item.small data-outfit=(name) {
                        div.d-flex.flex-wrap.align-items-center.gap-2 {
                            strong.me-auto { (name) @if is_active { " " span.badge.text-bg-primary { "active" } } }
                            @if !is_active {
                                form method="post" action={ (base) "/outfit/switch" } {
                                    (csrf_field(s))
                                    input type="hidden" name="outfit" value=(name);
                                    button.btn.btn-sm.btn-outline-primary type="submit" aria-label={ "Switch to " (name) } { "Switch" }
                                }
                            }
                            @if nested && list.len() > 1 {
                                form method="post" action={ (base) "/outfit/delete" } {
                                    (csrf_field(s))
                                    input type="hidden" name="outfit" value=(name);
                                    button.btn.btn-sm.btn-outline-danger type="submit" aria-label={ "Delete outfit " (name) } { "Delete" }
                                }
                            }
                        }
                        @let summary: Vec<String> = fields.values().map(|x| text_of(Some(x))).filter(|t| !t.trim().is_empty()).collect();
                        div.text-body-secondary.text-truncate { (summary.join(", ")) }
                        @if nested {
                            form.input-group.input-group-sm.mt-1 method="post" action={ (base) "/outfit/rename" } {
                                (csrf_field(s))
                                input type="hidden" name="outfit" value=(name);
                                @let id = format!("rename-{name}");
                                label.visually-hidden for=(id) { "New name for " (name) }
                                input.form-control id=(id) name="new_name" placeholder="new name" required;
                                button.btn.btn-outline-secondary type="submit" { "Rename" }
                            }
                        }
                    }
                }
            }
            div.card-body {
                form.input-group.input-group-sm method="post" action={ (base) "/outfit/add" } {
                    (csrf_field(s))
                    label.visually-hidden for="new-outfit" { "New outfit name" }
                    input.form-control #new-outfit name="outfit" placeholder="new outfit name" required;
                    button.btn.btn-outline-primary type="submit" { "Add outfit" }
                }
            }
        }
    }
}

fn looks_of(lib: &Library, e: &Entry) -> Markup {
    let looks: Vec<&Entry> = lib
        .shelf(Category::Looks)
        .docs
        .values()
        .filter(|l| {
            l.value()
                .get("character_id")
                .and_then(Value::as_str)
                .is_some_and(|id| Category::Characters.slug_of(id) == e.slug)
        })
        .collect();
    html! {
        section.card.mb-3 aria-labelledby="looks-title" {
            div.card-header { h2.h6.mb-0 #looks-title { "Looks of this character" } }
            div.card-body.small {
                @if looks.is_empty() {
                    span.text-body-secondary { "None yet. " } a href="/look/create" { "Create a look" }
                } @else {
                    ul.mb-0 { @for l in &looks { li { a href={ "/look/" (l.slug) } { (l.name) } } } }
                }
            }
        }
    }
}

fn preset_slots(lib: &Library, v: &Value) -> Markup {
    let slots = [
        ("character", Category::Characters),
        ("look", Category::Looks),
        ("outfit", Category::Outfits),
        ("action", Category::Actions),
        ("style", Category::Styles),
        ("scene", Category::Scenes),
        ("detailer", Category::Detailers),
        ("checkpoint", Category::Checkpoints),
    ];
    html! {
        section.card.mb-3 aria-labelledby="slots-title" {
            div.card-header { h2.h6.mb-0 #slots-title { "What each slot picks" } }
            div.card-body.small {
                table.table.table-sm.mb-2 {
                    tbody {
                        @for (key, cat) in slots {
                            tr {
                                th scope="row" { (key) }
                                td {
                                    @match v.get(key).and_then(Value::as_str) {
                                        None => { span.text-body-secondary { (if key == "checkpoint" { "the default" } else { "none" }) } }
                                        Some(RANDOM_SENTINEL) => { "random " (cat.desc().singular) }
                                        Some(id) => {
                                            @let found = if cat == Category::Checkpoints {
                                                lib.shelf(cat).docs.values().find(|e| e.id == id)
                                            } else {
                                                lib.get(cat, &cat.slug_of(id))
                                            };
                                            @match found {
                                                Some(e) => { a href={ "/" (cat.desc().singular) "/" (e.slug) } { (e.name) } }
                                                None => { span.text-warning { (id) " (not in the library)" } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        tr { th scope="row" { "fields" } td { (text_of(v.get("fields"))) } }
                        tr { th scope="row" { "size" } td { (text_of(v.get("width"))) "×" (text_of(v.get("height"))) } }
                        tr { th scope="row" { "seed" } td { (match v.get("seed") { Some(Value::Number(n)) => n.to_string(), _ => "new each run".into() }) } }
                    }
                }
                p.mb-0.text-body-secondary { "Generate below to run this preset." }
            }
        }
    }
}

// ---- actions posted from the page ------------------------------------------------------

fn entry_exists(s: &AppState, c: Category, slug: &str) -> Result<(), (StatusCode, String)> {
    if s.handle.library().get(c, slug).is_some() {
        Ok(())
    } else {
        Err((
            StatusCode::NOT_FOUND,
            format!("no {} with slug '{slug}'", c.desc().singular),
        ))
    }
}

/// `POST /<singular>/<slug>/generate`: JSON (the API's body) or the page's form.
pub async fn generate(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return match crate::web::jobs::page_generate(&s, c, &slug, &body).await {
            Ok(id) => axum::Json(json!({"job_id": id})).into_response(),
            Err(e) => e.into_response(),
        };
    }
    let base = format!("/{}/{slug}", c.desc().singular);
    let pairs: Vec<(String, String)> = match crate::web::form::pairs(&body) {
        Ok(p) => p,
        Err(e) => return finish(&headers, &base, Err((StatusCode::BAD_REQUEST, e))),
    };
    let r = async {
        entry_exists(&s, c, &slug)?;
        let m = form_request(&s, c, &slug, &pairs).await?;
        crate::web::jobs::queue_request(&s, &m)
            .await
            .map_err(|e| (e.status, e.message))
    }
    .await;
    match r {
        Ok(id) => {
            if super::is_ajax(&headers) {
                axum::Json(json!({"job_id": id})).into_response()
            } else {
                Redirect::to(&format!("{base}?job={id}#job")).into_response()
            }
        }
        Err(e) => finish(&headers, &base, Err(e)),
    }
}

/// `POST /<singular>/<slug>/preview`: keeps the form's state; scripts get the composed-prompt
/// partial, forms go back to the page.
pub async fn preview(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    axum::Form(f): FormPairs,
) -> Response {
    if s.handle.library().get(c, &slug).is_none() {
        return missing(&s, c, &slug);
    }
    if let Err((status, msg)) = form_request(&s, c, &slug, &f).await {
        return (
            status,
            html! { div.alert.alert-danger.small.mb-0 { (msg) } },
        )
            .into_response();
    }
    let lib = s.handle.library();
    let p = prefs(&lib, c, &slug);
    let partial = prompt_panel(&lib, c, &slug, &p);
    drop(lib);
    if field(&f, "partial").is_some() {
        partial.into_response()
    } else {
        Redirect::to(&format!("/{}/{slug}#prompt", c.desc().singular)).into_response()
    }
}

/// `POST /<singular>/<slug>/endless`: `op=start` with the page's form, or `op=stop` with `id`.
pub async fn endless(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let base = format!("/{}/{slug}", c.desc().singular);
    let r = async {
        entry_exists(&s, c, &slug)?;
        match field(&f, "op") {
            Some("start") => {
                let mut m = form_request(&s, c, &slug, &f).await?;
                m.remove("action");
                let id = crate::web::jobs::start_endless(&s, m)
                    .await
                    .map_err(|e| (e.status, e.message))?;
                Ok((
                    "Endless generation started: previews keep coming until you stop it"
                        .to_string(),
                    json!({"endless_id": id}),
                ))
            }
            Some("stop") => {
                let id = field(&f, "id").unwrap_or_default();
                let endless = crate::web::jobs::parse_id(id).map_err(|e| (e.status, e.message))?;
                run(&s, Command::StopEndless { endless }).await?;
                Ok((
                    "Endless generation stopped".to_string(),
                    json!({"stopped": id}),
                ))
            }
            _ => Err((
                StatusCode::BAD_REQUEST,
                "op must be start or stop".to_string(),
            )),
        }
    }
    .await;
    finish(&headers, &base, r)
}

/// `POST /<singular>/<slug>/upload`: a cover from a file field `image` (or `file`).
pub async fn upload(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    mut mp: Multipart,
) -> Response {
    let base = format!("/{}/{slug}", c.desc().singular);
    let r = async {
        entry_exists(&s, c, &slug)?;
        let mut image = None;
        while let Some(fld) = mp
            .next_field()
            .await
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad upload: {e}")))?
        {
            if matches!(fld.name(), Some("image" | "file")) {
                image = Some(
                    fld.bytes()
                        .await
                        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad upload: {e}")))?,
                );
                break;
            }
        }
        let image = image.filter(|b| !b.is_empty()).ok_or((
            StatusCode::BAD_REQUEST,
            "choose an image file to upload".to_string(),
        ))?;
        let root = s.config.uploads.clone();
        let slug2 = slug.clone();
        let path = tokio::task::spawn_blocking(move || {
            crate::library::uploads::save_cover(&root, c, &slug2, &image)
        })
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        run(
            &s,
            Command::SetCover {
                category: c,
                slug: slug.clone(),
                path: path.clone(),
            },
        )
        .await?;
        Ok((
            "Cover uploaded".to_string(),
            json!({"cover": full_url(&path), "thumb": thumb_url(&path, 512)}),
        ))
    }
    .await;
    finish(&headers, &base, r)
}

/// Edits a document through the one write path.
async fn edit_doc(
    s: &AppState,
    c: Category,
    slug: &str,
    change: impl FnOnce(&mut Map<String, Value>) -> Result<(), String>,
) -> Result<crate::handle::Outcome, (StatusCode, String)> {
    let mut doc = s
        .handle
        .library()
        .get(c, slug)
        .and_then(Entry::data)
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("no {} with slug '{slug}'", c.desc().singular),
            )
        })?;
    change(&mut doc).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    run(
        s,
        Command::Edit {
            category: c,
            slug: slug.to_string(),
            doc,
        },
    )
    .await
}

/// Adds or removes the `"nsfw"` tag (an ordinary edit: it lives in the JSON file).
pub fn set_nsfw_tag(doc: &mut Map<String, Value>, on: bool) {
    let tags = doc
        .entry("tags")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !tags.is_array() {
        *tags = Value::Array(match tags.as_str() {
            Some(t) if !t.trim().is_empty() => vec![Value::String(t.to_string())],
            _ => Vec::new(),
        });
    }
    if let Value::Array(a) = tags {
        a.retain(|t| {
            !t.as_str()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("nsfw"))
        });
        if on {
            a.push(Value::String("nsfw".into()));
        }
    }
}

/// `POST /<singular>/<slug>/nsfw` with `on=1|0`.
pub async fn nsfw(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let on = field(&f, "on") != Some("0");
    let base = format!("/{}/{slug}", c.desc().singular);
    let r = edit_doc(&s, c, &slug, |d| {
        set_nsfw_tag(d, on);
        Ok(())
    })
    .await
    .map(|_| {
        (
            if on {
                "Marked NSFW"
            } else {
                "No longer marked NSFW"
            }
            .to_string(),
            json!({"nsfw": on}),
        )
    });
    finish(&headers, &base, r)
}

/// `POST /<singular>/<slug>/save_defaults`: the ticked fields become the default fields.
pub async fn save_defaults(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let base = format!("/{}/{slug}", c.desc().singular);
    let fields: Vec<String> = f
        .iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.clone())
        .collect();
    let n = fields.len();
    let r = run(
        &s,
        Command::SaveDefaultFields {
            category: c,
            slug: slug.clone(),
            fields,
        },
    )
    .await
    .map(|_| (format!("Saved {n} default field(s)"), json!({"fields": n})));
    finish(&headers, &base, r)
}

/// `POST /<singular>/<slug>/replace_cover_from_preview`: the given image of this page's jobs
/// (default: the latest preview) becomes the cover.
pub async fn replace_cover(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let base = format!("/{}/{slug}", c.desc().singular);
    let chosen: Result<String, (StatusCode, String)> = {
        let lib = s.handle.library();
        match field(&f, "image").filter(|i| !i.is_empty()) {
            Some(img) => {
                let img = img.trim_start_matches("/static/").to_string();
                if made_here(&s, &lib, c, &slug, &img) {
                    Ok(img)
                } else {
                    Err((
                        StatusCode::BAD_REQUEST,
                        "that image is not a preview of this page".to_string(),
                    ))
                }
            }
            None => latest_preview(&lib, c, &slug)
                .map(|(_, i)| i.to_string())
                .ok_or((
                    StatusCode::BAD_REQUEST,
                    "there is no preview yet".to_string(),
                )),
        }
    };
    let r = match chosen {
        Ok(path) => run(
            &s,
            Command::SetCover {
                category: c,
                slug: slug.clone(),
                path: path.clone(),
            },
        )
        .await
        .map(|_| {
            (
                "The preview is the cover now".to_string(),
                json!({"cover": full_url(&path), "thumb": thumb_url(&path, 512)}),
            )
        }),
        Err(e) => Err(e),
    };
    finish(&headers, &base, r)
}

/// `POST /<singular>/<slug>/save_preset`: the page's selections as a new preset.
pub async fn save_preset(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let base = format!("/{}/{slug}", c.desc().singular);
    let name = field(&f, "preset_name")
        .unwrap_or_default()
        .trim()
        .to_string();
    let r = async {
        entry_exists(&s, c, &slug)?;
        if name.is_empty() {
            return Err((
                StatusCode::BAD_REQUEST,
                "give the preset a name".to_string(),
            ));
        }
        let m = form_request(&s, c, &slug, &f).await?;
        let doc = {
            let lib = s.handle.library();
            preset_doc(&lib, c, &slug, &name, &m)
        };
        let o = run(
            &s,
            Command::Create {
                category: Category::Presets,
                doc,
                source: Source::Manual,
            },
        )
        .await?;
        let new = o
            .events
            .iter()
            .find_map(|e| e.event().subject().map(|(_, s)| s.to_string()))
            .unwrap_or_default();
        Ok((format!("Saved the preset '{name}'"), json!({"preset": new})))
    }
    .await;
    match r {
        Ok((msg, v)) if !super::is_ajax(&headers) => {
            let slug = v["preset"].as_str().unwrap_or_default();
            Redirect::to(&super::with_flash(&format!("/preset/{slug}"), true, &msg)).into_response()
        }
        other => finish(&headers, &base, other),
    }
}

/// A preset document from a page's request.
pub fn preset_doc(
    lib: &Library,
    c: Category,
    slug: &str,
    name: &str,
    m: &Map<String, Value>,
) -> Map<String, Value> {
    let id_of = |cat: Category, s: &str| -> Value {
        if s == RANDOM_SENTINEL {
            return RANDOM_SENTINEL.into();
        }
        lib.get(cat, s).map_or(Value::Null, |e| e.id.clone().into())
    };
    let slot = |cat: Category| -> Value {
        if cat == c {
            return id_of(cat, slug);
        }
        match cat {
            Category::Characters => m
                .get("character")
                .and_then(Value::as_str)
                .map_or(Value::Null, |s| id_of(cat, s)),
            _ => m
                .get("with")
                .and_then(|w| w.get(cat.key()))
                .and_then(Value::as_str)
                .map_or(Value::Null, |s| id_of(cat, s)),
        }
    };
    let mut doc = Map::new();
    doc.insert("preset_name".into(), name.into());
    for (k, cat) in [
        ("character", Category::Characters),
        ("look", Category::Looks),
        ("outfit", Category::Outfits),
        ("action", Category::Actions),
        ("style", Category::Styles),
        ("scene", Category::Scenes),
        ("detailer", Category::Detailers),
    ] {
        doc.insert(k.into(), slot(cat));
    }
    let checkpoint = if c == Category::Checkpoints {
        lib.get(c, slug)
            .map_or(Value::Null, |e| e.id.clone().into())
    } else {
        m.get("checkpoint").cloned().unwrap_or(Value::Null)
    };
    doc.insert("checkpoint".into(), checkpoint);
    doc.insert(
        "fields".into(),
        m.get("fields").cloned().unwrap_or_else(|| json!([])),
    );
    doc.insert(
        "active_outfit".into(),
        m.get("active_outfit").cloned().unwrap_or(Value::Null),
    );
    for k in ["extra_positive", "extra_negative"] {
        doc.insert(k.into(), m.get(k).cloned().unwrap_or_else(|| json!("")));
    }
    for k in ["width", "height"] {
        doc.insert(k.into(), m.get(k).cloned().unwrap_or(Value::Null));
    }
    doc.insert("seed".into(), m.get("seed").cloned().unwrap_or(Value::Null));
    doc.insert("tags".into(), json!([]));
    doc
}

/// `POST /character/<slug>/outfit/<switch|add|delete|rename>`.
pub async fn outfit_op(
    State(s): State<AppState>,
    Path((slug, op)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let c = Category::Characters;
    let base = format!("/character/{slug}");
    let name = field(&f, "outfit").unwrap_or_default().trim().to_string();
    let r: Result<(String, Value), (StatusCode, String)> = async {
        entry_exists(&s, c, &slug)?;
        if name.is_empty() {
            return Err((StatusCode::BAD_REQUEST, "name the outfit".to_string()));
        }
        match op.as_str() {
            "switch" => {
                let exists = {
                    let lib = s.handle.library();
                    lib.get(c, &slug)
                        .map(|e| outfits(&e.value()).0.iter().any(|(n, _)| *n == name))
                        .unwrap_or(false)
                };
                if !exists {
                    return Err((StatusCode::NOT_FOUND, format!("no outfit '{name}'")));
                }
                run(
                    &s,
                    Command::SetPreferences {
                        scope: scope(c, &slug),
                        values: vec![("active_outfit".into(), json!(name))],
                    },
                )
                .await?;
                Ok((
                    format!("Now wearing '{name}'"),
                    json!({"active_outfit": name}),
                ))
            }
            "add" | "delete" | "rename" => {
                let new_name = field(&f, "new_name").unwrap_or_default().trim().to_string();
                let op2 = op.clone();
                let name2 = name.clone();
                let nn = new_name.clone();
                edit_doc(&s, c, &slug, move |d| wardrobe_edit(d, &op2, &name2, &nn)).await?;
                if op == "delete" || op == "rename" {
                    let kept = prefs(&s.handle.library(), c, &slug).active_outfit;
                    if kept.as_deref() == Some(name.as_str()) {
                        let next = if op == "rename" {
                            json!(new_name)
                        } else {
                            Value::Null
                        };
                        run(
                            &s,
                            Command::SetPreferences {
                                scope: scope(c, &slug),
                                values: vec![("active_outfit".into(), next)],
                            },
                        )
                        .await?;
                    }
                }
                Ok((
                    match op.as_str() {
                        "add" => format!("Added the outfit '{name}'"),
                        "delete" => format!("Deleted the outfit '{name}'"),
                        _ => format!("Renamed '{name}' to '{new_name}'"),
                    },
                    json!({"outfit": name}),
                ))
            }
            _ => Err((StatusCode::NOT_FOUND, format!("no outfit operation '{op}'"))),
        }
    }
    .await;
    finish(&headers, &base, r)
}

/// Changes a character's wardrobe: add a blank outfit, delete one (never the last), rename
/// one in place. A legacy flat wardrobe becomes the outfit `default` first.
pub fn wardrobe_edit(
    doc: &mut Map<String, Value>,
    op: &str,
    name: &str,
    new_name: &str,
) -> Result<(), String> {
    let w = doc
        .entry("wardrobe")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(map) = w else {
        return Err("the wardrobe is not an object; fix it in the raw JSON editor".into());
    };
    if !map.is_empty() && !map.values().any(Value::is_object) {
        let flat = std::mem::take(map);
        map.insert("default".into(), Value::Object(flat));
    }
    match op {
        "add" => {
            if map.contains_key(name) {
                return Err(format!("there is already an outfit '{name}'"));
            }
            let blank: Map<String, Value> = WARDROBE_KEYS
                .iter()
                .map(|k| (k.to_string(), Value::String(String::new())))
                .collect();
            map.insert(name.to_string(), Value::Object(blank));
        }
        "delete" => {
            if !map.contains_key(name) {
                return Err(format!("no outfit '{name}'"));
            }
            if map.len() <= 1 {
                return Err("a character keeps at least one outfit".into());
            }
            map.shift_remove(name);
        }
        "rename" => {
            if new_name.is_empty() {
                return Err("give the outfit a new name".into());
            }
            if map.contains_key(new_name) {
                return Err(format!("there is already an outfit '{new_name}'"));
            }
            if !map.contains_key(name) {
                return Err(format!("no outfit '{name}'"));
            }
            let old = std::mem::take(map);
            for (k, v) in old {
                if k == name {
                    map.insert(new_name.to_string(), v);
                } else {
                    map.insert(k, v);
                }
            }
        }
        _ => return Err(format!("no outfit operation '{op}'")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn wardrobe_operations_keep_order_and_refuse_mistakes() {
        let mut d = doc(json!({"wardrobe": {"default": {"top": "a"}, "maid": {"top": "b"}}}));
        wardrobe_edit(&mut d, "add", "swim", "").unwrap();
        let keys: Vec<&String> = d["wardrobe"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["default", "maid", "swim"]);
        assert_eq!(d["wardrobe"]["swim"]["gloves"], "");
        wardrobe_edit(&mut d, "rename", "maid", "butler").unwrap();
        let keys: Vec<&String> = d["wardrobe"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["default", "butler", "swim"]);
        assert_eq!(d["wardrobe"]["butler"]["top"], "b");
        wardrobe_edit(&mut d, "delete", "swim", "").unwrap();
        let cases = [
            ("add", "default", "", "already"),
            ("rename", "default", "butler", "already"),
            ("rename", "nope", "x", "no outfit"),
            ("rename", "default", "", "new name"),
            ("delete", "nope", "", "no outfit"),
            ("explode", "default", "", "no outfit operation"),
        ];
        for (op, name, new, want) in cases {
            let err = wardrobe_edit(&mut d, op, name, new).unwrap_err();
            assert!(err.contains(want), "{op} {name}: {err}");
        }
        wardrobe_edit(&mut d, "delete", "butler", "").unwrap();
        assert!(
            wardrobe_edit(&mut d, "delete", "default", "")
                .unwrap_err()
                .contains("at least one")
        );
    }

    #[test]
    fn a_flat_wardrobe_becomes_the_default_outfit() {
        let mut d = doc(json!({"wardrobe": {"top": "shirt", "bottom": "skirt"}}));
        wardrobe_edit(&mut d, "add", "winter", "").unwrap();
        assert_eq!(d["wardrobe"]["default"]["top"], "shirt");
        assert!(d["wardrobe"]["winter"].is_object());
        let mut none = doc(json!({}));
        wardrobe_edit(&mut none, "add", "default", "").unwrap();
        assert!(none["wardrobe"]["default"].is_object());
        let mut bad = doc(json!({"wardrobe": "x"}));
        assert!(wardrobe_edit(&mut bad, "add", "a", "").is_err());
    }

    #[test]
    fn nsfw_tag_added_once_removed_in_any_case_and_other_tags_kept() {
        let mut d = doc(json!({"tags": ["a", "NSFW"]}));
        set_nsfw_tag(&mut d, true);
        assert_eq!(d["tags"], json!(["a", "nsfw"]));
        set_nsfw_tag(&mut d, false);
        assert_eq!(d["tags"], json!(["a"]));
        let mut none = doc(json!({"x": 1}));
        set_nsfw_tag(&mut none, true);
        assert_eq!(none["tags"], json!(["nsfw"]));
        let mut text = doc(json!({"tags": "old"}));
        set_nsfw_tag(&mut text, true);
        assert_eq!(text["tags"], json!(["old", "nsfw"]));
    }

    #[test]
    fn forms_become_requests() {
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let (p, all) = prefs_from_form(
            Category::Outfits,
            &f(&[
                ("fields_present", "1"),
                ("fields", "wardrobe::top"),
                ("character", "__random__"),
                ("extra_positive", " sunny "),
                ("width", "512"),
                ("seed", ""),
            ]),
        )
        .unwrap();
        assert!(!all);
        let m = request_of(Category::Outfits, "maid", &p, all);
        assert_eq!(m["character"], "__random__");
        assert_eq!(m["extra_positive"], "sunny");
        assert_eq!(m["width"], 512);
        assert!(m.get("seed").is_none());
        let fields = m["fields"].as_array().unwrap();
        assert!(fields.contains(&json!("wardrobe::top")));
        assert!(
            fields.contains(&json!("identity::hair")),
            "character fields kept"
        );
        assert!(!fields.contains(&json!("wardrobe::bottom")));
        // Every wardrobe box ticked: no selection sent, the engine decides as it always does.
        let every: Vec<(String, String)> = std::iter::once(("fields_present".into(), "1".into()))
            .chain(
                WARDROBE_KEYS
                    .iter()
                    .map(|k| ("fields".to_string(), format!("wardrobe::{k}"))),
            )
            .collect();
        let (p, all) = prefs_from_form(Category::Outfits, &every).unwrap();
        assert!(all);
        assert!(
            request_of(Category::Outfits, "maid", &p, all)
                .get("fields")
                .is_none()
        );
        // A character page sends exactly its ticked fields; other pages no character field.
        let (p, _) = prefs_from_form(
            Category::Characters,
            &f(&[
                ("fields_present", "1"),
                ("fields", "identity::hair"),
                ("character", "x"),
            ]),
        )
        .unwrap();
        let m = request_of(Category::Characters, "tifa", &p, true);
        assert_eq!(m["fields"], json!(["identity::hair"]));
        assert!(m.get("character").is_none());
        assert!(prefs_from_form(Category::Styles, &f(&[("width", "wide")])).is_err());
        // A detailer's action slot.
        let (p, _) =
            prefs_from_form(Category::Detailers, &f(&[("slot_actions", "sitting")])).unwrap();
        assert_eq!(
            request_of(Category::Detailers, "d", &p, true)["with"],
            json!({"actions": "sitting"})
        );
    }
}
