//! Small partials shared by the page families: the navbar (sections, default checkpoint,
//! backend dots, queue badge, theme and NSFW settings), image URLs, entry pickers, pagination.

use super::global_pref;
use crate::library::category::{Category, DESCRIPTORS};
use crate::library::projection::Library;
use crate::web::AppState;
use crate::web::guard::csrf_field;
use maud::{Markup, html};

/// A select longer than this becomes a text field with suggestions.
pub const PICKER_LIMIT: usize = 300;

/// The URL of a resized copy of an uploads-relative image (`uploads/characters/x/cover.png`).
/// Galleries use width 240, entry pages 512; a gallery never shows a full-size image.
pub fn thumb_url(path: &str, width: u32) -> String {
    crate::web::thumbs::url(path, width)
}

/// The full-size URL of an uploads-relative image.
pub fn full_url(path: &str) -> String {
    format!("/static/{}", path.trim_start_matches('/'))
}

/// The categories with a link of their own in the navbar; the rest are under "More".
const MAIN_CATEGORIES: [Category; 7] = [
    Category::Characters,
    Category::Looks,
    Category::Outfits,
    Category::Actions,
    Category::Styles,
    Category::Scenes,
    Category::Detailers,
];

/// The workshop pages: (section key, path, title).
pub const WORKSHOP: [(&str, &str, &str); 6] = [
    ("generator", "/generator", "Generator"),
    ("gallery", "/gallery", "Image gallery"),
    ("strengths", "/strengths", "Strengths"),
    ("transfer", "/transfer", "Transfer"),
    ("queue", "/queue", "Queue"),
    ("settings", "/settings", "Settings"),
];

