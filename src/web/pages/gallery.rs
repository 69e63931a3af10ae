//! A category's gallery: one card per entry (cover thumbnail or a "no cover" placeholder, the
//! name, what a user chooses by), search by name, id and tag, filters, sorts, server-side
//! paging over a per-shelf index cached by the shelf's generation, favourites, "generate
//! missing covers" with live progress, "clear all covers" behind a confirmation, and the files
//! of the category that failed to sync.

use super::ui::{failures, pagination, thumb_url};
use super::{FormPairs, Page, enc, field, finish, global_pref, page, run, safe_back};
use crate::library::category::{Category, Fact};
use crate::library::command::Command;
use crate::library::projection::{Entry, Library};
use crate::web::AppState;
use crate::web::guard::csrf_field;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One entry as the gallery searches and sorts it.
#[derive(Debug)]
pub struct Row {
    pub slug: String,
    /// The name's natural sort key (numbers by value: "Character 2" before "Character 10").
    pub sort_name: String,
    /// Lower-case name, id, slug and tags, for searching.
    pub hay: String,
    pub cover: bool,
    pub favourite: bool,
    pub nsfw: bool,
    /// The seq of the last change (sort "recently edited").
    pub version: u64,
}

/// A shelf's rows sorted by name, made once per shelf generation.
#[derive(Debug)]
pub struct Index {
    pub generation: u64,
    pub rows: Vec<Arc<Row>>,
    /// The same rows by slug, so the next build reuses those of unchanged entries.
    by_slug: HashMap<String, Arc<Row>>,
}

/// Cached indexes, one per category.
pub type Cache = Mutex<HashMap<Category, Arc<Index>>>;

/// Whether a document carries the `"nsfw"` tag.
pub fn is_nsfw(v: &Value) -> bool {
    v.get("tags").and_then(Value::as_array).is_some_and(|a| {
        a.iter().any(|t| {
            t.as_str()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("nsfw"))
        })
    })
}

fn row(e: &Entry) -> Row {
    let v = e.value();
    let mut hay = format!("{} {} {}", e.name, e.id, e.slug).to_lowercase();
    if let Some(tags) = v.get("tags").and_then(Value::as_array) {
        for t in tags.iter().filter_map(Value::as_str) {
            hay.push(' ');
            hay.push_str(&t.to_lowercase());
        }
    }
    Row {
        slug: e.slug.clone(),
        sort_name: crate::library::search::natural_key(&e.name),
        hay,
        cover: e.cover.is_some(),
        favourite: e.favourite,
        nsfw: is_nsfw(&v),
        version: e.version,
    }
}

/// Builds a shelf's index, reusing the rows of `old` for entries that did not change.
fn build(lib: &Library, c: Category, old: Option<&Index>) -> Index {
    let shelf = lib.shelf(c);
    let mut by_slug = HashMap::with_capacity(shelf.docs.len());
    let mut rows: Vec<Arc<Row>> = Vec::with_capacity(shelf.docs.len());
    for e in shelf.docs.values() {
        let reused = old.and_then(|o| o.by_slug.get(&e.slug)).filter(|r| {
            r.version == e.version && r.favourite == e.favourite && r.cover == e.cover.is_some()
        });
        let r = match reused {
            Some(r) => r.clone(),
            None => Arc::new(row(e)),
        };
        by_slug.insert(e.slug.clone(), r.clone());
        rows.push(r);
    }
    rows.sort_unstable_by(|a, b| a.sort_name.cmp(&b.sort_name).then(a.slug.cmp(&b.slug)));
    Index {
        generation: shelf.generation,
        rows,
        by_slug,
    }
}

/// The index of a category, rebuilt only when the shelf changed.
pub fn index(s: &AppState, lib: &Library, c: Category) -> Arc<Index> {
    let generation = lib.shelf(c).generation;
    let mut cache = s.gallery.lock().unwrap_or_else(|p| p.into_inner());
    let old = cache.get(&c).cloned();
    if let Some(i) = &old
        && i.generation == generation
    {
        return i.clone();
    }
    let i = Arc::new(build(lib, c, old.as_deref()));
    cache.insert(c, i.clone());
    i
}

/// Builds every gallery's index on a blocking thread (at start-up), so the first visit to a
/// large gallery does not pay for reading every document.
pub fn warm(s: &AppState) {
    let s = s.clone();
    tokio::task::spawn_blocking(move || {
        for c in Category::ALL {
            let lib = s.handle.library();
            index(&s, &lib, c);
        }
    });
}

