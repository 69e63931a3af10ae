//! The image gallery (`/gallery`): every image GAZE holds, from the image index, filtered by
//! category, entry, favourites, NSFW, kind, date and prompt words, newest or oldest first, paged
//! on the server (a page of 60 out of a million in milliseconds). The image view
//! (`/gallery/image?path=`) shows it full size with its recipe (prompts, seed, checkpoint, LoRAs
//! and weights, the entries and their versions) and its PNG metadata; make it its entry's
//! cover, star it, delete it (an event; the recipe stays), download it; ← and → move through
//! the same filtered list and Escape goes back (`static/js/images.js`).

use super::ui::{full_url, pagination, thumb_url};
use super::{FormPairs, Page, enc, field, finish, flash_of, global_pref, page, run, safe_back};
use crate::gallery::index::{self, Filter, Index, Kind, Row};
use crate::library::category::Category;
use crate::library::command::Command;
use crate::library::projection::Library;
use crate::web::AppState;
use crate::web::guard::csrf_field;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/gallery", get(gallery))
        .route("/gallery/image", get(image_page))
        .route("/gallery/favourite", post(favourite))
        .route("/gallery/delete", post(delete))
        .route("/gallery/cover", post(make_cover))
        .route("/gallery/rescan", post(rescan))
}