pub fn navbar(s: &AppState, section: Option<&str>) -> Markup {
    let lib = s.handle.library();
    let backends = s.live.as_ref().map(|l| l.backends()).unwrap_or_default();
    let (running, pending) = (lib.jobs.submitted.len(), lib.jobs.queued.len());
    let nsfw = global_pref(s, "nsfw").unwrap_or_else(|| "blur".into());
    let theme = global_pref(s, "theme").unwrap_or_else(|| "dark".into());
    let more: Vec<(String, &str, &str)> = DESCRIPTORS
        .iter()
        .filter(|d| !MAIN_CATEGORIES.contains(&d.category))
        .map(|d| (format!("/{}", d.key), d.key, d.title))
        .chain(std::iter::once((
            "/library".to_string(),
            "library",
            "Library overview",
        )))
        .collect();
    let more_here = more.iter().any(|(_, k, _)| section == Some(*k));
    let workshop_here = WORKSHOP.iter().any(|(k, _, _)| section == Some(*k));
    html! {
        nav.navbar.navbar-expand-xl.bg-body-tertiary.border-bottom.sticky-top aria-label="Main" {
            div.container-fluid {
                a.navbar-brand.fw-bold.brand href="/" { "GAZE" }
                button.navbar-toggler type="button" data-bs-toggle="collapse" data-bs-target="#nav-main"
                    aria-controls="nav-main" aria-expanded="false" aria-label="Toggle navigation" {
                    span.navbar-toggler-icon {}
                }
                div.collapse.navbar-collapse #nav-main {
                    ul.navbar-nav.me-auto {
                        @for c in MAIN_CATEGORIES {
                            @let d = c.desc();
                            @let here = section == Some(d.key);
                            li.nav-item {
                                a.nav-link.active[here] href={ "/" (d.key) }
                                    aria-current=[here.then_some("page")] { (d.title) }
                            }
                        }
                        li.nav-item.dropdown {
                            a.nav-link.dropdown-toggle.active[more_here] href="/library" role="button"
                                data-bs-toggle="dropdown" aria-expanded="false" { "More" }
                            ul.dropdown-menu {
                                @for (href, key, title) in &more {
                                    @let here = section == Some(*key);
                                    li { a.dropdown-item.active[here] href=(href) aria-current=[here.then_some("page")] { (title) } }
                                }
                            }
                        }
                        li.nav-item.dropdown {
                            a.nav-link.dropdown-toggle.active[workshop_here] href="/generator" role="button"
                                data-bs-toggle="dropdown" aria-expanded="false" { "Workshop" }
                            ul.dropdown-menu {
                                @for (key, href, title) in WORKSHOP {
                                    @let here = section == Some(key);
                                    li { a.dropdown-item.active[here] href=(href) aria-current=[here.then_some("page")] { (title) } }
                                }
                            }
                        }
                        li.nav-item {
                            @let here = section == Some("history");
                            a.nav-link.active[here] href="/history" aria-current=[here.then_some("page")] { "History" }
                        }
                    }
                    div.d-flex.flex-wrap.flex-xl-nowrap.align-items-center.gap-2.navbar-tools {
                        form.nav-search.position-relative role="search" method="get" action="/search" data-nav-search {
                            label.visually-hidden for="nav-q" { "Search entries and images" }
                            input.form-control.form-control-sm #nav-q type="search" name="q"
                                placeholder="Search  /" autocomplete="off" aria-keyshortcuts="/"
                                aria-controls="nav-results" title="Search entries and images (press / to focus)";
                            div.nav-results.dropdown-menu.p-0 #nav-results aria-live="polite" {}
                        }
                        (checkpoint_form(s, &lib))
                        a.queue-link.d-inline-flex.align-items-center.gap-1.text-decoration-none href="/queue"
                            title="The queue: running · waiting jobs, and the ComfyUI backends" {
                            span.visually-hidden { "Queue and backends: " }
                            span.backend-dots #backend-dots {
                                @if backends.is_empty() {
                                    span.status-dot.unknown role="img" aria-label="No reactor" title="No reactor" {}
                                }
                                @for b in &backends {
                                    @let label = backend_label(b);
                                    span.status-dot.ok[b.healthy].down[!b.healthy] role="img"
                                        title=(label) aria-label=(label) data-url=(b.url) {}
                                }
                            }
                            span.badge.text-bg-secondary.queue-badge #queue-badge aria-live="polite"
                                data-running=(running) data-pending=(pending) {
                                span data-q="running" { (running) } span.q-word { " running" } " · "
                                span data-q="pending" { (pending) } span.q-word { " waiting" }
                            }
                        }
                        div.dropdown {
                            button.btn.btn-sm.btn-outline-secondary type="button" title="Theme and NSFW"
                                data-bs-toggle="dropdown" aria-expanded="false" aria-label="View settings" { "◐" }
                            div.dropdown-menu.dropdown-menu-end.p-3.view-menu {
                                form method="post" action="/preferences/global" data-prefs-form {
                                    (csrf_field(s))
                                    input type="hidden" name="back" value="" data-back-here;
                                    label.form-label.small for="pref-theme" { "Theme" }
                                    select.form-select.form-select-sm.mb-2 #pref-theme name="theme" data-autosubmit {
                                        option value="dark" selected[theme == "dark"] { "Dark" }
                                        option value="light" selected[theme == "light"] { "Light" }
                                    }
                                    label.form-label.small for="pref-nsfw" { "NSFW entries" }
                                    select.form-select.form-select-sm.mb-2 #pref-nsfw name="nsfw" data-autosubmit {
                                        option value="show" selected[nsfw == "show"] { "Show" }
                                        option value="blur" selected[nsfw == "blur"] { "Blur" }
                                        option value="hide" selected[nsfw == "hide"] { "Hide" }
                                    }
                                    button.btn.btn-sm.btn-primary.no-js-only type="submit" { "Save" }
                                }
                                a.small href="/settings" { "All settings" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A backend's state in words (the navbar dot's label).
pub fn backend_label(b: &crate::jobs::reactor::BackendStatus) -> String {
    if b.healthy {
        format!(
            "{}: healthy{}",
            b.url,
            b.version
                .as_ref()
                .map(|v| format!(" (ComfyUI {v})"))
                .unwrap_or_default()
        )
    } else {
        format!(
            "{}: down — {}",
            b.url,
            b.error.as_deref().unwrap_or("not reachable")
        )
    }
}

/// The global default checkpoint selector (posts `/set_default_checkpoint`).
fn checkpoint_form(s: &AppState, lib: &Library) -> Markup {
    let shelf = &lib.shelf(Category::Checkpoints).docs;
    let current = lib.default_checkpoint.clone();
    let mut list: Vec<(&str, &str)> = shelf
        .values()
        .map(|e| (e.id.as_str(), e.name.as_str()))
        .collect();
    list.sort_by_cached_key(|a| crate::library::search::natural_key(a.1));
    let more = list.len() > 100;
    list.truncate(100);
    if let Some(c) = &current
        && !list.iter().any(|(id, _)| id == c)
    {
        list.insert(0, (c.as_str(), c.as_str()));
    }
    let current_name = current
        .as_deref()
        .and_then(|c| list.iter().find(|(id, _)| *id == c).map(|(_, n)| *n));
    let title = match current_name {
        Some(n) => format!("Default checkpoint: {n}"),
        None => "Default checkpoint: the first one".to_string(),
    };
    html! {
        form.d-flex.align-items-center.gap-1.checkpoint-form method="post" action="/set_default_checkpoint" data-checkpoint-form {
            (csrf_field(s))
            input type="hidden" name="back" value="" data-back-here;
            label.visually-hidden for="default-checkpoint" { "Default checkpoint" }
            select.form-select.form-select-sm.checkpoint-select #default-checkpoint name="checkpoint_path"
                data-autosubmit title=(title) {
                option value="" selected[current.is_none()] { "First checkpoint" }
                @for (id, name) in &list {
                    option value=(id) selected[current.as_deref() == Some(*id)] { (name) }
                }
            }
            @if more {
                a.small.text-nowrap.d-none.d-xxl-inline href="/checkpoints" title="More checkpoints: set one as default from its page" { "more…" }
            }
            button.btn.btn-sm.btn-outline-secondary.no-js-only type="submit" { "Set" }
        }
    }
}

/// Picks an entry of `c` by id: a select for short lists, a text field with suggestions for
/// long ones. `extra` are options before the entries (value, label), e.g. random or none.
pub fn entry_picker(
    lib: &Library,
    c: Category,
    name: &str,
    id: &str,
    current: Option<&str>,
    extra: &[(&str, &str)],
    by_slug: bool,
) -> Markup {
    let shelf = &lib.shelf(c).docs;
    let value = |e: &crate::library::projection::Entry| {
        if by_slug {
            e.slug.clone()
        } else {
            e.id.clone()
        }
    };
    if shelf.len() <= PICKER_LIMIT {
        let mut list: Vec<_> = shelf.values().collect();
        list.sort_by_cached_key(|e| crate::library::search::natural_key(&e.name));
        let known = current.is_none_or(|cur| {
            extra.iter().any(|(v, _)| *v == cur) || list.iter().any(|e| value(e) == cur)
        });
        html! {
            select.form-select #(id) name=(name) {
                @for (v, label) in extra {
                    option value=(v) selected[current == Some(*v)] { (label) }
                }
                @if !known {
                    @if let Some(cur) = current {
                        option value=(cur) selected { (cur) " (not in the library)" }
                    }
                }
                @for e in &list {
                    @let v = value(e);
                    option value=(v) selected[current == Some(v.as_str())] { (e.name) }
                }
            }
        }
    } else {
        let list_id = format!("{id}-list");
        html! {
            input.form-control #(id) name=(name) value=[current] list=(list_id)
                placeholder={ "a " (c.desc().singular) " id" (if extra.is_empty() { "" } else { ", or one of the choices" }) };
            datalist #(list_id) {
                @for (v, label) in extra {
                    option value=(v) { (label) }
                }
                @for e in shelf.values().take(PICKER_LIMIT) {
                    option value=(value(e)) { (e.name) }
                }
            }
        }
    }
}

/// Page links: previous, numbers around the current one, next.
pub fn pagination(base: &str, page: usize, pages: usize) -> Markup {
    let sep = if base.contains('?') { '&' } else { '?' };
    let link = |p: usize| format!("{base}{sep}page={p}");
    let lo = page.saturating_sub(2).max(1);
    let hi = (page + 2).min(pages);
    html! {
        @if pages > 1 {
            nav aria-label="Pages" {
                ul.pagination.pagination-sm.flex-wrap.justify-content-center.my-3 {
                    li.page-item.disabled[page <= 1] {
                        a.page-link href=(link(page.saturating_sub(1).max(1))) aria-label="Previous page" { "‹" }
                    }
                    @if lo > 1 {
                        li.page-item { a.page-link href=(link(1)) { "1" } }
                        @if lo > 2 { li.page-item.disabled { span.page-link { "…" } } }
                    }
                    @for p in lo..=hi {
                        li.page-item.active[p == page] {
                            a.page-link href=(link(p)) aria-current=[(p == page).then_some("page")] { (p) }
                        }
                    }
                    @if hi < pages {
                        @if hi + 1 < pages { li.page-item.disabled { span.page-link { "…" } } }
                        li.page-item { a.page-link href=(link(pages)) { (pages) } }
                    }
                    li.page-item.disabled[page >= pages] {
                        a.page-link href=(link((page + 1).min(pages))) aria-label="Next page" { "›" }
                    }
                }
            }
        }
    }
}

/// Files of a category that could not be read, with the reason.
pub fn failures(lib: &Library, cats: &[Category]) -> Markup {
    let list: Vec<_> = cats
        .iter()
        .flat_map(|c| {
            lib.shelf(*c)
                .failures
                .iter()
                .map(move |(f, x)| (c.desc().dir, f, x))
        })
        .collect();
    html! {
        @if !list.is_empty() {
            section.alert.alert-warning.sync-failures aria-labelledby="failures-title" {
                h2.h6 #failures-title { (list.len()) " file(s) could not be read — left untouched on disk" }
                ul.mb-0.small {
                    @for (dir, file, f) in &list {
                        li { code { "data/" (dir) "/" (file) } " — " (f.error) }
                    }
                }
            }
        }
    }
}

/// The `page` a gallery query asks for (from 1; anything else is page 1).
pub fn page_number(q: &std::collections::HashMap<String, String>) -> usize {
    q.get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}

/// The `per` (cards per page) a gallery query asks for, if it is one `allowed`; else 60.
pub fn per_page(q: &std::collections::HashMap<String, String>, allowed: &[usize]) -> usize {
    q.get("per")
        .and_then(|p| p.parse().ok())
        .filter(|p| allowed.contains(p))
        .unwrap_or(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_and_per_fall_back_to_sane_values() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::HashMap<_, _>>()
        };
        for (pairs, page, per) in [
            (vec![], 1, 60),
            (vec![("page", "3"), ("per", "120")], 3, 120),
            (vec![("page", "0"), ("per", "7")], 1, 60),
            (vec![("page", "-2"), ("per", "x")], 1, 60),
            (vec![("page", "99999"), ("per", "30")], 99_999, 30),
        ] {
            let q = q(&pairs);
            assert_eq!(page_number(&q), page, "{pairs:?}");
            assert_eq!(per_page(&q, &[30, 60, 120]), per, "{pairs:?}");
        }
    }
}