/// What the gallery's controls ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub q: String,
    /// `any`, `yes` or `no`.
    pub cover: String,
    pub favourites_only: bool,
    /// `show`, `blur` or `hide`.
    pub nsfw: String,
    /// `fav` (favourites first, then name), `name`, `edited`, `generated`.
    pub sort: String,
    pub page: usize,
    pub per: usize,
}

/// Page sizes offered; the largest keeps a page under 150 KB of HTML.
pub const PER_PAGE: [usize; 3] = [30, 60, 120];

impl View {
    pub fn from_query(q: &HashMap<String, String>, nsfw_default: &str) -> View {
        let pick = |k: &str, allowed: &[&str], default: &str| {
            q.get(k)
                .map(String::as_str)
                .filter(|v| allowed.contains(v))
                .unwrap_or(default)
                .to_string()
        };
        View {
            q: q.get("q").map(|s| s.trim().to_string()).unwrap_or_default(),
            cover: pick("cover", &["any", "yes", "no"], "any"),
            favourites_only: q.get("fav").is_some_and(|v| v == "1"),
            nsfw: pick("nsfw", &["show", "blur", "hide"], nsfw_default),
            sort: pick("sort", &["fav", "name", "edited", "generated"], "fav"),
            page: super::ui::page_number(q),
            per: super::ui::per_page(q, &PER_PAGE),
        }
    }

    /// The query string for this view without the page number.
    pub fn query(&self, nsfw_default: &str) -> String {
        let mut parts = Vec::new();
        if !self.q.is_empty() {
            parts.push(format!("q={}", enc(&self.q)));
        }
        if self.cover != "any" {
            parts.push(format!("cover={}", self.cover));
        }
        if self.favourites_only {
            parts.push("fav=1".into());
        }
        if self.nsfw != nsfw_default {
            parts.push(format!("nsfw={}", self.nsfw));
        }
        if self.sort != "fav" {
            parts.push(format!("sort={}", self.sort));
        }
        if self.per != 60 {
            parts.push(format!("per={}", self.per));
        }
        parts.join("&")
    }
}

/// When each entry of `c` last got an image (ms), from the jobs projection.
fn last_generated(lib: &Library, c: Category) -> HashMap<&str, u64> {
    lib.jobs
        .previews
        .get(&c)
        .into_iter()
        .flatten()
        .map(|(slug, p)| (slug.as_str(), p.at))
        .collect()
}

/// The rows a view shows, in order, and the total before paging.
pub fn select<'i>(lib: &Library, c: Category, idx: &'i Index, v: &View) -> (Vec<&'i Row>, usize) {
    let terms: Vec<String> =
        v.q.to_lowercase()
            .split_whitespace()
            .map(String::from)
            .collect();
    let mut rows: Vec<&Row> = idx
        .rows
        .iter()
        .map(|r| &**r)
        .filter(|r| terms.iter().all(|t| r.hay.contains(t.as_str())))
        .filter(|r| match v.cover.as_str() {
            "yes" => r.cover,
            "no" => !r.cover,
            _ => true,
        })
        .filter(|r| !v.favourites_only || r.favourite)
        .filter(|r| v.nsfw != "hide" || !r.nsfw)
        .collect();
    match v.sort.as_str() {
        "fav" => rows.sort_by_key(|r| !r.favourite),
        "edited" => rows.sort_by_key(|r| std::cmp::Reverse(r.version)),
        "generated" => {
            let when = last_generated(lib, c);
            rows.sort_by_key(|r| {
                std::cmp::Reverse(when.get(r.slug.as_str()).copied().unwrap_or(0))
            });
        }
        _ => {}
    }
    let total = rows.len();
    let start = (v.page - 1).saturating_mul(v.per).min(total);
    let end = (start + v.per).min(total);
    (rows[start..end].to_vec(), total)
}

pub async fn characters_home(s: State<AppState>, q: Query<HashMap<String, String>>) -> Response {
    gallery(s, Category::Characters, q).await
}

pub async fn gallery(
    State(s): State<AppState>,
    c: Category,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    page(
        &s,
        &Page {
            title: c.desc().title,
            section: Some(c.key()),
            scripts: &["gallery.js"],
            flash: super::flash_of(&q),
            refresh: None,
        },
        gallery_body(&s, c, &q),
    )
    .into_response()
}

