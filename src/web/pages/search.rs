//! Search (`/search?q=`): one box in the navbar finds entries of every category by name, id,
//! tags and field text (`library::search`, one word index per category kept until its shelf
//! changes) and images by the words of their prompt (the image index), grouped by kind, each
//! with its thumbnail. `partial=1` answers the navbar's live dropdown with a short list.

use super::ui::thumb_url;
use super::{Page, page};
use crate::library::category::Category;
use crate::library::projection::Library;
use crate::library::search::{EntryIndex, Found, matched_field};
use crate::web::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entry word indexes, one per category.
pub type Cache = Mutex<HashMap<Category, Arc<EntryIndex>>>;

pub fn routes() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

/// A category's word index, made again only when its shelf changed.
pub fn entry_index(s: &AppState, lib: &Library, c: Category) -> Arc<EntryIndex> {
    let generation = lib.shelf(c).generation;
    let mut cache = s.search.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = cache.get(&c)
        && i.generation == generation
    {
        return i.clone();
    }
    let i = Arc::new(EntryIndex::build(lib, c));
    cache.insert(c, i.clone());
    i
}

/// What a query found.
pub struct Results {
    pub entries: Vec<Found>,
    /// Image paths, newest first.
    pub images: Vec<String>,
    pub images_total: usize,
    /// Images whose prompt has not been read yet (they cannot be found by it yet).
    pub images_pending: usize,
}

/// Runs a query over every category and the images. Blocking (the image index may catch up).
pub fn find(s: &AppState, q: &str, per_category: usize, images: usize) -> Results {
    let entries: Vec<Found> = {
        let lib = s.handle.library();
        Category::ALL
            .iter()
            .map(|c| entry_index(s, &lib, *c).search(q, per_category))
            .filter(|f| f.total > 0)
            .collect()
    };
    let ix = s.images.current();
    let (rows, total) = match ix.words.matching(q) {
        Some(bits) => ix.with_prompts(&bits, images),
        None => (Vec::new(), 0),
    };
    let paths = rows
        .iter()
        .map(|&r| ix.path_of(&ix.rows[r as usize]))
        .collect();
    let pending = if total == 0 { ix.prompts_pending() } else { 0 };
    Results {
        entries,
        images: paths,
        images_total: total,
        images_pending: pending,
    }
}

async fn search(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let query = q.get("q").map(|v| v.trim().to_string()).unwrap_or_default();
    let partial = q.contains_key("partial");
    let (per, imgs) = if partial { (4, 6) } else { (24, 48) };
    let s2 = s.clone();
    let q2 = query.clone();
    let found = match tokio::task::spawn_blocking(move || find(&s2, &q2, per, imgs)).await {
        Ok(r) => r,
        Err(e) => return crate::web::ApiError::internal(e).into_response(),
    };
    let body = {
        let lib = s.handle.library();
        results(&lib, &query, &found, partial)
    };
    if partial {
        return body.into_response();
    }
    page(
        &s,
        &Page {
            title: "Search",
            section: Some("search"),
            scripts: &[],
            flash: None,
            refresh: None,
        },
        html! {
            h1.h3.mb-3 { "Search" }
            form.row.g-2.mb-3 role="search" method="get" action="/search" {
                div.col-12.col-md-6 {
                    label.visually-hidden for="search-q" { "Search entries and images" }
                    input.form-control #search-q type="search" name="q" value=(query)
                        placeholder="a name, a tag, a word of a prompt";
                }
                div.col-auto { button.btn.btn-primary type="submit" { "Search" } }
            }
            (body)
        },
    )
    .into_response()
}

fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .collect::<String>()
        .to_uppercase()
}

/// The results, grouped by kind (also the navbar dropdown's content, shorter).
fn results(lib: &Library, q: &str, r: &Results, partial: bool) -> Markup {
    let nothing = r.entries.is_empty() && r.images.is_empty();
    let enc = super::enc(q);
    html! {
        div.search-results data-query=(q) {
            @if q.is_empty() {
                p.text-body-secondary.small.m-2 { "Type a name, a tag or a word of a prompt." }
            } @else if nothing {
                p.text-body-secondary.small.m-2.search-empty {
                    "Nothing found for “" (q) "”."
                    @if r.images_pending > 0 {
                        " (" (r.images_pending) " images are still being indexed by their prompt.)"
                    }
                }
            }
            @for f in &r.entries {
                @let d = f.category.desc();
                section.search-group data-kind=(d.key) {
                    h2.search-kind {
                        (d.title) " " span.badge.text-bg-secondary { (f.total) }
                        @if f.total > f.hits.len() {
                            " " a.small.fw-normal href={ "/" (d.key) "?q=" (enc) } { "all in " (d.title) " →" }
                        }
                    }
                    ul.list-unstyled.search-list.mb-2 {
                        @for h in &f.hits {
                            @if let Some(e) = lib.get(f.category, &h.slug) {
                                li {
                                    a.search-hit href={ "/" (d.singular) "/" (e.slug) } data-hit {
                                        @if let Some(cover) = &e.cover {
                                            img.search-thumb src=(thumb_url(cover, 160)) alt="" loading="lazy" width="40" height="53";
                                        } @else {
                                            span.search-thumb.placeholder-thumb aria-hidden="true" { (initials(&e.name)) }
                                        }
                                        span.search-text {
                                            span.search-name { (e.name) }
                                            @if !h.strong && !partial {
                                                @if let Some((field, text)) = matched_field(&e.value(), q) {
                                                    span.small.text-body-secondary.d-block.text-truncate {
                                                        (field) ": " (text)
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
            @if !r.images.is_empty() {
                section.search-group data-kind="images" {
                    h2.search-kind {
                        "Images " span.badge.text-bg-secondary { (r.images_total) }
                        " " a.small.fw-normal href={ "/gallery?q=" (enc) } { "all in the gallery →" }
                    }
                    div.search-images {
                        @for p in &r.images {
                            a.search-image href={ "/gallery/image?path=" (super::enc(p)) "&q=" (enc) } data-hit {
                                img src=(thumb_url(p, 160)) alt="An image whose prompt matches" loading="lazy" width="80" height="107";
                            }
                        }
                    }
                }
            }
            @if partial && !q.is_empty() {
                a.dropdown-item.small.search-all href={ "/search?q=" (enc) } { "All results for “" (q) "” →" }
            }
        }
    }
}