/// Page sizes offered.
pub const PER_PAGE: [usize; 4] = [30, 60, 120, 240];

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` (UTC midnight) as unix seconds.
pub fn date_secs(s: &str) -> Option<u32> {
    let mut p = s.trim().splitn(3, '-');
    let y: i64 = p.next()?.parse().ok()?;
    let m: u32 = p.next()?.parse().ok()?;
    let d: u32 = p.next()?.parse().ok()?;
    if !(1970..=2105).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    u32::try_from(days * 86_400).ok()
}

/// Unix seconds as `YYYY-MM-DD HH:MM` (UTC).
pub fn time_text(secs: u32) -> String {
    let days = i64::from(secs / 86_400);
    let rem = secs % 86_400;
    // civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// What the gallery's controls ask for.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// `""` (all), a category key, or `none` (images without an entry: the generator's).
    pub category: String,
    /// `category/slug`.
    pub entry: String,
    pub favourites: bool,
    pub nsfw: String,
    /// `""`, `generated`, `upload` or `untracked`.
    pub kind: String,
    pub from: String,
    pub to: String,
    /// `newest` or `oldest`.
    pub sort: String,
    /// Words of the prompt.
    pub q: String,
    pub page: usize,
    pub per: usize,
}

impl View {
    pub fn from_query(q: &HashMap<String, String>, nsfw_default: &str) -> View {
        let get = |k: &str| q.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
        let category = get("category");
        let kind = get("kind");
        let date = |k: &str| {
            let v = get(k);
            if date_secs(&v).is_some() {
                v
            } else {
                String::new()
            }
        };
        View {
            category: if category == "none" || Category::parse(&category).is_some() {
                category
            } else {
                String::new()
            },
            entry: {
                let e = get("entry");
                match e.split_once('/') {
                    Some((c, slug))
                        if Category::parse(c).is_some()
                            && crate::library::category::is_slug(slug) =>
                    {
                        e
                    }
                    _ => String::new(),
                }
            },
            favourites: q.get("fav").is_some_and(|v| v == "1"),
            nsfw: match q.get("nsfw").map(String::as_str) {
                Some(v @ ("show" | "blur" | "hide")) => v.to_string(),
                _ => nsfw_default.to_string(),
            },
            kind: if Kind::parse(&kind).is_some() {
                kind
            } else {
                String::new()
            },
            from: date("from"),
            to: date("to"),
            sort: if get("sort") == "oldest" {
                "oldest".into()
            } else {
                "newest".into()
            },
            q: get("q"),
            page: super::ui::page_number(q),
            per: super::ui::per_page(q, &PER_PAGE),
        }
    }

    /// The query string of this view, without the page.
    pub fn query(&self, nsfw_default: &str) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("category", &self.category),
            ("entry", &self.entry),
            ("kind", &self.kind),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", enc(v)));
            }
        }
        if self.favourites {
            parts.push("fav=1".into());
        }
        if self.nsfw != nsfw_default {
            parts.push(format!("nsfw={}", self.nsfw));
        }
        if self.sort != "newest" {
            parts.push(format!("sort={}", self.sort));
        }
        if self.per != 60 {
            parts.push(format!("per={}", self.per));
        }
        parts.join("&")
    }

    /// The index filter (the prompt words are matched against the index's words).
    pub fn filter(&self, ix: &Index) -> Filter {
        Filter {
            category: match self.category.as_str() {
                "" => None,
                "none" => Some(None),
                c => Category::parse(c).map(Some),
            },
            entry: self
                .entry
                .split_once('/')
                .and_then(|(c, slug)| Category::parse(c).map(|c| (c, slug.to_string()))),
            favourites: self.favourites,
            hide_nsfw: self.nsfw == "hide",
            kind: Kind::parse(&self.kind),
            from: date_secs(&self.from),
            until: date_secs(&self.to).map(|t| t.saturating_add(86_400)),
            oldest_first: self.sort == "oldest",
            prompts: if self.q.is_empty() {
                None
            } else {
                Some(ix.words.matching(&self.q).unwrap_or_default())
            },
        }
    }
}

/// Which directories of the index belong to entries tagged NSFW.
pub fn nsfw_dirs(s: &AppState, ix: &Index, lib: &Library) -> std::sync::Arc<Vec<bool>> {
    s.images.dir_flags(lib.seq, ix.dirs.len(), || {
        ix.dirs
            .iter()
            .map(|d| {
                d.entry.as_ref().is_some_and(|(c, slug)| {
                    lib.get(*c, slug)
                        .is_some_and(|e| super::gallery::is_nsfw(&e.value()))
                })
            })
            .collect()
    })
}

/// The entry an image belongs to: (category, slug, name if it still exists).
fn entry_of(ix: &Index, lib: &Library, r: &Row) -> Option<(Category, String, Option<String>)> {
    let (c, slug) = ix.dir_of(r)?.entry.clone()?;
    let name = lib.get(c, &slug).map(|e| e.name.clone());
    Some((c, slug, name))
}

fn density(s: &AppState) -> String {
    global_pref(s, "density").unwrap_or_else(|| "comfortable".into())
}

/// The link to an image's view, keeping the gallery's filters.
pub fn image_href(path: &str, query: &str) -> String {
    if query.is_empty() {
        format!("/gallery/image?path={}", enc(path))
    } else {
        format!("/gallery/image?path={}&{query}", enc(path))
    }
}

async fn gallery(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let s2 = s.clone();
    let flash = flash_of(&q);
    let body = match tokio::task::spawn_blocking(move || gallery_body(&s2, &q)).await {
        Ok(b) => b,
        Err(e) => return crate::web::ApiError::internal(e).into_response(),
    };
    page(
        &s,
        &Page {
            title: "Image gallery",
            section: Some("gallery"),
            scripts: &["images.js"],
            flash,
            refresh: None,
        },
        body,
    )
    .into_response()
}

/// The gallery's content (also what the workshop benchmark measures). Blocking.
pub fn gallery_body(s: &AppState, q: &HashMap<String, String>) -> Markup {
    let nsfw_default = global_pref(s, "nsfw").unwrap_or_else(|| "blur".into());
    let dens = density(s);
    let v = View::from_query(q, &nsfw_default);
    let ix = s.images.current();
    let lib = s.handle.library();
    let nsfw = nsfw_dirs(s, &ix, &lib);
    let f = v.filter(&ix);
    let (ids, total) = ix.page(&f, &nsfw, (v.page - 1).saturating_mul(v.per), v.per);
    let pages = total.div_ceil(v.per).max(1);
    let query = v.query(&nsfw_default);
    let base = if query.is_empty() {
        "/gallery".to_string()
    } else {
        format!("/gallery?{query}")
    };
    let here = if v.page > 1 {
        format!(
            "{base}{}page={}",
            if query.is_empty() { '?' } else { '&' },
            v.page
        )
    } else {
        base.clone()
    };
    let view_query = if v.page > 1 {
        if query.is_empty() {
            format!("page={}", v.page)
        } else {
            format!("{query}&page={}", v.page)
        }
    } else {
        query.clone()
    };
    let pending = if v.q.is_empty() {
        0
    } else {
        ix.prompts_pending()
    };
    let without_entry = {
        let mut w = v.clone();
        w.entry.clear();
        let q = w.query(&nsfw_default);
        if q.is_empty() {
            "/gallery".to_string()
        } else {
            format!("/gallery?{q}")
        }
    };
    let entry_label = f.entry.as_ref().map(|(c, slug)| {
        lib.get(*c, slug)
            .map_or_else(|| format!("{}/{slug}", c.key()), |e| e.name.clone())
    });
    let width = match dens.as_str() {
        "compact" => 160,
        "large" => 512,
        _ => 240,
    };
    html! {
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto { "Image gallery " span.badge.text-bg-secondary.align-middle { (ix.len()) } }
            form method="post" action="/gallery/rescan" {
                (csrf_field(s))
                button.btn.btn-outline-secondary.btn-sm type="submit"
                    title="Look for images under the uploads folder that no event names" { "Rescan uploads" }
            }
        }
        form.row.g-2.align-items-end.mb-3.gallery-filters #gallery-filters method="get" action="/gallery" role="search" data-filters {
            @if !v.entry.is_empty() {
                input type="hidden" name="entry" value=(v.entry);
            }
            div.col-12.col-md-4.col-lg-2 {
                label.form-label.small for="g-q" { "Prompt words" }
                input.form-control.form-control-sm #g-q type="search" name="q" value=(v.q) placeholder="e.g. silver hair";
            }
            div.col-6.col-md-4.col-lg-2 {
                label.form-label.small for="g-category" { "Category" }
                select.form-select.form-select-sm #g-category name="category" data-autosubmit {
                    option value="" selected[v.category.is_empty()] { "All" }
                    @for c in Category::ALL {
                        option value=(c.key()) selected[v.category == c.key()] { (c.desc().title) }
                    }
                    option value="none" selected[v.category == "none"] { "Generator (no entry)" }
                }
            }
            div.col-6.col-md-4.col-lg-1 {
                label.form-label.small for="g-kind" { "Kind" }
                select.form-select.form-select-sm #g-kind name="kind" data-autosubmit {
                    option value="" selected[v.kind.is_empty()] { "All" }
                    option value="generated" selected[v.kind == "generated"] { "Generated" }
                    option value="upload" selected[v.kind == "upload"] { "Uploaded" }
                    option value="untracked" selected[v.kind == "untracked"] { "Found on disk" }
                }
            }
            div.col-6.col-md-3.col-lg-2 {
                label.form-label.small for="g-from" { "From" }
                input.form-control.form-control-sm #g-from type="date" name="from" value=(v.from);
            }
            div.col-6.col-md-3.col-lg-2 {
                label.form-label.small for="g-to" { "To" }
                input.form-control.form-control-sm #g-to type="date" name="to" value=(v.to);
            }
            div.col-6.col-md-3.col-lg-1 {
                label.form-label.small for="g-sort" { "Order" }
                select.form-select.form-select-sm #g-sort name="sort" data-autosubmit {
                    option value="newest" selected[v.sort == "newest"] { "Newest" }
                    option value="oldest" selected[v.sort == "oldest"] { "Oldest" }
                }
            }
            div.col-6.col-md-3.col-lg-1 {
                label.form-label.small for="g-nsfw" { "NSFW" }
                select.form-select.form-select-sm #g-nsfw name="nsfw" data-autosubmit {
                    option value="show" selected[v.nsfw == "show"] { "Shown" }
                    option value="blur" selected[v.nsfw == "blur"] { "Blurred" }
                    option value="hide" selected[v.nsfw == "hide"] { "Hidden" }
                }
            }
            div.col-12.col-lg-auto.d-flex.align-items-center.gap-2 {
                div.form-check.small.mb-0 {
                    input.form-check-input #g-fav type="checkbox" name="fav" value="1" checked[v.favourites] data-autosubmit;
                    label.form-check-label for="g-fav" { "★ only" }
                }
                button.btn.btn-sm.btn-secondary type="submit" { "Apply" }
            }
        }
        @if let Some(label) = &entry_label {
            p.small {
                "Images of " strong { (label) } " · "
                a href=(without_entry) { "all images" }
            }
        }
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-2 {
            p.small.text-body-secondary.mb-0.me-auto #result-count {
                (total) " of " (ix.len()) " images"
                @if pages > 1 { " · page " (v.page) " of " (pages) }
                @if pending > 0 { " · " (pending) " still being indexed by their prompt" }
            }
            label.small.text-body-secondary for="g-per" { "Per page" }
            select.form-select.form-select-sm.w-auto #g-per name="per" form="gallery-filters" data-autosubmit {
                @for n in PER_PAGE {
                    option value=(n) selected[v.per == n] { (n) }
                }
            }
        }
        @if ids.is_empty() {
            div.text-center.text-body-secondary.py-5.empty {
                @if ix.is_empty() {
                    p { "No images yet. Generate some from an entry's page or the " a href="/generator" { "generator" } "." }
                } @else {
                    p { "No image matches these filters." }
                    a href="/gallery" { "Show all" }
                }
            }
        }
        form #img-fav-form method="post" action="/gallery/favourite" data-img-fav-form {
            (csrf_field(s))
            input type="hidden" name="back" value=(here);
        }
        div.image-grid .density-compact[dens == "compact"] .density-large[dens == "large"] data-images {
            @for &id in &ids {
                (tile(&ix, &lib, &nsfw, id, &v.nsfw, &view_query, width))
            }
        }
        (pagination(&base, v.page, pages))
    }
}

/// One image in the grid.
fn tile(
    ix: &Index,
    lib: &Library,
    nsfw: &[bool],
    id: u32,
    mode: &str,
    query: &str,
    width: u32,
) -> Markup {
    let r = &ix.rows[id as usize];
    let path = ix.path_of(r);
    let entry = entry_of(ix, lib, r);
    let blur = mode == "blur" && nsfw.get(r.dir as usize).copied().unwrap_or(false);
    let label = match &entry {
        Some((c, slug, name)) => name
            .clone()
            .unwrap_or_else(|| format!("{}/{slug}", c.key())),
        None => "Generator".to_string(),
    };
    let fav = r.has(index::FAV);
    let href = image_href(&path, query);
    let fav_action = format!(
        "/gallery/favourite?path={}&on={}",
        enc(&path),
        if fav { 0 } else { 1 }
    );
    html! {
        div.image-cell {
            figure.image-tile.mb-0.nsfw-blur[blur] data-path=(path) id={ "img-" (id) } {
                a.thumb-link href=(href) data-image-link {
                    img.tile-img src=(thumb_url(&path, width)) alt={ "Image of " (label) } loading="lazy" decoding="async";
                }
                button.btn.btn-sm.fav-btn.on[fav] type="submit" form="img-fav-form" formaction=(fav_action)
                    aria-pressed=(fav) aria-label={ "Favourite image of " (label) } title=(if fav { "Unstar" } else { "Star" }) {
                    (if fav { "★" } else { "☆" })
                }
                @if r.has(index::MISSING) {
                    span.badge.text-bg-warning.tile-badge { "file missing" }
                }
                figcaption.small.px-1 {
                    span.d-block.text-truncate { (label) }
                    span.d-block.text-truncate.text-body-secondary { (time_text(r.at)) }
                }
            }
        }
    }
}

/// The recipe's parts shown beside an image.
fn recipe_panel(recipe: &Value, lib: &Library) -> Markup {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let prompts = &recipe["prompts"];
    html! {
        dl.row.small.recipe.mb-0 {
            @for (label, key) in [("Positive", "main"), ("Negative", "negative"), ("Face", "face"), ("Hand", "hand")] {
                @let t = text(&prompts[key]);
                @if !t.is_empty() {
                    dt.col-sm-3 { (label) }
                    dd.col-sm-9 data-prompt=(key) { (t) }
                }
            }
            dt.col-sm-3 { "Seed" }
            dd.col-sm-9 data-recipe="seed" { (text(&recipe["seed"])) }
            dt.col-sm-3 { "Size" }
            dd.col-sm-9 { (text(&recipe["width"])) " × " (text(&recipe["height"])) }
            dt.col-sm-3 { "Checkpoint" }
            dd.col-sm-9 data-recipe="checkpoint" { (text(&recipe["checkpoint"])) }
            @if let Some(loras) = recipe["loras"].as_array().filter(|a| !a.is_empty()) {
                dt.col-sm-3 { "LoRAs" }
                dd.col-sm-9 {
                    ul.list-unstyled.mb-0 {
                        @for l in loras {
                            li data-lora=(text(&l["name"])) {
                                code { (text(&l["name"])) } " @ " strong { (text(&l["weight"])) }
                                span.text-body-secondary { " (node " (text(&l["node"])) ", from " (text(&l["source"])) ")" }
                            }
                        }
                    }
                }
            }
            @if let Some(versions) = recipe["versions"].as_object().filter(|m| !m.is_empty()) {
                dt.col-sm-3 { "Entries" }
                dd.col-sm-9 {
                    ul.list-unstyled.mb-0 {
                        @for (key, seq) in versions {
                            @let (c, slug) = key.split_once('/').unwrap_or((key.as_str(), ""));
                            @let cat = Category::parse(c);
                            @let now = cat.and_then(|c| lib.get(c, slug));
                            li data-version=(key) {
                                @match (cat, now) {
                                    (Some(c), Some(e)) => { a href={ "/" (c.desc().singular) "/" (slug) } { (e.name) } }
                                    _ => { (key) }
                                }
                                " — version " (text(seq))
                                @match now {
                                    Some(e) if Some(e.version) != seq.as_u64() => {
                                        span.badge.text-bg-warning.ms-1 title="The entry changed after this image was made" { "now " (e.version) }
                                    }
                                    None => { span.badge.text-bg-secondary.ms-1 { "no longer in the library" } }
                                    _ => {}
                                }
                            }
                        }
                    }
                }
            }
            @if !recipe["template_version"].is_null() {
                dt.col-sm-3 { "Workflow" }
                dd.col-sm-9 { "template version " (text(&recipe["template_version"])) }
            }
        }
    }
}

/// What the image view needs that is read from disk and the ledger.
struct Loaded {
    recipe: Option<Result<Value, String>>,
    metadata: Result<Vec<(String, String)>, String>,
}

fn load(s: &AppState, path: &str, job: Option<u128>) -> Loaded {
    let recipe = job.map(|j| {
        s.handle.job_spec(j).and_then(|spec| {
            serde_json::from_str::<Value>(&spec.recipe)
                .map_err(|e| format!("the recipe does not parse: {e}"))
        })
    });
    let rel = crate::library::thumbs::uploads_relative(path);
    let metadata = crate::library::files::resolve_inside(&s.config.uploads, rel).and_then(|file| {
        match std::fs::metadata(&file) {
            Ok(m) if m.len() > 64 * 1024 * 1024 => Err("the file is too large to read".into()),
            Ok(_) => std::fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
                        crate::jobs::png::read_text(&bytes)
                    } else {
                        Ok(Vec::new())
                    }
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err("the file is not on disk".into())
            }
            Err(e) => Err(e.to_string()),
        }
    });
    Loaded { recipe, metadata }
}

async fn image_page(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s2 = s.clone();
    let q2 = q.clone();
    let built = tokio::task::spawn_blocking(move || image_body(&s2, &q2)).await;
    let (status, title, body) = match built {
        Ok(Some(b)) => (StatusCode::OK, "Image", b),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "Not found",
            html! {
                h1.h3 { "No such image" }
                p { "The gallery has no image " code { (q.get("path").cloned().unwrap_or_default()) } "." }
                p { a href="/gallery" { "Back to the gallery" } }
            },
        ),
        Err(e) => return crate::web::ApiError::internal(e).into_response(),
    };
    (
        status,
        page(
            &s,
            &Page {
                title,
                section: Some("gallery"),
                scripts: &["images.js"],
                flash: flash_of(&q),
                refresh: None,
            },
            body,
        ),
    )
        .into_response()
}

/// The image view, or `None` for an image the gallery does not hold. Blocking.
fn image_body(s: &AppState, q: &HashMap<String, String>) -> Option<Markup> {
    let path = q.get("path")?.trim().to_string();
    let nsfw_default = global_pref(s, "nsfw").unwrap_or_else(|| "blur".into());
    let v = View::from_query(q, &nsfw_default);
    let query = {
        let mut x = v.query(&nsfw_default);
        if v.page > 1 {
            x = if x.is_empty() {
                format!("page={}", v.page)
            } else {
                format!("{x}&page={}", v.page)
            };
        }
        x
    };
    let (row, id, prev, next, position, total, entry, cover_of, path) = {
        let ix = s.images.current();
        let id = ix.find(&path)?;
        let row = ix.rows[id as usize];
        if !row.visible() {
            return None;
        }
        let lib = s.handle.library();
        let nsfw = nsfw_dirs(s, &ix, &lib);
        let f = v.filter(&ix);
        let (prev, next, position) = ix.neighbours(id, &f, &nsfw);
        let total = if position.is_some() {
            Some(ix.page(&f, &nsfw, 0, 0).1)
        } else {
            None
        };
        let entry = entry_of(&ix, &lib, &row);
        let cover_of: Vec<(Category, String, String)> = Category::ALL
            .iter()
            .flat_map(|c| {
                lib.shelf(*c)
                    .docs
                    .values()
                    .filter(|e| e.cover.as_deref() == Some(path.as_str()))
                    .map(|e| (*c, e.slug.clone(), e.name.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let p = |x: Option<u32>| x.map(|i| ix.path_of(&ix.rows[i as usize]));
        (
            row,
            id,
            p(prev),
            p(next),
            position,
            total,
            entry,
            cover_of,
            ix.path_of(&row),
        )
    };
    let loaded = load(s, &path, row.job());
    let lib = s.handle.library();
    let back = if query.is_empty() {
        "/gallery".to_string()
    } else {
        format!("/gallery?{query}")
    };
    let here = image_href(&path, &query);
    let label = match &entry {
        Some((c, slug, name)) => name
            .clone()
            .unwrap_or_else(|| format!("{}/{slug}", c.key())),
        None => "Generator".to_string(),
    };
    let fav = row.has(index::FAV);
    let job = row.job().map(|j| ulid::Ulid::from(j).to_string());
    Some(html! {
        div.image-view data-image-view data-back=(back)
            data-prev=[prev.as_ref().map(|p| image_href(p, &query))]
            data-next=[next.as_ref().map(|p| image_href(p, &query))] {
            nav.d-flex.flex-wrap.align-items-center.gap-2.mb-2 aria-label="Image navigation" {
                a.btn.btn-sm.btn-outline-secondary href=(back) data-key="Escape" title="Back to the gallery (Esc)" { "✕ Gallery" }
                @if let Some(p) = &prev {
                    a.btn.btn-sm.btn-outline-secondary href=(image_href(p, &query)) rel="prev" data-key="ArrowLeft" title="Previous (←)" { "← Previous" }
                } @else {
                    span.btn.btn-sm.btn-outline-secondary.disabled aria-disabled="true" { "← Previous" }
                }
                @if let Some(n) = &next {
                    a.btn.btn-sm.btn-outline-secondary href=(image_href(n, &query)) rel="next" data-key="ArrowRight" title="Next (→)" { "Next →" }
                } @else {
                    span.btn.btn-sm.btn-outline-secondary.disabled aria-disabled="true" { "Next →" }
                }
                @if let (Some(p), Some(t)) = (position, total) {
                    span.small.text-body-secondary { (p + 1) " of " (t) }
                }
                span.small.text-body-secondary.ms-auto.d-none.d-md-inline { "Keys: ← → and Esc" }
            }
            div.row.g-3 {
                div.col-12.col-lg-7 {
                    figure.mb-0.full-image {
                        a href=(full_url(&path)) {
                            img.img-fluid.rounded.full-img #full-img src=(full_url(&path)) alt={ "Image of " (label) };
                        }
                        figcaption.small.text-body-secondary.mt-1 { code { (path) } }
                    }
                }
                div.col-12.col-lg-5 {
                    h1.h4 {
                        @match &entry {
                            Some((c, slug, Some(name))) => { a href={ "/" (c.desc().singular) "/" (slug) } { (name) } }
                            _ => { (label) }
                        }
                        @if fav { " " span.text-warning title="Favourite" { "★" } }
                    }
                    p.small.text-body-secondary {
                        (time_text(row.at)) " · "
                        (match row.kind() { Kind::Generated => "generated", Kind::Upload => "uploaded", Kind::Untracked => "found on disk" })
                        @if row.has(index::MISSING) { " · " span.text-warning { "the file is missing" } }
                        @for (c, slug, name) in &cover_of {
                            " · " span.badge.text-bg-success { "cover of " a.link-light href={ "/" (c.desc().singular) "/" (slug) } { (name) } }
                        }
                    }
                    div.d-flex.flex-wrap.gap-2.mb-3.image-actions {
                        form method="post" action={ "/gallery/favourite?path=" (enc(&path)) "&on=" (if fav { 0 } else { 1 }) } data-img-fav {
                            (csrf_field(s))
                            input type="hidden" name="back" value=(here);
                            button.btn.btn-sm.btn-outline-warning.fav-toggle type="submit" aria-pressed=(fav) {
                                (if fav { "★ Starred" } else { "☆ Star" })
                            }
                        }
                        @if let Some((c, slug, Some(_))) = &entry {
                            @if !cover_of.iter().any(|(cc, ss, _)| cc == c && ss == slug) {
                                form method="post" action="/gallery/cover" data-make-cover {
                                    (csrf_field(s))
                                    input type="hidden" name="path" value=(path);
                                    input type="hidden" name="back" value=(here);
                                    button.btn.btn-sm.btn-outline-primary type="submit" { "Make it the cover" }
                                }
                            }
                        }
                        a.btn.btn-sm.btn-outline-secondary href=(full_url(&path)) download { "Download" }
                        @if let Some(j) = &job {
                            a.btn.btn-sm.btn-outline-secondary href={ "/audit/" (j) } title="The job's full audit: recipe, workflow, diff, run again" { "Audit" }
                            a.btn.btn-sm.btn-outline-secondary href={ "/api/jobs/" (j) "/recipe" } { "Recipe JSON" }
                        }
                        div.dropdown {
                            button.btn.btn-sm.btn-outline-danger.dropdown-toggle type="button" data-bs-toggle="dropdown"
                                aria-expanded="false" { "Delete" }
                            form.dropdown-menu.dropdown-menu-end.p-3.delete-image method="post" action="/gallery/delete" data-delete-image {
                                (csrf_field(s))
                                input type="hidden" name="path" value=(path);
                                input type="hidden" name="back" value=(back);
                                @if let Some(n) = next.as_ref().or(prev.as_ref()) {
                                    input type="hidden" name="then" value=(image_href(n, &query));
                                }
                                p.small.mb-2 { "The file is removed. The ledger keeps that it was deleted" @if job.is_some() { ", and the job's recipe, so it can be made again" } "." }
                                div.form-check.mb-2 {
                                    input.form-check-input type="checkbox" name="confirm" value="yes" id="confirm-delete" required;
                                    label.form-check-label for="confirm-delete" { "Yes, delete this image" }
                                }
                                button.btn.btn-danger.btn-sm type="submit" { "Delete the image" }
                            }
                        }
                    }
                    @match &loaded.recipe {
                        Some(Ok(recipe)) => {
                            section.card.mb-3 aria-labelledby="recipe-title" {
                                div.card-header { h2.h6.mb-0 #recipe-title { "Recipe" } }
                                div.card-body { (recipe_panel(recipe, &lib)) }
                            }
                        }
                        Some(Err(e)) => {
                            div.alert.alert-warning.small { "The job's recipe could not be read: " (e) }
                        }
                        None => {
                            p.small.text-body-secondary { "No job made this image, so there is no recipe." }
                        }
                    }
                    section.card aria-labelledby="meta-title" {
                        div.card-header { h2.h6.mb-0 #meta-title { "PNG metadata" } }
                        div.card-body.small.png-meta {
                            @match &loaded.metadata {
                                Err(e) => { span.text-warning { (e) } }
                                Ok(list) if list.is_empty() => { span.text-body-secondary { "No text chunks in this file." } }
                                Ok(list) => {
                                    @for (key, text) in list {
                                        @let pretty = serde_json::from_str::<Value>(text).ok().and_then(|v| serde_json::to_string_pretty(&v).ok());
                                        details.mb-1 open[key == "parameters" || key == "gaze"] data-chunk=(key) {
                                            summary { code { (key) } " " span.text-body-secondary { (text.len()) " bytes" } }
                                            pre.meta-text.mb-1 tabindex="0" aria-label={ "The " (key) " chunk" } { (pretty.as_deref().unwrap_or(text)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p.small.text-body-secondary.mt-2 { "Row " (id) }
                }
            }
        }
    })
}

/// The path a form or query names, if the gallery holds it (and shows it).
fn known_image(s: &AppState, path: &str) -> Result<(String, Row), (StatusCode, String)> {
    let ix = s.images.current();
    match ix.find(path.trim()) {
        Some(id) if ix.rows[id as usize].visible() => {
            let r = ix.rows[id as usize];
            Ok((ix.path_of(&r), r))
        }
        _ => Err((
            StatusCode::NOT_FOUND,
            format!("the gallery has no image '{}'", path.trim()),
        )),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, (StatusCode, String)> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        let api = crate::web::ApiError::internal(e);
        (api.status, api.message)
    })
}

/// `POST /gallery/favourite?path=…&on=1|0` (the form carries the token and `back`).
async fn favourite(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let path = q
        .get("path")
        .map(String::as_str)
        .or(field(&f, "path"))
        .unwrap_or_default()
        .to_string();
    let on = q.get("on").map(String::as_str).or(field(&f, "on")) != Some("0");
    let back = safe_back(field(&f, "back"), "/gallery");
    let r = async {
        let s2 = s.clone();
        let p2 = path.clone();
        let (path, _) = blocking(move || known_image(&s2, &p2)).await??;
        run(
            &s,
            Command::SetImageFavourite {
                path: path.clone(),
                on,
            },
        )
        .await?;
        Ok((
            if on { "Starred" } else { "Unstarred" }.to_string(),
            json!({"path": path, "on": on}),
        ))
    }
    .await;
    finish(&headers, &back, r)
}

/// `POST /gallery/delete` with `path` and `confirm=yes`: records the deletion, then removes the
/// file; goes on to `then` (the next image) or `back`.
async fn delete(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let path = field(&f, "path").unwrap_or_default().to_string();
    let back = safe_back(field(&f, "back"), "/gallery");
    let then = field(&f, "then").map(|t| safe_back(Some(t), &back));
    let here = image_href(&path, "");
    if field(&f, "confirm") != Some("yes") {
        return finish(
            &headers,
            &here,
            Err((
                StatusCode::BAD_REQUEST,
                "Nothing deleted: tick the confirmation box first".into(),
            )),
        );
    }
    let r = async {
        let s2 = s.clone();
        let p2 = path.clone();
        let (path, row) = blocking(move || known_image(&s2, &p2)).await??;
        run(
            &s,
            Command::DeleteImage {
                path: path.clone(),
                job: row.job(),
            },
        )
        .await?;
        let images = s.images.clone();
        let p2 = path.clone();
        let removed = blocking(move || images.remove_file(&p2)).await?;
        let msg = match removed {
            Ok(()) => "Image deleted".to_string(),
            Err(e) => format!("Recorded as deleted, but the file could not be removed: {e}"),
        };
        Ok((msg, json!({"deleted": path})))
    }
    .await;
    match r {
        Ok(ok) => finish(&headers, then.as_deref().unwrap_or(&back), Ok(ok)),
        Err(e) => finish(&headers, &here, Err(e)),
    }
}

/// `POST /gallery/cover` with `path`: the image becomes its entry's cover.
async fn make_cover(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let path = field(&f, "path").unwrap_or_default().to_string();
    let back = safe_back(field(&f, "back"), &image_href(&path, ""));
    let r = async {
        let s2 = s.clone();
        let p2 = path.clone();
        let (path, entry) = blocking(move || {
            known_image(&s2, &p2).map(|(p, r)| {
                let ix = s2.images.current();
                (p, ix.dir_of(&r).and_then(|d| d.entry.clone()))
            })
        })
        .await??;
        let Some((category, slug)) = entry else {
            return Err((
                StatusCode::BAD_REQUEST,
                "this image belongs to no entry (the generator's), so it cannot be a cover".into(),
            ));
        };
        run(
            &s,
            Command::SetCover {
                category,
                slug: slug.clone(),
                path: path.clone(),
            },
        )
        .await?;
        let name = s
            .handle
            .library()
            .get(category, &slug)
            .map_or(slug.clone(), |e| e.name.clone());
        Ok((
            format!("It is now the cover of {name}"),
            json!({"cover": path, "entry": format!("{}/{slug}", category.key())}),
        ))
    }
    .await;
    finish(&headers, &back, r)
}

/// `POST /gallery/rescan`: look for images under the uploads folder that no event names.
async fn rescan(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let images = s.images.clone();
    let r = match blocking(move || images.scan()).await {
        Ok(Ok(scan)) => Ok((
            format!(
                "Scanned {} image files: {} found that no event names, {} missing",
                scan.files, scan.untracked_added, scan.missing
            ),
            json!({"files": scan.files, "untracked_added": scan.untracked_added, "missing": scan.missing}),
        )),
        Ok(Err(e)) => Err((StatusCode::CONFLICT, e)),
        Err(e) => Err(e),
    };
    finish(&headers, "/gallery", r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_both_ways() {
        for (text, secs) in [
            ("1970-01-01", 0u32),
            ("2000-03-01", 951_868_800),
            ("2024-02-29", 1_709_164_800),
            ("2026-12-31", 1_798_675_200),
        ] {
            assert_eq!(date_secs(text), Some(secs), "{text}");
            assert_eq!(time_text(secs), format!("{text} 00:00"));
        }
        assert_eq!(
            time_text(1_709_164_800 + 3600 * 13 + 60 * 7),
            "2024-02-29 13:07"
        );
        for bad in [
            "",
            "2024-13-01",
            "2024-00-10",
            "24-1-1x",
            "1969-12-31",
            "abc",
        ] {
            assert_eq!(date_secs(bad), None, "{bad}");
        }
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn views_parse_refuse_odd_values_and_round_trip() {
        let v = View::from_query(&q(&[]), "blur");
        assert_eq!(
            (v.sort.as_str(), v.page, v.per, v.nsfw.as_str()),
            ("newest", 1, 60, "blur")
        );
        assert_eq!(v.query("blur"), "");
        let odd = View::from_query(
            &q(&[
                ("category", "robots"),
                ("entry", "characters/../x"),
                ("kind", "stolen"),
                ("from", "yesterday"),
                ("sort", "random"),
                ("per", "7"),
                ("page", "0"),
                ("nsfw", "peek"),
            ]),
            "hide",
        );
        assert_eq!(odd, View::from_query(&q(&[]), "hide"));
        let v = View::from_query(
            &q(&[
                ("category", "none"),
                ("entry", "outfits/maid"),
                ("kind", "generated"),
                ("from", "2026-01-02"),
                ("to", "2026-01-05"),
                ("sort", "oldest"),
                ("q", "silver hair"),
                ("fav", "1"),
                ("per", "120"),
            ]),
            "blur",
        );
        let back: HashMap<String, String> = v
            .query("blur")
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("%20", " ").replace("%2F", "/")))
            .collect();
        assert_eq!(View::from_query(&back, "blur"), v);
        let f = v.filter(&Index::default());
        assert_eq!(f.category, Some(None));
        assert_eq!(f.entry, Some((Category::Outfits, "maid".into())));
        assert_eq!(f.from, date_secs("2026-01-02"));
        assert_eq!(f.until, date_secs("2026-01-06"), "the end day is included");
        assert!(f.oldest_first && f.favourites);
        assert_eq!(
            f.prompts,
            Some(Vec::new()),
            "words nobody used match nothing"
        );
    }
}