/// The gallery's content (also what the page benchmark renders).
pub fn gallery_body(s: &AppState, c: Category, q: &HashMap<String, String>) -> Markup {
    let d = c.desc();
    let nsfw_default = global_pref(s, "nsfw").unwrap_or_else(|| "blur".into());
    let v = View::from_query(q, &nsfw_default);
    let lib = s.handle.library();
    let idx = index(s, &lib, c);
    let (rows, total) = select(&lib, c, &idx, &v);
    let pages = total.div_ceil(v.per).max(1);
    let query = v.query(&nsfw_default);
    let base = if query.is_empty() {
        format!("/{}", d.key)
    } else {
        format!("/{}?{query}", d.key)
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
    let missing = idx.rows.iter().filter(|r| !r.cover).count();
    let create = if c == Category::Characters {
        "/create".to_string()
    } else {
        format!("/{}/create", d.singular)
    };
    let clear_action = if c == Category::Characters {
        "/clear_all_covers".to_string()
    } else {
        format!("/clear_all_{}_covers", d.singular)
    };
    html! {
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto { (d.title) " " span.badge.text-bg-secondary.align-middle { (idx.rows.len()) } }
            a.btn.btn-primary.btn-sm href=(create) { "New " (d.singular) }
            form method="post" action={ "/" (d.key) "/rescan" } {
                (csrf_field(s))
                button.btn.btn-outline-secondary.btn-sm type="submit" { "Rescan" }
            }
            form method="post" action="/generate_missing" data-generate-missing {
                (csrf_field(s))
                input type="hidden" name="category" value=(d.key);
                button.btn.btn-outline-primary.btn-sm type="submit" disabled[missing == 0] {
                    "Generate missing covers (" (missing) ")"
                }
            }
            div.dropdown {
                button.btn.btn-outline-danger.btn-sm.dropdown-toggle type="button" data-bs-toggle="dropdown"
                    aria-expanded="false" { "Clear all covers" }
                form.dropdown-menu.dropdown-menu-end.p-3.clear-covers method="post" action=(clear_action) {
                    (csrf_field(s))
                    input type="hidden" name="back" value=(here);
                    p.small.mb-2 { "Every " (d.singular) " loses its cover (the image files stay; history keeps them)." }
                    div.form-check.mb-2 {
                        input.form-check-input type="checkbox" name="confirm" value="yes" id="confirm-clear" required;
                        label.form-check-label for="confirm-clear" { "Yes, clear all " (idx.rows.len() - missing) " covers" }
                    }
                    button.btn.btn-danger.btn-sm type="submit" { "Clear all covers" }
                }
            }
        }
        (failures(&lib, &[c]))
        section #missing-progress.missing-progress.d-none aria-live="polite" aria-label="Generating missing covers" {}
        form.row.g-2.align-items-end.mb-3.gallery-filters method="get" action={ "/" (d.key) } role="search" data-filters {
            div.col-12.col-md-4 {
                label.form-label.small for="f-q" { "Search name, id or tag" }
                input.form-control.form-control-sm #f-q type="search" name="q" value=(v.q) placeholder="e.g. tifa, maid, final fantasy";
            }
            div.col-6.col-md-2 {
                label.form-label.small for="f-cover" { "Cover" }
                select.form-select.form-select-sm #f-cover name="cover" data-autosubmit {
                    option value="any" selected[v.cover == "any"] { "All" }
                    option value="yes" selected[v.cover == "yes"] { "With cover" }
                    option value="no" selected[v.cover == "no"] { "No cover" }
                }
            }
            div.col-6.col-md-2 {
                label.form-label.small for="f-sort" { "Sort" }
                select.form-select.form-select-sm #f-sort name="sort" data-autosubmit {
                    option value="fav" selected[v.sort == "fav"] { "Favourites first" }
                    option value="name" selected[v.sort == "name"] { "Name" }
                    option value="edited" selected[v.sort == "edited"] { "Recently edited" }
                    option value="generated" selected[v.sort == "generated"] { "Recently generated" }
                }
            }
            div.col-6.col-md-2 {
                label.form-label.small for="f-nsfw" { "NSFW" }
                select.form-select.form-select-sm #f-nsfw name="nsfw" data-autosubmit {
                    option value="show" selected[v.nsfw == "show"] { "Shown" }
                    option value="blur" selected[v.nsfw == "blur"] { "Blurred" }
                    option value="hide" selected[v.nsfw == "hide"] { "Hidden" }
                }
            }
            div.col-6.col-md-1 {
                label.form-label.small for="f-per" { "Per page" }
                select.form-select.form-select-sm #f-per name="per" data-autosubmit {
                    @for n in PER_PAGE {
                        option value=(n) selected[v.per == n] { (n) }
                    }
                }
            }
            div.col-12.col-md-1.d-flex.flex-column.gap-1 {
                div.form-check.small {
                    input.form-check-input #f-fav type="checkbox" name="fav" value="1" checked[v.favourites_only] data-autosubmit;
                    label.form-check-label for="f-fav" { "★ only" }
                }
                button.btn.btn-sm.btn-secondary type="submit" { "Apply" }
            }
        }
        p.small.text-body-secondary #result-count {
            (total) " of " (idx.rows.len()) " shown"
            @if pages > 1 { " · page " (v.page) " of " (pages) }
        }
        @if rows.is_empty() {
            div.text-center.text-body-secondary.py-5.empty {
                @if idx.rows.is_empty() {
                    p { "No " (d.title.to_lowercase()) " yet." }
                    a.btn.btn-primary href=(create) { "Create the first one" }
                } @else {
                    p { "Nothing matches these filters." }
                    a href={ "/" (d.key) } { "Show all" }
                }
            }
        }
        // One form for every card's star (each button names its own URL), so a card carries no
        // token of its own.
        form #fav-form method="post" action={ "/" (d.key) } data-fav-form {
            (csrf_field(s))
            input type="hidden" name="back" value=(here);
        }
        div.row.row-cols-2.row-cols-sm-3.row-cols-md-4.row-cols-lg-5.row-cols-xl-6.g-3.gallery-grid {
            @for r in &rows {
                @if let Some(e) = lib.get(c, &r.slug) {
                    (card(&lib, c, e, r, &v.nsfw))
                }
            }
        }
        (pagination(&base, v.page, pages))
    }
}

/// One card.
fn card(lib: &Library, c: Category, e: &Entry, r: &Row, nsfw: &str) -> Markup {
    let d = c.desc();
    let href = format!("/{}/{}", d.singular, e.slug);
    let v = e.value();
    let blur = r.nsfw && nsfw == "blur";
    html! {
        div.col id={ "card-" (e.slug) } {
            article.card.h-100.gallery-card.nsfw-blur[blur] data-slug=(e.slug) {
                a.thumb-link href=(href) tabindex="-1" aria-hidden="true" {
                    @if let Some(cover) = &e.cover {
                        img.card-img-top.thumb src=(thumb_url(cover, 240)) alt="" loading="lazy" decoding="async" width="240" height="320";
                    } @else {
                        div.card-img-top.thumb.placeholder-thumb { span { (initials(&e.name)) } }
                    }
                }
                div.card-badges {
                    @if e.cover.is_none() { span.badge.text-bg-dark.no-cover { "no cover" } }
                    @if r.nsfw { span.badge.text-bg-danger { "NSFW" } }
                    (super::history::stale_badge(lib, c, e))
                }
                button.btn.btn-sm.fav-btn.on[e.favourite] type="submit" form="fav-form" formaction={ (href) "/favourite" }
                    name="on" value=(if e.favourite { "0" } else { "1" }) aria-pressed=(e.favourite)
                    aria-label={ "Favourite: " (e.name) } title=(if e.favourite { "Unstar" } else { "Star" }) {
                    (if e.favourite { "★" } else { "☆" })
                }
                div.card-body.p-2 {
                    h2.h6.card-title.mb-1.text-truncate { a.stretched-link-ish href=(href) title=(e.name) { (e.name) } }
                    div.facts.small {
                        @for fact in d.facts {
                            (fact_markup(lib, fact, &v))
                        }
                    }
                }
            }
        }
    }
}

fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .collect::<String>()
        .to_uppercase()
}

fn text_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::trim).filter(|t| !t.is_empty())
}

/// A card fact.
pub fn fact_markup(lib: &Library, fact: &Fact, v: &Value) -> Markup {
    match fact {
        Fact::Lora => {
            let has = text_at(v, &["lora", "lora_name"]).is_some();
            html! {
                span.badge.rounded-pill.me-1.text-bg-info[has].text-bg-secondary[!has] {
                    (if has { "LoRA" } else { "no LoRA" })
                }
            }
        }
        Fact::Text(label, path) => match text_at(v, path) {
            Some(t) => {
                html! { div.text-truncate.text-body-secondary title=(t) { (label) ": " (t) } }
            }
            None => html! {},
        },
        Fact::Link(label, path, cat) => match text_at(v, path) {
            Some(id) if id != crate::engine::RANDOM_SENTINEL => {
                let slug = cat.slug_of(id);
                match lib.get(*cat, &slug) {
                    Some(e) => html! {
                        div.text-truncate { (label) ": " a.position-relative href={ "/" (cat.desc().singular) "/" (slug) } { (e.name) } }
                    },
                    None => {
                        html! { div.text-truncate.text-warning { (label) ": " (id) " (missing)" } }
                    }
                }
            }
            Some(_) => html! { div.text-truncate.text-body-secondary { (label) ": random" } },
            None => html! {},
        },
    }
}

/// `GET /get_missing_<category>`: entries without a cover, sorted by display name.
pub async fn get_missing(State(s): State<AppState>, c: Category) -> Response {
    let lib = s.handle.library();
    let mut list: Vec<&Entry> = lib
        .shelf(c)
        .docs
        .values()
        .filter(|e| e.cover.is_none())
        .collect();
    list.sort_by_cached_key(|e| e.name.to_lowercase());
    let items: Vec<Value> = list
        .iter()
        .map(|e| json!({"slug": e.slug, "name": e.name}))
        .collect();
    axum::Json(json!({"category": c.key(), "missing": items})).into_response()
}

/// `POST /generate_missing` (`category`, default characters): a cover job per entry without one.
pub async fn generate_missing(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let key = field(&f, "category").unwrap_or("characters");
    let Some(c) = Category::parse(key) else {
        return finish(
            &headers,
            "/",
            Err((StatusCode::NOT_FOUND, format!("unknown category '{key}'"))),
        );
    };
    let back = format!("/{}", c.key());
    let r = crate::web::jobs::missing_covers(&s, c)
        .await
        .map(|(batch, jobs)| {
            let list: Vec<Value> = jobs
                .iter()
                .map(|(id, slug, name)| json!({"job_id": id, "slug": slug, "name": name}))
                .collect();
            (
                format!(
                    "Queued {} cover job(s); covers appear as they finish",
                    jobs.len()
                ),
                json!({"batch": batch, "jobs": list}),
            )
        })
        .map_err(|e| (e.status, e.message));
    finish(&headers, &back, r)
}

pub async fn clear_all_character_covers(
    s: State<AppState>,
    h: HeaderMap,
    f: FormPairs,
) -> Response {
    clear_covers(s, Category::Characters, h, f).await
}

/// `POST /clear_all_<singular>_covers` with `confirm=yes`.
pub async fn clear_covers(
    State(s): State<AppState>,
    c: Category,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let back = safe_back(field(&f, "back"), &format!("/{}", c.key()));
    if field(&f, "confirm") != Some("yes") {
        return finish(
            &headers,
            &back,
            Err((
                StatusCode::BAD_REQUEST,
                "Nothing cleared: tick the confirmation box first".into(),
            )),
        );
    }
    let r = run(&s, Command::ClearCovers { category: c })
        .await
        .map(|o| {
            (
                if o.events.is_empty() {
                    "There were no covers to clear".to_string()
                } else {
                    format!("Cleared every {} cover", c.desc().singular)
                },
                json!({"cleared": c.key()}),
            )
        });
    finish(&headers, &back, r)
}

/// `POST /<singular>/<slug>/favourite` with `on=1|0`.
pub async fn favourite(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let on = field(&f, "on") != Some("0");
    let mut back = safe_back(field(&f, "back"), &format!("/{}", c.key()));
    if !back.contains('#') {
        // Back to the card, not the top of the gallery.
        back.push_str(&format!("#card-{slug}"));
    }
    let r = run(
        &s,
        Command::SetFavourite {
            category: c,
            slug: slug.clone(),
            on,
        },
    )
    .await
    .map(|_| {
        (
            if on { "Starred" } else { "Unstarred" }.to_string(),
            json!({"slug": slug, "on": on}),
        )
    });
    finish(&headers, &back, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn views_parse_with_defaults_and_refuse_odd_values() {
        let v = View::from_query(&q(&[]), "blur");
        assert_eq!(
            (
                v.cover.as_str(),
                v.sort.as_str(),
                v.nsfw.as_str(),
                v.page,
                v.per
            ),
            ("any", "fav", "blur", 1, 60)
        );
        let v = View::from_query(
            &q(&[
                ("cover", "no"),
                ("sort", "edited"),
                ("page", "3"),
                ("per", "120"),
                ("fav", "1"),
                ("q", " Tifa "),
            ]),
            "show",
        );
        assert_eq!(
            (v.cover.as_str(), v.sort.as_str(), v.page, v.per),
            ("no", "edited", 3, 120)
        );
        assert!(v.favourites_only);
        assert_eq!(v.q, "Tifa");
        let odd = View::from_query(
            &q(&[
                ("cover", "maybe"),
                ("sort", "x"),
                ("page", "0"),
                ("per", "7"),
                ("nsfw", "peek"),
            ]),
            "hide",
        );
        assert_eq!(
            (
                odd.cover.as_str(),
                odd.sort.as_str(),
                odd.page,
                odd.per,
                odd.nsfw.as_str()
            ),
            ("any", "fav", 1, 60, "hide")
        );
    }

    #[test]
    fn view_queries_round_trip_without_defaults() {
        let v = View::from_query(
            &q(&[("q", "a b&c"), ("cover", "yes"), ("sort", "name")]),
            "blur",
        );
        assert_eq!(v.query("blur"), "q=a%20b%26c&cover=yes&sort=name");
        let back: HashMap<String, String> = v
            .query("blur")
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("%20", " ").replace("%26", "&")))
            .collect();
        assert_eq!(View::from_query(&back, "blur"), v);
        assert_eq!(View::from_query(&q(&[]), "blur").query("blur"), "");
    }

    fn row(slug: &str, cover: bool, fav: bool, nsfw: bool, version: u64, tags: &str) -> Row {
        Row {
            slug: slug.into(),
            sort_name: slug.into(),
            hay: format!("{slug} {tags}"),
            cover,
            favourite: fav,
            nsfw,
            version,
        }
    }

    #[test]
    fn selection_filters_sorts_and_pages() {
        let lib = Library::default();
        let idx = Index {
            generation: 1,
            rows: vec![
                row("alpha", true, false, false, 5, "maid"),
                row("beta", false, true, false, 9, "final fantasy"),
                row("gamma", true, false, true, 7, "nsfw maid"),
                row("delta", false, false, false, 1, ""),
            ]
            .into_iter()
            .map(Arc::new)
            .collect(),
            by_slug: HashMap::new(),
        };
        let slugs = |v: &View| {
            select(&lib, Category::Characters, &idx, v)
                .0
                .iter()
                .map(|r| r.slug.clone())
                .collect::<Vec<_>>()
        };
        let base = View::from_query(&q(&[("sort", "name")]), "show");
        type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![], vec!["alpha", "beta", "gamma", "delta"]),
            (
                vec![("sort", "fav")],
                vec!["beta", "alpha", "gamma", "delta"],
            ),
            (
                vec![("sort", "edited")],
                vec!["beta", "gamma", "alpha", "delta"],
            ),
            (vec![("q", "maid")], vec!["alpha", "gamma"]),
            (vec![("q", "final fan")], vec!["beta"]),
            (vec![("q", "MAID gam")], vec!["gamma"]),
            (vec![("cover", "no")], vec!["beta", "delta"]),
            (vec![("cover", "yes")], vec!["alpha", "gamma"]),
            (vec![("fav", "1")], vec!["beta"]),
            (vec![("nsfw", "hide")], vec!["alpha", "beta", "delta"]),
            (
                vec![("nsfw", "blur")],
                vec!["alpha", "beta", "gamma", "delta"],
            ),
            (vec![("q", "nothing")], vec![]),
        ];
        for (extra, want) in cases {
            let mut m = q(&[("sort", "name")]);
            for (k, v) in &extra {
                m.insert(k.to_string(), v.to_string());
            }
            let v = View::from_query(&m, "show");
            assert_eq!(slugs(&v), want, "{extra:?}");
        }
        let mut paged = base.clone();
        paged.per = 30;
        paged.page = 2;
        assert_eq!(select(&lib, Category::Characters, &idx, &paged).1, 4);
        assert!(
            slugs(&paged).is_empty(),
            "page 2 of 1 is empty, not a panic"
        );
    }

    #[test]
    fn nsfw_is_the_tag_in_any_case() {
        assert!(is_nsfw(&json!({"tags": ["a", " NSFW "]})));
        assert!(!is_nsfw(&json!({"tags": ["nsfw-ish"]})));
        assert!(!is_nsfw(&json!({"tags": "nsfw"})));
        assert!(!is_nsfw(&json!({})));
    }
}
